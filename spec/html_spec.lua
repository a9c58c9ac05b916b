local html = require "luaio.html"
local helpers = require "spec.helpers"

local PAGE = [[<!DOCTYPE html>
<html><head><title>  A   page
 title </title></head>
<body><div id="nav"><a href="/a">A</a> <a href="b.html#top">B</a>
<a href="b.html#other">B again</a> <a href=" http://other.example/x ">X</a>
<a>no href</a> <a href="#only-fragment">frag</a></div>
<div id="text" class="c">Hello <b>bold</b>
  world</div><p>last</p></body></html>]]

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

describe("html.parse", function()
  it("builds a document from text", function()
    local doc = html.parse(PAGE)
    assert.are.equal("A page title", doc.title)
    assert.is_nil(doc.url)
    assert.are.equal("html", doc:root().tag)
    assert.are.equal(6, #doc:select("a"))
  end)

  it("keeps the url option", function()
    local doc = html.parse(PAGE, {url = "http://example.com/dir/index.html"})
    assert.are.equal("http://example.com/dir/index.html", doc.url)
  end)

  it("repairs broken markup", function()
    local doc = html.parse("<p>one<p>two</b></p></p><table><tr><td>x</table>")
    assert.are.equal(2, #doc:select("p"))
    assert.are.equal("x", doc:select_one("td"):text())
  end)

  it("keeps script text that contains '</'", function()
    local doc = html.parse("<script>var s = '</div>';</script><p>after</p>")
    assert.matches("</div>", doc:select_one("script"):text(), 1, true)
    assert.are.equal("after", doc:select_one("p"):text())
  end)

  it("reads <meta charset> and returns UTF-8", function()
    local doc = html.parse("<meta charset='iso-8859-1'><title>caf\233</title>")
    assert.are.equal("café", doc.title)
    doc = html.parse('<meta http-equiv="Content-Type" ' ..
      'content="text/html; charset=windows-1252"><title>\147q\148</title>')
    assert.are.equal("“q”", doc.title)
  end)

  it("honours the encoding option over <meta charset>", function()
    local doc = html.parse("<title>caf\233</title>", {encoding = "latin1"})
    assert.are.equal("café", doc.title)
    doc = html.parse("<meta charset=utf-8><title>\233t\233</title>",
      {encoding = "iso-8859-1"})
    assert.are.equal("été", doc.title)
  end)

  it("prints nothing for bytes its charset cannot convert", function()
    local rc, out = helpers.run_luaio([=[
      local html = require "luaio.html"
      local bad = "\255\254<\0p\0>\0x\0 \218 p"
      html.parse(bad)
      local p = html.parser()
      p:feed(bad)
      p:finish()
      html.parse("<p>\130\160</p>", {encoding = "shift_jis"})
      print(pcall(html.parse("<p>").xpath, html.parse("<p>"), "nope()"))
    ]=])
    assert.are.equal(0, rc)
    assert.are.equal("false", out:match("^(%a+)\t"))
    assert.is_nil(out:find("error :", 1, true))
  end)

  it("takes UTF-8 without a declaration", function()
    assert.are.equal("café ☃", html.parse("<title>café ☃</title>").title)
  end)

  it("gives an empty document for empty text", function()
    local doc = html.parse("")
    assert.is_nil(doc.title)
    assert.is_nil(doc:root())
    assert.are.same({}, doc:select("*"))
    assert.are.same({}, doc:links())
  end)

  it("survives huge nesting (libxml2 stops at depth 256)", function()
    local n = 100000
    local doc = html.parse(("<div>"):rep(n) .. "x" .. ("</div>"):rep(n))
    local divs = #doc:select("div")
    assert.is_true(divs > 200 and divs < 300)
    assert.is_true(#doc:select("div div > div:not(:has(p))") > 0)
    -- a descendant chain that fails at the end: linear, not exponential
    assert.are.equal(0, #doc:select(("div "):rep(12) .. "span"))
    assert.is_true(#doc:select(("* "):rep(12) .. "*") > 200)
    assert.is_string(doc:html())
  end)

  it("takes NUL bytes in the text (they do not end it)", function()
    local doc = html.parse("<p>a\0b</p><p>c</p>")
    assert.are.equal(2, #doc:select("p"))
    assert.are.equal("c", doc:select("p")[2]:text())
  end)

  it("reads byte order marks (UTF-8, UTF-16)", function()
    local t = "<title>caf\233</title><p>x</p>"
    local le = "\255\254" .. t:gsub(".", "%0\0")
    local be = "\254\255" .. t:gsub(".", "\0%0")
    for _, s in ipairs({le, be}) do
      local doc = html.parse(s)
      assert.are.equal("café", doc.title)
      assert.are.equal("caféx", doc:text())
    end
    local doc = html.parse("\239\187\191<title>caf\195\169</title>")
    assert.are.equal("café", doc.title)
    assert.are.equal("café", doc:text())
    local p = html.parser()
    for i = 1, #le, 3 do p:feed(le:sub(i, i + 2)) end
    assert.are.equal("café", p:finish().title)
  end)

  it("rejects bad arguments", function()
    assert.matches("bad argument #1 to 'html.parse' %(string expected, got nil%)",
      errmsg(html.parse, nil))
    assert.matches("bad argument #1 to 'html.parse' %(string expected, got table%)",
      errmsg(html.parse, {}))
    assert.matches("bad argument #2 to 'html.parse' %(table expected, got string%)",
      errmsg(html.parse, "", "x"))
    assert.matches("option 'url' must be a string without NUL",
      errmsg(html.parse, "", {url = 1}))
    assert.matches("option 'url' must be a string without NUL",
      errmsg(html.parse, "", {url = "http://a/\0b"}))
    assert.matches("bad argument #2 to 'html.parse' %(unknown encoding 'klingon'%)",
      errmsg(html.parse, "", {encoding = "klingon"}))
  end)
end)

describe("doc.title", function()
  it("is nil without <title>", function()
    assert.is_nil(html.parse("<p>x</p>").title)
  end)
end)

describe("doc:select and doc:select_one", function()
  it("return nodes in document order, or nil", function()
    local doc = html.parse(PAGE)
    local divs = doc:select("div")
    assert.are.equal("nav", divs[1]:attr("id"))
    assert.are.equal("text", divs[2]:attr("id"))
    assert.are.equal(divs[2], doc:select_one(".c"))
    assert.is_nil(doc:select_one("table"))
  end)

  it("returns the same node value for the same element", function()
    local doc = html.parse(PAGE)
    assert.are.equal(doc:select_one("#text"), doc:select("div")[2])
    assert.are.equal(doc:select_one("b"):parent(), doc:select_one("#text"))
  end)

  it("rejects bad selectors", function()
    local doc = html.parse(PAGE)
    assert.matches("bad argument #2 to 'doc:select' %(string or html selector expected, got nil%)",
      errmsg(doc.select, doc, nil))
    assert.matches("bad argument #2 to 'doc:select_one' %(string or html selector expected, got table%)",
      errmsg(doc.select_one, doc, {}))
    assert.matches("selector contains a NUL byte at position 2",
      errmsg(doc.select, doc, "a\0b"))
    assert.matches("invalid selector 'a%[': expected a name at position 3",
      errmsg(doc.select, doc, "a["))
    assert.matches("bad argument #1 to 'doc:select' %(html document expected, got string%)",
      errmsg(doc.select, "x", "a"))
  end)
end)

describe("html.selector", function()
  it("compiles once and serves many documents", function()
    local sel = html.selector("a[href$='.html']")
    for i = 1, 3 do
      local doc = html.parse(('<a href="%d.html">x</a><a href="y">y</a>'):format(i))
      assert.are.equal(i .. ".html", doc:select(sel)[1]:attr("href"))
      assert.are.equal(1, #doc:select(sel))
    end
  end)

  it("rejects bad input", function()
    assert.matches("bad argument #1 to 'html.selector' %(string expected, got nil%)",
      errmsg(html.selector, nil))
    assert.matches("bad argument #1 to 'html.selector' %(selector contains a NUL byte at position 4%)",
      errmsg(html.selector, "div\0p"))
  end)
end)

describe("doc:xpath", function()
  local doc = html.parse(PAGE)

  it("returns nodes, attribute values and text as a list", function()
    local as = doc:xpath("//div[@id='nav']/a[@href]")
    assert.are.equal(5, #as)
    assert.are.equal(doc:select("a")[1], as[1])
    assert.are.same({"/a", "b.html#top"}, doc:xpath("//a[position() < 3]/@href"))
    assert.are.same({"last"}, doc:xpath("//p/text()"))
  end)

  it("returns numbers, booleans and strings", function()
    assert.are.equal(6, doc:xpath("count(//a)"))
    assert.are.equal(true, doc:xpath("boolean(//b)"))
    assert.are.equal("bold", doc:xpath("string(//b)"))
    local nan = doc:xpath('number("x")')
    assert.is_true(nan ~= nan)
    assert.are.equal(math.huge, doc:xpath("1 div 0"))
    assert.are.equal("float", math.type(doc:xpath("2.5")))
  end)

  it("evaluates relative to a node", function()
    local text = doc:select_one("#text")
    assert.are.same({"bold"}, text:xpath("string(b)") and {text:xpath("string(b)")})
    assert.are.equal(1, #text:xpath(".//b"))
  end)

  it("rejects bad expressions without printing", function()
    assert.matches("bad argument #2 to 'doc:xpath' %(invalid XPath expression '//%[': invalid expression%)",
      errmsg(doc.xpath, doc, "//["))
    assert.matches("unknown function", errmsg(doc.xpath, doc, "nope(1)"))
    assert.matches("expression contains a NUL byte", errmsg(doc.xpath, doc, "//a\0"))
    assert.matches("string expected, got no value", errmsg(doc.xpath, doc))
  end)
end)

describe("doc:links", function()
  it("resolves against the document URL, drops fragments and duplicates", function()
    local doc = html.parse(PAGE, {url = "http://example.com/dir/index.html"})
    assert.are.same({"http://example.com/a", "http://example.com/dir/b.html",
      "http://other.example/x", "http://example.com/dir/index.html"}, doc:links())
  end)

  it("resolves against <base href>", function()
    local doc = html.parse('<base href="/base/"><a href="x">x</a>' ..
      '<area href="../y"><a href="//cdn.example/z">z</a>',
      {url = "https://example.com/a/b"})
    assert.are.same({"https://example.com/base/x", "https://example.com/y",
      "https://cdn.example/z"}, doc:links())
  end)

  it("keeps hrefs as written when there is no base", function()
    local doc = html.parse('<a href="x.html">x</a><a href="x.html#f">again</a>' ..
      '<a href="http://a.example/">a</a>')
    assert.are.same({"x.html", "http://a.example/"}, doc:links())
  end)

  it("skips hrefs that make no URL", function()
    local doc = html.parse('<a href="http://[::1">bad</a><a href="ok">ok</a>',
      {url = "http://example.com/"})
    assert.are.same({"http://example.com/ok"}, doc:links())
  end)
end)

describe("nodes", function()
  local doc = html.parse(PAGE)
  local text = doc:select_one("#text")

  it("have a tag, attributes and text", function()
    assert.are.equal("div", text.tag)
    assert.are.equal("c", text:attr("class"))
    assert.is_nil(text:attr("title"))
    assert.are.same({id = "text", class = "c"}, text:attrs())
    assert.are.equal("Hello bold\n  world", text:text())
    assert.are.equal("Hello bold world", text:text({normalize = true}))
    assert.are.equal('<b>bold</b>', text:select_one("b"):html())
    assert.matches('^<div id="text" class="c">Hello <b>bold</b>', text:html())
  end)

  it("know their children and parent", function()
    local nav = doc:select_one("#nav")
    local kids = nav:children()
    assert.are.equal(6, #kids)
    assert.are.equal("a", kids[1].tag)
    assert.are.equal(nav, kids[1]:parent())
    assert.are.equal("body", nav:parent().tag)
    assert.is_nil(doc:root():parent())
  end)

  it("select inside themselves", function()
    local nav = doc:select_one("#nav")
    assert.are.equal(6, #nav:select("a"))
    assert.are.equal(0, #text:select("a"))
    assert.are.equal("bold", text:select_one("b"):text())
    assert.are.equal(0, #nav:select("#nav"))     -- not the node itself
    assert.are.equal(6, #nav:select("body a"))   -- context may be outside
  end)

  it("print their tag", function()
    assert.are.equal("luaio.html.Node <div>", tostring(text))
  end)

  it("reject bad input", function()
    assert.matches("bad argument #2 to 'node:attr' %(string expected, got nil%)",
      errmsg(text.attr, text))
    assert.matches("name contains NUL", errmsg(text.attr, text, "id\0x"))
    assert.matches("bad argument #2 to 'node:text' %(table expected, got string%)",
      errmsg(text.text, text, "x"))
    assert.matches("bad argument #1 to 'node:html' %(html node expected, got table%)",
      errmsg(text.html, {}))
    assert.matches("bad argument #2 to 'node:select' %(string or html selector expected",
      errmsg(text.select, text, 1))
    assert.matches("invalid selector", errmsg(text.select_one, text, "::"))
    assert.matches("invalid XPath", errmsg(text.xpath, text, "]["))
  end)
end)

describe("every method", function()
  it("names its function when called on something else", function()
    local doc = html.parse(PAGE)
    local node = doc:select_one("b")
    for _, m in ipairs({"select", "select_one", "xpath", "links", "root",
                        "text", "html", "close"}) do
      assert.matches("bad argument #1 to 'doc:" .. m ..
        "' %(html document expected, got table%)", errmsg(doc[m], {}, "a"))
    end
    for _, m in ipairs({"attr", "attrs", "text", "html", "children",
                        "parent", "select", "select_one", "xpath"}) do
      assert.matches("bad argument #1 to 'node:" .. m ..
        "' %(html node expected, got userdata%)", errmsg(node[m], doc, "a"))
    end
    local p = html.parser()
    assert.matches("bad argument #1 to 'parser:finish' %(html parser expected",
      errmsg(p.finish, doc))
    assert.matches("bad argument #2 to 'doc:text' %(table expected, got number%)",
      errmsg(doc.text, doc, 1))
  end)
end)

describe("node lifetime", function()
  it("a node keeps its document alive", function()
    local node = html.parse(PAGE):select_one("#text b")
    collectgarbage()
    collectgarbage()
    assert.are.equal("bold", node:text())
    assert.are.equal("text", node:parent():attr("id"))
  end)

  it("nodes of a closed document raise", function()
    local doc = html.parse(PAGE)
    local node = doc:select_one("b")
    doc:close()
    doc:close()                                   -- twice is fine
    assert.matches("node:text: the node's document is closed",
      errmsg(node.text, node))
    assert.matches("node.tag: the node's document is closed",
      errmsg(function() return node.tag end))
    assert.matches("doc:select: the document is closed",
      errmsg(doc.select, doc, "b"))
    assert.matches("doc.title: the document is closed",
      errmsg(function() return doc.title end))
    assert.are.equal("luaio.html.Node (closed)", tostring(node))
  end)

  it("closes with <close>", function()
    local node
    do
      local doc <close> = html.parse(PAGE)
      node = doc:select_one("b")
    end
    assert.matches("document is closed", errmsg(node.attrs, node))
  end)

  it("a node resurrected after its document's __gc raises", function()
    local saved
    do
      local doc = html.parse(PAGE)
      local node = doc:select_one("b")
      setmetatable({}, {__gc = function() saved = node end})
    end
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(saved)
    assert.matches("document is closed", errmsg(saved.text, saved))
    saved = nil
  end)
end)

describe("html.parser", function()
  it("parses text fed in chunks like html.parse", function()
    local p = html.parser({url = "http://example.com/"})
    for i = 1, #PAGE, 3 do p:feed(PAGE:sub(i, i + 2)) end
    local doc = p:finish()
    local whole = html.parse(PAGE, {url = "http://example.com/"})
    assert.are.equal(whole:html(), doc:html())
    assert.are.equal("http://example.com/", doc.url)
    assert.are.same(whole:links(), doc:links())
  end)

  it("reads <meta charset> across chunks and the encoding option", function()
    local p = html.parser()
    local s = "<html><head><meta charset='iso-8859-1'><title>caf\233</title>"
    for i = 1, #s, 5 do p:feed(s:sub(i, i + 4)) end
    assert.are.equal("café", p:finish().title)
    p = html.parser({encoding = "latin1"})
    assert.are.equal(p, p:feed("<title>\233t\233</title>"))
    assert.are.equal("été", p:finish().title)
  end)

  it("keeps UTF-8 characters cut between chunks", function()
    local s = "<title>caf\195\169 \226\152\131 \240\159\152\128</title>" ..
      ("<p>na\195\175ve</p>"):rep(50)
    for _, size in ipairs({1, 2, 3, 5}) do
      local p = html.parser()
      for i = 1, #s, size do p:feed(s:sub(i, i + size - 1)) end
      local doc = p:finish()
      assert.are.equal("café ☃ 😀", doc.title)
      assert.are.equal(("naïve"):rep(50), doc:text():gsub("^.-😀", ""))
    end
  end)

  it("parses scripts containing '</' whatever the chunk size", function()
    local s = "<p>x<script>if (a</b) s = '</p>'</script><p>y</p>"
    local whole = html.parse(s):html()
    for _, size in ipairs({1, 2, 7, 1000}) do
      local p = html.parser()
      for i = 1, #s, size do p:feed(s:sub(i, i + size - 1)) end
      assert.are.equal(whole, p:finish():html())
    end
  end)

  it("gives an empty document when fed nothing", function()
    assert.are.same({}, html.parser():finish():select("*"))
  end)

  it("rejects bad input and use after finish", function()
    local p = html.parser()
    assert.matches("bad argument #2 to 'parser:feed' %(string expected, got no value%)",
      errmsg(p.feed, p))
    assert.matches("bad argument #1 to 'html.parser' %(table expected, got string%)",
      errmsg(html.parser, "x"))
    assert.matches("unknown encoding", errmsg(html.parser, {encoding = "x-nope"}))
    p:finish()
    assert.matches("parser:feed: the parser is finished", errmsg(p.feed, p, "x"))
    assert.matches("parser:finish: the parser is finished", errmsg(p.finish, p))
    assert.matches("html parser expected", errmsg(p.feed, {}, "x"))
  end)
end)
