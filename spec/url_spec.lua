local url = require "luaio.url"

-- The message of the error fn raises.
local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "no error")
  return tostring(e)
end

local BASE = "http://a/b/c/d;p?q"

-- RFC 3986 section 5.4.1, "Normal Examples".
local NORMAL = {
  {"g:h", "g:h"}, {"g", "http://a/b/c/g"}, {"./g", "http://a/b/c/g"},
  {"g/", "http://a/b/c/g/"}, {"/g", "http://a/g"}, {"//g", "http://g"},
  {"?y", "http://a/b/c/d;p?y"}, {"g?y", "http://a/b/c/g?y"},
  {"#s", "http://a/b/c/d;p?q#s"}, {"g#s", "http://a/b/c/g#s"},
  {"g?y#s", "http://a/b/c/g?y#s"}, {";x", "http://a/b/c/;x"},
  {"g;x", "http://a/b/c/g;x"}, {"g;x?y#s", "http://a/b/c/g;x?y#s"},
  {"", "http://a/b/c/d;p?q"}, {".", "http://a/b/c/"},
  {"./", "http://a/b/c/"}, {"..", "http://a/b/"}, {"../", "http://a/b/"},
  {"../g", "http://a/b/g"}, {"../..", "http://a/"},
  {"../../", "http://a/"}, {"../../g", "http://a/g"},
}

