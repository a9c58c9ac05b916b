/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * core.c: the `luaio` module: spawn, sleep, now, current, tasks, run and
 * the error predicates. The module is three files (CMakeLists.txt):
 * flow.c (gather, wait, timeouts...) and sync.c (queues, semaphores...)
 * add their functions to the table luaopen_luaio makes here.
 */
#include "../host/host.h"
#include "../host/osproc.h"
#include <math.h>

/* The other parts of this module. */
void luaio__flow_register(lua_State *L);
void luaio__sync_register(lua_State *L);

static void check_callable (lua_State *L, int arg, const char *fname) {
  int callable = lua_type(L, arg) == LUA_TFUNCTION;
  if (!callable && luaL_getmetafield(L, arg, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    callable = 1;
  }
  if (!callable) luaio__typeerror(L, arg, fname, "function");
}

/* aio.spawn(fn, ...) -> task. The hot path of W1: a plain function
 * is checked inline. */
static int core_spawn (lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION) check_callable(L, 1, "aio.spawn");
  luaio__spawn(L, lua_gettop(L) - 1, "aio.spawn");
  return 1;
}

/* aio.spawn_named(name, fn, ...) -> task, named (t.name) from the start:
 * aio.tasks, aio.dump and error reports show the name. */
static int core_spawn_named (lua_State *L) {
  luaio__checkcstring(L, 1, "aio.spawn_named", "name");
  check_callable(L, 2, "aio.spawn_named");
  lua_pushvalue(L, 1);
  lua_remove(L, 1);                                /* fn args name */
  lua_insert(L, 1);                                /* name fn args */
  luaio__spawn(L, lua_gettop(L) - 2, "aio.spawn_named");  /* name task */
  lua_insert(L, 1);                                /* task name */
  lua_setfield(L, 1, "name");
  return 1;
}

/* aio.dump([file]): every live task with its state and stack, written
 * with file:write (default: to stderr). */
static int core_dump (lua_State *L) {
  size_t len;
  const char *s;
  int has_file = !lua_isnoneornil(L, 1);
  lua_settop(L, 1);
  luaio__push_dump(L);                             /* file text */
  if (!has_file) {
    s = lua_tolstring(L, -1, &len);
    fwrite(s, 1, len, stderr);
    fflush(stderr);
    return 0;
  }
  if (!lua_istable(L, 1) && !lua_isuserdata(L, 1))
    return luaio__typeerror(L, 1, "aio.dump", "file (with a write method)");
  lua_getfield(L, 1, "write");                     /* file text write */
  if (!lua_isfunction(L, -1))
    return luaio__typeerror(L, 1, "aio.dump", "file (with a write method)");
  lua_insert(L, 1);                                /* write file text */
  lua_call(L, 2, 0);
  return 0;
}

/* ---- aio.sleep ------------------------------------------------------ */

/* 104 bytes, one per sleeping task: the host comes from the task, not a
 * field, because with 100,000 sleepers every word counts. */
typedef struct sleep_op {
  luaio_deadline d;
  luaio_waiter w;
} sleep_op;

static void sleep_due_cb (luaio_deadline *d) {
  sleep_op *op = LUAIO_CONTAINER(d, sleep_op, d);
  luaio_waiter_done(&op->w, 0);
}

/* Cancellation completes the wait at once: nothing is in flight. */
static void sleep_abort (luaio_waiter *w) {
  sleep_op *op = LUAIO_CONTAINER(w, sleep_op, w);
  luaio__deadline_stop(luaio__task_host(w->task), &op->d);
  luaio_waiter_done(w, UV_ECANCELED);
}

static int sleep_k (lua_State *L, int status, lua_KContext ctx) {
  sleep_op *op = (sleep_op *)ctx;
  luaio__op_free(luaio__task_host(luaio__current(L)), op, sizeof *op);
  if (status < 0) return luaio_raise_uv(L, status, "sleep", NULL, NULL);
  return 0;
}

