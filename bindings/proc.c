/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * proc.c: the `luaio.proc` module: spawn, shell, and the Process object
 * (wait, kill, close). proc.run is Lua sugar (lua/proc_run.lua) on top.
 *
 * Programs run from an argument vector, never through a shell unless
 * the caller asks with proc.shell. spawn's errors (ENOENT, EACCES, a bad
 * cwd) are raised by spawn itself; libuv has reaped the failed child.
 * The child's life apart from Lua (exit, kill escalation, reaping at
 * exit) is bindings/proc_child.c's.
 */
#include "../host/osproc.h"
#include "../host/stream.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#define MT "luaio.Process"
#define WAKE_CLOSED UV_EBADF

typedef struct proc_ud {
  luaio_child *c;
} proc_ud;

/* What spawn gathers before starting: the C views of the options, which
 * point into Lua strings kept on the stack until uv_spawn returns. */
typedef struct spawn_req {
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  int fds[3];                   /* child's end of each pipe or file */
  int parent[3];                /* our end of each pipe; -1 if none */
  int nclose;                   /* fds to close after spawn */
  const char *input;            /* input = "text" to feed stdin */
  size_t input_len;
  const char *fname;
} spawn_req;

/* ---- option parsing --------------------------------------------------- */

static const char *cstring_at (lua_State *L, int idx, const char *fname,
                               const char *what) {
  size_t n = 0;      /* luaL_error does not return; for the compiler */
  const char *s = lua_type(L, idx) == LUA_TSTRING ?
                  lua_tolstring(L, idx, &n) : NULL;
  if (s == NULL)
    luaL_error(L, "bad argument #1 to '%s' (%s: string expected, got %s)",
               fname, what, luaL_typename(L, idx));
  if (memchr(s, '\0', n))
    luaL_error(L, "bad argument #1 to '%s' (%s contains a NUL byte)",
               fname, what);
  return s;
}

/* argv from the array part of the table at 1; the array is a userdata
 * left on the stack. */
static void get_argv (lua_State *L, spawn_req *r) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), i;
  char **argv;
  if (n < 1)
    luaL_error(L, "bad argument #1 to '%s' (the program is missing: "
               "{\"prog\", \"arg\", ...} expected)", r->fname);
  if (n > 100000) luaL_error(L, "%s: too many arguments", r->fname);
  argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    argv[i - 1] = (char *)cstring_at(L, -1, r->fname, "argument");
    lua_pop(L, 1);                /* still in the table */
  }
  argv[n] = NULL;
  r->o.file = argv[0];
  r->o.args = argv;
  luaio__perm_run(L, argv[0]);                     /* the sandbox */
}

extern char **environ;

/* Set vars[name] = "name=value" for each pair of the table at idx. */
static void add_vars (lua_State *L, int vars, int idx, const char *fname,
                      const char *what) {
  if (!lua_istable(L, idx))
    luaL_error(L, "bad argument #1 to '%s' (%s: table expected, got %s)",
               fname, what, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key = cstring_at(L, -2, fname, "environment name");
    const char *v = cstring_at(L, -1, fname, "environment value");
    if (*key == '\0' || strchr(key, '='))
      luaL_error(L, "bad argument #1 to '%s' (bad environment name '%s')",
                 fname, key);
    lua_pushvalue(L, -2);
    lua_pushfstring(L, "%s=%s", key, v);
    lua_rawset(L, vars);
    lua_pop(L, 1);
  }
}

/* env = {K = "v"} replaces the environment; env_add = {K = "v"} adds to
 * (or overrides in) it. The strings and the array stay on the stack. */
