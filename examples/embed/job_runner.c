/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * job_runner.c: a C application with its own libuv loop that exposes an
 * async function to scripts, app.next_job(), and runs a user's script
 * that processes the jobs concurrently.
 *
 *   job_runner script.lua [jobs]
 *
 * next_job() is written the way luaio's own bindings are: start a uv
 * operation (here a timer standing in for a job queue), suspend the task
 * with a waiter, resume it from the callback, abort on cancellation.
 */
#include <luaio.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct app {
  int next, total, finished;
} app;

typedef struct job_op {
  uv_timer_t timer;
  luaio_waiter w;
  int job;
} job_op;

static void job_free_cb (uv_handle_t *h) { free(h->data); }

static void job_ready_cb (uv_timer_t *timer) {
  job_op *op = (job_op *)timer->data;
  if (!luaio_waiter_done(&op->w, 0))     /* the task was cancelled */
    uv_close((uv_handle_t *)&op->timer, job_free_cb);
}

static void job_abort (luaio_waiter *w) {
  job_op *op = (job_op *)((char *)w - offsetof(job_op, w));
  uv_timer_stop(&op->timer);
  luaio_waiter_done(w, UV_ECANCELED);
}

static int next_job_k (lua_State *L, int status, lua_KContext ctx) {
  job_op *op = (job_op *)ctx;
  int job = op->job;
  uv_close((uv_handle_t *)&op->timer, job_free_cb);
  if (status < 0) return luaio_raise_uv(L, status, "app.next_job", NULL, NULL);
  if (job < 0) lua_pushnil(L); else lua_pushinteger(L, job);
  return 1;
}

/* app.next_job() -> the next job id after a short delay, nil when done */
static int next_job (lua_State *L) {
  app *a = (app *)luaio_get_userdata(luaio_host_of(L));
  job_op *op;
  luaio_check_wait(L, "app.next_job");
  op = malloc(sizeof *op);
  if (op == NULL) return luaL_error(L, "app.next_job: out of memory");
  luaio_waiter_init(&op->w, job_abort);
  op->job = a->next < a->total ? ++a->next : -1;
  uv_timer_init(luaio_loop(luaio_host_of(L)), &op->timer);
  op->timer.data = op;
  uv_timer_start(&op->timer, job_ready_cb, 5, 0);
  return luaio_wait(L, &op->w, next_job_k, (lua_KContext)op);
}

/* app.done(id): a script reports a finished job (synchronous). */
static int job_done (lua_State *L) {
  app *a = (app *)luaio_get_userdata(luaio_host_of(L));
  luaL_checkinteger(L, 1);
  a->finished++;
  return 0;
}

static int luaopen_app (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"next_job", next_job}, {"done", job_done}, {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  return 1;
}

static void script_done (luaio_task *t, void *ud) {
  (void)ud;
  if (luaio_task_status(t) != LUAIO_OK)
    fprintf(stderr, "script failed: %s\n", luaio_task_error(t));
}

int main (int argc, char **argv) {
  uv_loop_t loop;
  luaio_config cfg = {0};
  app a = {0, 20, 0};
  luaio_host *h;
  luaio_task *t;
  int ok;
  if (argc < 2) {
    fprintf(stderr, "usage: job_runner script.lua [jobs]\n");
    return 2;
  }
  if (argc > 2) a.total = atoi(argv[2]);
  if (uv_loop_init(&loop) != 0) return 1;
  cfg.loop = &loop;
  h = luaio_new(&cfg);
  if (h == NULL) {
    fprintf(stderr, "cannot create the luaio host\n");
    uv_run(&loop, UV_RUN_DEFAULT);       /* as after luaio_close */
    uv_loop_close(&loop);
    return 1;
  }
  luaio_set_userdata(h, &a);
  luaio_preload(h, "app", luaopen_app);
  t = luaio_spawn_file(h, argv[1], 0, NULL);
  if (t == NULL) {
    fprintf(stderr, "%s\n", lua_tostring(luaio_state(h), -1));
    return 1;
  }
  luaio_task_on_done(t, script_done, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);         /* the application runs its loop */
  ok = luaio_task_status(t) == LUAIO_OK;
  luaio_task_release(t);
  luaio_close(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  printf("%d of %d jobs done\n", a.finished, a.total);
  return ok && a.finished == a.total ? 0 : 1;
}
