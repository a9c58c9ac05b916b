-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.test: runs busted inside the main task, so every describe/it
-- block may call async functions directly. Called as
-- require("luaio.test")(args) by `luaio test [busted args]`.
--
-- Each test body (with its `finally` functions) runs in a task of its
-- own, watched; hooks (before_each, setup...) run in the main task under a
-- guard that cancels them on a deadlock or at the time limit:
--   * a time limit (10 s, or --timeout=S, LUAIO_TEST_TIMEOUT, or
--     require("luaio.test").timeout(s) inside the block) fails it;
--   * a deadlock (it waits and nothing left could wake it) fails it at
--     once;
--   * after a test (after_each included), tasks it left running,
--     deadlines still armed, and file descriptors or libuv handles
--     still open fail it; they are named (a task by its name, its
--     function and its stack) and left tasks are cancelled, so the
--     next test starts clean.
-- After each spec file, open descriptors, libuv handles, live tasks and
-- Lua memory must be back to what they were when the file started.
-- Processes registered with track(p) are stopped when the block that
-- registered them ends (lua/test_procs.lua), before these accounts.
-- With LUAIO_TORTURE set, each test then runs again, cancelled at each
-- of its suspensions, through the same isolation and accounting (the
-- k-loop and what counts as a failure are in lua/torture.lua).
local aio = require "luaio"
local procs = require "luaio.test_procs"
local T = aio._test

local M = {}

