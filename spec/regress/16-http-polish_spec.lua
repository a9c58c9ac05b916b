-- Issue 16, "HTTP polish": a default User-Agent, Basic and bearer
-- credentials that stay on their origin, Retry-After as seconds or as
-- an HTTP-date, one HTTP/2 connection for a cold burst (and no waiting
-- for one over HTTP/1.1), and a default
-- client that keeps no cookies between unrelated calls.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local fault = require "spec.helpers.fault"
local nginx = require "spec.helpers.nginx"

local a, b, srv

setup(function() a = fault.start(); b = fault.start(); srv = nginx.start() end)
teardown(function() a:stop(); b:stop(); srv:stop() end)

local function via_redirect(from, to)
  local enc = to:gsub("[^%w]", function(c)
    return ("%%%02X"):format(c:byte()) end)
  return from .. "/redirect-to/" .. enc
end

local function rejects(msg, fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  assert.are.equal(msg, e)
end

describe("User-Agent", function()
  it("is luaio/<version> by default", function()
    assert.matches("User-Agent: luaio/" .. aio.version .. "\r\n",
      http.get(a.url .. "/headers").body, 1, true)
  end)

  it("is set per client, per request, or by a header", function()
    local c <close> = http.client{user_agent = "bot/1"}
    assert.matches("User-Agent: bot/1\r\n", c:get(a.url .. "/headers").body,
      1, true)
    assert.matches("User-Agent: bot/2\r\n", c:get(a.url .. "/headers",
      {user_agent = "bot/2"}).body, 1, true)
    local body = c:get(a.url .. "/headers",
      {headers = {["User-Agent"] = "bot/3"}}).body
    assert.matches("User-Agent: bot/3\r\n", body, 1, true)
    assert.is_nil(body:find("bot/1", 1, true))
  end)

  it("false sends none", function()
    local c <close> = http.client{user_agent = "bot/1"}
    local body = c:get(a.url .. "/headers", {user_agent = false}).body
    assert.is_nil(body:find("User-Agent", 1, true), body)
  end)

  it("rejects what is not a clean string", function()
    rejects("bad argument #2 to 'http.get' (option 'user_agent' must be a "
      .. "string or false)", http.get, a.url, {user_agent = 5})
    rejects("bad argument #2 to 'http.get' (option 'user_agent' contains a "
      .. "NUL byte)", http.get, a.url, {user_agent = "a\0b"})
    rejects("bad argument #2 to 'http.get' (option 'user_agent' contains a "
      .. "CR or LF byte)", http.get, a.url, {user_agent = "a\r\nX-I: 1"})
    rejects("bad argument #1 to 'http.client' (option 'user_agent' must be "
      .. "a string or false)", http.client, {user_agent = true})
  end)
end)

describe("auth and bearer", function()
  local basic = "Authorization: Basic YWxpY2U6czNjcmV0\r\n"   -- alice:s3cret

  it("sends Basic credentials, per request and per client", function()
    assert.matches(basic, http.get(a.url .. "/headers",
      {auth = {"alice", "s3cret"}}).body, 1, true)
    local c <close> = http.client{auth = {"alice", "s3cret"}}
    assert.matches(basic, c:get(a.url .. "/headers").body, 1, true)
  end)

  it("sends a bearer token, per request and per client", function()
    assert.matches("Authorization: Bearer t-1\r\n", http.get(a.url
      .. "/headers", {bearer = "t-1"}).body, 1, true)
    local c <close> = http.client{bearer = "t-2"}
    assert.matches("Authorization: Bearer t-2\r\n",
      c:get(a.url .. "/headers").body, 1, true)
    assert.matches("Authorization: Bearer t-3\r\n",
      c:get(a.url .. "/headers", {bearer = "t-3"}).body, 1, true)
  end)

  it("false turns off a client's credentials for one request", function()
    local c <close> = http.client{auth = {"alice", "s3cret"}}
    local body = c:get(a.url .. "/headers", {auth = false}).body
    assert.is_nil(body:find("Authorization", 1, true), body)
    local d <close> = http.client{bearer = "t-6"}
    body = d:get(a.url .. "/headers", {bearer = false}).body
    assert.is_nil(body:find("Authorization", 1, true), body)
  end)

  it("drops both on a redirect to another origin", function()
    local c <close> = http.client{auth = {"alice", "s3cret"}}
    local r = c:get(via_redirect(a.url, b.url .. "/headers"))
    assert.are.equal(b.url .. "/headers", r.url)
    assert.is_nil(r.body:find("Authorization", 1, true), r.body)
    r = http.get(via_redirect(a.url, b.url .. "/headers"), {bearer = "t-4"})
    assert.is_nil(r.body:find("t-4", 1, true), r.body)
    local other = b.url:gsub("127%.0%.0%.1", "localhost")
    r = http.get(via_redirect(a.url, other .. "/headers"),
      {auth = {"alice", "s3cret"}})
    assert.is_nil(r.body:find("Authorization", 1, true), r.body)
  end)

  it("keeps both on a same-origin redirect", function()
    local r = http.get(via_redirect(a.url, a.url .. "/headers"),
      {auth = {"alice", "s3cret"}})
    assert.matches(basic, r.body, 1, true)
    r = http.get(via_redirect(a.url, a.url .. "/headers"), {bearer = "t-5"})
    assert.matches("Authorization: Bearer t-5\r\n", r.body, 1, true)
  end)

  it("rejects bad credentials before any I/O", function()
    local pre = "bad argument #2 to 'http.get' (option "
    rejects(pre .. "'auth' must be a table {user, password} or false)",
      http.get, a.url, {auth = "alice:s3cret"})
    rejects(pre .. "'auth' must be a table {user, password} of strings)",
      http.get, a.url, {auth = {"alice"}})
    rejects(pre .. "'auth' user must not contain ':')", http.get, a.url,
      {auth = {"al:ice", "s3cret"}})
    rejects(pre .. "'auth' contains a NUL, CR or LF byte)", http.get, a.url,
      {auth = {"alice\0", "s3cret"}})
    rejects(pre .. "'auth' contains a NUL, CR or LF byte)", http.get, a.url,
      {auth = {"alice", "s3\ncret"}})
    rejects(pre .. "'bearer' must be a string or false)", http.get, a.url,
      {bearer = {}})
    rejects(pre .. "'bearer' contains a NUL byte)", http.get, a.url,
      {bearer = "t\0"})
    rejects(pre .. "'bearer' contains a CR or LF byte)", http.get, a.url,
      {bearer = "t\r\nX-I: 1"})
    rejects("bad argument #1 to 'http.request' (option 'bearer' must be a "
      .. "string or false)", http.request, {url = a.url, bearer = 1})
    rejects("bad argument #1 to 'http.client' (option 'auth' user must not "
      .. "contain ':')", http.client, {auth = {"a:b", "c"}})
  end)
end)

-- A server whose first answer is a 503 with the given Retry-After (a
-- string, or a function making one), then 200s.
local function retry_server(retry_after)
  local n = 0
  local server = net.serve("127.0.0.1", 0, function(s)
    s:readuntil("\r\n\r\n")
    n = n + 1
    if n == 1 then
      local v = type(retry_after) == "function" and retry_after()
        or retry_after
      s:write("HTTP/1.1 503 Busy\r\nRetry-After: " .. v .. "\r\n"
        .. "Content-Length: 0\r\nConnection: close\r\n\r\n")
    else
      s:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        .. "Connection: close\r\n\r\nok")
    end
    s:close()
  end)
  return server, "http://127.0.0.1:" .. server.port
