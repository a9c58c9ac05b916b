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
 */
#include "../host/stream.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_CHUNK 65536             /* first read-ahead of a file */
#define LINE_CHUNK_MAX (1024 * 1024) /* grows to this on long reads */
#define WRITE_STEP (1024 * 1024)     /* atomic writes: cancel point */
#define COPY_CHUNK (256 * 1024)
#define DEFAULT_MAX_SIZE ((lua_Integer)1 << 30)   /* whole-file reads */
#define DEFAULT_MAX_LINE ((lua_Integer)1 << 20)   /* lines, read_line */
#define TMP_TAG ".luaio-tmp-"
#define STALE_SECONDS (24 * 3600)

/* ---- arguments --------------------------------------------------------- */

/* Every path argument comes through here: C stops at a NUL byte, so
 * "victim\0.txt" would act on "victim". */
static const char *check_path (lua_State *L, int arg, const char *fname) {
  size_t len;
  const char *p = luaio__checkstring(L, arg, fname, &len);
  if (memchr(p, '\0', len) != NULL)
    luaio__argerror(L, arg, fname, "path contains a NUL byte");
  return p;
}

/* Integer field `name` of the options table at arg (nil: no options),
 * at least min; def when absent. */
static lua_Integer opt_limit (lua_State *L, int arg, const char *fname,
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
static int size_error (lua_State *L, const char *op, const char *path,
                       lua_Integer max) {
  luaio_push_uv_error(L, UV_EFBIG, op, "path", path);
  lua_pushfstring(L, "larger than max_size (%I bytes)", max);
  lua_setfield(L, -2, "message");
  return luaio_raise(L);
}

/* FIFOs, sockets and terminals can block a reader or writer forever:
 * they go through uv streams. Regular files and other devices do not
 * (and cannot be polled), so they stay on the thread pool. */
static int is_stream (int fd, const struct stat *st) {
  return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) ||
         (S_ISCHR(st->st_mode) && isatty(fd));
}

