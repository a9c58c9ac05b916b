local aio = require "luaio"

local function after(d, v)
  return function() aio.sleep(d); return v end
end

local function failing(d, msg)
  return function() aio.sleep(d); error(msg, 0) end
end

-- Run one task after the other, a loop turn apart: completions in a
-- known order without timers (timers of 0.01 s and 0.03 s set in a
-- row can fire out of order when a loaded machine stalls in between).
local function release_in_order(events)
  return aio.spawn(function()
    for i, e in ipairs(events) do
      if i > 1 then aio.sleep(0) end
      e:set()
    end
  end)
end

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("aio.gather", function()
  after_each(assert_no_tasks)

  it("returns one result per task in input order", function()
    local t = aio.spawn(after(0.01, "t"))
    assert.are.same({"a", "b", nil, "t"},
      {aio.gather(after(0.03, "a"), after(0.01, "b"), function() end, t)})
  end)

  it("accepts a list", function()
    assert.are.same({1, 2}, {aio.gather({after(0.01, 1), after(0, 2)})})
  end)

  it("raises the first error and cancels the others", function()
    local slow = aio.spawn(after(60, "never"))
    local ok, e = pcall(aio.gather, slow, failing(0.01, "bad"))
    assert.is_false(ok)
    assert.are.equal("bad", e.message)
    aio.sleep(0)
    assert.is_true(slow:cancelled())
  end)

  it("collects errors in place with gather_all", function()
    local a, b = aio.gather_all(after(0.01, 1), failing(0, "x"))
    assert.are.equal(1, a)
    assert.is_true(aio.is_error(b))
    assert.are.equal("x", b.message)
  end)

  it("cancels its children when the gathering task is cancelled", function()
    local child = aio.spawn(after(60, 1))
    local g = aio.spawn(function() return aio.gather(child) end)
    aio.sleep(0.01)
    g:cancel()
    assert.is_false(pcall(g.await, g))
    aio.sleep(0)
    assert.is_true(child:cancelled())
  end)

  it("returns at once with no tasks", function()
    assert.are.equal(0, select("#", aio.gather()))
  end)

  it("rejects what is not a task or function", function()
    assert.has_error(function() aio.gather(after(0, 1), 42) end,
      "bad argument #2 to 'aio.gather' (task or function expected, got number)")
    aio.sleep(0.01)
  end)
end)

