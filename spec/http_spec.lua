local aio = require "luaio"
local http = require "luaio.http"
local nginx = require "spec.helpers.nginx"
local fault = require "spec.helpers.fault"
local helpers = require "spec.helpers"

local srv, bad

setup(function()
  srv = nginx.start()
  bad = fault.start()
end)

teardown(function()
  srv:stop()
  bad:stop()
end)

-- fn must raise a luaio.Error of this kind carrying the URL.
local function fails(kind, fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  assert.are.equal(kind, e.kind, tostring(e))
  assert.is_string(e.url)
  assert.matches(e.url, tostring(e), 1, true)
  return e
end

describe("http.get", function()
  it("returns status, headers, body, url and version", function()
    local r = http.get(srv.url .. "/small")
    assert.are.equal(200, r.status)
    assert.are.equal("OK", r.reason)
    assert.are.equal(1024, #r.body)
    assert.are.equal(r.body, r:text())
    assert.is_true(r.ok)
    assert.are.equal("1.1", r.http_version)
    assert.is_true(r.elapsed >= 0)
    assert.are.equal(r.headers["content-type"], r.headers["Content-Type"])
  end)

  it("keeps the raw header block and parses it once, on first use", function()
    local r = http.get(srv.url .. "/small")
    assert.matches("^HTTP/1%.1 200 OK\r\n", r.raw_headers)
    assert.matches("\r\nServer: nginx", r.raw_headers)
    assert.is_nil(rawget(r, "headers"))
    local h = r.headers
    assert.are.equal(h, rawget(r, "headers"))      -- cached, not re-parsed
    assert.are.equal(h, r.headers)
    assert.matches("^nginx", h["SERVER"])
    assert.are.equal("OK", rawget(r, "reason"))
    assert.is_function(r.text)                     -- methods still there
  end)

  it("decodes JSON bodies exactly", function()
    local data = http.get(srv.url .. "/data.json"):json()
    assert.are.equal(12345678901234567, data.users[2].id)
  end)

  it("treats 4xx and 5xx as responses until raise_for_status", function()
    local r = http.get(srv.url .. "/status/404")
    assert.are.equal(404, r.status)
    assert.is_false(r.ok)
    local ok, e = pcall(r.raise_for_status, r)
    assert.is_false(ok)
    assert.are.equal("http", e.kind)
    assert.are.equal(404, e.status)
    assert.are.equal(r, http.get(srv.url .. "/small"):raise_for_status() and r)
  end)

  it("follows redirects and reports the final URL", function()
    assert.are.equal(srv.url .. "/small", http.get(srv.url .. "/redirect").url)
    assert.are.equal(302, http.get(srv.url .. "/redirect",
      {follow_redirects = false}).status)
  end)

  it("limits redirects and refuses non-http targets", function()
    local e = fails("redirect", function() http.get(srv.url .. "/redirect/loop") end)
    assert.are.equal("TOO_MANY_REDIRECTS", e.code)
    fails("protocol", function() http.get(srv.url .. "/redirect/ftp") end)
  end)

  it("keeps repeated headers", function()
    local r = http.get(srv.url .. "/headers/multi")
    assert.are.equal("one, two", r.headers["X-Multi"])
    local n = 0
    for _, h in ipairs(r.header_list) do if h[1]:lower() == "x-multi" then n = n + 1 end end
    assert.are.equal(2, n)
  end)

  it("decompresses gzip", function()
    local r = http.get(srv.url .. "/text.txt")
    assert.are.equal("gzip", r.headers["content-encoding"])
    assert.are.equal(11000, #r.body)
  end)

  it("encodes the query", function()
    local r = http.get(srv.url .. "/echo/query", {query = {q = "a b&c"}})
    assert.are.equal("q=a%20b%26c\n", r.body)
  end)

  it("sends headers and rejects header injection before any I/O", function()
    assert.are.equal("hi\n", http.get(srv.url .. "/echo/header",
      {headers = {["X-Test"] = "hi"}}).body)
    assert.has_error(function()
      http.get(srv.url .. "/small", {headers = {["X-Test"] = "a\r\nEvil: 1"}})
    end, "bad argument #2 to 'http.get' (header 'X-Test' contains CR, LF or NUL)")
    assert.has_error(function()
      http.get(srv.url .. "/small", {headers = {["Bad Name"] = "x"}})
    end, "bad argument #2 to 'http.get' (invalid header name 'Bad Name')")
    assert.has_error(function()
      http.request{method = "GET\r\n", url = srv.url}
    end, "bad argument #1 to 'http.request' (invalid method)")
  end)

  it("rejects bad URLs and options before any I/O", function()
    assert.has_error(function() http.get("ftp://example/") end,
      "bad argument #1 to 'http.get' (invalid URL 'ftp://example/': only http and https)")
    assert.has_error(function() http.get(nil) end,
      "bad argument #1 to 'http.get' (string expected, got nil)")
    assert.has_error(function() http.get(srv.url, 5) end,
      "bad argument #2 to 'http.get' (table expected, got number)")
    assert.has_error(function() http.get(srv.url, {timeout = "x"}) end,
      "bad argument #2 to 'http.get' (option 'timeout' must be seconds or false)")
  end)
end)

describe("http request bodies", function()
  it("posts a string, JSON and a form", function()
    assert.are.equal("raw\n", http.post(srv.url .. "/echo/body", {body = "raw"}).body)
    assert.are.equal('{"n":1}\n', http.post(srv.url .. "/echo/body", {json = {n = 1}}).body)
    assert.are.equal("application/json\n",
      http.post(srv.url .. "/echo/content-type", {json = {}}).body)
    assert.are.equal("a=1&a=1\n", (http.post(srv.url .. "/echo/body",
      {form = {a = "1"}}).body:gsub("\n", "&a=1\n", 1)))
  end)

  it("names the call when a json body cannot be encoded", function()
    local ok, e = pcall(http.post, srv.url, {json = {f = print}})
    assert.is_false(ok)
    assert.are.equal("bad argument #2 to 'http.post' (option 'json' cannot "
      .. "be encoded (json.encode: cannot encode a function))", e)
  end)

  it("raises json.decode's error from response:json()", function()
    local r = http.get(srv.url .. "/small")
    local ok, e = pcall(r.json, r)
    assert.is_false(ok)
    assert.are.equal("json", e.kind)
    assert.is_nil(tostring(e):find("download.lua", 1, true), tostring(e))
  end)

  it("uploads multipart with a file", function()
    local path = os.tmpname()
    local f = io.open(path, "w"); f:write("file content"); f:close()
    local r = http.post(srv.url .. "/echo/body",
      {multipart = {field = "v", upload = {path = path, filename = "x.txt"}}})
    os.remove(path)
    assert.matches('name="upload"; filename="x.txt"', r.body, 1, true)
    assert.matches("file content", r.body, 1, true)
  end)

  it("uses each method", function()
    for _, m in ipairs({"put", "patch", "delete", "options"}) do
      assert.are.equal(m:upper() .. "\n", http[m](srv.url .. "/echo/method").body)
    end
    assert.are.equal("", http.head(srv.url .. "/small").body)
  end)
end)

describe("http errors", function()
  it("connection refused", function()
    local e = fails("connect", function() http.get("http://127.0.0.1:1/") end)
    assert.are.equal("ECONNREFUSED", e.code)
    assert.are.equal("GET", e.op)
  end)

  it("DNS failure", function()
    fails("dns", function() http.get("http://no-such-host.invalid/", {timeout = 30}) end)
  end)

  it("total timeout, and timeouts on by default", function()
    local e = fails("timeout", function() http.get(bad.url .. "/stall", {timeout = 0.2}) end)
    assert.are.equal("ETIMEDOUT", e.code)
  end)

  it("body too large is an error, not an OOM", function()
    local e = fails("body_too_large", function()
      http.get(bad.url .. "/endless", {max_body = 100000})
    end)
    assert.are.equal("BODY_TOO_LARGE", e.code)
  end)

  it("connection reset mid-body and garbage", function()
    fails("reset", function() http.get(bad.url .. "/reset") end)
    fails("protocol", function() http.get(bad.url .. "/garbage") end)
    assert.are.equal("EMSGSIZE",
      fails("http", function() http.get(bad.url .. "/huge-header") end).code)
  end)
end)

describe("TLS", function()
  it("verifies certificates by default", function()
    local e = fails("tls", function() http.get(srv.tls_url .. "/small") end)
    assert.matches("https://127.0.0.1", e.url, 1, true)
  end)

  it("accepts a CA file, or verify = false", function()
    assert.are.equal(1024, #http.get(srv.tls_url .. "/small", {ca_file = srv.ca_file}).body)
    assert.are.equal(200, http.get(srv.tls_url .. "/small", {verify = false}).status)
  end)
end)

describe("http cancellation and retries", function()
  it("cancelling a task mid-request removes the transfer", function()
    -- cancelled once the server has the request (after a fixed 0.05 s
    -- it could still be unsent on a loaded machine)
    local t = aio.spawn(http.get, bad.url .. "/stall/cancel-mid")
    repeat aio.sleep(0.005)
    until http.get(bad.url .. "/attempts/cancel-mid").body == "1"
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e))
    assert.are.equal(200, http.get(srv.url .. "/small").status)
  end)

  it("works under aio.timeout", function()
    local ok, e = pcall(aio.timeout, 0.1, http.get, bad.url .. "/stall")
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e))
  end)

  it("retries 503 with backoff, counting attempts on the server", function()
    local r = http.get(bad.url .. "/flaky/get/2", {retries = 3})
    assert.are.equal(200, r.status)
    assert.are.equal(2, r.retries)
    assert.are.equal("3", http.get(bad.url .. "/attempts/get").body)
  end)

  it("closing a client fails its requests waiting to retry, cleanly",
     function()
    -- Retry-After: 30, so t is still waiting to retry however long the
    -- polling takes on a loaded machine (the backoff alone is 0.1 s)
    local c = http.client{retries = 5}
    local t = aio.spawn(c.get, c, bad.url .. "/flaky/closing/3/30")
    repeat aio.sleep(0.005)  -- until the first 503 is in: t waits to retry
    until http.get(bad.url .. "/attempts/closing").body == "1"
    c:close()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.matches("/flaky/closing/3", tostring(e), 1, true)
    aio.sleep(1)           -- past any backoff: nothing may fire on a freed client
    assert.are.equal("1", http.get(bad.url .. "/attempts/closing").body)
  end)

  it("does not retry POST unless asked", function()
    assert.are.equal(503, http.post(bad.url .. "/flaky/post/1", {retries = 3}).status)
    assert.are.equal("1", http.get(bad.url .. "/attempts/post").body)
    assert.are.equal(200, http.post(bad.url .. "/flaky/post2/1",
      {retries = 3, retry_any_method = true}).status)
  end)
end)

