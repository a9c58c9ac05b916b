-- luaio.torture: cancellation torture for `luaio test` (LUAIO_TORTURE=cancel).
--
-- Every `it` body runs in a fresh task, once to the end (counting n, the
-- suspensions -- luaio_wait or a yielded turn -- of every task but the
-- test runner's own), then again for k = 1..n, cancelled at the k-th
-- suspension (k steps with a stride when n exceeds LUAIO_TORTURE_MAX,
-- default 200). Before each cancelled run the test's after_each and
-- before_each blocks run again, so each run starts from the state the
-- test expects. A cancelled run may fail in any way it likes; what counts
-- as a failure is what luaio must never do:
--   * a cancelled body still running 5 s after the cancel (a hang);
--   * tasks luaio started for it still running 2 s after it ended;
--   * more loop handles or file descriptors open after a full GC than
--     before the run (beyond what the clean run itself left open: a lazily
--     opened inotify fd), growing again each time the same k is rerun
--     (REPEAT times; what does not grow is a pool, such as curl's);
-- crashes and sanitizer reports end the process (use a sanitizer build).
-- Tasks the test spawned itself (aio.spawn) and left waiting, and servers
-- it started (net.serve) and did not close because it was cancelled
-- first, are the test's business: they are cancelled and closed, and
-- counted as notes. The clean run gives the test its result. At the end:
--   torture: 412 (test, k) pairs, 0 failures (...)
-- LUAIO_TORTURE=cancel-late cancels on the loop's next turn after the k-th
-- suspension instead, when the wait may have completed and the task may
-- be ready to resume with its result (another set of paths).
-- LUAIO_TORTURE_LOG=1 names each run on stderr, and each cancelled run
-- that ended with another error than its cancellation (worth a look).
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

-- What the test code started itself during a run, through aio.spawn and
-- net.serve: tasks it left waiting and servers it did not close are the
-- test's business (it was cancelled before its cleanup), not luaio's; the
-- torture cancels and closes them after the run, as a note.
local own = setmetatable({}, { __mode = "k" })
local servers = setmetatable({}, { __mode = "k" })
local net = require "luaio.net"
local real = { spawn = aio.spawn, serve = net.serve,
               serve_unix = net.serve_unix }
local spawn = real.spawn
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

-- Close the servers the last run opened; returns how many.
local function close_servers()
  local n = 0
  for srv in pairs(servers) do
    servers[srv] = nil
    if pcall(srv.close, srv, { cancel = true }) then n = n + 1 end
  end
  return n
end

-- "tcp +2 pipe +1": the handle types there are more of in b than in a.
local function more_types(a, b)
  local count, out = {}, {}
  for w in a:gmatch("%S+") do count[w] = (count[w] or 0) - 1 end
  for w in b:gmatch("%S+") do count[w] = (count[w] or 0) + 1 end
  for w, n in pairs(count) do
    if n > 0 then out[#out + 1] = w .. " +" .. n end
  end
  table.sort(out)
  return table.concat(out, " ")
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
-- seconds; returns a description of what is left, or nil, and the
-- handles and fds left. What the clean run of the test left (a lazily
-- opened inotify fd, pooled HTTP connections) is allowed (allow).
local function settle(base, allow)
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
    local clean = #theirs + #ours == 0
                  and now.handles <= base.handles + allow.handles
                  and now.fds <= base.fds + allow.fds
    if (#theirs > 0 or next(servers)) and not reaped then
      M.notes = M.notes + 1               -- the test's own: stop them now
      reaped = true
      close_servers()
      left[#left + 1] = reap(theirs)
      deadline, clean = aio.now() + SETTLE, false    -- then look again
    end
  until clean or aio.now() > deadline
  if #ours + #theirs > 0 then
    left[#left + 1] = "tasks still running after the run and the cancel "
                      .. "of the test's own: " .. describe_tasks(ours)
                      .. " " .. describe_tasks(theirs)
    ours = table.move(theirs, 1, #theirs, #ours + 1, ours)
    left[#left + 1] = reap(ours)
  end
  if now.handles > base.handles + allow.handles then
    left[#left + 1] = ("handles left open: %d more (%s)"):format(
      now.handles - base.handles, more_types(base.types, now.types))
  end
  if now.fds > base.fds + allow.fds then
    left[#left + 1] = ("fds left open: %d more"):format(now.fds - base.fds)
  end
  return #left > 0 and table.concat(left, "; ") or nil,
         now.handles - base.handles, now.fds - base.fds
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
-- happened), the task, a failure description or nil, and the handles and
-- fds the run left open.
local function run_once(body, k, runner, allow)
  local base = snapshot()
  local t = spawn(body)
  use(tracking)
  T.cancel_at(t, k, runner, M.late)
  local hang = await_body(t, k)
  local _, fired = T.cancel_state()
  T.disarm()
  use(real)
  if hang then return fired, t, hang, 0, 0 end
  return fired, t, settle(base, allow)
end

-- The test's after_each then before_each blocks: a fresh start.
local function restart(busted, block, element)
  local parent = busted.context.parent(element)
  block.dexecAll("after_each", parent, true)
  block.execAll("before_each", parent, true)
end

-- Handles or fds left after a run may be a leak or a pool (curl keeps
-- connections): run the same k REPEAT more times; a leak grows each time.
-- Returns the growth over the repeats if it looks like a leak, else nil.
local REPEAT = 5
local function leaks_each_time(again, body, k, runner)
  local free = { handles = math.huge, fds = math.huge }
  again()
  local before = snapshot()
  for i = 1, REPEAT do
    if i > 1 then again() end
    local _, t = run_once(body, k, runner, free)
    pcall(t.result, t)
  end
  aio.sleep(0.2)
  local after = snapshot()
  local dh, dfd = after.handles - before.handles, after.fds - before.fds
  if dh >= REPEAT - 1 or dfd >= REPEAT - 1 then
    return ("+%d handles (%s), +%d fds over %d more runs"):format(dh,
      more_types(before.types, after.types), dfd, REPEAT)
  end
end

-- The wrapper that replaces an `it` body: a clean run counts the
-- suspensions n, then runs cancelled at k = 1..n (with a stride when n
-- exceeds MAX_K); the clean run's outcome is the test's.
local function tortured(busted, block, element, body)
  return function()
    local name = full_name(busted, element)
    local runner = aio.current()
    local problems = {}
    local none = { handles = 0, fds = 0 }
    local _, clean, problem, dh, dfd = run_once(body, math.maxinteger,
                                                runner, none)
    local n = T.cancel_state()
    local allow = { handles = math.max(dh, 0), fds = math.max(dfd, 0) }
    if problem and not problem:match("^hang") then
      M.notes = M.notes + 1                 -- what the test itself leaves
      if LOG then io.stderr:write("torture: note: " .. problem .. "\n") end
      problem = nil
    end
    if problem then problems[1] = fail(name, 0, problem) end
    local stride = math.max(1, math.ceil(n / MAX_K))
    if clean:done() then
      for k = 1, n, stride do
        restart(busted, block, element)
        if LOG then
          io.stderr:write(("torture: %s k=%d\n"):format(name, k))
        end
        local fired, t, problem = run_once(body, k, runner, allow)
        if fired then M.pairs = M.pairs + 1 end
        if t:done() then                        -- observed: no report
          local ok, e = pcall(t.result, t)
          if not ok and not aio.is_cancelled(e) and LOG then
            io.stderr:write(("torture: note: %s, k=%d ended with: %s\n")
              :format(name, k, tostring(e):match("[^\n]*")))
          end
        end
        if problem and not problem:find("task") and t:done() then
          local growth = leaks_each_time(function()
            restart(busted, block, element)
          end, body, k, runner)
          if growth then problem = problem .. "; each time: " .. growth
          else
            M.notes = M.notes + 1               -- transient: a pool
            problem = nil
          end
        end
        if problem then problems[#problems + 1] = fail(name, k, problem) end
        if not t:done() then break end          -- hung: give up here
      end
    end
    if stride > 1 then M.strided = M.strided + 1 end
    if #problems > 0 then
      error("cancellation torture: " .. table.concat(problems, " | "), 0)
    end
    local ok, e = pcall(clean.result, clean)
    if ok then return end
    -- The test's own error value (a busted failure or pending), if any.
    if aio.is_error(e) and e.value ~= nil then e = e.value end
    error(e, 0)
  end
end

-- Hook into the busted instance `luaio test` is about to create.
function M.install(mode)
  if mode ~= "cancel" and mode ~= "cancel-late" then
    error("LUAIO_TORTURE: unknown mode '" .. tostring(mode)
          .. "' (expected 'cancel' or 'cancel-late')", 0)
  end
  M.late = mode == "cancel-late"
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
        .. " tasks or servers the test started: stopped)\n")
        :format(M.pairs, M.failures, M.strided, MAX_K, M.notes))
      io.stdout:flush()
      return nil, true
    end)
    return busted
  end
end

return M
