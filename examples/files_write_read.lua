-- SPDX-License-Identifier: MIT (see LICENSE)
-- files_write_read.lua: write a file, then read it back (aiofiles' first
-- example). Run: luaio examples/files_write_read.lua [folder]
local fs = require "luaio.fs"

local dir = arg[1] or fs.mkdtemp()
local path = dir .. "/hello.txt"
fs.write(path, "Hello, async files!\nSecond line\n")
local text = fs.read(path)
io.write(text)
print(("%d bytes in %s"):format(#text, path))
if not arg[1] then
  fs.remove(path)
  fs.rmdir(dir)
end
