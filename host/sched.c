/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sched.c: tasks, the ready queue, and the only lua_resume of the code
 * base. Cancellation is in cancel.c, running the loop and the C task API
 * in run.c.
 *
 * Woken tasks go on the ready queue; a uv_check handle drains it once per
 * loop turn (an idle handle keeps the poll phase from blocking while work
 * is queued), so a coroutine is never resumed from inside another one.
 * Tasks that yield for a turn go on next_turn and run in the next drain.
 * Every live task is anchored in the live table (slot t->ref) until it
 * finishes; a finished one stays in it no longer, so the table is dense
 * and is also the list of live tasks (no links in the task record).
 */
#include "private.h"

#define DRAIN_BUDGET 65536   /* resumes per turn, so I/O is never starved */

static void queue_push (task_queue *q, luaio_task *t) {
  t->next = NULL;
  if (q->tail) q->tail->next = t; else q->head = t;
  q->tail = t;
}

static luaio_task *queue_pop (task_queue *q) {
  luaio_task *t = q->head;
  if (t) {
    q->head = t->next;
    if (q->head == NULL) q->tail = NULL;
  }
  return t;
}

static void idle_cb (uv_idle_t *idle) { (void)idle; }

void luaio__ready (luaio_task *t) {
  luaio_host *h = t->host;
  t->state = T_READY;
  queue_push(&h->ready, t);
  uv_idle_start(&h->idle, idle_cb);
}

/* Push the task userdata of a live or pinned task. [-0, +1] */
void luaio__push_task (lua_State *L, luaio_task *t) {
  if (!t->in_live) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->host->live_ref);
  lua_rawgeti(L, -1, t->ref);
  lua_remove(L, -2);
}

/* Put the task userdata on top into the live table. [-0, +0] */
static void anchor (lua_State *L, luaio_host *h, luaio_task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, h->ntasks + 1);    /* may raise: count it after */
  t->ref = ++h->ntasks;
  if (h->ntasks > h->live_peak) h->live_peak = h->ntasks;
  t->in_live = 1;
  lua_pop(L, 1);
}

/* Take finished t out of the live table (at index live): the last task
 * moves into its slot. A task C still holds is anchored by a registry
 * ref instead. t's userdata is on top. [-0, +0] */
static void unanchor (lua_State *L, luaio_host *h, luaio_task *t, int live) {
  if (t->ref != h->ntasks) {
    lua_rawgeti(L, live, h->ntasks);               /* ud last */
    ((luaio_task *)lua_touserdata(L, -1))->ref = t->ref;
    lua_rawseti(L, live, t->ref);
  }
  lua_pushnil(L);
  lua_rawseti(L, live, h->ntasks--);
  t->in_live = 0;
  t->ref = LUA_NOREF;
  if (t->pinned) {
    lua_pushvalue(L, -1);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

static int by_id (const void *a, const void *b) {
  unsigned x = (*(luaio_task *const *)a)->id;
  unsigned y = (*(luaio_task *const *)b)->id;
  return (x > y) - (x < y);
}

/* Push a list of the live tasks, oldest first. [-0, +1] */
void luaio__push_live_tasks (lua_State *L, luaio_host *h) {
  int i, n = h->ntasks;
  /* Scratch space as a userdata: nothing leaks if a later push raises. */
  luaio_task **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);  /* v live */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    v[i] = lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  qsort(v, n, sizeof *v, by_id);
  lua_createtable(L, n, 0);                        /* v live list */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -2, v[i]->ref);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

luaio_task *luaio__current (lua_State *L) {
  luaio_task *t = task_of(L);
  return (t && t->co == L) ? t : NULL;
}

/* Fast path (own state: the allocator's ud is the host): compare the
 * metatable's address, ~60 instructions against ~340 for the look-up
 * by name that luaL_checkudata does on every task:await(). */
luaio_task *luaio__check_task (lua_State *L, int idx) {
  void *ud;
  if (lua_getallocf(L, &ud) == luaio__host_alloc &&
      lua_type(L, idx) == LUA_TUSERDATA && lua_getmetatable(L, idx)) {
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    if (mt == ((luaio_host *)ud)->task_mt) return lua_touserdata(L, idx);
  }
  ud = luaio__test_task(L, idx);
  if (ud == NULL) luaL_typeerror(L, idx, "luaio.Task");
  return (luaio_task *)ud;
}

/* ---- the task body -------------------------------------------------- */

/* The message handler of every task body. It runs where the error was
 * raised, before the stack unwinds, so the traceback is the raiser's;
 * and it marks the task as ending, so that its <close> handlers, which
 * run next, may await within the cleanup grace. [-1, +1] */
static int body_msgh (lua_State *L) {
  luaio_task *t = task_of(L);
  luaio__wrap_error(L, L, 1, 1);
  if (t && !(t->flags & TF_ENDING)) {
    luaio_host *h = t->host;
    t->flags |= TF_ENDING;
    t->u.grace_end = (unsigned)(uv_now(h->loop) - h->epoch) + h->grace_ms;
    if (t->cancel_level > 0) luaio__arm_grace(h, t);
  }
  return 1;
}

static int body_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 1;          /* the results, above the handler */
}

