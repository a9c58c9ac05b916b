-- Issue 13, item 15: custom secret headers (X-Api-Key, Authorization,
-- Cookie set by the user, or any header a client lists in
-- sensitive_headers) went along when a redirect led to another origin.
-- They are now dropped when scheme, host or port change, and kept on a
-- same-origin redirect. Two fault servers on two ports: one redirects,
-- the other echoes the request headers it got.
local http = require "luaio.http"
local fault = require "spec.helpers.fault"

local a, b

setup(function() a = fault.start(); b = fault.start() end)
teardown(function() a:stop(); b:stop() end)

local function via_redirect(from, to)
  local enc = to:gsub("[^%w]", function(c)
    return ("%%%02X"):format(c:byte()) end)
  return from .. "/redirect-to/" .. enc
end

local secrets = {
  ["X-Api-Key"] = "k-123", Authorization = "Bearer t-456",
  Cookie = "sid=c-789", ["X-Custom-Secret"] = "s-000", ["X-Other"] = "fine",
}

describe("http redirects drop secret headers across origins #safety", function()
  it("drops them when the port changes", function()
    local c <close> = http.client{sensitive_headers = {"x-custom-secret"}}
    local r = c:get(via_redirect(a.url, b.url .. "/headers"),
      {headers = secrets})
    assert.are.equal(b.url .. "/headers", r.url)
    assert.matches("X-Other: fine", r.body, 1, true)
    for _, v in ipairs({"k-123", "t-456", "c-789", "s-000"}) do
      assert.is_nil(r.body:find(v, 1, true), v .. " leaked:\n" .. r.body)
    end
  end)

  it("drops them when the host name changes", function()
    local other = b.url:gsub("127%.0%.0%.1", "localhost")
    local r = http.get(via_redirect(a.url, other .. "/headers"),
      {headers = secrets})
    assert.matches("X-Other: fine", r.body, 1, true)
    assert.is_nil(r.body:find("k-123", 1, true), r.body)
    assert.is_nil(r.body:find("t-456", 1, true), r.body)
  end)

  it("keeps them on a same-origin redirect", function()
    local c <close> = http.client{headers = {["X-Api-Key"] = "k-123"},
                                  sensitive_headers = {"X-Custom-Secret"}}
    local r = c:get(via_redirect(a.url, a.url .. "/headers"),
      {headers = {["X-Custom-Secret"] = "s-000", Authorization = "B x"}})
    assert.matches("X-Api-Key: k-123", r.body, 1, true)
    assert.matches("X-Custom-Secret: s-000", r.body, 1, true)
    assert.matches("Authorization: B x", r.body, 1, true)
  end)

  it("sends them to the first host", function()
    local r = http.get(a.url .. "/headers", {headers = secrets,
      sensitive_headers = {"X-Custom-Secret"}})
    for _, v in ipairs({"k-123", "t-456", "c-789", "s-000"}) do
      assert.matches(v, r.body, 1, true)
    end
  end)

  it("checks sensitive_headers", function()
    assert.has_error(function()
      http.get(a.url .. "/headers", {sensitive_headers = "X-A"})
    end, "bad argument #2 to 'http.get' (option 'sensitive_headers' must "
      .. "be a list of header names)")
  end)
end)
