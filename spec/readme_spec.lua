-- Every ```lua block of README.md runs (so the manual stays true), and
-- its `--> value` comments are checked against what it prints. Blocks
-- marked ```lua norun (they need a network service) are only compiled.
local helpers = require "spec.helpers"

local function blocks(text)
  local out = {}
  for info, code in ("\n" .. text):gmatch("\n```lua([^\n]*)\n(.-)\n```") do
    out[#out + 1] = {norun = info:match("norun") ~= nil, code = code}
  end
  return out
end

-- The expected output: every `--> a  b` comment, in order.
local function expected(code)
  local lines = {}
  for want in code:gmatch("%-%->%s*([^\n]*)") do lines[#lines + 1] = want end
  return lines
end

local f = assert(io.open("README.md"))
local readme = f:read("a")
f:close()

describe("README.md examples", function()
  for i, b in ipairs(blocks(readme)) do
    local first = b.code:match("[^\n]*")
    it(("block %d runs: %s"):format(i, first), function()
      if b.norun then
        assert(load(b.code, "=README block " .. i))
        return
      end
      local rc, out = helpers.run_luaio(b.code)
      assert.are.equal(0, rc, out)
      -- each expected value must appear in the output, in order
      local pos = 1
      for _, want in ipairs(expected(b.code)) do
        for word in want:gmatch("%S+") do
          local s, e = out:find(word, pos, true)
          assert(s, ("README block %d: expected %q in output:\n%s")
                    :format(i, word, out))
          pos = e + 1
        end
      end
    end)
  end
end)
