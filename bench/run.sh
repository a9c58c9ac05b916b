#!/usr/bin/env bash
# The benchmarks: luaio and its peers on workloads W1-W6 side by side.
#
#   bench/run.sh [W1 W2 W3 W4a W4b W4b1k W5a W5b W6 W7a W7b W7c W8] [--quick]
#
# W4b1k is W4b with 1,000 requests at once instead of 100. W7a spawns
# `true` (16 at once), W7b makes to_thread round trips (16 at once), W7c
# runs 64 pure-language CPU jobs on 2 worker threads. W8 is the RSS
# after a burst of 1M tasks, as a ratio to the RSS before (goal <= 2).
#
# Builds luaio in Release mode (build-release/), installs the peers'
# Debian packages when run as root, builds the C baselines, starts nginx
# on 127.0.0.1 for W4, runs every program RUNS times (default 3) in
# alternation and prints one table: min, median and max of each program,
# its peak RSS (median, from /usr/bin/time) and luaio's ratio of medians
# to each peer (> 1: luaio is better). A full run rewrites
# bench/RESULTS.md. Sizes are chosen so that a sample lasts >= 1 s.
# --quick: small sizes, one run, luaio and the C baselines only; checks
# that every workload completes (used by the tests), measures nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
SEL=()
for a in "$@"; do
  case $a in --quick) QUICK=1 ;; *) SEL+=("$a") ;; esac
done
FULL=0
[ ${#SEL[@]} -eq 0 ] && { FULL=1; SEL=(W1 W2 W3 W4a W4b W4b1k W5a W5b W6 W7a W7b W7c W8); }
RUNS=${RUNS:-3}
[ $QUICK = 1 ] && RUNS=1

if [ -n "${LUAIO:-}" ] && [ $QUICK = 1 ]; then
  L=$LUAIO                                  # the tests pass their build
else
  LUAIO_BUILD=build-release LUAIO_BUILD_TYPE=Release sh scripts/setup.sh || exit 1
  L=build-release/luaio
fi
if [ $QUICK = 0 ] && [ "$(id -u)" = 0 ]; then
  need=""
  for p in python3 python3-aiohttp python3-uvloop nodejs lua-luv lua-http; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  [ -n "$need" ] && { { apt-get update -qq && apt-get install -y -qq $need; } >/dev/null 2>&1 ||
    echo "could not install:$need" >&2; }
fi
PY=/usr/bin/python3             # Debian's: aiohttp and uvloop are its packages
have_py=0; $PY -c 'import aiohttp, uvloop' 2>/dev/null && have_py=1
have_node=0; command -v node >/dev/null && have_node=1
have_luv=0; lua5.4 -e 'require "luv"' 2>/dev/null && have_luv=1
# lua-http is packaged as Lua 5.1-5.3 files (with some of its own
# dependencies in the 5.2 folder only) over cqueues, which has a 5.4
# build: the stock lua5.4 finds it through these folders.
LUA_HTTP_PATH="/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua;/usr/share/lua/5.2/?.lua;/usr/share/lua/5.2/?/init.lua;;"
have_lua_http=0
LUA_PATH=$LUA_HTTP_PATH lua5.4 -e 'require "http.client"' 2>/dev/null && have_lua_http=1

TMP=$(mktemp -d)
NGINX_PID=
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P=bench/peers
B=$TMP/bin
mkdir -p "$B"
lua="$(pkg-config --cflags --libs lua5.4)"
uv="$(pkg-config --cflags --libs libuv)"
cc -O2 -o "$B/w1_c_lua" $P/w1_c_lua.c $lua &&
cc -O2 -o "$B/w1_c_lua_fair" $P/w1_c_lua_fair.c $lua &&
cc -O2 -o "$B/w2_uv" $P/w2_uv.c $uv &&
cc -O2 -o "$B/w3_c_lua" $P/w3_c_lua.c $lua &&
cc -O2 -DSAME_LUA_WORK -o "$B/w3_c_lua_fair" $P/w3_c_lua.c $lua &&
cc -O2 -o "$B/w4_curl_uv" $P/w4_curl_uv.c $uv $(pkg-config --cflags --libs libcurl) &&
cc -O2 -o "$B/w5a_c_files" $P/w5a_c_files.c $uv &&
cc -O2 -o "$B/w5b_c_lua_lines" $P/w5b_c_lua_lines.c $lua &&
cc -O2 -o "$B/w6_uv" $P/w6_uv.c $uv || { echo "peer build failed" >&2; exit 1; }

if [ $QUICK = 1 ]; then
  N1=2000 N2=2000 N3=20000 N4=500 C4=20 N4B=20 N4BK=50 N5=100 M5=2 W6C=10 W6L=200
  N7A=50 N7B=500 N7C=4 N8=2000
else
  # W5a: 1,000 files took 0.13-0.45 s, too short to be steady.
  # W3 and W5b likewise (1M items took 0.13 s, 100 MB 0.15 s).
  N1=100000 N2=100000 N3=10000000 N4=20000 C4=100 N4B=100 N4BK=1000 N5=10000 M5=600
  W6C=100 W6L=${W6_LINES:-2000} N7A=1000 N7B=20000 N7C=64 N8=1000000
fi

start_nginx() {
  local d=$TMP/nginx port
  mkdir -p "$d/www" && chmod 755 "$TMP" "$d" "$d/www"
  head -c 1024 /dev/zero | tr '\0' 'x' > "$d/www/small"
  port=$(( 20000 + RANDOM % 30000 ))
  cat > "$d/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1; daemon off; pid $d/nginx.pid; error_log $d/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $d/www;
    location = /delay/1 { echo_sleep 1; echo "ok"; } } }
CONF
  nginx -p "$d" -c "$d/nginx.conf" >/dev/null 2>&1 &
  NGINX_PID=$!
  URL=http://127.0.0.1:$port
  # Up to a minute on a loaded machine; an nginx that exited (its random
  # port taken) is retried on another, and never mistaken for whatever
  # else answers on that port.
  for _ in $(seq 600); do
    if ! kill -0 "$NGINX_PID" 2>/dev/null; then
      NGINX_PID=
      [ "${1:-0}" -lt 5 ] && { start_nginx $(( ${1:-0} + 1 )); return; }
      break
    fi
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nginx did not start" >&2
  return 1
}

