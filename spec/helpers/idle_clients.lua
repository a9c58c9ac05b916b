-- SPDX-License-Identifier: MIT (see LICENSE)
-- A child luaio process that holds N keep-alive connections to an HTTP
-- server, for spec/server_idle_spec.lua: run as
--   luaio spec/helpers/idle_clients.lua PORT N [M]
-- it opens N connections (50 at a time), sends one GET on each and
-- reads its answer; once all are open and M of them (default N) are
-- answered it prints "ready N ANSWERED" and obeys commands on stdin,
-- one a line (stdin blocks the loop: between commands nothing runs):
--   close K   closes K of the connections: "closed K"
--   eof       waits until the server closed every connection: "eof N"
--   quit      closes everything and exits.
--   wait T    waits until T in all were answered: "answered T"
-- A connection the server does not accept (max_connections) stays
-- unanswered until one goes; N - M must then be at most 50 (a worker
-- waits on each).
local aio = require "luaio"
local net = require "luaio.net"

local port, n = tonumber(arg[1]), tonumber(arg[2])
local expect = tonumber(arg[3]) or n
local WORKERS = 50
local conns, opened, answered = {}, 0, 0
local more = aio.event()

local function say(...)
  io.stdout:write(table.concat({...}, " "), "\n")
  io.stdout:flush()
end

-- Read one response (head, then a Content-Length body).
local function read_answer(c)
  local len = 0
  local status = c:readline()
  assert(status and status:find("^HTTP/1%.1 200 "), status)
  while true do
    local line = c:readline()
    if line == "" then break end
    local v = line:match("^[Cc]ontent%-[Ll]ength: *(%d+)")
    if v then len = tonumber(v) end
  end
  if len > 0 then c:readexactly(len) end
end

local function open(i)
  local c = net.connect("127.0.0.1", port)
  conns[i] = c
  c:write("GET /idle/" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n")
  opened = opened + 1
  more:set()
  read_answer(c)
  answered = answered + 1
  more:set()
end

-- Workers take the connection numbers in turn; with a limit on the
-- server side some wait for their answer until connections go.
local next_i = 0
local workers = {}
for w = 1, WORKERS do
  workers[w] = aio.spawn(function()
    while next_i < n do
      next_i = next_i + 1
      open(next_i)
    end
  end)
end

local function wait_answered(total)
  while answered < total or opened < n do
    more:clear()
    more:wait()
  end
end

local closed_from = 1
local function close_some(k)
  for i = closed_from, closed_from + k - 1 do conns[i]:close() end
  closed_from = closed_from + k
end

local function wait_eof()
  local left = 0
  for i = closed_from, n do
    local ok, data = pcall(conns[i].read, conns[i])
    if ok and data ~= nil then left = left + 1 end
    conns[i]:close()
  end
  return n - closed_from + 1 - left
end

local function main()
  wait_answered(expect)
  say("ready", n, answered)
  for line in io.stdin:lines() do
    local cmd, k = line:match("^(%a+) ?(%d*)")
    k = tonumber(k)
    if cmd == "close" then close_some(k); say("closed", k)
    elseif cmd == "wait" then wait_answered(k); say("answered", answered)
    elseif cmd == "eof" then say("eof", wait_eof())
    else break end
  end
  for _, t in ipairs(workers) do t:cancel() end
  for _, c in ipairs(conns) do c:close() end
end

main()
