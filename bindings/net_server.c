/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net_server.c: net.serve and net.serve_unix, a task per connection.
 */
#include "net.h"


/* The listener is separate from the userdata: closed in close(), freed in
 * its close callback. Each connection runs handler(stream) in a task;
 * a watcher on each task reports its error and drops it from the list
 * of connections. */
typedef union anystream {
  uv_handle_t h;
  uv_stream_t s;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} anystream;

/* The listening handle, and a spare one that takes (and closes) a
 * connection no stream could be made for. Freed when both are closed. */
typedef struct listener {
  anystream u;                  /* first: a pointer to it is one to l */
  anystream spare;
  int handles;                  /* of the two, not yet closed */
  int rejecting;                /* the spare is closing */
  int waiting;                  /* a connection waits for the spare */
} listener;

typedef struct server {
  listener *tcp;                /* freed in its close callback */
  int is_pipe;
  luaio_host *host;
  int ref;                      /* registry ref: alive while listening or
                                   while connections run */
  int closed, nconns;
  luaio_waitlist idle;          /* close(): waiting for connections */
} server;

typedef struct conn_watch {
  luaio_waiter w;
  server *srv;
  luaio_task *task;
} conn_watch;

static void listener_unref (listener *l) {
  if (--l->handles == 0) free(l);
}

static void server_free_cb (uv_handle_t *h) {
  listener_unref(LUAIO_CONTAINER(h, listener, u));
}

static void reject (listener *l);

static void spare_closed_cb (uv_handle_t *h) {
  listener *l = LUAIO_CONTAINER(h, listener, spare);
  l->rejecting = 0;
  if (l->waiting && !uv_is_closing(&l->u.h)) {
    l->waiting = 0;
    reject(l);
  }
  listener_unref(l);
}

/* A connection came that no stream could be made for (out of memory):
 * accept it into the spare handle and close it, so the client sees the
 * close and libuv goes on accepting (it stops until each connection is
 * accepted). One at a time: the next waits for the spare's close. */
static void reject (listener *l) {
  if (l->rejecting) { l->waiting = 1; return; }
  if (l->u.h.type == UV_NAMED_PIPE)
    uv_pipe_init(l->u.h.loop, &l->spare.pipe, 0);
  else uv_tcp_init(l->u.h.loop, &l->spare.tcp);
  l->rejecting = 1;
  l->handles++;
  uv_accept(&l->u.s, &l->spare.s);
  uv_close(&l->spare.h, spare_closed_cb);
}

static void server_release (lua_State *L, server *srv) {
  if (srv->closed && srv->nconns == 0 && srv->ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, srv->ref);
    srv->ref = LUA_NOREF;
  }
}

/* A connection's task ended: report its error, drop it from the list of
 * connections and close its stream (even if the task failed, was
 * cancelled or never started). */
static void conn_done (luaio_waiter *w, int status) {
  conn_watch *cw = LUAIO_CONTAINER(w, conn_watch, w);
  server *srv = cw->srv;
  lua_State *L = luaio_state(srv->host);
  (void)status;
  luaio__task_report_error(cw->task, "error in a connection handler");
  luaL_checkstack(L, 6, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->ref);     /* srv_ud */
  lua_getiuservalue(L, -1, 2);                     /* srv_ud conns */
  luaio__push_task(L, cw->task);                   /* srv_ud conns task */
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);                               /* ... task cw */
  lua_getiuservalue(L, -1, 1);                     /* ... task cw st */
  luaio__stream_close_at(L, -1);
  lua_pop(L, 2);
  lua_pushnil(L);
  lua_rawset(L, -3);                               /* conns[task] = nil */
  lua_pop(L, 2);
  if (--srv->nconns == 0) luaio_waitlist_wake_all(&srv->idle, 0);
  server_release(L, srv);
}

/* After the handler returned: wait until what it queued has gone out, so
 * the close in conn_done drops nothing. Quietly: a write error (the peer
 * went away) is no handler error. Not when another task is blocked
 * writing or closing (the peer may never read). Stack: handler stream. */
static int conn_flush_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_stream *s = luaio__stream_get(L, 2);
  (void)ctx;
  if (status == UV_ECANCELED)                      /* the task's cancel */
    return luaio_raise_uv(L, status, "net.serve", NULL, NULL);
  lua_settop(L, 2);
  if (s == NULL || s->closed || s->closing || s->queued == 0 ||
      s->write_err || s->writers.head != NULL)
    return 0;
  luaio_check_wait(L, "net.serve");
  return luaio_waitlist_wait(L, &s->writers, conn_flush_k, 0);
}

