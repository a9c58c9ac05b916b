/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * state.c: the host object, which owns the lua_State and the uv_loop_t
 * (its own, or one the embedder lends), and its teardown.
 */
#include "private.h"
#include <signal.h>
#include <errno.h>
#include <sys/resource.h>


const char luaio__host_key = 0;
const char luaio__unobserved_key = 0;
const char luaio__extra_key = 0;

/* From the registry, not from a task in the extra space: a stock
 * interpreter leaves the extra space of its threads uninitialised until
 * the host is attached. */
luaio_host *luaio_host_of (lua_State *L) {
  luaio_host *h;
  void *ud;
  /* Fast path, a state the host owns (its allocator and ud are the
   * host's): every spawn asks, and the registry look-up was ~210
   * instructions of a task's ~7,000. h->loop is set just before the
   * registry names the host, so both answer alike. */
  if (lua_getallocf(L, &ud) == luaio__host_alloc &&
      ((luaio_host *)ud)->loop != NULL)
    return (luaio_host *)ud;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &luaio__host_key);
  h = (luaio_host *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

static luaio_host *host_attach(lua_State *L, const luaio_config *cfg);

luaio_host *luaio__host (lua_State *L) {
  luaio_host *h = luaio_host_of(L);
  if (h == NULL) h = host_attach(L, NULL);
  if (h == NULL) luaL_error(L, "luaio: cannot create the host");
  return h;
}

/* Exit with code: inside a task, record the status and unwind the task
 * with an "exit" error, so the host stops and every <close> still runs. */
static int exit_with (lua_State *L, int code) {
  luaio_host *h = luaio_host_of(L);
  if (h == NULL || luaio__current(L) == NULL) {
    fflush(NULL);
    exit(code);
  }
  h->exit_code = code;
  luaio_push_error(L, "exit", NULL, "os.exit called");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "status");
  return lua_error(L);
}

static int host_exit (lua_State *L) {
  return exit_with(L, lua_isboolean(L, 1) ? !lua_toboolean(L, 1)
                                          : (int)luaL_optinteger(L, 1, 0));
}

/* A closed stdout (`luaio script.lua | head -1`) ends the script with
 * status 141, as a SIGPIPE death would (SIGPIPE is ignored for sockets),
 * instead of printing into the void forever. */
#define STDOUT_GONE 141

/* print() as Lua's, but noticing a closed stdout. */
static int host_print (lua_State *L) {
  int i, n = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', stdout);
    fwrite(s, 1, len, stdout);
    lua_pop(L, 1);
  }
  fputc('\n', stdout);
  if (fflush(stdout) != 0 && errno == EPIPE) {
    clearerr(stdout);
    return exit_with(L, STDOUT_GONE);
  }
  return 0;
}

/* io.write() as Lua's (an upvalue), but a closed stdout ends the script. */
static int host_io_write (lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  if (lua_isnil(L, 1) && lua_tointeger(L, 3) == EPIPE)
    return exit_with(L, STDOUT_GONE);
  return lua_gettop(L);
}

static void wrap_output (lua_State *L) {
  lua_pushcfunction(L, host_print);
  lua_setglobal(L, "print");
  if (lua_getglobal(L, "io") == LUA_TTABLE) {
    lua_getfield(L, -1, "write");
    lua_pushcclosure(L, host_io_write, 1);
    lua_setfield(L, -2, "write");
  }
  lua_pop(L, 1);
}

static void set_field (lua_State *L, const char *lib, const char *name,
                       lua_CFunction fn) {
  if (lua_getglobal(L, lib) == LUA_TTABLE) {
    if (fn) lua_pushcfunction(L, fn); else lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);
}

static int forbidden (lua_State *L) {
  return luaL_error(L, "not allowed in restricted mode");
}

/* load() that accepts text chunks only: corrupted binary chunks can
 * crash or eat memory. */
