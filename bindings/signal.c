/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * signal.c: aio.signal(name) -> a watcher of one signal, part of the
 * `luaio` module (core.c registers it).
 *
 *   local w <close> = aio.signal("SIGHUP")
 *   for sig in w:each() do reload() end
 *
 * Every watcher sees every delivery of its signal (several watchers of
 * one signal all do); deliveries not yet taken are counted, so none is
 * lost between two waits (libuv may coalesce signals that arrive
 * together, as the kernel does). While a watcher of SIGINT or SIGTERM is
 * open the signal is the script's; closing the last one gives the
 * previous meaning back (host/signals.c).
 */
#include "../host/osproc.h"

#define MT "luaio.Signal"
/* Status a close wakes waiters with (a cancellation is UV_ECANCELED). */
#define WAKE_CLOSED UV_EBADF

typedef struct sigwatch {
  uv_signal_t sig;
  luaio_waitlist waiters;
  unsigned pending;             /* deliveries not yet taken by a wait */
  int signum;
  int started, closed;
} sigwatch;

typedef struct sig_ud {
  sigwatch *w;
} sig_ud;

static void sig_free_cb (uv_handle_t *h) { free(h->data); }

static void sig_cb (uv_signal_t *s, int signum) {
  sigwatch *w = (sigwatch *)s->data;
  (void)signum;
  w->pending++;
  luaio_waitlist_wake(&w->waiters, 0);
}

static void sig_close (sigwatch *w) {
  if (w->closed) return;
  w->closed = 1;
  luaio_waitlist_wake_all(&w->waiters, WAKE_CLOSED);
  if (w->started) luaio__signal_close(&w->sig, sig_free_cb);
  else uv_close((uv_handle_t *)&w->sig, sig_free_cb);
}

static int sig_gc (lua_State *L) {
  sig_ud *u = (sig_ud *)lua_touserdata(L, 1);
  if (u->w) sig_close(u->w);
  u->w = NULL;
  return 0;
}

static sigwatch *check_open (lua_State *L, const char *fname) {
  sig_ud *u = (sig_ud *)luaL_checkudata(L, 1, MT);
  if (u->w == NULL || u->w->closed)
    luaL_error(L, "%s: the signal watcher is closed", fname);
  return u->w;
}

/* aio.signal(name) -> watcher. Raises for an unknown or uncatchable
 * name, or when libuv cannot watch it. */
static int signal_new (lua_State *L) {
  size_t len;
  const char *name = luaio__checkstring(L, 1, "aio.signal", &len);
  int signum = strlen(name) == len ? luaio__signum(name, 0) : 0, err;
  luaio_host *h = luaio__host(L);
  sig_ud *u;
  sigwatch *w;
  luaio__check_unrestricted(L, "aio.signal");
  if (signum == 0 || signum == SIGCHLD)
    return luaio__argerror(L, 1, "aio.signal", lua_pushfstring(L,
      "unknown or uncatchable signal '%s' (e.g. \"SIGHUP\")", name));
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = NULL;
  luaL_setmetatable(L, MT);
  w = calloc(1, sizeof *w);
  if (w == NULL) return luaL_error(L, "aio.signal: out of memory");
  uv_signal_init(luaio_loop(h), &w->sig);
  w->sig.data = w;
  w->signum = signum;
  u->w = w;
  err = luaio__signal_start(&w->sig, sig_cb, signum);
  if (err < 0) {
    sig_close(w);
    u->w = NULL;
    return luaio_raise_uv(L, err, "aio.signal", NULL, NULL);
  }
  w->started = 1;
  uv_unref((uv_handle_t *)&w->sig);
  return 1;
}

/* A watcher keeps the loop alive only while a task waits on it: an open
 * watcher nobody waits on must not keep luaio_run from ending. */
static void keep_loop (sigwatch *w) {
  if (w->closed) return;
  if (w->waiters.head) uv_ref((uv_handle_t *)&w->sig);
  else uv_unref((uv_handle_t *)&w->sig);
}

