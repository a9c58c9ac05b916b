#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# Parse + select: parse each page of the corpus (the HTML documentation
# Debian packages install, as bench/html_corpus.sh), extract its title and
# the href of every a[href]. luaio against lxml with cssselect,
# BeautifulSoup (html.parser and lxml) and cheerio on Node, in the same
# run. Each program times its own loop in CPU milliseconds (interpreter
# start and file reading excluded); RUNS runs each (default 3), medians,
# and luaio's speed-up over each peer (> 1: luaio is faster).
#
#   bench/html_parse.sh           LUAIO=path uses that build
# cheerio is installed into bench/peers/html/node_modules (not in git).
# The luaio rows: documents closed when done (`<close>`, the usual way),
# left to the collector, and doc:links() (resolved, de-duplicated URLs).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PY=/usr/bin/python3             # Debian's: lxml, cssselect and bs4
if [ -z "${LUAIO:-}" ]; then
  LUAIO_BUILD=build-release LUAIO_BUILD_TYPE=Release sh scripts/setup.sh
  LUAIO=build-release/luaio
fi
if [ "$(id -u)" = 0 ]; then
  need=""
  for p in python3-lxml python3-cssselect python3-bs4; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  command -v npm >/dev/null || need="$need nodejs npm"
  [ -n "$need" ] && { apt-get install -y -qq $need >/dev/null 2>&1 ||
    echo "could not install:$need" >&2; }
fi
have_node=0
if command -v npm >/dev/null && [ ! -d bench/peers/html/node_modules/cheerio ]; then
  (cd bench/peers/html && npm install --no-audit --no-fund --silent) ||
    echo "could not install cheerio" >&2
fi
[ -d bench/peers/html/node_modules/cheerio ] && have_node=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
find "${CORPUS:-/usr/share/doc}" -type f -name '*.html' -size -2M | sort |
  head -300 > "$TMP/list"
echo "corpus: $(wc -l < "$TMP/list") pages, $(cat $(cat "$TMP/list") | wc -c) bytes"

# name and command line of each program
set -- "luaio" "$LUAIO bench/html_parse.lua $TMP/list" \
  "luaio, documents left to the GC" "$LUAIO bench/html_parse.lua $TMP/list gc" \
  "luaio doc:links()" "$LUAIO bench/html_parse.lua $TMP/list links" \
  "lxml + cssselect" "$PY -W ignore bench/peers/html_py.py $TMP/list lxml" \
  "BeautifulSoup html.parser" "$PY -W ignore bench/peers/html_py.py $TMP/list bs4" \
  "BeautifulSoup lxml" "$PY -W ignore bench/peers/html_py.py $TMP/list bs4-lxml"
[ $have_node = 1 ] && set -- "$@" "cheerio" "node bench/peers/html_cheerio.js $TMP/list"

i=0
while [ $i -lt "$RUNS" ]; do            # programs alternate within a run
  n=0
  while [ $n -lt $# ]; do
    eval "cmd=\${$((n + 2))}"
    $cmd >> "$TMP/out.$n"
    n=$((n + 2))
  done
  i=$((i + 1))
done
median() { cut -d' ' -f1 "$1" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median "$TMP/out.0")
echo "| program | ms (median of $RUNS) | links, titles | luaio is |"
echo "| --- | --- | --- | --- |"
n=0
while [ $n -lt $# ]; do
  eval "name=\${$((n + 1))}"
  m=$(median "$TMP/out.$n")
  what=$(tail -1 "$TMP/out.$n" | cut -d' ' -f2-3 | tr ' ' ',')
  ratio=$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2fx", a / b}')
  [ $n = 0 ] && ratio="-"
  echo "| $name | $m | $what | $ratio |"
  n=$((n + 2))
done
