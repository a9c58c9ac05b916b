#!/bin/sh
# Installs the build into a temporary prefix, then builds the embedding
# example against the installed tree with pkg-config and runs it.
set -eu
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cc ${LUAIO_TEST_CFLAGS:-} -o "$prefix/job_runner" "$src/examples/embed/job_runner.c" \
  $(pkg-config --cflags --libs luaio)
libdir=$(pkg-config --variable=libdir luaio)
LD_LIBRARY_PATH="$libdir" "$prefix/job_runner" "$src/examples/embed/jobs.lua" 12
test -x "$prefix/bin/luaio"
test -f "$prefix/include/luaio.h"
test -f "$libdir/cmake/luaio/luaioConfig.cmake"
echo "1 passed, 0 failed"
