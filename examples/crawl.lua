-- SPDX-License-Identifier: MIT (see LICENSE)
-- crawl.lua: a concurrent web crawler, the luaio flagship.
--
--   luaio examples/crawl.lua [URL] [options]     (--help lists them)
--
-- With no URL it serves a demo site itself (http.serve, 127.0.0.1: links,
-- some slow, some broken, some redirecting, a robots.txt) and crawls that,
-- so it runs anywhere with no network. It resolves and normalises links
-- with luaio.url, reads pages with luaio.html, obeys robots.txt, limits
-- each host's rate, writes one JSON line per URL (and each page to a
-- file), draws a progress bar on stderr and prints a summary at the end,
-- also after Ctrl-C. --resume skips the URLs already in the output.
local aio = require "luaio"
local http = require "luaio.http"
local fs = require "luaio.fs"
local json = require "luaio.json"
local url = require "luaio.url"
local html = require "luaio.html"
local progress = require "luaio.progress"

local USER_AGENT = "luaio-crawl/" .. aio.version

-- ---- options -------------------------------------------------------------

local OPTIONS = {   -- name, default, help; a boolean default makes a flag
  {"depth", 10, "follow links this many hops from the start URL"},
  {"concurrency", 8, "requests in flight at once"},
  {"rate", 200, "requests per second per host (robots.txt may lower it)"},
  {"max-pages", 1000, "stop queueing after this many URLs"},
  {"out", false, "folder for pages and crawl.jsonl (default: a new temp folder)"},
  {"output", false, "JSON lines file (default: OUT/crawl.jsonl; - for stdout)"},
  {"resume", false, "skip URLs already recorded in the output file"},
  {"ignore-robots", false, "do not fetch or obey robots.txt"},
  {"all-hosts", false, "follow links to other hosts too"},
  {"no-progress", false, "no progress bar"},
  {"redis", false, "share the crawl through Redis (redis://host:port/db)"},
  {"workers", 1, "with --redis: processes to run (this one included)"},
  {"visibility", 30, "with --redis: seconds before a dead worker's URL is retried"},
  {"help", false, "print this help"},
}

local function usage()
  local lines = {"usage: luaio examples/crawl.lua [URL] [options]", ""}
  for _, o in ipairs(OPTIONS) do
    local arg_name = type(o[2]) == "number" and " N" or
                     (o[1] == "out" or o[1] == "output") and " PATH" or
                     o[1] == "redis" and " URL" or ""
    lines[#lines + 1] = ("  --%-20s %s%s"):format(o[1] .. arg_name, o[3],
      type(o[2]) == "number" and (" (%d)"):format(o[2]) or "")
  end
  return table.concat(lines, "\n")
end

-- Accepts `--depth 2` and `--depth=2`; anything else starting with - is
-- an error, not the start URL.
local function parse_args(argv)
  local opts, known = {}, {}
  for _, o in ipairs(OPTIONS) do
    known[o[1]] = o
    if o[2] then opts[o[1]:gsub("-", "_")] = o[2] end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, value = a:match("^%-%-([%w-]+)=(.*)$")
    name = name or a:match("^%-%-([%w-]+)$")
    local o = name and known[name]
    if a:sub(1, 1) == "-" and not o then
      return nil, "unknown option " .. a
    elseif o and type(o[2]) == "boolean" and o[1] ~= "out" and o[1] ~= "output"
           and o[1] ~= "redis" then
      if value then return nil, "--" .. name .. " takes no value" end
      opts[name:gsub("-", "_")] = true
    elseif o then
      if not value then i = i + 1; value = argv[i] end
      if value == nil then return nil, "--" .. name .. " needs a value" end
      if type(o[2]) == "number" then
        value = math.tointeger(tonumber(value))
        if not value or value < 0 then
          return nil, "--" .. name .. " needs a whole number >= 0"
        end
      end
      opts[name:gsub("-", "_")] = value
    elseif opts.url then
      return nil, "more than one start URL: " .. a
    else
      opts.url = a
    end
    i = i + 1
  end
  if opts.concurrency < 1 then return nil, "--concurrency must be >= 1" end
  if opts.rate < 1 then return nil, "--rate must be >= 1" end
  if opts.workers < 1 then return nil, "--workers must be >= 1" end
  if opts.workers > 1 and not opts.redis then
    return nil, "--workers needs --redis"
  end
  if opts.redis and opts.resume then
    return nil, "--resume is for a crawl without --redis (Redis keeps its own)"
  end
  return opts
