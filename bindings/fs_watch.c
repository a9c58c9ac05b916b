/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_watch.c: fs.watch, changes under a path as a queue of events.
 *
 * A watcher has one uv_fs_event_t per watched folder (one for a plain
 * watch). Recursive watching is done here, not by libuv (which does not
 * on Linux): every event is probed with an lstat; a new folder gets its
 * own handle and is scanned (its subfolders are watched, and what is in
 * it already is reported: it may have been made before the watch), and
 * a folder that is gone is dropped with everything under it.
 *
 * Memory: the watcher is freed when it is closed and its last handle or
 * request (counted in refs) has finished; each handle is freed in its
 * close callback, each request in its callback. Callbacks touch no Lua.
 */
#include "fs.h"

/* Events queue in C until a task takes them; past WATCH_MAX queued
 * events the oldest are dropped and counted. */
#define WATCH_MAX 1024

typedef struct wevent {
  struct wevent *next;
  int events;
  char name[];
} wevent;

typedef struct watcher watcher;

typedef struct wdir {           /* one watched folder */
  uv_fs_event_t h;
  watcher *w;
  struct wdir *next;
  char rel[];                   /* under the root: "" for it, "a/b" */
} wdir;

struct watcher {
  uv_loop_t *loop;
  wdir *dirs;
  char *root;
  int recursive, closed;
  int refs;                     /* open handles and requests */
  int scans;                    /* scans in flight: ready at 0 */
  wevent *head, *tail;
  int n, dropped;
  luaio_waitlist waiters;       /* next() */
  luaio_waitlist ready;         /* fs.watch: the first scan is done */
};

typedef struct watch_ud { watcher *w; } watch_ud;

/* A probe (lstat) or scan (scandir) of root/rel. */
typedef struct wreq {
  uv_fs_t req;
  watcher *w;
  int events;                   /* probe: the event to report, or 0 */
  int report;                   /* scan: report what is found */
  char rel[];
} wreq;

static void add_dir (watcher *w, const char *rel, int report);
static void start_probe (watcher *w, const char *rel, int events);

/* ---- memory ------------------------------------------------------------- */

static void watcher_unref (watcher *w) {
  if (--w->refs > 0 || !w->closed) return;
  while (w->head) {
    wevent *e = w->head;
    w->head = e->next;
    free(e);
  }
  free(w->root);
  free(w);
}

static void wdir_free_cb (uv_handle_t *h) {
  wdir *d = LUAIO_CONTAINER(h, wdir, h);
  watcher *w = d->w;
  free(d);
  watcher_unref(w);
}

/* Stop watching d and unlink it (its memory goes in the close cb). */
static void wdir_close (wdir *d) {
  wdir **p = &d->w->dirs;
  while (*p && *p != d) p = &(*p)->next;
  if (*p) *p = d->next;
  uv_close((uv_handle_t *)&d->h, wdir_free_cb);
}

/* "root/rel" or "a/b" + "/" + "c" (a or b may be empty); malloc'd. */
static char *join (const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = malloc(na + nb + 2);
  if (s == NULL) return NULL;
  memcpy(s, a, na);
  if (na > 0 && nb > 0 && a[na - 1] != '/') s[na++] = '/';
  memcpy(s + na, b, nb + 1);
  return s;
}

static wdir *find_dir (watcher *w, const char *rel) {
  wdir *d;
  for (d = w->dirs; d; d = d->next)
    if (strcmp(d->rel, rel) == 0) return d;
  return NULL;
}

/* Drop the folder rel and every folder under it (it is gone). */
static void drop_dirs (watcher *w, const char *rel) {
  size_t n = strlen(rel);
  wdir *d = w->dirs, *next;
  for (; d; d = next) {
    next = d->next;
    if (strncmp(d->rel, rel, n) == 0 && (d->rel[n] == '\0' ||
                                         d->rel[n] == '/'))
      wdir_close(d);
  }
}

/* ---- the queue ---------------------------------------------------------- */

static void queue_event (watcher *w, const char *name, int events) {
  size_t len = strlen(name);
  wevent *e;
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
  memcpy(e->name, name, len + 1);
  if (w->tail) w->tail->next = e; else w->head = e;
  w->tail = e;
  w->n++;
  luaio_waitlist_wake(&w->waiters, 0);
}

/* ---- probes and scans (recursive watchers) ------------------------------ */

