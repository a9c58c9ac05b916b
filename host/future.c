/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * future.c: futures (luaio.Future), for Lua (aio.future) and embedders
 * (luaio_future_* in luaio.h) alike: a value that comes later, set or
 * failed once, awaited by any number of tasks.
 *
 * The result lives in the userdata's uservalue: a table {n = n, ...} of
 * the values once set, the error value once failed. A C handle is the
 * userdata itself, pinned by a registry reference while C holds it, so
 * a C callback may complete a future that Lua code has dropped.
 */
#include "host.h"

enum { F_PENDING, F_SET, F_FAILED };

struct luaio_future {
  int state;
  int pins;                     /* C handles given out */
  int ref;                      /* registry ref while pinned */
  luaio_waitlist waiters;
};

#define FUTURE "luaio.Future"

luaio_future *luaio_tofuture (lua_State *L, int idx) {
  return (luaio_future *)luaL_testudata(L, idx, FUTURE);
}

static luaio_future *check_future (lua_State *L) {
  return (luaio_future *)luaL_checkudata(L, 1, FUTURE);
}

int luaio_future_done (luaio_future *f) {
  return f->state != F_PENDING;
}

/* ---- completing ------------------------------------------------------- */

/* Store the result on top of L (popped) in the future at fidx and wake
 * every waiter. [-1, +0] */
static void complete (lua_State *L, int fidx, luaio_future *f, int state) {
  lua_setiuservalue(L, fidx, 1);
  f->state = state;
  luaio_waitlist_wake_all(&f->waiters, 0);
}

/* Pack the n values on top into a table {n = n, ...}. [-n, +1] */
static void pack (lua_State *L, int n) {
  int i;
  lua_createtable(L, n, 1);
  lua_insert(L, -n - 1);                           /* t v1 .. vn */
  for (i = n; i >= 1; i--) lua_rawseti(L, -i - 1, i);
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
}

/* Complete f (at fidx) with the n values on top. */
static int set_at (lua_State *L, int fidx, luaio_future *f, int n) {
  if (f->state != F_PENDING) {
    lua_pop(L, n);
    return LUAIO_ERROR;
  }
  pack(L, n);
  complete(L, fidx, f, F_SET);
  return LUAIO_OK;
}

static int fail_at (lua_State *L, int fidx, luaio_future *f) {
  if (f->state != F_PENDING) {
    lua_pop(L, 1);
    return LUAIO_ERROR;
  }
  complete(L, fidx, f, F_FAILED);
  return LUAIO_OK;
}

/* ---- methods -------------------------------------------------------- */

static int already_done (lua_State *L, const char *fname) {
  return luaL_error(L, "%s: the future is already done", fname);
}

/* f:set(...): completes f with the values (nils included). */
static int future_set (lua_State *L) {
  luaio_future *f = check_future(L);
  if (f->state != F_PENDING) return already_done(L, "future:set");
  set_at(L, 1, f, lua_gettop(L) - 1);
  return 0;
}

/* f:fail(err): completes f with an error, raised by every await. */
static int future_fail (lua_State *L) {
  luaio_future *f = check_future(L);
  if (lua_isnoneornil(L, 2))
    return luaio__argerror(L, 2, "future:fail", "error value expected");
  if (f->state != F_PENDING) return already_done(L, "future:fail");
  lua_settop(L, 2);
  fail_at(L, 1, f);
  return 0;
}

/* Push f's values, or raise its error (f at 1, done). */
static int deliver (lua_State *L, luaio_future *f) {
  int i, n;
  lua_getiuservalue(L, 1, 1);
  if (f->state == F_FAILED) return lua_error(L);
  n = (int)(lua_getfield(L, -1, "n"), lua_tointeger(L, -1));
  lua_pop(L, 1);
  luaL_checkstack(L, n, "future:await: too many values");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  return n;
}

static int await_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != 0)
    return luaio_raise_uv(L, status, "future:await", NULL, NULL);
  return deliver(L, check_future(L));
}

/* f:await() -> the values set, or raises the error failed with; waits
 * while pending. */
static int future_await (lua_State *L) {
  luaio_future *f = check_future(L);
  lua_settop(L, 1);
  if (f->state != F_PENDING) return deliver(L, f);
  luaio_check_wait(L, "future:await");
  return luaio_waitlist_wait(L, &f->waiters, await_k, 0);
}

/* f:done() -> whether f is set or failed. */
static int future_done (lua_State *L) {
  lua_pushboolean(L, luaio_future_done(check_future(L)));
  return 1;
}

static const luaL_Reg future_methods[] = {
  {"set", future_set}, {"fail", future_fail}, {"await", future_await},
  {"done", future_done}, {NULL, NULL}
};

/* ---- the C API ---------------------------------------------------------- */

luaio_future *luaio_future_new (lua_State *L) {
  luaio_future *f;
  luaio__class(L, FUTURE, future_methods, NULL, NULL);
  f = lua_newuserdatauv(L, sizeof *f, 1);
  memset(f, 0, sizeof *f);
  f->ref = LUA_NOREF;
  luaL_setmetatable(L, FUTURE);
  return luaio_future_ref(L, -1);
}

void luaio_future_push (lua_State *L, luaio_future *f) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
}

int luaio_future_set (lua_State *L, luaio_future *f, int n) {
  int status;
  luaio_future_push(L, f);
  lua_insert(L, -n - 1);
  status = set_at(L, lua_absindex(L, -n - 1), f, n);
  lua_pop(L, 1);
  return status;
}

int luaio_future_fail (lua_State *L, luaio_future *f) {
  int status;
  luaio_future_push(L, f);
  lua_insert(L, -2);
  status = fail_at(L, lua_absindex(L, -2), f);
  lua_pop(L, 1);
  return status;
}

luaio_future *luaio_future_ref (lua_State *L, int idx) {
  luaio_future *f = luaio_tofuture(L, idx);
  if (f == NULL) return NULL;
  if (f->pins++ == 0) {
    lua_pushvalue(L, idx);
    f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return f;
}

void luaio_future_release (lua_State *L, luaio_future *f) {
  if (f->pins <= 0 || --f->pins > 0) return;
  luaL_unref(L, LUA_REGISTRYINDEX, f->ref);
  f->ref = LUA_NOREF;
}

/* aio.future() -> a new pending future. */
int luaio__future_new (lua_State *L) {
  luaio_future_release(L, luaio_future_new(L));
  return 1;
}
