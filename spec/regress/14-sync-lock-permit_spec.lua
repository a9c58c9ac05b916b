-- Issue 14: a lock given back with lock:release() must stay given back.
-- The permit lock:acquire() returned used to release the lock again when
-- it was collected (or closed), so a lock acquired and released in the
-- acquire()/release() style was later freed under another holder, and a
-- lock still held was freed by a garbage collection.
local aio = require "luaio"

local function full_gc()
  collectgarbage()
  collectgarbage()
end

local function assert_no_tasks()
  full_gc()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("lock permits and lock:release() #safety", function()
  after_each(assert_no_tasks)

  it("a collected permit does not free the lock another task holds", function()
    local lock = aio.lock()
    lock:acquire()                     -- the permit is dropped
    lock:release()
    local got_it = aio.event()
    local done = aio.event()
    local holder = aio.spawn(function()
      local _ <close> = lock:acquire()
      got_it:set()
      done:wait()
    end)
    finally(function() done:set(); pcall(holder.await, holder) end)
    got_it:wait()
    full_gc()                          -- collects the first permit
    assert.is_true(lock:locked(), "the lock was freed while held")
    assert.is_nil(lock:try_acquire(), "a second holder got the lock")
    done:set()
    holder:await()
    assert.is_false(lock:locked())
  end)

  it("a garbage collection never frees a lock still held", function()
    local lock = aio.lock()
    lock:acquire()                     -- held, permit dropped
    full_gc()
    assert.is_true(lock:locked(), "the collection freed the lock")
    lock:release()
    assert.is_false(lock:locked())
  end)

  it("lock:release() spends the permit: its <close> does nothing", function()
    local lock = aio.lock()
    local other
    do
      local p <close> = lock:acquire()
      lock:release()
      other = lock:try_acquire()
      assert.is_not_nil(other)
    end                                -- p closes here
    assert.is_true(lock:locked(), "p's close freed other's lock")
    other:release()
    assert.is_false(lock:locked())
    assert.has_error(function() lock:release() end,
      "lock:release: released too many times")
  end)

  it("the holder's permit follows it through condition:wait", function()
    local lock = aio.lock()
    local c = aio.condition(lock)
    local waiting = aio.event()
    local t = aio.spawn(function()
      local _ <close> = lock:acquire()
      waiting:set()
      c:wait()
      lock:release()                   -- gives back what the permit held
    end)
    waiting:wait()
    lock:acquire()
    c:notify()
    lock:release()
    t:await()                          -- the <close> must not raise
    assert.is_false(lock:locked())
  end)

  it("a semaphore used as a signal keeps its count after collections", function()
    local sem = aio.semaphore(0)
    local consumer = aio.spawn(function()
      for _ = 1, 3 do sem:acquire() end    -- permits dropped
    end)
    for _ = 1, 3 do
      aio.sleep(0)
      sem:release()
    end
    consumer:await()
    full_gc()
    assert.are.equal(0, sem:value(), "collected permits were given back")
  end)
end)
