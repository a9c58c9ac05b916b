/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * testing.c: what the test glue (lua/test.lua) needs to see inside the
 * host, as the internal table `aio._test`: a watchdog that notices a
 * deadlocked test, and counts of the resources a test may leak (libuv
 * handles, armed deadlines, file descriptors) and the stack of a task.
 * Nothing here changes how scripts run; only `luaio test` uses it.
 */
#include "private.h"
#include <dirent.h>
#include <unistd.h>

/* ---- the watchdog ------------------------------------------------------ */

enum { WATCH_DONE = 0, WATCH_STALLED = 1, WATCH_EXPIRED = 2 };

typedef struct watch_op {
  luaio_waiter w;          /* the watching task's wait */
  luaio_waiter on_done;    /* notified when the watched task finishes */
  uv_timer_t timer;        /* the time slice; referenced, so the loop
                              stays alive while the watch lasts */
  uv_prepare_t prepare;    /* looks for a stall before each poll */
  luaio_host *h;
  int finished;
  int open_handles;        /* freed when both handles have closed */
} watch_op;

static void watch_closed (uv_handle_t *handle) {
  watch_op *op = (watch_op *)handle->data;
  if (--op->open_handles == 0) free(op);
}

/* End the watch once, whatever ended it; the result travels as the wait
 * status, so the continuation never touches op (it may be freed by
 * then). */
static void watch_finish (watch_op *op, int result) {
  if (op->finished) return;
  op->finished = 1;
  luaio__unwatch(&op->on_done);
  uv_close((uv_handle_t *)&op->timer, watch_closed);
  uv_close((uv_handle_t *)&op->prepare, watch_closed);
  luaio_waiter_done(&op->w, result);
}

static void watch_task_done (luaio_waiter *w, int status) {
  (void)status;
  watch_finish((watch_op *)w->data, WATCH_DONE);
}

static void watch_expired (uv_timer_t *timer) {
  watch_finish(LUAIO_CONTAINER(timer, watch_op, timer), WATCH_EXPIRED);
}

/* Checked before each poll: if nothing but our own timer keeps the loop
 * alive and no task is ready, no task can ever be woken again (the same
 * rule luaio_run_until uses to report a deadlock). */
static int stalled (luaio_host *h, uv_timer_t *own) {
  int alive;
  uv_unref((uv_handle_t *)own);
  alive = uv_loop_alive(h->loop);
  uv_ref((uv_handle_t *)own);
  return !alive && h->ready.head == NULL && h->next_turn.head == NULL;
}

static void watch_prepare (uv_prepare_t *prepare) {
  watch_op *op = LUAIO_CONTAINER(prepare, watch_op, prepare);
  if (stalled(op->h, &op->timer)) watch_finish(op, WATCH_STALLED);
}

static void watch_abort (luaio_waiter *w) {
  watch_finish((watch_op *)w->data, UV_ECANCELED);
}

static const char *const watch_results[] = {"done", "deadlock", "timeout"};

static int watch_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status < 0) return luaio_raise_uv(L, status, "watch", NULL, NULL);
  lua_pushstring(L, watch_results[status]);
  return 1;
}

/* _test.watch(task, seconds) -> "done" | "deadlock" | "timeout": waits
 * until the task finishes, the loop stalls (nothing left could wake any
 * task), or the seconds pass. */
static int test_watch (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  lua_Integer ms = luaio_check_seconds(L, 2, "_test.watch");
  luaio_host *h = luaio__host(L);
  watch_op *op;
  luaio_check_wait(L, "_test.watch");
  if (t->state == T_DONE) {
    lua_pushstring(L, watch_results[WATCH_DONE]);
    return 1;
  }
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "_test.watch: out of memory");
  op->h = h;
  luaio_waiter_init(&op->w, watch_abort);
  op->w.data = op;
  uv_timer_init(h->loop, &op->timer);
  uv_prepare_init(h->loop, &op->prepare);
  op->timer.data = op->prepare.data = op;
  op->open_handles = 2;
  uv_unref((uv_handle_t *)&op->prepare);
  uv_timer_start(&op->timer, watch_expired, (uint64_t)ms, 0);
  uv_prepare_start(&op->prepare, watch_prepare);
  luaio__watch(&t->awaiters, &op->on_done, watch_task_done, op);
  return luaio_wait(L, &op->w, watch_k, 0);
}

