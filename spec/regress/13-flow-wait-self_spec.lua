-- Issue 13: a task cannot wait for itself. wait_for, gather, wait,
-- as_completed and shield given the calling task raise an argument error
-- (wait_for used to time out and cancel the caller; the others hung).
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- Run fn(...) in a new task, bounded by 30 s; returns pcall's results
-- and whether the task could still sleep afterwards (not cancelled).
local function in_task(fn, ...)
  local args = table.pack(...)
  local t = aio.spawn(function()
    local r = table.pack(pcall(aio.timeout, 30, fn,
                               table.unpack(args, 1, args.n)))
    local alive = pcall(aio.sleep, 0.01)
    return r, alive
  end)
  return t:await()
end

local SELF = "a task cannot wait for itself"

-- The message, after the position of the calling line.
local function assert_message(expected, e)
  local text = tostring(e)
  assert.are.equal(expected, text:sub(-#expected), text)
end

describe("waiting for the calling task #safety", function()
  after_each(assert_no_tasks)

  it("aio.wait_for raises an argument error and leaves the caller alone", function()
    local r, alive = in_task(function() return aio.wait_for(aio.current(), 1) end)
    assert.is_false(r[1])
    assert_message("bad argument #1 to 'aio.wait_for' (" .. SELF .. ")",
                     r[2])
    assert.is_true(alive)
  end)

  it("aio.gather and aio.gather_all name the argument", function()
    local other = aio.spawn(aio.sleep, 0.01)
    local r, alive = in_task(function() return aio.gather(other, aio.current()) end)
    assert.is_false(r[1])
    assert_message("bad argument #2 to 'aio.gather' (" .. SELF .. ")",
                     r[2])
    assert.is_true(alive)
    r = in_task(function() return aio.gather_all({aio.current()}) end)
    assert_message("bad argument #1 to 'aio.gather_all' (" .. SELF .. ")",
                     r[2])
    other:await()
  end)

  it("aio.wait and aio.as_completed", function()
    local r, alive = in_task(function()
      return aio.wait({aio.current()}, {return_when = "first"})
    end)
    assert_message("bad argument #1 to 'aio.wait' (" .. SELF .. ")",
                     r[2])
    assert.is_true(alive)
    r, alive = in_task(function()
      for _ in aio.as_completed({aio.current()}) do end
    end)
    assert_message("bad argument #1 to 'aio.as_completed' (" .. SELF .. ")",
                     r[2])
    assert.is_true(alive)
  end)

  it("an as_completed iterator called by one of its own tasks", function()
    local it
    local member = aio.spawn(function()
      aio.sleep(0)
      return pcall(it)
    end)
    it = aio.as_completed({member})
    local ok, e = aio.timeout(30, member.await, member)
    assert.is_false(ok)
    assert.are.equal("aio.as_completed: " .. SELF .. " (the caller is one "
                     .. "of the tasks)", tostring(e))
    assert.are.equal(member, it())
    assert.is_nil(it())
  end)

  it("aio.shield", function()
    local r, alive = in_task(function() return aio.shield(aio.current()) end)
    assert_message("bad argument #1 to 'aio.shield' (" .. SELF .. ")",
                     r[2])
    assert.is_true(alive)
  end)
end)
