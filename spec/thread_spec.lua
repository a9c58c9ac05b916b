local aio = require "luaio"
local fs = require "luaio.fs"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- Wait until task t has started and waits (not a guessed time).
local function until_waiting(t)
  repeat aio.sleep(0) until t:info().state ~= "ready"
  assert.are.equal("waiting", t:info().state)
end

-- Keeps a pool's worker busy until release() is called (a file appears),
-- not for a fixed time: under valgrind a timed loop can end before the
-- test gets to its next step.  Returns the busy task and release.
local function hold_worker(pool)
  local go = os.tmpname()
  os.remove(go)
  local busy = aio.spawn(pool.run, pool, function(path)
    local t = os.time()
    while os.time() - t < 60 do
      local f = io.open(path)
      if f then f:close() return "done" end
    end
    return "gave up"
  end, go)
  until_waiting(busy)                       -- it has the pool's slot
  return busy, function()
    assert(io.open(go, "w")):close()
    local r = busy:await()
    os.remove(go)
    return r
  end
end

describe("aio.to_thread", function()
  after_each(assert_no_tasks)

  it("runs a function in a worker and returns its results", function()
    local r = table.pack(aio.to_thread(function(a, b)
      return a + b, nil, "x"
    end, 2, 3))
    assert.are.equal(3, r.n)
    assert.are.same({5, nil, "x"}, {r[1], r[2], r[3]})
  end)

  it("copies nested tables, integers, floats and binary strings", function()
    local v = {1, 2.5, "a\0b", true, false, t = {u = {v = "deep"}},
               [10] = -3, [2.5] = "float key"}
    local got = aio.to_thread(function(x) return x end, v)
    assert.are.same(v, got)
    assert.are_not.equal(v, got)
    assert.are.equal("integer", math.type(got[1]))
    assert.are.equal("float", math.type(got[2]))
  end)

  it("runs \"module.name\" functions", function()
    assert.are.equal("ababab", aio.to_thread("string.rep", "ab", 3))
  end)

  it("runs in a separate state: the caller's globals are not there",
     function()
    SPEC_GLOBAL = 1
    assert.is_nil(aio.to_thread(function() return SPEC_GLOBAL end))
    SPEC_GLOBAL = nil
  end)

  it("raises the worker's error with the worker's traceback", function()
    local ok, e = pcall(aio.to_thread, function()
      local function inner() error("boom in worker") end
      inner()
    end)
    assert.is_false(ok)
    assert.are.equal("thread", e.kind)
    assert.matches("boom in worker", e.message)
    assert.matches("stack traceback", e.message)
    assert.matches("inner", e.message)
    local ok2, e2 = pcall(aio.to_thread, "nosuchmodule_xyz.f")
    assert.is_false(ok2)
    assert.matches("module 'nosuchmodule_xyz' not found", e2.message)
  end)

  it("refuses functions with upvalues, C functions and bad names",
     function()
    local up = 1
    assert.has_error(function() aio.to_thread(function() return up end) end,
      "bad argument #1 to 'aio.to_thread' (the function has upvalue 'up': "
      .. "a worker gets a copy of the code only (make it a local of the "
      .. "function, pass it as an argument, or use \"module.name\"))")
    assert.has_error(function() aio.to_thread(print) end,
      "bad argument #1 to 'aio.to_thread' (a C function cannot run in a "
      .. "worker (pass a Lua function or \"module.name\"))")
    assert.has_error(function() aio.to_thread("nodot") end,
      "bad argument #1 to 'aio.to_thread' (\"module.name\" expected)")
    assert.has_error(function() aio.to_thread(42) end,
      "bad argument #1 to 'aio.to_thread' (function or \"module.name\" "
      .. "expected, got number)")
    assert.has_error(function() aio.to_thread() end)
  end)

  it("refuses arguments and results it cannot copy, naming them",
     function()
    local id = function(x) return x end
    assert.has_error(function() aio.to_thread(id, 1, print) end,
      "bad argument #3 to 'aio.to_thread' (a function cannot be copied to "
      .. "another thread)")
    local co = coroutine.create(id)
    assert.has_error(function() aio.to_thread(id, {co = co}) end,
      "bad argument #2 to 'aio.to_thread' (a thread cannot be copied to "
      .. "another thread)")
    local cyc = {}
    cyc.self = cyc
    assert.has_error(function() aio.to_thread(id, cyc) end,
      "bad argument #2 to 'aio.to_thread' (a table with a cycle cannot be "
      .. "copied)")
    local ok, e = pcall(aio.to_thread, function() return 1, io.stdout end)
    assert.is_false(ok)
    assert.matches("result #2: a userdata cannot be copied", e.message)
  end)

  it("keeps os.exit and luaio's modules out of workers", function()
    local ok, e = pcall(aio.to_thread, function() os.exit(3) end)
    assert.is_false(ok)
    assert.matches("os.exit cannot be called in a worker", e.message)
    ok, e = pcall(aio.to_thread, function() return require "luaio.fs" end)
    assert.is_false(ok)
    assert.matches("module 'luaio.fs' cannot be used in a worker", e.message)
  end)

  it("runs 1,000 calls at once", function()
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = aio.spawn(aio.to_thread, function(n) return n * 2 end, i)
    end
    local sum = 0
    for i = 1, 1000 do sum = sum + tasks[i]:await() end
    assert.are.equal(1000 * 1001, sum)
  end)

  it("stops a running Lua function when its task is cancelled", function()
    -- cancelled once the function runs (it creates a file), not after a
    -- guessed 50 ms: a call still queued would be dropped instead
    local running = os.tmpname()
    os.remove(running)
    local t = aio.spawn(aio.to_thread, function(path)
      assert(io.open(path, "w")):close()
      while true do end
    end, running)
    for _ = 1, 6000 do                      -- up to a minute
      local f = io.open(running)
      if f then f:close() break end
      aio.sleep(0.01)
    end
    assert.is_true(os.remove(running), "the worker did not start")
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e))
    -- the worker is free again
    assert.are.equal(7, aio.to_thread(function() return 7 end))
  end)

  it("times out, stopping the worker", function()
    local ok, e = pcall(aio.timeout, 0.05, aio.to_thread,
                        function() while true do end end)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
  end)

  it("drops calls cancelled while they wait for a worker", function()
    local pool <close> = aio.worker_pool{size = 1}
    local _, release = hold_worker(pool)
    local queued = aio.spawn(pool.run, pool, function() return "never" end)
    until_waiting(queued)
    queued:cancel()
    local ok = pcall(queued.await, queued)
    assert.are.equal("done", release())
    assert.is_false(ok)
  end)

  it("needs a task", function()
    local co = coroutine.wrap(function()
      return aio.to_thread(function() end)
    end)
    assert.has_error(co, "aio.to_thread: not inside a luaio task (a plain "
      .. "coroutine, the main thread or a C callback cannot wait)")
  end)
