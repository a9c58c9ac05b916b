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
    local ok = tonumber(stdout:match("pages: (%d+) ok"))
    assert.is_true(ok > 50, stdout)
    -- one file per page (a redirect may land on a page already saved)
    assert.is_true(#files > 50 and #files <= ok, #files .. " files")
    assert.matches("status 500: %d+", stdout)      -- broken pages counted
    assert.matches("status 404: 1\n", stdout)      -- /missing, de-duplicated
    assert.is_true(tonumber(stdout:match("(%d+) redirected")) > 0)
  end)

  it("respects depth and the page limit", function()
    local rc, stdout = helpers.sh(helpers.luaio .. " examples/crawl.lua --depth 1 "
      .. "2>/dev/null")
    assert.are.equal(0, rc, stdout)
    local ok = tonumber(stdout:match("pages: (%d+) ok"))
    assert.is_true(ok >= 2 and ok <= 4, stdout)
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