describe("http.client", function()
  it("resolves against base_url and sends default headers", function()
    local c <close> = http.client{base_url = srv.url, headers = {["X-Test"] = "dflt"}}
    assert.are.equal("dflt\n", c:get("/echo/header").body)
    assert.are.equal(200, c:request{url = "/small"}.status)
  end)

  it("keeps cookies across requests", function()
    local c <close> = http.client{base_url = srv.url}
    c:get("/cookie/set")
    assert.are.equal("session=abc123\n", c:get("/echo/cookie").body)
    local plain <close> = http.client{base_url = srv.url, cookies = false}
    plain:get("/cookie/set")
    assert.are.equal("\n", plain:get("/echo/cookie").body)
  end)

  it("reuses connections (counted by the server)", function()
    local c <close> = http.client{base_url = srv.url}
    for _ = 1, 10 do c:get("/small?reuse") end
    assert.are.equal(1, srv:connections("^/small%?reuse$"))
  end)

  it("never opens more than max_connections (counted by the server)", function()
    -- connections open before (a stalled one other specs left) are left
    -- out of the count (base is 0)
    local base = tonumber(http.get(bad.url .. "/stats/reset").body)
    local c <close> = http.client{max_connections = 20}
    local ts = {}
    for i = 1, 1000 do ts[i] = aio.spawn(c.get, c, bad.url .. "/slow") end
    aio.gather(ts)
    local most = tonumber(http.get(bad.url .. "/stats").body:match("^%d+ (%d+)"))
    -- + 1: a spare, as a connection's close may be seen late
    assert.is_true(most - base <= 21, ("%d open at once"):format(most - base))
  end)

  it("closing a client ends a body being streamed with an error", function()
    local c = http.client()
    local r <close> = c:get(bad.url .. "/endless", {stream = true})
    local got = 0
    local reader = aio.spawn(function()
      for chunk in r:chunks() do got = got + #chunk end
    end)
    repeat aio.sleep(0.005) until got > 0
    c:close()
    local ok, e = aio.wait_for(aio.spawn(function()
      return pcall(reader.await, reader) end), 30)   -- no hang
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.has_error(function() for _ in r:chunks() do end end)
  end)

  it("is unusable once closed", function()
    local c = http.client()
    c:close()
    assert.has_error(function() c:get(srv.url) end,
      "client:get: http client is closed")
  end)
end)

