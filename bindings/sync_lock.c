/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_lock.c: aio.semaphore, aio.bounded_semaphore, aio.lock (with
 * their permits), aio.event and aio.condition. A condition lives here
 * with the lock it releases and re-takes: it uses the lock's innards
 * (its holder, its release).
 */
#include "sync.h"

/* ---- semaphores and locks --------------------------------------------- */

typedef struct sem {
  lua_Integer value, bound;     /* bound: initial value, or 0 (unbounded) */
  int is_lock;
  luaio_waitlist waiters;
} sem;

/* A permit is armed while it holds a unit; released (or never armed)
 * it is inert. Collection never gives a permit back: a script may drop
 * it and give the unit back with s:release(). A lock keeps its holding
 * permit as its user value, so that lock:release() spends it (its
 * <close> then does nothing) and a collection cannot take it. */
typedef struct permit {
  sem *s;
  int released;
} permit;

static sem *check_sem (lua_State *L) {
  return (sem *)luaL_checkudata(L, 1, "luaio.Semaphore");
}

/* Give a permit back: to the first waiter, else to the count. The count
 * never wraps: at math.maxinteger a release raises instead. */
static int sem_release_one (lua_State *L, sem *s, const char *fname) {
  if (s->waiters.head && luaio_waitlist_wake(&s->waiters, 0)) return 0;
  if (s->bound && s->value >= s->bound)
    return luaL_error(L, "%s: released too many times", fname);
  if (s->value == LUA_MAXINTEGER)
    return luaL_error(L, "%s: the count would overflow (at most "
                      "math.maxinteger)", fname);
  s->value++;
  return 0;
}

/* The permit holding the lock at sidx (its user value), or NULL. */
static permit *lock_holder (lua_State *L, int sidx) {
  permit *p;
  lua_getiuservalue(L, sidx, 1);
  p = (permit *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p;
}

/* Make the permit at pidx (0: none) the lock's holder. Allocates
 * nothing. */
static void set_holder (lua_State *L, int sidx, int pidx) {
  if (pidx) lua_pushvalue(L, pidx); else lua_pushnil(L);
  lua_setiuservalue(L, sidx, 1);
}

/* Push an inert permit for s (at index 1): made before a unit is taken,
 * so that running out of memory here loses no unit. [-0, +1] */
static permit *push_permit (lua_State *L, sem *s) {
  permit *p = lua_newuserdatauv(L, sizeof *p, 1);
  p->s = s;
  p->released = 1;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);                     /* keeps s alive */
  luaL_setmetatable(L, "luaio.Permit");
  return p;
}

/* The permit at pidx now holds a unit of the semaphore at 1. */
static int arm (lua_State *L, permit *p, int pidx) {
  p->released = 0;
  if (p->s->is_lock) set_holder(L, 1, pidx);
  lua_settop(L, pidx);
  return 1;
}

/* Give the permit at pidx back once (spent even if the release raises);
 * an inert one does nothing. */
static void give_back (lua_State *L, int pidx, const char *fname) {
  permit *p = (permit *)lua_touserdata(L, pidx);
  if (p->released) return;
  p->released = 1;
  if (p->s->is_lock) {
    lua_getiuservalue(L, pidx, 1);                 /* the lock */
    if (lock_holder(L, lua_gettop(L)) == p) set_holder(L, lua_gettop(L), 0);
    lua_pop(L, 1);
  }
  sem_release_one(L, p->s, fname);
}

/* permit:release() (also __close): gives the permit back once. */
static int permit_release (lua_State *L) {
  luaL_checkudata(L, 1, "luaio.Permit");
  give_back(L, 1, "permit:release");
  return 0;
}

/* Collection gives nothing back (see above): __close, no __gc. */
static const luaL_Reg permit_methods[] = {
  {"release", permit_release}, {NULL, NULL}
};
static const luaL_Reg permit_meta[] = {
  {"__close", permit_release}, {NULL, NULL}
};

/* The name the user called a method of s by, in errors. */
static const char *sem_name (sem *s, const char *method) {
  if (strcmp(method, "acquire") == 0)
    return s->is_lock ? "lock:acquire" : "semaphore:acquire";
  return s->is_lock ? "lock:with" : "semaphore:with";
}

