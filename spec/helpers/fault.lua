-- Starts spec/helpers/fault_server.py (a misbehaving HTTP server) on a free
-- port of 127.0.0.1; stop() kills it by PID (under `luaio test` it is
-- stopped anyway when the block that started it ends).
local aio = require "luaio"
local helpers = require "spec.helpers"

local M = {}

function M.start()
  local out = os.tmpname()
  local pid = helpers.background("python3 spec/helpers/fault_server.py",
                                 {log = out})
  for _ = 1, 1200 do                    -- a loaded machine: up to a minute
    local f = io.open(out)
    local port = f and tonumber(f:read("l") or "")
    if f then f:close() end
    if port then
      os.remove(out)
      return setmetatable({pid = pid, port = port,
        url = "http://127.0.0.1:" .. port}, {__index = M})
    end
    aio.sleep(0.05)
  end
  os.execute("kill " .. pid)
  error("fault server did not start")
end

function M:stop()
  os.execute("kill " .. self.pid .. " 2>/dev/null")
end

return M
