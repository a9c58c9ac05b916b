/*
 * spawn.h: spawning a task with any number of arguments, shared by the
 * files of the luaio module (core.c, flow.c).
 *
 * luaio__spawn moves the function and its arguments onto the new
 * coroutine, whose fresh stack only has room for LUA_MINSTACK values:
 * more were written past its end (200 arguments crashed). Until the host
 * grows that stack itself, a call with more arguments spawns a small C
 * function instead, which unpacks them on the task's own stack after
 * luaL_checkstack and calls fn.
 */
#ifndef LUAIO_SPAWN_H
#define LUAIO_SPAWN_H

#include "../host/host.h"

/* Arguments luaio__spawn can move as they are (fn takes one slot more). */
#define SPAWN_DIRECT_MAX (LUA_MINSTACK - 4)

static int spawn_unpack_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L) - 1;              /* fn's results, above the list */
}

/* The task body for many arguments: (fn, args) -> fn(unpack(args)). */
static int spawn_unpack (lua_State *L) {
  lua_Integer i, n;
  lua_getfield(L, 2, "n");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n + 1, "too many arguments");
  lua_pushvalue(L, 1);
  for (i = 1; i <= n; i++) lua_rawgeti(L, 2, i);
  lua_remove(L, 1);                      /* args fn a1..an */
  lua_callk(L, (int)n, LUA_MULTRET, 0, spawn_unpack_k);
  return spawn_unpack_k(L, LUA_OK, 0);
}

/* Spawn the function below the nargs values on the top of L (lua_call
 * order) and push its task. [-(nargs+1), +1] */
static luaio_task *spawn_args (lua_State *L, int nargs) {
  int i, base;
  if (nargs <= SPAWN_DIRECT_MAX) return luaio__spawn(L, nargs);
  base = lua_gettop(L) - nargs;          /* fn's slot */
  luaL_checkstack(L, 3, NULL);
  lua_createtable(L, nargs, 1);
  lua_insert(L, base + 1);               /* fn args a1..an */
  for (i = nargs; i >= 1; i--) lua_rawseti(L, base + 1, i);
  lua_pushinteger(L, nargs);
  lua_setfield(L, base + 1, "n");
  lua_pushcfunction(L, spawn_unpack);
  lua_insert(L, base);                   /* unpack fn args */
  return luaio__spawn(L, 2);
}

#endif
