/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * private.h: the scheduler's data, seen by host/ only.
 *
 * The task and host structs, the timer heap, the ready queues and the
 * task states are defined here and nowhere else. Bindings include
 * host.h, where these types are opaque: they act on tasks and the host
 * through the named operations declared there, so the scheduler can
 * change its fields without touching a binding. The build defines
 * LUAIO_HOST_PRIVATE for the files of host/ only (CMakeLists.txt), so
 * a binding that includes this header does not compile.
 */
#ifndef LUAIO_PRIVATE_H
#define LUAIO_PRIVATE_H

#ifndef LUAIO_HOST_PRIVATE
#error "private.h is for host/ only: bindings use the operations of host.h"
#endif

#include "host.h"

/* Registry keys (addresses of these are the keys). */
extern const char luaio__host_key;
extern const char luaio__unobserved_key;
extern const char luaio__extra_key;      /* task -> its extra fields */

/* The extra space of every thread of a host names the task it runs
 * (NULL: not a task). */
#define task_of(L) (*(luaio_task **)lua_getextraspace(L))

enum { T_NEW, T_READY, T_RUNNING, T_WAITING, T_DONE };
enum { W_IDLE, W_PENDING, W_DONE, W_DETACHED };

/* The exit's cancellation, stronger than a task cancel. */
#define LUAIO_CANCEL_EXIT 2000000

typedef struct luaio_hook {
  void (*fn)(void *ud);
  void *ud;
  struct luaio_hook *next;
} luaio_hook;

/* alloc.c: size-class free lists for small Lua blocks. */
#define LUAIO_SLAB_STEP 8
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
/* The lua_Alloc of a state the host owns; ud is the host. */
void *luaio__host_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void luaio__slab_free_all(luaio_slab *s);
/* Return empty chunks to the system after a burst; used is the bytes in
 * use. Cheap unless it trims. */
void luaio__slab_maybe_trim(luaio_slab *s, size_t used);

/* timer.c: the heap of deadlines on one uv timer. */
typedef struct luaio_timers {
  uv_timer_t timer;
  luaio_deadline **heap;
  size_t n, cap;
  uint64_t seq;
} luaio_timers;
void luaio__timers_init(luaio_timers *tm, uv_loop_t *loop);
void luaio__timers_close(luaio_timers *tm, void *data, uv_close_cb cb);

typedef struct task_queue {
  luaio_task *head, *tail;
} task_queue;

/* What only C embedders and diagnostics use, allocated on first use. */
typedef struct luaio_task_ext {
  luaio_done_fn on_done;
  void *on_done_ud;
  char *wait_detail;            /* luaio__wait_detail, while it waits */
} luaio_task_ext;

/* Kept small: a task costs this plus its coroutine (about 1 KB), and
 * programs run 100,000 of them. The userdata is this plus 56 bytes of
 * Lua's header (one uservalue), in the allocator's 16-byte steps. */
struct luaio_task {
  luaio_host *host;
  lua_State *co;                /* the coroutine; NULL once done */
  luaio_task *next;             /* ready / next-turn queue link */
  luaio_waiter *waiter;         /* the wait the task is suspended in */
  luaio_waitlist awaiters;      /* tasks awaiting this one */
  luaio_task_ext *ext;
  union {                       /* one word: never needed together */
    lua_KFunction turn_k;       /* luaio_yield_turn continuation, read as
                                   the turn ends */
    const char *wait_op;        /* the last luaio_check_wait's name: what
                                   it waits on while T_WAITING */
  } w;
  int ref;                      /* live: slot in the live table; done and
                                   pinned by C: registry ref */
  union {
    int n;                      /* arguments before start, results after */
    unsigned grace_end;         /* while ending: end of the cleanup grace,
                                   ms after the host's epoch */
  } u;
  int cancel_level;             /* strength of the pending cancellation */
  unsigned id;
  unsigned born;                /* spawned at, ms after the host's epoch */
  /* Bits: with them the record is 88 bytes and the userdata 144, not
   * 160 (16 bytes a task: W2's 100,000 sleepers, 1.5 MiB). */
  unsigned char state : 3;      /* T_* */
  unsigned char outcome : 2;    /* LUAIO_OK / LUAIO_ERROR / LUAIO_CANCELLED */
  unsigned char observed : 1;   /* someone saw the error */
  unsigned char pinned : 1;     /* C holds a reference (luaio_spawn) */
  unsigned char in_live : 1;    /* anchored in the live table */
  unsigned char shielded;       /* inside aio.shielded: defer cancels */
  unsigned char depth;          /* nesting of timeout scopes */
  unsigned char flags;          /* TF_* below */
};
_Static_assert(sizeof(struct luaio_task) <= 88, "a task fits 144 bytes");

