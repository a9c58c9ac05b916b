-- A worker process of spec/redis_primitives_spec.lua: takes items from
-- a redis.queue with 4 tasks, records each once (HSETNX, idempotent),
-- counts how often each was handled, until the queue is closed.
-- luaio redis_worker.lua URL QUEUE ID
local aio = require "luaio"
local redis = require "luaio.redis"

local url, name, id = arg[1], arg[2], arg[3]
local r <close> = redis.connect(url)
local q = redis.queue(r, name, {visibility = 1, poll = 0.2})
local tasks = {}
for t = 1, 4 do
  tasks[t] = aio.spawn(function()
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