static void get_env (lua_State *L, spawn_req *r) {
  int env = lua_getfield(L, 1, "env") != LUA_TNIL ? lua_gettop(L) : 0;
  int add = lua_getfield(L, 1, "env_add") != LUA_TNIL ? lua_gettop(L) : 0;
  int vars, n = 0, i;
  char **envp;
  if (!env && !add) { lua_pop(L, 2); return; }
  lua_newtable(L);
  vars = lua_gettop(L);
  if (env) add_vars(L, vars, env, r->fname, "env");
  else
    for (i = 0; environ[i]; i++) {
      const char *eq = strchr(environ[i], '=');
      if (eq == NULL) continue;
      lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
      lua_pushstring(L, environ[i]);
      lua_rawset(L, vars);
    }
  if (add) add_vars(L, vars, add, r->fname, "env_add");
  lua_pushnil(L);
  while (lua_next(L, vars)) { n++; lua_pop(L, 1); }
  envp = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *envp, 0);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, vars)) {
    envp[n++] = (char *)lua_tostring(L, -1);      /* anchored in vars */
    lua_pop(L, 1);
  }
  envp[n] = NULL;
  r->o.env = envp;
}

static int get_bool (lua_State *L, const char *field, int def,
                     const char *fname) {
  int t = lua_getfield(L, 1, field), v = def;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad argument #1 to '%s' (%s: boolean expected, got %s)",
               fname, field, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* ---- stdio ---------------------------------------------------------- */

/* Close what spawn opened and did not hand over (an error unwinds). */
static int req_gc (lua_State *L) {
  spawn_req *r = (spawn_req *)lua_touserdata(L, 1);
  int i;
  for (i = 0; i < 3; i++) {
    if (r->fds[i] >= 0) close(r->fds[i]);
    if (r->parent[i] >= 0) close(r->parent[i]);
    r->fds[i] = r->parent[i] = -1;
  }
  return 0;
}

static spawn_req *req_new (lua_State *L, const char *fname) {
  spawn_req *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->fds[0] = r->fds[1] = r->fds[2] = -1;
  r->parent[0] = r->parent[1] = r->parent[2] = -1;
  r->fname = fname;
  if (luaL_newmetatable(L, "luaio.SpawnRequest")) {
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return r;
}

static void fail_io (lua_State *L, spawn_req *r, int err, const char *what,
                     const char *target) {
  luaio_push_uv_error(L, err, r->fname, "path", target);
  lua_pushfstring(L, "%s: %s", what, uv_strerror(err));
  lua_setfield(L, -2, "message");
  luaio_raise(L);
}

/* {path = "f", append = true}: the file, opened for the child. */
static void open_file (lua_State *L, spawn_req *r, int i, int idx) {
  const char *path;
  int flags = i == 0 ? O_RDONLY : O_WRONLY | O_CREAT;
  lua_getfield(L, idx, "path");
  cstring_at(L, -1, r->fname, i == 0 ? "stdin.path" : "output path");
  path = luaio__perm_arg(L, lua_gettop(L),           /* the sandbox */
                         i == 0 ? LUAIO_PERM_READ : LUAIO_PERM_WRITE);
  lua_getfield(L, idx, "append");
  if (i > 0) flags |= lua_toboolean(L, -1) ? O_APPEND : O_TRUNC;
  lua_pop(L, 1);
  r->fds[i] = open(path, flags | O_CLOEXEC, 0666);
  if (r->fds[i] < 0) fail_io(L, r, -errno,
                             "cannot open the file for the child", path);
  lua_pop(L, 1);
  r->stdio[i].flags = UV_INHERIT_FD;
  r->stdio[i].data.fd = r->fds[i];
}

static void make_pipe (lua_State *L, spawn_req *r, int i) {
  uv_file fds[2];
  int err = i == 0 ? uv_pipe(fds, 0, UV_NONBLOCK_PIPE)
                   : uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
  if (err < 0) fail_io(L, r, err, "cannot make a pipe", NULL);
  r->fds[i] = fds[i == 0 ? 0 : 1];
  r->parent[i] = fds[i == 0 ? 1 : 0];
  r->stdio[i].flags = UV_INHERIT_FD;
  r->stdio[i].data.fd = r->fds[i];
}

static const char *const stdio_names[] = {"stdin", "stdout", "stderr"};

/* An object with a fileno method (a luaio.File): the child gets a copy
 * of its descriptor; the object keeps its own. */
static void use_fileno (lua_State *L, spawn_req *r, int i, int idx) {
  int fd;
  if (lua_getfield(L, idx, "fileno") != LUA_TFUNCTION)
    luaL_error(L, "bad argument #1 to '%s' (%s: a luaio.File expected, got "
               "%s)", r->fname, stdio_names[i], luaL_typename(L, idx));
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
    luaL_error(L, "bad argument #1 to '%s' (%s: fileno() gave no "
               "descriptor)", r->fname, stdio_names[i]);
  fd = dup((int)lua_tointeger(L, -1));
  lua_pop(L, 1);
  if (fd < 0) fail_io(L, r, -errno, "cannot hand the file to the child",
                      stdio_names[i]);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  r->fds[i] = fd;
  r->stdio[i].flags = UV_INHERIT_FD;
  r->stdio[i].data.fd = fd;
}

/* stdin/stdout/stderr: "inherit" (default), "null", "pipe", {path=...},
 * a luaio.File (anything with fileno()), and for stderr "stdout" (the
 * same place as stdout). */
static void get_stdio (lua_State *L, spawn_req *r, int i) {
  const char *v;
  int t = lua_getfield(L, 1, stdio_names[i]);
  if (i == 0 && r->input) {
    if (t != LUA_TNIL && !(t == LUA_TSTRING &&
                           strcmp(lua_tostring(L, -1), "pipe") == 0))
      luaL_error(L, "bad argument #1 to '%s' (input and stdin cannot be "
                 "given together)", r->fname);
    make_pipe(L, r, 0);
  }
  else if (t == LUA_TTABLE) open_file(L, r, i, lua_gettop(L));
  else if (t == LUA_TUSERDATA && luaL_getmetafield(L, -1, "__index")) {
    lua_pop(L, 1);
    use_fileno(L, r, i, lua_gettop(L));
  }
  else if (t == LUA_TNIL || (t == LUA_TSTRING &&
           strcmp((v = lua_tostring(L, -1)), "inherit") == 0)) {
    r->stdio[i].flags = UV_INHERIT_FD;
    r->stdio[i].data.fd = i;
  }
  else if (t == LUA_TSTRING && strcmp(v, "null") == 0)
    r->stdio[i].flags = UV_IGNORE;
  else if (t == LUA_TSTRING && strcmp(v, "pipe") == 0) make_pipe(L, r, i);
  else if (t == LUA_TSTRING && i == 2 && strcmp(v, "stdout") == 0)
    r->stdio[2] = r->stdio[1];
  else
    luaL_error(L, "bad argument #1 to '%s' (%s: \"inherit\", \"null\", "
               "\"pipe\"%s, {path = ...} or a File expected%s)", r->fname,
               stdio_names[i], i == 2 ? ", \"stdout\"" : "",
               i == 0 ? "; feed a string with input =" : "");
  lua_pop(L, 1);
}

/* ---- input = "text": fed to stdin, then stdin is closed --------------- */

typedef struct feeder {
  uv_pipe_t pipe;
  uv_write_t req;
  size_t len;
  char data[1];                 /* len bytes, owned by the write */
} feeder;

static void feeder_closed_cb (uv_handle_t *h) { free(h->data); }

static void feeder_write_cb (uv_write_t *req, int status) {
  feeder *f = (feeder *)req->data;
  (void)status;                   /* EPIPE: the child did not read it all */
  uv_close((uv_handle_t *)&f->pipe, feeder_closed_cb);
}

/* Start writing r->input to our end of the stdin pipe (taken from r).
 * The write owns its copy; the pipe closes when it is done. */
static void start_feeder (lua_State *L, spawn_req *r) {
  feeder *f = malloc(sizeof *f + r->input_len);
  uv_buf_t b;
  if (f == NULL) return;          /* the child sees an empty stdin */
  uv_pipe_init(luaio_loop(luaio__host(L)), &f->pipe, 0);
  f->pipe.data = f;
  f->req.data = f;
  if (uv_pipe_open(&f->pipe, r->parent[0]) < 0) {
    uv_close((uv_handle_t *)&f->pipe, feeder_closed_cb);
    return;                       /* parent[0] is still closed by req_gc */
  }
  r->parent[0] = -1;
  memcpy(f->data, r->input, r->input_len);
  b = uv_buf_init(f->data, (unsigned)r->input_len);
  if (uv_write(&f->req, (uv_stream_t *)&f->pipe, &b, 1, feeder_write_cb) < 0)
    uv_close((uv_handle_t *)&f->pipe, feeder_closed_cb);
}

/* ---- pipes as streams ------------------------------------------------- */

/* Push a luaio.Stream for our end of pipe i. The closed Stream is made
 * first (it may raise): until the stream owns the fd, r does, and an
 * error closes it (req_gc). [-0, +1] */
static void push_pipe (lua_State *L, spawn_req *r, int i) {
  luaio_stream *s;
  int err;
  luaio__stream_push(L, NULL);
  err = luaio__stream_open_fd(luaio__host(L), r->parent[i], &s);
  if (err < 0) luaio_raise_uv(L, err, r->fname, NULL, NULL);
  r->parent[i] = -1;
  luaio__stream_set(L, -1, s);
}

/* Close the stream at idx now, without flushing. */
static void close_pipe (lua_State *L, int idx) {
  luaio__stream_close_at(L, idx);
}

/* ---- the Process object ------------------------------------------------ */

static int proc_gc (lua_State *L) {
  proc_ud *u = (proc_ud *)lua_touserdata(L, 1);
  if (u->c) luaio__child_release(u->c);
  u->c = NULL;
  return 0;
}

static luaio_child *check_proc (lua_State *L, const char *fname) {
  proc_ud *u = (proc_ud *)luaL_checkudata(L, 1, MT);
  if (u->c == NULL) luaL_error(L, "%s: the process object is closed", fname);
  return u->c;
}

/* Push the exit code (nil if killed by a signal) and the signal's name
 * (nil if it exited). [-0, +2] */
static int push_status (lua_State *L, luaio_child *c) {
  const char *sig = luaio__signame(c->term_signal);
  if (c->term_signal) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)c->code);
  if (c->term_signal == 0) lua_pushnil(L);
  else if (sig) lua_pushstring(L, sig);
  else lua_pushfstring(L, "SIG%d", c->term_signal);
  return 2;
}

