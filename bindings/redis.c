/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * redis.c: the luaio.redis module: the Connection object (its URL, its
 * options, close) and the module table. Commands are in redis_call.c,
 * the links under them in redis_link.c, pub/sub in redis_sub.c; connect,
 * eval and the distributed queue, set and rate limiter are Lua
 * (lua/redis_kit.lua), on top of r:call.
 */
#include "redis.h"
#include <math.h>

static const char kit_key = 0;

rd_client *rd_check_client (lua_State *L, int idx, const char *fname) {
  rd_client *cl = luaL_testudata(L, idx, RD_CONNECTION);
  if (cl == NULL) luaio__typeerror(L, idx, fname, "redis connection");
  return cl;
}

/* ---- the URL: redis://[[user]:password@]host[:port][/db] ----------------- */

static char *dup_range (const char *s, const char *e) {
  char *d = malloc((size_t)(e - s) + 1);
  if (d == NULL) return NULL;
  memcpy(d, s, (size_t)(e - s));
  d[e - s] = '\0';
  return d;
}

/* The user and password of userinfo [s, e). NULL or an error text. */
static const char *parse_userinfo (rd_client *cl, const char *s,
                                   const char *e) {
  const char *colon = memchr(s, ':', (size_t)(e - s));
  if (colon == NULL) return "password expected as :password@";
  if (colon > s) cl->user = dup_range(s, colon);
  cl->password = dup_range(colon + 1, e);
  return NULL;
}

static const char *parse_db (rd_client *cl, const char *p) {
  long v = 0;
  if (*p == '/') p++;
  if (*p == '\0') return NULL;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > 100000) return "bad database number";
    v = v * 10 + (*p - '0');
  }
  cl->db = (int)v;
  return NULL;
}

/* Fill cl's host, port, db and credentials from url. NULL or why not. */
static const char *parse_url (rd_client *cl, const char *url) {
  const char *p, *at, *slash, *hs, *he;
  long port = 6379;
  if (strncmp(url, "rediss://", 9) == 0)
    return "TLS (rediss://) is not supported";
  if (strncmp(url, "redis://", 8) != 0) return "redis:// URL expected";
  p = url + 8;
  slash = strchr(p, '/');
  if (slash == NULL) slash = p + strlen(p);
  at = memchr(p, '@', (size_t)(slash - p));
  if (at) {
    const char *err = parse_userinfo(cl, p, at);
    if (err) return err;
    p = at + 1;
  }
  hs = p;
  if (*p == '[') { hs = ++p; while (p < slash && *p != ']') p++; he = p++; }
  else { while (p < slash && *p != ':') p++; he = p; }
  if (he == hs) return "host expected";
  if (p < slash && *p == ':') {
    char *end;
    port = strtol(p + 1, &end, 10);
    if (end != slash || port < 1 || port > 65535) return "bad port";
  } else if (p != slash) return "bad host";
  cl->host = dup_range(hs, he);
  cl->port = (int)port;
  return parse_db(cl, slash);
}

/* ---- options ----------------------------------------------------------- */

static void parse_options (lua_State *L, rd_client *cl, const char *fname) {
  if (lua_isnoneornil(L, 2)) return;
  luaio__checktype(L, 2, fname, LUA_TTABLE);
  if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
    lua_Number s = lua_tonumber(L, -1);
    if (!lua_isnumber(L, -1) || !(s >= 0) || s > 1e9)
      luaio__argerror(L, 2, fname, "timeout must be a number of seconds");
    cl->timeout_ms = (lua_Integer)ceil(s * 1000);
  }
  if (lua_getfield(L, 2, "name") != LUA_TNIL) {
    size_t len;
    const char *name;
    if (lua_type(L, -1) != LUA_TSTRING)
      luaio__argerror(L, 2, fname, "name must be a string");
    name = lua_tolstring(L, -1, &len);
    if (strlen(name) != len)
      luaio__argerror(L, 2, fname, "name contains a NUL byte");
    cl->name = strdup(name);
  }
  lua_pop(L, 2);
}

/* ---- the Connection ---------------------------------------------------- */

static void free_strings (rd_client *cl) {
  free(cl->url); free(cl->host); free(cl->password); free(cl->user);
  free(cl->name);
  cl->url = cl->host = cl->password = cl->user = cl->name = NULL;
}

/* redis.open(url [, opts]) -> a Connection, not connected yet (the Lua
 * redis.connect connects it). Errors name redis.connect. */
