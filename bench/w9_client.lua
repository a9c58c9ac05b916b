-- SPDX-License-Identifier: MIT (see LICENSE)
-- A fixed number of keep-alive requests to the W9 server, pipelined:
-- the deterministic load of bench/serve_calls.sh (wrk runs for a time).
-- Run: luaio bench/w9_client.lua PORT TOTAL [CONNS [DEPTH [PATH]]]
-- TOTAL / CONNS requests per connection stay under the server's
-- max_requests (1000); each waits for DEPTH answers before sending more.
local aio = require "luaio"
local net = require "luaio.net"

local port, total = tonumber(arg[1]), tonumber(arg[2])
local conns, depth = tonumber(arg[3] or 10), tonumber(arg[4] or 16)
local req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: w9\r\n"
             .. "Accept: */*\r\n\r\n"):format(arg[5] or "/hello")
local STATUS = "HTTP/1%.1 200"

-- Count the answers as their status lines go by (one may be split
-- between two reads: the tail of each read is kept for the next).
local function one()
  local s <close> = net.connect("127.0.0.1", port)
  local left, tail = total // conns, ""
  while left > 0 do
    local d = math.min(depth, left)
    s:write(req:rep(d))
    local got = 0
    while got < d do
      local buf = tail .. assert(s:read(), "the server closed")
      for _ in buf:gmatch(STATUS) do got = got + 1 end
      tail = buf:sub(-12)
      if tail:find(STATUS) then tail = "" end
    end
    left = left - d
  end
end

local tasks = {}
for i = 1, conns do tasks[i] = aio.spawn(one) end
aio.gather(table.unpack(tasks))