/* Cancelling a wait kills the process (TERM, then KILL after the grace)
 * unless it is detached; the task stays suspended until it has exited
 * (must_finish), so a cancelled task leaves no child running. */
static void wait_abort (luaio_waiter *w) {
  luaio_child *c = (luaio_child *)w->data;
  if (c->detached) {
    luaio_waitlist_remove(&c->waiters, w);
    if (c->waiters.head == NULL && !c->closing)
      uv_unref((uv_handle_t *)&c->proc);
    luaio_waiter_done(w, UV_ECANCELED);
  }
  else luaio__child_terminate(c);
}

static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  proc_ud *u = (proc_ud *)lua_touserdata(L, 1);
  (void)ctx;
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "process:wait", NULL, NULL);
  if (u->c == NULL || status == WAKE_CLOSED) {
    luaio_push_uv_error(L, UV_ECANCELED, "process:wait", NULL, NULL);
    lua_pushliteral(L, "the process object was closed");
    lua_setfield(L, -2, "message");
    return luaio_raise(L);
  }
  return push_status(L, u->c);
}

/* p:wait() -> code, signal: code is nil when a signal killed it. */
static int proc_wait (lua_State *L) {
  luaio_child *c = check_proc(L, "process:wait");
  luaio_waiter *w;
  lua_settop(L, 1);
  if (c->exited) return push_status(L, c);
  luaio_check_wait(L, "process:wait");
  w = lua_newuserdatauv(L, sizeof *w, 0);          /* kept on the stack */
  luaio_waiter_init(w, wait_abort);
  w->must_finish = !c->detached;
  w->data = c;
  luaio_waitlist_push(&c->waiters, w);
  uv_ref((uv_handle_t *)&c->proc);  /* a detached child: while waited on */
  return luaio_wait(L, w, wait_k, 0);
}

