/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_walk.c: fs.walk, a recursive directory iterator.
 */
#include "fs.h"

void luaio__fs_walk_open (lua_State *L) {
  (void)L;
}