static int load_text (lua_State *L) {
  int n = lua_gettop(L);
  if (n < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* require() that loads only allowed modules (the list is an upvalue). */
static int require_allowed (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNIL)
    return luaL_error(L, "module '%s' is not allowed", name);
  lua_pop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static void restrict_stdlib (lua_State *L, const char *const *allow) {
  lua_getglobal(L, "load");
  lua_pushcclosure(L, load_text, 1);
  lua_setglobal(L, "load");
  if (allow) {
    lua_getglobal(L, "require");
    lua_newtable(L);
    for (; *allow; allow++) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, *allow);
    }
    lua_pushcclosure(L, require_allowed, 2);
    lua_setglobal(L, "require");
  }
  set_field(L, "os", "execute", NULL);
  set_field(L, "os", "exit", forbidden);
  set_field(L, "os", "remove", NULL);
  set_field(L, "os", "rename", NULL);
  set_field(L, "os", "tmpname", NULL);
  set_field(L, "io", "popen", NULL);
  set_field(L, "package", "loadlib", NULL);
  set_field(L, "_G", "dofile", NULL);
  set_field(L, "_G", "loadfile", NULL);
  if (lua_getglobal(L, "package") == LUA_TTABLE) {  /* no C searchers */
    lua_getfield(L, -1, "searchers");
    lua_pushnil(L); lua_rawseti(L, -2, 4);
    lua_pushnil(L); lua_rawseti(L, -2, 3);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Wire a fresh host onto L. */
static void host_setup (luaio_host *h, lua_State *L) {
  h->L = L;
  /* New threads copy the main thread's extra space: NULL there means
   * "not a task" for every coroutine a script creates itself. */
  *(luaio_task **)lua_getextraspace(L) = NULL;
  h->exit_code = -1;
  if (h->cfg.loop) h->loop = h->cfg.loop;
  else {
    if (uv_loop_init(&h->own_loop) != 0)          /* out of memory */
      luaL_error(L, "luaio: cannot create the event loop");
    h->loop = &h->own_loop;
    h->owns_loop = 1;
  }
  h->epoch = uv_now(h->loop);
  h->grace_ms = h->cfg.grace_ms > 0 ? (unsigned)h->cfg.grace_ms
                                    : LUAIO_GRACE_MS;
  lua_pushlightuserdata(L, h);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &luaio__host_key);
  luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1);
  lua_pop(L, 1);
  luaio__error_init(L);
  luaio__task_metatable(L);
  luaio__sched_init(h);
  luaio__preload_all(h);
  luaio__preload_lua(h);
}

/* Writing to a socket the peer closed must be an EPIPE error, not the
 * death of the process: ignore SIGPIPE unless the application set a
 * handler of its own. */
static void ignore_sigpipe (void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

/* cfg.raise_fd_limit: a soft limit of 1024 open files (the default of
 * many systems, for select(2), which luaio never uses) is what a server
 * holding 10,000 connections runs into first. The hard limit may be
 * more than the kernel grants (RLIM_INFINITY over nr_open, OPEN_MAX on
 * macOS): then the highest value accepted, found by halving the gap. */
static void raise_fd_limit (void) {
  struct rlimit rl;
  rlim_t lo, hi;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  lo = rl.rlim_cur;                          /* known to be accepted */
  hi = rl.rlim_max;
  rl.rlim_cur = hi;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) return;
  hi--;
  while (lo < hi) {
    rl.rlim_cur = hi - (hi - lo) / 2;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0) lo = rl.rlim_cur;
    else hi = rl.rlim_cur - 1;
  }
}

/* Warnings (warn() and errors in __gc metamethods) go to stderr; on by
 * default, so a failing finalizer is never silent; "@off" and "@on"
 * switch them as in lua.c. A message may come in pieces (tocont). */
static void warn_on (void *ud, const char *msg, int tocont);

static void warn_off (void *ud, const char *msg, int tocont) {
  luaio_host *h = (luaio_host *)ud;
  (void)tocont;
  if (strcmp(msg, "@on") == 0) lua_setwarnf(h->L, warn_on, h);
}

static void warn_cont (void *ud, const char *msg, int tocont) {
  luaio_host *h = (luaio_host *)ud;
  fputs(msg, stderr);
  if (!tocont) {
    fputs("\n", stderr);
    fflush(stderr);
    lua_setwarnf(h->L, warn_on, h);
  }
}

static void warn_on (void *ud, const char *msg, int tocont) {
  luaio_host *h = (luaio_host *)ud;
  if (!tocont && *msg == '@') {                    /* a control message */
    if (strcmp(msg, "@off") == 0) lua_setwarnf(h->L, warn_off, h);
    return;
  }
  fputs("luaio: warning: ", stderr);
  warn_cont(ud, msg, tocont);
  if (tocont) lua_setwarnf(h->L, warn_cont, h);
}

/* An error outside any protected call: say what it was before Lua
 * aborts the process. */
static int panic (lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                    : "(error object is not a string)";
  fprintf(stderr, "luaio: PANIC: unprotected error: %s\n", msg);
  fflush(stderr);
  return 0;
}

/* The part of luaio_new that allocates Lua memory, run protected so that
 * running out of memory returns NULL instead of panicking. */
static int host_open (lua_State *L) {
  luaio_host *h = (luaio_host *)lua_touserdata(L, 1);
  if (!h->cfg.no_stdlibs) luaL_openlibs(L);
  host_setup(h, L);
  if (!h->cfg.no_stdlibs) {
    set_field(L, "os", "exit", host_exit);
    wrap_output(L);
  }
  if (h->perm) luaio__perm_stdlib(L);
  if (h->cfg.restricted) restrict_stdlib(L, h->cfg.allow);
  luaio__torture_preload(h);
  return 0;
}

static void host_release(luaio_host *h);

/* Undo a luaio_new whose host_open failed part way. The scheduler's
 * three handles are initialised together, or not at all. */
static void host_abandon (luaio_host *h) {
  h->closed = 1;
  luaio__perm_free(h);
  lua_close(h->L);
  luaio__slab_free_all(&h->slab);
  if (h->idle.loop) { host_release(h); return; }
  if (h->owns_loop) uv_loop_close(h->loop);
  free(h);
}

