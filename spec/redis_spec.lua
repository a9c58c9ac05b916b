local aio = require "luaio"
local redis = require "luaio.redis"
local server = require "spec.helpers.redis"

local function fails(kind, fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "no error")
  assert.is_true(aio.is_error(e, kind), tostring(e))
  return e
end

-- A script that keeps the server busy for s seconds.
local function busy(s)
  return ("local t = redis.call('TIME') while true do "
    .. "local n = redis.call('TIME') if (n[1] - t[1]) * 1000000 + n[2] "
    .. "- t[2] >= %d then break end end"):format(s * 1000000)
end

local argfails = server.argfails

-- Wait (up to a minute) until the server counts n clients blocked in a
-- blocking command, asking on connection c; returns the last count.
local function until_blocked(c, n)
  local blocked
  for _ = 1, 6000 do
    local info = c:call("INFO", "clients")
    blocked = tonumber(info:match("blocked_clients:(%d+)"))
    if blocked == n then break end
    aio.sleep(0.01)
  end
  return blocked
end

describe("luaio.redis", function()
  local srv, r
  local start, stop, connect, disconnect =
    server.hooks(function(s, c) srv, r = s, c end)
  setup(start)
  teardown(stop)
  before_each(connect)
  after_each(disconnect)

  describe("redis.connect", function()
    it("connects and names itself by URL", function()
      assert.are.equal(srv.bare_url, r.url)
      assert.matches("redis connection", tostring(r))
      local n <close> = redis.connect(srv.url:gsub("/0$", "/3"),
                                      {name = "worker-1", timeout = 60})
      n:call("SET", "db3", "x")
      assert.are.equal("worker-1", n:call("CLIENT", "GETNAME"))
      assert.is_nil(r:call("GET", "db3"))
    end)

    it("fails clearly when refused", function()
      local e = fails("io", redis.connect, "redis://127.0.0.1:1/0")
      assert.are.equal("ECONNREFUSED", e.code)
      assert.are.equal("redis://127.0.0.1:1/0", e.url)
      assert.matches("redis://127.0.0.1:1/0", tostring(e))
    end)

    it("rejects bad input", function()
      argfails("#1 to 'redis.connect' %(string expected", redis.connect, nil)
      argfails("redis:// URL expected", redis.connect, "http://x:1")
      argfails("TLS", redis.connect, "rediss://x:1")
      argfails("bad port", redis.connect, "redis://x:99999/0")
      argfails("bad port", redis.connect, "redis://x:1x/0")
      argfails("host expected", redis.connect, "redis://:1/0")
      argfails("bad database", redis.connect, "redis://x:1/abc")
      argfails("password expected", redis.connect, "redis://pw@x:1/0")
      argfails("NUL", redis.connect, "redis://x\0:1")
      argfails("#2 to 'redis.connect' %(table expected", redis.connect,
               srv.url, 5)
      argfails("timeout must be", redis.connect, srv.url, {timeout = -1})
      argfails("name must be", redis.connect, srv.url, {name = 1})
      argfails("#2 to 'redis.connect' %(name contains a NUL", redis.connect,
               srv.url, {name = "a\0b"})
      fails("redis", redis.connect, srv.url, {name = "has space"})
    end)
  end)

  describe("r:call", function()
    it("maps every reply type", function()
      assert.are.equal("OK", r:call("SET", "s", "v"))        -- status
      assert.are.equal("PONG", r:call("PING"))
      assert.are.equal("v", r:call("GET", "s"))               -- bulk
      assert.is_nil(r:call("GET", "missing"))                 -- nil
      assert.are.equal(5, r:call("INCRBY", "n", 5))          -- integer
      assert.are.equal("integer", math.type(r:call("INCR", "n")))
      local t = r:call("MGET", "s", "missing", "n")           -- array
      assert.are.same({"v", redis.null, "6"}, t)
      assert.are.same({}, r:call("LRANGE", "nolist", 0, -1))
      r:call("RPUSH", "l", "a", "b")
      local nested = r:call("EVAL", "return {1, {'x', {2}}, 'y'}", 0)
      assert.are.same({1, {"x", {2}}, "y"}, nested)
    end)

    it("is binary-safe and takes numbers", function()
      local blob = "a\0b\r\n" .. string.rep("\255", 1000)
      r:call("SET", "bin\0key", blob)
      assert.are.equal(blob, r:call("GET", "bin\0key"))
      r:call("SET", "num", 1.5)
      assert.are.equal("1.5", r:call("GET", "num"))
      r:call("SET", "int", 42)
      assert.are.equal("42", r:call("GET", "int"))
      local many = {}
      for i = 1, 40 do many[#many + 1] = "k" .. i; many[#many + 1] = i end
      r:call("MSET", table.unpack(many))
      assert.are.equal("40", r:call("GET", "k40"))
    end)

    it("raises error replies as errors of kind redis", function()
      r:call("SET", "s", "v")
      local e = fails("redis", r.call, r, "LPUSH", "s", "x")
      assert.are.equal("WRONGTYPE", e.code)
      assert.matches("^Operation against a key", e.message)
      assert.matches("^WRONGTYPE Operation", e.reply)
      e = fails("redis", r.call, r, "NOSUCHCOMMAND")
      assert.are.equal("ERR", e.code)
      -- an error inside an array is a value, not raised
      r:call("MULTI")
      r:call("INCR", "s")
      r:call("SET", "t", "1")
      local res = r:call("EXEC")
      assert.is_true(aio.is_error(res[1], "redis"))
      assert.are.equal("OK", res[2])
      -- the connection goes on
      assert.are.equal("PONG", r:call("PING"))
    end)

    it("pipelines 1,000 concurrent tasks in order", function()
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = aio.spawn(function()
          r:call("SET", "k" .. i, i)
          return r:call("INCR", "counter"), r:call("GET", "k" .. i)
        end)
      end
      local seen = {}
      for i = 1, 1000 do
        local n, v = tasks[i]:await()
        assert.are.equal(tostring(i), v)
        assert.is_nil(seen[n])
        seen[n] = true
      end
      assert.are.equal("1000", r:call("GET", "counter"))
      local clients = r:call("INFO", "clients")
      assert.matches("connected_clients:1\r\n", clients)
    end)

    it("writes the commands of one loop turn together", function()
      r:call("CONFIG", "RESETSTAT")
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = aio.spawn(function() return r:call("SET", "w" .. i, i) end)
      end
      for i = 1, 1000 do tasks[i]:await() end
      local info = r:call("INFO", "stats")
      local reads = tonumber(info:match("total_reads_processed:(%d+)"))
      assert.is_true(reads < 100, "the server read " .. reads .. " times")
    end)

    it("consumes a cancelled task's reply: the connection stays in step",
       function()
      r:call("SET", "a", "A")
      r:call("SET", "b", "B")
      for round = 1, 20 do
        local t = aio.spawn(function()
          return r:call("EVAL", "local x = 0 for i = 1, 20000 do x = x + i "
                        .. "end return redis.call('GET', 'a')", 0)
        end)
        aio.sleep(0)                         -- the command is sent
        t:cancel()
        assert.is_true(aio.is_cancelled(select(2, pcall(t.await, t))))
        assert.are.equal("B", r:call("GET", "b"), "round " .. round)
      end
      -- cancelled before it was even written
      local t = aio.spawn(function() return r:call("GET", "a") end)
      t:cancel()
      pcall(t.await, t)
      assert.are.equal("B", r:call("GET", "b"))
    end)

    it("times out with a timeout error naming the URL", function()
      -- The timeout also bounds the connect's PING (and the reconnect's
      -- below): 1.5 s, not 0.2, for a loaded machine. The script outlasts
      -- it by 2.5 s, since a loop stalled past both the deadline and the
      -- reply reads the reply first; and it ends before the 5 s after
      -- which the server would answer BUSY to r's PING below.
      local slow <close> = redis.connect(srv.url, {timeout = 1.5})
      local e = fails("timeout", slow.call, slow, "EVAL", busy(4), 0)
      assert.are.equal(srv.bare_url, e.url)
      assert.matches(srv.bare_url, tostring(e))
      -- the link was dropped and the next command reconnects (once the
      -- server is done with the script: r waits for that, where a fixed
      -- sleep can end first on a loaded machine)
      assert.are.equal("PONG", r:call("PING"))
      assert.are.equal("PONG", slow:call("PING"))
    end)

    it("works under aio.timeout: a cancellation", function()
      local ok, e = pcall(aio.timeout, 0.1, function()
        return r:call("BLPOP", "never", 0)
      end)
      assert.is_false(ok)
      assert.is_true(aio.is_timeout(e))
      assert.are.equal("PONG", r:call("PING"))
    end)

    it("rejects bad input", function()
      argfails("#1 to 'r:call' %(redis connection expected",
               r.call, {}, "GET")
      argfails("#2 to 'r:call' %(command expected", r.call, r)
      argfails("#3 to 'r:call' %(string or number expected, got table",
               r.call, r, "GET", {})
      argfails("#3 to 'r:call' %(string or number expected, got nil",
               r.call, r, "SET", nil, "x")
      argfails("use r:subscribe", r.call, r, "SUBSCRIBE", "x")
      argfails("use r:subscribe", r.call, r, "monitor")
      local co = coroutine.wrap(function() return r:call("PING") end)
      argfails("not inside a luaio task", co)
    end)
  end)

  describe("r:close", function()
    it("wakes every waiting task with a clear error", function()
      local c = redis.connect(srv.url)
      local waiting = {}
      for i = 1, 5 do
        waiting[i] = aio.spawn(function()
          return c:call("BLPOP", "nothing" .. i, 0)
        end)
      end
      local plain = aio.spawn(function() return c:call("PING") end)
      -- the five are blocked on the server and plain was answered (not
      -- a 0.05 s sleep, after which either may still be on its way)
      assert.are.equal(5, until_blocked(r, 5))
      assert.are.equal("PONG", plain:await())
      local last = aio.spawn(function() return c:call("PING") end)
      aio.sleep(0)                           -- sent, not yet answered
      c:close()
      assert.is_false((pcall(last.await, last)))
      for i = 1, 5 do
        local ok, e = pcall(waiting[i].await, waiting[i])
        assert.is_false(ok)
        assert.matches("connection closed", tostring(e))
      end
      local e = fails("io", c.call, c, "PING")
      assert.matches("connection closed", tostring(e))
      c:close()                              -- twice is fine
      assert.is_true(c.closed)
    end)

    it("closes on <close>", function()
      local keep
      do
        local c <close> = redis.connect(srv.url)
        keep = c
      end
      assert.is_true(keep.closed)
    end)
  end)

  describe("blocking commands", function()
    it("run on their own connections, not holding up the others",
       function()
      -- Each is seen blocked on the server before the next command (not
      -- after a 0.05 s sleep, which may end before it is even sent); the
      -- timeouts (60 s) are for a hang only.
      local got = aio.spawn(function()
        return r:call("BLMOVE", "src", "dst", "RIGHT", "LEFT", 60)
      end)
      assert.are.equal(1, until_blocked(r, 1))   -- INFO was not stuck
      assert.are.equal("PONG", r:call("PING"))   -- not stuck behind it
      r:call("LPUSH", "src", "job")
      assert.are.equal("job", got:await())
      assert.are.same({"job"}, r:call("LRANGE", "dst", 0, -1))
      r:call("XGROUP", "CREATE", "st", "g", "$", "MKSTREAM")
      local reader = aio.spawn(function()
        return r:call("XREADGROUP", "GROUP", "g", "c", "BLOCK", 60000,
                      "STREAMS", "st", ">")
      end)
      assert.are.equal(1, until_blocked(r, 1))
      r:call("XADD", "st", "*", "f", "v")
      local res = reader:await()
      assert.are.equal("st", res[1][1])
      assert.are.same({"f", "v"}, res[1][2][1][2])
    end)

    it("can be cancelled: the item is not taken afterwards", function()
      local t = aio.spawn(function() return r:call("BLPOP", "q", 0) end)
      -- cancelled once the server has it blocked (after a fixed sleep it
      -- could still be unsent, and the test would show nothing)
      assert.are.equal(1, until_blocked(r, 1))
      t:cancel()
      pcall(t.await, t)
      -- the server sees the blocked connection's close on its own time:
      -- push once it has (not after a guess), or it may still serve it
      assert.are.equal(0, until_blocked(r, 0))
      r:call("RPUSH", "q", "x")
      aio.sleep(0.05)
      assert.are.equal(1, r:call("LLEN", "q"))
    end)
  end)

  describe("r:eval", function()
    it("runs scripts by SHA1 and reloads them after SCRIPT FLUSH",
       function()
      local s = "return {KEYS[1], ARGV[1], #KEYS, #ARGV}"
      assert.are.same({"k", "a", 1, 2}, r:eval(s, {"k"}, {"a", "b"}))
      assert.are.same({"k", "a", 1, 2}, r:eval(s, {"k"}, {"a", "b"}))
      r:call("SCRIPT", "FLUSH")
      assert.are.same({"k", "a", 1, 2}, r:eval(s, {"k"}, {"a", "b"}))
      assert.are.equal(7, r:eval("return 7"))
      fails("redis", r.eval, r, "return redis.call('NOPE')")
    end)

    it("rejects bad input", function()
      argfails("#2 to 'r:eval' %(string expected", r.eval, r, nil)
      argfails("#3 to 'r:eval' %(table expected", r.eval, r, "return 1", 1)
      argfails("#4 to 'r:eval' %(table expected", r.eval, r, "return 1",
               {}, "x")
      argfails("#3 to 'r:eval' %(element 1: string or number", r.eval, r,
               "return 1", {{}})
    end)
  end)

  describe("pub/sub", function()
    it("delivers messages to subscribe and psubscribe iterators",
       function()
      local sub = r:subscribe("news", "sport")
      local psub <close> = r:psubscribe("n*")
      assert.are.equal(2, r:call("PUBLISH", "news", "hello\0world"))
      r:call("PUBLISH", "sport", "goal")
      r:call("PUBLISH", "other", "ignored")
      local ch, msg = sub:next()
      assert.are.equal("news", ch)
      assert.are.equal("hello\0world", msg)
      local got = {}
      for c, m in sub do got[#got + 1] = c .. "=" .. m; break end
      assert.are.same({"sport=goal"}, got)
      local c, m, pattern = psub()
      assert.are.same({"news", "hello\0world", "n*"}, {c, m, pattern})
      sub:close()
      assert.is_nil(sub:next())
    end)

    it("ends a waiting iterator when closed; errors when the "
       .. "connection closes", function()
      local sub = r:subscribe("x")
      local got = aio.event()
      local t = aio.spawn(function()
        local n = 0
        for _ in sub do n = n + 1; got:set() end
        return n
      end)
      r:call("PUBLISH", "x", "1")
      -- closed once the message is in and t waits for the next one (the
      -- PUBLISH reply may come before the message: a 0.02 s sleep after
      -- it could close the subscription with the message still on its way)
      got:wait()
      sub:close()
      assert.are.equal(1, t:await())
      local c = redis.connect(srv.url)
      local s2 = c:subscribe("y")
      local t2 = aio.spawn(function() return s2:next() end)
      aio.sleep(0.02)
      c:close()
      local ok, e = pcall(t2.await, t2)
      assert.is_false(ok)
      assert.matches("connection closed", tostring(e))
    end)

    it("rejects bad input", function()
      argfails("#2 to 'r:subscribe' %(command expected", r.subscribe, r)
      argfails("#2 to 'r:psubscribe' %(string or number expected",
               r.psubscribe, r, {})
      argfails("#1 to 'sub:next' %(redis subscription expected",
               r:subscribe("z").next, {})
    end)
  end)

  describe("failures", function()
    it("reports a server killed mid-command and reconnects after a "
       .. "restart", function()
      local c <close> = redis.connect(srv.url)
      c:call("SET", "before", "1")
      -- In this order, each confirmed before the next: a script running
      -- first would hold off the subscription and the BLPOP until it ends.
      local sub = c:subscribe("news")
      local listener = aio.spawn(function() return sub:next() end)
      local t = aio.spawn(function() return c:call("BLPOP", "never", 0) end)
      local blocked
      for _ = 1, 3000 do
        blocked = c:call("INFO", "clients"):match("blocked_clients:(%d+)")
        if blocked == "1" then break end
        aio.sleep(0.01)
      end
      assert.are.equal("1", blocked)
      -- A script far longer than any delay before the kill: it cannot
      -- answer, whether the kill finds it sent, running or not yet read.
      local t2 = aio.spawn(function()
        return c:call("EVAL", busy(120), 0)
      end)
      aio.sleep(0.1)
      srv:kill()
      local lok, le = pcall(listener.await, listener)
      assert.is_false(lok)
      assert.is_true(aio.is_error(le, "io"), tostring(le))
      assert.are.equal(srv.bare_url, le.url)
      assert.is_false((pcall(sub.next, sub)))  -- still the error
      sub:close()
      local ok, e = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(aio.is_error(e, "io"), tostring(e))
      assert.are.equal(srv.bare_url, e.url)
      ok, e = pcall(t2.await, t2)
      assert.is_false(ok)
      assert.is_true(aio.is_error(e, "io"), tostring(e))
      e = fails("io", c.call, c, "PING")
      assert.matches(srv.bare_url, tostring(e))
      srv:restart()
      local pong
      for _ = 1, 1200 do                   -- up to a minute, past the backoff
        ok, pong = pcall(c.call, c, "PING")
        if ok then break end
        aio.sleep(0.05)
      end
      assert.are.equal("PONG", pong)
      r = redis.connect(srv.url)
    end)

    it("reports an authentication failure", function()
      local auth = server.start({password = "s3cret"})
      local ok, err = pcall(function()
        local good <close> = redis.connect(auth.url)
        assert.are.equal("PONG", good:call("PING"))
        local e = fails("redis", redis.connect,
          (auth.url:gsub("s3cret", "wrong")))
        assert.matches("WRONGPASS", tostring(e.code))
        assert.are.equal(auth.bare_url, e.url)
        e = fails("redis", redis.connect, auth.bare_url)
        assert.matches("NOAUTH", tostring(e.code))
      end)
      auth:stop()
      assert(ok, err)
    end)
  end)
end)
