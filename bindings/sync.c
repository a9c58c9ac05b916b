/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync.c: the luaio.sync module: queues (sync_queue.c, sync_heap.c),
 * select over queues (sync_select.c), semaphores, locks, events and
 * conditions (sync_lock.c), the rate limiter (sync_limiter.c) and
 * aio.future (the object is the host's, host/future.c, as embedders
 * use it too). Part of the `luaio` module (luaio__sync_register); also
 * require-able alone as "luaio.sync".
 */
#include "sync.h"

/* Add the module's functions to the table on the top of the stack. */
void luaio__sync_register (lua_State *L) {
  luaL_setfuncs(L, luaio__queue_funcs, 0);
  luaL_setfuncs(L, luaio__select_funcs, 0);
  luaL_setfuncs(L, luaio__lock_funcs, 0);
  luaL_setfuncs(L, luaio__limiter_funcs, 0);
  lua_pushcfunction(L, luaio__future_new);       /* host/future.c */
  lua_setfield(L, -2, "future");
}

int luaopen_luaio_sync (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__sync_register(L);
  return 1;
}
