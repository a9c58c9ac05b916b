local aio = require "luaio"

local function assert_no_tasks()
  collectgarbage()
  assert.are.equal(1, #aio.tasks(), "tasks left running")
end

describe("aio.future", function()
  after_each(assert_no_tasks)

  it("hands its values to every task awaiting it", function()
    local f = aio.future()
    assert.is_false(f:done())
    local ts = {}
    for i = 1, 5 do ts[i] = aio.spawn(function() return f:await() end) end
    aio.sleep(0)
    f:set(1, nil, "three")
    assert.is_true(f:done())
    for i = 1, 5 do
      assert.are.same({1, nil, "three", n = 3}, table.pack(ts[i]:await()))
    end
    assert.are.same({1, nil, "three", n = 3}, table.pack(f:await()))
    local empty = aio.future()
    empty:set()
    assert.are.equal(0, select("#", empty:await()))
  end)

  it("raises the error it failed with at every await", function()
    local f = aio.future()
    local t = aio.spawn(function() return f:await() end)
    aio.sleep(0)
    local err = {code = 42}
    f:fail(err)
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.are.equal(err, e.value)          -- wrapped by the task
    local ok2, e2 = pcall(f.await, f)
    assert.is_false(ok2)
    assert.are.equal(err, e2)
    local s = aio.future()
    s:fail("plain message")
    assert.has_error(function() s:await() end, "plain message")
  end)

  it("leaves it pending for the others when an awaiter is cancelled", function()
    local f = aio.future()
    local a = aio.spawn(function() return f:await() end)
    local b = aio.spawn(function() return f:await() end)
    aio.sleep(0)
    a:cancel()
    assert.is_false(pcall(a.await, a))
    assert.is_false(f:done())
    f:set("ok")
    assert.are.equal("ok", b:await())
    local c = aio.future()
    assert.has_error(function() aio.timeout(0.01, c.await, c) end)
    assert.is_false(c:done())
  end)

  it("rejects completing twice and bad input", function()
    local f = aio.future()
    f:set(1)
    assert.has_error(function() f:set(2) end,
      "future:set: the future is already done")
    assert.has_error(function() f:fail("x") end,
      "future:fail: the future is already done")
    assert.are.equal(1, f:await())
    local g = aio.future()
    g:fail("e")
    assert.has_error(function() g:set(1) end,
      "future:set: the future is already done")
    assert.has_error(function() aio.future():fail() end,
      "bad argument #2 to 'future:fail' (error value expected)")
    assert.has_error(function() aio.future().set({}) end)
    local co = coroutine.wrap(function() return aio.future():await() end)
    assert.has_error(co, "future:await: not inside a luaio task (a plain "
      .. "coroutine, the main thread or a C callback cannot wait)")
  end)
end)
