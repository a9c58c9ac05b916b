/*
 * fs.c: `luaio.fs`, files and folders through libuv's thread pool.
 *
 * Every call submits uv_fs requests and suspends its task; multi-step
 * calls (read a whole file: open, fstat, read, close) chain their steps
 * in continuations with one op. Cancelling asks libuv to cancel the
 * request in flight; its callback still comes, finds the task gone, and
 * frees the op (closing a file it had just opened).
 */
#include "../host/host.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define LINE_CHUNK 65536

typedef struct fs_op {
  uv_fs_t req;
  luaio_waiter w;
  luaio_host *h;
  uv_file fd;                   /* a file this op opened, or -1 */
  char *buf;
  size_t len, cap, done;        /* data being read or written */
  int step;
  lua_KFunction then;           /* file reads: what runs after a fill */
} fs_op;

static void op_free (fs_op *op) {
  if (op->fd >= 0) {                    /* ours, never handed to Lua */
    uv_fs_t close_req;
    uv_fs_close(NULL, &close_req, op->fd, NULL);
    uv_fs_req_cleanup(&close_req);
  }
  uv_fs_req_cleanup(&op->req);
  free(op->buf);
  free(op);
}

static void fs_cb (uv_fs_t *req) {
  fs_op *op = (fs_op *)req->data;
  int status = req->result < 0 ? (int)req->result : 0;
  if (req->fs_type == UV_FS_OPEN && req->result >= 0) op->fd = (uv_file)req->result;
  if (!luaio_waiter_done(&op->w, status)) op_free(op);
}

static void fs_abort (luaio_waiter *w) {
  fs_op *op = (fs_op *)((char *)w - offsetof(fs_op, w));
  uv_cancel((uv_req_t *)&op->req);     /* the callback comes later */
}

static fs_op *op_new (lua_State *L, const char *fname) {
  fs_op *op;
  luaio_check_wait(L, fname);
  op = calloc(1, sizeof *op);
  if (op == NULL) luaL_error(L, "%s: out of memory", fname);
  op->h = luaio__host(L);
  op->fd = -1;
  op->req.data = op;
  luaio_waiter_init(&op->w, fs_abort);
  return op;
}

/* Free op and raise the I/O error for status (cancel: the pending
 * cancellation). The path is argument 1. */
static int op_fail (lua_State *L, fs_op *op, int status, const char *what) {
  op_free(op);
  return luaio_raise_uv(L, status, what, "path", lua_tostring(L, 1));
}

/* Ready op->req for the next step. */
static void op_reset (fs_op *op) {
  uv_fs_req_cleanup(&op->req);
  op->req.data = op;
}

/* After submitting: wait, or fail at once if the submit failed. */
static int op_wait (lua_State *L, fs_op *op, int rc, lua_KFunction k,
                    const char *what) {
  if (rc < 0) return op_fail(L, op, rc, what);
  return luaio_wait(L, &op->w, k, (lua_KContext)op);
}

static int grow (fs_op *op, size_t need) {
  char *b;
  size_t cap = op->cap ? op->cap : need;
  if (need <= op->cap) return 1;
  while (cap < need) cap *= 2;
  b = realloc(op->buf, cap);
  if (b == NULL) return 0;
  op->buf = b;
  op->cap = cap;
  return 1;
}

/* ---- fs.read --------------------------------------------------------------- */

static int read_k (lua_State *L, int status, lua_KContext ctx);

/* Read the next chunk into op->buf at op->len. */
static int read_more (lua_State *L, fs_op *op) {
  uv_buf_t b;
  /* small files are common: start at 16 KiB, then double */
  size_t want = op->cap == 0 ? 16384 : op->len + op->cap;
  if (op->len < op->cap) want = op->cap;
  if (!grow(op, want)) return op_fail(L, op, UV_ENOMEM, "read");
  b = uv_buf_init(op->buf + op->len, (unsigned)(op->cap - op->len));
  op_reset(op);
  return op_wait(L, op, uv_fs_read(op->h->loop, &op->req, op->fd, &b, 1,
                                   -1, fs_cb), read_k, "read");
}

