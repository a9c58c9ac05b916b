#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# Installs what luaio needs from Debian (when missing), then configures
# and builds it in build/. Used by scripts/test.sh and scripts/demo.sh.
# LUAIO_EXTRA_PKGS adds packages; LUAIO_NO_BUILD=1 stops after installing
# (scripts/fuzz.sh, which builds with clang itself).
set -eu
cd "$(dirname "$0")/.."
PKGS="build-essential cmake pkg-config liblua5.4-dev lua5.4 luarocks libuv1-dev
libcurl4-openssl-dev lua-cjson-dev lua-cjson libyajl-dev lua-busted
nginx-light libnginx-mod-http-echo openssl python3
valgrind procps time libedit-dev libxml2-dev libhiredis-dev redis-server
redis-tools libhttp-parser-dev libwslay-dev libssl-dev curl ${LUAIO_EXTRA_PKGS:-}"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
[ "${LUAIO_NO_BUILD:-0}" = 1 ] && exit 0
BUILD="${LUAIO_BUILD:-build}"
# Quiet on success; on failure the whole output of the failing step.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
quiet () {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: failed: $*" >&2
    exit 1
  fi
}
quiet cmake -S . -B "$BUILD" \
  -DCMAKE_BUILD_TYPE="${LUAIO_BUILD_TYPE:-RelWithDebInfo}" ${LUAIO_CMAKE_ARGS:-}
quiet cmake --build "$BUILD" -j"$(nproc)"
