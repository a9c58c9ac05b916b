-- The selector test table: the CSS Selectors Level 3 cases (plus :has
-- and :contains) luaio.html must match, each with the elements it finds
-- in spec/fixtures/selectors.html, in document order (ids, else tags).
-- The CSS3 rows agree with lxml's cssselect, except where cssselect is
-- wrong or narrower: the root matches :only-child (Selectors 4), type and
-- attribute names are case-insensitive in HTML, :not() takes a list.
local html = require "luaio.html"

local function fixture()
  local f = assert(io.open("spec/fixtures/selectors.html", "rb"))
  local doc = html.parse(f:read("a"))
  f:close()
  return doc
end

local function ids(nodes)
  local out = {}
  for _, n in ipairs(nodes) do out[#out + 1] = n:attr("id") or n.tag end
  return table.concat(out, " ")
end

local MATCHES = {
  {"p", "p1 p2 p3 p4"},
  {"#main > *", "h1 p1 p2 p3 list"},
  {"#p2", "p2"},
  {".intro", "p1"},
  {".box.big", "main"},
  {"div.box", "main"},
  {"[href]", "a1 a2"},
  {"[id=p1]", "p1"},
  {"a[rel~=noopener]", "a1"},
  {"[lang|=en]", "main"},
  {"[lang|=fr]", "side"},
  {[=[a[href^='http']]=], "a2"},
  {[=[a[href$='.pdf']]=], "a2"},
  {[=[[data-x*='lo Wo']]=], "main"},
  {"[class~=intro i]", "p1 p3"},
  {[=[[data-x='hello world' i]]=], "main"},
  {[=[[data-x='hello world']]=], ""},
  {[=[[href^='']]=], ""},
  {[=[[href*=""]]=], ""},
  {"div p", "p1 p2 p3 p4"},
  {"div > p", "p1 p2 p3 p4"},
  {"#main > p > a", "a1 a2"},
  {"h1 + p", "p1"},
  {"h1 ~ p", "p1 p2 p3"},
  {"p + p", "p2 p3"},
  {"li:first-child", "l1"},
  {"li:last-child", "l5"},
  {":only-child", "html title a1 p4 e1 r1"},
  {"li:nth-child(2n+1)", "l1 l3 l5"},
  {"li:nth-child(odd)", "l1 l3 l5"},
  {"li:nth-child(even)", "l2 l4"},
  {"li:nth-child(-n+2)", "l1 l2"},
  {"li:nth-child(3)", "l3"},
  {"li:nth-child( 2n - 1 )", "l1 l3 l5"},
  {"li:nth-last-child(2)", "l4"},
  {"li:nth-child(n+4)", "l4 l5"},
  {"p:nth-of-type(2)", "p2"},
  {"p:last-of-type", "p3 p4"},
  {"#main > :first-of-type", "h1 p1 list"},
  {"#main > :only-of-type", "h1 list"},
  {"li:nth-last-of-type(1)", "l5"},
  {"p:nth-child(2)", "p1"},
  {"p:not(.intro)", "p2 p3 p4"},
  {"p:not([id=p1], #p2)", "p3 p4"},
  {"p:empty", "p3"},
  {"td:empty", "c2"},
  {"body :empty", "s1 p3 c2"},
  {"div, p#p1", "main p1 side"},
  {"p:has(a)", "p1 p2"},
  {"p:has(> em)", "p4"},
  {"h1:has(+ p)", "h1"},
  {"h1:has(~ ul)", "h1"},
  {"div:has(li:nth-child(5))", "main"},
  {"body > div:not(:has(ul))", "side"},
  {[=[p:contains('Second')]=], "p2"},
  {[=[a:contains("two")]=], "a2"},
  {[=[div:contains('em')]=], "side"},
  {":root", "html"},
  {"ul > li:nth-child(2) ~ li", "l3 l4 l5"},
  {"DIV#main", "main"},
  {"a[HREF]", "a1 a2"},
  {"tr > td + td", "c2"},
  {[=[[id^=p][id$='3']]=], "p3"},
  {[=[#p\31]=], "p1"},
  {[=[#\70 2]=], "p2"},
  {"ul li", "l1 l2 l3 l4 l5"},
  {"a:not([href$=pdf])", "a1"},
  {"*", "html head title body main h1 p1 a1 p2 s1 a2 p3 list l1 l2 l3 l4 l5 side p4 e1 t r1 c1 c2"},
  {"html > body > div > ul > li:nth-child(5)", "l5"},
}

-- Invalid selectors: the message names the position (1-based).
local INVALID = {
  {"", "expected a selector at position 1"},
  {"div >", "expected a selector at position 6"},
  {">p", "expected a selector at position 1"},
  {"div,", "expected a selector at position 5"},
  {"a[href", "expected ']' or an attribute operator at position 7"},
  {"a[href=='x']", "expected a name at position 8"},
  {"a[x='open]", "unterminated string at position 11"},
  {"a[x=1 q]", "expected ']' at position 7"},
  {"p:unknown", "unknown pseudo%-class at position 3"},
  {"p::before", "pseudo%-elements are not supported at position 3"},
  {"li:nth-child(x)", "expected an%+b, odd or even at position 14"},
  {"li:nth-child(2n+)", "expected a number at position 17"},
  {"li:nth-child(2", "expected '%)' at position 15"},
  {"p:not(", "expected a selector at position 7"},
  {"p:not(a", "expected '%)' at position 8"},
  {"#", "expected a name at position 2"},
  {".1a", "expected a class name at position 2"},
  {"div $ p", "expected a selector at position 5"},
  {"a)", "unexpected character at position 2"},
  {"p:contains(x", "expected '%)' at position 13"},
  {string.rep(":not(", 20) .. "p" .. string.rep(")", 20),
   "selector nested too deep at position 86"},
}

describe("html selectors: the table", function()
  local doc = fixture()
  for _, case in ipairs(MATCHES) do
    it(case[1], function()
      assert.are.equal(case[2], ids(doc:select(case[1])))
      local compiled = html.selector(case[1])
      assert.are.equal(case[2], ids(doc:select(compiled)))
      local first = doc:select_one(compiled)
      assert.are.equal(case[2]:match("^%S+"), first and ids({first}))
    end)
  end
end)

describe("html selectors: invalid", function()
  for _, case in ipairs(INVALID) do
    it(("%q"):format(case[1]), function()
      local ok, err = pcall(html.selector, case[1])
      assert.is_false(ok)
      assert.matches("^bad argument #1 to 'html.selector' %(invalid selector", err)
      assert.matches(case[2], err)
      local doc = fixture()
      ok, err = pcall(doc.select, doc, case[1])
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'doc:select' %(invalid selector", err)
    end)
  end
end)
