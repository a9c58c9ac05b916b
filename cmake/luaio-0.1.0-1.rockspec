-- luarocks make cmake/luaio-0.1.0-1.rockspec   (from the top of the tree)
-- builds with CMake and installs the luaio module and the luaio program.
rockspec_format = "3.0"
package = "luaio"
version = "0.1.0-1"
source = {
  -- luarocks make builds the checkout it runs in; set this to the
  -- project's public repository before uploading the rockspec.
  url = "git+https://example.invalid/luaio.git",
  tag = "v0.1.0",
}
description = {
  summary = "async/await-style concurrency for Lua 5.4 on libuv",
  detailed = [[
luaio runs Lua 5.4 scripts on a libuv event loop: sleeps, HTTP, files and
sockets suspend only the calling task. Tasks, gather, timeouts,
cancellation, queues and semaphores are implemented in C.]],
  license = "MIT",
  labels = { "async", "libuv", "http", "coroutines" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- libuv, libcurl, yajl, hiredis and Lua's headers are found by CMake
-- with pkg-config (Debian: libuv1-dev libcurl4-openssl-dev libyajl-dev
-- libhiredis-dev liblua5.4-dev pkg-config cmake), which names any that
-- is missing.
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
  },
  -- The CMake install is the system one (library, header, pkg-config);
  -- a rock needs only the module and the program.
  install_pass = false,
  install = {
    lib = { luaio = "build.luarocks/lua/luaio.so" },
    bin = { luaio = "build.luarocks/luaio" },
  },
}
