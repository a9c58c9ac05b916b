-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.test_procs: the processes a test registered with
-- require("luaio.test").track(p), for `luaio test` (lua/test.lua) to
-- stop when the block that registered them ends, passed or failed.
--
-- A process is known by its PID and its start time (/proc/PID/stat), so
-- a PID the system gave to another process since is never signalled.
-- Stopping sends SIGTERM to the process and its descendants (found
-- before the signal: once it dies they are reparented), then SIGKILL
-- after GRACE seconds to those still running. A server started through
-- `sh -c "... &"` is not our child: its end is seen in /proc, not by
-- waitpid. Linux only, as `luaio test` itself (/proc/self/fd).
local aio = require "luaio"
local fs = require "luaio.fs"

local M = {}

local GRACE = 2          -- seconds between SIGTERM and SIGKILL
local KILL_WAIT = 2      -- seconds a killed process may take to go
local POLL = 0.02        -- seconds between looks

local owned = {}         -- owner (a busted block, or M.RUN) -> entries
local entry_of = setmetatable({}, { __mode = "k" })  -- object -> entry
M.RUN = {}               -- the owner of what no block started

-- State letter, parent PID and start time of a process, or nil when
-- there is none. The command name (field 2) may hold spaces and
-- parentheses: the fields after it follow the last ')'.
local function stat(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  local text = f and f:read("a")
  if f then f:close() end
  local rest = text and text:match(".*%)%s+(.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return fields[1], tonumber(fields[2]), fields[20]
end

-- Whether the process {pid, start} still runs (a zombie has ended).
local function alive(p)
  local state, _, start = stat(p.pid)
  return state ~= nil and state ~= "Z" and start == p.start
end

local function identify(pid)
  local _, _, start = stat(pid)
  return start and { pid = pid, start = start }
end

-- The running descendants of the processes in `roots` ({pid, start}),
-- found by their parent PIDs in /proc.
local function descendants(roots)
  local children = {}
  for _, name in ipairs(fs.readdir("/proc")) do
    local pid = math.tointeger(tonumber(name))
    local state, ppid, start
    if pid then state, ppid, start = stat(pid) end
    if state and state ~= "Z" then
      children[ppid] = children[ppid] or {}
      table.insert(children[ppid], { pid = pid, start = start })
    end
  end
  local seen, out, i = {}, {}, 1
  for _, r in ipairs(roots) do seen[i] = r; i = i + 1 end
  i = 1
  while i <= #seen do
    for _, c in ipairs(children[seen[i].pid] or {}) do
      seen[#seen + 1] = c
      out[#out + 1] = c
    end
    i = i + 1
  end
  return out
end

-- Send sig to those of `procs` that still run (checked just before).
local function signal(procs, sig)
  local pids = {}
  for _, p in ipairs(procs) do
    if alive(p) then pids[#pids + 1] = p.pid end
  end
  if #pids > 0 then
    os.execute("kill -s " .. sig .. " " .. table.concat(pids, " ")
               .. " 2>/dev/null")
  end
end

-- Wait up to `seconds` for all of `procs` to end; true if they did.
local function ended(procs, seconds)
  local deadline = aio.now() + seconds
  while true do
    local running = false
    for _, p in ipairs(procs) do running = running or alive(p) end
    if not running then return true end
    if aio.now() >= deadline then return false end
    aio.sleep(POLL)
  end
end

-- Stop the processes `procs` ({pid, start}) and their descendants.
-- Returns the PIDs that were still running.
local function stop(procs)
  local live = {}
  for _, p in ipairs(procs) do
    if alive(p) then live[#live + 1] = p end
  end
  if #live == 0 then return live end
  local all = descendants(live)
  for _, p in ipairs(live) do all[#all + 1] = p end
  signal(all, "TERM")
  if not ended(all, GRACE) then
    -- and what they started since (a shell that ignores SIGTERM forks on)
    for _, p in ipairs(descendants(live)) do all[#all + 1] = p end
    signal(all, "KILL")
    ended(all, KILL_WAIT)
  end
  local pids = {}
  for i, p in ipairs(live) do pids[i] = p.pid end
  return pids
end

-- The process of an entry now: an object's pid field is read again (it
-- may have restarted under another PID).
local function current(e)
  if e.object == nil then return e.proc end
  local pid = math.tointeger(e.object.pid)
  if pid == nil then return nil end
  if e.proc == nil or e.proc.pid ~= pid then e.proc = identify(pid) end
  return e.proc
end

-- Register p (a PID, or an object whose `pid` field names its process)
-- with owner. An object registered before keeps its owner; its process
-- is looked up again.
function M.track(p, owner)
  local e = type(p) ~= "number" and entry_of[p]
  if e then
    current(e)
    return
  end
  if type(p) == "number" then
    e = { proc = identify(p) }
  else
    e = { object = p }
    entry_of[p] = e
    current(e)
  end
  owned[owner] = owned[owner] or {}
  table.insert(owned[owner], e)
end

-- Stop what owner registered (nothing when it registered nothing).
-- Returns the PIDs that were still running.
function M.stop_owned(owner)
  local list = owned[owner]
  owned[owner] = nil
  if not list then return {} end
  local procs = {}
  for _, e in ipairs(list) do
    if e.object ~= nil then entry_of[e.object] = nil end
    procs[#procs + 1] = current(e)
  end
  return stop(procs)
end

-- Stop everything still registered (the end of the run).
function M.stop_all()
  local owners = {}
  for owner in pairs(owned) do owners[#owners + 1] = owner end
  for _, owner in ipairs(owners) do M.stop_owned(owner) end
end

return M
