-- Issue 13: semaphore, condition-notify and rate-limiter counts must not
-- overflow silently, and a rate limiter must never spin the loop.
local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("semaphore counts at the integer limit #safety", function()
  after_each(assert_no_tasks)

  it("refuses a release that would overflow the count", function()
    local s = aio.semaphore(math.maxinteger)
    assert.has_error(function() s:release() end,
      "semaphore:release: the count would overflow (at most math.maxinteger)")
    assert.are.equal(math.maxinteger, s:value())
    local p = s:acquire()
    assert.are.equal(math.maxinteger - 1, s:value())
    p:release()
    assert.are.equal(math.maxinteger, s:value())
  end)

  it("refuses it for a permit too, keeping the count", function()
    local s = aio.semaphore(math.maxinteger)
    local p = s:acquire()
    s:release()
    assert.has_error(function() p:release() end,
      "permit:release: the count would overflow (at most math.maxinteger)")
    assert.are.equal(math.maxinteger, s:value())
  end)

  it("a bounded semaphore of math.maxinteger still bounds", function()
    local b = aio.bounded_semaphore(math.maxinteger)
    assert.has_error(function() b:release() end,
      "semaphore:release: released too many times")
    assert.are.equal(math.maxinteger, b:value())
  end)
end)

describe("condition:notify counts #safety", function()
  after_each(assert_no_tasks)

  it("rejects a negative count", function()
    local c = aio.condition()
    assert.has_error(function() c:notify(-1) end,
      "bad argument #2 to 'condition:notify' (n must be >= 0)")
    assert.has_error(function() c:notify(math.mininteger) end,
      "bad argument #2 to 'condition:notify' (n must be >= 0)")
  end)

  it("math.maxinteger wakes every waiter and nothing more", function()
    local c = aio.condition()
    local woke = 0
    local ts = {}
    for i = 1, 3 do
      ts[i] = aio.spawn(function()
        local _ <close> = c:acquire()
        c:wait()
        woke = woke + 1
      end)
    end
    aio.sleep(0.01)
    c:with(function() c:notify(math.maxinteger) end)
    aio.gather(ts)
    assert.are.equal(3, woke)
    c:with(function() c:notify(0) end)
  end)
end)

describe("aio.rate_limiter ranges #safety", function()
  after_each(assert_no_tasks)

  it("rejects infinite and NaN values", function()
    assert.has_error(function() aio.rate_limiter(math.huge, math.huge) end,
      "bad argument #1 to 'aio.rate_limiter' (n must be > 0 and at most "
      .. "2^53)")
    assert.has_error(function() aio.rate_limiter(1, math.huge) end,
      "bad argument #2 to 'aio.rate_limiter' (per_seconds must be a finite "
      .. "number > 0)")
    assert.has_error(function() aio.rate_limiter(0 / 0) end,
      "bad argument #1 to 'aio.rate_limiter' (n must be > 0 and at most "
      .. "2^53)")
    assert.has_error(function() aio.rate_limiter(1, 1, math.huge) end,
      "bad argument #3 to 'aio.rate_limiter' (burst must be from 1 to 2^53)")
  end)

  it("rejects counts beyond exact float integers", function()
    assert.has_error(function() aio.rate_limiter(2^60) end,
      "bad argument #1 to 'aio.rate_limiter' (n must be > 0 and at most "
      .. "2^53)")
    assert.has_error(function() aio.rate_limiter(1, 1, 2^60) end,
      "bad argument #3 to 'aio.rate_limiter' (burst must be from 1 to 2^53)")
  end)

  it("rejects a rate that over- or underflows", function()
    assert.has_error(function() aio.rate_limiter(2^53, 1e-320) end,
      "bad argument #2 to 'aio.rate_limiter' (n / per_seconds must be a "
      .. "finite rate > 0)")
    assert.has_error(function() aio.rate_limiter(1e-300, 1e300) end,
      "bad argument #2 to 'aio.rate_limiter' (n / per_seconds must be a "
      .. "finite rate > 0)")
  end)

  it("waits without spinning when the next token is far away", function()
    local r = aio.rate_limiter(1, 1e300)
    r:acquire()                                -- the burst of 1
    -- os.clock counts the whole process: a garbage collection debt paid
    -- during the wait (slow under valgrind) is not the wait's CPU
    collectgarbage()
    local c0, t0 = os.clock(), aio.now()
    local ok, e = pcall(aio.timeout, 0.3, r.acquire, r)
    assert.is_false(ok)
    assert.is_true(aio.is_timeout(e), tostring(e))
    assert.is_true(aio.now() - t0 >= 0.29)
    assert.is_true(os.clock() - c0 < 0.2, "the wait used the CPU")
  end)

  it("accepts the largest values and still limits", function()
    local r = aio.rate_limiter(2^53, 1, 2^53)
    for _ = 1, 1000 do r:acquire() end
    local slow = aio.rate_limiter(2, 1, 1)
    slow:acquire()
    collectgarbage()
    local c0, t0 = os.clock(), aio.now()
    slow:acquire()
    assert.is_true(aio.now() - t0 >= 0.45)
    assert.is_true(os.clock() - c0 < 0.3, "the wait used the CPU")
  end)
end)