/* Regular files and devices are read and written blocking, on the pool. */
static void set_blocking (int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* Open without ever blocking (a FIFO's open waits for its other end):
 * O_NONBLOCK, dropped again for what is not a stream. Fills st. */
static int open_file (const char *path, int flags, int mode,
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

typedef struct fs_op {
  uv_fs_t req;
  luaio_waiter w;
  luaio_host *h;
  uv_file fd;                   /* a file this op opened, or -1 */
  char *buf;                    /* owned: data read or written */
  size_t len, done;
  int step;
  int aborted;                  /* the task was cancelled meanwhile */
  lua_KFunction then;           /* file reads: what runs after a fill */
} fs_op;

static void op_free (fs_op *op) {
  if (op->fd >= 0) close(op->fd);       /* ours, never handed to Lua */
  uv_fs_req_cleanup(&op->req);
  free(op->buf);
  free(op);
}

static void fs_cb (uv_fs_t *req) {
  fs_op *op = (fs_op *)req->data;
  int status = req->result < 0 ? (int)req->result : 0;
  if (req->fs_type == UV_FS_OPEN && req->result >= 0)
    op->fd = (uv_file)req->result;
  if (!luaio_waiter_done(&op->w, status)) op_free(op);
}

/* A queued request is dropped; a running one finishes, and the task
 * waits for it (must_finish); multi-step ops stop at the next step. */
static void fs_abort (luaio_waiter *w) {
  fs_op *op = (fs_op *)((char *)w - offsetof(fs_op, w));
  op->aborted = 1;
  uv_cancel((uv_req_t *)&op->req);
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
  op->w.must_finish = 1;
  return op;
}

/* Free op and raise the I/O error for status (cancel: the pending
 * cancellation) about path. */
static int op_fail_at (lua_State *L, fs_op *op, int status,
                       const char *what, const char *path) {
  op_free(op);
  return luaio_raise_uv(L, status, what, "path", path);
}

/* The same, the path being argument 1. */
static int op_fail (lua_State *L, fs_op *op, int status, const char *what) {
  return op_fail_at(L, op, status, what, lua_tostring(L, 1));
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

/* ---- pushing what C owns ------------------------------------------------ */

/* Run fn(p, n) protected, for a Lua allocation whose failure must first
 * free what C holds (a job, a descriptor): otherwise the memory error
 * would jump over the free. Returns fn's status, with its one result or
 * the error on top. [-0, +1] */
static int protected_push (lua_State *L, lua_CFunction fn, const void *p,
                           size_t n) {
  lua_pushcfunction(L, fn);              /* light: allocates nothing */
  lua_pushlightuserdata(L, (void *)p);
  lua_pushinteger(L, (lua_Integer)n);
  return lua_pcall(L, 2, 1, 0);
}

/* (p, n) -> the string of the n bytes at p. */
static int push_bytes (lua_State *L) {
  lua_pushlstring(L, (const char *)lua_touserdata(L, 1),
                  (size_t)lua_tointeger(L, 2));
  return 1;
}

/* ---- whole files: one thread-pool job each ------------------------------ */

/* fs.read, fs.write, fs.append and fs.copy do all their system calls in
 * one thread-pool job: one round trip instead of one per call, which is
 * what makes many small files fast. Paths and data are copied. The job
 * looks at `cancelled` between steps: an atomic write stops before its
 * rename (removing its temporary file), a read stops between chunks. A
 * step itself is never cut in the middle. */
enum { JOB_READ, JOB_WRITE, JOB_COPY };

typedef struct file_job {
  uv_work_t work;
  luaio_waiter w;
  atomic_int cancelled;         /* set by abort on the loop thread */
  int kind, flags, mode, atomic, err;
  int err_at_to;                /* copy: the error is about `to` */
  int stream_fd;                /* a FIFO/socket/tty for the loop, or -1 */
  const char *failed;           /* the system call that failed */
  char *path, *to, *tmp, *dir, *prefix, *buf;
  size_t len, max;
} file_job;

static void job_free (file_job *j) {
  if (j->stream_fd >= 0) close(j->stream_fd);
  free(j->path);
  free(j->to);
  free(j->tmp);
  free(j->dir);
  free(j->prefix);
  free(j->buf);
  free(j);
}

static int job_fail (file_job *j, const char *what) {
  j->err = uv_translate_sys_error(errno);
  j->failed = what;
  return -1;
}

static int job_cancelled (file_job *j) {
  if (!atomic_load(&j->cancelled)) return 0;
  j->err = UV_ECANCELED;
  return 1;
}

/* Read fd to the end into j->buf, at most j->max bytes (EFBIG past it). */
static void read_fd (file_job *j, int fd, const struct stat *st) {
  size_t cap = (S_ISREG(st->st_mode) && st->st_size > 0)
             ? (size_t)st->st_size + 1 : 16384;
  if (cap > j->max + 1) cap = j->max + 1;
  j->buf = malloc(cap);
  while (j->buf != NULL && !job_cancelled(j)) {
    ssize_t n;
    if (j->len == cap) {
      char *b;
      if (cap > j->max) { j->err = UV_EFBIG; j->failed = "read"; return; }
      cap = cap * 2 > j->max + 1 ? j->max + 1 : cap * 2;
      if ((b = realloc(j->buf, cap)) == NULL) break;
      j->buf = b;
    }
    n = read(fd, j->buf + j->len, cap - j->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job_fail(j, "read"); return; }
    if (n == 0) return;
    j->len += (size_t)n;
  }
  if (!j->err) { j->err = UV_ENOMEM; j->failed = "read"; }
}

static void job_read (file_job *j) {
  struct stat st;
  int fd = open_file(j->path, O_RDONLY, 0, &st);
  if (fd < 0) { job_fail(j, "open"); return; }
  if (is_stream(fd, &st)) { j->stream_fd = fd; return; }  /* loop reads */
  if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > j->max) {
    j->err = UV_EFBIG;
    j->failed = "read";
  }
  else read_fd(j, fd, &st);
  close(fd);
}

/* Temporary files of atomic writes killed before their rename (kill -9,
 * power loss) would stay forever. The next atomic write of the same
 * target removes those whose writer is gone: its pid (in the name) no
 * longer runs, or the file is older than a day. The pid test alone keeps
 * a live writer's file safe on this machine; the age covers pids reused
 * after a reboot and writers on other machines sharing the folder (no
 * write takes a day). A wrong guess costs the other writer an ENOENT at
 * its rename, never a torn file. */
static void remove_stale (file_job *j) {
  size_t plen = strlen(j->prefix);
  time_t now = time(NULL);
  struct dirent *e;
  DIR *d = opendir(j->dir);
  if (d == NULL) return;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    long pid;
    int fd = dirfd(d);
    if (strncmp(e->d_name, j->prefix, plen) != 0) continue;
    pid = strtol(e->d_name + plen, NULL, 10);
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if ((pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) ||
        now - st.st_mtime > STALE_SECONDS)
      unlinkat(fd, e->d_name, 0);
  }
  closedir(d);
}

/* Write all of j->buf; an atomic write checks for a cancel between
 * steps of WRITE_STEP bytes. */
static void write_fd (file_job *j, int fd) {
  size_t done = 0;
  while (done < j->len) {
    size_t n = j->len - done;
    ssize_t w;
    if (j->atomic && done > 0 && job_cancelled(j)) return;
    w = write(fd, j->buf + done, n > WRITE_STEP ? WRITE_STEP : n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) { job_fail(j, "write"); return; }
    done += (size_t)w;
  }
}

static void job_write (file_job *j) {
  struct stat st;
  int fd;
  if (j->atomic) remove_stale(j);
  if (j->atomic)
    fd = open_file(j->tmp, O_WRONLY | O_CREAT | O_EXCL, j->mode, &st);
  else fd = open_file(j->path, j->flags, j->mode, &st);
  if (fd < 0) { job_fail(j, "open"); return; }
  if (!j->atomic && is_stream(fd, &st)) { j->stream_fd = fd; return; }
  write_fd(j, fd);
  if (!j->err && j->atomic && !job_cancelled(j) && fsync(fd) != 0)
    job_fail(j, "fsync");
  if (close(fd) != 0 && !j->err) job_fail(j, "close");
  if (j->atomic) {
    /* the last cancel point: a cancelled write never renames */
    if (!j->err && !job_cancelled(j) && rename(j->tmp, j->path) != 0)
      job_fail(j, "rename");
    if (j->err) unlink(j->tmp);            /* nothing half-written stays */
  }
}

/* Copy path to to: one step (a half copy is worse than a late one, and
 * the task waits for it). FIFOs and the like are refused: their open or
 * read could wait forever. */
static void copy_fds (file_job *j, int in, int out) {
  char *buf = malloc(COPY_CHUNK);
  ssize_t n = 0;
  if (buf == NULL) { j->err = UV_ENOMEM; j->failed = "copy"; return; }
  while ((n = read(in, buf, COPY_CHUNK)) != 0) {
    ssize_t done = 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job_fail(j, "read"); break; }
    while (done < n) {
      ssize_t w = write(out, buf + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) { job_fail(j, "write"); free(buf); return; }
      done += w;
    }
  }
  free(buf);
}

static void job_copy (file_job *j) {
  struct stat st, dst;
  int in = open_file(j->path, O_RDONLY, 0, &st), out;
  if (in < 0) { job_fail(j, "open"); return; }
  if (is_stream(in, &st) || S_ISDIR(st.st_mode)) {
    j->err = S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EINVAL;
    j->failed = "copy";
    close(in);
    return;
  }
  out = open_file(j->to, O_WRONLY | O_CREAT, st.st_mode & 07777, &dst);
  j->err_at_to = 1;                        /* until the copy starts */
  if (out < 0) job_fail(j, "open");
  else if (is_stream(out, &dst)) { j->err = UV_EINVAL; j->failed = "copy"; }
  else if (dst.st_dev == st.st_dev && dst.st_ino == st.st_ino) {}  /* same */
  else if (ftruncate(out, 0) != 0) job_fail(j, "ftruncate");
  else {
    j->err_at_to = 0;
    copy_fds(j, in, out);
    if (!j->err) fchmod(out, st.st_mode & 07777);
  }
  if (out >= 0 && close(out) != 0 && !j->err) job_fail(j, "close");
  close(in);
}

static void job_work_cb (uv_work_t *req) {
  file_job *j = (file_job *)req->data;
  if (job_cancelled(j)) return;
  switch (j->kind) {
    case JOB_READ: job_read(j); break;
    case JOB_WRITE: job_write(j); break;
    default: job_copy(j); break;
  }
}

static void job_done_cb (uv_work_t *req, int status) {
  file_job *j = (file_job *)req->data;
  if (!luaio_waiter_done(&j->w, status < 0 ? status : j->err)) job_free(j);
}

static void job_abort (luaio_waiter *w) {
  file_job *j = (file_job *)((char *)w - offsetof(file_job, w));
  atomic_store(&j->cancelled, 1);
  uv_cancel((uv_req_t *)&j->work);      /* the callback comes later */
}

static int job_stream (lua_State *L, file_job *j);

/* Stack: path at 1. */
static int job_k (lua_State *L, int status, lua_KContext ctx) {
  file_job *j = (file_job *)ctx;
  const char *failed = j->failed ? j->failed
                     : (j->kind == JOB_READ ? "read"
                        : j->kind == JOB_WRITE ? "write" : "copy");
  size_t max = j->max;
  int n = 0, at = j->err_at_to ? 2 : 1;
  if (status == 0 && atomic_load(&j->cancelled)) status = UV_ECANCELED;
  if (status == 0 && j->stream_fd >= 0) return job_stream(L, j);
  if (status == 0 && j->kind == JOB_READ) {
    if (protected_push(L, push_bytes, j->buf ? j->buf : "", j->len)
        != LUA_OK) {
      job_free(j);                       /* then raise "not enough memory" */
      return lua_error(L);
    }
    n = 1;
  }
  job_free(j);
  if (status == UV_EFBIG && strcmp(failed, "read") == 0)
    return size_error(L, "read", lua_tostring(L, 1), (lua_Integer)max);
  if (status < 0)
    return luaio_raise_uv(L, status, failed, "path", lua_tostring(L, at));
  return n;
}

static file_job *job_new (lua_State *L, int kind, const char *path,
                          const char *fname) {
  file_job *j;
  luaio_check_wait(L, fname);
  j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(path)) == NULL) {
    free(j);
    luaL_error(L, "%s: out of memory", fname);
  }
  j->kind = kind;
  j->stream_fd = -1;
  atomic_init(&j->cancelled, 0);
  return j;
}

