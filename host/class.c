/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * class.c: the metatables of the objects bindings hand to Lua.
 */
#include "host.h"

/* __gc: report a resource collected unclosed (debug mode), then close
 * it as __close would. */
static int gc_then_close (lua_State *L) {
  luaio__resource_gc(L, 1, NULL);
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

void luaio__class (lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction close, const luaL_Reg *meta) {
  if (luaL_newmetatable(L, name)) {
    if (methods) {                      /* upvalue: the metatable, for */
      lua_newtable(L);                  /* luaio__checkself */
      lua_pushvalue(L, -2);
      luaL_setfuncs(L, methods, 1);
      lua_setfield(L, -2, "__index");
    }
    if (close) {                        /* one function for both */
      lua_pushcfunction(L, close);
      lua_pushcclosure(L, gc_then_close, 1);
      lua_setfield(L, -2, "__gc");
      lua_pushcfunction(L, close);
      lua_setfield(L, -2, "__close");
    }
    if (meta) luaL_setfuncs(L, meta, 0);
  }
  lua_pop(L, 1);
}

/* A method's self: compares the metatable with the method's upvalue
 * (see luaio__class) before luaL_checkudata's look-up by name, which
 * cost ~340 instructions: a third of a queue:get (callgrind, W3). */
void *luaio__checkself (lua_State *L, const char *name) {
  if (lua_type(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, 1)) {
    int same = lua_topointer(L, -1) ==            /* cheaper than */
               lua_topointer(L, lua_upvalueindex(1)); /* lua_rawequal */
    lua_pop(L, 1);
    if (same) return lua_touserdata(L, 1);
  }
  return luaL_checkudata(L, 1, name);
}

/* A weak table (mode "k" or "v"), made once and kept in the registry
 * under key. [-0, +1] */
void luaio__push_weak_table (lua_State *L, const void *key,
                             const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* The Lua part of a module (lua/<name>.lua, embedded and preloaded),
 * loaded once and kept in the registry under key: taken from the
 * preload table, not through the global require a script may have
 * replaced. Raises naming owner if it is missing. [-0, +1] */
void luaio__push_lua_part (lua_State *L, const void *key, const char *name,
                           const char *owner) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL) return;
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TFUNCTION)
    luaL_error(L, "%s: its Lua part %s is missing", owner, name);
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}