/* ---- the guard ----------------------------------------------------------
 * The same watch over the calling task itself, for the blocks that must
 * run in it (busted's hooks): on a stall or at the time limit the task
 * is cancelled with an error saying why; the runner then clears that
 * cancellation (_test.uncancel) and goes on with the next block. */

typedef struct guard_op {
  uv_timer_t timer;        /* the time limit; referenced, as above */
  uv_prepare_t prepare;    /* looks for a stall before each poll */
  luaio_host *h;
  luaio_task *task;        /* anchored by the guard's uservalue */
  int fired;               /* 0, WATCH_STALLED or WATCH_EXPIRED */
  int open_handles;
} guard_op;

typedef struct guard_ud {
  guard_op *op;            /* NULL once stopped */
} guard_ud;

static void guard_closed (uv_handle_t *handle) {
  guard_op *op = (guard_op *)handle->data;
  if (--op->open_handles == 0) free(op);
}

/* Cancel the guarded task with an error naming why and its stack (the
 * hook's frames: the runner's, from busted's xpcall down, are left
 * out). */
static void guard_fire (guard_op *op, int why) {
  lua_State *L = op->h->L;
  luaio_task *t = op->task;
  const char *stack, *cut;
  if (op->fired) return;
  op->fired = why;
  uv_timer_stop(&op->timer);
  uv_prepare_stop(&op->prepare);
  if (t->state == T_DONE || t->co == NULL) return;
  luaL_checkstack(L, 4, NULL);
  luaL_traceback(L, t->co, why == WATCH_STALLED
    ? "deadlock: it waits and nothing left could wake it; it waits in:"
    : "timeout: the time limit passed; it waits in:", 0);
  stack = lua_tostring(L, -1);
  cut = strstr(stack, "\n\t[C]: in function 'xpcall'");
  lua_pushlstring(L, stack, cut ? (size_t)(cut - stack) : strlen(stack));
  luaio_push_error(L, "cancelled", NULL, lua_tostring(L, -1));
  luaio__cancel(t, LUAIO_CANCEL_TASK, lua_gettop(L), L);
  lua_pop(L, 3);
}

static void guard_expired (uv_timer_t *timer) {
  guard_fire(LUAIO_CONTAINER(timer, guard_op, timer), WATCH_EXPIRED);
}

static void guard_prepare (uv_prepare_t *prepare) {
  guard_op *op = LUAIO_CONTAINER(prepare, guard_op, prepare);
  if (stalled(op->h, &op->timer)) guard_fire(op, WATCH_STALLED);
}

/* guard:stop() -> nil, "deadlock" or "timeout" (what fired); also its
 * __gc and __close. */
static int guard_stop (lua_State *L) {
  guard_ud *u = (guard_ud *)luaL_checkudata(L, 1, "luaio.TestGuard");
  guard_op *op = u->op;
  if (op == NULL) return 0;
  u->op = NULL;
  if (op->fired) lua_pushstring(L, watch_results[op->fired]);
  else lua_pushnil(L);
  uv_close((uv_handle_t *)&op->timer, guard_closed);
  uv_close((uv_handle_t *)&op->prepare, guard_closed);
  return 1;
}

/* guard:reset(seconds): the time limit counts from now, this long. */
static int guard_reset (lua_State *L) {
  guard_ud *u = (guard_ud *)luaL_checkudata(L, 1, "luaio.TestGuard");
  lua_Integer ms = luaio_check_seconds(L, 2, "guard:reset");
  if (u->op && !u->op->fired)
    uv_timer_start(&u->op->timer, guard_expired, (uint64_t)ms, 0);
  return 0;
}

static const luaL_Reg guard_methods[] = {
  {"stop", guard_stop}, {"reset", guard_reset}, {NULL, NULL}
};

/* _test.guard(seconds) -> a guard over the calling task. */
static int test_guard (lua_State *L) {
  lua_Integer ms = luaio_check_seconds(L, 1, "_test.guard");
  luaio_task *t = luaio__current(L);
  luaio_host *h = luaio__host(L);
  guard_ud *u;
  guard_op *op;
  if (t == NULL) return luaL_error(L, "_test.guard: not inside a task");
  u = lua_newuserdatauv(L, sizeof *u, 1);
  u->op = NULL;
  luaio__class(L, "luaio.TestGuard", guard_methods, guard_stop, NULL);
  luaL_setmetatable(L, "luaio.TestGuard");
  luaio__push_task(L, t);
  lua_setiuservalue(L, -2, 1);
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "_test.guard: out of memory");
  op->h = h;
  op->task = t;
  uv_timer_init(h->loop, &op->timer);
  uv_prepare_init(h->loop, &op->prepare);
  op->timer.data = op->prepare.data = op;
  op->open_handles = 2;
  uv_unref((uv_handle_t *)&op->prepare);
  uv_timer_start(&op->timer, guard_expired, (uint64_t)ms, 0);
  uv_prepare_start(&op->prepare, guard_prepare);
  u->op = op;
  return 1;
}

