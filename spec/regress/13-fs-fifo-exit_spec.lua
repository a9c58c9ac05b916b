-- Issue 13, item 8: a task reading a FIFO that nobody writes was
-- cancelled, and the process then never exited: the thread-pool open or
-- read blocked a worker, and teardown waited for it. FIFOs, pipes,
-- sockets and ttys now go through uv streams, which stop at once.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

-- Run src as a child luaio with a hard limit (a hang is rc 124, not a
-- spec stuck for good); returns rc, out, seconds.
local function run_child(src)
  local path = helpers.script(src)
  local t0 = os.time()
  local rc, out = helpers.sh("timeout 120 " .. helpers.luaio .. " " .. path
                             .. " 2>&1")
  os.remove(path)
  return rc, out, os.time() - t0
end

-- Call fn (which opens fifo for writing) until the reader's open has
-- reached the kernel: before that, opening for writing fails with ENXIO.
-- A fixed sleep first could be too short on a loaded machine.
local function once_read_open(fn)
  for _ = 1, 3000 do                   -- up to 30 s
    local ok, r = pcall(fn)
    if ok then return r end
    assert.are.equal("ENXIO", r.code, tostring(r))
    aio.sleep(0.01)
  end
  return fn()
end

describe("fs on a FIFO nobody writes #safety", function()
  for _, how in ipairs({"lines", "read", "read_all", "fs.read"}) do
    it("a timed-out " .. how .. " lets the process exit", function()
      local fifo = dir .. "/fifo"
      assert(os.execute("mkfifo '" .. fifo .. "'"))
      local rc, out, secs = run_child(([[
        local aio = require "luaio"
        local fs = require "luaio.fs"
        local how, fifo = %q, %q
        local ok, e = pcall(aio.timeout, 0.2, function()
          if how == "fs.read" then return fs.read(fifo) end
          local f <close> = fs.open(fifo)
          if how == "lines" then for _ in f:lines() do end
          elseif how == "read" then f:read()
          else f:read_all() end
        end)
        print("timed out:", e.kind)
      ]]):format(how, fifo))
      assert.are.equal(0, rc, out)
      assert.matches("timed out:\ttimeout", out)
      assert.is_true(secs <= 60, "took " .. secs .. " s")
    end)
  end

  it("a cancelled task reading a FIFO, then the script ends", function()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local rc, out, secs = run_child(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local t = aio.spawn(function()
        local f <close> = fs.open(%q)
        return f:read_all()
      end)
      repeat aio.sleep(0) until t:info().state == "waiting"
      t:cancel()
      print("cancelled", (pcall(t.await, t)))
    ]]):format(fifo))
    assert.are.equal(0, rc, out)
    assert.matches("cancelled\tfalse", out)
    assert.is_true(secs <= 60, "took " .. secs .. " s")
  end)

  it("a task still blocked on a FIFO at exit does not hang it", function()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local rc, out, secs = run_child(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local t = aio.spawn(function()
        local f <close> = fs.open(%q)
        f:read_all()
      end)
      repeat aio.sleep(0) until t:info().state == "waiting"
      print("main done")
      os.exit(0)
    ]]):format(fifo))
    assert.are.equal(0, rc, out)
    assert.matches("main done", out)
    assert.is_true(secs <= 60, "took " .. secs .. " s")
  end)

  it("reads what a writer sends, then EOF", function()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local reader = aio.spawn(function()
      local f <close> = fs.open(fifo)
      local lines = {}
      for l in f:lines() do lines[#lines + 1] = l end
      return lines
    end)
    local w <close> = once_read_open(function() return fs.open(fifo, "w") end)
    w:write("one\ntwo\n")
    w:write("three")
    w:close()
    assert.are.same({"one", "two", "three"},
                    aio.timeout(60, reader.await, reader))
  end)

  it("fs.read and fs.write work through a FIFO", function()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local reader = aio.spawn(fs.read, fifo)
    once_read_open(function() fs.write(fifo, string.rep("p", 300000)) end)
    local got = aio.timeout(60, reader.await, reader)
    assert.is_true(got == string.rep("p", 300000), #got .. " bytes")
  end)

  it("opening a FIFO for writing without a reader fails with ENXIO",
     function()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    local ok, e = pcall(fs.open, fifo, "w")
    assert.is_false(ok)
    assert.are.equal("ENXIO", e.code, tostring(e))
  end)
end)
