-- SPDX-License-Identifier: MIT (see LICENSE)
-- gen_site.lua DIR [PAGES]: writes a linked site of PAGES pages (2000)
-- into DIR for the crawl benchmark: every page reachable from index.html,
-- ~12 links each (relative, absolute-path, with fragments and dot
-- segments, some duplicates, some off-site), ~6 KB of text, a title.
local dir, n = arg[1], tonumber(arg[2]) or 2000
assert(dir, "usage: gen_site.lua DIR [PAGES]")
local WORDS = {"lorem", "ipsum", "dolor", "sit", "amet", "luaio", "crawl",
               "async", "task", "queue", "loop", "page", "link", "node"}
local seed = 42
local function rand(m)                 -- a fixed LCG: the same site every time
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % m
end
local function text(words)
  local t = {}
  for i = 1, words do t[i] = WORDS[rand(#WORDS) + 1] end
  return table.concat(t, " ")
end
local function page(i)
  local links = {}
  local function add(href, label)
    links[#links + 1] = ('<li><a href="%s">%s</a></li>'):format(href, label)
  end
  if i + 1 < n then add(("p%d.html"):format(i + 1), "next") end
  for _ = 1, 8 do
    local j = rand(n)
    local form = rand(4)
    if form == 0 then add(("p%d.html"):format(j), "page " .. j)
    elseif form == 1 then add(("/p%d.html"):format(j), "page " .. j)
    elseif form == 2 then add(("./p%d.html#s%d"):format(j, rand(5)), "section")
    else add(("../p%d.html?"):format(j):gsub("%?$", ""), "up " .. j) end
  end
  add("/index.html", "home")
  add("https://example.invalid/elsewhere", "off-site")
  add("mailto:someone@example.invalid", "mail")
  local paras = {}
  for k = 1, 12 do paras[k] = "<p>" .. text(60) .. "</p>" end
  return ([[<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page %d of the test site</title>
<style>body { font-family: sans-serif }</style></head>
<body><header><nav><ul>%s</ul></nav></header>
<main><h1>Page %d</h1>%s</main><footer>generated</footer></body></html>
]]):format(i, table.concat(links), i, table.concat(paras, "\n"))
end
os.execute("mkdir -p '" .. dir .. "'")
for i = 0, n - 1 do
  local f = assert(io.open(("%s/p%d.html"):format(dir, i), "w"))
  f:write(page(i))
  f:close()
end
local f = assert(io.open(dir .. "/index.html", "w"))
f:write('<html><head><title>Test site</title></head><body><a href="p0.html">start</a></body></html>\n')
f:close()
f = assert(io.open(dir .. "/robots.txt", "w"))
f:write("User-agent: *\nDisallow: /private/\n")
f:close()
