-- Issue 13: a server handler that ended without closing its stream (an
-- error, a cancellation, or a plain return) left the connection open
-- until garbage collection, so the client waited forever. The stream is
-- now closed when the handler ends (after flushing what a handler that
-- returned normally wrote).
local aio = require "luaio"
local net = require "luaio.net"

local function eof_within(port, send)
  local c <close> = net.connect("127.0.0.1", port)
  if send then c:write(send) end
  return aio.timeout(30, c.read_all, c)
end

describe("a connection handler's stream #safety", function()
  after_each(function()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("is closed when the handler fails", function()
    collectgarbage("stop")                 -- no rescue by the collector
    local s = net.serve("127.0.0.1", 0, function(st)
      st:write("partial")
      error("handler boom")
    end)
    local ok, got = pcall(eof_within, s.port)
    collectgarbage("restart")
    s:close({wait = true})
    assert.is_true(ok, tostring(got))
    assert.are.equal("partial", got)
  end)

  it("is closed, after a flush, when the handler returns", function()
    collectgarbage("stop")
    local big = string.rep("r", 4 << 20)
    local s = net.serve("127.0.0.1", 0, function(st)
      st:readline()
      st:write(big)
      return "done"
    end)
    local ok, got = pcall(eof_within, s.port, "go\n")
    collectgarbage("restart")
    s:close({wait = true})
    assert.is_true(ok, tostring(got))
    assert.are.equal(#big, #got)
  end)

  it("is closed when the handler is cancelled", function()
    collectgarbage("stop")
    local started = aio.event()
    local s = net.serve("127.0.0.1", 0, function(st)
      started:set()
      aio.sleep(30)
    end)
    local c <close> = net.connect("127.0.0.1", s.port)
    started:wait()
    s:close({cancel = true})
    local ok, got = pcall(aio.timeout, 30, c.read, c)
    collectgarbage("restart")
    assert.is_true(ok, tostring(got))
    assert.is_nil(got)                     -- EOF
  end)
end)
