-- Fuzz target json: decode -> encode -> decode gives an equal value, in
-- both output styles; invalid input is a luaio.Error of kind "json".
-- An input starting with byte 1 (never valid JSON) is instead a little
-- program building a Lua value (see build below) for encode -> decode:
-- values decode never makes (any double, any bytes in strings).
local aio = require "luaio"
local json = require "luaio.json"
local text = ...

-- No known bug is tolerated here any more (json-decode-inf, in
-- spec/fuzz/crashes/, is fixed: 1e400 is an error, never infinity).

-- Equal as JSON values: same types, integers stay integers, floats are
-- the same double (-0.0 included), the same marks (json.null, [] vs {}).
local function same (a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    if math.type(a) == "float" then
      return ("%a"):format(a) == ("%a"):format(b)
    end
    return a == b
  end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function depth (v)
  if type(v) ~= "table" then return 0 end
  local d = 0
  for _, x in pairs(v) do d = math.max(d, depth(x)) end
  return d + 1
end

local function show (v)
  local ok, s = pcall(json.encode, v)
  return ok and s or tostring(v)
end

-- Build a value from the bytes after the first: each value starts with
-- an opcode byte: 0 integer (8 bytes), 1 float (8 bytes), 2 string (a
-- length byte and the bytes), 3 boolean, 4 json.null, 5 array (a count
-- byte, then the elements), 6 object (a count byte, then key strings and
-- values), 7 an empty json.array.
local function build (s)
  local pos = 2
  local function byte ()
    local b = s:byte(pos) or 0
    pos = pos + 1
    return b
  end
  local function bytes (n)
    local b = s:sub(pos, pos + n - 1)
    pos = pos + n
    return b .. ("\0"):rep(n - #b)
  end
  local function str () return bytes(byte()) end
  local value
  function value (d)
    local op = byte() % 8
    if d > 12 and (op == 5 or op == 6) then op = 4 end
    if op == 0 then return (string.unpack("<i8", bytes(8)))
    elseif op == 1 then return (string.unpack("<d", bytes(8)))
    elseif op == 2 then return str()
    elseif op == 3 then return byte() % 2 == 1
    elseif op == 4 then return json.null
    elseif op == 5 then
      local t = {}
      for i = 1, byte() % 8 do t[i] = value(d + 1) end
      return t
    elseif op == 6 then
      local t = {}
      for _ = 1, byte() % 8 do t[str()] = value(d + 1) end
      return t
    end
    return json.array({})
  end
  return value(0)
end

local function has_nan_or_inf (v)
  if type(v) == "number" then
    return v ~= v or v == math.huge or v == -math.huge
  end
  if type(v) ~= "table" then return false end
  for _, x in pairs(v) do if has_nan_or_inf(x) then return true end end
  return false
end

if text:byte(1) == 1 then
  local v = build(text)
  local eok, out = pcall(json.encode, v)
  if not eok then
    -- NaN, infinity and invalid UTF-8 are refused; nothing else is.
    assert(aio.is_error(out, "json"), "encode raised: " .. tostring(out))
    assert(has_nan_or_inf(v) or tostring(out):find("UTF-8", 1, true),
           "encode refused a value: " .. tostring(out))
    return
  end
  assert(not has_nan_or_inf(v), "encode accepted NaN or infinity: " .. out)
  local dok, back = pcall(json.decode, out)
  assert(dok, "decode of encode's output failed: " .. tostring(back)
         .. "\noutput: " .. out)
  assert(same(v, back), "round trip differs:\n" .. out .. "\n"
         .. show(back))
  return
end

local ok, v = pcall(json.decode, text)
if not ok then
  assert(aio.is_error(v, "json"), "decode raised a non-json error: "
         .. tostring(v))
  return
end

for _, opts in ipairs({{}, {indent = true}}) do
  local eok, out = pcall(json.encode, v, opts)
  if not eok then
    -- Decoding allows deeper nesting (512) than encoding (120).
    assert(aio.is_error(out, "json") and depth(v) > 120,
           "encode of a decoded value failed: " .. tostring(out))
  else
    assert(type(out) == "string", "encode returned a " .. type(out))
    local dok, back = pcall(json.decode, out)
    assert(dok, "decode of encode's output failed: " .. tostring(back)
           .. "\noutput: " .. out)
    assert(same(v, back), "round trip differs:\n" .. show(v) .. "\n"
           .. show(back))
  end
end
