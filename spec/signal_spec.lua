local aio = require "luaio"
local helpers = require "spec.helpers"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

local PID = io.open("/proc/self/stat"):read("n")

-- Send a signal to this process (delivered asynchronously).
local function send(sig)
  assert(os.execute("kill -" .. sig .. " " .. PID))
end

-- Wait until task t has started and waits (not a guessed time).
local function until_waiting(t)
  repeat aio.sleep(0) until t:info().state ~= "ready"
  assert.are.equal("waiting", t:info().state)
end

describe("aio.signal", function()
  after_each(assert_no_tasks)

  it("delivers a signal to a waiting task, by name", function()
    local w <close> = aio.signal("SIGUSR1")
    local t = aio.spawn(function() return w:wait() end)
    until_waiting(t)
    send("USR1")
    assert.are.equal("SIGUSR1", aio.wait_for(t, 60))
  end)

  it("keeps a delivery for the next wait", function()
    local w <close> = aio.signal("USR2")
    -- a second watcher's waiter tells when the delivery is in (every
    -- watcher gets it at once), not a guessed 50 ms
    local probe <close> = aio.signal("USR2")
    local seen = aio.spawn(function() return probe:wait() end)
    until_waiting(seen)
    send("USR2")
    assert.are.equal("SIGUSR2", aio.wait_for(seen, 60))
    assert.are.equal("SIGUSR2", aio.timeout(60, w.wait, w))
  end)

  it("gives every watcher of one signal each delivery", function()
    local a <close> = aio.signal("SIGHUP")
    local b <close> = aio.signal("SIGHUP")
    local ta = aio.spawn(function() return a:wait() end)
    local tb = aio.spawn(function() return b:wait() end)
    until_waiting(ta)
    until_waiting(tb)
    send("HUP")
    assert.are.same({"SIGHUP", "SIGHUP"},
                    {aio.wait_for(ta, 60), aio.wait_for(tb, 60)})
  end)

  it("iterates with each() until the watcher is closed", function()
    local w = aio.signal("SIGUSR1")
    local got = 0
    local t = aio.spawn(function()
      for sig in w:each() do
        assert.are.equal("SIGUSR1", sig)
        got = got + 1
        if got == 2 then w:close() end
      end
      return "ended"
    end)
    -- the second signal only once the first is in: two sent before
    -- the first is handled are one pending signal to the kernel
    send("USR1")
    while got < 1 do aio.sleep(0.01) end
    send("USR1")
    assert.are.equal("ended", aio.wait_for(t, 60))
    assert.are.equal(2, got)
  end)

  it("wakes a waiting task with an error when closed", function()
    local w = aio.signal("SIGUSR2")
    local t = aio.spawn(function() return w:wait() end)
    until_waiting(t)
    w:close()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.matches("the signal watcher was closed", tostring(e))
    assert.has_error(function() w:wait() end,
                     "signal:wait: the signal watcher is closed")
  end)

  it("can be cancelled and timed out", function()
    local w <close> = aio.signal("SIGUSR1")
    local ok, e = pcall(aio.timeout, 0.05, w.wait, w)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    local t = aio.spawn(function() return w:wait() end)
    until_waiting(t)
    t:cancel()
    local ok2, e2 = pcall(t.await, t)
    assert.is_false(ok2)
    assert.is_true(aio.is_cancelled(e2))
  end)

  it("refuses unknown and uncatchable signals", function()
    assert.has_error(function() aio.signal("SIGNOPE") end,
      "bad argument #1 to 'aio.signal' (unknown or uncatchable signal "
      .. "'SIGNOPE' (e.g. \"SIGHUP\"))")
    assert.has_error(function() aio.signal("SIGKILL") end)
    assert.has_error(function() aio.signal("SIGSTOP") end)
    assert.has_error(function() aio.signal() end,
      "bad argument #1 to 'aio.signal' (string expected, got no value)")
    assert.has_error(function() aio.signal("SIGHUP\0x") end)
  end)

  it("does not keep the program alive while nobody waits", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local w = aio.signal("SIGHUP")
      print("done")
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("done", out)
  end)

  it("gives SIGINT back its default meaning once the watcher closes",
     function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local pid = io.open("/proc/self/stat"):read("n")
      local w = aio.signal("SIGINT")
      io.popen("kill -INT " .. pid):close()
      print("watcher got", w:wait())
      w:close()
      local c <close> = setmetatable({}, {__close = function()
        print("cleanup ran")
      end})
      io.popen("kill -INT " .. pid):close()
      aio.sleep(10)
      print("not reached")
    ]])
    assert.are.equal(130, rc, out)
    assert.matches("watcher got\tSIGINT", out)
    assert.matches("cleanup ran", out)
    assert.not_matches("not reached", out)
  end)

  it("gives SIGTERM back too, after two watchers", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local pid = io.open("/proc/self/stat"):read("n")
      local a, b = aio.signal("SIGTERM"), aio.signal("SIGTERM")
      io.popen("kill -TERM " .. pid):close()
      print("got", a:wait(), b:wait())
      a:close()
      io.popen("kill -TERM " .. pid):close()
      print("b still got", b:wait())
      b:close()
      io.popen("kill -TERM " .. pid):close()
      aio.sleep(10)
      print("not reached")
    ]])
    assert.are.equal(143, rc, out)
    assert.matches("got\tSIGTERM\tSIGTERM", out)
    assert.matches("b still got\tSIGTERM", out)
    assert.not_matches("not reached", out)
  end)
end)
