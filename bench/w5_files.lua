-- W5a: N files of 4 KiB written then read back, concurrently, in DIR.
-- usage: w5_files.lua DIR N
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local aio = require "luaio"
local fs = require "luaio.fs"
local rss_mib = require("common").rss_mib
local dir, n = arg[1], tonumber(arg[2]) or 1000
local data = string.rep("x", 4096)
local t0 = aio.now()
local ts = {}
for i = 1, n do
  ts[i] = aio.spawn(function()
    local path = dir .. "/f" .. i
    fs.write(path, data)
    return #fs.read(path)
  end)
end
local sizes = {aio.gather(ts)}
local dt = aio.now() - t0
for i = 1, n do assert(sizes[i] == 4096) end
print(("W5a luaio %.0f files/s wall_s=%.3f rss_mib=%.0f"):format(n / dt, dt, rss_mib()))
