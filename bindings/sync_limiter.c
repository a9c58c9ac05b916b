/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_limiter.c: aio.rate_limiter.
 *
 * Three shapes share one object:
 * - a sliding window (the default): no span of `per` seconds ever holds
 *   more than n acquisitions. The times of the acquisitions of the last
 *   `per` seconds (at most n) are kept in a ring; one more is granted
 *   when fewer than n are younger than `per`.
 * - a token bucket (when a burst is given): n / per tokens a second up
 *   to `burst`.
 * - keyed: one limiter of either shape per key, made on first use and
 *   dropped once idle.
 * An acquisition's time is when acquire returns to its caller: a waiter
 * woken with a grant is "pending" until its task runs, and counts as
 * one of the window's n meanwhile. Waiters are served FIFO; one deadline
 * per limiter wakes them when their turn is due.
 */
#include "sync.h"
#include <math.h>

enum { L_WINDOW, L_BUCKET, L_KEYED };

typedef struct limiter {
  int mode;
  int sub_mode;                 /* keyed: the shape of each key's limiter */
  double n, per, burst;         /* the settings, as given */
  double rate, tokens;          /* bucket */
  uint64_t last;                /* bucket: ns of the last refill */
  uint64_t per_ns;              /* window */
  uint64_t *stamps;             /* window: ring in the uservalue */
  size_t head, len, cap;
  lua_Integer npending;         /* window: granted, not yet returned */
  lua_Integer nkeys, sweep_at;  /* keyed: the keys table's size */
  luaio_deadline d;
  luaio_host *h;
  int armed;
  luaio_waitlist waiters;
} limiter;

#define LIMITER "luaio.RateLimiter"

/* The longest single timer wait; a later turn re-arms (the rate may be
 * one per 1e300 seconds, which no integer of milliseconds holds). */
#define LIMITER_MAX_WAIT_MS 1e12

/* Counts are kept as doubles: beyond 2^53 taking one would not change
 * the count, so larger ones are refused. */
#define LIMITER_MAX_COUNT 9007199254740992.0

/* A keyed limiter sweeps its idle keys when it holds this many more
 * keys than after the last sweep (amortised O(1) per new key). */
#define LIMITER_SWEEP_MIN 16

/* ---- the sliding window ---------------------------------------------- */

/* Forget the acquisitions older than the window. */
static void window_prune (limiter *r, uint64_t now) {
  while (r->len > 0 && now - r->stamps[r->head] >= r->per_ns) {
    r->head = (r->head + 1) % r->cap;
    r->len--;
  }
}

static int window_room (limiter *r, uint64_t now) {
  window_prune(r, now);
  return (double)(r->len + (size_t)r->npending) < r->n;
}

/* Milliseconds until the window has room, or -1 if that waits for a
 * pending acquisition to be stamped (its continuation pumps). */
static double window_wait_ms (limiter *r, uint64_t now) {
  size_t used = r->len + (size_t)r->npending, k;
  uint64_t age;
  if ((double)used < r->n) return 0;
  k = used - (size_t)r->n + 1;       /* acquisitions that must age out */
  if (k > r->len) return -1;
  age = now - r->stamps[(r->head + k - 1) % r->cap];
  return (double)(r->per_ns - age) / 1e6;
}

/* Make room in the ring for every granted acquisition plus one; may
 * raise (out of memory) before anything changed. r at idx. */
static void window_reserve (lua_State *L, int idx, limiter *r) {
  size_t i, cap, need = r->len + (size_t)r->npending + 1;
  uint64_t *s;
  if (need <= r->cap) return;
  cap = r->cap ? r->cap * 2 : 16;
  while (cap < need) cap *= 2;
  s = (uint64_t *)lua_newuserdatauv(L, cap * sizeof *s, 0);
  for (i = 0; i < r->len; i++) s[i] = r->stamps[(r->head + i) % r->cap];
  lua_setiuservalue(L, idx, 1);
  r->stamps = s;
  r->head = 0;
  r->cap = cap;
}

