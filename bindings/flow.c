/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * flow.c: waiting on several tasks and bounding waits in time: gather,
 * wait, as_completed, timeout, wait_for, shield, shielded and task
 * groups. Part of the `luaio` module (luaio__flow_register, called by
 * core.c); also require-able alone as "luaio.flow".
 *
 * A set of tasks is watched with C watchers on each task's awaiters list
 * (no extra coroutine, no polling): the waiting task wakes as soon as its
 * condition holds.
 */
#include "../host/host.h"

/* ---- watching a set of tasks ------------------------------------------ */

/* When the waiting task wakes: every task done, the first done, the
 * first failed; WAKE_NEXT: the takers of an as_completed iterator, one
 * per completion. */
enum { WAKE_ALL, WAKE_FIRST, WAKE_FIRST_ERROR, WAKE_NEXT };

typedef struct watch {
  luaio_waiter w;               /* on the child's awaiters list */
  struct taskset *set;
  luaio_task *task;
  int index;                    /* 1-based input position */
} watch;

typedef struct taskset {
  luaio_waiter w;               /* the waiting task */
  luaio_deadline d;             /* optional overall deadline */
  luaio_host *h;
  int n, ndone, first_failed, mode;
  int waiting, expired, timed;
  int cancelled;                /* settling: the caller was cancelled */
  luaio_waitlist takers;        /* as_completed: the tasks calling it */
  lua_Number seconds;           /* the deadline, for timeout errors */
  int nq, qhead;                /* completion order, in order[] */
  int *order;
  watch *watches;
} taskset;

static int set_ready (taskset *s) {
  switch (s->mode) {
    case WAKE_FIRST: return s->ndone > 0 || s->n == 0;
    case WAKE_FIRST_ERROR: return s->first_failed || s->ndone == s->n;
    default: return s->ndone == s->n;
  }
}

static void set_wake (taskset *s, int status) {
  if (!s->waiting) return;
  s->waiting = 0;
  luaio_waiter_done(&s->w, status);
}

static void set_child_done (taskset *s, watch *c) {
  s->ndone++;
  s->order[s->nq++] = c->index;
  if (luaio_task_status(c->task) != LUAIO_OK && !s->first_failed)
    s->first_failed = c->index;
  if (s->mode == WAKE_NEXT) luaio_waitlist_wake(&s->takers, 0);
  else if (set_ready(s)) set_wake(s, 0);
}

static void set_notify (luaio_waiter *w, int status) {
  watch *c = LUAIO_CONTAINER(w, watch, w);
  (void)status;
  set_child_done(c->set, c);
}

static void set_release (taskset *s);

static void set_due_cb (luaio_deadline *d) {
  taskset *s = LUAIO_CONTAINER(d, taskset, d);
  s->expired = 1;
  s->timed = 0;
  if (s->mode != WAKE_NEXT) { set_wake(s, UV_ETIMEDOUT); return; }
  set_release(s);                 /* what finishes later is not handed out */
  luaio_waitlist_wake_all(&s->takers, UV_ETIMEDOUT);
}

static void set_abort (luaio_waiter *w) {
  set_wake(LUAIO_CONTAINER(w, taskset, w), UV_ECANCELED);
}

/* Stop watching: no callback may reach the set after this. */
static void set_release (taskset *s) {
  int i;
  for (i = 0; i < s->n; i++) luaio__unwatch(&s->watches[i].w);
  if (s->timed) luaio__deadline_stop(s->h, &s->d);
  s->timed = 0;
  s->waiting = 0;
}

static int set_gc (lua_State *L) {
  set_release((taskset *)lua_touserdata(L, 1));
  return 0;
}

static const luaL_Reg set_meta[] = {{"__gc", set_gc}, {NULL, NULL}};

/* Raise an argument error if the list at tasks holds something other
 * than a task, or the calling task (it cannot wait for itself). */
