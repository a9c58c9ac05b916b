-- SPDX-License-Identifier: MIT (see LICENSE)
-- What the http.serve specs share: a server's URL, and a raw exchange
-- over TCP for what an HTTP client would not send.
local aio = require "luaio"
local net = require "luaio.net"

local M = {}

function M.url(srv, path) return "http://127.0.0.1:" .. srv.port .. path end

-- Send raw bytes, read until the server closes (at most 30 s: a bound
-- for a hang, generous for a loaded machine).
function M.raw(port, data)
  local c <close> = net.connect("127.0.0.1", port)
  c:write(data)
  return aio.timeout(30, function() return c:read_all() end)
end

return M
