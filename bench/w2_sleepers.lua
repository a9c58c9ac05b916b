-- W2: N tasks each sleeping 1 s concurrently; prints wall time and RSS.
local aio = require "luaio"
local N = tonumber(arg[1]) or 100000
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
  .. package.path
local rss_mib = require("common").rss_mib
local t0 = aio.now()
local tasks = {}
for i = 1, N do tasks[i] = aio.spawn(aio.sleep, 1) end
for i = 1, N do tasks[i]:await() end
print(string.format("W2 luaio %.3f s rss_mib=%.0f", aio.now() - t0, rss_mib()))
