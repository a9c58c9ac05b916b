-- Introspection and debug mode: task names, aio.tasks/t:info, aio.dump,
-- SIGQUIT, await-chain tracebacks, debug mode, timeout descriptions.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- An object with a write method that keeps what is written.
local function collector()
  local c = {text = ""}
  function c:write(s) self.text = self.text .. s end
  return c
end

describe("aio.spawn_named and t:info", function()
  after_each(assert_no_tasks)

  it("names the task from the start", function()
    local seen
    local t = aio.spawn_named("fetch page", function(x)
      seen = aio.current().name
      return x * 2
    end, 21)
    assert.are.equal("fetch page", t.name)
    assert.are.equal(42, t:await())
    assert.are.equal("fetch page", seen)
  end)

  it("rejects a bad name or function", function()
    assert.has_error(function() aio.spawn_named(nil, print) end,
      "bad argument #1 to 'aio.spawn_named' (string expected, got nil)")
    assert.has_error(function() aio.spawn_named("x\0y", print) end)
    assert.has_error(function() aio.spawn_named("x", 5) end,
      "bad argument #2 to 'aio.spawn_named' (function expected, got number)")
  end)

  it("gives state, what a task waits on, and age", function()
    local q = aio.queue()
    local a = aio.spawn_named("sleeper", aio.sleep, 60)
    local b = aio.spawn_named("consumer", function() return q:get() end)
    local c = aio.spawn(function() end)
    assert.are.equal("ready", c:info().state)
    assert.matches("^task%-%d+$", c:info().name)
    aio.sleep(0.05)
    local info = a:info()
    assert.are.same({"sleeper", "waiting", "aio.sleep"},
                    {info.name, info.state, info.waiting_on})
    assert.is_true(info.age >= 0.04 and info.age < 60)
    assert.are.equal("queue:get", b:info().waiting_on)
    local me = aio.current():info()
    assert.are.equal("running", me.state)
    assert.is_nil(me.waiting_on)
    assert.are.equal("done", c:info().state)
    a:cancel()
    q:put(1)
    assert.are.equal(1, b:await())
    pcall(a.await, a)
  end)

  it("says which URL or path an I/O wait is on", function()
    local net = require "luaio.net"
    local http = require "luaio.http"
    local conn
    local server = net.serve("127.0.0.1", 0, function(stream)
      conn = stream
      local ok, data                -- reads the request, never answers
      repeat ok, data = pcall(stream.read, stream) until not (ok and data)
    end)
    local url = "http://127.0.0.1:" .. server.port .. "/slow"
    local c = http.client()
    local t = aio.spawn(c.get, c, url)
    local seen
    for _ = 1, 6000 do                -- up to a minute on a loaded box
      seen = t:info().waiting_on
      if seen then break end
      aio.sleep(0.01)
    end
    t:cancel()
    pcall(t.await, t)
    c:close()
    assert.are.equal("client:get GET " .. url, seen)
    if conn then conn:close() end
    server:close()
    aio.sleep(0.01)
  end)

  it("aio.tasks lists every live task, oldest first", function()
    local a = aio.spawn_named("a", aio.sleep, 0.01)
    local b = aio.spawn_named("b", aio.sleep, 0.01)
    local names = {}
    for _, t in ipairs(aio.tasks()) do names[#names + 1] = t:info().name end
    assert.are.same({"a", "b"}, {names[#names - 1], names[#names]})
    aio.gather(a, b)
  end)
end)

describe("aio.dump", function()
  after_each(assert_no_tasks)

  it("writes every task with name, state and stack", function()
    local function deep_sleeper() aio.sleep(60) end
    local t = aio.spawn_named("sleeper", function() deep_sleeper() end)
    local fresh = aio.spawn_named("fresh", function() end)
    aio.sleep(0)
    local out = collector()
    aio.dump(out)
    local text = out.text
    assert.matches("^luaio: %d+ tasks, oldest first\n", text)
    assert.matches("task 'sleeper' %(#%d+%): waiting on aio%.sleep, age "
                   .. "[%d.]+ s\nstack traceback:\n", text)
    assert.matches("in upvalue 'deep_sleeper'", text)
    assert.matches("debug_spec%.lua:%d+: in", text)
    assert.matches("%(#%d+%): running", text)
    assert.is_nil(text:find("'fresh'", 1, true))  -- done: not listed
    fresh:await()
    t:cancel()
    pcall(t.await, t)
  end)

  it("writes to stderr by default and checks its argument", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local t = aio.spawn_named("bg", aio.sleep, 60)
      aio.sleep(0)
      aio.dump()
      t:cancel()
    ]])
    assert.are.equal(0, rc)
    assert.matches("task 'bg' %(#2%): waiting on aio%.sleep", out)
    assert.has_error(function() aio.dump(5) end,
      "bad argument #1 to 'aio.dump' (file (with a write method) expected, "
      .. "got number)")
  end)

  it("SIGQUIT prints the dump and the program goes on", function()
    local dir = fs.mkdtemp()
    local path = helpers.script(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local function wait_here() aio.sleep(120) end
      local t = aio.spawn_named("stuck worker", function() wait_here() end)
      print("ready")
      io.stdout:flush()
      for _ = 1, 2400 do
        if fs.exists("%s/go") then break end
        aio.sleep(0.05)
      end
      t:cancel()
      print("still alive")
    ]]):format(dir))
    local rc, out = helpers.sh(string.format(
      "%s %s > %s/out 2>%s/err & pid=$!; for i in $(seq 1200); do "
      .. "grep -q ready %s/out 2>/dev/null && break; sleep 0.05; done; "
      .. "kill -QUIT $pid; for i in $(seq 1200); do "
      .. "grep -q 'oldest first' %s/err 2>/dev/null && break; sleep 0.05; "
      .. "done; touch %s/go; wait $pid; rc=$?; cat %s/out %s/err; exit $rc",
      helpers.luaio, path, dir, dir, dir, dir, dir, dir, dir))
    os.remove(path)
    os.execute("rm -rf '" .. dir .. "'")
    assert.are.equal(0, rc)
    assert.matches("still alive", out)
    assert.matches("task 'stuck worker' %(#2%): waiting on aio%.sleep", out)
    assert.matches("upvalue 'wait_here'", out)
  end)
