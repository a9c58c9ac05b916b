/*
 * sync.c: part of the `luaio` module (see luaio__sync_register); also
 * require-able alone as "luaio.sync".
 */
#include "../host/host.h"

static const luaL_Reg sync_funcs[] = {
  {NULL, NULL}
};

/* Add this file's functions to the table on the top of the stack. */
void luaio__sync_register (lua_State *L) {
  luaL_setfuncs(L, sync_funcs, 0);
}

int luaopen_luaio_sync (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__sync_register(L);
  return 1;
}
