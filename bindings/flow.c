/*
 * flow.c: part of the `luaio` module (see luaio__flow_register); also
 * require-able alone as "luaio.flow".
 */
#include "../host/host.h"

static const luaL_Reg flow_funcs[] = {
  {NULL, NULL}
};

/* Add this file's functions to the table on the top of the stack. */
void luaio__flow_register (lua_State *L) {
  luaL_setfuncs(L, flow_funcs, 0);
}

int luaopen_luaio_flow (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__flow_register(L);
  return 1;
}