static int job_start (lua_State *L, file_job *j, const char *fname) {
  int rc;
  j->work.data = j;
  luaio_waiter_init(&j->w, job_abort);
  j->w.must_finish = 1;
  rc = uv_queue_work(luaio__host(L)->loop, &j->work, job_work_cb,
                     job_done_cb);
  if (rc < 0) {
    job_free(j);
    return luaio_raise_uv(L, rc, fname, "path", lua_tostring(L, 1));
  }
  return luaio_wait(L, &j->w, job_k, (lua_KContext)j);
}

/* fs.read(path [, {max_size=}]) -> the whole content */
static int fs_read (lua_State *L) {
  const char *path = check_path(L, 1, "fs.read");
  lua_Integer max = opt_limit(L, 2, "fs.read", "max_size",
                              DEFAULT_MAX_SIZE, 0);
  file_job *j;
  lua_settop(L, 1);
  j = job_new(L, JOB_READ, path, "fs.read");
  j->max = (size_t)max;
  return job_start(L, j, "fs.read");
}

/* Copy of the n bytes at s, NUL-terminated; NULL out of memory. */
static char *strndup_c (const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d == NULL) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* Name the temporary file of an atomic write of j->path:
 * "<dir>/.<name>.luaio-tmp-<pid>-<random>", recognisable (and so
 * removable once stale) and in the same folder, so rename works. Built
 * in C only: nothing here may raise while j is not yet owned by a wait.
 * Returns 0 out of memory (job_free frees what was made). */