static int read_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  if (status < 0) return op_fail(L, op, status, op->step ? "read" : "open");
  if (op->step == 0) {                             /* opened */
    op->step = 1;
    return read_more(L, op);
  }
  if (op->req.result > 0) {
    op->len += (size_t)op->req.result;
    return read_more(L, op);
  }
  lua_pushlstring(L, op->buf ? op->buf : "", op->len);   /* EOF */
  op_free(op);                                     /* closes the fd */
  return 1;
}

/* fs.read(path) -> the whole content */
static int fs_read (lua_State *L) {
  const char *path = luaio__checkstring(L, 1, "fs.read", NULL);
  fs_op *op = op_new(L, "fs.read");
  return op_wait(L, op, uv_fs_open(op->h->loop, &op->req, path, O_RDONLY, 0,
                                   fs_cb), read_k, "open");
}

/* ---- fs.write / fs.append ------------------------------------------------- */

/* Steps: open, write (until all is written), [fsync, close, rename] */
enum { W_OPEN, W_WRITE, W_SYNC, W_CLOSE, W_RENAME };

static int write_k (lua_State *L, int status, lua_KContext ctx);

static int write_step (lua_State *L, fs_op *op, int step) {
  uv_loop_t *loop = op->h->loop;
  int atomic = lua_toboolean(L, 4), rc;
  op->step = step;
  op_reset(op);
  switch (step) {
    case W_WRITE: {
      uv_buf_t b = uv_buf_init(op->buf + op->done,
                               (unsigned)(op->len - op->done));
      rc = uv_fs_write(loop, &op->req, op->fd, &b, 1, -1, fs_cb);
      return op_wait(L, op, rc, write_k, "write");
    }
    case W_SYNC:
      rc = uv_fs_fsync(loop, &op->req, op->fd, fs_cb);
      return op_wait(L, op, rc, write_k, "fsync");
    case W_CLOSE: {
      uv_file fd = op->fd;
      op->fd = -1;
      rc = uv_fs_close(loop, &op->req, fd, fs_cb);
      return op_wait(L, op, rc, write_k, "close");
    }
    default:
      rc = uv_fs_rename(loop, &op->req, lua_tostring(L, 5),
                        lua_tostring(L, 1), fs_cb);
      (void)atomic;
      return op_wait(L, op, rc, write_k, "rename");
  }
}

/* Stack: path data opts atomic tmp-path */
static int write_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  int atomic = lua_toboolean(L, 4);
  if (status < 0) {
    if (atomic) {                          /* nothing half-written stays */
      uv_fs_t r;
      uv_fs_unlink(NULL, &r, lua_tostring(L, 5), NULL);
      uv_fs_req_cleanup(&r);
    }
    return op_fail(L, op, status, op->step == W_OPEN ? "open" : "write");
  }
  switch (op->step) {
    case W_OPEN: return write_step(L, op, W_WRITE);
    case W_WRITE:
      op->done += (size_t)op->req.result;      /* partial writes go on */
      if (op->done < op->len) return write_step(L, op, W_WRITE);
      return write_step(L, op, atomic ? W_SYNC : W_CLOSE);
    case W_SYNC: return write_step(L, op, W_CLOSE);
    case W_CLOSE:
      if (atomic) return write_step(L, op, W_RENAME);
      /* fall through */
    default:
      op_free(op);
      return 0;
  }
}

static int write_common (lua_State *L, int flags, const char *fname) {
  const char *path = luaio__checkstring(L, 1, fname, NULL);
  size_t len;
  const char *data = luaio__checkstring(L, 2, fname, &len);
  int atomic = 0, mode = 0644;
  const char *target = path;
  fs_op *op;
  if (!lua_isnoneornil(L, 3)) {
    luaio__checktype(L, 3, fname, LUA_TTABLE);
    lua_getfield(L, 3, "atomic");
    atomic = lua_toboolean(L, -1);
    lua_getfield(L, 3, "mode");
    mode = (int)luaL_optinteger(L, -1, 0644);
    lua_pop(L, 2);
  }
  lua_settop(L, 3);
  lua_pushboolean(L, atomic);                      /* 4 */
  if (atomic) {                                    /* same folder: rename */
    lua_pushfstring(L, "%s.tmp-%d-%p", path, (int)uv_os_getpid(), (void *)L);
    target = lua_tostring(L, 5);
  }
  op = op_new(L, fname);
  if (!grow(op, len + 1)) return op_fail(L, op, UV_ENOMEM, "write");
  memcpy(op->buf, data, len);
  op->len = len;
  return op_wait(L, op, uv_fs_open(op->h->loop, &op->req, target, flags,
                                   mode, fs_cb), write_k, "open");
}

