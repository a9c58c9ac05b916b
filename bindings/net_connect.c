/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net_connect.c: net.connect and net.connect_unix, a stream once connected.
 */
#include "net.h"


/* A connect goes through getaddrinfo, then tries each address in turn,
 * all inside one op with one waiter. Cancel or timeout: the current
 * step is cancelled or its handle closed; its callback, coming later,
 * finishes (or frees) the op. */
typedef struct connect_op {
  luaio_waiter w;
  luaio_deadline d;
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  luaio_host *host;
  luaio_stream *s;                   /* the stream being connected */
  struct addrinfo *res, *cur;
  int armed, stopping, status, step_active;
  int is_pipe;
  char *path;
} connect_op;

static void connect_finish (connect_op *op, int status) {
  if (op->armed) luaio__deadline_stop(op->host, &op->d);
  op->armed = 0;
  op->status = status;
  if (!luaio_waiter_done(&op->w, status)) {        /* the task is gone */
    if (op->s) luaio__stream_close(op->s);
    if (op->res) uv_freeaddrinfo(op->res);
    free(op->path);
    free(op);
  }
}

static void try_next (connect_op *op, int last);

static void connect_cb (uv_connect_t *req, int status) {
  connect_op *op = LUAIO_CONTAINER(req, connect_op, creq);
  op->step_active = 0;
  if (status == 0 && !op->stopping) { connect_finish(op, 0); return; }
  if (op->s) { luaio__stream_close(op->s); op->s = NULL; }
  if (op->stopping) { connect_finish(op, op->stopping); return; }
  try_next(op, status);
}

static void try_next (connect_op *op, int last) {
  while (op->cur) {
    struct addrinfo *ai = op->cur;
    int rc;
    op->cur = ai->ai_next;
    if ((rc = luaio__perm_addr(op->host, ai->ai_addr)) < 0) {  /* DNS */
      last = rc;
      continue;
    }
    op->s = luaio__stream_new(op->host, UV_TCP);
    if (op->s == NULL) { connect_finish(op, UV_ENOMEM); return; }
    rc = uv_tcp_connect(&op->creq, &op->s->u.tcp, ai->ai_addr, connect_cb);
    if (rc == 0) { op->step_active = 1; return; }
    luaio__stream_close(op->s);
    op->s = NULL;
    last = rc;
  }
  connect_finish(op, last ? last : UV_EADDRNOTAVAIL);
}

static void gai_cb (uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  connect_op *op = LUAIO_CONTAINER(req, connect_op, gai);
  op->step_active = 0;
  op->res = res;
  if (op->stopping) { connect_finish(op, op->stopping); return; }
  if (status < 0) { connect_finish(op, status); return; }
  op->cur = res;
  try_next(op, 0);
}

/* Stop the step in flight; its callback finishes with why. */
static void connect_stop (connect_op *op, int why) {
  if (op->stopping) return;
  op->stopping = why;
  if (!op->step_active) return;
  if (op->s) {                        /* connect_cb gets UV_ECANCELED */
    luaio__stream_close(op->s);
    op->s = NULL;
  }
  else uv_cancel((uv_req_t *)&op->gai);
}

static void connect_abort (luaio_waiter *w) {
  connect_stop(LUAIO_CONTAINER(w, connect_op, w), UV_ECANCELED);
}

static void connect_due_cb (luaio_deadline *d) {
  connect_op *op = LUAIO_CONTAINER(d, connect_op, d);
  op->armed = 0;
  connect_stop(op, UV_ETIMEDOUT);
}

/* Stack: host, port (nil for a path), the Stream made before the
 * connect (closed until now); returns it. Nothing here allocates before
 * the Stream owns the connection. */
static int connect_k (lua_State *L, int status, lua_KContext ctx) {
  connect_op *op = (connect_op *)ctx;
  luaio_stream *s = op->s;
  if (op->res) uv_freeaddrinfo(op->res);
  op->s = NULL;
  free(op->path);
  free(op);
  if (status < 0) {
    if (s) luaio__stream_close(s);
    if (lua_isstring(L, 2))
      lua_pushfstring(L, "%s:%s", lua_tostring(L, 1), lua_tostring(L, 2));
    else lua_pushvalue(L, 1);                      /* a Unix socket path */
    return luaio_raise_uv(L, status, "connect", "address",
                          lua_tostring(L, -1));
  }
  luaio__stream_set(L, 3, s);
  lua_settop(L, 3);
  luaio__resource_open(L, 3);       /* debug mode: where, if leaked */
  return 1;
}