luaio_host *luaio_new (const luaio_config *cfg) {
  luaio_host *h = calloc(1, sizeof *h);
  lua_State *L;
  if (h == NULL) return NULL;
  ignore_sigpipe();
  if (cfg && cfg->raise_fd_limit) raise_fd_limit();
  luaio__torture_init(h);
  if (cfg) h->cfg = *cfg;
  h->cfg.sandbox = NULL;                 /* copied into h->perm below */
  if (cfg && cfg->sandbox && luaio__perm_new(h, cfg->sandbox) != 0) {
    luaio__perm_free(h);
    free(h);
    return NULL;
  }
  /* Memory checkers see through malloc only: LUAIO_MALLOC=system. */
  h->system_malloc = getenv("LUAIO_MALLOC") &&
                     strcmp(getenv("LUAIO_MALLOC"), "system") == 0;
  L = lua_newstate(luaio__host_alloc, h);
  if (L == NULL) {
    luaio__slab_free_all(&h->slab);
    free(h);
    return NULL;
  }
  h->owns_state = 1;
  h->L = L;
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_on, h);
  lua_pushcfunction(L, host_open);
  lua_pushlightuserdata(L, h);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    host_abandon(h);
    return NULL;
  }
  luaio__limits_start(h);
  return h;
}

static void handle_closed_cb (uv_handle_t *handle) {
  luaio_host *h = (luaio_host *)handle->data;
  if (--h->pending_closes == 0 && !h->owns_loop) free(h);
}

/* Close our handles, then (own loop) run it until every close callback
 * has fired and free the host; a borrowed loop frees it in the last
 * close callback, when the embedder runs the loop. */
static void host_release (luaio_host *h) {
  luaio_hook *k;
  h->closed = 1;
  while ((k = h->close_hooks) != NULL) {
    h->close_hooks = k->next;
    k->fn(k->ud);
    free(k);
  }
  h->pending_closes = 3;
  uv_close((uv_handle_t *)&h->idle, handle_closed_cb);
  if (h->dump_signal.loop) {        /* its init can fail (no fd left) */
    h->pending_closes++;
    uv_close((uv_handle_t *)&h->dump_signal, handle_closed_cb);
  }
  uv_close((uv_handle_t *)&h->check, handle_closed_cb);
  luaio__timers_close(&h->timers, h, handle_closed_cb);
  if (h->owns_loop) {
    uv_run(h->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(h->loop) != 0)
      fprintf(stderr, "luaio: warning: handles left open at exit\n");
    free(h);
  }
}

void luaio_close (luaio_host *h) {
  if (h == NULL) return;
  h->closing = 1;
  luaio_stop(h);
  luaio__report_unobserved(h);
  luaio__perm_free(h);
  if (h->owns_state) {
    lua_State *L = h->L;
    /* Finalizers may close handles (their callbacks free C memory only). */
    h->closed = 1;
    lua_close(L);
    luaio__slab_free_all(&h->slab);
  }
  host_release(h);
}

/* Module mode (require "luaio" from a stock interpreter): the host hangs
 * off a userdata created first, so it is finalized after every luaio
 * object that could still refer to it. */
static int attached_gc (lua_State *L) {
  luaio_host *h = *(luaio_host **)lua_touserdata(L, 1);
  if (h) {
    h->closed = 1;
    host_release(h);
  }
  return 0;
}

/* In a stock interpreter the threads' extra space, where luaio looks
 * for a thread's task, was never set (the sanitizer build found it
 * holding garbage): clear it before the first look. */
static void clear_extraspace (lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  task_of(lua_tothread(L, -1)) = NULL;
  lua_pop(L, 1);
  task_of(L) = NULL;
}

static luaio_host *host_attach (lua_State *L, const luaio_config *cfg) {
  luaio_host *h;
  luaio_host **box;
  clear_extraspace(L);
  h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  if (cfg) h->cfg = *cfg;
  ignore_sigpipe();
  box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = h;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, attached_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &h->cfg);      /* anchored for life */
  host_setup(h, L);
  return h;
}

lua_State *luaio_state (luaio_host *h) { return h->L; }
uv_loop_t *luaio_loop (luaio_host *h) { return h->loop; }
int luaio__is_restricted (luaio_host *h) { return h->cfg.restricted; }
void luaio_set_userdata (luaio_host *h, void *ud) { h->userdata = ud; }
void *luaio_get_userdata (luaio_host *h) { return h->userdata; }
int luaio_exit_code (luaio_host *h) { return h->exit_code; }

void luaio_preload (luaio_host *h, const char *name, lua_CFunction open) {
  lua_State *L = h->L;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void luaio_on_close (luaio_host *h, void (*fn)(void *ud), void *ud) {
  luaio_hook *k = malloc(sizeof *k);
  if (k == NULL) return;
  k->fn = fn;
  k->ud = ud;
  k->next = h->close_hooks;
  h->close_hooks = k;
}

const char *luaio_version (void) { return LUAIO_VERSION; }
