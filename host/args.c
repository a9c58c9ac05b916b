/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * args.c: the argument checks every binding shares. Their errors name
 * the function the script called, as the README does ('fs.read', not
 * 'luaio.fs.read'): bad argument #1 to 'fs.read' (string expected, got
 * nil).
 */
#include "host.h"
#include <math.h>

int luaio__argerror (lua_State *L, int arg, const char *fname,
                     const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

int luaio__typeerror (lua_State *L, int arg, const char *fname,
                      const char *expected) {
  return luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)",
                    arg, fname, expected, luaL_typename(L, arg));
}

const char *luaio__checkstring (lua_State *L, int arg, const char *fname,
                                size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
    luaio__typeerror(L, arg, fname, "string");
  return lua_tolstring(L, arg, len);
}

/* C reads such a string up to its first NUL (a path, a host name): one
 * with a NUL inside is refused, never cut short. */
const char *luaio__checkcstring (lua_State *L, int arg, const char *fname,
                                 const char *what) {
  size_t len;
  const char *s = luaio__checkstring(L, arg, fname, &len);
  if (memchr(s, '\0', len) != NULL) {
    lua_pushfstring(L, "%s contains a NUL byte", what);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  return s;
}

const char *luaio__optstring (lua_State *L, int arg, const char *fname,
                              const char *def, size_t *len) {
  if (lua_isnoneornil(L, arg)) {
    if (len) *len = def ? strlen(def) : 0;
    return def;
  }
  return luaio__checkstring(L, arg, fname, len);
}

lua_Integer luaio__checkinteger (lua_State *L, int arg, const char *fname) {
  int ok;
  lua_Integer n = lua_tointegerx(L, arg, &ok);
  if (!ok) {
    if (lua_isnumber(L, arg))
      luaio__argerror(L, arg, fname, "number has no integer representation");
    luaio__typeerror(L, arg, fname, "integer");
  }
  return n;
}

lua_Integer luaio__optinteger (lua_State *L, int arg, const char *fname,
                               lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : luaio__checkinteger(L, arg, fname);
}

void luaio__checktype (lua_State *L, int arg, const char *fname, int type) {
  if (lua_type(L, arg) != type)
    luaio__typeerror(L, arg, fname, lua_typename(L, type));
}

lua_Integer luaio_check_seconds (lua_State *L, int arg, const char *fname) {
  lua_Number s;
  int isnum;
  if (lua_isnoneornil(L, arg)) return -1;
  s = lua_tonumberx(L, arg, &isnum);
  if (!isnum) return luaio__typeerror(L, arg, fname, "number of seconds");
  if (!(s >= 0))
    return luaL_error(L, "bad argument #%d to '%s' (seconds must be >= 0, "
                      "got %f)", arg, fname, (double)s);
  if (s > 1e12) return LUA_MAXINTEGER;              /* forever */
  return (lua_Integer)ceil(s * 1000.0);
}

/* "name must be 'a', 'b' or 'c'" for the NULL-terminated names. */
static const char *push_choices (lua_State *L, const char *name,
                                 const char *const names[]) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, name);
  luaL_addstring(&b, " must be ");
  for (i = 0; names[i]; i++) {
    if (i > 0) luaL_addstring(&b, names[i + 1] ? ", " : " or ");
    luaL_addchar(&b, '\'');
    luaL_addstring(&b, names[i]);
    luaL_addchar(&b, '\'');
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

int luaio__optfield_enum (lua_State *L, int opts, const char *name,
                          const char *fname, const char *const names[],
                          int def) {
  const char *v = NULL;
  int i;
  if (lua_getfield(L, opts, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (lua_type(L, -1) == LUA_TSTRING) v = lua_tostring(L, -1);
  for (i = 0; v && names[i]; i++)
    if (strcmp(v, names[i]) == 0) {
      lua_pop(L, 1);
      return i;
    }
  return luaio__argerror(L, opts, fname, push_choices(L, name, names));
}

/* The choice at arg (a string from names, NULL-terminated): its
 * position, def when arg is nil or absent; else "bad argument #arg to
 * 'fname' (what must be 'a', 'b' or 'c')". */
int luaio__optenum (lua_State *L, int arg, const char *fname,
                    const char *what, const char *const names[], int def) {
  const char *v;
  int i;
  if (lua_isnoneornil(L, arg)) return def;
  v = lua_tostring(L, arg);
  for (i = 0; v && names[i]; i++)
    if (strcmp(v, names[i]) == 0) return i;
  return luaio__argerror(L, arg, fname, push_choices(L, what, names));
}

lua_Integer luaio__optfield_integer (lua_State *L, int opts,
                                     const char *name, const char *fname,
                                     lua_Integer def) {
  lua_Integer v = def;
  int ok = 1;
  if (lua_getfield(L, opts, name) != LUA_TNIL)
    v = lua_tointegerx(L, -1, &ok);
  if (!ok) {
    lua_pushfstring(L, "%s must be an integer", name);
    luaio__argerror(L, opts, fname, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

lua_Integer luaio__optfield_seconds (lua_State *L, int opts,
                                     const char *name, const char *fname) {
  lua_Integer ms = -1;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    int isnum;
    lua_Number s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s >= 0)) {
      lua_pushfstring(L, "%s must be a number of seconds >= 0", name);
      luaio__argerror(L, opts, fname, lua_tostring(L, -1));
    }
    ms = luaio_check_seconds(L, lua_gettop(L), fname);
  }
  lua_pop(L, 1);
  return ms;
}