describe("aio.wait", function()
  after_each(assert_no_tasks)

  it("waits for all by default", function()
    local ts = {aio.spawn(after(0.02, 1)), aio.spawn(after(0.01, 2))}
    local done, pending = aio.wait(ts)
    assert.are.equal(2, #done)
    assert.are.equal(0, #pending)
    assert.are.equal(ts[1], done[1])
  end)

  -- The task that must still be pending sleeps a minute (and is
  -- cancelled after), so no stall of a loaded machine can end it first.
  it("returns at the first completion", function()
    local ts = {aio.spawn(after(60, 1)), aio.spawn(after(0.01, 2))}
    local done, pending = aio.wait(ts, {return_when = "first"})
    assert.are.same({ts[2]}, done)
    assert.are.same({ts[1]}, pending)
    assert.is_false(ts[1]:done())          -- never cancels the pending
    ts[1]:cancel()
    pcall(ts[1].await, ts[1])
  end)

  it("returns at the first error", function()
    local ts = {aio.spawn(after(60, 1)), aio.spawn(failing(0.01, "e"))}
    local done, pending = aio.wait(ts, {return_when = "first_error"})
    assert.are.same({ts[2]}, done)
    assert.are.equal(1, #pending)
    assert.is_false(ts[1]:done())
    ts[1]:cancel()
    pcall(ts[1].await, ts[1])
    assert.is_false(pcall(ts[2].await, ts[2]))
  end)

  it("stops waiting at the timeout", function()
    -- ts[2] ends in the turn the wait starts in, before any timer can
    -- fire (a timer of 0.01 s could fire with the timeout after a stall)
    local ts = {aio.spawn(after(60, 1)), aio.spawn(function() return 2 end)}
    local done, pending = aio.wait(ts, {timeout = 1})
    assert.are.same({ts[2]}, done)
    assert.are.same({ts[1]}, pending)
    ts[1]:cancel()
    pcall(ts[1].await, ts[1])
  end)

  it("rejects bad options", function()
    assert.has_error(function() aio.wait(5) end,
      "bad argument #1 to 'aio.wait' (table expected, got number)")
    assert.has_error(function() aio.wait({}, {return_when = "some"}) end,
      "bad argument #2 to 'aio.wait' (return_when must be 'all', 'first' "
      .. "or 'first_error')")
  end)
end)

describe("aio.as_completed", function()
  after_each(assert_no_tasks)

  it("yields tasks in completion order", function()
    local ts, go = {}, {}
    for i = 1, 3 do
      go[i] = aio.event()
      ts[i] = aio.spawn(function() go[i]:wait(); return i end)
    end
    local releaser = release_in_order({go[2], go[3], go[1]})
    local got = {}
    for t in aio.as_completed(ts) do got[#got + 1] = t:result() end
    assert.are.same({2, 3, 1}, got)
    releaser:await()
  end)

  it("raises a timeout when the overall deadline passes", function()
    -- ts[1] ends in the turn the wait starts in, before any timer can
    -- fire (a timer of 0.01 s could fire with the timeout after a stall)
    local ts = {aio.spawn(function() return 1 end), aio.spawn(after(60, 2))}
    local got = {}
    local ok, e = pcall(function()
      for t in aio.as_completed(ts, {timeout = 1}) do got[#got + 1] = t:result() end
    end)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    assert.are.same({1}, got)
    ts[2]:cancel()
    pcall(ts[2].await, ts[2])
  end)

  it("rejects a non-table", function()
    assert.has_error(function() aio.as_completed("x") end,
      "bad argument #1 to 'aio.as_completed' (table expected, got string)")
  end)
end)

describe("aio.timeout", function()
  after_each(assert_no_tasks)

  it("returns the function's results in time", function()
    assert.are.same({5, 6}, {aio.timeout(60, function(a) aio.sleep(0.01); return a, a + 1 end, 5)})
  end)

  it("raises a timeout error and runs <close> variables", function()
    local closed = false
    local ok, e = pcall(aio.timeout, 0.02, function()
      local _ <close> = setmetatable({}, {__close = function() closed = true end})
      aio.sleep(60)
    end)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    assert.is_false(aio.is_cancelled(e))
    assert.matches("timed out after 0.02", tostring(e))
    assert.is_true(closed)
    aio.sleep(0)              -- the task is not left cancelled
  end)

  it("lets the inner, shorter deadline win", function()
    local inner_timed_out
    local r = aio.timeout(60, function()
      local ok, e = pcall(aio.timeout, 0.01, aio.sleep, 60)
      inner_timed_out = not ok and aio.is_timeout(e)
      aio.sleep(0.01)
      return "outer ok"
    end)
    assert.are.equal("outer ok", r)
    assert.is_true(inner_timed_out)
  end)

  it("reports an outer expiry as the outer's", function()
    local inner_err
    local ok, e = pcall(aio.timeout, 0.02, function()
      local ok2, e2 = pcall(aio.timeout, 60, aio.sleep, 60)
      inner_err = e2
      error(e2)
    end)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(inner_err))   -- passed through the inner
    assert.is_true(aio.is_timeout(e))
    assert.are.equal(0.02, e.seconds)
  end)

  it("lets a task cancel pass through", function()
    local t = aio.spawn(function() return aio.timeout(60, aio.sleep, 60) end)
    aio.sleep(0.01)
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e))
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() aio.timeout(-1, print) end,
      "bad argument #1 to 'aio.timeout' (seconds must be >= 0, got -1.0)")
    assert.has_error(function() aio.timeout(1, 2) end,
      "bad argument #2 to 'aio.timeout' (function expected, got number)")
  end)
end)

describe("aio.wait_for", function()
  after_each(assert_no_tasks)

  it("returns the results in time", function()
    assert.are.equal("y", aio.wait_for(aio.spawn(after(0.01, "y")), 60))
  end)

  it("cancels the task at the deadline", function()
    local t = aio.spawn(after(60, "x"))
    local ok, e = pcall(aio.wait_for, t, 0.02)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    aio.sleep(0)
    assert.is_true(t:cancelled())
  end)

  it("rejects a non-task", function()
    assert.has_error(function() aio.wait_for(1, 1) end,
      "bad argument #1 to 'aio.wait_for' (task expected, got number)")
  end)
end)

describe("aio.shield / aio.shielded", function()
  after_each(assert_no_tasks)

  it("shield: cancelling the waiter does not cancel the task", function()
    -- inner ends only when told, after the cancel: no stall can let it
    -- finish first and hand outer its result
    local go = aio.event()
    local inner = aio.spawn(function() go:wait(); return "done" end)
    local outer = aio.spawn(function() return aio.shield(inner) end)
    aio.sleep(0.01)
    outer:cancel()
    assert.is_false(pcall(outer.await, outer))
    assert.is_false(inner:done())
    go:set()
    assert.are.equal("done", inner:await())
  end)

  it("shield spawns a function", function()
    assert.are.equal(3, aio.shield(function(a) aio.sleep(0); return a end, 3))
  end)

  it("shielded: cleanup may wait after a cancel", function()
    local cleaned = false
    local t = aio.spawn(function()
      pcall(aio.sleep, 60)
      aio.shielded(function() aio.sleep(0.01); cleaned = true end)
      aio.sleep(60)                  -- the held-back cancel lands here
    end)
    aio.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.is_true(cleaned)
    assert.is_true(t:cancelled())
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() aio.shield(1) end,
      "bad argument #1 to 'aio.shield' (task or function expected, got number)")
    assert.has_error(function() aio.shielded(1) end,
      "bad argument #1 to 'aio.shielded' (function expected, got number)")
  end)
end)

