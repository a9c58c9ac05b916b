/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * task.c: the luaio.Task userdata seen by scripts.
 */
#include "private.h"

static const char *const status_names[] = {"ok", "failed", "cancelled"};

/* The rarely used fields of tasks (name, cancel, errtext) live in a
 * weak-keyed table of the registry, task -> table, rather than in a
 * second uservalue: that slot would cost 16 bytes on every task. */
static int push_extra (lua_State *L, int idx) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &luaio__extra_key);
  lua_pushvalue(L, idx);
  return lua_rawget(L, -2);                        /* extras extra */
}

int luaio__task_getextra (lua_State *L, int idx, const char *field) {
  idx = lua_absindex(L, idx);
  if (push_extra(L, idx) != LUA_TTABLE) {
    lua_pop(L, 2);
    lua_pushnil(L);
    return LUA_TNIL;
  }
  lua_getfield(L, -1, field);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return lua_type(L, -1);
}

void luaio__task_setextra (lua_State *L, int idx, const char *field) {
  idx = lua_absindex(L, idx);
  if (push_extra(L, idx) != LUA_TTABLE) {          /* v extras nil */
    lua_pop(L, 1);
    if (lua_isnil(L, -2)) { lua_pop(L, 2); return; }
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);                             /* v extras extra */
  }
  lua_rotate(L, -3, -1);                           /* extras extra v */
  lua_setfield(L, -2, field);
  lua_pop(L, 2);
}

static int await_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_task *t = (luaio_task *)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "await", NULL, NULL);
  lua_settop(L, 1);
  return luaio__push_results(L, 1, t, 1);
}

/* task:await() -> the task's results, or raises its error. */
static int task_await (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  if (t->state == T_DONE) {
    lua_settop(L, 1);
    return luaio__push_results(L, 1, t, 1);
  }
  luaio_check_wait(L, "task:await");
  if (luaio__current(L) == t)
    return luaL_error(L, "task:await: a task cannot await itself");
  return luaio_waitlist_wait(L, &t->awaiters, await_k, (lua_KContext)t);
}

/* task:cancel([message]) -> true if the task was still running. */
static int task_cancel (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  if (t->state == T_DONE) { lua_pushboolean(L, 0); return 1; }
  if (msg) {
    luaio_push_error(L, "cancelled", NULL, msg);
    luaio__cancel(t, LUAIO_CANCEL_TASK, lua_gettop(L), L);
  }
  else luaio__cancel(t, LUAIO_CANCEL_TASK, 0, L);
  lua_pushboolean(L, 1);
  return 1;
}

static int task_done (lua_State *L) {
  lua_pushboolean(L, luaio__check_task(L, 1)->state == T_DONE);
  return 1;
}

static int task_cancelled (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  lua_pushboolean(L, t->state == T_DONE && t->outcome == LUAIO_CANCELLED);
  return 1;
}

/* task:result() -> results of a finished task (raises its error); an
 * error if it is still running. */
static int task_result (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  if (t->state != T_DONE)
    return luaL_error(L, "task:result: task '%s' is not done",
                      luaL_tolstring(L, 1, NULL));
  lua_settop(L, 1);
  return luaio__push_results(L, 1, t, 1);
}

/* task:error() -> the error of a failed task, or nil. */
static int task_error (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  if (t->state != T_DONE || t->outcome == LUAIO_OK) return 0;
  luaio__push_results(L, 1, t, 0);
  return 1;
}

/* task:status() -> "pending", "running", "ok", "failed" or "cancelled". */
static int task_status (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  if (t->state == T_DONE) lua_pushstring(L, status_names[t->outcome]);
  else lua_pushstring(L, t->state == T_RUNNING ? "running" : "pending");
  return 1;
}

/* __index: methods first (an upvalue table: the hot path of t:await()),
 * then the `name` field. */
static int task_index (lua_State *L) {
  const char *key;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  key = lua_tostring(L, 2);
  if (key && strcmp(key, "name") == 0) {
    luaio_task *t = luaio__check_task(L, 1);
    if (luaio__task_getextra(L, 1, "name") == LUA_TNIL)
      lua_pushfstring(L, "task-%d", (int)t->id);
    return 1;
  }
  return 0;
}

static int task_newindex (lua_State *L) {
  luaio__check_task(L, 1);
  if (strcmp(luaL_checkstring(L, 2), "name") != 0)
    return luaL_error(L, "task has no settable field '%s'",
                      lua_tostring(L, 2));
  luaL_argexpected(L, lua_type(L, 3) == LUA_TSTRING, 3, "string");
  lua_settop(L, 3);
  luaio__task_setextra(L, 1, "name");
  return 0;
}

