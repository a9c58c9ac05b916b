/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_heap.c: the priority queue's heap, a 1-based binary heap in the
 * queue's items table, with each item's insertion number at the same
 * index of a C array: equal items come out in insertion order.
 *
 * The order (`less`, or `<`) is Lua code that may raise, so a put or get
 * first finds where the moving item ends, in one protected call that
 * only reads the heap, and changes the heap afterwards: a failing
 * comparison leaves the queue as it was. The end position alone gives
 * the path (its ancestors).
 */
#include "sync.h"

/* Stack of the protected search: the items table, less (a function, or
 * nil for `<`), x, n, down, the numbers (a light userdata), x's number.
 * The search reads the last three once, into a hsearch. */
enum { H_ITEMS = 1, H_LESS, H_X, H_N, H_DOWN, H_SEQS, H_XSEQ };

typedef struct hsearch {
  const lua_Integer *seqs;      /* the number of each entry */
  lua_Integer xs;               /* x's */
  int plain;                    /* no less: `<` */
} hsearch;

/* Is the item at a before the one at b? [-0, +0] */
static int item_lt (lua_State *L, const hsearch *h, int a, int b) {
  int r;
  if (h->plain) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, H_LESS);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Are the items at a and b, a not before b, equal in the order? With
 * `<` on two numbers or two strings that is plain equality (saving a
 * comparison); otherwise b is not before a either. */
static int item_tie (lua_State *L, const hsearch *h, int a, int b) {
  int ta = lua_type(L, a);
  if (h->plain && ta == lua_type(L, b) &&
      (ta == LUA_TNUMBER || ta == LUA_TSTRING))
    return lua_rawequal(L, a, b);
  return !item_lt(L, h, b, a);
}

/* Is the item at a, put as number sa, before the one at b, put as sb?
 * Neither item before the other: the earlier put is. The tie test is
 * needed only when a was put first. */
static int entry_lt (lua_State *L, const hsearch *h, int a, lua_Integer sa,
                     int b, lua_Integer sb) {
  if (item_lt(L, h, a, b)) return 1;
  return sa < sb && item_tie(L, h, a, b);
}

/* Is x before entry i (x_first), or entry i before x? */
static int entry_vs_x (lua_State *L, const hsearch *h, lua_Integer i,
                       int x_first) {
  int r, e = lua_gettop(L) + 1;
  lua_Integer es = h->seqs[i];
  lua_rawgeti(L, H_ITEMS, i);
  r = x_first ? entry_lt(L, h, H_X, h->xs, e, es)
              : entry_lt(L, h, e, es, H_X, h->xs);
  lua_pop(L, 1);
  return r;
}

static int child_lt (lua_State *L, const hsearch *h, lua_Integer i,
                     lua_Integer j) {
  int r, top = lua_gettop(L);
  lua_rawgeti(L, H_ITEMS, i);
  lua_rawgeti(L, H_ITEMS, j);
  r = entry_lt(L, h, top + 1, h->seqs[i], top + 2, h->seqs[j]);
  lua_settop(L, top);
  return r;
}

/* Run protected: up: x is to be added at n; down: the root is taken, x
 * (the last entry) is to fill the heap of n entries. Pushes x's end
 * position. Reads only. */
static int heap_find (lua_State *L) {
  lua_Integer i, n = lua_tointeger(L, H_N);
  hsearch h;
  h.seqs = (const lua_Integer *)lua_touserdata(L, H_SEQS);
  h.xs = lua_tointeger(L, H_XSEQ);
  h.plain = lua_isnil(L, H_LESS);
  if (!lua_toboolean(L, H_DOWN)) {
    for (i = n; i > 1 && entry_vs_x(L, &h, i / 2, 1); i /= 2) {}
  }
  else {
    for (i = 1; 2 * i <= n; ) {
      lua_Integer c = 2 * i;
      if (c + 1 <= n && child_lt(L, &h, c + 1, c)) c++;
      if (!entry_vs_x(L, &h, c, 0)) break;
      i = c;
    }
  }
  lua_pushinteger(L, i);
  return 1;
}

/* Where x (at index x, put as number xs) goes, or -1 with the order's
 * error on top. Items at t. [-0, +0 | +1] */
