#!/usr/bin/env bash
# W9, the HTTP server: luaio's http.serve against Node's http,
# aiohttp.web on uvloop, OpenResty (nginx + ngx_http_lua, content_by_lua)
# and nginx's `return 200` (the ceiling: no code runs per request).
#
#   bench/serve.sh            RUNS (default 1) rounds in alternation
#
# Each server runs pinned to CPU 0 (taskset), wrk to CPU 1:
# `wrk -t1 -c100 -d${DURATION:-10}s --latency` on /hello (13 bytes) and
# /json (a ~2 KB document encoded per request; nginx returns it
# verbatim). luaio runs again between peers, and each peer is compared
# with the two luaio runs around it. Prints a Markdown table of median
# requests/s, median p99 latency and the median of luaio's paired
# ratios to each (> 1: luaio is faster). PEERS= picks peers. Uses
# build-release/luaio (made by bench/run.sh or scripts/setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
DURATION=${DURATION:-10}
L=${LUAIO:-build-release/luaio}
PY=/usr/bin/python3
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

NG=$TMP/nginx
mkdir -p "$NG" && chmod 755 "$TMP" "$NG"
node -e "$(sed -n '/^const items/,/^const doc/p' bench/peers/w9_node.js)
process.stdout.write(JSON.stringify(doc))" > "$NG/doc.json"

nginx_conf() {   # $1 port, $2 "lua" or "plain"
  local mods="" body_hello body_json
  if [ "$2" = lua ]; then
    mods="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
    body_hello="default_type text/plain; content_by_lua_block { ngx.print('Hello, world!') }"
    body_json="default_type application/json; content_by_lua_block {
      local items = {}
      for i = 1, 16 do
        items[i] = {id = i, name = 'item number ' .. i, price = i * 1.25,
          tags = {'alpha', 'beta', 'gamma'}, active = i % 2 == 0,
          description = 'a short description of item ' .. i}
      end
      ngx.print(cjson.encode({items = items, count = #items, page = 1}))
    }"
  else
    body_hello="default_type text/plain; return 200 'Hello, world!';"
    body_json="default_type application/json; return 200 '$(cat "$NG/doc.json")';"
  fi
  cat > "$NG/nginx.conf" <<CONF
$mods
worker_processes 1; daemon off; pid $NG/nginx.pid; error_log $NG/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  $( [ "$2" = lua ] && echo "init_by_lua_block { cjson = require 'cjson' }" )
  server {
    listen 127.0.0.1:$1 reuseport backlog=4096;
    location = /hello { $body_hello }
    location = /json { $body_json }
  }
}
CONF
}

start() {   # $1 name, $2 port: start the server pinned to CPU 0
  case $1 in
    luaio) taskset -c 0 "$L" bench/w9_serve.lua "$2" >/dev/null 2>"$TMP/server.err" & ;;
    node) taskset -c 0 node bench/peers/w9_node.js "$2" >/dev/null 2>"$TMP/server.err" & ;;
    aiohttp-uvloop) taskset -c 0 $PY bench/peers/w9_aiohttp.py "$2" >/dev/null 2>"$TMP/server.err" & ;;
    openresty) nginx_conf "$2" lua
      taskset -c 0 nginx -p "$NG" -c "$NG/nginx.conf" >/dev/null 2>"$TMP/server.err" & ;;
    nginx-return) nginx_conf "$2" plain
      taskset -c 0 nginx -p "$NG" -c "$NG/nginx.conf" >/dev/null 2>"$TMP/server.err" & ;;
  esac
  PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$2/hello" >/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start on port $2:" >&2
  cat "$TMP/server.err" "$NG/error.log" >&2 2>/dev/null
  stop
  return 1
}

stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=; }

# wrk's requests/s and p99 in ms for one endpoint.
measure() {
  local out rps p99
  out=$(taskset -c 1 wrk -t1 -c100 -d"${DURATION}s" --latency "$1" 2>&1)
  rps=$(awk '/^Requests\/sec/ {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000}
    else if (v ~ /ms$/) sub(/ms$/, "", v); else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}
    printf "%.2f", v}' <<< "$out")
  grep -q "Non-2xx\|Socket errors" <<< "$out" && echo "  errors: $(grep 'Non-2xx\|Socket errors' <<< "$out")" >&2
  echo "$rps $p99"
}

median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }

read -r -a PEERS <<< "${PEERS:-node aiohttp-uvloop openresty nginx-return}"
RES=$TMP/res.tsv        # endpoint server rps p99
RAT=$TMP/ratio.tsv      # endpoint peer ratio
port=$(( 20000 + RANDOM % 30000 ))

# Measure server $1 on both endpoints; sets M_hello and M_json.
bench_one() {
  port=$((port + 1))
  M_hello=; M_json=
  # a port taken meanwhile by another program: once more on the next
  start "$1" "$port" || { port=$((port + 1)); start "$1" "$port"; } ||
    return 1
  for ep in hello json; do
    read -r rps p99 <<< "$(measure "http://127.0.0.1:$port/$ep")"
    printf '%s\t%s\t%s\t%s\n' "$ep" "$1" "$rps" "$p99" >> "$RES"
    printf -v "M_$ep" '%s' "$rps"
    echo "  run $run $1 /$ep: $rps req/s, p99 $p99 ms" >&2
  done
  stop
}

# The machine is shared: luaio runs before and after each peer, and the
# ratio is to the mean of those two runs (paired, not across minutes).
for run in $(seq "$RUNS"); do
  bench_one luaio; prev_h=$M_hello prev_j=$M_json
  for s in "${PEERS[@]}"; do
    bench_one "$s" || continue
    peer_h=$M_hello peer_j=$M_json
    bench_one luaio
    awk -v a="$prev_h" -v b="$M_hello" -v p="$peer_h" -v s="$s" \
      'BEGIN {if (p > 0) printf "hello\t%s\t%.3f\n", s, (a + b) / 2 / p}' >> "$RAT"
    awk -v a="$prev_j" -v b="$M_json" -v p="$peer_j" -v s="$s" \
      'BEGIN {if (p > 0) printf "json\t%s\t%.3f\n", s, (a + b) / 2 / p}' >> "$RAT"
    prev_h=$M_hello prev_j=$M_json
  done
done

echo "| endpoint | server | requests/s (median) | p99 ms (median) | luaio vs server (median of paired ratios) |"
echo "| --- | --- | --- | --- | --- |"
for ep in hello json; do
  for s in luaio "${PEERS[@]}"; do
    m=$(awk -F'\t' -v e=$ep -v s=$s '$1==e && $2==s {print $3}' "$RES" | median)
    p=$(awk -F'\t' -v e=$ep -v s=$s '$1==e && $2==s {print $4}' "$RES" | median)
    r=$(awk -F'\t' -v e=$ep -v s=$s '$1==e && $2==s {print $3}' "$RAT" | median)
    echo "| /$ep | $s | ${m%.*} | $p | ${r:+${r}x} |"
  done
done
