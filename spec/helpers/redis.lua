-- Starts a real redis-server on 127.0.0.1 (random port, temporary
-- directory, no persistence), for the luaio.redis specs, examples and
-- benchmark; stop() kills it by PID and removes its folder.
--   local srv = require("spec.helpers.redis").start()
--   redis.connect(srv.url) ... srv:kill() srv:restart() ... srv:stop()
local aio = require "luaio"
local redis = require "luaio.redis"
local helpers = require "spec.helpers"
local assert = require "luassert"

local M = {}

-- A port from 20000 to 59999 from /dev/urandom (see nginx.lua: seeded
-- math.random repeats under valgrind).
local function random_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local hi, lo = f:read(2):byte(1, 2)
  f:close()
  return 20000 + (hi * 256 + lo) % 40000
end

local function alive(pid)
  return helpers.sh("kill -0 " .. pid .. " 2>/dev/null") == 0
end

-- Our server answers, not another one on the same port (another spec
-- file's, started at the same time on the same random port: ours then
-- fails to bind and exits, but a probe can reach the other first).
local function ours(r, pid)
  local info = r:call("INFO", "server")
  return tonumber(info:match("process_id:(%d+)")) == pid
end

-- Start redis-server on self.port; true once it answers PING.
function M:launch()
  local pass = self.password and (" --requirepass " .. self.password) or ""
  self.pid = helpers.background(("redis-server --port %d --bind 127.0.0.1 "
    .. "--dir %s --save '' --appendonly no%s"):format(self.port, self.dir,
    pass), {log = self.dir .. "/redis.log", track = false})
  -- Stopped with the block that started the server, also after a
  -- restart under another PID in a later test.
  require("luaio.test").track(self)
  for _ = 1, 1200 do                    -- a loaded machine: up to a minute
    local ok, mine = pcall(function()
      local r <close> = redis.connect(self.url, {timeout = 1})
      return ours(r, self.pid)
    end)
    if ok then return mine end
    if not alive(self.pid) then return false end
    aio.sleep(0.05)
  end
  return false
end

-- opts.password: start with requirepass; srv.url then carries it.
function M.start(opts)
  opts = opts or {}
  local dir = assert(io.popen("mktemp -d")):read("l")
  local self = setmetatable({dir = dir, password = opts.password},
                            {__index = M})
  for _ = 1, 20 do
    self.port = random_port()
    local auth = opts.password and (":" .. opts.password .. "@") or ""
    self.url = ("redis://%s127.0.0.1:%d/0"):format(auth, self.port)
    self.bare_url = ("redis://127.0.0.1:%d/0"):format(self.port)
    if self:launch() then return self end
    self:kill()
  end
  error("redis-server did not start: " .. dir)
end

-- Stop the server now (SIGKILL: the server "dies"), waiting for it.
function M:kill(sig)
  if not self.pid then return end
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "KILL", self.pid))
  for _ = 1, 100 do
    if not alive(self.pid) then break end
    aio.sleep(0.02)
  end
  self.pid = nil
end

-- Start it again on the same port (after kill).
function M:restart()
  assert(self:launch(), "redis-server did not restart")
end

function M:stop()
  self:kill("TERM")
  os.execute("rm -rf " .. self.dir)
end

-- The hooks of a describe block (busted's setup, teardown, before_each,
-- after_each, in that order): one server for the block, and per test a
-- fresh connection to a flushed database, closed after it (no task may
-- be left running). set(srv, r) hands them to the spec's locals.
function M.hooks(set)
  local srv, r
  return function() srv = M.start(); set(srv, nil) end,
    function() srv:stop() end,
    function()
      r = redis.connect(srv.url)
      r:call("FLUSHALL")
      set(srv, r)
    end,
    function()
      r:close()
      r = nil
      set(srv, nil)
      collectgarbage()
      assert.are.equal(1, #aio.tasks(), "tasks left running")
    end
end

-- fn(...) raises an error whose text matches pattern.
function M.argfails(pattern, fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "no error")
  assert.matches(pattern, tostring(e))
end

return M
