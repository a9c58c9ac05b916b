-- W6: one process: a line echo server and CONNS clients each sending
-- LINES lines, each waiting for its echo (ping-pong).
-- usage: w6_echo.lua CONNS LINES
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local aio = require "luaio"
local net = require "luaio.net"
local rss_mib = require("common").rss_mib
local conns, lines = tonumber(arg[1]) or 100, tonumber(arg[2]) or 10000
local server = net.serve("127.0.0.1", 0, function(st)
  st:setnodelay(true)
  while true do
    local line = st:readline()
    if line == nil then break end
    st:write(line .. "\n")
  end
  st:close()
end, {backlog = 1024})
local t0 = aio.now()
local function client()
  local c <close> = net.connect("127.0.0.1", server.port)
  c:setnodelay(true)
  for i = 1, lines do
    local msg = "line " .. i
    c:write(msg .. "\n")
    assert(c:readline() == msg)
  end
end
local ts = {}
for i = 1, conns do ts[i] = aio.spawn(client) end
aio.gather(ts)
local dt = aio.now() - t0
server:close({cancel = true})
print(("W6 luaio %.0f msg/s wall_s=%.3f rss_mib=%.0f"):format(conns * lines / dt, dt, rss_mib()))