static int task_tostring (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  lua_getfield(L, 1, "name");
  task_status(L);
  lua_pushfstring(L, "luaio.Task '%s' (%s): %p", lua_tostring(L, -2),
                  lua_tostring(L, -1), (void *)t);
  return 1;
}

/* The watch of a task: a failed task collected while nobody saw its
 * error reports it now, and C extras are freed. The watch's uservalue
 * is the task, so the task outlives the finalizer. */
static int watch_gc (lua_State *L) {
  luaio_task *t;
  lua_getiuservalue(L, 1, 1);                      /* watch task */
  t = (luaio_task *)lua_touserdata(L, 2);
  if (t == NULL) return 0;
  if (t->state == T_DONE && t->outcome != LUAIO_OK && !t->observed &&
      t->host && !t->host->closed) {
    t->observed = 1;
    lua_getiuservalue(L, 2, LUAIO_TASK_RESULT);
    luaio__report(t->host, "error in a task nobody awaited", L, -1);
    lua_pop(L, 1);
  }
  if (t->ext) free(t->ext->wait_detail);
  free(t->ext);
  t->ext = NULL;
  return 0;
}

static const luaL_Reg task_methods[] = {
  {"await", task_await}, {"cancel", task_cancel}, {"done", task_done},
  {"cancelled", task_cancelled}, {"result", task_result},
  {"error", task_error}, {"status", task_status},
  {"info", luaio__task_info}, {NULL, NULL}
};

static const luaL_Reg task_meta[] = {
  {"__newindex", task_newindex},
  {"__tostring", task_tostring}, {NULL, NULL}
};

/* Tasks have no finalizer: one on every task cost ~450 instructions a
 * task (W1, callgrind: the collector keeps such objects on a list of
 * their own, revives each to call it, frees it a cycle later). A task
 * that needs one (it failed and nobody has seen the error yet, or C
 * extras are attached) gets a watch: luaio__task_watch. */
void luaio__task_metatable (lua_State *L) {
  if (luaL_newmetatable(L, "luaio.Task")) {
    luaL_setfuncs(L, task_meta, 0);
    luaL_newlib(L, task_methods);
    lua_pushcclosure(L, task_index, 1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, watch_gc);
  lua_setfield(L, -2, "__gc");
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)watch_gc);
}

/* The watch is a new object, not a metatable with __gc given to the task:
 * Lua finds an object it must finalize by walking its list of objects
 * from the newest, so giving one to a task made long ago walked past
 * everything made since (W5a: 10,000 tasks whose first fs call set a
 * wait detail spent 60% of their time there, quadratic in the tasks).
 * The watch is kept in the task's extras (weak-keyed): it lives as long
 * as the task. Task at 1. */
static int watch_new (lua_State *L) {
  lua_newuserdatauv(L, 0, 1);                      /* task watch */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)watch_gc);
  lua_setmetatable(L, -2);
  luaio__task_setextra(L, 1, "watch");
  return 0;
}

/* Protected: its callers (a binding setting a wait detail, a task
 * finishing) must not raise. Returns 0 when out of memory. */
int luaio__task_watch (lua_State *L, int idx) {
  luaio_task *t = (luaio_task *)lua_touserdata(L, idx);
  if (t->flags & TF_WATCHED) return 1;
  if (!lua_checkstack(L, 3)) return 0;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, watch_new);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    return 0;
  }
  t->flags |= TF_WATCHED;
  return 1;
}

luaio_task_ext *luaio__task_ext (lua_State *L, luaio_task *t) {
  if (t->ext) return t->ext;
  if (!lua_checkstack(L, 2)) return NULL;
  luaio__push_task(L, t);
  if (lua_touserdata(L, -1) == (void *)t && luaio__task_watch(L, -1))
    t->ext = calloc(1, sizeof *t->ext);
  lua_pop(L, 1);
  return t->ext;
}

luaio_task *luaio__test_task (lua_State *L, int idx) {
  return (luaio_task *)luaL_testudata(L, idx, "luaio.Task");
}

/* ---- what bindings ask of a task (host.h) ------------------------------ */

luaio_host *luaio__task_host (luaio_task *t) { return t->host; }
luaio_waitlist *luaio__task_awaiters (luaio_task *t) { return &t->awaiters; }
int luaio__cancel_pending (luaio_task *t) { return t->cancel_level > 0; }
void luaio__task_shield (luaio_task *t) { t->shielded++; }
int luaio__task_unshield (luaio_task *t) { return --t->shielded; }

void luaio__task_report_error (luaio_task *t, const char *what) {
  lua_State *L = t->host->L;
  if (t->outcome != LUAIO_ERROR || t->observed) return;
  t->observed = 1;
  luaio__push_task(L, t);
  lua_getiuservalue(L, -1, LUAIO_TASK_RESULT);
  luaio__report(t->host, what, L, -1);
  lua_pop(L, 2);
}