static int tmp_names (file_job *j) {
  const char *path = j->path, *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  unsigned char r[6];
  char hex[13];
  size_t n;
  int i;
  if (uv_random(NULL, NULL, r, sizeof r, 0, NULL) != 0) {
    uint64_t t = uv_hrtime();
    memcpy(r, &t, sizeof r);
  }
  for (i = 0; i < 6; i++) snprintf(hex + 2 * i, 3, "%02x", r[i]);
  j->dir = slash ? strndup_c(path, (size_t)(slash - path) + 1)
                 : strndup_c("./", 2);
  n = strlen(name) + sizeof "." TMP_TAG;
  if (j->dir == NULL || (j->prefix = malloc(n)) == NULL) return 0;
  snprintf(j->prefix, n, ".%s" TMP_TAG, name);
  n = strlen(j->dir) + strlen(j->prefix) + 40;       /* pid, '-', hex */
  if ((j->tmp = malloc(n)) == NULL) return 0;
  snprintf(j->tmp, n, "%s%s%d-%s", j->dir, j->prefix, (int)uv_os_getpid(),
           hex);
  return 1;
}

static int write_common (lua_State *L, int flags, const char *fname) {
  const char *path = check_path(L, 1, fname);
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
  lua_settop(L, 2);                      /* data stays alive until copied */
  j = job_new(L, JOB_WRITE, path, fname);
  j->flags = flags;
  j->mode = mode;
  j->atomic = atomic;
  j->len = len;
  j->buf = malloc(len + 1);
  if (j->buf == NULL || (atomic && !tmp_names(j))) {
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

/* fs.copy(from, to): a regular file, with its mode. */
static int fs_copy (lua_State *L) {
  const char *from = check_path(L, 1, "fs.copy");
  const char *to = check_path(L, 2, "fs.copy");
  file_job *j;
  lua_settop(L, 2);
  j = job_new(L, JOB_COPY, from, "fs.copy");
  if ((j->to = strdup(to)) == NULL) {
    job_free(j);
    return luaL_error(L, "fs.copy: out of memory");
  }
  return job_start(L, j, "fs.copy");
}

/* ---- one-step calls: stat, mkdir, remove, rename... ---------------------- */

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

#define PATH(i, fname) check_path(L, (i), (fname))
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
  if (op->aborted) return op_fail(L, op, UV_ECANCELED, "mkdir");
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

/* A File is a userdata (its path as user value). On a regular file or a
 * device its reads and writes are thread-pool requests on fd; on a FIFO,
 * pipe, socket or terminal they go through st, a uv stream whose memory
 * is freed in its close callback. A thread-pool read borrows the read
 * buffer (f->in.base is NULL meanwhile) and gives it back in its
 * continuation; so closing the File, or a second reader, can never free
 * or move memory a worker writes into. The descriptor is closed once no
 * request is in flight on it (a closed fd number could be reused by
 * another open while a worker still uses it). */
typedef struct file {
  uv_file fd;                   /* -1 once the descriptor is closed */
  int closed;                   /* closed by the script */
  int reading;                  /* a read is in flight: others get EBUSY */
  int nops;                     /* thread-pool requests in flight on fd */
  int eof;
  luaio_buf in;                 /* read-ahead; a stream's reads fill it */
  size_t chunk;                 /* next read size: doubles, so a long
                                   scan makes few thread-pool trips */
  luaio_stream *st;             /* stream kinds: the host's stream */
  lua_KFunction then;           /* stream kinds: what runs after a fill */
} file;

/* Push the path the File at idx was opened with. [-0, +1] */
static const char *file_path (lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
  return lua_tostring(L, -1);
}

/* Raise an I/O error about the File at 1. */
static int file_error (lua_State *L, const char *kind, const char *code,
                       const char *fname, const char *msg) {
  const char *path = file_path(L, 1);
  luaio_push_error(L, kind, code, msg);
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  if (path) { lua_pushstring(L, path); lua_setfield(L, -2, "path"); }
  return luaio_raise(L);
}

static int closed_error (lua_State *L, const char *fname) {
  return file_error(L, "io", "ECANCELED", fname, "the file was closed");
}

static int busy_error (lua_State *L, const char *fname) {
  return file_error(L, "io", "EBUSY", fname,
                    "another task is reading this file");
}

static int raise_at_file (lua_State *L, int status, const char *fname) {
  return luaio_raise_uv(L, status, fname, "path", file_path(L, 1));
}

static file *check_file (lua_State *L, const char *fname) {
  file *f = (file *)luaL_checkudata(L, 1, "luaio.File");
  if (f->closed) luaL_error(L, "%s: attempt to use a closed file", fname);
  return f;
}

/* A thread-pool request on f ended (in its continuation): a close that
 * waited for it closes the descriptor now. */
static void file_op_end (file *f) {
  if (--f->nops == 0 && f->closed && f->fd >= 0) {
    close(f->fd);
    f->fd = -1;
  }
}

/* Close f: wakes its stream reader (it sees the File closed), ends the
 * stream's pending writes with UV_ECANCELED, and closes fd now or, with
 * thread-pool requests in flight, when the last one ends. */
static void file_close_now (file *f) {
  if (f->closed) return;
  f->closed = 1;
  if (f->st) {
    luaio__stream_close(f->st);           /* closes the fd too; wakes
                                             the reader and writers */
    f->st = NULL;
    f->fd = -1;
  }
  else if (f->nops == 0 && f->fd >= 0) {
    close(f->fd);
    f->fd = -1;
  }
  luaio__buf_free(&f->in);                 /* NULL while lent */
}

/* f:close() (also <close> and collection): closing twice is fine. */
static int file_close (lua_State *L) {
  file_close_now((file *)luaL_checkudata(L, 1, "luaio.File"));
  return 0;
}

/* ---- streams: FIFOs, pipes, sockets, terminals ---- */

static int new_file_ud (lua_State *L) {
  lua_newuserdatauv(L, sizeof(file), 1);
  return 1;
}

/* Push a File on fd (taking it: closed if this raises), its path from
 * stack index path. [-0, +1] */
static file *push_file (lua_State *L, uv_file fd, int path) {
  struct stat st;
  file *f;
  path = lua_absindex(L, path);
  if (protected_push(L, new_file_ud, NULL, 0) != LUA_OK) {
    close(fd);
    lua_error(L);
  }
  f = (file *)lua_touserdata(L, -1);
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->closed = 1;                           /* until fd is ours */
  luaL_setmetatable(L, "luaio.File");
  lua_pushvalue(L, path);
  lua_setiuservalue(L, -2, 1);
  if (fstat(fd, &st) == 0 && is_stream(fd, &st)) {
    int rc = luaio__stream_open_fd(luaio__host(L), fd, &f->st);
    if (rc < 0) {
      close(fd);
      luaio_raise_uv(L, rc, "open", "path", lua_tostring(L, path));
    }
    f->st->in = &f->in;                  /* freed after the stream's close */
    f->st->read_ahead = 0;               /* a chunk per read: a terminal's
                                            input is not taken early */
  }
  else set_blocking(fd);
  f->fd = fd;
  f->closed = 0;
  return f;
}

static int stream_fill_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = (file *)lua_touserdata(L, 1);
  const char *fname = (const char *)ctx;
  lua_pop(L, 1);                                   /* the waiter */
  f->reading = 0;
  if (f->closed) return closed_error(L, fname);
  if (status < 0) return raise_at_file(L, status, fname);
  if (f->st->read_err) {
    status = f->st->read_err;
    f->st->read_err = 0;
    return raise_at_file(L, status, fname);
  }
  if (f->st->eof) f->eof = 1;
  return f->then(L, 0, 0);
}

static int stream_fill (lua_State *L, file *f, lua_KFunction k,
                        const char *fname) {
  int rc = luaio__stream_read_start(f->st);
  if (rc < 0) return raise_at_file(L, rc, fname);
  f->then = k;
  f->reading = 1;
  return luaio_waitlist_wait(L, &f->st->readers, stream_fill_k,
                             (lua_KContext)fname);
}

/* ---- reading ---- */

/* The continuation of a thread-pool fill: takes the buffer back (or
 * frees it if the File was closed meanwhile), then goes on with the
 * read. Data read before a cancel stays buffered for the next read. */
static int fill_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  lua_KFunction k = op->then;
  ssize_t n = op->req.result;
  int aborted = op->aborted;
  f->reading = 0;
  file_op_end(f);
  if (f->closed) {
    op_free(op);                                  /* frees the buffer */
    return closed_error(L, "file:read");
  }
  f->in.base = op->buf;
  op->buf = NULL;
  if (status == 0 && n > 0) f->in.len += (size_t)n;
  else if (status == 0) f->eof = 1;
  op_free(op);
  if (status < 0) return raise_at_file(L, status, "read");
  if (aborted) return luaio_raise_uv(L, UV_ECANCELED, "read", NULL, NULL);
  /* Cancelled after the read completed but before the task resumed:
   * raise now, before k consumes data the cancellation would discard. */
  luaio_check_wait(L, "file:read");
  return k(L, 0, 0);
}

