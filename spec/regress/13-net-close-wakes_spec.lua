-- Issue 13: stream:close() hung when the peer did not read and another
-- task was blocked in stream:write() (close waited for a drain that never
-- came, and the writer was never woken). Close now wakes every task
-- waiting on the stream with a "closed" error and returns promptly.
local aio = require "luaio"
local net = require "luaio.net"

-- A server whose handler never reads; returns it and its release gate.
local function deaf_server()
  local gate = aio.event()
  local srv = net.serve("127.0.0.1", 0, function(st)
    gate:wait()
    st:close()
  end)
  return srv, gate
end

local function closed_error(e)
  assert.are.equal("io", e.kind, tostring(e))
  assert.are.equal("ECANCELED", e.code)
  assert.are.equal("the stream was closed", e.message)
end

-- Write 1 MiB chunks until the writer blocks; returns the writer task.
local function blocked_writer(c)
  local t = aio.spawn(function()
    local chunk = string.rep("w", 1 << 20)
    while true do c:write(chunk) end
  end)
  aio.sleep(0.05)                  -- it fills the socket buffers, then waits
  return t
end

describe("stream:close with other tasks waiting #safety", function()
  local srv, gate
  before_each(function() srv, gate = deaf_server() end)
  after_each(function()
    gate:set()
    srv:close({cancel = true})
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("wakes a writer blocked on a peer that does not read", function()
    local c = net.connect("127.0.0.1", srv.port)
    local writer = blocked_writer(c)
    aio.sleep(0.05)
    assert.are.equal("pending", writer:status())
    local t0 = aio.now()
    local ok, e = pcall(aio.timeout, 30, c.close, c)
    assert.is_true(ok, tostring(e))
    assert.is_true(aio.now() - t0 < 30)
    ok, e = pcall(aio.timeout, 30, writer.await, writer)
    assert.is_false(ok)
    closed_error(e)
  end)

  it("wakes a reader, a drain and a writer at once", function()
    local c = net.connect("127.0.0.1", srv.port)
    local reader = aio.spawn(c.readline, c)
    local writer = blocked_writer(c)
    local drainer = aio.spawn(c.drain, c)
    aio.sleep(0.05)
    assert.are.equal("pending", reader:status())
    assert.are.equal("pending", drainer:status())
    assert.is_true(pcall(aio.timeout, 30, c.close, c))
    for _, t in ipairs({reader, writer, drainer}) do
      local ok, e = pcall(aio.timeout, 30, t.await, t)
      assert.is_false(ok)
      closed_error(e)
    end
    assert.has_error(function() c:write("x") end,
      "stream:write: the stream is closed")
  end)

  it("wakes them when the stream is closed by <close>", function()
    local reader, writer
    do
      local c <close> = net.connect("127.0.0.1", srv.port)
      reader = aio.spawn(c.read, c)
      writer = blocked_writer(c)
      aio.sleep(0.02)
    end
    for _, t in ipairs({reader, writer}) do
      local ok, e = pcall(aio.timeout, 30, t.await, t)
      assert.is_false(ok)
      closed_error(e)
    end
  end)

  it("a close cancelled while flushing closes at once", function()
    local c = net.connect("127.0.0.1", srv.port)
    local writer = blocked_writer(c)       -- fills the socket buffers
    writer:cancel()                        -- its data stays queued
    assert.is_false(pcall(writer.await, writer))
    local ok, e = pcall(aio.timeout, 0.1, c.close, c)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e), tostring(e))
    assert.matches("closed", tostring(c))
    c:close()                              -- a no-op now
  end)

  it("still flushes when nobody else waits", function()
    gate:set()                               -- this peer reads everything
    local got = aio.event()
    local n
    local s = net.serve("127.0.0.1", 0, function(st)
      aio.sleep(0.1)
      n = #st:read_all()
      got:set()
    end)
    local c = net.connect("127.0.0.1", s.port)
    c:write(string.rep("x", 3 << 20))       -- queued beyond the high water
    aio.timeout(60, c.close, c)
    aio.timeout(60, got.wait, got)
    assert.are.equal(3 << 20, n)
    s:close({wait = true})
  end)
end)
