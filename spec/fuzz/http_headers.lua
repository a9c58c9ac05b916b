-- Fuzz target http_headers: the input (after its first byte) is served
-- as the raw HTTP response of a server on 127.0.0.1, to every
-- connection, and fetched with luaio.http. Any Lua error is a fine
-- answer; a crash, a leak or a hang is not. The first byte picks options:
--   1 stream = true (the body read with r:chunks())
--   2 retries = 1 (429/503 with Retry-After, lost connections)
--   4 HEAD instead of GET           8 http_version "1.0"
--  16 max_body = 16                32 follow redirects (through the
--                                     server as a proxy: never leaves)
--  64 read r:json()
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local input = ...
if #input < 1 then return end
local flags = input:byte(1)
local response = input:sub(2)
local function bit (n) return flags & n ~= 0 end

-- No known bug is tolerated here any more: the inputs of those fixed
-- (spec/fuzz/crashes/http_headers-*) are seeds of the corpus.

local server = net.serve("127.0.0.1", 0, function(s)
  pcall(s.readuntil, s, "\r\n\r\n")
  pcall(s.write, s, response)
  s:close()
end)
local base = "http://127.0.0.1:" .. server.port

local opts = {timeout = 1, connect_timeout = 1, follow_redirects = false}
if bit(1) then opts.stream = true end
if bit(2) then opts.retries = 1 end
if bit(8) then opts.http_version = "1.0" end
if bit(16) then opts.max_body = 16 end
if bit(32) then
  opts.follow_redirects, opts.max_redirects = true, 3
  opts.proxy = base
end
local method = bit(4) and "HEAD" or "GET"

local function starts_block (line)
  local at = response:find(line, 1, true)
  while at do
    if at == 1 or response:sub(1, at - 1):find("\r?\n\r?\n$") then
      return true
    end
    at = response:find(line, at + 1, true)
  end
  return false
end

-- The parsed views agree with each other.
local function check (r)
  assert(math.type(r.status) == "integer", "status is not an integer")
  assert(type(r.reason) == "string", "reason is not a string")
  assert(type(r.raw_headers) == "string", "raw_headers is not a string")
  -- The header block is the final response's: its first line is a line
  -- that starts the served bytes or follows a blank line (after a 1xx).
  -- (Chunked trailers are appended to it by curl: only the start counts.)
  assert(r.raw_headers == "" or starts_block(r.raw_headers:match("^[^\n]*\n?")),
         ("raw_headers does not start with a status line: %q")
         :format(r.raw_headers:sub(1, 80)))
  for i, h in ipairs(r.header_list) do
    local name, value = h[1], h[2]
    assert(type(name) == "string" and type(value) == "string",
           "header_list entry " .. i .. " is not two strings")
    -- A folded line (obs-fold) joins the header before it.
    assert(not name:find("^[ \t]"),
           ("header name %q starts with white space"):format(name))
    local joined = r.headers[name:upper()]
    assert(type(joined) == "string" and joined:find(value, 1, true),
           "headers[" .. name .. "] misses a value of header_list")
  end
  for _, name in ipairs({"retry-after", "content-length", "location",
                         "content-type", "transfer-encoding"}) do
    local v = r.headers[name]
    assert(v == nil or type(v) == "string", "headers value not a string")
  end
  if opts.stream then         -- a streamed response or an error, always
    for chunk in r:chunks() do assert(type(chunk) == "string") end
  else
    assert(type(r:text()) == "string", "text() is not a string")
  end
  if bit(64) then pcall(r.json, r) end
  pcall(r.raise_for_status, r)
end

local ok, err = pcall(aio.timeout, 5, function()
  local rok, r = pcall(http.request, {method = method, url = base .. "/x",
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    follow_redirects = opts.follow_redirects,
    max_redirects = opts.max_redirects, proxy = opts.proxy,
    stream = opts.stream, retries = opts.retries,
    http_version = opts.http_version, max_body = opts.max_body})
  if not rok then
    -- The scope expiring shows here as a cancellation: pass it on.
    if aio.is_cancelled(r) then error(r, 0) end
    assert(aio.is_error(r), "request raised a non-luaio error: "
           .. tostring(r))
    return
  end
  local _ <close> = r
  local cok, cerr = pcall(check, r)
  if not cok and (not aio.is_error(cerr) or aio.is_cancelled(cerr)) then
    error(cerr, 0)
  end
end)
server:close({cancel = true})
-- The request's own timeout is 1 s (twice with a retry): the 5 s scope
-- expiring is a hang (with room for a busy machine),
-- unless a retry waits as long as a Retry-After asked (up to 60 s).
if not ok and aio.is_timeout(err) and opts.retries
   and response:lower():find("retry%-after") then
  return
end
if not ok then error(err, 0) end