/* Read one more chunk into f's buffer, then continue with k (the File
 * at 1). */
static int fill (lua_State *L, file *f, lua_KFunction k, const char *fname) {
  fs_op *op;
  uv_buf_t b;
  int rc;
  if (f->reading) return busy_error(L, fname);
  luaio_check_wait(L, fname);
  if (f->st) return stream_fill(L, f, k, fname);
  if (f->chunk == 0) f->chunk = LINE_CHUNK;
  else if (f->chunk < LINE_CHUNK_MAX) f->chunk *= 2;
  if (!luaio__buf_reserve(&f->in, f->chunk))
    return luaL_error(L, "%s: out of memory", fname);
  op = op_new(L, fname);
  op->then = k;
  op->buf = f->in.base;                            /* lent */
  f->in.base = NULL;
  b = uv_buf_init(op->buf + f->in.start + f->in.len,
                  (unsigned)(f->in.cap - f->in.start - f->in.len));
  rc = uv_fs_read(op->h->loop, &op->req, f->fd, &b, 1, -1, fs_cb);
  if (rc < 0) {
    f->in.base = op->buf;
    op->buf = NULL;
    op_free(op);
    return raise_at_file(L, rc, "read");
  }
  f->reading = 1;
  f->nops++;
  return luaio_wait(L, &op->w, fill_k, (lua_KContext)op);
}

