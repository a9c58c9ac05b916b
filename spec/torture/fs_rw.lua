-- Allocation-failure torture: files written, appended, read back, listed
-- and removed in a private temp folder.
local fs = require "luaio.fs"
local dir = fs.mkdtemp()
local ok, e = pcall(function()
  local path = dir .. "/a.txt"
  fs.write(path, ("line\n"):rep(100))
  fs.append(path, "end\n")
  assert(#fs.read(path) == 504)
  local f <close> = fs.open(path)
  local n = 0
  for _ in f:lines() do n = n + 1 end
  assert(n == 101)
  fs.write(dir .. "/b.txt", "x", { atomic = true })
  assert(#fs.readdir(dir) == 2)
  assert(fs.stat(path).size == 504)
end)
for _, name in ipairs({ "a.txt", "b.txt" }) do
  pcall(fs.remove, dir .. "/" .. name)
end
os.remove(dir .. "/a.txt"); os.remove(dir .. "/b.txt"); os.remove(dir)
if not ok then error(e, 0) end
print("done")
