/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * host.h: the host's operations for bindings; embedders do not see it.
 *
 * The one internal header a binding includes (with luaio.h, which it
 * pulls in). luaio_host and luaio_task are opaque here: their fields,
 * the task states and the timer heap are in private.h, which only
 * host/ may include. A binding asks and acts through the operations
 * below, so the rules they carry (when a cancellation is due, what
 * "observed" means, how deadlines share one timer) live in one place.
 * spec/layout_spec.lua checks that bindings keep to this.
 */
#ifndef LUAIO_HOST_H
#define LUAIO_HOST_H

#include "luaio.h"
#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The struct of type that holds member at ptr: how an op finds itself
 * from its waiter, deadline, or libuv handle or request. A handle's
 * data pointer is left for a callback shared by handles of several
 * owners or members (one close callback for all of an op's handles). */
#define LUAIO_CONTAINER(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Cancellation strength: a stronger pending cancellation is never
 * replaced by a weaker one. A task cancel is this; timeout scopes are
 * weaker, the outermost strongest (scope.c). */
#define LUAIO_CANCEL_TASK 1000000

/* ---- the host (state.c, alloc.c) -------------------------------------- */

luaio_host *luaio__host(lua_State *L);   /* raises if none */
/* Whether the host runs in restricted mode (luaio_config.restricted). */
int luaio__is_restricted(luaio_host *h);
/* For small structs freed before the host closes (not in a uv close
 * callback that may run after it): same size to free. */
void *luaio__op_alloc(luaio_host *h, size_t size);
void luaio__op_free(luaio_host *h, void *p, size_t size);

/* ---- deadlines (timer.c): one uv timer per host ------------------------ */

typedef struct luaio_deadline {
  uint64_t due;
  uint32_t seq;                 /* order among equal deadlines */
  uint32_t slot;                /* index in the heap while armed */
  void (*cb)(struct luaio_deadline *d);
} luaio_deadline;
/* Arm d to call cb in ms; returns 0 when out of memory (d not armed). */
int luaio__deadline_start(luaio_host *h, luaio_deadline *d, uint64_t ms,
                          void (*cb)(luaio_deadline *d));
/* Disarm d; nothing if it is not armed. */
void luaio__deadline_stop(luaio_host *h, luaio_deadline *d);

/* ---- tasks (sched.c, task.c) ------------------------------------------- */

/* Spawn the function below nargs arguments as a task; fname names the
 * caller in errors. [-(nargs+1), +1] */
luaio_task *luaio__spawn(lua_State *L, int nargs, const char *fname);
/* The task L runs, or NULL (the main thread, a plain coroutine). */
luaio_task *luaio__current(lua_State *L);
luaio_task *luaio__check_task(lua_State *L, int idx);
/* The task at idx, or NULL if the value is not a task. */
luaio_task *luaio__test_task(lua_State *L, int idx);
void luaio__push_task(lua_State *L, luaio_task *t);        /* [-0, +1] */
void luaio__push_live_tasks(lua_State *L, luaio_host *h);  /* [-0, +1] */
/* Push the results of done task t (its userdata at idx) and return their
 * count; a failed task's error is raised if raise, else pushed (-1). */
int luaio__push_results(lua_State *L, int idx, luaio_task *t, int raise);
/* Whether t is done and how it ended: luaio_task_done, luaio_task_status
 * (luaio.h). */
luaio_host *luaio__task_host(luaio_task *t);
/* The list a task's awaiters wait on: woken when it finishes. */
luaio_waitlist *luaio__task_awaiters(luaio_task *t);
/* Report t's error on stderr if it failed (not cancelled) and nobody
 * saw the error; it counts as seen then. what says whose it was. */
void luaio__task_report_error(luaio_task *t, const char *what);
/* aio.run: run the function below the nargs arguments on L's top as a
 * task, driving the loop until it is done; cancel what it left behind;
 * return its results pushed (its error raised). fname names the caller
 * in errors. Not from inside a task. */
int luaio__run_task(lua_State *L, int nargs, const char *fname);

/* ---- cancellation (sched.c, task.c) ------------------------------------ */

/* Request cancellation of t at the given strength; the value at errindex
 * of L (0: none) is the error to raise. */
void luaio__cancel(luaio_task *t, int level, int errindex, lua_State *L);
/* Has a cancellation been requested (and not dropped)? Shielded or
 * not: a binding that settles children asks this after each wake. */
int luaio__cancel_pending(luaio_task *t);
/* Push a fresh copy of t's pending cancellation error. [-0, +1] */
int luaio__push_pending_cancel(lua_State *L, luaio_task *t);
/* Hold t's cancellations back until the matching unshield (nests);
 * unshield returns how many shields are left. */
void luaio__task_shield(luaio_task *t);
int luaio__task_unshield(luaio_task *t);

/* ---- waiting (wait.c) -------------------------------------------------- */

/* luaio_wait for a task that settles after a cancellation (children it
 * cancelled must finish before it raises): suspends even though a
 * cancellation is pending, which luaio_check_wait would raise. The
 * caller raises the cancellation once settled. */
int luaio__wait_settle(lua_State *L, luaio_waiter *w, lua_KFunction k,
                       lua_KContext ctx);
/* A C watcher on a wait list (a task's awaiters, say): notify(w, status)
 * runs when the list is woken. unwatch is safe to call twice. */
void luaio__watch(luaio_waitlist *l, luaio_waiter *w,
                  void (*notify)(luaio_waiter *w, int status), void *data);
void luaio__unwatch(luaio_waiter *w);

/* What the wait about to start is on, beyond the name given to
 * luaio_check_wait: a path, "GET <url>", an address. Call after
 * luaio_check_wait; aio.tasks, aio.dump and timeout errors show it
 * while the task waits, and it is dropped when the wait ends. Only for
 * waits on I/O (it costs a malloc): diagnostics, so out of memory just
 * keeps nothing. (debug.c) */
void luaio__wait_detail(lua_State *L, const char *fmt, ...);
/* Write what waiting t waits on ("fs.read data/x.txt") into buf; 0 when
 * t is not waiting on a named operation. */
int luaio__wait_describe(luaio_task *t, char *buf, size_t size);
/* Push the text of aio.dump: every live task, its state and its stack.
 * [-0, +1] */
void luaio__push_dump(lua_State *L);

/* ---- debug mode (debug_mode.c) ----------------------------------------
 * A binding that hands Lua a resource to close (a file, a stream) calls
 * open when it creates it and closed when the user closes it; the
 * class's __gc (class.c; a __gc of its own calls resource_gc first)
 * then reports one collected unclosed, with where it was opened. Nothing is recorded outside debug mode. */
void luaio__resource_open(lua_State *L, int idx);
void luaio__resource_closed(lua_State *L, int idx);
/* what names it in the report (NULL: its class). */
void luaio__resource_gc(lua_State *L, int idx, const char *what);
/* aio.debug([on [, {slow = seconds}]]) -> on */
int luaio__debug_lua(lua_State *L);

/* ---- timeout scopes (scope.c) ------------------------------------------ */

/* A scope cancels its task at its own strength when due; scopes nest,
 * an outer expiry passing through inner scopes untouched. */
typedef struct luaio_scope {
  luaio_deadline d;
  luaio_task *task;
  int level, armed;
  char in[128];                 /* what the task waited on when the scope
                                   expired, for the timeout error; "" */
} luaio_scope;
/* Enter a scope of ms on t (LUAIO_SCOPE_NO_DEADLINE: due only when
 * cancelled with luaio__scope_cancel); 0 when out of memory (nothing
 * entered). */
#define LUAIO_SCOPE_NO_DEADLINE UINT64_MAX
int luaio__scope_enter(luaio_scope *sc, luaio_task *t, uint64_t ms);
/* Cancel the scope's task now, at the scope's strength (a task group
 * interrupts its body this way when a child fails). */
void luaio__scope_cancel(luaio_scope *sc);
/* Leave it; returns 1 if t's pending cancellation was the scope's own
 * expiry (it is dropped: the caller raises a timeout instead). */
int luaio__scope_leave(lua_State *L, luaio_scope *sc);
/* Disarm a scope that is never left (its task died: __gc). */
void luaio__scope_disarm(luaio_scope *sc);

/* ---- errors (error.c) -------------------------------------------------- */

int luaio__is_error(lua_State *L, int idx, const char *kind);
/* Convert the value at idx to text, running __tostring protected; a
 * failing __tostring gives a fallback text. [-0, +1] */
const char *luaio__tostring(lua_State *L, int idx);
/* Raise a timeout error: kind "timeout", code ETIMEDOUT, op, seconds;
 * in (NULL or "": none) names the wait it interrupted, in the message
 * ("timed out after 2 s in queue:get") and the field `interrupted`. */
int luaio__raise_timeout(lua_State *L, const char *op, lua_Number seconds,
                         const char *in);

/* future.c: aio.future(), for the sync binding. */
int luaio__future_new(lua_State *L);

/* ---- argument checks (args.c) ---------------------------------------------
 * Errors name the function as the README does ('fs.read', not
 * 'luaio.fs.read'): bad argument #1 to 'fs.read' (string expected, got
 * nil). luaio_check_seconds (luaio.h) checks durations. */
int luaio__argerror(lua_State *L, int arg, const char *fname,
                    const char *msg);
int luaio__typeerror(lua_State *L, int arg, const char *fname,
                     const char *expected);
const char *luaio__checkstring(lua_State *L, int arg, const char *fname,
                               size_t *len);
/* A string C reads up to its first NUL (a path, a host name): one with
 * a NUL inside is an argument error ("path contains a NUL byte"). */
const char *luaio__checkcstring(lua_State *L, int arg, const char *fname,
                                const char *what);
const char *luaio__optstring(lua_State *L, int arg, const char *fname,
                             const char *def, size_t *len);
lua_Integer luaio__checkinteger(lua_State *L, int arg, const char *fname);
lua_Integer luaio__optinteger(lua_State *L, int arg, const char *fname,
                              lua_Integer def);
void luaio__checktype(lua_State *L, int arg, const char *fname, int type);
/* An enum in field name of the options table at (absolute) index opts:
 * the position of its value in names (NULL-terminated), def when the
 * field is nil; else "bad argument #opts to 'fname' (name must be 'a',
 * 'b' or 'c')". */
int luaio__optfield_enum(lua_State *L, int opts, const char *name,
                         const char *fname, const char *const names[],
                         int def);
/* The same for the argument at arg: "bad argument #2 to 'file:seek'
 * (whence must be 'set', 'cur' or 'end')". */
int luaio__optenum(lua_State *L, int arg, const char *fname,
                   const char *what, const char *const names[], int def);
/* An integer in field name of the options table at (absolute) index
 * opts, def when nil; else "bad argument #opts to 'fname' (name must be
 * an integer)". */
lua_Integer luaio__optfield_integer(lua_State *L, int opts, const char *name,
                                    const char *fname, lua_Integer def);
/* A duration in field name of the options table at (absolute) index
 * opts, in ms as luaio_check_seconds gives it (-1 when nil); else "bad
 * argument #opts to 'fname' (name must be a number of seconds >= 0)". */
lua_Integer luaio__optfield_seconds(lua_State *L, int opts, const char *name,
                                    const char *fname);

/* ---- classes (class.c) ------------------------------------------------- */

/* Register the metatable `name` once: __index = methods (if any), __gc
 * and __close = close (if any), plus the metamethods in meta (may be
 * NULL). The one way a binding defines a userdata class. [-0, +0] */
/* class.c: a weak table (mode "k" or "v") kept in the registry under
 * key, made on first use. [-0, +1] */
void luaio__push_weak_table(lua_State *L, const void *key, const char *mode);
/* class.c: the Lua part of a module (an embedded lua/<name>.lua) from the
 * preload table, loaded once and kept under key; errors name owner.
 * [-0, +1] */
void luaio__push_lua_part(lua_State *L, const void *key, const char *name,
                          const char *owner);
void luaio__class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, const luaL_Reg *meta);
/* luaL_checkudata(L, 1, name) for a method of a luaio__class: faster,
 * the same errors. */
