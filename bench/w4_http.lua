-- W4: TOTAL GETs of URL with CONC in flight, keep-alive (one client).
-- usage: w4_http.lua URL TOTAL CONC
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local aio = require "luaio"
local http = require "luaio.http"
local rss_mib = require("common").rss_mib
local url, total, conc = arg[1], tonumber(arg[2]) or 20000, tonumber(arg[3]) or 100
local client <close> = http.client{max_connections = conc}
local next_i, ok = 0, 0
local t0 = aio.now()
local function worker()
  while next_i < total do
    next_i = next_i + 1
    local r = client:get(url)
    if r.status == 200 then ok = ok + 1 end
  end
end
local ws = {}
for i = 1, conc do ws[i] = aio.spawn(worker) end
aio.gather(ws)
local dt = aio.now() - t0
assert(ok == total, ("only %d of %d ok"):format(ok, total))
print(("W4 luaio %.0f req/s wall_s=%.3f rss_mib=%.0f"):format(total / dt, dt, rss_mib()))
