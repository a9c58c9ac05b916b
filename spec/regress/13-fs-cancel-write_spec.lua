-- Issue 13, item 5: when a task's cancellation returns, nothing it
-- started may still change a file. A cancelled atomic write used to
-- finish on the thread pool and rename its temporary file over a newer
-- write; copies and renames had the same race.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

-- Start fn in a task, let it run for `delay` seconds, cancel it and wait
-- until it is done. Returns whether it completed before the cancel.
local function cancel_after(delay, fn, ...)
  local t = aio.spawn(fn, ...)
  if delay > 0 then aio.sleep(delay) else aio.sleep(0) end
  t:cancel()
  return (pcall(t.await, t))
end

local big = string.rep("old data ", 4 << 20)              -- 36 MiB

describe("cancelled fs writes never land after a newer write #safety",
         function()
  it("atomic fs.write: the newer write wins, no temporary file stays",
     function()
    local path = dir .. "/target"
    for i, delay in ipairs({0, 0.001, 0.005, 0.01, 0.03, 0.06}) do
      cancel_after(delay, fs.write, path, big, {atomic = true})
      fs.write(path, "newer " .. i)
      aio.sleep(0.3)                      -- a late rename would land now
      local got = fs.read(path)
      assert(got == "newer " .. i, ("round %d: %d bytes"):format(i, #got))
      assert.are.same({"target"}, fs.readdir(dir))
    end
  end)

  it("a cancelled atomic write leaves the old content or the new one",
     function()
    local path = dir .. "/target"
    fs.write(path, "before")
    for _, delay in ipairs({0, 0.002, 0.01, 0.04}) do
      cancel_after(delay, fs.write, path, big, {atomic = true})
      local now = fs.read(path)
      assert.is_true(now == "before" or now == big)
      aio.sleep(0.2)
      assert.is_true(now == fs.read(path), "changed after the cancel")
      fs.write(path, "before")
    end
  end)

  it("plain fs.write and fs.append: nothing lands after the cancel",
     function()
    local path = dir .. "/plain"
    for _, fn in ipairs({fs.write, fs.append}) do
      for _, delay in ipairs({0, 0.003, 0.02}) do
        cancel_after(delay, fn, path, big)
        fs.write(path, "newer")
        aio.sleep(0.2)
        local got = fs.read(path)
        assert(got == "newer", ("%d bytes"):format(#got))
      end
    end
  end)

  it("fs.copy: a cancelled copy does not recreate the target", function()
    fs.write(dir .. "/src", big)
    for _, delay in ipairs({0, 0.002, 0.01, 0.03}) do
      cancel_after(delay, fs.copy, dir .. "/src", dir .. "/dst")
      if fs.exists(dir .. "/dst") then fs.remove(dir .. "/dst") end
      aio.sleep(0.2)
      assert.is_false(fs.exists(dir .. "/dst"))
    end
  end)

  it("fs.rename: a cancelled rename is done or not done, not later",
     function()
    for i = 1, 20 do
      fs.write(dir .. "/a", "a")
      cancel_after(0, fs.rename, dir .. "/a", dir .. "/b")
      local a, b = fs.exists(dir .. "/a"), fs.exists(dir .. "/b")
      aio.sleep(0.01)
      assert.are.equal(a, fs.exists(dir .. "/a"), "round " .. i)
      assert.are.equal(b, fs.exists(dir .. "/b"), "round " .. i)
      if b then fs.remove(dir .. "/b") end
      if a then fs.remove(dir .. "/a") end
    end
  end)

  it("file:write: a cancelled write does not land after a newer one",
     function()
    local path = dir .. "/f"
    for _, delay in ipairs({0, 0.003, 0.02}) do
      local f = fs.open(path, "w")
      cancel_after(delay, f.write, f, big)
      f:close()
      fs.write(path, "newer")
      aio.sleep(0.2)
      local got = fs.read(path)
      assert(got == "newer", ("%d bytes"):format(#got))
    end
  end)
end)

-- The big test data is not a leak: let the per-file accounting see it go.
teardown(function() big = nil end)
