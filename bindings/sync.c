/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync.c: the luaio.sync module: queues (sync_queue.c, sync_heap.c),
 * select over queues (sync_select.c), semaphores, locks, events and
 * conditions (sync_lock.c) and the rate limiter (sync_limiter.c). Part
 * of the `luaio` module (luaio__sync_register); also require-able alone
 * as "luaio.sync".
 */
#include "sync.h"

/* Add the module's functions to the table on the top of the stack. */
void luaio__sync_register (lua_State *L) {
  luaL_setfuncs(L, luaio__queue_funcs, 0);
  luaL_setfuncs(L, luaio__select_funcs, 0);
  luaL_setfuncs(L, luaio__lock_funcs, 0);
  luaL_setfuncs(L, luaio__limiter_funcs, 0);
}

int luaopen_luaio_sync (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__sync_register(L);
  return 1;
}
