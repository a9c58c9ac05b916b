-- The luaio command line against lua5.4's: the same arguments, scripts
-- and environment give the same output and exit status. Error messages
-- are compared with the program's name taken out.
local H = require "spec.helpers.init"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))

local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Run prog with a shell argument string in tmp; opts.env (a prefix of
-- assignments) and opts.stdin (text). Returns rc, stdout, stderr with the
-- program's name replaced by PROG.
local function run(prog, args, opts)
  opts = opts or {}
  local input = write("stdin.txt", opts.stdin or "")
  local cmd = string.format(
    "cd %s && %s timeout 120 %s %s <%s >%s/out 2>%s/err",
    tmp, opts.env or "", prog, args, input, tmp, tmp)
  local rc = H.sh(cmd)
  local err = slurp(tmp .. "/err")
  err = err:gsub("lua5%.4: ", "PROG: "):gsub("luaio: ", "PROG: ")
  return rc, slurp(tmp .. "/out"), err
end

-- Both programs agree on exit status, stdout and (optionally) stderr.
local function same(args, opts)
  local rc1, out1, err1 = run("lua5.4", args, opts)
  local rc2, out2, err2 = run(H.luaio, args, opts)
  assert.are.equal(rc1, rc2, "exit status of " .. args)
  assert.are.equal(out1, out2, "stdout of " .. args)
  if opts and opts.stderr then
    assert.are.equal(err1, err2, "stderr of " .. args)
  end
  return rc2, out2, err2
end

local function first_line(s) return s:match("^[^\n]*") end

describe("luaio runs the command line as lua5.4 does", function()

  write("mymod.lua", "return {name = 'mymod', n = select('#', ...)}")
  write("mymod-2.lua", "return {name = 'mymod-2'}")
  write("args.lua", [[
    local n = 0
    while arg[n - 1] do n = n - 1 end
    for i = n + 1, #arg do io.write(i, "=", arg[i], " ") end
    print("|", select("#", ...), ...)
  ]])
  local env = "LUA_PATH='" .. tmp .. "/?.lua' "

  it("-e runs code, in order, and stops at the first error", function()
    same("-e 'print(1 + 1)' -e 'print(3)'")
    local rc = same("-e 'print(1)' -e 'error(\"x\")' -e 'print(2)'",
                    {stderr = true})
    assert.are.equal(1, rc)
    same("-e'print(\"glued\")'")
  end)

  it("-l mod and -l g=mod set globals", function()
    local _, out = same("-l mymod -e 'print(mymod.name, mymod.n)'",
                        {env = env})
    assert.are.equal("mymod\t2\n", out)
    same("-l m=mymod -e 'print(m.name, mymod)'", {env = env})
    same("-lmymod -e 'print(mymod.name)'", {env = env})
    _, out = same("-l mymod-2 -e 'print(_G[\"mymod-2\"].name)'",
                  {env = env})
    assert.are.equal("mymod-2\n", out)
    local rc = same("-l nosuchmod -e 'print(1)'", {env = env})
    assert.are.equal(1, rc)
  end)

  it("-v prints one version line on stdout, then runs the rest", function()
    local rc1, out1 = run("lua5.4", "-v")
    local rc2, out2 = run(H.luaio, "-v")
    assert.are.equal(rc1, rc2)
    assert.matches("^Lua 5%.4[^\n]*\n$", out1)
    assert.matches("^luaio %d+%.%d+%.%d+ %(Lua 5%.4[^\n]*\n$", out2)
    _, out2 = run(H.luaio, "-v -e 'print(1)'")
    assert.matches("^luaio [^\n]*\n1\n$", out2)
  end)

  it("the arg table, script arguments and negative indices", function()
    same("args.lua a 'b c' d")
    same("-e 'x = 1' -l mymod args.lua a", {env = env})
    same("-- args.lua -e", {env = env})
    same("-e 'print(#arg, arg[1], arg[2])'")
    local _, out = same("-e 'x=1' args.lua p q")
    assert.are.equal("-2=-e -1=x=1 0=args.lua 1=p 2=q |\t2\tp\tq\n", out)
  end)

  it("- runs stdin, -- ends the options", function()
    same("- a b", {stdin = "print('stdin', ...) print(arg[0])"})
    same("-e 'print(1)' - a", {stdin = "print('then stdin', ...)"})
    write("-", "print('a file named -')")
    same("-- -", {stdin = "print('not this')"})
    same("-e 'print(1)' --")
    same("", {stdin = "print('no arguments, stdin not a terminal')"})
  end)

  it("an error exits 1, a syntax error too, os.exit sets the status",
     function()
    local rc = same("-e 'error(\"boom\")'", {stderr = true})
    assert.are.equal(1, rc)
    write("syntax.lua", "x = = 1")
    rc = same("syntax.lua", {stderr = true})
    assert.are.equal(1, rc)
    write("fails.lua", "print('before') error({code = 1})")
    rc = same("fails.lua")
    assert.are.equal(1, rc)
    rc = same("nosuchfile.lua", {stderr = true})
    assert.are.equal(1, rc)
    rc = same("-e 'os.exit(7)'")
    assert.are.equal(7, rc)
    rc = same("-e 'os.exit(false)'")
    assert.are.equal(1, rc)
    rc = same("-e 'os.exit(0)' -e 'print(\"not run\")' args.lua")
    assert.are.equal(0, rc)
    rc = same("-e 'print(1)'", {env = "LUA_INIT='os.exit(3)' "})
    assert.are.equal(3, rc)
  end)

  it("LUA_INIT and LUA_INIT_5_4 run first: code or @file", function()
    same("-e 'print(2)'", {env = "LUA_INIT='print(\"init\", #arg)' "})
    same("-e 'print(2)'",
         {env = "LUA_INIT_5_4='print(54)' LUA_INIT='print(\"no\")' "})
    write("init.lua", "print('from init file') x = 5")
    same("-e 'print(x)'", {env = "LUA_INIT=@" .. tmp .. "/init.lua "})
    local rc = same("-e 'print(2)'", {env = "LUA_INIT='error(\"bad\")' ",
                                      stderr = true})
    assert.are.equal(1, rc)
  end)

  it("-E ignores LUA_INIT, LUA_PATH and LUA_CPATH", function()
    local e = "LUA_INIT='print(\"from LUA_INIT\")' "
      .. "LUA_PATH='/nowhere/?.lua' "
      .. "LUA_CPATH='/nowhere/?.so' "
    local _, out = same("-E -e 'print(package.path, package.cpath)'",
                        {env = e})
    assert.not_matches("nowhere", out)
    assert.not_matches("from LUA_INIT", out)
    same("-e 'print(package.path, package.cpath)'", {env = e})
  end)

  it("-W is accepted; warnings are on (luaio's default)", function()
    local rc1, _, err1 = run("lua5.4", "-W -e 'warn(\"careful\")'")
    local rc2, _, err2 = run(H.luaio, "-W -e 'warn(\"careful\")'")
    assert.are.equal(rc1, rc2)
    assert.matches("careful", err1)
    assert.matches("careful", err2)
    local _, _, err = run(H.luaio, "-e 'warn(\"default on\")'")
    assert.matches("default on", err)
  end)

  it("a bad option: a message and the usage on stderr, status 1", function()
    for _, args in ipairs{"-x", "-e", "-l", "-ix", "--x", "-e -v"} do
      local rc, out, err = same(args)
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      local _, _, lua_err = run("lua5.4", args)
      assert.are.equal(first_line(lua_err), first_line(err))
      assert.matches("usage: luaio", err)
    end
  end)
end)

