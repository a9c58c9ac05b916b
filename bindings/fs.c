/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs.c: `luaio.fs`, files and folders through libuv's thread pool.
 *
 * Every call submits uv_fs requests (or one uv_work job) and suspends its
 * task; multi-step calls chain their steps in continuations with one op.
 * Every op with effects is a wait that must finish (w.must_finish): a
 * cancel asks libuv to cancel the request, and the task stays suspended
 * until the request's callback has run, so when a cancelled task is done
 * nothing it started can still change a file or touch memory. Ops that
 * read own (or borrow) the buffer they read into until that callback.
 *
 * FIFOs, pipes, sockets and terminals would block a thread-pool worker
 * forever (and with it the exit): files are opened with O_NONBLOCK, and
 * those kinds are read and written through a uv stream on the loop.
 *
 * The parts: fs_whole.c (fs.read/write/append/copy), fs_path.c (stat,
 * mkdir, remove, rename...), fs_file.c (File handles), fs_watch.c
 * (fs.watch), fs_walk.c (fs.walk); this file has what they share.
 */
#include "fs.h"
#include <errno.h>

/* ---- arguments --------------------------------------------------------- */

/* Every path argument comes through here: C stops at a NUL byte, so
 * "victim\0.txt" would act on "victim". */
const char *luaio__fs_check_path (lua_State *L, int arg, const char *fname) {
  static const char *const writers[] = {"fs.write", "fs.append",
    "fs.remove", "fs.rmdir", "fs.rename", "fs.mkdir", "fs.mkdtemp",
    "fs.chmod", NULL};
  size_t i;
  int access = LUAIO_PERM_READ;
  luaio__checkcstring(L, arg, fname, "path");
  for (i = 0; writers[i]; i++)          /* the sandbox: read or write */
    if (strcmp(fname, writers[i]) == 0) access = LUAIO_PERM_WRITE;
  if (strcmp(fname, "fs.copy") == 0 && arg == 2) access = LUAIO_PERM_WRITE;
  return luaio__perm_arg(L, arg, access);
}

/* Integer field `name` of the options table at arg (nil: no options),
 * at least min; def when absent. */
lua_Integer opt_limit (lua_State *L, int arg, const char *fname,
                       const char *name, lua_Integer def,
                       lua_Integer min) {
  lua_Integer v = def;
  int ok;
  if (lua_isnoneornil(L, arg)) return def;
  luaio__checktype(L, arg, fname, LUA_TTABLE);
  if (lua_getfield(L, arg, name) != LUA_TNIL) {
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) {
      lua_pushfstring(L, "%s must be %s", name, min > 0 ? "> 0" : ">= 0");
      luaio__argerror(L, arg, fname, lua_tostring(L, -1));
    }
  }
  lua_pop(L, 1);
  return v;
}

/* Raise "larger than max_size" for path. */
int size_error (lua_State *L, const char *op, const char *path,
                lua_Integer max) {
  luaio_push_uv_error(L, UV_EFBIG, op, "path", path);
  lua_pushfstring(L, "larger than max_size (%I bytes)", max);
  lua_setfield(L, -2, "message");
  return luaio_raise(L);
}

/* FIFOs, sockets and terminals can block a reader or writer forever:
 * they go through uv streams. Regular files and other devices do not
 * (and cannot be polled), so they stay on the thread pool. */
int is_stream (int fd, const struct stat *st) {
  return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) ||
         (S_ISCHR(st->st_mode) && isatty(fd));
}

/* Regular files and devices are read and written blocking, on the pool. */
void set_blocking (int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* Open without ever blocking (a FIFO's open waits for its other end):
 * O_NONBLOCK, dropped again for what is not a stream. Fills st. */
int open_file (const char *path, int flags, int mode,
               struct stat *st) {
  int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
  if (fd < 0) return -1;
  if (fstat(fd, st) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (!is_stream(fd, st)) set_blocking(fd);
  return fd;
}

/* ---- one request at a time: uv_fs ops ------------------------------------ */


void op_free (fs_op *op) {
  if (op->fd >= 0) close(op->fd);       /* ours, never handed to Lua */
  uv_fs_req_cleanup(&op->req);
  free(op->buf);
  free(op);
}

void fs_cb (uv_fs_t *req) {
  fs_op *op = LUAIO_CONTAINER(req, fs_op, req);
  int status = req->result < 0 ? (int)req->result : 0;
  if (req->fs_type == UV_FS_OPEN && req->result >= 0)
    op->fd = (uv_file)req->result;
  if (!luaio_waiter_done(&op->w, status)) op_free(op);
}

/* A queued request is dropped; a running one finishes, and the task
 * waits for it (must_finish); multi-step ops stop at the next step. */
static void fs_abort (luaio_waiter *w) {
  fs_op *op = LUAIO_CONTAINER(w, fs_op, w);
  op->aborted = 1;
  uv_cancel((uv_req_t *)&op->req);
}

fs_op *op_new (lua_State *L, const char *fname) {
  fs_op *op;
  luaio_check_wait(L, fname);
  op = calloc(1, sizeof *op);
  if (op == NULL) luaL_error(L, "%s: out of memory", fname);
  op->h = luaio__host(L);
  op->fd = -1;
  luaio_waiter_init(&op->w, fs_abort);
  op->w.must_finish = 1;
  return op;
}

/* Free op and raise the I/O error for status (cancel: the pending
 * cancellation) about path. */
int op_fail_at (lua_State *L, fs_op *op, int status,
                const char *what, const char *path) {
  op_free(op);
  return luaio_raise_uv(L, status, what, "path", path);
}

/* The same, the path being argument 1. */
int op_fail (lua_State *L, fs_op *op, int status, const char *what) {
  return op_fail_at(L, op, status, what, lua_tostring(L, 1));
}

/* Ready op->req for the next step. */
void op_reset (fs_op *op) {
  uv_fs_req_cleanup(&op->req);
}

/* After submitting: wait, or fail at once if the submit failed. */
int op_wait (lua_State *L, fs_op *op, int rc, lua_KFunction k,
             const char *what) {
  if (rc < 0) return op_fail(L, op, rc, what);
  return luaio_wait(L, &op->w, k, (lua_KContext)op);
}

/* ---- pushing what C owns ------------------------------------------------ */

/* Run fn(p, n) protected, for a Lua allocation whose failure must first
 * free what C holds (a job, a descriptor): otherwise the memory error
 * would jump over the free. Returns fn's status, with its one result or
 * the error on top. [-0, +1] */
int protected_push (lua_State *L, lua_CFunction fn, const void *p,
                    size_t n) {
  lua_pushcfunction(L, fn);              /* light: allocates nothing */
  lua_pushlightuserdata(L, (void *)p);
  lua_pushinteger(L, (lua_Integer)n);
  return lua_pcall(L, 2, 1, 0);
}

/* (p, n) -> the string of the n bytes at p. */
int push_bytes (lua_State *L) {
  lua_pushlstring(L, (const char *)lua_touserdata(L, 1),
                  (size_t)lua_tointeger(L, 2));
  return 1;
}

/* ---- names ---- */

const char *type_name (uint64_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "unknown";
  }
}

int luaopen_luaio_fs (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__fs_whole_open(L);
  luaio__fs_path_open(L);
  luaio__fs_file_open(L);
  luaio__fs_watch_open(L);
  luaio__fs_walk_open(L);
  return 1;
}
