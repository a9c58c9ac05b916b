/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * thread.c: aio.to_thread(fn, ...) and aio.worker_pool{...}, part of the
 * `luaio` module (core.c registers them).
 *
 * fn runs on a libuv worker thread (luaio_work) in a separate Lua state
 * taken from a pool of states, so `require` in a worker is paid once per
 * state. fn is either a Lua function with no upvalues but _ENV (sent as
 * its string.dump, loaded once per state) or "module.name" (required in
 * the worker). Arguments and results are copied (thread_copy.c).
 *
 * A pool admits `size` calls at a time; the others wait for a slot.
 * Cancelling a task whose call waits for a slot or is still queued drops
 * the call; a running call is stopped by a count hook at its next Lua
 * instruction (a long C call finishes first), and the task stays
 * suspended until the worker is done with everything it was given.
 */
#include "../host/osproc.h"
#include <stdatomic.h>

#define POOL_MT "luaio.WorkerPool"
#define WAKE_CLOSED UV_EBADF
#define FN_CACHE_MAX 64           /* loaded functions kept per state */
#define HOOK_COUNT 1000           /* instructions between stop checks */

static const char default_pool_key = 0;   /* registry: the default pool */
static const char dump_cache_key = 0;     /* registry: fn -> its dump */
static const char fn_cache_key = 0;       /* worker registry: dump -> fn */

/* Owned by its userdata and by each call in flight (refs). */
typedef struct wpool {
  lua_State **idle;             /* states ready for a call */
  int nidle, size, busy, refs, closed;
  luaio_waitlist slots;         /* tasks waiting for a slot */
  char *path, *cpath;           /* package.path/cpath of new states */
} wpool;

typedef struct pool_ud {
  wpool *p;
} pool_ud;

typedef struct job {
  wpool *pool;
  lua_State *WL;                /* the worker's state; NULL: make one */
  char *fn;                     /* a dump, or "module.name" */
  size_t fnlen;
  int by_name;
  char *in, *out;               /* encoded arguments, results or error */
  size_t inlen, outlen;
  int nin, nout;                /* how many values in and out */
  int failed;                   /* out is the error text */
  atomic_int stop;              /* set from the loop: end the call */
} job;

/* ---- the pool -------------------------------------------------------- */

static void pool_unref (wpool *p) {
  if (--p->refs > 0) return;
  while (p->nidle > 0) lua_close(p->idle[--p->nidle]);
  free(p->idle);
  free(p->path);
  free(p->cpath);
  free(p);
}

static void pool_close (wpool *p) {
  if (p->closed) return;
  p->closed = 1;
  luaio_waitlist_wake_all(&p->slots, WAKE_CLOSED);
  pool_unref(p);
}

static int pool_gc (lua_State *L) {
  pool_ud *u = (pool_ud *)lua_touserdata(L, 1);
  if (u->p) pool_close(u->p);
  u->p = NULL;
  return 0;
}

static char *dup_field (lua_State *L, int idx, const char *field) {
  const char *s;
  char *d;
  lua_getfield(L, idx, field);
  s = lua_tostring(L, -1);
  d = s ? strdup(s) : NULL;
  lua_pop(L, 1);
  return d;
}

/* Push a new pool userdata of size states, whose new states get path and
 * cpath (NULL: the caller's package.path/cpath). [-0, +1] */
static wpool *pool_new (lua_State *L, int size, const char *path,
                        const char *cpath) {
  pool_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  wpool *p;
  u->p = NULL;
  luaL_setmetatable(L, POOL_MT);
  p = calloc(1, sizeof *p);
  if (p == NULL || (p->idle = calloc(size, sizeof *p->idle)) == NULL) {
    free(p);
    luaL_error(L, "aio.worker_pool: out of memory");
  }
  p->size = size;
  p->refs = 1;
  u->p = p;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    p->path = path ? strdup(path) : dup_field(L, -1, "path");
    p->cpath = cpath ? strdup(cpath) : dup_field(L, -1, "cpath");
  }
  lua_pop(L, 1);
  return p;
}

