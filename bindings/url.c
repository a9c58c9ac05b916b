/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * url.c: `luaio.url`: parse, join and normalise URLs on libcurl's URL
 * API (the Lua-free core is host/url.c, shared with the HTML parser),
 * and percent-encoding of strings and query strings.
 *
 * libcurl's handles and strings are kept in a "box" userdata while Lua
 * runs, so a memory error raised by the Lua API frees them (its __gc)
 * instead of leaking them.
 */
#include "../host/host.h"
#include "../host/url.h"
#include <curl/curl.h>
#include <limits.h>

#define URL_BOX "luaio.UrlBox"
#define URL_CLASS "luaio.Url"

static const struct {
  const char *name;
  CURLUPart part;
} url_parts[] = {
  {"scheme", CURLUPART_SCHEME}, {"user", CURLUPART_USER},
  {"password", CURLUPART_PASSWORD}, {"host", CURLUPART_HOST},
  {"port", CURLUPART_PORT}, {"path", CURLUPART_PATH},
  {"query", CURLUPART_QUERY}, {"fragment", CURLUPART_FRAGMENT},
};
#define NPARTS (sizeof url_parts / sizeof url_parts[0])

typedef struct url_box {
  CURLU *h;
  char *curl[NPARTS];           /* from libcurl: curl_free */
  char *own;                    /* from host/url.c: free */
} url_box;

static int box_free (lua_State *L) {
  url_box *b = (url_box *)luaL_checkudata(L, 1, URL_BOX);
  size_t i;
  for (i = 0; i < NPARTS; i++) {
    curl_free(b->curl[i]);
    b->curl[i] = NULL;
  }
  free(b->own);
  b->own = NULL;
  if (b->h) curl_url_cleanup(b->h);
  b->h = NULL;
  return 0;
}

/* A new empty box on the stack. [-0, +1] */
static url_box *new_box (lua_State *L) {
  url_box *b = (url_box *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, URL_BOX);
  return b;
}

/* Free the box at idx now rather than at the next collection. */
static void drop_box (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, box_free);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 0);
}

static const char *check_text (lua_State *L, int arg, const char *fname,
                               size_t *len) {
  size_t n;
  const char *s = luaio__checkstring(L, arg, fname, &n);
  if (memchr(s, '\0', n))
    luaio__argerror(L, arg, fname, "contains a NUL byte");
  if (len) *len = n;
  return s;
}

/* Push the result of host/url.c, held by box b (on top, made before
 * the call so that a Lua memory error frees it), or raise err against
 * arg if there is none. */
static int push_result (lua_State *L, url_box *b, const char *err, int arg,
                        const char *fname) {
  if (b->own == NULL) {
    if (strcmp(err, "out of memory") == 0)
      return luaL_error(L, "%s: out of memory", fname);
    return luaio__argerror(L, arg, fname, err);
  }
  lua_pushstring(L, b->own);
  drop_box(L, -2);
  return 1;
}

/* ---- parse and tostring ------------------------------------------------ */

/* Push the host libcurl decoded, with each '%' written as "%25": libcurl
 * takes "%25a" for the host "%a", which written back raw would read as
 * a broken escape, and tostring(url.parse(s)) must parse again. [-0, +1] */
static void push_host (lua_State *L, const char *host) {
  luaL_Buffer B;
  const char *pct;
  luaL_buffinit(L, &B);
  while ((pct = strchr(host, '%')) != NULL) {
    luaL_addlstring(&B, host, (size_t)(pct - host));
    luaL_addstring(&B, "%25");
    host = pct + 1;
  }
  luaL_addstring(&B, host);
  luaL_pushresult(&B);
}

/* url.parse(s) -> a table with the URL's parts, as they are written in
 * it (percent-encoded); port is an integer; absent parts are nil. */
static int url_parse (lua_State *L) {
  const char *s = check_text(L, 1, "url.parse", NULL), *err = NULL;
  url_box *b = new_box(L);
  size_t i;
  if ((b->h = luaio__url_parse(s, &err)) == NULL)
    return push_result(L, b, err, 1, "url.parse");
  for (i = 0; i < NPARTS; i++)
    if (curl_url_get(b->h, url_parts[i].part, &b->curl[i], 0)
        == CURLUE_OUT_OF_MEMORY)
      return luaL_error(L, "url.parse: out of memory");
  lua_createtable(L, 0, NPARTS);
  for (i = 0; i < NPARTS; i++) {
    if (b->curl[i] == NULL) continue;
    if (url_parts[i].part == CURLUPART_PORT)
      lua_pushinteger(L, strtol(b->curl[i], NULL, 10));
    else if (url_parts[i].part == CURLUPART_HOST) push_host(L, b->curl[i]);
    else lua_pushstring(L, b->curl[i]);
    lua_setfield(L, -2, url_parts[i].name);
  }
  luaL_setmetatable(L, URL_CLASS);
  drop_box(L, -2);
  return 1;
}

