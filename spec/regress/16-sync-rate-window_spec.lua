-- Issue 16: aio.rate_limiter(n, per) means what a user reads: no span
-- of `per` seconds (sliding, not aligned) ever holds more than n
-- acquisitions, waiters served FIFO. The token bucket (bursts of 2n in
-- one window) only when a burst is given. The specs check the invariant
-- on the times the tasks see, never a duration.
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

-- times (sorted): every n + 1 consecutive ones span at least per.
local function assert_window(times, n, per)
  table.sort(times)
  for i = 1, #times - n do
    local span = times[i + n] - times[i]
    assert(span >= per, ("acquisitions %d..%d within %.6f s (< %g)")
      :format(i, i + n, span, per))
  end
end

describe("aio.rate_limiter sliding window", function()
  after_each(assert_no_tasks)

  it("never lets more than n into any window, FIFO", function()
    local n, per = 4, 0.05
    local r = aio.rate_limiter(n, per)
    local times, order, tasks = {}, {}, {}
    for i = 1, 30 do
      tasks[i] = aio.spawn(function()
        r:acquire()
        times[#times + 1] = aio.now()
        order[#order + 1] = i
      end)
    end
    aio.gather(tasks)
    assert.are.equal(30, #times)
    for i = 1, 30 do assert.are.equal(i, order[i]) end
    assert_window(times, n, per)
  end)

  it("does not let a burst of 2n through around a window's edge", function()
    -- per = 0.5 s: the try comes within it after the second take even
    -- when a loaded machine stalls a while (it would pass after per)
    local n, per = 5, 0.5
    local r = aio.rate_limiter(n, per)
    local times = {}
    local function take(k)
      for _ = 1, k do r:acquire(); times[#times + 1] = aio.now() end
    end
    take(n)                           -- a full window at once
    aio.sleep(per * 0.6)
    take(n)                           -- waits for the first ones to age
    local refused = not r:try_acquire()
    assert_window(times, n, per)
    assert.is_true(refused, "the window is not full again")
  end)

  it("holds with tasks that come and go and cancel", function()
    local n, per = 3, 0.03
    local r = aio.rate_limiter(n, per)
    local times, tasks = {}, {}
    for i = 1, 12 do
      tasks[i] = aio.spawn(function()
        for _ = 1, 3 do
          r:acquire()
          times[#times + 1] = aio.now()
          aio.sleep((i % 3) * 0.004)
        end
      end)
    end
    local victims = {}
    for i = 1, 6 do
      victims[i] = aio.spawn(function() r:acquire(); times[#times + 1] = aio.now() end)
    end
    aio.sleep(0)
    for i = 1, 6, 2 do victims[i]:cancel() end
    aio.gather(tasks)
    for _, v in ipairs(victims) do pcall(v.await, v) end
    assert_window(times, n, per)
    assert.is_true(#times >= 36 + 3)
  end)

  it("keeps the bucket for an explicit burst", function()
    local r = aio.rate_limiter(10, 1, 3)
    for _ = 1, 3 do assert.is_true(r:try_acquire()) end
    assert.is_false(r:try_acquire())
    local w = aio.rate_limiter(10, 1, {burst = 2})
    assert.is_true(w:try_acquire())
    assert.is_true(w:try_acquire())
    assert.is_false(w:try_acquire())
  end)
end)

describe("aio.rate_limiter keyed", function()
  after_each(assert_no_tasks)

  it("limits each key on its own", function()
    local r = aio.rate_limiter(2, 10, {key = true})
    for _, host in ipairs({"a.example", "b.example"}) do
      assert.is_true(r:try_acquire(host))
      assert.is_true(r:try_acquire(host))
      assert.is_false(r:try_acquire(host))
    end
    assert.are.equal(2, r:key_count())
    local n, per = 2, 0.03
    local k = aio.rate_limiter(n, per, {key = true})
    local times = {a = {}, b = {}}
    local tasks = {}
    for i = 1, 16 do
      local key = i % 2 == 0 and "a" or "b"
      tasks[i] = aio.spawn(function()
        k:acquire(key)
        local t = times[key]
        t[#t + 1] = aio.now()
      end)
    end
    aio.gather(tasks)
    assert_window(times.a, n, per)
    assert_window(times.b, n, per)
  end)

  it("drops idle keys", function()
    local r = aio.rate_limiter(1, 0.02, {key = true})
    for i = 1, 100 do r:acquire("old" .. i) end
    aio.sleep(0.03)                   -- every old key is idle now
    for i = 1, 100 do r:acquire("new" .. i) end
    assert.is_true(r:key_count() <= 128, tostring(r:key_count()))
    local b = aio.rate_limiter(1, 0.02, {key = true, burst = 1})
    for i = 1, 100 do b:acquire(i) end
    aio.sleep(0.03)
    for i = 101, 200 do b:acquire(i) end
    assert.is_true(b:key_count() <= 128, tostring(b:key_count()))
  end)

  it("rejects bad keys and options", function()
    local r = aio.rate_limiter(1, 1, {key = true})
    assert.has_error(function() r:acquire() end,
      "bad argument #2 to 'rate_limiter:acquire' (key expected)")
    assert.has_error(function() r:try_acquire(0 / 0) end,
      "bad argument #2 to 'rate_limiter:try_acquire' (key is NaN)")
    assert.has_error(function() aio.rate_limiter(1):acquire("x") end,
      "bad argument #2 to 'rate_limiter:acquire' (no key expected (the "
      .. "limiter was made without key = true))")
    assert.has_error(function() aio.rate_limiter(1, 1, {keys = true}) end,
      "bad argument #3 to 'aio.rate_limiter' (unknown option 'keys')")
    assert.has_error(function() aio.rate_limiter(1, 1, {burst = 0}) end,
      "bad argument #3 to 'aio.rate_limiter' (burst must be from 1 to 2^53)")
    assert.has_error(function() aio.rate_limiter(1, 1, "x") end,
      "bad argument #3 to 'aio.rate_limiter' (number or table expected, "
      .. "got string)")
    assert.has_error(function() aio.rate_limiter(1.5, 1) end,
      "bad argument #1 to 'aio.rate_limiter' (n must be a whole number (or "
      .. "give a burst for a token bucket))")
  end)
end)