static lua_Integer heap_where (lua_State *L, int qidx, int t, int x,
                               lua_Integer xs, lua_Integer n, int down) {
  lua_Integer pos;
  luaio__queue *q = (luaio__queue *)lua_touserdata(L, qidx);
  luaL_checkstack(L, 10, NULL);
  lua_pushcfunction(L, heap_find);
  lua_pushvalue(L, t);
  lua_getiuservalue(L, qidx, QV_LESS);
  lua_pushvalue(L, x);
  lua_pushinteger(L, n);
  lua_pushboolean(L, down);
  lua_pushlightuserdata(L, q->seqs);
  lua_pushinteger(L, xs);
  if (lua_pcall(L, 7, 1, 0) != LUA_OK) return -1;
  pos = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return pos;
}

/* Move entry from to slot to (items at t). */
static void move_entry (lua_State *L, luaio__queue *q, int t,
                        lua_Integer from, lua_Integer to) {
  lua_rawgeti(L, t, from);
  lua_rawseti(L, t, to);
  q->seqs[to] = q->seqs[from];
}

/* Store x (at x, put as number xs) as entry pos. */
static void set_entry (lua_State *L, luaio__queue *q, int t, int x,
                       lua_Integer xs, lua_Integer pos) {
  lua_pushvalue(L, x);
  lua_rawseti(L, t, pos);
  q->seqs[pos] = xs;
}

/* Room for entry n in the numbers (a userdata of lua_Integers, 1-based,
 * in the queue's QV_SEQS), grown before the heap changes: running out
 * of memory leaves it as it was. */
static void seqs_reserve (lua_State *L, int qidx, luaio__queue *q,
                          lua_Integer n) {
  lua_Integer cap = q->seqcap ? q->seqcap : 16;
  lua_Integer *s;
  if (n < q->seqcap) return;
  while (cap <= n) cap *= 2;
  s = (lua_Integer *)lua_newuserdatauv(L, (size_t)cap * sizeof *s, 0);
  if (q->seqs) memcpy(s, q->seqs, (size_t)q->seqcap * sizeof *s);
  lua_setiuservalue(L, qidx, QV_SEQS);
  q->seqs = s;
  q->seqcap = cap;
}

/* Add x as entry n, moving its ancestors down to make room at pos. The
 * first write is to the new slot, so running out of memory there
 * leaves the heap unchanged. */
static void heap_place_up (lua_State *L, luaio__queue *q, int t, int x,
                           lua_Integer n, lua_Integer pos) {
  lua_Integer i;
  for (i = n; i > pos; i /= 2) move_entry(L, q, t, i / 2, i);
  set_entry(L, q, t, x, q->seq + 1, pos);
}

/* The root has been read: move the path from the root to pos up one
 * level, put x (the old last entry n) at pos and clear slot n. */
static void heap_place_down (lua_State *L, luaio__queue *q, int t, int x,
                             lua_Integer n, lua_Integer pos) {
  lua_Integer a = 1, xs = q->seqs[n];
  int shift = 0;
  while ((pos >> shift) > 1) shift++;
  while (shift-- > 0) {
    lua_Integer c = pos >> shift;
    move_entry(L, q, t, c, a);
    a = c;
  }
  set_entry(L, q, t, x, xs, pos);
  lua_pushnil(L);
  lua_rawseti(L, t, n);
}

/* Stack: ... x items. */
int luaio__heap_push (lua_State *L, int qidx, int t, luaio__queue *q) {
  lua_Integer pos, n = q->count + 1;
  seqs_reserve(L, qidx, q, n);
  pos = heap_where(L, qidx, t, t - 1, q->seq + 1, n, 0);
  if (pos < 0) return LUA_ERRRUN;
  heap_place_up(L, q, t, t - 1, n, pos);
  q->seq++;
  return LUA_OK;
}

/* Stack: ... items; leaves ... items top (the root item). */
int luaio__heap_pop (lua_State *L, int qidx, int t, luaio__queue *q) {
  lua_Integer pos, n = q->count;
  luaL_checkstack(L, 4, NULL);
  lua_rawgeti(L, t, 1);                            /* items top */
  lua_rawgeti(L, t, n);                            /* items top last */
  pos = heap_where(L, qidx, t, t + 2, q->seqs[n], n - 1, 1);
  if (pos < 0) return LUA_ERRRUN;
  heap_place_down(L, q, t, t + 2, n, pos);
  lua_pop(L, 1);                                   /* items top */
  return LUA_OK;
}