/* What each field of a Url may not hold raw, lest the rebuilt text
 * split differently (in the order of url_parts). */
static const char *const field_delims[NPARTS] = {
  ":/?#@", ":@/?#", "@/?#", "@/?#", "", "?#", "#", ""
};

/* Check field i of the Url at 1 (pushed: its text, or nil). A string;
 * the port may be an integer. [-0, +1] */
static void check_field (lua_State *L, size_t i) {
  const char *name = url_parts[i].name, *v;
  size_t len;
  int t;
  lua_pushstring(L, name);
  t = lua_rawget(L, 1);
  if (t == LUA_TNIL) return;
  if (url_parts[i].part == CURLUPART_PORT && lua_isinteger(L, -1))
    lua_tostring(L, -1);
  else if (t != LUA_TSTRING)
    luaL_error(L, "tostring(url): field '%s' must be a string, got %s",
               name, luaL_typename(L, -1));
  v = lua_tolstring(L, -1, &len);
  if (memchr(v, '\0', len) || strpbrk(v, field_delims[i])
      || (url_parts[i].part == CURLUPART_HOST && *v != '['
          && strchr(v, ':'))
      || (url_parts[i].part == CURLUPART_PORT
          && (len == 0 || len > 5 || strspn(v, "0123456789") != len))
      || (url_parts[i].part == CURLUPART_PATH && len && *v != '/'))
    luaL_error(L, "tostring(url): invalid %s", name);
}

/* The fields at base.. (in url_parts order, nil where absent) as the
 * text of a URL. [-0, +1] */
static void push_url_text (lua_State *L, int base) {
  static const char *const before[NPARTS] = {
    "", "", ":", "", ":", "", "?", "#"
  };
  luaL_Buffer B;
  size_t i;
  luaL_buffinit(L, &B);
  for (i = 0; i < NPARTS; i++) {
    if (lua_isnil(L, base + (int)i)) continue;
    luaL_addstring(&B, before[i]);
    luaL_addstring(&B, lua_tostring(L, base + (int)i));
    if (i == 0) luaL_addstring(&B, "://");
    if (i == 2 || (i == 1 && lua_isnil(L, base + 2))) luaL_addchar(&B, '@');
  }
  luaL_pushresult(&B);
}

/* tostring(u): the URL put together from its fields, parsed and written
 * back by libcurl (so it always parses again). */
static int url_tostring (lua_State *L) {
  const char *err = NULL;
  url_box *b;
  size_t i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, NPARTS + 4, NULL);
  for (i = 0; i < NPARTS; i++) check_field(L, i);  /* 2 .. NPARTS+1 */
  if (lua_isnil(L, 2)) return luaL_error(L, "tostring(url): no scheme");
  push_url_text(L, 2);
  b = new_box(L);
  b->own = luaio__url_rewrite(lua_tostring(L, -2), &err);
  if (b->own == NULL) return luaL_error(L, "tostring(url): %s", err);
  return push_result(L, b, err, 1, "tostring");
}

/* ---- join and normalize ------------------------------------------------ */

static int url_join (lua_State *L) {
  const char *base = check_text(L, 1, "url.join", NULL);
  const char *ref = check_text(L, 2, "url.join", NULL);
  const char *err = NULL;
  url_box *b = new_box(L);
  int arg;
  b->own = luaio__url_join(base, ref, &err);
  /* The message says which input is wrong; blame that argument. */
  arg = err && strncmp(err, "base URL", 8) == 0 ? 1 : 2;
  if (err && strncmp(err, "reference: ", 11) == 0) err += 11;
  else if (arg == 1) err += 10;
  return push_result(L, b, err, arg, "url.join");
}

static int opt_flag (lua_State *L, int arg, const char *name, int flag) {
  int t = lua_getfield(L, arg, name), on;
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    return luaL_error(L, "bad argument #%d to 'url.normalize' (option "
                      "'%s' must be a boolean, got %s)", arg, name,
                      luaL_typename(L, -1));
  on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on ? flag : 0;
}

