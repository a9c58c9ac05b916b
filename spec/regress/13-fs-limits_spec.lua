-- Issue 13, low items: whole-file reads and lines had no size cap, and
-- atomic writes killed with -9 left temporary files behind forever.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

describe("fs size limits #safety", function()
  it("fs.read refuses a file larger than max_size", function()
    fs.write(dir .. "/f", string.rep("x", 5000))
    assert.are.equal(5000, #fs.read(dir .. "/f", {max_size = 5000}))
    local ok, e = pcall(fs.read, dir .. "/f", {max_size = 4999})
    assert.is_false(ok)
    assert.are.equal("io", e.kind)
    assert.are.equal("EFBIG", e.code)
    assert.are.equal(dir .. "/f", e.path)
    assert.matches("max_size %(4999 bytes%)", tostring(e))
  end)

  it("fs.read caps a file with no size (a device) too", function()
    -- in a child: without the cap this read never ends
    local helpers = require "spec.helpers"
    local script = helpers.script([[
      local fs = require "luaio.fs"
      local ok, e = pcall(fs.read, "/dev/zero", {max_size = 100000})
      print(ok, e.code)
    ]])
    local rc, out = helpers.sh("timeout 60 " .. helpers.luaio .. " "
                               .. script .. " 2>&1")
    os.remove(script)
    assert.are.equal(0, rc, out)
    assert.are.equal("false\tEFBIG\n", out)
  end)

  it("file:read_all takes max_size", function()
    fs.write(dir .. "/f", string.rep("x", 300000))
    local f <close> = fs.open(dir .. "/f")
    local ok, e = pcall(f.read_all, f, {max_size = 1000})
    assert.is_false(ok)
    assert.are.equal("EFBIG", e.code)
    assert.are.equal(dir .. "/f", e.path)
  end)

  it("lines() and read_line() stop at max_line (default 1 MiB)", function()
    fs.write(dir .. "/f", "short\n" .. string.rep("L", 2 << 20) .. "\nend\n")
    local f <close> = fs.open(dir .. "/f")
    local it = f:lines()
    assert.are.equal("short", it())
    local ok, e = pcall(it)
    assert.is_false(ok)
    assert.are.equal("limit", e.kind)
    assert.matches("max_line %(1048576 bytes%)", tostring(e))
    local g <close> = fs.open(dir .. "/f")
    assert.are.equal("short", g:read_line({max_line = 10}))
    ok, e = pcall(g.read_line, g, {max_line = 10})
    assert.is_false(ok)
    assert.matches("max_line %(10 bytes%)", tostring(e))
    local h <close> = fs.open(dir .. "/f")
    local n = 0
    for _ in h:lines({max_line = 3 << 20}) do n = n + 1 end
    assert.are.equal(3, n)
  end)

  it("rejects bad limits", function()
    assert.has_error(function() fs.read(dir .. "/f", {max_size = -1}) end,
      "bad argument #2 to 'fs.read' (max_size must be >= 0)")
    local f <close> = fs.open(dir .. "/f", "w")
    assert.has_error(function() f:lines({max_line = 0}) end,
      "bad argument #2 to 'file:lines' (max_line must be > 0)")
  end)
end)

describe("atomic write temporary files #safety", function()
  it("are named after their target and hidden", function()
    local path = dir .. "/data.json"
    -- The name is seen when the file is made (an inotify event), not by
    -- listing the folder while the write runs: a write that ends before
    -- the listing would leave nothing to check.
    local w <close> = fs.watch(dir)
    fs.write(path, string.rep("x", 1 << 20), {atomic = true})
    local seen = aio.timeout(60, function()
      while true do
        local ev = w:next()
        if ev.name ~= "data.json" then return ev.name end
      end
    end)
    assert.matches("^%.data%.json%.luaio%-tmp%-%d+%-", seen)
    assert.are.same({"data.json"}, fs.readdir(dir))
  end)

  it("a stale one (its writer was killed) goes on the next write",
     function()
    local path = dir .. "/data.json"
    local rc = os.execute(([[
      sh -c 'echo $$ > %s/pid; exit 0'
    ]]):format(dir))
    assert(rc)
    local dead = tonumber(fs.read(dir .. "/pid"))
    fs.remove(dir .. "/pid")
    local stale = ("%s/.data.json.luaio-tmp-%d-deadbeef"):format(dir, dead)
    local stat = assert(io.open("/proc/self/stat"))
    local me = tonumber(stat:read("a"):match("^(%d+)"))
    stat:close()
    local live = ("%s/.data.json.luaio-tmp-%d-cafe"):format(dir, me)
    local other = dir .. "/.other.luaio-tmp-" .. dead .. "-beef"
    fs.write(stale, "half")
    fs.write(live, "in progress")
    fs.write(other, "not ours")
    fs.write(path, "{}", {atomic = true})
    local names = fs.readdir(dir)
    table.sort(names)
    assert.are.same({".data.json.luaio-tmp-" .. me .. "-cafe", ".other.luaio-tmp-"
      .. dead .. "-beef", "data.json"}, names)
  end)

  it("a writer killed mid-write leaves one that the next write removes",
     function()
    local helpers = require "spec.helpers"
    local path = dir .. "/big"
    local script = helpers.script(([[
      local fs = require "luaio.fs"
      fs.write(%q, string.rep("x", 64 << 20), {atomic = true})
    ]]):format(path))
    -- Killed mid-write for certain, not after a guessed 0.5 s (which a
    -- loaded machine may spend starting up, or a fast one finishing):
    -- with a file size limit of a few MiB the kernel kills the writer
    -- (SIGXFSZ, which it cannot catch) in the middle of the data, with
    -- its temporary file written in part. Reaped before the next write
    -- looks: that write removes the file only once its pid is gone.
    local rc, out = helpers.sh(("ulimit -c 0; ulimit -f 2048; "
      .. "{ %s %s & pid=$!; wait $pid; echo \"$? $pid\"; } 2>/dev/null")
      :format(helpers.luaio, script))
    os.remove(script)
    assert.are.equal(0, rc, out)
    local status, pid = out:match("^(%d+) (%d+)\n$")
    assert.are.equal(tostring(128 + 25), status, out)   -- SIGXFSZ
    local left = fs.readdir(dir)
    assert.are.equal(1, #left, table.concat(left, " "))
    assert.matches("^%.big%.luaio%-tmp%-" .. pid .. "%-", left[1])
    assert.is_true(fs.stat(dir .. "/" .. left[1]).size > 0)
    fs.write(path, "small", {atomic = true})
    assert.are.same({"big"}, fs.readdir(dir))
    assert.are.equal("small", fs.read(path))
  end)
end)
