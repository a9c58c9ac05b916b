/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * host.h: what host/ and bindings/ share and embedders do not see.
 */
#ifndef LUAIO_HOST_H
#define LUAIO_HOST_H

#include "luaio.h"
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

/* Registry keys (addresses of these are the keys). */
extern const char luaio__host_key;
extern const char luaio__unobserved_key;
extern const char luaio__extra_key;      /* task -> its extra fields */

enum { T_NEW, T_READY, T_RUNNING, T_WAITING, T_DONE };
enum { W_IDLE, W_PENDING, W_DONE, W_DETACHED };

/* Cancellation strength: a stronger pending cancellation is never replaced
 * by a weaker one. Timeout scopes use LUAIO_CANCEL_SCOPE + depth-from-top. */
#define LUAIO_CANCEL_TASK 1000000
#define LUAIO_CANCEL_EXIT 2000000

typedef struct luaio_hook {
  void (*fn)(void *ud);
  void *ud;
  struct luaio_hook *next;
} luaio_hook;

/* alloc.c: size-class free lists for small Lua blocks. */
#define LUAIO_SLAB_STEP 16
#define LUAIO_SLAB_MAX 1024
typedef struct luaio_slab {
  void *free[LUAIO_SLAB_MAX / LUAIO_SLAB_STEP];
  char *cur, *end;
  void **chunks;
  size_t nchunks, cap;
  size_t trimmed_at;            /* nchunks after the last trim */
  size_t trim_used;             /* bytes in use at the last trim */
} luaio_slab;
void *luaio__slab_realloc(luaio_slab *s, void *ptr, size_t osize,
                          size_t nsize);
void luaio__slab_free_all(luaio_slab *s);
/* Return empty chunks to the system after a burst; used is the bytes in
 * use. Cheap unless it trims. */
void luaio__slab_maybe_trim(luaio_slab *s, size_t used);
/* For small structs freed before the host closes (not in a uv close
 * callback that may run after it): same size to free. */
void *luaio__op_alloc(luaio_host *h, size_t size);
void luaio__op_free(luaio_host *h, void *p, size_t size);

/* timer.c: deadlines on one uv timer per host. */
typedef struct luaio_deadline {
  uint64_t due, seq;
  size_t slot;                  /* index in the heap while armed */
  void (*cb)(struct luaio_deadline *d);
} luaio_deadline;
typedef struct luaio_timers {
  uv_timer_t timer;
  luaio_deadline **heap;
  size_t n, cap;
  uint64_t seq;
} luaio_timers;
void luaio__timers_init(luaio_timers *tm, uv_loop_t *loop);
int luaio__deadline_start(luaio_timers *tm, luaio_deadline *d, uint64_t ms,
                          void (*cb)(luaio_deadline *d));
void luaio__deadline_stop(luaio_timers *tm, luaio_deadline *d);
void luaio__timers_close(luaio_timers *tm, void *data, uv_close_cb cb);

typedef struct task_queue {
  luaio_task *head, *tail;
} task_queue;

/* What only C embedders use, allocated on first use. */
typedef struct luaio_task_ext {
  luaio_done_fn on_done;
  void *on_done_ud;
} luaio_task_ext;

/* Kept small: a task costs this plus its coroutine (about 1 KB), and
 * programs run 100,000 of them. */
struct luaio_task {
  luaio_host *host;
  lua_State *co;                /* the coroutine; NULL once done */
  luaio_task *next;             /* ready / next-turn queue link */
  luaio_waiter *waiter;         /* the wait the task is suspended in */
  luaio_waitlist awaiters;      /* tasks awaiting this one */
  luaio_task_ext *ext;
  lua_KFunction turn_k;         /* luaio_yield_turn continuation */
  int ref;                      /* live: slot in the live table; done and
                                   pinned by C: registry ref */
  union {
    int n;                      /* arguments before start, results after */
    unsigned grace_end;         /* while ending: end of the cleanup grace,
                                   ms after the host's epoch */
  } u;
  int cancel_level;             /* strength of the pending cancellation */
  unsigned id;
  unsigned char state;
  unsigned char outcome;        /* LUAIO_OK / LUAIO_ERROR / LUAIO_CANCELLED */
  unsigned char observed;       /* someone saw the error */
  unsigned char pinned;         /* C holds a reference (luaio_spawn) */
  unsigned char shielded;       /* inside aio.shielded: defer cancels */
  unsigned char depth;          /* nesting of timeout scopes */
  unsigned char in_live;        /* anchored in the live table */
  unsigned char flags;          /* TF_* below */
};