static void check_task_list (lua_State *L, int tasks, const char *fname) {
  luaio_task *self = luaio__current(L);
  int i, n = (int)lua_rawlen(L, tasks);
  for (i = 1; i <= n; i++) {
    luaio_task *t;
    lua_rawgeti(L, tasks, i);
    t = luaio__test_task(L, -1);
    lua_pop(L, 1);
    if (t == NULL)
      luaio__argerror(L, 1, fname, lua_pushfstring(L, "task expected at "
                      "index %d", i));
    if (t == self)
      luaio__argerror(L, 1, fname, "a task cannot wait for itself");
  }
}

/* Push a new set watching the tasks in the list at index tasks (its
 * uservalue keeps them alive); the list was checked. [-0, +1] */
static taskset *set_new (lua_State *L, int tasks, int mode) {
  int i, n = (int)lua_rawlen(L, tasks);
  size_t size = sizeof(taskset) + n * (sizeof(watch) + sizeof(int));
  taskset *s = lua_newuserdatauv(L, size, 1);
  memset(s, 0, size);
  s->watches = (watch *)(s + 1);
  s->order = (int *)(s->watches + n);
  s->h = luaio__host(L);
  s->n = n;
  s->mode = mode;
  luaio_waiter_init(&s->w, set_abort);
  luaio__class(L, "luaio.TaskSet", NULL, NULL, set_meta);
  luaL_setmetatable(L, "luaio.TaskSet");
  lua_pushvalue(L, tasks);
  lua_setiuservalue(L, -2, 1);
  for (i = 0; i < n; i++) {
    watch *c = &s->watches[i];
    lua_rawgeti(L, tasks, i + 1);
    c->task = (luaio_task *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    c->set = s;
    c->index = i + 1;
    if (luaio_task_done(c->task)) {
      s->ndone++;
      s->order[s->nq++] = c->index;
      if (luaio_task_status(c->task) != LUAIO_OK && !s->first_failed)
        s->first_failed = c->index;
    }
    else luaio__watch(luaio__task_awaiters(c->task), &c->w, set_notify, c);
  }
  return s;
}

static int set_start_deadline (taskset *s, lua_Integer ms) {
  if (ms < 0) return 1;
  s->seconds = (lua_Number)ms / 1000;
  s->timed = luaio__deadline_start(s->h, &s->d, (uint64_t)ms, set_due_cb);
  return s->timed;
}

/* Suspend until the set's condition holds (k gets 0, UV_ETIMEDOUT or
 * UV_ECANCELED); if it holds already, k runs at once. */
static int set_wait (lua_State *L, taskset *s, lua_KFunction k) {
  if (s->expired) return k(L, UV_ETIMEDOUT, (lua_KContext)s);
  if (set_ready(s)) return k(L, 0, (lua_KContext)s);
  s->waiting = 1;
  return luaio_wait(L, &s->w, k, (lua_KContext)s);
}

static void cancel_pending (lua_State *L, taskset *s) {
  int i;
  for (i = 0; i < s->n; i++)
    if (!luaio_task_done(s->watches[i].task))
      luaio__cancel(s->watches[i].task, LUAIO_CANCEL_TASK, 0, L);
}

/* Push the task at 1-based position i of the set's list. [-0, +1] */
static void push_member (lua_State *L, int setidx, int i) {
  lua_getiuservalue(L, setidx, 1);
  lua_rawgeti(L, -1, i);
  lua_remove(L, -2);
}

/* ---- gather ------------------------------------------------------------ */

/* The i-th task or function of the arguments from..from+n-1, or of
 * the plain list at list. [-0, +1] */
static void push_arg (lua_State *L, int from, int list, int i) {
  if (list) lua_rawgeti(L, list, i - from + 1); else lua_pushvalue(L, i);
}

/* Check that every argument is a task or a function and none is the
 * calling task, before anything is spawned. */
static void check_tasks (lua_State *L, int from, int top, int list,
                         const char *fname) {
  luaio_task *self = luaio__current(L);
  int i;
  for (i = from; i <= top; i++) {
    luaio_task *t;
    push_arg(L, from, list, i);
    t = luaio__test_task(L, -1);
    if (t == NULL && lua_type(L, -1) != LUA_TFUNCTION)
      luaio__argerror(L, list ? from : i, fname, lua_pushfstring(L,
                      "task or function expected, got %s",
                      luaL_typename(L, -1)));
    if (t != NULL && t == self)
      luaio__argerror(L, list ? from : i, fname,
                      "a task cannot wait for itself");
    lua_pop(L, 1);
  }
}

/* Collect the arguments from..top (or one plain list) into a new list of
 * tasks, spawning functions. [-0, +1] */
static int collect_tasks (lua_State *L, int from, const char *fname) {
  int i, n = 0, top = lua_gettop(L), list = 0;
  if (top == from && lua_type(L, from) == LUA_TTABLE &&
      !lua_getmetatable(L, from)) {
    list = from;
    top = from + (int)lua_rawlen(L, from) - 1;
  }
  check_tasks(L, from, top, list, fname);
  lua_createtable(L, top - from + 1, 0);
  for (i = from; i <= top; i++) {
    push_arg(L, from, list, i);
    if (lua_type(L, -1) == LUA_TFUNCTION) luaio__spawn(L, 0, fname);
    lua_rawseti(L, -2, ++n);
  }
  return lua_gettop(L);
}

/* Push the first failed task's error; the set is at setidx. [-0, +1] */
static void push_first_error (lua_State *L, int setidx, taskset *s) {
  push_member(L, setidx, s->first_failed);
  luaio__push_results(L, -1, s->watches[s->first_failed - 1].task, 0);
  lua_remove(L, -2);
}

/* Settle a gather that is failing (a task failed fast, or we were
 * cancelled): the pending tasks were cancelled; wait until every one has
 * finished, whatever cancels us meanwhile, as asyncio's TaskGroup does,
 * so when gather raises nothing it started still runs. Then raise our
 * cancellation if there was one, else the first error. */
static int gather_settle_k (lua_State *L, int status, lua_KContext ctx) {
  taskset *s = (taskset *)ctx;
  if (status == UV_ECANCELED) {
    s->cancelled = 1;
    cancel_pending(L, s);
  }
  if (s->ndone < s->n) {
    s->mode = WAKE_ALL;
    s->waiting = 1;
    return luaio__wait_settle(L, &s->w, gather_settle_k, ctx);
  }
  set_release(s);
  if (s->cancelled)
    return luaio_raise_uv(L, UV_ECANCELED, "aio.gather", NULL, NULL);
  push_first_error(L, lua_gettop(L), s);
  return lua_error(L);
}

static int gather_k (lua_State *L, int status, lua_KContext ctx) {
  taskset *s = (taskset *)ctx;
  int i, setidx = lua_gettop(L);
  if (status != 0 || (s->mode == WAKE_FIRST_ERROR && s->first_failed)) {
    cancel_pending(L, s);
    return gather_settle_k(L, status, ctx);
  }
  set_release(s);
  luaL_checkstack(L, s->n + 2, s->mode == WAKE_ALL
                  ? "aio.gather_all: too many tasks"
                  : "aio.gather: too many tasks");
  for (i = 1; i <= s->n; i++) {
    luaio_task *t = s->watches[i - 1].task;
    int nres;
    push_member(L, setidx, i);
    nres = luaio__push_results(L, -1, t, 0);   /* the error if it failed */
    if (nres == 0) lua_pushnil(L);
    else if (nres > 1) lua_pop(L, nres - 1);
    lua_remove(L, -2);
  }
  return s->n;
}

static int gather_common (lua_State *L, int mode, const char *fname) {
  taskset *s;
  luaio_check_wait(L, fname);
  s = set_new(L, collect_tasks(L, 1, fname), mode);
  return set_wait(L, s, gather_k);
}

/* aio.gather(...) -> one result per task, in input order; the first
 * error cancels the others and is raised. */
static int flow_gather (lua_State *L) {
  return gather_common(L, WAKE_FIRST_ERROR, "aio.gather");
}

/* aio.gather_all(...) -> each task's result or error, in input order. */
static int flow_gather_all (lua_State *L) {
  return gather_common(L, WAKE_ALL, "aio.gather_all");
}

/* ---- wait -------------------------------------------------------------- */

static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  taskset *s = (taskset *)ctx;
  int i, setidx = lua_gettop(L), nd = 0, np = 0;
  set_release(s);
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "aio.wait", NULL, NULL);
  lua_newtable(L);                                 /* done */
  lua_newtable(L);                                 /* done pending */
  for (i = 1; i <= s->n; i++) {
    push_member(L, setidx, i);
    if (luaio_task_done(s->watches[i - 1].task)) lua_rawseti(L, -3, ++nd);
    else lua_rawseti(L, -2, ++np);
  }
  return 2;
}

