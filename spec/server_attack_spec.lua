-- http.serve under hostile or broken clients, over real sockets: each
-- gets the right status or a close, and nothing blocks the others.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"

local url = require("spec.helpers.serve").url

local raw = require("spec.helpers.serve").raw

local function status_of(out) return tonumber(out:match("^HTTP/1%.1 (%d+) ")) end

describe("http.serve attacks", function()
  local srv, calls
  local function handler(req, res)
    calls = calls + 1
    if req.path == "/body" then return tostring(#req:body()) end
    if req.path == "/big" then
      local block = ("b"):rep(64 * 1024)
      for _ = 1, 512 do res:write(block) end
      return
    end
    return "ok " .. req.path
  end
  before_each(function()
    calls = 0
    -- header_timeout: every request of these tests must get its head in
    -- before it, however loaded the machine (the slowloris test has a
    -- server of its own). idle_timeout: the 1,000 keep-alive
    -- connections below must all still be open once the last is served,
    -- which under valgrind on a loaded machine took more than the
    -- default 5 s.
    srv = http.serve{header_timeout = 30, idle_timeout = 60,
                     handler = handler}
  end)
  after_each(function()
    srv:close{grace = 0}
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  local function still_serves()
    assert.are.equal("ok /alive", http.get(url(srv, "/alive")).body)
  end

  it("answers 400 to a malformed request line", function()
    assert.are.equal(400, status_of(raw(srv.port, "GET\r\n\r\n")))
    assert.are.equal(400, status_of(raw(srv.port, "GET / HTTP/9.x\r\n\r\n")))
    assert.are.equal(400, status_of(raw(srv.port, "\0\1\2garbage\r\n\r\n")))
    assert.are.equal(0, calls)
    still_serves()
  end)

  it("answers 400 to an unknown method", function()
    assert.are.equal(400, status_of(raw(srv.port, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n")))
    assert.are.equal(0, calls)
  end)

  it("answers 400 to Content-Length with Transfer-Encoding (smuggling)", function()
    local out = raw(srv.port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
      .. "Host: x\r\n\r\n")
    assert.are.equal(400, status_of(out))
    assert.is_nil(out:find("smuggled", 1, true))
    assert.are.equal(0, calls)
  end)

  it("answers 400 to a duplicate Content-Length", function()
    local out = raw(srv.port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
      .. "Content-Length: 30\r\n\r\nabc")
    assert.are.equal(400, status_of(out))
    assert.are.equal(0, calls)
  end)

  it("answers 400 to an invalid chunk size", function()
    local out = raw(srv.port, "POST /body HTTP/1.1\r\nHost: x\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    assert.are.equal(400, status_of(out))
    still_serves()
  end)

  it("answers 400 to NUL, CR or LF inside a header", function()
    for _, bad in ipairs({"X-A: a\0b", "X-A: a\rb", "X\nA: b", "X-A\0: b"}) do
      local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\n" .. bad .. "\r\n\r\n")
      assert.are.equal(400, status_of(out), bad)
    end
    assert.are.equal(0, calls)
  end)

  it("answers 431 to a 1 MB header and goes on serving", function()
    local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: "
                    .. ("h"):rep(1024 * 1024) .. "\r\n\r\n")
    assert.are.equal(431, status_of(out))
    still_serves()
  end)

  it("drops a slowloris client after header_timeout", function()
    -- A head that never ends (a byte every 0.1 s, for ever), so the
    -- timeout is all that can end it however slow the machine; 1 s on a
    -- server of its own, where the others get 30 s.
    srv:close{grace = 0}
    srv = http.serve{header_timeout = 1, idle_timeout = 60,
                     handler = handler}
    local c <close> = net.connect("127.0.0.1", srv.port)
    local dropped = aio.spawn(function()
      return not pcall(function()
        c:write("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while true do
          c:write("s")
          aio.sleep(0.1)
        end
      end)
    end)
    aio.sleep(0.2)
    still_serves()
    assert.is_true(aio.wait_for(dropped, 60))
    assert.are.equal(1, calls)                   -- still_serves' only
  end)

  it("serves others while a client never reads a large response", function()
    local c = net.connect("127.0.0.1", srv.port)
    c:write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    -- once its handler runs (32 MiB: more than the sockets hold), not
    -- after 0.3 s, when on a loaded machine it may not have started
    for _ = 1, 3000 do
      if calls == 1 then break end
      aio.sleep(0.02)
    end
    assert.are.equal(1, calls)
    for _ = 1, 3 do still_serves() end
    c:close()
  end)

  it("answers pipelined requests in order", function()
    local out = raw(srv.port, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
      .. "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local bodies = {}
    for body in out:gmatch("\r\n\r\n(.-)HTTP/1%.1") do bodies[#bodies + 1] = body end
    bodies[#bodies + 1] = out:match(".*\r\n\r\n(.*)$")
    assert.are.same({"ok /1", "4", "ok /3"}, bodies)
  end)

  it("answers a pipeline longer than its input buffer, in order", function()
    srv:route("GET", "/slow", function() aio.sleep(0.1) return "slow" end)
    local n, pad = 900, ("p"):rep(80)   -- about 100 KB of requests
    local parts = {"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"}
    for i = 1, n do
      parts[#parts + 1] = "GET /" .. i .. " HTTP/1.1\r\nHost: x\r\nX-Pad: "
                          .. pad .. "\r\n\r\n"
    end
    parts[#parts + 1] = "GET /end HTTP/1.1\r\nHost: x\r\n"
                        .. "Connection: close\r\n\r\n"
    local out = raw(srv.port, table.concat(parts))
    local bodies = {}
    for body in out:gmatch("\r\n\r\n([^H]*)") do bodies[#bodies + 1] = body end
    assert.are.equal(n + 2, #bodies)
    assert.are.equal("slow", bodies[1])
    assert.are.equal("ok /1", bodies[2])
    assert.are.equal("ok /" .. n, bodies[n + 1])
    assert.are.equal("ok /end", bodies[n + 2])
    still_serves()
  end)

  it("lives on when a client leaves while its handler streams", function()
    -- In order (events, not a 0.05 s and a 0.2 s sleep, which a loaded
    -- machine can swap): the handler runs, the client leaves, the
    -- handler writes until it learns (the first write to a closed peer
    -- may still be taken by the kernel).
    local running, left, done = aio.event(), aio.event(), aio.event()
    local err
    srv:route("GET", "/wait", function(req, res)
      running:set()
      left:wait()
      local ok, e = pcall(function()
        for _ = 1, 3000 do
          res:write("late")
          aio.sleep(0.02)
        end
      end)
      err = not ok and e
      done:set()
    end)
    local c = net.connect("127.0.0.1", srv.port)
    c:write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    running:wait()
    c:close()
    left:set()
    assert.is_true(aio.wait_for(aio.spawn(done.wait, done), 60))
    assert.are.equal("ECONNRESET", err.code)
    still_serves()
  end)

  it("survives a client that goes away mid-body", function()
    local failed
    local reading = aio.event()
    srv:route("POST", "/upload", function(req)
      reading:set()
      local ok, e = pcall(req.body, req)
      failed = not ok and e
      return "never sent"
    end)
    local c = net.connect("127.0.0.1", srv.port)
    c:write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            .. ("u"):rep(1000))
    reading:wait()                      -- it waits in req:body() now
    c:close()
    for _ = 1, 3000 do                  -- up to a minute on a loaded machine
      if failed then break end
      aio.sleep(0.02)
    end
    assert.are.equal("io", failed.kind)
    assert.are.equal("ECONNRESET", failed.code)
    still_serves()
  end)

  -- 10,000, from another process: spec/server_idle_spec.lua
  it("holds 1,000 idle keep-alive connections and serves others", function()
    local conns = {}
    for i = 1, 1000 do
      local c = net.connect("127.0.0.1", srv.port)
      c:write("GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
      conns[i] = c
    end
    for _, c in ipairs(conns) do
      assert.are.equal("HTTP/1.1 200 OK", c:readline())
    end
    assert.are.equal(1000, srv:connections())
    still_serves()
    for _, c in ipairs(conns) do c:close() end
  end)
end)

describe("http.serve slow clients", function()
  after_each(function()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  -- Wait (at most a minute) until f() is true.
  local function until_true(f)
    for _ = 1, 3000 do
      if f() then return true end
      aio.sleep(0.02)
    end
    return false
  end

  it("drops a client that trickles its body after body_timeout", function()
    local failed
    local srv <close> = http.serve{body_timeout = 0.3, handler = function(req)
      local ok, e = pcall(req.body, req)
      failed = not ok and e
      return "never sent"
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
    local trickle = aio.spawn(function()
      return pcall(function()
        for _ = 1, 100 do c:write("x"); aio.sleep(0.05) end
      end)
    end)
    assert.is_true(until_true(function() return failed end))
    assert.is_true(aio.is_timeout(failed))
    assert.matches("body_timeout", tostring(failed), 1, true)
    assert.are.equal("", aio.timeout(30, function() return c:read_all() end))
    trickle:cancel()
    assert.is_true(until_true(function() return srv:connections() == 0 end))
    assert.are.equal("ok", http.post("http://127.0.0.1:" .. srv.port .. "/",
      {body = "ok"}).body == "never sent" and "ok")
  end)

  it("does not count the handler's own pauses against body_timeout", function()
    -- 3 s: the body's bytes must not be 3 s apart once the handler reads,
    -- even on a loaded machine (client and server share one loop, which
    -- can stall for a second there); the handler's pause is longer
    require("luaio.test").timeout(120)
    local srv <close> = http.serve{body_timeout = 3, handler = function(req)
      aio.sleep(4)                     -- the client waits for us meanwhile
      return tostring(#req:body())
    end}
    local body = ("y"):rep(200 * 1024)
    local r = http.post("http://127.0.0.1:" .. srv.port .. "/", {body = body})
    assert.are.equal(tostring(#body), r.body)
  end)

  it("closes on a client that never reads, after write_timeout", function()
    local failed
    local srv <close> = http.serve{write_timeout = 0.3, handler = function(_, res)
      local block = ("b"):rep(64 * 1024)
      local ok, e = pcall(function()
        for _ = 1, 4096 do res:write(block) end
      end)
      failed = not ok and e
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.is_true(until_true(function() return failed end))
    assert.is_true(aio.is_timeout(failed))
    assert.matches("write_timeout", tostring(failed), 1, true)
    assert.is_true(until_true(function() return srv:connections() == 0 end))
  end)

  it("keeps a slow but steady reader past write_timeout", function()
    -- reads 0.02 s apart for 5 s or more: longer than write_timeout,
    -- which is still 150 times the gap (client and server share one
    -- loop, which a loaded machine may stall for a second)
    require("luaio.test").timeout(120)
    local block = ("s"):rep(64 * 1024)
    local srv <close> = http.serve{write_timeout = 3, handler = function(_, res)
      for _ = 1, 64 do res:write(block) end
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local n = 0
    aio.timeout(60, function()
      while true do
        local s = c:read(16 * 1024)
        if not s or s == "" then break end
        n = n + #s
        aio.sleep(0.02)
      end
    end)
    assert.is_true(n > 64 * #block)          -- head and chunk sizes too
  end)

  it("refuses a bad body_timeout or write_timeout", function()
    for _, name in ipairs({"body_timeout", "write_timeout"}) do
      for _, bad in ipairs({-1, 0, "x"}) do
        local ok, e = pcall(http.serve, {[name] = bad})
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'http.serve' (" .. name, e, 1, true)
      end
    end
  end)
end)
