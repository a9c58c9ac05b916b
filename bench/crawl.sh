#!/usr/bin/env bash
# SPDX-License-Identifier: MIT (see LICENSE)
# The end-to-end crawl benchmark: a generated site of 2,000 linked pages
# served by nginx on 127.0.0.1, crawled with 32 requests at once and
# robots.txt obeyed by examples/crawl.lua, a Scrapy spider and a Crawlee
# CheerioCrawler, RUNS times (3) in alternation. Prints pages/s, CPU
# seconds and peak RSS (medians) and luaio's ratio to each peer.
#   bench/crawl.sh [PAGES]
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PAGES=${1:-2000}
RUNS=${RUNS:-3}
CONC=32
LUAIO_BUILD=build-release LUAIO_BUILD_TYPE=Release sh scripts/setup.sh || exit 1
L=$PWD/build-release/luaio
PY=/usr/bin/python3
if [ "$(id -u)" = 0 ]; then
  dpkg -s python3-scrapy >/dev/null 2>&1 ||
    apt-get install -y -qq python3-scrapy >/dev/null 2>&1
fi
have_scrapy=0; $PY -c 'import scrapy' 2>/dev/null && have_scrapy=1
have_crawlee=0
if command -v npm >/dev/null; then
  [ -d bench/crawl/node_modules/@crawlee/cheerio ] ||
    (cd bench/crawl && npm install --no-save --no-audit --no-fund \
       @crawlee/cheerio@3 >/dev/null 2>&1)
  [ -d bench/crawl/node_modules/@crawlee/cheerio ] && have_crawlee=1
fi

TMP=$(mktemp -d)
NGINX_PID=
trap '[ -n "$NGINX_PID" ] && kill $NGINX_PID 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
lua5.4 bench/crawl/gen_site.lua "$TMP/site" "$PAGES"
chmod 755 "$TMP" "$TMP/site"
port=$(( 20000 + RANDOM % 30000 ))
cat > "$TMP/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $TMP/nginx.pid; error_log $TMP/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; include /etc/nginx/mime.types;
  server { listen 127.0.0.1:$port; root $TMP/site; } }
CONF
nginx -p "$TMP" -c "$TMP/nginx.conf" >/dev/null 2>&1 &
NGINX_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
START=http://127.0.0.1:$port/index.html

# run NAME CMD...: one crawl; appends "name pages/s cpu_s rss_mib pages".
run() {
  local name=$1 out=$TMP/$1.jsonl line
  shift
  rm -f "$out"
  line=$(cd "$TMP" && /usr/bin/time -f "TIME %U %S %M" timeout 600 "$@" 2>&1)
  local wall cpu rss pages
  wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$line" | tail -1)
  pages=$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' "$out" 2>/dev/null | sort -u | wc -l)
  cpu=$(awk '/^TIME/ {print $2 + $3}' <<<"$line")
  rss=$(awk '/^TIME/ {printf "%.0f", $4 / 1024}' <<<"$line")
  if [ -z "$wall" ] || [ "$pages" -lt "$PAGES" ]; then
    echo "  ! $name failed ($pages pages): $(tail -c 300 <<<"$line" | tr '\n' ' ')" >&2
    return
  fi
  echo "$name $(awk -v p=$pages -v w=$wall 'BEGIN {printf "%.1f", p / w}') $cpu $rss $pages" >> "$TMP/results"
}
: > "$TMP/results"
for ((r = 1; r <= RUNS; r++)); do
  run luaio bash -c "$L $REPO/examples/crawl.lua $START --concurrency $CONC \
    --rate 100000 --depth 100000 --max-pages 1000000 --no-progress \
    --out $TMP/pages --output $TMP/luaio.jsonl | awk '/^crawl finished after/ {print \"wall_s=\" \$4}'"
  [ $have_scrapy = 1 ] && run scrapy $PY "$REPO/bench/crawl/scrapy_spider.py" "$START" "$TMP/scrapy.jsonl" $CONC
  [ $have_crawlee = 1 ] && run crawlee env CRAWLEE_LOG_LEVEL=ERROR \
    NODE_PATH="$REPO/bench/crawl/node_modules" node "$REPO/bench/crawl/crawlee_crawler.mjs" "$START" "$TMP/crawlee.jsonl" $CONC
done
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$TMP/results" | median; }
echo "| crawler | pages/s | CPU s | peak RSS MiB | luaio pages/s vs | luaio CPU vs | luaio RSS vs |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for n in luaio scrapy crawlee; do
  [ -z "$(col $n 2)" ] && continue
  echo "| $n | $(col $n 2) | $(col $n 3) | $(col $n 4) | $(awk -v a="$(col luaio 2)" -v b="$(col $n 2)" 'BEGIN {printf "%.2fx", a/b}') | $(awk -v a="$(col luaio 3)" -v b="$(col $n 3)" 'BEGIN {printf "%.2fx", b/a}') | $(awk -v a="$(col luaio 4)" -v b="$(col $n 4)" 'BEGIN {printf "%.2fx", b/a}') |"
done
