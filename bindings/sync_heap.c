/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_heap.c: the priority queue's heap, a 1-based binary heap in the
 * queue's items table, with each item's insertion number at the same
 * index of its seqs table: equal items come out in insertion order.
 *
 * The order (`less`, or `<`) is Lua code that may raise, so a put or get
 * first finds where the moving item ends, in one protected call that
 * only reads the heap, and changes the heap afterwards: a failing
 * comparison leaves the queue as it was. The end position alone gives
 * the path (its ancestors).
 */
#include "sync.h"

/* Stack of the protected search: the items table, less (a function, or
 * nil for `<`), x, n, down, the seqs table, x's number. */
enum { H_ITEMS = 1, H_LESS, H_X, H_N, H_DOWN, H_SEQS, H_XSEQ };

/* Is the item at a before the one at b? [-0, +0] */
static int item_lt (lua_State *L, int a, int b) {
  int r;
  if (lua_isnil(L, H_LESS)) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, H_LESS);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Is (item, number) at (a, sa) before the one at (b, sb)? Neither item
 * before the other: the earlier number is. [-0, +0] */
static int entry_lt (lua_State *L, int a, int sa, int b, int sb) {
  if (item_lt(L, a, b)) return 1;
  if (item_lt(L, b, a)) return 0;
  return lua_tointeger(L, sa) < lua_tointeger(L, sb);
}

/* Push items[i] and seqs[i]. [-0, +2] */
static void push_entry (lua_State *L, lua_Integer i) {
  lua_rawgeti(L, H_ITEMS, i);
  lua_rawgeti(L, H_SEQS, i);
}

/* Is x before entry i (x_first), or entry i before x? */
static int entry_vs_x (lua_State *L, lua_Integer i, int x_first) {
  int r, top = lua_gettop(L);
  push_entry(L, i);
  r = x_first ? entry_lt(L, H_X, H_XSEQ, top + 1, top + 2)
              : entry_lt(L, top + 1, top + 2, H_X, H_XSEQ);
  lua_settop(L, top);
  return r;
}

static int child_lt (lua_State *L, lua_Integer i, lua_Integer j) {
  int r, top = lua_gettop(L);
  push_entry(L, i);
  push_entry(L, j);
  r = entry_lt(L, top + 1, top + 2, top + 3, top + 4);
  lua_settop(L, top);
  return r;
}

/* Run protected: up: x is to be added at n; down: the root is taken, x
 * (the last entry) is to fill the heap of n entries. Pushes x's end
 * position. Reads only. */
static int heap_find (lua_State *L) {
  lua_Integer i, n = lua_tointeger(L, H_N);
  if (!lua_toboolean(L, H_DOWN)) {
    for (i = n; i > 1 && entry_vs_x(L, i / 2, 1); i /= 2) {}
  }
  else {
    for (i = 1; 2 * i <= n; ) {
      lua_Integer c = 2 * i;
      if (c + 1 <= n && child_lt(L, c + 1, c)) c++;
      if (!entry_vs_x(L, c, 0)) break;
      i = c;
    }
  }
  lua_pushinteger(L, i);
  return 1;
}

/* Where x (at index x, its number at x + 1) goes, or -1 with the order's
 * error on top. Items at t, seqs at t + 1. [-0, +0 | +1] */
static lua_Integer heap_where (lua_State *L, int qidx, int t, int x,
                               lua_Integer n, int down) {
  lua_Integer pos;
  luaL_checkstack(L, 10, NULL);
  lua_pushcfunction(L, heap_find);
  lua_pushvalue(L, t);
  lua_getiuservalue(L, qidx, QV_LESS);
  lua_pushvalue(L, x);
  lua_pushinteger(L, n);
  lua_pushboolean(L, down);
  lua_pushvalue(L, t + 1);
  lua_pushvalue(L, x + 1);
  if (lua_pcall(L, 7, 1, 0) != LUA_OK) return -1;
  pos = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return pos;
}

/* Move entry from to slot to (items at t, seqs at t + 1). */
static void move_entry (lua_State *L, int t, lua_Integer from,
                        lua_Integer to) {
  lua_rawgeti(L, t, from);
  lua_rawseti(L, t, to);
  lua_rawgeti(L, t + 1, from);
  lua_rawseti(L, t + 1, to);
}

/* Store x (at x, its number at x + 1) as entry pos. */
static void set_entry (lua_State *L, int t, int x, lua_Integer pos) {
  lua_pushvalue(L, x);
  lua_rawseti(L, t, pos);
  lua_pushvalue(L, x + 1);
  lua_rawseti(L, t + 1, pos);
}

/* Add x as entry n, moving its ancestors down to make room at pos. The
 * first writes are to the new slot, so running out of memory there
 * leaves the heap unchanged. */
static void heap_place_up (lua_State *L, int t, int x, lua_Integer n,
                           lua_Integer pos) {
  lua_Integer i;
  for (i = n; i > pos; i /= 2) move_entry(L, t, i / 2, i);
  set_entry(L, t, x, pos);
}

/* The root has been read: move the path from the root to pos up one
 * level, put x (the old last entry n) at pos and clear slot n. */
static void heap_place_down (lua_State *L, int t, int x, lua_Integer n,
                             lua_Integer pos) {
  lua_Integer a = 1;
  int shift = 0;
  while ((pos >> shift) > 1) shift++;
  while (shift-- > 0) {
    lua_Integer c = pos >> shift;
    move_entry(L, t, c, a);
    a = c;
  }
  set_entry(L, t, x, pos);
  lua_pushnil(L);
  lua_rawseti(L, t, n);
  lua_pushnil(L);
  lua_rawseti(L, t + 1, n);
}

/* Stack: ... x items; pushes seqs. */
int luaio__heap_push (lua_State *L, int qidx, int t, luaio__queue *q) {
  lua_Integer pos, n = q->count + 1;
  luaL_checkstack(L, 4, NULL);
  lua_getiuservalue(L, qidx, QV_SEQS);             /* x items seqs */
  lua_pushvalue(L, t - 1);
  lua_pushinteger(L, q->seq + 1);                  /* ... x' seq */
  pos = heap_where(L, qidx, t, t + 2, n, 0);
  if (pos < 0) return LUA_ERRRUN;
  heap_place_up(L, t, t + 2, n, pos);
  q->seq++;
  lua_settop(L, t);
  return LUA_OK;
}

/* Stack: ... items; leaves ... items top (the root item). */
int luaio__heap_pop (lua_State *L, int qidx, int t, luaio__queue *q) {
  lua_Integer pos;
  luaL_checkstack(L, 6, NULL);
  lua_getiuservalue(L, qidx, QV_SEQS);             /* items seqs */
  lua_rawgeti(L, t, 1);                            /* ... top */
  lua_rawgeti(L, t, q->count);
  lua_rawgeti(L, t + 1, q->count);                 /* ... top last lseq */
  pos = heap_where(L, qidx, t, t + 3, q->count - 1, 1);
  if (pos < 0) return LUA_ERRRUN;
  heap_place_down(L, t, t + 3, q->count, pos);
  lua_settop(L, t + 2);
  lua_remove(L, t + 1);                            /* items top */
  return LUA_OK;
}
