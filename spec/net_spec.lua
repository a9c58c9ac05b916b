local aio = require "luaio"
local net = require "luaio.net"
local helpers = require "spec.helpers"

local function echo_server()
  return net.serve("127.0.0.1", 0, function(st)
    for line in st:lines() do st:write(line .. "\n") end
    st:close()
  end)
end

local function fails(kind, fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  assert.is_true(aio.is_error(e, kind), tostring(e))
  return e
end

describe("net.connect / net.serve", function()
  local srv
  before_each(function() srv = echo_server() end)
  after_each(function()
    srv:close({cancel = true})
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("round-trips lines", function()
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("one\ntwo\r\n")
    assert.are.equal("one", c:readline())
    assert.are.equal("two", c:readline())
    local host, port = c:peername()
    assert.are.equal("127.0.0.1", host)
    assert.are.equal(srv.port, port)
  end)

  it("reads up to n, exactly n, until a separator, and all", function()
    local s = net.serve("127.0.0.1", 0, function(st)
      st:write("abcdef|rest of it")
      st:close()
    end)
    local c <close> = net.connect("127.0.0.1", s.port)
    assert.are.equal("ab", c:readexactly(2))
    assert.are.equal("cdef|", c:readuntil("|"))
    assert.are.equal("rest of it", c:read_all())
    assert.is_nil(c:read())                        -- EOF
    s:close()
  end)

  it("readexactly at EOF raises with the partial data", function()
    local s = net.serve("127.0.0.1", 0, function(st) st:write("abc"); st:close() end)
    local c <close> = net.connect("127.0.0.1", s.port)
    local e = fails("eof", function() c:readexactly(10) end)
    assert.are.equal("abc", e.partial)
    s:close()
  end)

  it("returns a last line without newline, then nil", function()
    local s = net.serve("127.0.0.1", 0, function(st) st:write("x\nlast"); st:close() end)
    local c <close> = net.connect("127.0.0.1", s.port)
    local lines = {}
    for l in c:lines() do lines[#lines + 1] = l end
    assert.are.same({"x", "last"}, lines)
    s:close()
  end)

  it("refuses an over-long line instead of buffering it", function()
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:set_max_line(100)
    c:write(string.rep("y", 5000) .. "\n")
    fails("limit", function() c:readline() end)
  end)

  it("applies backpressure to writers without losing data", function()
    local got
    local gate = aio.event()
    local s = net.serve("127.0.0.1", 0, function(st)
      gate:wait()                          -- do not read for a while
      got = #st:read_all()
      st:close()
    end)
    local c = net.connect("127.0.0.1", s.port)
    local chunk = string.rep("z", 1 << 20)
    local writer = aio.spawn(function()
      for _ = 1, 32 do c:write(chunk) end  -- 32 MiB: far over the buffers
      c:close()
    end)
    aio.sleep(0.1)
    assert.are.equal("pending", writer:status())    -- waiting for drain
    gate:set()
    writer:await()
    s:close({wait = true})
    assert.are.equal(32 << 20, got)
  end)

  it("half-closes with shutdown", function()
    local s = net.serve("127.0.0.1", 0, function(st)
      local data = st:read_all()
      st:write("got " .. #data)
      st:close()
    end)
    local c <close> = net.connect("127.0.0.1", s.port)
    c:write("12345")
    c:shutdown()
    assert.are.equal("got 5", c:read_all())
    s:close()
  end)

  it("raises an error, not SIGPIPE, writing to a closed peer", function()
    local s = net.serve("127.0.0.1", 0, function(st) st:close() end)
    local c <close> = net.connect("127.0.0.1", s.port)
    assert.is_nil(c:read())                        -- the peer is gone
    local ok, e = pcall(function()
      for _ = 1, 100 do c:write(string.rep("x", 65536)) end
      c:close()
    end)
    assert.is_false(ok)
    assert.is_true(e.code == "EPIPE" or e.code == "ECONNRESET", tostring(e))
    s:close()
  end)

  it("reports a reset by the peer mid-read", function()
    -- The server closes once all the client wrote is in its socket (not
    -- after a sleep a stall can outlast): unread data makes close a RST.
    -- Its close waits a turn, so the client's read (started by then)
    -- takes "partial line" in the poll before: data the kernel still
    -- held when the RST came would be reported as EOF.
    local written = aio.event()
    local s = net.serve("127.0.0.1", 0, function(st)
      st:write("partial line")
      written:wait()
      aio.sleep(0)
      st:close()
    end)
    local c <close> = net.connect("127.0.0.1", s.port)
    c:write(string.rep("unread ", 10000))          -- unread data: close = RST
    c:drain()
    written:set()
    local e = fails("io", function() c:readexactly(1000) end)
    assert.are.equal("ECONNRESET", e.code)
    assert.are.equal("partial line", e.partial)    -- nothing received is lost
    s:close()
  end)

  it("holds 1,000 concurrent connections", function()
    local script = helpers.script([[
      local aio = require "luaio"
      local net = require "luaio.net"
      local open = 0
      local srv = net.serve("127.0.0.1", 0, function(st)
        open = open + 1
        st:readline()
        st:write("bye\n")
        st:close()
      end, {backlog = 2048})
      local conns = {}
      for i = 1, 1000 do conns[i] = net.connect("127.0.0.1", srv.port) end
      while srv.connections < 1000 do aio.sleep(0.01) end
      print("connections", srv.connections)
      for i = 1, 1000 do conns[i]:write("x\n") end
      local byes = 0
      for i = 1, 1000 do
        if conns[i]:readline() == "bye" then byes = byes + 1 end
        conns[i]:close()
      end
      print("byes", byes)
      srv:close({wait = true})
    ]])
    local rc, out = helpers.sh("ulimit -n 4096; " .. helpers.luaio .. " " .. script .. " 2>&1")
    os.remove(script)
    assert.are.equal(0, rc, out)
    assert.matches("connections\t1000\nbyes\t1000\n", out)
  end)

  it("reports refused connections with errno and address", function()
    local e = fails("io", function() net.connect("127.0.0.1", 1) end)
    assert.are.equal("ECONNREFUSED", e.code)
    assert.matches("net_spec.lua:%d+: connect '127.0.0.1:1': ECONNREFUSED "
      .. "%(connection refused%)$", tostring(e))
  end)

  it("cancels a waiting read, leaving the stream usable", function()
    local c <close> = net.connect("127.0.0.1", srv.port)
    local t = aio.spawn(function() return c:readline() end)
    aio.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    c:write("still\n")
    assert.are.equal("still", c:readline())
  end)

  it("times out a read under aio.timeout", function()
    local c <close> = net.connect("127.0.0.1", srv.port)
    local ok, e = pcall(aio.timeout, 0.05, c.readline, c)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
  end)

  it("keeps serving when a handler fails", function()
    local calls = 0
    local s = net.serve("127.0.0.1", 0, function(st)
      calls = calls + 1
      st:close()
      if calls == 1 then error("handler boom") end
    end)
    for _ = 1, 2 do
      local c <close> = net.connect("127.0.0.1", s.port)
      assert.is_nil(c:read())
    end
    assert.are.equal(2, calls)
    s:close()
  end)

  it("close with cancel stops open connections", function()
    local s = net.serve("127.0.0.1", 0, function(st) st:readline() end)
    local c <close> = net.connect("127.0.0.1", s.port)
    for _ = 1, 6000 do                    -- accepted: up to a minute
      if s.connections == 1 then break end
      aio.sleep(0.01)
    end
    assert.are.equal(1, s.connections)
    s:close({cancel = true})
    assert.are.equal(0, s.connections)
    assert.is_nil(s.port)
  end)

  it("rejects bad arguments and closed streams", function()
    assert.has_error(function() net.connect(nil, 1) end,
      "bad argument #1 to 'net.connect' (string expected, got nil)")
    assert.has_error(function() net.connect("127.0.0.1", 70000) end,
      "bad argument #2 to 'net.connect' (port out of range)")
    assert.has_error(function() net.serve("not an ip", 0, print) end,
      "bad argument #1 to 'net.serve' (IP address or 'localhost' expected)")
    assert.has_error(function() net.serve("127.0.0.1", 0, 5) end,
      "bad argument #3 to 'net.serve' (function expected, got number)")
    local c = net.connect("127.0.0.1", srv.port)
    c:close()
    c:close()
    assert.has_error(function() c:write("x") end,
      "stream:write: the stream is closed")
  end)

  it("refuses a port in use", function()
    local e = fails("io", function() net.serve("127.0.0.1", srv.port, print) end)
    assert.are.equal("EADDRINUSE", e.code)
  end)
end)

describe("Unix sockets", function()
  it("serve_unix and connect_unix round-trip", function()
    local path = os.tmpname()
    os.remove(path)
    local srv = net.serve_unix(path, function(st)
      st:write((st:readline() or ""):upper() .. "\n")
      st:close()
    end)
    local c <close> = net.connect_unix(path)
    c:write("unix\n")
    assert.are.equal("UNIX", c:readline())
    -- the TCP-only methods do nothing on a Unix socket stream
    c:setnodelay(true)
    c:keepalive(true, 10)
    assert.are.equal(0, select("#", c:peername()))
    assert.are.equal(0, select("#", c:sockname()))
    local ok, e = pcall(net.serve_unix, path, print)
    assert.is_false(ok)
    assert.are.equal("EADDRINUSE", e.code)
    srv:close({wait = true})
    os.remove(path)
    ok, e = pcall(net.connect_unix, path)
    assert.is_false(ok)
    assert.are.equal("ENOENT", e.code)
    assert.are.equal(path, e.address)
    assert.has_error(function() net.connect_unix({}) end,
      "bad argument #1 to 'net.connect_unix' (string expected, got table)")
  end)
end)

describe("net.resolve", function()
  it("resolves localhost", function()
    local addrs = net.resolve("localhost")
    assert.is_true(#addrs >= 1)
    local found = false
    for _, a in ipairs(addrs) do found = found or a == "127.0.0.1" or a == "::1" end
    assert.is_true(found)
  end)

  it("fails clearly for unknown names", function()
    local ok, e = pcall(net.resolve, "no-such-host.invalid")
    assert.is_false(ok)
    assert.matches("^EAI_", e.code)
  end)
end)

describe("net.udp", function()
  it("sends and receives datagrams", function()
    local a <close> = net.udp()
    a:bind("127.0.0.1", 0)
    local _, port = a:sockname()
    local b <close> = net.udp()
    b:bind("127.0.0.1", 0)
    local _, bport = b:sockname()
    local t = aio.spawn(function() return a:recv() end)
    aio.sleep(0)
    b:send("ping", "127.0.0.1", port)
    local data, host, from = t:await()
    assert.are.equal("ping", data)
    assert.are.equal("127.0.0.1", host)
    assert.are.equal(bport, from)
    assert.has_error(function() a:send("x", "nope", 1) end,
      "bad argument #3 to 'udp:send' (IP address expected)")
  end)
end)

describe("examples", function()
  -- Start an example server as a child process; returns its pid, port.
  local function start_example(script, pattern)
    local path = os.tmpname()
    local pid = helpers.background(helpers.luaio .. " " .. script .. " 0 300",
                                   {log = path})
    local port
    for _ = 1, 1200 do                    -- up to a minute on a loaded box
      local f = io.open(path)
      port = f and tonumber((f:read("a") or ""):match(pattern))
      if f then f:close() end
      if port then break end
      aio.sleep(0.05)
    end
    os.remove(path)
    return pid, port
  end

  it("echo server and client", function()
    local pid, port = start_example("examples/echo_server.lua",
                                    "listening on port (%d+)")
    assert.is_number(port)
    local rc, out = helpers.sh(helpers.luaio .. " examples/echo_client.lua "
      .. port .. " hello world")
    os.execute("kill " .. pid)
    assert.are.equal(0, rc, out)
    assert.are.equal("echo: hello\necho: world\n", out)
  end)

  it("chat server delivers every message to every other client once", function()
    local pid, port = start_example("examples/chat_server.lua",
                                    "chat on port (%d+)")
    assert.is_number(port)
    local N = 50
    local conns = {}
    for i = 1, N do conns[i] = net.connect("127.0.0.1", port) end
    -- Every client registered with the server (a fixed sleep may end
    -- first on a loaded machine): client 1 says "sync" until each other
    -- client has heard it. Sync lines still on their way are skipped.
    local syncer = aio.spawn(function()
      while true do conns[1]:write("sync\n"); aio.sleep(0.05) end
    end)
    for i = 2, N do
      repeat local line = conns[i]:readline() until line:match(": sync$")
    end
    syncer:cancel()
    pcall(syncer.await, syncer)
    for i = 1, N do conns[i]:write("msg" .. i .. "\n") end
    local counts = aio.gather_all((function()
      local ts = {}
      for i = 1, N do
        ts[i] = aio.spawn(function()
          local seen, n = {}, 0
          while n < N - 1 do
            local line = conns[i]:readline()
            local m = line:match(": (msg%d+)$")
            if m then
              assert(not seen[m], "duplicate " .. m)
              seen[m] = true
              n = n + 1
            else
              assert.matches(": sync$", line)
            end
          end
          assert(not seen["msg" .. i], "got its own message")
          return N - 1
        end)
      end
      return ts
    end)())
    for i = 1, N do conns[i]:close() end
    os.execute("kill " .. pid)
    assert.are.equal(N - 1, counts)
  end)
end)
