-- W1: N tasks, each yields one loop turn (sleep(0)) and returns its index;
-- the main task awaits them all. Prints tasks/s and peak RSS.
local aio = require "luaio"
local N = tonumber(arg[1]) or 100000
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
  .. package.path
local rss_mib = require("common").rss_mib
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