end

local opts, bad = parse_args(arg)
if not opts then
  io.stderr:write("crawl.lua: ", bad, "\n", usage(), "\n")
  os.exit(2)
elseif opts.help then
  print(usage())
  os.exit(0)
end

-- ---- the demo site -----------------------------------------------------------

-- A tiny site served by luaio itself: enough HTTP for a crawler to chew on.
local function demo_page(n)
  local links = {}
  for _, m in ipairs({2 * n, 2 * n + 1}) do
    if m <= 120 then links[#links + 1] = ('<a href="/page/%d">page %d</a>'):format(m, m) end
  end
  if n % 3 == 0 then links[#links + 1] = ('<a href="../slow/%d">slow</a>'):format(n) end
  if n % 4 == 0 then links[#links + 1] = ('<a href="../broken/%d#top">broken</a>'):format(n) end
  if n % 5 == 0 then links[#links + 1] = ('<a href="/redirect/%d">moved</a>'):format(n) end
  if n % 7 == 0 then links[#links + 1] = '<a href="/missing">missing</a>' end
  if n % 11 == 0 then links[#links + 1] = ('<a href="/private/%d">private</a>'):format(n) end
  links[#links + 1] = '<a href="/page/1">home</a> <a href="https://elsewhere.example/">out</a>'
  return ("<!doctype html><html><head><title>Page %d</title></head><body><p>%s"
          .. "</body></html>"):format(n, table.concat(links, "\n"))
end

local ROBOTS = "User-agent: *\nDisallow: /private/\nAllow: /private/11$\n"

-- The demo site's routes, served by http.serve: each request in its own
-- task, so a slow page holds up nothing else.
local function demo_server()
  local srv = http.serve{host = "127.0.0.1", port = 0}
  local html_type = {["Content-Type"] = "text/html; charset=utf-8"}
  local function page(req) return 200, html_type, demo_page(tonumber(req.params.n)) end
  srv:route("GET", "/", function() return 200, html_type, demo_page(1) end)
  srv:route("GET", "/page/:n", page)
  srv:route("GET", "/private/:n", page)
  srv:route("GET", "/slow/:n", function(req)
    aio.sleep(0.2)
    return page(req)
  end)
  srv:route("GET", "/broken/:n", function() return 500, {}, "broken" end)
  srv:route("GET", "/redirect/:n", function(req)
    local n = tonumber(req.params.n) or 1
    return 302, {Location = ("/page/%d"):format((n + 19) % 120 + 1)}, ""
  end)
  srv:route("GET", "/robots.txt", function()
    return 200, {["Content-Type"] = "text/plain"}, ROBOTS
  end)
  return srv
end

-- ---- robots.txt (RFC 9309) ---------------------------------------------------

-- The groups that apply to us: those naming our product token, else `*`.
local function parse_robots(text)
  local groups, current, in_rules = {}, nil, false
  for line in (text .. "\n"):gmatch("([^\r\n]*)\r?\n") do
    line = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    local key, value = line:match("^([%w-]+)%s*:%s*(.-)$")
    key = key and key:lower()
    if key == "user-agent" then
      if in_rules or not current then
        current = {agents = {}, rules = {}}
        groups[#groups + 1] = current
        in_rules = false
      end
      current.agents[#current.agents + 1] = value:lower()
    elseif current and (key == "allow" or key == "disallow") then
      in_rules = true
      if value ~= "" then
        current.rules[#current.rules + 1] = {allow = key == "allow", path = value}
      end
    elseif current and key == "crawl-delay" then
      in_rules = true
      current.delay = tonumber(value)
    end
  end
  local token = USER_AGENT:match("^[^/]+"):lower()
  local mine, any = {rules = {}}, {rules = {}}
  for _, g in ipairs(groups) do
    for _, a in ipairs(g.agents) do
      local into = (a == token) and mine or (a == "*") and any or nil
      if into then
        for _, r in ipairs(g.rules) do into.rules[#into.rules + 1] = r end
        into.delay = into.delay or g.delay
        into.found = true
      end
    end
  end
  return mine.found and mine or any
end

-- A rule path as a Lua pattern: `*` matches anything, a final `$` anchors.
local function rule_matches(rule, path)
  local anchored = rule:sub(-1) == "$"
  if anchored then rule = rule:sub(1, -2) end
  local pat = rule:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*")
  return path:match("^" .. pat .. (anchored and "$" or "")) ~= nil
end

-- The longest matching rule wins; on a tie, allow.
local function robots_allow(robots, path)
  local best, allow = -1, true
  for _, r in ipairs(robots.rules) do
    if rule_matches(r.path, path) and (#r.path > best or (#r.path == best and r.allow)) then
      best, allow = #r.path, r.allow
    end
  end
  return allow
end

-- ---- the crawler -------------------------------------------------------------

local stats = {done = 0, errors = 0, bytes = 0, queued = 0, redirects = 0,
               robots = 0, skipped = 0, statuses = {}, kinds = {},
               started = aio.now()}

local function origin_of(u)
  local p = url.parse(u)
  return p.scheme .. "://" .. p.host .. (p.port and (":" .. p.port) or "")
end

local function path_of(u)
  local p = url.parse(u)
  return (p.path ~= "" and p.path or "/") .. (p.query and ("?" .. p.query) or "")
end

local function page_file(out, u)
  return out .. "/" .. u:gsub("^https?://", ""):gsub("[^%w%.%-]", "_") .. ".html"
end

-- What robots.txt allows on each origin and how fast: fetched once per
-- origin (the first task to ask fetches; the others wait on its event).
local function robots_keeper(client, new_limiter)
  local hosts = {}
  local function fetch(origin)
    local ok, res = pcall(client.get, client, origin .. "/robots.txt")
    if not ok then
      if aio.is_cancelled(res) then error(res, 0) end
      return {rules = {{allow = false, path = "/"}}}   -- unreachable: none
    elseif res.status >= 500 then
      return {rules = {{allow = false, path = "/"}}}   -- RFC 9309 2.3.1.4
    elseif res.status >= 400 then
      return {rules = {}}                              -- none: all allowed
    end
    return parse_robots(res.body)
  end
  return function(origin)
    local h = hosts[origin]
    if not h then
      h = {ready = aio.event()}
      hosts[origin] = h
      h.robots = opts.ignore_robots and {rules = {}} or fetch(origin)
      local per_second = opts.rate
      if h.robots.delay and h.robots.delay > 0 then
        per_second = math.min(per_second, 1 / h.robots.delay)
      end
      h.limiter = per_second >= 1 and new_limiter(origin, math.floor(per_second), 1)
                  or new_limiter(origin, 1, 1 / per_second)
      h.ready:set()
    end
    h.ready:wait()
    return h
  end
end

-- The records of an earlier run (--resume): URL -> record. Their URLs
-- are not fetched again, but the links they recorded are followed.
local function load_done(path)
  local done = {}
  local f = io.open(path, "r")
  if not f then return done end
  for line in f:lines() do
    local ok, rec = pcall(json.decode, line)
    if ok and type(rec) == "table" and type(rec.url) == "string" then
      done[rec.url] = rec
    end
  end
  f:close()
  return done
end

-- Where the crawl keeps its state. In one process: a queue, a table of
-- seen URLs, a limiter per host. With --redis the same in Redis, shared
-- by every process of the crawl (keys under crawl:<start URL>): a
-- reliable queue (an item a dead process took comes back after
-- --visibility seconds), a set, a limiter per host, a page counter, and
-- the records in a hash keyed by URL, so a URL retried after a crash is
-- still recorded once; the first process to see the end exports them.
local function local_frontier()
  local queue, seen, queued = aio.queue(), {}, 0
  return {
    add = function(u) if seen[u] then return false end seen[u] = true; return true end,
    has = function(u) return seen[u] ~= nil end,
    count = function() queued = queued + 1; return queued end,
    put = function(item) queue:put_nowait(item) end,
    get = function() return queue:get() end,
    done = function() queue:task_done() end,
    join = function() queue:join() end,
    close = function() queue:close() end,
    limiter = function(_, n, per) return aio.rate_limiter(n, per) end,
  }
end

local function redis_frontier(r, start)
  local redis = require "luaio.redis"
  local key = "crawl:" .. start
  local queue = redis.queue(r, key .. ":frontier",
                            {visibility = opts.visibility, poll = 0.2})
  local seen = redis.set(r, key .. ":seen")
  return {
    add = function(u) return seen:add(u) end,
    has = function(u) return seen:has(u) end,
    count = function() return r:call("INCR", key .. ":queued") end,
    put = function(item) queue:put(json.encode(item)) end,
    get = function()
      local text, receipt = queue:get()
      if text == nil then return nil end
      local item = json.decode(text)
      item.receipt = receipt
      return item
    end,
    done = function(item) queue:task_done(item.receipt) end,
    join = function() queue:join() end,
    close = function() queue:close() end,
    limiter = function(origin, n, per)
      return redis.rate_limiter(r, key .. ":rate:" .. origin, n, per)
    end,
    -- Processes start apart: the one that queued the start URL says so,
    -- and the others wait for that before they look for the end.
    seeded = function(seeder)
      if seeder then r:call("SET", key .. ":seeded", 1); return end
      while r:call("GET", key .. ":seeded") == nil do aio.sleep(0.05) end
    end,
    record = function(rec)            -- true: the first record of rec.url
      return r:call("HSETNX", key .. ":records", rec.url, json.encode(rec)) == 1
    end,
    export = function(records)        -- the first process at the end writes
      if r:call("SETNX", key .. ":exported", 1) ~= 1 then return 0 end
      local all = r:call("HGETALL", key .. ":records")
      for i = 2, #all, 2 do records:write(all[i], "\n") end
      return #all // 2
    end,
  }
end

local function crawl(start, out, output, r)
  local start_origin = origin_of(start)
  local client <close> = http.client{timeout = 30, retries = 2,
                                     max_connections = opts.concurrency,
                                     headers = {["User-Agent"] = USER_AGENT}}
  local frontier = r and redis_frontier(r, start) or local_frontier()
  local host_of = robots_keeper(client, frontier.limiter)
  local fetching = aio.semaphore(opts.concurrency)
  local resumed = opts.resume and output ~= "-" and load_done(output) or {}
  local records = output == "-" and io.stdout or assert(io.open(output, "a"))
  records:setvbuf("full", 1 << 20)       -- one write per flushed line
  local bar <close> = progress.bar{label = "crawl", unit = "pages",
                                   quiet = opts.no_progress}

  local function record(rec)
    if frontier.record then               -- Redis: written at the end
      frontier.record(rec)
      return
    end
    records:write(json.encode(rec), "\n")
    records:flush()
  end

  local function enqueue(u, depth)
    if depth > opts.depth or not frontier.add(u) then return false end
    if frontier.count() > opts.max_pages then return false end
    stats.queued = stats.queued + 1
    bar:set_total(stats.queued)
    frontier.put({url = u, depth = depth})
    return true
  end

  local function fetch(item)
    local h = host_of(origin_of(item.url))
    if not robots_allow(h.robots, path_of(item.url)) then return nil end
    h.limiter:acquire()
    local _ <close> = fetching:acquire()
    return client:get(item.url)
  end

  -- A page recorded by an earlier run: not fetched again, its links
  -- followed from the record.
  local function revisit(prior, item)
    stats.skipped = stats.skipped + 1
    for _, link in ipairs(type(prior.links) == "table" and prior.links or {}) do
      if type(link) == "string" then enqueue(link, item.depth + 1) end
    end
    if prior.final_url then frontier.add(prior.final_url) end
    bar:advance(1)
  end

  local function visit(item)
    local prior = resumed[item.url]
    if prior then return revisit(prior, item) end
    local t0 = aio.now()
    local ok, res = pcall(fetch, item)
    local rec = {url = item.url, depth = item.depth}
    if not ok then
      if aio.is_cancelled(res) then error(res, 0) end
      stats.errors = stats.errors + 1
      local kind = type(res) == "table" and res.kind or "error"
      stats.kinds[kind] = (stats.kinds[kind] or 0) + 1
      rec.error = tostring(res)
    elseif res == nil then
      stats.robots = stats.robots + 1
      rec.error = "disallowed by robots.txt"
    else
      rec.status, rec.bytes = res.status, #res.body
      stats.statuses[res.status] = (stats.statuses[res.status] or 0) + 1
      if res.url ~= item.url then          -- redirected: one page, one visit
        stats.redirects = stats.redirects + 1
        rec.final_url = res.url
        -- already queued or fetched under its own URL: counted there
        if not frontier.add(res.url) then rec.duplicate = true end
      end
      if rec.duplicate then
        stats.statuses[res.status] = stats.statuses[res.status] - 1
      elseif res.ok then
        stats.done = stats.done + 1
        stats.bytes = stats.bytes + #res.body
        fs.write(page_file(out, res.url), res.body)
        local ctype = res.headers["content-type"] or ""
        local doc <close> = html.parse(res.body, {url = res.url,
          encoding = ctype:lower():match("charset=%s*\"?([%w%-_:.]+)")})
        rec.title = doc.title
        rec.links = json.array{}
        for _, link in ipairs(doc:links()) do
          -- mailto:, javascript: and broken hrefs are not pages to crawl
          local ok_link, norm = false, nil
          if link:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
            ok_link, norm = pcall(url.normalize, link, {drop_fragment = true})
          end
          if ok_link and (opts.all_hosts or origin_of(norm) == start_origin) then
            rec.links[#rec.links + 1] = norm
            enqueue(norm, item.depth + 1)
          end
        end
      else
        stats.errors = stats.errors + 1
      end
    end
    rec.elapsed = math.floor((aio.now() - t0) * 1e6 + 0.5) / 1e6
    record(rec)
    bar:advance(1)
  end

  local function worker()
    while true do
      local item = frontier.get()
      if item == nil then return end
      local ok, err = pcall(visit, item)
      if not ok then                       -- a page we could not process
        if aio.is_cancelled(err) then error(err, 0) end
        stats.errors = stats.errors + 1
        record({url = item.url, depth = item.depth, error = tostring(err)})
      end
      frontier.done(item)
    end
  end

  local seeder = enqueue(start, 0)
  if frontier.seeded then frontier.seeded(seeder) end
  aio.group(function(g)
    for _ = 1, opts.concurrency * 2 do g:spawn(worker) end
    frontier.join()                      -- every queued URL handled
    frontier.close()                     -- ends the workers (of every process)
  end)
  if frontier.export then stats.exported = frontier.export(records) end
  if records ~= io.stdout then records:close() end
end

local function summary(out, output, interrupted)
  local dt = aio.now() - stats.started
  print(("crawl %s after %.2f s"):format(interrupted and "interrupted" or "finished", dt))
  print(("pages: %d ok, %d errors, %d redirected, %d disallowed, %d bytes, %.1f pages/s")
    :format(stats.done, stats.errors, stats.redirects, stats.robots, stats.bytes,
            stats.done / math.max(dt, 1e-3)))
  if stats.exported and stats.exported > 0 then
    print(("records of the whole crawl: %d (this process wrote them)"):format(stats.exported))
  end
  if stats.skipped > 0 then
    print(("resumed: %d pages recorded before, not fetched again"):format(stats.skipped))
  end
  local keys = {}
  for k in pairs(stats.statuses) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do print(("  status %s: %d"):format(k, stats.statuses[k])) end
  for k, v in pairs(stats.kinds) do print(("  %s errors: %d"):format(k, v)) end
  print("pages written to " .. out)
  if output ~= "-" then print("records written to " .. output) end
end

-- ---- main ---------------------------------------------------------------------

local server
local start = opts.url
if not start then
  server = demo_server()
  start = ("http://127.0.0.1:%d/"):format(server.port)
  print("serving a demo site at " .. start)
end
local good, why = pcall(url.normalize, start, {drop_fragment = true})
if not good or not why:match("^https?://") then
  io.stderr:write("crawl.lua: not an http(s) URL: ", start, "\n")
  os.exit(2)
end
start = why
local out = opts.out or fs.mkdtemp()
fs.mkdir(out, {parents = true})
local output = opts.output or (out .. "/crawl.jsonl")
print(("crawling %s (depth %d, concurrency %d, %d req/s per host)")
  :format(start, opts.depth, opts.concurrency, opts.rate))

-- --workers N: N - 1 more processes of this script on the same crawl.
local function start_workers()
  local proc = require "luaio.proc"
  local children = {}
  for _ = 2, opts.workers do
    local argv = {arg[-1], arg[0], start,
      "--redis", opts.redis, "--no-progress", "--out", out, "--output", output,
      "--depth=" .. opts.depth, "--concurrency=" .. opts.concurrency,
      "--rate=" .. opts.rate, "--max-pages=" .. opts.max_pages,
      "--visibility=" .. opts.visibility, stdout = "null"}
    if opts.ignore_robots then argv[#argv + 1] = "--ignore-robots" end
    if opts.all_hosts then argv[#argv + 1] = "--all-hosts" end
    children[#children + 1] = proc.spawn(argv)
  end
  return children
end

local ok, err = pcall(function()
  local r = opts.redis and require("luaio.redis").connect(opts.redis)
  local children = opts.workers > 1 and start_workers() or {}
  crawl(start, out, output, r)
  for _, child in ipairs(children) do child:wait() end
  if r then r:close() end
end)
local interrupted = not ok and aio.is_cancelled(err)
summary(out, output, interrupted)
if server then server:close({grace = 0}) end
if not ok then error(err, 0) end      -- Ctrl-C: exit 130 after the summary
