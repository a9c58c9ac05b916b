-- Issue 13: an error in a priority queue's comparator must leave the
-- queue as it was (the item put is not in it, the item got is still in
-- it), never lose or half-insert an item, and never strand a waiter.
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- A comparator that raises when either side is the poisoned value.
local function picky(poison)
  return function(a, b)
    if a == poison or b == poison then error("cannot compare " .. poison, 0) end
    return a < b
  end
end

local function drain(q)
  local got = {}
  while not q:empty() do got[#got + 1] = q:get_nowait() end
  return got
end

describe("priority queue comparator errors #safety", function()
  after_each(assert_no_tasks)

  it("a failed put raises the comparator's error and changes nothing", function()
    local q = aio.priority_queue(0, picky(0))
    for _, v in ipairs({5, 3, 8, 1, 9, 2}) do q:put(v) end
    local ok, e = pcall(q.put, q, 0)
    assert.is_false(ok)
    assert.are.equal("cannot compare 0", e)
    assert.are.equal(6, q:size())
    ok, e = pcall(q.put_nowait, q, 0)
    assert.is_false(ok)
    assert.are.equal("cannot compare 0", e)
    assert.are.same({1, 2, 3, 5, 8, 9}, drain(q))
  end)

  it("join does not wait for an item that was never put", function()
    local q = aio.priority_queue(0, picky("x"))
    q:put(1)
    assert.is_false(pcall(q.put, q, "x"))
    q:get()
    q:task_done()
    assert.is_true(aio.timeout(30, function() q:join(); return true end))
  end)

  it("a failed get raises and keeps every item, in order", function()
    local poisoned = false
    local q = aio.priority_queue(0, function(a, b)
      if poisoned then error("comparator broke", 0) end
      return a < b
    end)
    for _, v in ipairs({4, 2, 7, 1, 6}) do q:put(v) end
    poisoned = true
    local ok, e = pcall(q.get, q)
    assert.is_false(ok)
    assert.are.equal("comparator broke", e)
    assert.are.equal(5, q:size())
    poisoned = false
    assert.are.same({1, 2, 4, 6, 7}, drain(q))
  end)

  it("default order errors (mixed types) are protected too", function()
    local q = aio.priority_queue()
    q:put(1); q:put(2)
    local ok, e = pcall(q.put, q, {})
    assert.is_false(ok)
    assert.matches("attempt to compare", tostring(e))
    assert.are.same({1, 2}, drain(q))
  end)

  it("a waiting getter woken for an item it cannot take passes it on", function()
    local fail_once = false
    local q = aio.priority_queue(0, function(a, b)
      if fail_once then fail_once = false; error("comparator broke", 0) end
      return a < b
    end)
    local a = aio.spawn(function() return q:get() end)
    local b = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    q:put(3)                            -- promised to a
    q:put(1); q:put(2)                  -- promised to b
    fail_once = true                    -- a's take fails
    assert.is_false(pcall(a.await, a))
    assert.are.equal(1, aio.timeout(30, b.await, b))
    assert.are.same({2, 3}, drain(q))   -- nothing lost, nothing stuck
    local c = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    q:put(5)
    assert.are.equal(5, aio.timeout(30, c.await, c))
  end)

  it("a full queue's waiting putter whose put fails frees its slot", function()
    local q = aio.priority_queue(2, picky("bad"))
    q:put(1); q:put(2)
    local bad = aio.spawn(function() q:put("bad") end)
    local good = aio.spawn(function() q:put(0); return "put" end)
    aio.sleep(0.01)
    assert.are.equal(1, q:get())          -- frees a slot for `bad`
    assert.is_false(pcall(bad.await, bad))
    assert.are.equal("put", aio.timeout(30, good.await, good))
    assert.are.same({0, 2}, drain(q))
  end)

  it("a comparator cannot wait", function()
    local q = aio.priority_queue(0, function(a, b) aio.sleep(0); return a < b end)
    q:put(1)
    local ok, e = pcall(q.put, q, 2)
    assert.is_false(ok)
    assert.matches("cannot wait here", tostring(e))
    assert.are.same({1}, drain(q))
  end)
end)
