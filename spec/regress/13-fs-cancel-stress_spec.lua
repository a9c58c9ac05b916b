-- Issue 13: every fs call that waits, cancelled at its first await,
-- mid-transfer (large files) and during cleanup (a <close> handler that
-- awaits). After each: the task is done, nothing it started changes a
-- file any more, a File it used can still be closed, data written before
-- the cancel is intact, and (under valgrind in ctest) nothing leaks.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

local BIG = string.rep("0123456789abcdef", 1 << 20)      -- 16 MiB

-- Each case: setup() -> state, run(state) (the calls that wait), and
-- an optional check(state) after the cancel.
local function cases()
  local function file_case(mode, run)
    return {
      setup = function()
        fs.write(dir .. "/big", BIG)
        return {f = fs.open(dir .. "/big", mode)}
      end,
      run = run,
      check = function(s)
        s.f:close()                               -- still closable
        s.f:close()
      end,
    }
  end
  local function write_case(run)
    return {
      setup = function()
        fs.write(dir .. "/target", "old")
        return {}
      end,
      run = run,
      check = function()
        local now = fs.read(dir .. "/target")
        aio.sleep(0.05)                   -- nothing lands after the cancel
        assert(now == fs.read(dir .. "/target"), "changed after the cancel")
      end,
    }
  end
  local function path_case(setup, run)
    return {setup = function() setup(); return {} end, run = run}
  end
  local nop = function() end
  return {
    ["fs.read"] = {setup = function() fs.write(dir .. "/big", BIG) end,
                   run = function() fs.read(dir .. "/big") end},
    ["fs.write"] = write_case(function() fs.write(dir .. "/target", BIG) end),
    ["fs.write atomic"] = write_case(function()
      fs.write(dir .. "/target", BIG, {atomic = true})
    end),
    ["fs.append"] = write_case(function() fs.append(dir .. "/target", BIG) end),
    ["fs.copy"] = {
      setup = function() fs.write(dir .. "/big", BIG) end,
      run = function() fs.copy(dir .. "/big", dir .. "/copy") end,
      check = function()
        local st = fs.exists(dir .. "/copy") and fs.stat(dir .. "/copy").size
        aio.sleep(0.05)
        assert.are.equal(st, fs.exists(dir .. "/copy")
                             and fs.stat(dir .. "/copy").size)
      end,
    },
    ["fs.open"] = path_case(nop, function()
      local f <close> = fs.open(dir .. "/new", "w")
    end),
    ["fs.stat"] = path_case(nop, function() fs.stat(dir) end),
    ["fs.lstat"] = path_case(nop, function() fs.lstat(dir) end),
    ["fs.exists"] = path_case(nop, function() fs.exists(dir) end),
    ["fs.mkdir"] = path_case(nop, function()
      fs.mkdir(dir .. "/a/b/c/d", {parents = true})
    end),
    -- A cancel can come before the worker ran the rmdir (more often on a
    -- loaded machine): then the last round's folder is still there.
    ["fs.rmdir"] = path_case(function()
      if not fs.exists(dir .. "/d") then fs.mkdir(dir .. "/d") end
    end, function() fs.rmdir(dir .. "/d") end),
    ["fs.remove"] = path_case(function() fs.write(dir .. "/r", "x") end,
                              function() fs.remove(dir .. "/r") end),
    ["fs.rename"] = path_case(function() fs.write(dir .. "/r", "x") end,
      function() fs.rename(dir .. "/r", dir .. "/s") end),
    ["fs.readdir"] = path_case(nop, function() fs.readdir(dir) end),
    ["fs.realpath"] = path_case(nop, function() fs.realpath(dir) end),
    ["fs.mkdtemp"] = path_case(nop, function() fs.mkdtemp(dir .. "/t-") end),
    ["fs.chmod"] = path_case(function() fs.write(dir .. "/c", "x") end,
      function() fs.chmod(dir .. "/c", tonumber("600", 8)) end),
    ["file:read"] = file_case("r", function(s)
      while s.f:read(1 << 20) do end
    end),
    ["file:read_all"] = file_case("r", function(s) s.f:read_all() end),
    ["file:read_line"] = file_case("r", function(s)
      while s.f:read_line({max_line = 32 << 20}) do end
    end),
    ["file:lines"] = file_case("r", function(s)
      for _ in s.f:lines({max_line = 32 << 20}) do end
    end),
    ["file:write"] = file_case("w", function(s) s.f:write(BIG) end),
    ["file:sync"] = file_case("r+", function(s) s.f:sync() end),
    ["watcher:next"] = {
      setup = function() return {w = fs.watch(dir)} end,
      run = function(s) s.w:next() end,
      check = function(s) s.w:close() end,
    },
  }
end

