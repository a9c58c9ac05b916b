/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * json.c: `luaio.json`, JSON that loses nothing, on yajl.
 *
 * Debian's lua-cjson 2.1.0 turns integers into floats under Lua 5.4 and
 * cannot print more than 14 digits, so API ids and counters do not
 * survive a round trip. yajl (a Debian C library) hands numbers over as
 * text, so integers stay integers (64-bit exact) and floats are printed
 * with the shortest form that reads back to the same double.
 *
 * Decoding is here, on yajl's parser; encoding writes its text directly
 * (json_encode.c). Handles of yajl live in userdata with a __gc, so a Lua
 * error raised from a callback (out of memory) leaks nothing.
 */
#include "json.h"
#include <errno.h>
#include <string.h>
#include <math.h>
#include <yajl/yajl_parse.h>

#define JSON_MAX_DEPTH 512

static const char json_array_key = 0;    /* registry: the array metatable */

void luaio__json_array_mt (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &json_array_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &json_array_key);
  }
}

int luaio__json_has_array_mt (lua_State *L, int idx) {
  int yes = 0;
  if (lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &json_array_key);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return yes;
}

/* ---- decode ------------------------------------------------------------ */

typedef struct frame {
  int is_array;
  lua_Integer n;
} frame;

typedef struct decoder {
  yajl_handle h;
  lua_State *L;
  const unsigned char *text;    /* the whole input, to locate tokens */
  size_t len;
  int depth;
  int finishing;                /* inside yajl_complete_parse */
  const char *error;            /* set by a callback that stops the parse */
  size_t error_at;              /* 1-based byte of that error, or 0 */
  char what[64];                /* storage for a formatted error */
  frame frames[JSON_MAX_DEPTH];
} decoder;

/* ---- strict UTF-8 and escapes -------------------------------------------
 * yajl checks only the shape of UTF-8 sequences (so overlong forms, UTF-16
 * surrogates and code points past U+10FFFF pass), turns a lone \ud800
 * into "?" and pairs \ud800 with any following escape. These checks are
 * RFC 3629 and RFC 8259's. */

/* The value of the 4 hex digits at p, or -1. */
static long hex4 (const unsigned char *p) {
  long v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Check the raw string token s[0..n) (between its quotes, at offset off
 * of the input): strict UTF-8 and paired surrogate escapes. Returns 1 if
 * valid; otherwise sets d's error and position and returns 0 (which stops
 * yajl). */
static int check_raw_string (decoder *d, const unsigned char *s, size_t n,
                             size_t off) {
  size_t i = 0, k;
  while (i < n) {
    if (s[i] == '\\') {
      long cp = (s[i + 1] == 'u' && i + 6 <= n) ? hex4(s + i + 2) : -1;
      int paired = cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= n &&
        s[i + 6] == '\\' && s[i + 7] == 'u' &&
        hex4(s + i + 8) >= 0xDC00 && hex4(s + i + 8) <= 0xDFFF;
      if (cp >= 0xD800 && cp <= 0xDFFF && !paired) {
        snprintf(d->what, sizeof d->what, "lone surrogate \\%.5s",
                 (const char *)s + i + 1);
        d->error = d->what;
        d->error_at = off + i + 1;
        return 0;
      }
      i += paired ? 12 : cp >= 0 ? 6 : 2;
      continue;
    }
    if (s[i] < 0x80) { i++; continue; }
    if ((k = luaio__utf8_seq(s + i, n - i)) == 0) {
      d->error = "invalid UTF-8";
      d->error_at = off + i + 1;
      return 0;
    }
    i += k;
  }
  return 1;
}

/* A string (or key) yajl decoded to s[0..n): valid unless it has bytes
 * past ASCII or a "?" (what yajl makes of a lone surrogate); then check
 * its raw token, which ends just before yajl's position. */