/* The timeout of the options table at arg, in ms (30 s if absent). */
static lua_Integer opt_timeout (lua_State *L, int arg, const char *fname) {
  lua_Integer ms;
  if (lua_isnoneornil(L, arg)) return 30000;
  luaio__checktype(L, arg, fname, LUA_TTABLE);
  ms = luaio__optfield_seconds(L, arg, "timeout", fname);
  return ms < 0 ? 30000 : ms;
}

/* A new op; raises out of memory (nothing is started yet). */
static connect_op *connect_op_new (lua_State *L, const char *fname) {
  connect_op *op = calloc(1, sizeof *op);
  if (op == NULL) luaL_error(L, "%s: out of memory", fname);
  luaio_waiter_init(&op->w, connect_abort);
  op->host = luaio__host(L);
  return op;
}

/* The first step is in flight: arm the deadline and wait. */
static int connect_wait (lua_State *L, connect_op *op, lua_Integer ms) {
  op->step_active = 1;
  if (ms > 0)
    op->armed = luaio__deadline_start(op->host, &op->d,
                                      (uint64_t)ms, connect_due_cb);
  return luaio_wait(L, &op->w, connect_k, (lua_KContext)op);
}

/* net.connect(host, port [, {timeout=}]) -> stream */
static int net_connect (lua_State *L) {
  const char *host = luaio__checkcstring(L, 1, "net.connect", "host");
  lua_Integer port = luaio__checkinteger(L, 2, "net.connect"), ms;
  struct addrinfo hints;
  connect_op *op;
  char service[16];
  int rc;
  if (port < 0 || port > 65535)
    return luaio__argerror(L, 2, "net.connect", "port out of range");
  ms = opt_timeout(L, 3, "net.connect");
  luaio_check_wait(L, "net.connect");
  luaio__perm_net(L, host, (int)port);
  luaio__wait_detail(L, "%s:%d", host, (int)port);
  lua_settop(L, 2);
  luaio__stream_push(L, NULL);                     /* the result, at 3 */
  op = connect_op_new(L, "net.connect");
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof service, "%d", (int)port);
  rc = uv_getaddrinfo(luaio_loop(op->host), &op->gai, gai_cb, host, service, &hints);
  if (rc < 0) {
    free(op);
    return luaio_raise_uv(L, rc, "connect", "address", host);
  }
  return connect_wait(L, op, ms);
}

/* net.connect_unix(path [, {timeout=}]) -> stream over a Unix socket */
static int net_connect_unix (lua_State *L) {
  const char *path = luaio__checkcstring(L, 1, "net.connect_unix", "path");
  lua_Integer ms = opt_timeout(L, 2, "net.connect_unix");
  connect_op *op;
  luaio_check_wait(L, "net.connect_unix");
  path = luaio__perm_arg(L, 1, LUAIO_PERM_WRITE);
  luaio__wait_detail(L, "%s", path);
  lua_settop(L, 1);
  lua_pushnil(L);                                  /* no port */
  luaio__stream_push(L, NULL);                     /* the result, at 3 */
  op = connect_op_new(L, "net.connect_unix");
  op->s = luaio__stream_new(op->host, UV_NAMED_PIPE);
  if (op->s == NULL) {
    free(op);
    return luaL_error(L, "net.connect_unix: out of memory");
  }
  uv_pipe_connect(&op->creq, &op->s->u.pipe, path, connect_cb);
  return connect_wait(L, op, ms);
}

static const luaL_Reg connect_funcs[] = {
  {"connect", net_connect}, {"connect_unix", net_connect_unix},
  {NULL, NULL}
};

void luaio__net_connect_open (lua_State *L) {
  luaL_setfuncs(L, connect_funcs, 0);
}
