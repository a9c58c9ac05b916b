-- Fuzz target url: URL and query encoding of luaio.http.
--   query mode: a `query` table (and the same table as `form`) built
--     from the input is sent to a server on 127.0.0.1, which decodes the
--     request target and body: it must get back exactly the table's
--     pairs (or the request is refused with an argument error before
--     any I/O, for what cannot be encoded);
--   url mode: the first item is a URL (absolute after "http://host/", or
--     relative to a base_url); a refusal, an error or a response are all
--     fine, a crash is not. The server is also the proxy, so a URL naming
--     another host still ends here.
--   headers mode: the pairs are sent as `headers`: each must arrive as
--     the line "name: value", or the request be refused with an argument
--     error (a name that is not a token, CR, LF or NUL in a value).
--   options mode: the pairs set request options (the key's first byte
--     picks the option, the value is a number, a boolean or a string);
--     any answer is fine, a crash or undefined behaviour is not.
--   luaio.url mode: no I/O. Item 1 is a base URL, item 2 a reference:
--     url.join, url.normalize, url.parse and tostring either refuse
--     with an argument error or answer; a join that libcurl wrote
--     (scheme "://") parses again, normalize is idempotent, tostring of
--     a parsed URL parses again; the remaining pairs, as a table,
--     round-trip through url.query_encode and url.query_decode.
-- Input: byte 1 flags (1 url mode, 2 base_url, 4 also send a form,
-- 8 numbers as values, 16 headers mode, 32 options mode, 64 luaio.url
-- mode); then items, each a length byte and that many bytes,
-- alternating key and value.
local aio = require "luaio"
local http = require "luaio.http"
local net = require "luaio.net"
local input = ...
if #input < 1 then return end
local flags = input:byte(1)
local function bit (n) return flags & n ~= 0 end

