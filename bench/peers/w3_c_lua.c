/* W3 floor: a bounded queue (maxsize 100) as a C ring buffer, one Lua
 * producer coroutine and four Lua consumer coroutines, all resumed from
 * a C ready queue; no event loop. put and get are C functions that
 * yield when the ring is full or empty and wake the other side, as
 * luaio's queue does. Items are integers (luaio's queue holds any Lua
 * value). usage: w3_c_lua [N]
 *
 * Built with -DSAME_LUA_WORK (w3_c_lua_fair), the script does the Lua
 * work of bench/w3_queue.lua: the queue is a userdata whose metatable's
 * __index is a table of C methods, called as q:put(i) and q:get(), each
 * checking its self is a queue; without it, put and get are upvalues. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAP 100
#ifdef SAME_LUA_WORK
#define ITEM 2                           /* q:put(i) */
#define NAME "c-lua-fair"
#else
#define ITEM 1                           /* put(i) */
#define NAME "c-lua"
#endif
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
  ring[(head + count++) % CAP] = lua_tointeger(L, ITEM);
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

#ifdef SAME_LUA_WORK
static char queue_tag;                   /* what a queue userdata holds */

/* The self check every method makes: a userdata holding the tag. */
static void check_self (lua_State *L) {
  char **q = (char **)lua_touserdata(L, 1);
  if (q == NULL || lua_rawlen(L, 1) != sizeof *q || *q != &queue_tag)
    luaL_argerror(L, 1, "queue expected");
}
#else
#define check_self(L) ((void)(L))
#endif

static int q_put (lua_State *L) { check_self(L); return put_k(L, 0, 0); }
static int q_get (lua_State *L) { check_self(L); return get_k(L, 0, 0); }
static int q_close (lua_State *L) {
  check_self(L);
  closed = 1;
  while (nget_waiters) wake_getter();
  return 0;
}

#ifdef SAME_LUA_WORK
static const char *producer =
  "local q, n = ... for i = 1, n do q:put(i) end q:close()";
static const char *consumer =
  "local q = ... local s = 0 while true do local x = q:get() "
  "if x == nil then break end s = s + x end return s";

/* Push the arguments of coroutine i: the queue (a userdata, metatable
 * {__index = {put, get, close}}), and n for the producer. */
static int push_args (lua_State *co, int i, long long n) {
  static const luaL_Reg methods[] = {
    {"put", q_put}, {"get", q_get}, {"close", q_close}, {NULL, NULL}};
  char **q = (char **)lua_newuserdatauv(co, sizeof *q, 0);
  *q = &queue_tag;
  if (luaL_newmetatable(co, "w3.queue")) {
    luaL_newlib(co, methods);
    lua_setfield(co, -2, "__index");
  }
  lua_setmetatable(co, -2);
  if (i > 0) return 1;
  lua_pushinteger(co, n);
  return 2;
}
#else
static const char *producer =
  "local put, close, n = ... for i = 1, n do put(i) end close()";
static const char *consumer =
  "local get = ... local s = 0 while true do local x = get() "
  "if x == nil then break end s = s + x end return s";

/* Push the arguments of coroutine i: put, close and n, or get. */
static int push_args (lua_State *co, int i, long long n) {
  if (i > 0) {
    lua_pushcfunction(co, q_get);
    return 1;
  }
  lua_pushcfunction(co, q_put);
  lua_pushcfunction(co, q_close);
  lua_pushinteger(co, n);
  return 3;
}
#endif

int main (int argc, char **argv) {
  long long n = argc > 1 ? atoll(argv[1]) : 1000000, total = 0;
  lua_State *L = luaL_newstate();
  lua_State *co[NCO];
  int i, nres, nargs[NCO];
  double t0;
  luaL_openlibs(L);
  t0 = now();
  for (i = 0; i < NCO; i++) {
    co[i] = lua_newthread(L);            /* anchored on L's stack */
    if (luaL_loadstring(co[i], i == 0 ? producer : consumer)) return 1;
    nargs[i] = push_args(co[i], i, n);
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
  printf("W3 " NAME " %.0f items/s\n", n / (now() - t0));
  return 0;
}