end)

describe("await-chain tracebacks", function()
  after_each(assert_no_tasks)

  it("prints each task's stack, awaited by the next", function()
    local rc, out = helpers.run_luaio([[
      local aio = require "luaio"
      local function fetch() aio.sleep(0); error("deep") end
      local inner = aio.spawn_named("fetcher", function() fetch() end)
      local outer = aio.spawn_named("batch", function()
        return aio.gather(inner)
      end)
      local function run() return outer:await() end
      run()
    ]])
    assert.are.equal(1, rc)
    local want = {
      ":2: deep\n",
      "stack traceback of task 'fetcher' %(#2%):\n",
      "\t%[C%]: in function 'error'\n",
      ":2: in upvalue 'fetch'\n",
      "awaited by task 'batch' %(#3%):\n",
      "in function 'luaio.gather'\n",
      "awaited by task 'task%-1' %(#1%):\n",
      "in method 'await'\n",
      ":7: in local 'run'\n",
      ":8: in main chunk\n",
    }
    local at = 1
    for _, pat in ipairs(want) do
      local s, e = out:find(pat, at)
      assert(s, "missing in order: " .. pat .. "\n" .. out)
      at = e + 1
    end
  end)

  it("gives each awaiter its own chain, leaving the task's error as is",
     function()
    local t = aio.spawn_named("failing", function() error("x") end)
    local a = aio.spawn_named("first", function() t:await() end)
    local b = aio.spawn_named("second", function() t:await() end)
    local _, ea = pcall(a.await, a)
    local _, eb = pcall(b.await, b)
    local own = t:error().traceback
    assert.matches("^stack traceback:\n", own)
    assert.matches("^'failing' %(#%d+%)$", t:error().task)
    assert.matches("^stack traceback of task 'failing'", ea.traceback)
    assert.is_nil(own:find("awaited by", 1, true))
    assert.matches("awaited by task 'first'", ea.traceback)
    assert.is_nil(ea.traceback:find("second", 1, true))
    assert.matches("awaited by task 'second'", eb.traceback)
    assert.are.equal(t:error().message, ea.message)
    assert.is_true(aio.is_error(ea))
  end)

  it("goes through groups and timeouts", function()
    local e
    local t = aio.spawn_named("outer", function()
      aio.timeout(60, function()
        aio.group(function(g)
          g:spawn(function() aio.sleep(0); error("child failed") end)
        end)
      end)
    end)
    _, e = pcall(t.await, t)
    assert.matches("child failed", tostring(e))
    assert.matches("stack traceback of task 'task%-%d+'.*awaited by task "
                   .. "'outer'", e.traceback)
  end)
end)

