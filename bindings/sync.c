/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync.c: queues, semaphores, locks, events, conditions and a rate
 * limiter. Part of the `luaio` module (luaio__sync_register); also
 * require-able alone as "luaio.sync".
 *
 * Waiters queue FIFO on luaio_waitlists. A wake-up hands over what it
 * promised (an item, a free slot, a permit) by reserving it, so a task
 * that calls get_nowait meanwhile cannot take it, and a waiter that is
 * cancelled before being woken never consumes anything.
 */
#include "../host/host.h"
#include <math.h>

/* ---- queues ------------------------------------------------------------ */

enum { Q_FIFO, Q_LIFO, Q_PRIO };

typedef struct queue {
  int kind, closed;
  lua_Integer maxsize;          /* 0: unbounded */
  lua_Integer head, count, cap; /* ring (FIFO) or array (LIFO, heap) */
  lua_Integer items_reserved;   /* items promised to woken getters */
  lua_Integer slots_reserved;   /* slots promised to woken putters */
  lua_Integer unfinished;       /* put minus task_done */
  luaio_waitlist getters, putters, joiners;
} queue;

/* Queue uservalues: the items table, the priority comparator. */
enum { QV_ITEMS = 1, QV_LESS = 2 };

static queue *check_queue (lua_State *L) {
  return (queue *)luaL_checkudata(L, 1, "luaio.Queue");
}

/* ---- the priority heap ----------------------------------------------
 *
 * A 1-based binary heap in the items table. The order (`less`, or `<`)
 * is Lua code that may raise, so a put or get first finds where the
 * moving item ends, in one protected call that only reads the heap, and
 * changes the heap afterwards: a failing comparison leaves the queue as
 * it was. The end position alone gives the path (its ancestors).
 */

/* Is a before b? less (a function, or nil for `<`) is at index 2. */
static int heap_lt (lua_State *L, int a, int b) {
  int r;
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_isnil(L, 2)) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Is x (at index 3) before items[i] (x_first), or items[i] before x? */
static int heap_item_lt_x (lua_State *L, lua_Integer i, int x_first) {
  int r;
  lua_rawgeti(L, 1, i);
  r = x_first ? heap_lt(L, 3, lua_gettop(L)) : heap_lt(L, lua_gettop(L), 3);
  lua_pop(L, 1);
  return r;
}

static int heap_child_lt (lua_State *L, lua_Integer i, lua_Integer j) {
  int r;
  lua_rawgeti(L, 1, i);
  lua_rawgeti(L, 1, j);
  r = heap_lt(L, -2, -1);
  lua_pop(L, 2);
  return r;
}

/* Run protected: (items, less, x, n, down) -> position. Up: x is to be
 * added at n. Down: the root is taken, x (the last item) is to fill the
 * heap of n items. Reads only. */
static int heap_find (lua_State *L) {
  lua_Integer i, n = lua_tointeger(L, 4);
  if (!lua_toboolean(L, 5)) {
    for (i = n; i > 1 && heap_item_lt_x(L, i / 2, 1); i /= 2) {}
  }
  else {
    for (i = 1; 2 * i <= n; ) {
      lua_Integer c = 2 * i;
      if (c + 1 <= n && heap_child_lt(L, c + 1, c)) c++;
      if (!heap_item_lt_x(L, c, 0)) break;
      i = c;
    }
  }
  lua_pushinteger(L, i);
  return 1;
}

/* Where x (at index x) goes, or -1 with the order's error on top. Items
 * table at t, queue at 1. [-0, +0 | +1] */
static lua_Integer heap_where (lua_State *L, int t, int x, lua_Integer n,
                               int down) {
  lua_Integer pos;
  luaL_checkstack(L, 8, NULL);
  lua_pushcfunction(L, heap_find);
  lua_pushvalue(L, t);
  lua_getiuservalue(L, 1, QV_LESS);
  lua_pushvalue(L, x);
  lua_pushinteger(L, n);
  lua_pushboolean(L, down);
  if (lua_pcall(L, 5, 1, 0) != LUA_OK) return -1;
  pos = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return pos;
}

