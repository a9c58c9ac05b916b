-- Issue 13: the JSON decoder accepted overlong and surrogate UTF-8, turned
-- a lone \ud800 into "?" (and a bad pair into a wrong character), and
-- 1e400 into infinity; the encoder accepted the same invalid UTF-8.
local json = require "luaio.json"

local function fails(fn, message)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  assert.are.equal("json", e.kind, tostring(e))
  assert.are.equal(message, e.message)
  return e
end

describe("json.decode rejects what it used to let through #safety", function()
  it("overlong, surrogate and out-of-range UTF-8, with its position", function()
    fails(function() json.decode('"\192\128"') end,
      "json.decode: invalid UTF-8 at byte 2")
    fails(function() json.decode('["ok", "ab\224\128\128"]') end,
      "json.decode: invalid UTF-8 at byte 11")
    fails(function() json.decode('"\237\160\128"') end,
      "json.decode: invalid UTF-8 at byte 2")
    fails(function() json.decode('"\244\144\128\128"') end,
      "json.decode: invalid UTF-8 at byte 2")
    local e = fails(function() json.decode('{"k\193\191": 1}') end,
      "json.decode: invalid UTF-8 at byte 4")
    assert.are.equal(4, e.position)
  end)

  it("lone or mismatched surrogate escapes", function()
    fails(function() json.decode('["\\ud800"]') end,
      "json.decode: lone surrogate \\ud800 at byte 3")
    fails(function() json.decode('"x\\uDBFFy"') end,
      "json.decode: lone surrogate \\uDBFF at byte 3")
    fails(function() json.decode('"\\ud800\\u0041"') end,
      "json.decode: lone surrogate \\ud800 at byte 2")
    fails(function() json.decode('"\\udc00"') end,
      "json.decode: lone surrogate \\udc00 at byte 2")
    fails(function() json.decode('{"\\ud800": 1}') end,
      "json.decode: lone surrogate \\ud800 at byte 3")
    -- an escaped backslash before "u" is no escape; pairs and "?" are fine
    assert.are.equal("\\ud800", json.decode('"\\\\ud800"'))
    assert.are.equal("\240\159\152\128?", json.decode('"\\ud83d\\ude00?"'))
    assert.are.equal("h\195\169 \\\"?", json.decode('"h\\u00e9 \\\\\\"?"'))
  end)

  it("numbers out of range", function()
    fails(function() json.decode("1e400") end,
      "json.decode: number out of range at byte 1")
    fails(function() json.decode("  -1e400  ") end,
      "json.decode: number out of range at byte 3")
    fails(function() json.decode("[0, 1.5e999]") end,
      "json.decode: number out of range at byte 5")
    assert.are.equal(0.0, json.decode("1e-400"))   -- underflow is just 0
    assert.are.equal(1e308, json.decode("1e308"))
  end)
end)

describe("json.encode checks strings strictly #safety", function()
  it("rejects overlong, surrogate and out-of-range UTF-8", function()
    for _, s in ipairs({"\192\128", "\224\128\128", "\237\160\128",
                        "\244\144\128\128", "\255", "a\128"}) do
      fails(function() json.encode(s) end,
        "json.encode: string is not valid UTF-8")
      fails(function() json.encode({[s] = 1}) end,
        "json.encode: key is not valid UTF-8")
    end
    assert.are.equal('"\240\159\152\128\195\169"',
                     json.encode("\240\159\152\128\195\169"))
  end)

  it("never runs a metamethod, so a failing __tostring cannot abort", function()
    local bad = setmetatable({}, {__tostring = function() error("boom") end,
                                  __index = function() error("boom") end,
                                  __pairs = function() error("boom") end})
    assert.are.equal("{}", json.encode(bad))
    assert.are.equal('{"a":{}}', json.encode({a = bad}))
    local ud = io.stdout                 -- a userdata with a __tostring
    fails(function() json.encode(ud) end, "json.encode: cannot encode a userdata")
    fails(function() json.encode({ud}) end, "json.encode: cannot encode a userdata")
  end)
end)