/* Stack: s, the inert permit, the waiter. */
static int acquire_k (lua_State *L, int status, lua_KContext ctx) {
  sem *s = (sem *)ctx;
  if (status != 0)
    return luaio_raise_uv(L, status, sem_name(s, "acquire"), NULL, NULL);
  return arm(L, (permit *)lua_touserdata(L, 2), 2);  /* handed over */
}

/* s:acquire() -> permit (usable with <close>); waits FIFO while none is
 * free. */
static int sem_acquire (lua_State *L) {
  sem *s = check_sem(L);
  permit *p;
  lua_settop(L, 1);
  p = push_permit(L, s);
  if (s->value > 0 && s->waiters.head == NULL) {
    s->value--;
    return arm(L, p, 2);
  }
  luaio_check_wait(L, sem_name(s, "acquire"));
  return luaio_waitlist_wait(L, &s->waiters, acquire_k, (lua_KContext)s);
}

/* s:try_acquire() -> permit or nil, never waits. */
static int sem_try_acquire (lua_State *L) {
  sem *s = check_sem(L);
  permit *p;
  lua_settop(L, 1);
  if (s->value == 0 || s->waiters.head != NULL) return 0;
  p = push_permit(L, s);
  s->value--;
  return arm(L, p, 2);
}

/* s:release(): gives back a permit acquired without keeping the object.
 * A lock's holding permit is spent by it: its <close> or release() then
 * does nothing (a semaphore cannot tell which of its permits is given
 * back, so its permits stay armed). */
static int sem_release (lua_State *L) {
  sem *s = check_sem(L);
  permit *p;
  lua_settop(L, 1);
  sem_release_one(L, s, s->is_lock ? "lock:release" : "semaphore:release");
  if (s->is_lock && (p = lock_holder(L, 1)) != NULL) {
    p->released = 1;
    set_holder(L, 1, 0);
  }
  return 0;
}

static int with_done_k (lua_State *L, int status, lua_KContext ctx) {
  give_back(L, (int)ctx, sem_name(check_sem(L), "with"));
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - (int)ctx;
}

static int with_acquired_k (lua_State *L, int status, lua_KContext ctx) {
  int n = (int)ctx;                      /* s fn args permit */
  (void)status;
  lua_insert(L, 2);                      /* s permit fn args */
  return with_done_k(L, lua_pcallk(L, n, LUA_MULTRET, 0, 2, with_done_k), 2);
}

/* s:with(fn, ...) -> fn's results, holding a permit while fn runs. */
static int sem_with (lua_State *L) {
  int n;
  check_sem(L);
  luaio__checktype(L, 2, "semaphore:with", LUA_TFUNCTION);
  n = lua_gettop(L) - 2;
  lua_getfield(L, 1, "acquire");
  lua_pushvalue(L, 1);
  lua_callk(L, 1, 1, (lua_KContext)n, with_acquired_k);
  return with_acquired_k(L, LUA_OK, (lua_KContext)n);
}

static int sem_value (lua_State *L) {
  lua_pushinteger(L, check_sem(L)->value);
  return 1;
}

static int sem_locked (lua_State *L) {
  lua_pushboolean(L, check_sem(L)->value == 0);
  return 1;
}

static const luaL_Reg sem_methods[] = {
  {"acquire", sem_acquire}, {"try_acquire", sem_try_acquire},
  {"release", sem_release}, {"with", sem_with}, {"value", sem_value},
  {"locked", sem_locked}, {NULL, NULL}
};

static int new_sem (lua_State *L, lua_Integer value, int bounded,
                    int is_lock) {
  sem *s;
  luaio__class(L, "luaio.Semaphore", sem_methods, NULL, NULL);
  luaio__class(L, "luaio.Permit", permit_methods, NULL, permit_meta);
  s = lua_newuserdatauv(L, sizeof *s, 1);         /* a lock's holder */
  memset(s, 0, sizeof *s);
  s->value = value;
  s->bound = bounded ? value : 0;
  s->is_lock = is_lock;
  luaL_setmetatable(L, "luaio.Semaphore");
  return 1;
}

