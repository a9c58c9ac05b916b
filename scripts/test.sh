#!/bin/sh
# The test command: sets up, builds, then runs every spec (examples and
# the C embedding tests included) through ctest, and once more under
# valgrind, which must report no leak and no invalid access.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
ctest --test-dir build --output-on-failure
LUAIO_BUILD=build-valgrind LUAIO_CMAKE_ARGS="-DLUAIO_VALGRIND=ON" \
  sh scripts/setup.sh
ctest --test-dir build-valgrind --output-on-failure -L valgrind
