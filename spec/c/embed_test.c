/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * embed_test.c: the embedding API from C (run by ctest, also under
 * valgrind). Prints "N passed, M failed" and exits non-zero on failure.
 */
#include <luaio.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int passed, failed;

#define CHECK(cond) do { \
    if (cond) passed++; \
    else { failed++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                             __FILE__, __LINE__, #cond); } \
  } while (0)

/* A host, or the end of the run when there is no memory for one (as
 * under scripts/torture.sh, which makes allocations fail). */
static luaio_host *new_host (const luaio_config *cfg) {
  luaio_host *h = luaio_new(cfg);
  if (h == NULL) {
    printf("%d passed, %d failed, then no memory for a host\n", passed,
           failed);
    exit(1);
  }
  return h;
}

/* Run code as a task to the end; returns the task status. */
static int run (luaio_host *h, const char *code, char *err, size_t n) {
  luaio_task *t = luaio_spawn_string(h, code, "=test");
  int status;
  if (t == NULL) return -1;
  status = luaio_run_until(h, t);
  if (err) snprintf(err, n, "%s", status == LUAIO_OK ? "" : luaio_task_error(t));
  luaio_task_release(t);
  return status;
}

static void test_own_loop (void) {
  luaio_host *h = new_host(NULL);
  lua_State *L = luaio_state(h);
  luaio_task *t;
  CHECK(h != NULL);
  CHECK(strcmp(luaio_version(), LUAIO_VERSION) == 0);
  t = luaio_spawn_string(h, "local aio = require 'luaio'; aio.sleep(0.01); "
                         "return 1, 'two'", "=results");
  CHECK(luaio_run_until(h, t) == LUAIO_OK);
  CHECK(luaio_task_push_results(L, t) == 2);
  CHECK(lua_tointeger(L, -2) == 1 && strcmp(lua_tostring(L, -1), "two") == 0);
  lua_pop(L, 2);
  luaio_task_release(t);
  luaio_close(h);
}

static int done_calls;
static void on_done (luaio_task *t, void *ud) {
  done_calls++;
  CHECK(ud == &done_calls);
  CHECK(luaio_task_status(t) == LUAIO_ERROR);
}

static void test_borrowed_loop_and_errors (void) {
  uv_loop_t loop;
  luaio_config cfg = {0};
  luaio_host *h;
  lua_State *L;
  luaio_task *t;
  uv_loop_init(&loop);
  cfg.loop = &loop;
  h = new_host(&cfg);
  L = luaio_state(h);
  CHECK(luaio_loop(h) == &loop);
  luaL_loadstring(L, "local aio = require 'luaio'; aio.sleep(0.01); "
                  "error('from lua')");
  t = luaio_spawn(L, 0);
  luaio_task_on_done(t, on_done, &done_calls);
  uv_run(&loop, UV_RUN_DEFAULT);                   /* the app runs it */
  CHECK(done_calls == 1);
  CHECK(strstr(luaio_task_error(t), "from lua") != NULL);
  CHECK(strstr(luaio_task_error(t), "stack traceback") != NULL);
  luaio_task_release(t);
  luaio_close(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);                /* nothing left open */
}

static void test_close_with_running_tasks (void) {
  luaio_host *h = new_host(NULL);
  CHECK(run(h, "local aio = require 'luaio'\n"
               "closed = false\n"
               "aio.spawn(function()\n"
               "  local _ <close> = setmetatable({}, {__close = function()\n"
               "    closed = true end})\n"
               "  aio.sleep(60)\n"
               "end)\n"
               "aio.sleep(0)", NULL, 0) == LUAIO_OK);
  luaio_close(h);                                  /* cancels, no hang */
  CHECK(1);
}

