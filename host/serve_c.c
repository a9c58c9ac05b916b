/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve_c.c: luaio_serve_c, http.serve with a C handler for embedders.
 *
 * The server is the Lua one (reached through require "luaio.http", as
 * a script would, so host/ calls no binding): each request still runs
 * in its own task. The handler is a C closure that reads the whole body
 * (it may wait: lua_callk), hands the C function a plain view of the
 * request, and turns its answer into the status, headers, body triple
 * http.serve takes from a Lua handler.
 */
#include "host.h"

typedef struct c_handler {
  luaio_http_handler fn;
  void *ud;
} c_handler;

static int handler_k (lua_State *L, int status, lua_KContext ctx);

/* handler(req, res): upvalue 1 is the c_handler. */
static int handler_c (lua_State *L) {
  lua_settop(L, 1);
  luaL_checkstack(L, 8, NULL);
  lua_getfield(L, 1, "body");
  lua_pushvalue(L, 1);
  lua_callk(L, 1, 1, 0, handler_k);       /* req:body() may wait */
  return handler_k(L, LUA_OK, 0);
}

static const char *str_field (lua_State *L, const char *name) {
  const char *s;
  lua_getfield(L, 1, name);
  s = lua_tostring(L, -1);                 /* stays on the stack */
  return s ? s : "";
}

/* The body is at 2: call the C function, return its answer. */
static int handler_k (lua_State *L, int status, lua_KContext ctx) {
  c_handler *h = lua_touserdata(L, lua_upvalueindex(1));
  luaio_http_request req;
  luaio_http_response res = {0};
  (void)status;
  (void)ctx;
  req.L = L;
  req.idx = 1;
  req.body = lua_tolstring(L, 2, &req.body_len);
  req.method = str_field(L, "method");
  req.url = str_field(L, "url");
  req.path = str_field(L, "path");
  if (h->fn(h->ud, &req, &res) != 0)
    return luaL_error(L, "the C handler failed for %s %s", req.method,
                      req.path);
  lua_pushinteger(L, res.status ? res.status : 200);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, res.content_type ? res.content_type : "text/plain");
  lua_setfield(L, -2, "content-type");
  lua_pushlstring(L, res.body ? res.body : "", res.body ? res.body_len : 0);
  return 3;
}

/* serve(opts, box) -> server, run protected. */
static int serve_start (lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaio.http");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "serve");            /* opts box http serve */
  lua_newtable(L);
  if (lua_istable(L, 1)) {                 /* a copy: opts stays theirs */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, handler_c, 1);
  lua_setfield(L, -2, "handler");
  lua_call(L, 1, 1);
  return 1;
}

int luaio_serve_c (lua_State *L, int opts, luaio_http_handler fn,
                   void *ud) {
  c_handler *h;
  if (!lua_checkstack(L, 8)) return LUAIO_ERROR;
  opts = opts ? lua_absindex(L, opts) : 0;
  if (fn == NULL || (opts && !lua_istable(L, opts))) {
    lua_pushstring(L, fn == NULL ? "luaio_serve_c: handler function "
                   "expected" : "luaio_serve_c: options table expected");
    return LUAIO_ERROR;
  }
  lua_pushcfunction(L, serve_start);
  if (opts) lua_pushvalue(L, opts); else lua_pushnil(L);
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->fn = fn;
  h->ud = ud;
  return lua_pcall(L, 2, 1, 0) == LUA_OK ? LUAIO_OK : LUAIO_ERROR;
}
