-- Issue 18: aio.select over queues loses no item and duplicates none
-- when the select times out, is cancelled, or races producers and
-- consumers: 10,000 iterations, every item counted.
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("aio.select under races #safety", function()
  after_each(assert_no_tasks)

  it("loses and duplicates nothing in 10,000 iterations", function()
    local N = 10000
    local q1, q2 = aio.queue(3), aio.priority_queue(3)
    local out = aio.queue(2)
    local seen, sent = {}, {}
    local function got(v)
      assert(not seen[v], "item " .. tostring(v) .. " delivered twice")
      seen[v] = true
    end
    local producers = {}
    for p, q in ipairs({q1, q2}) do
      producers[p] = aio.spawn(function()
        for i = 1, N / 2 do
          q:put(p * 1e6 + i)
          -- now and then slower than the selects, so they wait
          if i % 10 == 0 then aio.sleep(0.001)
          elseif i % 2 == 0 then aio.sleep(0) end
        end
      end)
    end
    local outs = {}
    local drain = aio.spawn(function()
      while true do
        local v = out:get()
        if v == nil then return end
        outs[v] = (outs[v] or 0) + 1
        if v % 50 == 0 then aio.sleep(0.001) end
      end
    end)
    local cases = function(k)              -- a put case one time in 3
      local c = {{get = q1}, {get = q2}}
      if k % 3 == 0 then c[3] = {put = out, value = k} end
      return c
    end
    local function record(which, v, k)
      if which == 1 or which == 2 then got(v)
      elseif which == 3 then sent[k] = true end
    end
    for k = 1, N do
      local how = k % 4
      if how <= 1 then                     -- a poll, or a short timeout
        local which, v = aio.select(cases(k), how == 0 and 0 or 0.0001)
        record(which, v, k)
      else                                 -- cancelled, soon or at once
        local t = aio.spawn(aio.select, cases(k))
        if how == 2 then aio.sleep(0) end
        t:cancel()
        local ok, which, v = pcall(t.await, t)
        if ok then record(which, v, k)
        else assert.is_true(aio.is_cancelled(which), tostring(which)) end
      end
    end
    local through_select = 0
    for _ in pairs(seen) do through_select = through_select + 1 end
    local rest = {}
    for i, q in ipairs({q1, q2}) do
      rest[i] = aio.spawn(function()
        while true do
          local v = q:get()
          if v == nil then return end
          got(v)
        end
      end)
    end
    aio.gather(producers)
    q1:close(); q2:close()
    aio.gather(rest)
    assert.is_true(through_select > N / 10, tostring(through_select))
    out:close()
    drain:await()
    for p = 1, 2 do
      for i = 1, N / 2 do
        assert(seen[p * 1e6 + i], "item " .. (p * 1e6 + i) .. " lost")
      end
    end
    for k in pairs(sent) do
      assert.are.equal(1, outs[k], "put " .. k .. " not delivered once")
    end
    for k in pairs(outs) do assert(sent[k], "put " .. k .. " not reported") end
  end)
end)

-- Stopped at its wait by a cancel or an enclosing aio.timeout, a select
-- or a future's await takes nothing: what it waited for reaches the
-- next waiter.
for _, how in ipairs({"cancel", "timeout"}) do
  describe("selects and futures stopped by " .. how .. " #safety", function()
    after_each(assert_no_tasks)

    local function stop(wait)
      local a
      if how == "cancel" then a = aio.spawn(wait)
      else a = aio.spawn(function() return aio.timeout(0.02, wait) end) end
      aio.sleep(0)
      assert.are.equal("pending", a:status())
      if how == "cancel" then a:cancel() end
      local ok, e = pcall(a.await, a)
      assert.is_false(ok, "the wait was not stopped")
      if how == "cancel" then assert.is_true(aio.is_cancelled(e), tostring(e))
      else assert.is_true(aio.is_timeout(e), tostring(e)) end
    end

    it("a get case leaves the item to the next getter", function()
      local q1, q2 = aio.queue(), aio.queue()
      stop(function() return aio.select{{get = q1}, {get = q2}} end)
      local b = aio.spawn(function() return q2:get() end)
      aio.sleep(0)
      q2:put("item")
      assert.are.equal("item", aio.timeout(30, b.await, b))
      assert.is_true(q1:empty() and q2:empty())
    end)

    it("a put case leaves the slot to the next putter", function()
      local full = aio.queue(1)
      full:put(1)
      stop(function() return aio.select{{put = full, value = "lost"}} end)
      local b = aio.spawn(function() full:put(2); return "put" end)
      aio.sleep(0)
      assert.are.equal(1, full:get())
      assert.are.equal("put", aio.timeout(30, b.await, b))
      assert.are.equal(2, full:get())
      assert.is_true(full:empty())
    end)

    it("future:await leaves the future to the others", function()
      local f = aio.future()
      stop(function() return f:await() end)
      local b = aio.spawn(function() return f:await() end)
      aio.sleep(0)
      f:set("v")
      assert.are.equal("v", aio.timeout(30, b.await, b))
    end)
  end)
end
