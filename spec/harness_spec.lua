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
