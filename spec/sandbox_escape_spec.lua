-- Escape attempts against `luaio --sandbox`: each runs a child luaio
-- with the sandbox flags and must be refused (README "Sandbox").
local aio = require "luaio"
local fs = require "luaio.fs"
local H = require "spec.helpers"

local dir                                 -- the test's temp folder
local before, after = H.temp_dir_hooks(function(p) dir = p end)

-- Run src as a script under `luaio <flags>`; returns rc, stdout+stderr.
local function sandboxed (flags, src)
  local path = H.script(src)
  local rc, out = H.sh(H.luaio .. " " .. flags .. " " .. path .. " 2>&1")
  os.remove(path)
  return rc, out
end

-- Setup: an allowed folder ok/ with a file, and a secret beside it.
local function layout ()
  fs.mkdir(dir .. "/ok")
  fs.write(dir .. "/ok/a.txt", "allowed\n")
  fs.write(dir .. "/secret.txt", "SECRET\n")
  return "--sandbox --allow-read=" .. dir .. "/ok"
end

-- A script that tries each of the calls (Lua expressions) and prints
-- "REFUSED" or "ESCAPED" for each; fails the spec on an escape.
local function attempts (flags, calls, prelude)
  local lines = {prelude or ""}
  for _, call in ipairs(calls) do
    lines[#lines + 1] = ([[
do
  local ok, res, msg = pcall(function() return %s end)
  if ok and res ~= nil and res ~= false then print("ESCAPED " .. %q, res)
  else print("REFUSED", res, msg) end
end]]):format(call, call)
  end
  local rc, out = sandboxed(flags, table.concat(lines, "\n"))
  assert.are.equal(0, rc, out)
  assert.is_nil(out:find("ESCAPED", 1, true), out)
  assert.is_nil(out:find("SECRET", 1, true), out)
  local n = select(2, ("\n" .. out):gsub("\nREFUSED", ""))
  assert.are.equal(#calls, n, out)
  return out
end

describe("sandbox escapes", function()
  before_each(before)
  after_each(after)

  it("string.dump tricks: binary chunks never load", function()
    local flags = layout() .. " --allow-write=" .. dir .. "/ok"
    local out = attempts(flags, {
      [[load(string.dump(function() return 1 end))]],
      [[load(string.dump(function() return 1 end), "x", "b")]],
      [[load(string.dump(function() return 1 end), "x", "bt", {})]],
      [[(function() local f = io.open(D .. "/c.luac", "wb")
          f:write(string.dump(function() return 1 end)) f:close()
          return loadfile(D .. "/c.luac", "b") end)()]],
      [[dofile(D .. "/c.luac")]],
      [[(function() package.path = D .. "/?.luac" return require "c" end)()]],
    }, ("D = %q"):format(dir .. "/ok"))
    assert.matches("attempt to load a binary chunk", out)
  end)

  it("the debug library is gone, also through require", function()
    attempts("--sandbox", {
      [[debug]], [[require "debug"]], [[package.loaded.debug]],
      [[debug.getregistry()]], [[debug.getupvalue(io.open, 1)]],
      [[require("luaio")._test]],
    })
  end)

  it("package.loadlib and C modules are refused", function()
    local out = attempts("--sandbox", {
      [[package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "*")]],
      [[package.loadlib("liblua5.4.so", "luaopen_os")]],
      [[(function() package.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
          return require "cjson" end)()]],
      [[package.searchers[3] or package.searchers[4] ]],
      [[package.searchpath("passwd", "/etc/?")]],
    })
    assert.matches("C libraries cannot be loaded in the sandbox", out)
  end)

  it("metatables on strings cannot be reached or used", function()
    layout()
    attempts("--sandbox", {
      [[getmetatable("")]],
      [[setmetatable("", {})]],
      [[type(getmetatable("")) == "table"]],
      [[require("luaio.fs").read(setmetatable({}, {__tostring = function()
          return "/etc/passwd" end}))]],
      [[io.open(setmetatable({}, {__tostring = function()
          return "/etc/passwd" end}))]],
    })
  end)

  it("collectgarbage allows only the safe options", function()
    local out = attempts("--sandbox", {
      [[collectgarbage("stop")]], [[collectgarbage("restart")]],
      [[collectgarbage("generational")]], [[collectgarbage("incremental")]],
      [[collectgarbage("setpause", 1)]], [[collectgarbage("setstepmul", 1)]],
    })
    assert.matches("only collect, count, step and isrunning", out)
    local rc, o2 = sandboxed("--sandbox", [[
      print(collectgarbage("count") > 0, collectgarbage() == 0,
            collectgarbage("isrunning"))]])
    assert.are.equal(0, rc, o2)
    assert.matches("true\ttrue\ttrue", o2)
  end)

  it("a symlink inside an allowed folder does not lead out", function()
    local flags = layout() .. " --allow-write=" .. dir .. "/ok"
    assert(os.execute(("ln -s ../secret.txt '%s/ok/link' && "
      .. "ln -s .. '%s/ok/up' && ln -s '%s/new.txt' '%s/ok/dangling'")
      :format(dir, dir, dir, dir)))
    local out = attempts(flags, {
      [[io.open(D .. "/link"):read("a")]],
      [[io.lines(D .. "/link")()]],
      [[io.input(D .. "/link")]],
      [[require("luaio.fs").read(D .. "/link")]],
      [[require("luaio.fs").open(D .. "/link"):read_all()]],
      [[require("luaio.fs").read(D .. "/up/secret.txt")]],
      [[require("luaio.fs").readdir(D .. "/up")]],
      [[(function()
          for e in require("luaio.fs").walk(D, {follow_links = true}) do
            if e.path:find("secret") then return e.path end
          end end)()]],
      [[(function()
          for e in require("luaio.fs").walk(D) do
            if e.path:find("secret") then return e.path end
          end end)()]],
      [[loadfile(D .. "/link")]],
      [[dofile(D .. "/up/secret.txt")]],
      [[io.open(D .. "/dangling", "w")]],
      [[require("luaio.fs").write(D .. "/dangling", "x")]],
      [[os.rename(D .. "/a.txt", D .. "/up/moved")]],
      [[require("luaio.fs").copy(D .. "/a.txt", D .. "/dangling")]],
    }, ("D = %q"):format(dir .. "/ok"))
    assert.matches("it resolves to '" .. dir .. "/secret.txt'", out, 1, true)
    assert.is_false(fs.exists(dir .. "/new.txt"))
    assert.is_false(fs.exists(dir .. "/moved"))
  end)

  it("a symlink swapped during the reads never yields the secret", function()
    local flags = layout()
    fs.write(dir .. "/ok/b.txt", "allowed too\n")
    assert(os.execute(("ln -s a.txt '%s/ok/link'"):format(dir)))
    -- a process outside the sandbox swaps ok/link between inside and
    -- outside targets as fast as it can; the reads start once it swaps
    -- (it makes a file then), not when it may still be starting
    local pid = H.background(("(while :; do ln -sfn ../secret.txt "
      .. "'%s/ok/link'; ln -sfn b.txt '%s/ok/link'; "
      .. "[ -e '%s/swapping' ] || : > '%s/swapping'; done)")
      :format(dir, dir, dir, dir))
    for _ = 1, 6000 do                      -- up to a minute
      if fs.exists(dir .. "/swapping") then break end
      aio.sleep(0.01)
    end
    assert.is_true(fs.exists(dir .. "/swapping"), "the swapper did not start")
    local rc, out = sandboxed(flags, ([[
      local fs = require "luaio.fs"
      local got, refused = 0, 0
      for i = 1, 300 do
        for _, read in ipairs{
          function()
            local f <close> = assert(io.open(%q)) return f:read("a")
          end,
          function() return fs.read(%q) end,
          function() local f <close> = fs.open(%q) return f:read_all() end} do
          local ok, s = pcall(read)
          if ok then got = got + 1; io.write(s) else refused = refused + 1 end
        end
      end
      print("reads", got, "refused", refused)]]):format(
        dir .. "/ok/link", dir .. "/ok/link", dir .. "/ok/link"))
    os.execute("kill " .. tonumber(pid) .. " 2>/dev/null")
    assert.are.equal(0, rc, out)
    assert.is_nil(out:find("SECRET", 1, true), out)
    assert.matches("reads\t%d+\trefused\t%d+", out)
  end)

  it("a folder swapped for a symlink after the check is caught", function()
    local flags = layout()
    fs.mkdir(dir .. "/ok/d")
    fs.write(dir .. "/ok/d/f.txt", "fine\n")
    fs.mkdir(dir .. "/outside")
    fs.write(dir .. "/outside/f.txt", "SECRET\n")
    assert(os.execute(("ln -s ../outside '%s/ok/d.link'"):format(dir)))
    -- outside the sandbox, ok/d (a real folder when checked) and a
    -- symlink out trade places atomically, as fast as they can
    fs.write(dir .. "/swap.py", [[
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
n = 0
while libc.renameat2(-100, b"d", -100, b"d.link", 2) == 0:
    n += 1
    if n == 2:
        open("../swapping", "w").close()
print("renameat2:", ctypes.get_errno())
sys.stdout.flush()
]])
    local pid = H.background(("python3 '%s/swap.py' '%s/ok'"):format(dir, dir),
                             {log = dir .. "/swap.log"})
    -- the reads start once it swaps (it makes a file after two swaps,
    -- so d is the folder again), or it has failed; not after 0.2 s
    for _ = 1, 6000 do                      -- up to a minute
      if fs.exists(dir .. "/swapping")
         or fs.read(dir .. "/swap.log"):find("renameat2:", 1, true) then
        break
      end
      aio.sleep(0.01)
    end
    if not fs.exists(dir .. "/swapping") then
      pending("renameat2(RENAME_EXCHANGE) is not available: "
              .. fs.read(dir .. "/swap.log"))
      return
    end
    local rc, out = sandboxed(flags .. " --allow-write=" .. dir .. "/ok", ([[
      local fs = require "luaio.fs"
      local P, C = %q, %q
      local got, refused = 0, 0
      for i = 1, 300 do
        for _, read in ipairs{
          function()
            local f <close> = assert(io.open(P)) return f:read("a")
          end,
          function() local f <close> = fs.open(P) return f:read_all() end,
          function() return fs.read(P) end,
          function() fs.copy(P, C) return fs.read(C) end} do
          local ok, s = pcall(read)
          if ok then got = got + 1; io.write(s) else refused = refused + 1 end
        end
      end
      print("reads", got, "refused", refused)]]):format(
        dir .. "/ok/d/f.txt", dir .. "/ok/copy.txt"))
    os.execute("kill " .. tonumber(pid) .. " 2>/dev/null")
    assert.are.equal(0, rc, out)
    assert.is_nil(out:find("SECRET", 1, true), out)
    assert.matches("reads\t%d+\trefused\t%d+", out)
  end)

  it("/proc/self leads nowhere", function()
    layout()
    attempts("--sandbox --allow-read=/proc/self/fd,/proc/self/cwd", {
      [[io.open("/proc/self/root/etc/passwd"):read("a")]],
      [[io.open("/proc/self/cwd/../../../../../../../.." .. S):read("a")]],
      [[io.open("/proc/self/environ"):read("a")]],
      [[io.open("/proc/self/mem", "r+")]],
      [[require("luaio.fs").readdir("/proc/self/fd/..")]],
      [[require("luaio.fs").read("/proc/" .. require("luaio.fs").read(
          "/proc/self/stat"):match("%d+") .. "/environ")]],
    }, ("S = %q"):format(dir .. "/secret.txt"))
    local rc, out = sandboxed("--sandbox --allow-read=/proc", [[
      print(pcall(io.open, "/proc/self/root/etc/passwd"))]])
    assert.are.equal(0, rc, out)
    assert.matches("permission denied: read '/proc/self/root/etc/passwd' "
      .. "%(it resolves to '/etc/passwd'", out)
  end)

  it("'..' traversal is resolved before the check", function()
    local out = attempts(layout(), {
      [[io.open(D .. "/../secret.txt"):read("a")]],
      [[io.open(D .. "/./../../" .. B .. "/secret.txt"):read("a")]],
      [[io.open(D .. "//..//secret.txt"):read("a")]],
      [[require("luaio.fs").read(D .. "/../secret.txt")]],
      [[require("luaio.fs").stat(D .. "/..")]],
      [[io.open(D .. "/../../../../../../etc/passwd"):read("a")]],
      [[io.open(D .. "/nothere/../../secret.txt"):read("a")]],
    }, ("D = %q B = %q"):format(dir .. "/ok", dir:match("[^/]+$")))
    assert.matches("permission denied: read", out)
  end)

  it("the environment is closed without --allow-env", function()
    local out = attempts("--sandbox --allow-env=LUAIO_SB_OK", {
      [[os.getenv("HOME")]], [[os.getenv("PATH")]],
      [[os.getenv("LUAIO_SB_OK\0HOME")]],
      [[io.open("/proc/self/environ"):read("a")]],
      [[io.popen("env"):read("a")]], [[os.execute("env")]],
    })
    assert.matches("run with %-%-allow%-env=HOME", out)
  end)

  it("programs, files and temp names need their flags", function()
    local out = attempts(layout(), {
      [[io.popen("id")]], [[os.execute("true")]], [[os.execute()]],
      [[os.remove(D .. "/a.txt")]], [[os.rename(D .. "/a.txt", D .. "/b")]],
      [[os.tmpname()]], [[io.tmpfile()]], [[io.output(D .. "/new")]],
      [[require("luaio.fs").mkdir(D .. "/sub")]],
      [[require("luaio.fs").mkdtemp()]],
      [[require("luaio.fs").mkdtemp(D .. "/t-")]],
      [[require("luaio.fs").write(D .. "/a.txt", "x")]],
      [[require("luaio.fs").open(D .. "/a.txt", "r+")]],
      [[os.setlocale("C")]],
    }, ("D = %q"):format(dir .. "/ok"))
    assert.matches("run with %-%-allow%-run=sh", out)
    assert.are.equal("allowed\n", fs.read(dir .. "/ok/a.txt"))
  end)

  it("require does not read outside the allowed folders", function()
    fs.write(dir .. "/evil.lua", "return 'LOADED'")
    local flags = layout()
    local out = attempts(flags, {
      [[(function() package.path = B .. "/?.lua" return require "evil" end)()]],
      [[(function() package.path = D .. "/../?.lua"
          return require "evil" end)()]],
    }, ("B = %q D = %q"):format(dir, dir .. "/ok"))
    assert.matches("not allowed", out)
  end)

  it("network: only the allowed host and port", function()
    local srv = require("spec.helpers.nginx").start()
    finally(function() srv:stop() end)
    local flags = "--sandbox --allow-net=127.0.0.1:" .. srv.port
    local bad = srv.port == 65535 and 1 or srv.port + 1
    local out = attempts(flags, {
      [[http.get(U .. "/redirect/to?url=http://127.0.0.1:]] .. bad
        .. [[/small").status]],
      [[http.get(U .. "/redirect/to?url=http://localhost:]] .. srv.port
        .. [[/small").status]],
      [[http.get(U .. "/redirect/to?url=]] .. srv.tls_url
        .. [[/small", {verify = false}).status]],
      [[http.get("http://localhost:]] .. srv.port .. [[/small").status]],
      [[http.get("http://127.0.0.1:]] .. bad .. [[/small").status]],
      [[http.get("http://[::1]:]] .. srv.port .. [[/small").status]],
      [[net.connect("127.0.0.1", ]] .. bad .. [[)]],
      [[net.connect("localhost", ]] .. srv.port .. [[)]],
      [[net.serve("127.0.0.1", 0, function() end)]],
      [[net.udp():send("x", "127.0.0.1", 53)]],
      [[net.resolve("example.org")]],
      [[net.connect_unix("/run/systemd/private")]],
      [[http.post(U .. "/echo/body", {multipart = {f = {path = S}}}).body]],
      [[http.get(U .. "/small", {ca_file = S}).status]],
      [[http.get(U .. "/small", {proxy = "http://127.0.0.1:]] .. bad
        .. [["}).status]],
      [[http.get(U .. "/small", {proxy = "localhost:]] .. srv.port
        .. [["}).status]],
    }, ("http = require 'luaio.http' net = require 'luaio.net' U = %q S = %q")
      :format(srv.url, srv.dir .. "/www/small"))
    assert.matches("permission denied: net '127.0.0.1:" .. bad
      .. "' %(run with %-%-allow%-net=127.0.0.1:" .. bad .. "%)", out)
    -- the redirect was refused before any request reached the target
    local rc, ok = sandboxed(flags, ([[
      local http = require "luaio.http"
      print(http.get(%q).status)]]):format(srv.url .. "/small"))
    assert.are.equal(0, rc, ok)
    assert.matches("200", ok)
  end)

  it("a name resolving to a loopback address is refused", function()
    local srv = require("spec.helpers.nginx").start()
    finally(function() srv:stop() end)
    local _, name = H.sh("hostname")
    name = name:match("%S+")
    local _, addr = H.sh("getent hosts " .. name)
    if not (addr:match("^127%.") or addr:match("^::1")) then
      pending("the host name does not resolve to a loopback address")
      return
    end
    local flags = ("--sandbox --allow-net=%s:%d"):format(name, srv.port)
    local out = attempts(flags, {
      [[http.get("http://]] .. name .. ":" .. srv.port .. [[/small").status]],
      [[net.connect("]] .. name .. [[", ]] .. srv.port .. [[)]],
    }, "http = require 'luaio.http' net = require 'luaio.net'")
    assert.matches("is not allowed: run with %-%-allow%-net=127%.0%.0%.1:"
      .. srv.port, out)
  end)
end)
