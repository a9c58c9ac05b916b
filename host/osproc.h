/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * osproc.h: what the process-level bindings (bindings/signal.c,
 * bindings/thread.c, bindings/proc*.c) share: signal names, signal
 * watchers that give the previous disposition back, and the worker
 * thread jobs. Internal, like host.h.
 */
#ifndef LUAIO_OSPROC_H
#define LUAIO_OSPROC_H

#include "host.h"

/* Processes, signals and worker states reach past a restricted host's
 * sandbox (a worker state has the full standard library): refused
 * there, before anything starts. */
static inline void luaio__check_unrestricted (lua_State *L,
                                              const char *fname) {
  if (luaio__is_restricted(luaio__host(L)))
    luaL_error(L, "%s: not allowed in restricted mode", fname);
}

/* signals.c: "SIGHUP" or "HUP" -> SIGHUP; 0 if unknown. Signals a
 * program cannot catch (SIGKILL, SIGSTOP) are known to luaio__signum
 * only when any is set (for kill). */
int luaio__signum (const char *name, int any);
/* SIGHUP -> "SIGHUP"; NULL if unknown. */
const char *luaio__signame (int signum);

/* Start a uv_signal_t on signum, saving the process's disposition of
 * signum first if no luaio watcher has it; uv_signal_start's result. */
int luaio__signal_start (uv_signal_t *s, uv_signal_cb cb, int signum);
/* Close a started watcher (cb frees it); the last watcher of a signal
 * gives back the saved disposition (libuv would leave SIG_DFL). */
void luaio__signal_close (uv_signal_t *s, uv_close_cb cb);

/* bindings/signal.c and thread.c: add aio.signal, aio.to_thread and
 * aio.worker_pool to the luaio table on top (core.c calls them). */
void luaio__signal_register (lua_State *L);
void luaio__thread_register (lua_State *L);

/* bindings/proc_child.c: a child process apart from Lua. */
typedef struct luaio_child {
  uv_process_t proc;
  uv_timer_t timer;             /* the KILL after kill_grace_ms */
  luaio_waitlist waiters;       /* tasks in p:wait() */
  int64_t code;
  int term_signal;
  unsigned kill_grace_ms;
  int exited, terminating, closing;
  int detached, kill_on_close;
  int handles;                  /* of proc and timer, not yet closed */
  int owned;                    /* a Process object holds it */
  void *list;                   /* the host's list of running children */
  struct luaio_child *prev, *next;
} luaio_child;
/* A new child, owned by the caller (luaio__child_release). */
luaio_child *luaio__child_new (lua_State *L);
/* uv_spawn with o (exit_cb set here); 0 or a uv error. A child that
 * failed to start is cleaned up; c stays the caller's either way. */
int luaio__child_spawn (lua_State *L, luaio_child *c,
                        uv_process_options_t *o);
/* SIGTERM now, SIGKILL after kill_grace_ms if it has not exited. */
void luaio__child_terminate (luaio_child *c);
/* The owner lets go (kills if kill_on_close and not detached). */
void luaio__child_release (luaio_child *c);

/* bindings/thread_copy.c: values copied between Lua states as bytes.
 * A luaio_copybuf is a userdata (freed by its __gc unless p is taken). */
typedef struct luaio_copybuf {
  char *p;
  size_t len, cap;
} luaio_copybuf;
/* Push a new empty buffer. [-0, +1] */
luaio_copybuf *luaio__copybuf_new (lua_State *L);
/* Append the value at idx. Returns 1, or 0 with a message pushed saying
 * why it cannot be copied. Raises only on memory errors. [-0, +0|1] */
int luaio__copy_encode (lua_State *L, luaio_copybuf *b, int idx);
/* Push every value encoded in p[0..len); returns their count. The
 * caller checks the stack space for the count. [-0, +n] */
int luaio__copy_decode (lua_State *L, const char *p, size_t len);

#endif
