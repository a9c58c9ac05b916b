-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.torture: cancellation torture for `luaio test` (LUAIO_TORTURE=cancel).
--
-- Each test runs once as usual (its result is the test's), counting n,
-- the suspensions -- luaio_wait or a yielded turn -- of every task but
-- the test runner's own during its body. Then the whole test (before_each,
-- body, after_each) runs again for k = 1..n, its body cancelled at the
-- k-th suspension (k steps with a stride when n exceeds LUAIO_TORTURE_MAX,
-- default 200). lua/test.lua runs each of these runs as it runs a test:
-- the body in a task of its own under the test's time limit, the hooks
-- in the main task, and after the run the one account of what was left
-- (tasks, deadlines, descriptors, handles). This module drives the
-- k-loop and judges. A cancelled run may fail in any way it likes (its
-- reports are muted); what counts as a failure is what luaio must never
-- do:
--   * a cancelled body still running 30 s after the cancel, or a
--     deadlock (a hang);
--   * tasks luaio started for the test still running after the run;
--   * descriptors, handles or timer deadlines left open after the run,
--     again each time the same k is rerun (REPEAT times: what does not
--     come back is transient, such as a pool);
-- crashes and sanitizer reports end the process (use a sanitizer build).
-- Tasks the test body spawned itself (aio.spawn) and left waiting, and
-- servers it started (net.serve) and did not close because it was
-- cancelled first, are the test's business: they are cancelled and
-- closed before the account, and counted as notes. At the end:
--   torture: 412 (test, k) pairs, 0 failures (...)
-- LUAIO_TORTURE=cancel-late cancels on the loop's next turn after the k-th
-- suspension instead, when the wait may have completed and the task may
-- be ready to resume with its result (another set of paths).
-- LUAIO_TORTURE_LOG=1 names each run on stderr, and each cancelled run
-- that ended with another error than its cancellation (worth a look).
local aio = require "luaio"
local T = require "luaio.torture_c"

local M = { pairs = 0, failures = 0, strided = 0, notes = 0,
            SETTLE = 5 }   -- seconds what a run opened may take to go

local MAX_K = tonumber(os.getenv("LUAIO_TORTURE_MAX") or "") or 200
-- seconds a cancelled body may take to finish
local GRACE = tonumber(os.getenv("LUAIO_TORTURE_GRACE") or "") or 30
local REPEAT = 3         -- reruns of a k that left something open
local LOG = os.getenv("LUAIO_TORTURE_LOG")

local k_now              -- the k of the run under way; nil: clean run

-- What the test body started itself during a run, through aio.spawn and
-- net.serve: tasks it left waiting and servers it did not close are the
-- test's business (it was cancelled before its cleanup), not luaio's.
local own = setmetatable({}, { __mode = "k" })
local servers = setmetatable({}, { __mode = "k" })
local net = require "luaio.net"
local real = { spawn = aio.spawn, serve = net.serve,
               serve_unix = net.serve_unix }
local function track(set, fn)
  return function(...)
    local x = fn(...)
    set[x] = true
    return x
  end
end
local tracking = { spawn = track(own, real.spawn),
                   serve = track(servers, real.serve),
                   serve_unix = track(servers, real.serve_unix) }
local function use(fns)
  aio.spawn, net.serve, net.serve_unix = fns.spawn, fns.serve, fns.serve_unix
end

local function describe_tasks(list)
  local names = {}
  for i, t in ipairs(list) do names[i] = tostring(t) end
  return table.concat(names, ", ")
end

-- The runner spawned body task t (it has not run yet) from its own task
-- runner: count the suspensions from now, and cancel t at the k-th.
function M.body_started(t, runner)
  for x in pairs(own) do own[x] = nil end
  T.cancel_at(t, k_now or math.maxinteger, runner, M.late)
  use(tracking)
end

-- The body task is done (or given up): stop counting and tracking.
function M.body_ended()
  T.disarm()
  use(real)
end

-- Asked by the runner while the body runs: why to stop it now, or nil.
function M.check()
  local _, fired, since = T.cancel_state()
  if fired and since > GRACE then
    return ("hang: the body is still running %.1f s after its cancel at"
            .. " suspension %d"):format(since, k_now)
  end
end

