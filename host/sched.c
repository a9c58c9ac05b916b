/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sched.c: tasks, the ready queue, cancellation, and the only lua_resume
 * of the code base.
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

/* Take finished t out of the live table: the last task moves into its
 * slot. A task C still holds is anchored by a registry ref instead.
 * t's userdata is on top. [-0, +0] */
static void unanchor (lua_State *L, luaio_host *h, luaio_task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);  /* ud live */
  lua_rawgeti(L, -1, h->ntasks);                   /* ud live last */
  if (lua_touserdata(L, -1) != (void *)t) {
    ((luaio_task *)lua_touserdata(L, -1))->ref = t->ref;
    lua_rawseti(L, -2, t->ref);
  }
  else lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawseti(L, -2, h->ntasks--);
  lua_pop(L, 1);
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

luaio_task *luaio__check_task (lua_State *L, int idx) {
  return (luaio_task *)luaL_checkudata(L, idx, "luaio.Task");
}

/* ---- guards: runaway tasks, the exit grace, killed tasks ------------- */

/* Once killed, a task raises at every instruction, so a pcall that
 * catches the error is left at its next instruction: the task ends. */
static void killed_hook (lua_State *L, lua_Debug *ar) {
  luaio_task *t = task_of(L);
  (void)ar;
  if (t && (t->flags & TF_KILLED)) luaio__raise_killed(L, t);
}

int luaio__raise_killed (lua_State *L, luaio_task *t) {
  luaio__push_task(L, t);
  luaio__task_getextra(L, -1, "killed");
  return lua_error(L);
}

void luaio__kill (lua_State *L, luaio_task *t) {
  if (t->state == T_DONE || (t->flags & TF_KILLED)) { lua_pop(L, 1); return; }
  t->flags |= TF_KILLED;
  luaio__push_task(L, t);
  lua_insert(L, -2);
  luaio__task_setextra(L, -2, "killed");
  lua_pop(L, 1);
  lua_sethook(t->co, killed_hook, LUA_MASKCOUNT, 1);
}

/* Print a task still running at the end of the exit grace. */
static void report_stuck (lua_State *L, luaio_task *t) {
  const char *tb;
  luaL_checkstack(L, 4, NULL);
  luaio__push_task(L, t);                          /* ud */
  lua_getfield(L, -1, "name");                     /* ud name */
  luaL_traceback(L, t->co, NULL, 0);               /* ud name tb */
  tb = lua_tostring(L, -1);
  fprintf(stderr, "  %s (%s):\n%s\n", lua_tostring(L, -2),
          t->state == T_WAITING ? "waiting" : t->state == T_RUNNING ?
          "running" : "ready", tb ? tb : "");
  fflush(stderr);
  lua_pop(L, 3);
}

/* Count hook of tasks when cfg.runaway_ms is set, and of every task while
 * the exit grace runs: a task that has run that long since its resume
 * without waiting (or past the end of the exit grace) is killed, so one
 * busy script cannot freeze the loop, every other task, or the exit. */
static void guard_hook (lua_State *L, lua_Debug *ar) {
  luaio_task *t = task_of(L);
  luaio_host *h;
  uint64_t now;
  (void)ar;
  if (t == NULL) return;
  h = t->host;
  now = uv_hrtime();
  if (h->cfg.runaway_ms &&
      now - h->resumed_at > (uint64_t)h->cfg.runaway_ms * 1000000u) {
    lua_pushfstring(L, "task ran for more than %d ms without waiting "
                    "(runaway guard)", (int)h->cfg.runaway_ms);
    luaio_push_error(L, "killed", NULL, lua_tostring(L, -1));
    lua_remove(L, -2);
    luaio__kill(L, t);
    luaio__raise_killed(L, t);
  }
  if (h->stopping && now > h->stop_deadline) {
    fprintf(stderr, "luaio: a task never waits %.1f s after the "
            "cancellation at exit; killing:\n", h->grace_ms / 1000.0);
    report_stuck(L, t);
    h->nstuck++;
    luaio_push_error(L, "killed", NULL, "task still running at the end of "
                     "the exit grace");
    luaio__kill(L, t);
    luaio__raise_killed(L, t);
  }
}

/* ---- the task body -------------------------------------------------- */

static void arm_grace (luaio_host *h, luaio_task *t);
static void leave_grace (luaio_host *h, luaio_task *t);

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
    if (t->cancel_level > 0) arm_grace(h, t);
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

