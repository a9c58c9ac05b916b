/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * thread_copy.c: the values aio.to_thread copies between Lua states.
 *
 * Arguments and results cross threads as bytes in C memory: one state
 * encodes them, the other decodes them. nil, booleans, numbers, strings
 * and tables of those (keys too) can be copied; a table seen twice on
 * the way down is a cycle and refused. Shared sub-tables are copied
 * twice. The format is private and only ever read by this file.
 *
 *   'n' nil  'F' false  'T' true  'i' int64  'd' double
 *   's' size_t length, bytes    '{' key value ... '}'
 */
#include "../host/osproc.h"

#define COPYBUF "luaio.CopyBuf"
#define MAX_DEPTH 100

/* The buffer lives in a userdata until it is taken, so an error (or a
 * memory error) while encoding frees it with the userdata. */
static int copybuf_gc (lua_State *L) {
  luaio_copybuf *b = (luaio_copybuf *)lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  return 0;
}

luaio_copybuf *luaio__copybuf_new (lua_State *L) {
  luaio_copybuf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, COPYBUF)) {
    lua_pushcfunction(L, copybuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static void put (lua_State *L, luaio_copybuf *b, const void *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 64;
    char *q;
    while (cap - b->len < n) cap *= 2;
    q = realloc(b->p, cap);
    if (q == NULL) luaL_error(L, "not enough memory");
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_tag (lua_State *L, luaio_copybuf *b, char tag) {
  put(L, b, &tag, 1);
}

static int encode (lua_State *L, luaio_copybuf *b, int idx, int seen,
                   int depth);

/* Encode the table at idx; seen (a stack index) marks the tables being
 * encoded. Returns 0 and pushes a message on a value that cannot be
 * copied. */
static int encode_table (lua_State *L, luaio_copybuf *b, int idx, int seen,
                         int depth) {
  if (depth > MAX_DEPTH) {
    lua_pushliteral(L, "tables nested too deep (or a cycle)");
    return 0;
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, seen) != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushliteral(L, "a table with a cycle cannot be copied");
    return 0;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  put_tag(L, b, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) {                      /* ... k v */
    int top = lua_gettop(L);
    if (!encode(L, b, top - 1, seen, depth + 1) ||
        !encode(L, b, top, seen, depth + 1))
      return 0;                                   /* message on top */
    lua_pop(L, 1);
  }
  put_tag(L, b, '}');
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, seen);
  return 1;
}

static int encode (lua_State *L, luaio_copybuf *b, int idx, int seen,
                   int depth) {
  luaL_checkstack(L, 6, "tables nested too deep");
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_tag(L, b, 'n'); return 1;
    case LUA_TBOOLEAN:
      put_tag(L, b, lua_toboolean(L, idx) ? 'T' : 'F');
      return 1;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        put_tag(L, b, 'i');
        put(L, b, &i, sizeof i);
      }
      else {
        lua_Number d = lua_tonumber(L, idx);
        put_tag(L, b, 'd');
        put(L, b, &d, sizeof d);
      }
      return 1;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      put_tag(L, b, 's');
      put(L, b, &n, sizeof n);
      put(L, b, s, n);
      return 1;
    }
    case LUA_TTABLE: return encode_table(L, b, lua_absindex(L, idx), seen,
                                         depth);
    default:
      lua_pushfstring(L, "a %s cannot be copied to another thread",
                      luaL_typename(L, idx));
      return 0;
  }
}

int luaio__copy_encode (lua_State *L, luaio_copybuf *b, int idx) {
  int seen;
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  seen = lua_gettop(L);
  if (encode(L, b, idx, seen, 0)) { lua_settop(L, seen - 1); return 1; }
  lua_replace(L, seen);                           /* the message */
  lua_settop(L, seen);
  return 0;
}

static void get (const char **p, void *out, size_t n) {
  memcpy(out, *p, n);
  *p += n;
}

/* Push the value at *p. [-0, +1] */
static void decode (lua_State *L, const char **p) {
  char tag = *(*p)++;
  luaL_checkstack(L, 4, "tables nested too deep");
  switch (tag) {
    case 'n': lua_pushnil(L); break;
    case 'F': lua_pushboolean(L, 0); break;
    case 'T': lua_pushboolean(L, 1); break;
    case 'i': { lua_Integer i; get(p, &i, sizeof i); lua_pushinteger(L, i);
                break; }
    case 'd': { lua_Number d; get(p, &d, sizeof d); lua_pushnumber(L, d);
                break; }
    case 's': { size_t n; get(p, &n, sizeof n); lua_pushlstring(L, *p, n);
                *p += n; break; }
    default:                                      /* '{' */
      lua_newtable(L);
      while (**p != '}') {
        decode(L, p);
        decode(L, p);
        lua_rawset(L, -3);
      }
      (*p)++;
  }
}

int luaio__copy_decode (lua_State *L, const char *p, size_t len) {
  const char *end = p + len;
  int n = 0;
  while (p < end) {
    decode(L, &p);
    n++;
  }
  return n;
}
