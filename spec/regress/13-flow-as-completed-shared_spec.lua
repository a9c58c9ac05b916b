-- Issue 13: one as_completed iterator shared by several tasks: each call
-- hands out the next finished task; once all are handed out every
-- further call ends the loop (one of two callers used to hang).
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

local function after(d, v)
  return aio.spawn(function() aio.sleep(d); return v end)
end

local function consumer(it)
  return function()
    local got = {}
    for t in it do got[#got + 1] = t:result() end
    return got
  end
end

describe("a shared as_completed iterator #safety", function()
  after_each(assert_no_tasks)

  it("hands each task out once and ends every caller", function()
    local it = aio.as_completed({after(0.03, 1), after(0.06, 2),
                                 after(0.09, 3)})
    local a, b = aio.spawn(consumer(it)), aio.spawn(consumer(it))
    local ga, gb = aio.timeout(30, aio.gather, a, b)
    local all = {}
    for _, v in ipairs(ga) do all[#all + 1] = v end
    for _, v in ipairs(gb) do all[#all + 1] = v end
    table.sort(all)
    assert.are.same({1, 2, 3}, all)
    assert.is_nil(it())
  end)

  it("more callers than tasks: the extra ones get the end", function()
    local it = aio.as_completed({after(0.02, "x")})
    local cs = {}
    for i = 1, 4 do cs[i] = aio.spawn(consumer(it)) end
    local rs = {aio.timeout(30, aio.gather, cs)}
    local n = 0
    for _, got in ipairs(rs) do n = n + #got end
    assert.are.equal(1, n)
  end)

  it("a timeout reaches every waiting caller", function()
    local slow = aio.spawn(aio.sleep, 60)
    local it = aio.as_completed({slow}, {timeout = 0.05})
    local function try() return pcall(it) end
    local a, b = aio.spawn(try), aio.spawn(try)
    local ra = {aio.timeout(30, a.await, a)}
    local rb = {aio.timeout(30, b.await, b)}
    assert.is_false(ra[1])
    assert.is_true(aio.is_timeout(ra[2]))
    assert.is_false(rb[1])
    assert.is_true(aio.is_timeout(rb[2]))
    slow:cancel()
    pcall(slow.await, slow)
  end)

  it("a cancelled caller takes nothing: the other gets every task", function()
    -- the tasks finish when told, after the cancel (timers could fire
    -- before it on a loaded machine, and a would take task 1)
    local go = {aio.event(), aio.event()}
    local ts = {}
    for i = 1, 2 do ts[i] = aio.spawn(function() go[i]:wait(); return i end) end
    local it = aio.as_completed(ts)
    local a = aio.spawn(consumer(it))
    local b = aio.spawn(consumer(it))
    aio.sleep(0.01)
    a:cancel()
    assert.is_false(pcall(a.await, a))
    go[1]:set()
    aio.sleep(0)
    go[2]:set()
    assert.are.same({1, 2}, aio.timeout(30, b.await, b))
  end)
end)
