-- Fuzz target lines: the line splitters against a reference splitter.
--   f:lines()        a regular file whose payload straddles the first
--                    64 KiB read (a long filler line before it);
--   f:read_line()    a FIFO written in chunks by another task, so reads
--                    come back short at varying places;
--   s:readline()     a Unix socket written in chunks by a server task,
--                    with a max_line limit taken from the input.
-- Input: byte 1 picks max_line, byte 2 the filler's length, byte 3 the
-- number n (0-15) of chunk sizes in the next n bytes; the rest is the
-- payload, sent in chunks of those sizes, in turn.
local aio = require "luaio"
local fs = require "luaio.fs"
local net = require "luaio.net"
local input = ...
if #input < 3 then return end

local b1, b2, b3 = input:byte(1, 3)
local max_line = b1 < 128 and b1 + 1 or nil      -- nil: the default
local nsizes = b3 % 16
local sizes = {}
for i = 1, nsizes do sizes[i] = math.max(1, input:byte(3 + i) or 1) end
if #sizes == 0 then sizes[1] = 4096 end
local payload = input:sub(4 + nsizes)

local function chunks (s)
  local out, pos, i = {}, 1, 0
  while pos <= #s do
    i = i % #sizes + 1
    out[#out + 1] = s:sub(pos, pos + sizes[i] - 1)
    pos = pos + sizes[i]
  end
  return out
end

-- Lines split at "\n", one "\r" before it stripped; a last line without
-- "\n" is kept as is; a line (its "\r" counted) longer than limit ends
-- the list with limit = true.
local function reference (s, limit)
  local out, pos = {}, 1
  while pos <= #s do
    local nl = s:find("\n", pos, true)
    local raw = s:sub(pos, nl and nl - 1 or #s)
    if limit and #raw > limit then out.limit = true; break end
    if nl and raw:sub(-1) == "\r" then raw = raw:sub(1, -2) end
    out[#out + 1] = raw
    pos = nl and nl + 1 or #s + 1
  end
  return out
end

local function compare (what, got, want)
  local function fail (msg)
    local show = {}
    for i, l in ipairs(got) do show[i] = ("%q"):format(l) end
    error(("%s: %s\ngot:  %s%s\nwant: %d lines%s"):format(what, msg,
      table.concat(show, ", "), got.limit and " +limit" or "", #want,
      want.limit and " +limit" or ""), 0)
  end
  if #got ~= #want then fail("line count differs") end
  for i = 1, #want do
    if got[i] ~= want[i] then fail(("line %d differs"):format(i)) end
  end
  if not got.limit ~= not want.limit then fail("limit error differs") end
end

-- tmpfs when there is one: no disk I/O per input.
local dir = fs.mkdtemp(fs.exists("/dev/shm") and "/dev/shm/luaio-fuzz-"
                       or nil)
local function cleanup ()
  for _, name in ipairs(fs.readdir(dir)) do fs.remove(dir .. "/" .. name) end
  fs.rmdir(dir)
end

local function check_file ()
  local filler = ("x"):rep(65535 - b2 % 64)
  fs.write(dir .. "/file", filler .. "\n" .. payload)
  local f <close> = fs.open(dir .. "/file")
  local got = {}
  for line in f:lines() do got[#got + 1] = line end
  local want = reference(filler .. "\n" .. payload)
  compare("f:lines() of a regular file", got, want)
end

local function check_fifo ()
  local path = dir .. "/fifo"
  assert(fuzz.mkfifo(path))
  local got, writer = {}, nil
  do
    -- The reader opens first: opening a FIFO to write fails (ENXIO)
    -- while it has no reader, and the reader then waited for ever.
    local f <close> = fs.open(path)
    writer = aio.spawn(function()
      local w <close> = fs.open(path, "w")
      for _, c in ipairs(chunks(payload)) do w:write(c); aio.sleep(0) end
    end)
    while true do
      local line = f:read_line()
      if line == nil then break end
      got[#got + 1] = line
    end
  end
  writer:await()
  compare("f:read_line() of a FIFO", got, reference(payload))
end

local function check_stream ()
  local path = dir .. "/sock"
  local server = net.serve_unix(path, function(s)
    for _, c in ipairs(chunks(payload)) do s:write(c); aio.sleep(0) end
    s:close()
  end)
  local got = {}
  do
    local s <close> = net.connect_unix(path, {timeout = 5})
    if max_line then s:set_max_line(max_line) end
    while true do
      local ok, line = pcall(s.readline, s)
      if not ok then
        assert(aio.is_error(line, "limit"),
               "readline raised: " .. tostring(line))
        got.limit = true
        break
      end
      if line == nil then break end
      got[#got + 1] = line
    end
  end
  server:close({cancel = true})
  compare("s:readline() of a socket", got,
          reference(payload, max_line or 65536))
end

local ok, err = pcall(aio.timeout, 5, function()
  check_file()
  check_fifo()
  check_stream()
end)
cleanup()
if not ok then error(err, 0) end
