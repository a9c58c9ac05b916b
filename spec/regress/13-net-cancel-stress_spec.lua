-- Issue 13: every wait of luaio.net cancelled at its first await,
-- mid-transfer and by a timeout. Afterwards nothing leaks (the valgrind
-- run of this spec checks), the stream still closes, nothing that arrived
-- is lost (a later read gets it) and the process exits.
local aio = require "luaio"
local net = require "luaio.net"
local helpers = require "spec.helpers"

-- A connected pair: the client stream and the server-side stream (the
-- handler parks until release). Returns c, peer, release.
local function pair()
  local gate = aio.event()
  local got = aio.event()
  local peer
  local srv = net.serve("127.0.0.1", 0, function(st)
    peer = st
    got:set()
    gate:wait()
  end)
  local c = net.connect("127.0.0.1", srv.port)
  aio.timeout(30, got.wait, got)
  return c, peer, function()
    gate:set()
    srv:close({cancel = true})
  end
end

-- Run fn in a task, cancel it after `turns` loop turns (0: before it
-- first runs, 1: at its first await); returns whether it finished anyway.
local function cancel_after(turns, fn, ...)
  local t = aio.spawn(fn, ...)
  for _ = 1, turns do aio.sleep(0) end
  t:cancel()
  local ok, e = pcall(aio.timeout, 30, t.await, t)
  assert.is_false(ok and e ~= nil and aio.is_timeout(e), "cancel hung")
  if not ok then
    assert.is_true(aio.is_cancelled(e), tostring(e))
  end
  return ok
end

local function closes_promptly(c)
  assert.is_true(pcall(aio.timeout, 30, c.close, c))
end