/* url.normalize(s [, {drop_fragment = true}]) */
static int url_normalize (lua_State *L) {
  const char *s = check_text(L, 1, "url.normalize", NULL), *err = NULL;
  url_box *b;
  int flags = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "url.normalize", LUA_TTABLE);
    flags |= opt_flag(L, 2, "drop_fragment", LUAIO_URL_DROP_FRAGMENT);
  }
  b = new_box(L);
  b->own = luaio__url_normalize(s, flags, &err);
  return push_result(L, b, err, 1, "url.normalize");
}

/* ---- percent-encoding -------------------------------------------------
 * Written out rather than through curl_easy_escape, whose malloc'd copy
 * a Lua memory error would leak; the rule is the same: every byte but
 * the unreserved ones (RFC 3986 2.3) as %XX. */

static void add_escaped (luaL_Buffer *B, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~') luaL_addchar(B, (char)c);
    else {
      luaL_addchar(B, '%');
      luaL_addchar(B, hex[c >> 4]);
      luaL_addchar(B, hex[c & 15]);
    }
  }
}

static int hex_digit (int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode %XX (an invalid one stays as it is); with plus, '+' is a
 * space (form encoding). */
static void add_unescaped (luaL_Buffer *B, const char *s, size_t len,
                           int plus) {
  size_t i;
  for (i = 0; i < len; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < len && (hi = hex_digit(s[i + 1])) >= 0
        && (lo = hex_digit(s[i + 2])) >= 0) {
      luaL_addchar(B, (char)(hi * 16 + lo));
      i += 2;
    }
    else luaL_addchar(B, plus && s[i] == '+' ? ' ' : s[i]);
  }
}

static int url_encode (lua_State *L) {
  size_t len;
  const char *s = luaio__checkstring(L, 1, "url.encode", &len);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  add_escaped(&B, s, len);
  luaL_pushresult(&B);
  return 1;
}

static int url_decode (lua_State *L) {
  size_t len;
  const char *s = luaio__checkstring(L, 1, "url.decode", &len);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  add_unescaped(&B, s, len, 0);
  luaL_pushresult(&B);
  return 1;
}

/* ---- query strings ----------------------------------------------------- */

typedef struct qkey {
  const char *s;
  size_t len;
} qkey;

static int qkey_cmp (const void *a, const void *b) {
  const qkey *x = (const qkey *)a, *y = (const qkey *)b;
  int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Push "key=value", percent-encoded, for the scalar at vidx; anything
 * else is an error naming the key. [-0, +1] */
static void push_pair (lua_State *L, const qkey *k, int vidx) {
  luaL_Buffer P;
  size_t len;
  const char *v;
  int t = lua_type(L, vidx);
  if (t == LUA_TBOOLEAN)
    lua_pushstring(L, lua_toboolean(L, vidx) ? "true" : "false");
  else if (t == LUA_TNUMBER || t == LUA_TSTRING) lua_pushvalue(L, vidx);
  else {
    lua_pushfstring(L, "value of '%s' must be a string, number, boolean "
                    "or array of them, got %s", k->s, luaL_typename(L, vidx));
    luaio__argerror(L, 1, "url.query_encode", lua_tostring(L, -1));
  }
  v = lua_tolstring(L, -1, &len);      /* converts the copy, not t's */
  luaL_buffinit(L, &P);
  add_escaped(&P, k->s, k->len);
  luaL_addchar(&P, '=');
  add_escaped(&P, v, len);
  luaL_pushresult(&P);
  lua_remove(L, -2);                   /* the text of the value */
}

/* The keys of the table at 1, sorted bytewise, in a userdata. The key
 * strings stay anchored by that table, which no Lua code runs to change
 * meanwhile. [-0, +1] */
static qkey *sorted_keys (lua_State *L, size_t *n) {
  qkey *keys;
  size_t count = 0, i = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pushfstring(L, "keys must be strings, got %s",
                      luaL_typename(L, -2));
      luaio__argerror(L, 1, "url.query_encode", lua_tostring(L, -1));
    }
    count++;
    lua_pop(L, 1);
  }
  keys = (qkey *)lua_newuserdatauv(L, (count ? count : 1) * sizeof *keys, 0);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    keys[i].s = lua_tolstring(L, -2, &keys[i].len);
    i++;
    lua_pop(L, 1);
  }
  qsort(keys, count, sizeof *keys, qkey_cmp);
  *n = count;
  return keys;
}

/* Push the pairs of key k (value on top) into the pieces table at pidx;
 * an array value repeats the key, in order. [-0, +0] */
