-- Fuzz target html: parse and select. The input's first line is a CSS
-- selector, the rest an HTML page. The selector must compile or be
-- refused with an argument error naming a position; the page must
-- parse, whole and in chunks, to the same elements (for pages in valid
-- UTF-8 that declare no charset; see below); the selector, a few fixed
-- ones and links() run on it. Only a crash, a
-- leak or a broken property is a finding.
local html = require "luaio.html"
local input = ...
local css, page = input:match("^([^\n]*)\n?(.*)$")

local ok, sel = pcall(html.selector, css)
if not ok then
  assert(tostring(sel):find("at position %d+")
         or tostring(sel):find("NUL byte"), sel)
  sel = nil
end

local doc = html.parse(page, {url = "http://example.com/a/b"})
local p = html.parser({url = "http://example.com/a/b"})
for i = 1, #page, 7 do p:feed(page:sub(i, i + 6)) end
local function tags(d)
  local out = {}
  for i, n in ipairs(d:select("*")) do out[i] = n.tag end
  return table.concat(out, " ")
end
local chunked = p:finish()

-- Does a quoted attribute value hold a "<" or ">", or never close?
-- libxml2 2.9's push parser looks for a tag's end without minding
-- quotes, so where such a tag is cut between chunks decides where it
-- ends (2.11 reworked that look-ahead). Such pages are not compared.
-- The quotes are found as libxml2's htmlParseStartTag reads a tag: a
-- value is quoted only where a quote comes first after "="; an
-- unquoted value, and a bogus attribute (one not starting with a name
-- character: its bytes are skipped), run to white space or ">", quotes
-- included (href=%f$=".p and hrf$=".p open no quote); a "<" before
-- anything but a letter, "/", "!" or "?" is text, and so is what follows
-- a "</" that no letter follows (libxml2 drops the "</" alone).
local function quote_holds_bracket(s)
  local st, quote = "text", nil
  for c in s:gmatch(".") do
    local space, name = c:find("%s") ~= nil, c:find("[%w_:.%-]") ~= nil
    if st == "text" then
      if c == "<" then st = "open" end
    elseif st == "quoted" then
      if c == quote then st = "attrs"
      elseif c == "<" or c == ">" then return true end
    elseif c == ">" then st = "text"
    elseif st == "open" then      -- "<)" is text, "<!", "<?" skip
      st = c:find("%a") and "tag" or c == "/" and "close"
           or c:find("[!?]") and "skip" or c == "<" and "open" or "text"
    elseif st == "close" then     -- "</p" skips to ">"; "</)": ")" is text
      st = c:find("%a") and "skip" or c == "<" and "open" or "text"
    elseif st == "tag" or st == "attr" then
      if c == "=" and st == "attr" then st = "value"
      elseif space then st = st == "attr" and "after" or "attrs"
      elseif not name then st = "bogus" end
    elseif st == "after" and c == "=" then st = "value"
    elseif st == "attrs" or st == "after" then
      if c:find("[%a_:.]") then st = "attr"
      elseif not space then st = "bogus" end
    elseif st == "value" then
      if c == '"' or c == "'" then st, quote = "quoted", c
      elseif not space then st = "unquoted" end
    elseif st == "unquoted" or st == "bogus" then
      if space then st = "attrs" end
    end
  end
  return st == "quoted"
end

-- Bytes that are not in the page's charset stop libxml2's conversion
-- where it meets them, which depends on the chunks: compare pages in
-- valid UTF-8 that declare no other charset.
-- A NUL byte, too, ends 2.9's push parsing where one-shot parsing
-- goes on.
if utf8.len(page) and not page:lower():find("charset")
   and not page:find("\0", 1, true) and not quote_holds_bracket(page) then
  assert(tags(chunked) == tags(doc), "chunked parse differs")
end

for _, s in ipairs({sel or "*", "a[href]", "p:has(> a) ~ *:not(div)",
                    "li:nth-child(2n+1):contains('x')", ":empty"}) do
  for _, n in ipairs(doc:select(s)) do
    local _ = n.tag, n:attrs(), n:text({normalize = true}), n:parent()
    assert(#n:select(s) <= #doc:select(s))
  end
end
local _ = doc.title, doc:links(), doc:root(), doc:text()
pcall(doc.xpath, doc, css)
doc:close()
