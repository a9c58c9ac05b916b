-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.redis_kit: the Lua part of luaio.redis, on top of r:call:
-- redis.connect, r:eval (EVALSHA with a cache of SHA1s), and the
-- distributed queue, set and rate limiter. luaio.redis installs it.
local aio = require "luaio"

local M = {}

-- Argument errors point at the user's call: level 3 from a function the
-- user called (argerr, the function, its caller), 4 through a helper.
local function argerr(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level or 3)
end

local function check(n, fname, v, want)
  if type(v) ~= want then
    argerr(n, fname, ("%s expected, got %s"):format(want,
      v == nil and "no value" or type(v)), 4)
  end
end

-- Raise a luaio.Error from r:call again, placed at the line that called
-- the function of this file the user called (level 3 from here).
local function reraise(e)
  if aio.is_error(e) then
    local info = debug and debug.getinfo and debug.getinfo(3, "Sl")
    e.where = info and info.currentline > 0
              and ("%s:%d: "):format(info.short_src, info.currentline) or nil
  end
  error(e, 0)
end

local function is_redis_error(e, code)
  return aio.is_error(e, "redis") and e.code == code
end

-- ---- r:eval ---------------------------------------------------------------

-- The SHA1 of each script, per connection, from SCRIPT LOAD: EVALSHA
-- sends the 40-byte digest instead of the script; NOSCRIPT (a restarted
-- or flushed server) loads it again.
local shas = setmetatable({}, {__mode = "k"})

local function words(fname, keys, args)
  local out = {#keys}
  for i, list in ipairs({keys, args}) do
    for j, v in ipairs(list) do
      local t = type(v)
      if t ~= "string" and t ~= "number" then
        argerr(i + 2, fname, ("element %d: string or number expected, "
          .. "got %s"):format(j, t), 4)
      end
      out[#out + 1] = v
    end
  end
  return out
end

local function load_script(r, script)
  local ok, sha = pcall(r.call, r, "SCRIPT", "LOAD", script)
  if not ok then return nil, sha end
  shas[r] = shas[r] or {}
  shas[r][script] = sha
  return sha
end

local function eval(r, script, keys, args)
  check(2, "r:eval", script, "string")
  if keys ~= nil then check(3, "r:eval", keys, "table") end
  if args ~= nil then check(4, "r:eval", args, "table") end
  local w = words("r:eval", keys or {}, args or {})
  local sha, ok, res = shas[r] and shas[r][script]
  if sha then
    ok, res = pcall(r.call, r, "EVALSHA", sha, table.unpack(w))
    if ok then return res end
    if not is_redis_error(res, "NOSCRIPT") then reraise(res) end
  end
  sha, res = load_script(r, script)
  if not sha then reraise(res) end
  ok, res = pcall(r.call, r, "EVALSHA", sha, table.unpack(w))
  if not ok then reraise(res) end
  return res
end

-- ---- redis.queue ----------------------------------------------------------

local function check_conn(n, fname, r)
  if type(r) ~= "userdata" or type(r.call) ~= "function" then
    argerr(n, fname, "redis connection expected, got " .. type(r), 4)
  end
end

-- Items travel as "<id>:<item>" so that a done or re-delivered item is
-- told from an equal one. Keys: name (the items), name:processing (taken,
-- not done), name:leases (zset: when each taken item is due back),
-- name:ids, name:unfinished (put, not done), name:closed.
local PUT = [[
if redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local id = redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[1], id .. ':' .. ARGV[1])
return redis.call('INCR', KEYS[3])
]]

-- Taken items past their lease go back to the head of the queue; an
-- item taken without a lease (its worker died between BLMOVE and the
-- lease) gets one now.
local REAP = [[
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local n = 0
for _, it in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local due = redis.call('ZSCORE', KEYS[3], it)
  if not due then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), it)
  elseif tonumber(due) <= now then
    redis.call('LREM', KEYS[2], 1, it)
    redis.call('ZREM', KEYS[3], it)
    redis.call('RPUSH', KEYS[1], it)
    n = n + 1
  end
end
return n
]]

local LEASE = [[
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return 1
]]

