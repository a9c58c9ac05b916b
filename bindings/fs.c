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
#include <sys/stat.h>
#include <unistd.h>

#define LINE_CHUNK 65536             /* first read-ahead of a file */
#define LINE_CHUNK_MAX (1024 * 1024) /* grows to this on long reads */

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

/* ---- whole files: one thread-pool job each -------------------------------- */

/* fs.read and fs.write do all their system calls (open, read or write
 * until done, fsync, close, rename) in one thread-pool job: one round
 * trip instead of one per call, which is what makes many small files
 * fast. Paths and data are copied: a cancelled job may outlive its task. */
typedef struct file_job {
  uv_work_t work;
  luaio_waiter w;
  int writing, flags, mode, atomic, err;
  const char *failed;           /* the system call that failed */
  char *path, *tmp, *buf;
  size_t len;
} file_job;

static void job_free (file_job *j) {
  free(j->path);
  free(j->tmp);
  free(j->buf);
  free(j);
}

static int job_fail (file_job *j, const char *what) {
  j->err = uv_translate_sys_error(errno);
  j->failed = what;
  return -1;
}

static void job_read (file_job *j) {
  struct stat st;
  size_t cap;
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { job_fail(j, "open"); return; }
  cap = (fstat(fd, &st) == 0 && st.st_size > 0) ? (size_t)st.st_size + 1
                                                 : 16384;
  j->buf = malloc(cap);
  for (;;) {
    ssize_t n;
    if (j->buf == NULL) { j->err = UV_ENOMEM; j->failed = "read"; break; }
    if (j->len == cap) {
      char *b = realloc(j->buf, cap *= 2);
      if (b == NULL) { free(j->buf); j->buf = NULL; continue; }
      j->buf = b;
    }
    n = read(fd, j->buf + j->len, cap - j->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job_fail(j, "read"); break; }
    if (n == 0) break;
    j->len += (size_t)n;
  }
  close(fd);
}

static void job_write (file_job *j) {
  const char *target = j->atomic ? j->tmp : j->path;
  size_t done = 0;
  int fd = open(target, j->flags | O_CLOEXEC, j->mode);
  if (fd < 0) { job_fail(j, "open"); return; }
  while (done < j->len) {                 /* partial writes go on */
    ssize_t n = write(fd, j->buf + done, j->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job_fail(j, "write"); break; }
    done += (size_t)n;
  }
  if (!j->err && j->atomic && fsync(fd) != 0) job_fail(j, "fsync");
  if (close(fd) != 0 && !j->err) job_fail(j, "close");
  if (j->atomic) {
    if (!j->err && rename(j->tmp, j->path) != 0) job_fail(j, "rename");
    if (j->err) unlink(j->tmp);            /* nothing half-written stays */
  }
}

static void job_work_cb (uv_work_t *req) {
  file_job *j = (file_job *)req->data;
  if (j->writing) job_write(j); else job_read(j);
}

static void job_done_cb (uv_work_t *req, int status) {
  file_job *j = (file_job *)req->data;
  if (!luaio_waiter_done(&j->w, status < 0 ? status : j->err)) job_free(j);
}

static void job_abort (luaio_waiter *w) {
  file_job *j = (file_job *)((char *)w - offsetof(file_job, w));
  uv_cancel((uv_req_t *)&j->work);      /* the callback comes later */
}

/* Stack: path at 1. */
static int job_k (lua_State *L, int status, lua_KContext ctx) {
  file_job *j = (file_job *)ctx;
  const char *failed = j->failed ? j->failed : (j->writing ? "write" : "read");
  int n = 0;
  if (status == 0 && !j->writing) {
    lua_pushlstring(L, j->buf ? j->buf : "", j->len);
    n = 1;
  }
  job_free(j);
  if (status < 0)
    return luaio_raise_uv(L, status, failed, "path", lua_tostring(L, 1));
  return n;
}

static int job_start (lua_State *L, file_job *j, const char *fname) {
  int rc;
  j->work.data = j;
  luaio_waiter_init(&j->w, job_abort);
  rc = uv_queue_work(luaio__host(L)->loop, &j->work, job_work_cb,
                     job_done_cb);
  if (rc < 0) {
    job_free(j);
    return luaio_raise_uv(L, rc, fname, "path", lua_tostring(L, 1));
  }
  return luaio_wait(L, &j->w, job_k, (lua_KContext)j);
}

