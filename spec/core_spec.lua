local aio = require "luaio"
local helpers = require "spec.helpers"

-- A spec leaves no task behind: everything it spawned has finished.
local function assert_no_tasks()
  collectgarbage()
  local live = aio.tasks()
  assert.are.equal(1, #live, "tasks left running")  -- the busted task
  assert.are.equal(aio.current(), live[1])
end

describe("aio.spawn / task:await", function()
  after_each(assert_no_tasks)

  it("returns the task's results, multiple and with nil holes", function()
    local t = aio.spawn(function(a, b) return a + b, nil, "x", nil end, 1, 2)
    local r = table.pack(t:await())
    assert.are.equal(4, r.n)
    assert.are.same({3, nil, "x", nil}, {r[1], r[2], r[3], r[4]})
  end)

  it("starts the task later, never inside the spawning call", function()
    local ran = false
    local t = aio.spawn(function() ran = true end)
    assert.is_false(ran)
    assert.are.equal("pending", t:status())
    t:await()
    assert.is_true(ran)
  end)

  it("passes arguments and returns zero results", function()
    local got
    local t = aio.spawn(function(...) got = table.pack(...) end, "a", nil, 3)
    assert.are.equal(0, select("#", t:await()))
    assert.are.equal(3, got.n)
  end)

  it("re-raises the task's error with its original traceback", function()
    local t = aio.spawn(function() error("boom") end)
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_error(e, "error"))
    assert.matches("core_spec.lua:%d+: boom", e.message)
    assert.matches("core_spec.lua", e.traceback)
    assert.are.equal("failed", t:status())
  end)

  it("awaits an already finished task", function()
    local t = aio.spawn(function() return 42 end)
    aio.sleep(0.01)
    assert.is_true(t:done())
    assert.are.equal(42, t:await())
    assert.are.equal(42, t:result())
  end)

  it("lets two tasks await the same task", function()
    local t = aio.spawn(function() aio.sleep(0.02); return "v" end)
    local a = aio.spawn(function() return t:await() end)
    local b = aio.spawn(function() return t:await() end)
    assert.are.equal("v", a:await())
    assert.are.equal("v", b:await())
  end)

  it("keeps the await chain in the traceback", function()
    local inner = aio.spawn(function() aio.sleep(0); error("deep") end)
    local outer = aio.spawn(function() return inner:await() end)
    local ok, e = pcall(outer.await, outer)
    assert.is_false(ok)
    assert.matches("deep", tostring(e))
    assert.matches("awaited by task 'task%-%d+'", e.traceback)
  end)

  it("rejects a non-function, naming the argument", function()
    assert.has_error(function() aio.spawn(42) end,
      "bad argument #1 to 'aio.spawn' (function expected, got number)")
  end)

  it("refuses to await outside a task", function()
    local t = aio.spawn(function() return 1 end)
    local co = coroutine.wrap(function() return pcall(t.await, t) end)
    local ok, err = co()
    assert.is_false(ok)
    assert.matches("not inside a luaio task", err)
    t:await()
  end)

  it("result() of an unfinished task is an error", function()
    local t = aio.spawn(function() aio.sleep(0.01) end)
    assert.has_error(function() t:result() end)
    t:await()
  end)

  it("has a settable name", function()
    local t = aio.spawn(function() end)
    assert.matches("^task%-%d+$", t.name)
    t.name = "worker"
    assert.are.equal("worker", t.name)
    assert.matches("worker", tostring(t))
    assert.has_error(function() t.name = 5 end)
    t:await()
  end)
end)

describe("task:cancel", function()
  after_each(assert_no_tasks)

  it("cancels a sleeping task: <close> runs, await raises cancelled",
     function()
    local closed = false
    local t = aio.spawn(function()
      local _ <close> = setmetatable({}, {__close = function() closed = true end})
      aio.sleep(10)
    end)
    aio.sleep(0)
    assert.is_true(t:cancel())
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e))
    assert.is_true(closed)
    assert.is_true(t:cancelled())
  end)

  it("is a no-op on a finished task", function()
    local t = aio.spawn(function() return 1 end)
    t:await()
    assert.is_false(t:cancel())
    assert.are.equal(1, t:result())
  end)

  it("cancels a task that never started", function()
    local ran = false
    local t = aio.spawn(function() ran = true end)
    t:cancel("stop it")
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal("stop it", e.message)
    assert.is_false(ran)
  end)

  it("delivers a swallowed cancellation again at the next wait", function()
    local caught = 0
    local t = aio.spawn(function()
      local ok = pcall(aio.sleep, 10)
      if not ok then caught = caught + 1 end
      aio.sleep(10)
    end)
    aio.sleep(0)
    t:cancel()
    assert.has_error(function() t:await() end)
    assert.are.equal(1, caught)
    assert.is_true(t:cancelled())
  end)

  it("cancels a task awaiting another, leaving the other alone", function()
    -- slow finishes only when told, after the cancel: a loop turn
    -- slower than any sleep cannot let it finish first
    local go = aio.event()
    local slow = aio.spawn(function() go:wait(); return "done" end)
    local waiter = aio.spawn(function() return slow:await() end)
    aio.sleep(0)
    waiter:cancel()
    assert.is_false(pcall(waiter.await, waiter))
    assert.is_true(aio.is_cancelled(waiter:error()))
    assert.is_false(slow:done())
    go:set()
    assert.are.equal("done", slow:await())
  end)
