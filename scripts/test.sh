#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# The test command: sets up, builds, then runs every spec (examples and
# the C embedding tests included) through ctest three times: as built
# (build/), under valgrind (build-valgrind/), which must report no leak
# and no invalid access, and built with AddressSanitizer and UBSan
# (build-asan/), where any report, in a spec or in a child process it
# starts, fails the run (exit status 86, see CMakeLists.txt).
# Each lane runs two spec files at a time (they use random ports and
# their own temp folders).
set -eu
cd "$(dirname "$0")/.."
JOBS="${LUAIO_TEST_JOBS:-2}"
lane () {
  echo "== $1"
  start=$(date +%s)
  shift
  "$@"
  echo "   ($(( $(date +%s) - start )) s)"
}
sh scripts/setup.sh
lane "specs" ctest --test-dir build -j"$JOBS" --output-on-failure
LUAIO_BUILD=build-valgrind LUAIO_CMAKE_ARGS="-DLUAIO_VALGRIND=ON" \
  sh scripts/setup.sh
lane "specs under valgrind" \
  ctest --test-dir build-valgrind -j"$JOBS" --output-on-failure -L valgrind
LUAIO_BUILD=build-asan LUAIO_CMAKE_ARGS="-DLUAIO_SANITIZE=ON" \
  sh scripts/setup.sh
lane "specs built with ASan and UBSan" \
  ctest --test-dir build-asan -j"$JOBS" --output-on-failure
# Cancellation torture: every test of the async modules, cancelled at
# each of its suspensions in turn (README, "Torture modes").
# core's 10,000-sleepers test alone would take five minutes: its k are
# sampled (50 per test) there.
torture_cancel () {
  for s in core flow sync fs net http; do
    max=200
    [ "$s" = core ] && max=50
    LUAIO=build-asan/luaio LUAIO_MALLOC=system LUAIO_TORTURE=cancel \
      LUAIO_TORTURE_MAX=$max \
      build-asan/luaio test -o utfTerminal "spec/${s}_spec.lua" || return 1
  done
}
lane "cancellation torture (ASan build)" torture_cancel
# Fuzzers from the seed corpora (README, "Fuzzing"): seed 1, at most
# 20,000 inputs or 30 s each: a smoke test of the targets; finding new
# inputs is the work of long runs (README, "Fuzzing").
lane "fuzzers" sh scripts/fuzz.sh all 30 -seed=1 -runs=20000
# Allocation-failure torture: the C tests and spec/torture/*.lua with
# their n-th Lua allocation failing, n = 1..N (README, "Torture modes").
lane "allocation torture (ASan build)" sh scripts/torture.sh build-asan
