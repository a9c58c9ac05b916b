-- Shared spec helpers: paths, running the luaio program, temp folders.
local M = {}

M.luaio = os.getenv("LUAIO") or "build/luaio"
if M.luaio:sub(1, 1) ~= "/" then
  M.luaio = os.getenv("PWD") .. "/" .. M.luaio
end

-- The exit status the sanitizer build's checkers (ASan, UBSan, LSan)
-- give a process they caught (ASAN_OPTIONS/UBSAN_OPTIONS exitcode=86):
-- never an expected failure of a child.
M.SANITIZER_RC = 86

-- The stock interpreter, for specs that load the luaio module into it.
-- In the sanitizer build the module needs the ASan runtime loaded first.
M.lua54 = "lua5.4"
if (os.getenv("LUAIO_ASAN_RUNTIME") or "") ~= "" then
  M.lua54 = "LD_PRELOAD=" .. os.getenv("LUAIO_ASAN_RUNTIME") .. " lua5.4"
end

-- Run a shell command; returns its exit status and its stdout. Fails
-- the spec when a sanitizer caught the command (or a child of it).
function M.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. "); echo \"__rc=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  out = out:gsub("__rc=%d+%s*$", "")
  if rc == M.SANITIZER_RC then
    error("a sanitizer caught this command (exit status "
          .. M.SANITIZER_RC .. "; its report is below or on stderr):\n  "
          .. cmd .. "\n" .. out, 2)
  end
  return rc, out
end

-- Start a shell command in the background (stdin from /dev/null, its
-- output to the file opts.log, or dropped); returns its PID. `luaio test`
-- stops it, and what it started, when the block running now ends (the
-- test with its hooks, or the describe block for setup hooks), passed or
-- failed: require("luaio.test").track. opts.track = false leaves that to
-- the caller (a server object that restarts, tracked as an object). A
-- simple command keeps the PID ("prog args").
function M.background(cmd, opts)
  opts = opts or {}
  local rc, out = M.sh(cmd .. " < /dev/null > " .. (opts.log or "/dev/null")
                       .. " 2>&1 & echo $!")
  local pid = rc == 0 and math.tointeger(tonumber(out))
  if not pid then error("could not start in the background: " .. cmd, 2) end
  if opts.track == false then return pid end
  return require("luaio.test").track(pid)
end

-- A server in a child luaio process, for clients that block (curl,
-- Python): src must leave its http.serve server in a local `srv`.
-- Returns its port and a stop function; the child is tracked too.
function M.child_server(src)
  local portfile = os.tmpname()
  local script = M.script(src .. ("\nlocal f = io.open(%q, 'w') "
    .. "f:write(srv.port) f:close()\nrequire('luaio').sleep(60)\n")
    :format(portfile))
  local pid = M.background(M.luaio .. " " .. script)
  local port
  for _ = 1, 2400 do                    -- up to a minute on a loaded box
    local f = io.open(portfile)
    port = f and tonumber(f:read("a"))
    if f then f:close() end
    if port then break end
    require("luaio").sleep(0.025)
  end
  local function stop()
    os.execute("kill " .. pid)
    os.remove(portfile)
    os.remove(script)
  end
  if not port then stop() error("child server did not start", 2) end
  return port, stop
end

-- Write a Lua script to a temp file and return its path.
function M.script(src)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

-- Run `luaio <script> args` for a source string; returns rc, stdout.
function M.run_luaio(src, args)
  local path = M.script(src)
  local rc, out = M.sh(M.luaio .. " " .. path .. " " .. (args or "")
                       .. " 2>&1")
  os.remove(path)
  return rc, out
end

-- A fresh temp folder for each test: returns the before_each and
-- after_each hooks (busted's hook functions exist only in the spec file).
-- set(path) gets the folder before each test; after the test it is
-- removed and no task may be left running.
function M.temp_dir_hooks(set)
  local fs = require "luaio.fs"
  local aio = require "luaio"
  local path
  local function make() path = fs.mkdtemp(); set(path) end
  local function remove()
    os.execute("chmod -R u+rwx '" .. path .. "' 2>/dev/null; rm -rf '"
               .. path .. "'")
    collectgarbage()
    require("luassert").are.equal(1, #aio.tasks(), "tasks left running")
  end
  return make, remove
end

return M
