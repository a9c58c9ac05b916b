/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * wait.c: the one suspend/resume mechanism.
 *
 * A binding starts an operation, then suspends its task in luaio_wait with
 * a waiter that the completion callback hands to luaio_waiter_done. The
 * task is resumed later by the scheduler, from the loop, and the binding's
 * continuation finishes the call on the task's stack. Cancellation aborts
 * the operation; if it cannot complete at once, the waiter is detached and
 * the late completion is dropped (the callback frees its op).
 */
#include "private.h"


void luaio_waiter_init (luaio_waiter *w, luaio_abort_fn abort) {
  memset(w, 0, sizeof *w);
  w->abort = abort;
}

void luaio_check_wait (lua_State *L, const char *fname) {
  luaio_task *t = task_of(L);
  if (t == NULL || t->co != L || t->host->current != t)
    luaL_error(L, "%s: not inside a luaio task (a plain coroutine, the "
               "main thread or a C callback cannot wait)", fname);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: cannot wait here: the caller cannot yield (inside "
               "require, a metamethod, or a table.sort/string.gsub "
               "callback)", fname);
  if (t->flags & TF_KILLED) luaio__raise_killed(L, t);
  if (luaio__cancel_due(t)) {
    luaio__push_pending_cancel(L, t);
    lua_error(L);
  }
  if (t->flags & TF_DETAIL) luaio__drop_wait_detail(t);
  t->w.wait_op = fname;             /* what t:info() says it waits on */
}

/* Continuation of every wait: drops stale and cancelled resumes, then
 * hands the completion status to the binding's continuation. */
static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_task *t = task_of(L);
  luaio_waiter *w = (luaio_waiter *)ctx;
  (void)status;
  if (t == NULL || t->host->current != t)
    return luaL_error(L, "a luaio task was resumed from outside the "
                      "scheduler");
  if (t->flags & TF_DETAIL) luaio__drop_wait_detail(t);
  if (t->waiter != w) {             /* detached by a cancellation */
    if (t->flags & TF_KILLED) return luaio__raise_killed(L, t);
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  t->waiter = NULL;
  w->task = NULL;
  w->state = W_IDLE;
  if (w->must_finish == 2) {
    /* Cancelled while an unstoppable op ran: it has finished now; let the
     * binding complete it (it may raise the cancellation itself), then
     * deliver the cancellation. A cancel that came after the op had
     * completed leaves its result to the task, like any wait's. */
    w->k(L, w->status, w->ctx);
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  return w->k(L, w->status, w->ctx);
}

int luaio_wait (lua_State *L, luaio_waiter *w, lua_KFunction k,
                lua_KContext ctx) {
  luaio_task *t = task_of(L);
  w->task = t;
  w->k = k;
  w->ctx = ctx;
  w->status = 0;
  w->state = W_PENDING;
  t->waiter = w;
  t->state = T_WAITING;
  if (luaio__torture_on) luaio__torture_suspend(t);
  return lua_yieldk(L, 0, (lua_KContext)w, wait_k);
}

/* The same suspension, named for what it allows: no luaio_check_wait
 * before it, so a pending cancellation does not stop the wait. Bindings
 * use it only to settle what they cancelled, then raise. */
int luaio__wait_settle (lua_State *L, luaio_waiter *w, lua_KFunction k,
                        lua_KContext ctx) {
  return luaio_wait(L, w, k, ctx);
}

int luaio_waiter_done (luaio_waiter *w, int status) {
  if (w->state != W_PENDING) return 0;
  w->status = status;
  w->state = W_DONE;
  if (w->notify) { w->notify(w, status); return 1; }
  luaio__ready(w->task);
  return 1;
}

/* Detach the waiter of a waiting task whose abort could not complete it:
 * the task will raise its cancellation; the late callback gets 0 from
 * luaio_waiter_done and frees its op. */
void luaio__detach (luaio_task *t) {
  luaio_waiter *w = t->waiter;
  w->state = W_DETACHED;
  w->task = NULL;
  t->waiter = NULL;
  luaio__ready(t);
}

/* ---- wait lists ---------------------------------------------------- */

void luaio_waitlist_push (luaio_waitlist *l, luaio_waiter *w) {
  w->list = l;
  w->next = NULL;
  w->prev = l->tail;
  if (l->tail) l->tail->next = w; else l->head = w;
  l->tail = w;
}

void luaio_waitlist_remove (luaio_waitlist *l, luaio_waiter *w) {
  if (w->list != l) return;
  if (w->prev) w->prev->next = w->next; else l->head = w->next;
  if (w->next) w->next->prev = w->prev; else l->tail = w->prev;
  w->prev = w->next = NULL;
  w->list = NULL;
}

luaio_waiter *luaio_waitlist_pop (luaio_waitlist *l) {
  luaio_waiter *w = l->head;
  if (w) luaio_waitlist_remove(l, w);
  return w;
}

static void waitlist_abort (luaio_waiter *w) {
  if (w->list) luaio_waitlist_remove(w->list, w);
  luaio_waiter_done(w, UV_ECANCELED);
}

int luaio_waitlist_wait (lua_State *L, luaio_waitlist *l, lua_KFunction k,
                         lua_KContext ctx) {
  luaio_waiter *w = lua_newuserdatauv(L, sizeof *w, 0);
  luaio_waiter_init(w, waitlist_abort);
  luaio_waitlist_push(l, w);
  return luaio_wait(L, w, k, ctx);
}

int luaio_waitlist_wake (luaio_waitlist *l, int status) {
  luaio_waiter *w;
  while ((w = luaio_waitlist_pop(l)) != NULL)
    if (luaio_waiter_done(w, status)) return 1;
  return 0;
}

int luaio_waitlist_wake_all (luaio_waitlist *l, int status) {
  int n = 0;
  while (luaio_waitlist_wake(l, status)) n++;
  return n;
}

void luaio__watch (luaio_waitlist *l, luaio_waiter *w,
                   void (*notify)(luaio_waiter *w, int status), void *data) {
  luaio_waiter_init(w, NULL);
  w->notify = notify;
  w->data = data;
  w->state = W_PENDING;
  luaio_waitlist_push(l, w);
}

void luaio__unwatch (luaio_waiter *w) {
  if (w->list) luaio_waitlist_remove(w->list, w);
  w->state = W_IDLE;
}
