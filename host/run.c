/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * run.c: running the loop (luaio_run, luaio_run_until, aio.run's
 * luaio__run_task) and the C API of tasks (luaio_spawn, luaio_task_*).
 */
#include "private.h"

/* ---- running the loop ----------------------------------------------- */

int luaio_run_until (luaio_host *h, luaio_task *t) {
  if (h->running)
    return luaL_error(h->L, "cannot run the loop from inside a task");
  while (t->state != T_DONE && h->exit_code < 0) {
    int alive = uv_run(h->loop, UV_RUN_ONCE);
    if (!alive && t->state != T_DONE && !h->ready.head && !h->next_turn.head)
      return LUAIO_DEADLOCK;
  }
  return t->state == T_DONE ? t->outcome : LUAIO_ERROR;
}

int luaio_run (luaio_host *h) {
  while (h->exit_code < 0 && uv_run(h->loop, UV_RUN_ONCE)) {}
  return h->ntasks > 0 ? LUAIO_DEADLOCK : LUAIO_OK;
}

/* The task is pinned while the loop runs, so its userdata outlives the
 * live table: its results are read from the registry afterwards. */
int luaio__run_task (lua_State *L, int nargs, const char *fname) {
  luaio_host *h = luaio__host(L);
  luaio_task *t;
  int status;
  if (h->running || luaio__current(L))
    return luaL_error(L, "%s: the loop is already running (use "
                      "aio.spawn or call the function directly)", fname);
  t = luaio__spawn(L, nargs, fname);               /* task */
  t->pinned = 1;
  status = luaio_run_until(h, t);
  (void)luaio_stop(h);
  t->pinned = 0;
  if (status == LUAIO_DEADLOCK) {
    luaio_task_cancel(t);
    (void)luaio_stop(h);
    return luaL_error(L, "%s: deadlock: the task waits but nothing "
                      "is left that could wake it", fname);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
  return luaio__push_results(L, -1, t, 1);
}

/* ---- the C task API ------------------------------------------------- */

luaio_task *luaio_spawn (lua_State *L, int nargs) {
  luaio_task *t = luaio__spawn(L, nargs, "luaio_spawn");
  t->pinned = 1;
  lua_pop(L, 1);
  return t;
}

void luaio_task_on_done (luaio_task *t, luaio_done_fn fn, void *ud) {
  luaio_task_ext *x = luaio__task_ext(t->host->L, t);
  if (x) { x->on_done = fn; x->on_done_ud = ud; }
}

int luaio_task_done (luaio_task *t) { return t->state == T_DONE; }

int luaio_task_status (luaio_task *t) {
  return t->state == T_DONE ? t->outcome : -1;
}

int luaio_task_push_results (lua_State *L, luaio_task *t) {
  int n;
  luaio__push_task(L, t);
  n = luaio__push_results(L, -1, t, 0);
  lua_remove(L, n < 0 ? -2 : -(n + 1));
  return n;
}

/* The text is kept in the task's extra table, so it lives as long as
 * the task (until luaio_task_release for a C-held task). */
const char *luaio_task_error (luaio_task *t) {
  lua_State *L = t->host->L;
  const char *text;
  if (t->state != T_DONE || t->outcome == LUAIO_OK) return NULL;
  luaio__push_task(L, t);                          /* ud */
  if (luaio__task_getextra(L, -1, "errtext") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_getiuservalue(L, -1, LUAIO_TASK_RESULT);           /* ud e */
    t->observed = 1;
    luaio__tostring(L, -1);                         /* ud e msg */
    if (luaio__is_error(L, -2, NULL)) {
      lua_getfield(L, -2, "traceback");
      if (lua_isstring(L, -1)) {
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
      }
      else lua_pop(L, 1);
    }
    lua_remove(L, -2);                             /* ud text */
    lua_pushvalue(L, -1);
    luaio__task_setextra(L, -3, "errtext");
  }
  text = lua_tostring(L, -1);                      /* anchored in extra */
  lua_pop(L, 2);
  return text;
}

void luaio_task_cancel (luaio_task *t) {
  luaio__cancel(t, LUAIO_CANCEL_TASK, 0, t->host->L);
}

void luaio_task_release (luaio_task *t) {
  lua_State *L = t->host->L;
  t->observed = 1;
  t->pinned = 0;
  if (t->ext) free(t->ext->wait_detail);
  free(t->ext);
  t->ext = NULL;
  if (!t->in_live && t->ref != LUA_NOREF) {     /* else finish drops it */
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
}

/* Push the strings argv[0..argc-1]. [-0, +argc] */
static void push_args (lua_State *L, int argc, char **argv) {
  int i;
  luaL_checkstack(L, argc, "too many arguments");
  for (i = 0; i < argc; i++) lua_pushstring(L, argv[i]);
}

luaio_task *luaio_spawn_file (luaio_host *h, const char *path, int argc,
                              char **argv) {
  lua_State *L = h->L;
  /* a sandboxed script is text: a binary chunk can crash the VM */
  if (luaL_loadfilex(L, path, h->perm ? "t" : NULL) != LUA_OK) return NULL;
  push_args(L, argc, argv);
  return luaio_spawn(L, argc);
}

luaio_task *luaio_spawn_string (luaio_host *h, const char *code,
                                const char *chunkname) {
  lua_State *L = h->L;
  if (luaL_loadbuffer(L, code, strlen(code), chunkname ? chunkname : code)
      != LUA_OK)
    return NULL;
  return luaio_spawn(L, 0);
}
