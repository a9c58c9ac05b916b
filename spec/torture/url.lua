-- Allocation-failure torture: luaio.url parses, joins, normalises and
-- encodes (libcurl's handles and strings are boxed, so a failed Lua
-- allocation must leak nothing).
local url = require "luaio.url"
local base = "http://a/b/c/d;p?q"
local n = 0
for _, ref in ipairs{"g", "../g", "#s", "", "//g", "g:h", "?y"} do
  n = n + #url.join(base, ref)
end
local u = url.parse("https://me:pw@Example.com:8443/a/b?x=1#top")
u.path = "/x y"
n = n + #tostring(u)
n = n + #url.normalize("HTTP://Example.COM:80/a/./b/../%7e?q#f",
                       {drop_fragment = true})
local q = url.query_encode{b = {1, 2.5, true}, a = "x y", c = "&"}
local t, list = url.query_decode(q .. "&a=again")
assert(#t.b == 3 and #list == 6)
assert(url.decode(url.encode("a b/\0")) == "a b/\0")
assert(not pcall(url.join, "/relative", "g"))
print("done", n)
