-- Issue 13 item 18: every C function of the luaio module that pushes a
-- variable number of values makes room first (lua_checkstack): spawn
-- arguments, gather results, task results, queue items, wait sets. Each
-- with 200 and 10,000 values where the API allows.
local aio = require "luaio"
local helpers = require "spec.helpers"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local function count(...) return select("#", ...), (select(select("#", ...), ...)) end

-- Run a script as a child process (the old code crashed): rc, output.
local function run_child(src)
  local path = helpers.script(src)
  local rc, out = helpers.sh("timeout 120 " .. helpers.luaio .. " " .. path
                             .. " 2>&1")
  os.remove(path)
  return rc, out
end

describe("many arguments to what spawns a task #safety", function()
  after_each(assert_no_tasks)

  it("aio.spawn, g:spawn and aio.shield in a child process", function()
    local rc, out = run_child([[
      local aio = require "luaio"
      local function range(n) local t = {} for i = 1, n do t[i] = i end return t end
      local function count(...) return select("#", ...), (select(select("#", ...), ...)) end
      for _, n in ipairs({17, 200, 10000}) do
        local args = range(n)
        print("spawn", n, aio.spawn(count, table.unpack(args)):await())
        aio.group(function(g)
          print("group", n, g:spawn(count, table.unpack(args)):await())
        end)
        print("shield", n, aio.shield(count, table.unpack(args)))
      end
      print("done")
    ]])
    assert.are.equal(0, rc, out)
    for _, n in ipairs({17, 200, 10000}) do
      for _, what in ipairs({"spawn", "group", "shield"}) do
        assert.matches(what .. "\t" .. n .. "\t" .. n .. "\t" .. n, out, 1, true)
      end
    end
    assert.matches("done", out, 1, true)
  end)

  it("arguments, nils, callables, errors and cancels (child process)", function()
    local rc, out = run_child([[
      local aio = require "luaio"
      local function range(n) local t = {} for i = 1, n do t[i] = i end return t end
      local t = aio.spawn(function(...) return select("#", ...), ... end,
                          nil, 2, nil, table.unpack(range(300)))
      print("nils", t:await())
      local callable = setmetatable({}, {__call = function(_, ...)
        return select("#", ...)
      end})
      print("callable", aio.spawn(callable, table.unpack(range(200))):await())
      t = aio.spawn(function() aio.sleep(10) end, table.unpack(range(100)))
      aio.sleep(0)
      t:cancel()
      local ok, e = pcall(t.await, t)
      print("cancelled", ok, aio.is_cancelled(e))
      t = aio.spawn(function() error("bad", 0) end, table.unpack(range(100)))
      ok, e = pcall(t.await, t)
      print("failed", ok, tostring(e):match("bad"))
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("nils\t303\tnil\t2\tnil\t1\t2", out)
    assert.matches("callable\t200", out)
    assert.matches("cancelled\tfalse\ttrue", out)
    assert.matches("failed\tfalse\tbad", out)
  end)
end)

describe("many results and waited values #safety", function()
  after_each(assert_no_tasks)

  for _, n in ipairs({200, 10000}) do
    it("task results: " .. n, function()
      local t = aio.spawn(function() aio.sleep(0); return table.unpack(range(n)) end)
      assert.are.same({n, n}, {count(t:await())})
      assert.are.same({n, n}, {count(t:result())})
      assert.are.same({n, n}, {count(aio.wait_for(t, 60))})
      assert.are.same({n, n}, {count(aio.shield(t))})
      assert.are.same({n, n}, {count(aio.timeout(60, table.unpack, range(n)))})
      assert.are.same({n, n}, {count(aio.shielded(table.unpack, range(n)))})
      assert.are.same({n, n}, {count(aio.group(function() return table.unpack(range(n)) end))})
    end)

    it("gather, gather_all, wait and as_completed over " .. n .. " tasks", function()
      local tasks = {}
      for i = 1, n do tasks[i] = aio.spawn(function() aio.sleep(0); return i end) end
      assert.are.same({n, n}, {count(aio.gather(tasks))})
      assert.are.same({n, n}, {count(aio.gather_all(table.unpack(tasks)))})
      local done, pending = aio.wait(tasks)
      assert.are.same({n, 0}, {#done, #pending})
      local seen = 0
      for _ in aio.as_completed(tasks) do seen = seen + 1 end
      assert.are.equal(n, seen)
    end)

    it("queues, semaphores and conditions with " .. n .. " values", function()
      for _, q in ipairs({aio.queue(), aio.lifo_queue(), aio.priority_queue()}) do
        for i = 1, n do q:put(i) end
        local sum = 0
        for _ = 1, n do sum = sum + q:get() end
        assert.are.equal(n * (n + 1) // 2, sum)
      end
      local s = aio.semaphore(1)
      assert.are.same({n, n}, {count(s:with(function(...) return ... end, table.unpack(range(n))))})
      local c = aio.condition()
      assert.are.same({n, n}, {count(c:with(function(...) return ... end, table.unpack(range(n))))})
    end)
  end
end)
