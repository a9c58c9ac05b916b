-- SPDX-License-Identifier: MIT (see LICENSE)
-- crawl.lua: a concurrent web crawler, the luaio flagship.
--
--   luaio examples/crawl.lua [URL] [--depth N] [--concurrency N]
--         [--rate PER_SECOND] [--max-pages N] [--out DIR]
--
-- With no URL it serves a demo site itself on 127.0.0.1 (pages with links,
-- some slow, some broken, some redirecting) and crawls that, so it runs
-- anywhere with no network. It follows same-host links to a depth, keeps
-- a de-duplicated queue of pending URLs, fetches with a concurrency limit
-- (semaphore), a per-host rate limit and retries, writes each page to a
-- file, shows a live progress line on stderr, and prints a summary at the
-- end, also after Ctrl-C.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local fs = require "luaio.fs"

-- ---- options -------------------------------------------------------------

local opts = {depth = 10, concurrency = 8, rate = 200, max_pages = 1000}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local key = a:match("^%-%-([%w-]+)$")
    if key then
      key = key:gsub("-", "_")
      i = i + 1
      opts[key] = tonumber(arg[i]) or arg[i]
    else
      opts.url = a
    end
    i = i + 1
  end
end

-- ---- the demo site -----------------------------------------------------------

-- A tiny site served by luaio itself: enough HTTP for a crawler to chew on.
local function demo_page(n)
  local links = {}
  for _, m in ipairs({2 * n, 2 * n + 1}) do
    if m <= 120 then links[#links + 1] = ('<a href="/page/%d">page %d</a>'):format(m, m) end
  end
  if n % 3 == 0 then links[#links + 1] = ('<a href="/slow/%d">slow</a>'):format(n) end
  if n % 4 == 0 then links[#links + 1] = ('<a href="/broken/%d">broken</a>'):format(n) end
  if n % 5 == 0 then links[#links + 1] = ('<a href="/redirect/%d">moved</a>'):format(n) end
  if n % 7 == 0 then links[#links + 1] = '<a href="/missing">missing</a>' end
  links[#links + 1] = '<a href="/page/1">home</a> <a href="https://elsewhere.example/">out</a>'
  return ("<html><title>Page %d</title><body>%s</body></html>"):format(
    n, table.concat(links, "\n"))
end

local function respond(stream, status, body, extra)
  stream:write(("HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n%s\r\n%s")
    :format(status, #body, extra or "", body))
end

local function demo_handler(stream)
  while true do
    local request = stream:readline()
    if not request then break end
    repeat local header = stream:readline() until header == nil or header == ""
    local path = request:match("^GET (%S+)") or "/"
    local n = tonumber(path:match("/(%d+)$") or "1")
    if path == "/" or path:match("^/page/") then
      respond(stream, "200 OK", demo_page(n))
    elseif path:match("^/slow/") then
      aio.sleep(0.2)
      respond(stream, "200 OK", demo_page(n))
    elseif path:match("^/broken/") then
      respond(stream, "500 Internal Server Error", "broken")
    elseif path:match("^/redirect/") then
      respond(stream, "302 Found", "", ("Location: /page/%d\r\n"):format((n + 19) % 120 + 1))
    else
      respond(stream, "404 Not Found", "no such page")
    end
  end
  stream:close()
end

-- ---- the crawler -------------------------------------------------------------

local function split_url(url)
  local origin, path = url:match("^(https?://[^/]+)(.*)$")
  return origin, path ~= "" and path or "/"
end

local function resolve(base, href)
  href = href:gsub("#.*$", "")
  if href:match("^https?://") then return href end
  local origin, path = split_url(base)
  if href:sub(1, 1) == "/" then return origin .. href end
  return origin .. path:gsub("[^/]*$", "") .. href
end

local stats = {done = 0, errors = 0, bytes = 0, queued = 0, redirects = 0,
               statuses = {}, kinds = {}, started = aio.now()}

local function progress()
  local dt = aio.now() - stats.started
  io.stderr:write(("\r%d done, %d queued, %d errors, %.0f pages/s   ")
    :format(stats.done, stats.queued, stats.errors, stats.done / math.max(dt, 1e-3)))
end

local function summary(out, interrupted)
  local dt = aio.now() - stats.started
  io.stderr:write("\n")
  print(("crawl %s after %.2f s"):format(interrupted and "interrupted" or "finished", dt))
  print(("pages: %d ok, %d errors, %d redirected, %d bytes, %.1f pages/s")
    :format(stats.done, stats.errors, stats.redirects, stats.bytes,
            stats.done / math.max(dt, 1e-3)))
  local keys = {}
  for k in pairs(stats.statuses) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do print(("  status %s: %d"):format(k, stats.statuses[k])) end
  for k, v in pairs(stats.kinds) do print(("  %s errors: %d"):format(k, v)) end
  print("pages written to " .. out)
end

local function crawl(start, out)
  local origin = split_url(start)
  local client <close> = http.client{timeout = 10, retries = 2,
                                     max_connections = opts.concurrency}
  local fetching = aio.semaphore(opts.concurrency)
  local per_host = {}                  -- origin -> rate limiter
  local queue = aio.queue()
  local seen = {}

  local function enqueue(url, depth)
    if seen[url] or depth > opts.depth or stats.queued >= opts.max_pages then return end
    seen[url] = true
    stats.queued = stats.queued + 1
    queue:put_nowait({url = url, depth = depth})
  end

  local function fetch(url)
    local o = split_url(url)
    per_host[o] = per_host[o] or aio.rate_limiter(opts.rate, 1, opts.rate)
    per_host[o]:acquire()
    local _ <close> = fetching:acquire()
    return client:get(url)
  end

  local function worker()
    while true do
      local item = queue:get()
      if item == nil then return end
      local ok, res = pcall(fetch, item.url)
      if not ok then
        if aio.is_cancelled(res) then error(res, 0) end
        stats.errors = stats.errors + 1
        stats.kinds[res.kind or "error"] = (stats.kinds[res.kind or "error"] or 0) + 1
      else
        stats.statuses[res.status] = (stats.statuses[res.status] or 0) + 1
        local again = false
        if res.url ~= item.url then          -- redirected: one page, one visit
          stats.redirects = stats.redirects + 1
          again = seen[res.url] ~= nil       -- queued or fetched already
          seen[res.url] = "fetched"
        end
        seen[item.url] = "fetched"
        if again then
          stats.statuses[res.status] = stats.statuses[res.status] - 1
        elseif res.ok then
          stats.done = stats.done + 1
          stats.bytes = stats.bytes + #res.body
          local name = res.url:gsub("^https?://", ""):gsub("[^%w%.%-]", "_")
          fs.write(out .. "/" .. name .. ".html", res.body)
          for href in res.body:gmatch('href="([^"]+)"') do
            local link = resolve(res.url, href)
            if split_url(link) == origin then enqueue(link, item.depth + 1) end
          end
        else
          stats.errors = stats.errors + 1
        end
      end
      queue:task_done()
    end
  end

  enqueue(start, 0)
  aio.group(function(g)
    for _ = 1, opts.concurrency * 2 do g:spawn(worker) end
    g:spawn(function()                   -- the progress line
      while true do progress(); aio.sleep(0.25) end
    end).name = "progress"
    queue:join()                         -- every queued URL handled
    queue:close()                        -- ends the workers
    for _, t in ipairs(aio.tasks()) do
      if t.name == "progress" then t:cancel() end
    end
  end)
end

-- ---- main ---------------------------------------------------------------------

local server
local start = opts.url
if not start then
  server = net.serve("127.0.0.1", 0, demo_handler)
  start = ("http://127.0.0.1:%d/"):format(server.port)
  print("serving a demo site at " .. start)
end
local out = opts.out or fs.mkdtemp()
fs.mkdir(out, {parents = true})
print(("crawling %s (depth %d, concurrency %d, %d req/s per host)")
  :format(start, opts.depth, opts.concurrency, opts.rate))

local ok, err = pcall(crawl, start, out)
local interrupted = not ok and aio.is_cancelled(err)
summary(out, interrupted)
if server then server:close({cancel = true}) end
if not ok then error(err, 0) end      -- Ctrl-C: exit 130 after the summary
