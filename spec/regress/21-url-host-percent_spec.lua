-- url.parse gave the host as libcurl decoded it: "http://%25a" had the
-- host "%a", and tostring(u) then wrote "http://%a", a broken escape,
-- and raised "invalid host" for a URL that had just parsed (found by the
-- url fuzz target's luaio.url mode: spec/fuzz/crashes/url-parse-host-
-- percent). The host now keeps its '%' written as "%25".
local url = require "luaio.url"

describe("url.parse of a host holding an escaped '%' #safety", function()
  it("gives it percent-encoded, and tostring parses again", function()
    for _, s in ipairs({"http://%25a", "http://a%25/x", "http://u@%25%25/",
                        "https://b%25c:8443/p?q#f"}) do
      local u = url.parse(s)
      assert.is_truthy(u.host:find("%25", 1, true), s)
      assert.is_nil(u.host:find("%%[^2]"), s)
      local text = tostring(u)
      assert.are.equal(url.normalize(s), url.normalize(text), s)
      assert.are.equal(u.host, url.parse(text).host, s)
    end
  end)

  it("leaves other hosts as they were", function()
    assert.are.equal("Ab", url.parse("http://%41b/").host)
    assert.are.equal("[::1]", url.parse("http://[::1%25eth0]/").host)
    assert.are.equal("example.com", url.parse("http://example.com").host)
  end)
end)