/* fs.write(path, data [, {atomic=, mode=}]): replaces the file; atomic
 * writes a temporary file in the same folder, fsyncs and renames it, so
 * readers see the old or the new content, never a mix. */
static int fs_write (lua_State *L) {
  return write_common(L, O_WRONLY | O_CREAT | O_TRUNC, "fs.write");
}

/* fs.append(path, data) */
static int fs_append (lua_State *L) {
  lua_settop(L, 2);
  return write_common(L, O_WRONLY | O_CREAT | O_APPEND, "fs.append");
}

/* ---- one-step calls: stat, mkdir, remove, rename... ------------------------ */

static const char *type_name (uint64_t mode) {
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

static void push_stat (lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushnumber(L, st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushnumber(L, st->st_atim.tv_sec + st->st_atim.tv_nsec / 1e9);
  lua_setfield(L, -2, "atime");
  lua_pushnumber(L, st->st_ctim.tv_sec + st->st_ctim.tv_nsec / 1e9);
  lua_setfield(L, -2, "ctime");
  lua_pushinteger(L, (lua_Integer)st->st_nlink);
  lua_setfield(L, -2, "nlink");
  lua_pushinteger(L, (lua_Integer)st->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st->st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)st->st_ino);
  lua_setfield(L, -2, "ino");
}

/* Push what a finished one-step request returns. */
static int push_result (lua_State *L, fs_op *op) {
  uv_fs_t *r = &op->req;
  uv_dirent_t ent;
  int n = 0;
  switch (r->fs_type) {
    case UV_FS_STAT: case UV_FS_LSTAT: case UV_FS_FSTAT:
      push_stat(L, &r->statbuf);
      return 1;
    case UV_FS_SCANDIR:
      lua_newtable(L);
      while (uv_fs_scandir_next(r, &ent) != UV_EOF) {
        lua_pushstring(L, ent.name);
        lua_rawseti(L, -2, ++n);
      }
      return 1;
    case UV_FS_REALPATH:
      lua_pushstring(L, (const char *)r->ptr);
      return 1;
    case UV_FS_MKDTEMP:
      lua_pushstring(L, r->path);
      return 1;
    default:
      return 0;
  }
}

static const char *op_name (uv_fs_type t) {
  switch (t) {
    case UV_FS_STAT: return "stat";
    case UV_FS_LSTAT: return "lstat";
    case UV_FS_MKDIR: return "mkdir";
    case UV_FS_RMDIR: return "rmdir";
    case UV_FS_UNLINK: return "remove";
    case UV_FS_RENAME: return "rename";
    case UV_FS_COPYFILE: return "copy";
    case UV_FS_SCANDIR: return "readdir";
    case UV_FS_REALPATH: return "realpath";
    case UV_FS_MKDTEMP: return "mkdtemp";
    case UV_FS_CHMOD: return "chmod";
    default: return "fs";
  }
}

static int simple_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  int n;
  if (status < 0) return op_fail(L, op, status, op_name(op->req.fs_type));
  n = push_result(L, op);
  op_free(op);
  return n;
}

#define PATH(i, fname) luaio__checkstring(L, (i), (fname), NULL)
#define SIMPLE(fname, call) \
  do { fs_op *op = op_new(L, fname); uv_loop_t *loop = op->h->loop; \
       return op_wait(L, op, (call), simple_k, fname); } while (0)

