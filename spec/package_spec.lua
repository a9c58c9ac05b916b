-- Packaging: the Debian packages made by `cpack -G DEB` and the rockspec.
-- Each is built from this tree into a temp folder, installed there
-- (dpkg -x, luarocks --tree) and used the way a user would: the embedding
-- examples built with pkg-config and find_package, `require "luaio"` from
-- lua5.4. Offline; the temp folders are removed at the end.
-- (`cmake --install` itself is spec/c/install_test.sh.)
local helpers = require "spec.helpers"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local src = select(2, helpers.sh("pwd")):gsub("%s+$", "")
local embed = src .. "/examples/embed"

-- Run a shell command, failing the test with its output if it fails.
local function run(cmd)
  local rc, out = helpers.sh(cmd .. " 2>&1")
  assert(rc == 0, ("command failed (%s):\n%s\n%s"):format(rc, cmd, out))
  return out
end

local function exists(path)
  return helpers.sh("test -e " .. q(path)) == 0
end

local function tempdir()
  return (run("mktemp -d -t luaio-pkg.XXXXXX"):gsub("%s+$", ""))
end

-- The dynamic symbols a shared object defines, without version nodes.
local function exported(file)
  local names = {}
  for l in run("nm -D --defined-only " .. q(file)):gmatch("[^\n]+") do
    local kind, name = l:match("^%x*%s+(%a)%s+([^@%s]+)")
    if name and kind ~= "A" then names[#names + 1] = name end
  end
  return names
end

-- A project using the installed CMake package, as the README shows.
local consumer_cmake = [[
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(luaio ${WANT} REQUIRED)
add_executable(minimal ${EMBED}/minimal.c)
target_link_libraries(minimal PRIVATE luaio::luaio)
add_executable(job_runner ${EMBED}/job_runner.c)
target_link_libraries(job_runner PRIVATE luaio::luaio_static)
]]

describe("Debian packages from cpack -G DEB", function()
  local tmp, root, usr, libdir, debs

  lazy_setup(function()
    tmp = tempdir()
    root = tmp .. "/root"
    usr = root .. "/usr"
    local arch = run("dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null"
                     .. " || gcc -print-multiarch")
    libdir = usr .. "/lib/" .. arch:gsub("%s+$", "")
    local b = tmp .. "/build"
    run(("cmake -S %s -B %s -DCMAKE_INSTALL_PREFIX=/usr"
         .. " -DCMAKE_BUILD_TYPE=Release >/dev/null"):format(q(src), q(b)))
    run(("cmake --build %s -j2 >/dev/null"):format(q(b)))
    run(("cd %s && cpack -G DEB -B %s/debs"):format(q(b), q(tmp)))
    local function deb(name)
      return (run(("ls %s/debs/%s_0.1.0-1_*.deb"):format(q(tmp), name))
              :gsub("%s+$", ""))
    end
    debs = {luaio = deb("luaio"), dev = deb("luaio-dev")}
    for _, deb in pairs(debs) do
      run(("dpkg -x %s %s"):format(q(deb), q(root)))
    end
  end)

  lazy_teardown(function()
    if tmp then run("rm -rf " .. q(tmp)) end
  end)

  it("luaio depends on libuv1, libcurl4, liblua5.4-0, libyajl2, libxml2",
     function()
    local depends = run("dpkg-deb -f " .. q(debs.luaio) .. " Depends")
    for _, pkg in ipairs({"libuv1", "libcurl4", "liblua5.4-0", "libyajl2",
                          "libxml2"}) do
      assert.matches("%f[%w]" .. pkg:gsub("%p", "%%%0") .. "%f[^%w.-]",
                     depends)
    end
    local dev = run("dpkg-deb -f " .. q(debs.dev) .. " Depends")
    assert.matches("luaio (= 0.1.0-1)", dev, 1, true)
    assert.matches("libuv1-dev", dev, 1, true)
    assert.matches("libxml2-dev", dev, 1, true)
    -- packages linking libluaio.so.0 will depend on luaio
    assert.matches("libluaio 0 luaio (>= 0.1.0)",
                   run("dpkg-deb -I " .. q(debs.luaio) .. " shlibs"), 1, true)
  end)

  it("installs in Debian's multiarch layout", function()
    for _, f in ipairs({
      usr .. "/bin/luaio",
      usr .. "/include/luaio.h",
      libdir .. "/libluaio.so",
      libdir .. "/libluaio.so.0",
      libdir .. "/libluaio.so.0.1.0",
      libdir .. "/libluaio.a",
      libdir .. "/pkgconfig/luaio.pc",
      libdir .. "/cmake/luaio/luaioConfig.cmake",
      libdir .. "/cmake/luaio/luaioConfigVersion.cmake",
      libdir .. "/cmake/luaio/luaioTargets.cmake",
      libdir .. "/lua/5.4/luaio.so",
      usr .. "/share/doc/luaio/README.md",
      usr .. "/share/doc/luaio/LICENSE",
    }) do
      assert(exists(f), "missing " .. f)
    end
    -- the runtime package has no development files
    local files = run("dpkg-deb -c " .. q(debs.luaio))
    assert.not_matches("/include/luaio.h", files, 1, true)
    assert.not_matches("/libluaio.so\n", files, 1, true)
    -- the man page and the LuaLS stubs, when the tree has them
    if exists(src .. "/cmake/luaio.1") then
      assert.matches("./usr/share/man/man1/luaio.1.gz\n", files, 1, true)
    end
    for stub in run("cd " .. q(src) .. " && ls lua/types/*.lua 2>/dev/null"
                    .. " || true"):gmatch("lua/types/([^\n]+)") do
      assert.matches("./usr/share/luaio/types/" .. stub .. "\n", files, 1,
                     true)
    end
  end)

  it("libluaio.so has a SONAME and exports only the public API", function()
    local dyn = run("readelf -d " .. q(libdir .. "/libluaio.so.0.1.0"))
    assert.matches("Library soname: [libluaio.so.0]", dyn, 1, true)
    local names = exported(libdir .. "/libluaio.so.0.1.0")
    assert.is_true(#names > 20)
    for _, name in ipairs(names) do
      assert(name:match("^luaio_%a") or name:match("^luaopen_luaio"),
             "exported: " .. name)
    end
  end)

  it("the luaio.so module exports only luaopen_luaio*", function()
    local names = exported(libdir .. "/lua/5.4/luaio.so")
    assert.is_true(#names > 0)
    local has_open = false
    for _, name in ipairs(names) do
      assert(name:match("^luaio_%a") or name:match("^luaopen_luaio"),
             "exported: " .. name)
      has_open = has_open or name == "luaopen_luaio"
    end
    assert.is_true(has_open)
  end)

  it("lua5.4 requires the installed module", function()
    local out = run(("LUA_CPATH=%s lua5.4 -e %s"):format(
      q(libdir .. "/lua/5.4/?.so"),
      q("local aio = require 'luaio'; local fs = require 'luaio.fs';"
        .. " print(aio.run(function() aio.sleep(0.01); return 'ran' end),"
        .. " package.searchpath('luaio', package.cpath))")))
    assert.matches("ran\t" .. libdir .. "/lua/5.4/luaio.so", out, 1, true)
  end)

  it("the installed luaio program runs a script", function()
    local out = run(q(usr .. "/bin/luaio") .. " -e "
      .. q("local aio = require 'luaio'; aio.sleep(0.01); print(6 * 7)"))
    assert.matches("42", out, 1, true)
  end)

  it("the embedding examples build with pkg-config, shared and static",
     function()
    local env = "PKG_CONFIG_PATH=" .. q(libdir .. "/pkgconfig") .. " "
    -- the .pc finds its prefix from its own place: no absolute /usr
    local inc = run(env .. "pkg-config --variable=includedir luaio")
    assert.matches(usr .. "/include", run("realpath " .. inc), 1, true)
    local cflags = run(env .. "pkg-config --cflags luaio"):gsub("\n", " ")
    local libs = run(env .. "pkg-config --libs luaio"):gsub("\n", " ")
    run(("cc -o %s/minimal %s/minimal.c %s %s"):format(
      q(tmp), q(embed), cflags, libs))
    local out = run(("LD_LIBRARY_PATH=%s %s/minimal"):format(
      q(libdir), q(tmp)))
    assert.matches("script finished", out, 1, true)
    -- static: libluaio.a plus what --static lists, shared libraries only
    -- for the dependencies
    local static = run(env .. "pkg-config --static --libs luaio")
                   :gsub("\n", " "):gsub("%-lluaio ", "-l:libluaio.a ")
    run(("cc -o %s/job_runner %s/job_runner.c %s %s"):format(
      q(tmp), q(embed), cflags, static))
    assert.not_matches("libluaio",
                       run("readelf -d " .. q(tmp .. "/job_runner")), 1, true)
    out = run(("%s/job_runner %s/jobs.lua 6"):format(q(tmp), q(embed)))
    assert.matches("6 of 6 jobs done", out, 1, true)
  end)

  it("the embedding examples build with find_package(luaio 0.1)", function()
    local dir = tmp .. "/consumer"
    run("mkdir -p " .. q(dir))
    local f = assert(io.open(dir .. "/CMakeLists.txt", "w"))
    f:write(consumer_cmake)
    f:close()
    local function configure(want, build)
      return helpers.sh(("cmake -S %s -B %s -DWANT=%s -DEMBED=%s"
        .. " -DCMAKE_PREFIX_PATH=%s 2>&1"):format(q(dir), q(build), want,
        q(embed), q(usr)))
    end
    local rc, out = configure("0.1", dir .. "/b")
    assert.are.equal(0, rc, out)
    run(("cmake --build %s -j2 >/dev/null"):format(q(dir .. "/b")))
    out = run(q(dir .. "/b/minimal"))            -- RUNPATH into the root
    assert.matches("script finished", out, 1, true)
    out = run(("%s/b/job_runner %s/jobs.lua 4"):format(q(dir), q(embed)))
    assert.matches("4 of 4 jobs done", out, 1, true)
    -- SameMajorVersion: another major version is not accepted
    rc, out = configure("1.0", dir .. "/b1")
    assert.are_not.equal(0, rc)
    assert.matches("requested version \"1.0\"", out, 1, true)
  end)
end)

describe("the rockspec (luarocks make, cmake backend)", function()
  local tmp

  lazy_setup(function() tmp = tempdir() end)
  lazy_teardown(function()
    if tmp then run("rm -rf " .. q(tmp)) end
  end)

  it("builds the module and the program into a tree lua5.4 can use",
     function()
    assert(helpers.sh("command -v luarocks >/dev/null") == 0,
           "luarocks is not installed (scripts/setup.sh installs it)")
    -- luarocks builds in build.luarocks/ of the current folder: a copy
    local copy = tmp .. "/src"
    run("mkdir -p " .. q(copy))
    run(("cd %s && cp -R CMakeLists.txt README.md LICENSE bindings cmake"
         .. " cli examples host lua spec %s/"):format(q(src), q(copy)))
    local tree = tmp .. "/tree"
    -- HOME: luarocks keeps its cache and config there; no servers asked
    local lr = ("HOME=%s CMAKE_BUILD_PARALLEL_LEVEL=2 luarocks"
      .. " --lua-version 5.4 --tree %s"):format(q(tmp), q(tree))
    run(("cd %s && %s make --deps-mode none cmake/luaio-0.1.0-1.rockspec")
        :format(q(copy), lr))
    local env = run(lr .. " path"):gsub("\n", "; ")
    local out = run(env .. " lua5.4 -e " .. q(
      "local aio = require 'luaio';"
      .. " print(aio.run(function() aio.sleep(0.01); return 'ran' end),"
      .. " package.searchpath('luaio', package.cpath))"))
    assert.matches("ran\t" .. tree .. "/lib/lua/5.4/luaio.so", out, 1, true)
    out = run(q(tree .. "/bin/luaio") .. " -e " .. q("print(6 * 7)"))
    assert.matches("42", out, 1, true)
    -- the rock holds the module and the program, not the C SDK
    assert.is_false(exists(tree .. "/include/luaio.h"))
    assert.is_false(exists(tree .. "/lib/lua/5.4/libluaio.so"))
  end)
end)