#define take(L, f, n, skip) luaio__buf_take((L), &(f)->in, (n), (skip))

static int line_limit_error (lua_State *L, const char *fname, size_t max) {
  lua_pushfstring(L, "line longer than max_line (%I bytes)", (lua_Integer)max);
  return file_error(L, "limit", NULL, fname, lua_tostring(L, -1));
}

/* Stack: the File (checked) at 1, max_line at 2. */
static int line_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = (file *)lua_touserdata(L, 1);
  size_t max = (size_t)lua_tointeger(L, 2);
  const char *nl;
  (void)status; (void)ctx;
  lua_settop(L, 2);
  if (f->closed) return closed_error(L, "file:lines");
  if (f->reading) return busy_error(L, "file:lines");
  nl = f->in.len ? memchr(f->in.base + f->in.start, '\n', f->in.len) : NULL;
  if (nl) {
    size_t n = (size_t)(nl - (f->in.base + f->in.start));
    if (n > max) return line_limit_error(L, "file:lines", max);
    size_t keep = (n > 0 && nl[-1] == '\r') ? n - 1 : n;
    take(L, f, keep, n - keep + 1);                /* skips \r\n or \n */
    return 1;
  }
  if (f->in.len > max) return line_limit_error(L, "file:lines", max);
  if (f->eof) {
    if (f->in.len == 0) { lua_pushnil(L); return 1; }
    take(L, f, f->in.len, 0);                         /* last line, no \n */
    return 1;
  }
  return fill(L, f, line_k, "file:lines");
}

/* f:read_line([{max_line=}]) -> next line without "\n"/"\r\n", or nil at
 * the end. */
static int file_read_line (lua_State *L) {
  lua_Integer max;
  check_file(L, "file:read_line");
  max = opt_limit(L, 2, "file:read_line", "max_line", DEFAULT_MAX_LINE, 1);
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  return line_k(L, 0, 0);
}

/* The per-line hot path: a buffered line returns at once. Upvalues: the
 * File, max_line. */
static int lines_iter (lua_State *L) {
  file *f = (file *)lua_touserdata(L, lua_upvalueindex(1));
  if (f->in.len && !f->reading && !f->closed) {
    const char *p = f->in.base + f->in.start;
    const char *nl = memchr(p, '\n', f->in.len);
    size_t n = nl ? (size_t)(nl - p) : 0;
    if (nl && n <= (size_t)lua_tointeger(L, lua_upvalueindex(2))) {
      lua_pushlstring(L, p, (n > 0 && nl[-1] == '\r') ? n - 1 : n);
      f->in.start += n + 1;
      f->in.len -= n + 1;
      return 1;
    }
  }
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  return line_k(L, 0, 0);
}

/* f:lines([{max_line=}]) -> iterator over lines. */
static int file_lines (lua_State *L) {
  lua_Integer max;
  check_file(L, "file:lines");
  max = opt_limit(L, 2, "file:lines", "max_line", DEFAULT_MAX_LINE, 1);
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  lua_pushcclosure(L, lines_iter, 2);
  return 1;
}

