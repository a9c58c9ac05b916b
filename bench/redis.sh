#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# SET/GET of 100-byte values from 100 concurrent tasks on one connection,
# against a local redis-server: luaio, redis-benchmark -P 16 -c 100 (the
# C ceiling: hiredis-style pipelining, no script language), Python's
# redis.asyncio (python3-redis) and Node's ioredis (auto-pipelining; run
# `npm install` in bench/redis first). RUNS runs each (default 3) in
# alternation; prints medians (operations per second) and luaio's ratio.
#   bench/redis.sh            the table, for bench/RESULTS.md
#   RUNS=1 OPS=20000 bench/redis.sh    a quick check
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OPS=${OPS:-200000}
CONC=100
L=${LUAIO:-}
if [ -z "$L" ]; then
  LUAIO_BUILD=build-release LUAIO_BUILD_TYPE=Release sh scripts/setup.sh
  L=build-release/luaio
fi
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
# A random port; another one if it is taken (the server then exits).
for _ in $(seq 20); do
  port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
    --appendonly no > "$dir/redis.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break 2
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  pid=""
done
[ -n "$pid" ] || { echo "redis-server did not start" >&2; exit 1; }
url="redis://127.0.0.1:$port/0"

# redis-benchmark prints one rate per command: SET and GET done in
# turn; their combined rate is the operations over the summed times.
c_ceiling() {
  redis-benchmark -p "$port" -t set,get -n "$((OPS / 2))" -d 100 -P 16 \
    -c "$CONC" -q 2>/dev/null | tr '\r' '\n' |
    awk '/requests per second/ {for (i = 1; i <= NF; i++)
           if ($i ~ /^[0-9.]+$/ && $(i+1) == "requests") {n++; t += 1 / $i}}
         END {if (n == 2) printf "%.0f\n", 2 / t}'
}
peer_py() {
  /usr/bin/python3 -c "import redis.asyncio" 2>/dev/null || return 0
  /usr/bin/python3 bench/redis/py_setget.py "$url" "$OPS" "$CONC"
}
peer_node() {
  [ -d bench/redis/node_modules/ioredis ] || return 0
  node bench/redis/node_setget.js "$url" "$OPS" "$CONC"
}

res="$dir/results"
: > "$res"
for run in $(seq "$RUNS"); do
  echo "luaio	$("$L" bench/redis/luaio_setget.lua "$url" "$OPS" "$CONC")" >> "$res"
  echo "redis-benchmark -P 16	$(c_ceiling)" >> "$res"
  v=$(peer_py); [ -n "$v" ] && echo "redis.asyncio	$v" >> "$res"
  v=$(peer_node); [ -n "$v" ] && echo "ioredis	$v" >> "$res"
  echo "run $run done" >&2
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
lm=$(awk -F'\t' '$1=="luaio" {print $2}' "$res" | median)
echo "| peer | peer (median ops/s) | luaio (median ops/s) | luaio vs peer |"
echo "| --- | --- | --- | --- |"
for p in "redis-benchmark -P 16" "redis.asyncio" "ioredis"; do
  pm=$(awk -F'\t' -v p="$p" '$1==p {print $2}' "$res" | median)
  [ -n "$pm" ] || continue
  awk -v p="$p" -v a="$lm" -v b="$pm" \
    'BEGIN {printf "| %s | %.0f | %.0f | %.2fx |\n", p, b, a, a / b}'
done
