local aio = require "luaio"
local redis = require "luaio.redis"
local server = require "spec.helpers.redis"

local argfails = server.argfails

describe("luaio.redis primitives", function()
  local srv, r
  local start, stop, connect, disconnect =
    server.hooks(function(s, c) srv, r = s, c end)
  setup(start)
  teardown(stop)
  before_each(connect)
  after_each(disconnect)

  describe("redis.queue", function()
    it("puts, gets in order, joins and closes like aio.queue", function()
      local q = redis.queue(r, "jobs")
      for i = 1, 5 do q:put("job" .. i) end
      assert.are.equal(5, q:size())
      local got = {}
      local workers = {}
      for w = 1, 2 do
        workers[w] = aio.spawn(function()
          local c <close> = redis.connect(srv.url)
          local wq = redis.queue(c, "jobs", {poll = 0.1})
          while true do
            local item = wq:get()
            if item == nil then return end
            got[#got + 1] = item
            wq:task_done()
          end
        end)
      end
      q:join()
      assert.are.equal(5, #got)
      table.sort(got)
      assert.are.same({"job1", "job2", "job3", "job4", "job5"}, got)
      q:close()
      assert.is_true(q:closed())
      for w = 1, 2 do workers[w]:await() end
      local ok, e = pcall(q.put, q, "late")
      assert.is_false(ok)
      assert.is_true(aio.is_error(e, "closed"))
      assert.are.same({nil, "closed"}, {q:get()})
      q:destroy()
      assert.are.equal(0, r:call("EXISTS", "jobs:closed"))
    end)

    it("re-delivers an item whose worker died after its visibility "
       .. "timeout (at least once)", function()
      local q = redis.queue(r, "rq", {visibility = 1, poll = 0.1})
      q:put("a\0binary")
      local holding = aio.event()
      -- before the worker's get: its lease starts later, so the item can
      -- come back no sooner than 1 s from here, however late this task
      -- runs (a clock started after the cancel, against a 0.3 s lease,
      -- could start with the lease already over on a loaded machine)
      local t0 = aio.now()
      local dead = aio.spawn(function()
        local c <close> = redis.connect(srv.url)
        local wq = redis.queue(c, "rq", {visibility = 1, poll = 0.1})
        wq:get()
        holding:set()
        aio.sleep(60)                        -- "dies" holding the item
      end)
      -- not a fixed 0.1 s: on a loaded machine the worker may not have
      -- taken the item by then, and the test would get it at once
      holding:wait()
      dead:cancel()
      pcall(dead.await, dead)
      local item, receipt = q:get()
      assert.are.equal("a\0binary", item)
      local took = aio.now() - t0              -- lease times are in ms
      assert.is_true(took >= 0.99, ("back after %.3f s"):format(took))
      assert.is_true(q:task_done(receipt))
      assert.is_false(q:task_done(receipt))   -- already done
      q:join()
    end)

    it("shares the work of 3 processes; one killed, nothing is lost",
       function()
      -- three processes starting and 300 items take 6 s of the default
      -- 10 s limit of a test on a loaded machine
      require("luaio.test").timeout(120)
      local helpers = require "spec.helpers"
      local q = redis.queue(r, "work")
      local pids = {}
      for w = 1, 3 do
        pids[w] = helpers.background(("%s spec/helpers/redis_worker.lua %s "
          .. "work w%d"):format(helpers.luaio, srv.url, w))
      end
      -- the items go in once the 12 tasks of the 3 workers wait for them:
      -- a worker still starting when the others had done them all would
      -- have recorded none (the survivors' share is asserted below)
      while tonumber(r:call("GET", "work:ready") or 0) < 12 do
        aio.sleep(0.02)
      end
      for i = 1, 300 do q:put("item" .. i) end
      while r:call("HLEN", "work:records") < 60 do aio.sleep(0.02) end
      os.execute("kill -KILL " .. pids[1])   -- dies holding items
      q:join()                               -- re-delivered, then done
      q:close()
      for w = 2, 3 do
        while helpers.sh("kill -0 " .. pids[w] .. " 2>/dev/null") == 0 do
          aio.sleep(0.05)
        end
      end
      assert.are.equal(300, r:call("HLEN", "work:records"))
      local handled = r:call("HGETALL", "work:handled")
      local twice = 0
      for i = 2, #handled, 2 do
        if tonumber(handled[i]) > 1 then twice = twice + 1 end
      end
      assert.are.equal(600, #handled)        -- every item handled
      assert.is_true(twice <= 4, twice .. " handled twice")
      local by = {}
      local records = r:call("HGETALL", "work:records")
      for i = 2, #records, 2 do by[records[i]] = true end
      assert.is_true(by.w2 and by.w3, "the survivors shared the work")
    end)

    it("rejects bad input", function()
      argfails("#1 to 'redis.queue' %(redis connection expected",
               redis.queue, {}, "x")
      argfails("#2 to 'redis.queue' %(string expected", redis.queue, r, 1)
      argfails("#3 to 'redis.queue' %(table expected", redis.queue, r,
               "x", 1)
      argfails("visibility must be", redis.queue, r, "x",
               {visibility = 0})
      local q = redis.queue(r, "x")
      argfails("#2 to 'q:put' %(string expected", q.put, q, {})
      argfails("#2 to 'q:task_done' %(string expected", q.task_done, q, 1)
      argfails("called more times than get", q.task_done, q)
    end)
  end)

  describe("redis.set", function()
    it("adds, tells whether new, and shares across connections", function()
      local s = redis.set(r, "seen")
      assert.is_true(s:add("https://a.example/"))
      assert.is_false(s:add("https://a.example/"))
      local c <close> = redis.connect(srv.url)
      local s2 = redis.set(c, "seen")
      assert.is_true(s2:has("https://a.example/"))
      assert.is_false(s2:has("b"))
      assert.is_true(s2:add(42))
      assert.are.equal(2, s:size())
      assert.is_true(s:remove(42))
      assert.is_false(s:remove(42))
    end)

    it("rejects bad input", function()
      argfails("#1 to 'redis.set' %(redis connection expected",
               redis.set, nil, "x")
      argfails("#2 to 'redis.set' %(string expected", redis.set, r)
      local s = redis.set(r, "x")
      argfails("#2 to 's:add' %(string or number expected", s.add, s, {})
      argfails("#2 to 's:has' %(string or number expected", s.has, s)
    end)
  end)

  describe("redis.rate_limiter", function()
    it("lets no window of per hold more than n, across connections",
       function()
      local times = {}
      local tasks = {}
      for w = 1, 3 do
        tasks[w] = aio.spawn(function()
          local c <close> = redis.connect(srv.url)
          local lim = redis.rate_limiter(c, "host:a", 3, 1)
          for _ = 1, 4 do
            lim:acquire()
            times[#times + 1] = aio.now()
          end
        end)
      end
      for w = 1, 3 do tasks[w]:await() end
      table.sort(times)
      assert.are.equal(12, #times)
      -- the 4th after any acquisition is at least per later. The
      -- window is kept by the server's clock; these times are taken when
      -- each reply reached its task, late by up to a loop turn on a
      -- loaded machine (longer under valgrind): 0.4 s of slack.
      for i = 4, #times do
        assert.is_true(times[i] - times[i - 3] >= 0.6,
                       ("window %d: %.4f"):format(i, times[i] - times[i - 3]))
      end
      local lim = redis.rate_limiter(r, "host:b", 1, 10)
      assert.is_true(lim:try_acquire())
      assert.is_false(lim:try_acquire())
    end)

    it("is a token bucket with a burst", function()
      -- one every 2 s: the five round trips to the server (SCRIPT LOAD
      -- and four tries) must not take the 2 s of a refill, even on a
      -- loaded machine (0.5 s could)
      local lim = redis.rate_limiter(r, "bucket", 1, 2, 3)
      local t0 = aio.now()
      for _ = 1, 3 do assert.is_true(lim:try_acquire()) end   -- the burst
      assert.is_false(lim:try_acquire())
      lim:acquire()                          -- refills one in 2 s
      assert.is_true(aio.now() - t0 >= 1.5)
      local other = redis.rate_limiter(r, "bucket2", 1, 60, {burst = 2})
      assert.is_true(other:try_acquire())
      assert.is_true(other:try_acquire())
      assert.is_false(other:try_acquire())
    end)

    it("rejects bad input", function()
      argfails("burst must be", redis.rate_limiter, r, "k", 1, 1, 0)
      argfails("burst must be", redis.rate_limiter, r, "k", 1, 1,
               {burst = 1.5})
      argfails("#1 to 'redis.rate_limiter' %(redis connection expected",
               redis.rate_limiter, 1, "k", 1, 1)
      argfails("#2 to 'redis.rate_limiter' %(string expected",
               redis.rate_limiter, r, nil, 1, 1)
      argfails("n must be", redis.rate_limiter, r, "k", 0, 1)
      argfails("n must be", redis.rate_limiter, r, "k", 1.5, 1)
      argfails("per must be", redis.rate_limiter, r, "k", 1, 0)
      argfails("per must be", redis.rate_limiter, r, "k", 1, math.huge)
    end)
  end)
end)
