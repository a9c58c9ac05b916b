---@meta luaio.redis
-- LuaLS annotations for `require "luaio.redis"` (see lua/types/luaio.lua).

---@class luaio.redis.ConnectOptions
---@field timeout? number seconds each command may take
---@field name? string sent as CLIENT SETNAME

---@class luaio.redis.QueueOptions
---@field visibility? number seconds an item taken may stay undone (30)
---@field poll? number seconds between looks for expired leases (1)

---A connection: commands from many tasks are pipelined on it; blocking
---commands and subscriptions get connections of their own.
---@class luaio.RedisConnection
---@field url string the URL without its password
---@field closed boolean
local RedisConnection = {}

---@async
---Sends one command (words are strings or numbers) and returns its reply.
---@param command string
---@param ... string|number
---@return any
function RedisConnection:call(command, ...) end

---@async
---Runs a server-side Lua script by its SHA1 (loaded on first use).
---@param script string
---@param keys? (string|number)[]
---@param args? (string|number)[]
---@return any
function RedisConnection:eval(script, keys, args) end

---@async
---Subscribes to channels on a connection of its own.
---@param channel string
---@param ... string
---@return luaio.RedisSubscription
function RedisConnection:subscribe(channel, ...) end

---@async
---Subscribes to patterns on a connection of its own.
---@param pattern string
---@param ... string
---@return luaio.RedisSubscription
function RedisConnection:psubscribe(pattern, ...) end

---Closes every connection; waiting commands fail with "connection closed".
function RedisConnection:close() end

---Messages of a subscription; `for channel, message in sub do`.
---@class luaio.RedisSubscription
local RedisSubscription = {}

---@async
---Waits for the next message; nil once closed.
---@return string? channel
---@return string? message
---@return string? pattern
function RedisSubscription:next() end

---Ends the subscription and its connection.
function RedisSubscription:close() end

---A reliable queue in Redis with the methods of aio.queue.
---@class luaio.RedisQueue
local RedisQueue = {}

---@async
---@param item string
function RedisQueue:put(item) end

---@async
---Waits for an item; nil, "closed" once closed and drained.
---@return string? item
---@return string receipt
function RedisQueue:get() end

---@async
---Marks an item done; false if it already was.
---@param receipt? string
---@return boolean
function RedisQueue:task_done(receipt) end

---@async
---Waits until every item put is done.
function RedisQueue:join() end

---@async
function RedisQueue:close() end

---@async
---@return boolean
function RedisQueue:closed() end

---@async
---@return integer
function RedisQueue:size() end

---@async
---Deletes the queue's keys.
function RedisQueue:destroy() end

---A set in Redis, for de-duplication across processes.
---@class luaio.RedisSet
local RedisSet = {}

---@async
---Adds member; returns whether it was new.
---@param member string|number
---@return boolean
function RedisSet:add(member) end

---@async
---@param member string|number
---@return boolean
function RedisSet:has(member) end

---@async
---@param member string|number
---@return boolean
function RedisSet:remove(member) end

---@async
---@return integer
function RedisSet:size() end

---A sliding-window rate limiter shared through Redis.
---@class luaio.RedisRateLimiter
local RedisRateLimiter = {}

---@async
---Waits for a slot.
function RedisRateLimiter:acquire() end

---@async
---Takes a slot if one is free now.
---@return boolean
function RedisRateLimiter:try_acquire() end

---A Redis client on hiredis and luaio's loop, and distributed primitives.
---@class luaio.redis
---@field null lightuserdata a nil inside an array reply
local redis = {}

---@async
---Connects (and authenticates, selects the database, PINGs).
---@param url string redis://[[user]:password@]host[:port][/db]
---@param opts? luaio.redis.ConnectOptions
---@return luaio.RedisConnection
function redis.connect(url, opts) end

---@async
---@param r luaio.RedisConnection
---@param name string
---@param opts? luaio.redis.QueueOptions
---@return luaio.RedisQueue
function redis.queue(r, name, opts) end

---@async
---@param r luaio.RedisConnection
---@param name string
---@return luaio.RedisSet
function redis.set(r, name) end

---@async
---@param r luaio.RedisConnection
---@param key string
---@param n integer
---@param per number seconds
---@param burst? integer|{burst: integer} a token bucket instead
---@return luaio.RedisRateLimiter
function redis.rate_limiter(r, key, n, per, burst) end

return redis