/* Task flags. A task is ENDING once an error (a cancellation included)
 * is about to unwind its body: its <close> handlers then run, and may
 * await, during the cleanup grace; a cancellation that arrives (or is
 * still pending) then is delivered only when the grace is OVER. A KILLED
 * task raises at every instruction and every wait: nothing can catch it. */
#define TF_ENDING 1
#define TF_GRACE_OVER 2
#define TF_KILLED 4
#define TF_IN_GRACE 8             /* counted in host->ngrace */
#define TF_DETAIL 16              /* ext->wait_detail is set */
#define TF_WATCHED 32             /* has its watch (task.c) */
#define LUAIO_GRACE_MS 5000       /* default cleanup and exit grace */

/* Can t's pending cancellation be raised now? */
#define luaio__cancel_due(t) ((t)->cancel_level > 0 && !(t)->shielded && \
  ((t)->flags & (TF_ENDING | TF_GRACE_OVER)) != TF_ENDING)

/* The task userdata's one uservalue: the coroutine while live, then the
 * results (one value, or a table of several, or the error). */
enum { LUAIO_TASK_CO = 1, LUAIO_TASK_RESULT = 1, LUAIO_TASK_NSLOTS = 1 };

/* Give the task userdata at idx its watch, a finalizer that reports an
 * error nobody saw and frees the C extras when the task is collected;
 * once per task. Never raises: 0 when out of memory. [-0, +0] */
int luaio__task_watch(lua_State *L, int idx);
/* t's C-only fields, allocated on first use (t's watch frees them);
 * NULL if out of memory. */
luaio_task_ext *luaio__task_ext(lua_State *L, luaio_task *t);

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
  int task_mt_ref;              /* registry ref: the Task metatable, and */
  const void *task_mt;          /* its address (fast type checks) */
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
  uv_signal_t dump_signal;      /* SIGQUIT: aio.dump to stderr */
  int debug;                    /* debug mode (debug_mode.c) */
  unsigned slow_ms;             /* debug: warn past this without yield */
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
  int stop_fewest;              /* fewest tasks left since it started */
  uint64_t stop_deadline;       /* uv_hrtime when the exit grace ends */
  struct luaio_perm *perm;      /* the sandbox's allow-lists, or NULL */
  const char *limit;            /* the cap that ended the script, or NULL */
  uint64_t time_end;            /* uv_hrtime of cfg.max_time_ms, or 0 */
  uv_timer_t *limit_timer;      /* max_time while every task waits */
};

/* sched.c */
void luaio__sched_init(luaio_host *h);
void luaio__ready(luaio_task *t);
void luaio__detach(luaio_task *t);
/* Make t raise at its next instruction and every wait, past any pcall:
 * the value on top of L (popped) is the error. [-1, +0] */
void luaio__kill(lua_State *L, luaio_task *t);
int luaio__raise_killed(lua_State *L, luaio_task *t);
/* cancel.c: the count hook of the runaway and exit guards; the cleanup
 * grace of an ending task (armed when a cancellation waits for it, left
 * when the task finishes). */
void luaio__guard_hook(lua_State *L, lua_Debug *ar);
void luaio__arm_grace(luaio_host *h, luaio_task *t);
void luaio__leave_grace(luaio_host *h, luaio_task *t);
/* A task finished during luaio_stop: the exit grace may start again. */
void luaio__stop_progress(luaio_host *h);
void luaio__report_unobserved(luaio_host *h);
/* Drop the pending cancellation of strength level; 1 if it was pending. */
int luaio__uncancel(lua_State *L, luaio_task *t, int level);

