-- http.static: files under a root, ranges, validators, types, and no
-- way out of the root.
local aio = require "luaio"
local fs = require "luaio.fs"
local http = require "luaio.http"
local net = require "luaio.net"
local helpers = require "spec.helpers"

local raw = require("spec.helpers.serve").raw

describe("http.static", function()
  local dir, root, srv, base
  local make, remove = helpers.temp_dir_hooks(function(p) dir = p end)
  before_each(function()
    make()
    root = dir .. "/www"
    fs.mkdir(root .. "/sub", {parents = true})
    fs.write(root .. "/index.html", "<h1>home</h1>")
    fs.write(root .. "/a.txt", "0123456789")
    fs.write(root .. "/sub/data.json", "{}")
    fs.write(root .. "/.secret", "hidden")
    fs.write(dir .. "/outside.txt", "private")
    os.execute(("ln -s '%s/outside.txt' '%s/leak.txt'"):format(dir, root))
    os.execute(("ln -s '%s' '%s/up'"):format(dir, root))
    os.execute(("ln -s 'a.txt' '%s/alias.txt'"):format(root))
    fs.write(root .. "/big.bin", ("0123456789abcdef"):rep(64 * 1024))
    srv = http.serve{handler = http.static(root)}
    srv:route("GET", "/files/*", http.static(root, {index = "index.html", max_age = 60}))
    base = "http://127.0.0.1:" .. srv.port
  end)
  after_each(function()
    srv:close()
    remove()
  end)

  it("serves files with type, length, ETag and Last-Modified", function()
    local r = http.get(base .. "/a.txt")
    assert.are.equal(200, r.status)
    assert.are.equal("0123456789", r.body)
    assert.are.equal("text/plain; charset=utf-8", r.headers["content-type"])
    assert.are.equal("10", r.headers["content-length"])
    assert.is_truthy(r.headers["etag"]:find('^"%x+%-%x+"$'))
    assert.is_truthy(r.headers["last-modified"]:find(" GMT$"))
    assert.are.equal("application/json", http.get(base .. "/sub/data.json").headers["content-type"])
    assert.are.equal("0123456789", http.get(base .. "/alias.txt").body)
  end)

  it("serves a large file whole", function()
    local r = http.get(base .. "/big.bin")
    assert.are.equal(1024 * 1024, #r.body)
    assert.are.equal("application/octet-stream", r.headers["content-type"])
    assert.are.equal(fs.read(root .. "/big.bin"), r.body)
  end)

  it("answers 304 to a matching If-None-Match or If-Modified-Since", function()
    local r = http.get(base .. "/a.txt")
    local r2 = http.get(base .. "/a.txt", {headers = {["If-None-Match"] = r.headers["etag"]}})
    assert.are.equal(304, r2.status)
    assert.are.equal("", r2.body)
    r2 = http.get(base .. "/a.txt", {headers = {["If-None-Match"] = '"other"'}})
    assert.are.equal(200, r2.status)
    r2 = http.get(base .. "/a.txt", {headers = {["If-Modified-Since"] = r.headers["last-modified"]}})
    assert.are.equal(304, r2.status)
  end)

  it("serves byte ranges", function()
    local function range(h)
      return http.get(base .. "/a.txt", {headers = {Range = h}})
    end
    local r = range("bytes=2-4")
    assert.are.same({206, "234", "bytes 2-4/10"}, {r.status, r.body, r.headers["content-range"]})
    r = range("bytes=7-")
    assert.are.same({206, "789"}, {r.status, r.body})
    r = range("bytes=-3")
    assert.are.same({206, "789"}, {r.status, r.body})
    r = range("bytes=5-100")
    assert.are.same({206, "56789"}, {r.status, r.body})
    r = range("bytes=10-")
    assert.are.same({416, "bytes */10"}, {r.status, r.headers["content-range"]})
    r = range("bytes=0-1,4-5")
    assert.are.same({200, "0123456789"}, {r.status, r.body})
    r = http.get(base .. "/big.bin", {headers = {Range = "bytes=1048570-"}})
    assert.are.same({206, "abcdef"}, {r.status, r.body})
  end)

  it("answers HEAD without a body and refuses other methods", function()
    local r = http.head(base .. "/a.txt")
    assert.are.same({200, "10", ""}, {r.status, r.headers["content-length"], r.body})
    r = http.post(base .. "/a.txt", {body = "x"})
    assert.are.same({405, "GET, HEAD"}, {r.status, r.headers["allow"]})
  end)

  it("lists no folder, unless an index file is asked for", function()
    assert.are.equal(404, http.get(base .. "/").status)
    assert.are.equal(404, http.get(base .. "/sub/").status)
    local r = http.get(base .. "/files/")
    assert.are.same({200, "<h1>home</h1>", "max-age=60"},
                    {r.status, r.body, r.headers["cache-control"]})
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    assert.are.equal("0123456789", http.get(base .. "/files/a.txt").body)
  end)

  it("never serves outside root", function()
    for _, p in ipairs{"/../outside.txt", "/%2e%2e/outside.txt",
        "/%2E%2E/outside.txt", "/sub/..%2f..%2foutside.txt",
        "/sub/%2e%2e/%2e%2e/outside.txt", "/leak.txt", "/up/outside.txt",
        "/.secret", "/a.txt%00.html", "/..%5coutside.txt",
        "/files/../outside.txt", "/files/%2e%2e/outside.txt"} do
      local out = raw(srv.port, "GET " .. p .. " HTTP/1.1\r\nHost: x\r\n"
                      .. "Connection: close\r\n\r\n")
      local status = tonumber(out:match("^HTTP/1%.1 (%d+)"))
      assert.is_true(status == 404 or status == 400, p .. ": " .. out)
      assert.is_nil(out:find("private", 1, true), p)
      assert.is_nil(out:find("hidden", 1, true), p)
    end
  end)

  -- 5 MB of bytes that tell where they are: a shift or a gap shows.
  local function five_mb()
    local parts = {}
    for i = 0, 5 * 1024 * 1024 / 16 - 1 do parts[#parts + 1] = ("%015x\n"):format(i) end
    local data = table.concat(parts)
    fs.write(root .. "/five.bin", data)
    return data
  end

  it("sends a 5 MB file intact, whole, in a range and to a slow reader", function()
    local data = five_mb()
    local r = http.get(base .. "/five.bin")
    assert.are.equal(200, r.status)
    assert.is_true(r.body == data, "whole file differs")
    r = http.get(base .. "/five.bin", {headers = {Range = "bytes=1000000-3999999"}})
    assert.are.equal(206, r.status)
    assert.is_true(r.body == data:sub(1000001, 4000000), "range differs")
    -- a reader slower than the socket: sendfile meets a full socket
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("GET /five.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    aio.sleep(0.3)
    local out = aio.timeout(60, function() return c:read_all() end)
    assert.is_true(out:sub(-#data) == data, "slowly read file differs")
  end)

  it("leaks nothing when the client leaves mid-file", function()
    five_mb()
    local fds = #fs.readdir("/proc/self/fd")
    for _ = 1, 3 do
      local c = net.connect("127.0.0.1", srv.port)
      c:write("GET /five.bin HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.are.equal("HTTP/1.1 200 OK", c:readline())
      c:read(1000)
      c:close()
    end
    for _ = 1, 3000 do                  -- up to a minute
      if srv:connections() == 0 then break end
      aio.sleep(0.02)
    end
    assert.are.equal(0, srv:connections())
    -- the handlers close their files once they run again, on the loop's
    -- time: poll for it (up to a minute), not a 0.05 s sleep
    local now
    for _ = 1, 3000 do
      collectgarbage()
      now = #fs.readdir("/proc/self/fd")
      if now == fds then break end
      aio.sleep(0.02)
    end
    assert.are.equal(fds, now, "descriptors leaked")
    assert.are.equal("0123456789", http.get(base .. "/a.txt").body)
  end)

  it("drops a client that never reads a file after write_timeout", function()
    five_mb()
    -- 1 s, and the connection looked for as soon as it is there: a 0.2 s
    -- sleep against 0.3 s could see it dropped already on a loaded box
    local quick <close> = http.serve{write_timeout = 1, handler = http.static(root)}
    local c <close> = net.connect("127.0.0.1", quick.port)
    c:write("GET /five.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ = 1, 6000 do                  -- up to a minute
      if quick:connections() == 1 then break end
      aio.sleep(0.01)
    end
    assert.are.equal(1, quick:connections())
    for _ = 1, 3000 do
      if quick:connections() == 0 then break end
      aio.sleep(0.02)
    end
    assert.are.equal(0, quick:connections())
  end)

  it("checks its arguments", function()
    local ok, e = pcall(http.static, nil)
    assert.is_false(ok)
    assert.is_truthy(tostring(e):find("bad argument #1 to 'http.static'", 1, true))
    ok, e = pcall(http.static, "x", 1)
    assert.is_truthy(tostring(e):find("bad argument #2 to 'http.static'", 1, true))
  end)
end)
