-- Issue 13, item 4: streaming over HTTP/2. The header parser read the
-- status from an HTTP/1 status line ("HTTP/2 200" gave 0), so a streamed
-- HTTP/2 response fell back to a buffered one, bodies over the 256 KiB
-- pause mark hung, and http.download over HTTPS failed by default.
local aio = require "luaio"
local http = require "luaio.http"
local fs = require "luaio.fs"
local nginx = require "spec.helpers.nginx"

local srv

setup(function() srv = nginx.start() end)
teardown(function() srv:stop() end)

-- Run fn in a task and give up after 60 s instead of hanging the suite
-- (four 1 MiB TLS streams under valgrind on a loaded machine can take
-- several seconds).
local function bounded(fn)
  local t = aio.spawn(fn)
  return aio.wait_for(t, 60)
end

describe("http streaming over HTTP/2 #safety", function()
  it("streams a 1 MiB body to a slow reader", function()
    local n, ver, status = bounded(function()
      local r <close> = http.get(srv.tls_url .. "/big",
        {stream = true, ca_file = srv.ca_file})
      local got = 0
      for chunk in r:chunks() do
        -- slow at first: 256 KiB pile up and the transfer pauses
        if got == 0 then aio.sleep(0.3) end
        got = got + #chunk
        aio.sleep(0.002)
      end
      return got, r.http_version, r.status
    end)
    assert.are.equal("2", ver)
    assert.are.equal(200, status)
    assert.are.equal(1 << 20, n)
  end)

  it("streams a small body too", function()
    local body = bounded(function()
      local r <close> = http.get(srv.tls_url .. "/small",
        {stream = true, ca_file = srv.ca_file})
      local parts = {}
      for chunk in r:chunks() do parts[#parts + 1] = chunk end
      return table.concat(parts)
    end)
    assert.are.equal(string.rep("x", 1024), body)
  end)

  it("runs several streams at once on one connection", function()
    local c <close> = http.client{ca_file = srv.ca_file}
    local ts = {}
    for i = 1, 4 do
      ts[i] = aio.spawn(function()
        local r <close> = c:get(srv.tls_url .. "/big", {stream = true})
        local got = 0
        for chunk in r:chunks() do
          if got == 0 then aio.sleep(0.2) end
          got = got + #chunk
          aio.sleep(0.001)
        end
        return got
      end)
    end
    local results = {bounded(function() return aio.gather(ts) end)}
    for i = 1, 4 do assert.are.equal(1 << 20, results[i]) end
  end)

  it("http.download works over HTTPS with HTTP/2", function()
    local dir = fs.mkdtemp()
    local n = bounded(function()
      return http.download(srv.tls_url .. "/big", dir .. "/big.bin",
        {ca_file = srv.ca_file})
    end)
    assert.are.equal(1 << 20, n)
    assert.are.equal(1 << 20, #fs.read(dir .. "/big.bin"))
    os.execute("rm -rf " .. dir)
  end)
end)