local DONE = [[
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DECR', KEYS[3])
return 1
]]

local Queue = {__name = "luaio.RedisQueue"}
Queue.__index = Queue

local function closed_error()
  error(aio.error("closed", "queue is closed"), 2)
end

function Queue:put(item)
  check(2, "q:put", item, "string")
  local n = self.r:eval(PUT, {self.k.items, self.k.ids, self.k.unfinished,
                              self.k.processing, self.k.closed}, {item})
  if n < 0 then closed_error() end
end

local function reap(self)
  return self.r:eval(REAP, {self.k.items, self.k.processing, self.k.leases},
                     {self.visibility})
end

-- q:get() -> item, receipt; nil, "closed" once closed and drained.
-- Leases are looked at once per poll interval; an item is taken with
-- LMOVE on the shared connection when there is one, and only an empty
-- queue waits in BLMOVE (on a pooled connection).
function Queue:get()
  local r, k = self.r, self.k
  while true do
    if aio.now() >= self.next_reap then
      reap(self)
      self.next_reap = aio.now() + self.poll
    end
    local env = r:call("LMOVE", k.items, k.processing, "RIGHT", "LEFT")
              or r:call("BLMOVE", k.items, k.processing, "RIGHT", "LEFT",
                        self.poll)
    if env then
      r:eval(LEASE, {k.leases}, {self.visibility, env})
      self.taken[#self.taken + 1] = env
      return env:match("^%d+:(.*)$"), env
    end
    if r:call("EXISTS", k.closed) == 1 and r:call("LLEN", k.items) == 0 then
      return nil, "closed"
    end
  end
end

-- q:task_done([receipt]): the item of receipt (by default the oldest
-- this object took and has not marked) is done. Returns false if it was
-- already done or re-delivered to another worker that finished it.
function Queue:task_done(receipt)
  if receipt == nil then
    receipt = table.remove(self.taken, 1)
    if receipt == nil then
      error(aio.error("value", "task_done() called more times than get()"),
            2)
    end
  else
    check(2, "q:task_done", receipt, "string")
    for i, e in ipairs(self.taken) do
      if e == receipt then table.remove(self.taken, i); break end
    end
  end
  local k = self.k
  return self.r:eval(DONE, {k.processing, k.leases, k.unfinished},
                     {receipt}) == 1
end

-- q:join(): waits until every item put (by any process) is done.
function Queue:join()
  while tonumber(self.r:call("GET", self.k.unfinished) or 0) > 0 do
    aio.sleep(self.poll_join)
  end
end

function Queue:close() self.r:call("SET", self.k.closed, "1") end
function Queue:closed() return self.r:call("EXISTS", self.k.closed) == 1 end
function Queue:size() return self.r:call("LLEN", self.k.items) end

-- q:destroy(): deletes every key of the queue.
function Queue:destroy()
  local k = self.k
  self.r:call("DEL", k.items, k.processing, k.leases, k.ids, k.unfinished,
              k.closed)
end

local function seconds(n, fname, opts, name, def)
  local v = opts[name]
  if v == nil then return def end
  if type(v) ~= "number" or not (v > 0) or v > 1e9 then
    argerr(n, fname, name .. " must be a number of seconds > 0", 4)
  end
  return v
end

local function queue(r, name, opts)
  check_conn(1, "redis.queue", r)
  check(2, "redis.queue", name, "string")
  if opts ~= nil then check(3, "redis.queue", opts, "table") end
  opts = opts or {}
  local vis = seconds(3, "redis.queue", opts, "visibility", 30)
  local k = {items = name, processing = name .. ":processing",
             leases = name .. ":leases", ids = name .. ":ids",
             unfinished = name .. ":unfinished", closed = name .. ":closed"}
  return setmetatable({r = r, k = k, name = name, taken = {}, next_reap = 0,
    visibility = math.ceil(vis * 1000),
    poll = seconds(3, "redis.queue", opts, "poll", 1),
    poll_join = 0.05}, Queue)
end

-- ---- redis.set ------------------------------------------------------------

local Set = {__name = "luaio.RedisSet"}
Set.__index = Set

local function member(fname, v)
  if type(v) ~= "string" and type(v) ~= "number" then
    argerr(2, fname, "string or number expected, got " .. type(v), 4)
  end
  return v
end

function Set:add(v)
  return self.r:call("SADD", self.key, member("s:add", v)) == 1
end
function Set:has(v)
  return self.r:call("SISMEMBER", self.key, member("s:has", v)) == 1
end
function Set:remove(v)
  return self.r:call("SREM", self.key, member("s:remove", v)) == 1
end
function Set:size() return self.r:call("SCARD", self.key) end

local function set(r, name)
  check_conn(1, "redis.set", r)
  check(2, "redis.set", name, "string")
  return setmetatable({r = r, key = name}, Set)
end

-- ---- redis.rate_limiter ---------------------------------------------------

-- A sorted set of acquisition times (server clock, microseconds): the
-- times of the last window are kept; an acquisition is added only while
-- fewer than n are in (now - per, now], so no span of per holds more
-- than n. Returns 0 (acquired) or the microseconds until the oldest
-- leaves the window.
local ACQUIRE = [[
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local per, n = tonumber(ARGV[2]), tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
if redis.call('ZCARD', KEYS[1]) < n then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. redis.call('INCR', KEYS[2]))
  redis.call('PEXPIRE', KEYS[1], math.ceil(per / 1000))
  redis.call('PEXPIRE', KEYS[2], math.ceil(per / 1000))
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) + per - now)
]]

