local json = require "luaio.json"

local function fails(fn, pattern)
  local ok, e = pcall(fn)
  assert.is_false(ok)
  assert.are.equal("json", e.kind)
  assert.matches(pattern, e.message)
  return e
end

describe("json.decode", function()
  it("keeps integers as integers and 64-bit ids exact", function()
    local v = json.decode('[1, 1.0, 12345678901234567, -9007199254740993]')
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal("float", math.type(v[2]))
    assert.are.equal(12345678901234567, v[3])
    assert.are.equal(-9007199254740993, v[4])
  end)

  it("decodes objects, arrays, strings, booleans and null", function()
    local v = json.decode('{"a": [true, false, null], "s": "h\\u00e9llo"}')
    assert.are.same({true, false, json.null}, v.a)
    assert.are.equal("héllo", v.s)
  end)

  it("keeps empty arrays distinct from empty objects", function()
    assert.are.equal('{"a":[],"o":{}}', json.encode(json.decode('{"a":[],"o":{}}'))
      :gsub('"o":{},"a":%[%]', '"a":[],"o":{}'))
  end)

  it("names the position of an error", function()
    local e = fails(function() json.decode('{"a": tru}') end, "at byte")
    assert.is_true(e.position > 0)
    fails(function() json.decode("[1, 2") end, "premature EOF")
    fails(function() json.decode('"\255"') end, "invalid")
  end)

  it("bounds nesting depth", function()
    fails(function() json.decode(string.rep("[", 1000) .. string.rep("]", 1000)) end,
      "nesting too deep")
  end)

  it("rejects a non-string", function()
    assert.has_error(function() json.decode({}) end,
      "bad argument #1 to 'json.decode' (string expected, got table)")
  end)
end)

describe("json.encode", function()
  it("round-trips floats exactly and keeps them floats", function()
    for _, x in ipairs({0.1, 1 / 3, 1e300, -2.5e-308, 1.0, 123456.789}) do
      local back = json.decode(json.encode(x))
      assert.are.equal(x, back)
      assert.are.equal("float", math.type(back))
    end
    assert.are.equal("0.1", json.encode(0.1))
  end)

  it("encodes integers exactly", function()
    assert.are.equal("[12345678901234567,-1]", json.encode({12345678901234567, -1}))
  end)

  it("encodes tables, json.null and json.array", function()
    assert.are.equal('{"a":{"b":null}}', json.encode({a = {b = json.null}}))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode({}))
  end)

  it("encodes sequences whatever order their keys were set in", function()
    -- keys met out of order make the encoder undo what it wrote of the
    -- array and check the keys first: the text must not change
    local rev, mixed = {}, {}
    for i = 6, 1, -1 do rev[i] = {"same", i} end
    for _, i in ipairs({3, 1, 4, 2}) do mixed[i] = "w" .. i end
    assert.are.equal('[["same",1],["same",2],["same",3],["same",4],'
      .. '["same",5],["same",6]]', json.encode(rev))
    assert.are.equal('{"a":["w1","w2","w3","w4"],"b":"w3"}',
      (json.encode({a = mixed, b = "w3"}):gsub('^{"b":"w3","a":(.*)}$',
        '{"a":%1,"b":"w3"}')))
    fails(function() json.encode({"same", "same", ["2"] = 1}) end, "keys")
  end)

  it("refuses what JSON cannot hold", function()
    fails(function() json.encode(0 / 0) end, "NaN")
    fails(function() json.encode(math.huge) end, "infinity")
    fails(function() json.encode("\255") end, "UTF%-8")
    fails(function() json.encode({1, 2, nil, 4}) end, "holes")
    fails(function() json.encode({[true] = 1}) end, "keys")
    -- as many number keys as the length, but one beyond it: nothing may
    -- be dropped without a word
    fails(function() json.encode({1, nil, 3, [10] = "x"}) end, "holes")
    fails(function() json.encode({1, 2, [0] = "zero"}) end, "holes")
    fails(function() json.encode({1, [-1] = "x", [3] = 3}) end, "holes")
    fails(function() json.encode(print) end, "cannot encode a function")
    local t = {}
    t.self = t
    fails(function() json.encode(t) end, "nesting too deep")
  end)

  it("indents when asked", function()
    assert.matches('{\n +"a": 1\n}', json.encode({a = 1}, {indent = true}))
  end)
end)