static int opt_mode (lua_State *L, int opts, const char *fname) {
  static const char *const names[] = {"all", "first", "first_error", NULL};
  return luaio__optfield_enum(L, opts, "return_when", fname, names,
                              WAKE_ALL);
}

static lua_Integer opt_timeout (lua_State *L, int opts, const char *fname) {
  return luaio__optfield_seconds(L, opts, "timeout", fname);
}

/* aio.wait(tasks [, {return_when=, timeout=}]) -> done, pending */
static int flow_wait (lua_State *L) {
  int mode = WAKE_ALL;
  lua_Integer ms = -1;
  taskset *s;
  luaio__checktype(L, 1, "aio.wait", LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "aio.wait", LUA_TTABLE);
    mode = opt_mode(L, 2, "aio.wait");
    ms = opt_timeout(L, 2, "aio.wait");
  }
  check_task_list(L, 1, "aio.wait");
  luaio_check_wait(L, "aio.wait");
  lua_settop(L, 1);
  s = set_new(L, 1, mode);
  set_start_deadline(s, ms);
  return set_wait(L, s, wait_k);
}

/* ---- as_completed ------------------------------------------------------ */

/* Is t one of the set's unfinished tasks? Its awaiters list tells. */
static int set_watches (taskset *s, luaio_task *t) {
  luaio_waiter *w;
  for (w = luaio__task_awaiters(t)->head; w != NULL; w = w->next)
    if (w->notify == set_notify && LUAIO_CONTAINER(w, watch, w)->set == s)
      return 1;
  return 0;
}