/* p:kill([sig]) -> true, or false if it had already exited. */
static int proc_kill (lua_State *L) {
  luaio_child *c = check_proc(L, "process:kill");
  int signum = SIGTERM, err;
  if (lua_type(L, 2) == LUA_TNUMBER)
    signum = (int)luaio__checkinteger(L, 2, "process:kill");
  else if (!lua_isnoneornil(L, 2)) {
    size_t len;
    const char *name = luaio__checkstring(L, 2, "process:kill", &len);
    if (strlen(name) != len || (signum = luaio__signum(name, 1)) == 0)
      return luaio__argerror(L, 2, "process:kill", lua_pushfstring(L,
        "unknown signal '%s' (e.g. \"SIGTERM\")", name));
  }
  if (signum < 0 || signum >= NSIG)
    return luaio__argerror(L, 2, "process:kill", "no such signal number");
  if (c->exited || c->closing) { lua_pushboolean(L, 0); return 1; }
  err = uv_process_kill(&c->proc, signum);
  if (err == UV_ESRCH) { lua_pushboolean(L, 0); return 1; }
  if (err < 0) return luaio_raise_uv(L, err, "process:kill", NULL, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Close p.stdin/stdout/stderr now (no flush): see push_pipe. */
static void close_field (lua_State *L, int fields, const char *field) {
  if (lua_getfield(L, fields, field) != LUA_TNIL) close_pipe(L, -1);
  lua_settop(L, fields);
}

/* p:close(): close the pipes; kill the process if it still runs and
 * kill_on_close (the default) and it is not detached. */
static int proc_close (lua_State *L) {
  luaL_checkudata(L, 1, MT);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  if (lua_istable(L, 2)) {
    close_field(L, 2, "stdin");
    close_field(L, 2, "stdout");
    close_field(L, 2, "stderr");
  }
  lua_settop(L, 1);
  return proc_gc(L);
}

static int proc_index (lua_State *L) {
  proc_ud *u = (proc_ud *)luaL_checkudata(L, 1, MT);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "running") == 0) {
    lua_pushboolean(L, u->c && !u->c->exited);
    return 1;
  }
  lua_getiuservalue(L, 1, 1);                     /* fields */
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));              /* the methods */
  return 1;
}

