/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sync_limiter.c: aio.rate_limiter.
 */
#include "sync.h"
#include <math.h>

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
  r->armed = luaio__deadline_start(&r->h->timers, &r->d,
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
  if (r->armed) luaio__deadline_stop(&r->h->timers, &r->d);
  r->armed = 0;
  return 0;
}

static const luaL_Reg limiter_methods[] = {
  {"acquire", limiter_acquire}, {"try_acquire", limiter_try_acquire},
  {NULL, NULL}
};

static const luaL_Reg limiter_meta[] = {{"__gc", limiter_gc}, {NULL, NULL}};

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
  luaio__class(L, "luaio.RateLimiter", limiter_methods, NULL, limiter_meta);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->rate = rate;
  r->burst = burst;
  r->tokens = burst;
  r->last = uv_hrtime();
  r->h = luaio__host(L);
  luaL_setmetatable(L, "luaio.RateLimiter");
  return 1;
}

const luaL_Reg luaio__limiter_funcs[] = {
  {"rate_limiter", sync_rate_limiter}, {NULL, NULL}
};
