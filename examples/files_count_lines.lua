-- SPDX-License-Identifier: MIT (see LICENSE)
-- files_count_lines.lua: count the lines of a (large) file line by line,
-- reading in big chunks. Run: luaio examples/files_count_lines.lua FILE
local fs = require "luaio.fs"

local path = assert(arg[1], "usage: files_count_lines.lua FILE")
local f <close> = fs.open(path)
local lines, longest = 0, 0
for line in f:lines() do
  lines = lines + 1
  if #line > longest then longest = #line end
end
print(("%d lines, longest %d bytes"):format(lines, longest))
