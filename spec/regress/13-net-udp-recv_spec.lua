-- Issue 13: a UDP recv cancelled by a timeout left the socket reading; the
-- next datagram was parked where no later recv looked (lost, and its 64 KiB
-- buffer leaked when the one after it arrived). Now it is queued for the
-- next recv.
local aio = require "luaio"
local net = require "luaio.net"

local function pair()
  local a = net.udp()
  a:bind("127.0.0.1", 0)
  local b = net.udp()
  b:bind("127.0.0.1", 0)
  local _, port = a:sockname()
  return a, b, port
end

describe("udp:recv after a cancelled recv #safety", function()
  after_each(function()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("delivers the next datagrams in order after a timeout", function()
    local a, b, port = pair()
    local ca <close> = a
    local cb <close> = b
    local ok, e = pcall(aio.timeout, 0.05, a.recv, a)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
    b:send("one", "127.0.0.1", port)
    b:send("two", "127.0.0.1", port)
    aio.sleep(0.05)                        -- both have arrived by now
    assert.are.equal("one", aio.timeout(30, a.recv, a))
    assert.are.equal("two", aio.timeout(30, a.recv, a))
  end)

  it("delivers the next datagram after a cancel", function()
    local a, b, port = pair()
    local ca <close> = a
    local cb <close> = b
    local t = aio.spawn(a.recv, a)
    aio.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    b:send("three", "127.0.0.1", port)
    aio.sleep(0.05)
    local data, host = aio.timeout(30, a.recv, a)
    assert.are.equal("three", data)
    assert.are.equal("127.0.0.1", host)
  end)

  it("frees a datagram nobody took when the socket closes", function()
    local a, b, port = pair()
    local _ <close> = b
    pcall(aio.timeout, 0.02, a.recv, a)
    b:send("never read", "127.0.0.1", port)
    aio.sleep(0.05)
    a:close()                              -- leak checkers watch this
  end)

  it("wakes a waiting recv with a 'closed' error on close", function()
    local a, b = pair()
    local _ <close> = b
    local t = aio.spawn(a.recv, a)
    aio.sleep(0.01)
    a:close()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal("io", e.kind)
    assert.matches("closed", tostring(e))
  end)
end)