/* Task flags. A task is ENDING once an error (a cancellation included)
 * is about to unwind its body: its <close> handlers then run, and may
 * await, during the cleanup grace; a cancellation that arrives (or is
 * still pending) then is delivered only when the grace is OVER. A KILLED
 * task raises at every instruction and every wait: nothing can catch it. */
#define TF_ENDING 1
#define TF_GRACE_OVER 2
#define TF_KILLED 4
#define TF_IN_GRACE 8             /* counted in host->ngrace */
#define LUAIO_GRACE_MS 5000       /* default cleanup and exit grace */

/* Can t's pending cancellation be raised now? */
#define luaio__cancel_due(t) ((t)->cancel_level > 0 && !(t)->shielded && \
  ((t)->flags & (TF_ENDING | TF_GRACE_OVER)) != TF_ENDING)

/* The task userdata's one uservalue: the coroutine while live, then the
 * results (one value, or a table of several, or the error). */
enum { UV_CO = 1, UV_RESULT = 1, UV_NSLOTS = 1 };

/* Push field of t's extra table (t's userdata at idx). [-0, +1] */
int luaio__task_getextra(lua_State *L, int idx, const char *field);
/* Set field of t's extra table to the value on top, popping it. [-1, +0] */
void luaio__task_setextra(lua_State *L, int idx, const char *field);

struct luaio_host {
  lua_State *L;
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop, owns_state;
  uv_idle_t idle;               /* keeps poll from blocking while ready */
  uv_check_t check;             /* drains the ready queue each turn */
  luaio_timers timers;          /* deadlines: sleeps, timeouts */
  task_queue ready, next_turn;
  int live_ref;                 /* registry ref: table of live tasks */
  int ntasks;                   /* its length */
  int live_peak;                /* its longest since it was last shrunk */
  int running;                  /* inside the drain */
  int closing;                  /* teardown started */
  int closed;                   /* no Lua may run any more */
  int pending_closes;           /* our handles not yet closed */
  unsigned task_ids;
  int exit_code;                /* from os.exit, or -1 */
  luaio_task *current;          /* the task being resumed */
  uint64_t resumed_at;          /* ns, for the runaway guard */
  luaio_task *main_task;
  luaio_hook *close_hooks;
  void *userdata;
  luaio_config cfg;
  size_t mem_used;
  luaio_slab slab;              /* Lua's small blocks (own state only) */
  int system_malloc;            /* bypass the slab (memory checkers) */
  int limited;                  /* a task runs: enforce cfg.mem_limit */
  uint64_t epoch;               /* uv_now at start: grace ends count from */
  unsigned grace_ms;            /* cleanup and exit grace */
  luaio_deadline grace;         /* armed while a task's grace runs */
  int ngrace;                   /* tasks whose grace holds a cancel */
  int stopping;                 /* luaio_stop: exit grace running */
  int nstuck;                   /* tasks it had to kill */
  uint64_t stop_deadline;       /* uv_hrtime when the exit grace ends */
};

/* state.c */
luaio_host *luaio__host(lua_State *L);   /* raises if none */
luaio_host *luaio__host_attach(lua_State *L, const luaio_config *cfg);

/* sched.c */
void luaio__sched_init(luaio_host *h);
luaio_task *luaio__spawn(lua_State *L, int nargs); /* [-(nargs+1), +1] */
luaio_task *luaio__current(lua_State *L);
void luaio__push_live_tasks(lua_State *L, luaio_host *h); /* [-0, +1] */
void luaio__ready(luaio_task *t);
void luaio__detach(luaio_task *t);