/* The body of a connection's task: handler(stream), then the flush; the
 * stream is closed by conn_done however the task ends. */
static int conn_main (lua_State *L) {
  lua_settop(L, 2);                                /* handler stream */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 0, 0, conn_flush_k);
  return conn_flush_k(L, LUA_OK, 0);
}

/* The listener's data is its server, which holds the listener by
 * pointer (not as a member), so LUAIO_CONTAINER cannot find it. */
static void on_connection (uv_stream_t *listener, int status) {
  server *srv = (server *)listener->data;
  lua_State *L = luaio_state(srv->host);
  luaio_stream *s;
  luaio_task *t;
  conn_watch *cw;
  if (status < 0 || srv->closed) return;
  s = luaio__stream_new(srv->host, srv->is_pipe ? UV_NAMED_PIPE : UV_TCP);
  if (s == NULL) { reject(srv->tcp); return; }
  if (uv_accept(listener, &s->u.s) != 0) { luaio__stream_close(s); return; }
  luaL_checkstack(L, 8, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->ref);     /* srv_ud */
  luaio__stream_push(L, s);                               /* srv_ud st */
  lua_pushcfunction(L, conn_main);
  lua_getiuservalue(L, -3, 1);
  lua_pushvalue(L, -3);                  /* srv_ud st main handler st */
  t = luaio__spawn(L, 2, "net.serve");             /* srv_ud st task */
  lua_getiuservalue(L, -3, 2);                     /* srv_ud st task conns */
  lua_pushvalue(L, -2);
  cw = lua_newuserdatauv(L, sizeof *cw, 1);        /* ... conns task cw */
  cw->srv = srv;
  cw->task = t;
  lua_pushvalue(L, -5);
  lua_setiuservalue(L, -2, 1);                     /* cw keeps st */
  luaio__watch(luaio__task_awaiters(t), &cw->w, conn_done, cw);
  lua_rawset(L, -3);                               /* conns[task] = cw */
  lua_pop(L, 4);
  srv->nconns++;
}

static server *check_server (lua_State *L) {
  return (server *)luaL_checkudata(L, 1, "luaio.Server");
}

static int close_wait_k (lua_State *L, int status, lua_KContext ctx) {
  server *srv = check_server(L);
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "server:close", NULL,
                                         NULL);
  if (srv->nconns > 0)
    return luaio_waitlist_wait(L, &srv->idle, close_wait_k, 0);
  server_release(L, srv);
  return 0;
}

static void server_stop (server *srv) {
  if (srv->closed) return;
  srv->closed = 1;
  uv_close(&srv->tcp->u.h, server_free_cb);
}

/* srv:close([{cancel = true | wait = true}]): stop accepting; with
 * cancel, cancel the open connections; with cancel or wait, wait until
 * they are done. */
static int server_close (lua_State *L) {
  server *srv = check_server(L);
  int cancel = 0, wait = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "cancel");
    cancel = lua_toboolean(L, -1);
    lua_getfield(L, 2, "wait");
    wait = cancel || lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  server_stop(srv);
  if (cancel) {
    lua_getiuservalue(L, 1, 2);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      luaio__cancel(luaio__check_task(L, -2), LUAIO_CANCEL_TASK, 0, L);
      lua_pop(L, 1);
    }
    lua_settop(L, 1);
  }
  if (wait && srv->nconns > 0) {
    luaio_check_wait(L, "server:close");
    return luaio_waitlist_wait(L, &srv->idle, close_wait_k, 0);
  }
  server_release(L, srv);
  return 0;
}

static int server_gc (lua_State *L) {
  server_stop(check_server(L));
  return 0;
}

static int server_index (lua_State *L) {
  server *srv = check_server(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "port") == 0 || strcmp(k, "address") == 0) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (srv->closed || srv->is_pipe) return 0;
    uv_tcp_getsockname(&srv->tcp->u.tcp, (struct sockaddr *)&ss, &len);
    luaio__push_addr(L, (struct sockaddr *)&ss);
    if (k[0] == 'p') return 1;
    lua_pop(L, 1);
    return 1;
  }
  if (strcmp(k, "close") == 0) { lua_pushcfunction(L, server_close); return 1; }
  if (strcmp(k, "connections") == 0) {
    lua_pushinteger(L, srv->nconns);
    return 1;
  }
  return 0;
}

