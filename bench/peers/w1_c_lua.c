/* W1 floor: a C loop resuming N Lua coroutines that each yield once and
 * return their index; no event loop. usage: w1_c_lua [N] */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main (int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000, i, sum = 0;
  lua_State *L = luaL_newstate(), **co;
  int nres;
  double t0;
  luaL_openlibs(L);
  if (luaL_dostring(L, "return function(k) coroutine.yield() return k end"))
    return 1;
  lua_newtable(L);                       /* 2: anchors the coroutines */
  co = malloc(n * sizeof *co);
  t0 = now();
  for (i = 0; i < n; i++) {              /* spawn: start each, it yields */
    co[i] = lua_newthread(L);
    lua_rawseti(L, 2, i + 1);
    lua_pushvalue(L, 1);
    lua_xmove(L, co[i], 1);
    lua_pushinteger(co[i], i);
    lua_resume(co[i], L, 1, &nres);
    lua_pop(co[i], nres);
  }
  for (i = 0; i < n; i++) {              /* next turn: each returns */
    lua_resume(co[i], L, 0, &nres);
    sum += (long)lua_tointeger(co[i], -1);
  }
  if (sum != n * (n - 1) / 2) return 1;
  printf("W1 c-lua %.0f tasks/s\n", n / (now() - t0));
  return 0;
}