/* Add x (at index x) as item n, moving its ancestors down to make room
 * at pos. The first write is to the new slot, so running out of memory
 * there leaves the heap unchanged. */
static void heap_place_up (lua_State *L, int t, int x, lua_Integer n,
                           lua_Integer pos) {
  lua_Integer i;
  for (i = n; i > pos; i /= 2) {
    lua_rawgeti(L, t, i / 2);
    lua_rawseti(L, t, i);
  }
  lua_pushvalue(L, x);
  lua_rawseti(L, t, pos);
}

/* The root has been read: move the path from the root to pos up one
 * level and put x (the old last item n) at pos. */
static void heap_place_down (lua_State *L, int t, int x, lua_Integer n,
                             lua_Integer pos) {
  lua_Integer a = 1;
  int shift = 0;
  while ((pos >> shift) > 1) shift++;
  while (shift-- > 0) {
    lua_Integer c = pos >> shift;
    lua_rawgeti(L, t, c);
    lua_rawseti(L, t, a);
    a = c;
  }
  lua_pushvalue(L, x);
  lua_rawseti(L, t, pos);
  lua_pushnil(L);
  lua_rawseti(L, t, n);
}

/* Grow the FIFO ring so that it keeps its order. */
static void ring_grow (lua_State *L, queue *q, int t) {
  lua_Integer i, cap = q->cap ? q->cap * 2 : 16;
  lua_createtable(L, (int)cap, 0);
  for (i = 0; i < q->count; i++) {
    lua_rawgeti(L, t, (q->head - 1 + i) % q->cap + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, t);
  lua_pushvalue(L, t);
  lua_setiuservalue(L, 1, QV_ITEMS);
  q->head = 1;
  q->cap = cap;
}

/* Add the value on top to the queue (queue at 1), popping it. Returns
 * LUA_OK, or an error status with the error on top (a priority order
 * raised) and the queue unchanged. [-1, +0 | +1] */
static int queue_push (lua_State *L, queue *q) {
  int t;
  lua_getiuservalue(L, 1, QV_ITEMS);
  t = lua_gettop(L);                               /* x items */
  if (q->kind == Q_FIFO) {
    if (q->count == q->cap) ring_grow(L, q, t);
    lua_pushvalue(L, t - 1);
    lua_rawseti(L, t, (q->head - 1 + q->count) % q->cap + 1);
  }
  else if (q->kind == Q_LIFO) {
    lua_pushvalue(L, t - 1);
    lua_rawseti(L, t, q->count + 1);
  }
  else {
    lua_Integer pos = heap_where(L, t, t - 1, q->count + 1, 0);
    if (pos < 0) {
      lua_replace(L, t - 1);
      lua_settop(L, t - 1);                        /* err */
      return LUA_ERRRUN;
    }
    heap_place_up(L, t, t - 1, q->count + 1, pos);
  }
  q->count++;
  lua_pop(L, 2);
  q->unfinished++;
  return LUA_OK;
}

/* Push the next item, removing it. Returns LUA_OK, or an error status
 * with the error on top and the queue unchanged. [-0, +1] */
static int queue_pop (lua_State *L, queue *q) {
  int t;
  lua_getiuservalue(L, 1, QV_ITEMS);
  t = lua_gettop(L);
  if (q->kind == Q_FIFO) {
    lua_rawgeti(L, t, q->head);
    lua_pushnil(L);
    lua_rawseti(L, t, q->head);
    q->head = q->head % q->cap + 1;
  }
  else if (q->kind == Q_LIFO || q->count == 1) {
    lua_rawgeti(L, t, q->count);
    lua_pushnil(L);
    lua_rawseti(L, t, q->count);
  }
  else {
    lua_Integer pos;
    lua_rawgeti(L, t, 1);                          /* items top */
    lua_rawgeti(L, t, q->count);                   /* items top last */
    pos = heap_where(L, t, t + 2, q->count - 1, 1);
    if (pos < 0) {                                 /* items top last err */
      lua_replace(L, t);
      lua_settop(L, t);
      return LUA_ERRRUN;
    }
    heap_place_down(L, t, t + 2, q->count, pos);
    lua_pop(L, 1);                                 /* items top */
  }
  q->count--;
  lua_remove(L, t);
  return LUA_OK;
}

static int queue_full (queue *q) {
  return q->maxsize > 0 && q->count + q->slots_reserved >= q->maxsize;
}

/* A slot was freed: promise it to the first waiting putter. */
static void wake_putter (queue *q) {
  if (luaio_waitlist_wake(&q->putters, 0)) q->slots_reserved++;
}

/* An item arrived: promise it to the first waiting getter. */
static void wake_getter (queue *q) {
  if (luaio_waitlist_wake(&q->getters, 0)) q->items_reserved++;
}

static int raise_kind (lua_State *L, const char *kind, const char *msg) {
  luaio_push_error(L, kind, NULL, msg);
  return luaio_raise(L);
}

static void check_item (lua_State *L, const char *fname) {
  if (lua_isnoneornil(L, 2)) luaio__argerror(L, 2, fname, "item expected, "
                                             "got nil");
}

/* Put the item at 2 and promise it to a waiting getter. If the order
 * raises, the queue is unchanged and the error is raised. */
static int put_item (lua_State *L, queue *q) {
  lua_settop(L, 2);
  if (queue_push(L, q) != LUA_OK) return lua_error(L);
  wake_getter(q);
  return 0;
}

/* q:put_nowait(item): an error of kind "full" if there is no room. */
static int queue_put_nowait (lua_State *L) {
  queue *q = check_queue(L);
  check_item(L, "queue:put_nowait");
  if (q->closed) return raise_kind(L, "closed", "queue is closed");
  if (queue_full(q)) return raise_kind(L, "full", "queue is full");
  return put_item(L, q);
}

static int put_k (lua_State *L, int status, lua_KContext ctx) {
  queue *q = (queue *)ctx;
  if (status == UV_EOF) return raise_kind(L, "closed", "queue is closed");
  if (status != 0) return luaio_raise_uv(L, status, "queue:put", NULL, NULL);
  q->slots_reserved--;
  if (q->closed) return raise_kind(L, "closed", "queue is closed");
  lua_settop(L, 2);
  if (queue_push(L, q) != LUA_OK) {
    wake_putter(q);                 /* our slot is free again: pass it on */
    return lua_error(L);
  }
  wake_getter(q);
  return 0;
}

/* q:put(item): waits while the queue is full (FIFO among putters). */
static int queue_put (lua_State *L) {
  queue *q = check_queue(L);
  check_item(L, "queue:put");
  if (q->closed) return raise_kind(L, "closed", "queue is closed");
  if (!queue_full(q) && q->putters.head == NULL) return put_item(L, q);
  luaio_check_wait(L, "queue:put");
  lua_settop(L, 2);
  return luaio_waitlist_wait(L, &q->putters, put_k, (lua_KContext)q);
}

/* Take an item for a getter (one is there). If the order raises, the
 * queue is unchanged and the error is raised. [-0, +1] */
static int take (lua_State *L, queue *q) {
  if (queue_pop(L, q) != LUA_OK) return lua_error(L);
  wake_putter(q);
  return 1;
}

static int closed_result (lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* q:get_nowait() -> item; an error of kind "empty" if there is none;
 * nil, "closed" once a closed queue is drained. */
static int queue_get_nowait (lua_State *L) {
  queue *q = check_queue(L);
  if (q->count - q->items_reserved > 0) return take(L, q);
  if (q->closed) return closed_result(L);
  return raise_kind(L, "empty", "queue is empty");
}

static int get_k (lua_State *L, int status, lua_KContext ctx) {
  queue *q = (queue *)ctx;
  if (status == UV_EOF)                           /* woken by close */
    return q->count - q->items_reserved > 0 ? take(L, q) : closed_result(L);
  if (status != 0) return luaio_raise_uv(L, status, "queue:get", NULL, NULL);
  q->items_reserved--;
  if (queue_pop(L, q) != LUA_OK) {
    wake_getter(q);                 /* the item stays: pass it on */
    return lua_error(L);
  }
  wake_putter(q);
  return 1;
}

/* q:get() -> item, waiting while the queue is empty; nil, "closed" once
 * the queue is closed and drained. */
static int queue_get (lua_State *L) {
  queue *q = check_queue(L);
  if (q->count - q->items_reserved > 0 && q->getters.head == NULL)
    return take(L, q);
  if (q->closed && q->count - q->items_reserved <= 0) return closed_result(L);
  luaio_check_wait(L, "queue:get");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &q->getters, get_k, (lua_KContext)q);
}

/* q:task_done(): one item taken with get is processed. */
static int queue_task_done (lua_State *L) {
  queue *q = check_queue(L);
  if (q->unfinished <= 0)
    return luaL_error(L, "queue:task_done: called more times than items "
                      "were put");
  if (--q->unfinished == 0) luaio_waitlist_wake_all(&q->joiners, 0);
  return 0;
}

static int join_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "queue:join", NULL, NULL);
  return 0;
}

