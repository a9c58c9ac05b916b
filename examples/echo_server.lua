-- SPDX-License-Identifier: MIT (see LICENSE)
-- echo_server.lua: a line echo server. Run: luaio examples/echo_server.lua [port]
-- It prints the port it listens on (0 picks a free one); Ctrl-C stops it.
local aio = require "luaio"
local net = require "luaio.net"

local server = net.serve("127.0.0.1", tonumber(arg[1]) or 0, function(stream)
  for line in stream:lines() do
    stream:write(line .. "\n")
  end
  stream:close()
end)
print("listening on port " .. server.port)
io.stdout:flush()
aio.sleep(tonumber(arg[2]) or math.huge)   -- serve until Ctrl-C (or arg 2 s)
server:close({cancel = true})
