-- Issue 14: the first line read from a stream that ended before any byte
-- arrived computed buf + start with buf still NULL (net.c find_sep),
-- undefined behaviour that UBSan reports as "applying zero offset to null
-- pointer" (a clang -fsanitize=undefined build stops there; the gcc one
-- does not instrument it). fs.c lines_iter had the same shape once; the
-- file cases keep it covered.
local aio = require "luaio"
local net = require "luaio.net"
local fs = require "luaio.fs"

describe("first reads on an empty buffer #safety", function()
  it("readline and readuntil on a stream that ends at once", function()
    local srv = net.serve("127.0.0.1", 0, function(s) s:close() end)
    finally(function() srv:close({ cancel = true }) end)
    local a <close> = net.connect("127.0.0.1", srv.port, { timeout = 30 })
    assert.is_nil(a:readline())
    local b <close> = net.connect("127.0.0.1", srv.port, { timeout = 30 })
    assert.is_nil(b:readuntil("\r\n"))
    local c <close> = net.connect("127.0.0.1", srv.port, { timeout = 30 })
    local n = 0
    for _ in c:lines() do n = n + 1 end
    assert.are.equal(0, n)
  end)

  it("the first line of a new file, empty or not", function()
    local dir = fs.mkdtemp()
    finally(function()
      pcall(fs.remove, dir .. "/f")
      fs.rmdir(dir)
    end)
    for _, content in ipairs({ "", "one\n", "a\r\nb" }) do
      fs.write(dir .. "/f", content)
      local f <close> = fs.open(dir .. "/f")
      local got = {}
      for line in f:lines() do got[#got + 1] = line end
      local g <close> = fs.open(dir .. "/f")
      local first = g:read_line()
      assert.are.equal(got[1], first)
    end
    aio.sleep(0)
  end)
end)
