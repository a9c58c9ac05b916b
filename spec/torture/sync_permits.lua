-- Allocation-failure torture: tasks contending for a semaphore and a
-- lock, so that permits are handed over on release to waiting tasks.
-- Whatever allocation fails, no permit may be lost: once every task has
-- ended, each one is back.
local aio = require "luaio"
local sem, lock = aio.semaphore(2), aio.lock()

local function worker()
  for _ = 1, 3 do
    local p <close> = sem:acquire()
    lock:with(aio.sleep, 0)
    local q <close> = lock:acquire()
    aio.sleep(0)
  end
end

local tasks, ok, e = {}, true, nil
local function note(good, err)
  if not good and ok then ok, e = false, err end
end
note(pcall(function()
  for i = 1, 5 do tasks[#tasks + 1] = aio.spawn(worker) end
end))
for _, t in ipairs(tasks) do
  while not t:done() do note(pcall(t.await, t)) end
  note(pcall(t.result, t))
end
-- A task spawned while storing it in tasks failed is not in the list:
-- wait until no task but this one is left, so it is not counted as
-- holding a permit still.
local function others()
  local ok_, list = pcall(aio.tasks)
  return not ok_ or #list > 1
end
while others() do note(pcall(aio.sleep, 0.001)) end
assert(sem:value() == 2, "a semaphore permit was lost")
assert(not lock:locked(), "the lock was lost")
if not ok then error(e, 0) end
print("done")