-- After a cancelled run, before the runner's account: cancel the tasks
-- and close the servers the body started (a note). Returns a failure
-- (one of them does not end) or nil.
function M.tidy()
  local theirs = {}
  for t in pairs(own) do
    own[t] = nil
    if not t:done() then theirs[#theirs + 1] = t end
  end
  local n = 0
  for srv in pairs(servers) do
    servers[srv] = nil
    if pcall(srv.close, srv, { cancel = true }) then n = n + 1 end
  end
  if #theirs + n == 0 then return end
  M.notes = M.notes + 1
  for _, t in ipairs(theirs) do t:cancel() end
  if #theirs > 0 then pcall(aio.wait, theirs, { timeout = GRACE }) end
  local stuck = {}
  for _, t in ipairs(theirs) do
    if not t:done() then stuck[#stuck + 1] = t end
  end
  if #stuck > 0 then
    return "hang: tasks the test started still running " .. GRACE
           .. " s after their cancel: " .. describe_tasks(stuck)
  end
end

-- A cancelled run ended with this error (muted): worth a look.
function M.log_error(msg)
  if LOG and not aio.is_cancelled(msg) then
    io.stderr:write(("torture: note: k=%d ended with: %s\n")
      :format(k_now or 0, tostring(msg):match("[^\n]*")))
  end
end

local function fail(name, k, what)
  M.failures = M.failures + 1
  io.stderr:write(("torture: FAIL %s, k=%d: %s\n"):format(name, k, what))
  io.stderr:flush()
  return ("k=%d: %s"):format(k, what)
end

-- One cancelled run: returns a failure or nil, and whether the body hung.
local function judge(name, k, run)
  k_now = k
  if LOG then io.stderr:write(("torture: %s k=%d\n"):format(name, k)) end
  local t0 = aio.now()
  local hang, left = run()
  local _, fired = T.cancel_state()
  if LOG then
    io.stderr:write(("torture: k=%d took %.2f s\n"):format(k, aio.now() - t0))
  end
  if fired then M.pairs = M.pairs + 1 end
  if hang then
    return fail(name, k, (hang:match("^hang") and "" or "hang: ") .. hang),
           true
  end
  if #left == 0 then return end
  local what = table.concat(left, "; ")
  if LOG then io.stderr:write("torture: left: " .. what .. "\n") end
  for _, line in ipairs(left) do        -- a task left: no second chance
    if line:match("^left task") or line:match("^task") or line:match("^hang")
    then return fail(name, k, what) end
  end
  -- Open resources: a leak comes back each time; a pool does not.
  for _ = 1, REPEAT do
    local _, again = run()
    if #again == 0 then
      M.notes = M.notes + 1
      return
    end
  end
  return fail(name, k, what .. "; each time over " .. REPEAT
                       .. " more runs")
end

-- The k-loop over the test `name`, whose clean run just ended (the
-- count of its suspensions armed). run() runs the test again, its body
-- cancelled at suspension k_now, and returns why the body did not
-- finish (or nil) and the lines of what the run left. Returns the
-- failures as text, or nil.
function M.loop(name, run)
  local n = T.cancel_state()
  local stride = math.max(1, math.ceil(n / MAX_K))
  if stride > 1 then M.strided = M.strided + 1 end
  local problems = {}
  for k = 1, n, stride do
    local problem, hung = judge(name, k, run)
    problems[#problems + 1] = problem
    if hung then break end                      -- give up on this test
  end
  k_now = nil
  if #problems > 0 then return table.concat(problems, " | ") end
end

-- The summary at the end of the run.
function M.attach(busted)
  busted.subscribe({ "exit" }, function()
    io.stdout:write(("\ntorture: %d (test, k) pairs, %d failures"
      .. " (%d tests with more than %d suspensions sampled; %d runs left"
      .. " tasks, servers or pools the test started: stopped)\n")
      :format(M.pairs, M.failures, M.strided, MAX_K, M.notes))
    io.stdout:flush()
    return nil, true
  end)
end

-- Check the mode; returns the module for lua/test.lua.
function M.install(mode)
  if mode ~= "cancel" and mode ~= "cancel-late" then
    error("LUAIO_TORTURE: unknown mode '" .. tostring(mode)
          .. "' (expected 'cancel' or 'cancel-late')", 0)
  end
  M.late = mode == "cancel-late"
  T.unsetenv("LUAIO_TORTURE")        -- luaio programs the specs start
  return M
end

return M
