-- W7: processes and worker threads.
--   w7_proc.lua spawn N C    N runs of `true`, C at once: spawns/s
--   w7_proc.lua thread N C   N to_thread round trips, C at once: calls/s
--   w7_proc.lua cpu N W      N CPU-bound jobs (FNV-1a over 256 KiB, pure
--                            Lua) on a pool of W workers: jobs/s
local aio = require "luaio"
local mode, N, C = arg[1], tonumber(arg[2]), tonumber(arg[3])

local function fanout(n, c, job)
  local sem = aio.semaphore(c)
  local tasks = {}
  for i = 1, n do
    tasks[i] = aio.spawn(function()
      local permit <close> = sem:acquire()
      return job(i)
    end)
  end
  for i = 1, n do tasks[i]:await() end
end

local t0 = aio.now()
if mode == "spawn" then
  local proc = require "luaio.proc"
  fanout(N, C, function()
    local p <close> = proc.spawn{"true"}
    assert(p:wait() == 0)
  end)
elseif mode == "thread" then
  fanout(N, C, function(i)
    assert(aio.to_thread(function(x) return x + 1 end, i) == i + 1)
  end)
else
  local pool <close> = aio.worker_pool{size = C}
  local fnv = function(len, seed)     -- len: a multiple of 8
    local byte = string.byte
    local s = string.rep(string.char(seed % 256), len)
    local h, p = 2166136261, 16777619
    for i = 1, #s, 8 do
      local a, b, c, d, e, f, g, k = byte(s, i, i + 7)
      h = ((h ~ a) * p) & 0xffffffff; h = ((h ~ b) * p) & 0xffffffff
      h = ((h ~ c) * p) & 0xffffffff; h = ((h ~ d) * p) & 0xffffffff
      h = ((h ~ e) * p) & 0xffffffff; h = ((h ~ f) * p) & 0xffffffff
      h = ((h ~ g) * p) & 0xffffffff; h = ((h ~ k) * p) & 0xffffffff
    end
    return h
  end
  fanout(N, C, function(i) return pool:run(fnv, 256 * 1024, i) end)
end
local dt = aio.now() - t0
print(("W7%s luaio %.0f %s/s"):format(mode == "spawn" and "a" or
  mode == "thread" and "b" or "c", N / dt, mode == "spawn" and "spawns" or
  mode == "thread" and "calls" or "jobs"))