describe("json.encode numbers", function()
  -- What the text must be: the shortest of %.15g, %.16g, %.17g that
  -- reads back, with ".0" on an integral value (printf is the oracle).
  local function printf_form(x)
    local s
    for p = 15, 17 do
      s = string.format("%." .. p .. "g", x)
      if tonumber(s) == x then break end
    end
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  end

  it("writes exotic floats exactly and reads them back", function()
    assert.are.equal("-0.0", json.encode(-0.0))
    assert.are.equal("0.0", json.encode(0.0))
    assert.are.equal(-math.huge, 1 / json.decode(json.encode(-0.0)))
    assert.are.equal("1e+308", json.encode(1e308))
    assert.are.equal("1.7976931348623157e+308",
      json.encode(1.7976931348623157e308))
    assert.are.equal("4.94065645841247e-324", json.encode(5e-324))
    assert.are.equal("9007199254740992.0", json.encode(2.0 ^ 53))
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.are.equal("0.3333333333333333", json.encode(1 / 3))
    assert.are.equal("1e-05", json.encode(0.00001))
    assert.are.equal("0.0001", json.encode(0.0001))
    assert.are.equal("1e+15", json.encode(1e15))
    assert.are.equal("999999999999999.0", json.encode(999999999999999.0))
    assert.are.equal("-2.5", json.encode(-2.5))
    for _, x in ipairs({1e308, 5e-324, 2.0 ^ 53, 0.1 + 0.2, -1 / 7, 1e15,
                        0.00001}) do
      assert.are.equal(x, json.decode(json.encode(x)))
    end
  end)

  it("writes integers exactly, the extremes too", function()
    assert.are.equal("9007199254740993", json.encode((1 << 53) + 1))
    assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
    assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.are.equal("[0,-1,10]", json.encode({0, -1, 10}))
    assert.are.equal(math.mininteger, json.decode(json.encode(math.mininteger)))
  end)

  it("writes every float as printf's shortest exact form", function()
    math.randomseed(17)
    for i = 1, 4000 do
      local x
      if i % 4 == 0 then       -- any bit pattern
        local bits = math.random(math.mininteger, math.maxinteger)
        x = string.unpack("d", string.pack("i8", bits))
      elseif i % 4 == 1 then   -- few digits
        x = math.random(-10 ^ 9, 10 ^ 9) / 10 ^ math.random(0, 9)
      elseif i % 4 == 2 then   -- ties when rounding to 17 digits
        x = 2.0 ^ math.random(40, 49) + math.random(0, 4095) / 8
      else
        x = math.random() * 10 ^ math.random(-6, 16)
      end
      if x == x and x ~= math.huge and x ~= -math.huge then
        local s = json.encode(x)
        assert.are.equal(printf_form(x), s)
        assert.are.equal(x, json.decode(s))
      end
    end
  end)
end)

describe("json.encode strings", function()
  local function escape(s)   -- the expected escapes, byte by byte
    return '"' .. s:gsub('[%c"\\]', function(c)
      local short = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b",
        ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
      if short[c] then return short[c] end
      if c == "\127" then return c end
      return string.format("\\u%04X", c:byte())
    end) .. '"'
  end

  it("escapes quotes, backslashes, control characters, not / or DEL",
     function()
    assert.are.equal('"a\\"b\\\\c/\\n\\t\\r\\b\\f\\u0001\\u001F\127"',
      json.encode('a"b\\c/\n\t\r\b\f\1\31\127'))
    assert.are.equal('"\\u0000x"', json.encode("\0x"))
    assert.are.equal('""', json.encode(""))
  end)

  it("escapes at every offset of long strings, UTF-8 kept", function()
    for _, special in ipairs({'"', "\\", "\n", "\1", "\u{e9}", "\u{1F600}"}) do
      for i = 0, 20 do
        local s = string.rep("a", i) .. special .. string.rep("b", 25 - i)
          .. special
        assert.are.equal(escape(s), json.encode(s))
      end
    end
    -- across the encoder's 4 KiB steps, a 4-byte character straddling
    for i = 4090, 4100 do
      local s = string.rep("x", i) .. "\u{1F600}" .. string.rep('"', 3)
      assert.are.equal(escape(s), json.encode(s))
      assert.are.equal(s, json.decode(json.encode(s)))
    end
  end)

  it("refuses invalid UTF-8 anywhere in a long string or key", function()
    for _, bad in ipairs({"\255", "\xC0\x80", "\xED\xA0\x80",
                          "\xF4\x90\x80\x80", "\xE2\x82"}) do
      for _, at in ipairs({0, 7, 8, 4095, 4096, 5000}) do
        local s = string.rep("a", at) .. bad .. string.rep("z", 9)
        fails(function() json.encode(s) end, "string is not valid UTF%-8")
        fails(function() json.encode({[s] = 1}) end, "key is not valid UTF%-8")
      end
    end
  end)
end)

describe("json.encode tables", function()
  it("bounds nesting at 120 levels", function()
    local t = {}
    for _ = 1, 120 do t = {t} end
    assert.are.equal(string.rep("[", 120) .. "{}" .. string.rep("]", 120),
      json.encode(t))
    local o = {}
    for _ = 1, 121 do o = {x = o} end
    local e = fails(function() json.encode(o) end, "nesting too deep")
    assert.are.equal("json.encode: nesting too deep (a cycle?)", e.message)
  end)

  it("indents as yajl did, empty containers included", function()
    assert.are.equal('{\n    "a": [\n        1,\n        {\n' ..
      '            "b": null\n        }\n    ]\n}\n',
      json.encode({a = {1, {b = json.null}}}, {indent = true}))
    assert.are.equal('[\n    [\n\n    ],\n    {\n\n    }\n]\n',
      json.encode({json.array(), {}}, {indent = true}))
    assert.are.equal('"x"\n', json.encode("x", {indent = true}))
  end)

  it("keeps working after an error, and after a large document", function()
    fails(function() json.encode({1, {2, 0 / 0}}) end, "NaN")
    assert.are.equal("[1,2]", json.encode({1, 2}))
    local big = {}
    for i = 1, 50000 do big[i] = "item " .. i end
    local s = json.encode(big)
    assert.are.equal(50000, #json.decode(s))
    assert.are.equal('{"a":true}', json.encode({a = true}))
  end)

  it("refuses bad arguments and values", function()
    local ok, e = pcall(json.encode)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w.]*encode' %(value expected%)", e)
    fails(function() json.encode(coroutine.create(print)) end,
      "cannot encode a thread")
    fails(function() json.encode({1, 2, x = 3}) end, "mixes keys")
    fails(function() json.encode({[1.5] = 1}) end, "mixes keys")
    fails(function() json.encode(json.array({a = 1})) end, "mixes keys")
    fails(function() json.encode({-math.huge}) end, "infinity")
  end)
end)
