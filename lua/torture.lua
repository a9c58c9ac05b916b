-- luaio.torture: cancellation torture for `luaio test` (LUAIO_TORTURE=cancel).
--
-- Every `it` body runs in a fresh task, and the task is cancelled at the
-- k-th suspension (luaio_wait or a yielded turn) of any task but the
-- runner's own, for k = 1, 2, ... until the body finishes without reaching
-- k (at most LUAIO_TORTURE_MAX, default 200). Between two runs the test's
-- after_each and before_each blocks run again, so each run starts from the
-- state the test expects. The cancelled run may fail in any way it likes;
-- what counts as a failure is what luaio must never do:
--   * a cancelled body still running 5 s after the cancel (a hang);
--   * tasks it started still running 5 s after it ended;
--   * handles of the loop or file descriptors left open after a full GC;
-- crashes and sanitizer reports end the process (run the sanitizer build).
-- The last run (not cancelled) gives the test its result. At the end:
--   torture: 412 (test, k) pairs, 0 failures
local aio = require "luaio"
local T = require "luaio.torture_c"

local M = { pairs = 0, failures = 0, strided = 0, notes = 0 }

local MAX_K = tonumber(os.getenv("LUAIO_TORTURE_MAX") or "") or 200
local GRACE = 5          -- seconds a cancelled body may take to finish
local SETTLE = 2         -- seconds what a run opened may take to go
local BODY_LIMIT = 120   -- seconds an uncancelled body may take
local LOG = os.getenv("LUAIO_TORTURE_LOG")

local function full_name(busted, element)
  local names, el = {}, element
  while el and el.name do
    table.insert(names, 1, el.name)
    el = busted.context.parent(el)
  end
  table.remove(names, 1)                         -- the file
  return table.concat(names, " ")
end

-- What is open now: live tasks (a set), loop handles, file descriptors.
local function snapshot()
  collectgarbage()
  collectgarbage()
  local live = {}
  for _, t in ipairs(aio.tasks()) do live[t] = true end
  local nh, types = T.handles()
  return { tasks = live, handles = nh, types = types, fds = T.fds() or 0 }
end

