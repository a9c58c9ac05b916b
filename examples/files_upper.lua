-- SPDX-License-Identifier: MIT (see LICENSE)
-- files_upper.lua: process several files concurrently, writing an
-- upper-cased copy of each. Run: luaio examples/files_upper.lua [folder]
local aio = require "luaio"
local fs = require "luaio.fs"

local dir = arg[1] or fs.mkdtemp()
local names = {"alpha", "beta", "gamma", "delta"}
for _, n in ipairs(names) do
  fs.write(("%s/%s.txt"):format(dir, n), ("this is %s\n"):format(n))
end

local function upper_copy(name)
  local src = ("%s/%s.txt"):format(dir, name)
  local dst = ("%s/%s.upper.txt"):format(dir, name)
  fs.write(dst, fs.read(src):upper(), {atomic = true})
  return dst
end

local tasks = {}
for i, n in ipairs(names) do tasks[i] = aio.spawn(upper_copy, n) end
for _, dst in ipairs({aio.gather(tasks)}) do
  io.write(fs.read(dst))
end
if not arg[1] then os.execute("rm -rf '" .. dir .. "'") end
