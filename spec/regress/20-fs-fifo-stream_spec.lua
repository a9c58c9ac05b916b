-- Issue 20: FIFOs, pipes and terminals opened with fs.open now run on the
-- host's stream engine (host/stream.c), the one net's streams use. What
-- the File promised before must still hold on it: big writes go out
-- whole, a cancelled write closes the File (nothing of it goes out
-- later), a close from another task wakes a blocked writer, and lines
-- arrive whole across chunks.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

local big = string.rep("x", 3 * 1024 * 1024) .. "\nend\n"

-- Wait until task t has started and waits (not a guessed time): for
-- waits nothing can end meanwhile.
local function until_waiting(t)
  repeat aio.sleep(0) until t:info().state ~= "ready"
  assert.are.equal("waiting", t:info().state)
end

local function fifo()
  local path = dir .. "/fifo"
  assert(os.execute("mkfifo '" .. path .. "'"))
  local r = fs.open(path, "r")             -- the reader first: no ENXIO
  return r, fs.open(path, "w")
end

describe("a File on a FIFO", function()
  it("writes megabytes whole while another task reads lines", function()
    local r <close>, w = fifo()
    local writer = aio.spawn(function()
      w:write(big)
      w:write("tail\n")
      w:close()
    end)
    local lines = {}
    for line in r:lines({max_line = 4 * 1024 * 1024}) do
      lines[#lines + 1] = #line
    end
    writer:await()
    assert.are.same({3 * 1024 * 1024, 3, 4}, lines)
  end)

  it("a cancelled blocked write closes the File", function()
    local r <close>, w = fifo()
    local t = aio.spawn(function() w:write(big) end)
    until_waiting(t)                         -- the pipe is full
    t:cancel()
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", e.kind)
    assert.are.equal("luaio.File (closed)", tostring(w))
    assert.has_error(function() w:write("x") end,
      "file:write: attempt to use a closed file")
  end)

  it("a close from another task wakes a blocked writer", function()
    local r <close>, w = fifo()
    local t = aio.spawn(function() return pcall(w.write, w, big) end)
    until_waiting(t)                         -- the pipe is full
    w:close()
    local ok, e = t:await()
    assert.is_false(ok)
    assert.are.equal("ECANCELED", e.code)
    assert.are.equal("the file was closed", e.message)
    assert.are.equal("file:write", e.op)
  end)

  it("a write after the reader left is EPIPE, naming the path", function()
    local r, w = fifo()
    r:close()
    local ok, e = pcall(w.write, w, "x")
    w:close()
    assert.is_false(ok)
    assert.are.equal("EPIPE", e.code)
    assert.are.equal(dir .. "/fifo", e.path)
  end)
end)
