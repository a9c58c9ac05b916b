-- Shared spec helpers: paths, running the luaio program, temp folders.
local M = {}

M.luaio = os.getenv("LUAIO") or "build/luaio"
if M.luaio:sub(1, 1) ~= "/" then
  M.luaio = os.getenv("PWD") .. "/" .. M.luaio
end

-- Run a shell command; returns its exit status and its stdout.
function M.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. "); echo \"__rc=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return rc, (out:gsub("__rc=%d+%s*$", ""))
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

return M
