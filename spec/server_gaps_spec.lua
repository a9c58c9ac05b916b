-- http.serve: what the other server specs leave out, over real sockets.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local proc = require "luaio.proc"

local url = require("spec.helpers.serve").url
local raw = require("spec.helpers.serve").raw

-- Wait (up to 30 s: a bound for a hang) until check() is true.
local function until_true(check)
  aio.timeout(30, function()
    while not check() do aio.sleep(0.01) end
  end)
end

local function after()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("http.serve handler errors mid-stream", function()
  after_each(after)

  it("cuts the connection, so the client sees a truncated response", function()
    local rc, out = require("spec.helpers").run_luaio([[
      local aio = require "luaio"
      local http = require "luaio.http"
      local net = require "luaio.net"
      local srv <close> = http.serve{handler = function(req, res)
        if req.path == "/fine" then return "fine" end
        res:write("part one")
        error("failed half-way")
      end}
      local c <close> = net.connect("127.0.0.1", srv.port)
      c:write("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
      local got = aio.timeout(30, function() return c:read_all() end)
      print("raw", got:find("part one", 1, true) ~= nil,
            got:find("\r\n0\r\n\r\n", 1, true) ~= nil)
      local ok, e = pcall(http.get, "http://127.0.0.1:" .. srv.port .. "/x")
      print("client", ok, not ok and e.code)
      print("fine", http.get("http://127.0.0.1:" .. srv.port .. "/fine").body)
    ]])
    assert.are.equal(0, rc, out)
    -- the head and the chunk went out, never the last chunk; then a close
    assert.is_truthy(out:find("raw\ttrue\tfalse\n", 1, true), out)
    assert.is_truthy(out:find("client\tfalse\tCURLE_PARTIAL_FILE\n", 1,
                              true), out)
    assert.is_truthy(out:find("fine\tfine\n", 1, true), out)
    -- the traceback is logged, on stderr (run_luaio merges it)
    assert.is_truthy(out:find("failed half-way", 1, true), out)
    assert.is_truthy(out:find("stack traceback", 1, true), out)
  end)

  it("cuts a response of a given length short the same way", function()
    local srv <close> = http.serve{handler = function(req, res)
      res:start(200, {}, 100)
      res:write("only this")
      error("failed half-way")
    end}
    local ok, e = pcall(http.get, url(srv, "/"))
    assert.is_false(ok)
    assert.are.equal("CURLE_PARTIAL_FILE", e.code)
    local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.is_truthy(out:find("\r\n\r\nonly this$"))
  end)

  it("ends a response the handler finished before it failed", function()
    local srv <close> = http.serve{handler = function(req, res)
      res:write("all of it")
      res:finish()
      error("failed after the end")
    end}
    local r = http.get(url(srv, "/"))
    assert.are.equal(200, r.status)
    assert.are.equal("all of it", r.body)
  end)
end)

describe("http.serve req:chunks() backpressure", function()
  after_each(after)

  it("holds a client back while the handler does not take the body", function()
    local total = 64 * 1024 * 1024
    local go, got = aio.event(), nil
    local srv <close> = http.serve{max_body = total, handler = function(req)
      go:wait()
      local n = 0
      for chunk in req:chunks() do n = n + #chunk end
      got = n
      return tostring(n)
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write(("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
             .. "Connection: close\r\n\r\n"):format(total))
    local sent, block = 0, ("z"):rep(64 * 1024)
    local writer = aio.spawn(function()
      while sent < total do c:write(block); sent = sent + #block end
    end)
    aio.sleep(0.5)
    -- the kernel's buffers take a few MB at most; the server takes
    -- 64 KiB more and then stops reading
    assert.is_true(sent < total / 2, "no backpressure: " .. sent)
    assert.is_nil(got)
    go:set()
    aio.wait_for(writer, 60)
    local out = aio.timeout(60, function() return c:read_all() end)
    assert.is_truthy(out:find("^HTTP/1%.1 200 "))
    assert.is_truthy(out:find("\r\n\r\n" .. total .. "$"))
    assert.are.equal(total, got)
  end)
end)

-- A Python client that ends with a reset (SO_LINGER 0, then close): a
-- luaio stream can only close with a FIN.
local PY_RESET = [[
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "body":
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
              b"Expect: 100-continue\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:   # the handler is reading the body
        more = s.recv(100)
        assert more, got
        got += more
    assert got.startswith(b"HTTP/1.1 100 "), got
    s.sendall(b"u" * 1000)
else:
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    got = 0
    while got < 100000:             # the handler is streaming
        more = s.recv(65536)
        assert more, got
        got += len(more)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
]]

describe("http.serve with clients that reset the connection", function()
  local srv, failed, calls
  before_each(function()
    failed, calls = nil, 0
    srv = http.serve{handler = function(req, res)
      calls = calls + 1
      if req.path == "/upload" then
        local ok, e = pcall(req.body, req)
        failed = not ok and e
        return "never sent"
      elseif req.path == "/big" then
        local ok, e = pcall(function()
          local block = ("b"):rep(64 * 1024)
          for _ = 1, 4096 do res:write(block) end      -- 256 MB
        end)
        failed = not ok and e
        return
      end
      return "ok"
    end}
  end)
  after_each(function()
    srv:close{grace = 0}
    after()
  end)

  local function reset(how)
    local r = proc.run({"/usr/bin/python3", "-c", PY_RESET,
                        tostring(srv.port), how}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    until_true(function() return failed ~= nil end)
    local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\n"
                    .. "Connection: close\r\n\r\n")
    assert.is_truthy(out:find("\r\n\r\nok$"))
    -- the reset connection is gone too
    until_true(function() return srv:connections() == 0 end)
  end

  it("ends req:body() with ECONNRESET on a reset mid-body", function()
    reset("body")
    assert.are.equal("io", failed.kind)
    assert.are.equal("ECONNRESET", failed.code)
  end)

  it("ends res:write with an io error on a reset mid-response", function()
    reset("response")
    assert.are.equal("io", failed.kind)
    assert.are.equal("ECONNRESET", failed.code)
  end)
end)

describe("http.serve when the client is gone before the answer", function()
  it("drops the handler's late answer without a word on stderr", function()
    local rc, out = require("spec.helpers").run_luaio(([[
      local aio = require "luaio"
      local http = require "luaio.http"
      local proc = require "luaio.proc"
      local done = aio.event()
      local srv <close> = http.serve{handler = function(req)
        if req.path == "/fine" then return "fine" end
        local ok, e = pcall(req.body, req)
        print("body", ok, e.code)
        done:set()
        return "a late answer"
      end}
      local r = proc.run({"/usr/bin/python3", "-c", %q, tostring(srv.port),
                          "body"}, {timeout = 60})
      assert(r.code == 0, r.stderr)
      aio.wait_for(aio.spawn(done.wait, done), 30)
      print("fine", http.get("http://127.0.0.1:" .. srv.port .. "/fine").body)
    ]]):format(PY_RESET))
    assert.are.equal(0, rc, out)
    assert.are.equal("body\tfalse\tECONNRESET\nfine\tfine\n", out)
  end)
end)

describe("http.serve server-sent events", function()
  after_each(after)

  it("reach the client as they are written, not at the end", function()
    local seen = aio.event()
    local srv <close> = http.serve{handler = function(req, res)
      res.headers["Content-Type"] = "text/event-stream"
      res.headers["Cache-Control"] = "no-cache"
      res:write("event: tick\ndata: 1\n\n")
      seen:wait()                  -- only once the client read event 1
      res:write("event: tick\ndata: 2\n\n")
    end}
    local r <close> = http.get(url(srv, "/events"), {stream = true})
    assert.are.equal("text/event-stream", r.headers["content-type"])
    local text = ""
    aio.timeout(30, function()
      for chunk in r:chunks() do
        text = text .. chunk
        if text:find("data: 1\n\n", 1, true) then seen:set() end
      end
    end)
    assert.are.equal("event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n", text)
  end)
end)

describe("http.serve response methods", function()
  after_each(after)

  it("check their arguments, naming the method called", function()
    local cases = {
      {function(res) res:write(nil) end,
       "bad argument #2 to 'res:write' (string expected, got nil)"},
      {function(res) res:write({}) end,
       "bad argument #2 to 'res:write' (string expected, got table)"},
      {function(res) res:write(5) end,
       "bad argument #2 to 'res:write' (string expected, got number)"},
      {function(res) res:start("ok") end,
       "bad argument #2 to 'res:start' (integer expected, got string)"},
      {function(res) res:start(99) end,
       "bad argument #2 to 'res:start' (status out of range)"},
      {function(res) res:start(200, "x") end,
       "bad argument #3 to 'res:start' (table expected, got string)"},
      {function(res) res:start(200, {}, -1) end,
       "bad argument #4 to 'res:start' (negative length)"},
      {function(res) res:start(200, {}, 1.5) end,
       "bad argument #4 to 'res:start'"},
      {function(res) res:start(200, {X = "a\r\nb"}) end,
       "invalid character in response header value"},
      {function(res) res.status = "ok"; res:write("x") end,
       "res:write: res.status: integer expected, got string"},
      {function(res) res.headers = 5; res:finish() end,
       "res:finish: res.headers: table expected, got number"},
      {function(res) res:write("x"); res:start(200) end,
       "res:start: the response already started"},
    }
    local errs = {}
    local srv <close> = http.serve{handler = function(req, res)
      local i = tonumber(req.path:sub(2))
      local ok, e = pcall(cases[i][1], res)
      errs[i] = not ok and tostring(e)
      -- the last one started a response; the others can still answer
      if i < #cases then return 200, {}, "still answers" end
    end}
    for i, case in ipairs(cases) do
      local ok, r = pcall(http.get, url(srv, "/" .. i))
      assert.is_truthy(errs[i] and errs[i]:find(case[2], 1, true),
                       case[2] .. " <- " .. tostring(errs[i]))
      -- the position is the handler's line, never the library's
      assert.is_nil(errs[i]:find("serve.lua", 1, true), errs[i])
      if i < #cases then
        assert.is_true(ok, r)
        assert.are.equal("still answers", r.body)
      end
    end
  end)
end)

describe("http.serve request smuggling", function()
  local srv, calls
  before_each(function()
    calls = 0
    srv = http.serve{handler = function(req)
      calls = calls + 1
      return "ok " .. req.path .. " " .. #req:body()
    end}
  end)
  after_each(function()
    srv:close{grace = 0}
    after()
  end)

  local function status_of(out)
    return tonumber(out:match("^HTTP/1%.1 (%d+) "))
  end

  -- Each gets a 400 and a close before any handler runs, and the request
  -- hidden behind it is never answered.
  local function refused(head_and_body)
    local out = raw(srv.port, "POST /a HTTP/1.1\r\nHost: x\r\n" .. head_and_body
      .. "GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.are.equal(400, status_of(out), head_and_body)
    assert.is_nil(out:find("smuggled", 1, true), head_and_body)
    local _, n = out:gsub("HTTP/1%.1 ", "")
    assert.are.equal(1, n, head_and_body)
  end

  it("answers 400 to a space between a header name and its colon", function()
    refused("Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    refused("Content-Length : 5\r\n\r\nhello")
    refused("X Y: z\r\nContent-Length: 0\r\n\r\n")
    assert.are.equal(0, calls)
  end)

  it("answers 400 to a Transfer-Encoding not ending in chunked", function()
    refused("Transfer-Encoding: chunked, identity\r\n\r\n"
            .. "5\r\nhello\r\n0\r\n\r\n")
    refused("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
            .. "0\r\n\r\n")
    refused("Transfer-Encoding: gzip\r\n\r\nhello")
    assert.are.equal(0, calls)
  end)

  it("answers 400 to invalid chunk sizes, calling no handler", function()
    refused("Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n"
            .. "0\r\n\r\n")
    refused("Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")
    refused("Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    assert.are.equal(0, calls)
  end)

  it("takes a tab before a value, and a folded line as a space", function()
    local out = raw(srv.port, "POST /a HTTP/1.1\r\nHost: x\r\n"
      .. "Transfer-Encoding:\tchunked\r\nX-Folded: a\r\n b\r\n"
      .. "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert.are.equal(200, status_of(out))
    assert.is_truthy(out:find("\r\n\r\nok /a 5$"))
  end)
end)

describe("http.static options", function()
  it("are checked when the handler is made", function()
    local cases = {
      {{index = 5}, "index: file name expected"},
      {{index = "../secret.txt"}, "index: file name expected"},
      {{index = "sub/index.html"}, "index: file name expected"},
      {{index = ".."}, "index: file name expected"},
      {{index = "a\0b"}, "index: file name expected"},
      {{max_age = "60"}, "max_age: non-negative integer expected"},
      {{max_age = -1}, "max_age: non-negative integer expected"},
      {{max_age = 1.5}, "max_age: non-negative integer expected"},
      {{dotfiles = "yes"}, "dotfiles: boolean expected"},
    }
    for _, case in ipairs(cases) do
      local ok, e = pcall(http.static, "/tmp", case[1])
      assert.is_false(ok, case[2])
      assert.are.equal("bad argument #2 to 'http.static' (" .. case[2] .. ")",
                       tostring(e))
    end
    assert.are.equal("function", type(http.static("/tmp", {index = "index.html",
      max_age = 0, dotfiles = false})))
  end)
end)

describe("req:websocket options", function()
  after_each(after)

  it("must be a table, checked before the handshake is answered", function()
    local err
    local srv <close> = http.serve{handler = function(req)
      err = select(2, pcall(req.websocket, req, 5))
      local ws = req:websocket()
      ws:close()
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
      .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert.are.equal("HTTP/1.1 101 Switching Protocols", c:readline())
    assert.are.equal("bad argument #2 to 'req:websocket' (table expected, "
                     .. "got number)", err)
  end)
end)

describe("req:json", function()
  after_each(after)

  it("answers 400 to a body that is not JSON, and names the error", function()
    local caught
    local srv <close> = http.serve{handler = function(req)
      if req.path == "/catch" then
        caught = select(2, pcall(req.json, req))
        return 422, {}, "bad JSON"
      end
      return req:json()
    end}
    local r = http.post(url(srv, "/"), {body = "{bad"})
    assert.are.equal(400, r.status)
    assert.are.equal("malformed request body\n", r.body)
    r = http.post(url(srv, "/"), {body = '{"a":[1]}'})
    assert.are.equal('{"a":[1]}', r.body)
    assert.are.equal(422, http.post(url(srv, "/catch"), {body = "[1,"}).status)
    assert.are.equal("http", caught.kind)
    assert.are.equal("EBADMSG", caught.code)
    assert.are.equal("req:json", caught.op)
    assert.is_truthy(tostring(caught):find("not JSON", 1, true))
  end)
end)

describe("req:websocket with broken control frames", function()
  local frame = require("spec.helpers.ws").frame

  local srv
  before_each(function()
    srv = http.serve{handler = function(req)
      if req.path == "/alive" then return "alive" end
      local ws = req:websocket()
      repeat
        local msg, kind = ws:receive()
        if msg then ws:send(msg, kind) end
      until msg == nil
    end}
  end)
  after_each(function()
    srv:close{grace = 0}
    after()
  end)

  -- Send a frame after the handshake: the server sends a close frame or
  -- just closes; then it serves the next client.
  local function refused(bytes)
    local c <close> = require("spec.helpers.ws").connect(srv.port, nil, "/")
    c:write(bytes)
    local rest = aio.timeout(30, function() return c:read_all() end)
    assert.is_true(rest == "" or rest:byte(1) == 0x88, ("%q"):format(rest))
    assert.are.equal("alive", http.get(url(srv, "/alive")).body)
  end

  -- These closed the connection from inside libwslay's send call, which
  -- freed its context under it: a crash.
  it("closes on a ping over 125 bytes", function()
    refused(frame(9, ("p"):rep(126)))
  end)

  it("closes on a fragmented ping", function()
    refused(frame(9, "p", false))
  end)

  it("closes on a fragmented close", function()
    refused(frame(8, "\3\232", false))
  end)
end)

describe("req:websocket when the client goes away", function()
  it("makes ws:send raise ECONNRESET, ending the handler quietly", function()
    local rc, out = require("spec.helpers").run_luaio([[
      local aio = require "luaio"
      local http = require "luaio.http"
      local net = require "luaio.net"
      local ended = aio.event()
      local srv <close> = http.serve{handler = function(req)
        local ws = req:websocket()
        if req.path == "/caught" then
          local ok, e = pcall(function()
            while true do ws:send(("m"):rep(1000)) end
          end)
          print("caught", e.kind, e.code, e.op)
          ended:set()
          return
        elseif req.path == "/own" then
          ws:close()
          print("own", select(2, pcall(ws.send, ws, "late")))
          return
        end
        while true do ws:send(("m"):rep(1000)) end    -- left uncaught
      end}
      for _, path in ipairs{"/caught", "/uncaught", "/own"} do
        local c = net.connect("127.0.0.1", srv.port)
        c:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n"
          .. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
          .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          .. "Sec-WebSocket-Version: 13\r\n\r\n")
        repeat until c:readline() == ""
        c:readexactly(2)
        c:close()
      end
      aio.wait_for(aio.spawn(ended.wait, ended), 30)
      aio.timeout(30, function()
        while srv:connections() > 0 do aio.sleep(0.01) end
      end)
    ]])
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("caught\tio\tECONNRESET\tws:send\n", 1, true),
                     out)
    assert.is_truthy(out:find("own\tws:send: the WebSocket is closing\n", 1,
                              true), out)
    assert.is_nil(out:find("error in handler", 1, true), out)
  end)
end)
