-- SPDX-License-Identifier: MIT (see LICENSE)
-- fetch_retry.lua: fetch with a timeout, retrying with exponential
-- backoff and jitter (the loop spelled out; the client's `retries`
-- option does the same for you). Run: luaio examples/fetch_retry.lua BASE
local aio = require "luaio"
local http = require "luaio.http"

local base = assert(arg[1], "usage: fetch_retry.lua BASE_URL")

local function fetch_with_retry(url, attempts, timeout)
  local delay = 0.05
  for attempt = 1, attempts do
    local ok, res = pcall(http.get, url, {timeout = timeout})
    if ok and res.status < 500 then return res, attempt end
    if attempt == attempts then
      error({attempts = attempt, cause = ok and ("HTTP " .. res.status) or res.kind}, 0)
    end
    aio.sleep(delay * (0.5 + math.random()))     -- backoff with jitter
    delay = delay * 2
  end
end

local key = tostring(math.random(1e9))
local res, n = fetch_with_retry(base .. "/flaky/" .. key .. "/2", 5, 30)
print(("flaky: %d %s after %d attempts"):format(res.status, res.body, n))
local ok, err = pcall(fetch_with_retry, base .. "/stall", 3, 0.1)
print(("stall: gave up after %d attempts: %s"):format(err.attempts, err.cause))
