#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# JSON encode: luaio.json against lua-cjson (Debian's, cjson.encode) on
# the shapes of bench/json_encode.lua. For each shape and encoder:
#  - instructions per encode, counted by callgrind (exact, unlike time on
#    a shared machine): a run of N2 encodes minus a run of N1, / (N2-N1),
#    so the interpreter's start is not counted;
#  - encodes/s (CPU time, best of 5 rounds), RUNS times (default 3) with
#    the two encoders alternating; the median.
# Prints a Markdown table and luaio's speed-up over cjson (> 1: luaio is
# faster) by instructions and by time. Both run inside luaio (the same
# Lua), so only the encoders differ.
#
#   bench/json.sh              LUAIO=path uses that build, SHAPES= picks
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
if [ -z "${LUAIO:-}" ]; then
  LUAIO_BUILD=build-release LUAIO_BUILD_TYPE=Release sh scripts/setup.sh \
    >/dev/null
  LUAIO=build-release/luaio
fi
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
SHAPES=${SHAPES:-$($LUAIO bench/json_encode.lua list)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# encodes per callgrind run (N1, N2) and per timed round, by shape
sizes() {
  case $1 in
    w9) echo 200 1200 5000 ;;
    objects|floats) echo 5 25 200 ;;
    strings) echo 20 120 500 ;;
    numbers) echo 2 12 50 ;;
    *) echo 10 50 200 ;;
  esac
}

instructions() {   # $1 shape, $2 encoder, $3 N: instructions of the run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$LUAIO" bench/json_encode.lua "$1" "$2" "$3" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| shape | luaio instr/encode | cjson instr/encode | speed-up (instr) | luaio encodes/s | cjson encodes/s | speed-up (time) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in $SHAPES; do
  set -- $(sizes "$s")
  n1=$1 n2=$2 nt=$3
  for e in luaio cjson; do
    a=$(instructions "$s" $e "$n1")
    b=$(instructions "$s" $e "$n2")
    echo $(( (b - a) / (n2 - n1) )) > "$TMP/ir.$e"
  done
  i=0
  while [ $i -lt "$RUNS" ]; do
    for e in luaio cjson; do
      "$LUAIO" bench/json_encode.lua "$s" $e "$nt" time >> "$TMP/t.$s.$e"
    done
    i=$((i + 1))
  done
  il=$(cat "$TMP/ir.luaio") ic=$(cat "$TMP/ir.cjson")
  tl=$(median < "$TMP/t.$s.luaio") tc=$(median < "$TMP/t.$s.cjson")
  echo "| $s | $il | $ic | $(echo "$ic $il" | awk '{printf "%.2fx", $1/$2}') |" \
    "$tl | $tc | $(echo "$tl $tc" | awk '{printf "%.2fx", $1/$2}') |"
done
