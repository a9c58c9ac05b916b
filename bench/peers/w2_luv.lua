-- W2 on luv (libuv for Lua, run by the stock lua5.4): N coroutines each
-- sleeping 1 s on a libuv timer of its own; prints the wall time.
-- usage: lua5.4 w2_luv.lua [N]
local uv = require "luv"
local N = tonumber(arg[1]) or 100000
local left = N
local t0 = uv.hrtime()

local function sleep (ms)
  local co, timer = coroutine.running(), uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

for _ = 1, N do
  local co = coroutine.create(function()
    sleep(1000)
    left = left - 1
    if left == 0 then
      print(("W2 luv %.3f s"):format((uv.hrtime() - t0) / 1e9))
    end
  end)
  assert(coroutine.resume(co))
end
uv.run()