# figure NAME LINE: the number a result line reports (wall_s= for W4b).
figure() {
  if [ "$1" = W4b ] || [ "$1" = W4b1k ]; then sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$2"
  else awk '{print $3}' <<<"$2"; fi
}
lower_is_better() { [ "$1" = W2 ] || [ "$1" = W4b ] || [ "$1" = W4b1k ] || [ "$1" = W8 ]; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A CMDS
TIME=""                         # GNU time (Debian's "time" package)
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f maxrss_kb=%M -o $TMP/rss"
RESULTS=$TMP/results.tsv
: > "$RESULTS"
FAILED=0

# run_workload W "name|cmd" ... : round-robin RUNS times.
run_workload() {
  local w=$1 r spec name cmd out line
  shift
  for ((r = 1; r <= RUNS; r++)); do
    for spec in "$@"; do
      name=${spec%%|*}; cmd=${spec#*|}
      [ -n "${W5DIR:-}" ] && { rm -rf "$W5DIR"; mkdir -p "$W5DIR"; }
      # Every program's peak RSS, measured the same way for all.
      : > "$TMP/rss"
      out=$($TIME timeout 300 bash -c "exec $cmd" 2>&1)
      line=$(grep '^W' <<<"$out" | tail -1)
      if [ -z "$line" ]; then
        echo "  ! $w $name failed: $(tail -c 300 <<<"$out" | tr '\n' ' ')" >&2
        FAILED=1
        continue
      fi
      printf '%s\t%s\t%s\t%s\n' "$w" "$name" "$(figure "$w" "$line")" \
        "$(sed -n 's/^maxrss_kb=//p' "$TMP/rss" | awk '{printf "%.0f", $1 / 1024}')" >> "$RESULTS"
      [ $QUICK = 1 ] && echo "  $w $name: $line"
    done
  done
}

peers_py() { [ $QUICK = 0 ] && [ $have_py = 1 ]; }
peers_node() { [ $QUICK = 0 ] && [ $have_node = 1 ]; }
peers_luv() { [ $QUICK = 0 ] && [ $have_luv = 1 ]; }
peers_lua_http() { [ $QUICK = 0 ] && [ $have_lua_http = 1 ]; }

for w in "${SEL[@]}"; do
  case $w in
    W1) set -- "luaio|$L bench/w1_spawn.lua $N1" "c-lua floor|$B/w1_c_lua $N1" \
          "c-lua floor (same Lua work)|$B/w1_c_lua_fair $N1"
        peers_node && set -- "$@" "node|node $P/w1_node.js $N1"
        peers_luv && set -- "$@" "luv|lua5.4 $P/w1_luv.lua $N1"
        peers_py && set -- "$@" "asyncio|$PY $P/w1_py.py $N1" "uvloop|$PY $P/w1_py.py $N1 uvloop"
        run_workload W1 "$@" ;;
    W2) set -- "luaio|$L bench/w2_sleepers.lua $N2" "libuv|$B/w2_uv $N2"
        peers_node && set -- "$@" "node|node $P/w2_node.js $N2"
        peers_luv && set -- "$@" "luv|lua5.4 $P/w2_luv.lua $N2"
        peers_py && set -- "$@" "asyncio|$PY $P/w2_py.py $N2" "uvloop|$PY $P/w2_py.py $N2 uvloop"
        run_workload W2 "$@" ;;
    W3) set -- "luaio|$L bench/w3_queue.lua $N3" "c-lua floor|$B/w3_c_lua $N3" \
          "c-lua floor (same Lua work)|$B/w3_c_lua_fair $N3"
        peers_node && set -- "$@" "node|node $P/w3_node.js $N3"
        peers_py && set -- "$@" "asyncio|$PY $P/w3_py.py $N3" "uvloop|$PY $P/w3_py.py $N3 uvloop"
        run_workload W3 "$@" ;;
    W4a|W4b|W4b1k)
        [ -z "$NGINX_PID" ] && { start_nginx || { FAILED=1; continue; }; }
        case $w in
          W4a) u=$URL/small n=$N4 c=$C4 ;;
          W4b) u=$URL/delay/1 n=$N4B c=$N4B ;;
          W4b1k) u=$URL/delay/1 n=$N4BK c=$N4BK ;;
        esac
        set -- "luaio|$L bench/w4_http.lua $u $n $c" "curl-uv|$B/w4_curl_uv $u $n $c"
        peers_node && set -- "$@" "node|node $P/w4_node.js $u $n $c"
        peers_py && set -- "$@" "aiohttp-uvloop|$PY $P/w4_aiohttp.py $u $n $c uvloop"
        peers_lua_http && set -- "$@" "lua-http|env LUA_PATH='$LUA_HTTP_PATH' lua5.4 $P/w4_lua_http.lua $u $n $c"
        run_workload $w "$@" ;;
    W5a) W5DIR=$TMP/files
        run_workload W5a "luaio|$L bench/w5_files.lua $W5DIR $N5" "libuv pool|$B/w5a_c_files $W5DIR $N5"
        W5DIR= ;;
    W5b) awk -v m=$M5 'BEGIN { s = "the quick brown fox jumps over the lazy dog 0123456789"
           while (n < m * 1000000) { print s " " NR; n += length(s) + 8 } }' > "$TMP/text.txt"
        run_workload W5b "luaio|$L bench/w5_lines.lua $TMP/text.txt" "c-lua floor|$B/w5b_c_lua_lines $TMP/text.txt" ;;
    W6) set -- "luaio|$L bench/w6_echo.lua $W6C $W6L" "libuv|$B/w6_uv $W6C $W6L"
        peers_node && set -- "$@" "node|node $P/w6_node.js $W6C $W6L"
        peers_py && set -- "$@" "uvloop|$PY $P/w6_py.py $W6C $W6L uvloop"
        run_workload W6 "$@" ;;
    W7a|W7b|W7c)
        case $w in
          W7a) a="spawn $N7A 16" ;; W7b) a="thread $N7B 16" ;; W7c) a="cpu $N7C 2" ;;
        esac
        set -- "luaio|$L bench/w7_proc.lua $a"
        peers_node && set -- "$@" "node|node $P/w7_node.js $a"
        peers_py && set -- "$@" "asyncio|$PY $P/w7_py.py $a"
        run_workload $w "$@" ;;
    W8) run_workload W8 "luaio|$L bench/w8_burst.lua $N8" ;;
    *) echo "unknown workload $w" >&2; FAILED=1 ;;
  esac