void *luaio__checkself(lua_State *L, const char *name);

/* ---- permissions (perm.c, perm_curl.c): the sandbox -------------------
 * Each check does nothing outside a sandbox (luaio_config.sandbox), and
 * in one raises an error of kind "permission" naming the flag that would
 * allow the access. A binding calls them at its entry points, before it
 * starts anything. */
enum { LUAIO_PERM_READ = 1, LUAIO_PERM_WRITE = 2 };
/* A status a binding may get back from luaio__perm_addr and hand to
 * luaio_raise_uv as any uv error: it raises the permission error. */
#define LUAIO_EDENIED (-19730)
int luaio__sandboxed(lua_State *L);
/* The path argument at arg checked for access (LUAIO_PERM_*): in a
 * sandbox it is replaced on the stack by the resolved path (no symlink,
 * no ".."), which is returned and what the binding must use. */
const char *luaio__perm_arg(lua_State *L, int arg, int access);
/* Check a path the binding made itself (a folder a walk enters). */
void luaio__perm_path(lua_State *L, const char *path, int access);
/* The real path of fd into real (PATH_MAX bytes), from /proc/self/fd;
 * 0 if it has none (a pipe, say, or no /proc). */
int luaio__fd_path(int fd, char *real);
/* After an open by a checked path: is the file at fd (its real path,
 * /proc/self/fd) still under an allowed folder? A folder swapped for a
 * symlink between the check and the open is caught here. Raises. */
