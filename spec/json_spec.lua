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

  it("refuses what JSON cannot hold", function()
    fails(function() json.encode(0 / 0) end, "NaN")
    fails(function() json.encode(math.huge) end, "infinity")
    fails(function() json.encode("\255") end, "UTF%-8")
    fails(function() json.encode({1, 2, nil, 4}) end, "holes")
    fails(function() json.encode({[true] = 1}) end, "keys")
    fails(function() json.encode(print) end, "cannot encode a function")
    local t = {}
    t.self = t
    fails(function() json.encode(t) end, "nesting too deep")
  end)

  it("indents when asked", function()
    assert.matches('{\n +"a": 1\n}', json.encode({a = 1}, {indent = true}))
  end)
end)
