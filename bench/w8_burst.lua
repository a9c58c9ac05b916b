-- W8: RSS after a burst. N tasks (each yields one turn) are spawned and
-- awaited; once they are collected, the RSS must come back to within 2x
-- of its value before the burst. Prints the ratio (lower is better).
-- usage: w8_burst.lua [N]
local aio = require "luaio"
local N = tonumber(arg[1]) or 1000000

local function rss_mib (field)
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local kb = s:match(field .. ":%s*(%d+)")
  return kb and tonumber(kb) / 1024 or 0
end

-- The host shrinks its table of live tasks and returns empty slab
-- chunks at the end of a loop turn with nothing ready: wait on a timer
-- (not sleep(0), which stays in the turn) before and after collecting.
local function settle ()
  aio.sleep(0.01)                -- the live table shrinks
  collectgarbage("collect")
  collectgarbage("collect")      -- the task records' finalizers ran
  aio.sleep(0.01)                -- empty chunks go back to the system
end

settle()
local before = rss_mib("VmRSS")
-- In a function of its own: a block's dead locals would stay on the
-- main chunk's stack, where the collector still sees them.
local function burst ()
  local t0, tasks = aio.now(), {}
  for i = 1, N do
    tasks[i] = aio.spawn(function(k) aio.sleep(0); return k end, i)
  end
  for i = 1, N do tasks[i]:await() end
  return aio.now() - t0
end
local dt = burst()
settle()
local after = rss_mib("VmRSS")
print(("W8 luaio %.2f rss_before_mib=%.1f rss_after_mib=%.1f peak_mib=%.0f "
       .. "wall_s=%.3f"):format(after / before, before, after,
                                rss_mib("VmHWM"), dt))
