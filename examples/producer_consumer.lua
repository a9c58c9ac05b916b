-- SPDX-License-Identifier: MIT (see LICENSE)
-- producer_consumer.lua: a bounded queue feeds 4 workers; a semaphore
-- allows at most 2 "uploads" at once; closing the queue ends the workers.
local aio = require "luaio"

local jobs = aio.queue(5)          -- the producer waits when 5 are queued
local uploads = aio.semaphore(2)
local active, most = 0, 0

local function upload(result)
  local _ <close> = uploads:acquire()
  active = active + 1
  most = math.max(most, active)
  aio.sleep(0.005)
  active = active - 1
  return result
end

local function worker(id)
  local done, sum = 0, 0
  while true do
    local job = jobs:get()
    if job == nil then return done, sum end   -- queue closed and drained
    aio.sleep(0.001 * (job % 3))              -- some work
    sum = sum + upload(job * 2)
    done = done + 1
  end
end

local workers = {}
for i = 1, 4 do workers[i] = aio.spawn(worker, i) end
for job = 1, 20 do jobs:put(job) end
jobs:close()

local total, sum = 0, 0
for _, w in ipairs(workers) do
  local done, s = w:await()
  total, sum = total + done, sum + s
end
print(("processed %d jobs with %d workers"):format(total, #workers))
print(("sum of results %d"):format(sum))
print(("at most %d uploads at once"):format(most))
