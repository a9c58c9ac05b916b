-- http.serve: the server, its router, request and response objects,
-- limits and shutdown, over real sockets, with luaio's own client, raw
-- TCP, curl and Python's urllib as clients.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local helpers = require "spec.helpers"

local url = require("spec.helpers.serve").url

local raw = require("spec.helpers.serve").raw

local function fails(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  return tostring(e)
end

local function after()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("http.serve", function()
  after_each(after)

  it("serves a handler on the port it picked", function()
    local srv <close> = http.serve{port = 0, handler = function(req)
      return 200, {["X-Method"] = req.method}, "Hello, world!"
    end}
    assert.is_true(math.type(srv.port) == "integer" and srv.port > 0)
    local r = http.get(url(srv, "/"))
    assert.are.equal(200, r.status)
    assert.are.equal("Hello, world!", r.body)
    assert.are.equal("GET", r.headers["x-method"])
    assert.are.equal("13", r.headers["content-length"])
    assert.is_truthy(r.headers["date"])
  end)

  it("gives the request's path, query, headers and remote", function()
    local seen
    local srv <close> = http.serve{handler = function(req)
      seen = req
      return "ok"
    end}
    http.get(url(srv, "/a/b%20c?x=1&y=h%C3%A9+llo&x=2&flag"),
             {headers = {["X-Thing"] = "v"}})
    assert.are.equal("/a/b%20c", seen.path)
    assert.are.same({"1", "2"}, seen.query.x)
    assert.are.equal("hé llo", seen.query.y)
    assert.are.equal("", seen.query.flag)
    assert.are.equal("v", seen.headers["x-thing"])
    assert.are.equal("v", seen.headers["X-THING"])
    assert.are.equal("127.0.0.1", seen.remote)
    assert.are.equal("1.1", seen.version)
  end)

  it("keeps every header of a long head", function()
    local seen
    local srv <close> = http.serve{handler = function(req)
      seen = req
      return "ok"
    end}
    local headers, long = {}, ("q"):rep(2000)
    for i = 1, 40 do headers["X-H" .. i] = ("v"):rep(i) end
    http.get(url(srv, "/" .. long .. "?a=" .. long), {headers = headers})
    assert.are.equal("/" .. long, seen.path)
    assert.are.equal(long, seen.query.a)
    for i = 1, 40 do
      assert.are.equal(("v"):rep(i), seen.headers["x-h" .. i])
    end
  end)

  it("routes with parameters, 404 and 405", function()
    local srv <close> = http.serve{}
    srv:route("GET", "/items/:id", function(req)
      return {status = 200, body = {id = req.params.id}}
    end)
    srv:route("POST", "/items", function(req)
      return 201, {}, {got = req:json()}
    end)
    srv:route("GET", "/files/*", function(req) return req.params["*"] end)
    local r = http.get(url(srv, "/items/a%2Fb"))
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.same({id = "a/b"}, r:json())
    r = http.post(url(srv, "/items"), {json = {n = 1}})
    assert.are.equal(201, r.status)
    assert.are.same({got = {n = 1}}, r:json())
    assert.are.equal("x/y.txt", http.get(url(srv, "/files/x/y.txt")).body)
    assert.are.equal(404, http.get(url(srv, "/nope")).status)
    r = http.delete(url(srv, "/items/3"))
    assert.are.equal(405, r.status)
    assert.are.equal("GET", r.headers["allow"])
    r = http.head(url(srv, "/items/3"))
    assert.are.equal(200, r.status)
    assert.are.equal("", r.body)
  end)

  it("falls back to the handler when no route matches", function()
    local srv <close> = http.serve{handler = function() return "fallback" end}
    srv:route("GET", "/a", function() return "a" end)
    assert.are.equal("a", http.get(url(srv, "/a")).body)
    assert.are.equal("fallback", http.get(url(srv, "/b")).body)
  end)

  it("accepts a response table, a string, a JSON body, or nothing", function()
    local srv <close> = http.serve{}
    srv:route("GET", "/t", function()
      return {status = 202, headers = {["Content-Type"] = "x/y"}, body = "t"}
    end)
    srv:route("GET", "/s", function() return "s" end)
    srv:route("GET", "/n", function() end)
    local r = http.get(url(srv, "/t"))
    assert.are.same({202, "x/y", "t"}, {r.status, r.headers["content-type"], r.body})
    r = http.get(url(srv, "/s"))
    assert.are.same({200, "text/plain; charset=utf-8", "s"},
                    {r.status, r.headers["content-type"], r.body})
    assert.are.equal(204, http.get(url(srv, "/n")).status)
  end)

  it("frames the response itself, whatever the handler says", function()
    local srv <close> = http.serve{}
    srv:route("GET", "/whole", function()
      return 200, {["content-length"] = "999", ["Transfer-Encoding"] = "x",
                   ["X-A"] = 1, ["content-type"] = "x/y"}, "body"
    end)
    srv:route("GET", "/stream", function(_, res)
      res:start(201, {["Content-Length"] = "1", ["X-B"] = "b"})
      res:write("stream")
    end)
    local r = http.get(url(srv, "/whole"))
    assert.are.same({200, "4", nil, "1", "x/y", "body"},
      {r.status, r.headers["content-length"], r.headers["transfer-encoding"],
       r.headers["x-a"], r.headers["content-type"], r.body})
    r = http.get(url(srv, "/stream"))
    assert.are.same({201, nil, "chunked", "b", "stream"},
      {r.status, r.headers["content-length"], r.headers["transfer-encoding"],
       r.headers["x-b"], r.body})
    assert.is_nil(r.headers["content-type"])
  end)

  it("reads the body whole, as JSON, or in chunks as it arrives", function()
    local sizes = {}
    local srv <close> = http.serve{handler = function(req)
      if req.path == "/chunks" then
        local n = 0
        for chunk in req:chunks() do
          n = n + #chunk
          sizes[#sizes + 1] = #chunk
          aio.sleep(0.001)
        end
        return tostring(n)
      end
      return req:body() .. "|" .. req:body()
    end}
    assert.are.equal("abc|abc", http.post(url(srv, "/"), {body = "abc"}).body)
    local big = ("x"):rep(600 * 1024)
    assert.are.equal(tostring(#big), http.post(url(srv, "/chunks"), {body = big}).body)
    assert.is_true(#sizes > 1)
  end)

  it("streams a response with res:write and res:finish", function()
    local srv <close> = http.serve{handler = function(req, res)
      res.headers["Content-Type"] = "text/event-stream"
      for i = 1, 3 do res:write("data: " .. i .. "\n\n") end
      res:finish()
    end}
    local r = http.get(url(srv, "/"))
    assert.are.equal(200, r.status)
    assert.are.equal("chunked", r.headers["transfer-encoding"])
    assert.are.equal("text/event-stream", r.headers["content-type"])
    assert.are.equal("data: 1\n\ndata: 2\n\ndata: 3\n\n", r.body)
  end)

  it("streams a large response to a slow reader with backpressure", function()
    -- 8 MiB: the socket buffers of both ends take close to 4 MiB here
    local wrote, total = 0, 8 * 1024 * 1024
    local srv <close> = http.serve{handler = function(req, res)
      local block = ("y"):rep(64 * 1024)
      for _ = 1, total // #block do res:write(block); wrote = wrote + #block end
    end}
    local r <close> = http.get(url(srv, "/"), {stream = true})
    local got, first = 0, true
    for chunk in r:chunks() do
      if first then
        -- until the handler makes no progress for a while (blocked, or
        -- done without backpressure), not for a fixed 0.2 s that a loaded
        -- machine could spend before it wrote much at all
        local before
        repeat before = wrote; aio.sleep(0.05) until wrote == before
        assert.is_true(wrote < total, "no backpressure")
        first = false
      end
      got = got + #chunk
    end
    assert.are.equal(total, got)
  end)

  it("answers a handler error with 500 and lives on", function()
    local srv <close> = http.serve{handler = function(req)
      if req.path == "/boom" then error("secret detail") end
      return "fine"
    end}
    local r = http.get(url(srv, "/boom"))
    assert.are.equal(500, r.status)
    assert.is_nil(r.body:find("secret", 1, true))
    assert.are.equal("fine", http.get(url(srv, "/")).body)
  end)

  it("logs the traceback of a handler error, not to the client", function()
    local rc, out = helpers.run_luaio([[
      local http = require "luaio.http"
      local srv <close> = http.serve{handler = function() error("kaboom") end}
      local r = http.get("http://127.0.0.1:" .. srv.port .. "/x")
      print("status", r.status, r.body)
    ]])
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("status\t500\tinternal server error", 1, true))
    assert.is_truthy(out:find("kaboom", 1, true))
    assert.is_truthy(out:find("stack traceback", 1, true))
  end)

  it("writes an access log line per request when asked", function()
    local lines = {}
    local srv <close> = http.serve{log = function(l) lines[#lines + 1] = l end,
                                   handler = function() return "hi" end}
    http.get(url(srv, "/logme?q=1"))
    assert.are.equal(1, #lines)
    assert.is_truthy(lines[1]:find('^127%.0%.0%.1 "GET /logme%?q=1 HTTP/1%.1" 200 2 '))
  end)

  it("refuses a response header that would split the head", function()
    local srv <close> = http.serve{handler = function()
      return 200, {["X-Evil"] = "a\r\nSet-Cookie: x=1"}, "body"
    end}
    local r = http.get(url(srv, "/"))
    assert.are.equal(500, r.status)
    assert.is_nil(r.headers["set-cookie"])
  end)

  it("logs why a handler's result could not be sent", function()
    local rc, out = helpers.run_luaio([[
      local http = require "luaio.http"
      local srv <close> = http.serve{handler = function()
        return 200, {["X-Evil"] = "a\r\nb"}, "body"
      end}
      local r = http.get("http://127.0.0.1:" .. srv.port .. "/split")
      print("status", r.status)
    ]])
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("status\t500", 1, true), out)
    assert.is_truthy(out:find("bad response from the handler for GET /split",
                              1, true), out)
  end)

  it("answers Expect: 100-continue when the handler reads the body", function()
    local srv <close> = http.serve{handler = function(req)
      return req:body():upper()
    end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            .. "Expect: 100-continue\r\nConnection: close\r\n\r\n")
    assert.are.equal("HTTP/1.1 100 Continue", aio.timeout(30, c.readline, c))
    assert.are.equal("", c:readline())
    c:write("hello")
    local out = aio.timeout(30, function() return c:read_all() end)
    assert.is_truthy(out:find("^HTTP/1.1 200 OK"))
    assert.is_truthy(out:find("\r\n\r\nHELLO$"))
  end)

  it("sends no body with 204 or 304", function()
    local srv <close> = http.serve{handler = function(req)
      return tonumber(req.path:sub(2)), {}, "dropped"
    end}
    for _, st in ipairs{204, 304} do
      local out = raw(srv.port, "GET /" .. st .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.is_truthy(out:find("^HTTP/1.1 " .. st))
      assert.is_nil(out:find("dropped", 1, true))
      assert.is_nil(out:find("Content-Length", 1, true))
    end
  end)

  it("runs each request in its own task, concurrently", function()
    -- Each handler waits until all five are in (not a timed sleep and a
    -- wall-clock bound, which a loaded machine can miss): a server that
    -- ran them one at a time would never let the first one finish. Raw
    -- connections, five at once (the HTTP client holds the others back
    -- until the first answer tells it whether it may multiplex).
    local inside, all_in = 0, aio.event()
    local srv <close> = http.serve{handler = function(req)
      inside = inside + 1
      if inside == 5 then all_in:set() end
      aio.timeout(60, all_in.wait, all_in)
      return req.path
    end}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = aio.spawn(raw, srv.port, "GET /" .. i .. " HTTP/1.1\r\n"
                           .. "Host: x\r\nConnection: close\r\n\r\n")
    end
    local rs = {aio.gather(tasks)}
    for i = 1, 5 do assert.matches("\r\n\r\n/" .. i .. "$", rs[i]) end
  end)
end)

describe("http.serve limits", function()
  after_each(after)

  it("answers 413 for a body over max_body", function()
    local srv <close> = http.serve{max_body = 1000, handler = function(req)
      return tostring(#req:body())
    end}
    assert.are.equal("10", http.post(url(srv, "/"), {body = ("z"):rep(10)}).body)
    assert.are.equal(413, http.post(url(srv, "/"), {body = ("z"):rep(1001)}).status)
    local out = raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "3e8\r\n" .. ("z"):rep(1000) .. "\r\n10\r\n" .. ("z"):rep(16) .. "\r\n0\r\n\r\n")
    assert.is_truthy(out:find("^HTTP/1.1 413 "))
  end)

  it("answers 431 for a head over max_header", function()
    local srv <close> = http.serve{max_header = 2000, handler = function() return "x" end}
    local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
                    .. ("a"):rep(3000) .. "\r\n\r\n")
    assert.is_truthy(out:find("^HTTP/1.1 431 "))
    assert.are.equal("x", http.get(url(srv, "/")).body)
  end)

  it("closes an idle keep-alive connection after idle_timeout", function()
    local srv <close> = http.serve{idle_timeout = 0.2, handler = function() return "x" end}
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    local out = aio.timeout(30, function() return c:read_all() end)
    assert.is_truthy(out:find("^HTTP/1.1 200 "))
    assert.are.equal(0, srv:connections())
  end)

  it("closes after max_requests on one connection", function()
    local srv <close> = http.serve{max_requests = 2, handler = function() return "x" end}
    local req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    local out = raw(srv.port, req .. req .. req)
    local _, n = out:gsub("HTTP/1.1 200", "")
    assert.are.equal(2, n)
    assert.is_truthy(out:find("Connection: close", 1, true))
  end)

  it("pauses accepting past max_connections", function()
    local srv <close> = http.serve{max_connections = 2, handler = function() return "x" end}
    local a <close> = net.connect("127.0.0.1", srv.port)
    local b <close> = net.connect("127.0.0.1", srv.port)
    -- both accepted before the third comes (not a 0.1 s sleep), up to a
    -- minute; the 0.3 s then are only a chance for a wrong accept to show
    for _ = 1, 3000 do
      if srv:connections() == 2 then break end
      aio.sleep(0.02)
    end
    assert.are.equal(2, srv:connections())
    local third = aio.spawn(http.get, url(srv, "/"))
    aio.sleep(0.3)
    assert.are.equal(2, srv:connections())
    assert.is_false(third:done())
    a:close()
    assert.are.equal("x", aio.wait_for(third, 30).body)
  end)

  it("checks its options", function()
    assert.is_truthy(fails(function() http.serve() end)
      :find("bad argument #1 to 'http.serve' (table expected, got no value)", 1, true)
      or fails(function() http.serve() end):find("table expected", 1, true))
    assert.is_truthy(fails(function() http.serve{port = 70000} end):find("port", 1, true))
    assert.is_truthy(fails(function() http.serve{port = 1.5} end):find("port", 1, true))
    assert.is_truthy(fails(function() http.serve{handler = 1} end):find("handler", 1, true))
    assert.is_truthy(fails(function() http.serve{max_body = -1} end):find("max_body", 1, true))
    assert.is_truthy(fails(function() http.serve{host = "a\0b"} end):find("host", 1, true))
    assert.is_truthy(fails(function() http.serve{host = "nohost"} end):find("http.serve", 1, true))
    local srv <close> = http.serve{}
    assert.is_truthy(fails(function() srv:route(1, "/", print) end)
      :find("bad argument #2 to 'srv:route'", 1, true))
    assert.is_truthy(fails(function() srv:route("GET", "x", print) end)
      :find("bad argument #3 to 'srv:route'", 1, true))
    assert.is_truthy(fails(function() srv:route("GET", "/", 1) end)
      :find("bad argument #4 to 'srv:route'", 1, true))
    assert.is_truthy(fails(function() srv:close{grace = -1} end)
      :find("bad argument #2 to 'srv:close'", 1, true))
  end)
end)

describe("http.serve shutdown", function()
  after_each(after)

  -- The close comes once the handler runs (an event, not a 0.1 s sleep
  -- that a loaded machine can outlast before the request arrives).
  it("lets requests in flight finish, then closes", function()
    local running = aio.event()
    local srv = http.serve{handler = function()
      running:set()
      aio.sleep(0.3)
      return "done"
    end}
    local port = srv.port
    local t = aio.spawn(http.get, url(srv, "/"))
    running:wait()
    srv:close{grace = 60}           -- the close returns when t is answered
    assert.are.equal("done", t:await().body)
    assert.is_nil(srv.port)
    local ok, e = pcall(net.connect, "127.0.0.1", port)
    assert.is_false(ok)
    assert.are.equal("ECONNREFUSED", e.code)
  end)

  it("cancels requests still running when the grace is over", function()
    local cancelled, running = false, aio.event()
    local srv = http.serve{handler = function()
      running:set()
      local ok, e = pcall(aio.sleep, 30)
      cancelled = not ok
      error(e, 0)
    end}
    local t = aio.spawn(function() return pcall(http.get, url(srv, "/")) end)
    running:wait()
    local t0 = aio.now()
    srv:close{grace = 0.2}
    assert.is_true(aio.now() - t0 < 20)     -- cut at the grace, not at 30 s
    assert.is_true(cancelled)
    local ok, r = t:await()
    assert.is_true(ok)
    assert.are.equal(500, r.status)
  end)

  it("can be closed from one of its handlers", function()
    local srv
    srv = http.serve{handler = function()
      srv:close{grace = 1}
      return "bye"
    end}
    assert.are.equal("bye", http.get(url(srv, "/")).body)
    aio.sleep(0.05)
    assert.is_nil(srv.port)
  end)

  it("closes on <close>", function()
    local port
    do
      local srv <close> = http.serve{handler = function() return "x" end}
      port = srv.port
      assert.are.equal("x", http.get("http://127.0.0.1:" .. port .. "/").body)
    end
    assert.is_false(pcall(net.connect, "127.0.0.1", port))
  end)
end)

-- A server in a child luaio process, for clients that block (curl,
-- Python): returns its port and a stop function.
local function child_server()
  return helpers.child_server([[
    local http = require "luaio.http"
    local srv = http.serve{handler = function(req)
      if req.method == "POST" then return 200, {}, {echo = req:json()} end
      return 200, {["X-Q"] = req.query.q}, "hello " .. req.path
    end}
  ]])
end

describe("http.serve with other clients", function()
  local port, stop
  setup(function() port, stop = child_server() end)
  teardown(function() stop() end)

  it("serves curl", function()
    local rc, out = helpers.sh("curl -si 'http://127.0.0.1:" .. port .. "/c?q=1'")
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("^HTTP/1.1 200 OK"))
    assert.is_truthy(out:find("X-Q: 1", 1, true))
    assert.is_truthy(out:find("hello /c$"))
    rc, out = helpers.sh("curl -s -d '{\"a\":[1,2]}' http://127.0.0.1:" .. port .. "/")
    assert.are.equal(0, rc)
    assert.are.equal('{"echo":{"a":[1,2]}}', out)
  end)

  it("serves Python's urllib", function()
    local rc, out = helpers.sh("/usr/bin/python3 -c \"import urllib.request as u; "
      .. "r = u.urlopen('http://127.0.0.1:" .. port .. "/py'); "
      .. "print(r.status, r.read().decode())\"")
    assert.are.equal(0, rc)
    assert.are.equal("200 hello /py\n", out)
  end)
end)

describe("examples/serve_hello.lua", function()
  it("serves its routes and logs each request", function()
    local rc, out = helpers.sh(helpers.luaio .. " examples/serve_hello.lua --check 2>&1")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("Hello, world!\n", 1, true))
    local json = require "luaio.json"
    local greeting = json.decode(out:match("\n({.-})\n"))
    assert.are.same({greeting = "hello Ann", lang = "en"}, greeting)
    assert.is_truthy(out:find("\necho", 1, true))
    assert.is_truthy(out:find("\n404\n", 1, true))
    assert.is_truthy(out:find('"GET /hello/Ann?lang=en HTTP/1.1" 200', 1, true))
  end)
end)