static int default_size (void) {
  const char *s = getenv("UV_THREADPOOL_SIZE");
  int n = s ? atoi(s) : 0;
  return n > 0 && n <= 1024 ? n : 4;
}

static wpool *default_pool (lua_State *L) {
  wpool *p;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &default_pool_key) == LUA_TNIL) {
    lua_pop(L, 1);
    p = pool_new(L, default_size(), NULL, NULL);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &default_pool_key);
  }
  else p = ((pool_ud *)lua_touserdata(L, -1))->p;
  lua_pop(L, 1);
  return p;
}

/* ---- in the worker thread --------------------------------------------- */

#define job_of(L) (*(job **)lua_getextraspace(L))

static void stop_hook (lua_State *L, lua_Debug *ar) {
  job *j = job_of(L);
  (void)ar;
  if (j && atomic_load(&j->stop))
    luaL_error(L, "cancelled: the task awaiting this call was cancelled");
}

/* os.exit in a worker would end the whole program. */
static int worker_exit (lua_State *L) {
  return luaL_error(L, "os.exit cannot be called in a worker");
}

/* The first searcher: luaio's modules need the loop, which a worker does
 * not have (a copy found on package.cpath would start a second host). */
static int worker_searcher (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "luaio") == 0 || strncmp(name, "luaio.", 6) == 0)
    return luaL_error(L, "module '%s' cannot be used in a worker", name);
  lua_pushliteral(L, "\n\tno luaio module in a worker");
  return 1;
}

/* Set up a new worker state, protected: the libraries, the pool's
 * package paths, no os.exit, no luaio modules. */
static int setup_state (lua_State *L) {
  wpool *p = (wpool *)lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, worker_exit);
  lua_setfield(L, -2, "exit");
  lua_getglobal(L, "package");
  if (p->path) { lua_pushstring(L, p->path); lua_setfield(L, -2, "path"); }
  if (p->cpath) { lua_pushstring(L, p->cpath); lua_setfield(L, -2, "cpath"); }
  lua_getfield(L, -1, "searchers");
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "insert");                  /* ... searchers t ins */
  lua_pushvalue(L, -3);
  lua_pushinteger(L, 1);
  lua_pushcfunction(L, worker_searcher);
  lua_call(L, 3, 0);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &fn_cache_key);
  return 0;
}

static lua_State *worker_state (wpool *p) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  lua_pushcfunction(L, setup_state);
  lua_pushlightuserdata(L, p);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Push the function a job names: "module.name" is required; a dump is
 * loaded once per state and kept (a bounded cache). [-0, +1] */
static void push_fn (lua_State *L, job *j) {
  if (j->by_name) {
    const char *dot = strrchr(j->fn, '.');
    lua_getglobal(L, "require");
    lua_pushlstring(L, j->fn, (size_t)(dot - j->fn));
    lua_call(L, 1, 1);
    lua_getfield(L, -1, dot + 1);
    if (!lua_isfunction(L, -1) && luaL_getmetafield(L, -1, "__call") == 0)
      luaL_error(L, "'%s' is not a function in the worker", j->fn);
    lua_remove(L, -2);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &fn_cache_key);      /* cache */
  lua_pushlstring(L, j->fn, j->fnlen);                   /* cache dump */
  if (lua_rawget(L, -2) == LUA_TFUNCTION) { lua_remove(L, -2); return; }
  lua_pop(L, 1);
  if (luaL_loadbufferx(L, j->fn, j->fnlen, "=(to_thread)", "b") != LUA_OK)
    lua_error(L);
  if (lua_rawlen(L, -2) >= FN_CACHE_MAX) {               /* start again */
    lua_newtable(L);
    lua_replace(L, -3);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &fn_cache_key);
  }
  lua_pushlstring(L, j->fn, j->fnlen);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);                                     /* cache fn */
  lua_remove(L, -2);
}

/* Run the call, protected: fn(args...) with its results encoded into
 * j->out. */
