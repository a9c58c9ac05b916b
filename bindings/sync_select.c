/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_select.c: aio.select, Go's select over queues.
 *
 * A select that finds no case ready waits on every case's queue at once:
 * one C watcher per case sits in the queue's getters or putters list, as
 * a task would. The queue's wake-up reserves an item or a slot for the
 * watcher it wakes, exactly as for a waiting get or put; the first
 * watcher woken takes every other one off its list before anything else
 * runs, so only one case can ever hold a reservation, and the task,
 * resumed, spends it. A select cancelled or timed out before a wake-up
 * holds nothing; one woken first spends its reservation (returns the
 * item) and the cancellation comes at the task's next wait.
 */
#include "sync.h"

typedef struct select_op select_op;

typedef struct sel_case {
  luaio_waiter w;               /* in the queue's getters or putters */
  select_op *op;
  luaio__queue *q;
  int is_put;
} sel_case;

struct select_op {
  luaio_waiter w;               /* the task's wait */
  luaio_deadline d;             /* the timeout, if any */
  luaio_host *h;
  int armed, ncases, fired, fired_status;
  sel_case cases[1];            /* ncases of them */
};

/* The select's uservalue holds, for case i, the queue at 2i - 1 and the
 * value to put at 2i: a copy made at the call, so that changes to the
 * cases table meanwhile change nothing. */
#define SELECT "luaio.Select"
#define SEL_TIMEOUT 1           /* fired_status of a timeout */

/* ---- arguments ------------------------------------------------------- */

static int case_error (lua_State *L, lua_Integer i, const char *msg) {
  return luaio__argerror(L, 1, "aio.select",
                         lua_pushfstring(L, "case %I: %s", i, msg));
}

/* Check case i (the table on top, popped) and fill in c; its queue and
 * value go to the copy at t. */
static void check_case (lua_State *L, lua_Integer i, int t, sel_case *sc) {
  int c = lua_gettop(L);
  if (!lua_istable(L, c)) case_error(L, i, "table expected");
  lua_pushnil(L);
  while (lua_next(L, c)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "get") && strcmp(k, "put") && strcmp(k, "value"))
      case_error(L, i, lua_pushfstring(L, "unknown field '%s'",
                                       luaio__tostring(L, -2)));
    lua_pop(L, 1);
  }
  lua_getfield(L, c, "get");
  lua_getfield(L, c, "put");
  lua_getfield(L, c, "value");                     /* c get put value */
  if (lua_isnil(L, c + 1) == lua_isnil(L, c + 2))
    case_error(L, i, "get = queue or put = queue expected (one of them)");
  sc->is_put = !lua_isnil(L, c + 2);
  sc->q = luaio__toqueue(L, sc->is_put ? c + 2 : c + 1);
  if (sc->q == NULL)
    case_error(L, i, sc->is_put ? "put: queue expected"
                                : "get: queue expected");
  if (sc->is_put && lua_isnil(L, c + 3)) case_error(L, i, "put needs a value");
  if (!sc->is_put && !lua_isnil(L, c + 3))
    case_error(L, i, "value goes only with put");
  lua_rawseti(L, t, 2 * i);                        /* c get put */
  if (!sc->is_put) lua_pop(L, 1);
  lua_rawseti(L, t, 2 * i - 1);
  lua_settop(L, c - 1);
}

static int select_gc (lua_State *L);
static const luaL_Reg select_meta[] = {{"__gc", select_gc}, {NULL, NULL}};

/* Check the cases at 1 and push the select for them (at 3; the timeout
 * is at 2). [-0, +1] */
static select_op *push_select (lua_State *L) {
  lua_Integer i, n;
  select_op *op;
  luaio__checktype(L, 1, "aio.select", LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  if (n < 1 || n > 1000000)
    luaio__argerror(L, 1, "aio.select", "1 to 1000000 cases expected");
  lua_settop(L, 2);
  op = lua_newuserdatauv(L, sizeof *op + (size_t)(n - 1) * sizeof(sel_case),
                         1);
  memset(op, 0, sizeof *op + (size_t)(n - 1) * sizeof(sel_case));
  op->ncases = (int)n;
  op->fired = -1;
  lua_createtable(L, (int)(2 * n), 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    check_case(L, i, 4, &op->cases[i - 1]);
  }
  lua_setiuservalue(L, 3, 1);
  luaio__class(L, SELECT, NULL, NULL, select_meta);
  luaL_setmetatable(L, SELECT);
  return op;
}

/* ---- choosing a ready case -------------------------------------------- */

static int case_ready (sel_case *sc) {
  luaio__queue *q = sc->q;
  if (sc->is_put) return q->closed || luaio__queue_can_put(q);
  return luaio__queue_can_get(q) ||
         (q->closed && q->count - q->items_reserved <= 0);
}

/* A per-state random generator (xorshift64*), seeded from the clock and
 * the state's address on first use. */
static const char rng_key = 0;

static uint64_t next_random (lua_State *L) {
  uint64_t *x;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rng_key) == LUA_TNIL) {
    lua_pop(L, 1);
    x = (uint64_t *)lua_newuserdatauv(L, sizeof *x, 0);
    *x = (uv_hrtime() ^ (uint64_t)(uintptr_t)L) | 1;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rng_key);
  }
  x = (uint64_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  return *x * 2685821657736338717ULL;
}

/* A case ready now, chosen uniformly at random among the ready ones
 * (each replaces the choice with probability 1/k), or -1. */