static int as_completed_k (lua_State *L, int status, lua_KContext ctx);

/* One call of the iterator, which several tasks may share: hand out the
 * next finished task; the end once all are handed out (waking every
 * other caller to get it too); or wait among the takers for the next
 * completion. A woken taker is promised nothing: if another caller took
 * the task first, it waits again. */
static int as_completed_step (lua_State *L, taskset *s) {
  luaio_task *self = luaio__current(L);
  if (s->qhead < s->nq) {
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    lua_rawgeti(L, -1, s->order[s->qhead++]);
    if (s->qhead == s->n) {
      set_release(s);
      luaio_waitlist_wake_all(&s->takers, UV_EOF);
    }
    return 1;
  }
  if (s->qhead >= s->n) return 0;
  if (s->expired) {
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    return luaio__raise_timeout(L, "aio.as_completed", s->seconds,
                                NULL);
  }
  if (self != NULL && set_watches(s, self))
    return luaL_error(L, "aio.as_completed: a task cannot wait for itself "
                      "(the caller is one of the tasks)");
  luaio_check_wait(L, "aio.as_completed");
  return luaio_waitlist_wait(L, &s->takers, as_completed_k, (lua_KContext)s);
}

static int as_completed_k (lua_State *L, int status, lua_KContext ctx) {
  lua_pop(L, 1);                                   /* the waiter */
  if (status != 0 && status != UV_EOF && status != UV_ETIMEDOUT)
    return luaio_raise_uv(L, status, "aio.as_completed", NULL, NULL);
  return as_completed_step(L, (taskset *)ctx);
}

/* The iterator: the next finished task, waiting if none is; nil when all
 * have been handed out. */
static int as_completed_next (lua_State *L) {
  return as_completed_step(L, (taskset *)lua_touserdata(L,
                                                       lua_upvalueindex(1)));
}

/* aio.as_completed(tasks [, {timeout=}]) -> iterator over tasks in the
 * order they finish. */