static lua_Integer opt_backlog (lua_State *L, int idx, const char *fname) {
  if (!lua_istable(L, idx)) return 511;
  return luaio__optfield_integer(L, idx, "backlog", fname, 511);
}

/* Push a Server, closed until it listens, that will run handler (at
 * hidx) per connection, and take its registry ref: every Lua allocation
 * of a new server is done before there is a listener to leak. [-0, +1] */
static server *server_new (lua_State *L, int hidx, int is_pipe) {
  server *srv = lua_newuserdatauv(L, sizeof *srv, 2);
  memset(srv, 0, sizeof *srv);
  srv->closed = 1;
  srv->ref = LUA_NOREF;
  srv->is_pipe = is_pipe;
  srv->host = luaio__host(L);
  luaL_setmetatable(L, "luaio.Server");
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, -2, 1);                     /* the handler */
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2);                     /* live connections */
  lua_pushvalue(L, -1);
  srv->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return srv;
}

/* A listener (its handle inited by the caller, by l->u) for srv; NULL
 * out of memory. */
static listener *listener_new (void) {
  listener *l = malloc(sizeof *l);
  if (l == NULL) return NULL;
  memset(l, 0, sizeof *l);
  l->handles = 1;
  return l;
}

/* Listen on the bound l (rc: the bind's result) for srv, on top of the
 * stack; `where` names the address in errors. Raises nothing once
 * listening. [-0, +0] */
static int server_start (lua_State *L, server *srv, listener *l,
                         lua_Integer backlog, const char *where, int rc) {
  l->u.h.data = srv;
  if (rc == 0) rc = uv_listen(&l->u.s, (int)backlog, on_connection);
  if (rc < 0) {
    uv_close(&l->u.h, server_free_cb);
    server_release(L, srv);                        /* still closed */
    return luaio_raise_uv(L, rc, "listen", "address", where);
  }
  srv->tcp = l;
  srv->closed = 0;
  return 1;
}

/* net.serve(host, port, handler [, {backlog=}]) -> server. host must be
 * an IP address ("127.0.0.1", "::1", "0.0.0.0") or "localhost"; port 0
 * picks a free one (srv.port). */
static int net_serve (lua_State *L) {
  const char *host = luaio__checkcstring(L, 1, "net.serve", "host");
  lua_Integer port = luaio__checkinteger(L, 2, "net.serve"), backlog;
  struct sockaddr_storage ss;
  const char *where;
  server *srv;
  listener *l;
  luaio__checktype(L, 3, "net.serve", LUA_TFUNCTION);
  luaio__net_ip_addr(L, 1, 2, &ss, "net.serve",
                     "IP address or 'localhost' expected");
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  backlog = opt_backlog(L, 4, "net.serve");
  where = lua_pushfstring(L, "%s:%d", host, (int)port);
  srv = server_new(L, 3, 0);
  if ((l = listener_new()) == NULL) {
    server_release(L, srv);
    return luaL_error(L, "net.serve: out of memory");
  }
  uv_tcp_init(luaio_loop(srv->host), &l->u.tcp);
  return server_start(L, srv, l, backlog, where,
                      uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0));
}

/* net.serve_unix(path, handler [, {backlog=}]) -> server on a Unix
 * socket (an existing socket file is an EADDRINUSE error). */
static int net_serve_unix (lua_State *L) {
  const char *path = luaio__checkcstring(L, 1, "net.serve_unix", "path");
  lua_Integer backlog;
  server *srv;
  listener *l;
  luaio__checktype(L, 2, "net.serve_unix", LUA_TFUNCTION);
  path = luaio__perm_arg(L, 1, LUAIO_PERM_WRITE);
  backlog = opt_backlog(L, 3, "net.serve_unix");
  srv = server_new(L, 2, 1);
  if ((l = listener_new()) == NULL) {
    server_release(L, srv);
    return luaL_error(L, "net.serve_unix: out of memory");
  }
  uv_pipe_init(luaio_loop(srv->host), &l->u.pipe, 0);
  return server_start(L, srv, l, backlog, path,
                      uv_pipe_bind(&l->u.pipe, path));
}

static const luaL_Reg server_funcs[] = {
  {"serve", net_serve}, {"serve_unix", net_serve_unix}, {NULL, NULL}
};

void luaio__net_server_open (lua_State *L) {
  static const luaL_Reg server_meta[] = {
    {"__index", server_index}, {NULL, NULL}
  };
  luaio__class(L, "luaio.Server", NULL, server_gc, server_meta);
  luaL_setfuncs(L, server_funcs, 0);
}
