-- http.serve against hostile clients and files, over real sockets:
-- a WebSocket frame announcing more than max_message is refused at its
-- header; http.static never serves a file a swapped symlink leads to
-- outside root.
local aio = require "luaio"
local fs = require "luaio.fs"
local http = require "luaio.http"
local net = require "luaio.net"
local helpers = require "spec.helpers"

local KEY = "dGhlIHNhbXBsZSBub25jZQ=="          -- RFC 6455's example

-- A masked client frame header announcing n payload bytes.
local function header(op, n, fin)
  local b1 = (fin == false and 0 or 0x80) | op
  local hdr
  if n < 126 then hdr = string.char(b1, 0x80 | n)
  elseif n < 65536 then hdr = string.char(b1, 0x80 | 126) .. string.pack(">I2", n)
  else hdr = string.char(b1, 0x80 | 127) .. string.pack(">I8", n) end
  return hdr .. "\0\0\0\0"                    -- a zero mask: payload as is
end

local function frame(op, payload, fin)
  return header(op, #payload, fin) .. payload
end

-- A server frame: opcode, payload (5 s at most: a bound for a hang).
local function read_frame(c)
  return aio.timeout(5, function()
    local b1, b2 = c:readexactly(2):byte(1, 2)
    local n = b2 & 0x7f
    if n == 126 then n = string.unpack(">I2", c:readexactly(2))
    elseif n == 127 then n = string.unpack(">I8", c:readexactly(8)) end
    return b1 & 0x0f, n > 0 and c:readexactly(n) or ""
  end)
end

local function connect(port)
  local c = net.connect("127.0.0.1", port)
  c:write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
          .. "Connection: Upgrade\r\nSec-WebSocket-Key: " .. KEY .. "\r\n"
          .. "Sec-WebSocket-Version: 13\r\n\r\n")
  repeat local line = c:readline() until line == "" or line == nil
  return c
end

describe("req:websocket against a frame announcing too much", function()
  local srv, ended
  before_each(function()
    ended = aio.event()
    srv = http.serve{handler = function(req)
      local ws = req:websocket{max_message = 1000}
      while true do
        local msg = ws:receive()
        if not msg then break end
        ws:send(msg)
      end
      ended:set()
    end}
  end)
  after_each(function()
    srv:close()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("closes with 1009 at the header of a 2^40-byte frame", function()
    local c <close> = connect(srv.port)
    c:write(header(2, 1 << 40))
    local op, payload = read_frame(c)
    assert.are.same({8, 1009}, {op, (string.unpack(">I2", payload))})
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)

  it("counts what a fragmented message already holds", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, ("x"):rep(600), false) .. header(0, 600))
    local op, payload = read_frame(c)
    assert.are.same({8, 1009}, {op, (string.unpack(">I2", payload))})
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)

  it("still takes a message up to max_message, header by header", function()
    local c <close> = connect(srv.port)
    c:write(header(1, 400, false):sub(1, 3))
    aio.sleep(0.05)
    c:write(header(1, 400, false):sub(4) .. ("y"):rep(400))
    c:write(header(0, 600) .. ("z"):rep(600))
    local op, payload = read_frame(c)
    assert.are.same({1, ("y"):rep(400) .. ("z"):rep(600)}, {op, payload})
    c:write(frame(8, string.pack(">I2", 1000)))
    assert.are.equal(8, (read_frame(c)))
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)
end)