static int check_string (decoder *d, const unsigned char *s, size_t n) {
  size_t i, end, start;
  for (i = 0; i < n; i++)
    if (s[i] >= 0x80 || s[i] == '?') break;
  if (i == n) return 1;
  end = yajl_get_bytes_consumed(d->h);             /* after the quote */
  if (d->finishing || end < 2 || end > d->len || d->text[end - 1] != '"')
    return 1;                                      /* cannot happen */
  end--;
  for (start = end; start-- > 0; ) {               /* the opening quote: */
    size_t bs = 0;                                 /* not escaped */
    if (d->text[start] != '"') continue;
    while (bs < start && d->text[start - 1 - bs] == '\\') bs++;
    if (bs % 2 == 0) break;
  }
  return check_raw_string(d, d->text + start + 1, end - start - 1,
                          start + 1);
}

/* Store the value on top into its container (or leave a root value). */
static int add_value (decoder *d) {
  lua_State *L = d->L;
  frame *f;
  if (d->depth == 0) return 1;
  f = &d->frames[d->depth - 1];
  if (f->is_array) lua_rawseti(L, -2, ++f->n);
  else lua_rawset(L, -3);
  return 1;
}

static int on_null (void *ctx) {
  decoder *d = (decoder *)ctx;
  lua_pushlightuserdata(d->L, NULL);
  return add_value(d);
}

static int on_boolean (void *ctx, int b) {
  decoder *d = (decoder *)ctx;
  lua_pushboolean(d->L, b);
  return add_value(d);
}

/* 1-based position of the number token s[0..len) that yajl just read:
 * it ends at yajl's position, or (read by yajl_complete_parse) it is the
 * last token of the input. */
static size_t number_at (decoder *d, const char *s, size_t len) {
  size_t end = yajl_get_bytes_consumed(d->h);
  if (d->finishing || end < len || end > d->len ||
      memcmp(d->text + end - len, s, len) != 0) {
    end = d->len;
    while (end > 0 && strchr(" \t\r\n", d->text[end - 1])) end--;
  }
  return end >= len ? end - len + 1 : 1;
}

/* Integers without fraction or exponent stay integers when they fit; a
 * number too large for a double is an error, not infinity. */
static int on_number (void *ctx, const char *s, size_t len) {
  decoder *d = (decoder *)ctx;
  char buf[64];
  double v;
  if (len >= sizeof buf) { d->error = "number too long"; return 0; }
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (strpbrk(buf, ".eE") == NULL) {
    long long i;
    errno = 0;
    i = strtoll(buf, NULL, 10);
    if (errno == 0) {
      lua_pushinteger(d->L, (lua_Integer)i);
      return add_value(d);
    }
  }
  v = strtod(buf, NULL);
  if (isinf(v)) {
    d->error = "number out of range";
    d->error_at = number_at(d, s, len);
    return 0;
  }
  lua_pushnumber(d->L, (lua_Number)v);
  return add_value(d);
}

static int on_string (void *ctx, const unsigned char *s, size_t len) {
  decoder *d = (decoder *)ctx;
  if (!check_string(d, s, len)) return 0;
  lua_pushlstring(d->L, (const char *)s, len);
  return add_value(d);
}

static int open_container (decoder *d, int is_array) {
  if (d->depth >= JSON_MAX_DEPTH) {
    d->error = "nesting too deep";
    return 0;
  }
  luaL_checkstack(d->L, 4, "json.decode");
  lua_newtable(d->L);
  d->frames[d->depth].is_array = is_array;
  d->frames[d->depth].n = 0;
  d->depth++;
  return 1;
}

static int on_start_map (void *ctx) {
  return open_container((decoder *)ctx, 0);
}

static int on_map_key (void *ctx, const unsigned char *s, size_t len) {
  decoder *d = (decoder *)ctx;
  if (!check_string(d, s, len)) return 0;
  lua_pushlstring(d->L, (const char *)s, len);
  return 1;
}