local function names()
  local out = {}
  for name in pairs(cases()) do out[#out + 1] = name end
  table.sort(out)
  return out
end

-- Run case c in a task, cancel it after `when` (0: at its first await),
-- wait for it, then check.
local function cancel_case(c, when)
  fs.write(dir .. "/witness", "intact")
  local s = c.setup() or {}
  local t = aio.spawn(c.run, s)
  if when == 0 then aio.sleep(0) else aio.sleep(when) end
  t:cancel()
  local ok, e = pcall(t.await, t)
  assert.is_true(t:done())
  if not ok then
    assert(e.kind == "cancelled", tostring(e))
  end
  if c.check then c.check(s) end
  assert.are.equal("intact", fs.read(dir .. "/witness"))
end

describe("fs cancellation stress #safety", function()
  for _, name in ipairs(names()) do
    it(name .. ": cancelled at its first await", function()
      cancel_case(cases()[name], 0)
    end)
    it(name .. ": cancelled mid-transfer", function()
      for _, when in ipairs({0.001, 0.004, 0.015}) do
        cancel_case(cases()[name], when)
      end
    end)
  end

  it("every call cancelled at once, many times over", function()
    local all = cases()
    for round = 1, 3 do
      local tasks, states = {}, {}
      for _, name in ipairs(names()) do
        if name ~= "file:write" then         -- one writer per target
          local c = all[name]
          states[name] = c.setup() or {}
          tasks[#tasks + 1] = aio.spawn(c.run, states[name])
        end
      end
      aio.sleep(0.002 * round)
      for _, t in ipairs(tasks) do t:cancel() end
      for _, t in ipairs(tasks) do pcall(t.await, t) end
      for name, s in pairs(states) do
        if s.f then s.f:close() end
        if s.w then s.w:close() end
        assert(name)
      end
    end
  end)
end)

describe("fs cancellation during cleanup #safety", function()
  -- A <close> handler that awaits an fs call, in a task cancelled in its
  -- body and then again while the handler waits.
  it("a <close> handler writing a file completes within the grace",
     function()
    fs.write(dir .. "/witness", "intact")
    local t = aio.spawn(function()
      local guard <close> = setmetatable({}, {__close = function()
        fs.write(dir .. "/cleanup", string.rep("c", 1 << 20),
                 {atomic = true})
      end})
      aio.sleep(10)
    end)
    repeat aio.sleep(0) until t:info().state ~= "ready"     -- it sleeps
    t:cancel()
    aio.sleep(0.001)
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(aio.is_cancelled(e), tostring(e))
    -- The second cancel came inside the cleanup grace: the handler's
    -- write finished whole.
    assert.are.equal(string.rep("c", 1 << 20), fs.read(dir .. "/cleanup"))
    assert.are.equal("intact", fs.read(dir .. "/witness"))
  end)

  it("a File closed by <close> while its read is cancelled", function()
    fs.write(dir .. "/big", BIG)
    for _, when in ipairs({0, 0.001, 0.005}) do
      local t = aio.spawn(function()
        local f <close> = fs.open(dir .. "/big")
        for _ in f:lines({max_line = 32 << 20}) do end
      end)
      if when == 0 then aio.sleep(0) else aio.sleep(when) end
      t:cancel()
      pcall(t.await, t)
      assert.is_true(t:done())
    end
  end)
end)

describe("fs cancellation and exit #safety", function()
  it("a script whose fs tasks are all pending at exit ends at once",
     function()
    assert(os.execute("mkfifo '" .. dir .. "/fifo'"))
    fs.write(dir .. "/big", BIG)
    local script = helpers.script(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local dir = %q
      local ts = {
        aio.spawn(fs.read, dir .. "/fifo"),
        aio.spawn(function()
          local f <close> = fs.open(dir .. "/fifo")
          for _ in f:lines() do end
        end),
        aio.spawn(fs.write, dir .. "/out", string.rep("x", 16 << 20),
                  {atomic = true}),
        aio.spawn(fs.copy, dir .. "/big", dir .. "/copy"),
        aio.spawn(function()
          local f <close> = fs.open(dir .. "/big")
          f:read_all()
        end),
      }
      -- every task has started its call (a task not yet started would
      -- leave nothing pending), not a guessed 10 ms
      local function all_started()
        for _, t in ipairs(ts) do
          if t:info().state == "ready" then return false end
        end
        return true
      end
      repeat aio.sleep(0) until all_started()
      print("leaving")
    ]]):format(dir))
    local rc, out = helpers.sh("timeout 120 " .. helpers.luaio .. " "
                               .. script .. " 2>&1")
    os.remove(script)
    assert.are.equal(0, rc, out)
    assert.matches("leaving", out)
    local names = fs.readdir(dir)
    for _, n in ipairs(names) do
      assert.is_nil(n:match("luaio%-tmp"), "temporary file left: " .. n)
    end
  end)
end)

-- The big test data is not a leak: let the per-file accounting see it go.
teardown(function() BIG = nil end)
