#!/bin/sh
# The main command: sets up, builds, and runs the flagship example.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec build/luaio examples/hello.lua "$@"
