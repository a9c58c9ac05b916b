-- Issue 13: every wait of the toolkit (core, flow, sync), stopped at its
-- first await by a cancel and by a timeout: the task ends with the right
-- error, nothing it waited for is lost (an item, a slot, a permit, a
-- token, a notify, a wake-up reaches the next waiter), nothing is left
-- held, and a program that leaves tasks in every wait exits.
local aio = require "luaio"
local helpers = require "spec.helpers"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- Run wait() in a task a; queue(), if given, starts tasks that wait
-- behind it; then stop a by `how` ("cancel" or "timeout") and check the
-- error it raised. Returns what queue() returned. The tasks queue() spawns
-- run right after a, in the same loop turn, so they wait behind a before
-- its 0.05 s timeout can fire (a turn later a stall could let it fire
-- first, and the test check nothing).
local function stop_first(how, wait, queue)
  local a
  if how == "cancel" then a = aio.spawn(wait)
  else a = aio.spawn(function() return aio.timeout(0.05, wait) end) end
  local behind = queue and queue() or nil
  aio.sleep(0)
  assert.are.equal("pending", a:status())
  aio.sleep(0)
  if how == "cancel" then a:cancel() end
  local ok, e = pcall(a.await, a)
  assert.is_false(ok, "the wait was not stopped")
  if how == "cancel" then assert.is_true(aio.is_cancelled(e), tostring(e))
  else assert.is_true(aio.is_timeout(e), tostring(e)) end
  return behind
end

-- Await t, bounded: a lost wake-up fails the test instead of hanging.
local function settle(t)
  return aio.timeout(30, t.await, t)
end