static int read_n_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = (file *)lua_touserdata(L, 1);
  lua_Integer n = lua_tointeger(L, 2);
  (void)status; (void)ctx;
  lua_settop(L, 2);
  if (f->reading) return busy_error(L, "file:read");
  if (f->in.len > 0) {
    take(L, f, f->in.len < (size_t)n ? f->in.len : (size_t)n, 0);
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

/* Stack: the File at 1, max_size at 2. */
static int read_all_k (lua_State *L, int status, lua_KContext ctx) {
  file *f = (file *)lua_touserdata(L, 1);
  lua_Integer max = lua_tointeger(L, 2);
  (void)status; (void)ctx;
  lua_settop(L, 2);
  if (f->reading) return busy_error(L, "file:read_all");
  if (f->in.len > (size_t)max)
    return size_error(L, "file:read_all", file_path(L, 1), max);
  if (f->eof) { take(L, f, f->in.len, 0); return 1; }
  return fill(L, f, read_all_k, "file:read_all");
}

/* f:read_all([{max_size=}]) -> the rest of the file */
static int file_read_all (lua_State *L) {
  lua_Integer max;
  check_file(L, "file:read_all");
  max = opt_limit(L, 2, "file:read_all", "max_size", DEFAULT_MAX_SIZE, 0);
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  return read_all_k(L, 0, 0);
}

/* ---- writing ---- */

/* A write to a stream kind waits until the stream's queue is empty: its
 * waiter sits on the stream's writers list, woken at low water, on
 * empty, on an error and on close. */
typedef struct swrite_op {
  luaio_waiter w;
  file *f;                      /* anchored by the waiting task */
  int aborted;
} swrite_op;

/* A stream write cannot be taken back half-way: cancelling it closes
 * the File (the queued data then ends with UV_ECANCELED), so nothing of
 * it goes out after the cancel. */
static void swrite_abort (luaio_waiter *w) {
  swrite_op *op = (swrite_op *)((char *)w - offsetof(swrite_op, w));
  op->aborted = 1;
  file_close_now(op->f);                  /* wakes this waiter */
}

static int swrite_k (lua_State *L, int status, lua_KContext ctx);

static int swrite_wait (lua_State *L, swrite_op *op) {
  luaio_waitlist_push(&op->f->st->writers, &op->w);
  return luaio_wait(L, &op->w, swrite_k, (lua_KContext)op);
}

static int swrite_k (lua_State *L, int status, lua_KContext ctx) {
  swrite_op *op = (swrite_op *)ctx;
  int aborted = op->aborted;
  file *f = op->f;
  if (status == 0 && !f->closed && f->st->queued > 0 && !f->st->write_err)
    return swrite_wait(L, op);                     /* at low water */
  free(op);
  if (aborted) return raise_at_file(L, UV_ECANCELED, "write");
  if (f->closed) return closed_error(L, "file:write");
  if (status < 0) return raise_at_file(L, status, "write");
  if (f->st->write_err) return raise_at_file(L, f->st->write_err, "write");
  return 0;
}

static int stream_write (lua_State *L, file *f, const char *data,
                         size_t len) {
  swrite_op *op;
  int rc = luaio__stream_send(f->st, data, len);
  if (rc == UV_ENOMEM) return luaL_error(L, "file:write: out of memory");
  if (rc < 0) return raise_at_file(L, rc, "write");
  if (f->st->queued == 0) return 0;
  if ((op = calloc(1, sizeof *op)) == NULL)
    return luaL_error(L, "file:write: out of memory");
  op->f = f;
  luaio_waiter_init(&op->w, swrite_abort);
  op->w.must_finish = 1;
  return swrite_wait(L, op);
}

/* Submit the next part of a thread-pool write. */
static int fwrite_k (lua_State *L, int status, lua_KContext ctx);

static int fwrite_submit (lua_State *L, file *f, fs_op *op) {
  size_t n = op->len - op->done;
  uv_buf_t b = uv_buf_init(op->buf + op->done,
                           (unsigned)(n > (1u << 30) ? (1u << 30) : n));
  int rc;
  op_reset(op);
  rc = uv_fs_write(op->h->loop, &op->req, f->fd, &b, 1, -1, fs_cb);
  if (rc < 0) return op_fail_at(L, op, rc, "write", file_path(L, 1));
  f->nops++;
  return luaio_wait(L, &op->w, fwrite_k, (lua_KContext)op);
}

/* A partial write goes on with the rest; a cancel stops between parts. */
static int fwrite_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  file_op_end(f);
  if (status < 0) return op_fail_at(L, op, status, "write", file_path(L, 1));
  op->done += (size_t)op->req.result;
  if (op->done >= op->len) { op_free(op); return 0; }
  if (op->aborted) return op_fail_at(L, op, UV_ECANCELED, "write", NULL);
  if (f->closed) { op_free(op); return closed_error(L, "file:write"); }
  return fwrite_submit(L, f, op);
}

