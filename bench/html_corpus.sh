#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# The HTML parser measurement (README "Choosing the HTML parser"):
# libxml2's HTML parser and gumbo against html5lib on a corpus of real
# pages (the HTML documentation Debian packages install) and generated
# malformed ones. Prints the agreement of extracted text and link sets
# and the parse time of each C parser.
#
#   bench/html_corpus.sh [-v]     (RUNS=n parse timings, default 3)
# CORPUS=dir uses the pages of dir instead of /usr/share/doc.
set -eu
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PY=/usr/bin/python3               # Debian's: html5lib is its package
RUNS=${RUNS:-3}
cc -O2 -o "$TMP/compare" bench/html/compare.c \
  $(pkg-config --cflags --libs libxml-2.0 gumbo)
find "${CORPUS:-/usr/share/doc}" -type f -name '*.html' -size -2M | sort | head -300 \
  > "$TMP/real"
$PY bench/html/malformed.py "$TMP/malformed" 200
find "$TMP/malformed" -name '*.html' | sort > "$TMP/bad"
cat "$TMP/real" "$TMP/bad" > "$TMP/all"
echo "corpus: $(wc -l < "$TMP/real") real pages" \
  "($(cat $(cat "$TMP/real") | wc -c) bytes), $(wc -l < "$TMP/bad") malformed"
for p in libxml2 gumbo; do
  "$TMP/compare" $p < "$TMP/all" > "$TMP/$p.out"
done
echo "| pages | parser | text equal | words in common | link set equal |"
echo "| --- | --- | --- | --- | --- |"
$PY bench/html/compare.py "$TMP/all" "$TMP/libxml2.out" "$TMP/gumbo.out" "$@"
echo
echo "parse time of the real pages, ms (median of $RUNS runs):"
for p in libxml2 gumbo; do
  t=$("$TMP/compare" $p -t "$RUNS" < "$TMP/real" | sort -n |
      awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "  $p: $t"
done