-- The token bucket of a limiter with a burst: a hash of the tokens left
-- and when they were counted; n / per tokens a microsecond, up to burst.
local BUCKET = [[
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local n, per, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(h[1]) or burst, tonumber(h[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * n / per)
local wait = 0
if tokens >= 1 then tokens = tokens - 1
else wait = math.max(1, math.ceil((1 - tokens) * per / n)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * per / n / 1000) + 1000)
return wait
]]

local Limiter = {__name = "luaio.RedisRateLimiter"}
Limiter.__index = Limiter

function Limiter:try_acquire()
  return self.r:eval(self.script, self.keys, self.args) == 0
end

function Limiter:acquire()
  while true do
    local wait = self.r:eval(self.script, self.keys, self.args)
    if wait == 0 then return end
    aio.sleep(wait / 1e6)
  end
end

local function check_burst(b)
  if type(b) == "table" then b = b.burst end
  if b ~= nil and (math.type(b) ~= "integer" or b < 1) then
    argerr(5, "redis.rate_limiter", "burst must be a whole number > 0", 4)
  end
  return b
end

local function rate_limiter(r, key, n, per, burst)
  check_conn(1, "redis.rate_limiter", r)
  check(2, "redis.rate_limiter", key, "string")
  if math.type(n) ~= "integer" or n < 1 then
    argerr(3, "redis.rate_limiter", "n must be a whole number > 0")
  end
  if type(per) ~= "number" or not (per > 0) or per > 1e9 then
    argerr(4, "redis.rate_limiter", "per must be a number of seconds > 0")
  end
  burst = check_burst(burst)
  local lim = {r = r, keys = {key, key .. ":seq"}, script = ACQUIRE,
               args = {n, math.ceil(per * 1e6)}}
  if burst then
    lim.keys, lim.script = {key}, BUCKET
    lim.args[3] = burst
  end
  return setmetatable(lim, Limiter)
end

-- ---- installing -----------------------------------------------------------

-- The classes, which luaio.redis registers by name as C classes are.
M.classes = {Queue, Set, Limiter}

function M.install(redis, methods, open)
  methods.eval = eval
  -- redis.connect(url [, opts]) -> r, connected (PING answered).
  function redis.connect(url, opts)
    local made, r = pcall(open, url, opts)
    if not made then      -- an argument error: placed at the user's line
      error((tostring(r):gsub("^luaio/redis_kit%.lua:%d+: ", "")), 2)
    end
    local ok, err = pcall(r.call, r, "PING")
    if not ok then r:close(); error(err, 0) end
    return r
  end
  redis.queue = queue
  redis.set = set
  redis.rate_limiter = rate_limiter
end

return M
