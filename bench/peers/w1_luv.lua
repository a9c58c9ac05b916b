-- W1 on luv (libuv for Lua, run by the stock lua5.4): a minimal task
-- scheduler of coroutines, a ready queue drained by a check handle
-- (an idle handle keeps the poll phase from blocking). N tasks each
-- yield one loop turn and return their index; the main coroutine
-- awaits them all. usage: lua5.4 w1_luv.lua [N]
local uv = require "luv"
local N = tonumber(arg[1]) or 100000
local ready, nxt = {}, {}
local idle, check = uv.new_idle(), uv.new_check()

local function wake (co) ready[#ready + 1] = co end

local function spawn (f, ...)
  local t = {done = false}
  local args = table.pack(...)
  t.co = coroutine.create(function()
    t.result = f(table.unpack(args, 1, args.n))
    t.done = true
    if t.waiter then wake(t.waiter) end
  end)
  wake(t.co)
  return t
end

local function yield_turn ()
  nxt[#nxt + 1] = coroutine.running()
  coroutine.yield()
end

local function await (t)
  if not t.done then t.waiter = coroutine.running(); coroutine.yield() end
  return t.result
end

idle:start(function() end)
check:start(function()
  local q = ready
  for i = 1, #nxt do q[#q + 1] = nxt[i] end
  nxt, ready = {}, {}
  local i = 1
  while i <= #q do                       -- woken meanwhile: same drain
    assert(coroutine.resume(q[i]))
    i = i + 1
    if i > #q and #ready > 0 then q, ready, i = ready, {}, 1 end
  end
  if #nxt == 0 and #ready == 0 then idle:stop() end
end)

wake(coroutine.create(function()
  local t0 = uv.hrtime()
  local tasks = {}
  for i = 1, N do
    tasks[i] = spawn(function(k) yield_turn(); return k end, i - 1)
  end
  local s = 0
  for i = 1, N do s = s + await(tasks[i]) end
  assert(s == N * (N - 1) // 2, "wrong sum")
  print(("W1 luv %.0f tasks/s"):format(N / ((uv.hrtime() - t0) / 1e9)))
  idle:close(); check:close()
end))
uv.run()
