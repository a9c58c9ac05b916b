-- Opening luaio.http a second time (package.loaded["luaio.http"] = nil,
-- then require, as busted does per spec file) wrapped the response
-- metatable's __index a second time: every response method then failed
-- with "attempt to index a function value", for the responses of both
-- opens. Opening is now idempotent.
local aio = require "luaio"
local net = require "luaio.net"

local server, url

setup(function()
  server = net.serve("127.0.0.1", 0, function(s)
    pcall(s.readuntil, s, "\r\n\r\n")
    pcall(s.write, s, "HTTP/1.1 404 Nope\r\nContent-Type: application/json"
                      .. "\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
    s:close()
  end)
  url = "http://127.0.0.1:" .. server.port .. "/x"
end)

teardown(function() server:close({cancel = true}) end)

-- Every method and parsed view of a response works.
local function check (r)
  assert.are.equal(404, r.status)
  assert.are.equal("Nope", r.reason)
  assert.are.equal("application/json", r.headers["Content-Type"])
  assert.are.equal('{"a": 1}', r:text())
  assert.are.equal(1, r:json().a)
  local ok, e = pcall(r.raise_for_status, r)
  assert.is_false(ok)
  assert.are.equal(404, e.status)
end

local function check_stream (r)
  local body = {}
  for chunk in r:chunks() do body[#body + 1] = chunk end
  assert.are.equal('{"a": 1}', table.concat(body))
  r:close()
end

describe("luaio.http opened twice #safety", function()
  it("keeps the responses of both opens working", function()
    local first = require "luaio.http"
    local before = first.get(url)
    local before_stream = first.get(url, {stream = true})
    for _ = 1, 2 do
      package.loaded["luaio.http"] = nil
      require "luaio.http"
    end
    local second = require "luaio.http"
    assert.are_not.equal(first, second)
    local after = second.get(url)
    check(before)
    check(after)
    check_stream(before_stream)
    check_stream(second.get(url, {stream = true}))
    check(first.get(url))                 -- the old module still works
    local c <close> = second.client()
    check(c:get(url))
  end)
end)
