/*
 * embed_test.c: the embedding API from C (run by ctest, also under
 * valgrind). Prints "N passed, M failed" and exits non-zero on failure.
 */
#include <luaio.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond) do { \
    if (cond) passed++; \
    else { failed++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                             __FILE__, __LINE__, #cond); } \
  } while (0)

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
  luaio_host *h = luaio_new(NULL);
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
  h = luaio_new(&cfg);
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
  luaio_host *h = luaio_new(NULL);
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
  h = luaio_new(&cfg);
  CHECK(h != NULL);
  CHECK(run(h, "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end",
            err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "not enough memory") != NULL);
  CHECK(run(h, "return 1 + 1", NULL, 0) == LUAIO_OK);   /* still healthy */
  luaio_close(h);
  cfg.mem_limit = 1000;              /* below what the host itself uses */
  h = luaio_new(&cfg);
  CHECK(h != NULL);
  CHECK(run(h, "return {}", err, sizeof err) == LUAIO_ERROR);
  CHECK(strstr(err, "not enough memory") != NULL);
  luaio_close(h);
}

static void test_runaway (void) {
  luaio_config cfg = {0};
  luaio_host *h;
  char err[512];
  cfg.runaway_ms = 50;
  h = luaio_new(&cfg);
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

static void test_restricted (void) {
  static const char *const allow[] = {"luaio", "string", NULL};
  luaio_config cfg = {0};
  luaio_host *h;
  cfg.restricted = 1;
  cfg.allow = allow;
  h = luaio_new(&cfg);
  CHECK(run(h, "assert(os.execute == nil and io.popen == nil)\n"
               "assert(package.loadlib == nil and dofile == nil)\n"
               "assert(not pcall(os.exit, 1))\n"
               "assert(not pcall(require, 'luaio.fs'))\n"
               "assert(require('luaio').sleep)\n"
               "assert(load(string.dump(function() end)) == nil)",
            NULL, 0) == LUAIO_OK);
  luaio_close(h);
}

static void *host_thread (void *arg) {
  luaio_host *h = luaio_new(NULL);
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

static void test_deadlock (void) {
  luaio_host *h = luaio_new(NULL);
  CHECK(run(h, "local aio = require 'luaio'; aio.event():wait()", NULL, 0)
        == LUAIO_DEADLOCK);
  luaio_close(h);
}

int main (void) {
  test_own_loop();
  test_borrowed_loop_and_errors();
  test_close_with_running_tasks();
  test_memory_cap();
  test_runaway();
  test_restricted();
  test_two_hosts_two_threads();
  test_deadlock();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
