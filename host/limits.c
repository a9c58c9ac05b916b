/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * limits.c: the caps of luaio_config (max_time_ms, max_tasks, and
 * mem_limit with hard_limits). Hitting one ends the script: every live
 * task is killed (cancel.c's luaio__kill, which pcall cannot catch) with
 * an error of kind "cap" naming the cap, and luaio_limit_hit tells the
 * embedder (the CLI exits with LUAIO_EXIT_LIMIT).
 */
#include "private.h"

/* Push the error of cap which. [-0, +1] */
static void push_limit_error (lua_State *L, luaio_host *h,
                              const char *which) {
  if (strcmp(which, "max-memory") == 0)
    lua_pushfstring(L, "limit reached: the script used more than %I bytes "
                    "of memory (--max-memory)", (lua_Integer)h->cfg.mem_limit);
  else if (strcmp(which, "max-time") == 0)
    lua_pushfstring(L, "limit reached: the script ran for more than %f s "
                    "(--max-time)", h->cfg.max_time_ms / 1000.0);
  else
    lua_pushfstring(L, "limit reached: more than %d live tasks "
                    "(--max-tasks)", h->cfg.max_tasks);
  luaio_push_error(L, "cap", NULL, lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushstring(L, which);
  lua_setfield(L, -2, "cap");
}

/* Kill every live task with the limit error; a waiting one is woken to
 * die. The Lua memory this takes is not limited. */
static void kill_all (lua_State *L, luaio_host *h, const char *which) {
  int i, limited = h->limited;
  if (h->limit == NULL) h->limit = which;
  h->limited = 0;
  luaL_checkstack(L, 4, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  for (i = 1; i <= h->ntasks; i++) {
    luaio_task *t;
    lua_rawgeti(L, -1, i);
    t = (luaio_task *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (t == NULL || t->state == T_DONE) continue;
    push_limit_error(L, h, which);
    lua_pushvalue(L, -1);
    luaio__kill(L, t);                  /* pops one */
    /* the error too for a task not started yet, which never runs */
    luaio__cancel(t, LUAIO_CANCEL_EXIT + 1, lua_gettop(L), L);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  h->limited = limited;
}

static void limit_hook (lua_State *L, lua_Debug *ar);

/* In a plain coroutine (no task of its own), the error is raised at
 * every instruction too (limit_hook), so a pcall inside it cannot keep
 * it running: it dies, and the task that resumed it is killed. */
int luaio__limit_raise (lua_State *L, const char *which) {
  luaio_host *h = luaio__host(L);
  luaio_task *t = luaio__current(L);
  kill_all(L, h, which);
  if (t && (t->flags & TF_KILLED)) return luaio__raise_killed(L, t);
  lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
  push_limit_error(L, h, which);
  return lua_error(L);
}

static void limit_due_cb (uv_timer_t *timer);

/* From C's luaio_spawn (the main thread), nothing would catch an error:
 * after a cap the new task is killed from the loop before it starts. */
void luaio__limit_spawn (lua_State *L, luaio_host *h) {
  int is_main = lua_pushthread(L);
  lua_pop(L, 1);
  if (!is_main) luaio__limit_raise(L, h->limit ? h->limit : "max-tasks");
  else if (h->limit && h->limit_timer)
    uv_timer_start(h->limit_timer, limit_due_cb, 0, 0);
}

/* A thread's hook once a cap is hit: the allocator's, on the task that
 * ran (it cannot raise itself), and a plain coroutine's. */
static void limit_hook (lua_State *L, lua_Debug *ar) {
  luaio_host *h = luaio_host_of(L);
  (void)ar;
  if (h && h->limit) luaio__limit_raise(L, h->limit);
}

static void limit_due_cb (uv_timer_t *timer) {
  luaio_host *h = (luaio_host *)timer->data;
  if (!h->closed && !h->closing)
    kill_all(h->L, h, h->limit ? h->limit : "max-time");
}

void luaio__limit_hit (luaio_host *h, const char *which) {
  if (h->limit) return;
  h->limit = which;
  if (h->current && h->current->co)
    lua_sethook(h->current->co, limit_hook, LUA_MASKCOUNT, 1);
  if (h->limit_timer)          /* the waiting tasks, from the loop */
    uv_timer_start(h->limit_timer, limit_due_cb, 0, 0);
}

void luaio__limit_check (lua_State *L, luaio_host *h) {
  if (h->limit) luaio__limit_raise(L, h->limit);
  if (h->time_end && uv_hrtime() > h->time_end)
    luaio__limit_raise(L, "max-time");
}

static void timer_free_cb (uv_handle_t *handle) { free(handle); }

static void limits_close (void *ud) {
  luaio_host *h = (luaio_host *)ud;
  uv_close((uv_handle_t *)h->limit_timer, timer_free_cb);
  h->limit_timer = NULL;
}

/* The timer kills the tasks at max_time when they all wait (a busy one
 * meets the guard hook's check); it keeps no loop alive. It also runs
 * the kill the allocator cannot do itself. */
void luaio__limits_start (luaio_host *h) {
  if (!h->cfg.max_time_ms && !h->cfg.max_tasks &&
      !(h->cfg.hard_limits && h->cfg.mem_limit))
    return;
  if ((h->limit_timer = malloc(sizeof *h->limit_timer)) == NULL) return;
  uv_timer_init(h->loop, h->limit_timer);
  h->limit_timer->data = h;
  uv_unref((uv_handle_t *)h->limit_timer);
  luaio_on_close(h, limits_close, h);
  if (h->cfg.max_time_ms) {
    h->time_end = uv_hrtime() + (uint64_t)h->cfg.max_time_ms * 1000000u;
    uv_timer_start(h->limit_timer, limit_due_cb, h->cfg.max_time_ms, 0);
  }
}

const char *luaio_limit_hit (luaio_host *h) { return h->limit; }