describe("luaio's own options", function()
  teardown(function() os.execute("rm -rf " .. tmp) end)
  local function help()
    local rc, out, err = run(H.luaio, "--help")
    assert.are.equal(0, rc)
    assert.are.equal("", err)
    return out
  end

  it("--help and --version print on stdout and exit 0", function()
    local out = help()
    assert.matches("usage: luaio", out)
    assert.matches("%-%-grace", out)
    local rc, v, err = run(H.luaio, "--version")
    assert.are.equal(0, rc)
    assert.are.equal("", err)
    assert.matches("^luaio %d+%.%d+%.%d+ [^\n]*\n$", v)
    local _, v2 = run(H.luaio, "-v")
    assert.are.equal(v, v2)
  end)

  it("an unknown long option is a usage error", function()
    local rc, out, err = run(H.luaio, "--frobnicate")
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.matches("unrecognized option '%-%-frobnicate'", err)
  end)

  it("the man page documents every option of --help", function()
    local man = slurp("cmake/luaio.1")
    assert.matches("%.TH LUAIO 1", man)
    man = man:gsub("\\%-", "-"):gsub("\\f[BIRP]", "")
    local n = 0
    for opt in help():gmatch("\n  (%-%S*)") do
      n = n + 1
      assert.is_truthy(man:find("\n" .. opt, 1, true)
                       or man:find(" " .. opt .. "\n", 1, true),
                       "luaio.1 lacks " .. opt)
    end
    assert.is_true(n >= 10)
    for _, var in ipairs{"LUA_INIT", "LUA_PATH", "LUAIO_HISTORY"} do
      assert.is_truthy(man:find(var, 1, true), "luaio.1 lacks " .. var)
    end
  end)
end)