describe("debug mode", function()
  -- Run src in a child luaio with the given prefix (env, options).
  local function run(src, pre, post)
    local path = helpers.script(src)
    local rc, out = helpers.sh((pre or "") .. " " .. helpers.luaio .. " "
                               .. (post or "--debug") .. " " .. path
                               .. " 2>&1")
    os.remove(path)
    return rc, out, path
  end

  it("warns about a task that runs too long without yielding", function()
    local rc, out = run([[
      local aio = require "luaio"
      aio.debug(true, {slow = 0.05})
      local function busy() local t0 = os.clock() repeat until os.clock() - t0 > 0.2 end
      local t = aio.spawn_named("cruncher", function()
        aio.sleep(0)
        busy()
        aio.sleep(0)
      end)
      t:await()
    ]])
    assert.are.equal(0, rc)
    assert.matches("luaio: debug: task 'cruncher' %(#2%) ran %d+ ms without "
                   .. "yielding %(over 50 ms%): resumed at [^\n]*:5, yielded "
                   .. "at [^\n]*:7\n", out)
  end)

  it("reports a failed task nobody awaits as soon as it fails", function()
    local rc, out = run([[
      local aio = require "luaio"
      aio.spawn_named("doomed", function() error("oops") end)
      aio.sleep(0.05)
      io.stderr:write("after\n")
    ]])
    assert.are.equal(0, rc)
    local report = out:find("luaio: debug: task 'doomed' (#2) failed and no "
                            .. "task awaits it: ", 1, true)
    assert(report, out)
    assert.is_true(report < out:find("after", 1, true))
    assert.matches(":2: oops\nstack traceback:", out)
    assert.is_nil(out:find("nobody awaited", 1, true))   -- not twice
  end)

  it("lists tasks pending at exit with where they were spawned", function()
    local src = [[
      local aio = require "luaio"
      local function start() return aio.spawn_named("forgotten", aio.sleep, 60) end
      start()
    ]]
    local rc, out = run(src)
    assert.are.equal(0, rc)
    assert.matches("luaio: debug: task 'forgotten' %(#2%) still pending at "
                   .. "exit, spawned at [^\n]*:2\n", out)
    rc, out = run(src, "LUAIO_DEBUG=1", "")
    assert.matches("still pending at exit", out)
    rc, out = run(src, "", "")                  -- off: nothing
    assert.are.equal(0, rc)
    assert.are.equal("", out)
  end)

  it("warns when a file is collected without being closed", function()
    local rc, out = run([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local path = os.tmpname()
      local function leak() local f = fs.open(path) end
      leak()
      do local f <close> = fs.open(path) end
      fs.open(path):close()
      collectgarbage(); collectgarbage()
      os.remove(path)
    ]])
    assert.are.equal(0, rc)
    assert.matches("luaio: debug: a luaio.File opened at [^\n]*:4 was "
                   .. "collected without being closed\n", out)
    local _, n = out:gsub("collected without", "")
    assert.are.equal(1, n)
  end)

  it("warns when a stream is collected without being closed", function()
    local rc, out = run([[
      local aio = require "luaio"
      local net = require "luaio.net"
      local server = net.serve("127.0.0.1", 0, function(st) st:read() end)
      local function leak() local c = net.connect("127.0.0.1", server.port) end
      leak()
      do local c <close> = net.connect("127.0.0.1", server.port) end
      net.connect("127.0.0.1", server.port):close()
      collectgarbage(); collectgarbage()
      server:close({cancel = true})
    ]])
    assert.are.equal(0, rc)
    assert.matches("luaio: debug: a luaio.Stream opened at [^\n]*:4 was "
                   .. "collected without being closed\n", out)
    local _, n = out:gsub("collected without", "")
    assert.are.equal(1, n)
  end)

  it("warns when a streamed response is collected unclosed", function()
    local rc, out = run([[
      local aio = require "luaio"
      local http = require "luaio.http"
      local server = http.serve{handler = function() return "hello" end}
      local url = "http://127.0.0.1:" .. server.port .. "/"
      local function leak() local r = http.get(url, {stream = true}) end
      leak()
      do local r <close> = http.get(url, {stream = true}) end
      local r = http.get(url, {stream = true})
      for _ in r:chunks() do end
      r = nil
      aio.sleep(0.05)
      collectgarbage(); collectgarbage()
      server:close({grace = 0})
    ]])
    assert.are.equal(0, rc)
    assert.matches("luaio: debug: a streamed luaio.HttpResponse opened at "
                   .. "[^\n]*:5 was collected without being closed\n", out)
    local _, n = out:gsub("collected without", "")
    assert.are.equal(1, n, out)
  end)

  it("is off by default; aio.debug switches it and checks arguments",
     function()
    local was = aio.debug()
    assert.are.equal(was, aio.debug(was))
    assert.has_error(function() aio.debug("yes") end,
      "bad argument #1 to 'aio.debug' (boolean expected, got string)")
    assert.has_error(function() aio.debug(true, {slow = -1}) end,
      "bad argument #2 to 'aio.debug' (slow must be seconds from 0 to 86400)")
    assert.has_error(function() aio.debug(true, 5) end,
      "bad argument #2 to 'aio.debug' (table expected, got number)")
    assert.are.equal(was, aio.debug())
  end)