luaio_task *luaio__spawn (lua_State *L, int nargs) {
  luaio_host *h = luaio__host(L);
  luaio_task *t;
  lua_State *co;
  luaL_checkstack(L, 3, NULL);
  t = lua_newuserdatauv(L, sizeof *t, LUAIO_TASK_NSLOTS);  /* fn args ud */
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, "luaio.Task");
  co = lua_newthread(L);                           /* fn args ud co */
  if (!lua_checkstack(co, nargs + 2))
    luaL_error(L, "too many arguments to spawn (%d)", nargs);
  lua_setiuservalue(L, -2, LUAIO_TASK_CO);                 /* fn args ud */
  lua_rotate(L, -(nargs + 2), 1);                  /* ud fn args */
  lua_pushcfunction(co, task_body);
  lua_xmove(L, co, nargs + 1);                     /* ud */
  anchor(L, h, t);
  t->host = h;
  t->co = co;
  t->u.n = nargs + 1;                              /* fn too, for the body */
  t->id = ++h->task_ids;
  task_of(co) = t;
  if (h->cfg.runaway_ms || h->stopping)
    lua_sethook(co, guard_hook, LUA_MASKCOUNT, 1000);
  luaio__ready(t);
  t->state = T_NEW;
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

static void finish (luaio_host *h, luaio_task *t, int status, int nres) {
  lua_State *L = h->L;
  luaio_waiter *w;
  int awaited = t->awaiters.head != NULL;
  luaL_checkstack(L, nres + 5, NULL);
  luaio__push_task(L, t);                          /* ud */
  lua_getiuservalue(L, -1, LUAIO_TASK_CO);
  lua_insert(L, -2);                               /* co ud: co anchored */
  lua_pushnil(L);
  lua_setiuservalue(L, -2, LUAIO_TASK_CO);         /* results go there */
  if (status == LUA_OK) {
    t->outcome = LUAIO_OK;
    store_results(L, t, nres);
  }
  else store_error(L, t);
  task_of(t->co) = NULL;
  t->co = NULL;
  t->state = T_DONE;
  leave_grace(h, t);
  while ((w = luaio_waitlist_pop(&t->awaiters)) != NULL)
    luaio_waiter_done(w, 0);
  if (t->ext && t->ext->on_done) t->ext->on_done(t, t->ext->on_done_ud);
  if (t->outcome != LUAIO_OK && !t->observed && !awaited) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &luaio__unobserved_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  unanchor(L, h, t);                               /* ud on top */
  lua_pop(L, 2);                                   /* the coroutine may go */
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
  int nargs = 0, nres = 0, status;
  if (t->state == T_NEW) {
    if (t->cancel_level > 0) { finish_unstarted(h, t); return; }
    nargs = t->u.n;
  }
  t->state = T_RUNNING;
  h->current = t;
  if (h->cfg.runaway_ms) h->resumed_at = uv_hrtime();
  h->limited = 1;                       /* the memory cap is for scripts */
  status = lua_resume(co, NULL, nargs, &nres);
  h->limited = 0;
  h->current = NULL;
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
  (void)status;
  if (t->flags & TF_KILLED) return luaio__raise_killed(L, t);
  if (luaio__cancel_due(t)) {
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  return t->turn_k ? t->turn_k(L, 0, ctx) : 0;
}

int luaio_yield_turn (lua_State *L, lua_KFunction k, lua_KContext ctx) {
  luaio_task *t = task_of(L);
  t->turn_k = k;
  if (luaio__torture_on) luaio__torture_suspend(t);
  return lua_yieldk(L, 0, ctx, turn_k);
}

/* ---- cancellation -------------------------------------------------- */

/* Request cancellation of t at the given strength; the value at errindex
 * of L (0: none) is the error to raise (a default cancelled error
 * otherwise). A waiting task is aborted now; others raise it at their
 * next wait. */
/* Abort the wait of a waiting task whose cancellation is due (or that
 * was killed). */
static void abort_wait (luaio_task *t) {
  luaio_waiter *w = t->waiter;
  if (t->state != T_WAITING) return;
  if (!luaio__cancel_due(t) && !(t->flags & TF_KILLED)) return;
  if (w->must_finish) w->must_finish = 2;     /* wait_k: raise after k */
  if (w->abort) w->abort(w);        /* may complete with UV_ECANCELED */
  if (t->state == T_WAITING && !w->must_finish) luaio__detach(t);
}

static void grace_cb (luaio_deadline *d);

/* t no longer holds a cancellation back: the last one out disarms. */
static void leave_grace (luaio_host *h, luaio_task *t) {
  if (!(t->flags & TF_IN_GRACE)) return;
  t->flags &= ~TF_IN_GRACE;
  if (--h->ngrace == 0) luaio__deadline_stop(h, &h->grace);
}

/* Arm the host's grace deadline for t's grace end, if sooner. */
static void arm_grace (luaio_host *h, luaio_task *t) {
  uint64_t now = uv_now(h->loop) - h->epoch;
  uint64_t ms = t->u.grace_end > now ? t->u.grace_end - now : 0;
  int armed = h->grace.slot < h->timers.n &&
              h->timers.heap[h->grace.slot] == &h->grace;
  if (!(t->flags & TF_IN_GRACE)) {
    t->flags |= TF_IN_GRACE;
    h->ngrace++;
  }
  if (armed && h->grace.due <= uv_now(h->loop) + ms) return;
  luaio__deadline_stop(h, &h->grace);
  luaio__deadline_start(h, &h->grace, ms, grace_cb);
}

/* A cleanup grace ended: deliver the cancellations it held back, and
 * arm for the next grace to end. */
static void grace_cb (luaio_deadline *d) {
  luaio_host *h = LUAIO_CONTAINER(d, luaio_host, grace);
  lua_State *L = h->L;
  unsigned now = (unsigned)(uv_now(h->loop) - h->epoch);
  luaio_task *next = NULL;
  int i;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  for (i = 1; i <= h->ntasks; i++) {
    luaio_task *t;
    lua_rawgeti(L, -1, i);
    t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if ((t->flags & (TF_ENDING | TF_GRACE_OVER)) != TF_ENDING ||
        t->cancel_level == 0) continue;
    if ((int)(t->u.grace_end - now) <= 0) {
      leave_grace(h, t);
      t->flags |= TF_GRACE_OVER;
      abort_wait(t);
    }
    else if (next == NULL || (int)(t->u.grace_end - next->u.grace_end) < 0)
      next = t;
  }
  lua_pop(L, 1);
  if (next) arm_grace(h, next);
}

/* Request cancellation of t at the given strength; the value at errindex
 * of L (0: none) is the error to raise (a default cancelled error
 * otherwise). A waiting task is aborted now; others raise it at their
 * next wait. An ending task gets it when its cleanup grace is over. */
void luaio__cancel (luaio_task *t, int level, int errindex, lua_State *L) {
  if (t->state == T_DONE || level <= t->cancel_level) return;
  t->cancel_level = level;
  luaio__push_task(L, t);
  if (errindex) lua_pushvalue(L, errindex); else lua_pushnil(L);
  luaio__task_setextra(L, -2, "cancel");
  lua_pop(L, 1);
  if ((t->flags & (TF_ENDING | TF_GRACE_OVER)) == TF_ENDING)
    arm_grace(t->host, t);
  abort_wait(t);
}

/* Drop the pending cancellation of strength level (a timeout scope that
 * caught its own expiry); returns 1 if it was the pending one. */
int luaio__uncancel (lua_State *L, luaio_task *t, int level) {
  if (t->cancel_level != level) return 0;
  t->cancel_level = 0;
  luaio__push_task(L, t);
  lua_pushnil(L);
  luaio__task_setextra(L, -2, "cancel");
  lua_pop(L, 1);
  return 1;
}

/* Push a fresh copy of t's pending cancellation error. [-0, +1] */
int luaio__push_pending_cancel (lua_State *L, luaio_task *t) {
  luaio__push_task(L, t);
  luaio__task_getextra(L, -1, "cancel");           /* ud tmpl */
  luaio_push_error(L, "cancelled", NULL, "task cancelled");
  if (lua_istable(L, -2)) {                        /* copy the template */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
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

/* ---- running the loop ----------------------------------------------- */

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
  uv_idle_init(h->loop, &h->idle);
  uv_check_init(h->loop, &h->check);
  h->idle.data = h->check.data = h;
  luaio__timers_init(&h->timers, h->loop);
  uv_check_start(&h->check, check_cb);
  uv_unref((uv_handle_t *)&h->check);
  new_weak_table(h->L, &luaio__unobserved_key);
  new_weak_table(h->L, &luaio__extra_key);
}

/* ---- stopping: cancel everything, within the exit grace -------------- */

/* Apply fn to every live task. fn may not finish a task (none does: a
 * task finishes only when it is resumed), so the table holds still. */
static void each_live (luaio_host *h, void (*fn)(lua_State *L, luaio_task *t)) {
  lua_State *L = h->L;
  int i;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  for (i = 1; i <= h->ntasks; i++) {
    lua_rawgeti(L, -1, i);
    fn(L, lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void cancel_for_exit (lua_State *L, luaio_task *t) {
  if (!(t->flags & TF_KILLED) && t->state != T_NEW)
    lua_sethook(t->co, guard_hook, LUA_MASKCOUNT, 1000);
  luaio__cancel(t, LUAIO_CANCEL_EXIT, 0, L);
}

static void kill_stuck (lua_State *L, luaio_task *t) {
  luaio_push_error(L, "killed", NULL, "task still running at the end of "
                   "the exit grace");
  luaio__kill(L, t);
  abort_wait(t);
}

static void wake_cb (luaio_deadline *d) { (void)d; }

int luaio_stop (luaio_host *h) {
  luaio_deadline wake;
  int rounds = 0, left;
  if (h->running || h->ntasks == 0) return 0;
  h->stopping = 1;
  h->nstuck = 0;
  h->stop_deadline = uv_hrtime() + (uint64_t)h->grace_ms * 1000000u;
  memset(&wake, 0, sizeof wake);
  luaio__deadline_start(h, &wake, h->grace_ms, wake_cb);
  /* Cancelling again each round reaches tasks spawned meanwhile. */
  while (h->ntasks > 0 && uv_hrtime() < h->stop_deadline) {
    each_live(h, cancel_for_exit);
    if (!uv_run(h->loop, UV_RUN_ONCE) && !h->ready.head && !h->next_turn.head)
      break;
  }
  luaio__deadline_stop(h, &wake);
  left = h->ntasks;
  if (left > 0) {
    fprintf(stderr, "luaio: %d task%s still running %.1f s after the "
            "cancellation at exit; killing:\n", left, left > 1 ? "s" : "",
            h->grace_ms / 1000.0);
    each_live(h, report_stuck);
    fflush(stderr);
    each_live(h, kill_stuck);
    /* Killed tasks raise as soon as they run; one still waiting is in an
     * op that must finish (a file write): its callback still points at
     * the task, so the host waits for it rather than free the task. */
    while (h->ntasks > 0 && rounds++ < 100)
      uv_run(h->loop, UV_RUN_NOWAIT);
    while (h->ntasks > 0 &&
           (uv_run(h->loop, UV_RUN_ONCE) || h->ready.head)) {}
  }
  h->stopping = 0;
  return left + h->nstuck;
}

void luaio_set_grace (luaio_host *h, int grace_ms) {
  h->grace_ms = grace_ms > 0 ? (unsigned)grace_ms : LUAIO_GRACE_MS;
}

/* ---- interrupting running Lua code (Ctrl-C) ---------------------------- */

static void interrupt_hook (lua_State *L, lua_Debug *ar) {
  luaio_task *t = task_of(L);
  (void)ar;
  if (t && (t->flags & TF_KILLED)) return;         /* its own hook is set */
  if (t && (t->host->cfg.runaway_ms || t->host->stopping))
    lua_sethook(L, guard_hook, LUA_MASKCOUNT, 1000);
  else lua_sethook(L, NULL, 0, 0);
  luaio_push_error(L, "cancelled", NULL, "interrupted");
  lua_error(L);
}

/* Called from a signal handler: only sets a hook, as lua.c does. */
void luaio_interrupt (luaio_host *h) {
  luaio_task *t = h->current;
  if (t && t->co && !(t->flags & TF_KILLED))
    lua_sethook(t->co, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int luaio_run_until (luaio_host *h, luaio_task *t) {
  if (h->running)
    return luaL_error(h->L, "cannot run the loop from inside a task");
  while (t->state != T_DONE && h->exit_code < 0) {
    int alive = uv_run(h->loop, UV_RUN_ONCE);
    if (!alive && t->state != T_DONE && !h->ready.head && !h->next_turn.head)
      return LUAIO_DEADLOCK;
  }
  return t->state == T_DONE ? t->outcome : LUAIO_ERROR;
}

int luaio_run (luaio_host *h) {
  while (h->exit_code < 0 && uv_run(h->loop, UV_RUN_ONCE)) {}
  return h->ntasks > 0 ? LUAIO_DEADLOCK : LUAIO_OK;
}

/* The task is pinned while the loop runs, so its userdata outlives the
 * live table: its results are read from the registry afterwards. */
int luaio__run_task (lua_State *L, int nargs, const char *fname) {
  luaio_host *h = luaio__host(L);
  luaio_task *t;
  int status;
  if (h->running || luaio__current(L))
    return luaL_error(L, "%s: the loop is already running (use "
                      "aio.spawn or call the function directly)", fname);
  t = luaio__spawn(L, nargs);                      /* task */
  t->pinned = 1;
  status = luaio_run_until(h, t);
  (void)luaio_stop(h);
  t->pinned = 0;
  if (status == LUAIO_DEADLOCK) {
    luaio_task_cancel(t);
    (void)luaio_stop(h);
    return luaL_error(L, "%s: deadlock: the task waits but nothing "
                      "is left that could wake it", fname);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
  return luaio__push_results(L, -1, t, 1);
}

/* ---- the C task API ------------------------------------------------- */

luaio_task *luaio_spawn (lua_State *L, int nargs) {
  luaio_task *t = luaio__spawn(L, nargs);
  t->pinned = 1;
  lua_pop(L, 1);
  return t;
}

/* The C-only fields, allocated on first use; NULL if out of memory. */
static luaio_task_ext *task_ext (luaio_task *t) {
  if (t->ext == NULL) t->ext = calloc(1, sizeof *t->ext);
  return t->ext;
}

void luaio_task_on_done (luaio_task *t, luaio_done_fn fn, void *ud) {
  luaio_task_ext *x = task_ext(t);
  if (x) { x->on_done = fn; x->on_done_ud = ud; }
}

int luaio_task_done (luaio_task *t) { return t->state == T_DONE; }

int luaio_task_status (luaio_task *t) {
  return t->state == T_DONE ? t->outcome : -1;
}

int luaio_task_push_results (lua_State *L, luaio_task *t) {
  int n;
  luaio__push_task(L, t);
  n = luaio__push_results(L, -1, t, 0);
  lua_remove(L, n < 0 ? -2 : -(n + 1));
  return n;
}

/* The text is kept in the task's extra table, so it lives as long as
 * the task (until luaio_task_release for a C-held task). */
const char *luaio_task_error (luaio_task *t) {
  lua_State *L = t->host->L;
  const char *text;
  if (t->state != T_DONE || t->outcome == LUAIO_OK) return NULL;
  luaio__push_task(L, t);                          /* ud */
  if (luaio__task_getextra(L, -1, "errtext") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_getiuservalue(L, -1, LUAIO_TASK_RESULT);           /* ud e */
    t->observed = 1;
    luaio__tostring(L, -1);                         /* ud e msg */
    if (luaio__is_error(L, -2, NULL)) {
      lua_getfield(L, -2, "traceback");
      if (lua_isstring(L, -1)) {
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
      }
      else lua_pop(L, 1);
    }
    lua_remove(L, -2);                             /* ud text */
    lua_pushvalue(L, -1);
    luaio__task_setextra(L, -3, "errtext");
  }
  text = lua_tostring(L, -1);                      /* anchored in extra */
  lua_pop(L, 2);
  return text;
}

void luaio_task_cancel (luaio_task *t) {
  luaio__cancel(t, LUAIO_CANCEL_TASK, 0, t->host->L);
}

void luaio_task_release (luaio_task *t) {
  lua_State *L = t->host->L;
  t->observed = 1;
  t->pinned = 0;
  free(t->ext);
  t->ext = NULL;
  if (!t->in_live && t->ref != LUA_NOREF) {     /* else finish drops it */
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
}

/* Push the strings argv[0..argc-1]. [-0, +argc] */
static void push_args (lua_State *L, int argc, char **argv) {
  int i;
  luaL_checkstack(L, argc, "too many arguments");
  for (i = 0; i < argc; i++) lua_pushstring(L, argv[i]);
}

luaio_task *luaio_spawn_file (luaio_host *h, const char *path, int argc,
                              char **argv) {
  lua_State *L = h->L;
  if (luaL_loadfile(L, path) != LUA_OK) return NULL;
  push_args(L, argc, argv);
  return luaio_spawn(L, argc);
}

luaio_task *luaio_spawn_string (luaio_host *h, const char *code,
                                const char *chunkname) {
  lua_State *L = h->L;
  if (luaL_loadbuffer(L, code, strlen(code), chunkname ? chunkname : code)
      != LUA_OK)
    return NULL;
  return luaio_spawn(L, 0);
}
