/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_watch.c: fs.watch, changes under a path as a queue of events.
 */
#include "fs.h"

/* ---- watching ------------------------------------------------------------ */

/* Events queue in C until a task takes them (the callback touches no
 * Lua); past WATCH_MAX queued events the oldest are dropped and counted. */
#define WATCH_MAX 1024

typedef struct wevent {
  struct wevent *next;
  int events;
  char name[];
} wevent;

typedef struct watcher {
  uv_fs_event_t h;
  wevent *head, *tail;
  int n, dropped, closed;
  luaio_waitlist waiters;
} watcher;

typedef struct watch_ud { watcher *w; } watch_ud;

static void watcher_free_cb (uv_handle_t *h) {
  watcher *w = (watcher *)h->data;
  while (w->head) {
    wevent *e = w->head;
    w->head = e->next;
    free(e);
  }
  free(w);
}

static void watch_cb (uv_fs_event_t *h, const char *name, int events,
                      int status) {
  watcher *w = (watcher *)h->data;
  size_t len = name ? strlen(name) : 0;
  wevent *e;
  if (status < 0) return;
  if (w->n >= WATCH_MAX) {                         /* drop the oldest */
    wevent *old = w->head;
    w->head = old->next;
    if (w->head == NULL) w->tail = NULL;
    free(old);
    w->n--;
    w->dropped++;
  }
  e = malloc(sizeof *e + len + 1);
  if (e == NULL) { w->dropped++; return; }
  e->next = NULL;
  e->events = events;
  memcpy(e->name, name ? name : "", len + 1);
  if (w->tail) w->tail->next = e; else w->head = e;
  w->tail = e;
  w->n++;
  luaio_waitlist_wake(&w->waiters, 0);
}

static watcher *check_watcher (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  if (u->w == NULL) luaL_error(L, "watcher:next: the watcher is closed");
  return u->w;
}

static int watch_next_k (lua_State *L, int status, lua_KContext ctx) {
  watch_ud *u = (watch_ud *)lua_touserdata(L, 1);
  wevent *e;
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "watch", NULL, NULL);
  if (u->w == NULL) { lua_pushnil(L); return 1; }  /* closed: iteration ends */
  if (u->w->head == NULL) {
    luaio_check_wait(L, "watcher:next");
    lua_settop(L, 1);
    return luaio_waitlist_wait(L, &u->w->waiters, watch_next_k, 0);
  }
  e = u->w->head;
  u->w->head = e->next;
  if (u->w->head == NULL) u->w->tail = NULL;
  u->w->n--;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, e->name);
  lua_setfield(L, -2, "name");
  lua_pushboolean(L, (e->events & UV_RENAME) != 0);
  lua_setfield(L, -2, "rename");
  lua_pushboolean(L, (e->events & UV_CHANGE) != 0);
  lua_setfield(L, -2, "change");
  free(e);
  return 1;
}

/* w:next() -> the next event {name=, rename=, change=}, waiting for one;
 * nil once closed. Also the iterator: for ev in w:events() do ... end */
static int watch_next (lua_State *L) {
  check_watcher(L);
  lua_settop(L, 1);
  return watch_next_k(L, 0, 0);
}

static int watch_events (lua_State *L) {
  check_watcher(L);
  lua_pushcfunction(L, watch_next);
  lua_pushvalue(L, 1);
  return 2;
}

static int watch_dropped (lua_State *L) {
  lua_pushinteger(L, check_watcher(L)->dropped);
  return 1;
}

/* w:close() (also <close>, collection): waiting next() calls get nil. */
static int watch_close (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  if (u->w) {
    watcher *w = u->w;
    u->w = NULL;
    luaio_waitlist_wake_all(&w->waiters, 0);
    uv_close((uv_handle_t *)&w->h, watcher_free_cb);
  }
  return 0;
}

/* fs.watch(path [, {recursive=}]) -> a watcher of changes under path. */
static int fs_watch (lua_State *L) {
  const char *p = PATH(1, "fs.watch");
  watch_ud *u;
  int rc, flags = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "recursive");
    if (lua_toboolean(L, -1)) flags |= UV_FS_EVENT_RECURSIVE;
    lua_pop(L, 1);
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = calloc(1, sizeof *u->w);
  if (u->w == NULL) return luaL_error(L, "fs.watch: out of memory");
  luaL_setmetatable(L, "luaio.Watcher");
  uv_fs_event_init(luaio__host(L)->loop, &u->w->h);
  u->w->h.data = u->w;
  rc = uv_fs_event_start(&u->w->h, watch_cb, p, (unsigned)flags);
  if (rc < 0) {
    lua_pushcfunction(L, watch_close);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    return luaio_raise_uv(L, rc, "watch", "path", p);
  }
  return 1;
}

static const luaL_Reg watch_methods[] = {
  {"next", watch_next}, {"events", watch_events},
  {"dropped", watch_dropped}, {"close", watch_close}, {NULL, NULL}
};

void luaio__fs_watch_open (lua_State *L) {
  luaio__class(L, "luaio.Watcher", watch_methods, watch_close, NULL);
  lua_pushcfunction(L, fs_watch);
  lua_setfield(L, -2, "watch");
}
