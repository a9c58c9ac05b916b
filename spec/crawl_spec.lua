-- The flagship example: examples/crawl.lua against its own demo site.
local helpers = require "spec.helpers"
local fs = require "luaio.fs"
local aio = require "luaio"

describe("examples/crawl.lua", function()
  it("crawls its demo site: pages, errors, redirects, files, summary", function()
    local out = fs.mkdtemp()
    local rc, stdout = helpers.sh(helpers.luaio .. " examples/crawl.lua --out "
      .. out .. " 2>/dev/null")
    local files = fs.readdir(out)
    os.execute("rm -rf " .. out)
    assert.are.equal(0, rc, stdout)
    assert.matches("serving a demo site at http://127.0.0.1:%d+/", stdout)
    assert.matches("crawl finished", stdout)
    -- The demo site: "/", /page/1..120, a slow page for every third, a
    -- broken one (500) for every fourth, a redirect for every fifth (to
    -- an existing page), one missing page. Every page found exactly once:
    assert.matches("pages: 161 ok, 31 errors, 24 redirected", stdout)
    assert.are.equal(161, #files)                  -- one file per page
    assert.matches("status 200: 161\n", stdout)
    assert.matches("status 500: 30\n", stdout)
    assert.matches("status 404: 1\n", stdout)
  end)

  it("respects depth and the page limit", function()
    local rc, stdout = helpers.sh(helpers.luaio .. " examples/crawl.lua --depth 1 "
      .. "2>/dev/null")
    assert.are.equal(0, rc, stdout)
    -- "/" and its two links; the home link is "/page/1"
    assert.matches("pages: 4 ok", stdout)
  end)

  it("stops cleanly on Ctrl-C and still prints the summary", function()
    local path = os.tmpname()
    local rc, stdout = helpers.sh(("%s examples/crawl.lua --rate 5 > %s 2>/dev/null "
      .. "& pid=$!; sleep 1; kill -INT $pid; wait $pid; rc=$?; cat %s; exit $rc")
      :format(helpers.luaio, path, path))
    os.remove(path)
    assert.are.equal(130, rc, stdout)
    assert.matches("crawl interrupted", stdout)
    assert.matches("pages: %d+ ok", stdout)
    assert(aio)
  end)
end)
