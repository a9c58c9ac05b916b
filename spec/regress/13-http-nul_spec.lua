-- Issue 13, item 7 (HTTP): a NUL byte in a URL, method, header name or
-- value truncated the string in C, so a different request went out.
-- Each is now an argument error raised before any I/O (the server
-- counts the connections it accepted).
local http = require "luaio.http"
local fault = require "spec.helpers.fault"

local bad

setup(function() bad = fault.start() end)
teardown(function() bad:stop() end)

-- Connections the server accepted, this request's own (fresh) one included.
local function accepted()
  local c <close> = http.client()
  return tonumber(c:get(bad.url .. "/stats").body:match("^(%d+)"))
end

-- fn must raise exactly msg, and open no connection.
local function rejects(msg, fn)
  local c <close> = http.client()    -- no pooled connection to reuse
  local before = accepted()
  local ok, e = pcall(fn, c)
  assert.is_false(ok, "no error")
  assert.are.equal(msg, (tostring(e):gsub("^[^:]+:%d+: ", "")))
  assert.are.equal(before + 1, accepted())   -- + 1: the /stats request
end

describe("http rejects NUL, CR and LF before any I/O #safety", function()
  it("in the URL", function()
    rejects("bad argument #1 to 'http.get' (URL contains a NUL byte)",
      function() http.get(bad.url .. "/headers\0/evil") end)
    rejects("bad argument #2 to 'client:get' (URL contains a NUL byte)",
      function(c) c:get(bad.url .. "/headers\0/evil") end)
    rejects("bad argument #1 to 'http.request' (URL contains a NUL byte)",
      function() http.request{url = bad.url .. "/headers\0"} end)
  end)

  it("in base_url and proxy", function()
    rejects("bad argument #2 to 'http.get' (option 'base_url' contains a "
      .. "NUL byte)", function()
      http.get("/headers", {base_url = bad.url .. "\0/x"})
    end)
    rejects("bad argument #2 to 'http.get' (option 'proxy' contains a "
      .. "NUL byte)", function()
      http.get(bad.url .. "/headers", {proxy = bad.url .. "\0x"})
    end)
  end)

  it("in the method", function()
    rejects("bad argument #1 to 'http.request' (invalid method)",
      function() http.request{method = "GET\0DELETE", url = bad.url} end)
    rejects("bad argument #1 to 'http.request' (invalid method)",
      function() http.request{method = "GET\nX", url = bad.url} end)
  end)

  it("in header names and values", function()
    rejects("bad argument #2 to 'http.get' (header name contains CR, LF or NUL)",
      function()
      http.get(bad.url .. "/headers", {headers = {["X-A\0B"] = "1"}})
    end)
    rejects("bad argument #2 to 'http.get' (header name contains CR, LF or NUL)",
      function()
      http.get(bad.url .. "/headers", {headers = {["X-A\nB"] = "1"}})
    end)
    rejects("bad argument #2 to 'http.get' (header 'X-A' contains CR, LF "
      .. "or NUL)", function()
      http.get(bad.url .. "/headers", {headers = {["X-A"] = "1\0evil"}})
    end)
    rejects("bad argument #1 to 'http.client' (header name contains CR, "
      .. "LF or NUL)", function()
      http.client{headers = {["X-A\0B"] = "1"}}
    end)
  end)

  it("encodes a NUL in query values instead of cutting them", function()
    local r = http.get(bad.url .. "/headers", {query = {q = "a\0b"}})
    assert.matches("q=a%00b", r.url, 1, true)
  end)
end)
