-- Shared by the bench scripts.
local M = {}

-- Peak RSS of this process in MiB.

function M.rss_mib()
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or 0
end

-- The HTTP server benchmark's /json document (W9, also a shape of
-- bench/json_encode.lua): 16 items, about 2.2 KB encoded.
function M.w9_document()
  local items = {}
  for i = 1, 16 do
    items[i] = {id = i, name = "item number " .. i, price = i * 1.25,
                tags = {"alpha", "beta", "gamma"}, active = i % 2 == 0,
                description = "a short description of item " .. i}
  end
  return {items = items, count = #items, page = 1}
end

return M
