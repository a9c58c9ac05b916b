-- Allocation-failure torture: a bounded queue between producers and
-- consumers, with a lock and an event.
local aio = require "luaio"
local q = aio.queue(4)
local lock, ev = aio.lock(), aio.event()
local sum = 0
local consumers = {}
for c = 1, 3 do
  consumers[c] = aio.spawn(function()
    while true do
      local v = q:get()
      if v == false then return end
      local _ <close> = lock:acquire()
      sum = sum + v
    end
  end)
end
local producer = aio.spawn(function()
  for i = 1, 50 do q:put(i) end
  for _ = 1, 3 do q:put(false) end
  ev:set()
end)
ev:wait()
producer:await()
aio.gather(table.unpack(consumers))
assert(sum == 1275, sum)
print("done", sum)