end)

describe("aio.worker_pool", function()
  after_each(assert_no_tasks)

  it("reuses its states", function()
    local pool <close> = aio.worker_pool{size = 1}
    local count = function() COUNT = (COUNT or 0) + 1 return COUNT end
    assert.are.same({1, 2, 3}, {pool:run(count), pool:run(count),
                                pool:run(count)})
  end)

  it("runs size calls at a time", function()
    local pool <close> = aio.worker_pool{size = 2}
    local running, most = 0, 0
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = aio.spawn(function()
        running = running + 1
        most = math.max(most, running)
        local r = pool:run(function(n) return n end, i)
        running = running - 1
        return r
      end)
    end
    for i = 1, 6 do assert.are.equal(i, tasks[i]:await()) end
    assert.is_true(tostring(pool):match("2 workers") ~= nil)
  end)

  it("has its own package.path", function()
    local dir = fs.mkdtemp()
    local f = assert(io.open(dir .. "/spec_thread_mod.lua", "w"))
    f:write("return {twice = function(x) return 2 * x end}")
    f:close()
    local pool <close> = aio.worker_pool{size = 1, path = dir .. "/?.lua"}
    assert.are.equal(42, pool:run("spec_thread_mod.twice", 21))
    os.remove(dir .. "/spec_thread_mod.lua")
    os.remove(dir)
  end)

  it("refuses calls once closed and bad options", function()
    local pool = aio.worker_pool()
    pool:close()
    assert.has_error(function() pool:run(function() end) end,
                     "pool:run: the worker pool is closed")
    assert.has_error(function() aio.worker_pool{size = 0} end,
      "bad argument #1 to 'aio.worker_pool' (size: integer from 1 to 1024 "
      .. "expected)")
    assert.has_error(function() aio.worker_pool{path = 1} end,
      "bad argument #1 to 'aio.worker_pool' (path: string expected, got "
      .. "number)")
    assert.has_error(function() aio.worker_pool(1) end,
      "bad argument #1 to 'aio.worker_pool' (table expected, got number)")
  end)

  it("wakes calls waiting for a slot when closed", function()
    local pool = aio.worker_pool{size = 1}
    local _, release = hold_worker(pool)
    local waiting = aio.spawn(pool.run, pool, function() return 2 end)
    until_waiting(waiting)
    pool:close()
    local ok, e = pcall(waiting.await, waiting)
    assert.are.equal("done", release())
    assert.is_false(ok)
    assert.matches("the worker pool was closed", tostring(e))
  end)
end)
