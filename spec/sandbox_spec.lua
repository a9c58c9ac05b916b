-- `luaio --sandbox`: what the flags allow works, the caps end the script
-- with status 3, bad flags are usage errors (README "Sandbox"). The
-- escape attempts are in sandbox_escape_spec.lua.
local fs = require "luaio.fs"
local H = require "spec.helpers"

local dir
local before, after = H.temp_dir_hooks(function(p) dir = p end)

-- Run src as a script under `luaio <flags>`; returns rc, stdout+stderr.
local function sandboxed (flags, src)
  local path = H.script(src)
  local rc, out = H.sh(H.luaio .. " " .. flags .. " " .. path .. " 2>&1")
  os.remove(path)
  return rc, out
end

describe("sandbox permissions", function()
  before_each(before)
  after_each(after)

  it("reads and writes inside the allowed folders", function()
    fs.mkdir(dir .. "/in")
    fs.mkdir(dir .. "/out")
    fs.write(dir .. "/in/a.txt", "one\ntwo\n")
    local rc, out = sandboxed(("--sandbox --allow-read=%s/in,%s/out "
      .. "--allow-write=%s/out"):format(dir, dir, dir), ([[
      local fs = require "luaio.fs"
      local IN, OUT = %q, %q
      print(fs.read(IN .. "/a.txt") == "one\ntwo\n")
      local n = 0
      for _ in io.lines(IN .. "/a.txt") do n = n + 1 end
      print(n, io.open(IN .. "/a.txt"):read("l"))
      fs.write(OUT .. "/b.txt", "written")
      local f = assert(io.open(OUT .. "/c.txt", "w")) f:write("io") f:close()
      fs.mkdir(OUT .. "/sub")
      fs.rename(OUT .. "/c.txt", OUT .. "/sub/c.txt")
      print(fs.read(OUT .. "/sub/c.txt"), #fs.readdir(OUT))
      assert(os.remove(OUT .. "/b.txt"))
      local f2 <close> = fs.open(OUT .. "/d.txt", "w") f2:write("file")
      for e in fs.walk(IN) do io.write(e.name or "", " ") end
      print()
      print(fs.exists(IN .. "/a.txt"), pcall(fs.write, IN .. "/x", ""))]])
      :format(dir .. "/in", dir .. "/out"))
    assert.are.equal(0, rc, out)
    assert.matches("true\n2\tone\nio\t2\n", out)
    assert.is_truthy(out:find("true\tfalse\tpermission denied: write '" .. dir
      .. "/in/x' (run with --allow-write=" .. dir .. "/in/x)", 1, true), out)
    assert.is_false(fs.exists(dir .. "/out/b.txt"))
    assert.are.equal("file", fs.read(dir .. "/out/d.txt"))
  end)

  it("the permission error is a luaio.Error of kind 'permission'", function()
    local rc, out = sandboxed("--sandbox", [[
      local ok, e = pcall(io.open, "/etc/passwd")
      print(e.kind, e.permission, e.target)
      print(tostring(e))
      io.open("/etc/hostname")]])
    assert.are.equal(1, rc, out)
    assert.matches("permission\tread\t/etc/passwd\n", out)
    assert.matches("permission denied: read '/etc/passwd' %(run with "
      .. "%-%-allow%-read=/etc/passwd%)", out)
    assert.matches("luaio: .*permission denied: read '/etc/hostname'", out)
  end)

  it("require loads Lua modules from an allowed folder, as text", function()
    fs.write(dir .. "/mymod.lua", "return {answer = 42}")
    local rc, out = sandboxed("--sandbox --allow-read=" .. dir, ([[
      package.path = %q
      print(require("mymod").answer, require("luaio.json").encode{1})]])
      :format(dir .. "/?.lua"))
    assert.are.equal(0, rc, out)
    assert.matches("42\t%[1%]", out)
  end)

  it("load, string.dump and the luaio modules still work", function()
    local rc, out = sandboxed("--sandbox", [[
      local aio = require "luaio"
      print(load("return 1 + 1")(), #string.dump(print == print and
        function() end) > 0)
      local t = aio.spawn(function(x) aio.sleep(0.01) return x * 2 end, 21)
      print(t:await(), os.time() > 0, os.clock() >= 0)]])
    assert.are.equal(0, rc, out)
    assert.matches("2\ttrue\n42\ttrue\ttrue", out)
  end)

  it("luaio.proc: only the programs --allow-run names, files checked",
    function()
      local src = ([[
        local proc = require "luaio.proc"
        local function try(f, ...)
          local ok, e = pcall(f, ...)
          print(ok and "ok" or (type(e) == "table" and e.kind or tostring(e)))
        end
        try(proc.run, {"true"})
        try(proc.run, {"sh", "-c", "exit 0"})
        try(proc.run, {"true"}, {stdout = {path = %q}})
      ]]):format(dir .. "/out.txt")
      local rc, out = sandboxed("--sandbox", src)
      assert.are.equal(0, rc, out)
      assert.are.equal("permission\npermission\npermission\n", out)
      rc, out = sandboxed("--allow-run=true", src)
      assert.are.equal(0, rc, out)
      assert.are.equal("ok\npermission\npermission\n", out)
      rc, out = sandboxed("--allow-run=true --allow-write=" .. dir, src)
      assert.are.equal(0, rc, out)
      assert.are.equal("ok\npermission\nok\n", out)
    end)

  it("the environment: one variable, or all", function()
    local rc, out = sandboxed("--sandbox --allow-env=LUAIO_SB_VAR", [[
      print(os.getenv("LUAIO_SB_VAR"), pcall(os.getenv, "HOME"))]])
    assert.are.equal(0, rc, out)
    assert.matches("nil\tfalse\tpermission denied: env 'HOME'", out)
    rc, out = H.sh("LUAIO_SB_VAR=yes " .. H.luaio
      .. " --sandbox --allow-env -e 'print(os.getenv(\"LUAIO_SB_VAR\"))'")
    assert.are.equal(0, rc, out)
    assert.matches("yes", out)
  end)

  it("--allow-run=sh lets io.popen and os.execute through", function()
    local rc, out = sandboxed("--sandbox --allow-run=sh", [[
      print(io.popen("echo popen"):read("l"), os.execute("true"))]])
    assert.are.equal(0, rc, out)
    assert.matches("popen\ttrue", out)
  end)

  it("HTTP and TCP to an allowed host and port, redirects included",
     function()
    local srv = require("spec.helpers.nginx").start()
    finally(function() srv:stop() end)
    local rc, out = sandboxed("--sandbox --allow-net=127.0.0.1:" .. srv.port,
      ([[
      local http, net = require "luaio.http", require "luaio.net"
      local U = %q
      print(http.get(U .. "/small").status, #http.get(U .. "/redirect").body)
      print(http.get(U .. "/redirect/to?url=" .. U .. "/small").status)
      local s <close> = net.connect("127.0.0.1", %d)
      s:write("GET /small HTTP/1.0\r\n\r\n")
      print(s:readline())]]):format(srv.url, srv.port))
    assert.are.equal(0, rc, out)
    assert.matches("200\t1024\n200\nHTTP/1.1 200 OK", out)
    rc, out = sandboxed("--sandbox --allow-net=localhost", ([[
      print(require("luaio.http").get(%q).status)]])
      :format("http://localhost:" .. srv.port .. "/small"))
    assert.are.equal(0, rc, out)
    assert.matches("200", out)
  end)

  it("--allow-* without --sandbox still sandboxes", function()
    local rc, out = H.sh(H.luaio .. " --allow-read=/nonexistent -e "
      .. "'print(pcall(io.open, \"/etc/passwd\"))' 2>&1")
    assert.are.equal(0, rc, out)
    assert.matches("false\tpermission denied", out)
  end)
end)

describe("sandbox caps", function()
  it("--max-memory ends the script, past any pcall, with status 3",
     function()
    local rc, out = sandboxed("--max-memory=16M", [[
      local t = {}
      print(pcall(function()
        for i = 1, 1e9 do t[i] = ("x"):rep(100) .. i end
      end))
      print("still running")]])
    assert.are.equal(3, rc, out)
    assert.matches("limit reached: the script used more than 16777216 "
      .. "bytes of memory %(%-%-max%-memory%)", out)
    assert.is_nil(out:find("still running", 1, true), out)
  end)

  it("--max-memory kills the other tasks too", function()
    local rc, out = sandboxed("--max-memory=16M", [[
      local aio = require "luaio"
      aio.spawn(function()
        local t = {} for i = 1, 1e9 do t[i] = ("y"):rep(100) .. i end
      end)
      print(pcall(aio.sleep, 600))        -- never ends on its own
      print("still running")]])
    assert.are.equal(3, rc, out)
    assert.is_nil(out:find("still running", 1, true), out)
  end)

  it("--max-time ends a busy loop and a waiting script", function()
    local t0 = os.time()
    local rc, out = sandboxed("--max-time=0.3", [[
      print(pcall(function() while true do end end))
      print("still running")]])
    assert.are.equal(3, rc, out)
    assert.matches("limit reached: the script ran for more than 0.3 s "
      .. "%(%-%-max%-time%)", out)
    assert.is_nil(out:find("still running", 1, true), out)
    rc, out = sandboxed("--max-time=0.3", [[
      local aio = require "luaio"
      local t = aio.spawn(function() while true do aio.sleep(0.01) end end)
      print(pcall(aio.sleep, 600))
      print(pcall(t.await, t))
      print("still running")]])
    assert.are.equal(3, rc, out)
    assert.is_nil(out:find("still running", 1, true), out)
    assert.is_true(os.time() - t0 < 60)      -- 0.3 s each, and slack
  end)

  it("--max-tasks ends the script at the task past the cap", function()
    local rc, out = sandboxed("--max-tasks=5", [[
      local aio = require "luaio"
      for i = 1, 10 do
        print(i, pcall(aio.spawn, aio.sleep, 1))
      end]])
    assert.are.equal(3, rc, out)
    assert.matches("limit reached: more than 5 live tasks", out)
    assert.matches("\n4\ttrue", out)
    assert.is_nil(out:find("\n5\t", 1, true), out)
  end)

  it("the caps reach a plain coroutine that swallows errors", function()
    for _, case in ipairs{
      {"--max-time=0.3", "while true do end"},
      {"--max-memory=16M",
       "local t = {} for i = 1, 1e9 do t[i] = ('z'):rep(100) .. i end"},
      {"--max-tasks=3",
       "for i = 1, 10 do require('luaio').spawn(function() end) end"},
    } do
      local rc, out = sandboxed(case[1], ([[
        coroutine.wrap(function()
          while true do pcall(function() %s end) end
        end)()
        print("still running")]]):format(case[2]))
      assert.are.equal(3, rc, case[1] .. ": " .. out)
      assert.matches("limit reached", out)
      assert.is_nil(out:find("still running", 1, true), out)
    end
  end)

  it("a script under its caps runs as usual", function()
    local rc, out = sandboxed("--max-memory=64M --max-time=30 --max-tasks=100",
      [[
      local aio = require "luaio"
      local ts = {}
      for i = 1, 50 do
        ts[i] = aio.spawn(function() aio.sleep(0.01) return i end)
      end
      print(select('#', aio.gather(table.unpack(ts))))]])
    assert.are.equal(0, rc, out)
    assert.matches("50", out)
  end)
end)

describe("sandbox flags", function()
  local cases = {
    {"--max-memory=12Q", "bad value for %-%-max%-memory: '12Q'"},
    {"--max-memory=", "bad value for %-%-max%-memory: ''"},
    {"--max-memory", "bad value for %-%-max%-memory"},
    {"--max-memory=-5M", "bad value for %-%-max%-memory"},
    {"--max-memory=0", "bad value for %-%-max%-memory"},
    {"--max-time=soon", "bad value for %-%-max%-time: 'soon'"},
    {"--max-time=0", "bad value for %-%-max%-time"},
    {"--max-tasks=2.5", "bad value for %-%-max%-tasks: '2.5'"},
    {"--max-tasks=-1", "bad value for %-%-max%-tasks"},
    {"--allow-net=host:99999", "bad value for %-%-allow%-net: 'host:99999'"},
    {"--allow-net=[::1", "bad value for %-%-allow%-net"},
    {"--allow-net=a/b", "bad value for %-%-allow%-net"},
    {"--allow-net=*", "bad value for %-%-allow%-net: '%*'"},
    {"--allow-read", "%-%-allow%-read needs a value"},
    {"--allow-write=", "%-%-allow%-write needs a value"},
    {"--allow-everything", "unrecognized option '%-%-allow%-everything'"},
    {"--sandboxx", "unrecognized option '%-%-sandboxx'"},
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1], function()
      local rc, out = H.sh(H.luaio .. " " .. case[1] .. " -e 'print(1)' 2>&1")
      assert.are.equal(1, rc, out)
      assert.matches(case[2], out)
      assert.is_nil(out:find("^1\n"), out)
    end)
  end

  it("sizes take k, M and G suffixes", function()
    for _, size in ipairs{"100000000", "100000k", "100M", "1G", "1.5G"} do
      local rc, out = H.sh(H.luaio .. " --max-memory=" .. size
        .. " -e 'print(1)' 2>&1")
      assert.are.equal(0, rc, out)
    end
  end)

  it("--help lists the sandbox options", function()
    local rc, out = H.sh(H.luaio .. " --help")
    assert.are.equal(0, rc)
    for _, opt in ipairs{"--sandbox", "--allow-read", "--allow-write",
        "--allow-net", "--allow-run", "--allow-env", "--max-memory",
        "--max-time", "--max-tasks"} do
      assert.is_truthy(out:find(opt, 1, true), opt)
    end
  end)
end)
