-- Issue 13, item 11: resp:close() from another task left a task waiting
-- in resp:chunks() suspended for ever. Closing now wakes it with an
-- error of kind "io", code "ECANCELED", saying the response was closed.
local aio = require "luaio"
local http = require "luaio.http"
local fault = require "spec.helpers.fault"

local bad

setup(function() bad = fault.start() end)
teardown(function() bad:stop() end)

describe("closing a streamed response wakes its reader #safety", function()
  it("a reader waiting for the next chunk gets a 'closed' error", function()
    local r = http.get(bad.url .. "/partial", {stream = true})
    local got = 0
    local reader = aio.spawn(function()
      for chunk in r:chunks() do got = got + #chunk end
    end)
    repeat aio.sleep(0.01) until got == 1000   -- then the server stalls
    aio.sleep(0.05)                             -- the reader waits again
    r:close()
    local ok, e = aio.wait_for(aio.spawn(function()
      return pcall(reader.await, reader)
    end), 30)                                   -- no hang
    assert.is_false(ok)
    assert.are.equal("io", e.kind)
    assert.are.equal("ECANCELED", e.code)
    assert.matches("closed", tostring(e))
    assert.matches("/partial", tostring(e), 1, true)
  end)

  it("chunks() after close raises the same error", function()
    local r = http.get(bad.url .. "/partial", {stream = true})
    r:close()
    r:close()                                   -- twice is fine
    local ok, e = pcall(function() for _ in r:chunks() do end end)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.matches("response closed", tostring(e), 1, true)
  end)

  it("<close> at scope exit wakes a reader too", function()
    local reader
    do
      local r <close> = http.get(bad.url .. "/partial", {stream = true})
      reader = aio.spawn(function() for _ in r:chunks() do end end)
      aio.sleep(0.1)
    end
    local ok, e = aio.wait_for(aio.spawn(function()
      return pcall(reader.await, reader)
    end), 30)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
  end)
end)