static int redis_open (lua_State *L) {
  const char *fname = "redis.connect";
  const char *url = luaio__checkcstring(L, 1, fname, "URL"), *err;
  rd_client *cl = lua_newuserdatauv(L, sizeof *cl, 0);
  memset(cl, 0, sizeof *cl);
  cl->timeout_ms = -1;
  cl->closed = 1;                    /* until set up: __gc frees only */
  luaL_setmetatable(L, RD_CONNECTION);
  err = parse_url(cl, url);
  if (err) return luaio__argerror(L, 1, fname, err);
  parse_options(L, cl, fname);
  cl->h = luaio__host(L);
  lua_pushfstring(L, "redis://%s%s%s:%d/%d", strchr(cl->host, ':') ? "[" : "",
                  cl->host, strchr(cl->host, ':') ? "]" : "", cl->port, cl->db);
  cl->url = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (cl->url == NULL || cl->host == NULL)
    return luaL_error(L, "%s: out of memory", fname);
  cl->closed = 0;
  return 1;
}

/* r:close(): commands waiting fail with "connection closed"; later ones
 * raise it. Subscriptions made from r end. Idempotent. */
static int conn_close (lua_State *L) {
  rd_client *cl = rd_check_client(L, 1, "r:close");
  if (!cl->closed) rd_client_shutdown(cl);
  return 0;
}

static int conn_gc (lua_State *L) {
  rd_client *cl = lua_touserdata(L, 1);
  if (!cl->closed) rd_client_shutdown(cl);
  free(cl->main.setup_err);
  cl->main.setup_err = NULL;
  free_strings(cl);
  return 0;
}

static int conn_tostring (lua_State *L) {
  rd_client *cl = rd_check_client(L, 1, "tostring");
  lua_pushfstring(L, "redis connection %s%s", cl->url ? cl->url : "?",
                  cl->closed ? " (closed)" : "");
  return 1;
}

/* r.url: the URL without its password. */
static int conn_index (lua_State *L) {
  rd_client *cl = rd_check_client(L, 1, "r:index");
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "url") == 0) { lua_pushstring(L, cl->url); return 1; }
  if (k && strcmp(k, "closed") == 0) {
    lua_pushboolean(L, cl->closed);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static const luaL_Reg conn_methods[] = {
  {"call", rd_call}, {"close", conn_close}, {"subscribe", rd_subscribe},
  {"psubscribe", rd_psubscribe}, {NULL, NULL}
};

/* The class; its __index is a function over the methods table (for
 * r.url), which the Lua part extends with eval. [-0, +1]: methods */
static void register_connection (lua_State *L) {
  static const luaL_Reg meta[] = {{"__close", conn_close},
    {"__gc", conn_gc}, {"__tostring", conn_tostring}, {NULL, NULL}};
  luaio__class(L, RD_CONNECTION, NULL, NULL, meta);
  luaL_getmetatable(L, RD_CONNECTION);
  luaL_newlib(L, conn_methods);                  /* mt methods */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, conn_index, 1);
  lua_setfield(L, -3, "__index");
  lua_remove(L, -2);                             /* methods */
}

/* The Lua part's classes (queue, set, limiter) in the registry by their
 * __name, as luaio__class registers the C ones. [-0, +0]: kit on top */
static void register_lua_classes (lua_State *L) {
  int i, n;
  lua_getfield(L, -1, "classes");
  n = (int)luaL_len(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "__name");
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* The Lua part, from the preload table (not through a require a script
 * may have replaced): called with the module and the methods table, it
 * adds connect (on redis_open, given as third argument), eval, queue,
 * set and rate_limiter. */
static void load_kit (lua_State *L, int mod, int methods) {
  luaio__push_lua_part(L, &kit_key, "luaio.redis_kit", "luaio.redis");
  lua_getfield(L, -1, "install");
  lua_pushvalue(L, mod);
  lua_pushvalue(L, methods);
  lua_pushcfunction(L, redis_open);
  lua_call(L, 3, 0);
  register_lua_classes(L);
  lua_pop(L, 1);
}

int luaopen_luaio_redis (lua_State *L) {
  int methods;
  luaio__host(L);
  register_connection(L);
  methods = lua_gettop(L);
  rd_sub_register(L);
  lua_newtable(L);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  load_kit(L, lua_gettop(L), methods);
  lua_remove(L, methods);
  return 1;
}
