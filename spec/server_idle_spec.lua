-- http.serve holding 10,000 idle keep-alive connections (issue 17):
-- all are answered and stay open, a fresh client is still served, each
-- costs little memory, and closing the server, the idle timeout or
-- max_connections end or hold them as they should. The clients live in
-- a child luaio process (spec/helpers/idle_clients.lua), so each process
-- holds about 10,000 descriptors.
local aio = require "luaio"
local http = require "luaio.http"
local proc = require "luaio.proc"
local helpers = require "spec.helpers"
local serve = require "spec.helpers.serve"

-- Under valgrind (the valgrind lane sets LUAIO_VALGRIND=1) the server
-- runs some 30 times slower: 1,000 connections there, 10,000 elsewhere.
local N = os.getenv("LUAIO_VALGRIND") == "1" and 1000 or 10000
-- A memory checker's allocator (LUAIO_MALLOC=system: valgrind, ASan)
-- makes the server's RSS meaningless.
local CHECKED = os.getenv("LUAIO_MALLOC") == "system"

-- The soft and hard limits on open files of this process.
local function nofile()
  for l in io.lines("/proc/self/limits") do
    local soft, hard = l:match("^Max open files%s+(%S+)%s+(%S+)")
    if soft then return tonumber(soft) or math.huge, tonumber(hard) or math.huge end
  end
end

local function rss_kib()
  for l in io.lines("/proc/self/status") do
    local v = l:match("^VmRSS:%s*(%d+)")
    if v then return tonumber(v) end
  end
end

-- Wait (at most a minute) until f() is true.
local function until_true(f)
  for _ = 1, 3000 do
    if f() then return true end
    aio.sleep(0.02)
  end
  return false
end

-- The clients: n connections, `answered` (default n) of them answered
-- when this returns. Commands: see spec/helpers/idle_clients.lua.
local function clients(srv, n, answered)
  local p = proc.spawn{helpers.luaio, "spec/helpers/idle_clients.lua",
    tostring(srv.port), tostring(n), tostring(answered or n),
    stdin = "pipe", stdout = "pipe"}
  local line = aio.timeout(60, p.stdout.readline, p.stdout)
  assert.are.equal("ready " .. n .. " " .. (answered or n), line)
  return p
end

local function ask(p, cmd)
  p.stdin:write(cmd .. "\n")
  return aio.timeout(60, p.stdout.readline, p.stdout)
end

local function quit(p)
  p.stdin:write("quit\n")
  assert.are.same({0}, {aio.wait_for(aio.spawn(p.wait, p), 30)})
end

-- /hold waits until its task is cancelled (held is set meanwhile).
local held
-- Held connections must outlast a slow fill (valgrind, a loaded
-- machine): the default idle_timeout of 5 s would drop the first ones.
-- Each head gets as long (the default header_timeout is 10 s).
local LONG = 300

local function handler(req)
  if req.path == "/hold" then
    held:set()
    aio.sleep(3600)
  end
  return "idle " .. req.path
end

describe("http.serve with " .. N .. " idle keep-alive connections", function()
  -- luaio raised its soft limit to the hard one at start (README); too
  -- low a hard limit makes the test pending, saying so.
  local function too_few_files()
    local soft, hard = nofile()
    if soft >= N + 256 then return false end
    pending(("needs %d open files per process; the hard limit here is "
             .. "%s (ulimit -Hn)"):format(N + 256, hard))
    return true
  end

  after_each(function()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("answers them all, keeps them open and still serves a fresh client", function()
    if too_few_files() then return end
    local srv <close> = http.serve{max_connections = N + 100, idle_timeout = LONG,
                                   header_timeout = LONG, handler = handler}
    serve.raw(srv.port, "GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    collectgarbage()
    collectgarbage()
    local before = rss_kib()
    local p <close> = clients(srv, N)
    assert.are.equal(N, srv:connections())
    collectgarbage()
    collectgarbage()
    local per = (rss_kib() - before) * 1024 / N
    if not CHECKED then
      assert.is_true(per < 16 * 1024, ("%.0f bytes per idle connection"):format(per))
    end
    local fresh = aio.timeout(60, http.get, serve.url(srv, "/fresh"))
    assert.are.equal("idle /fresh", fresh.body)
    assert.is_true(srv:connections() >= N)
    held = aio.event()
    local hold = aio.spawn(pcall, http.get, serve.url(srv, "/hold"))
    held:wait()
    srv:close{grace = 0}       -- ends the idle ones and cancels /hold's task
    assert.are.equal(0, srv:connections())
    assert.is_false(hold:await())        -- its client saw the close
    assert.are.equal("eof " .. N, ask(p, "eof"))
    quit(p)
  end)

  it("closes them all after a short idle_timeout", function()
    if too_few_files() then return end
    local srv <close> = http.serve{idle_timeout = 1, max_connections = N + 100,
                                   header_timeout = LONG, handler = handler}
    local p <close> = clients(srv, N)
    assert.are.equal("eof " .. N, ask(p, "eof"))
    assert.is_true(until_true(function() return srv:connections() == 0 end))
    assert.are.equal("idle /after", http.get(serve.url(srv, "/after")).body)
    quit(p)
  end)

  it("pauses accepting at max_connections and resumes as they go", function()
    if too_few_files() then return end
    local max = N - 40
    local srv <close> = http.serve{max_connections = max, idle_timeout = LONG,
                                   header_timeout = LONG, handler = handler}
    local p <close> = clients(srv, N, max)   -- 40 wait, connected, unaccepted
    assert.are.equal(max, srv:connections())
    assert.are.equal("closed 40", ask(p, "close 40"))
    assert.are.equal("answered " .. N, ask(p, "wait " .. N))
    assert.is_true(until_true(function() return srv:connections() == max end))
    srv:close{grace = 0}
    assert.are.equal("eof " .. (N - 40), ask(p, "eof"))
    quit(p)
  end)
end)

describe("luaio's limit on open files", function()
  it("is raised to the hard limit by the luaio program", function()
    local rc, out = helpers.sh("ulimit -Sn 256; ulimit -Hn; " .. helpers.luaio
      .. [[ -e 'for l in io.lines("/proc/self/limits") do
                  print(l:match("^Max open files%s+(%S+)")) end' | grep .]])
    assert.are.equal(0, rc)
    local hard, soft = out:match("^(%S+)\n(%S+)\n$")
    if hard == "unlimited" then               -- as high as the kernel allows
      assert.is_true(tonumber(soft) > 256, soft)
    else
      assert.are.equal(hard, soft)
    end
  end)

  it("is left alone for an embedder that does not ask (luaio_config)", function()
    local dir = os.getenv("LUAIO_MODULE_DIR") or "build/lua"
    local rc, out = helpers.sh("ulimit -Sn 256; " .. helpers.lua54
      .. " -e \"package.cpath='" .. dir .. "/?.so;'..package.cpath\" -e '"
      .. [[local aio = require "luaio"
           aio.run(aio.sleep, 0)
           for l in io.lines("/proc/self/limits") do
             local s = l:match("^Max open files%s+(%S+)")
             if s then print(s) end
           end']] .. " 2>&1")
    assert.are.equal(0, rc)
    assert.are.equal("256\n", out)
  end)
end)