/* _test.uncancel() -> whether the calling task had a pending
 * cancellation (a guard's), now cleared. */
static int test_uncancel (lua_State *L) {
  luaio_task *t = luaio__current(L);
  lua_pushboolean(L, t && luaio__uncancel(L, t, LUAIO_CANCEL_TASK));
  return 1;
}

/* ---- resource counts --------------------------------------------------- */

typedef struct handle_count {
  lua_State *L;
  luaio_host *h;
  int total;
} handle_count;

/* The scheduler's own handles come and go with its work, not a test's. */
static int host_handle (luaio_host *h, uv_handle_t *handle) {
  return handle == (uv_handle_t *)&h->idle
      || handle == (uv_handle_t *)&h->check
      || handle == (uv_handle_t *)&h->timers.timer;
}

static void count_handle (uv_handle_t *handle, void *arg) {
  handle_count *c = (handle_count *)arg;
  const char *name;
  if (!uv_is_active(handle) || uv_is_closing(handle)) return;
  if (host_handle(c->h, handle)) return;
  name = uv_handle_type_name(uv_handle_get_type(handle));
  if (name == NULL) name = "unknown";
  lua_getfield(c->L, -1, name);
  lua_pushinteger(c->L, lua_tointeger(c->L, -1) + 1);
  lua_setfield(c->L, -3, name);
  lua_pop(c->L, 1);
  c->total++;
}

/* _test.handles() -> total, {type name = count}: the active libuv
 * handles of the host's loop, but for the scheduler's own. */
static int test_handles (lua_State *L) {
  handle_count c;
  c.L = L;
  c.h = luaio__host(L);
  c.total = 0;
  lua_newtable(L);
  uv_walk(c.h->loop, count_handle, &c);
  lua_pushinteger(L, c.total);
  lua_insert(L, -2);
  return 2;
}

/* _test.deadlines() -> how many deadlines (sleeps, timeouts) are armed. */
static int test_deadlines (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)luaio__host(L)->timers.n);
  return 1;
}

/* _test.fds() -> {fd = what it points to}: the open file descriptors
 * of the process (Linux /proc), the listing's own excepted. */
static int test_fds (lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  char path[64], target[512];
  lua_newtable(L);
  if (d == NULL) return 1;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    ssize_t n;
    if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    lua_pushstring(L, target);
    lua_rawseti(L, -2, fd);
  }
  closedir(d);
  return 1;
}

/* _test.traceback(task [, msg]) -> the stack of a live task, or nil. */
static int test_traceback (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  if (t->co == NULL) return 0;
  luaL_traceback(L, t->co, luaL_optstring(L, 2, NULL), 0);
  return 1;
}

/* _test.origin(task) -> "file:line" where the task's function is
 * defined (its outermost frame, or the function of a task not yet
 * started), or nil for a C function or a finished task. */
static int test_origin (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  lua_State *co = t->co;
  lua_Debug ar;
  int level = 0;
  if (co == NULL) return 0;
  if (lua_getstack(co, 0, &ar)) {
    while (lua_getstack(co, level + 1, &ar)) level++;
    if (level > 0) level--;          /* above the host's task body */
    lua_getstack(co, level, &ar);
    lua_getinfo(co, "S", &ar);
  }
  else {
    /* Not started: its stack is the task body, fn, then the args. */
    if (t->state != T_NEW || lua_gettop(co) < t->u.n) return 0;
    lua_pushvalue(co, -t->u.n);
    lua_getinfo(co, ">S", &ar);
  }
  if (ar.linedefined <= 0) return 0;
  lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  return 1;
}

static const luaL_Reg test_funcs[] = {
  {"watch", test_watch}, {"handles", test_handles},
  {"deadlines", test_deadlines}, {"fds", test_fds},
  {"traceback", test_traceback}, {"origin", test_origin},
  {"guard", test_guard}, {"uncancel", test_uncancel}, {NULL, NULL}
};

void luaio__testing_register (lua_State *L) {
  if (luaio__sandboxed(L)) return;    /* test internals: no script's */
  luaL_newlib(L, test_funcs);
  lua_setfield(L, -2, "_test");
}