static lua_Integer check_count (lua_State *L, const char *fname) {
  lua_Integer n = luaio__optinteger(L, 1, fname, 1);
  if (n < 0) luaio__argerror(L, 1, fname, "value must be >= 0");
  return n;
}

/* aio.semaphore([n]), aio.bounded_semaphore([n]), aio.lock() */
static int sync_semaphore (lua_State *L) {
  return new_sem(L, check_count(L, "aio.semaphore"), 0, 0);
}
static int sync_bounded_semaphore (lua_State *L) {
  return new_sem(L, check_count(L, "aio.bounded_semaphore"), 1, 0);
}
static int sync_lock (lua_State *L) {
  return new_sem(L, 1, 1, 1);
}

/* ---- events ----------------------------------------------------------- */

typedef struct event {
  int set;
  luaio_waitlist waiters;
} event;

static event *check_event (lua_State *L) {
  return (event *)luaL_checkudata(L, 1, "luaio.Event");
}

static int event_set (lua_State *L) {
  event *e = check_event(L);
  e->set = 1;
  luaio_waitlist_wake_all(&e->waiters, 0);
  return 0;
}

static int event_clear (lua_State *L) {
  check_event(L)->set = 0;
  return 0;
}

static int event_is_set (lua_State *L) {
  lua_pushboolean(L, check_event(L)->set);
  return 1;
}

static int true_k (lua_State *L, int status, lua_KContext ctx) {
  if (status != 0)
    return luaio_raise_uv(L, status, (const char *)ctx, NULL, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* e:wait() -> true once the event is set. */
static int event_wait (lua_State *L) {
  event *e = check_event(L);
  if (e->set) return true_k(L, 0, 0);
  luaio_check_wait(L, "event:wait");
  return luaio_waitlist_wait(L, &e->waiters, true_k,
                             (lua_KContext)"event:wait");
}

static const luaL_Reg event_methods[] = {
  {"set", event_set}, {"clear", event_clear}, {"is_set", event_is_set},
  {"wait", event_wait}, {NULL, NULL}
};

/* aio.event() */
static int sync_event (lua_State *L) {
  event *e;
  luaio__class(L, "luaio.Event", event_methods, NULL, NULL);
  e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, "luaio.Event");
  return 1;
}

/* ---- conditions ------------------------------------------------------- */

typedef struct cond {
  luaio_waitlist waiters;
} cond;

static cond *check_cond (lua_State *L) {
  return (cond *)luaL_checkudata(L, 1, "luaio.Condition");
}

/* Push the condition's lock. [-0, +1] */
static sem *cond_lock (lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  return (sem *)lua_touserdata(L, -1);
}

static int forward_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L) - 1;
}

/* Call method name of the lock with the arguments after self. */
static int cond_forward (lua_State *L, const char *name) {
  int n = lua_gettop(L) - 1;
  check_cond(L);
  cond_lock(L);
  lua_getfield(L, -1, name);
  lua_insert(L, 2);
  lua_insert(L, 3);                                /* c method lock args */
  lua_callk(L, n + 1, LUA_MULTRET, 0, forward_k);
  return forward_k(L, LUA_OK, 0);
}

/* The lock is ours again, and so is its holding permit, if one held it
 * before the wait and is still armed. A cancellation that came while we
 * waited for the notify, or for the lock (held back meanwhile), is
 * raised now, as asyncio does; a notify we got but do not act on goes to
 * the next waiter, so it is not lost. Stack: the condition, its lock,
 * the permit that held it (or nil). */
