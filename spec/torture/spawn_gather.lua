-- Allocation-failure torture: tasks, gather, await, errors, cancellation.
local aio = require "luaio"
local tasks = {}
for i = 1, 20 do
  tasks[i] = aio.spawn(function(x) aio.sleep(0); return x * 2 end, i)
end
local r = table.pack(aio.gather(table.unpack(tasks)))
assert(r.n == 20 and r[20] == 40)
local bad = aio.spawn(function() aio.sleep(0); error("boom") end)
assert(not pcall(bad.await, bad))
local slow = aio.spawn(aio.sleep, 10)
aio.sleep(0)
slow:cancel()
assert(not pcall(slow.await, slow))
print(pcall(aio.timeout, 0.001, aio.sleep, 1))
print("done")