static int proc_tostring (lua_State *L) {
  proc_ud *u = (proc_ud *)luaL_checkudata(L, 1, MT);
  if (u->c == NULL) lua_pushliteral(L, "luaio.Process (closed)");
  else lua_pushfstring(L, "luaio.Process (pid %d, %s)", u->c->proc.pid,
                       u->c->exited ? "exited" : "running");
  return 1;
}

/* ---- spawn ------------------------------------------------------------- */

static void get_options (lua_State *L, spawn_req *r, luaio_child *c) {
  lua_Integer ms;
  get_argv(L, r);
  get_env(L, r);
  if (lua_getfield(L, 1, "cwd") != LUA_TNIL)
    r->o.cwd = cstring_at(L, -1, r->fname, "cwd");   /* kept on stack */
  if (lua_getfield(L, 1, "input") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to '%s' (input: string expected, got "
                 "%s)", r->fname, luaL_typename(L, -1));
    r->input = lua_tolstring(L, -1, &r->input_len);
  }
  c->detached = get_bool(L, "detached", 0, r->fname);
  c->kill_on_close = get_bool(L, "kill_on_close", 1, r->fname);
  lua_getfield(L, 1, "kill_grace");
  ms = luaio_check_seconds(L, lua_gettop(L), r->fname);
  if (ms >= 0) c->kill_grace_ms = ms > 86400000 ? 86400000 : (unsigned)ms;
  lua_pop(L, 1);
  if (c->detached) r->o.flags |= UV_PROCESS_DETACHED;
}