describe("streaming", function()
  it("iterates the body in chunks as it arrives", function()
    local r <close> = http.get(srv.url .. "/big", {stream = true})
    assert.are.equal(200, r.status)
    assert.is_nil(r.body)
    local parts, biggest = {}, 0
    for chunk in r:chunks() do
      parts[#parts + 1] = chunk
      biggest = math.max(biggest, #chunk)
      aio.sleep(0.001)                 -- a slow consumer: curl pauses
    end
    assert.are.equal(1 << 20, #table.concat(parts))
    assert.is_true(biggest <= 300000, "a chunk of " .. biggest)
  end)

  it("stops an endless body when closed, with bounded memory", function()
    local r = http.get(bad.url .. "/endless", {stream = true})
    local got = 0
    for chunk in r:chunks() do
      got = got + #chunk
      if got > 4 << 20 then break end
    end
    r:close()
    assert.is_true(got > 4 << 20)
    local ok, e = pcall(function() r:chunks()() end)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.matches("response closed", tostring(e), 1, true)
  end)

  it("refuses chunks() on a buffered response", function()
    local r = http.get(srv.url .. "/small")
    assert.has_error(function() r:chunks() end,
      "response:chunks: not a streamed response (use {stream = true})")
  end)
end)

describe("http.download", function()
  it("streams to a file with progress", function()
    local dir = require("luaio.fs").mkdtemp()
    local calls, last_total = 0, nil
    local n = http.download(srv.url .. "/big", dir .. "/big.bin", {
      progress = function(done, total) calls = calls + 1; last_total = total end})
    assert.are.equal(1 << 20, n)
    assert.are.equal(1 << 20, #require("luaio.fs").read(dir .. "/big.bin"))
    assert.is_true(calls >= 1)
    os.execute("rm -rf " .. dir)
    assert(last_total == nil or last_total == 1 << 20)
  end)

  it("drives a progress bar: one of its own, or true for one on stderr",
    function()
      local fs = require "luaio.fs"
      local progress = require "luaio.progress"
      local dir = fs.mkdtemp()
      local log = assert(io.open(dir .. "/bar.log", "w+"))
      local bar = progress.bar{label = "big", unit = "B", stream = log}
      assert.are.equal(1 << 20, http.download(srv.url .. "/big",
        dir .. "/a.bin", {progress = bar}))
      bar:close()
      log:seek("set")
      local text = log:read("a")
      log:close()
      assert.matches("^big: 1.0 MiB", text)      -- (no total when gzipped)
      assert.are.equal(1 << 20, http.download(srv.url .. "/big",
        dir .. "/b.bin", {progress = true}))
      local ok, e = pcall(http.download, srv.url .. "/big", dir .. "/c.bin",
                          {progress = 5})
      os.execute("rm -rf " .. dir)
      assert.is_false(ok)
      assert.matches("option 'progress' must be a function, true or a "
                     .. "progress bar", e)
    end)

  it("leaves nothing behind on failure", function()
    local fs = require "luaio.fs"
    local dir = fs.mkdtemp()
    local ok, e = pcall(http.download, srv.url .. "/status/404", dir .. "/x")
    assert.is_false(ok)
    assert.are.equal(404, e.status)
    assert.are.same({}, fs.readdir(dir))
    ok = pcall(http.download, bad.url .. "/reset", dir .. "/y")
    assert.is_false(ok)
    assert.are.same({}, fs.readdir(dir))
    os.execute("rm -rf " .. dir)
    assert.has_error(function() http.download(srv.url, 5) end,
      "bad argument #2 to 'http.download' (string expected, got number)")
  end)

  it("names itself in argument errors", function()
    local cases = {
      {"bad argument #1 to 'http.download' (string expected, got nil)",
       nil, "x"},
      {"bad argument #3 to 'http.download' (table expected, got number)",
       srv.url, "x", 5},
      {"bad argument #3 to 'http.download' (option 'timeout' must be "
       .. "seconds or false)", srv.url, "x", {timeout = "soon"}},
      {"bad argument #1 to 'http.download' (URL contains a NUL byte)",
       srv.url .. "/\0", "x"},
    }
    for _, c in ipairs(cases) do
      local ok, e = pcall(http.download, c[2], c[3], c[4])
      assert.is_false(ok)
      assert.are.equal(c[1], e)
    end
  end)
end)

describe("the aiohttp tutorial examples", function()
  local function run(script, ...)
    local rc, out = helpers.sh(table.concat({helpers.luaio, script, ...}, " ") .. " 2>&1")
    assert.are.equal(0, rc, out)
    return out
  end

  it("fetch with timeout and retry with exponential backoff", function()
    local out = run("examples/fetch_retry.lua", bad.url)
    assert.matches("flaky: 200 finally after 3 attempts", out, 1, true)
    assert.matches("stall: gave up after 3 attempts: timeout", out, 1, true)
  end)

  it("a rate-limited scraper class with a semaphore", function()
    local out = run("examples/scraper.lua", srv.url)
    assert.matches("scraped 12 pages, 2 failed, at most 3 at once", out, 1, true)
  end)

  it("an API pipeline: list ids, then details and posts per id", function()
    local out = run("examples/api_pipeline.lua", srv.url)
    assert.matches("Alice <alice@example.org>: 2 posts", out, 1, true)
    assert.matches("Bob <bob@example.org>: 2 posts", out, 1, true)
  end)
end)

describe("examples/fetch_json.lua", function()
  it("fetches concurrently with per-result error handling", function()
    local rc, out = helpers.sh(helpers.luaio .. " examples/fetch_json.lua " .. srv.url)
    assert.are.equal(0, rc, out)
    assert.matches("users: Alice, Bob", out)
    assert.matches("status/404: HTTP 404", out)
    assert.matches("fetched 5 URLs, 2 failed", out)
  end)
end)

describe("100 delayed requests at once", function()
  it("run concurrently on a client allowing 100 connections", function()
    local c <close> = http.client{max_connections = 100}
    local t0 = aio.now()
    local ts = {}
    for i = 1, 100 do
      ts[i] = aio.spawn(c.get, c, srv.url .. "/delay/1?burst")
    end
    aio.gather(ts)
    -- Sequential would take 100 s; the bound leaves a loaded machine
    -- plenty. Not 8 at a time either (that would take 13 s): more
    -- connections than the default client's 8 per host served them.
    assert.is_true(aio.now() - t0 < 30)
    local used = srv:connections("^/delay/1%?burst$")
    assert.is_true(used > 8, used .. " connections")
  end)

  it("queue on the default client, 8 at a time per host", function()
    local t0 = aio.now()
    local ts = {}
    for i = 1, 16 do ts[i] = aio.spawn(http.get, srv.url .. "/delay/short") end
    aio.gather(ts)
    assert.is_true(aio.now() - t0 >= 0.39)   -- two rounds of 0.2 s
  end)
end)