static void add_key (lua_State *L, const qkey *k, int pidx, lua_Integer *np) {
  lua_pushlstring(L, k->s, k->len);
  if (lua_rawget(L, 1) == LUA_TTABLE) {
    lua_Integer j, n = (lua_Integer)lua_rawlen(L, -1);
    for (j = 1; j <= n; j++) {
      lua_rawgeti(L, -1, j);
      push_pair(L, k, lua_gettop(L));
      lua_rawseti(L, pidx, ++*np);
      lua_pop(L, 1);
    }
  }
  else {
    push_pair(L, k, lua_gettop(L));
    lua_rawseti(L, pidx, ++*np);
  }
  lua_pop(L, 1);
}

/* url.query_encode(t) -> "a=1&b=x%20y": keys sorted, so the text is
 * stable; an array value repeats its key. */
static int url_query_encode (lua_State *L) {
  size_t n, i;
  lua_Integer np = 0, j;
  qkey *keys;
  luaL_Buffer B;
  luaio__checktype(L, 1, "url.query_encode", LUA_TTABLE);
  lua_settop(L, 1);
  keys = sorted_keys(L, &n);                       /* 2 */
  lua_newtable(L);                                 /* 3: the pieces */
  for (i = 0; i < n; i++) add_key(L, &keys[i], 3, &np);
  luaL_buffinit(L, &B);
  for (j = 1; j <= np; j++) {
    if (j > 1) luaL_addchar(&B, '&');
    lua_rawgeti(L, 3, j);
    luaL_addvalue(&B);
  }
  luaL_pushresult(&B);
  return 1;
}

/* Push s[0, len) decoded as form text ('+' is a space). [-0, +1] */
static void push_form (lua_State *L, const char *s, size_t len) {
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  add_unescaped(&B, s, len, 1);
  luaL_pushresult(&B);
}

/* Record key (at -2) = value (at -1) in the result at 2, popping both:
 * a second value for a key turns its entry into an array. [-2, +0] */
static void record (lua_State *L) {
  lua_pushvalue(L, -2);
  switch (lua_rawget(L, 2)) {                      /* key value old */
    case LUA_TNIL:
      lua_pop(L, 1);
      lua_rawset(L, 2);
      return;
    case LUA_TSTRING:
      lua_createtable(L, 2, 0);                    /* key value old arr */
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);                       /* key value arr */
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -2);
      lua_rawset(L, 2);                            /* key value arr */
      break;
  }
  lua_insert(L, -2);                               /* key arr value */
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);
}

/* Add pair p[0, len) ("k=v", "k" or "") to the result at 2 and the
 * ordered list at 3. [-0, +0] */
static void decode_pair (lua_State *L, const char *p, size_t len) {
  const char *eq = memchr(p, '=', len);
  size_t klen = eq ? (size_t)(eq - p) : len;
  if (len == 0) return;
  push_form(L, p, klen);
  if (eq) push_form(L, eq + 1, len - klen - 1);
  else lua_pushliteral(L, "");
  lua_createtable(L, 2, 0);                        /* key value pair */
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, 3, (lua_Integer)lua_rawlen(L, 3) + 1);
  record(L);
}

/* url.query_decode(s) -> t, list: t[key] is the value, or an array of
 * the values of a repeated key in order; list holds {key, value} pairs
 * in order. A leading "?" is skipped. */
static int url_query_decode (lua_State *L) {
  size_t len;
  const char *s = luaio__checkstring(L, 1, "url.query_decode", &len);
  const char *end = s + len, *amp;
  lua_settop(L, 1);
  lua_newtable(L);                                 /* 2 */
  lua_newtable(L);                                 /* 3 */
  if (s < end && *s == '?') s++;
  while (s < end) {
    amp = memchr(s, '&', (size_t)(end - s));
    if (amp == NULL) amp = end;
    decode_pair(L, s, (size_t)(amp - s));
    s = amp + 1;
  }
  return 2;
}

static const luaL_Reg url_funcs[] = {
  {"parse", url_parse}, {"join", url_join}, {"normalize", url_normalize},
  {"encode", url_encode}, {"decode", url_decode},
  {"query_encode", url_query_encode}, {"query_decode", url_query_decode},
  {NULL, NULL}
};

static const luaL_Reg url_meta[] = {
  {"__tostring", url_tostring}, {NULL, NULL}
};

int luaopen_luaio_url (lua_State *L) {
  luaio__class(L, URL_BOX, NULL, box_free, NULL);
  luaio__class(L, URL_CLASS, NULL, NULL, url_meta);
  luaL_newlib(L, url_funcs);
  return 1;
}