static int run_call (lua_State *L) {
  job *j = (job *)lua_touserdata(L, 1);
  int base, nres, i;
  luaio_copybuf *b;
  lua_settop(L, 0);
  push_fn(L, j);
  base = lua_gettop(L);
  luaL_checkstack(L, j->nin + 5, "too many arguments");
  luaio__copy_decode(L, j->in, j->inlen);
  lua_call(L, lua_gettop(L) - base, LUA_MULTRET);
  nres = lua_gettop(L);
  b = luaio__copybuf_new(L);
  for (i = 1; i <= nres; i++)
    if (!luaio__copy_encode(L, b, i))
      return luaL_error(L, "result #%d: %s", i, lua_tostring(L, -1));
  j->nout = nres;
  j->out = b->p;                  /* taken from the userdata */
  j->outlen = b->len;
  b->p = NULL;
  return 0;
}

/* Message handler: the error's text plus the worker's traceback. */
static int worker_msgh (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)",
                                         luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void job_fail (job *j, const char *msg) {
  j->failed = 1;
  j->outlen = strlen(msg);
  j->out = strdup(msg);
}

static void job_work (void *ud) {
  job *j = (job *)ud;
  lua_State *L = j->WL;
  if (L == NULL && (L = j->WL = worker_state(j->pool)) == NULL) {
    job_fail(j, "cannot create a Lua state for the worker");
    return;
  }
  job_of(L) = j;
  lua_sethook(L, stop_hook, LUA_MASKCOUNT, HOOK_COUNT);
  lua_settop(L, 0);
  lua_pushcfunction(L, worker_msgh);
  lua_pushcfunction(L, run_call);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK)
    job_fail(j, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
  lua_sethook(L, NULL, 0, 0);
  job_of(L) = NULL;
  lua_settop(L, 0);
}

/* ---- back on the loop ------------------------------------------------- */

static void job_stop (void *ud) { atomic_store(&((job *)ud)->stop, 1); }

/* Give the slot and the state back, wake a task waiting for a slot and
 * free the job. */
static void job_free (job *j) {
  wpool *p = j->pool;
  if (j->WL) {
    if (p->closed || p->nidle >= p->size) lua_close(j->WL);
    else p->idle[p->nidle++] = j->WL;
  }
  p->busy--;
  if (!p->closed) luaio_waitlist_wake(&p->slots, 0);
  pool_unref(p);
  free(j->fn);
  free(j->in);
  free(j->out);
  free(j);
}

/* Raise the worker's error: kind "thread", the message with the worker's
 * traceback. */
static int raise_worker_error (lua_State *L, job *j) {
  luaio_push_error(L, "thread", NULL, NULL);
  lua_pushlstring(L, j->out, j->outlen);
  lua_setfield(L, -2, "message");
  lua_pushliteral(L, "aio.to_thread");
  lua_setfield(L, -2, "op");
  job_free(j);
  return luaio_raise(L);
}

static int job_done (lua_State *L, int status, void *ud) {
  job *j = (job *)ud;
  int n;
  if (L == NULL) { job_free(j); return 0; }
  if (status < 0 || atomic_load(&j->stop)) {
    job_free(j);
    return luaio_raise_uv(L, status < 0 ? status : UV_ECANCELED,
                          "aio.to_thread", NULL, NULL);
  }
  if (j->failed) return raise_worker_error(L, j);
  lua_settop(L, 0);
  luaL_checkstack(L, j->nout + 5, "too many results");
  n = luaio__copy_decode(L, j->out, j->outlen);
  job_free(j);
  return n;
}

static int start (lua_State *L, job *j) {
  wpool *p = j->pool;
  p->busy++;
  p->refs++;
  if (p->nidle > 0) j->WL = p->idle[--p->nidle];
  return luaio_work(L, job_work, job_done, job_stop, j);
}

/* ---- making a call ------------------------------------------------------ */

static void job_discard (job *j) {
  free(j->fn);
  free(j->in);
  free(j);
}

/* lua_dump's writer, into a copy buffer (whose userdata sits below the
 * function being dumped). */