static wreq *wreq_new (watcher *w, const char *rel) {
  size_t n = strlen(rel);
  wreq *r = calloc(1, sizeof *r + n + 1);
  if (r == NULL) return NULL;
  memcpy(r->rel, rel, n + 1);
  r->w = w;
  w->refs++;
  return r;
}

/* The request is over: free it (and the watcher, if it was closed and
 * this was its last request). */
static void wreq_end (wreq *r) {
  watcher *w = r->w;
  uv_fs_req_cleanup(&r->req);
  free(r);
  watcher_unref(w);
}

static void scan_done (watcher *w) {
  if (--w->scans == 0) luaio_waitlist_wake_all(&w->ready, 0);
}

/* The folder has been listed: watch its subfolders and (for a folder
 * that is new) report its entries. */
static void scan_cb (uv_fs_t *req) {
  wreq *r = LUAIO_CONTAINER(req, wreq, req);
  uv_dirent_t d;
  char *rel;
  if (req->result >= 0 && !r->w->closed)
    while (uv_fs_scandir_next(req, &d) != UV_EOF) {
      if ((rel = join(r->rel, d.name)) == NULL) { r->w->dropped++; break; }
      if (r->report) queue_event(r->w, rel, UV_RENAME);
      if (d.type == UV_DIRENT_DIR) add_dir(r->w, rel, r->report);
      else if (d.type == UV_DIRENT_UNKNOWN) start_probe(r->w, rel, 0);
      free(rel);
    }
  if (!r->w->closed) scan_done(r->w);
  wreq_end(r);
}

static void start_scan (watcher *w, const char *rel, int report) {
  char *path = join(w->root, rel);
  wreq *r = path ? wreq_new(w, rel) : NULL;
  if (r == NULL) { free(path); w->dropped++; return; }
  r->report = report;
  w->scans++;
  if (uv_fs_scandir(w->loop, &r->req, path, 0, scan_cb) < 0) {
    scan_done(w);
    wreq_end(r);
  }
  free(path);
}

/* What an event's path turned out to be: a new folder is watched (and
 * scanned, reporting its entries), one that is gone is dropped. A
 * folder's own removal comes to its handle as an event named like the
 * folder: it was held back (events) and is reported only if such an
 * entry does exist. */
static void probe_cb (uv_fs_t *req) {
  wreq *r = LUAIO_CONTAINER(req, wreq, req);
  watcher *w = r->w;
  int isdir = req->result >= 0 && S_ISDIR(req->statbuf.st_mode);
  if (!w->closed) {
    if (r->events && req->result >= 0) queue_event(w, r->rel, r->events);
    if (isdir) add_dir(w, r->rel, 1);
    else if (!isdir) drop_dirs(w, r->rel);
  }
  wreq_end(r);
}

/* Probe root/rel; events: report them after the probe, if it exists. */
static void start_probe (watcher *w, const char *rel, int events) {
  char *path = join(w->root, rel);
  wreq *r = path ? wreq_new(w, rel) : NULL;
  if (r == NULL) { free(path); w->dropped++; return; }
  r->events = events;
  if (uv_fs_lstat(w->loop, &r->req, path, probe_cb) < 0) wreq_end(r);
  free(path);
}

/* The last part of a relative path. */
static const char *base_name (const char *rel) {
  const char *slash = strrchr(rel, '/');
  return slash ? slash + 1 : rel;
}

static void watch_cb (uv_fs_event_t *h, const char *name, int events,
                      int status) {
  wdir *d = LUAIO_CONTAINER(h, wdir, h);
  watcher *w = d->w;
  char *rel;
  if (status < 0 || w->closed) return;
  if (!w->recursive || name == NULL) {
    queue_event(w, name ? name : "", events);
    return;
  }
  if ((rel = join(d->rel, name)) == NULL) { w->dropped++; return; }
  if (d->rel[0] != '\0' && strcmp(name, base_name(d->rel)) == 0)
    start_probe(w, rel, events);           /* maybe the folder itself */
  else {
    queue_event(w, rel, events);
    start_probe(w, rel, 0);
  }
  free(rel);
}

/* Watch root/rel (recursive: and scan it; report: report its entries).
 * Returns 0 or a uv error (the folder is then not watched). */