/* The base function of every task coroutine: calls the task's function
 * in a yieldable pcall, so an error unwinds the stack inside the task,
 * where <close> handlers can still wait (5.4.4 closes them yieldably
 * there, but not in lua_resetthread). The error is raised again. */
static int task_body (lua_State *L) {
  int status;
  lua_pushcfunction(L, body_msgh);
  lua_insert(L, 1);                                /* msgh fn args */
  status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0, body_k);
  return body_k(L, status, 0);
}

/* ---- spawning ------------------------------------------------------ */

luaio_task *luaio__spawn (lua_State *L, int nargs, const char *fname) {
  luaio_host *h = luaio__host(L);
  luaio_task *t;
  lua_State *co;
  if (h->limit || (h->cfg.max_tasks && h->ntasks >= h->cfg.max_tasks))
    luaio__limit_spawn(L, h);
  luaL_checkstack(L, 3, NULL);
  t = lua_newuserdatauv(L, sizeof *t, LUAIO_TASK_NSLOTS);  /* fn args ud */
  memset(t, 0, sizeof *t);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->task_mt_ref);  /* by ref: fast */
  lua_setmetatable(L, -2);
  co = lua_newthread(L);                           /* fn args ud co */
  if (!lua_checkstack(co, nargs + 2))
    luaL_error(L, "%s: too many arguments (%d)", fname, nargs);
  lua_setiuservalue(L, -2, LUAIO_TASK_CO);                 /* fn args ud */
  lua_rotate(L, -(nargs + 2), 1);                  /* ud fn args */
  lua_pushcfunction(co, task_body);
  lua_xmove(L, co, nargs + 1);                     /* ud */
  anchor(L, h, t);
  t->host = h;
  t->co = co;
  t->u.n = nargs + 1;                              /* fn too, for the body */
  t->id = ++h->task_ids;
  t->born = (unsigned)(uv_now(h->loop) - h->epoch);
  task_of(co) = t;
  if (h->cfg.runaway_ms || h->stopping || h->limit_timer)
    lua_sethook(co, luaio__guard_hook, LUA_MASKCOUNT, 1000);
  luaio__ready(t);
  t->state = T_NEW;
  if (h->debug) luaio__debug_spawned(L, t);   /* may raise: t is set up */
  return t;
}

/* ---- finishing ----------------------------------------------------- */

/* Store co's results (nres on its top) in the task. [-0, +0] on L */
static void store_results (lua_State *L, luaio_task *t, int nres) {
  lua_State *co = t->co;
  t->u.n = nres;
  if (nres == 0) return;
  if (nres == 1) lua_xmove(co, L, 1);
  else {
    int i;
    lua_createtable(L, nres, 0);
    for (i = nres; i >= 1; i--) {
      lua_xmove(co, L, 1);
      lua_rawseti(L, -2, i);
    }
  }
  lua_setiuservalue(L, -2, LUAIO_TASK_RESULT);
}

/* Record the error that killed co and close co (its <close> variables
 * run now; an error raised there replaces the first). [-0, +0] on L */
static void store_error (lua_State *L, luaio_task *t) {
  lua_State *co = t->co;
  int st;
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1);                             /* ud raw */
  /* The body's handler wrapped it, unless it never ran (out of memory,
   * or a task cancelled before it started). */
  if ((t->flags & TF_ENDING) && luaio__is_error(L, -1, NULL))
    lua_pushvalue(L, -1);
  else luaio__wrap_error(L, co, -1, 0);            /* ud raw e */
  /* 5.4.4 returns the thread's own error status even when the <close>
   * handlers ran cleanly: only a different error object is a new one. */
  st = lua_resetthread(co);
  if (st != LUA_OK && lua_gettop(co) > 0) {
    lua_xmove(co, L, 1);                           /* ud raw e x */
    if (!lua_rawequal(L, -1, -3)) {                /* a handler raised */
      lua_xmove(L, co, 1);                         /* ud raw e */
      lua_pop(L, 1);                               /* ud raw */
      luaio__wrap_error(L, co, -1, 0);             /* ud raw e2 */
    }
    else lua_pop(L, 1);
  }
  lua_remove(L, -2);                               /* ud e */
  if (luaio__is_error(L, -1, "cancelled") || luaio__is_error(L, -1, "timeout"))
    t->outcome = t->cancel_level ? LUAIO_CANCELLED : LUAIO_ERROR;
  else
    t->outcome = LUAIO_ERROR;
  if (luaio__is_error(L, -1, "exit") ||
      ((t->flags & TF_KILLED) && t->host->stopping))
    t->observed = 1;                /* reported when killed */
  else if (t->outcome == LUAIO_CANCELLED && t->cancel_level >= LUAIO_CANCEL_TASK)
    t->observed = 1;                /* a requested cancellation is no news */
  lua_setiuservalue(L, -2, LUAIO_TASK_RESULT);
}