/* q:join(): waits until every item put has been marked task_done. */
static int queue_join (lua_State *L) {
  queue *q = check_queue(L);
  if (q->unfinished == 0) return 0;
  luaio_check_wait(L, "queue:join");
  return luaio_waitlist_wait(L, &q->joiners, join_k, 0);
}

/* q:close(): no more puts; getters get nil, "closed" once it is drained;
 * waiting putters get a "closed" error. */
static int queue_close (lua_State *L) {
  queue *q = check_queue(L);
  q->closed = 1;
  luaio_waitlist_wake_all(&q->putters, UV_EOF);
  luaio_waitlist_wake_all(&q->getters, UV_EOF);
  return 0;
}

static int queue_size (lua_State *L) {
  lua_pushinteger(L, check_queue(L)->count);
  return 1;
}

static int queue_empty (lua_State *L) {
  lua_pushboolean(L, check_queue(L)->count == 0);
  return 1;
}

static int queue_isfull (lua_State *L) {
  queue *q = check_queue(L);
  lua_pushboolean(L, q->maxsize > 0 && q->count >= q->maxsize);
  return 1;
}

static int queue_is_closed (lua_State *L) {
  lua_pushboolean(L, check_queue(L)->closed);
  return 1;
}

static int queue_len (lua_State *L) { return queue_size(L); }

