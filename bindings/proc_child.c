/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * proc_child.c: the life of a child process, apart from Lua: its exit,
 * the TERM-then-KILL escalation, and reaping every child when the host
 * closes, so luaio never leaves a zombie or an orphan it owns.
 *
 * A child is a malloc'ed luaio_child holding the uv_process_t and a
 * uv_timer_t (the KILL after the grace). Both handles close when the
 * child has exited (libuv has reaped it then); the struct is freed when
 * they are closed and no Process object owns it any more.
 */
#include "../host/osproc.h"
#include <signal.h>
#include <sys/wait.h>

/* One per host: the children still running, killed and reaped by the
 * close hook. */
typedef struct child_list {
  luaio_child *head;
} child_list;

static const char list_key = 0;       /* registry: light userdata list */

static void unlink_child (luaio_child *c) {
  if (c->list == NULL) return;
  if (c->prev) c->prev->next = c->next;
  else ((child_list *)c->list)->head = c->next;
  if (c->next) c->next->prev = c->prev;
  c->list = NULL;
  c->prev = c->next = NULL;
}

static void maybe_free (luaio_child *c) {
  if (c->handles == 0 && !c->owned) free(c);
}

static void handle_closed_cb (uv_handle_t *h) {
  luaio_child *c = (luaio_child *)h->data;
  c->handles--;
  maybe_free(c);
}

/* Close both handles: the child has exited, or the host closes. */
static void close_handles (luaio_child *c) {
  if (c->closing) return;
  c->closing = 1;
  unlink_child(c);
  uv_close((uv_handle_t *)&c->proc, handle_closed_cb);
  uv_close((uv_handle_t *)&c->timer, handle_closed_cb);
}

static void exit_cb (uv_process_t *p, int64_t status, int term_signal) {
  luaio_child *c = (luaio_child *)p->data;
  c->exited = 1;
  c->code = status;
  c->term_signal = term_signal;
  uv_timer_stop(&c->timer);
  luaio_waitlist_wake_all(&c->waiters, 0);
  close_handles(c);
}

static void kill_timer_cb (uv_timer_t *t) {
  luaio_child *c = (luaio_child *)t->data;
  if (!c->exited) uv_process_kill(&c->proc, SIGKILL);
}

void luaio__child_terminate (luaio_child *c) {
  if (c->exited || c->terminating) return;
  c->terminating = 1;
  uv_process_kill(&c->proc, SIGTERM);
  uv_timer_start(&c->timer, kill_timer_cb, c->kill_grace_ms, 0);
}

/* Host close: a child still running is killed (unless detached) and
 * reaped now; waitpid after SIGKILL returns at once. */
static void close_hook (void *ud) {
  child_list *l = (child_list *)ud;
  luaio_child *c;
  while ((c = l->head) != NULL) {
    if (!c->detached && !c->exited) {
      kill(c->proc.pid, SIGKILL);
      waitpid(c->proc.pid, NULL, 0);
    }
    c->exited = 1;
    close_handles(c);             /* unlinks c */
  }
  free(l);
}

static child_list *host_list (lua_State *L, luaio_host *h) {
  child_list *l;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &list_key);
  l = (child_list *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (l) return l;
  l = calloc(1, sizeof *l);
  if (l == NULL) luaL_error(L, "proc.spawn: out of memory");
  luaio_on_close(h, close_hook, l);
  lua_pushlightuserdata(L, l);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &list_key);
  return l;
}

luaio_child *luaio__child_new (lua_State *L) {
  luaio_child *c = calloc(1, sizeof *c);
  if (c == NULL) luaL_error(L, "proc.spawn: out of memory");
  c->owned = 1;
  c->closing = 1;                 /* no handles until it has started */
  c->kill_grace_ms = 2000;
  return c;
}

int luaio__child_spawn (lua_State *L, luaio_child *c,
                        uv_process_options_t *o) {
  luaio_host *h = luaio__host(L);
  child_list *l = host_list(L, h);
  int err;
  o->exit_cb = exit_cb;
  err = uv_spawn(luaio_loop(h), &c->proc, o);
  c->proc.data = c;
  if (err < 0) {                  /* libuv reaped a child that failed */
    c->handles = 1;
    uv_close((uv_handle_t *)&c->proc, handle_closed_cb);
    return err;
  }
  uv_timer_init(luaio_loop(h), &c->timer);
  c->timer.data = c;
  c->handles = 2;
  c->closing = 0;
  c->list = l;
  c->next = l->head;
  if (l->head) l->head->prev = c;
  l->head = c;
  if (c->detached) uv_unref((uv_handle_t *)&c->proc);
  return 0;
}

/* The Process object is gone: kill on close unless told not to; a child
 * left running no longer keeps the loop alive (the close hook reaps). */
void luaio__child_release (luaio_child *c) {
  c->owned = 0;
  if (!c->exited && !c->closing) {
    if (c->kill_on_close && !c->detached) luaio__child_terminate(c);
    else uv_unref((uv_handle_t *)&c->proc);
  }
  luaio_waitlist_wake_all(&c->waiters, UV_EBADF);
  maybe_free(c);
}
