-- Issue 13 (low): memory used by a burst of tasks goes back to the
-- system once they finish. Runs a child luaio with luaio's own allocator
-- (a memory checker's malloc would hide what is measured).
local H = require "spec.helpers.init"

describe("memory after a burst of tasks #safety", function()
  local test = os.getenv("ASAN_OPTIONS") and pending or it
  test("RSS drops back within 2x of the start", function()
    local path = H.script([[
      local aio = require "luaio"
      local function rss()
        for l in io.lines("/proc/self/status") do
          local kb = l:match("^VmRSS:%s+(%d+)")
          if kb then return tonumber(kb) end
        end
      end
      local function settle()
        for _ = 1, 2 do collectgarbage(); aio.sleep(0.01) end
      end
      settle()
      local start = rss()
      local function burst()
        local ts = {}
        for i = 1, 300000 do ts[i] = aio.spawn(aio.sleep, 0.001) end
        for i = 1, #ts do ts[i]:await() end
      end
      burst()
      local peak = rss()
      settle()
      print(start, peak, rss())]])
    local rc, out = H.sh("env -u LUAIO_MALLOC timeout 60 " .. H.luaio ..
                         " " .. path .. " 2>&1")
    os.remove(path)
    assert.are.equal(0, rc, out)
    local start, peak, after = out:match("(%d+)%s+(%d+)%s+(%d+)")
    start, peak, after = tonumber(start), tonumber(peak), tonumber(after)
    assert.is_true(peak > 10 * start, out)     -- the burst was real
    assert.is_true(after < 2 * start, out)
  end)
end)
