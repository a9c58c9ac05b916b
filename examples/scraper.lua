-- SPDX-License-Identifier: MIT (see LICENSE)
-- scraper.lua: a rate-limited scraper "class": at most 3 requests at
-- once (semaphore), at most 50 per second (rate limiter), errors counted
-- per page instead of stopping the run. Run: luaio examples/scraper.lua BASE
local aio = require "luaio"
local http = require "luaio.http"

local Scraper = {}
Scraper.__index = Scraper

function Scraper.new(concurrency, per_second)
  return setmetatable({
    slots = aio.semaphore(concurrency),
    rate = aio.rate_limiter(per_second, 1, 1),
    client = http.client{timeout = 30},
    active = 0, most = 0, pages = {}, failed = 0,
  }, Scraper)
end

function Scraper:fetch(url)
  self.rate:acquire()
  local _ <close> = self.slots:acquire()
  self.active = self.active + 1
  self.most = math.max(self.most, self.active)
  local ok, res = pcall(self.client.get, self.client, url)
  self.active = self.active - 1
  if ok and res.ok then self.pages[url] = #res.body
  else self.failed = self.failed + 1 end
end

function Scraper:run(urls)
  aio.group(function(g)
    for _, url in ipairs(urls) do g:spawn(self.fetch, self, url) end
  end)
  self.client:close()
end

local base = assert(arg[1], "usage: scraper.lua BASE_URL")
local urls = {}
for i = 1, 10 do urls[#urls + 1] = base .. (i % 2 == 0 and "/delay/short" or "/data.json") .. "?i=" .. i end
urls[#urls + 1] = base .. "/status/404"
urls[#urls + 1] = base .. "/no-such-page"
local s = Scraper.new(3, 50)
s:run(urls)
local n = 0
for _ in pairs(s.pages) do n = n + 1 end
print(("scraped %d pages, %d failed, at most %d at once"):format(n + s.failed, s.failed, s.most))
