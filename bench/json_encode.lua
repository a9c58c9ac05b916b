-- SPDX-License-Identifier: MIT (see LICENSE)
-- JSON encode: luaio.json against lua-cjson's cjson.encode on a few
-- document shapes. Run by bench/json.sh:
--   luaio bench/json_encode.lua SHAPE ENCODER N    encode N times, quiet
--   luaio bench/json_encode.lua SHAPE ENCODER N time  prints encodes/s
--   luaio bench/json_encode.lua list                the shape names
-- ENCODER is "luaio" or "cjson". The time mode measures CPU time of the
-- loop alone (clock), in rounds that alternate with nothing else.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
  .. package.path
local common = require "common"
local shapes = {}

-- The HTTP server benchmark's document (bench/w9_serve.lua), 2.2 KB.
shapes.w9 = common.w9_document

-- An array of 1,000 small objects.
function shapes.objects()
  local t = {}
  for i = 1, 1000 do
    t[i] = {id = i, user = "user" .. i, ok = i % 3 == 0, score = i % 97}
  end
  return t
end

-- Long strings needing escapes: quotes, backslashes, newlines, tabs and
-- a control character in every line, with some UTF-8 text.
function shapes.strings()
  local line = 'He said "hello"\tthen \\ left; caf\u{e9} \u{2603}\1 ok\n'
  local t = {}
  for i = 1, 20 do t[i] = string.rep(line, 40) end
  return t
end

-- Numbers: integers (small and 64-bit) and floats with few digits.
function shapes.numbers()
  local t = {}
  for i = 1, 1000 do
    t[#t + 1] = i * 7919
    t[#t + 1] = 1234567890123 + i
    t[#t + 1] = i * 0.25
    t[#t + 1] = i / 100
  end
  return t
end

-- Floats that need all 16-17 digits to read back (computed values).
function shapes.floats()
  local t = {}
  for i = 1, 1000 do t[i] = i / 7 end
  return t
end

local order = {"w9", "objects", "strings", "numbers", "floats"}

if arg[1] == "list" then
  print(table.concat(order, " "))
  return
end

local shape, which, n, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]
local doc = assert(shapes[shape], "no shape")()
local encode
if which == "cjson" then
  local cjson = require "cjson"
  cjson.encode_number_precision(14)
  encode = cjson.encode
else
  encode = require("luaio.json").encode
end
assert(#encode(doc) > 0)

if mode ~= "time" then
  for _ = 1, n do encode(doc) end
  return
end
-- encodes/s: the best of 5 rounds of n encodes each (CPU time)
local best = math.huge
for _ = 1, 5 do
  local t0 = os.clock()
  for _ = 1, n do encode(doc) end
  local dt = os.clock() - t0
  if dt < best then best = dt end
end
print(string.format("%.0f", n / best))
