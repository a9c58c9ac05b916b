-- The torture modes themselves: LUAIO_TORTURE=cancel finds a hang and a
-- leak planted in a spec, and passes a clean one; LUAIO_FAIL_ALLOC makes
-- luaio_new or a script fail cleanly.
local helpers = require "spec.helpers"

-- Run `luaio test` on spec source src with the cancellation torture;
-- returns rc and the output.
local function torture(src, mode, env)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local f = assert(io.open(dir .. "/t_spec.lua", "w"))
  f:write(src)
  f:close()
  local rc, out = helpers.sh("cd " .. dir .. " && " .. (env or "")
    .. " LUAIO_TORTURE="
    .. (mode or "cancel") .. " "
    .. "timeout 120 " .. helpers.luaio .. " test -o plainTerminal "
    .. "t_spec.lua 2>&1")
  os.execute("rm -rf " .. dir)
  return rc, out
end

describe("LUAIO_TORTURE=cancel #safety", function()
  it("cancels each body at every suspension and passes clean code",
     function()
    local rc, out = torture([[
      local aio = require "luaio"
      it("sleeps three times", function()
        for _ = 1, 3 do aio.sleep(0.001) end
      end)
      it("gathers", function()
        aio.gather(aio.spawn(aio.sleep, 0.001), aio.spawn(aio.sleep, 0))
      end)
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("torture: %d+ %(test, k%) pairs, 0 failures", out)
    local pairs = tonumber(out:match("torture: (%d+) %(test, k%) pairs"))
    assert.is_true(pairs >= 5, out)
  end)

  it("also cancels a turn later (cancel-late)", function()
    local rc, out = torture([[
      local aio = require "luaio"
      it("sleeps and queues", function()
        local q = aio.queue()
        local t = aio.spawn(function() aio.sleep(0.001); q:put(1) end)
        assert.are.equal(1, q:get())
        t:await()
      end)
    ]], "cancel-late")
    assert.are.equal(0, rc, out)
    assert.matches("torture: [1-9]%d* %(test, k%) pairs, 0 failures", out)
  end)

  -- The runs sleep 6.5 s in all, over a 5 s limit; each run sleeps at
  -- most 1 s, 4 s under it for a loaded machine.
  it("runs hooks in the main task and gives each run the time limit",
     function()
    local rc, out = torture([[
      local aio = require "luaio"
      local alive = false
      before_each(function()
        assert.are.equal(1, #aio.tasks())
        alive = true
      end)
      after_each(function()
        assert.are.equal(1, #aio.tasks())  -- the main task only
        alive = false
      end)
      it("sleeps ten times 0.1 s", function()
        assert.is_true(alive)
        for _ = 1, 10 do aio.sleep(0.1) end
      end)
    ]], nil, "LUAIO_TEST_TIMEOUT=5")
    assert.are.equal(0, rc, out)
    assert.matches("1 success / 0 failures / 0 errors", out, 1, true)
    assert.matches("torture: 10 (test, k) pairs, 0 failures", out, 1, true)
  end)

  it("reports a body that still runs after its cancel (a hang)", function()
    local rc, out = torture([[
      local aio = require "luaio"
      it("holds its cancel back", function()
        aio.sleep(0)
        aio.shielded(function() aio.sleep(4) end)
      end)
    ]], nil, "LUAIO_TORTURE_GRACE=1")
    assert.are_not.equal(0, rc)
    assert.matches("torture: FAIL holds its cancel back, k=2: hang", out)
  end)

  it("reports a descriptor left open each time a body is cancelled",
     function()
    local rc, out = torture([[
      local aio = require "luaio"
      local kept = {}
      it("opens a file", function()
        local f = io.open("t_spec.lua")
        kept[#kept + 1] = f              -- a leak when cancelled
        aio.sleep(0.001)
        f:close()
      end)
    ]])
    assert.are_not.equal(0, rc)
    assert.matches("FAIL opens a file, k=1: file descriptor %d+ %(%S+"
                   .. "t_spec.lua%) open; each time over 3 more runs", out)
    assert.matches("torture: 1 (test, k) pairs, 1 failures", out, 1, true)
  end)
end)

describe("LUAIO_FAIL_ALLOC #safety", function()
  local script = helpers.script([[
    local t = {}
    for i = 1, 1000 do t[i] = {i} end
    print("finished")
  ]])
  teardown(function() os.remove(script) end)

  local function run(n)
    return helpers.sh("LUAIO_FAIL_ALLOC=" .. n .. " timeout 120 "
                      .. helpers.luaio .. " " .. script .. " 2>&1")
  end

  it("counts the allocations of a clean run", function()
    local rc, out = run(0)
    assert.are.equal(0, rc, out)
    assert.matches("finished", out)
    assert.matches("luaio torture: %d+ allocations", out)
  end)

  it("makes luaio_new fail cleanly: no host, no crash", function()
    for _, n in ipairs({1, 2, 10, 100}) do
      local rc, out = run(n)
      assert.are.equal(1, rc, out)
      assert.matches("cannot create the host", out)
    end
  end)

  it("raises 'not enough memory' in the script", function()
    local _, out = run(0)
    local total = tonumber(out:match("luaio torture: (%d+) allocations"))
    local rc, out2 = run(total - 100)
    assert.are.equal(1, rc, out2)
    assert.matches("not enough memory", out2)
  end)
end)
