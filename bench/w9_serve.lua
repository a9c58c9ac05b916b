-- SPDX-License-Identifier: MIT (see LICENSE)
-- W9: the HTTP server. /hello answers 13 bytes, /json encodes a ~2 KB
-- document per request. Run: luaio bench/w9_serve.lua PORT
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
  .. package.path
local common = require "common"
local aio = require "luaio"
local http = require "luaio.http"
local json = require "luaio.json"

local doc = common.w9_document()
local hello = {["Content-Type"] = "text/plain"}
local jtype = {["Content-Type"] = "application/json"}

local srv = http.serve{port = tonumber(arg[1]) or 8080,
                       max_connections = 10000}
srv:route("GET", "/hello", function() return 200, hello, "Hello, world!" end)
srv:route("GET", "/json", function() return 200, jtype, json.encode(doc) end)
print("ready", srv.port)
io.stdout:flush()
aio.sleep(math.huge)