static int on_end (void *ctx) {
  decoder *d = (decoder *)ctx;
  frame *f = &d->frames[--d->depth];
  if (f->is_array && f->n == 0) {        /* keep [] distinct from {} */
    luaio__json_array_mt(d->L);
    lua_setmetatable(d->L, -2);
  }
  return add_value(d);
}

static int on_start_array (void *ctx) {
  return open_container((decoder *)ctx, 1);
}

static const yajl_callbacks decode_callbacks = {
  on_null, on_boolean, NULL, NULL, on_number, on_string,
  on_start_map, on_map_key, on_end, on_start_array, on_end
};

static int decoder_gc (lua_State *L) {
  decoder *d = (decoder *)lua_touserdata(L, 1);
  if (d->h) yajl_free(d->h);
  d->h = NULL;
  return 0;
}

/* Raise "json.decode: <what> at byte N"; a callback's error has its own
 * position. */
static int decode_error (lua_State *L, decoder *d, const unsigned char *s,
                         size_t len, size_t at) {
  if (d->error_at) at = d->error_at;
  if (d->error) {
    lua_pushfstring(L, "json.decode: %s at byte %d", d->error, (int)at);
  }
  else {
    /* yajl's message is copied and freed before Lua allocates (and
     * may fail for want of memory): it would leak otherwise */
    char text[256];
    unsigned char *msg = yajl_get_error(d->h, 0, s, len);
    size_t n = msg ? strlen((char *)msg) : 0;
    if (n >= sizeof text) n = sizeof text - 1;
    if (msg) memcpy(text, msg, n);
    if (msg) yajl_free_error(d->h, msg);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) n--;
    text[n] = '\0';
    lua_pushfstring(L, "json.decode: %s at byte %d",
                    n ? text : "parse error", (int)at);
  }
  luaio_push_error(L, "json", NULL, lua_tostring(L, -1));
  lua_pushinteger(L, (lua_Integer)at);
  lua_setfield(L, -2, "position");
  return luaio_raise(L);
}

/* json.decode(text) -> value. Objects become tables, arrays sequences
 * (an empty array keeps a marker metatable, so it encodes back as []),
 * null becomes json.null. */
static int json_decode (lua_State *L) {
  size_t len;
  const unsigned char *s =
    (const unsigned char *)luaio__checkstring(L, 1, "json.decode", &len);
  decoder *d;
  yajl_status st;
  lua_settop(L, 1);
  d = lua_newuserdatauv(L, sizeof *d, 0);          /* s d */
  d->h = NULL;
  d->text = s;
  d->len = len;
  d->depth = 0;
  d->finishing = 0;
  d->error = NULL;
  d->error_at = 0;
  d->L = L;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, decoder_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  d->h = yajl_alloc(&decode_callbacks, NULL, d);
  if (d->h == NULL) return luaL_error(L, "json.decode: not enough memory");
  st = yajl_parse(d->h, s, len);
  if (st != yajl_status_ok)
    return decode_error(L, d, s, len, yajl_get_bytes_consumed(d->h));
  d->finishing = 1;
  if (yajl_complete_parse(d->h) != yajl_status_ok)
    return decode_error(L, d, s, len, len);
  if (lua_gettop(L) != 3) {
    lua_pushliteral(L, "json.decode: no value");
    luaio_push_error(L, "json", NULL, lua_tostring(L, -1));
    return luaio_raise(L);
  }
  yajl_free(d->h);
  d->h = NULL;
  return 1;
}

/* json.array([t]) -> t marked to encode as an array, even when empty. */
static int json_array (lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else luaio__checktype(L, 1, "json.array", LUA_TTABLE);
  lua_settop(L, 1);
  luaio__json_array_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

static const luaL_Reg json_funcs[] = {
  {"decode", json_decode}, {"array", json_array},
  {NULL, NULL}
};

int luaopen_luaio_json (lua_State *L) {
  luaio__host(L);
  luaL_newlib(L, json_funcs);
  luaio__json_open_encode(L);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
