/* SPDX-License-Identifier: MIT (see LICENSE) */
/* W1 second floor: the same Lua-visible work as bench/w1_spawn.lua, with
 * the least C under it. The script creates a closure per task and calls
 * spawn (a C function: a coroutine with the closure and its argument,
 * queued) and await (a C function: resumes the queued coroutines, a pass
 * at a time, until the awaited one has returned; then hands over its
 * result). Each task yields once (coroutine.yield, a C function, as
 * aio.sleep(0) is). No event loop, no task record, no error handling,
 * no anchoring beyond the script's own array of tasks.
 * usage: w1_c_lua_fair [N] */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define done_of(co) (*(intptr_t *)lua_getextraspace(co))

static lua_State **queue, **next_pass;      /* runnable coroutines */
static long nqueue;

static double now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* spawn(fn, arg) -> the coroutine, queued to start. */
static int spawn (lua_State *L) {
  lua_State *co = lua_newthread(L);          /* fn arg co */
  lua_insert(L, 1);                          /* co fn arg */
  lua_xmove(L, co, 2);
  done_of(co) = 0;
  queue[nqueue++] = co;
  return 1;
}

/* One pass: resume every queued coroutine; the ones that yield run
 * again in the next pass, the others leave their result on their stack. */
static void run_pass (lua_State *L) {
  long i, n = nqueue, m = 0;
  lua_State **q = queue;
  for (i = 0; i < n; i++) {
    lua_State *co = q[i];
    int nres, nargs = lua_gettop(co) - 1;    /* fn and its argument */
    if (lua_resume(co, L, done_of(co) == 2 ? 0 : nargs, &nres)
        == LUA_YIELD) {
      lua_pop(co, nres);
      done_of(co) = 2;                       /* started */
      next_pass[m++] = co;
    }
    else done_of(co) = 1;
  }
  queue = next_pass;
  next_pass = q;
  nqueue = m;
}

/* await(co) -> co's result, running passes until it has one. */
static int await (lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  while (done_of(co) != 1) run_pass(L);
  lua_xmove(co, L, 1);
  return 1;
}

static const char script[] =
  "local spawn, await, yield, N = ...\n"
  "local tasks = {}\n"
  "for i = 1, N do\n"
  "  tasks[i] = spawn(function(k) yield(); return k end, i - 1)\n"
  "end\n"
  "local s = 0\n"
  "for i = 1, N do s = s + await(tasks[i]) end\n"
  "return s\n";

int main (int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  lua_State *L = luaL_newstate();
  double t0;
  luaL_openlibs(L);
  done_of(L) = 0;                            /* threads copy it */
  queue = malloc(n * sizeof *queue);
  next_pass = malloc(n * sizeof *next_pass);
  if (luaL_loadstring(L, script)) return 1;
  lua_pushcfunction(L, spawn);
  lua_pushcfunction(L, await);
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "yield");
  lua_remove(L, -2);
  lua_pushinteger(L, n);
  t0 = now();
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  if (lua_tointeger(L, -1) != n * (n - 1) / 2) return 1;
  printf("W1 c-lua-fair %.0f tasks/s\n", n / (now() - t0));
  return 0;
}