static int fs_stat (lua_State *L) {
  const char *p = PATH(1, "fs.stat");
  SIMPLE("fs.stat", uv_fs_stat(loop, &op->req, p, fs_cb));
}
static int fs_lstat (lua_State *L) {
  const char *p = PATH(1, "fs.lstat");
  SIMPLE("fs.lstat", uv_fs_lstat(loop, &op->req, p, fs_cb));
}
static int fs_rmdir (lua_State *L) {
  const char *p = PATH(1, "fs.rmdir");
  SIMPLE("fs.rmdir", uv_fs_rmdir(loop, &op->req, p, fs_cb));
}
static int fs_remove (lua_State *L) {
  const char *p = PATH(1, "fs.remove");
  SIMPLE("fs.remove", uv_fs_unlink(loop, &op->req, p, fs_cb));
}
static int fs_rename (lua_State *L) {
  const char *p = PATH(1, "fs.rename"), *to = PATH(2, "fs.rename");
  SIMPLE("fs.rename", uv_fs_rename(loop, &op->req, p, to, fs_cb));
}
static int fs_copy (lua_State *L) {
  const char *p = PATH(1, "fs.copy"), *to = PATH(2, "fs.copy");
  SIMPLE("fs.copy", uv_fs_copyfile(loop, &op->req, p, to, 0, fs_cb));
}
static int fs_readdir (lua_State *L) {
  const char *p = PATH(1, "fs.readdir");
  SIMPLE("fs.readdir", uv_fs_scandir(loop, &op->req, p, 0, fs_cb));
}
static int fs_realpath (lua_State *L) {
  const char *p = PATH(1, "fs.realpath");
  SIMPLE("fs.realpath", uv_fs_realpath(loop, &op->req, p, fs_cb));
}
static int fs_chmod (lua_State *L) {
  const char *p = PATH(1, "fs.chmod");
  int mode = (int)luaio__checkinteger(L, 2, "fs.chmod");
  SIMPLE("fs.chmod", uv_fs_chmod(loop, &op->req, p, mode, fs_cb));
}

/* fs.mkdtemp([prefix]) -> a new private folder (prefix: a path start;
 * default: the system temp folder + "/luaio-"). */
static int fs_mkdtemp (lua_State *L) {
  char tmp[1024];
  size_t n = sizeof tmp;
  lua_settop(L, 1);
  if (lua_isnil(L, 1)) {
    if (uv_os_tmpdir(tmp, &n) != 0) strcpy(tmp, "/tmp");
    lua_pushfstring(L, "%s/luaio-XXXXXX", tmp);
  }
  else lua_pushfstring(L, "%sXXXXXX", PATH(1, "fs.mkdtemp"));
  lua_replace(L, 1);
  {
    const char *tpl = lua_tostring(L, 1);
    SIMPLE("fs.mkdtemp", uv_fs_mkdtemp(loop, &op->req, tpl, fs_cb));
  }
}

/* fs.tmpdir() -> the system temp folder (no I/O). */
static int fs_tmpdir (lua_State *L) {
  char tmp[1024];
  size_t n = sizeof tmp;
  if (uv_os_tmpdir(tmp, &n) != 0) strcpy(tmp, "/tmp");
  lua_pushstring(L, tmp);
  return 1;
}

static int exists_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  if (status == UV_ENOENT || status == UV_ENOTDIR) {
    op_free(op);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (status < 0) return op_fail(L, op, status, "stat");
  op_free(op);
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.exists(path) -> boolean */
static int fs_exists (lua_State *L) {
  const char *p = PATH(1, "fs.exists");
  fs_op *op = op_new(L, "fs.exists");
  return op_wait(L, op, uv_fs_stat(op->h->loop, &op->req, p, fs_cb),
                 exists_k, "stat");
}

/* mkdir with parents: op->done is where the next component ends. */
static int mkdir_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  size_t len;
  const char *path = lua_tolstring(L, 1, &len);
  if (status < 0 && !(status == UV_EEXIST && (op->step || op->done < len)))
    return op_fail(L, op, status, "mkdir");
  if (op->done >= len) { op_free(op); return 0; }
  do op->done++; while (op->done < len && path[op->done] != '/');
  lua_pushlstring(L, path, op->done);
  op_reset(op);
  status = uv_fs_mkdir(op->h->loop, &op->req, lua_tostring(L, -1), 0777,
                       fs_cb);
  lua_pop(L, 1);
  return op_wait(L, op, status, mkdir_k, "mkdir");
}

