#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# cmake --install into a temporary prefix, then use the installed tree as
# a user would: the embedding examples built with pkg-config (shared and
# --static) and with find_package(luaio), `require "luaio"` from lua5.4,
# the program; the exported symbols checked; the tree moved and used
# again (luaio.pc is relocatable). The .deb packages and the rockspec
# are spec/package_spec.lua.
set -eu
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
embed=$src/examples/embed
tmp=$(mktemp -d -t luaio-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
passed=0
# The sanitizer build's library needs its flags in every program linking
# it, and its runtime loaded first into a stock lua5.4.
cflags=${LUAIO_TEST_CFLAGS:-}
lua54="lua5.4"
[ -z "${LUAIO_ASAN_RUNTIME:-}" ] ||
  lua54="env LD_PRELOAD=$LUAIO_ASAN_RUNTIME lua5.4"

fail () { echo "FAIL: $*" >&2; exit 1; }
ok () { passed=$((passed + 1)); }

cmake --install "$build" --prefix "$prefix" >/dev/null

# 1. the files, where GNUInstallDirs puts them
libdir=$(dirname "$(dirname "$(find "$prefix" -name luaio.pc)")")
for f in bin/luaio include/luaio.h share/doc/luaio/README.md \
         share/doc/luaio/LICENSE; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
for f in libluaio.so libluaio.so.0 libluaio.so.0.1.0 libluaio.a \
         pkgconfig/luaio.pc cmake/luaio/luaioConfig.cmake \
         cmake/luaio/luaioConfigVersion.cmake cmake/luaio/luaioTargets.cmake \
         lua/5.4/luaio.so; do
  [ -e "$libdir/$f" ] || fail "missing <libdir>/$f"
done
[ ! -f "$src/cmake/luaio.1" ] || [ -f "$prefix/share/man/man1/luaio.1.gz" ] ||
  [ -f "$prefix/share/man/man1/luaio.1" ] || fail "man page not installed"
for t in "$src"/lua/types/*.lua; do
  [ -f "$t" ] || continue
  [ -f "$prefix/share/luaio/types/$(basename "$t")" ] ||
    fail "type stub $(basename "$t") not installed"
done
ok

# 2. SONAME, and only the public API exported
readelf -d "$libdir/libluaio.so.0.1.0" | grep -q 'soname: \[libluaio.so.0\]' ||
  fail "no SONAME libluaio.so.0"
for so in "$libdir/libluaio.so.0.1.0" "$libdir/lua/5.4/luaio.so"; do
  extra=$(nm -D --defined-only "$so" |
          awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
          grep -v -e '^luaio_[a-z]' -e '^luaopen_luaio' || true)
  [ -z "$extra" ] || fail "$(basename "$so") exports: $extra"
done
nm -D --defined-only "$libdir/lua/5.4/luaio.so" | grep -q ' luaopen_luaio@' ||
  fail "module does not export luaopen_luaio"
# the ABI is the header: an exported luaio_ name luaio.h does not declare
# is an internal one (make it static, or name it luaio__)
for s in $(nm -D --defined-only "$libdir/libluaio.so.0.1.0" |
           awk '{ sub(/@.*/, "", $3); print $3 }' | grep '^luaio_'); do
  grep -q "\<$s\>" "$prefix/include/luaio.h" ||
    fail "libluaio.so exports $s, which luaio.h does not declare"
done
ok

# 3. pkg-config, shared: job_runner runs against libluaio.so
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc $cflags -o "$tmp/job_runner" "$embed/job_runner.c" \
  $(pkg-config --cflags --libs luaio)
LD_LIBRARY_PATH="$libdir" "$tmp/job_runner" "$embed/jobs.lua" 12 |
  grep -q "12 of 12 jobs done" || fail "job_runner (pkg-config, shared)"
ok

# 4. pkg-config --static: libluaio.a and the libraries it needs
static=$(pkg-config --static --libs luaio | sed 's/-lluaio /-l:libluaio.a /')
cc $cflags -o "$tmp/minimal_static" "$embed/minimal.c" \
  $(pkg-config --cflags luaio) $static
! readelf -d "$tmp/minimal_static" | grep -q libluaio ||
  fail "the --static link used libluaio.so"
"$tmp/minimal_static" | grep -q "script finished" ||
  fail "minimal (pkg-config --static)"
ok

# 5. find_package(luaio 0.1 REQUIRED), shared and static targets
mkdir "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(luaio 0.1 REQUIRED)
add_executable(minimal "$embed/minimal.c")
target_link_libraries(minimal PRIVATE luaio::luaio)
add_executable(job_runner "$embed/job_runner.c")
target_link_libraries(job_runner PRIVATE luaio::luaio_static)
EOF
cmake -S "$tmp/consumer" -B "$tmp/consumer/b" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$cflags" >/dev/null
cmake --build "$tmp/consumer/b" >/dev/null
"$tmp/consumer/b/minimal" | grep -q "script finished" ||
  fail "minimal (find_package, luaio::luaio)"
"$tmp/consumer/b/job_runner" "$embed/jobs.lua" 3 |
  grep -q "3 of 3 jobs done" || fail "job_runner (luaio::luaio_static)"
ok

# 6. lua5.4 loads the installed module; the program runs
out=$(LUA_CPATH="$libdir/lua/5.4/?.so" $lua54 -e '
  local aio = require "luaio"
  local json = require "luaio.json"
  print(aio.run(function() aio.sleep(0.01); return json.encode{1} end))')
[ "$out" = "[1]" ] || fail "lua5.4 require 'luaio': $out"
out=$("$prefix/bin/luaio" -e 'require("luaio").sleep(0.01); print(6 * 7)')
[ "$out" = "42" ] || fail "installed luaio program: $out"
ok

# 7. the tree moved elsewhere still builds: luaio.pc finds its prefix
mv "$prefix" "$tmp/moved"
libdir=$tmp/moved/${libdir#"$prefix"/}
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(cd "$(pkg-config --variable=libdir luaio)" && pwd -P)" = \
  "$(cd "$libdir" && pwd -P)" ] || fail "luaio.pc libdir after the move"
cc $cflags -o "$tmp/minimal" "$embed/minimal.c" \
  $(pkg-config --cflags --libs luaio)
LD_LIBRARY_PATH="$libdir" "$tmp/minimal" | grep -q "script finished" ||
  fail "minimal after the move"
ok

echo "$passed passed, 0 failed"