/* Record an acquisition made now (room reserved). */
static void window_stamp (limiter *r) {
  r->stamps[(r->head + r->len) % r->cap] = uv_hrtime();
  r->len++;
}

/* ---- the token bucket ------------------------------------------------- */

static void bucket_refill (limiter *r) {
  uint64_t now = uv_hrtime();
  r->tokens += (double)(now - r->last) / 1e9 * r->rate;
  if (r->tokens > r->burst) r->tokens = r->burst;
  r->last = now;
}

static double bucket_wait_ms (limiter *r) {
  return (1.0 - r->tokens) / r->rate * 1000.0;
}

/* ---- either ----------------------------------------------------------- */

/* Is there room for one more acquisition now? */
static int has_room (limiter *r) {
  if (r->mode == L_WINDOW) return window_room(r, uv_hrtime());
  bucket_refill(r);
  return r->tokens >= 1.0;
}

/* Take the room has_room found, for a task woken to return. */
static void take_room (limiter *r) {
  if (r->mode == L_WINDOW) r->npending++; else r->tokens -= 1.0;
}

static void give_room_back (limiter *r) {
  if (r->mode == L_WINDOW) r->npending--; else r->tokens += 1.0;
}

static void limiter_due_cb (luaio_deadline *d);

/* Arm the deadline for the first waiter's turn (force: a waiter is
 * about to queue). The wait is at least 1 ms, so the deadline never
 * fires in a loop. */
static void limiter_arm (limiter *r, int force) {
  double ms;
  if (r->armed || (!force && r->waiters.head == NULL)) return;
  ms = r->mode == L_WINDOW ? window_wait_ms(r, uv_hrtime())
                           : bucket_wait_ms(r);
  if (ms < 0) return;
  if (!(ms < LIMITER_MAX_WAIT_MS)) ms = LIMITER_MAX_WAIT_MS;
  r->armed = luaio__deadline_start(r->h, &r->d, (uint64_t)ms + 1,
                                   limiter_due_cb);
}

/* Wake the waiters whose turn has come, then arm for the next one. */
static void limiter_pump (limiter *r) {
  while (r->waiters.head && has_room(r)) {
    take_room(r);
    if (!luaio_waitlist_wake(&r->waiters, 0)) give_room_back(r);
  }
  limiter_arm(r, 0);
}

static void limiter_due_cb (luaio_deadline *d) {
  limiter *r = LUAIO_CONTAINER(d, limiter, d);
  r->armed = 0;
  limiter_pump(r);
}

/* Acquire now if nobody waits and there is room; r at idx. */
static int try_now (lua_State *L, int idx, limiter *r) {
  if (r->waiters.head != NULL || !has_room(r)) return 0;
  if (r->mode == L_WINDOW) {
    window_reserve(L, idx, r);
    window_stamp(r);
  }
  else r->tokens -= 1.0;
  return 1;
}

/* Stack: ..., the limiter at ctx, the waiter. A window's grant is
 * stamped now; if making room for it runs out of memory, the grant stays
 * pending for ever: the limiter gets stricter, never looser. */
static int acquire_k (lua_State *L, int status, lua_KContext ctx) {
  int idx = (int)ctx;
  limiter *r = (limiter *)lua_touserdata(L, idx);
  if (status != 0)
    return luaio_raise_uv(L, status, "rate_limiter:acquire", NULL, NULL);
  if (r->mode == L_WINDOW) {
    window_reserve(L, idx, r);
    r->npending--;
    window_stamp(r);
    limiter_pump(r);
  }
  return 0;
}

/* Acquire on the limiter at idx (the top), waiting FIFO. */
static int acquire_on (lua_State *L, int idx, limiter *r) {
  if (try_now(L, idx, r)) return 0;
  luaio_check_wait(L, "rate_limiter:acquire");
  lua_settop(L, idx);
  limiter_arm(r, 1);
  return luaio_waitlist_wait(L, &r->waiters, acquire_k, (lua_KContext)idx);
}

/* ---- keys ------------------------------------------------------------- */

/* Nothing acquired within the window, nobody waiting: dropping the key
 * changes nothing a user can see. */
