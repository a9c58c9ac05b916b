#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# Builds the libFuzzer targets of spec/fuzz/ (clang, ASan, UBSan, in
# build-fuzz/) and runs one target, or all, for SECONDS each:
#
#   sh scripts/fuzz.sh json 60        sh scripts/fuzz.sh all 30
#   sh scripts/fuzz.sh http_headers 3600 -jobs=2    (more libFuzzer flags)
#
# Each run starts from a scratch copy of spec/fuzz/corpus/<target>/, so
# the repository's seeds never grow; set LUAIO_FUZZ_KEEP=dir to keep the
# grown corpus in dir/<target>/ across runs. A crash, leak or timeout is
# saved in build-fuzz/crashes/ (LUAIO_FUZZ_CRASHES overrides) and the
# script exits 1. It prints each target's executions and coverage.
set -eu
cd "$(dirname "$0")/.."
TARGETS="json lines http_headers url cli html"
BUILD="${LUAIO_FUZZ_BUILD:-build-fuzz}"
build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
if [ $# -lt 2 ]; then
  echo "usage: sh scripts/fuzz.sh [--no-build] TARGET|all SECONDS [flags]" >&2
  echo "targets: $TARGETS" >&2
  exit 2
fi
which="$1"; seconds="$2"; shift 2
[ "$which" = all ] && which="$TARGETS"
for t in $which; do
  case " $TARGETS " in *" $t "*) ;; *) echo "no target '$t'" >&2; exit 2;; esac
done

if [ $build = 1 ]; then
  # clang and its libFuzzer/sanitizer runtimes, with luaio's packages
  LUAIO_EXTRA_PKGS="clang libclang-rt-dev" LUAIO_NO_BUILD=1 sh scripts/setup.sh
  CC=clang cmake -S . -B "$BUILD" -DLUAIO_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  targets=""
  for t in $which; do targets="$targets --target fuzz_$t"; done
  cmake --build "$BUILD" -j"$(nproc)" $targets >/dev/null
fi

# Absolute paths: the targets run in $BUILD/logs (where -jobs puts its
# fuzz-N.log files), and the cli target changes directory.
root=$(pwd)
crashes="${LUAIO_FUZZ_CRASHES:-$BUILD/crashes}"
mkdir -p "$crashes" "$BUILD/logs"
crashes=$(cd "$crashes" && pwd)
logs=$(cd "$BUILD/logs" && pwd)
bin=$(cd "$BUILD" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/luaio-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
# Known bugs (spec/fuzz/known.supp, and tolerances in the scripts) are
# let through unless LUAIO_FUZZ_STRICT=1.
supp=":suppressions=$root/spec/fuzz/known.supp"
[ "${LUAIO_FUZZ_STRICT:-0}" = 1 ] && supp=""
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1$supp}"
failed=""
for t in $which; do
  corpus="$scratch/$t"
  [ -n "${LUAIO_FUZZ_KEEP:-}" ] && corpus="$LUAIO_FUZZ_KEEP/$t"
  mkdir -p "$corpus"
  corpus=$(cd "$corpus" && pwd)
  cp spec/fuzz/corpus/"$t"/* "$corpus"/
  dict=""
  [ -f spec/fuzz/"$t".dict ] && dict="-dict=$root/spec/fuzz/$t.dict"
  log="$logs/$t.log"
  status=0
  # The CLI target prints what the program would (usage, -v): stdout off.
  fdmask=0
  [ "$t" = cli ] && fdmask=1
  (cd "$logs" && LUAIO_FUZZ_DIR="$root/spec/fuzz" "$bin/fuzz_$t" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -close_fd_mask=$fdmask \
    -artifact_prefix="$crashes/$t-" $dict "$@" "$corpus" >"$log" 2>&1) \
    || status=$?
  # A recoverable UBSan report does not stop libFuzzer: still a finding.
  if [ $status -eq 0 ] && grep -q 'runtime error:' "$log"; then status=99; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  units=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  printf 'fuzz %-13s %9s execs %6s/s  cov: %-5s ft: %-6s corpus: %s' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}"
  if [ $status -ne 0 ]; then
    echo "  FAILED (exit $status, log $log)"
    grep -E 'runtime error|ERROR|SUMMARY|property broken|deadlock' "$log" \
      | head -20 || true
    grep 'Test unit written' "$log" || true
    failed="$failed $t"
  else
    echo "  ok"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: findings in:$failed (inputs in $crashes/)" >&2
  exit 1
fi