local items, pos = {}, 2
while pos <= #input do
  local n = input:byte(pos)
  items[#items + 1] = input:sub(pos + 1, pos + n)
  pos = pos + 1 + n
end

local function unescape (s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- name=value pairs of a query or form body, decoded, as sorted text.
local function decode_pairs (s)
  local out = {}
  if s == nil or s == "" then return out end
  for part in (s .. "&"):gmatch("(.-)&") do
    local k, v = part:match("^([^=]*)=(.*)$")
    if k == nil then k, v = part, "" end
    out[#out + 1] = ("%q=%q"):format(unescape(k), unescape(v))
  end
  table.sort(out)
  return out
end

local function table_pairs (t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = ("%q=%q"):format(k, tostring(v)) end
  table.sort(out)
  return out
end

-- Call fn(...): its results, or nil when it refused with an argument
-- error (any other error fails).
local function try (fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  assert(tostring(res[2]):find("bad argument", 1, true),
         "not an argument error: " .. tostring(res[2]))
  return nil
end

local function url_module_mode ()
  local url = require "luaio.url"
  local base, ref = items[1] or "", items[2] or ""
  local joined = try(url.join, base, ref)
  if joined and joined:find("^%a[%w+.-]*://") then
    assert(try(url.parse, joined), "join wrote what does not parse: "
           .. joined)
  end
  for _, s in ipairs{base, ref, joined} do
    local n = try(url.normalize, s)
    if n then
      assert(url.normalize(n) == n, "normalize is not idempotent: " .. n)
    end
    local u = try(url.parse, s)
    if u then
      local ok, text = pcall(tostring, u)
      assert(ok, "tostring failed: " .. tostring(text))
      assert(try(url.parse, text), "tostring wrote what does not parse")
    end
  end
  local t = {}
  for i = 3, #items - 1, 2 do t[items[i]] = items[i + 1] end
  local back = url.query_decode(url.query_encode(t))
  for k, v in pairs(t) do
    assert(back[k] == v, ("query pair %q=%q came back as %q"):format(k, v,
           tostring(back[k])))
  end
  assert(url.decode(url.encode(base)) == base, "encode/decode")
end

if bit(64) then return url_module_mode() end

local seen = {}                  -- what the server received
-- Only query mode's form has a body. Elsewhere a Content-Length is one
-- the input set (headers mode sends {["Content-Length"] = "3"} as
-- given, on a GET without a body): waiting for that body would hang
-- the request until its timeout.
local form_body = bit(4) and not (bit(1) or bit(16) or bit(32))
local server = net.serve("127.0.0.1", 0, function(s)
  local ok, head = pcall(s.readuntil, s, "\r\n\r\n")
  if ok then
    seen.head = head
    seen.target = head:match("^%S+ (%S*)")
    local len = tonumber(head:lower():match("\ncontent%-length: *(%d+)"))
    if form_body and len and len > 0 then
      local bok, body = pcall(s.readexactly, s, len)
      seen.body = bok and body or nil
    end
  end
  pcall(s.write, s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
        .. "Connection: close\r\n\r\n")
  s:close()
end)
local base = "http://127.0.0.1:" .. server.port

local function query_mode ()
  local t = {}
  for i = 1, #items - 1, 2 do
    local v = items[i + 1]
    if bit(8) and tonumber(v) then v = tonumber(v) end
    t[items[i]] = v
  end
  local has_nul = false
  for k, v in pairs(t) do
    if k:find("\0", 1, true) or tostring(v):find("\0", 1, true) then
      has_nul = true
    end
  end
  local opts = {query = t, timeout = 2, connect_timeout = 1}
  local method = "GET"
  if bit(4) then opts.form, method = t, "POST" end
  local ok, r = pcall(http.request, {method = method, url = base .. "/p",
    query = opts.query, form = opts.form, timeout = 2, connect_timeout = 1})
  if not ok then
    -- Refusing is fine only as an argument error, and only for what C
    -- cannot carry (a NUL byte).
    assert(has_nul and tostring(r):find("bad argument", 1, true),
           "request failed: " .. tostring(r))
    return
  end
  assert(r.status == 200, "status " .. tostring(r.status))
  -- A NUL byte is percent-encoded like any other (url-query-nul-truncated,
  -- fixed: it used to cut the string).
  local want = table.concat(table_pairs(t), "&")
  local query = seen.target and seen.target:match("%?(.*)$")
  local got = table.concat(decode_pairs(query), "&")
  assert(got == want, "query differs:\nsent " .. want .. "\ngot  " .. got
         .. "\ntarget " .. tostring(seen.target))
  if bit(4) then
    got = table.concat(decode_pairs(seen.body), "&")
    assert(got == want, "form differs:\nsent " .. want .. "\ngot  " .. got)
  end
end

local function url_mode ()
  local url = items[1] or ""
  local q = {}
  for i = 2, #items - 1, 2 do q[items[i]] = items[i + 1] end
  local opts = {timeout = 2, connect_timeout = 1, proxy = base,
                follow_redirects = false, query = q}
  if bit(2) then opts.base_url = base .. "/base/dir/"
  else url = base .. "/" .. url end
  local ok, r = pcall(http.get, url, opts)
  if ok then
    assert(math.type(r.status) == "integer", "status not an integer")
  else
    if aio.is_cancelled(r) then error(r, 0) end   -- the scope expired
    assert(aio.is_error(r) or tostring(r):find("bad argument", 1, true),
           "request raised: " .. tostring(r))
  end
end

local function is_token (s)
  return s:find("^[!#$%%&'*+%-.^_`|~%w]+$") ~= nil
end

local function headers_mode ()
  local t = {}
  for i = 1, #items - 1, 2 do t[items[i]] = items[i + 1] end
  local bad = false
  for k, v in pairs(t) do
    if not is_token(k) or v:find("[\r\n%z]") then bad = true end
  end
  local ok, r = pcall(http.get, base .. "/h", {headers = t, timeout = 2,
                                              connect_timeout = 1})
  if not ok then
    if aio.is_cancelled(r) then error(r, 0) end   -- the scope expired
    assert(bad and tostring(r):find("bad argument", 1, true),
           "request failed: " .. tostring(r))
    return
  end
  -- A NUL in a name is refused above (url-header-name-nul, fixed: it
  -- used to cut the name).
  assert(not bad, "a header that cannot be sent was accepted")
  local head = seen.head or ""
  for k, v in pairs(t) do
    -- curl drops a header given with an empty value ("Name:").
    if v:find("%S") then
      assert(head:find("\r\n" .. k .. ": " .. v .. "\r\n", 1, true),
             ("header %q: %q did not arrive as sent:\n%s"):format(k, v,
             head))
    end
  end
end

-- Options that stay on 127.0.0.1 (no proxy, no base_url).
local option_names = {"timeout", "connect_timeout", "idle_timeout",
  "max_body", "retries", "max_redirects", "follow_redirects",
  "http_version", "verify", "retry_any_method", "stream", "method"}

local function options_mode ()
  local o = {url = base .. "/o", method = "GET", timeout = 2,
             connect_timeout = 1}
  for i = 1, #items - 1, 2 do
    local name = option_names[(items[i]:byte(1) or 0) % #option_names + 1]
    local raw = items[i + 1]
    local v = raw == "nan" and 0 / 0 or math.tointeger(tonumber(raw))
              or tonumber(raw)
    if v == nil and (raw == "true" or raw == "false") then
      v = raw == "true"
    end
    if v == nil then v = raw end
    o[name] = v
  end
  local ok, r = pcall(http.request, o)
  if not ok then
    -- The scope expired: a hang, unless retries with their backoff
    -- (doubling from 0.1 s) may legitimately take that long.
    local retries = math.type(o.retries) and o.retries or 0
    if aio.is_cancelled(r) and retries < 2 then error(r, 0) end
    return
  end
  if o.stream and rawget(r, "_stream") then
    for _ in r:chunks() do end
  end
end

local mode = bit(1) and url_mode or bit(16) and headers_mode
             or bit(32) and options_mode or query_mode
local ok, err = pcall(aio.timeout, 5, mode)
server:close({cancel = true})
if not ok then error(err, 0) end