static int relock_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_task *t = luaio__current(L);
  permit *p = (permit *)lua_touserdata(L, 3);
  (void)status;
  if (p != NULL && !p->released) set_holder(L, 2, 3);
  int shields = luaio__task_unshield(t);
  if (ctx || (luaio__cancel_pending(t) && shields == 0)) {
    if (!ctx) luaio_waitlist_wake(&check_cond(L)->waiters, 0);
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Re-acquire the lock after a wait, holding back cancellation so the
 * caller always leaves holding it, as it came in. */
static int relock (lua_State *L, sem *s, int cancelled) {
  luaio_task *t = luaio__current(L);
  luaio__task_shield(t);
  if (s->value > 0 && s->waiters.head == NULL) {
    s->value--;
    return relock_k(L, 0, cancelled);
  }
  return luaio_waitlist_wait(L, &s->waiters, relock_k, cancelled);
}

static int cond_wait_k (lua_State *L, int status, lua_KContext ctx) {
  return relock(L, (sem *)ctx, status == UV_ECANCELED);
}

/* c:wait() -> true: releases the lock, waits for a notify, re-acquires.
 * The permit holding the lock waits with us (index 3), so that another
 * task's lock:release() meanwhile spends its own permit, not ours. */
static int cond_wait (lua_State *L) {
  cond *c = check_cond(L);
  sem *s;
  luaio_check_wait(L, "condition:wait");
  lua_settop(L, 1);
  s = cond_lock(L);                                /* at 2 */
  if (s->value > 0)
    return luaL_error(L, "condition:wait: the lock is not acquired");
  lua_getiuservalue(L, 2, 1);                      /* its holder, at 3 */
  set_holder(L, 2, 0);
  sem_release_one(L, s, "condition:wait");
  return luaio_waitlist_wait(L, &c->waiters, cond_wait_k, (lua_KContext)s);
}

static int wait_for_pred_k (lua_State *L, int status, lua_KContext ctx);

static int wait_for_again_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_callk(L, 0, 1, ctx, wait_for_pred_k);
  return wait_for_pred_k(L, LUA_OK, ctx);
}

static int wait_for_pred_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  if (lua_toboolean(L, -1)) return 1;
  lua_settop(L, 2);
  lua_pushcfunction(L, cond_wait);
  lua_pushvalue(L, 1);
  lua_callk(L, 1, 0, ctx, wait_for_again_k);
  return wait_for_again_k(L, LUA_OK, ctx);
}

/* c:wait_for(predicate) -> predicate's true value, waiting until then. */
static int cond_wait_for (lua_State *L) {
  check_cond(L);
  luaio__checktype(L, 2, "condition:wait_for", LUA_TFUNCTION);
  return wait_for_again_k(L, LUA_OK, 0);
}

/* c:notify([n]) wakes up to n (1) waiters; c:notify_all() all of them. */
static int cond_notify (lua_State *L) {
  cond *c = check_cond(L);
  lua_Integer n = luaio__optinteger(L, 2, "condition:notify", 1);
  if (n < 0) return luaio__argerror(L, 2, "condition:notify",
                                    "n must be >= 0");
  for (; n > 0 && luaio_waitlist_wake(&c->waiters, 0); n--) {}
  return 0;
}

static int cond_notify_all (lua_State *L) {
  luaio_waitlist_wake_all(&check_cond(L)->waiters, 0);
  return 0;
}

static int cond_acquire (lua_State *L) { return cond_forward(L, "acquire"); }
static int cond_release (lua_State *L) { return cond_forward(L, "release"); }
static int cond_locked (lua_State *L) { return cond_forward(L, "locked"); }
static int cond_with (lua_State *L) { return cond_forward(L, "with"); }

static const luaL_Reg cond_methods[] = {
  {"wait", cond_wait}, {"wait_for", cond_wait_for},
  {"notify", cond_notify}, {"notify_all", cond_notify_all},
  {"acquire", cond_acquire}, {"release", cond_release},
  {"locked", cond_locked}, {"with", cond_with}, {NULL, NULL}
};

/* aio.condition([lock]) */
static int sync_condition (lua_State *L) {
  cond *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    sync_lock(L);
  }
  else if (!luaL_testudata(L, 1, "luaio.Semaphore"))
    return luaio__typeerror(L, 1, "aio.condition", "lock");
  lua_settop(L, 1);
  luaio__class(L, "luaio.Condition", cond_methods, NULL, NULL);
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, "luaio.Condition");
  return 1;
}

const luaL_Reg luaio__lock_funcs[] = {
  {"semaphore", sync_semaphore},
  {"bounded_semaphore", sync_bounded_semaphore}, {"lock", sync_lock},
  {"event", sync_event}, {"condition", sync_condition}, {NULL, NULL}
};