static int flow_as_completed (lua_State *L) {
  lua_Integer ms = -1;
  taskset *s;
  luaio__checktype(L, 1, "aio.as_completed", LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "aio.as_completed", LUA_TTABLE);
    ms = opt_timeout(L, 2, "aio.as_completed");
  }
  check_task_list(L, 1, "aio.as_completed");
  lua_settop(L, 1);
  s = set_new(L, 1, WAKE_NEXT);
  if (!set_start_deadline(s, ms))
    return luaL_error(L, "aio.as_completed: out of memory");
  lua_pushcclosure(L, as_completed_next, 1);
  return 1;
}

/* ---- timeout scopes ---------------------------------------------------- */

/* A timeout scope (host/scope.c) around fn, in the calling task. */
typedef struct timeout_ud {
  luaio_scope sc;
  lua_Number seconds;
} timeout_ud;

static int timeout_gc (lua_State *L) {
  luaio__scope_disarm(&((timeout_ud *)lua_touserdata(L, 1))->sc);
  return 0;
}

static const luaL_Reg timeout_meta[] = {{"__gc", timeout_gc}, {NULL, NULL}};

static int timeout_k (lua_State *L, int status, lua_KContext ctx) {
  timeout_ud *u = (timeout_ud *)ctx;
  int mine = luaio__scope_leave(L, &u->sc);
  if (status == LUA_OK || status == LUA_YIELD) return lua_gettop(L) - 2;
  if (mine && luaio__is_error(L, -1, "cancelled"))
    return luaio__raise_timeout(L, "aio.timeout", u->seconds, u->sc.in);
  return lua_error(L);
}

/* aio.timeout(seconds, fn, ...) -> fn's results, or raises a timeout
 * error if fn takes longer (fn is cancelled at its wait). */
static int flow_timeout (lua_State *L) {
  lua_Integer ms = luaio_check_seconds(L, 1, "aio.timeout");
  timeout_ud *u;
  if (ms < 0) return luaio__typeerror(L, 1, "aio.timeout",
                                      "number of seconds");
  luaio__checktype(L, 2, "aio.timeout", LUA_TFUNCTION);
  luaio_check_wait(L, "aio.timeout");
  u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaio__class(L, "luaio.TimeoutScope", NULL, NULL, timeout_meta);
  luaL_setmetatable(L, "luaio.TimeoutScope");
  lua_insert(L, 1);                                /* scope secs fn args */
  u->seconds = lua_tonumber(L, 2);
  if (!luaio__scope_enter(&u->sc, luaio__current(L), (uint64_t)ms))
    return luaL_error(L, "aio.timeout: out of memory");
  return timeout_k(L, lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 0,
                                 (lua_KContext)u, timeout_k),
                   (lua_KContext)u);
}

/* aio.wait_for(task, seconds) -> the task's results; on expiry the task
 * is cancelled and a timeout error raised. Cancelling the caller cancels
 * the task too. */
typedef struct wait_for_op {
  luaio_waiter w;               /* on the task's awaiters list */
  luaio_deadline d;
  luaio_host *h;
  int armed;
  int failed;                   /* UV_ETIMEDOUT or UV_ECANCELED: settling */
} wait_for_op;

static void wait_for_finish (wait_for_op *op, int status) {
  if (op->w.list) luaio_waitlist_remove(op->w.list, &op->w);
  if (op->armed) luaio__deadline_stop(op->h, &op->d);
  op->armed = 0;
  luaio_waiter_done(&op->w, status);
}

static void wait_for_due_cb (luaio_deadline *d) {
  wait_for_op *op = LUAIO_CONTAINER(d, wait_for_op, d);
  op->armed = 0;
  wait_for_finish(op, UV_ETIMEDOUT);
}

static void wait_for_abort (luaio_waiter *w) {
  wait_for_finish(LUAIO_CONTAINER(w, wait_for_op, w), UV_ECANCELED);
}

/* On expiry or cancellation the task is cancelled, and waited for
 * (whatever cancels us meanwhile) until it has finished: when wait_for
 * raises, the task is done. A cancellation of ours wins over the
 * timeout. */
