-- W3: a bounded queue (maxsize 100), 1 producer, 4 consumers, N items.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
  .. package.path
local aio = require "luaio"
local rss_mib = require("common").rss_mib
local N = tonumber(arg[1]) or 1000000
local q = aio.queue(100)
local t0 = aio.now()
local consumers, sums = {}, {}
for c = 1, 4 do
  consumers[c] = aio.spawn(function()
    local s = 0
    while true do
      local item = q:get()
      if item == nil then break end
      s = s + item
    end
    sums[c] = s
  end)
end
for i = 1, N do q:put(i) end
q:close()
for c = 1, 4 do consumers[c]:await() end
local dt = aio.now() - t0
local total = sums[1] + sums[2] + sums[3] + sums[4]
assert(total == N * (N + 1) // 2, "wrong sum")
print(string.format("W3 luaio %.0f items/s rss_mib=%.0f", N / dt, rss_mib()))
