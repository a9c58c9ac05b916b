-- The benchmarks must not rot: bench/run.sh --quick runs every workload
-- at a small size (luaio and the C baselines) and checks each completes.
-- It asserts no speed: speed lives in bench/RESULTS.md.
local helpers = require "spec.helpers"

describe("bench/run.sh --quick", function()
  it("runs every workload to completion", function()
    local rc, out = helpers.sh("LUAIO=" .. helpers.luaio .. " bench/run.sh --quick 2>&1")
    assert.are.equal(0, rc, out)
    for _, w in ipairs({"W1", "W2", "W3", "W4a", "W4b", "W5a", "W5b", "W6"}) do
      assert.matches("  " .. w .. " luaio: " .. w:sub(1, 2), out, 1, true)
    end
    assert.matches("bench quick: every workload completed", out, 1, true)
  end)
end)

describe("bench/json_encode.lua", function()
  it("encodes every shape with luaio.json and lua-cjson", function()
    local rc, shapes = helpers.sh(helpers.luaio .. " bench/json_encode.lua list")
    assert.are.equal(0, rc, shapes)
    assert.matches("w9", shapes)
    for s in shapes:gmatch("%S+") do
      for _, enc in ipairs({"luaio", "cjson"}) do
        local cmd = helpers.luaio .. " bench/json_encode.lua " .. s .. " "
          .. enc .. " 1 time 2>&1"
        local code, out = helpers.sh(cmd)
        assert.are.equal(0, code, out)
        assert.matches("^%d+\n$", out)
      end
    end
  end)
end)

describe("bench/w9_client.lua", function()
  it("sends its requests to the W9 server and counts every answer", function()
    local proc = require "luaio.proc"
    local srv <close> = proc.spawn{helpers.luaio, "bench/w9_serve.lua", "0",
                           stdout = "pipe"}
    local port = assert(srv.stdout:readline()):match("^ready%s+(%d+)")
    local ok, r = pcall(proc.run, {helpers.luaio, "bench/w9_client.lua",
                                   port, "300", "3", "8", "/json",
                                   timeout = 60})
    srv:kill()
    srv:wait()
    assert(ok, r)
    assert.are.equal(0, r.code, r.stderr)
  end)
end)