static int wait_for_k (lua_State *L, int status, lua_KContext ctx) {
  wait_for_op *op = (wait_for_op *)ctx;
  luaio_task *t = luaio__check_task(L, 1);
  if (op->armed) luaio__deadline_stop(op->h, &op->d);
  op->armed = 0;
  if (status == 0 && !op->failed) {
    lua_settop(L, 1);
    return luaio__push_results(L, 1, t, 1);
  }
  if (status != 0 && op->failed != UV_ECANCELED) op->failed = status;
  luaio__cancel(t, LUAIO_CANCEL_TASK, 0, L);
  if (!luaio_task_done(t)) {
    luaio_waitlist_push(luaio__task_awaiters(t), &op->w);
    return luaio__wait_settle(L, &op->w, wait_for_k, ctx);
  }
  if (op->failed == UV_ETIMEDOUT)
    return luaio__raise_timeout(L, "aio.wait_for", lua_tonumber(L, 2),
                                NULL);
  return luaio_raise_uv(L, op->failed, "aio.wait_for", NULL, NULL);
}

static int flow_wait_for (lua_State *L) {
  luaio_task *t = luaio__test_task(L, 1);
  lua_Integer ms;
  wait_for_op *op;
  if (t == NULL) return luaio__typeerror(L, 1, "aio.wait_for", "task");
  if (t == luaio__current(L))
    return luaio__argerror(L, 1, "aio.wait_for",
                           "a task cannot wait for itself");
  ms = luaio_check_seconds(L, 2, "aio.wait_for");
  if (ms < 0) return luaio__typeerror(L, 2, "aio.wait_for",
                                      "number of seconds");
  if (luaio_task_done(t)) {
    lua_settop(L, 1);
    return luaio__push_results(L, 1, t, 1);
  }
  luaio_check_wait(L, "aio.wait_for");
  lua_settop(L, 2);
  op = lua_newuserdatauv(L, sizeof *op, 0);
  luaio_waiter_init(&op->w, wait_for_abort);
  op->failed = 0;
  op->h = luaio__task_host(t);
  op->armed = luaio__deadline_start(op->h, &op->d, (uint64_t)ms,
                                    wait_for_due_cb);
  if (!op->armed) return luaL_error(L, "aio.wait_for: out of memory");
  luaio_waitlist_push(luaio__task_awaiters(t), &op->w);
  return luaio_wait(L, &op->w, wait_for_k, (lua_KContext)op);
}

/* ---- shielding --------------------------------------------------------- */

static int shield_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L) - 1;
}

/* aio.shield(task | fn, ...) -> the task's results. Cancelling the caller
 * interrupts the wait but not the task (a function is spawned first). */
static int flow_shield (lua_State *L) {
  luaio_task *t = luaio__test_task(L, 1);
  if (t != NULL && t == luaio__current(L))
    return luaio__argerror(L, 1, "aio.shield",
                           "a task cannot wait for itself");
  if (t != NULL) lua_settop(L, 1);
  else if (lua_type(L, 1) == LUA_TFUNCTION)
    luaio__spawn(L, lua_gettop(L) - 1, "aio.shield");  /* task */
  else return luaio__typeerror(L, 1, "aio.shield", "task or function");
  lua_getfield(L, 1, "await");
  lua_pushvalue(L, 1);
  lua_callk(L, 1, LUA_MULTRET, 0, shield_k);
  return shield_k(L, LUA_OK, 0);
}

static int shielded_k (lua_State *L, int status, lua_KContext ctx) {
  luaio__task_unshield((luaio_task *)ctx);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L);
}

/* aio.shielded(fn, ...) -> fn's results: fn runs in the calling task
 * with cancellation (and timeouts) held back until it returns; a pending
 * one is then raised at the next wait. For cleanup that must wait. */
static int flow_shielded (lua_State *L) {
  luaio_task *t = luaio__current(L);
  luaio__checktype(L, 1, "aio.shielded", LUA_TFUNCTION);
  if (t == NULL) return luaL_error(L, "aio.shielded: not inside a luaio "
                                   "task");
  luaio__task_shield(t);
  return shielded_k(L, lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0,
                                  (lua_KContext)t, shielded_k),
                    (lua_KContext)t);
}

/* ---- task groups ------------------------------------------------------- */

