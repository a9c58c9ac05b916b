-- Issue 13, items 1 and 2: a thread-pool read must own its buffer until
-- its callback runs, whatever happens to the task or the File meanwhile.
-- The crash-prone scenarios run in a child process (a use-after-free may
-- kill it); valgrind runs of this file see any invalid access directly.
local aio = require "luaio"
local fs = require "luaio.fs"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

-- A file of numbered lines, so a lost or repeated chunk shows.
local function numbered(path, n)
  local t = {}
  for i = 1, n do t[i] = ("%08d"):format(i) end
  fs.write(path, table.concat(t, "\n") .. "\n")
end

-- Checking 400,000 lines one by one, or reading 16 MiB eight times,
-- took more than a test's default 10 s on a loaded machine: these tests
-- get two minutes, or the run's own limit if longer (valgrind's).
local function allow_two_minutes()
  local env = tonumber(os.getenv("LUAIO_TEST_TIMEOUT") or "") or 0
  require("luaio.test").timeout(math.max(120, env))
end

-- Lines checked one by one in this process: under valgrind, which runs
-- it 50 times slower, a quarter (still several chunks of the read-ahead).
local LINES = os.getenv("LUAIO_VALGRIND") and 100000 or 400000

describe("fs file reads cancelled or closed mid-flight #safety", function()
  it("cancelling lines() mid-read loses no data and frees nothing in use",
     function()
    allow_two_minutes()
    numbered(dir .. "/big", LINES)                -- 3.6 MB (0.9)
    local f <close> = fs.open(dir .. "/big")
    local next_line = f:lines()
    local expect = 1
    for round = 1, 30 do
      local t = aio.spawn(function()
        for line in next_line do
          assert(line == ("%08d"):format(expect), "line " .. expect)
          expect = expect + 1
        end
      end)
      aio.sleep(0.001 * (round % 5))
      t:cancel()
      pcall(t.await, t)
    end
    for line in next_line do                      -- the rest, in order
      assert.are.equal(("%08d"):format(expect), line)
      expect = expect + 1
    end
    assert.are.equal(LINES + 1, expect)
  end)

  it("cancelling read_all() mid-read keeps the bytes already read",
     function()
    allow_two_minutes()
    -- 16 MiB: at most 10 chunks (7 MiB) are read before the cancel
    local data = string.rep("0123456789abcdef", 1 << 20)
    fs.write(dir .. "/big", data)
    for round = 1, 8 do
      local f <close> = fs.open(dir .. "/big")
      local started = false
      local t = aio.spawn(function() started = true; return f:read_all() end)
      -- Cancelled after `round` turns of the loop, not after a time a
      -- fast machine may read the whole file in: a turn reads one chunk
      -- (of at most 1 MiB) at most, so the read is always mid-way.
      while not started do aio.sleep(0) end
      for _ = 1, round do aio.sleep(0) end
      t:cancel()
      local ok = pcall(t.await, t)
      assert.is_false(ok, "read_all ended before its cancel")
      local rest = f:read_all()            -- nothing read may be lost
      assert.are.equal(#data, #rest)
      assert.is_true(data == rest)
    end
  end)

  it("closing the File wakes its reader with a clear error", function()
    allow_two_minutes()
    fs.write(dir .. "/big", string.rep("x", 64 << 20))
    for _ = 1, 5 do
      local f = fs.open(dir .. "/big")
      local started = false
      local t = aio.spawn(function() started = true; return f:read_all() end)
      -- closed while reading, whatever the speed: 64 MiB take many more
      -- turns of the loop than these (a chunk of at most 1 MiB a turn)
      while not started do aio.sleep(0) end
      aio.sleep(0)
      f:close()
      local ok, e = pcall(t.await, t)
      assert.is_false(ok, "read_all ended before the close")
      assert.are.equal("io", e.kind, tostring(e))
      assert.are.equal("ECANCELED", e.code, tostring(e))
      assert.matches("closed", e.message)
      f:close()
    end
  end)

  it("a task cancelled in lines() whose <close> closes the File is safe",
     function()
    allow_two_minutes()
    numbered(dir .. "/big", 400000)
    local rc, out = helpers.run_luaio(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      for round = 1, 40 do
        local t = aio.spawn(function()
          local f <close> = fs.open(%q)
          for _ in f:lines() do end
        end)
        for _ = 1, round %% 5 do aio.sleep(0) end
        t:cancel()
        pcall(t.await, t)
      end
      print("done")
    ]]):format(dir .. "/big"))
    assert.are.equal(0, rc, out)
    assert.matches("done", out)
  end)
end)

describe("two tasks reading one File at once #safety", function()
  it("the second gets a clear EBUSY error, the first its data", function()
    -- The first reader's read must still be in flight when the second
    -- comes, however fast the disk and slow the loop: in a child whose
    -- thread pool has one thread, held by a worker until the FIFO gets
    -- data, that read stays queued until the test lets it run.
    allow_two_minutes()
    numbered(dir .. "/big", 400000)
    assert(os.execute("mkfifo '" .. dir .. "/go'"))
    local script = helpers.script(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local big, go, mark = %q, %q, %q
      local function exists(p)
        local h = io.open(p)
        if h then h:close() end
        return h ~= nil
      end
      local f <close> = fs.open(big)
      local blocker = aio.spawn(aio.to_thread, function(fifo, running)
        assert(io.open(running, "w")):close()
        local h = assert(io.open(fifo, "r"))      -- until a writer comes
        local s = h:read("a")
        h:close()
        return s
      end, go, mark)
      for _ = 1, 6000 do                  -- up to a minute
        if exists(mark) then break end
        aio.sleep(0.01)
      end
      assert(exists(mark), "the worker did not start")
      local started = false
      local first = aio.spawn(function()
        started = true
        return f:read_all()
      end)
      while not started do aio.sleep(0) end
      local ok, e = pcall(function() return f:read(10) end)
      print("second", ok, e.code, e.message)
      local w = assert(io.open(go, "w"))
      w:write("go")
      w:close()
      print("blocker", blocker:await())
      local all = first:await()
      print("first", #all, all:sub(1, 9))
    ]]):format(dir .. "/big", dir .. "/go", dir .. "/running"))
    local rc, out = helpers.sh("UV_THREADPOOL_SIZE=1 timeout 100 "
                               .. helpers.luaio .. " " .. script .. " 2>&1")
    os.remove(script)
    assert.are.equal(0, rc, out)
    assert.matches("second\tfalse\tEBUSY\tanother task is reading", out)
    assert.matches("blocker\tgo\n", out)
    assert.matches("first\t" .. 400000 * 9 .. "\t00000001\n", out)
  end)

  it("lines() in two tasks never share a buffer", function()
    numbered(dir .. "/big", 400000)
    local rc, out = helpers.run_luaio(([[
      local aio = require "luaio"
      local fs = require "luaio.fs"
      local f <close> = fs.open(%q)
      local n, busy = 0, 0
      local function reader()
        local ok, e = pcall(function()
          for _ in f:lines() do n = n + 1 end
        end)
        if not ok then
          assert(e.code == "EBUSY", tostring(e))
          busy = busy + 1
        end
      end
      aio.gather(aio.spawn(reader), aio.spawn(reader))
      print(busy >= 1, n <= 400000)
    ]]):format(dir .. "/big"))
    assert.are.equal(0, rc, out)
    assert.matches("true\ttrue", out)
  end)
end)