static int wait_on (lua_State *L, sigwatch *w, lua_KFunction k) {
  uv_ref((uv_handle_t *)&w->sig);
  return luaio_waitlist_wait(L, &w->waiters, k, 0);
}

static int wait_k (lua_State *L, int status, lua_KContext ctx);

/* Take one delivery, or wait for the next. [-0, +1] */
static int take (lua_State *L, sigwatch *w) {
  if (w->pending > 0) {
    w->pending--;
    lua_pushstring(L, luaio__signame(w->signum));
    return 1;
  }
  return wait_on(L, w, wait_k);
}

static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  sig_ud *u = (sig_ud *)lua_touserdata(L, 1);
  (void)ctx;
  lua_pop(L, 1);                                  /* the list waiter */
  if (u->w) keep_loop(u->w);
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "signal:wait", NULL, NULL);
  if (status == WAKE_CLOSED || u->w == NULL || u->w->closed) {
    luaio_push_uv_error(L, UV_ECANCELED, "signal:wait", NULL, NULL);
    lua_pushliteral(L, "the signal watcher was closed");
    lua_setfield(L, -2, "message");
    return luaio_raise(L);
  }
  return take(L, u->w);           /* another waiter may have taken it */
}

/* w:wait() -> the signal's name, e.g. "SIGHUP". */
static int sig_wait (lua_State *L) {
  sigwatch *w = check_open(L, "signal:wait");
  lua_settop(L, 1);
  luaio_check_wait(L, "signal:wait");
  return take(L, w);
}

/* The iterator of w:each(): nil once the watcher is closed. */
static int each_k (lua_State *L, int status, lua_KContext ctx) {
  sig_ud *u = (sig_ud *)lua_touserdata(L, 1);
  (void)ctx;
  if (status == UV_ECANCELED) {
    lua_pop(L, 1);
    if (u->w) keep_loop(u->w);
    return luaio_raise_uv(L, status, "signal:each", NULL, NULL);
  }
  lua_pop(L, 1);
  if (u->w) keep_loop(u->w);
  if (status == WAKE_CLOSED || u->w == NULL || u->w->closed) return 0;
  if (u->w->pending == 0)
    return wait_on(L, u->w, each_k);
  u->w->pending--;
  lua_pushstring(L, luaio__signame(u->w->signum));
  return 1;
}

static int each_next (lua_State *L) {
  sig_ud *u = (sig_ud *)luaL_checkudata(L, 1, MT);
  lua_settop(L, 1);
  if (u->w == NULL || u->w->closed) return 0;
  luaio_check_wait(L, "signal:each");
  if (u->w->pending == 0)
    return wait_on(L, u->w, each_k);
  u->w->pending--;
  lua_pushstring(L, luaio__signame(u->w->signum));
  return 1;
}

/* for sig in w:each() do ... end: ends when w is closed. */
static int sig_each (lua_State *L) {
  check_open(L, "signal:each");
  lua_pushcfunction(L, each_next);
  lua_pushvalue(L, 1);
  return 2;
}

static int sig_close_m (lua_State *L) {
  luaL_checkudata(L, 1, MT);
  return sig_gc(L);
}

static int sig_tostring (lua_State *L) {
  sig_ud *u = (sig_ud *)luaL_checkudata(L, 1, MT);
  if (u->w == NULL || u->w->closed) lua_pushliteral(L, "luaio.Signal (closed)");
  else lua_pushfstring(L, "luaio.Signal (%s)", luaio__signame(u->w->signum));
  return 1;
}

static const luaL_Reg methods[] = {
  {"wait", sig_wait}, {"each", sig_each}, {"close", sig_close_m},
  {NULL, NULL}
};
static const luaL_Reg meta[] = {{"__tostring", sig_tostring}, {NULL, NULL}};

/* Add aio.signal to the luaio table on top. [-0, +0] */
void luaio__signal_register (lua_State *L) {
  luaio__class(L, MT, methods, sig_gc, meta);
  lua_pushcfunction(L, signal_new);
  lua_setfield(L, -2, "signal");
}
