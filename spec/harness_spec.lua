-- The test runner itself (`luaio test`, lua/test.lua): run as a child on
-- the fixture spec files of spec/fixtures/harness/, it must name the
-- failing test and what it left behind, and still pass the next test.
local helpers = require "spec.helpers"

local FIXTURES = "spec/fixtures/harness/"

-- Run `luaio test` on a fixture; returns its exit status and output.
local function run(fixture, opts)
  return helpers.sh((opts and opts.env or "") .. " timeout 60 "
    .. helpers.luaio .. " test -o plainTerminal "
    .. (opts and opts.args or "") .. " " .. FIXTURES .. fixture
    .. ".lua 2>&1")
end

local function has(out, text)
  assert(out:find(text, 1, true), "expected to find:\n  " .. text
         .. "\nin the output:\n" .. out)
end

describe("luaio test isolates each test", function()
  it("reports a deadlock at once, with the waiting tasks' stacks", function()
    local rc, out = run("deadlock", { args = "--timeout 50" })
    assert.are_not.equal(0, rc)
    assert.are_not.equal(124, rc)        -- not found by the outer timeout
    has(out, "fixture waits for an event nobody sets")
    has(out, "deadlock: it waits and nothing left could wake it")
    has(out, "deadlock.lua:9: in function")
    has(out, "function at spec/fixtures/harness/deadlock.lua:8")
    has(out, "1 success / 0 failures / 1 error")
  end)

  it("fails a test that leaves a task, a file or a socket behind", function()
    local rc, out = run("leaks")
    assert.are_not.equal(0, rc)
    has(out, "fixture leaves a task running")
    has(out, "function at spec/fixtures/harness/leaks.lua:8")
    has(out, "leaks.lua:8: in function")
    has(out, "fixture leaves a file open")
    assert.matches("file descriptor %d+ %(/proc/%d+/status%) open", out)
    has(out, "fixture leaves a server listening")
    has(out, "1 libuv tcp handle(s) active")
    -- the test after each leak passes: the leaked task was cancelled
    has(out, "3 successes / 0 failures / 4 errors")
  end)

  it("gives every test a time limit, which a test may set", function()
    local rc, out = run("timeout", { env = "LUAIO_TEST_TIMEOUT=1" })
    assert.are_not.equal(0, rc)
    has(out, "fixture keeps running past the limit")
    has(out, "timeout: still running after 1 s")
    has(out, "timeout.lua:9: in function")
    has(out, "timeout: still running after 0.3 s")
    has(out, "fixture swallows its cancellation and returns")
    has(out, "1 success / 0 failures / 3 errors")
  end)

  it("guards hooks: a deadlock or an overrun fails the hook only", function()
    local rc, out = run("hooks", { args = "--timeout 1" })
    assert.are_not.equal(0, rc)
    has(out, "fixture with a deadlocking before_each before_each")
    has(out, "deadlock: it waits and nothing left could wake it")
    has(out, "hooks.lua:7: in function")
    has(out, "fixture with an endless after_each after_each")
    has(out, "timeout: the time limit passed")
    has(out, "hooks.lua:13: in function")
    has(out, "2 successes / 0 failures / 2 errors")
  end)

  it("takes --timeout from the command line, not busted", function()
    local rc, out = run("clean", { args = "--timeout=5" })
    assert.are.equal(0, rc, out)
    has(out, "3 successes / 0 failures / 0 errors")
    rc, out = run("clean", { args = "--timeout" })
    assert.are_not.equal(0, rc)
    has(out, "--timeout needs a positive number of seconds")
  end)

  it("keeps busted's tags and output handlers working", function()
    local rc, out = run("clean", { args = "--tags tagged" })
    assert.are.equal(0, rc, out)
    has(out, "1 success / 0 failures / 0 errors")
    rc, out = helpers.sh(helpers.luaio .. " test -o json " .. FIXTURES
                         .. "leaks.lua 2>/dev/null")
    assert.are_not.equal(0, rc)
    local report = require("luaio.json").decode(out)
    assert.are.equal(3, #report.successes)
    assert.are.equal(4, #report.errors)   -- three tests and the file
  end)
end)

describe("luaio test accounts for resources per spec file", function()
  it("fails a file that leaves a task or Lua memory behind", function()
    local rc, out = run("file_leaks")
    assert.are_not.equal(0, rc)
    has(out, "the spec file left resources behind")
    has(out, "left task 'forgotten' (pending), function at "
        .. "spec/fixtures/harness/file_leaks.lua:7")
    assert.matches("Lua memory grew by %d+ KiB", out)
  end)

  it("also names descriptors and handles a file leaves open", function()
    local _, out = run("leaks")
    local tail = out:match("the spec file left resources behind:(.*)$")
    assert.is_not_nil(tail, out)
    assert.matches("file descriptor %d+ %(socket:", tail)
    has(tail, "1 libuv tcp handle(s) active")
  end)

  it("passes a clean file", function()
    local rc, out = run("clean")
    assert.are.equal(0, rc, out)
    assert.is_nil(out:find("left resources behind", 1, true))
  end)
end)

describe("spec helpers", function()
  it("fail a spec whose child a sanitizer caught (exit status 86)", function()
    local ok, err = pcall(helpers.sh, "exit " .. helpers.SANITIZER_RC)
    assert.is_false(ok)
    assert.matches("a sanitizer caught this command", err)
    local rc = helpers.run_luaio("os.exit(3)")
    assert.are.equal(3, rc)                -- other statuses are returned
    ok = pcall(helpers.run_luaio, "os.exit(86)")
    assert.is_false(ok)
  end)
end)

-- ---- what a test started is stopped when it ends --------------------------

describe("luaio test stops what a test started", function()
  local fs = require "luaio.fs"
  local TAG = io.open("/proc/self/stat"):read("n")     -- this process
  TAG = tostring(math.tointeger(TAG))
  local dir
  before_each(function() dir = fs.mkdtemp() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  -- Run `luaio test` on a spec file written from src (DIR in src is the
  -- temp folder, TAG this process's PID); returns its exit status and
  -- output.
  local function run_spec(src)
    local path = dir .. "/generated_spec.lua"
    fs.write(path, (src:gsub("DIR", dir):gsub("TAG", TAG)))
    return helpers.sh("timeout 120 " .. helpers.luaio
                      .. " test -o plainTerminal " .. path .. " 2>&1")
  end

  -- Whether process pid has ended (gone, or a zombie not yet reaped).
  local function gone(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return true end
    local state = f:read("a"):match(".*%)%s+(%a)")
    f:close()
    return state == "Z" or state == nil
  end

  local function pids()
    local out = {}
    for line in io.lines(dir .. "/pids") do
      local name, pid = line:match("^(%S+) (%d+)$")
      out[name] = tonumber(pid)
    end
    return out
  end

  it("runs every finally of a failing test, the last given first",
    function()
      local rc, out = run_spec([[
        local aio = require "luaio"
        local function log(s)
          local f = assert(io.open("DIR/log", "a")) f:write(s, "\n") f:close()
        end
        describe("finally", function()
          it("fails after an await", function()
            finally(function() log("first") end)
            aio.sleep(0.01)
            finally(function() aio.sleep(0.01) log("second") end)
            aio.sleep(0.01)
            error("fixture fails after awaiting")
          end)
          it("fails an assertion, and so does a finally", function()
            finally(function() log("third") end)
            finally(function() error("fixture finally fails") end)
            aio.sleep(0.01)
            assert.are.equal(1, 2)
          end)
          it("sees what they did", function()
            local f = assert(io.open("DIR/log"))
            assert.are.equal("second\nfirst\nthird\n", f:read("a"))
            f:close()
          end)
        end)]])
      assert.are_not.equal(0, rc)
      has(out, "fixture fails after awaiting")
      has(out, "fixture finally fails")
      has(out, "1 success / 1 failure / 2 errors")
      assert.are.equal("second\nfirst\nthird\n", fs.read(dir .. "/log"))
    end)

  it("stops the processes a failing test started, by PID, when it ends",
    function()
      require("luaio.test").timeout(60)
      local rc, out = run_spec([[
        local aio = require "luaio"
        local helpers = require "spec.helpers"
        local function start(name, cmd)
          local pid = helpers.background(cmd)
          local f = assert(io.open("DIR/pids", "a"))
          f:write(name, " ", pid, "\n")
          f:close()
          return pid
        end
        local function gone(pid)
          local f = io.open("/proc/" .. pid .. "/stat")
          if not f then return true end
          local state = f:read("a"):match(".*%)%s+(%a)")
          f:close()
          return state == "Z"
        end
        local file_pid = start("file", "sleep 3101.TAG")
        describe("servers", function()
          local block_pid, test_pid
          setup(function() block_pid = start("block", "sleep 3102.TAG") end)
          it("starts a long-running child and fails", function()
            test_pid = start("test", "sleep 3103.TAG")
            -- failing once the shell has started its child (a shell
            -- killed before it forks leaves no child to test)
            start("tree", "sh -c 'sleep 3104.TAG & echo > DIR/forked; wait'")
            while not io.open("DIR/forked") do aio.sleep(0.01) end
            error("fixture fails with a child running")
          end)
          it("starts one that ignores SIGTERM and passes", function()
            start("stubborn", "sh -c \"trap '' TERM; sleep 3105.TAG & "
                              .. "echo > DIR/trapped; wait\"")
            while not io.open("DIR/trapped") do aio.sleep(0.01) end
          end)
          it("runs after them: theirs are gone, the block's runs", function()
            assert.is_true(gone(test_pid))
            assert.is_false(gone(block_pid))
            assert.is_false(gone(file_pid))
          end)
        end)
        describe("after the block", function()
          it("finds its server gone too", function()
            local f = assert(io.open("DIR/pids"))
            local pid = tonumber(f:read("a"):match("block (%d+)"))
            f:close()
            assert.is_true(gone(pid))
          end)
        end)]])
      finally(function()                -- should the runner not have
        for _, pid in pairs(pids()) do
          if not gone(pid) then os.execute("kill -KILL " .. pid) end
        end
      end)
      assert.are_not.equal(0, rc)
      has(out, "fixture fails with a child running")
      has(out, "3 successes / 0 failures / 1 error")
      local started = pids()
      for _, name in ipairs{"file", "block", "test", "tree", "stubborn"} do
        assert.is_number(started[name], name)
        assert.is_true(gone(started[name]), name .. " still runs")
      end
      -- the children of the shells too (sleep 3104 and 3105); the
      -- sleeps are this run's by their TAG, not another run's at the
      -- same time on the machine
      local _, left = helpers.sh("ps -eo pid=,args=")
      assert.is_nil(left:match("%d+ sleep 310%d%." .. TAG .. "[^\n]*"))
    end)

  it("leaves alone a process that ended, and rejects what is no PID",
    function()
      local rc, out = run_spec([[
        local helpers = require "spec.helpers"
        local test = require "luaio.test"
        it("tracks an ended process and itself", function()
          local pid = helpers.background("true")
          test.track({pid = pid})
          assert.are.equal(pid, test.track(pid))
        end)
        it("rejects bad input", function()
          for _, bad in ipairs{"12", 0, -3, 1.5, {}, {pid = "x"}} do
            local ok, e = pcall(test.track, bad)
            assert.is_false(ok)
            assert.matches("bad argument #1 to 'test.track' %(a "
              .. "process id or an object with a pid field expected", e)
          end
        end)]])
      assert.are.equal(0, rc, out)
      has(out, "2 successes / 0 failures / 0 errors")
      -- outside a `luaio test` run it only returns its argument
      rc, out = helpers.run_luaio([[
        print(require("luaio.test").track(os.getenv("PPID") and 1 or 1))]])
      assert.are.equal(0, rc, out)
      assert.are.equal("1\n", out)
    end)
end)
