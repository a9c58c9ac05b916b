-- A raw WebSocket client for the server specs: frames built and read by
-- hand (RFC 6455), so a spec can send what no real client would.
--   local ws = require "spec.helpers.ws"
--   local c = ws.connect(port)            -- after the 101 handshake
--   c:write(ws.frame(1, "hi")); local op, payload, fin = ws.read_frame(c)
local net = require "luaio.net"

local M = {}

M.KEY = "dGhlIHNhbXBsZSBub25jZQ=="           -- RFC 6455's example

-- A client frame header announcing n payload bytes, masked as clients
-- must be (mask: 4 bytes, default four zeros, which leave the payload
-- as it is); fin false makes a fragment.
function M.header(op, n, fin, mask)
  local b1 = (fin == false and 0 or 0x80) | op
  local hdr
  if n < 126 then hdr = string.char(b1, 0x80 | n)
  elseif n < 65536 then
    hdr = string.char(b1, 0x80 | 126) .. string.pack(">I2", n)
  else
    hdr = string.char(b1, 0x80 | 127) .. string.pack(">I8", n)
  end
  return hdr .. (mask or "\0\0\0\0")
end

-- A whole client frame. With a mask, the payload is masked with it.
function M.frame(op, payload, fin, mask)
  if mask then
    local i = 0
    payload = payload:gsub(".", function(ch)
      i = i + 1
      return string.char(ch:byte() ~ mask:byte((i - 1) % 4 + 1))
    end)
  end
  return M.header(op, #payload, fin, mask) .. payload
end

-- A server frame from stream c: opcode, payload, fin.
function M.read_frame(c)
  local b1, b2 = c:readexactly(2):byte(1, 2)
  local n = b2 & 0x7f
  if n == 126 then n = string.unpack(">I2", c:readexactly(2))
  elseif n == 127 then n = string.unpack(">I8", c:readexactly(8)) end
  return b1 & 0x0f, n > 0 and c:readexactly(n) or "", (b1 & 0x80) ~= 0
end

-- Connect to 127.0.0.1:port and send the handshake for path (default
-- "/ws") with extra header lines; returns the stream, after the
-- response's head, and that head (its lines joined by "\n").
function M.connect(port, extra, path)
  local c = net.connect("127.0.0.1", port)
  c:write("GET " .. (path or "/ws") .. " HTTP/1.1\r\nHost: x\r\n"
          .. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
          .. "Sec-WebSocket-Key: " .. M.KEY .. "\r\n"
          .. "Sec-WebSocket-Version: 13\r\n" .. (extra or "") .. "\r\n")
  local head = {}
  repeat
    local line = c:readline()
    head[#head + 1] = line
  until line == "" or line == nil
  return c, table.concat(head, "\n")
end

return M
