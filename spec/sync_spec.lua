local aio = require "luaio"
local helpers = require "spec.helpers"

-- fn must raise a luaio.Error of this kind and message.
local function assert_fails(fn, kind, message)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error raised")
  assert.is_true(aio.is_error(e, kind), tostring(e))
  assert.are.equal(message, e.message)
end

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("aio.queue", function()
  after_each(assert_no_tasks)

  it("passes items FIFO between tasks", function()
    local q = aio.queue()
    local t = aio.spawn(function()
      local got = {}
      for _ = 1, 3 do got[#got + 1] = q:get() end
      return got
    end)
    for i = 1, 3 do q:put(i) end
    assert.are.same({1, 2, 3}, t:await())
    assert.is_true(q:empty())
  end)

  it("makes put wait while full", function()
    local q = aio.queue(1)
    q:put("a")
    assert.is_true(q:full())
    local putter = aio.spawn(function() q:put("b"); return "put" end)
    aio.sleep(0.01)
    assert.are.equal("pending", putter:status())
    assert.are.equal("a", q:get())
    assert.are.equal("put", putter:await())
    assert.are.equal("b", q:get_nowait())
  end)

  it("serves waiting getters first come, first served", function()
    local q = aio.queue()
    local order = {}
    local ts = {}
    for i = 1, 3 do
      ts[i] = aio.spawn(function()
        local v = q:get()
        order[#order + 1] = i .. ":" .. v
      end)
    end
    aio.sleep(0)
    q:put("x"); q:put("y"); q:put("z")
    aio.gather(table.unpack(ts))
    assert.are.same({"1:x", "2:y", "3:z"}, order)
  end)

  it("does not let get_nowait steal an item promised to a waiter", function()
    local q = aio.queue()
    local waiter = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    q:put(1)
    assert_fails(function() q:get_nowait() end, "empty", "queue is empty")
    assert.are.equal(1, waiter:await())
  end)

  it("loses no item when a waiting getter is cancelled", function()
    local q = aio.queue()
    local a = aio.spawn(function() return q:get() end)
    local b = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    a:cancel()
    q:put("only")
    assert.is_false(pcall(a.await, a))
    assert.are.equal("only", b:await())
  end)

  it("gives a promised item to its getter even if cancelled after", function()
    local q = aio.queue(2)
    local a = aio.spawn(function() return q:get() end)
    local b = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    q:put("x")                              -- promised to a
    a:cancel()                              -- its get has completed
    assert.are.same({true, "x"}, {pcall(a.await, a)})
    q:put("y")
    assert.are.equal("y", b:await())
    assert.is_true(q:empty())
  end)

  it("puts a promised slot's item even if the putter is cancelled after",
    function()
      local q = aio.queue(1)
      q:put(1)
      local p = aio.spawn(function() q:put(2); return "p" end)
      local p2 = aio.spawn(function() q:put(3); return "p2" end)
      aio.sleep(0)
      assert.are.equal(1, q:get())          -- the slot is promised to p
      p:cancel()
      assert.are.same({true, "p"}, {pcall(p.await, p)})
      assert.are.equal(2, q:get())
      assert.are.equal("p2", p2:await())
      assert.are.same({3, 0}, {q:get(), q:size()})
    end)

  it("passes a cancelled putter's turn to the next one", function()
    local q = aio.queue(1)
    q:put(1)
    local p = aio.spawn(function() q:put(2) end)
    local p2 = aio.spawn(function() q:put(3) end)
    aio.sleep(0)
    p:cancel()
    assert.is_false(pcall(p.await, p))
    assert.are.equal(1, q:get())
    p2:await()
    assert.are.same({3, 0}, {q:get(), q:size()})
  end)

  it("ends consumers with nil, 'closed' once drained", function()
    local q = aio.queue()
    q:put(1)
    local consumer = aio.spawn(function()
      local n = 0
      while true do
        local item, err = q:get()
        if item == nil then return n, err end
        n = n + 1
      end
    end)
    aio.sleep(0.01)
    q:close()
    assert.are.same({1, "closed"}, {consumer:await()})
    assert_fails(function() q:put(2) end, "closed", "queue is closed")
    assert.are.same({nil, "closed"}, {q:get_nowait()})
  end)

  it("wakes a waiting putter with an error on close", function()
    local q = aio.queue(1)
    q:put(1)
    local putter = aio.spawn(function() q:put(2) end)
    aio.sleep(0)
    q:close()
    local ok, e = pcall(putter.await, putter)
    assert.is_false(ok)
    assert.are.equal("closed", e.kind)
  end)

  it("follows one close rule: puts raise, drained gets end", function()
    for _, make in ipairs({aio.queue, aio.lifo_queue, aio.priority_queue}) do
      local q = make(1)
      q:put(1)
      local waiting_put = aio.spawn(function() q:put(2) end)
      aio.sleep(0)
      q:close()
      assert.is_true(q:closed())
      -- every put after close raises "closed", waiting or not
      assert_fails(function() q:put(3) end, "closed", "queue is closed")
      assert_fails(function() q:put_nowait(3) end, "closed", "queue is closed")
      local ok, e = pcall(waiting_put.await, waiting_put)
      assert.is_false(ok)
      assert.is_true(aio.is_error(e, "closed"), tostring(e))
      -- items put before close are still delivered, then every get ends
      assert.are.equal(1, q:get())
      assert.are.same({nil, "closed"}, {q:get()})
      assert.are.same({nil, "closed"}, {q:get_nowait()})
    end
  end)

  it("ends a waiting getter with nil, 'closed' on close", function()
    local q = aio.queue()
    local getter = aio.spawn(function() return q:get() end)
    aio.sleep(0)
    q:close()
    assert.are.same({nil, "closed"}, {getter:await()})
  end)

  it("join waits for task_done of every item", function()
    local q = aio.queue()
    local processed = 0
    local worker = aio.spawn(function()
      while true do
        local item = q:get()
        if item == nil then return end
        aio.sleep(0.001)
        processed = processed + 1
        q:task_done()
      end
    end)
    for i = 1, 5 do q:put(i) end
    q:join()
    assert.are.equal(5, processed)
    q:close()
    worker:await()
    assert.has_error(function() q:task_done() end,
      "queue:task_done: called more times than items were put")
  end)

  it("reports size, and errors when empty or full", function()
    local q = aio.queue(1)
    assert_fails(function() q:get_nowait() end, "empty", "queue is empty")
    q:put_nowait("a")
    assert.are.equal(1, q:size())
    assert.are.equal(1, #q)
    local ok, e = pcall(q.put_nowait, q, "b")
    assert.is_false(ok)
    assert.are.equal("full", e.kind)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() aio.queue(-1) end,
      "bad argument #1 to 'aio.queue' (maxsize must be >= 0)")
    assert.has_error(function() aio.queue("x") end,
      "bad argument #1 to 'aio.queue' (integer expected, got string)")
    assert.has_error(function() aio.queue():put(nil) end,
      "bad argument #2 to 'queue:put' (item expected, got nil)")
  end)

  it("refuses a self that is not a queue, whatever its contents", function()
    local q = aio.queue(4)
    for _, other in ipairs({io.stdout, aio.lock(), aio.event(), {}, 1}) do
      local ok, e = pcall(q.get, other)
      assert.is_false(ok)
      assert.matches("luaio.Queue expected", tostring(e), 1, true)
      ok, e = pcall(q.put, other, 1)
      assert.is_false(ok)
      assert.matches("luaio.Queue expected", tostring(e), 1, true)
    end
    assert.are.equal(0, q:size())
  end)

  -- Bounded queues of up to 1,024 items keep them in the queue's own
  -- slots, larger and unbounded ones in a table: both behave alike.
  for _, maxsize in ipairs({1, 3, 1024, 1025, 0}) do
    it("keeps FIFO order around its ring (maxsize " .. maxsize .. ")",
      function()
        local q = aio.queue(maxsize)
        local room = maxsize > 0 and maxsize or 2000
        local got, n = {}, 0
        local k = (room + 1) // 2       -- taken, then put again: wraps
        for round = 1, 3 do
          for i = 1, room do q:put_nowait(round * 10000 + i) end
          if maxsize > 0 then
            assert.is_true(q:full())
            assert_fails(function() q:put_nowait(0) end, "full",
              "queue is full")
          end
          for _ = 1, k do n = n + 1; got[n] = q:get_nowait() end
          for i = 1, k do q:put_nowait(round * 10000 + room + i) end
          for _ = 1, room do n = n + 1; got[n] = q:get_nowait() end
        end
        assert.is_true(q:empty())
        n = 0
        for round = 1, 3 do
          for i = 1, room + k do
            n = n + 1
            assert.are.equal(round * 10000 + i, got[n])
          end
        end
      end)
  end

  it("keeps LIFO order when bounded", function()
    local q = aio.lifo_queue(3)
    q:put(1); q:put(2); q:put(3)
    assert_fails(function() q:put_nowait(4) end, "full", "queue is full")
    assert.are.equal(3, q:get())
    q:put(5)
    assert.are.same({5, 2, 1}, {q:get(), q:get(), q:get()})
  end)

  it("does not keep an item alive once it is taken", function()
    for _, q in ipairs({aio.queue(2), aio.queue()}) do
      local weak = setmetatable({}, {__mode = "v"})
      q:put({}); q:put({})
      weak[1] = q:get()
      weak[2] = q:get()
      collectgarbage(); collectgarbage()
      assert.is_nil(next(weak))
    end
  end)

  it("keeps order with waiting putters and getters on a full ring", function()
    local q = aio.queue(2)
    local got = {}
    local putters = {}
    for p = 1, 3 do
      putters[p] = aio.spawn(function()
        for i = 1, 4 do q:put(p * 10 + i) end
      end)
    end
    local getters = {}
    for g = 1, 2 do
      getters[g] = aio.spawn(function()
        for _ = 1, 6 do
          local v = q:get()
          got[#got + 1] = v
        end
      end)
    end
    aio.gather(table.unpack(putters))
    aio.gather(table.unpack(getters))
    assert.are.equal(12, #got)
    local last = {}
    for _, v in ipairs(got) do             -- each putter's items in order
      local p = v // 10
      assert.is_true((last[p] or 0) < v)
      last[p] = v
    end
    assert.is_true(q:empty())
  end)
end)

describe("aio.priority_queue / aio.lifo_queue", function()
  it("returns the smallest first, or by a given order", function()
    local q = aio.priority_queue()
    for _, v in ipairs({5, 1, 4, 2, 3}) do q:put(v) end
    local got = {}
    for _ = 1, 5 do got[#got + 1] = q:get() end
    assert.are.same({1, 2, 3, 4, 5}, got)
    local by_prio = aio.priority_queue(0, function(a, b) return a[1] > b[1] end)
    by_prio:put({1, "low"}); by_prio:put({9, "high"})
    assert.are.equal("high", by_prio:get()[2])
    assert.has_error(function() aio.priority_queue(0, 5) end,
      "bad argument #2 to 'aio.priority_queue' (function expected, got number)")
  end)

  it("returns the last put first", function()
    local q = aio.lifo_queue()
    for i = 1, 3 do q:put(i) end
    assert.are.same({3, 2, 1}, {q:get(), q:get(), q:get()})
  end)
end)

describe("aio.semaphore / aio.lock", function()
  after_each(assert_no_tasks)

  it("bounds concurrency; permits release with <close>", function()
    local sem = aio.semaphore(2)
    local active, most = 0, 0
    local ts = {}
    for i = 1, 6 do
      ts[i] = aio.spawn(function()
        local _ <close> = sem:acquire()
        active = active + 1
        most = math.max(most, active)
        aio.sleep(0.01)
        active = active - 1
      end)
    end
    aio.gather(ts)
    assert.are.equal(2, most)
    assert.are.equal(2, sem:value())
  end)

  it("releases on error and cancellation", function()
    local sem = aio.semaphore(1)
    pcall(function() local _ <close> = sem:acquire(); error("x") end)
    assert.are.equal(1, sem:value())
    local holder = aio.spawn(function() local _ <close> = sem:acquire(); aio.sleep(60) end)
    local waiter = aio.spawn(function() local _ <close> = sem:acquire(); aio.sleep(60) end)
    aio.sleep(0.01)
    waiter:cancel()                 -- a cancelled waiter takes no permit
    holder:cancel()
    pcall(holder.await, holder)
    pcall(waiter.await, waiter)
    assert.are.equal(1, sem:value())
  end)

  it("with() holds a permit while fn runs", function()
    local lock = aio.lock()
    assert.are.equal(42, lock:with(function(a)
      assert.is_true(lock:locked())
      aio.sleep(0)
      return a * 2
    end, 21))
    assert.is_false(lock:locked())
    assert.has_error(function() lock:with(function() error("inner", 0) end) end,
      "inner")
    assert.is_false(lock:locked())
  end)

  it("try_acquire never waits; permits release once", function()
    local sem = aio.semaphore(1)
    local p = sem:try_acquire()
    assert.is_not_nil(p)
    assert.is_nil(sem:try_acquire())
    p:release(); p:release()
    assert.are.equal(1, sem:value())
  end)

  it("a bounded semaphore refuses extra releases", function()
    local b = aio.bounded_semaphore(1)
    assert.has_error(function() b:release() end,
      "semaphore:release: released too many times")
    assert.has_error(function() b:with(function() b:release() end) end,
      "semaphore:with: released too many times")
    assert.are.equal(1, b:value())
    assert.has_error(function() aio.semaphore(-1) end,
      "bad argument #1 to 'aio.semaphore' (value must be >= 0)")
  end)
end)

describe("aio.event", function()
  after_each(assert_no_tasks)

  it("wakes every waiter when set", function()
    local ev = aio.event()
    local ts = {}
    for i = 1, 3 do ts[i] = aio.spawn(function() return ev:wait() end) end
    aio.sleep(0.01)
    assert.is_false(ev:is_set())
    ev:set()
    assert.are.same({true, true, true}, {aio.gather(ts)})
    assert.is_true(ev:wait())
    ev:clear()
    assert.is_false(ev:is_set())
  end)

  it("can be cancelled while waiting", function()
    local ev = aio.event()
    local t = aio.spawn(function() return ev:wait() end)
    aio.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
  end)
end)

describe("aio.condition", function()
  after_each(assert_no_tasks)

  it("wait_for waits until the predicate holds", function()
    local c = aio.condition()
    local items = {}
    local consumer = aio.spawn(function()
      local _ <close> = c:acquire()
      c:wait_for(function() return #items >= 2 end)
      return #items
    end)
    for i = 1, 2 do
      aio.sleep(0.01)
      local _ <close> = c:acquire()
      items[#items + 1] = i
      c:notify()
    end
    assert.are.equal(2, consumer:await())
  end)

  it("notify_all wakes all waiters, which re-take the lock", function()
    local c = aio.condition(aio.lock())
    local woke = 0
    local ts = {}
    for i = 1, 3 do
      ts[i] = aio.spawn(function()
        local _ <close> = c:acquire()
        c:wait()
        assert(c:locked())
        woke = woke + 1
      end)
    end
    aio.sleep(0.01)
    c:with(function() c:notify_all() end)
    aio.gather(ts)
    assert.are.equal(3, woke)
  end)

  it("refuses wait without the lock", function()
    assert.has_error(function() aio.condition():wait() end,
      "condition:wait: the lock is not acquired")
    assert.has_error(function() aio.condition(5) end,
      "bad argument #1 to 'aio.condition' (lock expected, got number)")
  end)
end)

describe("aio.rate_limiter", function()
  after_each(assert_no_tasks)

  it("spaces acquisitions at the rate after the burst", function()
    -- 5/s: the try comes right after the last acquire (before any
    -- assertion, slow under valgrind), well within the 0.2 s of a refill
    local rl = aio.rate_limiter(5, 1, 2)      -- 5/s, bursts of 2
    local t0 = aio.now()
    for _ = 1, 6 do rl:acquire() end          -- 2 at once, 4 at 0.2 s
    local refused = not rl:try_acquire()
    assert.is_true(aio.now() - t0 >= 0.78)
    assert.is_true(refused)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() aio.rate_limiter(0) end,
      "bad argument #1 to 'aio.rate_limiter' (n must be > 0 and at most 2^53)")
    assert.has_error(function() aio.rate_limiter(1, -1) end,
      "bad argument #2 to 'aio.rate_limiter' (per_seconds must be a finite number > 0)")
  end)
end)

describe("examples/producer_consumer.lua", function()
  it("processes every job once and ends its workers", function()
    local rc, out = helpers.sh(helpers.luaio .. " examples/producer_consumer.lua")
    assert.are.equal(0, rc, out)
    assert.matches("processed 20 jobs with 4 workers", out)
    assert.matches("sum of results 420", out)
    assert.matches("at most 2 uploads at once", out)
  end)
end)

describe("priority queue stability", function()
  it("returns equal priorities in insertion order", function()
    local q = aio.priority_queue(0, function(a, b) return a.p < b.p end)
    local n = 200
    for i = 1, n do q:put({p = i % 3, i = i}) end
    local last = {p = -1, i = 0}
    for _ = 1, n do
      local item = q:get()
      if item.p == last.p then assert.is_true(item.i > last.i) end
      assert.is_true(item.p >= last.p)
      last = item
    end
    local plain = aio.priority_queue()
    for _ = 1, 5 do plain:put(1) end
    assert.are.equal(5, plain:size())
  end)

  it("stays stable when gets and puts interleave", function()
    local q = aio.priority_queue(0, function(a, b) return a[1] < b[1] end)
    local seq, got = 0, {}
    for round = 1, 50 do
      for _ = 1, 3 do seq = seq + 1; q:put({round % 2, seq}) end
      got[#got + 1] = q:get()
    end
    while not q:empty() do got[#got + 1] = q:get() end
    -- per priority, the items come out in the order they went in
    local last = {[0] = 0, [1] = 0}
    for _, item in ipairs(got) do
      assert.is_true(item[2] > last[item[1]])
      last[item[1]] = item[2]
    end
    assert.are.equal(150, #got)
  end)
end)

describe("aio.select", function()
  after_each(assert_no_tasks)

  it("takes a ready case, or waits for the first one", function()
    local q1, q2 = aio.queue(), aio.queue()
    q2:put("b")
    assert.are.same({2, "b"}, {aio.select{{get = q1}, {get = q2}}})
    local t = aio.spawn(function() aio.sleep(0.01); q1:put("a") end)
    assert.are.same({1, "a"}, {aio.select{{get = q1}, {get = q2}}})
    t:await()
    local full = aio.queue(1)
    full:put(0)
    local out = aio.queue(1)
    assert.are.same({2}, {aio.select{{put = full, value = 1},
                                      {put = out, value = 2}}})
    assert.are.equal(2, out:get())
  end)

  it("chooses fairly at random among ready cases", function()
    local qs, count = {}, {0, 0, 0}
    for i = 1, 3 do
      qs[i] = aio.queue()
      for _ = 1, 3000 do qs[i]:put(i) end
    end
    local cases = {{get = qs[1]}, {get = qs[2]}, {get = qs[3]}}
    for _ = 1, 3000 do
      local which = aio.select(cases)
      count[which] = count[which] + 1
    end
    for i = 1, 3 do
      assert.is_true(count[i] > 800 and count[i] < 1200, tostring(count[i]))
    end
  end)

  it("fires a closed queue's case with a closed marker", function()
    local q, other = aio.queue(), aio.queue()
    local t = aio.spawn(function()
      return aio.select{{get = other}, {get = q}}
    end)
    aio.sleep(0)
    q:close()
    assert.are.same({2, nil, "closed"}, {t:await()})
    assert.are.same({1, nil, "closed"}, {aio.select{{put = q, value = 1}}})
    local full = aio.queue(1)
    full:put(1)
    local putter = aio.spawn(function()
      return aio.select{{put = full, value = 2}}
    end)
    aio.sleep(0)
    full:close()
    assert.are.same({1, nil, "closed"}, {putter:await()})
    assert.are.equal(1, full:get())              -- items still delivered
  end)

  it("times out with nil, 'timeout', taking nothing", function()
    local q = aio.queue()
    assert.are.same({nil, "timeout"}, {aio.select({{get = q}}, 0)})
    assert.are.same({nil, "timeout"}, {aio.select({{get = q}}, 0.01)})
    q:put(1)
    assert.are.equal(1, q:get_nowait())
    local t = aio.spawn(function() return aio.select{{get = q}} end)
    aio.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    q:put(2)
    assert.are.equal(2, q:get_nowait())          -- not taken by the select
  end)

  it("rejects invalid cases", function()
    local q = aio.queue()
    local function err(cases, timeout, msg)
      assert.has_error(function() aio.select(cases, timeout) end, msg)
    end
    local pre = "bad argument #1 to 'aio.select' ("
    err(nil, nil, "bad argument #1 to 'aio.select' (table expected, got nil)")
    err({}, nil, pre .. "1 to 1000000 cases expected)")
    err({5}, nil, pre .. "case 1: table expected)")
    err({{get = q}, {get = 5}}, nil, pre .. "case 2: get: queue expected)")
    err({{put = q}}, nil, pre .. "case 1: put needs a value)")
    err({{get = q, value = 1}}, nil, pre .. "case 1: value goes only with put)")
    err({{get = q, put = q, value = 1}}, nil,
        pre .. "case 1: get = queue or put = queue expected (one of them))")
    err({{}}, nil,
        pre .. "case 1: get = queue or put = queue expected (one of them))")
    err({{get = q, timeout = 1}}, nil, pre .. "case 1: unknown field 'timeout')")
    err({{get = q}}, -1,
        "bad argument #2 to 'aio.select' (seconds must be >= 0, got -1.0)")
    local co = coroutine.wrap(function() return aio.select{{get = q}} end)
    assert.has_error(co, "aio.select: not inside a luaio task (a plain "
      .. "coroutine, the main thread or a C callback cannot wait)")
  end)
end)
