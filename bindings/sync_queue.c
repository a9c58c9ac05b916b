/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_queue.c: aio.queue, aio.lifo_queue and aio.priority_queue.
 *
 * The close rule, as Go channels and asyncio queues have it: closing
 * ends the producing side. Every put after close (put, put_nowait, a put
 * waiting for room) raises an error of kind "closed"; items already in
 * are still delivered, and once the queue is drained every get (get,
 * get_nowait, a waiting get) returns nil, "closed": the normal end of a
 * consumer loop, not an error.
 */
#include "sync.h"

/* The address that marks a queue's userdata: only new_queue writes it
 * into a block, as the first field. */
static const char queue_tag;

/* The queue at 1. A userdata of a queue's size whose first field holds
 * &queue_tag is one (no other code writes that address); this is two API
 * calls where comparing metatables is five (~60 instructions instead of
 * ~190 a method call, a fifth of a put+get in W3). Anything else goes
 * through luaio__checkself, which raises with the usual message. A light
 * userdata has no length. */
static luaio__queue *check_queue (lua_State *L) {
  luaio__queue *q = (luaio__queue *)lua_touserdata(L, 1);
  if (q != NULL && lua_rawlen(L, 1) == sizeof *q && q->tag == &queue_tag)
    return q;
  return (luaio__queue *)luaio__checkself(L, LUAIO_QUEUE);
}

luaio__queue *luaio__toqueue (lua_State *L, int idx) {
  return (luaio__queue *)luaL_testudata(L, idx, LUAIO_QUEUE);
}

int luaio__sync_raise (lua_State *L, const char *kind, const char *msg) {
  luaio_push_error(L, kind, NULL, msg);
  return luaio_raise(L);
}

static int raise_closed (lua_State *L) {
  return luaio__sync_raise(L, "closed", "queue is closed");
}

