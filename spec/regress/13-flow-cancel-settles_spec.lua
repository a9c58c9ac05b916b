-- Issue 13: when gather (fail-fast or cancelled), a group or wait_for
-- cancels tasks, it returns or raises only once those tasks have
-- finished their cleanup (as asyncio's TaskGroup does).
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- A task body that, when cancelled, cleans up for a while (shielded, so
-- it can wait) and then re-raises; log records what happened. The
-- optional event is set when its cleanup starts.
local function slow_cleaner(log, name, cleaning)
  return function()
    local ok, e = pcall(aio.sleep, 60)
    if cleaning then cleaning:set() end
    aio.shielded(function() aio.sleep(0.05) end)
    log[#log + 1] = name .. " cleaned"
    if not ok then error(e, 0) end
  end
end

local function failing(d, msg)
  return function() aio.sleep(d); error(msg, 0) end
end

describe("cancelled tasks have finished when the canceller returns #safety", function()
  after_each(assert_no_tasks)

  it("aio.gather fail-fast waits for the cancelled siblings", function()
    local log = {}
    local sib = aio.spawn(slow_cleaner(log, "sib"))
    local ok, e = pcall(aio.gather, failing(0.01, "boom"), sib)
    assert.is_false(ok)
    assert.are.equal("boom", aio.is_error(e) and e.value or e)
    assert.are.same({"sib cleaned"}, log)
    assert.is_true(sib:done())
    assert.is_true(sib:cancelled())
  end)

  it("a cancelled aio.gather waits for the tasks it cancels", function()
    local log = {}
    local gatherer = aio.spawn(function()
      aio.gather(slow_cleaner(log, "a"), slow_cleaner(log, "b"))
    end)
    aio.sleep(0.01)
    gatherer:cancel()
    local ok, e = pcall(gatherer.await, gatherer)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e), tostring(e))
    table.sort(log)
    assert.are.same({"a cleaned", "b cleaned"}, log)
  end)

  it("aio.gather_all under a timeout waits for the tasks it cancels", function()
    local log = {}
    local ok, e = pcall(aio.timeout, 0.02, aio.gather_all,
                        slow_cleaner(log, "a"))
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e), tostring(e))
    assert.are.same({"a cleaned"}, log)
  end)

  it("a second cancel while gather settles still waits and raises it", function()
    local log = {}
    local cleaning = aio.event()
    local gatherer = aio.spawn(function()
      aio.gather(failing(0.01, "boom"), slow_cleaner(log, "sib", cleaning))
    end)
    -- Not a timed sleep: on a loaded machine the failure and a timer
    -- could wake together and the cancel come before gather saw "boom".
    cleaning:wait()                       -- gather is settling now
    gatherer:cancel()
    local ok, e = pcall(gatherer.await, gatherer)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e), tostring(e))
    assert.are.same({"sib cleaned"}, log)
  end)

  it("aio.wait_for's timeout waits for the cancelled task", function()
    local log = {}
    local t = aio.spawn(slow_cleaner(log, "t"))
    local ok, e = pcall(aio.wait_for, t, 0.02)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e), tostring(e))
    assert.is_true(t:done())
    assert.are.same({"t cleaned"}, log)
  end)

  it("a cancelled aio.wait_for waits for its task", function()
    local log = {}
    local t = aio.spawn(slow_cleaner(log, "t"))
    local waiter = aio.spawn(function() return aio.wait_for(t, 60) end)
    aio.sleep(0.01)
    waiter:cancel()
    local ok, e = pcall(waiter.await, waiter)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e), tostring(e))
    assert.is_true(t:done())
    assert.are.same({"t cleaned"}, log)
  end)

  it("aio.group raises a child error after the siblings cleaned up", function()
    local log = {}
    local ok, e = pcall(aio.group, function(g)
      g:spawn(failing(0.01, "boom"))
      g:spawn(slow_cleaner(log, "sib"))
    end)
    assert.is_false(ok)
    assert.are.same({"sib cleaned"}, log)
    assert.matches("boom", tostring(e))
  end)

  it("a cancelled aio.group waits for its children", function()
    local log = {}
    local owner = aio.spawn(function()
      aio.group(function(g)
        g:spawn(slow_cleaner(log, "a"))
        g:spawn(slow_cleaner(log, "b"))
      end)
    end)
    aio.sleep(0.01)
    owner:cancel()
    assert.is_false(pcall(owner.await, owner))
    table.sort(log)
    assert.are.same({"a cleaned", "b cleaned"}, log)
  end)
end)
