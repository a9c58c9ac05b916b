-- A worker process of spec/redis_primitives_spec.lua: takes items from
-- a redis.queue with 4 tasks, records each once (HSETNX, idempotent),
-- counts how often each was handled, until the queue is closed. Each
-- task counts itself in QUEUE:ready (INCR) before it first waits.
-- luaio redis_worker.lua URL QUEUE ID
-- The visibility (3 s) is far above the time a task holds an item, so a
-- survivor stalled on a loaded machine does not see its item handed out
-- again (the spec counts the items handled twice).
local aio = require "luaio"
local redis = require "luaio.redis"

local url, name, id = arg[1], arg[2], arg[3]
local r <close> = redis.connect(url)
local q = redis.queue(r, name, {visibility = 3, poll = 0.2})
local tasks = {}
for t = 1, 4 do
  tasks[t] = aio.spawn(function()
    r:call("INCR", name .. ":ready")
    while true do
      local item, receipt = q:get()
      if item == nil then return end
      aio.sleep(0.01)                      -- the work
      r:call("HSETNX", name .. ":records", item, id)
      r:call("HINCRBY", name .. ":handled", item, 1)
      q:task_done(receipt)
    end
  end)
end
for t = 1, 4 do tasks[t]:await() end