static int is_idle (limiter *r) {
  if (r->waiters.head || r->armed || r->npending) return 0;
  if (r->mode == L_WINDOW) {
    window_prune(r, uv_hrtime());
    return r->len == 0;
  }
  bucket_refill(r);
  return r->tokens >= r->burst;
}

/* Drop the idle keys of the keys table at t. */
static void keys_sweep (lua_State *L, int t, limiter *k) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (is_idle((limiter *)lua_touserdata(L, -1))) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, t);                 /* clearing a field is allowed */
      k->nkeys--;
    }
    lua_pop(L, 1);
  }
  k->sweep_at = k->nkeys * 2 > LIMITER_SWEEP_MIN ? k->nkeys * 2
                                                 : LIMITER_SWEEP_MIN;
}

static limiter *push_limiter (lua_State *L, const limiter *settings,
                              int mode);

/* Push the limiter of the key at 2 of the keyed limiter k at 1, making
 * it on first use. [-0, +1] */
static limiter *push_key (lua_State *L, limiter *k, const char *fname) {
  limiter *r;
  lua_Number x = lua_tonumber(L, 2);
  if (lua_isnoneornil(L, 2)) luaio__argerror(L, 2, fname, "key expected");
  if (x != x) luaio__argerror(L, 2, fname, "key is NaN");
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);                      /* k key keys */
  lua_pushvalue(L, 2);
  lua_rawget(L, 3);
  r = (limiter *)lua_touserdata(L, -1);
  if (r != NULL) { lua_remove(L, 3); return r; }
  lua_pop(L, 1);
  if (k->nkeys >= k->sweep_at) keys_sweep(L, 3, k);
  r = push_limiter(L, k, k->sub_mode);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 3);
  k->nkeys++;
  lua_remove(L, 3);
  return r;
}

/* ---- methods ---------------------------------------------------------- */

static limiter *check_limiter (lua_State *L) {
  return (limiter *)luaL_checkudata(L, 1, LIMITER);
}

/* The limiter to use for the call: the one at 1, or its key's limiter
 * (pushed at 3). Sets *idx to its index. */
static limiter *target (lua_State *L, const char *fname, int *idx) {
  limiter *r = check_limiter(L);
  if (r->mode == L_KEYED) {
    *idx = 3;
    return push_key(L, r, fname);
  }
  if (!lua_isnoneornil(L, 2))
    luaio__argerror(L, 2, fname, "no key expected (the limiter was made "
                    "without key = true)");
  lua_settop(L, 1);
  *idx = 1;
  return r;
}

/* r:acquire([key]): waits (FIFO) until an acquisition is allowed. */
static int limiter_acquire (lua_State *L) {
  int idx;
  limiter *r = target(L, "rate_limiter:acquire", &idx);
  return acquire_on(L, idx, r);
}

/* r:try_acquire([key]) -> true if it acquired now. */
static int limiter_try_acquire (lua_State *L) {
  int idx;
  limiter *r = target(L, "rate_limiter:try_acquire", &idx);
  lua_pushboolean(L, try_now(L, idx, r));
  return 1;
}

/* r:key_count() -> how many keys a keyed limiter holds (0 otherwise). */
static int limiter_key_count (lua_State *L) {
  limiter *r = check_limiter(L);
  lua_pushinteger(L, r->mode == L_KEYED ? r->nkeys : 0);
  return 1;
}

static int limiter_gc (lua_State *L) {
  limiter *r = (limiter *)lua_touserdata(L, 1);
  if (r->armed) luaio__deadline_stop(r->h, &r->d);
  r->armed = 0;
  return 0;
}

static const luaL_Reg limiter_methods[] = {
  {"acquire", limiter_acquire}, {"try_acquire", limiter_try_acquire},
  {"key_count", limiter_key_count}, {NULL, NULL}
};

static const luaL_Reg limiter_meta[] = {{"__gc", limiter_gc}, {NULL, NULL}};

/* ---- construction ----------------------------------------------------- */