/* fs.read(path) -> the whole content */
static int fs_read (lua_State *L) {
  const char *path = luaio__checkstring(L, 1, "fs.read", NULL);
  file_job *j;
  luaio_check_wait(L, "fs.read");
  lua_settop(L, 1);
  j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(path)) == NULL) {
    free(j);
    return luaL_error(L, "fs.read: out of memory");
  }
  return job_start(L, j, "fs.read");
}

static int write_common (lua_State *L, int flags, const char *fname) {
  const char *path = luaio__checkstring(L, 1, fname, NULL);
  size_t len;
  const char *data = luaio__checkstring(L, 2, fname, &len);
  file_job *j;
  int atomic = 0, mode = 0644;
  if (!lua_isnoneornil(L, 3)) {
    luaio__checktype(L, 3, fname, LUA_TTABLE);
    lua_getfield(L, 3, "atomic");
    atomic = lua_toboolean(L, -1);
    lua_getfield(L, 3, "mode");
    mode = (int)luaL_optinteger(L, -1, 0644);
    lua_pop(L, 2);
  }
  luaio_check_wait(L, fname);
  lua_settop(L, 2);                      /* data stays alive until copied */
  j = calloc(1, sizeof *j);
  if (j == NULL) return luaL_error(L, "%s: out of memory", fname);
  j->writing = 1;
  j->flags = flags;
  j->mode = mode;
  j->atomic = atomic;
  j->len = len;
  j->path = strdup(path);
  j->buf = malloc(len + 1);
  if (atomic) {                          /* same folder, so rename works */
    lua_pushfstring(L, "%s.tmp-%d-%p", path, (int)uv_os_getpid(), (void *)j);
    j->tmp = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (!j->path || !j->buf || (atomic && !j->tmp)) {
    job_free(j);
    return luaL_error(L, "%s: out of memory", fname);
  }
  memcpy(j->buf, data, len);
  return job_start(L, j, fname);
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
  size_t chunk;                 /* next read size: doubles, so a long
                                   scan makes few thread-pool trips */
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
  if (f->chunk == 0) f->chunk = LINE_CHUNK;
  else if (f->chunk < LINE_CHUNK_MAX) f->chunk *= 2;
  if (f->cap - f->len < f->chunk) {
    size_t cap = f->cap ? f->cap : LINE_CHUNK;
    while (cap - f->len < f->chunk) cap *= 2;
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

/* The file at 1 is a checked luaio.File (hot path: no type check). */
static int line_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = (file *)lua_touserdata(L, 1);
  const char *nl;
  (void)status; (void)ctx;
  if (f->fd < 0) return luaL_error(L, "file:lines: the file was closed");
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
  check_file(L, "file:read_line");
  lua_settop(L, 1);
  return line_k(L, 0, 0);
}

/* The per-line hot path: a buffered line returns at once. */
static int lines_iter (lua_State *L) {
  file *f = (file *)lua_touserdata(L, lua_upvalueindex(1));
  const char *p = f->buf + f->start;
  const char *nl = f->len ? memchr(p, '\n', f->len) : NULL;
  if (nl && f->fd >= 0) {
    size_t n = (size_t)(nl - p);
    lua_pushlstring(L, p, (n > 0 && nl[-1] == '\r') ? n - 1 : n);
    f->start += n + 1;
    f->len -= n + 1;
    return 1;
  }
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  return line_k(L, 0, 0);
}

/* f:lines() -> iterator over lines, read 256 KiB at a time. */
static int file_lines (lua_State *L) {
  check_file(L, "file:lines");
  lua_settop(L, 1);
  lua_pushcclosure(L, lines_iter, 1);
  return 1;
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
  f->chunk = 0;
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

/* ---- watching ------------------------------------------------------------ */

/* Events queue in C until a task takes them (the callback touches no
 * Lua); past WATCH_MAX queued events the oldest are dropped and counted. */
#define WATCH_MAX 1024

typedef struct wevent {
  struct wevent *next;
  int events;
  char name[];
} wevent;

typedef struct watcher {
  uv_fs_event_t h;
  wevent *head, *tail;
  int n, dropped, closed;
  luaio_waitlist waiters;
} watcher;

typedef struct watch_ud { watcher *w; } watch_ud;

static void watcher_free_cb (uv_handle_t *h) {
  watcher *w = (watcher *)h->data;
  while (w->head) {
    wevent *e = w->head;
    w->head = e->next;
    free(e);
  }
  free(w);
}

static void watch_cb (uv_fs_event_t *h, const char *name, int events,
                      int status) {
  watcher *w = (watcher *)h->data;
  size_t len = name ? strlen(name) : 0;
  wevent *e;
  if (status < 0) return;
  if (w->n >= WATCH_MAX) {                         /* drop the oldest */
    wevent *old = w->head;
    w->head = old->next;
    if (w->head == NULL) w->tail = NULL;
    free(old);
    w->n--;
    w->dropped++;
  }
  e = malloc(sizeof *e + len + 1);
  if (e == NULL) { w->dropped++; return; }
  e->next = NULL;
  e->events = events;
  memcpy(e->name, name ? name : "", len + 1);
  if (w->tail) w->tail->next = e; else w->head = e;
  w->tail = e;
  w->n++;
  luaio_waitlist_wake(&w->waiters, 0);
}

static watcher *check_watcher (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  if (u->w == NULL) luaL_error(L, "watcher:next: the watcher is closed");
  return u->w;
}

static int watch_next_k (lua_State *L, int status, lua_KContext ctx) {
  watch_ud *u = (watch_ud *)lua_touserdata(L, 1);
  wevent *e;
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "watch", NULL, NULL);
  if (u->w == NULL) { lua_pushnil(L); return 1; }  /* closed: iteration ends */
  if (u->w->head == NULL) {
    luaio_check_wait(L, "watcher:next");
    lua_settop(L, 1);
    return luaio_waitlist_wait(L, &u->w->waiters, watch_next_k, 0);
  }
  e = u->w->head;
  u->w->head = e->next;
  if (u->w->head == NULL) u->w->tail = NULL;
  u->w->n--;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, e->name);
  lua_setfield(L, -2, "name");
  lua_pushboolean(L, (e->events & UV_RENAME) != 0);
  lua_setfield(L, -2, "rename");
  lua_pushboolean(L, (e->events & UV_CHANGE) != 0);
  lua_setfield(L, -2, "change");
  free(e);
  return 1;
}

/* w:next() -> the next event {name=, rename=, change=}, waiting for one;
 * nil once closed. Also the iterator: for ev in w:events() do ... end */
static int watch_next (lua_State *L) {
  check_watcher(L);
  lua_settop(L, 1);
  return watch_next_k(L, 0, 0);
}

static int watch_events (lua_State *L) {
  check_watcher(L);
  lua_pushcfunction(L, watch_next);
  lua_pushvalue(L, 1);
  return 2;
}

static int watch_dropped (lua_State *L) {
  lua_pushinteger(L, check_watcher(L)->dropped);
  return 1;
}

/* w:close() (also <close>, collection): waiting next() calls get nil. */
static int watch_close (lua_State *L) {
  watch_ud *u = (watch_ud *)luaL_checkudata(L, 1, "luaio.Watcher");
  if (u->w) {
    watcher *w = u->w;
    u->w = NULL;
    luaio_waitlist_wake_all(&w->waiters, 0);
    uv_close((uv_handle_t *)&w->h, watcher_free_cb);
  }
  return 0;
}

/* fs.watch(path [, {recursive=}]) -> a watcher of changes under path. */
static int fs_watch (lua_State *L) {
  const char *p = PATH(1, "fs.watch");
  watch_ud *u;
  int rc, flags = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "recursive");
    if (lua_toboolean(L, -1)) flags |= UV_FS_EVENT_RECURSIVE;
    lua_pop(L, 1);
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = calloc(1, sizeof *u->w);
  if (u->w == NULL) return luaL_error(L, "fs.watch: out of memory");
  luaL_setmetatable(L, "luaio.Watcher");
  uv_fs_event_init(luaio__host(L)->loop, &u->w->h);
  u->w->h.data = u->w;
  rc = uv_fs_event_start(&u->w->h, watch_cb, p, (unsigned)flags);
  if (rc < 0) {
    lua_pushcfunction(L, watch_close);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    return luaio_raise_uv(L, rc, "watch", "path", p);
  }
  return 1;
}

static const luaL_Reg watch_methods[] = {
  {"next", watch_next}, {"events", watch_events},
  {"dropped", watch_dropped}, {"close", watch_close}, {NULL, NULL}
};

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
  {"watch", fs_watch}, {NULL, NULL}
};

int luaopen_luaio_fs (lua_State *L) {
  luaio__host(L);
  static const luaL_Reg file_meta[] = {
    {"__tostring", file_tostring}, {NULL, NULL}
  };
  luaio__class(L, "luaio.File", file_methods, file_close, file_meta);
  luaio__class(L, "luaio.Watcher", watch_methods, watch_close, NULL);
  luaL_newlib(L, fs_funcs);
  return 1;
}
