-- Issue 22 (W5b): a File on a regular file reads its next chunk while
-- the script uses the current one. The read owns its buffer, never moves
-- the file's position before it is taken, and is dropped by a seek, a
-- write, a close or the File's collection. Chunks are 64 KiB growing to
-- 1 MiB, so the files here span several chunks and their boundaries.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

-- Lines of every length from 0 to 299 bytes, with their number, so a
-- lost, repeated or split line shows, at any chunk boundary.
local function varied(n, eol)
  local t = {}
  for i = 1, n do
    t[i] = ("%07d:"):format(i) .. string.rep(string.char(97 + i % 26),
                                             i % 300)
  end
  return t, table.concat(t, eol) .. eol
end

local function all_lines(f, opts)
  local t = {}
  for line in f:lines(opts) do t[#t + 1] = line end
  return t
end

local function same_lines(expect, got)
  assert.are.equal(#expect, #got)
  for i = 1, #expect do
    if expect[i] ~= got[i] then
      assert.are.equal(expect[i], got[i], "line " .. i)
    end
  end
end

local function open_fds()
  return #fs.readdir("/proc/self/fd")
end

-- Wait until the open descriptors are back to n: a read in flight on a
-- closed or collected File closes its descriptor in its callback, which
-- a loaded machine may run well after a fixed short sleep. A minute at
-- most; the caller asserts the count.
local function fds_back_to(n)
  for _ = 1, 6000 do
    if open_fds() == n then return end
    aio.sleep(0.01)
  end
end

describe("File read-ahead: lines", function()
  it("crosses chunk boundaries in order, \\n and \\r\\n", function()
    for _, eol in ipairs({"\n", "\r\n"}) do
      local expect, text = varied(40000, eol)       -- ~6.3 MB
      fs.write(dir .. "/t", text)
      local f <close> = fs.open(dir .. "/t")
      same_lines(expect, all_lines(f))
    end
  end)

  it("a \\r\\n split between two chunks is one line end", function()
    local first = string.rep("x", 65535)            -- \r ends chunk 1
    fs.write(dir .. "/t", first .. "\r\nnext\r\nlast")
    local f <close> = fs.open(dir .. "/t")
    same_lines({first, "next", "last"}, all_lines(f))
  end)

  it("keeps a last line without newline, at and off a boundary", function()
    for _, size in ipairs({65536, 65536 + 131072, 100000}) do
      local body = string.rep("abcdefg\n", size // 8 - 1)
      local tail = string.rep("z", size - #body)
      fs.write(dir .. "/t", body .. tail)
      local f <close> = fs.open(dir .. "/t")
      local got = all_lines(f)
      assert.are.equal(size // 8, #got)
      assert.are.equal(tail, got[#got])
      assert.is_nil(f:read_line())
    end
  end)

  it("reads lines longer than a chunk and than the head room", function()
    local expect = {"short", string.rep("a", 200000), "", "mid",
                    string.rep("b", 900000), string.rep("c", 20000), "end"}
    fs.write(dir .. "/t", table.concat(expect, "\n"))
    local f <close> = fs.open(dir .. "/t")
    same_lines(expect, all_lines(f))
    local g <close> = fs.open(dir .. "/t")
    local ok, e = pcall(all_lines, g, {max_line = 100000})
    assert.is_false(ok)
    assert.are.equal("limit", e.kind, tostring(e))
  end)
end)

describe("File read-ahead: other kinds", function()
  it("a device is read a chunk at a time, without read-ahead", function()
    local z <close> = fs.open("/dev/zero")
    assert.are.equal(string.rep("\0", 10), z:read(10))
    assert.are.equal(65536 - 10, #z:read(1 << 20))  -- the rest of it
    assert.are.equal(1000, #z:read(1000))
    local n <close> = fs.open("/dev/null")
    assert.is_nil(n:read_line())
    assert.is_nil(n:read(10))
  end)

  it("a small file is read whole, then nil", function()
    fs.write(dir .. "/t", "a\r\nb")
    local f <close> = fs.open(dir .. "/t")
    same_lines({"a", "b"}, all_lines(f))
    assert.is_nil(f:read(1))
    assert.are.equal(4, f:seek("cur"))
  end)
end)

describe("File read-ahead: positions", function()
  it("seek after a partial lines() is at the next unread byte", function()
    local expect, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t")
    local next_line = f:lines()
    local used = 0
    for i = 1, 5000 do
      local line = next_line()
      assert.are.equal(expect[i], line)
      used = used + #line + 1
    end
    aio.sleep(0.01)                        -- the read-ahead has finished
    assert.are.equal(used, f:seek("cur"))
    assert.are.equal(expect[5001], f:read_line())
    f:seek("set", 0)
    assert.are.equal(expect[1], f:read_line())
    local pos = f:seek("set", used)
    assert.are.equal(used, pos)
    local rest = all_lines(f)
    assert.are.equal(20000 - 5000, #rest)
    assert.are.equal(expect[5001], rest[1])
    assert.are.equal(expect[20000], rest[#rest])
  end)

  it("read(n) and read_all after lines() continue where lines stopped",
     function()
    local expect, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t")
    local used = 0
    for line in f:lines() do
      used = used + #line + 1
      if #line > 250 and used > 300000 then break end
    end
    local got = {}
    local piece = f:read(1000)
    while piece and #got < 5 do
      got[#got + 1] = piece
      piece = f:read(777)
    end
    got[#got + 1] = piece
    got[#got + 1] = f:read_all()
    assert.are.equal(text:sub(used + 1), table.concat(got))
    assert.is_nil(f:read(10))
  end)

  it("a write drops the read-ahead: no data older than it is read",
     function()
    local _, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t", "r+")
    local first = f:read_line()           -- chunk 1 read, chunk 2 ahead
    aio.sleep(0.01)
    local patch = string.rep("Z", 50000)
    f:write(patch)                        -- where chunk 2 begins
    local rest = f:read_all()
    local now = fs.read(dir .. "/t")
    local at = now:find("Z", 1, true)
    assert.is_truthy(at)
    assert.are.equal(text:sub(1, at - 1) .. text:sub(at + #patch),
                     first .. "\n" .. rest)
  end)

  it("a seek while the read-ahead runs leaves it unused", function()
    local expect, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t")
    for _ = 1, 200 do
      assert.are.equal(expect[1], f:read_line())  -- starts a read-ahead
      f:seek("set", 0)                            -- at once: in flight
    end
    same_lines(expect, all_lines(f))
  end)
end)

describe("File read-ahead: close, cancel, collection #safety", function()
  it("closing during lines() frees everything, the fd included",
     function()
    local _, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local before = open_fds()
    for round = 1, 20 do
      local f = fs.open(dir .. "/t")
      local n = 0
      for _ in f:lines() do
        n = n + 1
        if n == round * 100 then break end
      end
      f:close()                           -- a read-ahead in flight
      f:close()
    end
    fds_back_to(before)
    assert.are.equal(before, open_fds())
  end)

  it("closing with a write and a read-ahead in flight frees both",
     function()
    local _, text = varied(20000, "\n")
    local before = open_fds()
    for round = 1, 10 do
      fs.write(dir .. "/t", text)
      local f = fs.open(dir .. "/t", "r+")
      f:read_line()                        -- a read-ahead in flight
      local writer = aio.spawn(function()
        f:write(string.rep("w", 1 << 20))
      end)
      if round % 2 == 0 then aio.sleep(0) end
      f:close()
      pcall(writer.await, writer)
    end
    fds_back_to(before)
    assert.are.equal(before, open_fds())
  end)

  it("closing from another task fails the waiting reader cleanly",
     function()
    local _, text = varied(40000, "\n")
    fs.write(dir .. "/t", text)
    for round = 1, 10 do
      local f = fs.open(dir .. "/t")
      local n = 0
      local started = false
      local reader = aio.spawn(function()
        started = true
        for _ in f:lines() do n = n + 1 end
      end)
      -- closed after 0 to 5 turns of the loop, not after a time a fast
      -- machine may read the whole file in: a turn reads one chunk at
      -- most, and six chunks are under 3 MB of these 6.3
      while not started do aio.sleep(0) end
      for _ = 1, round // 2 do aio.sleep(0) end
      f:close()
      local ok, e = pcall(reader.await, reader)
      assert.is_false(ok, "the reader ended before the close")
      assert.are.equal("ECANCELED", e.code, tostring(e))
    end
  end)

  it("a cancelled reader loses and repeats no line", function()
    local expect, text = varied(40000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t")
    local next_line = f:lines()
    local i = 0
    for round = 1, 30 do
      local t = aio.spawn(function()
        for line in next_line do
          i = i + 1
          assert(line == expect[i], "line " .. i)
        end
      end)
      aio.sleep(0.0003 * (round % 7))
      t:cancel()
      pcall(t.await, t)
    end
    for line in next_line do
      i = i + 1
      assert.are.equal(expect[i], line)
    end
    assert.are.equal(#expect, i)
  end)

  it("a File collected while it reads ahead frees its fd and buffers",
     function()
    local _, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local before = open_fds()
    for _ = 1, 20 do
      (function()
        local f = fs.open(dir .. "/t")
        f:read_line()                      -- leaves a read in flight
      end)()
      collectgarbage()
      collectgarbage()
    end
    fds_back_to(before)
    assert.are.equal(before, open_fds())
  end)

  it("a script that exits with a read-ahead in flight exits cleanly",
     function()
    local _, text = varied(20000, "\n")
    fs.write(dir .. "/t", text)
    local rc, out = helpers.run_luaio(([[
      local fs = require "luaio.fs"
      local f = fs.open(%q)
      print(f:read_line())
    ]]):format(dir .. "/t"))
    assert.are.equal(0, rc, out)
    assert.matches("0000001:b", out)
  end)

  it("two readers still get EBUSY while one waits", function()
    local _, text = varied(40000, "\n")
    fs.write(dir .. "/t", text)
    local f <close> = fs.open(dir .. "/t")
    local started = false
    local first = aio.spawn(function()
      started = true
      return f:read_all()
    end)
    -- once it has started, first reads for ten turns of the loop or more
    -- (a chunk of at most 1 MiB a turn, 6.3 MB in all): still reading
    -- when this task runs next, whatever the time a turn takes
    while not started do aio.sleep(0) end
    local ok, e = pcall(f.read_line, f)
    assert.is_false(ok)
    assert.are.equal("EBUSY", e.code, tostring(e))
    assert.are.equal(text, first:await())
  end)
end)
