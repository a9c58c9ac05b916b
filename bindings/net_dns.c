/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net_dns.c: net.resolve on the thread pool.
 */
#include "net.h"


typedef struct resolve_op {
  uv_getaddrinfo_t req;
  luaio_waiter w;
  struct addrinfo *res;
} resolve_op;

static void resolve_cb (uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  resolve_op *op = LUAIO_CONTAINER(req, resolve_op, req);
  op->res = res;
  if (!luaio_waiter_done(&op->w, status)) {
    if (res) uv_freeaddrinfo(res);
    free(op);
  }
}

static void resolve_abort (luaio_waiter *w) {
  resolve_op *op = LUAIO_CONTAINER(w, resolve_op, w);
  uv_cancel((uv_req_t *)&op->req);                 /* callback comes later */
}

static int resolve_k (lua_State *L, int status, lua_KContext ctx) {
  resolve_op *op = (resolve_op *)ctx;
  struct addrinfo *ai, *res = op->res;
  int n = 0;
  free(op);
  if (status < 0) {
    if (res) uv_freeaddrinfo(res);
    return luaio_raise_uv(L, status, "resolve", "address",
                          lua_tostring(L, 1));
  }
  lua_newtable(L);
  for (ai = res; ai; ai = ai->ai_next) {
    luaio__push_addr(L, ai->ai_addr);
    lua_pop(L, 1);
    lua_rawseti(L, -2, ++n);
  }
  uv_freeaddrinfo(res);
  return 1;
}

/* net.resolve(host) -> list of IP addresses */
static int net_resolve (lua_State *L) {
  const char *host = luaio__checkcstring(L, 1, "net.resolve", "host");
  struct addrinfo hints;
  resolve_op *op;
  int rc;
  luaio_check_wait(L, "net.resolve");
  luaio__perm_net(L, host, -1);
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "net.resolve: out of memory");
  luaio_waiter_init(&op->w, resolve_abort);
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  rc = uv_getaddrinfo(luaio_loop(luaio__host(L)), &op->req, resolve_cb, host, NULL,
                      &hints);
  if (rc < 0) {
    free(op);
    return luaio_raise_uv(L, rc, "resolve", "address", host);
  }
  return luaio_wait(L, &op->w, resolve_k, (lua_KContext)op);
}

void luaio__net_dns_open (lua_State *L) {
  lua_pushcfunction(L, net_resolve);
  lua_setfield(L, -2, "resolve");
}
