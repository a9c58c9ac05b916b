-- Allocation-failure torture: a TCP echo server on 127.0.0.1 and three
-- clients exchanging lines with it.
local aio = require "luaio"
local net = require "luaio.net"
local server = net.serve("127.0.0.1", 0, function(stream)
  local s <close> = stream      -- a failed handler must not leave it open
  for line in s:lines() do s:write(line:upper() .. "\n") end
end)
local ok, e = pcall(function()
  local clients = {}
  for c = 1, 3 do
    clients[c] = aio.spawn(function()
      local conn <close> = net.connect("127.0.0.1", server.port,
                                       { timeout = 5 })
      for i = 1, 5 do
        conn:write("hello " .. i .. "\n")
        assert(conn:readline() == "HELLO " .. i)
      end
    end)
  end
  aio.gather(table.unpack(clients))
end)
server:close({ cancel = true })
if not ok then error(e, 0) end
print("done")
