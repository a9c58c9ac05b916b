-- Issue 13, the low HTTP items: max_body = math.huge rejected every
-- response; timeouts under 1 ms meant no timeout; numeric query keys
-- raised and leaked; an oversized response header was reported as "Out
-- of memory"; idle_timeout fired seconds late; empty header values were
-- dropped.
local aio = require "luaio"
local http = require "luaio.http"
local nginx = require "spec.helpers.nginx"
local fault = require "spec.helpers.fault"

local srv, bad

setup(function() srv = nginx.start(); bad = fault.start() end)
teardown(function() srv:stop(); bad:stop() end)

-- Run fn in a task, giving up after 60 s instead of hanging.
local function bounded(fn, ...)
  return aio.wait_for(aio.spawn(fn, ...), 60)
end

describe("http max_body = math.huge #safety", function()
  it("means no limit", function()
    local r = http.get(srv.url .. "/big", {max_body = math.huge})
    assert.are.equal(1 << 20, #r.body)
    local c <close> = http.client{max_body = math.huge}
    assert.are.equal(1024, #c:get(srv.url .. "/small").body)
  end)

  it("rejects negative and NaN limits", function()
    for _, v in ipairs({-1, 0 / 0, "10"}) do
      assert.has_error(function() http.get(srv.url, {max_body = v}) end,
        "bad argument #2 to 'http.get' (option 'max_body' must be a "
        .. "non-negative number of bytes)")
    end
  end)
end)

describe("http timeouts under 1 ms #safety", function()
  it("still time out (rounded up to 1 ms)", function()
    -- (connect_timeout goes through the same rounding; a connection to
    -- 127.0.0.1 is too quick to show it)
    for _, opt in ipairs({"timeout", "idle_timeout"}) do
      local ok, e = pcall(bounded, http.get, bad.url .. "/stall",
        {[opt] = 0.0001})
      assert.is_false(ok, opt)
      assert.are.equal("timeout", e.kind, opt .. ": " .. tostring(e))
      assert.are.equal("GET", e.op, tostring(e))   -- not wait_for's
    end
  end)
end)

describe("http numeric query keys #safety", function()
  it("are converted to text", function()
    assert.are.equal("1=x\n", http.get(srv.url .. "/echo/query",
      {query = {[1] = "x"}}).body)
    assert.are.equal("5=y\n", http.get(srv.url .. "/echo/query",
      {query = {[5] = "y"}}).body)
    assert.are.equal("n=2.5\n", http.get(srv.url .. "/echo/query",
      {query = {n = 2.5}}).body)
    assert.are.equal("1=a&2=b\n", http.post(srv.url .. "/echo/body",
      {form = {"a", "b"}}).body)
  end)

  it("other key or value types are argument errors", function()
    assert.has_error(function()
      http.get(srv.url, {query = {[true] = "x"}})
    end, "bad argument #2 to 'http.get' (option 'query' must map strings "
      .. "or numbers to strings or numbers)")
    assert.has_error(function()
      http.get(srv.url, {query = {a = {}}})
    end, "bad argument #2 to 'http.get' (option 'query' must map strings "
      .. "or numbers to strings or numbers)")
  end)

  it("a long query is encoded whole", function()
    local q = {}
    for i = 1, 300 do q["k" .. i] = string.rep("v", 20) end
    local body = http.get(srv.url .. "/echo/query", {query = q}).body
    local n = 0
    for _ in body:gmatch("k%d+=v+") do n = n + 1 end
    assert.are.equal(300, n)
  end)
end)

describe("http oversized response headers #safety", function()
  it("are reported as too large, with the limit", function()
    local ok, e = pcall(http.get, bad.url .. "/huge-header")
    assert.is_false(ok)
    assert.are.equal("http", e.kind)
    assert.are.equal("EMSGSIZE", e.code)
    assert.matches("response header too large", tostring(e), 1, true)
    assert.matches("102400 bytes", tostring(e), 1, true)
    assert.is_nil(tostring(e):find("memory"))
  end)
end)

describe("http idle_timeout #safety", function()
  it("fires on time after a partial body, with fractions", function()
    local t0 = aio.now()
    local ok, e = pcall(bounded, http.get, bad.url .. "/partial",
      {idle_timeout = 0.3})
    local took = aio.now() - t0
    assert.is_false(ok)
    assert.are.equal("timeout", e.kind, tostring(e))
    assert.are.equal("ETIMEDOUT", e.code)
    assert.are.equal("GET", e.op, tostring(e))     -- not wait_for's
    assert.matches("idle_timeout", tostring(e), 1, true)
    -- fired by idle_timeout, not by a later limit (the total timeout
    -- is 300 s); the upper bound leaves a loaded machine many seconds
    assert.is_true(took >= 0.29 and took < 20, ("took %.3f s"):format(took))
  end)

  it("fires for a streamed body the reader waits on", function()
    local r <close> = http.get(bad.url .. "/partial",
      {stream = true, idle_timeout = 0.2})
    local got = 0
    local ok, e = pcall(bounded, function()
      for chunk in r:chunks() do got = got + #chunk end
    end)
    assert.is_false(ok)
    assert.are.equal(1000, got)
    assert.are.equal("timeout", e.kind, tostring(e))
    assert.matches("idle_timeout", tostring(e), 1, true)
  end)

  it("does not fire while bytes keep coming", function()
    -- 4 s in all, longer than the idle_timeout; 0.025 s apart, so only a
    -- stall of 3 s (not one of a second under valgrind on a loaded
    -- machine) could fire it
    require("luaio.test").timeout(120)
    local r = http.get(bad.url .. "/trickle/160/25", {idle_timeout = 3})
    assert.are.equal(("t"):rep(160), r.body)
  end)

  it("does not count time a streamed body waits for its reader", function()
    -- 2 s: once the reader takes chunks again, a loop turn that stalls
    -- (under valgrind on a loaded machine) must not look idle; the
    -- reader's pause is longer
    local r <close> = http.get(srv.url .. "/big",
      {stream = true, idle_timeout = 2})
    local got = 0
    for chunk in r:chunks() do
      if got == 0 then aio.sleep(3) end          -- paused, not idle
      got = got + #chunk
    end
    assert.are.equal(1 << 20, got)
  end)
end)

describe("http empty header values #safety", function()
  it("are sent as 'Name:'", function()
    local body = http.get(bad.url .. "/headers",
      {headers = {["X-Empty"] = "", ["X-Full"] = "v"}}).body
    assert.matches("\nX%-Empty:%s*\r?\n", body)
    assert.matches("X-Full: v", body, 1, true)
  end)
end)
