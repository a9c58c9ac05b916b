/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_file.c: File handles (fs.open). Regular files and devices are
 * read and written on the thread pool; FIFOs, pipes, sockets and
 * terminals through the host's stream engine (host/stream.h).
 */
#include "fs.h"
#include <errno.h>

#define LINE_CHUNK 65536             /* first read-ahead of a file */
#define LINE_CHUNK_MAX (1024 * 1024) /* grows to this on long reads */
#define LINE_HEAD 16384              /* room before a chunk for the end
                                        of the buffer: the partial line */

/* ---- file handles ------------------------------------------------------- */

/* A File is a userdata (its path as user value). On a regular file or a
 * device its reads and writes are thread-pool requests on fd; on a FIFO,
 * pipe, socket or terminal they go through st, a uv stream whose memory
 * is freed in its close callback. Thread-pool reads go through an ahead
 * (below), which owns the buffer it reads into until its callback: so
 * closing the File, or a second reader, can never free or move memory a
 * worker writes into. The descriptor is closed once no request is in
 * flight on it (a closed fd number could be reused by another open while
 * a worker still uses it). */
typedef struct ahead ahead;

typedef struct file {
  uv_file fd;                   /* -1 once the descriptor is closed */
  int closed;                   /* closed by the script */
  int reading;                  /* a read is in flight: others get EBUSY */
  int nops;                     /* thread-pool requests in flight on fd,
                                   the read-ahead included */
  int nwrites;                  /* thread-pool writes among them */
  int eof;
  int prefetch;                 /* a regular file: read the next chunk
                                   while the script uses this one */
  int short_read;               /* the last read was short: at the end
                                   (for now), so no read-ahead */
  luaio_buf in;                 /* read-ahead; a stream's reads fill it */
  size_t chunk;                 /* next read size: doubles, so a long
                                   scan makes few thread-pool trips */
  ahead *next;                  /* the next chunk's read, or NULL */
  char *spare;                  /* a buffer for the next ahead */
  size_t spare_cap;
  luaio_stream *st;             /* stream kinds: the host's stream */
  lua_KFunction then;           /* stream kinds: what runs after a fill */
} file;

/* One chunk's read on the thread pool, into buf + LINE_HEAD. It belongs
 * to the File (f->next) until taken, whether or not a task waits on it:
 * a reader takes it when done (the buffered partial line is copied in
 * front of the chunk and the buffers swap) and starts the next one, so
 * while the script works on a chunk the next is being read, and the
 * task rarely waits on a thread-pool round trip. A prefetched read is a
 * pread at the descriptor's position (off), which taking it then moves
 * past the chunk: until then the position is the File's, so a seek or
 * write just marks the read stale and nobody uses its data. Closed or
 * collected while its read runs, the File hands it the descriptor
 * (when nothing else uses it): its callback closes it and frees all. */
struct ahead {
  uv_fs_t req;
  luaio_waiter w;               /* a reader waiting for it, if any */
  file *f;                      /* NULL once orphaned */
  uv_file fd;                   /* orphaned: the descriptor to close */
  char *buf;                    /* cap bytes, the data at LINE_HEAD */
  size_t cap;
  int64_t off;                  /* pread offset, -1: the fd's position */
  int done;                     /* its callback ran */
  int stale;                    /* position moved: data not wanted */
  int aborted;                  /* the waiting task was cancelled */
  lua_KFunction then;           /* what the waiting reader does next */
};

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

static void ahead_free (ahead *a) {
  if (a->fd >= 0) close(a->fd);
  uv_fs_req_cleanup(&a->req);
  free(a->buf);
  free(a);
}

/* f is closed: its read-ahead that no task waits on goes (freed if done;
 * still reading, it is cancelled and, if nothing else uses the
 * descriptor, takes it along), and the descriptor is closed once no
 * request uses it. */
static void closed_settle (file *f) {
  ahead *a = f->next;
  if (a && a->w.task == NULL) {
    if (a->done) {
      f->next = NULL;
      f->nops--;
      ahead_free(a);
    }
    else if (f->nops == 1) {
      f->next = NULL;
      f->nops = 0;
      a->f = NULL;
      a->fd = f->fd;
      f->fd = -1;
      uv_cancel((uv_req_t *)&a->req);
    }
  }
  if (f->nops == 0 && f->fd >= 0) {
    close(f->fd);
    f->fd = -1;
  }
}

