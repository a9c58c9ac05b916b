-- Closing a client while one of its responses streams a body: a reader
-- that was not waiting in chunks() at that moment (woken for a chunk
-- and not yet run, or reading later) raised the transfer error
-- CURLE_42 ("aborted by callback") instead of the ECANCELED a waiting
-- reader got, so http_spec's "closing a client ends a body being
-- streamed" failed under load. Every reader now gets kind "io", code
-- "ECANCELED", saying the client was closed.
local aio = require "luaio"
local http = require "luaio.http"
local fault = require "spec.helpers.fault"

local bad

setup(function() bad = fault.start() end)
teardown(function() bad:stop() end)

local function closed_error (fn, path)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  assert.is_true(aio.is_error(e), tostring(e))
  assert.are.equal("io", e.kind, tostring(e))
  assert.are.equal("ECANCELED", e.code, tostring(e))
  assert.matches("client was closed", tostring(e), 1, true)
  assert.matches(path or "/endless", tostring(e), 1, true)
end

local function read_all (r)
  return function() for _ in r:chunks() do end end
end

describe("closing a client with a body being streamed #safety", function()
  it("fails a reader that was not waiting with ECANCELED", function()
    local c = http.client()
    local r <close> = c:get(bad.url .. "/endless", {stream = true})
    aio.sleep(0.2)                         -- body buffered, nobody reads
    c:close()
    closed_error(read_all(r))
    closed_error(read_all(r))              -- and again
  end)

  it("fails a reader woken for a chunk but not yet run", function()
    for _ = 1, 20 do
      local c = http.client()
      local r <close> = c:get(bad.url .. "/endless", {stream = true})
      local got = 0
      local reader = aio.spawn(function()
        for chunk in r:chunks() do got = got + #chunk end
      end)
      repeat aio.sleep(0) until got > 0
      c:close()
      closed_error(function() reader:await() end)
    end
  end)

  it("fails a request still waiting for its headers the same way",
     function()
    local c = http.client()
    local t = aio.spawn(c.get, c, bad.url .. "/stall", {stream = true})
    aio.sleep(0.1)
    c:close()
    closed_error(function() t:await() end, "/stall")
  end)
end)