local function new_tasks(base)
  local extra = {}
  for _, t in ipairs(aio.tasks()) do
    if not base.tasks[t] then extra[#extra + 1] = t end
  end
  return extra
end

-- Tasks the test code spawned itself (through aio.spawn) during a run:
-- leaving those behind is the test's business, not luaio's.
local own = setmetatable({}, { __mode = "k" })
local spawn = aio.spawn
local function tracking_spawn(...)
  local t = spawn(...)
  own[t] = true
  return t
end

local function describe_tasks(list)
  local names = {}
  for i, t in ipairs(list) do names[i] = tostring(t) end
  return table.concat(names, ", ")
end

-- Cancel the leftover tasks and wait for them (so the next run is clean);
-- a leftover that does not finish is a hang. [returns text or nil]
local function reap(tasks)
  for _, t in ipairs(tasks) do t:cancel() end
  local stuck = {}
  for _, t in ipairs(tasks) do
    pcall(aio.wait, { t }, { timeout = GRACE })
    if not t:done() then stuck[#stuck + 1] = t end
  end
  if #stuck > 0 then
    return "hang: leftover tasks still running " .. GRACE
           .. " s after their cancel: " .. describe_tasks(stuck)
  end
end

-- Wait until everything the run opened is gone again, for up to SETTLE
-- seconds; returns a description of what is left, or nil. Tasks the test
-- spawned itself and left waiting are cancelled (a note, not a failure).
local function settle(base)
  local deadline = aio.now() + SETTLE
  local left, now, theirs, ours = {}, nil, {}, {}
  local reaped = false
  repeat
    aio.sleep(0.005)
    now = snapshot()
    theirs, ours = {}, {}
    for _, t in ipairs(new_tasks(base)) do
      if own[t] then theirs[#theirs + 1] = t else ours[#ours + 1] = t end
    end
    if #theirs > 0 and not reaped then    -- the test's: cancel them now
      M.notes = M.notes + 1
      reaped = true
      left[#left + 1] = reap(theirs)
    end
    local clean = #theirs + #ours == 0 and now.handles <= base.handles
                  and now.fds <= base.fds
  until clean or aio.now() > deadline
  if #ours + #theirs > 0 then
    left[#left + 1] = "tasks still running after the run and the cancel "
                      .. "of the test's own: " .. describe_tasks(ours)
                      .. " " .. describe_tasks(theirs)
    ours = table.move(theirs, 1, #theirs, #ours + 1, ours)
    left[#left + 1] = reap(ours)
  end
  if now.handles > base.handles then
    left[#left + 1] = ("handles left open: %d before (%s), %d after (%s)")
      :format(base.handles, base.types, now.handles, now.types)
  end
  if now.fds > base.fds then
    left[#left + 1] = ("fds left open: %d before, %d after")
      :format(base.fds, now.fds)
  end
  return #left > 0 and table.concat(left, "; ") or nil
end

-- Wait for the body task t; returns "hang: ..." if it does not finish in
-- time (GRACE after the cancel, BODY_LIMIT overall).
local function await_body(t, k)
  local started = aio.now()
  while not t:done() do
    pcall(aio.wait, { t }, { timeout = 0.05 })
    local _, fired, since = T.cancel_state()
    if not t:done() and ((fired and since > GRACE)
        or aio.now() - started > BODY_LIMIT) then
      return ("hang: the body is still %s %.1f s after %s"):format(
        t:status(), fired and since or aio.now() - started,
        fired and ("its cancel at suspension " .. k) or "its start")
    end
  end
end

local function fail(name, k, what)
  M.failures = M.failures + 1
  io.stderr:write(("torture: FAIL %s, k=%d: %s\n"):format(name, k, what))
  io.stderr:flush()
  return what
end

-- One run of body cancelled at suspension k: returns fired (the cancel
-- happened), the task, and a failure description or nil.
local function run_once(body, k, runner)
  local base = snapshot()
  local t = spawn(body)
  aio.spawn = tracking_spawn
  T.cancel_at(t, k, runner)
  local hang = await_body(t, k)
  local _, fired = T.cancel_state()
  T.disarm()
  aio.spawn = spawn
  if hang then return fired, t, hang end
  return fired, t, settle(base)
end

-- The test's after_each then before_each blocks: a fresh start.
local function restart(busted, block, element)
  local parent = busted.context.parent(element)
  block.dexecAll("after_each", parent, true)
  block.execAll("before_each", parent, true)
end

-- The wrapper that replaces an `it` body: a clean run counts the
-- suspensions n, then runs cancelled at k = 1..n (with a stride when n
-- exceeds MAX_K); the clean run's outcome is the test's.
local function tortured(busted, block, element, body)
  return function()
    local name = full_name(busted, element)
    local runner = aio.current()
    local problems = {}
    local _, clean, problem = run_once(body, math.maxinteger, runner)
    local n = T.cancel_state()
    if problem then problems[1] = fail(name, 0, problem) end
    local stride = math.max(1, math.ceil(n / MAX_K))
    if clean:done() then
      for k = 1, n, stride do
        restart(busted, block, element)
        if LOG then
          io.stderr:write(("torture: %s k=%d\n"):format(name, k))
        end
        local fired, t, problem = run_once(body, k, runner)
        if fired then M.pairs = M.pairs + 1 end
        if problem then problems[#problems + 1] = fail(name, k, problem) end
        if not t:done() then break end          -- hung: give up here
        pcall(t.result, t)                      -- observed: no report
      end
    end
    if stride > 1 then M.strided = M.strided + 1 end
    if #problems > 0 then
      error("cancellation torture: " .. table.concat(problems, " | "), 0)
    end
    return clean:result()
  end
end

-- Hook into the busted instance `luaio test` is about to create.
function M.install(mode)
  if mode ~= "cancel" then
    error("LUAIO_TORTURE: unknown mode '" .. tostring(mode)
          .. "' (expected 'cancel')", 0)
  end
  T.unsetenv("LUAIO_TORTURE")        -- luaio programs the specs start
  local new_core = require "busted.core"
  package.loaded["busted.core"] = function(...)
    local busted = new_core(...)
    local block
    busted.subscribe({ "test", "start" }, function(element)
      block = block or require("busted.block")(busted)
      if type(element.run) == "function" then
        element.run = tortured(busted, block, element, element.run)
      end
      return nil, true
    end)
    busted.subscribe({ "exit" }, function()
      io.stdout:write(("\ntorture: %d (test, k) pairs, %d failures"
        .. " (%d tests with more than %d suspensions sampled; %d runs left"
        .. " tasks the test spawned waiting: cancelled)\n")
        :format(M.pairs, M.failures, M.strided, MAX_K, M.notes))
      io.stdout:flush()
      return nil, true
    end)
    return busted
  end
end

return M