/* fs.mkdir(path [, {parents=true, mode=}]); with parents, existing
 * folders are fine. */
static int fs_mkdir (lua_State *L) {
  const char *p = PATH(1, "fs.mkdir");
  int parents = 0, mode = 0777;
  fs_op *op;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "fs.mkdir", LUA_TTABLE);
    lua_getfield(L, 2, "parents");
    parents = lua_toboolean(L, -1);
    lua_getfield(L, 2, "mode");
    mode = (int)luaL_optinteger(L, -1, 0777);
    lua_pop(L, 2);
  }
  lua_settop(L, 1);
  op = op_new(L, "fs.mkdir");
  if (!parents)
    return op_wait(L, op, uv_fs_mkdir(op->h->loop, &op->req, p, mode, fs_cb),
                   simple_k, "mkdir");
  op->step = 1;                          /* EEXIST is fine at every level */
  op->done = p[0] == '/' ? 1 : 0;
  return mkdir_k(L, UV_EEXIST, (lua_KContext)op);
}

/* ---- file handles ------------------------------------------------------- */

typedef struct file {
  uv_file fd;                   /* -1 once closed */
  char *buf;                    /* read-ahead of lines() and reads */
  size_t start, len, cap;
  int eof;
} file;

static file *check_file (lua_State *L, const char *fname) {
  file *f = (file *)luaL_checkudata(L, 1, "luaio.File");
  if (f->fd < 0) luaL_error(L, "%s: attempt to use a closed file", fname);
  return f;
}

static void file_close_now (file *f) {
  uv_fs_t r;
  if (f->fd < 0) return;
  uv_fs_close(NULL, &r, f->fd, NULL);   /* close(2) is quick: no wait */
  uv_fs_req_cleanup(&r);
  f->fd = -1;
  free(f->buf);
  f->buf = NULL;
  f->start = f->len = f->cap = 0;
}

/* f:close() (also <close> and collection): closing twice is fine. */
static int file_close (lua_State *L) {
  file_close_now((file *)luaL_checkudata(L, 1, "luaio.File"));
  return 0;
}

static int open_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f;
  if (status < 0) return op_fail(L, op, status, "open");
  f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  f->fd = op->fd;
  op->fd = -1;                           /* the file owns it now */
  op_free(op);
  luaL_setmetatable(L, "luaio.File");
  return 1;
}

static int mode_flags (const char *m) {
  static const struct { const char *m; int flags; } modes[] = {
    {"r", O_RDONLY}, {"w", O_WRONLY | O_CREAT | O_TRUNC},
    {"a", O_WRONLY | O_CREAT | O_APPEND}, {"r+", O_RDWR},
    {"w+", O_RDWR | O_CREAT | O_TRUNC}, {"a+", O_RDWR | O_CREAT | O_APPEND},
    {"x", O_WRONLY | O_CREAT | O_EXCL}
  };
  size_t i;
  char clean[4] = {0};
  for (i = 0; *m && i < 3; m++) if (*m != 'b') clean[i++] = *m;
  for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (strcmp(clean, modes[i].m) == 0) return modes[i].flags;
  return -1;
}

/* fs.open(path [, mode]) -> file; mode as io.open: r w a r+ w+ a+ x */
static int fs_open (lua_State *L) {
  const char *p = PATH(1, "fs.open");
  const char *mode = luaio__optstring(L, 2, "fs.open", "r", NULL);
  int flags = mode_flags(mode);
  fs_op *op;
  if (flags < 0) return luaio__argerror(L, 2, "fs.open", "invalid mode");
  lua_settop(L, 1);
  op = op_new(L, "fs.open");
  return op_wait(L, op, uv_fs_open(op->h->loop, &op->req, p, flags, 0644,
                                   fs_cb), open_k, "open");
}