void luaio__perm_fd(lua_State *L, int fd);
/* The same for a thread-pool job (no Lua, thread-safe): 1 if allowed;
 * a job refused sets LUAIO_EDENIED as its status, which luaio_raise_uv
 * with field "path" raises as the permission error. */
int luaio__perm_fd_ok(luaio_host *h, int fd);
/* Check that the script may reach host (a name or an IP address) on
 * port (-1: any port, for a DNS lookup). */
void luaio__perm_net(lua_State *L, const char *host, int port);
/* Check an address about to be connected to (a DNS result): 0 if
 * allowed, else LUAIO_EDENIED. No Lua: for uv callbacks. */
int luaio__perm_addr(luaio_host *h, const struct sockaddr *sa);
/* Check that the script may start program prog (a name looked up in
 * PATH, or a path): for luaio.proc, before it spawns. */
void luaio__perm_run(lua_State *L, const char *prog);
/* Check that the script may read environment variable name. */
void luaio__perm_env(lua_State *L, const char *name);
/* libcurl (perm_curl.c): a request's sandbox state, inside the request
 * struct so it lives as long as the easy handle. luaio__perm_curl
 * checks url's host and, in a sandbox, makes curl check each name it
 * resolves (redirects), each address it connects to (DNS results) and
 * each request it sends (reused connections) against the allow-list.
 * A refused transfer fails; luaio__perm_curl_raise then raises the
 * permission error (returns 0 when nothing was refused). */
typedef struct luaio_perm_curl {
  luaio_host *h;
  void *easy;                   /* the CURL * */
  char denied[280];             /* "host:port" refused, or "" */
} luaio_perm_curl;
void luaio__perm_curl(lua_State *L, luaio_perm_curl *pc, void *easy,
                      const char *url);
int luaio__perm_curl_raise(lua_State *L, luaio_perm_curl *pc);
/* Check the host of a proxy (a URL, or host:port) like a request's:
 * through a proxy the script reaches whatever the proxy does. */
void luaio__perm_proxy(lua_State *L, const char *proxy);
/* Push the permission error for access to target (what: "read",
 * "write", "net", "run", "env"). [-0, +1] */
void luaio__perm_push_error(lua_State *L, const char *what,
                            const char *target, const char *detail);

/* testing.c: aio._test, the internals `luaio test` uses. */
void luaio__testing_register(lua_State *L);

#endif