end

local function get_with(retry_after)
  local server, url = retry_server(retry_after)
  local ok, r = pcall(http.get, url, {retries = 1})
  server:close({cancel = true})
  assert(ok, r)
  return r
end

describe("Retry-After", function()
  it("is taken as seconds", function()
    local r = get_with("1")
    assert.are.equal(200, r.status)
    assert.are.equal(1, r.retries)
    assert.is_true(r.elapsed >= 0.95, tostring(r.elapsed))
  end)

  it("is taken as an HTTP-date", function()
    local r = get_with(function()
      return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
    end)
    assert.are.equal(200, r.status)
    assert.are.equal(1, r.retries)
    assert.is_true(r.elapsed >= 0.9, tostring(r.elapsed))
  end)

  it("past dates and garbage mean the usual short backoff", function()
    -- The backoff is 0.05 to 0.15 s; the bound leaves two exchanges on
    -- a loaded machine seconds, and still catches a value misread as 5
    -- s ("-5" by its size, "5.5e3x" by its leading digits; read as a
    -- number, 5500 s is past 60 and the 503 would be the response).
    for _, v in ipairs({"Thu, 01 Jan 2015 00:00:00 GMT", "soon", "-5",
                        "5.5e3x"}) do
      local r = get_with(v)
      assert.are.equal(200, r.status)
      assert.is_true(r.elapsed < 4, v .. ": " .. r.elapsed)
    end
  end)

  it("beyond 60 s is not waited for: the 503 is the response", function()
    local r = get_with("3600")
    assert.are.equal(503, r.status)
    assert.are.equal(0, r.retries)
    r = get_with(function()
      return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 7200)
    end)
    assert.are.equal(503, r.status)
  end)