local DEFAULT_TIMEOUT = 10
local SLICE = 1                 -- seconds between looks at the limit
local SETTLE_TURNS = 5          -- loop turns given to finishing tasks
local CANCEL_GRACE = 5          -- seconds for cancelled tasks to end
local MEMORY_SLACK = 4 * 1024   -- KiB a spec file may keep (module caches,
                                -- busted's own records of its tests)

local default_timeout = DEFAULT_TIMEOUT
local limit                     -- the running block's limit, seconds
local guard                     -- the running hook's guard
local torture                   -- luaio.torture when LUAIO_TORTURE is set
local running                   -- the busted instance of the run
local current_test              -- the test whose hooks or body run now

-- Inside a test body: give this test `seconds` in place of the default
-- limit, counted from its start. Inside a hook: counted from the call.
function M.timeout(seconds)
  assert(type(seconds) == "number" and seconds > 0,
         "luaio.test.timeout: seconds must be a positive number")
  limit = seconds
  if guard then guard:reset(seconds) end
end

-- The block a process registered now belongs to: the test, for its
-- body, finally and before_each/after_each hooks; the describe block
-- (or file) for its setup/teardown hooks and its own code.
local BLOCKS = { describe = true, file = true, insulate = true,
                 expose = true }
local EACH = { before_each = true, after_each = true }

local function owner()
  local ctx = running.context
  local el = ctx.get()
  while el do
    local d = el.descriptor
    if d == "it" or BLOCKS[d] then return el end
    if EACH[d] and current_test then return current_test end
    el = ctx.parent(el)
  end
  return procs.RUN
end

-- Stop process p (a PID, or an object with a `pid` field, read when
-- the block ends) when the running block ends, passed or failed, and at
-- the end of the run. Outside a `luaio test` run it does nothing.
function M.track(p)
  local pid = type(p) == "number" and p
    or (type(p) == "table" or type(p) == "userdata") and p.pid
  if math.tointeger(pid) == nil or pid <= 0 then
    error("bad argument #1 to 'test.track' (a process id or an "
          .. "object with a pid field expected, got " .. tostring(p) .. ")",
          2)
  end
  if running then procs.track(p, owner()) end
  return p
end

-- "task 'name' (status), function at file:line" and its stack, without
-- the frames of busted and of this glue. (Where the task was spawned is
-- not recorded: that would cost every spawn.)
local function describe_task(t)
  local where = T.origin(t)
  local lines = { "task '" .. t.name .. "' (" .. t:status() .. ")"
                  .. (where and (", function at " .. where) or "") }
  local stack = T.traceback(t)
  for line in (stack or ""):gmatch("[^\n]+") do
    if line:match("in function 'xpcall'") then break end
    lines[#lines + 1] = "    " .. line:gsub("^%s+", "")
  end
  return table.concat(lines, "\n")
end

-- Tasks live now that were not in `before` (a set), the caller excepted.
local function new_tasks(before)
  local me, list = aio.current(), {}
  for _, t in ipairs(aio.tasks()) do
    if t ~= me and not before[t] then list[#list + 1] = t end
  end
  return list
end

local function task_set()
  local set = {}
  for _, t in ipairs(aio.tasks()) do set[t] = true end
  return set
end

-- Cancel tasks and give them a bounded time to end.
local function cancel_all(tasks, why)
  for _, t in ipairs(tasks) do t:cancel(why) end
  if #tasks > 0 then pcall(aio.wait, tasks, { timeout = CANCEL_GRACE }) end
end

-- Settle: let tasks that are finishing finish (for SETTLE_TURNS loop
-- turns, and up to `seconds` more), collect garbage (which closes
-- unreferenced files and sockets), let close callbacks run.
local function settle(before, seconds)
  local deadline = aio.now() + (seconds or 0)
  local turn = 0
  while before and #new_tasks(before) > 0 do
    turn = turn + 1
    if turn > SETTLE_TURNS and aio.now() >= deadline then break end
    aio.sleep(turn > SETTLE_TURNS and 0.005 or 0)
  end
  collectgarbage()
  collectgarbage()
  aio.sleep(0)
  aio.sleep(0)
end

-- The host's default HTTP client keeps idle keep-alive connections
-- (descriptors and poll handles) between requests. Close it, so they do
-- not count as a leak; the next request makes a new one.
local function close_default_http_client()
  local reg = debug.getregistry()
  for k, v in pairs(reg) do
    local mt = type(k) == "userdata" and getmetatable(v)
    if type(mt) == "table" and mt.__name == "luaio.HttpClient" then
      pcall(v.close, v)
      reg[k] = nil
    end
  end
end

-- What is open now. Tasks spawned just before (by a hook) start first,
-- so their own waits count as theirs.
local function snapshot()
  aio.sleep(0)
  return { tasks = task_set(), alone = #aio.tasks() == 1, fds = T.fds(),
           handles = select(2, T.handles()), deadlines = T.deadlines() }
end

-- libuv keeps two descriptors per loop once needed: an inotify one
-- (first fs watch) and /dev/null reserved for EMFILE (first listen).
local LOOP_FDS = { ["anon_inode:inotify"] = true, ["/dev/null"] = true }

local function fd_leaks(before, now)
  local out = {}
  for fd, what in pairs(now) do
    if before[fd] == nil and not LOOP_FDS[what] then
      out[#out + 1] = "file descriptor " .. fd .. " (" .. what .. ")"
    end
  end
  table.sort(out)
  return out
end

local function handle_leaks(before, now)
  local out = {}
  for name, n in pairs(now) do
    local d = n - (before[name] or 0)
    if d > 0 then out[#out + 1] = d .. " libuv " .. name .. " handle(s)" end
  end
  table.sort(out)
  return out
end

-- What was left behind since snapshot `s`: a list of lines (empty when
-- clean). Left tasks are cancelled; left deadlines are reported. Tasks
-- get `seconds` to end first, and descriptors and handles to close
-- (after a cancel, closing may take a few loop turns).
local function leaks(s, what, seconds)
  local out = {}
  settle(s.tasks, seconds)
  local left = new_tasks(s.tasks)
  for _, t in ipairs(left) do
    out[#out + 1] = "left " .. describe_task(t)
  end
  cancel_all(left, what .. " ended with this task still running")
  if #left > 0 then settle(s.tasks) end
  for _, t in ipairs(left) do
    if not t:done() then
      out[#out + 1] = "task '" .. t.name .. "' still running "
                      .. CANCEL_GRACE .. " s after its cancel"
    end
  end
  -- Deadlines have no owner to name: they count only when no task but
  -- the runner was alive before (others may arm theirs at any time).
  local armed = T.deadlines() - s.deadlines
  if armed > 0 and s.alone then
    out[#out + 1] = armed .. " timer deadline(s) still armed"
  end
  local fds, handles = T.fds(), select(2, T.handles())
  local deadline = aio.now() + (seconds or 0)
  local closed = false
  while #fd_leaks(s.fds, fds) + #handle_leaks(s.handles, handles) > 0
        and (not closed or aio.now() < deadline) do
    if not closed then close_default_http_client() end
    closed = true
    settle()
    fds, handles = T.fds(), select(2, T.handles())
  end
  for _, l in ipairs(fd_leaks(s.fds, fds)) do out[#out + 1] = l .. " open" end
  for _, l in ipairs(handle_leaks(s.handles, handles)) do
    out[#out + 1] = l .. " active"
  end
  return out
end

-- Run fn in a task under the watchdog. Returns true when it finished,
-- or false, why (a deadlock or the time limit, with the stacks of the
-- tasks spawned since `before`) and the list of those tasks, for the
-- caller to cancel. The torture, when on, sees the task before it runs
-- and may stop it earlier (check, each SLICE: why, or nil).
local function watched(fn, before, tortured)
  limit = default_timeout
  local t0 = aio.now()
  local t = aio.spawn(fn)
  if tortured then torture.body_started(t, aio.current()) end
  while true do
    local left = limit - (aio.now() - t0)
    local r = left > 0 and T.watch(t, math.min(SLICE, left)) or "timeout"
    local stop = r ~= "done" and tortured and torture.check()
    if r == "done" then return true end
    if stop or r == "deadlock" or aio.now() - t0 >= limit then
      local why = stop or r == "deadlock"
        and "deadlock: it waits and nothing left could wake it"
        or ("timeout: still running after " .. limit .. " s")
      local waiting, stacks = new_tasks(before), {}
      for i, w in ipairs(waiting) do stacks[i] = "  " .. describe_task(w) end
      return false, why .. "; waiting tasks:\n" .. table.concat(stacks, "\n"),
             waiting
    end
  end
end

-- Test bodies run in watched tasks: busted.safe gets them with the
-- element's own run function (the executor of the whole test goes
-- through busted.safe too, with a wrapper). Hooks stay in the main
-- task, where specs expect them, under a guard.
local HOOKS = { before_each = true, after_each = true, lazy_setup = true,
                lazy_teardown = true, strict_setup = true,
                strict_teardown = true }

local function install(busted)
  local safe = busted.safe
  running = busted

  -- Report msg as an error of element (a test or a file), located at
  -- its definition or trace; returns the status to merge into the
  -- test's.
  local function fail_block(element, msg, trace)
    trace = trace or element.trace
    if trace and trace.short_src then
      msg = trace.short_src .. ":" .. trace.currentline .. ": " .. msg
    end
    busted.publish({ "error", element.descriptor }, element,
                   busted.context.parent(element), msg, trace)
    return busted.status("error")
  end

  -- Run safe(descriptor, run, element) in a watched task; returns what
  -- safe returns. Under the torture, why a body did not finish is kept.
  local body_why
  local function safe_watched(descriptor, run, element, before, tortured)
    local ret
    local ok, why, waiting = watched(function()
      ret = table.pack(safe(descriptor, run, element))
    end, before, tortured)
    if tortured then
      torture.body_ended()
      body_why = why
    end
    if not ok then
      -- The block's own safe reports the cancellation (with why) as
      -- its error and restores busted's context, unless the block
      -- swallowed it or never ended.
      cancel_all(waiting, why)
      if ret == nil then
        busted.context.pop()
        return fail_block(element, why)
      elseif ret[1]:success() then
        ret[1]:update(fail_block(element, why))
      end
    end
    return table.unpack(ret, 1, ret.n)
  end

  -- The body, then its finally functions (each one given runs, the
  -- last given first, even when the body or another one failed), each
  -- watched. busted keeps only the last one given: a test that stops two
  -- servers with two finally calls would leave the first running.
  local function run_body(descriptor, run, element)
    local before = task_set()
    local finals = {}
    element.env.finally = function(fn) finals[#finals + 1] = fn end
    local r = table.pack(safe_watched(descriptor, run, element, before,
                                      torture ~= nil))
    for i = #finals, 1, -1 do
      r[1]:update(safe_watched("finally", finals[i], element, before))
    end
    return table.unpack(r, 1, r.n)
  end

  -- Run the whole test (before_each, body, after_each) as the owner of
  -- the processes it registers; stop those once it has ended.
  local function safe_test(descriptor, run, element)
    local outer = current_test
    current_test = element
    local r = table.pack(safe(descriptor, run, element))
    current_test = outer
    procs.stop_owned(element)
    return r
  end

  -- The whole test: before_each, the body, after_each. What it left
  -- once after_each has run is a leak; busted's "test end" is held back
  -- until then, so a leak is reported as the test's error.
  local held = {}
  local safe_publish, publish = busted.safe_publish, busted.publish
  local muted = false             -- a tortured run is under way

  -- The torture's run k of the whole test (before_each, the body
  -- cancelled at its k-th suspension, after_each), its reports muted
  -- (a cancelled test may fail as it likes). Returns why the body did
  -- not finish (or nil) and what the run left (lines), once the
  -- torture has stopped what the test itself started.
  local function torture_run(descriptor, run, element)
    local s = snapshot()
    body_why, muted = nil, true
    safe_test(descriptor, run, element)
    muted = false
    local stuck = torture.tidy()
    local left = leaks(s, "the run", torture.SETTLE)
    if stuck then table.insert(left, 1, stuck) end
    return body_why, left
  end

  local function test_name(element)
    local names, el = {}, element
    while el and el.name do
      table.insert(names, 1, el.name)
      el = busted.context.parent(el)
    end
    table.remove(names, 1)                       -- the file
    return table.concat(names, " ")
  end

  local function run_test(descriptor, run, element)
    local s = snapshot()
    held[element] = true
    local r = safe_test(descriptor, run, element)
    local ending = held[element]
    held[element] = nil
    local left = leaks(s, "the test")
    if type(ending) == "table" then                -- the test did run
      if #left > 0 then
        fail_block(element, "the test left resources behind:\n  "
                            .. table.concat(left, "\n  "))
        if ending[5] == "success" then ending[5] = "error" end
      end
      -- The torture reruns a test whose body ran to its end.
      local bad = torture and ending[5] ~= "pending" and body_why == nil
        and torture.loop(test_name(element), function()
              return torture_run(descriptor, run, element)
            end)
      if bad then
        fail_block(element, "cancellation torture: " .. bad)
        if ending[5] == "success" then ending[5] = "error" end
      end
      safe_publish(table.unpack(ending, 1, ending.n))
    end
    return table.unpack(r, 1, r.n)
  end

  busted.safe_publish = function(descriptor, channel, element, ...)
    if held[element] and channel[1] == "test" and channel[2] == "end" then
      held[element] = table.pack(descriptor, channel, element, ...)
      return true
    end
    return safe_publish(descriptor, channel, element, ...)
  end
  busted.publish = function(channel, ...)
    if muted then
      if channel[1] == "error" or channel[1] == "failure" then
        torture.log_error(select(3, ...))
      end
      return
    end
    return publish(channel, ...)
  end
  if torture then torture.attach(busted) end

  -- A hook runs in the main task (specs count on that), under a guard:
  -- a deadlock or its time limit cancels it, with its stack.
  local function run_hook(descriptor, run, element)
    local outer = guard
    guard = T.guard(default_timeout)
    local r = table.pack(safe(descriptor, run, element))
    local fired = guard:stop()
    guard = outer
    if fired then
      T.uncancel()
      if r[1]:success() then           -- the hook swallowed it
        r[1]:update(fail_block(element, fired .. ": the "
          .. descriptor .. " hook was cancelled"))
      end
    end
    return table.unpack(r, 1, r.n)
  end

  busted.safe = function(descriptor, run, element)
    if descriptor == "it" and element and element.descriptor == "it" then
      if run == element.run then return run_body(descriptor, run, element) end
      return run_test(descriptor, run, element)
    elseif HOOKS[descriptor] and element and run == element.run then
      return run_hook(descriptor, run, element)
    end
    return safe(descriptor, run, element)
  end

  -- Resource accounting per spec file.
  local at_start = {}
  busted.subscribe({ "file", "start" }, function(file)
    collectgarbage()
    collectgarbage()
    local s = snapshot()
    s.memory = collectgarbage("count")
    at_start[file] = s
    return nil, true
  end)
  busted.subscribe({ "describe", "end" }, function(block)
    procs.stop_owned(block)
    return nil, true
  end)
  busted.subscribe({ "exit" }, function()
    procs.stop_all()
    return nil, true
  end)
  busted.subscribe({ "file", "end" }, function(file)
    procs.stop_owned(file)
    local s = at_start[file]
    at_start[file] = nil
    if not s then return nil, true end
    local left = leaks(s, "the spec file")
    local grew = collectgarbage("count") - s.memory
    if grew > MEMORY_SLACK then
      left[#left + 1] = string.format("Lua memory grew by %.0f KiB "
        .. "(more than %d KiB)", grew, MEMORY_SLACK)
    end
    if #left > 0 then
      -- As busted reports a file that does not load: a plain element
      -- (the file's own holds functions the json output cannot encode)
      -- and a trace at its first line (output handlers want one).
      fail_block({ descriptor = "file", name = file.name },
        "the spec file left resources behind:\n  "
        .. table.concat(left, "\n  "),
        { short_src = file.name, currentline = 1, traceback = "" })
    end
    return nil, true
  end)
end

-- Take --timeout=S / --timeout S out of the arguments (busted does not
-- know it); LUAIO_TEST_TIMEOUT sets the default too.
local function parse_timeout(args)
  local out, i = {}, 1
  local env = tonumber(os.getenv("LUAIO_TEST_TIMEOUT") or "")
  if env and env > 0 then default_timeout = env end
  while i <= #args do
    local a = args[i]
    local v = a:match("^%-%-timeout=(.*)$")
    if a == "--timeout" then v = args[i + 1]; i = i + 1 end
    if v then
      local n = tonumber(v)
      if not n or n <= 0 then
        error("luaio test: --timeout needs a positive number of seconds", 0)
      end
      default_timeout = n
    else
      out[#out + 1] = a
    end
    i = i + 1
  end
  return out
end

-- Load every luaio module once for the whole run: busted's insulation
-- unloads what a spec file required, but the metatables a binding
-- registers stay, and opening a binding twice is not supported.
local function preload_luaio()
  local names = {}
  for name in pairs(package.preload) do
    if name:match("^luaio%.") and name ~= "luaio.test" then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do require(name) end
end

return setmetatable(M, { __call = function(_, args)
  args = parse_timeout(args)
  preload_luaio()
  local busted_arg = { [0] = "luaio test" }
  for i, v in ipairs(args) do busted_arg[i] = v end
  _G.arg = busted_arg
  -- Wrap busted's core so the glue sees the instance the runner makes.
  local core = require("busted.core")
  package.loaded["busted.core"] = function(...)
    local busted = core(...)
    install(busted)
    return busted
  end
  -- Fetch the runner first: a chunk run by require cannot yield, the
  -- runner function called afterwards can.
  local runner = require("busted.runner")
  local mode = os.getenv("LUAIO_TORTURE")      -- see lua/torture.lua
  if mode then torture = require("luaio.torture").install(mode) end
  runner({ standalone = false })
  procs.stop_all()
end })
