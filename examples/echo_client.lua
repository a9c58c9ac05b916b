-- SPDX-License-Identifier: MIT (see LICENSE)
-- echo_client.lua: send lines to the echo server and print the answers.
-- Run: luaio examples/echo_client.lua PORT line1 line2 ...
local net = require "luaio.net"

local port = assert(tonumber(arg[1]), "usage: echo_client.lua PORT lines...")
local conn <close> = net.connect("127.0.0.1", port, {timeout = 30})
for i = 2, #arg do
  conn:write(arg[i] .. "\n")
  print("echo: " .. conn:readline())
end
