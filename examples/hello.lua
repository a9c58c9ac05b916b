-- SPDX-License-Identifier: MIT (see LICENSE)
-- hello.lua: tasks, sleeping and awaiting. Run: luaio examples/hello.lua world
local aio = require "luaio"

print("hello", ...)
local t0 = aio.now()
-- Three tasks sleep concurrently: the whole thing takes ~0.3 s, not 0.6 s.
local tasks = {}
for i, d in ipairs({0.3, 0.1, 0.2}) do
  tasks[i] = aio.spawn(function(n, delay)
    aio.sleep(delay)
    print(("task %d woke after %.1f s"):format(n, delay))
    return n * 10
  end, i, d)
end
local sum = 0
for _, t in ipairs(tasks) do sum = sum + t:await() end
print(("sum %d in %.2f s"):format(sum, aio.now() - t0))
