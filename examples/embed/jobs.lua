-- jobs.lua: the user's script for job_runner: 4 workers take jobs from
-- the application (app.next_job is implemented in C) and process them.
local aio = require "luaio"
local app = require "app"

local function worker(id)
  local n = 0
  while true do
    local job = app.next_job()
    if job == nil then return n end
    aio.sleep(0.01)                       -- the work
    app.done(job)
    n = n + 1
  end
end

local counts = {aio.gather(worker, worker, worker, worker)}
print(("workers did %d + %d + %d + %d jobs"):format(table.unpack(counts)))