/* A thread-pool request on f ended (in its continuation): a close that
 * waited for it closes the descriptor now. */
static void file_op_end (file *f) {
  f->nops--;
  if (f->closed) closed_settle(f);
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
  else closed_settle(f);
  luaio__buf_free(&f->in);
  free(f->spare);
  f->spare = NULL;
}

/* f:close() (also <close> and collection): closing twice is fine. */
static int file_close (lua_State *L) {
  file_close_now((file *)luaL_checkudata(L, 1, "luaio.File"));
  luaio__resource_closed(L, 1);
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
  int known;
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
  known = fstat(fd, &st) == 0;
  if (known && is_stream(fd, &st)) {
    int rc = luaio__stream_open_fd(luaio__host(L), fd, &f->st);
    if (rc < 0) {
      close(fd);
      luaio_raise_uv(L, rc, "open", "path", lua_tostring(L, path));
    }
    f->st->in = &f->in;                  /* freed after the stream's close */
    f->st->read_ahead = 0;               /* a chunk per read: a terminal's
                                            input is not taken early */
  }
  else {
    set_blocking(fd);
    f->prefetch = known && S_ISREG(st.st_mode);     /* pread works */
  }
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

/* ---- the read-ahead ---- */

static void ahead_cb (uv_fs_t *req) {
  ahead *a = LUAIO_CONTAINER(req, ahead, req);
  a->done = 1;
  if (a->f == NULL) { ahead_free(a); return; }       /* orphaned */
  if (!luaio_waiter_done(&a->w, req->result < 0 ? (int)req->result : 0)
      && a->f->closed)
    closed_settle(a->f);                          /* nobody waits on it */
}

/* The waiting task is cancelled: a queued read is dropped; a running one
 * finishes first (must_finish), and its data stays buffered. */
static void ahead_abort (luaio_waiter *w) {
  ahead *a = LUAIO_CONTAINER(w, ahead, w);
  a->aborted = 1;
  uv_cancel((uv_req_t *)&a->req);
}

/* A buffer of at least need bytes for an ahead: f's spare if it is big
 * enough (a long scan then allocates two buffers, not one a chunk). */
static char *ahead_buf (file *f, size_t need, size_t *cap) {
  char *p = f->spare;
  if (p && f->spare_cap >= need) {
    *cap = f->spare_cap;
    f->spare = NULL;
    return p;
  }
  free(p);
  f->spare = NULL;
  *cap = need;
  return malloc(need);
}

/* Start reading f's next chunk. prefetch: only as a pread at the
 * descriptor's position (see struct ahead), and not while a write runs
 * (its end would move the position under the read). Returns 0 or a uv
 * error. */
static int ahead_start (lua_State *L, file *f, int prefetch) {
  ahead *a;
  uv_buf_t b;
  int64_t off = -1;
  int rc;
  if (f->prefetch && f->nwrites == 0) off = lseek(f->fd, 0, SEEK_CUR);
  if (prefetch && off < 0) return 0;
  if ((a = calloc(1, sizeof *a)) == NULL) return UV_ENOMEM;
  if (f->chunk == 0) f->chunk = LINE_CHUNK;
  else if (f->chunk < LINE_CHUNK_MAX) f->chunk *= 2;
  if ((a->buf = ahead_buf(f, LINE_HEAD + f->chunk, &a->cap)) == NULL) {
    free(a);
    return UV_ENOMEM;
  }
  a->f = f;
  a->fd = -1;
  a->off = off;
  luaio_waiter_init(&a->w, ahead_abort);
  a->w.must_finish = 1;
  b = uv_buf_init(a->buf + LINE_HEAD, (unsigned)(a->cap - LINE_HEAD));
  rc = uv_fs_read(luaio_loop(luaio__host(L)), &a->req, f->fd, &b, 1, off,
                  ahead_cb);
  if (rc < 0) { ahead_free(a); return rc; }
  f->next = a;
  f->nops++;
  return 0;
}

/* Keep buf (cap bytes) for the next ahead. */
static void spare_keep (file *f, char *buf, size_t cap) {
  if (f->spare && f->spare_cap >= cap) { free(buf); return; }
  free(f->spare);
  f->spare = buf;
  f->spare_cap = cap;
}

/* Put the n bytes a read into after f's buffered ones: the buffered
 * partial line goes in front of them when it fits in the head room (the
 * buffers swap), else the chunk is appended. 0 or UV_ENOMEM. */
static int ahead_merge (file *f, ahead *a, size_t n) {
  size_t keep = f->in.len;
  if (keep <= LINE_HEAD) {
    if (keep) memcpy(a->buf + LINE_HEAD - keep, f->in.base + f->in.start,
                     keep);
    if (f->in.base) spare_keep(f, f->in.base, f->in.cap);
    f->in.base = a->buf;
    f->in.cap = a->cap;
    f->in.start = LINE_HEAD - keep;
    f->in.len = keep + n;
  }
  else {
    if (!luaio__buf_reserve(&f->in, n)) return UV_ENOMEM;
    memcpy(f->in.base + f->in.start + f->in.len, a->buf + LINE_HEAD, n);
    f->in.len += n;
    spare_keep(f, a->buf, a->cap);
  }
  a->buf = NULL;
  return 0;
}

/* Take f's finished read-ahead: its data goes after the buffered bytes
 * and the descriptor's position past it. Returns 0, 1 when it was stale
 * (its data dropped: read again), or a uv error. */
static int ahead_take (file *f) {
  ahead *a = f->next;
  ssize_t n = a->req.result;
  int rc = 0;
  f->next = NULL;
  f->short_read = n >= 0 && (size_t)n < a->cap - LINE_HEAD;
  if (a->stale) rc = 1;
  else if (n < 0) rc = (int)n;
  else if (n == 0) f->eof = 1;
  else if ((rc = ahead_merge(f, a, (size_t)n)) == 0 && a->off >= 0)
    lseek(f->fd, (off_t)(a->off + n), SEEK_SET);
  ahead_free(a);
  file_op_end(f);
  return rc;
}

/* The position is about to move (a seek, a write, a hand-over of the
 * descriptor): a read-ahead's data would be from the old one. Dropped
 * if done and unwaited, else marked stale (cancelled if still queued)
 * for whoever takes it. */
static void ahead_drop (file *f) {
  ahead *a = f->next;
  if (a == NULL) return;
  if (a->done && a->w.task == NULL) {
    f->next = NULL;
    ahead_free(a);
    file_op_end(f);
    return;
  }
  a->stale = 1;
  if (!a->done) uv_cancel((uv_req_t *)&a->req);
}

static int fill (lua_State *L, file *f, lua_KFunction k, const char *fname);

/* f's read-ahead is done: take it, start the next, go on with k. */
static int ahead_got (lua_State *L, file *f, lua_KFunction k,
                      const char *fname) {
  int rc = ahead_take(f);
  if (rc == 1) return fill(L, f, k, fname);          /* stale: again */
  if (rc == UV_ENOMEM) return luaL_error(L, "%s: out of memory", fname);
  if (rc < 0) return raise_at_file(L, rc, "read");
  /* Cancelled after the read completed but before the task resumed:
   * raise now, before k consumes data the cancellation would discard. */
  luaio_check_wait(L, fname);
  if (!f->eof && !f->short_read && f->prefetch)
    ahead_start(L, f, 1);                  /* else at the next fill */
  return k(L, 0, 0);
}

/* The continuation of a wait on the read-ahead. Data read before a
 * cancel stays buffered for the next read. */
static int ahead_k (lua_State *L, int status, lua_KContext ctx) {
  const char *fname = (const char *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  ahead *a = f->next;
  (void)status;
  f->reading = 0;
  if (f->closed) {
    closed_settle(f);                             /* frees a, may close */
    return closed_error(L, fname);
  }
  if (a->aborted) {
    ahead_take(f);
    return luaio_raise_uv(L, UV_ECANCELED, "read", NULL, NULL);
  }
  return ahead_got(L, f, a->then, fname);
}

/* Read one more chunk into f's buffer, then continue with k (the File
 * at 1): take the read-ahead if it is done, else wait for it (starting
 * it first if there is none). */
static int fill (lua_State *L, file *f, lua_KFunction k, const char *fname) {
  int rc;
  if (f->reading) return busy_error(L, fname);
  luaio_check_wait(L, fname);
  if (f->st) return stream_fill(L, f, k, fname);
  if (f->next == NULL && (rc = ahead_start(L, f, 0)) < 0) {
    if (rc == UV_ENOMEM) return luaL_error(L, "%s: out of memory", fname);
    return raise_at_file(L, rc, "read");
  }
  if (f->next->done) return ahead_got(L, f, k, fname);
  f->reading = 1;
  f->next->then = k;
  return luaio_wait(L, &f->next->w, ahead_k, (lua_KContext)fname);
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
  swrite_op *op = LUAIO_CONTAINER(w, swrite_op, w);
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
  rc = uv_fs_write(luaio_loop(op->h), &op->req, f->fd, &b, 1, -1, fs_cb);
  if (rc < 0) return op_fail_at(L, op, rc, "write", file_path(L, 1));
  f->nops++;
  f->nwrites++;
  return luaio_wait(L, &op->w, fwrite_k, (lua_KContext)op);
}

/* A partial write goes on with the rest; a cancel stops between parts. */
static int fwrite_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  file *f = (file *)lua_touserdata(L, 1);
  f->nwrites--;
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
  ahead_drop(f);                   /* a read-ahead would predate it */
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
  int w = luaio__optenum(L, 2, "file:seek", "whence", names, 1);
  lua_Integer off = luaio__optinteger(L, 3, "file:seek", 0);
  off_t pos;
  if (f->reading) return busy_error(L, "file:seek");
  ahead_drop(f);                   /* never moved the position */
  if (whences[w] == SEEK_CUR) off -= (lua_Integer)f->in.len;  /* buffered */
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
/* file:fileno() -> the descriptor, for handing the file to other code
 * (luaio.proc's stdin/stdout/stderr take a File); the File keeps
 * owning it. */
static int file_fileno (lua_State *L) {
  file *f = check_file(L, "file:fileno");
  uv_os_fd_t fd = f->fd;
  if (f->st && uv_fileno(&f->st->u.h, &fd) != 0) fd = -1;
  if (fd < 0) return luaL_error(L, "file:fileno: the file has no descriptor");
  ahead_drop(f);           /* other code may move the position now: */
  f->prefetch = 0;         /* reads go back to one chunk at a time */
  lua_pushinteger(L, fd);
  return 1;
}

static int file_sync (lua_State *L) {
  file *f = check_file(L, "file:sync");
  fs_op *op;
  int rc;
  lua_settop(L, 1);
  if (f->st) return 0;                         /* nothing to flush */
  op = op_new(L, "file:sync");
  rc = uv_fs_fsync(luaio_loop(op->h), &op->req, f->fd, fs_cb);
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
  luaio__perm_fd(L, fd);             /* the sandbox: what was opened */
  luaio__resource_open(L, -1);
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
  const char *p = PATH(1, "fs.open");
  const char *mode = luaio__optstring(L, 2, "fs.open", "r", NULL);
  int flags = mode_flags(mode);
  fs_op *op;
  if (flags < 0) return luaio__argerror(L, 2, "fs.open", "invalid mode");
  if (flags & (O_WRONLY | O_RDWR)) p = luaio__perm_arg(L, 1, LUAIO_PERM_WRITE);
  lua_settop(L, 1);
  op = op_new(L, "fs.open");
  luaio__wait_detail(L, "%s", p);
  return op_wait(L, op, uv_fs_open(luaio_loop(op->h), &op->req, p,
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

/* Through a File on a uv stream, which never blocks a worker. */
int luaio__fs_stream_whole (lua_State *L, int reading, int fd,
                            lua_Integer max) {
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

static const luaL_Reg file_methods[] = {
  {"read", file_read}, {"read_all", file_read_all},
  {"read_line", file_read_line}, {"lines", file_lines},
  {"write", file_write}, {"seek", file_seek}, {"sync", file_sync},
  {"fileno", file_fileno}, {"close", file_close}, {NULL, NULL}
};

void luaio__fs_file_open (lua_State *L) {
  static const luaL_Reg file_meta[] = {
    {"__tostring", file_tostring}, {NULL, NULL}
  };
  luaio__class(L, "luaio.File", file_methods, file_close, file_meta);
  lua_pushcfunction(L, fs_open);
  lua_setfield(L, -2, "open");
}