/* Put what co ended with in t's userdata (on top), in the slot that
 * held co. [-0, +0] */
static void store_outcome (lua_State *L, luaio_task *t, int status,
                           int nres) {
  lua_State *co = t->co;
  if (status == LUA_OK && nres <= 1) {     /* the common case, direct */
    task_of(co) = NULL;
    t->co = NULL;
    t->outcome = LUAIO_OK;
    t->u.n = nres;
    if (nres == 1) lua_xmove(co, L, 1); else lua_pushnil(L);
    lua_setiuservalue(L, -2, LUAIO_TASK_RESULT);   /* co may go now */
    return;
  }
  lua_getiuservalue(L, -1, LUAIO_TASK_CO);
  lua_insert(L, -2);                               /* co ud: co anchored */
  lua_pushnil(L);
  lua_setiuservalue(L, -2, LUAIO_TASK_CO);         /* results go there */
  if (status == LUA_OK) {
    t->outcome = LUAIO_OK;
    store_results(L, t, nres);
  }
  else {
    store_error(L, t);
    /* Reported when collected (out of memory: only at exit, if alive). */
    if (!t->observed) luaio__task_watch(L, -1);
  }
  task_of(co) = NULL;
  t->co = NULL;
  lua_remove(L, -2);                               /* ud */
}

static void finish (luaio_host *h, luaio_task *t, int status, int nres) {
  lua_State *L = h->L;
  luaio_waiter *w;
  int awaited = t->awaiters.head != NULL, live;
  luaL_checkstack(L, nres + 5, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);  /* live */
  live = lua_gettop(L);
  if (t->in_live) lua_rawgeti(L, live, t->ref);    /* live ud */
  else luaio__push_task(L, t);
  store_outcome(L, t, status, nres);
  t->state = T_DONE;
  luaio__leave_grace(h, t);
  while ((w = luaio_waitlist_pop(&t->awaiters)) != NULL)
    luaio_waiter_done(w, 0);
  if (t->ext && t->ext->on_done) t->ext->on_done(t, t->ext->on_done_ud);
  if (t->outcome != LUAIO_OK && !t->observed && !awaited && h->debug)
    luaio__debug_unawaited(L, t);
  else if (t->outcome != LUAIO_OK && !t->observed && !awaited) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &luaio__unobserved_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  if (t->in_live) unanchor(L, h, t, live);        /* ud on top */
  if (h->stopping) luaio__stop_progress(h);
  lua_pop(L, 2);
}

/* A task cancelled before it ever ran finishes without running. */
static void finish_unstarted (luaio_host *h, luaio_task *t) {
  lua_settop(t->co, 0);
  luaio__push_pending_cancel(t->co, t);
  finish(h, t, LUA_ERRRUN, 0);
}

/* ---- resuming ------------------------------------------------------ */

static void resume (luaio_host *h, luaio_task *t) {
  lua_State *co = t->co;
  int nargs = 0, nres = 0, status, debug = h->debug;
  luaio_ran ran;
  if (t->state == T_NEW && t->cancel_level > 0) {
    finish_unstarted(h, t);
    return;
  }
  if (debug) luaio__debug_before(h, t, &ran);
  if (t->state == T_NEW) nargs = t->u.n;
  t->state = T_RUNNING;
  h->current = t;
  if (h->cfg.runaway_ms) h->resumed_at = uv_hrtime();
  h->limited = 1;                       /* the memory cap is for scripts */
  status = lua_resume(co, NULL, nargs, &nres);
  h->limited = 0;
  h->current = NULL;
  if (debug) luaio__debug_after(h, t, &ran, status == LUA_YIELD);
  if (status == LUA_YIELD) {
    if (t->state == T_RUNNING) {   /* a turn yield or a bare yield */
      lua_pop(co, nres);
      t->state = T_READY;
      queue_push(&h->next_turn, t);
      uv_idle_start(&h->idle, idle_cb);
    }
    return;
  }
  finish(h, t, status, nres);
}

