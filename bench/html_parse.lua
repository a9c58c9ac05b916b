-- bench/html_parse.sh's luaio program: parse every page of the corpus,
-- extract the title and the href of every a[href]. Prints the CPU
-- milliseconds of that loop, the links and the titles found.
--   luaio bench/html_parse.lua LIST [links|gc]
-- links: use doc:links() (resolved, de-duplicated) instead of a[href].
-- gc: leave each document to the collector instead of closing it when
-- done (`<close>`, as a crawler would): the trees are libxml2's memory,
-- which Lua's collector does not see, so they pile up between cycles.
local html = require "luaio.html"
local list, mode = ...
local pages = {}
for path in io.lines(list) do
  local f = assert(io.open(path, "rb"))
  pages[#pages + 1] = f:read("a")
  f:close()
end
local sel = html.selector("a[href]")
local links, titles = 0, 0
local t0 = os.clock()
local function work(doc)
  if doc.title then titles = titles + 1 end
  if mode == "links" then
    links = links + #doc:links()
  else
    for _, a in ipairs(doc:select(sel)) do
      if a:attr("href") then links = links + 1 end
    end
  end
end
for _, page in ipairs(pages) do
  local doc = html.parse(page, {url = "http://example.com/doc/page.html"})
  if mode == "gc" then
    work(doc)
  else
    local closing <close> = doc
    work(doc)
  end
end
print(("%.1f %d %d"):format((os.clock() - t0) * 1000, links, titles))
