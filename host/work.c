/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * work.c: luaio_work, running a C function on libuv's thread pool while
 * the calling task waits (aio.to_thread is built on it).
 *
 * The wait must finish (must_finish): a cancelled task stays suspended
 * until the work has returned, so no thread still uses what the task
 * handed it. Cancellation takes work still queued off the queue
 * (uv_cancel) and asks running work to return early through the
 * caller's stop function.
 */
#include "host.h"

typedef struct work_op {
  uv_work_t req;
  luaio_waiter w;
  luaio_work_fn work;
  luaio_work_done_fn done;
  luaio_work_stop_fn stop;
  void *ud;
} work_op;

static void work_cb (uv_work_t *req) {
  work_op *op = (work_op *)req->data;
  op->work(op->ud);
}

/* Loop thread. A task gone without waiting (only when the host closes
 * under it) leaves done to free ud with L NULL. */
static void after_cb (uv_work_t *req, int status) {
  work_op *op = (work_op *)req->data;
  if (luaio_waiter_done(&op->w, status)) return;
  op->done(NULL, status, op->ud);
  free(op);
}

static void work_abort (luaio_waiter *w) {
  work_op *op = (work_op *)((char *)w - offsetof(work_op, w));
  if (uv_cancel((uv_req_t *)&op->req) != 0 && op->stop)
    op->stop(op->ud);              /* running: ask it to return early */
}

static int work_k (lua_State *L, int status, lua_KContext ctx) {
  work_op *op = (work_op *)ctx;
  luaio_work_done_fn done = op->done;
  void *ud = op->ud;
  free(op);
  return done(L, status, ud);
}

int luaio_work (lua_State *L, luaio_work_fn work, luaio_work_done_fn done,
                luaio_work_stop_fn stop, void *ud) {
  work_op *op;
  int err;
  luaio_check_wait(L, "luaio_work");
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "luaio_work: out of memory");
  op->work = work;
  op->done = done;
  op->stop = stop;
  op->ud = ud;
  op->req.data = op;
  luaio_waiter_init(&op->w, work_abort);
  op->w.must_finish = 1;
  err = uv_queue_work(luaio_loop(luaio__host(L)), &op->req, work_cb, after_cb);
  if (err < 0) {
    free(op);
    return done(L, err, ud);
  }
  return luaio_wait(L, &op->w, work_k, (lua_KContext)op);
}