static void test_memory_cap (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  char err[512];
  cfg.mem_limit = 8u << 20;
  h = new_host(&cfg);
  CHECK(h != NULL);
  CHECK(run(h, "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end",
            err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "not enough memory") != NULL);
  CHECK(run(h, "return 1 + 1", NULL, 0) == LUAIO_OK);   /* still healthy */
  luaio_close(h);
  cfg.mem_limit = 1000;              /* below what the host itself uses */
  h = new_host(&cfg);
  CHECK(h != NULL);
  CHECK(run(h, "return {}", err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "not enough memory") != NULL);
  luaio_close(h);
}

/* The allocation-failure hook of host/torture.c (declared in luaio.h): a
 * failing allocation in a task is a "not enough memory" error there, and
 * the host goes on. */
void luaio_torture_fail_alloc(long n);

static void test_failing_allocation (void) {
  luaio_host *h;
  char err[512];
  int n, failures = 0;
  if (getenv("LUAIO_FAIL_ALLOC")) return;   /* scripts/torture.sh counts */
  h = new_host(NULL);
  for (n = 1; n <= 60; n++) {
    luaio_torture_fail_alloc(n);
    if (run(h, "local t = {} for i = 1, 20 do t[i] = {i} end return #t",
            err, sizeof err) != LUAIO_OK) {
      failures++;
      CHECK(strstr(err, "not enough memory") != NULL);
    }
  }
  luaio_torture_fail_alloc(0);
  CHECK(failures > 0);
  CHECK(run(h, "return 1 + 1", NULL, 0) == LUAIO_OK);   /* still healthy */
  luaio_close(h);
}

