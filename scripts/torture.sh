#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# Allocation-failure torture: runs each C embedding test and each script
# of spec/torture/ once cleanly to count its Lua allocations (N), then
# again with LUAIO_FAIL_ALLOC=n for n = 1..N (with a stride when N is
# larger than the target's point budget). A failed allocation must end as
# a Lua "not enough memory" error or a clean C error return; what fails
# the torture is a crash, a Lua panic, a sanitizer report (build with
# -DLUAIO_SANITIZE=ON to catch leaks and bad accesses), a hang, or a
# script that fails with anything else than "not enough memory".
#
#   sh scripts/torture.sh [build-dir]       (default: build)
#   TORTURE_POINTS=400   most points tried per target
#   TORTURE_TIMEOUT=20   seconds one run may take (then TERM, KILL 5 s on)
#   TORTURE_ONLY=net     only the targets whose command contains this
#   TORTURE_MALLOC=1     then fail the n-th malloc of the C code too
#                        (spec/torture/malloc_fail.c preloaded; not with
#                        a sanitizer build): only crashes and hangs count
# Prints each failure, then: alloc torture: N points tried, M failures
set -u
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
POINTS="${TORTURE_POINTS:-400}"
LIMIT="${TORTURE_TIMEOUT:-20}"
ONLY="${TORTURE_ONLY:-}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# Sanitizer builds see every Lua block only through malloc.
if grep -q "LUAIO_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" 2>/dev/null; then
  export LUAIO_MALLOC=system
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
fi
tried=0
failures=0

# Classify one run: prints nothing if it is fine, else why it is not.
# $1 exit status, $2 output file, $3 "script" (needs the Lua error) or "c".
verdict () {
  if grep -q "Sanitizer\|runtime error:" "$2"; then echo "sanitizer report"
  elif grep -q "PANIC" "$2"; then echo "Lua panic"
  elif [ "$1" -eq 124 ]; then echo "hang (over $LIMIT s)"
  elif [ "$1" -eq 137 ]; then echo "hang (over $LIMIT s, killed after TERM)"
  elif [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"
  elif [ "$1" -ne 0 ] && [ "$1" -ne 1 ]; then echo "exit status $1"
  elif [ "$3" = script ] && [ "$1" -ne 0 ] &&
       ! grep -q "not enough memory\|cannot create the host" "$2"; then
    echo "failed without 'not enough memory'"
  fi
}

# torture <kind> <points> <command...>, failing the n-th allocation of
# what $VAR (LUAIO_FAIL_ALLOC or LUAIO_FAIL_MALLOC) names.
VAR=LUAIO_FAIL_ALLOC
PRELOAD=""                   # LD_PRELOAD=shim for the program, not timeout
torture () {
  kind="$1"; points="$2"; shift 2
  case "$*" in *"$ONLY"*) ;; *) return ;; esac
  n_total=$(timeout -k 5 "$LIMIT" env $PRELOAD $VAR=0 "$@" 2>&1 >/dev/null |
            sed -n 's/^[a-z]* torture: \([0-9]*\) allocations$/\1/p' |
            tail -1)
  if [ -z "$n_total" ]; then
    echo "torture: $*: the clean run did not report its allocations"
    failures=$((failures + 1))
    return
  fi
  stride=$(( (n_total + points - 1) / points ))
  [ "$stride" -ge 1 ] || stride=1
  echo "torture: $* ($n_total allocations, stride $stride)"
  n=1
  while [ "$n" -le "$n_total" ]; do
    timeout -k 5 "$LIMIT" env $PRELOAD $VAR=$n "$@" >"$OUT/run" 2>&1
    rc=$?
    tried=$((tried + 1))
    why=$(verdict "$rc" "$OUT/run" "$kind")
    if [ -n "$why" ]; then
      failures=$((failures + 1))
      echo "FAIL n=$n: $why: $*"
      grep -v "^[a-z]* torture:" "$OUT/run" | head -n 12 | sed 's/^/    /'
    fi
    n=$((n + stride))
  done
}

all () {
  torture c "$POINTS" "$BUILD/embed_minimal"
  torture c "$POINTS" "$BUILD/job_runner" examples/embed/jobs.lua 20
  torture c "$((POINTS / 8))" "$BUILD/embed_test"
  for s in spec/torture/*.lua; do
    torture "$1" "$POINTS" "$BUILD/luaio" "$s"
  done
}
all script
echo "alloc torture: $tried points tried, $failures failures"
if [ "${TORTURE_MALLOC:-0}" = 1 ] && [ -z "${LUAIO_MALLOC:-}" ]; then
  cc -shared -fPIC -O1 -o "$OUT/malloc_fail.so" spec/torture/malloc_fail.c \
     -ldl
  PRELOAD="LD_PRELOAD=$OUT/malloc_fail.so"
  VAR=LUAIO_FAIL_MALLOC
  tried_lua=$tried; failures_lua=$failures
  all c                      # any clean exit is fine: C errors vary
  echo "malloc torture: $((tried - tried_lua)) points tried," \
       "$((failures - failures_lua)) failures"
fi
[ "$failures" -eq 0 ]
