/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * torture.c: test instrumentation that makes rare paths happen on demand.
 *
 * Cancellation torture (LUAIO_TORTURE=cancel, driven by lua/torture.lua):
 * count the suspensions of every task but one exempt task (the test
 * runner's) and cancel a target task at the k-th. Allocation-failure
 * torture (LUAIO_FAIL_ALLOC=n): the n-th growing allocation of Lua memory
 * fails, and so does Lua's retry of it after its emergency collection, so
 * the failure reaches the code instead of being absorbed.
 *
 * The state is process-wide on purpose: one test driver arms it, whatever
 * host the code under test runs in. The hooks cost one test of a global
 * flag when torture is off.
 */
#include "private.h"

int luaio__torture_on;

/* ---- cancellation at the k-th suspension ---------------------------- */

static struct {
  luaio_task *target, *exempt;
  long k, count;
  int fired;
  uint64_t fired_at;           /* uv_hrtime() of the cancel */
  uv_timer_t *late;            /* set: cancel on the loop's next turn */
} tc;

static void late_cb (uv_timer_t *timer) {
  (void)timer;
  tc.fired_at = uv_hrtime();
  if (tc.target) luaio_task_cancel(tc.target);
}

static void timer_free_cb (uv_handle_t *h) { free(h); }

static void update_on (void);

/* Called by a task about to suspend (its wait is pending, or it yields a
 * turn). At the k-th, cancel the target now: the cancel lands while this
 * wait's operation is in flight, as a cancel from another task would, so
 * the abort path of exactly this wait runs. The late variant cancels on
 * the loop's next turn instead, when the operation may have completed
 * and the task may be ready to resume with its result. */
void luaio__torture_suspend (luaio_task *t) {
  if (tc.target == NULL || t == tc.exempt || tc.fired) return;
  if (tc.target->state == T_DONE || ++tc.count < tc.k) return;
  tc.fired = 1;
  tc.fired_at = uv_hrtime();
  if (tc.late) uv_timer_start(tc.late, late_cb, 0, 0);
  else luaio_task_cancel(tc.target);
}

static void stop_late (void) {
  if (tc.late == NULL) return;
  uv_close((uv_handle_t *)tc.late, timer_free_cb);
  tc.late = NULL;
}

/* torture.cancel_at(task, k [, exempt [, late]]): cancel task at the
 * k-th suspension of any task but exempt, counting from now (late: on the
 * loop's next turn after it). */
static int torture_cancel_at (lua_State *L) {
  luaio_task *t = luaio__check_task(L, 1);
  long k = (long)luaL_checkinteger(L, 2);
  luaio_task *exempt = lua_isnoneornil(L, 3) ? NULL
                                              : luaio__check_task(L, 3);
  luaL_argcheck(L, k >= 1, 2, "k must be at least 1");
  stop_late();
  if (lua_toboolean(L, 4)) {
    tc.late = malloc(sizeof *tc.late);
    if (tc.late == NULL) return luaL_error(L, "out of memory");
    uv_timer_init(luaio__host(L)->loop, tc.late);
  }
  tc.target = t;
  tc.exempt = exempt;
  tc.k = k;
  tc.count = 0;
  tc.fired = 0;
  update_on();
  return 0;
}

/* torture.cancel_state() -> suspensions counted, fired, seconds since
 * the cancel (0 if none). */
static int torture_cancel_state (lua_State *L) {
  lua_pushinteger(L, tc.count);
  lua_pushboolean(L, tc.fired);
  lua_pushnumber(L, tc.fired ? (uv_hrtime() - tc.fired_at) / 1e9 : 0);
  return 3;
}

/* torture.disarm(): forget the target (the driver may drop it now). */
static int torture_disarm (lua_State *L) {
  (void)L;
  tc.target = tc.exempt = NULL;
  stop_late();
  update_on();
  return 0;
}

/* torture.unsetenv(name): so programs a test starts run normally. */
static int torture_unsetenv (lua_State *L) {
  unsetenv(luaL_checkstring(L, 1));
  return 0;
}

/* ---- failing the n-th allocation ------------------------------------ */

static struct {
  int active;                  /* LUAIO_FAIL_ALLOC or the C API used */
  long fail_at;                /* 0: never */
  long count;                  /* growing allocations so far */
  int everywhere;              /* also fail the host's own bookkeeping */
  luaio_host *opening;         /* the host luaio_new is setting up */
  void *ptr;                   /* the request that failed, to fail */
  size_t osize, nsize;         /* its retry too */
  int failed;
} ta;

static void report_count (void) {
  fprintf(stderr, "luaio torture: %ld allocations\n", ta.count);
}

/* Called by luaio_new for each host; reads LUAIO_FAIL_ALLOC (and
 * LUAIO_FAIL_ALLOC_SCOPE) once. */
void luaio__torture_init (luaio_host *h) {
  static int done;
  const char *s = getenv("LUAIO_FAIL_ALLOC");
  const char *scope = getenv("LUAIO_FAIL_ALLOC_SCOPE");
  ta.opening = h;
  if (done) return;
  done = 1;
  if (s == NULL || *s == '\0') return;
  ta.fail_at = strtol(s, NULL, 10);
  ta.everywhere = scope && strcmp(scope, "all") == 0;
  ta.active = 1;
  update_on();
  atexit(report_count);
}

void luaio_torture_fail_alloc (long n) {
  ta.fail_at = n;
  ta.count = 0;
  ta.failed = 0;
  ta.active = 1;
  update_on();
}

long luaio_torture_alloc_count (void) { return ta.count; }

/* Should this growing allocation fail? Only allocations where luaio
 * promises a clean error count: inside luaio_new and while a task runs
 * (where cfg.mem_limit applies too), unless the scope is "all". Lua
 * retries a failed allocation after an emergency collection; the retry
 * (the same request, next call) fails too. */
int luaio__torture_alloc_fails (luaio_host *h, void *ptr, size_t osize,
                                size_t nsize) {
  if (!ta.everywhere && !h->limited && ta.opening != h) return 0;
  if (ta.failed) {
    ta.failed = 0;
    if (ptr == ta.ptr && osize == ta.osize && nsize == ta.nsize) return 1;
  }
  if (++ta.count != ta.fail_at) return 0;
  ta.failed = 1;
  ta.ptr = ptr;
  ta.osize = osize;
  ta.nsize = nsize;
  return 1;
}

/* The hooks run while either torture is armed. */
static void update_on (void) {
  luaio__torture_on = tc.target != NULL || ta.active;
}

/* ---- the module ------------------------------------------------------ */

static int torture_fail_alloc (lua_State *L) {
  luaio_torture_fail_alloc((long)luaL_checkinteger(L, 1));
  return 0;
}

static int torture_alloc_count (lua_State *L) {
  lua_pushinteger(L, ta.count);
  return 1;
}

static int luaopen_torture (lua_State *L) {
  static const luaL_Reg fns[] = {
    {"cancel_at", torture_cancel_at}, {"cancel_state", torture_cancel_state},
    {"disarm", torture_disarm}, {"fail_alloc", torture_fail_alloc},
    {"alloc_count", torture_alloc_count}, {"unsetenv", torture_unsetenv},
    {NULL, NULL}
  };
  luaL_newlib(L, fns);
  return 1;
}

/* require "luaio.torture_c" gives the functions above. The last step
 * of luaio_new: the host is set up. */
void luaio__torture_preload (luaio_host *h) {
  luaio_preload(h, "luaio.torture_c", luaopen_torture);
  if (ta.opening == h) ta.opening = NULL;
}