describe("net waits cancelled and timed out #safety", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  for _, how in ipairs({"first await", "turns", "timeout"}) do
    local function interrupt(fn, ...)
      if how == "timeout" then
        local ok, e = pcall(aio.timeout, 0.02, fn, ...)
        assert.is_false(ok)
        assert.is_true(aio.is_timeout(e), tostring(e))
      else
        cancel_after(how == "turns" and 3 or 1, fn, ...)
      end
    end

    it("read, readline, readexactly (" .. how .. ")", function()
      local c, peer, release = pair()
      interrupt(c.read, c)
      peer:write("a")
      aio.sleep(0.02)                            -- arrived, nobody waiting
      assert.are.equal("a", aio.timeout(30, c.read, c))
      interrupt(c.readline, c)
      peer:write("par")                          -- mid-transfer
      interrupt(c.readline, c)
      peer:write("tial\n")
      assert.are.equal("partial", aio.timeout(30, c.readline, c))
      peer:write("1234")
      interrupt(c.readexactly, c, 10)
      peer:write("567890")
      assert.are.equal("1234567890", aio.timeout(30, c.readexactly, c, 10))
      interrupt(c.readuntil, c, "|")
      peer:write("x|")
      assert.are.equal("x|", aio.timeout(30, c.readuntil, c, "|"))
      closes_promptly(c)
      assert.is_nil(aio.timeout(30, peer.read, peer))  -- the peer sees EOF
      release()
    end)

    it("write to a peer that does not read (" .. how .. ")", function()
      local c, peer, release = pair()
      local chunk = string.rep("w", 256 * 1024)
      local sent = 0
      local function fill()
        while true do
          sent = sent + #chunk                   -- write queues it all
          c:write(chunk)
        end
      end
      interrupt(fill)
      local reader = aio.spawn(function()
        local n = 0
        while n < sent do
          local data = peer:read()
          if not data then break end
          n = n + #data
        end
        return n
      end)
      sent = sent + 3
      c:write("end")                             -- still usable
      aio.timeout(60, c.drain, c)
      assert.are.equal(sent, aio.timeout(60, reader.await, reader))
      local blocked = aio.spawn(fill)            -- nobody reads any more
      aio.sleep(0.05)                            -- it fills the buffers
      closes_promptly(c)                         -- wakes the writer
      local ok, e = pcall(aio.timeout, 30, blocked.await, blocked)
      assert.is_false(ok)
      assert.are.equal("the stream was closed", e.message, tostring(e))
      release()
    end)

    it("udp recv (" .. how .. ")", function()
      local a = net.udp()
      a:bind("127.0.0.1", 0)
      local _, port = a:sockname()
      local b = net.udp()
      interrupt(a.recv, a)
      b:send("after", "127.0.0.1", port)
      aio.sleep(0.05)                            -- arrived, nobody waiting
      b:send("later", "127.0.0.1", port)
      assert.are.equal("after", aio.timeout(30, a.recv, a))
      assert.are.equal("later", aio.timeout(30, a.recv, a))
      interrupt(a.recv, a)
      b:send("unread", "127.0.0.1", port)      -- freed by close
      aio.sleep(0.05)
      a:close()
      b:close()
    end)
  end

  it("connect, cancelled at each step", function()
    local srv = net.serve("127.0.0.1", 0, function(st) st:read() end)
    for turns = 0, 8 do
      cancel_after(turns, net.connect, "localhost", srv.port)
      cancel_after(turns, net.connect, "127.0.0.1", srv.port)
    end
    local ok, e = pcall(net.connect, "127.0.0.1", srv.port, {timeout = 0})
    assert.is_true(ok or aio.is_timeout(e), tostring(e))
    if ok then e:close() end
    srv:close({cancel = true})
  end)

  it("unix connect, cancelled at each step", function()
    local path = os.tmpname()
    os.remove(path)
    local srv = net.serve_unix(path, function(st) st:read() end)
    for turns = 0, 4 do cancel_after(turns, net.connect_unix, path) end
    srv:close({cancel = true})
    os.remove(path)
  end)

  it("accept: connections cancelled at each step by server:close", function()
    collectgarbage("stop")                   -- no rescue by the collector
    for turns = 0, 6 do
      local srv = net.serve("127.0.0.1", 0, function(st) st:readline() end)
      local c = net.connect("127.0.0.1", srv.port)
      for _ = 1, turns do aio.sleep(0) end
      srv:close({cancel = true})
      local ok, e = pcall(aio.timeout, 30, c.readline, c)
      assert.is_true(ok or e.code == "ECONNRESET", tostring(e))
      assert.is_nil(ok and e)                  -- EOF, not a hang
      closes_promptly(c)
    end
    collectgarbage("restart")
  end)

  it("resolve, cancelled at each step", function()
    for turns = 0, 6 do
      cancel_after(turns, net.resolve, "localhost")
    end
    local ok = pcall(aio.timeout, 0, net.resolve, "localhost")
    assert.is_true(#net.resolve("localhost") >= 1)
    assert.is_boolean(ok)
  end)

  it("the process exits with waits cancelled and left pending", function()
    local rc, out = helpers.sh("timeout 120 " .. helpers.luaio .. " "
      .. helpers.script([[
      local aio = require "luaio"
      local net = require "luaio.net"
      local srv = net.serve("127.0.0.1", 0, function(st) aio.sleep(60) end)
      local c = net.connect("127.0.0.1", srv.port)
      local writer = aio.spawn(function()
        while true do c:write(string.rep("x", 1 << 20)) end
      end)
      local reader = aio.spawn(c.readline, c)
      local r = aio.spawn(net.resolve, "localhost")
      local k = aio.spawn(net.connect, "localhost", srv.port)
      local u = net.udp()
      u:bind("127.0.0.1", 0)
      local recv = aio.spawn(u.recv, u)
      aio.sleep(0.05)
      reader:cancel()
      r:cancel()
      k:cancel()
      pcall(aio.timeout, 0.01, u.recv, u)
      print("leaving with", #aio.tasks(), "tasks")
    ]]) .. " 2>&1")
    assert.are.equal(0, rc, out)
    assert.matches("leaving with", out)
  end)
end)
