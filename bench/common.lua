-- Shared by the bench scripts: peak RSS of this process in MiB.
local M = {}

function M.rss_mib()
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or 0
end

return M