static int watch_dir (watcher *w, const char *rel, int report) {
  size_t n = strlen(rel);
  char *path = join(w->root, rel);
  wdir *d = path ? calloc(1, sizeof *d + n + 1) : NULL;
  int rc;
  if (d == NULL) { free(path); return UV_ENOMEM; }
  memcpy(d->rel, rel, n + 1);
  d->w = w;
  uv_fs_event_init(w->loop, &d->h);
  w->refs++;
  d->next = w->dirs;
  w->dirs = d;
  if ((rc = uv_fs_event_start(&d->h, watch_cb, path, 0)) < 0) wdir_close(d);
  else if (w->recursive) start_scan(w, rel, report);
  free(path);
  return rc;
}

/* A folder found after the start; one that cannot be watched (gone
 * already, out of memory) is counted as dropped. */
static void add_dir (watcher *w, const char *rel, int report) {
  int rc;
  if (find_dir(w, rel) != NULL) return;  /* seen by a probe and a scan */
  rc = watch_dir(w, rel, report);
  if (rc < 0 && rc != UV_ENOENT && rc != UV_ENOTDIR) w->dropped++;
}

/* ---- the Lua object ----------------------------------------------------- */

static watcher *check_watcher (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  if (u->w == NULL) luaL_error(L, "watcher:next: the watcher is closed");
  return u->w;
}

/* Push the first queued event as {name=, rename=, change=}. [-0, +1] */
static void push_event (lua_State *L, watcher *w) {
  wevent *e = w->head;
  w->head = e->next;
  if (w->head == NULL) w->tail = NULL;
  w->n--;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, e->name);
  lua_setfield(L, -2, "name");
  lua_pushboolean(L, (e->events & UV_RENAME) != 0);
  lua_setfield(L, -2, "rename");
  lua_pushboolean(L, (e->events & UV_CHANGE) != 0);
  lua_setfield(L, -2, "change");
  free(e);
}

static int watch_next_k (lua_State *L, int status, lua_KContext ctx) {
  watch_ud *u = (watch_ud *)lua_touserdata(L, 1);
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "watch", NULL, NULL);
  if (u->w == NULL) { lua_pushnil(L); return 1; }  /* closed: iteration ends */
  if (u->w->head == NULL) {
    luaio_check_wait(L, "watcher:next");
    lua_settop(L, 1);
    return luaio_waitlist_wait(L, &u->w->waiters, watch_next_k, 0);
  }
  push_event(L, u->w);
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

/* w:close() (also <close>, collection): waiting next() calls get nil;
 * a recursive fs.watch still scanning raises "closed". */
static int watch_close (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  watcher *w = u->w;
  if (w == NULL) return 0;
  u->w = NULL;
  w->closed = 1;
  luaio_waitlist_wake_all(&w->waiters, 0);
  luaio_waitlist_wake_all(&w->ready, LUAIO_STREAM_CLOSED);
  while (w->dirs) wdir_close(w->dirs);
  watcher_unref(w);                      /* the userdata's reference */
  return 0;
}

/* fs.watch waits for the first scan of a recursive watcher (at 3). */
static int watch_ready_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUAIO_STREAM_CLOSED)
    return luaio__closed_error(L, "fs.watch", "watcher");
  if (status != 0) return luaio_raise_uv(L, status, "fs.watch", NULL, NULL);
  lua_settop(L, 3);
  return 1;
}

/* fs.watch(path [, {recursive=}]) -> a watcher of changes under path.
 * Recursive: waits until every folder under path is watched. */
static int fs_watch (lua_State *L) {
  const char *p = PATH(1, "fs.watch");
  int recursive = 0, rc;
  watch_ud *u;
  watcher *w;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "recursive");
    recursive = lua_toboolean(L, -1);
  }
  if (recursive) luaio_check_wait(L, "fs.watch");
  lua_settop(L, 2);
  u = lua_newuserdatauv(L, sizeof *u, 0);          /* path opts ud */
  u->w = w = calloc(1, sizeof *w);
  if (w == NULL || (w->root = strdup(p)) == NULL) {
    free(w);
    u->w = NULL;
    return luaL_error(L, "fs.watch: out of memory");
  }
  luaL_setmetatable(L, "luaio.Watcher");
  w->loop = luaio_loop(luaio__host(L));
  w->recursive = recursive;
  w->refs = 1;                           /* the userdata's */
  rc = watch_dir(w, "", 0);
  if (rc < 0) {
    lua_pushcfunction(L, watch_close);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    return luaio_raise_uv(L, rc, "watch", "path", p);
  }
  if (w->scans == 0) return 1;
  return luaio_waitlist_wait(L, &w->ready, watch_ready_k, 0);
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
