-- The collector's pause follows the share of the heap held by live
-- tasks (host/gc.c): Lua's 200 for data, up to 400 for a heap of tasks;
-- a pause the script sets is kept.
local aio = require "luaio"
local H = require "spec.helpers.init"

-- The current pause: "setpause" answers the old value; put it back
-- before any yield, so the host never sees the probe.
local function pause()
  local p = collectgarbage("setpause", 200)
  collectgarbage("setpause", p)
  return p
end

-- n tasks asleep until ev is set, and a turn for the host to look.
local function sleepers(n, ev)
  local ts = {}
  for i = 1, n do ts[i] = aio.spawn(function() ev:wait() end) end
  aio.sleep(0)
  return ts
end

describe("the collector's pause", function()
  it("grows while live tasks fill the heap and goes back when they end",
     function()
    collectgarbage()
    local before = pause()
    local ev = aio.event()
    local ts = sleepers(20000, ev)
    local during = pause()
    ev:set()
    for i = 1, #ts do ts[i]:await() end
    ts = nil
    collectgarbage()
    aio.sleep(0)
    local after = pause()
    assert.equals(200, before)
    assert.is_true(during >= 300 and during <= 400,
                   "pause with 20,000 tasks: " .. during)
    assert.equals(200, after)
  end)

  it("stays at Lua's for a heap of plain data", function()
    local data = {}
    for i = 1, 300000 do data[i] = "item " .. i end
    aio.sleep(0)
    assert.equals(200, pause())
    assert.equals(300000, #data)
  end)

  it("is left as the script set it, in generational mode too", function()
    -- In a child: once a script sets the pause, the host stops tuning
    -- for the rest of the process.
    local path = H.script([[
      local aio = require "luaio"
      local function pause()
        local p = collectgarbage("setpause", 200)
        collectgarbage("setpause", p)
        return p
      end
      local function burst()
        local ev, ts = aio.event(), {}
        for i = 1, 20000 do ts[i] = aio.spawn(function() ev:wait() end) end
        aio.sleep(0)
        local p = pause()
        ev:set()
        for i = 1, #ts do ts[i]:await() end
        return p
      end
      local tuned = burst()
      collectgarbage("setpause", 160)
      local kept = burst()
      collectgarbage("generational")
      local p3 = burst()
      print(tuned, kept, p3, collectgarbage("incremental"))
    ]])
    local rc, out = H.sh(("timeout 120 %s %s 2>&1"):format(H.luaio, path))
    os.remove(path)
    assert.equals(0, rc, out)
    local tuned, kept, p3, mode = out:match("^(%d+)%s+(%d+)%s+(%d+)%s+(%a+)")
    assert.is_true(tonumber(tuned) >= 300, out)
    assert.equals("160", kept, out)
    assert.equals("160", p3, out)
    assert.equals("generational", mode, out)
  end)
end)