-- A task body that cleans up (logging) when cancelled, then re-raises.
local function cleaner(log, name)
  return function()
    local ok, e = pcall(aio.sleep, 60)
    aio.shielded(function() aio.sleep(0.01) end)
    log[#log + 1] = name
    if not ok then error(e, 0) end
  end
end

local queues = {
  queue = aio.queue, lifo_queue = aio.lifo_queue,
  priority_queue = aio.priority_queue,
}

for _, how in ipairs({"cancel", "timeout"}) do
  describe("toolkit waits stopped by " .. how .. " #safety", function()
    after_each(assert_no_tasks)

    it("aio.sleep", function()
      stop_first(how, function() aio.sleep(60) end)
    end)

    for name, make in pairs(queues) do
      it(name .. ": a stopped getter swallows no item", function()
        local q = make()
        local b = stop_first(how, function() return q:get() end, function()
          return aio.spawn(function() return q:get() end)
        end)
        q:put("x")
        assert.are.equal("x", settle(b))
        q:put("y")
        assert.are.equal("y", q:get_nowait())
        assert.are.equal(0, q:size())
      end)

      it(name .. ": a stopped putter takes no slot and puts nothing", function()
        local q = make(1)
        q:put("a1")
        local b = stop_first(how, function() q:put("a2") end, function()
          return aio.spawn(function() q:put("b"); return "put" end)
        end)
        assert.are.equal("a1", q:get())
        assert.are.equal("put", settle(b))
        assert.are.equal("b", q:get_nowait())
        q:put_nowait("c")
        assert.are.equal("c", q:get_nowait())
      end)

      it(name .. ": a stopped joiner leaves the others woken", function()
        local q = make()
        q:put(1)
        local b = stop_first(how, function() q:join() end, function()
          return aio.spawn(function() q:join(); return "joined" end)
        end)
        q:get()
        q:task_done()
        assert.are.equal("joined", settle(b))
      end)
    end

    for _, kind in ipairs({"semaphore", "bounded_semaphore", "lock"}) do
      it(kind .. ": a stopped waiter loses no permit", function()
        local s = kind == "lock" and aio.lock() or aio[kind](1)
        local held = s:acquire()
        local b = stop_first(how, function() s:acquire() end, function()
          return aio.spawn(function()
            local _ <close> = s:acquire()
            return "got"
          end)
        end)
        held:release()
        assert.are.equal("got", settle(b))
        assert.are.equal(1, s:value())
        assert.is_false(s:locked())
      end)

      it(kind .. ": with() stopped while waiting", function()
        local s = kind == "lock" and aio.lock() or aio[kind](1)
        local held = s:acquire()
        stop_first(how, function() s:with(function() error("ran") end) end)
        held:release()
        assert.are.equal(1, s:value())
        assert.are.equal("ok", s:with(function() return "ok" end))
      end)
    end

    it("event: a stopped waiter leaves the others woken", function()
      local e = aio.event()
      local b = stop_first(how, function() e:wait() end, function()
        return aio.spawn(function() return e:wait() end)
      end)
      e:set()
      assert.is_true(settle(b))
    end)

    it("condition: a stopped waiter takes no notify and leaves the lock free", function()
      local c = aio.condition()
      local b = stop_first(how, function()
        local _ <close> = c:acquire()
        c:wait()
      end, function()
        return aio.spawn(function()
          local _ <close> = c:acquire()
          c:wait()
          return "woke"
        end)
      end)
      assert.is_false(c:locked())
      c:with(function() c:notify(1) end)
      assert.are.equal("woke", settle(b))
      assert.is_false(c:locked())
    end)

    it("condition: wait_for stopped while waiting", function()
      local c = aio.condition()
      stop_first(how, function()
        local _ <close> = c:acquire()
        c:wait_for(function() return false end)
      end)
      assert.is_false(c:locked())
    end)

    it("condition: stopped while re-taking the lock, it passes the notify on", function()
      local c = aio.condition()
      local a = aio.spawn(function()
        local _ <close> = c:acquire()
        if how == "timeout" then return aio.timeout(0.05, c.wait, c) end
        c:wait()
      end)
      local b = aio.spawn(function()        -- waits behind a, same turn
        local _ <close> = c:acquire()
        c:wait()
        return "woke"
      end)
      aio.sleep(0)
      local held = c:acquire()             -- a must wait for the lock again
      c:notify(1)                          -- a is notified, b not
      if how == "cancel" then a:cancel() else aio.sleep(0.1) end
      held:release()
      local ok, e = pcall(settle, a)
      assert.is_false(ok)
      if how == "cancel" then assert.is_true(aio.is_cancelled(e), tostring(e))
      else assert.is_true(aio.is_timeout(e), tostring(e)) end
      assert.are.equal("woke", settle(b))
      assert.is_false(c:locked())
    end)

    it("rate_limiter: a stopped waiter loses no token", function()
      -- the next token comes in 1 s, long after the stop (a 0.05 s
      -- token could reach the waiter first after a stall)
      local r = aio.rate_limiter(1, 1, 1)
      r:acquire()                          -- the burst
      local b = stop_first(how, function() r:acquire() end, function()
        return aio.spawn(function() r:acquire(); return "got" end)
      end)
      assert.are.equal("got", settle(b))
    end)

    it("task:await: a stopped awaiter leaves the task and other awaiters", function()
      local e = aio.event()
      local t = aio.spawn(function() return e:wait() end)
      local b = stop_first(how, function() t:await() end, function()
        return aio.spawn(function() return t:await() end)
      end)
      assert.are.equal("pending", t:status())
      e:set()
      assert.is_true(settle(b))
    end)

    it("aio.shield: the shielded task carries on", function()
      local e = aio.event()
      local t = aio.spawn(function() return e:wait() end)
      stop_first(how, function() aio.shield(t) end)
      assert.are.equal("pending", t:status())
      e:set()
      assert.is_true(settle(t))
    end)

    it("aio.gather: the gathered tasks are done when it raises", function()
      local log = {}
      stop_first(how, function()
        aio.gather(cleaner(log, "a"), cleaner(log, "b"))
      end)
      table.sort(log)
      assert.are.same({"a", "b"}, log)
    end)

    it("aio.gather_all: the gathered tasks are done when it raises", function()
      local log = {}
      stop_first(how, function() aio.gather_all(cleaner(log, "a")) end)
      assert.are.same({"a"}, log)
    end)

    it("aio.wait: the waited tasks are left running", function()
      local e = aio.event()
      local t = aio.spawn(function() return e:wait() end)
      stop_first(how, function() aio.wait({t}) end)
      assert.are.equal("pending", t:status())
      e:set()
      assert.is_true(settle(t))
    end)

    it("aio.as_completed: a stopped caller leaves the task to the next", function()
      local e = aio.event()
      local t = aio.spawn(function() return e:wait() end)
      local it = aio.as_completed({t})
      local b = stop_first(how, function() it() end, function()
        return aio.spawn(function() return it() end)
      end)
      e:set()
      assert.are.equal(t, settle(b))
      assert.is_nil(it())
    end)

    it("aio.wait_for: the task is done when it raises", function()
      local log = {}
      local t = aio.spawn(cleaner(log, "t"))
      stop_first(how, function() aio.wait_for(t, 60) end)
      assert.is_true(t:done())
      assert.are.same({"t"}, log)
    end)

    it("aio.timeout: the inner wait is stopped", function()
      stop_first(how, function() aio.timeout(60, aio.sleep, 60) end)
    end)

    it("aio.group: the children are done when it raises", function()
      local log = {}
      stop_first(how, function()
        aio.group(function(g)
          g:spawn(cleaner(log, "a"))
          g:spawn(cleaner(log, "b"))
        end)
      end)
      table.sort(log)
      assert.are.same({"a", "b"}, log)
    end)
  end)
end

describe("a program leaving a task in every wait #safety", function()
  it("exits, running the cleanups", function()
    local path = helpers.script([[
      local aio = require "luaio"
      local q, full = aio.queue(), aio.queue(1)
      full:put(1)
      local pq = aio.priority_queue()
      local s, l = aio.semaphore(0), aio.lock()
      local held = l:acquire()
      local e, c = aio.event(), aio.condition()
      local r = aio.rate_limiter(1, 1000, 1)
      r:acquire()
      local never = aio.spawn(function() e:wait() end)
      local it = aio.as_completed({never})
      local waits = {
        function() aio.sleep(60) end,
        function() q:get() end, function() full:put(2) end,
        function() pq:get() end, function() full:join() end,
        function() s:acquire() end, function() l:acquire() end,
        function() e:wait() end,
        function() local _ <close> = c:acquire(); c:wait() end,
        function() r:acquire() end,
        function() never:await() end, function() aio.shield(never) end,
        function() aio.gather(function() aio.sleep(60) end) end,
        function() aio.wait({never}) end, function() it() end,
        function() aio.wait_for(never, 60) end,
        function() aio.timeout(60, aio.sleep, 60) end,
        function() aio.group(function(g) g:spawn(aio.sleep, 60) end) end,
      }
      local cleaned = 0
      for _, w in ipairs(waits) do
        aio.spawn(function()
          local _ <close> = setmetatable({}, {__close = function()
            cleaned = cleaned + 1
            if cleaned == #waits then print("all cleaned") end
          end})
          w()
        end)
      end
      aio.sleep(0.05)
      print("main done", #aio.tasks())
    ]])
    local rc, out = helpers.sh("timeout 120 " .. helpers.luaio .. " " .. path
                               .. " 2>&1")
    os.remove(path)
    assert.are.equal(0, rc, out)
    assert.matches("main done", out, 1, true)
    assert.matches("all cleaned", out, 1, true)
  end)
end)
