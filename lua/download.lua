-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.download: the Lua part of luaio.http, what reads better in Lua
-- and what uses other modules, so that the C binding calls no other
-- binding. luaio.http loads it from the preload table.
local M = {}

-- The request option json = value: the text, or nil and why not (the
-- module raises an argument error naming the user's call).
function M.json_encode(v)
  local ok, s = pcall(require("luaio.json").encode, v)
  if ok then return s end
  return nil, type(s) == "table" and s.message or tostring(s)
end

-- response:json(): json.decode's error as is, raised through pcall so
-- that it points at no line of this file.
function M.json_decode(s)
  local ok, v = pcall(require("luaio.json").decode, s)
  if not ok then error(v, 0) end
  return v
end

-- http.download(url, path [, opts]) streams a response to a file: into
-- a temporary file beside path, renamed over path only when complete,
-- so a failure leaves nothing behind. opts are request options plus
-- progress: a function progress(done, total) (total nil when unknown),
-- true for a luaio.progress bar on stderr, or a bar of one's own.
-- get(url, opts) is the module's GET whose errors name http.download.
local function check(n, v, want)
  if type(v) ~= want then
    error(("bad argument #%d to 'http.download' (%s expected, got %s)")
      :format(n, want, type(v)), 0)
  end
end

function M.download_for(get)
  -- Called through pcall, so that an argument error carries no position
  -- inside this file (as if http.download were a C function).
  local function open(url, opts)
    local ok, r = pcall(get, url, opts)
    if not ok then error(r, 0) end
    return r
  end
  return function(url, path, opts)
    local fs = require "luaio.fs"
    check(2, path, "string")
    if opts ~= nil then check(3, opts, "table") end
    opts = opts or {}
    local progress, bar = opts.progress, nil
    if progress == true then
      bar = require("luaio.progress").bar{
        label = path:match("[^/]*$"), unit = "B"}
    elseif type(progress) == "table" or type(progress) == "userdata" then
      bar = progress
    elseif progress ~= nil and progress ~= false and type(progress) ~= "function" then
      error("bad argument #3 to 'http.download' (option 'progress' must be "
            .. "a function, true or a progress bar)", 0)
    end
    if bar then
      local shown, sized = 0, false
      progress = function(done, total)
        if total and not sized then bar:set_total(total); sized = true end
        bar:advance(done - shown)
        shown = done
      end
    end
    local tmp = ("%s.part-%s"):format(path,
      tostring({}):match("0x(%x+)") or "x")
    local ok, err = pcall(function()
      local r <close> = open(url,
        setmetatable({stream = true}, {__index = opts}))
      r:raise_for_status()
      local total = tonumber(r.headers["content-length"])
      local f <close> = fs.open(tmp, "w")
      local done = 0
      for chunk in r:chunks() do
        f:write(chunk)
        done = done + #chunk
        if progress then progress(done, total) end
      end
      f:sync()
      return done
    end)
    if bar and opts.progress == true then bar:close() end
    if not ok then
      pcall(fs.remove, tmp)
      error(err, 0)
    end
    fs.rename(tmp, path)
    return err                          -- the byte count
  end
end

return M