static int dump_writer (lua_State *L, const void *p, size_t n, void *ud) {
  luaio_copybuf *b = (luaio_copybuf *)ud;
  (void)L;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    char *q;
    while (cap - b->len < n) cap *= 2;
    if ((q = realloc(b->p, cap)) == NULL) return 1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* Push the dump of the Lua function at arg, refusing upvalues other than
 * _ENV; dumps are cached per function (weak keys). [-0, +1] */
static void push_dump (lua_State *L, int arg, const char *fname) {
  const char *up;
  int i;
  luaio_copybuf *b;
  if (lua_iscfunction(L, arg))
    luaio__argerror(L, arg, fname, "a C function cannot run in a worker "
                    "(pass a Lua function or \"module.name\")");
  for (i = 1; (up = lua_getupvalue(L, arg, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (strcmp(up, "_ENV") != 0 || i != 1)
      luaio__argerror(L, arg, fname, lua_pushfstring(L, "the function has "
        "upvalue '%s': a worker gets a copy of the code only (make it a "
        "local of the function, pass it as an argument, or use "
        "\"module.name\")", up));
  }
  luaio__push_weak_table(L, &dump_cache_key, "k");
  lua_pushvalue(L, arg);                          /* cache fn */
  if (lua_rawget(L, -2) == LUA_TSTRING) { lua_remove(L, -2); return; }
  lua_pop(L, 1);
  b = luaio__copybuf_new(L);                      /* cache buf */
  lua_pushvalue(L, arg);                          /* cache buf fn */
  if (lua_dump(L, dump_writer, b, 0) != 0)
    luaL_error(L, "%s: out of memory", fname);
  lua_pop(L, 1);
  lua_pushlstring(L, b->p, b->len);               /* cache buf dump */
  lua_remove(L, -2);
  lua_pushvalue(L, arg);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);                              /* cache dump */
  lua_remove(L, -2);
}

/* Check "module.name": no NUL, a dot with text on both sides. */
static void check_name (lua_State *L, int arg, const char *fname) {
  size_t n;
  const char *s = lua_tolstring(L, arg, &n);
  const char *dot = strrchr(s, '.');
  if (memchr(s, '\0', n) || dot == NULL || dot == s || dot[1] == '\0')
    luaio__argerror(L, arg, fname, "\"module.name\" expected");
}

/* Copy the text at the top into j's fn, popping it. [-1, +0] */
static int take_fn (lua_State *L, job *j) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  j->fn = malloc(n + 1);
  if (j->fn == NULL) return 0;
  memcpy(j->fn, s, n + 1);
  j->fnlen = n;
  lua_pop(L, 1);
  return 1;
}

/* Build the call of the function at arg with the arguments above it.
 * Raises (naming the argument) before allocating anything it could
 * leak: the encoded arguments live in a userdata until taken. */
static job *job_new (lua_State *L, wpool *p, int arg, const char *fname) {
  int top = lua_gettop(L), i, by_name = lua_type(L, arg) == LUA_TSTRING;
  luaio_copybuf *b;
  job *j;
  if (by_name) { check_name(L, arg, fname); lua_pushvalue(L, arg); }
  else if (lua_type(L, arg) == LUA_TFUNCTION) push_dump(L, arg, fname);
  else luaio__typeerror(L, arg, fname, "function or \"module.name\"");
  b = luaio__copybuf_new(L);                      /* fn buf */
  for (i = arg + 1; i <= top; i++)
    if (!luaio__copy_encode(L, b, i)) luaio__argerror(L, i, fname,
                                                      lua_tostring(L, -1));
  j = calloc(1, sizeof *j);
  if (j == NULL) luaL_error(L, "%s: out of memory", fname);
  j->pool = p;
  j->by_name = by_name;
  j->nin = top - arg;
  j->in = b->p;
  j->inlen = b->len;
  b->p = NULL;
  lua_pop(L, 1);                                  /* fn */
  if (!take_fn(L, j)) {
    job_discard(j);
    luaL_error(L, "%s: out of memory", fname);
  }
  return j;
}

static int slot_k (lua_State *L, int status, lua_KContext ctx) {
  job *j = (job *)ctx;
  lua_pop(L, 1);                                  /* the list waiter */
  if (status == UV_ECANCELED) {
    job_discard(j);
    return luaio_raise_uv(L, status, "aio.to_thread", NULL, NULL);
  }
  if (status == WAKE_CLOSED || j->pool->closed) {
    job_discard(j);
    return luaL_error(L, "aio.to_thread: the worker pool was closed");
  }
  if (j->pool->busy >= j->pool->size)             /* taken meanwhile */
    return luaio_waitlist_wait(L, &j->pool->slots, slot_k, ctx);
  return start(L, j);
}

/* Run the function at arg of L on p; its results are the call's. */
static int call_on (lua_State *L, wpool *p, int arg, const char *fname) {
  job *j;
  luaio__check_unrestricted(L, fname);
  luaio_check_wait(L, fname);
  j = job_new(L, p, arg, fname);
  lua_settop(L, 0);
  if (p->busy < p->size) return start(L, j);
  return luaio_waitlist_wait(L, &p->slots, slot_k, (lua_KContext)j);
}

/* aio.to_thread(fn, ...) -> fn(...)'s results, computed in a worker. */
static int thread_to_thread (lua_State *L) {
  luaL_checkany(L, 1);
  return call_on(L, default_pool(L), 1, "aio.to_thread");
}

static wpool *check_pool (lua_State *L, const char *fname) {
  pool_ud *u = (pool_ud *)luaL_checkudata(L, 1, POOL_MT);
  if (u->p == NULL || u->p->closed)
    luaL_error(L, "%s: the worker pool is closed", fname);
  return u->p;
}

/* pool:run(fn, ...) -> fn(...)'s results, computed in one of its states. */
static int pool_run (lua_State *L) {
  wpool *p = check_pool(L, "pool:run");
  luaL_checkany(L, 2);
  return call_on(L, p, 2, "pool:run");
}

static int pool_close_m (lua_State *L) {
  luaL_checkudata(L, 1, POOL_MT);
  return pool_gc(L);
}

static const char *opt_path (lua_State *L, const char *field) {
  const char *s = NULL;
  size_t n;
  if (lua_getfield(L, 1, field) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to 'aio.worker_pool' (%s: string "
                 "expected, got %s)", field, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    if (memchr(s, '\0', n))
      luaL_error(L, "bad argument #1 to 'aio.worker_pool' (%s contains a "
                 "NUL byte)", field);
  }
  return s;                       /* kept alive on the stack */
}

/* aio.worker_pool{size = n, path = ..., cpath = ...} -> a pool. */
static int thread_worker_pool (lua_State *L) {
  lua_Integer size = default_size();
  const char *path, *cpath;
  luaio__check_unrestricted(L, "aio.worker_pool");
  if (!lua_isnoneornil(L, 1))
    luaio__checktype(L, 1, "aio.worker_pool", LUA_TTABLE);
  else { lua_settop(L, 0); lua_newtable(L); }
  if (lua_getfield(L, 1, "size") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
        lua_tointeger(L, -1) > 1024)
      return luaL_error(L, "bad argument #1 to 'aio.worker_pool' (size: "
                        "integer from 1 to 1024 expected)");
    size = lua_tointeger(L, -1);
  }
  path = opt_path(L, "path");
  cpath = opt_path(L, "cpath");
  pool_new(L, (int)size, path, cpath);
  return 1;
}

static int pool_tostring (lua_State *L) {
  pool_ud *u = (pool_ud *)luaL_checkudata(L, 1, POOL_MT);
  if (u->p == NULL || u->p->closed)
    lua_pushliteral(L, "luaio.WorkerPool (closed)");
  else lua_pushfstring(L, "luaio.WorkerPool (%d workers, %d busy)",
                       u->p->size, u->p->busy);
  return 1;
}

static const luaL_Reg methods[] = {
  {"run", pool_run}, {"close", pool_close_m}, {NULL, NULL}
};
static const luaL_Reg meta[] = {{"__tostring", pool_tostring}, {NULL, NULL}};

/* Add aio.to_thread and aio.worker_pool to the luaio table on top.
 * [-0, +0] */
void luaio__thread_register (lua_State *L) {
  luaio__class(L, POOL_MT, methods, pool_gc, meta);
  lua_pushcfunction(L, thread_to_thread);
  lua_setfield(L, -2, "to_thread");
  lua_pushcfunction(L, thread_worker_pool);
  lua_setfield(L, -2, "worker_pool");
}
