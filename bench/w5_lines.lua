-- W5b: the lines of a text file, one by one.
-- usage: w5_lines.lua PATH
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local aio = require "luaio"
local fs = require "luaio.fs"
local rss_mib = require("common").rss_mib
local path = arg[1]
local t0 = aio.now()
local f <close> = fs.open(path)
local lines, bytes = 0, 0
for line in f:lines() do
  lines = lines + 1
  bytes = bytes + #line + 1
end
local dt = aio.now() - t0
print(("W5b luaio %.0f MB/s lines=%d wall_s=%.3f rss_mib=%.0f")
  :format(bytes / dt / 1e6, lines, dt, rss_mib()))