int luaio__queue_closed_result (lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static lua_Integer available (luaio__queue *q) {
  return q->count - q->items_reserved;
}

static int queue_full (luaio__queue *q) {
  return q->maxsize > 0 && q->count + q->slots_reserved >= q->maxsize;
}

/* The methods' fast paths call these static versions of the tests (and
 * put_item/take_item below): the exported wrappers, for sync_select.c,
 * were not inlined (W3). */
static int can_get (luaio__queue *q) {
  return available(q) > 0 && q->getters.head == NULL;
}

static int can_put (luaio__queue *q) {
  return !queue_full(q) && q->putters.head == NULL;
}

int luaio__queue_can_get (luaio__queue *q) {
  return can_get(q);
}

int luaio__queue_can_put (luaio__queue *q) {
  return can_put(q);
}

/* ---- storage ----------------------------------------------------------- */

/* Grow the FIFO ring (items at t) so that it keeps its order. */
static void ring_grow (lua_State *L, int qidx, luaio__queue *q, int t) {
  lua_Integer i, cap = q->cap ? q->cap * 2 : 16;
  lua_createtable(L, (int)cap, 0);
  for (i = 0; i < q->count; i++) {
    lua_rawgeti(L, t, (q->head - 1 + i) % q->cap + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, t);
  lua_pushvalue(L, t);
  lua_setiuservalue(L, qidx, QV_ITEMS);
  q->head = 1;
  q->cap = cap;
}

/* Add the value on top to the queue, popping it. Returns LUA_OK, or an
 * error status with the error on top (a priority order raised) and the
 * queue unchanged. [-1, +0 | +1] */
static int queue_push (lua_State *L, int qidx, luaio__queue *q) {
  int t;
  if (q->inl) {                  /* room is there: maxsize is checked */
    lua_Integer i = q->count + 1;
    if (q->kind == Q_FIFO && (i += q->head - 1) > q->cap) i -= q->cap;
    lua_setiuservalue(L, qidx, (int)(QV_N + i));
    q->count++;
    q->unfinished++;
    return LUA_OK;
  }
  lua_getiuservalue(L, qidx, QV_ITEMS);
  t = lua_gettop(L);                               /* x items */
  if (q->kind == Q_FIFO) {
    if (q->count == q->cap) ring_grow(L, qidx, q, t);
    lua_pushvalue(L, t - 1);
    lua_rawseti(L, t, (q->head - 1 + q->count) % q->cap + 1);
  }
  else if (q->kind == Q_LIFO) {
    lua_pushvalue(L, t - 1);
    lua_rawseti(L, t, q->count + 1);
  }
  else if (luaio__heap_push(L, qidx, t, q) != LUA_OK) {
    lua_replace(L, t - 1);
    lua_settop(L, t - 1);                          /* err */
    return LUA_ERRRUN;
  }
  q->count++;
  lua_settop(L, t - 2);
  q->unfinished++;
  return LUA_OK;
}

/* Push the next item, removing it. Returns LUA_OK, or an error status
 * with the error on top and the queue unchanged. [-0, +1] */
static int queue_pop (lua_State *L, int qidx, luaio__queue *q) {
  int t;
  if (q->inl) {
    int n = (int)(QV_N + (q->kind == Q_FIFO ? q->head : q->count));
    /* A slot still holding a collectable item would keep it alive; a
     * number, boolean or light userdata keeps nothing alive. */
    if (lua_getiuservalue(L, qidx, n) >= LUA_TSTRING) {
      lua_pushnil(L);
      lua_setiuservalue(L, qidx, n);
    }
    if (q->kind == Q_FIFO) q->head = q->head == q->cap ? 1 : q->head + 1;
    q->count--;
    return LUA_OK;
  }
  lua_getiuservalue(L, qidx, QV_ITEMS);
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
  else if (luaio__heap_pop(L, qidx, t, q) != LUA_OK) {
    lua_replace(L, t);
    lua_settop(L, t);                              /* err */
    return LUA_ERRRUN;
  }
  q->count--;
  lua_remove(L, t);
  return LUA_OK;
}

/* ---- hand-over --------------------------------------------------------- */

/* A slot was freed: promise it to the first waiting putter. Most puts
 * and gets find no waiter: the test saves them a call. */
static void wake_putter (luaio__queue *q) {
  if (q->putters.head != NULL && luaio_waitlist_wake(&q->putters, 0))
    q->slots_reserved++;
}

/* An item arrived: promise it to the first waiting getter. */
static void wake_getter (luaio__queue *q) {
  if (q->getters.head != NULL && luaio_waitlist_wake(&q->getters, 0))
    q->items_reserved++;
}

static void put_item (lua_State *L, int qidx, luaio__queue *q) {
  if (queue_push(L, qidx, q) != LUA_OK) lua_error(L);
  wake_getter(q);
}

static void take_item (lua_State *L, int qidx, luaio__queue *q) {
  if (queue_pop(L, qidx, q) != LUA_OK) lua_error(L);
  wake_putter(q);
}

void luaio__queue_put (lua_State *L, int qidx, luaio__queue *q) {
  put_item(L, qidx, q);
}

void luaio__queue_take (lua_State *L, int qidx, luaio__queue *q) {
  take_item(L, qidx, q);
}

void luaio__queue_put_reserved (lua_State *L, int qidx, luaio__queue *q) {
  q->slots_reserved--;
  if (queue_push(L, qidx, q) != LUA_OK) {
    wake_putter(q);                 /* our slot is free again: pass it on */
    lua_error(L);
  }
  wake_getter(q);
}

void luaio__queue_take_reserved (lua_State *L, int qidx, luaio__queue *q) {
  q->items_reserved--;
  if (queue_pop(L, qidx, q) != LUA_OK) {
    wake_getter(q);                 /* the item stays: pass it on */
    lua_error(L);
  }
  wake_putter(q);
}

/* ---- methods ----------------------------------------------------------- */

static void check_item (lua_State *L, const char *fname) {
  if (lua_isnoneornil(L, 2))
    luaio__argerror(L, 2, fname, "item expected, got nil");
}

/* q:put_nowait(item): an error of kind "full" if there is no room. */
static int queue_put_nowait (lua_State *L) {
  luaio__queue *q = check_queue(L);
  check_item(L, "queue:put_nowait");
  if (q->closed) return raise_closed(L);
  if (queue_full(q)) return luaio__sync_raise(L, "full", "queue is full");
  lua_settop(L, 2);
  luaio__queue_put(L, 1, q);
  return 0;
}

static int put_k (lua_State *L, int status, lua_KContext ctx) {
  luaio__queue *q = (luaio__queue *)ctx;
  if (status == UV_EOF) return raise_closed(L);
  if (status != 0) return luaio_raise_uv(L, status, "queue:put", NULL, NULL);
  if (q->closed) {
    q->slots_reserved--;
    return raise_closed(L);
  }
  lua_settop(L, 2);
  luaio__queue_put_reserved(L, 1, q);
  return 0;
}

/* q:put(item): waits while the queue is full (FIFO among putters). */
static int queue_put (lua_State *L) {
  luaio__queue *q = check_queue(L);
  check_item(L, "queue:put");
  if (q->closed) return raise_closed(L);
  if (lua_gettop(L) != 2) lua_settop(L, 2);   /* cheaper than always */
  if (can_put(q)) {
    put_item(L, 1, q);
    return 0;
  }
  luaio_check_wait(L, "queue:put");
  return luaio_waitlist_wait(L, &q->putters, put_k, (lua_KContext)q);
}

/* q:get_nowait() -> item; an error of kind "empty" if there is none;
 * nil, "closed" once a closed queue is drained. */
static int queue_get_nowait (lua_State *L) {
  luaio__queue *q = check_queue(L);
  if (available(q) > 0) {
    luaio__queue_take(L, 1, q);
    return 1;
  }
  if (q->closed) return luaio__queue_closed_result(L);
  return luaio__sync_raise(L, "empty", "queue is empty");
}

static int get_k (lua_State *L, int status, lua_KContext ctx) {
  luaio__queue *q = (luaio__queue *)ctx;
  if (status == UV_EOF) {                         /* woken by close */
    if (available(q) <= 0) return luaio__queue_closed_result(L);
    luaio__queue_take(L, 1, q);
    return 1;
  }
  if (status != 0) return luaio_raise_uv(L, status, "queue:get", NULL, NULL);
  luaio__queue_take_reserved(L, 1, q);
  return 1;
}

/* q:get() -> item, waiting while the queue is empty; nil, "closed" once
 * the queue is closed and drained. */
static int queue_get (lua_State *L) {
  luaio__queue *q = check_queue(L);
  if (can_get(q)) {
    take_item(L, 1, q);
    return 1;
  }
  if (q->closed && available(q) <= 0) return luaio__queue_closed_result(L);
  luaio_check_wait(L, "queue:get");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &q->getters, get_k, (lua_KContext)q);
}

/* q:task_done(): one item taken with get is processed. */
static int queue_task_done (lua_State *L) {
  luaio__queue *q = check_queue(L);
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
  luaio__queue *q = check_queue(L);
  if (q->unfinished == 0) return 0;
  luaio_check_wait(L, "queue:join");
  return luaio_waitlist_wait(L, &q->joiners, join_k, 0);
}

/* q:close(): see the close rule at the top. */
static int queue_close (lua_State *L) {
  luaio__queue *q = check_queue(L);
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
  luaio__queue *q = check_queue(L);
  lua_pushboolean(L, q->maxsize > 0 && q->count >= q->maxsize);
  return 1;
}

static int queue_is_closed (lua_State *L) {
  lua_pushboolean(L, check_queue(L)->closed);
  return 1;
}

static const luaL_Reg queue_methods[] = {
  {"put", queue_put}, {"get", queue_get}, {"put_nowait", queue_put_nowait},
  {"get_nowait", queue_get_nowait}, {"task_done", queue_task_done},
  {"join", queue_join}, {"close", queue_close}, {"size", queue_size},
  {"empty", queue_empty}, {"full", queue_isfull},
  {"closed", queue_is_closed}, {NULL, NULL}
};

static const luaL_Reg queue_meta[] = {{"__len", queue_size}, {NULL, NULL}};

/* ---- constructors ------------------------------------------------------ */

static int new_queue (lua_State *L, int kind, const char *fname) {
  lua_Integer maxsize = luaio__optinteger(L, 1, fname, 0);
  int has_less = kind == Q_PRIO && !lua_isnoneornil(L, 2);
  int inl = kind != Q_PRIO && maxsize > 0 && maxsize <= Q_INLINE_MAX;
  luaio__queue *q;
  if (maxsize < 0)
    return luaio__argerror(L, 1, fname, "maxsize must be >= 0");
  if (has_less) luaio__checktype(L, 2, fname, LUA_TFUNCTION);
  luaio__class(L, LUAIO_QUEUE, queue_methods, NULL, queue_meta);
  q = lua_newuserdatauv(L, sizeof *q, QV_N + (inl ? (int)maxsize : 0));
  memset(q, 0, sizeof *q);
  q->tag = &queue_tag;
  q->kind = kind;
  q->maxsize = maxsize;
  q->head = 1;
  q->inl = inl;
  if (inl) q->cap = maxsize;
  else {
    lua_createtable(L, maxsize > 0 && maxsize < 1024 ? (int)maxsize : 16, 0);
    lua_setiuservalue(L, -2, QV_ITEMS);
  }
  if (has_less) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, QV_LESS);
  }
  luaL_setmetatable(L, LUAIO_QUEUE);
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

const luaL_Reg luaio__queue_funcs[] = {
  {"queue", sync_queue}, {"lifo_queue", sync_lifo_queue},
  {"priority_queue", sync_priority_queue}, {NULL, NULL}
};
