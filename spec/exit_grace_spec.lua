-- The exit grace: tasks left running when the main task ends are
-- cancelled; the exit waits while they keep finishing, kills what makes
-- no progress for the grace, and lists a bounded number of them.
-- Each scenario runs as a child luaio (under `timeout`, so a hang fails
-- the spec instead of the run).
local H = require "spec.helpers.init"

local function run(src, grace)
  local path = H.script(src)
  local rc, out = H.sh(("timeout 120 %s --grace %s %s 2>&1"):format(
    H.luaio, grace, path))
  os.remove(path)
  return rc, out
end

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

describe("the exit grace", function()
  it("is not cut short while a large batch of tasks is still finishing",
     function()
    -- Each cleanup spends 25 ms of CPU time (os.clock: time the process
    -- is descheduled does not count) in Lua code, which the exit's guard
    -- watches: together 2.5 s, far past the 1 s grace, but a task
    -- finishes every 25 ms of CPU, so none is killed and every cleanup
    -- runs.
    local rc, out = run([[
      local aio = require "luaio"
      local n, done = 100, 0
      for i = 1, n do
        aio.spawn(function()
          local _ <close> = setmetatable({}, {__close = function()
            local t0 = os.clock()
            repeat until os.clock() - t0 >= 0.025
            done = done + 1
            if done == n then print("all " .. n .. " cleaned up") end
          end})
          aio.sleep(100)
        end)
      end
      aio.sleep(0.01)]], "1")
    assert.are.equal(0, rc, out:sub(1, 2000))
    assert.matches("all 100 cleaned up", out)
    assert.is_nil(out:find("killing", 1, true), out:sub(1, 2000))
  end)

  it("lists ten waiting tasks with their stacks and counts the rest",
     function()
    local rc, out = run([[
      local aio = require "luaio"
      for i = 1, 30 do
        aio.spawn(function() aio.shielded(function() aio.sleep(600) end) end)
      end
      aio.sleep(0.01)]], "0.3")
    assert.are.equal(70, rc, out)
    assert.matches("30 tasks still running 0.3 s after the cancellation", out)
    assert.are.equal(10, count(out, "task%-%d+ %(waiting%)"), out)
    assert.are.equal(10, count(out, "in function 'luaio.sleep'"), out)
    assert.matches("%.%.%. and 20 more\n", out)
  end)

  it("lists ten tasks that never wait and counts the rest", function()
    local rc, out = run([[
      local aio = require "luaio"
      for i = 1, 30 do
        aio.spawn(function() while true do pcall(aio.sleep, 1) end end)
      end
      aio.sleep(0.01)]], "0.3")
    assert.are.equal(70, rc, out)
    assert.are.equal(10, count(out, "a task never waits 0%.3 s"), out)
    assert.matches("%.%.%. and 20 more tasks that never wait killed", out)
  end)

  it("stays bounded when a task spawns as many tasks as finish", function()
    -- Tasks finish all the time, but the number left never falls: that
    -- is no progress, so the looping task is killed after the grace.
    local rc, out = run([[
      local aio = require "luaio"
      aio.spawn(function()
        while true do
          pcall(function() aio.spawn(function() end):await() end)
        end
      end)
      aio.sleep(0.01)]], "0.3")
    assert.are.equal(70, rc, out)
    assert.matches("killing", out)
  end)
end)
