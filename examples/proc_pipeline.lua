-- SPDX-License-Identifier: MIT (see LICENSE)
-- Runs many small pipelines of programs at once, with a progress line.
--
--   luaio examples/proc_pipeline.lua [pipelines] [at_once]
--
-- Each pipeline is `seq 1 N | grep 7 | wc -l`, with the data pumped from
-- one program to the next by luaio (the pipes are luaio streams, so a
-- slow reader slows the writer down instead of filling memory). A
-- semaphore bounds how many pipelines run at once (default 8; 3
-- programs each). Every answer is checked against the same count done
-- in Lua.
local aio = require "luaio"
local proc = require "luaio.proc"

local total = tonumber(arg[1]) or 40
local at_once = tonumber(arg[2]) or 8
local slots = aio.semaphore(at_once)
local done, running, started = 0, 0, aio.now()

local function progress()
  io.stderr:write(("\r[%3d/%d] %3d running, %.1fs "):format(
    done, total, running, aio.now() - started))
end

-- Copy everything from one stream to another, then close the writer.
local function pump(from, to)
  for chunk in function() return from:read() end do to:write(chunk) end
  to:close()
end

-- How many of 1..n contain the digit 7, by three programs.
local function pipeline(n)
  local seq <close> = proc.spawn{"seq", "1", tostring(n), stdout = "pipe"}
  local grep <close> = proc.spawn{"grep", "7", stdin = "pipe",
                                  stdout = "pipe"}
  local wc <close> = proc.spawn{"wc", "-l", stdin = "pipe", stdout = "pipe"}
  local a = aio.spawn(pump, seq.stdout, grep.stdin)
  local b = aio.spawn(pump, grep.stdout, wc.stdin)
  local answer = tonumber(wc.stdout:read_all())
  aio.gather(a, b)
  assert(seq:wait() == 0 and wc:wait() == 0)
  grep:wait()                     -- 1 when nothing matched
  return answer
end

local function expected(n)
  local count = 0
  for i = 1, n do
    if tostring(i):find("7", 1, true) then count = count + 1 end
  end
  return count
end

local tasks = {}
for i = 1, total do
  tasks[i] = aio.spawn(function()
    local permit <close> = slots:acquire()
    running = running + 1
    progress()
    local n = 1000 + 37 * i
    local got = pipeline(n)
    running = running - 1
    done = done + 1
    progress()
    assert(got == expected(n), ("pipeline %d: %d, expected %d")
           :format(i, got, expected(n)))
    return got
  end)
end
aio.gather(tasks)
io.stderr:write("\n")
print(("%d pipelines of 3 programs, at most %d at once: all correct")
      :format(total, at_once))
