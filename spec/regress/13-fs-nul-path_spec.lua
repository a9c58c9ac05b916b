-- Issue 13, item 7: a NUL byte in a path used to truncate it in C, so
-- fs.write("dir/victim\0.txt", "x") overwrote dir/victim. Every path
-- argument of every fs function now rejects it.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

local function rejects(name, arg, fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, name .. " accepted a NUL byte")
  local want = ("bad argument #%d to '%s' (path contains a NUL byte)")
    :format(arg, name)
  assert.are.equal(want, e:sub(-#want))
end

describe("fs paths with a NUL byte #safety", function()
  it("fs.write does not truncate the path and overwrite another file",
     function()
    fs.write(dir .. "/victim", "precious")
    rejects("fs.write", 1, function() fs.write(dir .. "/victim\0.txt", "x") end)
    rejects("fs.write", 1, function()
      fs.write(dir .. "/victim\0.txt", "x", {atomic = true})
    end)
    rejects("fs.append", 1, function() fs.append(dir .. "/victim\0", "x") end)
    assert.are.equal("precious", fs.read(dir .. "/victim"))
    assert.are.same({"victim"}, fs.readdir(dir))
  end)

  it("every path argument of every function rejects it", function()
    local p, bad = dir .. "/victim", dir .. "/victim\0x"
    fs.write(p, "precious")
    local calls = {
      {"fs.read", 1, function() fs.read(bad) end},
      {"fs.open", 1, function() fs.open(bad, "w") end},
      {"fs.stat", 1, function() fs.stat(bad) end},
      {"fs.lstat", 1, function() fs.lstat(bad) end},
      {"fs.exists", 1, function() fs.exists(bad) end},
      {"fs.mkdir", 1, function() fs.mkdir(bad) end},
      {"fs.mkdir", 1, function() fs.mkdir(bad, {parents = true}) end},
      {"fs.rmdir", 1, function() fs.rmdir(bad) end},
      {"fs.remove", 1, function() fs.remove(bad) end},
      {"fs.rename", 1, function() fs.rename(bad, dir .. "/y") end},
      {"fs.rename", 2, function() fs.rename(p, bad) end},
      {"fs.copy", 1, function() fs.copy(bad, dir .. "/y") end},
      {"fs.copy", 2, function() fs.copy(p, bad) end},
      {"fs.readdir", 1, function() fs.readdir(bad) end},
      {"fs.realpath", 1, function() fs.realpath(bad) end},
      {"fs.mkdtemp", 1, function() fs.mkdtemp(bad) end},
      {"fs.chmod", 1, function() fs.chmod(bad, 384) end},
      {"fs.watch", 1, function() fs.watch(bad) end},
    }
    for _, c in ipairs(calls) do rejects(c[1], c[2], c[3]) end
    assert.are.equal("precious", fs.read(p))
    assert.are.same({"victim"}, fs.readdir(dir))
    assert.are.equal(tonumber("644", 8), fs.stat(p).mode)
  end)
end)