static int pick_ready (lua_State *L, select_op *op) {
  int i, k = 0, pick = -1;
  for (i = 0; i < op->ncases; i++) {
    if (!case_ready(&op->cases[i])) continue;
    k++;
    if (next_random(L) % (uint64_t)k == 0) pick = i;
  }
  return pick;
}

/* ---- running the chosen case ------------------------------------------ */

/* Stack: cases, timeout, select, which, copy, queue. */
enum { S_SELECT = 3, S_WHICH, S_COPY, S_QUEUE };

static int closed_case (lua_State *L) {
  lua_settop(L, S_WHICH);
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 3;
}

/* reserved: a wake-up with status reserved an item for us (status 0)
 * or the queue was closed (UV_EOF). */
static int run_get (lua_State *L, luaio__queue *q, int reserved,
                    int status) {
  if (reserved && status == 0) luaio__queue_take_reserved(L, S_QUEUE, q);
  else if (q->count - q->items_reserved > 0)
    luaio__queue_take(L, S_QUEUE, q);
  else return closed_case(L);
  lua_replace(L, S_COPY);
  lua_settop(L, S_COPY);
  return 2;
}

static int run_put (lua_State *L, luaio__queue *q, int i, int reserved,
                    int status) {
  if (reserved && status == 0 && q->closed) q->slots_reserved--;
  if (q->closed) return closed_case(L);
  lua_rawgeti(L, S_COPY, 2 * i);
  if (reserved) luaio__queue_put_reserved(L, S_QUEUE, q);
  else luaio__queue_put(L, S_QUEUE, q);
  lua_settop(L, S_WHICH);
  return 1;
}

/* Run case i (0-based) and push its results. */
static int run_case (lua_State *L, select_op *op, int i, int reserved,
                     int status) {
  sel_case *sc = &op->cases[i];
  lua_settop(L, S_SELECT);
  lua_pushinteger(L, i + 1);
  lua_getiuservalue(L, S_SELECT, 1);
  lua_rawgeti(L, S_COPY, 2 * (i + 1) - 1);
  if (sc->is_put) return run_put(L, sc->q, i + 1, reserved, status);
  return run_get(L, sc->q, reserved, status);
}

static int timed_out (lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "timeout");
  return 2;
}

/* ---- waiting ----------------------------------------------------------- */

/* Take every case off its queue's list and disarm the timeout. */
static void stop_all (select_op *op) {
  int i;
  for (i = 0; i < op->ncases; i++) luaio__unwatch(&op->cases[i].w);
  if (op->armed) luaio__deadline_stop(op->h, &op->d);
  op->armed = 0;
}

/* A queue woke case w (and reserved for it, unless status is UV_EOF):
 * it wins; no other case can be woken after this. */
static void case_notify (luaio_waiter *w, int status) {
  sel_case *sc = LUAIO_CONTAINER(w, sel_case, w);
  select_op *op = sc->op;
  op->fired = (int)(sc - op->cases);
  op->fired_status = status;
  stop_all(op);
  luaio_waiter_done(&op->w, 0);
}

static void select_due_cb (luaio_deadline *d) {
  select_op *op = LUAIO_CONTAINER(d, select_op, d);
  op->armed = 0;
  stop_all(op);
  luaio_waiter_done(&op->w, UV_ETIMEDOUT);
}

static void select_abort (luaio_waiter *w) {
  select_op *op = LUAIO_CONTAINER(w, select_op, w);
  stop_all(op);
  luaio_waiter_done(w, UV_ECANCELED);
}

static int select_k (lua_State *L, int status, lua_KContext ctx) {
  select_op *op = (select_op *)lua_touserdata(L, S_SELECT);
  (void)ctx;
  if (status == UV_ETIMEDOUT) return timed_out(L);
  if (status != 0) return luaio_raise_uv(L, status, "aio.select", NULL, NULL);
  return run_case(L, op, op->fired, 1, op->fired_status);
}

/* Wait on every case at once (and the timeout, if ms is not forever). */
static int select_wait (lua_State *L, select_op *op, lua_Integer ms) {
  int i;
  luaio_waiter_init(&op->w, select_abort);
  op->h = luaio__host(L);
  if (ms > 0 && ms < LUA_MAXINTEGER) {
    op->armed = luaio__deadline_start(op->h, &op->d, (uint64_t)ms,
                                      select_due_cb);
    if (!op->armed) return luaL_error(L, "aio.select: out of memory");
  }
  for (i = 0; i < op->ncases; i++) {
    sel_case *sc = &op->cases[i];
    sc->op = op;
    luaio__watch(sc->is_put ? &sc->q->putters : &sc->q->getters, &sc->w,
                 case_notify, sc);
  }
  return luaio_wait(L, &op->w, select_k, 0);
}

/* Collected (its task ended some other way): off every list. */
static int select_gc (lua_State *L) {
  select_op *op = (select_op *)lua_touserdata(L, 1);
  if (op->h != NULL) stop_all(op);
  return 0;
}

/* aio.select(cases [, timeout]) -> which, value | which, nil, "closed" |
 * nil, "timeout" */
static int sync_select (lua_State *L) {
  lua_Integer ms = luaio_check_seconds(L, 2, "aio.select");
  select_op *op = push_select(L);
  int i = pick_ready(L, op);
  if (i >= 0) return run_case(L, op, i, 0, 0);
  if (ms == 0) return timed_out(L);
  luaio_check_wait(L, "aio.select");
  return select_wait(L, op, ms);
}

const luaL_Reg luaio__select_funcs[] = {
  {"select", sync_select}, {NULL, NULL}
};
