local aio = require "luaio"
local proc = require "luaio.proc"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local PID
do
  local f = io.open("/proc/self/stat")
  PID = f:read("n")
  f:close()
end

-- The names in dir, listed through a file (a pipe from io.popen would
-- be one of our descriptors while we count them).
local LS_OUT = os.tmpname()
local function ls(dir)
  assert(os.execute("ls " .. dir .. " > " .. LS_OUT))
  local f = io.open(LS_OUT)
  local out = f:read("a")
  f:close()
  return out:gmatch("[^\n]+")
end

local function fd_count()
  local n = 0
  for _ in ls("/proc/" .. PID .. "/fd") do n = n + 1 end
  return n
end

-- Children of this process that have exited but were not reaped.
local function zombies()
  local found = {}
  for pid in ls("/proc") do
    if pid:match("^%d+$") then
      local f = io.open("/proc/" .. pid .. "/stat")
      local stat = f and f:read("a")
      if f then f:close() end
      -- pid (comm) state ppid ...; comm may hold spaces
      local state, ppid = (stat or ""):match("%) (%a) (%d+)")
      if state == "Z" and tonumber(ppid) == PID then
        found[#found + 1] = pid
      end
    end
  end
  return found
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = f:read("a"):match("%) (%a)")
  f:close()
  return state ~= "Z"
end

-- Wait until cond() holds, for up to a minute: a signalled child dies
-- and is reaped when the kernel and the loop get to it, which on a
-- loaded machine can take far longer than a fixed short sleep.
local function eventually(cond)
  local t0 = aio.now()
  while not cond() and aio.now() - t0 < 60 do aio.sleep(0.01) end
  return cond()
end

-- Wait until task t has started and waits (not a guessed time).
local function until_waiting(t)
  repeat aio.sleep(0) until t:info().state ~= "ready"
  assert.are.equal("waiting", t:info().state)
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

-- Collect what the test dropped and let the close callbacks run.
local function settle()
  collectgarbage()
  collectgarbage()
  aio.sleep(0.05)
end

-- The first pipe read opens one descriptor for good (libuv's or the
-- stream's, not one per process): open it before counting.
local warmed = false
local function warm_up()
  if warmed then return end
  warmed = true
  local p <close> = proc.spawn{"echo", stdout = "pipe"}
  p.stdout:read_all()
  p:wait()
end

local fds_before
local function count_before()
  warm_up()
  settle()
  fds_before = fd_count()
end

local function check_clean()
  settle()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
  eventually(function() return #zombies() == 0 end)
  assert.are.same({}, zombies(), "zombie children")
  assert.are.equal(fds_before, fd_count(), "file descriptors leaked")
end

describe("proc.spawn", function()
  before_each(count_before)
  after_each(check_clean)

  it("runs a program and returns its exit code", function()
    local p <close> = proc.spawn{"sh", "-c", "exit 3"}
    assert.are.equal("integer", math.type(p.pid))
    assert.are.same({3, nil}, {p:wait()})
    assert.is_false(p.running)
    assert.are.same({3, nil}, {p:wait()})          -- again: same answer
  end)

  it("takes open luaio.Files for stdin and stdout, and refuses others",
    function()
      local dir = fs.mkdtemp()
      fs.write(dir .. "/in.txt", "hello from a file\n")
      do
        local fin <close> = fs.open(dir .. "/in.txt")
        local fout <close> = fs.open(dir .. "/out.txt", "w")
        local p <close> = proc.spawn{"tr", "a-z", "A-Z", stdin = fin,
                                     stdout = fout}
        assert.are.same({0, nil}, {p:wait()})
        assert.is_number(fout:fileno())            -- still the File's
      end
      assert.are.equal("HELLO FROM A FILE\n", fs.read(dir .. "/out.txt"))
      local ok, e = pcall(proc.spawn, {"true", stdout = io.stdout})
      assert.is_false(ok)
      assert.matches("stdout: a luaio.File expected", e)
      local f = fs.open(dir .. "/in.txt")
      f:close()
      ok, e = pcall(proc.spawn, {"true", stdin = f})
      assert.is_false(ok)
      assert.matches("file:fileno: attempt to use a closed file", tostring(e))
      os.execute("rm -rf " .. dir)
    end)

  it("gives the signal's name when a signal ended it", function()
    local p <close> = proc.spawn{"sleep", "10"}
    assert.is_true(p.running)
    assert.is_true(p:kill("SIGKILL"))
    assert.are.same({nil, "SIGKILL"}, {p:wait()})
    assert.is_false(p:kill())                       -- already gone
    local q <close> = proc.spawn{"sleep", "10"}
    q:kill()
    assert.are.same({nil, "SIGTERM"}, {q:wait()})
  end)

  it("pipes stdout and stderr as streams", function()
    local p <close> = proc.spawn{"sh", "-c", "echo one; echo two; echo e >&2",
                                 stdout = "pipe", stderr = "pipe"}
    local lines = {}
    for l in p.stdout:lines() do lines[#lines + 1] = l end
    assert.are.same({"one", "two"}, lines)
    assert.are.equal("e\n", p.stderr:read_all())
    assert.are.equal(0, p:wait())
    assert.is_nil(p.stdin)
  end)

  it("sends stderr to stdout's place with stderr = \"stdout\"", function()
    local p <close> = proc.spawn{"sh", "-c", "echo a; echo b >&2; echo c",
                                 stdout = "pipe", stderr = "stdout"}
    assert.are.equal("a\nb\nc\n", p.stdout:read_all())
    assert.is_nil(p.stderr)
    p:wait()
  end)

  it("feeds stdin with backpressure", function()
    local p <close> = proc.spawn{"sh", "-c", "sleep 0.2; wc -c",
                                 stdin = "pipe", stdout = "pipe"}
    local chunk = ("x"):rep(65536)
    local writer = aio.spawn(function()
      for _ = 1, 320 do p.stdin:write(chunk) end    -- 20 MiB
      p.stdin:close()
    end)
    assert.are.equal(tostring(320 * 65536), p.stdout:read_all():match("%d+"))
    writer:await()
    assert.are.equal(0, p:wait())
  end)

  it("feeds a string with input =", function()
    local p <close> = proc.spawn{"tr", "a-z", "A-Z", input = "hello\n",
                                 stdout = "pipe"}
    assert.are.equal("HELLO\n", p.stdout:read_all())
    assert.are.equal(0, p:wait())
  end)

  it("streams 100 MB through stdout:lines() in constant memory", function()
    -- lines of 100 bytes: a million of them
    local p <close> = proc.shell("yes \"$(printf '%099d' 0)\" | "
                                 .. "head -c 100000000", {stdout = "pipe"})
    local before = rss_kb()
    local n, bytes, peak = 0, 0, 0
    for line in p.stdout:lines() do
      n = n + 1
      bytes = bytes + #line + 1
      if n % 10000 == 0 then peak = math.max(peak, rss_kb() - before) end
    end
    assert.are.equal(1000000, n)
    assert.are.equal(100000000, bytes)
    assert.are.equal(0, p:wait())
    -- ASan keeps up to 256 MiB of freed blocks in quarantine: RSS says
    -- nothing there (valgrind and the plain build still check it)
    if os.getenv("ASAN_OPTIONS") then return end
    -- a memory checker holds freed blocks back for a while
    local bound = os.getenv("LUAIO_MALLOC") == "system" and 96 or 32
    assert.is_true(peak < bound * 1024, "memory grew by " .. peak .. " KiB")
  end)

  it("takes cwd, env and env_add", function()
    local dir = fs.mkdtemp()
    local p <close> = proc.spawn{"sh", "-c", "pwd; echo $A-$B-$HOME",
      cwd = dir, env = {A = "1", B = "2"}, stdout = "pipe"}
    local out = p.stdout:read_all()
    assert.matches(dir, out, 1, true)
    assert.matches("1-2-\n", out, 1, true)
    p:wait()
    local q <close> = proc.spawn{"sh", "-c", "echo $A-$HOME",
      env_add = {A = "3", HOME = "/h"}, stdout = "pipe"}
    assert.are.equal("3-/h\n", q.stdout:read_all())
    q:wait()
    os.remove(dir)
  end)

  it("reads from and writes to files, or nothing", function()
    local dir = fs.mkdtemp()
    local src, dst = dir .. "/in.txt", dir .. "/out.txt"
    local f = assert(io.open(src, "w"))
    f:write("from a file\n")
    f:close()
    local p <close> = proc.spawn{"cat", stdin = {path = src},
                                 stdout = {path = dst}}
    p:wait()
    local q <close> = proc.spawn{"cat", stdin = {path = src},
                                 stdout = {path = dst, append = true}}
    q:wait()
    assert.are.equal("from a file\nfrom a file\n", fs.read(dst))
    local r <close> = proc.spawn{"sh", "-c", "cat; echo gone >&2",
      stdin = "null", stdout = "pipe", stderr = "null"}
    assert.are.equal("", r.stdout:read_all())
    r:wait()
    os.remove(src); os.remove(dst); os.remove(dir)
  end)

  it("raises ENOENT, EACCES and a bad cwd from spawn itself", function()
    local ok, e = pcall(proc.spawn, {"no-such-program-xyz"})
    assert.is_false(ok)
    assert.are.equal("ENOENT", e.code)
    assert.are.equal("no-such-program-xyz", e.program)
    assert.is_truthy(tostring(e):find("proc.spawn 'no-such-program-xyz': "
                                      .. "ENOENT", 1, true))
    ok, e = pcall(proc.spawn, {"/etc/passwd"})
    assert.are.equal("EACCES", e.code)
    ok, e = pcall(proc.spawn, {"true", cwd = "/no/such/dir"})
    assert.are.equal("ENOENT", e.code)
    assert.are.equal("/no/such/dir", e.path)
    assert.matches("cwd of 'true'", tostring(e))
  end)

  it("refuses bad input", function()
    local function err(t, msg)
      assert.has_error(function() proc.spawn(t) end,
                       "bad argument #1 to 'proc.spawn' (" .. msg .. ")")
    end
    assert.has_error(function() proc.spawn("ls") end,
      "bad argument #1 to 'proc.spawn' (table expected, got string)")
    err({}, 'the program is missing: {"prog", "arg", ...} expected')
    err({"echo", 1}, "argument: string expected, got number")
    err({"echo", "a\0b"}, "argument contains a NUL byte")
    err({"true", cwd = 1}, "cwd: string expected, got number")
    err({"true", env = {A = 1}}, "environment value: string expected, got "
        .. "number")
    err({"true", env = {["A=B"] = "x"}}, "bad environment name 'A=B'")
    err({"true", env = "A=1"}, "env: table expected, got string")
    err({"true", stdout = "file"}, 'stdout: "inherit", "null", "pipe", '
        .. '{path = ...} or a File expected')
    err({"true", stdin = "text"}, 'stdin: "inherit", "null", "pipe", '
        .. '{path = ...} or a File expected; feed a string with input =')
    err({"true", input = "x", stdin = "null"},
        "input and stdin cannot be given together")
    err({"true", detached = "yes"}, "detached: boolean expected, got string")
    assert.has_error(function() proc.spawn{"true", kill_grace = -1} end)
    local p <close> = proc.spawn{"true"}
    assert.has_error(function() p:kill("SIGNOPE") end,
      "bad argument #2 to 'process:kill' (unknown signal 'SIGNOPE' (e.g. "
      .. "\"SIGTERM\"))")
    p:wait()
  end)
end)

describe("process lifetime", function()
  before_each(count_before)
  after_each(check_clean)

  it("kills the process when a task waiting on it is cancelled", function()
    local p = proc.spawn{"sleep", "10"}
    local t = aio.spawn(p.wait, p)
    until_waiting(t)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.is_false(alive(p.pid))
    assert.are.same({nil, "SIGTERM"}, {p:wait()})
    p:close()
  end)

  it("sends KILL after the grace when TERM is ignored", function()
    local p <close> = proc.spawn{"sh", "-c",
                                 "trap '' TERM; echo trapped; exec sleep 10",
                                 kill_grace = 0.2, stdout = "pipe"}
    assert.are.equal("trapped", p.stdout:readline())  -- its trap is set
    local t0 = aio.now()
    local ok, e = pcall(aio.timeout, 0.05, p.wait, p)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    assert.is_true(aio.now() - t0 >= 0.2)
    assert.are.same({nil, "SIGKILL"}, {p:wait()})
  end)

  it("leaves a detached process running when the wait is cancelled",
     function()
    local p = proc.spawn{"sleep", "10", detached = true}
    local ok = pcall(aio.timeout, 0.05, p.wait, p)
    assert.is_false(ok)
    assert.is_true(alive(p.pid))
    p:kill("SIGKILL")
    p:wait()
    p:close()
  end)

  it("kills on close unless kill_on_close is false", function()
    local p = proc.spawn{"sleep", "10"}
    local pid = p.pid
    p:close()
    assert.has_error(function() p:wait() end,
                     "process:wait: the process object is closed")
    eventually(function() return not alive(pid) end)
    assert.is_false(alive(pid))
    local q = proc.spawn{"sleep", "10", kill_on_close = false}
    local qpid = q.pid
    q:close()
    aio.sleep(0.05)
    assert.is_true(alive(qpid))
    os.execute("kill " .. qpid)
    eventually(function() return not alive(qpid) end)
  end)

  it("kills and reaps a collected process", function()
    local pid = proc.spawn{"sleep", "10"}.pid
    collectgarbage()
    collectgarbage()
    eventually(function() return not alive(pid) end)
    assert.is_false(alive(pid))
  end)

  it("closes its pipes on close, waking readers", function()
    local p = proc.spawn{"sleep", "10", stdout = "pipe"}
    local reader = aio.spawn(function() return p.stdout:read() end)
    until_waiting(reader)
    p:close()
    local ok, e = pcall(reader.await, reader)
    assert.is_false(ok)
    assert.matches("closed", tostring(e))
  end)

  it("runs 200 processes at once without leaking", function()
    local tasks = {}
    for i = 1, 200 do
      tasks[i] = aio.spawn(function()
        local p <close> = proc.spawn{"sh", "-c", "echo " .. i,
                                     stdout = "pipe"}
        local out = p.stdout:read_all()
        assert.are.equal(0, p:wait())
        return tonumber(out)
      end)
    end
    local sum = 0
    for i = 1, 200 do sum = sum + tasks[i]:await() end
    assert.are.equal(200 * 201 / 2, sum)
  end)

  it("kills and reaps its children when luaio exits", function()
    local rc, out = helpers.run_luaio([[
      local proc = require "luaio.proc"
      local p = proc.spawn{"sleep", "30", stdout = "null"}
      local d = proc.spawn{"sleep", "30", detached = true, stdout = "null",
                           stderr = "null"}
      local k = proc.spawn{"sleep", "30", kill_on_close = false,
                           stdout = "null"}
      print("pids", p.pid, d.pid, k.pid)
    ]])
    assert.are.equal(0, rc, out)
    local p, d, k = out:match("pids\t(%d+)\t(%d+)\t(%d+)")
    assert.is_false(alive(p))
    assert.is_false(alive(k))
    assert.is_true(alive(d))      -- detached: not ours to kill
    os.execute("kill " .. d)
  end)
end)

describe("proc.shell", function()
  before_each(count_before)
  after_each(check_clean)

  it("runs a command line through /bin/sh -c", function()
    local p <close> = proc.shell("echo $((6 * 7)) | tr 4 x",
                                 {stdout = "pipe"})
    assert.are.equal("x2\n", p.stdout:read_all())
    assert.are.equal(0, p:wait())
  end)

  it("refuses bad input", function()
    assert.has_error(function() proc.shell() end,
      "bad argument #1 to 'proc.shell' (string expected, got no value)")
    assert.has_error(function() proc.shell("true", {"x"}) end,
      "bad argument #2 to 'proc.shell' (options only (the command is "
      .. "argument #1))")
  end)
end)

describe("proc.run", function()
  before_each(count_before)
  after_each(check_clean)

  it("captures output and the exit code", function()
    local r = proc.run{"sh", "-c", "echo out; echo err >&2; exit 3"}
    assert.are.same({code = 3, stdout = "out\n", stderr = "err\n",
                     stdout_truncated = false, stderr_truncated = false}, r)
  end)

  it("feeds input and bounds captured output", function()
    assert.are.equal("abc", proc.run({"cat"}, {input = "abc"}).stdout)
    local r = proc.run({"sh", "-c", "yes | head -c 1000000"},
                       {max_output = 10})
    assert.are.equal("y\ny\ny\ny\ny\n", r.stdout)
    assert.is_true(r.stdout_truncated)
  end)

  it("raises with stderr's tail when check is set", function()
    local ok, e = pcall(proc.run, {"sh", "-c", "echo bad thing >&2; exit 2"},
                        {check = true})
    assert.is_false(ok)
    assert.are.equal("process", e.kind)
    assert.are.equal(2, e.status)
    assert.matches("sh exited with status 2: bad thing", tostring(e))
  end)

  it("kills the program on timeout", function()
    local t0 = aio.now()
    local ok, e = pcall(proc.run, {"sleep", "600"}, {timeout = 0.1})
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    assert.is_true(aio.now() - t0 < 60)          -- killed, not waited for
  end)

  it("refuses bad input", function()
    assert.has_error(function() proc.run("ls") end,
      "bad argument #1 to 'proc.run' (table expected, got string)")
    assert.has_error(function() proc.run({"true"}, 1) end,
      "bad argument #2 to 'proc.run' (table expected, got number)")
    assert.has_error(function() proc.run({"true"}, {timeout = "x"}) end,
      "bad argument #1 to 'proc.run' (timeout: number of seconds expected)")
    assert.has_error(function() proc.run({"true"}, {max_output = -1}) end,
      "bad argument #1 to 'proc.run' (max_output: integer >= 0 expected)")
  end)
end)

describe("examples/proc_pipeline.lua", function()
  it("runs 70 pipelines (210 programs) at once, all correct", function()
    local rc, out = helpers.sh(helpers.luaio
      .. " examples/proc_pipeline.lua 70 70 2>/dev/null")
    assert.are.equal(0, rc, out)
    assert.matches("70 pipelines of 3 programs, at most 70 at once: all "
                   .. "correct", out)
  end)

  it("shows a progress line", function()
    local rc, out = helpers.sh(helpers.luaio
      .. " examples/proc_pipeline.lua 5 2 2>&1")
    assert.are.equal(0, rc, out)
    assert.matches("%[  5/5%]   0 running", out)
  end)
end)
