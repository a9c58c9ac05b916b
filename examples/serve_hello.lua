-- SPDX-License-Identifier: MIT (see LICENSE)
-- serve_hello.lua: an HTTP server with routes, JSON and an access log.
-- Run: luaio examples/serve_hello.lua [port]     (Ctrl-C stops it)
--      luaio examples/serve_hello.lua --check    (serves itself, exits)
local aio = require "luaio"
local http = require "luaio.http"

local check = ... == "--check"
local srv <close> = http.serve{
  host = "127.0.0.1",
  port = (not check and tonumber(...)) or 0,
  log = true,                               -- one line per request
}

srv:route("GET", "/", function()
  return "Hello, world!"
end)

srv:route("GET", "/hello/:name", function(req)
  return {greeting = "hello " .. req.params.name, lang = req.query.lang}
end)

srv:route("POST", "/echo", function(req)
  return 200, {["Content-Type"] = req.headers["content-type"]}, req:body()
end)

local base = "http://127.0.0.1:" .. srv.port
if not check then
  print("serving on " .. base)
  aio.sleep(math.huge)
end

print(http.get(base .. "/").body)
print(http.get(base .. "/hello/Ann", {query = {lang = "en"}}).body)
print(http.post(base .. "/echo", {body = "echoed"}).body)
print(http.get(base .. "/missing").status)
