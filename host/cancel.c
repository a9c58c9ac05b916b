/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * cancel.c: cancellation and its guards. A cancellation is requested at
 * a strength (cancel_level) and raised at the task's wait; an ending
 * task's <close> handlers get a cleanup grace first; a task that never
 * waits is stopped by the runaway and exit guards (count hooks); and
 * luaio_stop cancels everything within the exit grace, killing what
 * outlives it.
 */
#include "private.h"

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

#define STUCK_SHOWN 10          /* stacks printed at exit; the rest counted */

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
void luaio__guard_hook (lua_State *L, lua_Debug *ar) {
  luaio_task *t = task_of(L);
  luaio_host *h;
  uint64_t now;
  (void)ar;
  h = t ? t->host : luaio_host_of(L);      /* a plain coroutine: its host */
  if (h && h->limit_timer) luaio__limit_check(L, h);          /* the caps */
  if (t == NULL) return;
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
    if (h->nstuck++ < STUCK_SHOWN) {
      fprintf(stderr, "luaio: a task never waits %.1f s after the "
              "cancellation at exit; killing:\n", h->grace_ms / 1000.0);
      report_stuck(L, t);
    }
    luaio_push_error(L, "killed", NULL, "task still running at the end of "
                     "the exit grace");
    luaio__kill(L, t);
    luaio__raise_killed(L, t);
  }
}


/* ---- cancellation -------------------------------------------------- */

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
void luaio__leave_grace (luaio_host *h, luaio_task *t) {
  if (!(t->flags & TF_IN_GRACE)) return;
  t->flags &= ~TF_IN_GRACE;
  if (--h->ngrace == 0) luaio__deadline_stop(h, &h->grace);
}

/* Arm the host's grace deadline for t's grace end, if sooner. */
void luaio__arm_grace (luaio_host *h, luaio_task *t) {
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
      luaio__leave_grace(h, t);
      t->flags |= TF_GRACE_OVER;
      abort_wait(t);
    }
    else if (next == NULL || (int)(t->u.grace_end - next->u.grace_end) < 0)
      next = t;
  }
  lua_pop(L, 1);
  if (next) luaio__arm_grace(h, next);
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
    luaio__arm_grace(t->host, t);
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


/* ---- stopping: cancel everything, within the exit grace -------------- */

/* Apply fn to every live task. fn may not finish a task (none does: a
 * task finishes only when it is resumed), so the table holds still. */
static void each_live (luaio_host *h,
                       void (*fn)(lua_State *L, luaio_task *t)) {
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
    lua_sethook(t->co, luaio__guard_hook, LUA_MASKCOUNT, 1000);
  luaio__cancel(t, LUAIO_CANCEL_EXIT, 0, L);
}

static void kill_stuck (lua_State *L, luaio_task *t) {
  luaio_push_error(L, "killed", NULL, "task still running at the end of "
                   "the exit grace");
  luaio__kill(L, t);
  abort_wait(t);
}

static void wake_cb (luaio_deadline *d) { (void)d; }

/* A task finished while the exit grace runs: when fewer tasks are left
 * than ever before in it, the grace starts again. A large batch still
 * finishing (100,000 cancelled tasks take seconds on a loaded machine)
 * is not cut short; tasks that spawn as many as finish make no progress,
 * so the exit stays bounded. */
void luaio__stop_progress (luaio_host *h) {
  if (h->ntasks >= h->stop_fewest) return;
  h->stop_fewest = h->ntasks;
  h->stop_deadline = uv_hrtime() + (uint64_t)h->grace_ms * 1000000u;
}

/* Arm wake for the end of the grace, so that a loop turn waiting on I/O
 * ends with it. */
static void arm_wake (luaio_host *h, luaio_deadline *wake, uint64_t now) {
  luaio__deadline_stop(h, wake);
  luaio__deadline_start(h, wake, (h->stop_deadline - now) / 1000000u + 1,
                        wake_cb);
}

/* report_stuck for the first STUCK_SHOWN live tasks, then a count. */
static void report_left (luaio_host *h) {
  lua_State *L = h->L;
  int i, shown = h->ntasks < STUCK_SHOWN ? h->ntasks : STUCK_SHOWN;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  for (i = 1; i <= shown; i++) {
    lua_rawgeti(L, -1, i);
    report_stuck(L, lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (h->ntasks > shown)
    fprintf(stderr, "  ... and %d more\n", h->ntasks - shown);
}

int luaio_stop (luaio_host *h) {
  luaio_deadline wake;
  int rounds = 0, left;
  uint64_t now;
  if (h->running || h->ntasks == 0) return 0;
  if (h->debug) luaio__debug_pending(h);
  h->stopping = 1;
  h->nstuck = 0;
  h->stop_fewest = h->ntasks;
  h->stop_deadline = uv_hrtime() + (uint64_t)h->grace_ms * 1000000u;
  memset(&wake, 0, sizeof wake);
  wake.slot = UINT32_MAX;
  /* Cancelling again each round reaches tasks spawned meanwhile. */
  while (h->ntasks > 0 && (now = uv_hrtime()) < h->stop_deadline) {
    arm_wake(h, &wake, now);
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
    report_left(h);
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
  if (h->nstuck > STUCK_SHOWN)
    fprintf(stderr, "luaio: ... and %d more tasks that never wait killed\n",
            h->nstuck - STUCK_SHOWN);
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
    lua_sethook(L, luaio__guard_hook, LUA_MASKCOUNT, 1000);
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
