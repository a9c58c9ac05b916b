#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# Instructions per unit of work, counted by callgrind, for one revision:
# a before/after comparison that a loaded, shared machine cannot spoil
# (the count of the same binary on the same input barely moves; wall
# time does).
#
#   bench/instructions.sh [REV]     default: the work tree as it is
#
# Builds REV in Release (luaio target only) in a temporary folder
# outside the source tree (a detached git worktree, removed at exit),
# then counts the whole process of each workload twice, at N units and
# at 1 unit, and prints (count(N) - count(1)) / (N - 1): the start and
# the exit cancel out. The workload scripts are always this tree's
# bench/*.lua, so two revisions run the same programs on the same input.
#
#   W1    bench/w1_spawn.lua 20000           per task (spawn, one turn, await)
#   W2    bench/w2_sleepers.lua 20000        per task sleeping 1 s
#   W3    bench/w3_queue.lua 100000          per item through the queue
#   W5b   bench/w5_lines.lua, 10 MB file     per MB of lines (10 MB - 1 MB)
#   W6    bench/w6_echo.lua 10 200           per echoed line (10 x 200 - 10 x 1)
#   JSON  bench/json_encode.lua w9 luaio     per encode of W9's 2.2 KB doc
#   W9    bench/serve_calls.sh /hello, /json per request (server side)
#
# Prints one Markdown table row per workload. Takes some minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REV=${1:-}
TMP=$(mktemp -d)
SRC=$TMP/src
cleanup() {
  [ -n "$REV" ] && git -C "$ROOT" worktree remove --force "$SRC" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$REV" ]; then
  git worktree add -q --detach "$SRC" "$REV" || exit 1
else                            # the work tree, uncommitted changes too
  mkdir -p "$SRC"
  git ls-files -z --cached --others --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$SRC"
fi
{ cmake -S "$SRC" -B "$TMP/build" -DCMAKE_BUILD_TYPE=Release &&
  cmake --build "$TMP/build" -j"$(nproc)" --target luaio; } > "$TMP/log" 2>&1 ||
  { cat "$TMP/log" >&2; echo "build of ${REV:-the work tree} failed" >&2; exit 1; }
L=$TMP/build/luaio

count() {   # count CMD...: the instructions of the whole process
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$@" \
    >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; echo 0; return; }
  awk '/Collected :/ {print $4}' "$TMP/err"
}
# per N K UNIT NAME CMD... : the row; CMD's {} is replaced by N, then by
# 1; a run does K units per count of {} (W6: one line per connection).
per() {
  local n=$1 k=$2 unit=$3 name=$4 a b
  shift 4
  b=$(count "${@//\{\}/$n}") a=$(count "${@//\{\}/1}")
  echo "| $name | $(( (b - a) / ((n - 1) * k) )) | $unit |"
}

text() {    # text FILE MB: the W5b text of bench/run.sh, MB megabytes
  awk -v m="$2" 'BEGIN { s = "the quick brown fox jumps over the lazy dog 0123456789"
    while (n < m * 1000000) { print s " " NR; n += length(s) + 8 } }' > "$1"
}
text "$TMP/text10" 10
text "$TMP/text1" 1

echo "| workload | instructions | per |"
echo "| --- | --- | --- |"
per 20000 1 task W1 "$L" bench/w1_spawn.lua {}
per 20000 1 task W2 "$L" bench/w2_sleepers.lua {}
per 100000 1 item W3 "$L" bench/w3_queue.lua {}
b=$(count "$L" bench/w5_lines.lua "$TMP/text10")
a=$(count "$L" bench/w5_lines.lua "$TMP/text1")
echo "| W5b | $(( (b - a) / 9 )) | MB |"
per 200 10 "line echoed" W6 "$L" bench/w6_echo.lua 10 {}
per 2000 1 encode "JSON (w9)" "$L" bench/json_encode.lua w9 luaio {}
for p in /hello /json; do
  n=$(LUAIO=$L bash bench/serve_calls.sh $p 500 2500 | awk '{print $2}')
  echo "| W9 $p | $n | request |"
done