static const luaL_Reg queue_methods[] = {
  {"put", queue_put}, {"get", queue_get}, {"put_nowait", queue_put_nowait},
  {"get_nowait", queue_get_nowait}, {"task_done", queue_task_done},
  {"join", queue_join}, {"close", queue_close}, {"size", queue_size},
  {"empty", queue_empty}, {"full", queue_isfull},
  {"closed", queue_is_closed}, {NULL, NULL}
};

static int new_queue (lua_State *L, int kind, const char *fname) {
  lua_Integer maxsize = luaio__optinteger(L, 1, fname, 0);
  queue *q;
  if (maxsize < 0) return luaio__argerror(L, 1, fname, "maxsize must be "
                                          ">= 0");
  if (kind == Q_PRIO && !lua_isnoneornil(L, 2))
    luaio__checktype(L, 2, fname, LUA_TFUNCTION);
  q = lua_newuserdatauv(L, sizeof *q, 2);
  memset(q, 0, sizeof *q);
  q->kind = kind;
  q->maxsize = maxsize;
  q->head = 1;
  lua_createtable(L, maxsize > 0 && maxsize < 1024 ? (int)maxsize : 16, 0);
  lua_setiuservalue(L, -2, QV_ITEMS);
  if (kind == Q_PRIO && !lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, QV_LESS);
  }
  if (luaL_newmetatable(L, "luaio.Queue")) {
    luaL_newlib(L, queue_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, queue_len);
    lua_setfield(L, -2, "__len");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* aio.queue([maxsize]), aio.lifo_queue([maxsize]),
 * aio.priority_queue([maxsize [, less]]) */
static int sync_queue (lua_State *L) {
  return new_queue(L, Q_FIFO, "aio.queue");
}
static int sync_lifo_queue (lua_State *L) {
  return new_queue(L, Q_LIFO, "aio.lifo_queue");
}
static int sync_priority_queue (lua_State *L) {
  return new_queue(L, Q_PRIO, "aio.priority_queue");
}

/* ---- semaphores and locks ----------------------------------------------- */

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

/* Stack: s, the inert permit, the waiter. */
static int acquire_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "acquire", NULL, NULL);
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
  luaio_check_wait(L, s->is_lock ? "lock:acquire" : "semaphore:acquire");
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
  give_back(L, (int)ctx, "with");
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
  sem *s = lua_newuserdatauv(L, sizeof *s, 1);    /* a lock's holder */
  memset(s, 0, sizeof *s);
  s->value = value;
  s->bound = bounded ? value : 0;
  s->is_lock = is_lock;
  if (luaL_newmetatable(L, "luaio.Semaphore")) {
    luaL_newlib(L, sem_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  if (luaL_newmetatable(L, "luaio.Permit")) {
    lua_pushcfunction(L, permit_release);
    lua_setfield(L, -2, "__close");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, permit_release);
    lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
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

/* ---- events ---------------------------------------------------------------- */

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
  event *e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  if (luaL_newmetatable(L, "luaio.Event")) {
    luaL_newlib(L, event_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* ---- conditions ------------------------------------------------------------ */

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
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (luaL_newmetatable(L, "luaio.Condition")) {
    luaL_newlib(L, cond_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* ---- rate limiter ------------------------------------------------------------ */

/* A token bucket: `rate` tokens per second up to `burst`; one deadline
 * per limiter wakes waiters as tokens come. */
typedef struct limiter {
  double rate, burst, tokens;
  uint64_t last;                /* ns of the last refill */
  luaio_deadline d;
  luaio_host *h;
  int armed;
  luaio_waitlist waiters;
} limiter;

static limiter *check_limiter (lua_State *L) {
  return (limiter *)luaL_checkudata(L, 1, "luaio.RateLimiter");
}

static void refill (limiter *r) {
  uint64_t now = uv_hrtime();
  r->tokens += (double)(now - r->last) / 1e9 * r->rate;
  if (r->tokens > r->burst) r->tokens = r->burst;
  r->last = now;
}

static void limiter_due_cb (luaio_deadline *d);

/* The longest single timer wait; a later token re-arms (the rate may be
 * one per 1e300 seconds, which no integer of milliseconds holds). */
#define LIMITER_MAX_WAIT_MS 1e12

/* Arm the deadline for the next token (force: a waiter is about to
 * queue). The wait is at least 1 ms while no token is there, so the
 * deadline never fires in a loop. */
static void limiter_arm_when (limiter *r, int force) {
  double need;
  if (r->armed || (!force && r->waiters.head == NULL)) return;
  need = (1.0 - r->tokens) / r->rate * 1000.0;
  if (!(need < LIMITER_MAX_WAIT_MS)) need = LIMITER_MAX_WAIT_MS;
  r->armed = luaio__deadline_start(r->h, &r->d,
                                   need > 0 ? (uint64_t)need + 1 : 0,
                                   limiter_due_cb);
}

static void limiter_due_cb (luaio_deadline *d) {
  limiter *r = (limiter *)((char *)d - offsetof(limiter, d));
  r->armed = 0;
  refill(r);
  while (r->tokens >= 1.0 && r->waiters.head) {
    r->tokens -= 1.0;
    if (!luaio_waitlist_wake(&r->waiters, 0)) r->tokens += 1.0;
  }
  limiter_arm_when(r, 0);
}

static int limiter_acquire_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != 0)
    return luaio_raise_uv(L, status, "rate_limiter:acquire", NULL, NULL);
  return 0;
}

/* r:acquire(): takes a token, waiting (FIFO) until one is available. */
static int limiter_acquire (lua_State *L) {
  limiter *r = check_limiter(L);
  refill(r);
  if (r->waiters.head == NULL && r->tokens >= 1.0) {
    r->tokens -= 1.0;
    return 0;
  }
  luaio_check_wait(L, "rate_limiter:acquire");
  lua_settop(L, 1);
  limiter_arm_when(r, 1);
  return luaio_waitlist_wait(L, &r->waiters, limiter_acquire_k, 0);
}

/* r:try_acquire() -> true if a token was taken now. */
static int limiter_try_acquire (lua_State *L) {
  limiter *r = check_limiter(L);
  refill(r);
  lua_pushboolean(L, r->waiters.head == NULL && r->tokens >= 1.0);
  if (lua_toboolean(L, -1)) r->tokens -= 1.0;
  return 1;
}

static int limiter_gc (lua_State *L) {
  limiter *r = check_limiter(L);
  if (r->armed) luaio__deadline_stop(r->h, &r->d);
  r->armed = 0;
  return 0;
}

static const luaL_Reg limiter_methods[] = {
  {"acquire", limiter_acquire}, {"try_acquire", limiter_try_acquire},
  {NULL, NULL}
};

/* aio.rate_limiter(n, per_seconds [, burst]): n acquisitions per
 * per_seconds on average, bursts up to burst (default n). */
/* Counts are kept as doubles: beyond 2^53 taking one token would not
 * change the count, so larger ones are refused. */
#define LIMITER_MAX_COUNT 9007199254740992.0

static lua_Number limiter_number (lua_State *L, int arg, lua_Number def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (!lua_isnumber(L, arg))
    return luaio__typeerror(L, arg, "aio.rate_limiter", "number");
  return lua_tonumber(L, arg);
}

static int sync_rate_limiter (lua_State *L) {
  lua_Number n = limiter_number(L, 1, 0);
  lua_Number per = limiter_number(L, 2, 1.0);
  lua_Number burst = limiter_number(L, 3, n);
  double rate = n / per;
  limiter *r;
  if (lua_isnoneornil(L, 1))
    return luaio__typeerror(L, 1, "aio.rate_limiter", "number");
  if (!(n > 0 && n <= LIMITER_MAX_COUNT))
    return luaio__argerror(L, 1, "aio.rate_limiter",
                           "n must be > 0 and at most 2^53");
  if (!(per > 0 && per < HUGE_VAL))
    return luaio__argerror(L, 2, "aio.rate_limiter",
                           "per_seconds must be a finite number > 0");
  if (!(rate > 0 && rate < HUGE_VAL))
    return luaio__argerror(L, 2, "aio.rate_limiter",
                           "n / per_seconds must be a finite rate > 0");
  if (!(burst >= 1 && burst <= LIMITER_MAX_COUNT))
    return luaio__argerror(L, 3, "aio.rate_limiter",
                           "burst must be from 1 to 2^53");
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->rate = rate;
  r->burst = burst;
  r->tokens = burst;
  r->last = uv_hrtime();
  r->h = luaio__host(L);
  if (luaL_newmetatable(L, "luaio.RateLimiter")) {
    luaL_newlib(L, limiter_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, limiter_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return 1;
}

static const luaL_Reg sync_funcs[] = {
  {"queue", sync_queue}, {"lifo_queue", sync_lifo_queue},
  {"priority_queue", sync_priority_queue}, {"semaphore", sync_semaphore},
  {"bounded_semaphore", sync_bounded_semaphore}, {"lock", sync_lock},
  {"event", sync_event}, {"condition", sync_condition},
  {"rate_limiter", sync_rate_limiter}, {NULL, NULL}
};

/* Add this file's functions to the table on the top of the stack. */
void luaio__sync_register (lua_State *L) {
  luaL_setfuncs(L, sync_funcs, 0);
}

int luaopen_luaio_sync (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__sync_register(L);
  return 1;
}
