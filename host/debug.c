/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * debug.c: what the tasks are doing, for people. A waiting task is
 * described by the name its binding gave luaio_check_wait (a pointer
 * stored on every wait: free) and, for waits on I/O, a detail string the
 * binding sets (a path, a URL) and the wait drops when it ends. From
 * those: t:info(), the dump of every task with its stack (aio.dump, and
 * SIGQUIT, like a Go goroutine dump) and the "in <op>" of timeouts.
 */
#include "private.h"
#include <stdarg.h>
#include <signal.h>

#define DETAIL_MAX 200           /* a long URL is cut: it is for reading */

void luaio__wait_detail (lua_State *L, const char *fmt, ...) {
  luaio_task *t = luaio__current(L);
  va_list ap;
  char *s;
  int n;
  if (t == NULL) return;
  if (luaio__task_ext(L, t) == NULL) return;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > DETAIL_MAX) n = DETAIL_MAX;
  if ((s = malloc((size_t)n + 1)) == NULL) return;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  free(t->ext->wait_detail);
  t->ext->wait_detail = s;
  t->flags |= TF_DETAIL;
}

void luaio__drop_wait_detail (luaio_task *t) {
  t->flags &= ~TF_DETAIL;
  if (t->ext == NULL) return;
  free(t->ext->wait_detail);
  t->ext->wait_detail = NULL;
}

/* Push what waiting t waits on: "fs.read data/x.txt", "aio.sleep"; nil
 * when it is not waiting (or waits without a name). [-0, +1] */
static void push_wait_what (lua_State *L, luaio_task *t) {
  const char *d = (t->flags & TF_DETAIL) ? t->ext->wait_detail : NULL;
  if (t->state != T_WAITING || t->w.wait_op == NULL) lua_pushnil(L);
  else if (d) lua_pushfstring(L, "%s %s", t->w.wait_op, d);
  else lua_pushstring(L, t->w.wait_op);
}

void luaio__push_task_state (lua_State *L, luaio_task *t) {
  switch (t->state) {
  case T_RUNNING: lua_pushliteral(L, "running"); break;
  case T_NEW: case T_READY: lua_pushliteral(L, "ready"); break;
  case T_WAITING: lua_pushliteral(L, "waiting"); break;
  default: lua_pushliteral(L, "done");
  }
}

int luaio__wait_describe (luaio_task *t, char *buf, size_t size) {
  const char *d = (t->flags & TF_DETAIL) ? t->ext->wait_detail : NULL;
  if (t->state != T_WAITING || t->w.wait_op == NULL) return 0;
  snprintf(buf, size, "%s%s%s", t->w.wait_op, d ? " " : "", d ? d : "");
  return 1;
}

static double task_age (luaio_task *t) {
  luaio_host *h = t->host;
  return (double)(unsigned)(uv_now(h->loop) - h->epoch - t->born) / 1000.0;
}

/* Push t's name (its userdata at idx). [-0, +1] */
static void push_name (lua_State *L, int idx, luaio_task *t) {
  if (luaio__task_getextra(L, idx, "name") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "task-%d", (int)t->id);
  }
}

/* t:info() -> {name=, state=, waiting_on=, age=} */
int luaio__task_info (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  lua_createtable(L, 0, 4);
  push_name(L, 1, t);
  lua_setfield(L, -2, "name");
  luaio__push_task_state(L, t);
  lua_setfield(L, -2, "state");
  push_wait_what(L, t);
  lua_setfield(L, -2, "waiting_on");
  lua_pushnumber(L, task_age(t));
  lua_setfield(L, -2, "age");
  return 1;
}

/* ---- the dump ---------------------------------------------------------- */

/* Push the dump's section for t (its userdata on top): a header line,
 * then its stack. L is the caller's thread: the running task's stack
 * starts above the call of aio.dump. [-0, +1] */
static void push_section (lua_State *L, luaio_task *t) {
  lua_Debug ar;
  char age[32];
  int top = lua_gettop(L);
  snprintf(age, sizeof age, "%.3f", task_age(t));
  push_name(L, top, t);
  luaio__push_task_state(L, t);
  push_wait_what(L, t);
  lua_pushfstring(L, "task '%s' (#%d): %s%s%s, age %s s\n",
                  lua_tostring(L, top + 1), (int)t->id,
                  lua_tostring(L, top + 2),
                  lua_isnil(L, top + 3) ? "" : " on ",
                  lua_isnil(L, top + 3) ? "" : lua_tostring(L, top + 3),
                  age);
  if (t->state == T_NEW || !lua_getstack(t->co, 0, &ar))
    lua_pushliteral(L, "not started");
  else luaL_traceback(L, t->co, NULL, t->co == L ? 1 : 0);
  lua_pushliteral(L, "\n\n");
  lua_concat(L, 3);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* Push the text of the dump: every live task, oldest first. [-0, +1] */
void luaio__push_dump (lua_State *L) {
  luaio_host *h = luaio__host(L);
  int i, n;
  luaL_checkstack(L, 10, NULL);
  luaio__push_live_tasks(L, h);                    /* list */
  n = (int)lua_rawlen(L, -1);
  lua_pushfstring(L, "luaio: %d task%s, oldest first\n", n,
                  n == 1 ? "" : "s");              /* list text */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);                         /* list text ud */
    push_section(L, (luaio_task *)lua_touserdata(L, -1));
    lua_remove(L, -2);                             /* list text sec */
    lua_concat(L, 2);
  }
  lua_remove(L, -2);
}

/* ---- SIGQUIT ----------------------------------------------------------- */

static int dump_to_stderr (lua_State *L) {
  size_t len;
  const char *s;
  luaio__push_dump(L);
  s = lua_tolstring(L, -1, &len);
  fwrite(s, 1, len, stderr);
  fflush(stderr);
  return 0;
}

/* Runs from the loop, between tasks: no task is resumed now, so every
 * stack can be read; the program goes on. */
static void dump_signal_cb (uv_signal_t *s, int signum) {
  luaio_host *h = LUAIO_CONTAINER(s, luaio_host, dump_signal);
  lua_State *L = h->L;
  (void)signum;
  if (h->closed || !lua_checkstack(L, 2)) return;
  lua_pushcfunction(L, dump_to_stderr);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "luaio: dump failed: %s\n",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
  }
}

/* Unref'd: it never keeps the loop alive. Initialised with the
 * scheduler's handles (closed with them, if its init succeeded), started
 * unless the embedder said no. */
void luaio__dump_signal_init (luaio_host *h) {
  if (uv_signal_init(h->loop, &h->dump_signal) != 0) {
    h->dump_signal.loop = NULL;     /* no dump; host_release skips it */
    return;
  }
  h->dump_signal.data = h;
  uv_unref((uv_handle_t *)&h->dump_signal);
  if (!h->cfg.no_dump_signal)
    uv_signal_start(&h->dump_signal, dump_signal_cb, SIGQUIT);
}
