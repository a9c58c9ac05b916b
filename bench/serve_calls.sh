#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# W9 in instructions: what one http.serve request costs the server,
# counted by callgrind (the machine is shared: wall time is noisy, the
# count is not). The server runs under callgrind twice, answering N1
# and then N2 keep-alive requests from bench/w9_client.lua; the
# difference over N2 - N1 leaves out the start and the exit.
#
#   bench/serve_calls.sh [PATH [N1 [N2]]]    default /hello 2000 12000
#
# Uses build-release/luaio (bench/run.sh or scripts/setup.sh makes it).
set -uo pipefail
cd "$(dirname "$0")/.."
L=${LUAIO:-build-release/luaio}
P=${1:-/hello} N1=${2:-2000} N2=${3:-12000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

count() {   # $1 requests: prints the instructions of the whole run
  local port=$(( 20000 + RANDOM % 30000 )) pid
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    "$L" bench/w9_serve.lua "$port" >/dev/null 2>"$TMP/err" &
  pid=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/hello" >/dev/null && break
    sleep 0.2
  done
  "$L" bench/w9_client.lua "$port" "$1" $(( $1 / 500 )) 16 "$P" >/dev/null
  kill "$pid"; wait "$pid"
  awk '/Collected :/ {print $4}' "$TMP/err"
}

a=$(count "$N1") b=$(count "$N2")
echo "$P: $(( (b - a) / (N2 - N1) )) instructions per request"