end)

-- Established connections from this host to port (the client side:
-- the remote end is the port).
local function connections_to(port)
  local n = 0
  for line in io.lines("/proc/net/tcp") do
    local rport, st = line:match("^%s*%d+: %x+:%x+ %x+:(%x+) (%x+)")
    if rport and tonumber(rport, 16) == port and st == "01" then
      n = n + 1
    end
  end
  return n
end

describe("HTTP/2", function()
  it("multiplexes a cold burst to one origin on one connection", function()
    local port = tonumber(srv.tls_url:match(":(%d+)$"))
    local before = connections_to(port)
    local c <close> = http.client{ca_file = srv.ca_file}
    local ts = {}
    for i = 1, 12 do ts[i] = aio.spawn(c.get, c, srv.tls_url .. "/small") end
    for i = 1, 12 do
      local r = ts[i]:await()
      assert.are.equal(200, r.status)
      assert.are.equal("2", r.http_version)
    end
    assert.are.equal(1, connections_to(port) - before)
  end)
end)

describe("HTTP/1.1", function()
  -- Waiting for a connection that might multiplex (curl's PIPEWAIT) only
  -- pays where one can (https, or HTTP/2 by prior knowledge): over plain
  -- HTTP/1.1 it held a cold burst to one origin until the first answer.
  it("sends a cold burst to a plain-http origin at once", function()
    local arrived, all_in = 0, aio.event()
    local server <close> = http.serve{handler = function()
      arrived = arrived + 1
      if arrived == 5 then all_in:set() end
      aio.timeout(30, all_in.wait, all_in)   -- each waits for all five
      return "in"
    end}
    local c <close> = http.client()
    local ts = {}
    for i = 1, 5 do
      ts[i] = aio.spawn(c.get, c, "http://127.0.0.1:" .. server.port .. "/")
    end
    for i = 1, 5 do assert.are.equal("in", ts[i]:await().body) end
    assert.are.equal(5, arrived)
  end)
end)

describe("cookies", function()
  it("the default client keeps none between unrelated calls", function()
    http.get(srv.url .. "/cookie/set")
    assert.are.equal("\n", http.get(srv.url .. "/echo/cookie").body)
  end)

  it("an explicit client keeps them", function()
    local c <close> = http.client{base_url = srv.url}
    c:get("/cookie/set")
    assert.are.equal("session=abc123\n", c:get("/echo/cookie").body)
  end)
end)