static int turn_done_k (lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* aio.sleep(seconds): suspends the task; 0 yields one loop turn. */
static int core_sleep (lua_State *L) {
  lua_Integer ms = luaio_check_seconds(L, 1, "aio.sleep");
  luaio_host *h;
  sleep_op *op;
  if (ms < 0)
    return luaio__typeerror(L, 1, "aio.sleep", "number of seconds");
  luaio_check_wait(L, "aio.sleep");
  if (ms == 0) return luaio_yield_turn(L, turn_done_k, 0);
  h = luaio__host(L);
  op = luaio__op_alloc(h, sizeof *op);
  if (op == NULL) return luaL_error(L, "aio.sleep: out of memory");
  luaio_waiter_init(&op->w, sleep_abort);
  if (!luaio__deadline_start(h, &op->d, (uint64_t)ms, sleep_due_cb)) {
    luaio__op_free(h, op, sizeof *op);
    return luaL_error(L, "aio.sleep: out of memory");
  }
  return luaio_wait(L, &op->w, sleep_k, (lua_KContext)op);
}

/* aio.now() -> monotonic seconds (nanosecond clock). */
static int core_now (lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* aio.current() -> the running task, or nil outside tasks. */
static int core_current (lua_State *L) {
  luaio_task *t = luaio__current(L);
  if (t == NULL) return 0;
  luaio__push_task(L, t);
  return 1;
}

/* aio.tasks() -> list of live (unfinished) tasks, oldest first. */
static int core_tasks (lua_State *L) {
  luaio__push_live_tasks(L, luaio__host(L));
  return 1;
}

/* aio.run(fn, ...) -> fn's results: the entry point outside the luaio
 * program. Runs the loop until fn's task finishes, then cancels the
 * tasks it left behind. */
static int core_run (lua_State *L) {
  luaio__checktype(L, 1, "aio.run", LUA_TFUNCTION);
  return luaio__run_task(L, lua_gettop(L) - 1, "aio.run");
}

static int is_kind (lua_State *L, const char *kind) {
  lua_pushboolean(L, luaio__is_error(L, 1, kind));
  return 1;
}

/* aio.is_cancelled(e), aio.is_timeout(e), aio.is_error(e [, kind]) */
static int core_is_cancelled (lua_State *L) { return is_kind(L, "cancelled"); }
static int core_is_timeout (lua_State *L) { return is_kind(L, "timeout"); }
static int core_is_error (lua_State *L) {
  return is_kind(L, luaio__optstring(L, 2, "aio.is_error", NULL, NULL));
}

/* aio.error(kind, message [, fields]) -> a new luaio.Error. */
static int core_error (lua_State *L) {
  const char *kind = luaio__checkstring(L, 1, "aio.error", NULL);
  const char *msg = luaio__checkstring(L, 2, "aio.error", NULL);
  luaio_push_error(L, kind, NULL, msg);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}

static const luaL_Reg core_funcs[] = {
  {"spawn", core_spawn}, {"spawn_named", core_spawn_named},
  {"dump", core_dump}, {"debug", luaio__debug_lua},
  {"sleep", core_sleep}, {"now", core_now},
  {"current", core_current}, {"tasks", core_tasks}, {"run", core_run},
  {"is_cancelled", core_is_cancelled}, {"is_timeout", core_is_timeout},
  {"is_error", core_is_error}, {"error", core_error}, {NULL, NULL}
};

int luaopen_luaio (lua_State *L) {
  luaio__host(L);
  luaL_newlib(L, core_funcs);
  luaio__flow_register(L);          /* gather, wait, timeouts... */
  luaio__sync_register(L);          /* queues, semaphores, locks... */
  luaio__testing_register(L);       /* aio._test: `luaio test` internals */
  luaio__signal_register(L);        /* aio.signal */
  luaio__thread_register(L);        /* aio.to_thread, aio.worker_pool */
  lua_pushliteral(L, LUAIO_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
