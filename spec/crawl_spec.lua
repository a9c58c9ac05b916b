-- The flagship example: examples/crawl.lua against its own demo site and
-- against a generated site served by nginx (for --resume).
local helpers = require "spec.helpers"
local fs = require "luaio.fs"
local json = require "luaio.json"

local CRAWL = helpers.luaio .. " examples/crawl.lua "
-- Each test runs whole crawls as child processes: a minute is plenty.
local function allow_a_minute() require("luaio.test").timeout(60) end

local function records(path)
  local recs, by_url = {}, {}
  for line in io.lines(path) do
    local rec = json.decode(line)
    recs[#recs + 1] = rec
    by_url[rec.url] = (by_url[rec.url] or 0) + 1
  end
  return recs, by_url
end

local function path_is(recs, suffix)
  for _, r in ipairs(recs) do
    if r.url:sub(-#suffix) == suffix then return r end
  end
end

describe("examples/crawl.lua", function()
  local dirs = {}
  local function tempdir()
    dirs[#dirs + 1] = fs.mkdtemp()
    return dirs[#dirs]
  end
  after_each(function()
    for _, d in ipairs(dirs) do os.execute("rm -rf '" .. d .. "'") end
    dirs = {}
  end)

  it("crawls its demo site: pages, errors, redirects, robots, files, JSONL",
    function()
      allow_a_minute()
      local out = tempdir()
      local rc, stdout = helpers.sh(CRAWL .. "--out " .. out .. " 2>" .. out
                                    .. "/stderr.txt")
      assert.are.equal(0, rc, stdout)
      assert.matches("serving a demo site at http://127.0.0.1:%d+/", stdout)
      assert.matches("crawl finished", stdout)
      -- "/", /page/1..120 and /private/11 (robots.txt: Allow with $); a
      -- slow page for every third, a broken one (500) for every fourth,
      -- a redirect for every fifth (to an existing page), one missing
      -- page, /private/N for every eleventh (disallowed but for 11).
      -- Links are relative (../slow/N, ../broken/N#top): resolved and
      -- normalised, every page is found exactly once.
      assert.matches("pages: 162 ok, 31 errors, 24 redirected, 9 disallowed",
                     stdout)
      assert.matches("status 200: 162\n", stdout)
      assert.matches("status 500: 30\n", stdout)
      assert.matches("status 404: 1\n", stdout)
      local pages = 0
      for _, name in ipairs(fs.readdir(out)) do
        if name:match("%.html$") then pages = pages + 1 end
      end
      assert.are.equal(162, pages)                   -- one file per page
      local recs, by_url = records(out .. "/crawl.jsonl")
      for u, n in pairs(by_url) do assert.are.equal(1, n, u) end
      -- A redirect's record names its target (final_url); whether the
      -- target also has a record of its own depends on which was met
      -- first, so count resources, not records: 162 pages, 31 errors,
      -- 9 disallowed.
      local resources, nres = {}, 0
      for _, r in ipairs(recs) do
        local key = r.final_url or r.url
        if not resources[key] then resources[key] = true; nres = nres + 1 end
      end
      assert.are.equal(162 + 31 + 9, nres)
      local home = path_is(recs, ":" .. stdout:match("127.0.0.1:(%d+)/") .. "/")
      assert.are.equal("Page 1", home.title)
      assert.are.equal(200, home.status)
      assert.are.equal("table", type(home.links))
      assert.are.equal("number", type(home.elapsed))
      assert.are.equal("disallowed by robots.txt", path_is(recs, "/private/22").error)
      assert.are.equal(200, path_is(recs, "/private/11").status)
      assert.are.equal(500, path_is(recs, "/broken/4").status)  -- #top dropped
      -- stderr is not a terminal: progress lines without \r or escapes
      local err = assert(io.open(out .. "/stderr.txt")):read("a")
      assert.matches("crawl: %d+/%d+ pages %(100%%%)", err)
      assert.is_nil(err:find("[\r\27]"))
    end)

  it("respects depth and the page limit; --depth=N means --depth N", function()
    allow_a_minute()
    for _, form in ipairs{"--depth 1", "--depth=1"} do
      local rc, stdout = helpers.sh(CRAWL .. form .. " --no-progress --out "
                                    .. tempdir() .. " 2>&1")
      assert.are.equal(0, rc, stdout)
      assert.matches("pages: 4 ok", stdout)          -- "/", /page/2, /page/3, /page/1
    end
    local rc, stdout = helpers.sh(CRAWL .. "--max-pages 10 --no-progress --out "
                                  .. tempdir() .. " 2>&1")
    assert.are.equal(0, rc, stdout)
    -- Which ten depends on which pages come back first (8 at a time), so
    -- on timing: one may be a broken page or a redirect. Ten in all.
    local ok, errors, redirected, disallowed = stdout:match(
      "pages: (%d+) ok, (%d+) errors, (%d+) redirected, (%d+) disallowed")
    assert.are.equal(10, ok + errors + redirected + disallowed, stdout)
  end)

  it("ignores robots.txt only when told", function()
    allow_a_minute()
    local out = tempdir()
    local rc, stdout = helpers.sh(CRAWL .. "--ignore-robots --no-progress --out "
                                  .. out .. " 2>&1")
    assert.are.equal(0, rc, stdout)
    assert.matches("pages: 171 ok, 31 errors, 24 redirected, 0 disallowed", stdout)
    assert.are.equal(200, path_is(records(out .. "/crawl.jsonl"), "/private/22").status)
  end)

  it("answers --help, and rejects bad options with usage and status 2", function()
    allow_a_minute()
    local rc, stdout = helpers.sh(CRAWL .. "--help")
    assert.are.equal(0, rc)
    assert.matches("usage: luaio examples/crawl.lua %[URL%] %[options%]", stdout)
    assert.matches("%-%-resume", stdout)
    for opt, msg in pairs{["--bogus"] = "unknown option %-%-bogus",
                          ["--depth x"] = "%-%-depth needs a whole number",
                          ["--depth=-1"] = "%-%-depth needs a whole number",
                          ["--resume=1"] = "%-%-resume takes no value",
                          ["--concurrency 0"] = "%-%-concurrency must be >= 1",
                          ["a b"] = "more than one start URL",
                          ["ftp://x/"] = "not an http%(s%) URL",
                          ["--out"] = "%-%-out needs a value"} do
      local code, text = helpers.sh(CRAWL .. opt .. " 2>&1")
      assert.are.equal(2, code, opt .. ": " .. text)
      assert.matches(msg, text)
    end
  end)

  it("--resume fetches only what an earlier run did not record", function()
    allow_a_minute()
    local nginx = require("spec.helpers.nginx").start()
    finally(function() nginx:stop() end)
    local www = nginx.dir .. "/www"
    local rc, text = helpers.sh(helpers.luaio .. " bench/crawl/gen_site.lua "
                                .. www .. " 60")
    assert.are.equal(0, rc, text)
    local out = tempdir()
    local start = nginx.url .. "/index.html"
    local common = " --no-progress --out " .. out .. " 2>&1"
    local rc1, first = helpers.sh(CRAWL .. start .. " --max-pages 20" .. common)
    local rc2, second = helpers.sh(CRAWL .. start .. " --resume" .. common)
    assert.are.equal(0, rc1, first)
    assert.are.equal(0, rc2, second)
    assert.matches("pages: 20 ok", first)
    assert.matches("pages: 41 ok", second)           -- 61 in all
    assert.matches("resumed: 20 pages recorded before", second)
    local recs, by_url = records(out .. "/crawl.jsonl")
    assert.are.equal(61, #recs)
    for u, n in pairs(by_url) do assert.are.equal(1, n, u) end
  end)

  it("--redis shares one crawl between processes, also when one dies",
    function()
      allow_a_minute()
      require("luaio.test").timeout(120)
      local nginx = require("spec.helpers.nginx").start()
      finally(function() nginx:stop() end)
      local rsrv = require("spec.helpers.redis").start()
      finally(function() rsrv:stop() end)
      local www = nginx.dir .. "/www"
      assert.are.equal(0, (helpers.sh(helpers.luaio .. " bench/crawl/gen_site.lua "
                                      .. www .. " 60")))
      local start = nginx.url .. "/index.html"
      local base = rsrv.url:gsub("/0$", "/")
      local function urls(path)
        local recs, by_url = records(path)
        local set = {}
        for _, r in ipairs(recs) do set[#set + 1] = r.url end
        table.sort(set)
        return set, by_url
      end
      -- one process, then three (--workers 3), each on its own database
      local out1, out3, outk = tempdir(), tempdir(), tempdir()
      local rc1, t1 = helpers.sh(CRAWL .. start .. " --redis " .. base .. "1"
                                 .. " --no-progress --out " .. out1 .. " 2>&1")
      local rc3, t3 = helpers.sh(CRAWL .. start .. " --redis " .. base .. "2"
                                 .. " --workers 3 --no-progress --out " .. out3
                                 .. " 2>&1")
      -- One process killed (SIGKILL) while it holds URLs it took, then
      -- two more: the URLs it held come back after --visibility seconds.
      -- It is frozen (SIGSTOP) once Redis shows it holding URLs, and
      -- killed; the spec then checks, with its connections gone, that it
      -- died holding some (not after a guessed second, which it may
      -- spend starting up or finishing the crawl).
      local cmd = CRAWL .. start .. " --redis " .. base .. "3 --rate 10"
                  .. " --visibility 1 --no-progress --out " .. outk
      local key = "crawl:" .. require("luaio.url").normalize(start,
        {drop_fragment = true})
      local taken = key .. ":frontier:processing"
      local r <close> = require("luaio.redis").connect(base .. "3")
      local victim = helpers.background(cmd)
      local frozen = false
      for _ = 1, 1200 do                             -- up to a minute
        if r:call("HLEN", key .. ":records") >= 2
           and r:call("LLEN", taken) > 0 then
          assert(os.execute("kill -STOP " .. victim))
          frozen = true
          break
        end
        require("luaio").sleep(0.05)
      end
      assert.is_true(frozen, "the first crawl never held a URL")
      assert(os.execute("kill -KILL " .. victim))
      for _ = 1, 1200 do                             -- its commands done
        local info = r:call("INFO", "clients")
        if tonumber(info:match("connected_clients:(%d+)")) == 1 then break end
        require("luaio").sleep(0.05)
      end
      assert.matches("connected_clients:1\r?\n", r:call("INFO", "clients"))
      assert.is_true(r:call("LLEN", taken) > 0, "killed holding no URL")
      local rck, tk = helpers.sh(("(%s >/dev/null 2>&1) & a=$!; "
        .. "%s > %s/main.txt 2>&1; rc=$?; wait $a; ra=$?; "
        .. "cat %s/main.txt; exit $((ra + rc))"):format(cmd, cmd, outk, outk))
      assert.are.equal(0, r:call("LLEN", taken))
      assert.are.equal(0, rc1, t1)
      assert.are.equal(0, rc3, t3)
      assert.are.equal(0, rck, tk)
      local one, by1 = urls(out1 .. "/crawl.jsonl")
      local three, by3 = urls(out3 .. "/crawl.jsonl")
      local killed, byk = urls(outk .. "/crawl.jsonl")
      assert.are.equal(61, #one)                     -- index + 60 pages
      assert.are.same(one, three)
      assert.are.same(one, killed)
      for _, by in ipairs{by1, by3, byk} do
        for u, n in pairs(by) do assert.are.equal(1, n, u) end
      end
    end)

  it("stops cleanly on Ctrl-C and still prints the summary", function()
    allow_a_minute()
    local path = os.tmpname()
    -- Ctrl-C once the crawl has recorded a page (not after a guessed
    -- second, which a loaded machine may spend starting up)
    local rc, stdout = helpers.sh(("%s examples/crawl.lua --rate 5 --out %s.d > %s 2>/dev/null "
      .. "& pid=$!; i=0; until [ -s %s.d/crawl.jsonl ] || [ $i -gt 6000 ]; do "
      .. "i=$((i + 1)); sleep 0.01; done; "
      .. "kill -INT $pid; wait $pid; rc=$?; cat %s; exit $rc")
      :format(helpers.luaio, path, path, path, path))
    os.remove(path)
    os.execute("rm -rf '" .. path .. ".d'")
    assert.are.equal(130, rc, stdout)
    assert.matches("crawl interrupted", stdout)
    assert.matches("pages: %d+ ok", stdout)
  end)
end)