end)

describe("aio.sleep", function()
  after_each(assert_no_tasks)

  it("wakes tasks in time order", function()
    local order = {}
    local ts = {}
    -- 0.1 s apart: the three sleeps start one after the other, and a
    -- stall of a loaded machine in between must not reorder them
    for _, d in ipairs({0.3, 0.1, 0.2}) do
      ts[#ts + 1] = aio.spawn(function() aio.sleep(d); order[#order + 1] = d end)
    end
    for _, t in ipairs(ts) do t:await() end
    assert.are.same({0.1, 0.2, 0.3}, order)
  end)

  it("sleeps at least the time asked", function()
    local t0 = aio.now()
    aio.sleep(0.02)
    assert.is_true(aio.now() - t0 >= 0.019)
  end)

  it("runs 10,000 sleepers concurrently", function()
    local done = 0
    local t0 = aio.now()
    local ts = {}
    for i = 1, 10000 do
      ts[i] = aio.spawn(function() aio.sleep(0.2); done = done + 1 end)
    end
    for i = 1, 10000 do ts[i]:await() end
    assert.are.equal(10000, done)
    -- concurrent, not sequential (2,000 s): under valgrind on a loaded
    -- machine spawning them alone can take seconds
    assert.is_true(aio.now() - t0 < 60, "sleepers ran one by one")
  end)

  it("sleep(0) yields one loop turn to other tasks", function()
    local ran = false
    aio.spawn(function() ran = true end)
    aio.sleep(0)
    assert.is_true(ran)
  end)

  it("rejects bad durations, naming the argument", function()
    assert.has_error(function() aio.sleep(-1) end,
      "bad argument #1 to 'aio.sleep' (seconds must be >= 0, got -1.0)")
    assert.has_error(function() aio.sleep("x") end,
      "bad argument #1 to 'aio.sleep' (number of seconds expected, got string)")
    assert.has_error(function() aio.sleep() end)
    assert.has_error(function() aio.sleep(0/0) end)
  end)

  it("cannot be called from a plain coroutine", function()
    local co = coroutine.wrap(function() return pcall(aio.sleep, 0.01) end)
    local ok, err = co()
    assert.is_false(ok)
    assert.matches("aio.sleep: not inside a luaio task", err)
  end)

  it("cannot wait inside a non-yieldable call", function()
    local ok, err = pcall(table.sort, {3, 2, 1}, function(a, b)
      aio.sleep(0.001)
      return a < b
    end)
    assert.is_false(ok)
    assert.matches("cannot wait here", err)
  end)
end)

describe("aio.current / aio.tasks / aio.now", function()
  it("current() is the running task", function()
    local me
    local t = aio.spawn(function() me = aio.current() end)
    t:await()
    assert.are.equal(t, me)
  end)

  it("tasks() lists live tasks only", function()
    local t = aio.spawn(function() aio.sleep(0.01) end)
    local found = false
    for _, x in ipairs(aio.tasks()) do found = found or x == t end
    assert.is_true(found)
    t:await()
    for _, x in ipairs(aio.tasks()) do assert.are_not.equal(t, x) end
  end)

  it("tasks() lists oldest first, also after tasks in the middle finish",
     function()
    local ev = aio.event()
    local ts = {}
    for i = 1, 6 do
      ts[i] = aio.spawn(function() if i % 2 == 0 then ev:wait() end
                                   aio.sleep(0.01) end)
    end
    aio.gather(ts[1], ts[3], ts[5])   -- their slots get reused
    local mine = {}
    for _, x in ipairs(aio.tasks()) do
      for i, t in ipairs(ts) do if x == t then mine[#mine + 1] = i end end
    end
    assert.are.same({2, 4, 6}, mine)
    ev:set()
    aio.gather(ts[2], ts[4], ts[6])
  end)

  it("now() is monotonic", function()
    local a = aio.now()
    aio.sleep(0.001)
    assert.is_true(aio.now() > a)
  end)
end)

describe("errors", function()
  it("tell cancelled and timeout apart from script errors", function()
    local e = aio.error("timeout", "too slow")
    assert.is_true(aio.is_timeout(e))
    assert.is_false(aio.is_cancelled(e))
    assert.is_true(aio.is_error(e))
    assert.is_false(aio.is_error("plain string"))
    assert.are.equal("too slow", tostring(e))
  end)

  it("aio.error checks its arguments", function()
    assert.has_error(function() aio.error() end)
  end)
end)

describe("the luaio program", function()
  it("exits 0 on success and passes arguments", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      aio.sleep(0.01)
      print("args", select("#", ...), (...), arg[2], #arg)
    ]], "a b")
    assert.are.equal(0, rc)
    assert.matches("args\t2\ta\tb\t2", out)
  end)

  it("exits 1 with a traceback on a script error", function()
    local rc, out = helpers.run_luaio([[
      local function f() error("bad thing") end
      f()
    ]])
    assert.are.equal(1, rc)
    assert.matches("bad thing", out)
    assert.matches("stack traceback", out)
  end)

  it("reports an error nobody awaited", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      aio.spawn(function() error("forgotten") end)
      aio.sleep(0.01)
    ]])
    assert.are.equal(0, rc)
    assert.matches("nobody awaited.*forgotten", out)
  end)

  it("reports an unawaited error when the task is collected", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      aio.spawn(function() error("collected-err") end)
      aio.sleep(0.01)
      collectgarbage(); collectgarbage()
      io.stderr:write("after-gc\n")
      aio.sleep(0.01)
    ]])
    assert.are.equal(0, rc)
    assert.matches("nobody awaited.*collected%-err.*after%-gc", out)
    assert.is_nil(out:find("collected-err.*collected-err"))  -- once
  end)

  it("keeps a failed task's error while the task is referenced, however "
     .. "many collections run", function()
    -- The report rides on a finalizer object the task holds (its watch);
    -- it must not fire while the task can still be awaited, and tasks made
    -- long before they fail (an fs call set their wait detail) get it too.
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local dir = os.tmpname(); os.remove(dir); fs.mkdir(dir)
      local ts = {}
      for i = 1, 2000 do
        ts[i] = aio.spawn(function()
          aio.sleep(0.01)
          fs.read(dir .. "/missing" .. i)          -- sets a wait detail
        end)
      end
      local junk = {}
      for i = 1, 50000 do junk[i] = {i} end      -- objects made since
      aio.sleep(0.05)
      for _ = 1, 3 do collectgarbage() end
      io.stderr:write("collected\n")
      local failed = 0
      for i = 1, #ts do
        local ok, err = pcall(ts[i].await, ts[i])
        if not ok and tostring(err):find("ENOENT") then failed = failed + 1 end
      end
      print("failed " .. failed)
      ts = nil
      for _ = 1, 3 do collectgarbage() end
      fs.rmdir(dir)
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("failed 2000", out)
    assert.is_nil(out:find("nobody awaited", 1, true), out)
  end)

  it("reports a collected task's error once, also when it had a wait detail",
     function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local t = aio.spawn(function() fs.read("/nonexistent/detail-err") end)
      aio.sleep(0.05)
      t = nil
      collectgarbage(); collectgarbage()
      io.stderr:write("after-gc\n")
      aio.sleep(0.01)
    ]])
    assert.are.equal(0, rc)
    assert.matches("nobody awaited.*detail%-err.*after%-gc", out)
    local _, n = out:gsub("nobody awaited", "")
    assert.are.equal(1, n, out)
  end)

  it("takes a failed task (finalized) wherever a task goes", function()
    local t = aio.spawn(function() error("x") end)
    local ok_t = aio.spawn(function() return 1 end)
    aio.sleep(0.01)
    assert.are.equal("failed", t:status())
    assert.are.equal(getmetatable(t).__name, getmetatable(ok_t).__name)
    assert.matches("^luaio.Task 'task%-%d+' %(failed%)", tostring(t))
    t.name = "renamed"
    assert.are.equal("renamed", t.name)
    assert.is_false(pcall(aio.gather, t))
    assert.are.equal(2, #aio.wait({t, ok_t}))
    assert.is_false(pcall(aio.wait_for, t, 1))
    assert.is_false(pcall(aio.shield, t))
    assert.matches("x", tostring(t:error()))
    assert.is_false(t:cancel())
    assert.matches("bad argument #1", select(2, pcall(t.await, {})))
  end)

  it("cancels leftover tasks when main returns, running <close>", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      aio.spawn(function()
        local _ <close> = setmetatable({}, {__close = function() print("cleanup") end})
        aio.sleep(60)
      end)
      aio.sleep(0)
    ]])
    assert.are.equal(0, rc)
    assert.matches("cleanup", out)
  end)

  it("honours os.exit, running cleanup", function()
    local rc, out = helpers.run_luaio([[
      local _ <close> = setmetatable({}, {__close = function() print("closed") end})
      os.exit(3)
    ]])
    assert.are.equal(3, rc)
    assert.matches("closed", out)
  end)

  it("reports a deadlock instead of hanging", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local t = aio.spawn(function() coroutine.yield() end)
      aio.current():await()
    ]])
    assert.are.equal(1, rc)
    assert.matches("cannot await itself", out)
  end)

  it("exits 130 on SIGINT after cleanup runs", function()
    local path = helpers.script([[
      local aio = require "luaio"
      local _ <close> = setmetatable({}, {__close = function() print("cleaned") end})
      print("ready")
      io.stdout:flush()
      aio.sleep(30)
    ]])
    local rc, out = helpers.sh(string.format(
      "%s %s > %s.out 2>&1 & pid=$!; for i in $(seq 1200); do "
      .. "grep -q ready %s.out 2>/dev/null && break; sleep 0.05; done; "
      .. "kill -INT $pid; wait $pid; rc=$?; cat %s.out; rm -f %s.out; exit $rc",
      helpers.luaio, path, path, path, path, path))
    os.remove(path)
    assert.are.equal(130, rc)
    assert.matches("cleaned", out)
  end)

  it("runs -e code and prints -v", function()
    local rc, out = helpers.sh(helpers.luaio
      .. [[ -e 'local aio = require "luaio"; aio.sleep(0.01); print(1 + 1)']])
    assert.are.equal(0, rc)
    assert.are.equal("2\n", out)
    rc, out = helpers.sh(helpers.luaio .. " -v")
    assert.are.equal(0, rc)
    assert.matches("^luaio %d+%.%d+%.%d+", out)
  end)

  it("runs a REPL whose lines may wait", function()
    local rc, out = helpers.sh("printf 'aio = require \"luaio\"\\naio.sleep(0.01)\\n"
      .. "return 6 * 7\\nfor i = 1, 2 do\\nprint(\"loop\", i)\\nend\\n' | "
      .. helpers.luaio .. " -i 2>&1")
    assert.are.equal(0, rc)
    assert.matches("> 42\n", out)
    assert.matches(">> >> loop\t1\nloop\t2\n", out)
  end)

  it("runs a script from stdin with -", function()
    local rc, out = helpers.sh("printf 'print(\"stdin\", ...)' | "
      .. helpers.luaio .. " - a b")
    assert.are.equal(0, rc)
    assert.are.equal("stdin\ta\tb\n", out)
  end)

  it("rejects an unknown option with usage", function()
    local rc, out = helpers.sh(helpers.luaio .. " -Z 2>&1")
    assert.are.equal(1, rc)
    assert.matches("usage: luaio", out)
  end)

  it("runs an async spec under `luaio test`", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/async_spec.lua", "w"))
    f:write([[
      local aio = require "luaio"
      describe("async", function()
        it("sleeps inside it", function()
          local t = aio.spawn(function() aio.sleep(0.01); return 5 end)
          assert.are.equal(5, t:await())
        end)
        it("fails", function() aio.sleep(0); assert.are.equal(1, 2) end)
      end)
    ]])
    f:close()
    local rc, out = helpers.sh("cd " .. dir .. " && " .. helpers.luaio
      .. " test -o plainTerminal async_spec.lua 2>&1")
    os.execute("rm -rf " .. dir)
    assert.are.equal(1, rc)
    assert.matches("1 success / 1 failure", out)
  end)
end)

describe("examples/hello.lua", function()
  it("runs its three sleepers concurrently", function()
    local rc, out = helpers.sh(helpers.luaio .. " examples/hello.lua world")
    assert.are.equal(0, rc)
    -- the wake order (shortest first) shows they slept concurrently; the
    -- total time is any number: a loaded machine can stall the child
    assert.matches("^hello\tworld\ntask 2 woke after 0.1 s\ntask 3 woke after "
      .. "0.2 s\ntask 1 woke after 0.3 s\nsum 60 in %d+%.%d+ s\n$", out)
  end)
end)

describe("require 'luaio' from stock lua5.4", function()
  it("runs aio.run(fn, ...) and returns its results", function()
    local dir = os.getenv("LUAIO_MODULE_DIR") or "build/lua"
    local rc, out = helpers.sh(helpers.lua54 .. " -e \"package.cpath='" .. dir
      .. "/?.so;'..package.cpath\" -e '"
      .. [[local aio = require "luaio"
           print(aio.run(function(a) aio.sleep(0.01); return a * 2 end, 21))
           print(pcall(aio.run, function() error("x") end))']] .. " 2>&1")
    assert.are.equal(0, rc)
    assert.matches("^42\nfalse\t.*x", out)
  end)
end)