/* A C watcher on a wait list (a task's awaiters, say): notify(w, status)
 * runs when the list is woken. unwatch is safe to call twice. */
void luaio__watch(luaio_waitlist *l, luaio_waiter *w,
                  void (*notify)(luaio_waiter *w, int status), void *data);
void luaio__unwatch(luaio_waiter *w);
void luaio__cancel(luaio_task *t, int level, int errindex, lua_State *L);
int luaio__uncancel(lua_State *L, luaio_task *t, int level);
int luaio__push_pending_cancel(lua_State *L, luaio_task *t);
luaio_task *luaio__check_task(lua_State *L, int idx);
void luaio__push_task(lua_State *L, luaio_task *t);
int luaio__push_results(lua_State *L, int idx, luaio_task *t, int raise);
void luaio__cancel_all(luaio_host *h);
/* Make t raise at its next instruction and every wait, past any pcall:
 * the value on top of L (popped) is the error. [-1, +0] */
void luaio__kill(lua_State *L, luaio_task *t);
int luaio__raise_killed(lua_State *L, luaio_task *t);
/* Convert the value at idx to text, running __tostring protected; a
 * failing __tostring gives a fallback text. [-0, +1] */
const char *luaio__tostring(lua_State *L, int idx);
void luaio__report_unobserved(luaio_host *h);

/* task.c: the luaio.Task metatable */
void luaio__task_metatable(lua_State *L);

/* error.c */
void luaio__error_init(lua_State *L);
int luaio__is_error(lua_State *L, int idx, const char *kind);
void luaio__wrap_error(lua_State *L, lua_State *co, int erridx, int level);
void luaio__report(luaio_host *h, const char *what, lua_State *L, int idx);

/* torture.c: test instrumentation (LUAIO_TORTURE, LUAIO_FAIL_ALLOC). The
 * hooks run only while luaio__torture_on is set. */
extern int luaio__torture_on;
void luaio__torture_init(luaio_host *h);
void luaio__torture_preload(luaio_host *h);
void luaio__torture_suspend(luaio_task *t);
int luaio__torture_alloc_fails(luaio_host *h, void *ptr, size_t osize,
                               size_t nsize);

/* generated at build time from bindings/ and lua/ */
void luaio__preload_all(luaio_host *h);
void luaio__preload_lua(luaio_host *h);

/* class.c: register the metatable `name` once: __index = methods (if
 * any), __gc and __close = close (if any), plus the metamethods in meta
 * (may be NULL). [-0, +0] */
void luaio__class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, const luaL_Reg *meta);

/* bindings */
int luaopen_luaio_core(lua_State *L);
void luaio__flow_register(lua_State *L);
void luaio__sync_register(lua_State *L);
void luaio__testing_register(lua_State *L);   /* testing.c: aio._test */
void luaio__serve_register(lua_State *L); /* serve_lua.c: http.serve */

/* Check an optional non-negative number of seconds at arg; returns
 * milliseconds (rounded up), or -1 if absent and allowed. */
lua_Integer luaio__check_seconds(lua_State *L, int arg, const char *fname);

/* Argument checks whose errors name the function as the README does
 * ('fs.read', not 'luaio.fs.read'):
 *   bad argument #1 to 'fs.read' (string expected, got nil) */
int luaio__argerror(lua_State *L, int arg, const char *fname,
                    const char *msg);
int luaio__typeerror(lua_State *L, int arg, const char *fname,
                     const char *expected);
const char *luaio__checkstring(lua_State *L, int arg, const char *fname,
                               size_t *len);
const char *luaio__optstring(lua_State *L, int arg, const char *fname,
                             const char *def, size_t *len);
lua_Integer luaio__checkinteger(lua_State *L, int arg, const char *fname);
lua_Integer luaio__optinteger(lua_State *L, int arg, const char *fname,
                              lua_Integer def);
void luaio__checktype(lua_State *L, int arg, const char *fname, int type);

#endif
