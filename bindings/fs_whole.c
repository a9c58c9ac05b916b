/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_whole.c: fs.read, fs.write, fs.append and fs.copy, each one
 * thread-pool job.
 */
#include "fs.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#define WRITE_STEP (1024 * 1024)     /* atomic writes: cancel point */
#define COPY_CHUNK (256 * 1024)
#define TMP_TAG ".luaio-tmp-"
#define STALE_SECONDS (24 * 3600)

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
  luaio_host *h;
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

/* The sandbox: is the file opened where the checked path led (not out
 * through a folder swapped for a symlink meanwhile)? Closes it if not. */
static int job_denied (file_job *j, int fd) {
  if (luaio__perm_fd_ok(j->h, fd)) return 0;
  close(fd);
  j->err = LUAIO_EDENIED;
  j->failed = "open";
  return 1;
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
  if (job_denied(j, fd)) return;
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
  if (job_denied(j, fd)) { if (j->atomic) unlink(j->tmp); return; }
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
  if (job_denied(j, in)) return;
  if (is_stream(in, &st) || S_ISDIR(st.st_mode)) {
    j->err = S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EINVAL;
    j->failed = "copy";
    close(in);
    return;
  }
  out = open_file(j->to, O_WRONLY | O_CREAT, st.st_mode & 07777, &dst);
  j->err_at_to = 1;                        /* until the copy starts */
  if (out < 0) job_fail(j, "open");
  else if (job_denied(j, out)) out = -1;      /* before any truncation */
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
  file_job *j = LUAIO_CONTAINER(req, file_job, work);
  if (job_cancelled(j)) return;
  switch (j->kind) {
    case JOB_READ: job_read(j); break;
    case JOB_WRITE: job_write(j); break;
    default: job_copy(j); break;
  }
}

static void job_done_cb (uv_work_t *req, int status) {
  file_job *j = LUAIO_CONTAINER(req, file_job, work);
  if (!luaio_waiter_done(&j->w, status < 0 ? status : j->err)) job_free(j);
}

static void job_abort (luaio_waiter *w) {
  file_job *j = LUAIO_CONTAINER(w, file_job, w);
  atomic_store(&j->cancelled, 1);
  uv_cancel((uv_req_t *)&j->work);      /* the callback comes later */
}

/* The job found a FIFO, socket or terminal: the loop finishes it. */
static int job_stream (lua_State *L, file_job *j) {
  int reading = j->kind == JOB_READ, fd = j->stream_fd;
  lua_Integer max = (lua_Integer)j->max;
  j->stream_fd = -1;
  job_free(j);
  return luaio__fs_stream_whole(L, reading, fd, max);
}

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
  luaio__wait_detail(L, "%s", path);
  j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(path)) == NULL) {
    free(j);
    luaL_error(L, "%s: out of memory", fname);
  }
  j->kind = kind;
  j->h = luaio__host(L);
  j->stream_fd = -1;
  atomic_init(&j->cancelled, 0);
  return j;
}

static int job_start (lua_State *L, file_job *j, const char *fname) {
  int rc;
  luaio_waiter_init(&j->w, job_abort);
  j->w.must_finish = 1;
  rc = uv_queue_work(luaio_loop(luaio__host(L)), &j->work, job_work_cb,
                     job_done_cb);
  if (rc < 0) {
    job_free(j);
    return luaio_raise_uv(L, rc, fname, "path", lua_tostring(L, 1));
  }
  return luaio_wait(L, &j->w, job_k, (lua_KContext)j);
}

/* fs.read(path [, {max_size=}]) -> the whole content */
static int fs_read (lua_State *L) {
  const char *path = PATH(1, "fs.read");
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
  const char *path = PATH(1, fname);
  size_t len;
  const char *data = luaio__checkstring(L, 2, fname, &len);
  file_job *j;
  int atomic = 0, mode = 0644;
  if (!lua_isnoneornil(L, 3)) {
    luaio__checktype(L, 3, fname, LUA_TTABLE);
    lua_getfield(L, 3, "atomic");
    atomic = lua_toboolean(L, -1);
    mode = (int)luaio__optfield_integer(L, 3, "mode", fname, 0644);
    lua_pop(L, 1);
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
  const char *from = PATH(1, "fs.copy");
  const char *to = PATH(2, "fs.copy");
  file_job *j;
  lua_settop(L, 2);
  j = job_new(L, JOB_COPY, from, "fs.copy");
  if ((j->to = strdup(to)) == NULL) {
    job_free(j);
    return luaL_error(L, "fs.copy: out of memory");
  }
  return job_start(L, j, "fs.copy");
}

static const luaL_Reg whole_funcs[] = {
  {"read", fs_read}, {"write", fs_write}, {"append", fs_append},
  {"copy", fs_copy}, {NULL, NULL}
};

void luaio__fs_whole_open (lua_State *L) {
  luaL_setfuncs(L, whole_funcs, 0);
}