/* Push the Process object's fields table: pid and the pipes. [-0, +1] */
static void push_fields (lua_State *L, spawn_req *r, luaio_child *c) {
  int i;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, c->proc.pid);
  lua_setfield(L, -2, "pid");
  if (r->input) start_feeder(L, r);
  for (i = 0; i < 3; i++) {
    if (r->parent[i] < 0) continue;
    push_pipe(L, r, i);
    lua_setfield(L, -2, stdio_names[i]);
  }
}

/* Raise spawn's error: the program's, or the cwd's when that is what
 * the child could not enter (libuv reports both alike). */
static int spawn_error (lua_State *L, spawn_req *r, int err) {
  int bad_cwd = r->o.cwd && access(r->o.cwd, X_OK) != 0;
  if (bad_cwd) err = -errno;
  luaio_push_uv_error(L, err, r->fname, "path", bad_cwd ? r->o.cwd
                                                        : r->o.file);
  lua_pushstring(L, r->o.file);
  lua_setfield(L, -2, "program");
  if (bad_cwd) {
    lua_pushfstring(L, "%s (cwd of '%s')", uv_strerror(err), r->o.file);
    lua_setfield(L, -2, "message");
  }
  return luaio_raise(L);
}

/* spawn{"prog", "arg", ..., options} -> Process, for proc.spawn and
 * proc.shell (fname). */
static int spawn_with (lua_State *L, const char *fname) {
  spawn_req *r;
  proc_ud *u;
  luaio_child *c;
  int i, err;
  luaio__check_unrestricted(L, fname);
  luaio__checktype(L, 1, fname, LUA_TTABLE);
  lua_settop(L, 1);
  u = lua_newuserdatauv(L, sizeof *u, 1);          /* 2: the object */
  u->c = NULL;
  luaL_setmetatable(L, MT);
  r = req_new(L, fname);                           /* 3 */
  u->c = c = luaio__child_new(L);
  get_options(L, r, c);
  for (i = 0; i < 3; i++) get_stdio(L, r, i);
  r->o.stdio = r->stdio;
  r->o.stdio_count = 3;
  err = luaio__child_spawn(L, c, &r->o);
  for (i = 0; i < 3; i++)                          /* the child's ends */
    if (r->fds[i] >= 0) { close(r->fds[i]); r->fds[i] = -1; }
  if (err < 0) return spawn_error(L, r, err);
  push_fields(L, r, c);
  lua_setiuservalue(L, 2, 1);
  lua_settop(L, 2);
  return 1;
}

static int proc_spawn (lua_State *L) { return spawn_with(L, "proc.spawn"); }

/* proc.shell("cmd" [, opts]) -> Process running /bin/sh -c cmd: the one
 * way a shell is used, on request. Never give it untrusted text. */
static int proc_shell (lua_State *L) {
  luaio__checkstring(L, 1, "proc.shell", NULL);
  if (!lua_isnoneornil(L, 2))
    luaio__checktype(L, 2, "proc.shell", LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L);                                 /* 3: the spawn table */
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) == LUA_TNUMBER)
        return luaio__argerror(L, 2, "proc.shell", "options only (the "
                               "command is argument #1)");
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 3);
    }
  }
  lua_pushliteral(L, "/bin/sh");
  lua_rawseti(L, 3, 1);
  lua_pushliteral(L, "-c");
  lua_rawseti(L, 3, 2);
  lua_pushvalue(L, 1);
  lua_rawseti(L, 3, 3);
  lua_replace(L, 1);
  lua_settop(L, 1);
  return spawn_with(L, "proc.shell");
}

static const luaL_Reg methods[] = {
  {"wait", proc_wait}, {"kill", proc_kill}, {"close", proc_close},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"spawn", proc_spawn}, {"shell", proc_shell}, {NULL, NULL}
};

int luaopen_luaio_proc (lua_State *L) {
  luaio__host(L);
  if (luaL_newmetatable(L, MT)) {
    luaL_newlib(L, methods);
    lua_pushcclosure(L, proc_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, proc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, proc_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, proc_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_getglobal(L, "require");                     /* proc.run: Lua sugar */
  lua_pushliteral(L, "luaio.proc_run");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  lua_setfield(L, -2, "run");
  return 1;
}
