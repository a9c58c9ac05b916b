-- W1: N tasks, each yields one loop turn (sleep(0)) and returns its index;
-- the main task awaits them all. Prints tasks/s and peak RSS.
local aio = require "luaio"
local N = tonumber(arg[1]) or 100000
local function rss_mib()
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or 0
end
local t0 = aio.now()
local tasks = {}
for i = 1, N do
  tasks[i] = aio.spawn(function(k) aio.sleep(0); return k end, i - 1)
end
local s = 0
for i = 1, N do s = s + tasks[i]:await() end
local dt = aio.now() - t0
assert(s == N * (N - 1) // 2, "wrong sum")
print(string.format("W1 luaio %.0f tasks/s rss_mib=%.0f", N / dt, rss_mib()))
