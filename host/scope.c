/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * scope.c: timeout scopes (aio.timeout). A scope runs code in the
 * calling task; when its deadline passes it cancels the task at its own
 * strength. Outer scopes are stronger than inner ones, and a task cancel
 * stronger than all: so an outer expiry passes through inner scopes
 * untouched, and each scope turns only its own level into a timeout.
 */
#include "private.h"

static void scope_due_cb (luaio_deadline *d) {
  luaio_scope *sc = LUAIO_CONTAINER(d, luaio_scope, d);
  sc->armed = 0;
  if (!luaio__wait_describe(sc->task, sc->in, sizeof sc->in)) sc->in[0] = 0;
  luaio__cancel(sc->task, sc->level, 0, sc->task->host->L);
}

int luaio__scope_enter (luaio_scope *sc, luaio_task *t, uint64_t ms) {
  sc->task = t;
  sc->in[0] = 0;
  sc->level = LUAIO_CANCEL_TASK - 1 - t->depth;
  sc->armed = 0;
  if (ms != LUAIO_SCOPE_NO_DEADLINE) {
    sc->armed = luaio__deadline_start(t->host, &sc->d, ms, scope_due_cb);
    if (!sc->armed) return 0;
  }
  t->depth++;
  return 1;
}

void luaio__scope_disarm (luaio_scope *sc) {
  if (sc->armed) luaio__deadline_stop(sc->task->host, &sc->d);
  sc->armed = 0;
}

void luaio__scope_cancel (luaio_scope *sc) {
  luaio__scope_disarm(sc);
  luaio__cancel(sc->task, sc->level, 0, sc->task->host->L);
}

int luaio__scope_leave (lua_State *L, luaio_scope *sc) {
  luaio__scope_disarm(sc);
  sc->task->depth--;
  return luaio__uncancel(L, sc->task, sc->level);
}