/* aio.group(fn): fn(g) spawns children with g:spawn(f, ...); the call
 * returns (fn's results) once every child has finished. The first child
 * error cancels the others and fn itself (fn runs in a scope of the
 * caller, so the cancellation ends at the group), and is raised when
 * all are done, with every other child error in its `errors` field. If
 * fn raises or the caller is cancelled, the children are cancelled and
 * still awaited. */
typedef struct gchild {
  luaio_waiter w;               /* on the child's awaiters list */
  struct group *g;
  luaio_task *task;
} gchild;

typedef struct group {
  luaio_waiter w;               /* the parent waiting for its children */
  luaio_scope scope;            /* fn's: a failing child cancels it */
  luaio_task *parent;
  gchild **kids;
  int nkids, cap, live;
  int waiting, cancelled, shield_on, closed, body_failed, in_body;
  int nfailed;
  int *failed;                  /* indexes of failed children, in order */
} group;

static void group_cancel_kids (group *g) {
  int i;
  for (i = 0; i < g->nkids; i++)
    if (!luaio_task_done(g->kids[i]->task))
      luaio_task_cancel(g->kids[i]->task);
}

static void group_notify (luaio_waiter *w, int status) {
  gchild *c = LUAIO_CONTAINER(w, gchild, w);
  group *g = c->g;
  (void)status;
  g->live--;
  if (luaio_task_status(c->task) == LUAIO_ERROR) {
    int i;
    for (i = 0; g->kids[i] != c; i++) {}
    g->failed[g->nfailed++] = i;
    if (g->nfailed == 1) {
      group_cancel_kids(g);
      if (g->in_body) luaio__scope_cancel(&g->scope);
    }
  }
  if (g->live == 0 && g->waiting) {
    g->waiting = 0;
    luaio_waiter_done(&g->w, 0);
  }
}

static void group_abort (luaio_waiter *w) {
  group *g = LUAIO_CONTAINER(w, group, w);
  g->waiting = 0;
  luaio_waiter_done(w, UV_ECANCELED);
}

static int group_gc (lua_State *L) {
  group *g = (group *)lua_touserdata(L, 1);
  int i;
  if (g->in_body) luaio__scope_disarm(&g->scope);   /* its task died */
  for (i = 0; i < g->nkids; i++) luaio__unwatch(&g->kids[i]->w);
  free(g->kids);
  free(g->failed);
  g->kids = NULL;
  g->failed = NULL;
  g->nkids = g->cap = 0;
  return 0;
}

/* g:spawn(fn, ...) -> task */
static int group_spawn (lua_State *L) {
  group *g = (group *)luaL_testudata(L, 1, "luaio.Group");
  gchild *c;
  luaio_task *t;
  if (g == NULL) return luaio__typeerror(L, 1, "group:spawn", "luaio.Group");
  luaio__checktype(L, 2, "group:spawn", LUA_TFUNCTION);
  if (g->closed) return luaL_error(L, "group:spawn: the group is closed");
  if (g->nkids == g->cap) {
    int cap = g->cap ? g->cap * 2 : 8;
    gchild **k = realloc(g->kids, cap * sizeof *k);
    int *f = realloc(g->failed, cap * sizeof *f);
    if (k) g->kids = k;
    if (f) g->failed = f;
    if (!k || !f) return luaL_error(L, "group:spawn: out of memory");
    g->cap = cap;
  }
  t = luaio__spawn(L, lua_gettop(L) - 2, "group:spawn"); /* g task */
  c = lua_newuserdatauv(L, sizeof *c, 1);          /* g task c */
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1);                     /* c anchors the task */
  lua_getiuservalue(L, 1, 1);
  lua_rotate(L, -2, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);                                   /* g task */
  c->g = g;
  c->task = t;
  g->kids[g->nkids++] = c;
  g->live++;
  luaio__watch(luaio__task_awaiters(t), &c->w, group_notify, c);
  return 1;
}