/* Push a limiter of mode with the settings of s. [-0, +1] */
static limiter *push_limiter (lua_State *L, const limiter *s, int mode) {
  limiter *r;
  luaio__class(L, LIMITER, limiter_methods, NULL, limiter_meta);
  r = lua_newuserdatauv(L, sizeof *r, 1);
  memset(r, 0, sizeof *r);
  r->mode = mode;
  r->sub_mode = s->sub_mode;
  r->n = s->n;
  r->per = s->per;
  r->burst = s->burst;
  r->rate = s->n / s->per;
  r->tokens = s->burst;
  r->last = uv_hrtime();
  r->per_ns = s->per * 1e9 < 1.8e19 ? (uint64_t)(s->per * 1e9) : UINT64_MAX;
  r->sweep_at = LIMITER_SWEEP_MIN;
  r->h = luaio__host(L);
  if (mode == L_KEYED) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
  }
  luaL_setmetatable(L, LIMITER);
  return r;
}

static lua_Number number_arg (lua_State *L, int arg, lua_Number def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (!lua_isnumber(L, arg))
    return luaio__typeerror(L, arg, "aio.rate_limiter", "number");
  return lua_tonumber(L, arg);
}

/* The options at 3: nil, a burst, or {burst = b, key = true}. Sets
 * s->burst (0: none) and s->mode. */
static void check_options (lua_State *L, limiter *s) {
  int keyed = 0;
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                      : "";
      if (strcmp(k, "burst") && strcmp(k, "key"))
        luaio__argerror(L, 3, "aio.rate_limiter", lua_pushfstring(L,
                        "unknown option '%s'", luaio__tostring(L, -2)));
      lua_pop(L, 1);
    }
    lua_getfield(L, 3, "key");
    keyed = lua_toboolean(L, -1);
    lua_getfield(L, 3, "burst");
    lua_replace(L, 3);
    lua_settop(L, 3);
  }
  s->burst = number_arg(L, 3, 0);
  if (lua_isnoneornil(L, 3)) s->sub_mode = L_WINDOW;
  else s->sub_mode = L_BUCKET;
  s->mode = keyed ? L_KEYED : s->sub_mode;
}

/* The checks of aio.rate_limiter, in argument order. */
static void check_settings (lua_State *L, limiter *s) {
  const char *f = "aio.rate_limiter";
  if (!(s->n > 0 && s->n <= LIMITER_MAX_COUNT))
    luaio__argerror(L, 1, f, "n must be > 0 and at most 2^53");
  if (!(s->per > 0 && s->per < HUGE_VAL))
    luaio__argerror(L, 2, f, "per_seconds must be a finite number > 0");
  if (!(s->n / s->per > 0 && s->n / s->per < HUGE_VAL))
    luaio__argerror(L, 2, f, "n / per_seconds must be a finite rate > 0");
  if (s->sub_mode == L_BUCKET &&
      !(s->burst >= 1 && s->burst <= LIMITER_MAX_COUNT))
    luaio__argerror(L, 3, f, "burst must be from 1 to 2^53");
  if (s->sub_mode == L_WINDOW && s->n != floor(s->n))
    luaio__argerror(L, 1, f, "n must be a whole number (or give a burst "
                    "for a token bucket)");
}

/* aio.rate_limiter(n [, per_seconds [, burst | opts]]) */
static int sync_rate_limiter (lua_State *L) {
  limiter s;
  memset(&s, 0, sizeof s);
  if (lua_isnoneornil(L, 1))
    return luaio__typeerror(L, 1, "aio.rate_limiter", "number");
  s.n = number_arg(L, 1, 0);
  s.per = number_arg(L, 2, 1.0);
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3) && !lua_isnumber(L, 3))
    return luaio__typeerror(L, 3, "aio.rate_limiter", "number or table");
  check_options(L, &s);
  check_settings(L, &s);
  lua_settop(L, 0);
  push_limiter(L, &s, s.mode);
  return 1;
}

const luaL_Reg luaio__limiter_funcs[] = {
  {"rate_limiter", sync_rate_limiter}, {NULL, NULL}
};