static void test_runaway (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  char err[512];
  cfg.runaway_ms = 50;
  h = new_host(&cfg);
  CHECK(run(h, "local aio = require 'luaio'\n"
               "local ticks = 0\n"
               "local ticker = aio.spawn(function()\n"
               "  for i = 1, 5 do aio.sleep(0.01); ticks = ticks + 1 end end)\n"
               "local spin = aio.spawn(function() while true do end end)\n"
               "local ok, e = pcall(spin.await, spin)\n"
               "ticker:await()\n"
               "assert(not ok and tostring(e):find('runaway'), tostring(e))\n"
               "assert(ticks == 5)", err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  luaio_close(h);
}

/* Regression (safety issue, item 16): the runaway cap cannot be caught
 * and ignored by the script, not even by a pcall in a loop. */
static void test_runaway_uncatchable (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  char err[512];
  cfg.runaway_ms = 50;
  h = new_host(&cfg);
  CHECK(run(h, "local aio = require 'luaio'\n"
               "local caught = 0\n"
               "local spin = aio.spawn(function()\n"
               "  while true do\n"
               "    pcall(function() while true do end end)\n"
               "    caught = caught + 1\n"
               "  end\n"
               "end)\n"
               "local ok, e = pcall(spin.await, spin)\n"
               "assert(not ok and e.kind == 'killed', tostring(e))\n"
               "assert(tostring(e):find('runaway'), tostring(e))\n"
               "assert(caught == 0, caught)", err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  luaio_close(h);
}

/* luaio_stop bounds the exit: a task swallowing its cancellation in a
 * loop that never waits is killed at the end of the grace. */
static void test_stop_grace (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  luaio_task *t;
  cfg.grace_ms = 100;
  h = new_host(&cfg);
  t = luaio_spawn_string(h, "local aio = require 'luaio'\n"
                         "while true do pcall(aio.sleep, 1) end", "=swallow");
  CHECK(t != NULL);
  if (t == NULL) { luaio_close(h); return; }
  uv_run(luaio_loop(h), UV_RUN_NOWAIT);
  CHECK(!luaio_task_done(t));
  CHECK(luaio_stop(h) == 1);
  CHECK(luaio_task_done(t));
  luaio_task_release(t);
  luaio_close(h);
}

static void test_restricted (void) {
  static const char *const allow[] = {"luaio", "string", NULL};
  luaio_config cfg = {0};
  luaio_host *h;
  cfg.restricted = 1;
  cfg.allow = allow;
  h = new_host(&cfg);
  CHECK(run(h, "assert(os.execute == nil and io.popen == nil)\n"
               "assert(package.loadlib == nil and dofile == nil)\n"
               "assert(not pcall(os.exit, 1))\n"
               "assert(not pcall(require, 'luaio.fs'))\n"
               "assert(require('luaio').sleep)\n"
               "assert(load(string.dump(function() end)) == nil)\n"
               "local aio = require('luaio')\n"
               "assert(not pcall(aio.to_thread, 'string.rep', 'x', 2))\n"
               "assert(not pcall(aio.signal, 'SIGHUP'))",
            NULL, 0) == LUAIO_OK);
  luaio_close(h);
}

/* luaio_config.sandbox: the permission errors, and a malformed list. */
static void test_sandbox (void) {
  static const char *const read[] = {"/nonexistent-luaio-root", NULL};
  static const char *const net[] = {"127.0.0.1:1", NULL};
  static const char *const bad_net[] = {"host:99999", NULL};
  luaio_sandbox sb;
  luaio_config cfg = {0};
  luaio_host *h;
  char err[512];
  memset(&sb, 0, sizeof sb);
  sb.read = read;
  sb.net = net;
  cfg.sandbox = &sb;
  h = new_host(&cfg);
  CHECK(run(h, "local ok, e = pcall(io.open, '/etc/passwd')\n"
               "assert(not ok and e.kind == 'permission', tostring(e))\n"
               "assert(e.permission == 'read' and e.target == '/etc/passwd')\n"
               "assert(debug == nil and not pcall(os.getenv, 'HOME'))\n"
               "local net = require 'luaio.net'\n"
               "local ok2, e2 = pcall(net.connect, '127.0.0.1', 2)\n"
               "assert(e2.kind == 'permission', tostring(e2))",
            err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  CHECK(luaio_limit_hit(h) == NULL);
  luaio_close(h);
  sb.net = bad_net;
  CHECK(luaio_sandbox_invalid(&sb) != NULL);
  CHECK(luaio_new(&cfg) == NULL);
}

/* The caps end the script past any pcall, and say which. */
static void test_caps (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  luaio_task *t;
  lua_State *L;
  char err[512];
  cfg.max_tasks = 3;
  h = new_host(&cfg);
  CHECK(run(h, "local aio = require 'luaio'\n"
               "for i = 1, 10 do pcall(aio.spawn, aio.sleep, 1) end",
            err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "more than 3 live tasks") != NULL);
  CHECK(luaio_limit_hit(h) && strcmp(luaio_limit_hit(h), "max-tasks") == 0);
  luaio_close(h);
  h = new_host(&cfg);                        /* the error: kind "cap" */
  t = luaio_spawn_string(h, "for i = 1, 10 do require('luaio').spawn("
                            "function() end) end", "=caps");
  L = luaio_state(h);
  CHECK(t != NULL && luaio_run_until(h, t) == LUAIO_ERROR);
  CHECK(t != NULL && luaio_task_push_results(L, t) == -1);
  lua_getfield(L, -1, "kind");
  lua_getfield(L, -2, "cap");
  CHECK(lua_isstring(L, -2) && strcmp(lua_tostring(L, -2), "cap") == 0);
  CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "max-tasks") == 0);
  lua_pop(L, 3);
  if (t) luaio_task_release(t);
  luaio_close(h);
  memset(&cfg, 0, sizeof cfg);
  cfg.mem_limit = 8u << 20;
  cfg.hard_limits = 1;
  h = new_host(&cfg);
  CHECK(run(h, "local t = {} pcall(function() for i = 1, 1e8 do "
               "t[i] = ('x'):rep(100) .. i end end) return 1",
            err, sizeof err) == LUAIO_ERROR);
  CHECK(luaio_limit_hit(h) && strcmp(luaio_limit_hit(h), "max-memory") == 0);
  luaio_close(h);
  memset(&cfg, 0, sizeof cfg);
  cfg.max_time_ms = 100;
  h = new_host(&cfg);
  CHECK(run(h, "pcall(function() while true do end end) return 1",
            err, sizeof err) == LUAIO_ERROR);
  CHECK(luaio_limit_hit(h) && strcmp(luaio_limit_hit(h), "max-time") == 0);
  luaio_close(h);
  h = new_host(&cfg);                 /* past max_time before it starts */
  uv_sleep(150);
  CHECK(run(h, "return 1", err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "limit reached") != NULL);
  CHECK(run(h, "return 1", err, sizeof err) == LUAIO_ERROR);   /* after */
  luaio_close(h);
}

static void *host_thread (void *arg) {
  luaio_host *h = new_host(NULL);
  *(int *)arg = run(h, "local aio = require 'luaio'\n"
                       "local ts = {}\n"
                       "for i = 1, 100 do ts[i] = aio.spawn(aio.sleep, 0.01) end\n"
                       "aio.gather(ts)", NULL, 0);
  luaio_close(h);
  return NULL;
}

static void test_two_hosts_two_threads (void) {
  pthread_t a, b;
  int ra = -1, rb = -1;
  pthread_create(&a, NULL, host_thread, &ra);
  pthread_create(&b, NULL, host_thread, &rb);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK(ra == LUAIO_OK && rb == LUAIO_OK);
}

/* ---- an app-defined async function: app.wait_ms(ms) -------------------- */

typedef struct app_op {
  uv_timer_t timer;
  luaio_waiter w;
  int ms;
} app_op;

static void app_free_cb (uv_handle_t *h) { free(h->data); }

static void app_timer_cb (uv_timer_t *t) {
  app_op *op = (app_op *)t->data;
  if (!luaio_waiter_done(&op->w, 0)) uv_close((uv_handle_t *)t, app_free_cb);
}

static void app_abort (luaio_waiter *w) {
  app_op *op = (app_op *)((char *)w - offsetof(app_op, w));
  uv_timer_stop(&op->timer);
  luaio_waiter_done(w, UV_ECANCELED);
}

static int app_wait_k (lua_State *L, int status, lua_KContext ctx) {
  app_op *op = (app_op *)ctx;
  int ms = op->ms;
  uv_close((uv_handle_t *)&op->timer, app_free_cb);
  if (status < 0) return luaio_raise_uv(L, status, "app.wait_ms", NULL, NULL);
  lua_pushinteger(L, ms);
  return 1;
}

/* app.wait_ms(ms) -> ms after waiting; ms < 0 is an argument error. */
static int app_wait_ms (lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  app_op *op;
  luaL_argcheck(L, ms >= 0, 1, "must be >= 0");
  luaio_check_wait(L, "app.wait_ms");
  op = malloc(sizeof *op);
  luaio_waiter_init(&op->w, app_abort);
  op->ms = (int)ms;
  uv_timer_init(luaio_loop(luaio_host_of(L)), &op->timer);
  op->timer.data = op;
  uv_timer_start(&op->timer, app_timer_cb, (uint64_t)ms, 0);
  return luaio_wait(L, &op->w, app_wait_k, (lua_KContext)op);
}

static int luaopen_app (lua_State *L) {
  static const luaL_Reg f[] = {{"wait_ms", app_wait_ms}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}

static void test_app_async_function (void) {
  luaio_host *h = new_host(NULL);
  char err[512];
  luaio_preload(h, "app", luaopen_app);
  CHECK(run(h, "local app = require 'app'\n"
               "assert(app.wait_ms(10) == 10)\n"
               "local ok, e = pcall(app.wait_ms, -1)\n"
               "assert(not ok and e:find('bad argument #1'), e)\n"
               "local aio = require 'luaio'\n"
               "local t = aio.spawn(app.wait_ms, 10000)\n"
               "aio.sleep(0.01)\n"
               "t:cancel()\n"
               "local ok2, e2 = pcall(t.await, t)\n"
               "assert(not ok2 and aio.is_cancelled(e2))\n"
               "local ok3, e3 = pcall(aio.timeout, 0.01, app.wait_ms, 10000)\n"
               "assert(aio.is_timeout(e3))", err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  luaio_close(h);
}

/* A C callback completes futures that Lua tasks await: one set with
 * values, one failed; a late set of a done future is refused. */
typedef struct future_job {
  uv_timer_t timer;
  lua_State *L;
  luaio_future *ok, *bad;
  int late_status;
} future_job;

static void future_timer_cb (uv_timer_t *t) {
  future_job *job = (future_job *)t->data;
  lua_State *L = job->L;
  lua_pushinteger(L, 42);
  lua_pushstring(L, "from C");
  CHECK(luaio_future_set(L, job->ok, 2) == LUAIO_OK);
  CHECK(luaio_future_done(job->ok));
  lua_pushstring(L, "C says no");
  CHECK(luaio_future_fail(L, job->bad) == LUAIO_OK);
  lua_pushinteger(L, 1);
  job->late_status = luaio_future_set(L, job->ok, 1);
  luaio_future_release(L, job->ok);
  luaio_future_release(L, job->bad);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_future_from_c (void) {
  luaio_host *h = new_host(NULL);
  lua_State *L = luaio_state(h);
  future_job job;
  char err[512];
  int top = lua_gettop(L);
  job.L = L;
  job.ok = luaio_future_new(L);
  lua_setglobal(L, "F");
  job.bad = luaio_future_new(L);
  CHECK(luaio_tofuture(L, -1) == job.bad);
  lua_pushinteger(L, 1);
  CHECK(luaio_tofuture(L, -1) == NULL && luaio_future_ref(L, -1) == NULL);
  lua_pop(L, 1);
  lua_setglobal(L, "G");
  CHECK(lua_gettop(L) == top && !luaio_future_done(job.ok));
  uv_timer_init(luaio_loop(h), &job.timer);
  job.timer.data = &job;
  uv_timer_start(&job.timer, future_timer_cb, 10, 0);
  CHECK(run(h, "local aio = require 'luaio'\n"
               "local f, g = F, G\n"
               "F, G = nil, nil; collectgarbage()\n"
               "local ts = {}\n"
               "for i = 1, 3 do ts[i] = aio.spawn(f.await, f) end\n"
               "for i = 1, 3 do\n"
               "  local a, b = ts[i]:await()\n"
               "  assert(a == 42 and b == 'from C')\n"
               "end\n"
               "local ok, e = pcall(g.await, g)\n"
               "assert(not ok and e == 'C says no', tostring(e))",
            err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  CHECK(job.late_status == LUAIO_ERROR);
  luaio_close(h);
}

/* ---- luaio_work: app.sum(n) adds 1..n on a worker thread --------------- */

typedef struct sum_job {
  long long n, sum;
  volatile int stop;              /* set by the loop thread; checked */
  int stopped;
} sum_job;

static void sum_work (void *ud) {
  sum_job *j = (sum_job *)ud;
  long long i;
  for (i = 1; i <= j->n; i++) {
    if ((i & 0xffff) == 0 && __atomic_load_n(&j->stop, __ATOMIC_RELAXED)) {
      j->stopped = 1;
      return;
    }
    j->sum += i;
  }
}

static void sum_stop (void *ud) {
  __atomic_store_n(&((sum_job *)ud)->stop, 1, __ATOMIC_RELAXED);
}

static int sum_done (lua_State *L, int status, void *ud) {
  sum_job *j = (sum_job *)ud;
  long long sum = j->sum;
  int stopped = j->stopped;
  free(j);
  if (L == NULL) return 0;
  if (status < 0) return luaio_raise_uv(L, status, "app.sum", NULL, NULL);
  if (stopped) return luaio_raise_uv(L, UV_ECANCELED, "app.sum", NULL, NULL);
  lua_pushinteger(L, (lua_Integer)sum);
  return 1;
}

static int app_sum (lua_State *L) {
  sum_job *j;
  luaio_check_wait(L, "app.sum");
  j = calloc(1, sizeof *j);
  j->n = luaL_checkinteger(L, 1);
  return luaio_work(L, sum_work, sum_done, sum_stop, j);
}

static int luaopen_app_work (lua_State *L) {
  static const luaL_Reg f[] = {{"sum", app_sum}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}

static void test_work (void) {
  luaio_host *h = new_host(NULL);
  char err[512];
  luaio_preload(h, "app", luaopen_app_work);
  CHECK(run(h, "local app = require 'app'\n"
               "assert(app.sum(1000) == 500500)\n"
               "local aio = require 'luaio'\n"
               "local t = aio.spawn(app.sum, 1 << 50)\n"
               "aio.sleep(0.02)\n"
               "t:cancel()\n"
               "local ok, e = pcall(t.await, t)\n"
               "assert(not ok and aio.is_cancelled(e), tostring(e))\n"
               "assert(app.sum(10) == 55)", err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  luaio_close(h);
}

static int order[4], norder;
static void record_done (luaio_task *t, void *ud) {
  (void)t;
  order[norder++] = (int)(intptr_t)ud;
}

/* Completion callbacks fire in the order the tasks finish. */
static void test_callback_order (void) {
  luaio_host *h = new_host(NULL);
  lua_State *L = luaio_state(h);
  luaio_task *t[3];
  int i;
  const char *codes[3] = {"require('luaio').sleep(0.03)",
                          "require('luaio').sleep(0.01)",
                          "require('luaio').sleep(0.02)"};
  norder = 0;
  for (i = 0; i < 3; i++) {
    luaL_loadstring(L, codes[i]);
    t[i] = luaio_spawn(L, 0);
    luaio_task_on_done(t[i], record_done, (void *)(intptr_t)i);
  }
  luaio_run_until(h, t[0]);
  CHECK(norder == 3 && order[0] == 1 && order[1] == 2 && order[2] == 0);
  for (i = 0; i < 3; i++) luaio_task_release(t[i]);
  luaio_close(h);
}

static long resident_kb (void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * 4;
}

/* 1,000 hosts created, used and destroyed: memory stays flat. */
static void test_lifecycle (void) {
  int i, ok = 1;
  long before = 0;
  for (i = 0; i < 1000 && ok; i++) {
    if (i == 100) before = resident_kb();
    luaio_host *h = new_host(NULL);
    ok = run(h, "local aio = require 'luaio'; aio.sleep(0)", NULL, 0)
         == LUAIO_OK;
    luaio_close(h);
  }
  CHECK(ok);
  /* Under valgrind or ASan the checker's own bookkeeping grows the
     resident size and reports leaks itself; measure only without one. */
  if (!getenv("LUAIO_UNDER_CHECKER"))
    CHECK(resident_kb() - before < 4096);          /* flat, within 4 MiB */
}

static int ticks;
static void tick_cb (uv_timer_t *t) {
  if (++ticks == 5) uv_close((uv_handle_t *)t, NULL);
}

/* The application's own handles go on after the host is destroyed. */
static void test_borrowed_loop_survives (void) {
  uv_loop_t loop;
  uv_timer_t timer;
  luaio_config cfg = {0};
  luaio_host *h;
  uv_loop_init(&loop);
  cfg.loop = &loop;
  h = new_host(&cfg);
  CHECK(run(h, "require('luaio').sleep(0.01)", NULL, 0) == LUAIO_OK);
  luaio_close(h);
  ticks = 0;
  uv_timer_init(&loop, &timer);                    /* the app goes on */
  uv_timer_start(&timer, tick_cb, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(ticks == 5);
  CHECK(uv_loop_close(&loop) == 0);
}

static void test_deadlock (void) {
  luaio_host *h = new_host(NULL);
  CHECK(run(h, "local aio = require 'luaio'; aio.event():wait()", NULL, 0)
        == LUAIO_DEADLOCK);
  luaio_close(h);
}

/* luaio_serve_c: a C handler answers real requests (luaio's own client,
 * over 127.0.0.1); a failing one gives a 500; bad input is refused. */
static int serve_calls;
static char serve_echo[64];
static int echo_handler (void *ud, const luaio_http_request *req,
                         luaio_http_response *res) {
  serve_calls++;
  if (strcmp(req->path, "/fail") == 0) return -1;
  snprintf(serve_echo, sizeof serve_echo, "%s %s %s %zu %s", (char *)ud,
           req->method, req->url, req->body_len,
           req->body_len ? req->body : "-");
  res->status = strcmp(req->path, "/new") == 0 ? 201 : 0;
  res->content_type = "text/x-echo";
  res->body = serve_echo;
  res->body_len = strlen(serve_echo);
  return 0;
}

static void test_serve_c (void) {
  luaio_host *h = new_host(NULL);
  lua_State *L = luaio_state(h);
  char err[512];
  CHECK(luaio_serve_c(L, 0, NULL, NULL) == LUAIO_ERROR);
  CHECK(strstr(lua_tostring(L, -1), "handler") != NULL);
  lua_pop(L, 1);
  lua_pushinteger(L, 7);
  CHECK(luaio_serve_c(L, -1, echo_handler, NULL) == LUAIO_ERROR);
  lua_pop(L, 2);
  lua_newtable(L);
  lua_pushinteger(L, 70000);
  lua_setfield(L, -2, "port");
  CHECK(luaio_serve_c(L, -1, echo_handler, NULL) == LUAIO_ERROR);
  CHECK(strstr(lua_tostring(L, -1), "port") != NULL);
  lua_pop(L, 1);
  lua_pushinteger(L, 0);                 /* the same table, port 0 */
  lua_setfield(L, -2, "port");
  CHECK(luaio_serve_c(L, -1, echo_handler, "c") == LUAIO_OK);
  lua_setglobal(L, "SRV");
  lua_pop(L, 1);
  CHECK(run(h, "local http = require 'luaio.http'\n"
            "local base = 'http://127.0.0.1:' .. SRV.port\n"
            "local r = http.post(base .. '/new?x=1', {body = 'hi'})\n"
            "assert(r.status == 201, r.status)\n"
            "assert(r.body == 'c POST /new?x=1 2 hi', r.body)\n"
            "assert(r.headers['content-type'] == 'text/x-echo')\n"
            "r = http.get(base .. '/')\n"
            "assert(r.status == 200 and r.body == 'c GET / 0 -', r.body)\n"
            "assert(http.get(base .. '/fail').status == 500)\n"
            "SRV:close()\n", err, sizeof err) == LUAIO_OK);
  if (err[0]) fprintf(stderr, "%s\n", err);
  CHECK(serve_calls == 3);
  luaio_close(h);
}

/* luaio_config.raise_fd_limit: the soft limit on open files goes up to
 * the hard one only when asked (the process is the embedder's). */
static void test_fd_limit (void) {
  struct rlimit saved, rl;
  luaio_config cfg;
  luaio_host *h;
  CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rl = saved;
  if (rl.rlim_max < 64) return;                /* nothing to lower */
  rl.rlim_cur = 64;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  luaio_close(new_host(NULL));
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 64);
  memset(&cfg, 0, sizeof cfg);
  cfg.raise_fd_limit = 1;
  h = new_host(&cfg);
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 64);
  CHECK(rl.rlim_cur == rl.rlim_max || rl.rlim_max == RLIM_INFINITY);
  luaio_close(h);
  setrlimit(RLIMIT_NOFILE, &saved);
}

int main (void) {
  test_own_loop();
  test_borrowed_loop_and_errors();
  test_close_with_running_tasks();
  test_memory_cap();
  test_failing_allocation();
  test_runaway();
  test_runaway_uncatchable();
  test_stop_grace();
  test_restricted();
  test_sandbox();
  test_caps();
  test_two_hosts_two_threads();
  test_deadlock();
  test_app_async_function();
  test_future_from_c();
  test_work();
  test_callback_order();
  test_serve_c();
  test_lifecycle();
  test_borrowed_loop_survives();
  test_fd_limit();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
