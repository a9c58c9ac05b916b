-- Issue 13: cancellation stress for HTTP. Requests are cancelled at
-- their first await, while the body arrives (buffered and streamed) and
-- while a task iterates the chunks of a streamed body. Afterwards the
-- client must still work, close cleanly, and leave nothing behind (the
-- valgrind build runs this file for leaks); a child process doing the
-- same must exit on its own.
local aio = require "luaio"
local http = require "luaio.http"
local nginx = require "spec.helpers.nginx"
local fault = require "spec.helpers.fault"
local helpers = require "spec.helpers"

local srv, bad

setup(function() srv = nginx.start(); bad = fault.start() end)
teardown(function() srv:stop(); bad:stop() end)

-- Start fn(...) in a task, let it run for `after` seconds (nil: not at
-- all), cancel it, and return how it ended: "cancelled" or "done".
local function cancel_after(after, fn, ...)
  local t = aio.spawn(fn, ...)
  if after then aio.sleep(after) end
  t:cancel()
  local ok, e = pcall(t.await, t)
  if ok then return "done" end
  assert.is_true(aio.is_cancelled(e), tostring(e))
  return "cancelled"
end

-- The client must still serve requests, then close.
local function still_usable(c)
  assert.are.equal(200, c:get(srv.url .. "/small").status)
  assert.are.equal(1 << 20, #c:get(srv.url .. "/big").body)
  c:close()
  assert.has_error(function() c:get(srv.url) end,
    "client:get: http client is closed")
end

local delays = {nil, 0, 0.001, 0.005, 0.02, 0.05, 0.1}

describe("http cancellation stress #safety", function()
  it("cancels at the first await", function()
    local c = http.client()
    for i = 1, 40 do
      local url = i % 2 == 0 and bad.url .. "/stall" or srv.url .. "/big"
      cancel_after(i % 3 == 0 and 0 or nil, c.get, c, url)
    end
    still_usable(c)
  end)

  it("cancels a buffered body mid-flight", function()
    local c = http.client()
    local seen = {}
    for i = 1, 2 * #delays do
      local d = delays[(i - 1) % #delays + 1]
      local url = i % 2 == 0 and bad.url .. "/trickle" or bad.url .. "/partial"
      seen[cancel_after(d, c.get, c, url)] = true
    end
    assert.is_true(seen.cancelled)
    still_usable(c)
  end)

  it("cancels a streamed request before and after its headers", function()
    local c = http.client()
    for i = 1, 2 * #delays do
      local d = delays[(i - 1) % #delays + 1]
      cancel_after(d, function()
        local r <close> = c:get(bad.url .. "/trickle", {stream = true})
        for _ in r:chunks() do end
      end)
    end
    still_usable(c)
  end)

  it("cancels tasks iterating chunks, with and without <close>", function()
    local c = http.client()
    local kept = {}
    for i = 1, 10 do
      cancel_after(0.02 * (i % 4), function()
        local r = c:get(i % 2 == 0 and bad.url .. "/endless"
                        or srv.url .. "/big", {stream = true})
        kept[#kept + 1] = r                     -- left open: GC or close
        for _ in r:chunks() do aio.sleep(0.001) end
      end)
    end
    kept = nil
    collectgarbage()
    collectgarbage()
    still_usable(c)
  end)

  it("cancels HTTP/2 streams mid-body, paused or not", function()
    local c = http.client{ca_file = srv.ca_file}
    for i = 1, 8 do
      cancel_after(0.01 * i, function()
        local r <close> = c:get(srv.tls_url .. "/big", {stream = true})
        for _ in r:chunks() do aio.sleep(i % 2 == 0 and 0.05 or 0) end
      end)
    end
    local r <close> = c:get(srv.tls_url .. "/big", {stream = true})
    local got = 0
    for chunk in r:chunks() do got = got + #chunk end
    assert.are.equal(1 << 20, got)
    assert.are.equal("2", r.http_version)
    c:close()
  end)

  it("cancels many requests at once, then the default client works",
     function()
    local ts = {}
    for i = 1, 60 do
      ts[i] = aio.spawn(http.get, (i % 3 == 0 and bad.url .. "/trickle")
                        or (i % 3 == 1 and srv.url .. "/big")
                        or bad.url .. "/stall")
    end
    aio.sleep(0.05)
    for i = 1, 60 do ts[i]:cancel() end
    for i = 1, 60 do pcall(ts[i].await, ts[i]) end
    assert.are.equal(200, http.get(srv.url .. "/small").status)
  end)

  it("a process that cancels requests everywhere exits on its own",
     function()
    local path = helpers.script(([[
        local aio = require "luaio"
        local http = require "luaio.http"
        local c = http.client()
        local ts = {}
        for i = 1, 30 do
          ts[#ts + 1] = aio.spawn(function()
            local r <close> = c:get(%q, {stream = true})
            for _ in r:chunks() do end
          end)
          ts[#ts + 1] = aio.spawn(http.get, %q)
          ts[#ts + 1] = aio.spawn(c.get, c, %q)
        end
        aio.sleep(0.1)
        for _, t in ipairs(ts) do t:cancel() end
        -- one left running and one streamed response left open at exit
        aio.spawn(http.get, %q)
        _G.open = c:get(%q, {stream = true})
        print("done")
      ]]):format(bad.url .. "/endless", bad.url .. "/stall",
                 srv.url .. "/big", bad.url .. "/stall",
                 bad.url .. "/endless"))
    local rc, out = helpers.sh("timeout 60 " .. helpers.luaio .. " " .. path
                               .. " 2>&1")
    os.remove(path)
    assert.are.equal(0, rc, out)
    assert.matches("done", out, 1, true)
  end)
end)
