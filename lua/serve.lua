-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.serve: http.serve, its router and its request and response
-- objects, built on the C core of bindings/serve_*.c (sockets, parsing
-- by libhttp-parser, one task per request). Loaded by luaio.http.
local json = require "luaio.json"
local listen                     -- the C core's listen, set below

local LIMITS = {                 -- option = {default, C field, scale}
  max_header = {16 * 1024, "max_header", 1},
  max_body = {1024 * 1024, "max_body", 1},
  header_timeout = {10, "header_ms", 1000},
  idle_timeout = {5, "idle_ms", 1000},
  body_timeout = {30, "body_ms", 1000},
  write_timeout = {30, "write_ms", 1000},
  max_connections = {4096, "max_conns", 1},
  max_requests = {1000, "max_requests", 1},
}

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

local function decode_query(q)
  local t = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape((k:gsub("+", " ")))
    v = unescape((v:gsub("+", " ")))
    if t[k] == nil then t[k] = v
    elseif type(t[k]) == "table" then table.insert(t[k], v)
    else t[k] = {t[k], v} end
  end
  return t
end

-- Headers: lower-case names; repeated ones joined with ", ".
local Headers = {__index = function(t, k)
  if type(k) == "string" then return rawget(t, k:lower()) end
end}

local function make_headers(flat)
  local h = {}
  for i = 1, #flat - 1, 2 do
    local k = flat[i]:lower()
    local old = rawget(h, k)
    rawset(h, k, old and (old .. ", " .. flat[i + 1]) or flat[i + 1])
  end
  return setmetatable(h, Headers)
end

-- The classes, registered by name like the C ones (tostring, the
-- annotation checks), under names no C binding uses.
local function class(name)
  local methods = {}
  local mt = {__name = name, __index = methods}
  local reg = debug.getregistry()
  -- a name C uses for its own objects would give them this metatable
  assert(reg[name] == nil, name .. " is already a registered class")
  reg[name] = mt
  return methods, mt
end

local Request, RequestMT = class "luaio.HttpServerRequest"

-- Fields made on first use: most handlers never look at most of them.
local LAZY = {
  headers = function(r) return make_headers(r._c:headers()) end,
  query = function(r) return decode_query(r._query) end,
  remote = function(r) return r._c:remote() end,
  params = function() return {} end,
}
RequestMT.__index = function(r, k)
  local v = Request[k]
  if v == nil and LAZY[k] then
    v = LAZY[k](r)
    rawset(r, k, v)
  end
  return v
end