-- RFC 3986 section 5.4.2, "Abnormal Examples" (a strict parser's
-- answer for "http:g").
local ABNORMAL = {
  {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"},
  {"/./g", "http://a/g"}, {"/../g", "http://a/g"},
  {"g.", "http://a/b/c/g."}, {".g", "http://a/b/c/.g"},
  {"g..", "http://a/b/c/g.."}, {"..g", "http://a/b/c/..g"},
  {"./../g", "http://a/b/g"}, {"./g/.", "http://a/b/c/g/"},
  {"g/./h", "http://a/b/c/g/h"}, {"g/../h", "http://a/b/c/h"},
  {"g;x=1/./y", "http://a/b/c/g;x=1/y"}, {"g;x=1/../y", "http://a/b/c/y"},
  {"g?y/./x", "http://a/b/c/g?y/./x"}, {"g?y/../x", "http://a/b/c/g?y/../x"},
  {"g#s/./x", "http://a/b/c/g#s/./x"}, {"g#s/../x", "http://a/b/c/g#s/../x"},
  {"http:g", "http:g"},
}

describe("url.join", function()
  it("passes every normal example of RFC 3986 section 5.4.1", function()
    assert.are.equal(23, #NORMAL)
    for _, case in ipairs(NORMAL) do
      assert.are.equal(case[2], url.join(BASE, case[1]), "ref " .. case[1])
    end
  end)

  it("passes every abnormal example of RFC 3986 section 5.4.2", function()
    assert.are.equal(19, #ABNORMAL)
    for _, case in ipairs(ABNORMAL) do
      assert.are.equal(case[2], url.join(BASE, case[1]), "ref " .. case[1])
    end
  end)

  it("keeps an empty base path empty, as the RFC does", function()
    assert.are.equal("http://a?x", url.join("http://a", "?x"))
    assert.are.equal("http://a#f", url.join("http://a", "#f"))
    assert.are.equal("http://a/g", url.join("http://a", "g"))
    assert.are.equal("https://h/p", url.join("https://a/b", "//h/p"))
  end)

  it("replaces the base's fragment", function()
    assert.are.equal("http://a/b?q#new", url.join("http://a/b?q#old", "#new"))
    assert.are.equal("http://a/b?q", url.join("http://a/b?q#old", ""))
  end)

  it("percent-encodes spaces and non-ASCII bytes of links", function()
    assert.are.equal("http://a/b/c%20d.html?q=%C3%A9",
                     url.join("http://a/b/", "c d.html?q=\xc3\xa9"))
  end)

  it("returns references with a scheme and no authority as they are",
     function()
    assert.are.equal("mailto:me@example.com",
                     url.join(BASE, "mailto:me@example.com"))
  end)

  it("names the wrong part and argument", function()
    assert.matches("bad argument #1 to 'url.join' %(not an absolute URL",
                   err_of(url.join, "/relative", "g"))
    assert.matches("bad argument #1 to 'url.join' %(invalid host%)",
                   err_of(url.join, "http://a b/", "g"))
    assert.matches("bad argument #2 to 'url.join' %(invalid port%)",
                   err_of(url.join, BASE, "http://h:99999/"))
    assert.matches("bad argument #2 to 'url.join' %(control character in "
                   .. "path%)", err_of(url.join, BASE, "g\n"))
    assert.matches("bad argument #2 to 'url.join' %(control character in "
                   .. "query%)", err_of(url.join, BASE, "g?\127"))
    assert.matches("bad argument #2 to 'url.join' %(contains a NUL byte%)",
                   err_of(url.join, BASE, "g\0h"))
    assert.matches("bad argument #1 to 'url.join' %(string expected, got nil",
                   err_of(url.join, nil, "g"))
    assert.matches("bad argument #2 to 'url.join' %(string expected, got table",
                   err_of(url.join, BASE, {}))
  end)
end)

describe("url.parse", function()
  it("splits a URL into its parts", function()
    local u = url.parse("https://me:pw@Example.com:8443/a/b%20c?x=1&y#top")
    assert.are.same({scheme = "https", user = "me", password = "pw",
                     host = "Example.com", port = 8443, path = "/a/b%20c",
                     query = "x=1&y", fragment = "top"},
                    setmetatable(u, nil))
  end)

  it("leaves absent parts nil", function()
    local u = url.parse("http://example.com")
    assert.are.same({scheme = "http", host = "example.com", path = "/"},
                    setmetatable(u, nil))
  end)

  it("reads file: URLs, and writes file:/// right (libcurl: (nil))",
     function()
    assert.are.equal("file:///", tostring(url.parse("file:///")))
    assert.are.equal("file:///x", url.normalize("file:/etc/../x"))
    assert.are.equal("file:///", url.join("file:///a/b", "/"))
    assert.are.equal("http://h:0/", tostring(url.parse("http://h:0/")))
  end)

  it("rebuilds the URL with tostring, after edits", function()
    local u = url.parse("http://example.com:8080/a?b#c")
    assert.are.equal("http://example.com:8080/a?b#c", tostring(u))
    u.port, u.fragment, u.path = nil, nil, "/x y"
    assert.are.equal("http://example.com/x%20y?b", tostring(u))
    u.port = "bad"
    assert.matches("tostring%(url%): invalid port", err_of(tostring, u))
    u.port, u.host = 80, {}
    assert.matches("field 'host' must be a string, got table",
                   err_of(tostring, u))
    u.host = "evil.com/x"          -- would move the path: refused
    assert.matches("tostring%(url%): invalid host", err_of(tostring, u))
    u.host, u.path = "h", "relative"
    assert.matches("tostring%(url%): invalid path", err_of(tostring, u))
  end)

  it("names the wrong part", function()
    local cases = {
      {"http://exa mple.com/", "invalid host"},
      {"http://a:70000/", "invalid port"},
      {"ht tp://a/", "not an absolute URL"},
      {"//a/b", "not an absolute URL"},
      {"mailto:x@y", "no authority"},
      {"http://[::1/", "invalid IPv6 address"},
      {"http://a/\1", "control character in path"},
      {"http://a\r/", "control character in authority"},
      {"http://a/#\t", "control character in fragment"},
      {"http://a/\0", "contains a NUL byte"},
      {"http:///x", "no host"},            -- libcurl would take host x
      {"g:/x", "no authority"},            -- libcurl would take host x
      {"file:://a/b", "no authority"},     -- libcurl writes what it refuses
      {"http://%1%41/", "invalid host"},   -- libcurl: "%1A", then refused
    }
    for _, case in ipairs(cases) do
      assert.matches("bad argument #1 to 'url.parse' %(" .. case[2],
                     err_of(url.parse, case[1]), nil, case[1])
    end
    assert.matches("string expected, got no value", err_of(url.parse))
  end)
end)

describe("url.normalize", function()
  it("lowercases scheme and host, drops the default port", function()
    assert.are.equal("http://example.com/",
                     url.normalize("HTTP://Example.COM:80"))
    assert.are.equal("https://example.com:8443/",
                     url.normalize("https://EXAMPLE.com:8443/"))
  end)

  it("removes dot segments, %2E ones included", function()
    assert.are.equal("http://a/c/e",
                     url.normalize("http://a/b/../c/./d/%2E%2e/e"))
  end)

  it("normalises percent-encoding", function()
    assert.are.equal("http://a/~x/%2F%C3%A9?q=%3D%2541#%20",
                     url.normalize("http://a/%7ex/%2f%c3%a9?q=%3d%2541#%20"))
    assert.are.equal("http://a/A-b?%C3%A9=%20",
                     url.normalize("http://a/%41%2Db?\xc3\xa9= "))
  end)

  it("drops the fragment on request", function()
    assert.are.equal("http://a/b#c", url.normalize("http://a/b#c"))
    assert.are.equal("http://a/b", url.normalize("http://a/b#c",
                                                 {drop_fragment = true}))
  end)

  it("is idempotent", function()
    -- "%%62": a "%" that starts no escape, then an escape that decodes
    -- to "b" (found by the url fuzzer: it once normalised to "%b")
    for _, s in ipairs{"HTTP://A:80/%7e/../b?%61#x", "http://a/%zz",
                       "HTTP://%7e/./b/../%2E/?cE%%621#fX//g",
                       "http://a/100%", "http://a/%4"} do
      local once = url.normalize(s)
      assert.are.equal(once, url.normalize(once))
    end
    assert.are.equal("http://a/%25bc?x=%25A",
                     url.normalize("http://a/%%62c?x=%%41"))
  end)

  it("rejects bad input with the part named", function()
    assert.matches("bad argument #1 to 'url.normalize' %(invalid host",
                   err_of(url.normalize, "http://a b/"))
    assert.matches("control character in query",
                   err_of(url.normalize, "http://a/?\27"))
    assert.matches("bad argument #2 to 'url.normalize' %(table expected",
                   err_of(url.normalize, "http://a/", true))
    assert.matches("option 'drop_fragment' must be a boolean, got string",
                   err_of(url.normalize, "http://a/", {drop_fragment = "y"}))
  end)
end)

describe("url.encode and url.decode", function()
  it("encodes every byte but the unreserved ones", function()
    assert.are.equal("a%20b%26c%2F%3D~-._%C3%A9%00",
                     url.encode("a b&c/=~-._\xc3\xa9\0"))
  end)

  it("decodes, leaving invalid escapes and '+' alone", function()
    assert.are.equal("a b+c%zz%4\0", url.decode("a%20b+c%zz%4%00"))
    for _, s in ipairs{"", "\0\1\255", "x y z/?#[]"} do
      assert.are.equal(s, url.decode(url.encode(s)))
    end
  end)

  it("rejects non-strings", function()
    assert.matches("bad argument #1 to 'url.encode' %(string expected",
                   err_of(url.encode, {}))
    assert.matches("bad argument #1 to 'url.decode' %(string expected",
                   err_of(url.decode))
  end)
end)

describe("url.query_encode", function()
  it("sorts keys and repeats the key of an array value", function()
    assert.are.equal("a=x%20y&b=1&b=2.5&b=true&e=",
      url.query_encode{b = {1, 2.5, true}, a = "x y", c = {}, e = ""})
    assert.are.equal("", url.query_encode{})
  end)

  it("rejects what it cannot write", function()
    assert.matches("bad argument #1 to 'url.query_encode' %(keys must be "
                   .. "strings, got number", err_of(url.query_encode, {"x"}))
    assert.matches("value of 'a' must be a string, number, boolean or "
                   .. "array of them, got table",
                   err_of(url.query_encode, {a = {{}}}))
    assert.matches("value of 'f' must be .*got function",
                   err_of(url.query_encode, {f = print}))
    assert.matches("table expected, got string",
                   err_of(url.query_encode, "a=1"))
  end)
end)

describe("url.query_decode", function()
  it("keeps repeated keys as arrays, and the order in a list", function()
    local t, list = url.query_decode("?a=1&b=x+y%21&a=2&c&&a=3")
    assert.are.same({a = {"1", "2", "3"}, b = "x y!", c = ""}, t)
    assert.are.same({{"a", "1"}, {"b", "x y!"}, {"a", "2"}, {"c", ""},
                     {"a", "3"}}, list)
  end)

  it("round-trips with query_encode", function()
    local t = {k = {"1", "a b", "\0"}, ["x=y"] = "&"}
    assert.are.same(t, (url.query_decode(url.query_encode(t))))
  end)

  it("rejects non-strings", function()
    assert.matches("bad argument #1 to 'url.query_decode' %(string expected",
                   err_of(url.query_decode, {}))
  end)
end)
