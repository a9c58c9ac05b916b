-- Issue 13, item 14: the default client had no connection cap (1,000
-- concurrent http.get calls held 765 sockets). It now opens at most 8
-- per host (100 in all) and queues the rest; the server counts.
local aio = require "luaio"
local http = require "luaio.http"
local fault = require "spec.helpers.fault"

local bad

setup(function() bad = fault.start() end)
teardown(function() bad:stop() end)

-- Most connections the server had open at once while fn ran, of those
-- opened meanwhile: the ones open before are left out by the server,
-- since it may see their close late (the default client's connections
-- of the last test, closed after it, when the machine is loaded).
local function most_open(fn)
  local base = tonumber(http.get(bad.url .. "/stats/reset").body)
  fn()
  local most = tonumber(http.get(bad.url .. "/stats").body:match("^%d+ (%d+)"))
  return most - base
end

-- 400 requests of 0.05 s over 8 connections take 2.5 s at best, and
-- close to a test's default limit of 10 s on a loaded machine: the two
-- tests that queue hundreds get two minutes.
local function allow_two_minutes() require("luaio.test").timeout(120) end

describe("http connection caps #safety", function()
  it("the default client opens at most 8 connections per host", function()
    allow_two_minutes()
    local n = 0
    local most = most_open(function()
      local ts = {}
      for i = 1, 400 do
        ts[i] = aio.spawn(function()
          local r = http.get(bad.url .. "/slow")
          if r.status == 200 then n = n + 1 end
        end)
      end
      aio.gather(ts)
    end)
    assert.are.equal(400, n)                     -- all served, queued
    assert.is_true(most <= 8, ("%d open at once"):format(most))
  end)

  it("a client with max_connections only gets as many per host", function()
    allow_two_minutes()
    local c <close> = http.client{max_connections = 12}
    local most = most_open(function()
      local ts = {}
      for i = 1, 200 do ts[i] = aio.spawn(c.get, c, bad.url .. "/slow") end
      aio.gather(ts)
    end)
    assert.is_true(most > 8 and most <= 13, ("%d open at once"):format(most))
  end)

  it("rejects a bad cap", function()
    assert.has_error(function() http.client{max_per_host = 0} end,
      "bad argument #1 to 'http.client' (option 'max_per_host' must be a "
      .. "positive integer or false)")
    local c <close> = http.client{max_per_host = false}
    assert.are.equal(200, c:get(bad.url .. "/slow").status)
  end)
end)
