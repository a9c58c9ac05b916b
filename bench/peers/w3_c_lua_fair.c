/* SPDX-License-Identifier: MIT (see LICENSE) */
/* W3 second floor: bench/peers/w3_c_lua.c with the script's Lua work of
 * bench/w3_queue.lua: the queue is a userdata whose metatable's __index
 * is a table of C methods, called as q:put(i) and q:get() (w3_c_lua
 * calls upvalues), each checking its self is a queue. The C under it
 * stays the least there is: one ring, no event loop, no error handling.
 * Items are integers (luaio's queue holds any Lua value).
 * usage: w3_c_lua_fair [N] */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAP 100
#define NCO 5                            /* 1 producer + 4 consumers */

static lua_Integer ring[CAP];
static int head, count, closed;
static lua_State *ready[NCO + 1];        /* FIFO of runnable coroutines */
static int rhead, rcount;
static lua_State *put_waiter, *get_waiters[NCO];
static int nget_waiters;

static double now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void make_ready (lua_State *co) {
  ready[(rhead + rcount++) % (NCO + 1)] = co;
}

static void wake_getter (void) {
  int i;
  if (nget_waiters == 0) return;
  make_ready(get_waiters[0]);
  for (i = 1; i < nget_waiters; i++) get_waiters[i - 1] = get_waiters[i];
  nget_waiters--;
}

static int put_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  if (count == CAP) {                    /* full: wait for a get */
    put_waiter = L;
    return lua_yieldk(L, 0, 0, put_k);
  }
  ring[(head + count++) % CAP] = lua_tointeger(L, 2);   /* q:put(i) */
  wake_getter();
  return 0;
}

static int get_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  if (count == 0) {
    if (closed) { lua_pushnil(L); return 1; }
    get_waiters[nget_waiters++] = L;     /* empty: wait for a put */
    return lua_yieldk(L, 0, 0, get_k);
  }
  lua_pushinteger(L, ring[head]);
  head = (head + 1) % CAP;
  count--;
  if (put_waiter) { make_ready(put_waiter); put_waiter = NULL; }
  return 1;
}

static char queue_tag;                   /* what a queue userdata holds */

/* The self check every method makes: a userdata holding the tag. */
static void check_self (lua_State *L) {
  char **q = (char **)lua_touserdata(L, 1);
  if (q == NULL || lua_rawlen(L, 1) != sizeof *q || *q != &queue_tag)
    luaL_argerror(L, 1, "queue expected");
}

static int q_put (lua_State *L) { check_self(L); return put_k(L, 0, 0); }
static int q_get (lua_State *L) { check_self(L); return get_k(L, 0, 0); }
static int q_close (lua_State *L) {
  check_self(L);
  closed = 1;
  while (nget_waiters) wake_getter();
  return 0;
}

static const char *producer =
  "local q, n = ... for i = 1, n do q:put(i) end q:close()";
static const char *consumer =
  "local q = ... local s = 0 while true do local x = q:get() "
  "if x == nil then break end s = s + x end return s";

/* Push a queue userdata: metatable {__index = {put, get, close}}. */
static void push_queue (lua_State *L) {
  static const luaL_Reg methods[] = {
    {"put", q_put}, {"get", q_get}, {"close", q_close}, {NULL, NULL}};
  char **q = (char **)lua_newuserdatauv(L, sizeof *q, 0);
  *q = &queue_tag;
  lua_createtable(L, 0, 1);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

int main (int argc, char **argv) {
  long long n = argc > 1 ? atoll(argv[1]) : 1000000, total = 0;
  lua_State *L = luaL_newstate();
  lua_State *co[NCO];
  int i, nres, nargs[NCO];
  double t0;
  luaL_openlibs(L);
  t0 = now();
  push_queue(L);                         /* 1: the queue */
  for (i = 0; i < NCO; i++) {
    co[i] = lua_newthread(L);            /* anchored on L's stack */
    if (luaL_loadstring(co[i], i == 0 ? producer : consumer)) return 1;
    lua_pushvalue(L, 1);
    lua_xmove(L, co[i], 1);
    if (i == 0) lua_pushinteger(co[i], n);
    nargs[i] = i == 0 ? 2 : 1;
  }
  for (i = 1; i < NCO; i++) make_ready(co[i]);   /* consumers first */
  make_ready(co[0]);
  while (rcount > 0) {
    lua_State *c = ready[rhead];
    int k, st;
    rhead = (rhead + 1) % (NCO + 1);
    rcount--;
    for (k = 0; k < NCO && co[k] != c; k++) {}
    st = lua_resume(c, L, nargs[k], &nres);
    nargs[k] = 0;
    if (st == LUA_OK && k > 0) total += lua_tointeger(c, -1);
    else if (st != LUA_OK && st != LUA_YIELD) {
      fprintf(stderr, "%s\n", lua_tostring(c, -1));
      return 1;
    }
    if (st == LUA_YIELD) lua_pop(c, nres);
  }
  if (total != n * (n + 1) / 2) return 1;
  printf("W3 c-lua-fair %.0f items/s\n", n / (now() - t0));
  return 0;
}