/* Raise the first child error, with the others in its `errors`. */
static int group_raise_child_errors (lua_State *L, int gidx, group *g) {
  int i;
  lua_getiuservalue(L, gidx, 1);                   /* kids */
  lua_rawgeti(L, -1, g->failed[0] + 1);
  lua_getiuservalue(L, -1, 1);
  luaio__push_results(L, -1, g->kids[g->failed[0]]->task, 0); /* k c t e */
  lua_createtable(L, g->nfailed - 1, 0);
  for (i = 1; i < g->nfailed; i++) {
    lua_rawgeti(L, -5, g->failed[i] + 1);
    lua_getiuservalue(L, -1, 1);
    luaio__push_results(L, -1, g->kids[g->failed[i]]->task, 0);
    lua_rawseti(L, -4, i);
    lua_pop(L, 2);
  }
  if (lua_istable(L, -2)) lua_setfield(L, -2, "errors"); else lua_pop(L, 1);
  return lua_error(L);
}

static int group_join_k (lua_State *L, int status, lua_KContext ctx) {
  group *g = (group *)ctx;
  luaio_task *p = g->parent;
  if (status == UV_ECANCELED || (luaio__cancel_pending(p) && !g->cancelled)) {
    g->cancelled = 1;
    group_cancel_kids(g);
  }
  if (g->live > 0) {
    if (g->cancelled && !g->shield_on) {   /* wait for them regardless */
      g->shield_on = 1;
      luaio__task_shield(p);
    }
    g->waiting = 1;
    return luaio__wait_settle(L, &g->w, group_join_k, ctx);
  }
  if (g->shield_on) luaio__task_unshield(p);
  g->shield_on = 0;
  g->closed = 1;
  if (g->body_failed) return lua_error(L);         /* fn's own error */
  if (g->cancelled) {
    luaio__push_pending_cancel(L, p);
    return lua_error(L);
  }
  if (g->nfailed) return group_raise_child_errors(L, 2, g);
  return lua_gettop(L) - 2;
}

static int group_body_k (lua_State *L, int status, lua_KContext ctx) {
  group *g = (group *)ctx;
  int interrupted;
  g->in_body = 0;
  interrupted = luaio__scope_leave(L, &g->scope);
  if (status != LUA_OK && status != LUA_YIELD && interrupted && g->nfailed)
    status = LUA_OK;                  /* our own cancel: the child's error */
  if (status != LUA_OK && status != LUA_YIELD) {
    g->body_failed = 1;
    g->cancelled = 1;
    group_cancel_kids(g);
  }
  return group_join_k(L, 0, ctx);
}

static const luaL_Reg group_methods[] = {
  {"spawn", group_spawn}, {NULL, NULL}
};
static const luaL_Reg group_meta[] = {{"__gc", group_gc}, {NULL, NULL}};

static int flow_group (lua_State *L) {
  group *g;
  luaio__checktype(L, 1, "aio.group", LUA_TFUNCTION);
  luaio_check_wait(L, "aio.group");
  lua_settop(L, 1);
  g = lua_newuserdatauv(L, sizeof *g, 1);          /* fn g */
  memset(g, 0, sizeof *g);
  luaio_waiter_init(&g->w, group_abort);
  g->parent = luaio__current(L);
  luaio__class(L, "luaio.Group", group_methods, NULL, group_meta);
  luaL_setmetatable(L, "luaio.Group");
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);                     /* children list */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);                             /* fn g fn g */
  luaio__scope_enter(&g->scope, g->parent, LUAIO_SCOPE_NO_DEADLINE);
  g->in_body = 1;
  return group_body_k(L, lua_pcallk(L, 1, LUA_MULTRET, 0, (lua_KContext)g,
                                    group_body_k), (lua_KContext)g);
}

static const luaL_Reg flow_funcs[] = {
  {"gather", flow_gather}, {"gather_all", flow_gather_all},
  {"wait", flow_wait}, {"as_completed", flow_as_completed},
  {"timeout", flow_timeout}, {"wait_for", flow_wait_for},
  {"shield", flow_shield}, {"shielded", flow_shielded},
  {"group", flow_group}, {NULL, NULL}
};

/* Add this file's functions to the table on the top of the stack. */
void luaio__flow_register (lua_State *L) {
  luaL_setfuncs(L, flow_funcs, 0);
}

int luaopen_luaio_flow (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__flow_register(L);
  return 1;
}
