-- SPDX-License-Identifier: MIT (see LICENSE)
-- luaio.download: the Lua part of luaio.http, what reads better in Lua
-- and what uses other modules, so that the C binding calls no other
-- binding. luaio.http loads it from the preload table.
local M = {}

-- The request option json = value and response:json().
function M.json_encode(v) return require("luaio.json").encode(v) end
function M.json_decode(s) return require("luaio.json").decode(s) end

-- http.download(url, path [, opts]) streams a response to a file: into
-- a temporary file beside path, renamed over path only when complete,
-- so a failure leaves nothing behind. opts are request options plus
-- progress(done, total) (total nil when unknown).
function M.download_for(http)
  return function(url, path, opts)
    local fs = require "luaio.fs"
    opts = opts or {}
    if type(path) ~= "string" then
      error(("bad argument #2 to 'http.download' (string expected, got %s)")
        :format(type(path)), 2)
    end
    local progress = opts.progress
    local tmp = ("%s.part-%s"):format(path,
      tostring({}):match("0x(%x+)") or "x")
    local ok, err = pcall(function()
      local r <close> = http.get(url,
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
    if not ok then
      pcall(fs.remove, tmp)
      error(err, 0)
    end
    fs.rename(tmp, path)
    return err                          -- the byte count
  end
end

return M