/* Reads of a file: fill f's buffer with one more chunk, then call k.
 * Stack: file at 1. */
static int fill_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  lua_KFunction k = op->then;
  ssize_t n = op->req.result;
  op_free(op);
  if (status < 0) return luaio_raise_uv(L, status, "read", NULL, NULL);
  if (f->fd < 0) return luaL_error(L, "read: the file was closed");
  if (n == 0) f->eof = 1;
  else f->len += (size_t)n;
  return k(L, 0, 0);
}

static int fill (lua_State *L, file *f, lua_KFunction k, const char *fname) {
  fs_op *op;
  uv_buf_t b;
  if (f->start > 0) {
    memmove(f->buf, f->buf + f->start, f->len);
    f->start = 0;
  }
  if (f->cap - f->len < LINE_CHUNK) {
    size_t cap = f->cap ? f->cap * 2 : LINE_CHUNK * 2;
    char *nb = realloc(f->buf, cap);
    if (nb == NULL) return luaL_error(L, "%s: out of memory", fname);
    f->buf = nb;
    f->cap = cap;
  }
  op = op_new(L, fname);
  op->then = k;
  b = uv_buf_init(f->buf + f->len, (unsigned)(f->cap - f->len));
  return op_wait(L, op, uv_fs_read(op->h->loop, &op->req, f->fd, &b, 1, -1,
                                   fs_cb), fill_k, "read");
}

static void take (lua_State *L, file *f, size_t n, size_t skip) {
  lua_pushlstring(L, f->buf + f->start, n);
  f->start += n + skip;
  f->len -= n + skip;
}

static int line_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = check_file(L, "file:lines");
  const char *nl;
  (void)status; (void)ctx;
  nl = f->len ? memchr(f->buf + f->start, '\n', f->len) : NULL;
  if (nl) {
    size_t n = (size_t)(nl - (f->buf + f->start));
    size_t keep = (n > 0 && nl[-1] == '\r') ? n - 1 : n;
    lua_pushlstring(L, f->buf + f->start, keep);
    f->start += n + 1;
    f->len -= n + 1;
    return 1;
  }
  if (f->eof) {
    if (f->len == 0) { lua_pushnil(L); return 1; }
    take(L, f, f->len, 0);                         /* last line, no \n */
    return 1;
  }
  return fill(L, f, line_k, "file:lines");
}

/* f:read_line() -> next line without "\n"/"\r\n", or nil at the end. */
static int file_read_line (lua_State *L) {
  lua_settop(L, 1);
  return line_k(L, 0, 0);
}

/* f:lines() -> iterator over lines, read in 64 KiB chunks. */
static int file_lines (lua_State *L) {
  check_file(L, "file:lines");
  lua_pushcfunction(L, file_read_line);
  lua_pushvalue(L, 1);
  return 2;
}

static int read_n_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = check_file(L, "file:read");
  lua_Integer n = lua_tointeger(L, 2);
  (void)status; (void)ctx;
  if (f->len > 0) {
    take(L, f, f->len < (size_t)n ? f->len : (size_t)n, 0);
    return 1;
  }
  if (f->eof) { lua_pushnil(L); return 1; }
  return fill(L, f, read_n_k, "file:read");
}

/* f:read([n]) -> up to n bytes (default 65536), nil at the end. */
static int file_read (lua_State *L) {
  lua_Integer n = luaio__optinteger(L, 2, "file:read", LINE_CHUNK);
  check_file(L, "file:read");
  if (n <= 0) return luaio__argerror(L, 2, "file:read", "size must be > 0");
  lua_settop(L, 1);
  lua_pushinteger(L, n);
  return read_n_k(L, 0, 0);
}

static int read_all_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = check_file(L, "file:read_all");
  (void)status; (void)ctx;
  if (f->eof) { take(L, f, f->len, 0); return 1; }
  return fill(L, f, read_all_k, "file:read_all");
}

/* f:read_all() -> the rest of the file */
static int file_read_all (lua_State *L) {
  check_file(L, "file:read_all");
  lua_settop(L, 1);
  return read_all_k(L, 0, 0);
}