/* debug.c: free the detail of t's last wait (TF_DETAIL). */
void luaio__drop_wait_detail(luaio_task *t);
/* Push t's state: "running", "ready", "waiting" or "done". [-0, +1] */
void luaio__push_task_state(lua_State *L, luaio_task *t);
/* t:info() (task.c lists it among the methods). */
int luaio__task_info(lua_State *L);
/* The SIGQUIT handle, with the scheduler's handles (sched.c). */
void luaio__dump_signal_init(luaio_host *h);

/* debug_mode.c: the hooks of debug mode, each called only when
 * h->debug is set. A resume is timed between before and after. */
typedef struct luaio_ran {
  uint64_t t0;
  char from[160];               /* where it resumed */
} luaio_ran;
void luaio__debug_init(luaio_host *h);
void luaio__debug_before(luaio_host *h, luaio_task *t, luaio_ran *r);
void luaio__debug_after(luaio_host *h, luaio_task *t, luaio_ran *r,
                        int yielded);
/* t's userdata on L's top. */
void luaio__debug_spawned(lua_State *L, luaio_task *t);
void luaio__debug_unawaited(lua_State *L, luaio_task *t);
void luaio__debug_pending(luaio_host *h);

/* task.c: the luaio.Task metatable */
void luaio__task_metatable(lua_State *L);

/* error.c */
void luaio__error_init(lua_State *L);
void luaio__wrap_error(lua_State *L, lua_State *co, int erridx, int level);
/* Print the error at idx with its traceback on stderr: "luaio: what:". */
void luaio__report(luaio_host *h, const char *what, lua_State *L, int idx);

/* torture.c: test instrumentation (LUAIO_TORTURE, LUAIO_FAIL_ALLOC). The
 * hooks run only while luaio__torture_on is set. */
extern int luaio__torture_on;
void luaio__torture_init(luaio_host *h);
void luaio__torture_preload(luaio_host *h);
void luaio__torture_suspend(luaio_task *t);
int luaio__torture_alloc_fails(luaio_host *h, void *ptr, size_t osize,
                               size_t nsize);

/* perm.c, perm_lib.c: the sandbox. perm_new copies and resolves the
 * allow-lists (0, or -1 out of memory); perm_stdlib replaces what the
 * standard library would let a script reach unchecked. */
int luaio__perm_new(luaio_host *h, const luaio_sandbox *sb);
void luaio__perm_free(luaio_host *h);
void luaio__perm_stdlib(lua_State *L);
/* perm_curl.c's questions, without Lua: may host (by name) be reached
 * on port? may the address ip (text) on port? 1 if so. The last address
 * refused, as "ip:port", into buf. */
int luaio__perm_name(luaio_host *h, const char *host, int port);
int luaio__perm_ip(luaio_host *h, const char *ip, int port);
void luaio__perm_last_addr(luaio_host *h, char *buf, size_t size);
/* Does the sandbox allow access to path (already resolved)? */
int luaio__perm_allows(lua_State *L, const char *path, int access);
/* The error for a connection refused at its address (a DNS result):
 * luaio_push_uv_error with LUAIO_EDENIED. [-0, +1] */
void luaio__perm_push_addr_error(lua_State *L, const char *target);
/* ... and for a file a job found outside after opening it. [-0, +1] */
void luaio__perm_push_path_error(lua_State *L, const char *path);

/* limits.c: the caps. limits_start arms max_time; limit_hit records a
 * cap from where no Lua may run (the allocator) and kills every task as
 * soon as it can; limit_raise kills every task now and raises the limit
 * error in L (a task, or a plain coroutine inside one). With caps set,
 * every task and the coroutines it makes have the guard hook, which
 * calls limit_check: a cap already hit, or max_time passed, raises. */
void luaio__limits_start(luaio_host *h);
void luaio__limit_hit(luaio_host *h, const char *which);
int luaio__limit_raise(lua_State *L, const char *which);
void luaio__limit_check(lua_State *L, luaio_host *h);
/* A spawn past max_tasks or after a cap: raises, except on the main
 * thread (luaio_spawn from C, where nothing would catch it). */
void luaio__limit_spawn(lua_State *L, luaio_host *h);

/* generated at build time from the module list and lua/ */
void luaio__preload_all(luaio_host *h);
void luaio__preload_lua(luaio_host *h);

#endif