describe("aio.group", function()
  after_each(assert_no_tasks)

  it("waits for every child and returns the body's results", function()
    local finished = 0
    local r = aio.group(function(g)
      for i = 1, 3 do g:spawn(function() aio.sleep(0.01 * i); finished = finished + 1 end) end
      return "body"
    end)
    assert.are.equal("body", r)
    assert.are.equal(3, finished)
  end)

  it("cancels siblings on the first error and reports the others", function()
    local sibling
    local ok, e = pcall(aio.group, function(g)
      -- Both woken in one turn (not by timers of 0.01 s set a moment
      -- apart, which a stall can put in different turns)
      local go = aio.event()
      sibling = g:spawn(after(60, 1))
      g:spawn(function() go:wait(); error("first", 0) end)
      g:spawn(function() go:wait(); error("second", 0) end)
      aio.sleep(0)                          -- all three wait now
      go:set()
    end)
    assert.is_false(ok)
    assert.are.equal("first", e.message)
    assert.are.equal(1, #e.errors)
    assert.are.equal("second", e.errors[1].message)
    assert.is_true(sibling:cancelled())
  end)

  it("interrupts the body when a child fails, and raises the child's error",
    function()
      local body_saw, after_join
      local ok, e = pcall(aio.group, function(g)
        g:spawn(failing(0.01, "child failed"))
        local q = aio.queue()
        q:put_nowait(1)
        local ok2, e2 = pcall(q.join, q)           -- nothing else would end it
        body_saw = not ok2 and aio.is_cancelled(e2)
        error(e2, 0)                               -- passes the cancel on
      end)
      assert.is_false(ok)
      assert.are.equal("child failed", e.message)
      assert.is_true(body_saw)
      -- the cancellation ended at the group: the caller runs on
      after_join = pcall(aio.sleep, 0.01)
      assert.is_true(after_join)
    end)

  it("still cancels the body's caller when the caller itself is cancelled",
    function()
      local inner
      local outer = aio.spawn(function()
        aio.group(function(g)
          inner = g:spawn(after(60, 1))
          aio.sleep(60)
        end)
      end)
      aio.sleep(0.01)
      outer:cancel()
      local ok, e = pcall(outer.await, outer)
      assert.is_false(ok)
      assert.is_true(aio.is_cancelled(e))
      assert.is_true(inner:cancelled())
    end)

  it("cancels and awaits the children when the body fails", function()
    local child
    local ok, e = pcall(aio.group, function(g)
      child = g:spawn(after(60, 1))
      aio.sleep(0)
      error("body failed", 0)
    end)
    assert.is_false(ok)
    assert.are.equal("body failed", e)
    assert.is_true(child:cancelled())
  end)

  it("cancelling the parent cancels the children, then waits", function()
    local closed = 0
    local parent = aio.spawn(function()
      aio.group(function(g)
        for _ = 1, 3 do
          g:spawn(function()
            local _ <close> = setmetatable({}, {__close = function() closed = closed + 1 end})
            aio.sleep(60)
          end)
        end
      end)
    end)
    aio.sleep(0.01)
    parent:cancel()
    assert.is_false(pcall(parent.await, parent))
    assert.are.equal(3, closed)
  end)

  it("refuses spawns once closed, and bad arguments", function()
    local saved
    aio.group(function(g) saved = g end)
    assert.has_error(function() saved:spawn(print) end,
      "group:spawn: the group is closed")
    assert.has_error(function() aio.group(1) end,
      "bad argument #1 to 'aio.group' (function expected, got number)")
  end)
end)