static int fwrite_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  uv_buf_t b;
  if (status < 0) return op_fail(L, op, status, "write");
  if (op->step) op->done += (size_t)op->req.result;
  op->step = 1;
  if (op->done >= op->len) { op_free(op); return 0; }
  if (f->fd < 0) { op_free(op); return luaL_error(L, "write: file closed"); }
  op_reset(op);
  b = uv_buf_init(op->buf + op->done, (unsigned)(op->len - op->done));
  return op_wait(L, op, uv_fs_write(op->h->loop, &op->req, f->fd, &b, 1, -1,
                                    fs_cb), fwrite_k, "write");
}

/* f:write(data): all of it, even when the OS takes it in parts. */
static int file_write (lua_State *L) {
  file *f = check_file(L, "file:write");
  size_t len;
  const char *data = luaio__checkstring(L, 2, "file:write", &len);
  fs_op *op = op_new(L, "file:write");
  (void)f;
  if (!grow(op, len + 1)) return op_fail(L, op, UV_ENOMEM, "write");
  memcpy(op->buf, data, len);
  op->len = len;
  lua_settop(L, 1);
  return fwrite_k(L, 0, (lua_KContext)op);
}

/* f:seek([whence [, offset]]) -> position; like io's ("set", "cur",
 * "end"). A plain lseek: it does not wait. */
static int file_seek (lua_State *L) {
  static const char *const names[] = {"set", "cur", "end", NULL};
  static const int whences[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  file *f = check_file(L, "file:seek");
  int w = luaL_checkoption(L, 2, "cur", names);
  lua_Integer off = luaio__optinteger(L, 3, "file:seek", 0);
  off_t pos;
  if (whences[w] == SEEK_CUR) off -= (lua_Integer)f->len;  /* read-ahead */
  pos = lseek(f->fd, (off_t)off, whences[w]);
  if (pos < 0) return luaio_raise_uv(L, uv_translate_sys_error(errno),
                                     "seek", NULL, NULL);
  f->start = f->len = 0;
  f->eof = 0;
  lua_pushinteger(L, (lua_Integer)pos);
  return 1;
}

static int sync_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  if (status < 0) return op_fail(L, op, status, "fsync");
  op_free(op);
  return 0;
}

/* f:sync(): flushes the file to disk. */
static int file_sync (lua_State *L) {
  file *f = check_file(L, "file:sync");
  fs_op *op = op_new(L, "file:sync");
  return op_wait(L, op, uv_fs_fsync(op->h->loop, &op->req, f->fd, fs_cb),
                 sync_k, "fsync");
}

static int file_tostring (lua_State *L) {
  file *f = (file *)luaL_checkudata(L, 1, "luaio.File");
  lua_pushfstring(L, "luaio.File (%s)", f->fd < 0 ? "closed" : "open");
  return 1;
}

static const luaL_Reg file_methods[] = {
  {"read", file_read}, {"read_all", file_read_all},
  {"read_line", file_read_line}, {"lines", file_lines},
  {"write", file_write}, {"seek", file_seek}, {"sync", file_sync},
  {"close", file_close}, {NULL, NULL}
};

static const luaL_Reg fs_funcs[] = {
  {"read", fs_read}, {"write", fs_write}, {"append", fs_append},
  {"open", fs_open}, {"stat", fs_stat}, {"lstat", fs_lstat},
  {"exists", fs_exists}, {"mkdir", fs_mkdir}, {"rmdir", fs_rmdir},
  {"remove", fs_remove}, {"rename", fs_rename}, {"copy", fs_copy},
  {"readdir", fs_readdir}, {"realpath", fs_realpath},
  {"mkdtemp", fs_mkdtemp}, {"tmpdir", fs_tmpdir}, {"chmod", fs_chmod},
  {NULL, NULL}
};

int luaopen_luaio_fs (lua_State *L) {
  luaio__host(L);
  if (luaL_newmetatable(L, "luaio.File")) {
    luaL_newlib(L, file_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, file_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fs_funcs);
  return 1;
}
