/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * luaio.h: the only public header of libluaio.
 *
 * A luaio host owns (or borrows) a lua_State and a uv_loop_t and runs Lua
 * functions as tasks: coroutines that suspend on I/O and are resumed by the
 * loop when the I/O completes. Embedders create a host, run scripts as tasks,
 * and expose their own asynchronous C functions with the same waiter API the
 * built-in bindings use (see "Waiting" below). The built-in bindings use
 * this header plus host.h (internal: task and host operations, argument
 * checks); the luaio program (cli/) uses this header only.
 */
#ifndef LUAIO_H
#define LUAIO_H

#include <stddef.h>
#include <lua.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUAIO_VERSION_MAJOR 0
#define LUAIO_VERSION_MINOR 1
#define LUAIO_VERSION_PATCH 0
#define LUAIO_VERSION "0.1.0"
#define LUAIO_VERSION_NUM \
  (LUAIO_VERSION_MAJOR * 10000 + LUAIO_VERSION_MINOR * 100 + \
   LUAIO_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH" (may differ from the
 * header's LUAIO_VERSION when linked against another build). */
const char *luaio_version(void);

/* Result codes of the host functions. */
#define LUAIO_OK 0
#define LUAIO_ERROR 1      /* the task raised; its error is retrievable */
#define LUAIO_CANCELLED 2  /* the task was cancelled */
#define LUAIO_DEADLOCK 3   /* nothing left that could wake the task */

typedef struct luaio_host luaio_host;
typedef struct luaio_task luaio_task;
typedef struct luaio_waiter luaio_waiter;

/* Called once when a task finishes; the task's results or error can be
 * read with luaio_task_push_results during the call. Never call Lua code
 * that may yield from here. */
typedef void (*luaio_done_fn)(luaio_task *t, void *ud);

/* Options for luaio_new; zero-initialise and set what you need. */
typedef struct luaio_config {
  uv_loop_t *loop;    /* run on this loop (borrowed, never run or closed by
                         luaio unless you call luaio_run*); NULL: own one */
  size_t mem_limit;   /* bytes of Lua memory; 0: unlimited */
  unsigned runaway_ms;/* interrupt a task that runs this long without
                         waiting; 0: never */
  int restricted;     /* 1: no os.execute, io.popen, os.exit, loadlib,
                         dofile/loadfile, C modules or binary chunks */
  const char *const *allow; /* restricted: NULL-terminated list of the
                         modules require may load (NULL: all Lua ones) */
  int no_stdlibs;     /* 1: open no standard library (embedder does) */
  int grace_ms;       /* how long a cancelled task's cleanup (<close>
                         handlers) may wait before the cancellation is
                         forced, and how long luaio_stop waits for the
                         tasks it cancels; 0: 5000 */
  int no_dump_signal; /* 1: leave SIGQUIT alone (by default it prints
                         every task and its stack on stderr) */
  int debug;          /* 1: debug mode (also LUAIO_DEBUG=1 in the
                         environment, or luaio_set_debug) */
  const struct luaio_sandbox *sandbox; /* non-NULL: run sandboxed, with
                         only the access it allows (copied by luaio_new) */
  int hard_limits;    /* 1: going over mem_limit ends the script like the
                         caps below, instead of a catchable "not enough
                         memory" */
  unsigned max_time_ms; /* end the script this long after luaio_new; 0:
                         never */
  int max_tasks;      /* a script's spawn past this many live tasks ends
                         the script (luaio_spawn from C is not refused);
                         0: unlimited */
  int raise_fd_limit; /* 1: raise the process's soft limit on open files
                         (RLIMIT_NOFILE) to its hard limit, as the luaio
                         program does (so do Go and Node); processes it
                         starts inherit the raised limit */
} luaio_config;

/* ---- Sandbox -------------------------------------------------------------
 * With luaio_config.sandbox set, a script reaches nothing outside what
 * the lists allow (each NULL-terminated; NULL: nothing), whatever it
 * calls: luaio.fs, io, os, require, luaio.http, luaio.net, luaio.proc.
 * Paths are resolved (symlinks, "..", relative to the working folder)
 * before they are compared, the allowed ones once in luaio_new. A
 * refused access raises an error of kind "permission" whose message
 * names the CLI flag that would allow it:
 *   permission denied: read '/etc/passwd' (run with --allow-read=/etc/passwd)
 * The sandbox also forces text chunks (load, loadfile, dofile, the
 * script itself), removes the debug library, C modules, package.loadlib
 * and the unsafe collectgarbage options, and hides the string
 * metatable. README "Sandbox" has the threat model. */
typedef struct luaio_sandbox {
  const char *const *read;  /* files or folders (and all below) to read */
  const char *const *write; /* ... to write, create, remove, rename */
  const char *const *net;   /* "host", "host:port", "[::1]:port": connect,
                               serve, send to; "localhost" also allows
                               loopback addresses; a name allows only
                               public addresses (not loopback, private,
                               link-local), an IP address exactly itself */
  const char *const *run;   /* program names ("git") or paths */
  const char *const *env;   /* variable names os.getenv may read */
  int env_all;              /* 1: every variable */
} luaio_sandbox;

/* The first malformed net entry of sb (a bad port, say), or NULL: for a
 * usage error before luaio_new, which returns NULL for such a sandbox. */
const char *luaio_sandbox_invalid(const luaio_sandbox *sb);

/* Exit status of the luaio program when a cap (max-memory, max-time,
 * max-tasks) ended the script. */
#define LUAIO_EXIT_LIMIT 3

/* Which cap ended the script ("max-memory", "max-time", "max-tasks"),
 * or NULL. Once one is hit every task is killed with an error of kind
 * "cap" that pcall cannot catch. */
const char *luaio_limit_hit(luaio_host *h);

/* ---- Host lifecycle ---------------------------------------------------- */

/* Create a host with a fresh lua_State (standard libraries and all luaio
 * modules preloaded). cfg may be NULL. Returns NULL on allocation failure
 * (then run a borrowed loop once more, as after luaio_close). */
luaio_host *luaio_new(const luaio_config *cfg);

/* Cancel every live task and run the loop until they have finished, at
 * most for the grace (luaio_config.grace_ms, default 5 s). Tasks still
 * running then (a task that swallows its cancellation, a long shielded
 * wait) are listed on stderr with their stacks and killed. Returns how
 * many had to be killed (the CLI then exits with status 70). */
int luaio_stop(luaio_host *h);

/* Turn debug mode on or off (README, aio.debug): warnings on stderr
 * about slow tasks, unawaited failures, tasks pending at exit and
 * resources collected unclosed. */
void luaio_set_debug(luaio_host *h, int on);

/* Change the grace of luaio_config.grace_ms after luaio_new. */
void luaio_set_grace(luaio_host *h, int grace_ms);

/* Interrupt the Lua code running now, if any: it raises a "cancelled"
 * error ("interrupted") at its next instruction, even in a loop that
 * never waits. Safe to call from a signal handler (it only sets a hook);
 * cancel the tasks you mean to stop from the loop as usual. */
void luaio_interrupt(luaio_host *h);

/* luaio_interrupt, but only if the task running now is t: stops one
 * task's loop without touching the others (a REPL entry versus the
 * background tasks). Safe to call from a signal handler. */
void luaio_interrupt_task(luaio_host *h, luaio_task *t);

/* luaio_stop, report the errors nobody awaited, close the lua_State
 * (when luaio created it) and every handle luaio opened, and free the
 * host. On luaio's own loop the loop runs until the close callbacks have
 * fired and is then closed. A borrowed loop (luaio_config.loop) is not
 * run nor closed: run it once more afterwards so the close callbacks
 * fire; the last one frees the host. */
void luaio_close(luaio_host *h);

lua_State *luaio_state(luaio_host *h);
uv_loop_t *luaio_loop(luaio_host *h);

/* The host a lua_State (or any of its threads) belongs to, or NULL. */
luaio_host *luaio_host_of(lua_State *L);

/* Set/get an application pointer for the host (for the embedder's own
 * bindings; luaio never touches it). */
void luaio_set_userdata(luaio_host *h, void *ud);
void *luaio_get_userdata(luaio_host *h);

/* Exit status requested by os.exit in a script, or -1 if none. */
int luaio_exit_code(luaio_host *h);

/* ---- Tasks ------------------------------------------------------------- */

/* Spawn a task from C: pops a function and nargs arguments pushed above it
 * (lua_call order) from L, which must be the host's main state. The task
 * starts on the next loop turn. The returned task stays valid until
 * luaio_task_release. */
luaio_task *luaio_spawn(lua_State *L, int nargs);

/* Load a chunk (file or string) and spawn it as a task with the given
 * arguments (strings). Returns NULL and pushes the load error message if
 * the chunk does not compile. [-0, +0|1] */
luaio_task *luaio_spawn_file(luaio_host *h, const char *path, int argc,
                             char **argv);
luaio_task *luaio_spawn_string(luaio_host *h, const char *code,
                               const char *chunkname);

/* Call fn(t, ud) when t finishes (replaces any previous callback). */
void luaio_task_on_done(luaio_task *t, luaio_done_fn fn, void *ud);

int luaio_task_done(luaio_task *t);
/* LUAIO_OK, LUAIO_ERROR or LUAIO_CANCELLED once done; -1 before. */
int luaio_task_status(luaio_task *t);

/* Push the results of a finished task and return their count; for a
 * failed task push its error value and return -1. [-0, +n] */
int luaio_task_push_results(lua_State *L, luaio_task *t);

/* Error text with traceback of a failed task (valid until release). */
const char *luaio_task_error(luaio_task *t);

/* Request cancellation of a task. */
void luaio_task_cancel(luaio_task *t);

/* Drop the C reference returned by luaio_spawn*. Marks the error (if any)
 * as observed. */
void luaio_task_release(luaio_task *t);

/* Run the host's loop until t is done. Returns the task status, or
 * LUAIO_DEADLOCK if the loop ran out of work first. */
int luaio_run_until(luaio_host *h, luaio_task *t);

/* Run the loop until no task or handle is left. */
int luaio_run(luaio_host *h);

/* ---- Waiting: the one suspend/resume mechanism ---------------------------
 *
 * An async C function follows four steps:
 *   1. check its arguments (luaio_check_seconds for a timeout) and
 *      luaio_check_wait(L, "mod.fn");
 *   2. start the operation with a luaio_waiter inside its op struct,
 *      initialised by luaio_waiter_init(&op->w, abort_fn);
 *   3. return luaio_wait(L, &op->w, fn_k, (lua_KContext)op);
 *   4. in the completion callback call luaio_waiter_done(&op->w, status):
 *      it returns 1 when the completion was delivered (fn_k then finishes
 *      the call on the task's stack and frees op), 0 when the waiter was
 *      no longer waiting (detached by a cancellation) and the callback
 *      must free op itself.
 * On cancellation the scheduler calls abort_fn(w). If the operation
 * completes inside abort (luaio_waiter_done with UV_ECANCELED), fn_k runs
 * and its luaio_raise_uv(L, UV_ECANCELED, ...) raises the cancellation; if
 * it is still in flight, the waiter is detached and the task raises the
 * cancellation at once. A wait that has already completed delivers its
 * result; the cancellation is then raised at the task's next wait.
 */

typedef void (*luaio_abort_fn)(luaio_waiter *w);

/* A FIFO of waiters (queues, locks, events, task awaiters). */
typedef struct luaio_waitlist {
  luaio_waiter *head, *tail;
} luaio_waitlist;

struct luaio_waiter {
  luaio_task *task;          /* the waiting task; NULL when none */
  luaio_abort_fn abort;      /* stops the operation on cancellation */
  lua_KFunction k;           /* the binding's continuation */
  lua_KContext ctx;
  /* If set, luaio_waiter_done calls notify instead of waking a task: a
   * C-level watcher (gather, wait) on a task's or a list's wake-up. */
  void (*notify)(luaio_waiter *w, int status);
  void *data;                /* free for the owner of the waiter */
  int status;                /* 0 or a negative uv error code */
  unsigned char state;       /* private to the scheduler */
  unsigned char must_finish; /* set to 1 by the binding: see below */
  luaio_waitlist *list;      /* the list the waiter is on, if any */
  luaio_waiter *prev, *next; /* links for that list */
};

void luaio_waiter_init(luaio_waiter *w, luaio_abort_fn abort);

/* An operation with effects (a write, a rename, a send) that libuv may no
 * longer be able to stop sets w->must_finish = 1 after luaio_waiter_init.
 * Cancelling the task then still calls abort, but the task stays suspended
 * until the operation completes: k runs with the real status (finishing
 * and freeing the op) and the cancellation is raised after it. So when a
 * cancelled task is done, nothing it started can still change anything.
 * Operations that read into memory they own may also set it, to keep
 * their buffers alive without a detached-completion path. */

/* Raise a clear error unless L is a luaio task that can yield here;
 * fname names the calling function in the message, and what the task
 * then waits on (aio.tasks, aio.dump, timeout errors): it must stay
 * valid while the task waits (a string literal). */
void luaio_check_wait(lua_State *L, const char *fname);

/* Suspend the running task until luaio_waiter_done(w). Never returns
 * normally: k(L, status, ctx) finishes the call on the task's stack, with
 * status the value given to luaio_waiter_done (0 or a negative uv error;
 * UV_ECANCELED when aborted by a cancellation). */
int luaio_wait(lua_State *L, luaio_waiter *w, lua_KFunction k,
               lua_KContext ctx);

/* Complete a wait from a callback. Touches no Lua. Returns 1 if the
 * completion was delivered: the task will be resumed (or, for a C
 * watcher, its notify ran). Returns 0 if the waiter was not waiting:
 * detached by a cancellation (the caller frees its op), or already
 * completed (a second completion is ignored). */
int luaio_waiter_done(luaio_waiter *w, int status);

/* Check an optional duration in seconds at arg (a number >= 0; nil or
 * none allowed) and return it in milliseconds, rounded up; -1 when
 * absent; LUA_MAXINTEGER for more than 1e12 s ("forever"). Errors name
 * fname: bad argument #2 to 'app.fetch' (number of seconds expected,
 * got string). For the timeouts of an application's async functions. */
lua_Integer luaio_check_seconds(lua_State *L, int arg, const char *fname);

/* Yield the running task for one loop turn (aio.sleep(0)); k(L, 0, ctx)
 * continues, unless a cancellation arrived meanwhile (then it is raised). */
int luaio_yield_turn(lua_State *L, lua_KFunction k, lua_KContext ctx);

void luaio_waitlist_push(luaio_waitlist *l, luaio_waiter *w);
void luaio_waitlist_remove(luaio_waitlist *l, luaio_waiter *w);
luaio_waiter *luaio_waitlist_pop(luaio_waitlist *l);

/* Wait on a list: pushes a new waiter (a userdata kept on L's stack while
 * suspended, so it needs no freeing) onto l and suspends. Wake it with
 * luaio_waitlist_wake; cancellation removes it from the list and k gets
 * UV_ECANCELED. In k the waiter userdata is on the top of the stack.
 * [-0, +1] */
int luaio_waitlist_wait(lua_State *L, luaio_waitlist *l, lua_KFunction k,
                        lua_KContext ctx);

/* Wake the first waiter of l with status; returns 0 if l was empty. */
int luaio_waitlist_wake(luaio_waitlist *l, int status);

/* Wake every waiter of l with status; returns how many. */
int luaio_waitlist_wake_all(luaio_waitlist *l, int status);

/* ---- Errors -------------------------------------------------------------
 * Errors are luaio.Error tables: kind ("io", "timeout", "cancelled",
 * "error", ...), code (errno name such as "ENOENT"), message, op, and the
 * target (path, url or address). tostring gives
 *   open 'data/x.txt': ENOENT (no such file or directory)
 */

/* Push a new error with the given kind, code (may be NULL) and message.
 * [-0, +1] */
void luaio_push_error(lua_State *L, const char *kind, const char *code,
                      const char *message);

/* Push an I/O error for a negative uv status: op names the operation,
 * field ("path", "url", "address" or NULL) names the target. [-0, +1] */
void luaio_push_uv_error(lua_State *L, int status, const char *op,
                         const char *field, const char *target);

/* Raise luaio_push_uv_error's error; UV_ECANCELED raises the running
 * task's pending cancellation (or timeout) instead. */
int luaio_raise_uv(lua_State *L, int status, const char *op,
                   const char *field, const char *target);

/* Raise the value at the top of the stack, adding position information
 * when it is a luaio.Error without one. */
int luaio_raise(lua_State *L);

/* ---- Modules ------------------------------------------------------------ */

/* Make `require(name)` call open in this host (package.preload). */
void luaio_preload(luaio_host *h, const char *name, lua_CFunction open);

/* Run fn(ud) when the host closes, before the lua_State is closed; used
 * by bindings to close their own handles. */
void luaio_on_close(luaio_host *h, void (*fn)(void *ud), void *ud);

int luaopen_luaio(lua_State *L);

/* ---- Testing your bindings under allocation failure ---------------------
 * Process-wide, for test programs only: make the n-th growing Lua
 * allocation from now fail (counted from luaio_new and while a task
 * runs, where luaio promises a clean "not enough memory"); 0 fails none.
 * luaio_torture_alloc_count gives the count so far. */
void luaio_torture_fail_alloc(long n);
long luaio_torture_alloc_count(void);

/* ---- Futures ------------------------------------------------------------
 * A future (luaio.Future, aio.future() in Lua) is a result that comes
 * later: completed once, with values (set) or an error (fail), and
 * awaited by any number of tasks (f:await()). C code completes one from
 * any callback on the loop's thread (a uv callback, a library's
 * completion) and the tasks awaiting it resume. L is the host's main
 * state or one of its threads.
 *
 * A handle (luaio_future *) pins the Lua object until it is released, so
 * a callback can complete a future that Lua code has dropped meanwhile.
 * Every handle from luaio_future_new or luaio_future_ref is released
 * once with luaio_future_release; a released handle may no longer be
 * used (the future itself lives on while Lua holds it). */
typedef struct luaio_future luaio_future;

/* Push a new pending future and return a handle to it. [-0, +1] */
luaio_future *luaio_future_new(lua_State *L);

/* A handle to the future at idx (one Lua passed to C), or NULL if the
 * value there is not a future. [-0, +0] */
luaio_future *luaio_future_ref(lua_State *L, int idx);

/* Drop a handle. */
void luaio_future_release(lua_State *L, luaio_future *f);

/* Complete f with the n values on the top of L (popped): every task
 * awaiting it resumes with them. Returns LUAIO_OK, or LUAIO_ERROR if f
 * was already done (the values are popped all the same). [-n, +0] */
int luaio_future_set(lua_State *L, luaio_future *f, int n);

/* Complete f with the error value on the top of L (popped): every
 * await raises it. Returns as luaio_future_set. [-1, +0] */
int luaio_future_fail(lua_State *L, luaio_future *f);

/* 1 once f is set or failed, else 0. */
int luaio_future_done(luaio_future *f);

/* Push the future of a handle. [-0, +1] */
void luaio_future_push(lua_State *L, luaio_future *f);

/* The future at idx without taking a handle (valid while it is there),
 * or NULL. */
luaio_future *luaio_tofuture(lua_State *L, int idx);
/* ---- Work on the thread pool -------------------------------------------
 * luaio_work runs work(ud) on a libuv worker thread while the calling
 * task waits, then done(L, status, ud) on the task's stack: it frees
 * ud, pushes the results and returns their count (or raises). status is
 * 0 when work ran, UV_ECANCELED when the task was cancelled before work
 * started (work never ran), or a uv error if it could not be queued.
 * Cancelling the task while work runs calls stop(ud) (may be NULL) on
 * the loop thread to ask work to return early; the task stays suspended
 * until work has returned and done has run (so ud is never freed under
 * a running thread), then the cancellation is raised. L is NULL only if
 * the host closed under the wait: then done only frees ud. Check
 * luaio_check_wait's conditions first: luaio_work raises outside a
 * task (ud is then still the caller's). */
typedef void (*luaio_work_fn)(void *ud);
typedef int (*luaio_work_done_fn)(lua_State *L, int status, void *ud);
typedef void (*luaio_work_stop_fn)(void *ud);
int luaio_work(lua_State *L, luaio_work_fn work, luaio_work_done_fn done,
               luaio_work_stop_fn stop, void *ud);

/* ---- Serving HTTP from C -------------------------------------------------
 * luaio_serve_c starts http.serve (README "Serving HTTP") with a C
 * handler: each request runs in its own task, which reads the whole
 * body (bounded by max_body: a larger one gets a 413 without a call)
 * and then calls fn(ud, req, res) on the loop thread. fn fills res and
 * returns 0, or returns non-zero for a 500 (logged on stderr). Every
 * pointer in req is valid during the call only; res->body is copied
 * when fn returns. req->L and req->idx reach the Lua request object
 * for anything else (req.headers, req.query, req.remote); fn must not
 * yield. */
typedef struct luaio_http_request {
  lua_State *L;            /* the request's task */
  int idx;                 /* the Lua request object on L */
  const char *method;      /* "GET" */
  const char *url;         /* as sent: "/items/1?full=1" */
  const char *path;        /* "/items/1" (not decoded) */
  const char *body;        /* the whole body, may contain NUL */
  size_t body_len;
} luaio_http_request;

typedef struct luaio_http_response {  /* zero-initialised for fn */
  int status;              /* 0: 200 */
  const char *content_type;  /* NULL: "text/plain" */
  const char *body;        /* NULL: empty */
  size_t body_len;
} luaio_http_response;

typedef int (*luaio_http_handler)(void *ud, const luaio_http_request *req,
                                  luaio_http_response *res);

/* Start a server whose requests go to fn(ud, ...). opts is the index of
 * a table of http.serve options (host, port, limits; its handler is
 * ignored), or 0 for the defaults. Pushes the server (its "port" field,
 * its close method) and returns LUAIO_OK, or pushes an error and
 * returns LUAIO_ERROR. Call it outside a running task or from one; L is
 * the host's state. Close the server (srv:close(), or luaio_close) to
 * stop it. [-0, +1] */
int luaio_serve_c(lua_State *L, int opts, luaio_http_handler fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
