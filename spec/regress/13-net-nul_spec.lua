-- Issue 13: a NUL byte inside a host name, address or Unix socket path
-- was cut off in C ("127.0.0.1\0junk" listened on 127.0.0.1, a path
-- "a\0b" bound "a"). Each is now an argument error before anything starts.
local net = require "luaio.net"

local function nul_error(fn, arg, fname, what)
  assert.has_error(fn, ("bad argument #%d to '%s' (%s contains a NUL byte)")
                   :format(arg, fname, what))
end

describe("luaio.net rejects NUL bytes in names and paths #safety", function()
  it("in connect, serve and resolve", function()
    nul_error(function() net.connect("127.0.0.1\0junk", 1) end,
              1, "net.connect", "host")
    nul_error(function() net.serve("127.0.0.1\0junk", 0, print) end,
              1, "net.serve", "host")
    nul_error(function() net.resolve("localhost\0.evil") end,
              1, "net.resolve", "host")
  end)

  it("in Unix socket paths", function()
    local path = os.tmpname()
    os.remove(path)
    nul_error(function() net.serve_unix(path .. "\0x", print) end,
              1, "net.serve_unix", "path")
    nul_error(function() net.connect_unix(path .. "\0x") end,
              1, "net.connect_unix", "path")
    assert.is_nil(io.open(path), "a truncated path was bound")
  end)

  it("in UDP addresses", function()
    local u <close> = net.udp()
    nul_error(function() u:bind("127.0.0.1\0x", 0) end, 2, "udp:bind", "host")
    u:bind("127.0.0.1", 0)
    nul_error(function() u:send("data\0is fine", "127.0.0.1\0x", 9) end,
              3, "udp:send", "host")
  end)
end)
