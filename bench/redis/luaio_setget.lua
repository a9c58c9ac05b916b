-- SPDX-License-Identifier: MIT (see LICENSE)
-- bench/redis.sh, luaio: SET then GET of 100-byte values from C
-- concurrent tasks on one connection; prints operations per second.
-- luaio luaio_setget.lua URL [ops] [tasks]
local aio = require "luaio"
local redis = require "luaio.redis"

local url, ops, conc = arg[1], tonumber(arg[2] or 200000),
                       tonumber(arg[3] or 100)
local r <close> = redis.connect(url)
local value = string.rep("v", 100)
local per = ops // (2 * conc)
local t0 = aio.now()
local tasks = {}
for c = 1, conc do
  tasks[c] = aio.spawn(function()
    for i = 1, per do
      local key = "key:" .. c .. ":" .. (i % 100)
      r:call("SET", key, value)
      assert(#r:call("GET", key) == 100)
    end
  end)
end
for c = 1, conc do tasks[c]:await() end
print(("%.0f"):format(per * conc * 2 / (aio.now() - t0)))
