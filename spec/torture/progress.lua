-- Allocation-failure torture: progress bars (their labels are C copies
-- and their board is malloc'd: a failed Lua allocation must leak
-- nothing and leave no timer behind).
local aio = require "luaio"
local progress = require "luaio.progress"
local f = io.tmpfile()
do
  local a <close> = progress.bar{total = 4, label = "pages", unit = "pages",
                                 stream = f, interval = 0.01}
  local b <close> = progress.bar{total = 4096, label = "dl", unit = "B",
                                 stream = f}
  for _ = 1, 4 do
    aio.sleep(0.005)
    a:advance()
    b:advance(1024)
  end
  a:log("note")
end
assert(progress.format_bytes(1536) == "1.5 KiB")
assert(not pcall(progress.bar, {total = -1}))
f:seek("set")
print("done", #f:read("a"))