/* Lua never shrinks a table's array: after a burst of a million tasks the
 * live table would keep 16 MB. Copy it into a fresh one once most of its
 * slots are empty. */
static void shrink_live (luaio_host *h) {
  lua_State *L = h->L;
  int i;
  if (h->ntasks >= h->live_peak / 4 || h->live_peak < 4096) return;
  if (!lua_checkstack(L, 3)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);  /* old */
  lua_createtable(L, h->ntasks, 0);                /* old new */
  for (i = 1; i <= h->ntasks; i++) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, i);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, h->live_ref);
  lua_pop(L, 1);
  h->live_peak = h->ntasks;
}

/* Run ready tasks; tasks woken meanwhile run in the same drain. */
static void drain (luaio_host *h) {
  luaio_task *t;
  int budget = DRAIN_BUDGET;
  if (h->running || h->closed) return;
  h->running = 1;
  if (h->next_turn.head) {          /* last turn's yielders go first */
    if (h->ready.head) h->next_turn.tail->next = h->ready.head;
    else h->ready.tail = h->next_turn.tail;
    h->ready.head = h->next_turn.head;
    h->next_turn.head = h->next_turn.tail = NULL;
  }
  while (budget-- > 0 && (t = queue_pop(&h->ready)) != NULL)
    resume(h, t);
  h->running = 0;
  if (!h->ready.head && !h->next_turn.head) {
    uv_idle_stop(&h->idle);
    shrink_live(h);
    if (h->owns_state && !h->system_malloc)
      luaio__slab_maybe_trim(&h->slab, h->mem_used);
  }
}

static void check_cb (uv_check_t *check) {
  drain(LUAIO_CONTAINER(check, luaio_host, check));
}

/* ---- yielding a turn ----------------------------------------------- */

static int turn_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_task *t = task_of(L);
  lua_KFunction k = t->w.turn_k;
  (void)status;
  t->w.wait_op = NULL;          /* the word is the wait's name again */
  if (t->flags & TF_KILLED) return luaio__raise_killed(L, t);
  if (luaio__cancel_due(t)) {
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  return k ? k(L, 0, ctx) : 0;
}

int luaio_yield_turn (lua_State *L, lua_KFunction k, lua_KContext ctx) {
  luaio_task *t = task_of(L);
  t->w.turn_k = k;
  if (luaio__torture_on) luaio__torture_suspend(t);
  return lua_yieldk(L, 0, ctx, turn_k);
}

/* ---- results -------------------------------------------------------- */

/* Push the results of done task t (its userdata at idx), or raise its
 * error if raise, else push the error and return -1. */
int luaio__push_results (lua_State *L, int idx, luaio_task *t, int raise) {
  int i;
  idx = lua_absindex(L, idx);
  if (t->outcome != LUAIO_OK) {
    t->observed = 1;
    lua_getiuservalue(L, idx, LUAIO_TASK_RESULT);
    if (raise) lua_error(L);
    return -1;
  }
  luaL_checkstack(L, t->u.n + 1, "too many results");
  if (t->u.n == 1) lua_getiuservalue(L, idx, LUAIO_TASK_RESULT);
  else if (t->u.n > 1) {
    lua_getiuservalue(L, idx, LUAIO_TASK_RESULT);
    for (i = 1; i <= t->u.n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(t->u.n + 1));
  }
  return t->u.n;
}

/* Report every failed task whose error nobody saw. */
void luaio__report_unobserved (luaio_host *h) {
  lua_State *L = h->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &luaio__unobserved_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    luaio_task *t = lua_touserdata(L, -2);
    lua_pop(L, 1);
    if (t && t->state == T_DONE && !t->observed) {
      t->observed = 1;
      lua_getiuservalue(L, -1, LUAIO_TASK_RESULT);
      luaio__report(h, "error in a task nobody awaited", L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* ---- setting up ---------------------------------------------------- */

/* A weak-keyed table in the registry under key. */
static void new_weak_table (lua_State *L, const char *key) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void luaio__sched_init (luaio_host *h) {
  lua_newtable(h->L);
  h->live_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
  luaL_getmetatable(h->L, "luaio.Task");
  h->task_mt = lua_topointer(h->L, -1);
  h->task_mt_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
  uv_idle_init(h->loop, &h->idle);
  uv_check_init(h->loop, &h->check);
  h->idle.data = h->check.data = h;
  luaio__timers_init(&h->timers, h->loop);
  uv_check_start(&h->check, check_cb);
  uv_unref((uv_handle_t *)&h->check);
  luaio__dump_signal_init(h);
  luaio__debug_init(h);
  new_weak_table(h->L, &luaio__unobserved_key);
  new_weak_table(h->L, &luaio__extra_key);
}
