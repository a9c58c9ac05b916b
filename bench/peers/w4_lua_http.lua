-- W4 on lua-http (cqueues), run by the stock lua5.4: TOTAL GETs of URL
-- with CONC in flight, each worker on one kept-alive connection, as
-- Node's keep-alive agent does. Debian packages lua-http for Lua 5.1-5.3
-- only, as pure Lua over cqueues and luaossl (which do have 5.4 builds):
-- bench/run.sh points LUA_PATH at its 5.3 and 5.2 folders.
-- usage: lua5.4 w4_lua_http.lua URL [TOTAL] [CONC]
local cqueues = require "cqueues"
local client = require "http.client"
local new_headers = require "http.headers".new

local url = assert(arg[1], "URL needed")
local TOTAL, CONC = tonumber(arg[2]) or 20000, tonumber(arg[3]) or 100
local host, port, path = url:match("^http://([^:/]+):?(%d*)(/.*)$")
port = tonumber(port) or 80

local next_req, ok, failed = 0, 0, nil

local function worker()
  local conn, err = client.connect{host = host, port = port, tls = false,
                                   version = 1.1}
  if not conn then failed = err; return end
  while next_req < TOTAL and not failed do
    next_req = next_req + 1
    local h = new_headers()
    h:append(":method", "GET")
    h:append(":scheme", "http")
    h:append(":authority", host .. ":" .. port)
    h:append(":path", path)
    local stream = conn:new_stream()
    stream:write_headers(h, true)
    local rh, e = stream:get_headers()
    if not rh then failed = e; break end
    local body = stream:get_body_as_string()
    if rh:get(":status") == "200" and body then ok = ok + 1 end
  end
  conn:close()
end

local cq = cqueues.new()
local t0 = cqueues.monotime()
for _ = 1, CONC do cq:wrap(worker) end
assert(cq:loop())
local dt = cqueues.monotime() - t0
if failed or ok ~= TOTAL then
  io.stderr:write("lua-http: ", tostring(failed), ", ", ok, " of ", TOTAL,
                  "\n")
  os.exit(1)
end
print(("W4 lua-http %.0f req/s wall_s=%.3f"):format(TOTAL / dt, dt))
