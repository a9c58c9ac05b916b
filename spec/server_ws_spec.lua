-- req:websocket(): the handshake, messages both ways, fragments,
-- ping/pong, the close handshake and the size bound, with raw frames
-- from luaio's net and with aiohttp's client in Python.
local aio = require "luaio"
local http = require "luaio.http"
local helpers = require "spec.helpers"

local ws = require "spec.helpers.ws"

-- Client frames with a real mask, which the server must undo.
local MASK = "\1\2\3\4"
local function frame(op, payload, fin)
  return ws.frame(op, payload, fin, MASK)
end
local read_frame, connect = ws.read_frame, ws.connect

describe("req:websocket", function()
  local srv, log
  before_each(function()
    log = {}
    srv = http.serve{handler = function(req)
      local ws = req:websocket{max_message = 1000}
      while true do
        local msg, kind = ws:receive()
        if msg == nil then log[#log + 1] = "closed " .. kind; break end
        log[#log + 1] = kind .. ":" .. msg
        if msg == "bye" then ws:close(4000, "see you"); break end
        ws:send(msg, kind)
      end
    end}
  end)
  after_each(function()
    srv:close()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("answers the handshake with the accept key", function()
    local c <close>, head = connect(srv.port)
    assert.is_truthy(head:find("^HTTP/1.1 101 Switching Protocols"))
    assert.is_truthy(head:find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 1, true))
  end)

  it("echoes text and binary, and reassembles fragments", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, "héllo"))
    assert.are.same({1, "héllo", true}, {read_frame(c)})
    c:write(frame(2, "\0\1\2"))
    assert.are.same({2, "\0\1\2", true}, {read_frame(c)})
    c:write(frame(1, "frag", false) .. frame(0, "men", false) .. frame(0, "ted"))
    assert.are.same({1, "fragmented", true}, {read_frame(c)})
    local big = ("z"):rep(900)
    c:write(frame(1, big))
    assert.are.same({1, big, true}, {read_frame(c)})
  end)

  it("answers a ping with a pong, even between fragments", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, "a", false) .. frame(9, "are you there") .. frame(0, "b"))
    assert.are.same({10, "are you there", true}, {read_frame(c)})
    assert.are.same({1, "ab", true}, {read_frame(c)})
  end)

  it("runs the close handshake both ways", function()
    local c <close> = connect(srv.port)
    c:write(frame(8, string.pack(">I2", 1000) .. "done"))
    local op, payload = read_frame(c)
    assert.are.equal(8, op)
    assert.are.equal(1000, string.unpack(">I2", payload))
    assert.are.equal("", aio.timeout(30, function() return c:read_all() end))
    for _ = 1, 6000 do                -- the handler logs on its own time
      if #log == 1 then break end
      aio.sleep(0.01)
    end
    assert.are.same({"closed 1000"}, log)
    local c2 <close> = connect(srv.port)
    c2:write(frame(1, "bye"))
    op, payload = read_frame(c2)
    assert.are.same({8, 4000, "see you"},
                    {op, string.unpack(">I2", payload), payload:sub(3)})
  end)

  it("closes with 1009 on a message over max_message", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, ("x"):rep(600), false) .. frame(0, ("x"):rep(600)))
    local op, payload = read_frame(c)
    assert.are.same({8, 1009}, {op, (string.unpack(">I2", payload))})
  end)

  it("closes on invalid UTF-8 in a text message and on unmasked frames", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, "\xff\xfe"))
    local op, payload = read_frame(c)
    assert.are.same({8, 1007}, {op, (string.unpack(">I2", payload))})
    local c2 <close> = connect(srv.port)
    c2:write("\x81\x02hi")
    op, payload = read_frame(c2)
    assert.are.same({8, 1002}, {op, (string.unpack(">I2", payload))})
  end)

  it("ends the receive loop when the client just goes away", function()
    local c = connect(srv.port)
    c:write(frame(1, "one"))
    read_frame(c)
    c:close()
    for _ = 1, 6000 do                -- up to a minute
      if #log == 2 then break end
      aio.sleep(0.01)
    end
    assert.are.same({"text:one", "closed 1006"}, log)
  end)

  it("answers 400 to a request that is no handshake", function()
    local r = http.get("http://127.0.0.1:" .. srv.port .. "/ws")
    assert.are.equal(400, r.status)
    local c <close>, head = connect(srv.port, "X: y\r\n")
    assert.is_truthy(head:find("^HTTP/1.1 101"))
  end)

  it("checks its arguments", function()
    local errs = {}
    local s <close> = http.serve{handler = function(req)
      errs[1] = select(2, pcall(req.websocket, req, {max_message = -1}))
      local ws = req:websocket()
      errs[2] = select(2, pcall(ws.send, ws, {}))
      errs[3] = select(2, pcall(ws.send, ws, "x", "utf8"))
      errs[4] = select(2, pcall(ws.close, ws, 99))
      errs[5] = select(2, pcall(ws.ping, ws, ("p"):rep(200)))
      ws:close()
    end}
    local c <close> = connect(s.port)
    assert.are.equal(8, (read_frame(c)))
    assert.is_truthy(tostring(errs[1]):find("bad argument #2 to 'req:websocket'", 1, true))
    assert.is_truthy(tostring(errs[2]):find("bad argument #2 to 'ws:send'", 1, true))
    assert.is_truthy(tostring(errs[3]):find("bad argument #3 to 'ws:send'", 1, true))
    assert.is_truthy(tostring(errs[4]):find("bad argument #2 to 'ws:close'", 1, true))
    assert.is_truthy(tostring(errs[5]):find("bad argument #2 to 'ws:ping'", 1, true))
  end)
end)

describe("req:websocket with aiohttp's client", function()
  it("talks to Python", function()
    local port, stop = helpers.child_server([[
      local http = require "luaio.http"
      local srv = http.serve{handler = function(req)
        local ws = req:websocket()
        for _ = 1, 2 do
          local msg, kind = ws:receive()
          if not msg then return end
          ws:send(kind .. ":" .. msg, kind)
        end
        ws:close(1000)
      end}
    ]])
    local py = helpers.script(([[
import asyncio, aiohttp
async def main():
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect("http://127.0.0.1:%d/") as ws:
            await ws.send_str("hi")
            print((await ws.receive()).data)
            await ws.send_bytes(b"\x00\x01")
            print((await ws.receive()).data)
            m = await ws.receive()
            print(m.type.name, ws.close_code)
asyncio.run(main())
]]):format(port))
    local rc, out = helpers.sh("/usr/bin/python3 " .. py .. " 2>&1")
    stop()
    os.remove(py)
    assert.are.equal(0, rc, out)
    assert.are.equal("text:hi\nb'binary:\\x00\\x01'\nCLOSE 1000\n", out)
  end)
end)