function Request:body()
  if self._body == nil then
    local parts = {}
    for chunk in self:chunks() do parts[#parts + 1] = chunk end
    self._body = table.concat(parts)
  end
  return self._body
end

-- A body that is not JSON is the client's mistake: an EBADMSG error,
-- which, left uncaught, answers 400 (not a logged 500).
function Request:json()
  local ok, v = pcall(json.decode, self:body())
  if ok then return v end
  if type(v) ~= "table" or v.kind ~= "json" then error(v, 0) end
  error(require("luaio").error("http", "the request body is not JSON ("
    .. tostring(v.message):gsub("^json%.decode: ", "") .. ")",
    {code = "EBADMSG", op = "req:json", position = v.position}), 2)
end

-- Iterate over the body as it arrives; the client is held back while
-- the handler does not take the chunks (backpressure).
function Request:chunks()
  local c = self._c
  return function()
    return c:read()
  end
end

-- Answer a WebSocket handshake (101) and return the socket; a request
-- that is no handshake raises (the client gets a 400).
function Request:websocket(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "req:websocket", "table expected, got " .. type(opts))
  end
  local h = self.headers
  local key = h["sec-websocket-key"]
  if self.method ~= "GET" or
     not (h.upgrade or ""):lower():find("websocket", 1, true) or
     not (h.connection or ""):lower():find("upgrade", 1, true) or
     h["sec-websocket-version"] ~= "13" or not key or #key ~= 24 then
    error(require("luaio").error("http", "not a WebSocket handshake",
                                 {code = "EBADMSG"}), 2)
  end
  local max = opts and opts.max_message or 1024 * 1024
  if math.type(max) ~= "integer" or max <= 0 then
    argerror(2, "req:websocket", "max_message: positive integer expected")
  end
  return self._c:upgrade(key, max)
end

local Response, ResponseMT = class "luaio.HttpServerResponse"

-- res.headers is made on first use too; status and bytes start as
-- 200 and 0.
ResponseMT.__index = function(res, k)
  local v = Response[k]          -- first: the methods are its upvalue 1
  if v ~= nil then return v
  elseif k == "headers" then
    local h = {}
    rawset(res, "headers", h)
    return h
  elseif k == "status" then return 200
  elseif k == "bytes" then return 0 end
end

-- Start the response with this status and headers (optional: the first
-- write starts it with res.status and res.headers). The C core drops
-- the handler's Content-Length and Transfer-Encoding: framing is its.
function Response:start(status, headers, length)
  self.status = status or self.status
  self.headers = headers or self.headers
  local ok, e = pcall(self._c.start, self._c, self.status, self.headers,
                      length)
  -- an argument error names the user's line, not this file's
  if not ok then error(type(e) == "string" and e:gsub("^[^\n]-:%d+: ", "")
                       or e, type(e) == "string" and 2 or 0) end
end

-- res:write and res:finish start the response with res.status and
-- res.headers when the handler did not call res:start.
local function start_fields(res, fname)
  local status, headers = res.status, res.headers
  if math.type(status) ~= "integer" then
    error(("%s: res.status: integer expected, got %s"):format(fname,
          math.type(status) or type(status)), 3)
  elseif type(headers) ~= "table" then
    error(("%s: res.headers: table expected, got %s"):format(fname,
          type(headers)), 3)
  end
  res._c:start(status, headers)
end

function Response:write(chunk)
  if type(chunk) ~= "string" then
    argerror(2, "res:write", "string expected, got " .. type(chunk))
  end
  if not self._c:state() then start_fields(self, "res:write") end
  self.bytes = self.bytes + #chunk
  return self._c:write(chunk)
end

function Response:finish()
  if not self._c:state() then start_fields(self, "res:finish") end
  return self._c:finish()
end

local NONE = setmetatable({}, {__newindex = function()
  error("internal: the shared empty table is read-only", 2)
end})
local TEXT, JSON = "text/plain; charset=utf-8", "application/json"

-- Normalise a handler's results to status, headers, body and the
-- Content-Type to send when the headers have none. (The C core writes
-- the head: it drops the handler's Content-Length and
-- Transfer-Encoding and adds that Content-Type; the handler's table
-- is not copied.)
local function normalise(status, headers, body)
  local ts = type(status)
  if ts == "table" and math.type(status.status) == "integer" then
    status, headers, body = status.status, status.headers, status.body
  elseif ts == "table" then
    status, body = 200, status
  elseif ts == "string" and headers == nil then
    status, body = 200, status
  end
  status = status or (body and 200 or 204)
  local tb = type(body)
  if tb == "string" then return status, headers or NONE, body, TEXT
  elseif tb == "table" then
    return status, headers or NONE, json.encode(body), JSON
  end
  return status, headers or NONE, body, body ~= nil and TEXT or nil
end

local function is_cancel(e)
  return type(e) == "table" and (e.kind == "cancelled" or e.kind == "exit")
end

local function log_line(srv, req, res, t0)
  local aio = require "luaio"
  local line = ('%s "%s %s HTTP/%s" %d %d %.1fms'):format(req.remote,
    req.method, req.url, req.version, res.status, res.bytes,
    (aio.now() - t0) * 1000)
  if type(srv.log) == "function" then srv.log(line)
  else io.stderr:write(line, "\n") end
end

local Traced = {}                -- an error with its traceback

local function on_error(e)
  if is_cancel(e) then return e end
  return setmetatable({err = e, trace = debug.traceback(tostring(e), 2)},
                      Traced)
end

-- The client left, or was dropped for body_timeout/write_timeout:
-- there is nobody to answer, nor anything to report.
local GONE_OPS = {["res:write"] = true, ["res:start"] = true,
                  ["req:body"] = true, ["req:respond"] = true,
                  ["ws:send"] = true, ["ws:ping"] = true}
local function gone(e)
  return type(e) == "table" and GONE_OPS[e.op] and
         (e.code == "ECONNRESET" or e.code == "ETIMEDOUT")
end

-- The answer to a handler that raised a.
local function failed(req, a)
  local trace
  if getmetatable(a) == Traced then a, trace = a.err, a.trace end
  if is_cancel(a) then error(a, 0) end
  if gone(a) then return 400, {}, "" end
  if type(a) == "table" and a.code == "E2BIG" then
    return 413, {}, "request body too large\n"
  elseif type(a) == "table" and a.code == "EBADMSG" then
    return 400, {}, "malformed request body\n"
  end
  io.stderr:write("http.serve: error in handler for ", req.method, " ",
                  req.path, ": ", trace or tostring(a), "\n")
  return 500, {}, "internal server error\n"
end

-- Sends the response, or ends the one the handler streamed. The usual
-- results (integer status, headers, string or no body) go as they are;
-- for the others respond returns nil: normalise them first.
local function answer(c, status, headers, body)
  local sent = c:respond(status, headers, body)
  if sent == nil then
    local ctype
    status, headers, body, ctype = normalise(status, headers, body)
    sent = c:respond(status, headers, body, ctype)
  end
  return sent, status, body
end

-- A result the server cannot send (a header with CR/LF, a bad status):
-- the client gets a 500 from the C side when this task ends, and the
-- reason goes where handler errors go.
local function unsendable(req, e)
  if not is_cancel(e) then
    local shown, text = pcall(tostring, e)
    io.stderr:write("http.serve: bad response from the handler for ",
                    req.method, " ", req.path, ": ",
                    shown and text or "(an error object)", "\n")
  end
  error(e, 0)
end

-- One request, in its own task: the C core parsed its head (path and
-- query are nil when the url has no '?'). Run the handler; its error
-- gives a 500 (traceback logged, not sent).
local function dispatch(srv, c, method, url, path, query, version)
  local t0 = srv.log and require("luaio").now()
  local req = setmetatable({_c = c, method = method, url = url,
    path = path or url, _query = query or "", version = version},
    RequestMT)
  local res = setmetatable({_c = c}, ResponseMT)
  local ok, status, headers, body = xpcall(srv._handle, on_error, srv, req,
                                           res)
  if not ok then
    status, headers, body = failed(req, status)
    -- Half a streamed response: ending it cleanly would pass the cut
    -- body for a whole one. Left unfinished, the task's end closes the
    -- connection, and the client sees a truncated response.
    if c:state() then
      if srv.log then log_line(srv, req, res, t0) end
      return
    end
  end
  local sent
  ok, sent, status, body = pcall(answer, c, status, headers, body)
  if not ok then
    if gone(sent) then return end      -- the client left meanwhile
    unsendable(req, sent)
  end
  if srv.log then
    if sent then
      res.status = status
      res.bytes = type(body) == "string" and #body or 0
    end
    log_line(srv, req, res, t0)
  end
end

-- ---- routing ---------------------------------------------------------

local function split(path)
  local parts = {}
  for seg in path:gmatch("[^/]+") do parts[#parts + 1] = seg end
  return parts
end

local function match(route, parts)
  if #route.parts ~= #parts and not route.rest then return nil end
  local params = {}
  for i, seg in ipairs(route.parts) do
    local p = parts[i]
    if seg == "*" then
      params["*"] = table.concat(parts, "/", i)
      return params
    elseif p == nil then return nil
    elseif seg:sub(1, 1) == ":" then params[seg:sub(2)] = unescape(p)
    elseif seg ~= p then return nil end
  end
  return params
end

-- A canonical path (no empty segment) is compared whole with the routes
-- that have no parameter; only the others split it.
local function route_params(r, path, parts)
  if r.exact == path then return NONE, parts end
  if r.exact and path:sub(-1) ~= "/" and not path:find("//", 1, true) then
    return nil, parts
  end
  parts = parts or split(path)
  return match(r, parts), parts
end

local function route_request(srv, req, res)
  local routes, path, method = srv._routes, req.path, req.method
  local parts, allowed
  for i = 1, #routes do
    local r, params = routes[i], NONE
    if r.exact ~= path then params, parts = route_params(r, path, parts) end
    if params then
      local rm = r.method
      if rm == method or rm == "*" or (method == "HEAD" and rm == "GET") then
        if params ~= NONE then req.params = params end
        return r.fn(req, res)
      end
      allowed = allowed or {}
      allowed[#allowed + 1] = r.method
    end
  end
  if srv.handler then return srv.handler(req, res) end
  if allowed then
    return 405, {Allow = table.concat(allowed, ", ")},
           "method not allowed\n"
  end
  return 404, {}, "not found\n"
end

-- ---- the server ------------------------------------------------------

local Server, ServerMT = class "luaio.HttpServer"

function Server:route(method, pattern, fn)
  if type(method) ~= "string" then
    argerror(2, "srv:route", "string expected, got " .. type(method))
  elseif type(pattern) ~= "string" or pattern:sub(1, 1) ~= "/" then
    argerror(3, "srv:route", "path pattern starting with '/' expected")
  elseif type(fn) ~= "function" then
    argerror(4, "srv:route", "function expected, got " .. type(fn))
  end
  local parts = split(pattern)
  local exact = not pattern:find("[:*]") and "/" .. table.concat(parts, "/")
  table.insert(self._routes, {method = method:upper(), parts = parts,
    rest = parts[#parts] == "*", fn = fn, exact = exact or nil})
  return self
end

function Server:close(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "srv:close", "table expected, got " .. type(opts))
  end
  local grace = opts and opts.grace or 5
  if type(grace) ~= "number" or grace < 0 then
    argerror(2, "srv:close", "grace: non-negative number expected")
  end
  self.port = nil
  return self._core:close(math.ceil(grace * 1000), true)
end

function Server:connections()
  return self._core:connections()
end

ServerMT.__close = function(self) return self:close() end

local function check_limits(opts)
  local lim = {}
  for name, spec in pairs(LIMITS) do
    local v = opts[name]
    if v == nil then v = spec[1] end
    if type(v) ~= "number" or v <= 0 then
      argerror(1, "http.serve", name .. ": positive number expected")
    end
    lim[spec[2]] = math.ceil(v * spec[3])
  end
  return lim
end

local function serve(opts)
  if type(opts) ~= "table" then
    argerror(1, "http.serve", "table expected, got " .. type(opts))
  end
  local host, port = opts.host or "127.0.0.1", opts.port or 0
  if type(host) ~= "string" or host:find("\0", 1, true) then
    argerror(1, "http.serve", "host: IP address string expected")
  elseif math.type(port) ~= "integer" or port < 0 or port > 65535 then
    argerror(1, "http.serve", "port: integer 0-65535 expected")
  elseif opts.handler ~= nil and type(opts.handler) ~= "function" then
    argerror(1, "http.serve", "handler: function expected")
  end
  if host == "localhost" then host = "127.0.0.1" end
  local srv = setmetatable({handler = opts.handler, log = opts.log,
                            _routes = {}, _handle = route_request},
                           ServerMT)
  srv._core = listen(host, port, check_limits(opts),
    function(c, method, url, path, query, version)
      return dispatch(srv, c, method, url, path, query, version)
    end)
  srv.port = srv._core:port()
  return srv
end

return function(core, http)
  listen = core.listen
  http.serve = serve
  http.static = require "luaio.serve_static"
end