end)

describe("timeouts name the wait they interrupted", function()
  after_each(assert_no_tasks)

  -- fn waits forever; aio.timeout must end it with a timeout naming op.
  local function times_out(op, fn)
    local ok, e = pcall(aio.timeout, 0.02, fn)
    assert.is_false(ok, op)
    assert.is_true(aio.is_timeout(e), op .. ": " .. tostring(e))
    assert.are.equal("timed out after 0.02 s in " .. op, e.message)
    assert.are.equal(op, e.interrupted)
  end

  it("covers every waiting API of the luaio module", function()
    times_out("aio.sleep", function() aio.sleep(60) end)
    local q = aio.queue(1)
    times_out("queue:get", function() q:get() end)
    q:put(1)
    times_out("queue:put", function() q:put(2) end)
    assert.are.equal(1, q:get())
    q:put(1)
    times_out("queue:join", function() q:join() end)
    q:get(); q:task_done()
    local s = aio.semaphore(0)
    times_out("semaphore:acquire", function() s:acquire() end)
    local l = aio.lock()
    local held = l:acquire()
    times_out("lock:acquire", function() l:acquire() end)
    held:release()
    times_out("event:wait", function() aio.event():wait() end)
    local c = aio.condition()
    times_out("condition:wait", function()
      local _ <close> = c:acquire()
      c:wait()
    end)
    times_out("future:await", function() aio.future():await() end)
    local t = aio.spawn(aio.sleep, 60)
    times_out("task:await", function() t:await() end)
    times_out("aio.wait", function() aio.wait({t}) end)
    times_out("aio.gather", function() aio.gather(t) end)  -- cancels t
    times_out("aio.select", function() aio.select{{get = aio.queue()}} end)
    local r = aio.rate_limiter(1, 60)
    r:acquire()
    times_out("rate_limiter:acquire", function() r:acquire() end)
    t:cancel()
    pcall(t.await, t)
  end)

  it("covers network and file waits, with their URL", function()
    local net = require "luaio.net"
    local http = require "luaio.http"
    local conn
    local server = net.serve("127.0.0.1", 0, function(stream)
      conn = stream
      local ok, data
      repeat ok, data = pcall(stream.read, stream) until not (ok and data)
    end)
    local url = "http://127.0.0.1:" .. server.port .. "/slow"
    local client = http.client()
    times_out("client:get GET " .. url, function() client:get(url) end)
    client:close()
    local st = net.connect("127.0.0.1", server.port)
    times_out("stream:read", function() st:read() end)
    st:close()
    local u = net.udp()
    u:bind("127.0.0.1", 0)
    times_out("udp:recv", function() u:recv() end)
    u:close()
    local dir = fs.mkdtemp()
    local w = fs.watch(dir)
    times_out("watcher:next", function() w:next() end)
    w:close()
    os.execute("rm -rf '" .. dir .. "'")
    if conn then conn:close() end
    server:close()
    aio.sleep(0.01)
  end)

  it("says nothing more when the task was not waiting", function()
    local ok, e = pcall(aio.timeout, 0.02, function()
      local t0 = aio.now()
      repeat until aio.now() - t0 > 0.05    -- busy: expires meanwhile
      aio.sleep(0)
    end)
    assert.is_false(ok)
    assert.are.equal("timed out after 0.02 s", e.message)
    assert.is_nil(e.interrupted)
  end)
end)
