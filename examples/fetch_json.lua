-- SPDX-License-Identifier: MIT (see LICENSE)
-- fetch_json.lua: fetch several URLs concurrently, handle each result's
-- error on its own. Run: luaio examples/fetch_json.lua http://127.0.0.1:PORT
local aio = require "luaio"
local http = require "luaio.http"

local base = arg[1] or error("usage: fetch_json.lua BASE_URL")
local paths = {"/data.json", "/small", "/status/404", "/delay/short",
               "/no-such-file"}

local tasks = {}
for i, path in ipairs(paths) do
  tasks[i] = aio.spawn(function()
    local r = http.get(base .. path, {timeout = 30, retries = 2})
    r:raise_for_status()
    return r
  end)
end

local failed = 0
for i, result in ipairs({aio.gather_all(tasks)}) do
  local path = paths[i]:sub(2)
  if aio.is_error(result) then
    failed = failed + 1
    print(("%s: %s"):format(path, result.message))
  elseif path == "data.json" then
    local names = {}
    for _, u in ipairs(result:json().users) do names[#names + 1] = u.name end
    print("users: " .. table.concat(names, ", "))
  else
    print(("%s: %d bytes in %.3f s"):format(path, #result.body, result.elapsed))
  end
end
print(("fetched %d URLs, %d failed"):format(#paths, failed))
