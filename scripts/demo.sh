#!/bin/sh
# SPDX-License-Identifier: MIT (see LICENSE)
# The main command: sets up, builds, and runs the flagship example, a
# concurrent crawler (on a demo site it serves itself unless given a URL).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec build/luaio examples/crawl.lua "$@"