done

if [ $QUICK = 1 ]; then
  [ $FAILED = 0 ] && echo "bench quick: every workload completed"
  exit $FAILED
fi

# The table: one row per peer, luaio's median beside it and the ratio.
table=$TMP/table.md
# col W NAME COL: the values of column COL (3: the figure, 4: RSS MiB).
col() { awk -F'\t' -v w="$1" -v p="$2" -v c="$3" '$1==w && $2==p && $c!="" {print $c}' "$RESULTS"; }
# row W NAME: "| min | median | max | RSS |" of one program.
row() {
  local v; v=$(col "$1" "$2" 3 | sort -g)
  printf '| %s | %s | %s | %s |' "$(head -1 <<<"$v")" "$(median <<<"$v")" \
    "$(tail -1 <<<"$v")" "$(col "$1" "$2" 4 | median)"
}
{
  echo "| workload | program | min | median | max | peak RSS MiB (median) | luaio vs it (medians) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for w in "${SEL[@]}"; do
    lm=$(col $w luaio 3 | median)
    [ -n "$lm" ] && echo "| $w | luaio $(row $w luaio) |"
    for peer in $(awk -F'\t' -v w=$w '$1==w && $2!="luaio" {print $2}' "$RESULTS" | tr ' ' '_' | sort -u); do
      pname=${peer//_/ }
      pm=$(col $w "$pname" 3 | median)
      if lower_is_better $w; then ratio=$(awk -v a="$lm" -v b="$pm" 'BEGIN {if (a>0) printf "%.2f", b/a}')
      else ratio=$(awk -v a="$lm" -v b="$pm" 'BEGIN {if (b>0) printf "%.2f", a/b}'); fi
      echo "| $w | $pname $(row $w "$pname") ${ratio}x |"
    done
  done
} > "$table"
cat "$table"
[ $FULL = 1 ] || exit $FAILED       # a partial run leaves RESULTS.md alone
{
  echo "# Benchmark results"
  echo
  echo "Run $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
       "$RUNS runs each in alternation, medians. Units: W1 tasks/s, W2 seconds (lower is better)," \
       "W3 items/s, W4a requests/s, W4b (100 at once) and W4b1k (1,000) seconds for all (lower is better), W5a files/s, W5b MB/s," \
       "W6 messages/s, W7a spawns/s, W7b calls/s, W7c jobs/s. \"luaio vs peer\" > 1 means luaio is better. Regenerate with \`bench/run.sh\`."
  echo
  cat "$table"
  echo
  sed -n '/^## /,$p' bench/RESULTS.md 2>/dev/null    # the hand-written sections
} > "$TMP/RESULTS.md"
cp "$TMP/RESULTS.md" bench/RESULTS.md
exit $FAILED
