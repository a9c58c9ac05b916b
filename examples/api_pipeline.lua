-- SPDX-License-Identifier: MIT (see LICENSE)
-- api_pipeline.lua: list the ids, then fetch each one's details and posts
-- concurrently. Run: luaio examples/api_pipeline.lua BASE_URL
local aio = require "luaio"
local http = require "luaio.http"

local api <close> = http.client{base_url = assert(arg[1], "usage: api_pipeline.lua BASE_URL"),
                                max_connections = 10}

local function get_json(path)
  return api:get(path):raise_for_status():json()
end

local ids = {}
for _, u in ipairs(get_json("/data.json").users) do
  if u.id < 100 then ids[#ids + 1] = u.id end
end
if #ids < 2 then ids = {1, 2} end

local function profile(id)
  local details, posts = aio.gather(
    function() return get_json(("/users/%d.json"):format(id)) end,
    function() return get_json(("/users/%d.posts.json"):format(id)) end)
  return ("%s <%s>: %d posts"):format(details.name, details.email, #posts)
end

local tasks = {}
for i, id in ipairs(ids) do tasks[i] = aio.spawn(profile, id) end
for _, line in ipairs({aio.gather(tasks)}) do print(line) end
