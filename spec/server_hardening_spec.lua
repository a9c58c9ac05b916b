-- http.serve against hostile clients and files, over real sockets:
-- a WebSocket frame announcing more than max_message is refused at its
-- header; http.static never serves a file a swapped symlink leads to
-- outside root.
local aio = require "luaio"
local fs = require "luaio.fs"
local http = require "luaio.http"
local helpers = require "spec.helpers"

local ws = require "spec.helpers.ws"
local header, frame = ws.header, ws.frame

-- A server frame: opcode, payload (a minute at most: a bound for a hang).
local function read_frame(c)
  return aio.timeout(60, function()
    local op, payload = ws.read_frame(c)
    return op, payload
  end)
end

local function connect(port)
  return (ws.connect(port))
end

describe("req:websocket against a frame announcing too much", function()
  local srv, ended
  before_each(function()
    ended = aio.event()
    srv = http.serve{handler = function(req)
      local ws = req:websocket{max_message = 1000}
      while true do
        local msg = ws:receive()
        if not msg then break end
        ws:send(msg)
      end
      ended:set()
    end}
  end)
  after_each(function()
    srv:close()
    collectgarbage()
    assert.are.equal(1, #aio.tasks(), "tasks left running")
  end)

  it("closes with 1009 at the header of a 2^40-byte frame", function()
    local c <close> = connect(srv.port)
    c:write(header(2, 1 << 40))
    local op, payload = read_frame(c)
    assert.are.same({8, 1009}, {op, (string.unpack(">I2", payload))})
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)

  it("counts what a fragmented message already holds", function()
    local c <close> = connect(srv.port)
    c:write(frame(1, ("x"):rep(600), false) .. header(0, 600))
    local op, payload = read_frame(c)
    assert.are.same({8, 1009}, {op, (string.unpack(">I2", payload))})
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)

  it("still takes a message up to max_message, header by header", function()
    local c <close> = connect(srv.port)
    c:write(header(1, 400, false):sub(1, 3))
    aio.sleep(0.05)
    c:write(header(1, 400, false):sub(4) .. ("y"):rep(400))
    c:write(header(0, 600) .. ("z"):rep(600))
    local op, payload = read_frame(c)
    assert.are.same({1, ("y"):rep(400) .. ("z"):rep(600)}, {op, payload})
    c:write(frame(8, string.pack(">I2", 1000)))
    assert.are.equal(8, (read_frame(c)))
    assert.is_true(aio.wait_for(aio.spawn(ended.wait, ended), 5))
  end)
end)

describe("http.static against a folder swapped for a symlink", function()
  local dir, root, srv, swapper
  local make, remove = helpers.temp_dir_hooks(function(p) dir = p end)
  before_each(function()
    make()
    root = dir .. "/www"
    fs.mkdir(root .. "/sw", {parents = true})
    fs.write(root .. "/sw/f.txt", "inside")
    fs.mkdir(dir .. "/out")
    fs.write(dir .. "/out/f.txt", "SECRET")      -- the same length
    os.execute(("ln -s '%s/out' '%s/sw_l'"):format(dir, root))
    os.execute(("ln -s '%s/out/f.txt' '%s/leak.txt'"):format(dir, root))
    srv = http.serve{handler = http.static(root)}
  end)
  after_each(function()
    if swapper then os.execute("kill " .. swapper) end
    swapper = nil
    srv:close()
    remove()
  end)

  local function get(path)
    return http.get("http://127.0.0.1:" .. srv.port .. path)
  end

  it("gives 404 for a symlink out of root", function()
    assert.are.equal(404, get("/leak.txt").status)
    assert.are.equal(404, get("/sw_l/f.txt").status)
    assert.are.equal("inside", get("/sw/f.txt").body)
  end)

  it("never serves the outside file while the folder is swapped", function()
    -- Another process swaps www/sw and www/sw_l, the folder and a
    -- symlink to out, as one rename (RENAME_EXCHANGE), for at most a
    -- minute; 4 clients ask for sw/f.txt meanwhile.
    local py = helpers.script([[
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
end = time.time() + 60
open("../started", "w").close()
while time.time() < end:
    if libc.renameat2(-100, b"sw", -100, b"sw_l", 2) != 0:
        os.rename("sw", "sw_d"); os.rename("sw_l", "sw")
        os.rename("sw", "sw_l"); os.rename("sw_d", "sw")
    time.sleep(0.0002)   # each state lasts about a request's span
]])
    swapper = helpers.background("/usr/bin/python3 " .. py .. " " .. root,
                                 {track = false})
    for _ = 1, 600 do                   -- up to a minute on a loaded box
      if fs.exists(dir .. "/started") then break end
      aio.sleep(0.1)
    end
    local seen, bodies = {}, {}
    local function client()
      for _ = 1, 75 do
        local r = get("/sw/f.txt")
        seen[r.status] = (seen[r.status] or 0) + 1
        if r.status == 200 then bodies[r.body] = true end
      end
    end
    aio.gather(client, client, client, client)
    os.remove(py)
    seen[200], seen[404] = nil, nil
    assert.are.same({}, seen)
    bodies.inside = nil
    assert.are.same({}, bodies)
  end)
end)

describe("http.serve and the Host header", function()
  local raw = require("spec.helpers.serve").raw
  local srv, calls
  before_each(function()
    calls = 0
    srv = http.serve{handler = function() calls = calls + 1; return "ok" end}
  end)
  after_each(function() srv:close() end)

  it("answers 400 to an HTTP/1.1 request without Host", function()
    local out = raw(srv.port, "GET / HTTP/1.1\r\n\r\n")
    assert.matches("^HTTP/1.1 400", out)
    out = raw(srv.port, "GET / HTTP/1.1\r\nX-Host: a\r\n\r\n")
    assert.matches("^HTTP/1.1 400", out)
    assert.are.equal(0, calls)
  end)

  it("answers 400 to a request with two Host headers", function()
    local out = raw(srv.port, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
    assert.matches("^HTTP/1.1 400", out)
    assert.are.equal(0, calls)
  end)

  it("serves HTTP/1.1 with Host (any case) and HTTP/1.0 without", function()
    local out = raw(srv.port, "GET / HTTP/1.1\r\nhOST: a\r\n"
                    .. "Connection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 200.*ok$", out)
    out = raw(srv.port, "GET / HTTP/1.0\r\n\r\n")
    assert.matches("^HTTP/1.1 200.*ok$", out)
    assert.are.equal(2, calls)
  end)
end)
