-- Issue 20, item 7: argument errors name the function the script
-- called ('fs.mkdir', 'file:seek'), never an internal one ('mkdir',
-- 'seek') or a stack slot (#-1).
local aio = require "luaio"
local fs = require "luaio.fs"
local net = require "luaio.net"
local helpers = require "spec.helpers"

local dir
local make_dir, remove_dir = helpers.temp_dir_hooks(function(d) dir = d end)
before_each(make_dir)
after_each(remove_dir)

local function fails_with(want, fn)
  local ok, e = pcall(fn)
  assert.is_false(ok, "no error")
  e = tostring(e)
  assert.are.equal(want, e:sub(-#want))
end

describe("argument errors name the call", function()
  it("fs.mkdir and fs.write check the mode field", function()
    fails_with("bad argument #2 to 'fs.mkdir' (mode must be an integer)",
      function() fs.mkdir(dir .. "/a", {mode = "rwx"}) end)
    fails_with("bad argument #3 to 'fs.write' (mode must be an integer)",
      function() fs.write(dir .. "/b", "x", {mode = 1.5}) end)
    fs.mkdir(dir .. "/c", {mode = 448})
    assert.are.equal("directory", fs.stat(dir .. "/c").type)
  end)

  it("file:seek checks whence", function()
    fs.write(dir .. "/f", "hello")
    local f <close> = fs.open(dir .. "/f")
    fails_with("bad argument #2 to 'file:seek' (whence must be 'set', "
               .. "'cur' or 'end')", function() f:seek("middle") end)
    assert.are.equal(2, f:seek("set", 2))
    assert.are.equal(2, f:seek())
  end)

  it("net.serve and net.serve_unix check backlog", function()
    fails_with("bad argument #4 to 'net.serve' (backlog must be an integer)",
      function() net.serve("127.0.0.1", 0, function() end, {backlog = "x"}) end)
    fails_with("bad argument #3 to 'net.serve_unix' (backlog must be an "
               .. "integer)", function()
      net.serve_unix(dir .. "/sock", function() end, {backlog = 0.5})
    end)
  end)

  it("timeout fields name the options argument", function()
    local t = aio.spawn(function() end)
    fails_with("bad argument #2 to 'aio.wait' (timeout must be a number of "
               .. "seconds >= 0)", function()
      aio.wait({t}, {timeout = "x"})
    end)
    fails_with("bad argument #2 to 'aio.as_completed' (timeout must be a "
               .. "number of seconds >= 0)", function()
      aio.as_completed({t}, {timeout = -1})
    end)
    fails_with("bad argument #3 to 'net.connect' (timeout must be a number "
               .. "of seconds >= 0)", function()
      net.connect("127.0.0.1", 1, {timeout = {}})
    end)
    fails_with("bad argument #2 to 'net.connect_unix' (timeout must be a "
               .. "number of seconds >= 0)", function()
      net.connect_unix(dir .. "/none", {timeout = 0 / 0})
    end)
    t:await()
    local done = aio.wait({t}, {timeout = 1})
    assert.are.equal(1, #done)
  end)
end)
