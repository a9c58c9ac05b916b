/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync.h: what the files of the luaio.sync module share (queues,
 * select, the synchronisation primitives, the rate limiter). Private to
 * bindings/sync*.c.
 *
 * Waiters queue FIFO on luaio_waitlists. A wake-up hands over what it
 * promised (an item, a free slot, a permit) by reserving it, so a task
 * that calls get_nowait meanwhile cannot take it, and a waiter that is
 * cancelled before being woken never consumes anything.
 */
#ifndef LUAIO_SYNC_H
#define LUAIO_SYNC_H

#include "../host/host.h"

/* ---- queues (sync_queue.c, sync_heap.c) ----------------------------- */

enum { Q_FIFO, Q_LIFO, Q_PRIO };

typedef struct luaio__queue {
  const void *tag;              /* &queue_tag: see check_queue */
  int kind, closed;
  int inl;                      /* items in user values (QV_N + 1...) */
  lua_Integer maxsize;          /* 0: unbounded */
  lua_Integer head, count, cap; /* ring (FIFO) or array (LIFO, heap) */
  lua_Integer items_reserved;   /* items promised to woken getters */
  lua_Integer slots_reserved;   /* slots promised to woken putters */
  lua_Integer unfinished;       /* put minus task_done */
  lua_Integer seq;              /* priority queue: puts so far, */
  lua_Integer *seqs, seqcap;    /* the number of each entry (1-based) */
  luaio_waitlist getters, putters, joiners;
} luaio__queue;

#define LUAIO_QUEUE "luaio.Queue"

/* Queue uservalues: the items table, the priority order, and (priority
 * queues) the userdata holding seqs, the insertion number of each item,
 * which makes the order stable. */
enum { QV_ITEMS = 1, QV_LESS = 2, QV_SEQS = 3, QV_N = 3 };

/* A bounded FIFO or LIFO queue of at most this many items keeps them in
 * user values QV_N + 1 ... QV_N + maxsize of its own userdata, with no
 * items table: one API call a push or pop (W3, bench/RESULTS.md). */
#define Q_INLINE_MAX 1024

/* The queue at idx, or NULL if it is not one. */
luaio__queue *luaio__toqueue(lua_State *L, int idx);

/* An item is there for a new getter / room for a new putter, with no
 * earlier waiter to serve first. */
int luaio__queue_can_get(luaio__queue *q);
int luaio__queue_can_put(luaio__queue *q);

/* Put the value on top into the queue at qidx (its check done), popping
 * it, and hand it to a waiting getter; raises (the queue unchanged) if
 * a priority order does. [-1, +0] */
void luaio__queue_put(lua_State *L, int qidx, luaio__queue *q);

/* Take the next item of the queue at qidx (one is there) and hand the
 * slot to a waiting putter; raises (the queue unchanged) if a priority
 * order does. [-0, +1] */
void luaio__queue_take(lua_State *L, int qidx, luaio__queue *q);

/* Spend the item / slot a wake-up reserved for us: take / put as above.
 * If that raises, the reservation passes on to the next waiter. */
void luaio__queue_take_reserved(lua_State *L, int qidx, luaio__queue *q);
void luaio__queue_put_reserved(lua_State *L, int qidx, luaio__queue *q);

/* Push nil, "closed": what a get of a closed, drained queue returns.
 * [-0, +2] */
int luaio__queue_closed_result(lua_State *L);

/* Raise a luaio.Error of this kind and message. */
int luaio__sync_raise(lua_State *L, const char *kind, const char *msg);

/* The priority heap (sync_heap.c) over the queue at qidx, whose items
 * table is at t. Each returns LUA_OK, or an error status with the
 * order's error on top and the heap unchanged. */
int luaio__heap_push(lua_State *L, int qidx, int t, luaio__queue *q);
int luaio__heap_pop(lua_State *L, int qidx, int t, luaio__queue *q);

/* ---- the module's parts ----------------------------------------------- */

extern const luaL_Reg luaio__queue_funcs[];   /* sync_queue.c */
extern const luaL_Reg luaio__select_funcs[];  /* sync_select.c */
extern const luaL_Reg luaio__lock_funcs[];    /* sync_lock.c */
extern const luaL_Reg luaio__limiter_funcs[]; /* sync_limiter.c */

#endif