/* f:write(data): all of it, even when the OS takes it in parts. */
static int file_write (lua_State *L) {
  file *f = check_file(L, "file:write");
  size_t len;
  const char *data = luaio__checkstring(L, 2, "file:write", &len);
  fs_op *op;
  luaio_check_wait(L, "file:write");
  if (f->st) return stream_write(L, f, data, len);
  if (len == 0) return 0;
  op = op_new(L, "file:write");
  if ((op->buf = malloc(len)) == NULL)
    return op_fail_at(L, op, UV_ENOMEM, "write", NULL);
  memcpy(op->buf, data, len);
  op->len = len;
  lua_settop(L, 1);
  return fwrite_submit(L, f, op);
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
  if (f->reading) return busy_error(L, "file:seek");
  if (whences[w] == SEEK_CUR) off -= (lua_Integer)f->in.len;  /* read-ahead */
  pos = lseek(f->fd, (off_t)off, whences[w]);
  if (pos < 0) return raise_at_file(L, uv_translate_sys_error(errno), "seek");
  f->in.start = f->in.len = 0;
  f->eof = 0;
  f->chunk = 0;
  lua_pushinteger(L, (lua_Integer)pos);
  return 1;
}

static int sync_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file_op_end((file *)lua_touserdata(L, 1));
  if (status < 0) return op_fail_at(L, op, status, "fsync", file_path(L, 1));
  op_free(op);
  return 0;
}

/* f:sync(): flushes the file to disk. */
static int file_sync (lua_State *L) {
  file *f = check_file(L, "file:sync");
  fs_op *op;
  int rc;
  lua_settop(L, 1);
  if (f->st) return 0;                         /* nothing to flush */
  op = op_new(L, "file:sync");
  rc = uv_fs_fsync(op->h->loop, &op->req, f->fd, fs_cb);
  if (rc < 0) return op_fail_at(L, op, rc, "fsync", file_path(L, 1));
  f->nops++;
  return luaio_wait(L, &op->w, sync_k, (lua_KContext)op);
}

static int file_tostring (lua_State *L) {
  file *f = (file *)luaL_checkudata(L, 1, "luaio.File");
  lua_pushfstring(L, "luaio.File (%s)", f->closed ? "closed" : "open");
  return 1;
}

/* ---- opening ---- */

/* Stack: path at 1. */
static int open_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  uv_file fd;
  if (status < 0) return op_fail(L, op, status, "open");
  if (op->aborted) return op_fail(L, op, UV_ECANCELED, "open");
  fd = op->fd;
  op->fd = -1;                           /* the File owns it now */
  op_free(op);
  push_file(L, fd, 1);
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

/* fs.open(path [, mode]) -> file; mode as io.open: r w a r+ w+ a+ x.
 * O_NONBLOCK: opening a FIFO never waits for its other end (for
 * writing without a reader it fails with ENXIO). */
static int fs_open (lua_State *L) {
  const char *p = check_path(L, 1, "fs.open");
  const char *mode = luaio__optstring(L, 2, "fs.open", "r", NULL);
  int flags = mode_flags(mode);
  fs_op *op;
  if (flags < 0) return luaio__argerror(L, 2, "fs.open", "invalid mode");
  lua_settop(L, 1);
  op = op_new(L, "fs.open");
  return op_wait(L, op, uv_fs_open(op->h->loop, &op->req, p,
                                   flags | O_NONBLOCK, 0644, fs_cb),
                 open_k, "open");
}

/* ---- whole-file calls on a stream kind ---- */

/* Stack: the File, then the call's result or error on top. */
static int stream_done_k (lua_State *L, int status, lua_KContext ctx) {
  file_close_now((file *)lua_touserdata(L, -2));
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return (int)ctx;                       /* reading: the content */
}

/* fs.read or fs.write found a FIFO, socket or terminal: finish through
 * a File on a uv stream, which never blocks a worker. Stack: path, data
 * (writing). */
static int job_stream (lua_State *L, file_job *j) {
  int reading = j->kind == JOB_READ, fd = j->stream_fd;
  lua_Integer max = (lua_Integer)j->max;
  j->stream_fd = -1;
  job_free(j);
  lua_settop(L, 2);
  push_file(L, fd, 1);                             /* path data f */
  lua_pushcfunction(L, reading ? file_read_all : file_write);
  lua_pushvalue(L, 3);
  if (reading) {
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, max);
    lua_setfield(L, -2, "max_size");
  }
  else lua_pushvalue(L, 2);
  return stream_done_k(L, lua_pcallk(L, 2, 1, 0, reading, stream_done_k),
                       reading);
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
  static const luaL_Reg file_meta[] = {
    {"__tostring", file_tostring}, {NULL, NULL}
  };
  luaio__host(L);
  luaio__class(L, "luaio.File", file_methods, file_close, file_meta);
  luaio__class(L, "luaio.Watcher", watch_methods, watch_close, NULL);
  luaL_newlib(L, fs_funcs);
  return 1;
}
