-- SPDX-License-Identifier: MIT (see LICENSE)
-- chat_server.lua: every line a client sends reaches every other client.
-- Run: luaio examples/chat_server.lua [port] ; then connect with telnet/nc.
local aio = require "luaio"
local net = require "luaio.net"

local clients = {}                      -- stream -> name

local function broadcast(from, text)
  for stream in pairs(clients) do
    if stream ~= from then
      -- one slow client must not stall the others: write in its own task
      aio.spawn(function() pcall(stream.write, stream, text) end)
    end
  end
end

local server = net.serve("127.0.0.1", tonumber(arg[1]) or 0, function(stream)
  local host, port = stream:peername()
  local name = host .. ":" .. port
  clients[stream] = name
  local ok, err = pcall(function()
    for line in stream:lines() do broadcast(stream, name .. ": " .. line .. "\n") end
  end)
  clients[stream] = nil
  stream:close()
  if not ok and not aio.is_cancelled(err) then error(err, 0) end
end)
print("chat on port " .. server.port)
io.stdout:flush()
aio.sleep(tonumber(arg[2]) or math.huge)
server:close({cancel = true})
