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
#include "host.h"

#define task_of(L) (*(luaio_task **)lua_getextraspace(L))
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

/* ---- the runaway guard ---------------------------------------------- */

/* Count hook of tasks when cfg.runaway_ms is set: a task that has run
 * that long since its resume without waiting gets an error, so one busy
 * script cannot freeze the loop (and every other task). */
static void runaway_hook (lua_State *L, lua_Debug *ar) {
  luaio_task *t = task_of(L);
  luaio_host *h;
  (void)ar;
  if (t == NULL) return;
  h = t->host;
  if (uv_hrtime() - h->resumed_at > (uint64_t)h->cfg.runaway_ms * 1000000u)
    luaL_error(L, "task ran for more than %d ms without waiting (runaway "
               "guard)", (int)h->cfg.runaway_ms);
}

/* ---- spawning ------------------------------------------------------ */

luaio_task *luaio__spawn (lua_State *L, int nargs) {
  luaio_host *h = luaio__host(L);
  luaio_task *t;
  lua_State *co;
  luaL_checkstack(L, 3, NULL);
  t = lua_newuserdatauv(L, sizeof *t, UV_NSLOTS);  /* fn args ud */
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, "luaio.Task");
  co = lua_newthread(L);                           /* fn args ud co */
  lua_setiuservalue(L, -2, UV_CO);                 /* fn args ud */
  lua_rotate(L, -(nargs + 2), 1);                  /* ud fn args */
  lua_xmove(L, co, nargs + 1);                     /* ud */
  anchor(L, h, t);
  t->host = h;
  t->co = co;
  t->n = nargs;
  t->id = ++h->task_ids;
  task_of(co) = t;
  if (h->cfg.runaway_ms) lua_sethook(co, runaway_hook, LUA_MASKCOUNT, 1000);
  luaio__ready(t);
  t->state = T_NEW;
  return t;
}

/* ---- finishing ----------------------------------------------------- */

/* Store co's results (nres on its top) in the task. [-0, +0] on L */
static void store_results (lua_State *L, luaio_task *t, int nres) {
  lua_State *co = t->co;
  t->n = nres;
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
  lua_setiuservalue(L, -2, UV_RESULT);
}

/* Record the error that killed co and close co (its <close> variables
 * run now; an error raised there replaces the first). [-0, +0] on L */
static void store_error (lua_State *L, luaio_task *t) {
  lua_State *co = t->co;
  int st;
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1);                             /* ud raw */
  luaio__wrap_error(L, co, -1);                    /* ud raw e */
  /* 5.4.4 returns the thread's own error status even when the <close>
   * handlers ran cleanly: only a different error object is a new one. */
  st = lua_resetthread(co);
  if (st != LUA_OK && lua_gettop(co) > 0) {
    lua_xmove(co, L, 1);                           /* ud raw e x */
    if (!lua_rawequal(L, -1, -3)) {                /* a handler raised */
      lua_xmove(L, co, 1);                         /* ud raw e */
      lua_pop(L, 1);                               /* ud raw */
      luaio__wrap_error(L, co, -1);                /* ud raw e2 */
    }
    else lua_pop(L, 1);
  }
  lua_remove(L, -2);                               /* ud e */
  if (luaio__is_error(L, -1, "cancelled") || luaio__is_error(L, -1, "timeout"))
    t->outcome = t->cancel_level ? LUAIO_CANCELLED : LUAIO_ERROR;
  else
    t->outcome = LUAIO_ERROR;
  if (luaio__is_error(L, -1, "exit")) t->observed = 1;
  else if (t->outcome == LUAIO_CANCELLED && t->cancel_level >= LUAIO_CANCEL_TASK)
    t->observed = 1;                /* a requested cancellation is no news */
  lua_setiuservalue(L, -2, UV_RESULT);
}

static void finish (luaio_host *h, luaio_task *t, int status, int nres) {
  lua_State *L = h->L;
  luaio_waiter *w;
  int awaited = t->awaiters.head != NULL;
  luaL_checkstack(L, nres + 5, NULL);
  luaio__push_task(L, t);                          /* ud */
  lua_getiuservalue(L, -1, UV_CO);
  lua_insert(L, -2);                               /* co ud: co anchored */
  lua_pushnil(L);
  lua_setiuservalue(L, -2, UV_CO);                 /* results go there */
  if (status == LUA_OK) {
    t->outcome = LUAIO_OK;
    store_results(L, t, nres);
  }
  else store_error(L, t);
  task_of(t->co) = NULL;
  t->co = NULL;
  t->state = T_DONE;
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
    nargs = t->n;
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
  if (!h->ready.head && !h->next_turn.head) uv_idle_stop(&h->idle);
}

static void check_cb (uv_check_t *check) {
  drain((luaio_host *)check->data);
}

/* ---- yielding a turn ----------------------------------------------- */

static int turn_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_task *t = task_of(L);
  (void)status;
  if (t->cancel_level > 0 && !t->shielded) {
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
void luaio__cancel (luaio_task *t, int level, int errindex, lua_State *L) {
  luaio_waiter *w;
  if (t->state == T_DONE || level <= t->cancel_level) return;
  t->cancel_level = level;
  luaio__push_task(L, t);
  if (errindex) lua_pushvalue(L, errindex); else lua_pushnil(L);
  luaio__task_setextra(L, -2, "cancel");
  lua_pop(L, 1);
  if (t->state != T_WAITING || t->shielded) return;
  w = t->waiter;
  if (w->abort) w->abort(w);        /* may complete with UV_ECANCELED */
  if (t->state == T_WAITING && !w->must_finish) luaio__detach(t);
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
    lua_getiuservalue(L, idx, UV_RESULT);
    if (raise) lua_error(L);
    return -1;
  }
  luaL_checkstack(L, t->n, "too many results");
  if (t->n == 1) lua_getiuservalue(L, idx, UV_RESULT);
  else if (t->n > 1) {
    lua_getiuservalue(L, idx, UV_RESULT);
    for (i = 1; i <= t->n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(t->n + 1));
  }
  return t->n;
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
      lua_getiuservalue(L, -1, UV_RESULT);
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

/* Cancel every live task and run the loop until they are all done. */
void luaio__cancel_all (luaio_host *h) {
  lua_State *L = h->L;
  int i, rounds = 0;
  while (h->ntasks > 0 && rounds++ < 1000) {
    /* Cancelling finishes no task (that happens when it resumes), so the
     * live table does not change under the loop. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
    for (i = 1; i <= h->ntasks; i++) {
      lua_rawgeti(L, -1, i);
      luaio__cancel(lua_touserdata(L, -1), LUAIO_CANCEL_EXIT, 0, L);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!uv_run(h->loop, UV_RUN_ONCE) && !h->ready.head && !h->next_turn.head)
      break;
  }
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
    lua_getiuservalue(L, -1, UV_RESULT);           /* ud e */
    t->observed = 1;
    luaL_tolstring(L, -1, NULL);                   /* ud e msg */
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
