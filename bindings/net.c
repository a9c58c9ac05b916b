/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net.c: `luaio.net`, TCP streams, servers, DNS and UDP on libuv.
 *
 * A stream buffers what it reads: reads served from the buffer return at
 * once without yielding; otherwise the reader waits for more data.
 * Reading stops while the buffer is full and nobody reads (backpressure
 * on the reading side). Writes try to go out at once and queue the rest;
 * write() waits while the queue is above a high-water mark. The C side of
 * a stream lives until libuv's close callback, after its userdata.
 */
#include "../host/host.h"

#define READ_CHUNK 65536
#define BUFFER_LIMIT (1024 * 1024)      /* stop reading past this */
#define DEFAULT_MAX_LINE (64 * 1024)
#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)

typedef struct tstream {
  union { uv_handle_t h; uv_stream_t s; uv_tcp_t tcp; uv_pipe_t pipe; } u;
  luaio_host *host;
  char *buf;
  size_t start, len, cap;       /* data is buf[start .. start+len) */
  size_t max_line, queued;
  int eof, read_err, write_err, reading, is_pipe;
  int closing;                  /* close() is flushing: no new I/O */
  int closed;
  luaio_waitlist readers, writers;
} tstream;

typedef struct stream_ud {
  tstream *s;
} stream_ud;

/* Status a close wakes waiters with (a task's own cancellation comes as
 * UV_ECANCELED): their continuations raise closed_error. */
#define WAKE_CLOSED UV_EBADF

/* Raise an error of kind "io", code "ECANCELED", saying what was closed:
 * `stream:write: ECANCELED (the stream was closed)`. */
static int closed_error (lua_State *L, const char *fname, const char *what) {
  luaio_push_uv_error(L, UV_ECANCELED, fname, NULL, NULL);
  lua_pushfstring(L, "the %s was closed", what);
  lua_setfield(L, -2, "message");
  return luaio_raise(L);
}

/* A string argument that C will read up to its first NUL (a host name,
 * address or path): one with a NUL inside is refused, not truncated. */
static const char *check_cstring (lua_State *L, int arg, const char *fname,
                                  const char *what) {
  size_t len;
  const char *s = luaio__checkstring(L, arg, fname, &len);
  if (memchr(s, '\0', len) != NULL) {
    lua_pushfstring(L, "%s contains a NUL byte", what);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  return s;
}

static void stream_free_cb (uv_handle_t *h) {
  tstream *s = (tstream *)h->data;
  free(s->buf);
  free(s);
}

/* Close the handle now; the struct goes in the close callback. Every
 * task waiting on the stream (readers, blocked writers, drains, a close
 * flushing) wakes with WAKE_CLOSED. Writes still queued complete with
 * UV_ECANCELED before the close callback: each write_req owns its data
 * and is freed in write_cb. */
static void stream_close (tstream *s) {
  if (s->closed) return;
  s->closed = 1;
  luaio_waitlist_wake_all(&s->readers, WAKE_CLOSED);
  luaio_waitlist_wake_all(&s->writers, WAKE_CLOSED);
  uv_close(&s->u.h, stream_free_cb);
}

static tstream *stream_new (luaio_host *h, int is_pipe) {
  tstream *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->host = h;
  s->is_pipe = is_pipe;
  s->max_line = DEFAULT_MAX_LINE;
  if (is_pipe) uv_pipe_init(luaio_loop(h), &s->u.pipe, 0);
  else uv_tcp_init(luaio_loop(h), &s->u.tcp);
  s->u.h.data = s;
  return s;
}

static int stream_gc (lua_State *L) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (u->s) stream_close(u->s);
  u->s = NULL;
  return 0;
}

/* Push a userdata owning s (NULL: a closed Stream, for a connect to
 * fill in once it has succeeded). [-0, +1] */
static void push_stream (lua_State *L, tstream *s) {
  stream_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = s;
  luaL_setmetatable(L, "luaio.Stream");
}

static tstream *check_stream (lua_State *L, const char *fname) {
  stream_ud *u = (stream_ud *)luaL_checkudata(L, 1, "luaio.Stream");
  if (u->s == NULL || u->s->closed || u->s->closing)
    luaL_error(L, "%s: the stream is closed", fname);
  return u->s;
}

/* ---- reading ------------------------------------------------------------ */

static void alloc_cb (uv_handle_t *h, size_t hint, uv_buf_t *out) {
  tstream *s = (tstream *)h->data;
  (void)hint;
  if (s->start > 0 && s->cap - s->start - s->len < READ_CHUNK) {
    memmove(s->buf, s->buf + s->start, s->len);   /* compact */
    s->start = 0;
  }
  if (s->cap - s->start - s->len < READ_CHUNK) {
    size_t cap = s->cap ? s->cap * 2 : READ_CHUNK * 2;
    char *b;
    while (cap - s->start - s->len < READ_CHUNK) cap *= 2;
    b = realloc(s->buf, cap);
    if (b == NULL) { out->base = NULL; out->len = 0; return; }
    s->buf = b;
    s->cap = cap;
  }
  out->base = s->buf + s->start + s->len;
  out->len = s->cap - s->start - s->len;
}

static void read_cb (uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  tstream *s = (tstream *)st->data;
  (void)b;
  if (n > 0) s->len += (size_t)n;
  else if (n == UV_EOF) s->eof = 1;
  else if (n < 0) s->read_err = (int)n;
  if (n < 0 || (s->len >= BUFFER_LIMIT && s->readers.head == NULL)) {
    uv_read_stop(st);
    s->reading = 0;
  }
  luaio_waitlist_wake_all(&s->readers, 0);
}

/* Suspend until more data, EOF or an error arrives; k re-checks. */
static int wait_data (lua_State *L, tstream *s, lua_KFunction k,
                      const char *fname) {
  if (s->readers.head) return luaL_error(L, "%s: another task is reading "
                                         "this stream", fname);
  luaio_check_wait(L, fname);
  if (!s->reading) {
    int rc = uv_read_start(&s->u.s, alloc_cb, read_cb);
    if (rc < 0) return luaio_raise_uv(L, rc, fname, NULL, NULL);
    s->reading = 1;
  }
  return luaio_waitlist_wait(L, &s->readers, k, (lua_KContext)fname);
}

/* Push and consume n buffered bytes. */
static void take (lua_State *L, tstream *s, size_t n) {
  lua_pushlstring(L, s->buf + s->start, n);
  s->start += n;
  s->len -= n;
  if (s->len == 0) s->start = 0;
}

/* Raise the read error; what was received before it is not lost: it
 * is in the error's `partial` field. */
static int read_error (lua_State *L, tstream *s, const char *fname) {
  luaio_push_uv_error(L, s->read_err, fname, NULL, NULL);
  if (s->len > 0) {
    take(L, s, s->len);
    lua_setfield(L, -2, "partial");
  }
  return luaio_raise(L);
}

/* Common start of every read continuation: the stream at 1, the waiter
 * (if any) popped. Returns the stream, or raises. */
static tstream *resume_read (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (status == UV_ECANCELED)                      /* the task's cancel */
    luaio_raise_uv(L, status, (const char *)ctx, NULL, NULL);
  if (u->s == NULL || u->s->closed || u->s->closing)
    closed_error(L, (const char *)ctx, "stream");
  return u->s;
}

static int read_k (lua_State *L, int status, lua_KContext ctx) {
  tstream *s = resume_read(L, status, ctx);
  lua_Integer n = lua_tointeger(L, 2);
  lua_settop(L, 2);
  if (s->len > 0) {
    take(L, s, s->len < (size_t)n ? s->len : (size_t)n);
    return 1;
  }
  if (s->read_err) return read_error(L, s, "stream:read");
  if (s->eof) { lua_pushnil(L); return 1; }        /* end of stream */
  return wait_data(L, s, read_k, "stream:read");
}

/* s:read([n]) -> up to n bytes (default 65536) as they come; nil at EOF. */
static int stream_read (lua_State *L) {
  lua_Integer n;
  check_stream(L, "stream:read");
  n = luaio__optinteger(L, 2, "stream:read", READ_CHUNK);
  if (n <= 0) return luaio__argerror(L, 2, "stream:read", "size must be > 0");
  lua_settop(L, 1);
  lua_pushinteger(L, n);
  return read_k(L, 0, (lua_KContext)"stream:read");
}

static int eof_error (lua_State *L, tstream *s, const char *fname) {
  luaio_push_error(L, "eof", "EOF", "end of stream before the data "
                   "expected");
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  take(L, s, s->len);
  lua_setfield(L, -2, "partial");
  return luaio_raise(L);
}

static int readexactly_k (lua_State *L, int status, lua_KContext ctx) {
  tstream *s = resume_read(L, status, ctx);
  size_t n = (size_t)lua_tointeger(L, 2);
  lua_settop(L, 2);
  if (s->len >= n) { take(L, s, n); return 1; }
  if (s->read_err) return read_error(L, s, "stream:readexactly");
  if (s->eof) return eof_error(L, s, "stream:readexactly");
  return wait_data(L, s, readexactly_k, "stream:readexactly");
}

/* s:readexactly(n) -> n bytes; an error of kind "eof" (with `partial`)
 * if the stream ends first. */
static int stream_readexactly (lua_State *L) {
  lua_Integer n;
  check_stream(L, "stream:readexactly");
  n = luaio__checkinteger(L, 2, "stream:readexactly");
  if (n < 0) return luaio__argerror(L, 2, "stream:readexactly",
                                    "size must be >= 0");
  lua_settop(L, 2);
  return readexactly_k(L, 0, (lua_KContext)"stream:readexactly");
}

/* Find sep in the buffer; returns the length through sep, or 0. No
 * pointer into the buffer before it has data: buf is NULL until the
 * first read, and NULL + 0 is undefined. */
static size_t find_sep (tstream *s, const char *sep, size_t seplen) {
  const char *p, *end, *hit;
  if (seplen == 0 || s->len < seplen) return 0;
  p = s->buf + s->start;
  end = p + s->len;
  if (seplen == 1) {
    hit = memchr(p, sep[0], s->len);
    return hit ? (size_t)(hit - p) + 1 : 0;
  }
  for (hit = p; hit + seplen <= end; hit++)
    if (memcmp(hit, sep, seplen) == 0) return (size_t)(hit - p) + seplen;
  return 0;
}

static int limit_error (lua_State *L, tstream *s, const char *fname) {
  lua_pushfstring(L, "no separator within %d bytes", (int)s->max_line);
  luaio_push_error(L, "limit", NULL, lua_tostring(L, -1));
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  return luaio_raise(L);
}

/* Stack: stream, sep, strip(boolean). */
static int readuntil_k (lua_State *L, int status, lua_KContext ctx) {
  tstream *s = resume_read(L, status, ctx);
  size_t seplen, n;
  const char *sep = lua_tolstring(L, 2, &seplen);
  int strip = lua_toboolean(L, 3);
  const char *fname = (const char *)ctx;
  lua_settop(L, 3);
  n = find_sep(s, sep, seplen);
  if (n > 0 && n - seplen <= s->max_line) {
    size_t keep = strip ? n - seplen : n;
    if (strip && keep > 0 && s->buf[s->start + keep - 1] == '\r') keep--;
    lua_pushlstring(L, s->buf + s->start, keep);
    s->start += n;
    s->len -= n;
    if (s->len == 0) s->start = 0;
    return 1;
  }
  if (n > 0 || s->len > s->max_line) return limit_error(L, s, fname);
  if (s->read_err) return read_error(L, s, fname);
  if (s->eof) {
    if (s->len == 0) { lua_pushnil(L); return 1; } /* end of stream */
    if (strip) { take(L, s, s->len); return 1; }   /* a last line */
    return eof_error(L, s, fname);
  }
  return wait_data(L, s, readuntil_k, fname);
}

/* s:readline() -> the next line without its "\n" or "\r\n"; the last
 * line may lack one; nil at EOF. Longer than max_line: an error of kind
 * "limit". */
static int stream_readline (lua_State *L) {
  check_stream(L, "stream:readline");
  lua_settop(L, 1);
  lua_pushliteral(L, "\n");
  lua_pushboolean(L, 1);
  return readuntil_k(L, 0, (lua_KContext)"stream:readline");
}

/* s:readuntil(sep) -> data up to and including sep; "eof" error (with
 * `partial`) if the stream ends first. */
static int stream_readuntil (lua_State *L) {
  size_t len;
  check_stream(L, "stream:readuntil");
  luaio__checkstring(L, 2, "stream:readuntil", &len);
  if (len == 0) return luaio__argerror(L, 2, "stream:readuntil",
                                       "separator must not be empty");
  lua_settop(L, 2);
  lua_pushboolean(L, 0);
  return readuntil_k(L, 0, (lua_KContext)"stream:readuntil");
}

static int read_all_k (lua_State *L, int status, lua_KContext ctx) {
  tstream *s = resume_read(L, status, ctx);
  lua_settop(L, 1);
  if (s->read_err) return read_error(L, s, "stream:read_all");
  if (s->eof) { take(L, s, s->len); return 1; }
  return wait_data(L, s, read_all_k, "stream:read_all");
}

/* s:read_all() -> everything until EOF. */
static int stream_read_all (lua_State *L) {
  check_stream(L, "stream:read_all");
  lua_settop(L, 1);
  return read_all_k(L, 0, (lua_KContext)"stream:read_all");
}

static int lines_next (lua_State *L) {
  lua_settop(L, 1);
  return stream_readline(L);
}

/* s:lines() -> iterator over lines for a generic for. */
static int stream_lines (lua_State *L) {
  check_stream(L, "stream:lines");
  lua_pushcfunction(L, lines_next);
  lua_pushvalue(L, 1);
  return 2;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct write_req {
  uv_write_t req;
  tstream *s;
  size_t len;
  char data[];
} write_req;

static void write_cb (uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  tstream *s = w->s;
  s->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED && !s->write_err)
    s->write_err = status;
  free(w);
  if (s->queued <= LOW_WATER) luaio_waitlist_wake_all(&s->writers, 0);
}

static int drain_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (status == UV_ECANCELED)                      /* the task's cancel */
    return luaio_raise_uv(L, status, (const char *)ctx, NULL, NULL);
  if (status == WAKE_CLOSED || u->s == NULL || u->s->closed)
    return closed_error(L, (const char *)ctx, "stream");
  if (u->s->write_err)
    return luaio_raise_uv(L, u->s->write_err, (const char *)ctx, NULL, NULL);
  return 0;
}

/* s:write(data): queued at once; waits while more than 64 KiB are
 * queued (backpressure). Nothing is dropped: a failure is raised here or
 * by the next write/close. */
static int stream_write (lua_State *L) {
  tstream *s = check_stream(L, "stream:write");
  size_t len;
  const char *data = luaio__checkstring(L, 2, "stream:write", &len);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = 0;
  if (s->write_err)
    return luaio_raise_uv(L, s->write_err, "stream:write", NULL, NULL);
  if (s->queued == 0) {
    n = uv_try_write(&s->u.s, &b, 1);
    if (n < 0 && n != UV_EAGAIN)
      return luaio_raise_uv(L, n, "stream:write", NULL, NULL);
    if (n < 0) n = 0;
  }
  if ((size_t)n < len) {
    write_req *w = malloc(sizeof *w + (len - n));
    int rc;
    if (w == NULL) return luaL_error(L, "stream:write: out of memory");
    w->s = s;
    w->len = len - n;
    memcpy(w->data, data + n, len - n);
    b = uv_buf_init(w->data, (unsigned)w->len);
    rc = uv_write(&w->req, &s->u.s, &b, 1, write_cb);
    if (rc < 0) {
      free(w);
      return luaio_raise_uv(L, rc, "stream:write", NULL, NULL);
    }
    s->queued += w->len;
  }
  if (s->queued <= HIGH_WATER) return 0;
  luaio_check_wait(L, "stream:write");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &s->writers, drain_k,
                             (lua_KContext)"stream:write");
}

/* s:drain(): waits until everything written has gone out. */
static int stream_drain_all (lua_State *L, tstream *s, const char *fname,
                             lua_KFunction k) {
  if (s->queued == 0) return k(L, 0, (lua_KContext)fname);
  luaio_check_wait(L, fname);
  return luaio_waitlist_wait(L, &s->writers, k, (lua_KContext)fname);
}

static int drained_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (status != 0) return drain_k(L, status, ctx);
  if (u->s && u->s->queued > 0)                    /* woken at low water */
    return stream_drain_all(L, u->s, (const char *)ctx, drained_k);
  return drain_k(L, 0, ctx);
}

static int stream_drain (lua_State *L) {
  tstream *s = check_stream(L, "stream:drain");
  lua_settop(L, 1);
  return stream_drain_all(L, s, "stream:drain", drained_k);
}

/* Close at once: a write error not yet raised is returned. */
static int close_now (stream_ud *u) {
  int err = u->s->write_err;
  stream_close(u->s);
  u->s = NULL;
  return err;
}

static int close_k (lua_State *L, int status, lua_KContext ctx);

static int check_close_wait (lua_State *L) {
  luaio_check_wait(L, "stream:close");
  return 0;
}

/* Wait for the queue to drain (stream at 1). A pending cancellation
 * closes the stream at once and is raised. */
static int close_wait (lua_State *L, stream_ud *u) {
  lua_settop(L, 1);
  lua_pushcfunction(L, check_close_wait);
  if (lua_pcallk(L, 0, 0, 0, 0, close_k) != LUA_OK) {  /* (never yields) */
    close_now(u);
    return lua_error(L);
  }
  return luaio_waitlist_wait(L, &u->s->writers, close_k, 0);
}

/* Flushing close: woken at low water (wait again), when drained, by a
 * write error, by another close (WAKE_CLOSED: nothing left to do) or by
 * the task's cancellation (close at once, then raise it). */
static int close_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  int err = 0;
  (void)ctx;
  if (u->s && status == 0 && u->s->queued > 0 && !u->s->write_err)
    return close_wait(L, u);
  if (u->s) err = close_now(u);
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "stream:close", NULL, NULL);
  if (err) return luaio_raise_uv(L, err, "stream:close", NULL, NULL);
  return 0;
}

/* s:close(): refuses new I/O and wakes waiting readers at once, flushes
 * what is queued, then closes; closing twice is a no-op. It closes
 * without flushing when another task is blocked in write() or drain()
 * (their data may never go out: a peer that does not read would hang the
 * close), where it cannot wait, and on <close> and collection. */
static int stream_close_m (lua_State *L) {
  stream_ud *u = (stream_ud *)luaL_checkudata(L, 1, "luaio.Stream");
  tstream *s = u->s;
  int err;
  lua_settop(L, 1);
  if (s == NULL || s->closed) return 0;
  s->closing = 1;
  luaio_waitlist_wake_all(&s->readers, WAKE_CLOSED);
  if (s->queued > 0 && s->writers.head == NULL && !s->write_err &&
      lua_isyieldable(L) && luaio__current(L) != NULL)
    return close_wait(L, u);
  err = close_now(u);
  if (err) return luaio_raise_uv(L, err, "stream:close", NULL, NULL);
  return 0;
}

typedef struct shutdown_op {
  uv_shutdown_t req;
  luaio_waiter w;
} shutdown_op;

static void shutdown_cb (uv_shutdown_t *req, int status) {
  shutdown_op *op = (shutdown_op *)req;
  if (!luaio_waiter_done(&op->w, status)) free(op);
}

static int shutdown_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  free((shutdown_op *)ctx);
  if (status == UV_ECANCELED && (u->s == NULL || u->s->closed))
    return closed_error(L, "stream:shutdown", "stream");
  if (status < 0)
    return luaio_raise_uv(L, status, "stream:shutdown", NULL, NULL);
  return 0;
}

/* s:shutdown(): half-close after queued data is sent (peer reads EOF). */
static int stream_shutdown (lua_State *L) {
  tstream *s = check_stream(L, "stream:shutdown");
  shutdown_op *op;
  int rc;
  luaio_check_wait(L, "stream:shutdown");
  op = malloc(sizeof *op);
  if (op == NULL) return luaL_error(L, "stream:shutdown: out of memory");
  luaio_waiter_init(&op->w, NULL);          /* cannot be aborted: detach */
  rc = uv_shutdown(&op->req, &s->u.s, shutdown_cb);
  if (rc < 0) {
    free(op);
    return luaio_raise_uv(L, rc, "stream:shutdown", NULL, NULL);
  }
  return luaio_wait(L, &op->w, shutdown_k, (lua_KContext)op);
}

/* ---- options and addresses ------------------------------------------- */

static int stream_setnodelay (lua_State *L) {
  tstream *s = check_stream(L, "stream:setnodelay");
  if (!s->is_pipe) uv_tcp_nodelay(&s->u.tcp, lua_toboolean(L, 2));
  return 0;
}

static int stream_keepalive (lua_State *L) {
  tstream *s = check_stream(L, "stream:keepalive");
  lua_Integer delay = luaio__optinteger(L, 3, "stream:keepalive", 60);
  if (!s->is_pipe)
    uv_tcp_keepalive(&s->u.tcp, lua_toboolean(L, 2), (unsigned)delay);
  return 0;
}

static int stream_set_max_line (lua_State *L) {
  tstream *s = check_stream(L, "stream:set_max_line");
  lua_Integer n = luaio__checkinteger(L, 2, "stream:set_max_line");
  if (n <= 0) return luaio__argerror(L, 2, "stream:set_max_line",
                                     "must be > 0");
  s->max_line = (size_t)n;
  return 0;
}

/* Push host, port of a sockaddr. [-0, +2] */
static int push_addr (lua_State *L, const struct sockaddr *sa) {
  char ip[64] = "";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
  }
  else if (sa->sa_family == AF_INET6) {
    uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

static int sock_name (lua_State *L, int peer, const char *fname) {
  tstream *s = check_stream(L, fname);
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (s->is_pipe) return 0;
  rc = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len)
            : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0) return luaio_raise_uv(L, rc, fname, NULL, NULL);
  return push_addr(L, (struct sockaddr *)&ss);
}

/* s:peername() / s:sockname() -> host, port */
static int stream_peername (lua_State *L) {
  return sock_name(L, 1, "stream:peername");
}
static int stream_sockname (lua_State *L) {
  return sock_name(L, 0, "stream:sockname");
}

static int stream_tostring (lua_State *L) {
  stream_ud *u = (stream_ud *)luaL_checkudata(L, 1, "luaio.Stream");
  int open = u->s && !u->s->closed && !u->s->closing;
  lua_pushfstring(L, "luaio.Stream (%s): %p", open ? "open" : "closed",
                  (void *)u);
  return 1;
}

/* ---- connecting --------------------------------------------------------- */

/* A connect goes through getaddrinfo, then tries each address in turn,
 * all inside one op with one waiter. Cancel or timeout: the current
 * step is cancelled or its handle closed; its callback, coming later,
 * finishes (or frees) the op. */
typedef struct connect_op {
  luaio_waiter w;
  luaio_deadline d;
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  luaio_host *host;
  tstream *s;                   /* the stream being connected */
  struct addrinfo *res, *cur;
  int armed, stopping, status, step_active;
  int is_pipe;
  char *path;
} connect_op;

static void connect_finish (connect_op *op, int status) {
  if (op->armed) luaio__deadline_stop(op->host, &op->d);
  op->armed = 0;
  op->status = status;
  if (!luaio_waiter_done(&op->w, status)) {        /* the task is gone */
    if (op->s) stream_close(op->s);
    if (op->res) uv_freeaddrinfo(op->res);
    free(op->path);
    free(op);
  }
}

static void try_next (connect_op *op, int last);

static void connect_cb (uv_connect_t *req, int status) {
  connect_op *op = (connect_op *)req->data;
  op->step_active = 0;
  if (status == 0 && !op->stopping) { connect_finish(op, 0); return; }
  if (op->s) { stream_close(op->s); op->s = NULL; }
  if (op->stopping) { connect_finish(op, op->stopping); return; }
  try_next(op, status);
}

static void try_next (connect_op *op, int last) {
  while (op->cur) {
    struct addrinfo *ai = op->cur;
    int rc;
    op->cur = ai->ai_next;
    op->s = stream_new(op->host, 0);
    if (op->s == NULL) { connect_finish(op, UV_ENOMEM); return; }
    op->creq.data = op;
    rc = uv_tcp_connect(&op->creq, &op->s->u.tcp, ai->ai_addr, connect_cb);
    if (rc == 0) { op->step_active = 1; return; }
    stream_close(op->s);
    op->s = NULL;
    last = rc;
  }
  connect_finish(op, last ? last : UV_EADDRNOTAVAIL);
}

static void gai_cb (uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  connect_op *op = (connect_op *)req->data;
  op->step_active = 0;
  op->res = res;
  if (op->stopping) { connect_finish(op, op->stopping); return; }
  if (status < 0) { connect_finish(op, status); return; }
  op->cur = res;
  try_next(op, 0);
}

/* Stop the step in flight; its callback finishes with why. */
static void connect_stop (connect_op *op, int why) {
  if (op->stopping) return;
  op->stopping = why;
  if (!op->step_active) return;
  if (op->s) {                        /* connect_cb gets UV_ECANCELED */
    stream_close(op->s);
    op->s = NULL;
  }
  else uv_cancel((uv_req_t *)&op->gai);
}

static void connect_abort (luaio_waiter *w) {
  connect_stop((connect_op *)w, UV_ECANCELED);
}

static void connect_due_cb (luaio_deadline *d) {
  connect_op *op = (connect_op *)((char *)d - offsetof(connect_op, d));
  op->armed = 0;
  connect_stop(op, UV_ETIMEDOUT);
}

/* Stack: host, port (nil for a path), the Stream made before the
 * connect (closed until now); returns it. Nothing here allocates before
 * the Stream owns the connection. */
static int connect_k (lua_State *L, int status, lua_KContext ctx) {
  connect_op *op = (connect_op *)ctx;
  tstream *s = op->s;
  if (op->res) uv_freeaddrinfo(op->res);
  op->s = NULL;
  free(op->path);
  free(op);
  if (status < 0) {
    if (s) stream_close(s);
    if (lua_isstring(L, 2))
      lua_pushfstring(L, "%s:%s", lua_tostring(L, 1), lua_tostring(L, 2));
    else lua_pushvalue(L, 1);                      /* a Unix socket path */
    return luaio_raise_uv(L, status, "connect", "address",
                          lua_tostring(L, -1));
  }
  ((stream_ud *)lua_touserdata(L, 3))->s = s;
  lua_settop(L, 3);
  return 1;
}

/* net.connect(host, port [, {timeout=}]) -> stream */
static int net_connect (lua_State *L) {
  const char *host = check_cstring(L, 1, "net.connect", "host");
  lua_Integer port = luaio__checkinteger(L, 2, "net.connect");
  lua_Integer ms = 30000;
  struct addrinfo hints;
  connect_op *op;
  char service[16];
  int rc;
  if (port < 0 || port > 65535)
    return luaio__argerror(L, 2, "net.connect", "port out of range");
  if (!lua_isnoneornil(L, 3)) {
    luaio__checktype(L, 3, "net.connect", LUA_TTABLE);
    lua_getfield(L, 3, "timeout");
    if (!lua_isnil(L, -1))
      ms = luaio_check_seconds(L, lua_gettop(L), "net.connect");
    lua_pop(L, 1);
  }
  luaio_check_wait(L, "net.connect");
  lua_settop(L, 2);
  push_stream(L, NULL);                            /* the result, at 3 */
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "net.connect: out of memory");
  luaio_waiter_init(&op->w, connect_abort);
  op->host = luaio__host(L);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof service, "%d", (int)port);
  op->gai.data = op;
  rc = uv_getaddrinfo(luaio_loop(op->host), &op->gai, gai_cb, host, service,
                      &hints);
  if (rc < 0) {
    free(op);
    return luaio_raise_uv(L, rc, "connect", "address", host);
  }
  op->step_active = 1;
  if (ms > 0)
    op->armed = luaio__deadline_start(op->host, &op->d,
                                      (uint64_t)ms, connect_due_cb);
  return luaio_wait(L, &op->w, connect_k, (lua_KContext)op);
}

/* net.connect_unix(path [, {timeout=}]) -> stream over a Unix socket */
static int net_connect_unix (lua_State *L) {
  const char *path = check_cstring(L, 1, "net.connect_unix", "path");
  lua_Integer ms = 30000;
  connect_op *op;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "net.connect_unix", LUA_TTABLE);
    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1))
      ms = luaio_check_seconds(L, lua_gettop(L), "net.connect_unix");
    lua_pop(L, 1);
  }
  luaio_check_wait(L, "net.connect_unix");
  lua_settop(L, 1);
  lua_pushnil(L);                                  /* no port */
  push_stream(L, NULL);                            /* the result, at 3 */
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "net.connect_unix: out of memory");
  luaio_waiter_init(&op->w, connect_abort);
  op->host = luaio__host(L);
  op->s = stream_new(op->host, 1);
  if (op->s == NULL) { free(op); return luaL_error(L, "out of memory"); }
  op->creq.data = op;
  uv_pipe_connect(&op->creq, &op->s->u.pipe, path, connect_cb);
  op->step_active = 1;
  if (ms > 0)
    op->armed = luaio__deadline_start(op->host, &op->d,
                                      (uint64_t)ms, connect_due_cb);
  return luaio_wait(L, &op->w, connect_k, (lua_KContext)op);
}

/* ---- servers ------------------------------------------------------------- */

/* The listener is separate from the userdata: closed in close(), freed in
 * its close callback. Each connection runs handler(stream) in a task;
 * a watcher on each task reports its error and drops it from the list
 * of connections. */
typedef union anystream {
  uv_handle_t h;
  uv_stream_t s;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} anystream;

/* The listening handle, and a spare one that takes (and closes) a
 * connection no stream could be made for. Freed when both are closed. */
typedef struct listener {
  anystream u;                  /* first: a pointer to it is one to l */
  anystream spare;
  int handles;                  /* of the two, not yet closed */
  int rejecting;                /* the spare is closing */
  int waiting;                  /* a connection waits for the spare */
} listener;

typedef struct server {
  listener *tcp;                /* freed in its close callback */
  int is_pipe;
  luaio_host *host;
  int ref;                      /* registry ref: alive while listening or
                                   while connections run */
  int closed, nconns;
  luaio_waitlist idle;          /* close(): waiting for connections */
} server;

typedef struct conn_watch {
  luaio_waiter w;
  server *srv;
  luaio_task *task;
} conn_watch;

static void listener_unref (listener *l) {
  if (--l->handles == 0) free(l);
}

static void server_free_cb (uv_handle_t *h) {
  listener_unref((listener *)h);
}

static void reject (listener *l);

static void spare_closed_cb (uv_handle_t *h) {
  listener *l = (listener *)((char *)h - offsetof(listener, spare));
  l->rejecting = 0;
  if (l->waiting && !uv_is_closing(&l->u.h)) {
    l->waiting = 0;
    reject(l);
  }
  listener_unref(l);
}

/* A connection came that no stream could be made for (out of memory):
 * accept it into the spare handle and close it, so the client sees the
 * close and libuv goes on accepting (it stops until each connection is
 * accepted). One at a time: the next waits for the spare's close. */
static void reject (listener *l) {
  if (l->rejecting) { l->waiting = 1; return; }
  if (l->u.h.type == UV_NAMED_PIPE)
    uv_pipe_init(l->u.h.loop, &l->spare.pipe, 0);
  else uv_tcp_init(l->u.h.loop, &l->spare.tcp);
  l->rejecting = 1;
  l->handles++;
  uv_accept(&l->u.s, &l->spare.s);
  uv_close(&l->spare.h, spare_closed_cb);
}

static void server_release (lua_State *L, server *srv) {
  if (srv->closed && srv->nconns == 0 && srv->ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, srv->ref);
    srv->ref = LUA_NOREF;
  }
}

/* A connection's stream closes when its handler's task ends, even if
 * the task failed, was cancelled or never started. */
static void close_conn_stream (stream_ud *u) {
  if (u == NULL || u->s == NULL) return;
  stream_close(u->s);
  u->s = NULL;
}

static void conn_done (luaio_waiter *w, int status) {
  conn_watch *cw = (conn_watch *)w->data;
  server *srv = cw->srv;
  lua_State *L = luaio_state(srv->host);
  (void)status;
  luaio__task_report_error(cw->task, "error in a connection handler");
  luaL_checkstack(L, 6, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->ref);     /* srv_ud */
  lua_getiuservalue(L, -1, 2);                     /* srv_ud conns */
  luaio__push_task(L, cw->task);                   /* srv_ud conns task */
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);                               /* ... task cw */
  lua_getiuservalue(L, -1, 1);                     /* ... task cw st */
  close_conn_stream((stream_ud *)lua_touserdata(L, -1));
  lua_pop(L, 2);
  lua_pushnil(L);
  lua_rawset(L, -3);                               /* conns[task] = nil */
  lua_pop(L, 2);
  if (--srv->nconns == 0) luaio_waitlist_wake_all(&srv->idle, 0);
  server_release(L, srv);
}

/* After the handler returned: wait until what it queued has gone out, so
 * the close in conn_done drops nothing. Quietly: a write error (the peer
 * went away) is no handler error. Not when another task is blocked
 * writing or closing (the peer may never read). Stack: handler stream. */
static int conn_flush_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 2);
  tstream *s = u->s;
  (void)ctx;
  if (status == UV_ECANCELED)                      /* the task's cancel */
    return luaio_raise_uv(L, status, "net.serve", NULL, NULL);
  lua_settop(L, 2);
  if (s == NULL || s->closed || s->closing || s->queued == 0 ||
      s->write_err || s->writers.head != NULL)
    return 0;
  luaio_check_wait(L, "net.serve");
  return luaio_waitlist_wait(L, &s->writers, conn_flush_k, 0);
}

/* The body of a connection's task: handler(stream), then the flush; the
 * stream is closed by conn_done however the task ends. */
static int conn_main (lua_State *L) {
  lua_settop(L, 2);                                /* handler stream */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 0, 0, conn_flush_k);
  return conn_flush_k(L, LUA_OK, 0);
}

static void on_connection (uv_stream_t *listener, int status) {
  server *srv = (server *)listener->data;
  lua_State *L = luaio_state(srv->host);
  tstream *s;
  luaio_task *t;
  conn_watch *cw;
  if (status < 0 || srv->closed) return;
  s = stream_new(srv->host, srv->is_pipe);
  if (s == NULL) { reject(srv->tcp); return; }
  if (uv_accept(listener, &s->u.s) != 0) { stream_close(s); return; }
  luaL_checkstack(L, 8, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->ref);     /* srv_ud */
  push_stream(L, s);                               /* srv_ud st */
  lua_pushcfunction(L, conn_main);
  lua_getiuservalue(L, -3, 1);
  lua_pushvalue(L, -3);                  /* srv_ud st main handler st */
  t = luaio__spawn(L, 2);                          /* srv_ud st task */
  lua_getiuservalue(L, -3, 2);                     /* srv_ud st task conns */
  lua_pushvalue(L, -2);
  cw = lua_newuserdatauv(L, sizeof *cw, 1);        /* ... conns task cw */
  cw->srv = srv;
  cw->task = t;
  lua_pushvalue(L, -5);
  lua_setiuservalue(L, -2, 1);                     /* cw keeps st */
  luaio__watch(luaio__task_awaiters(t), &cw->w, conn_done, cw);
  lua_rawset(L, -3);                               /* conns[task] = cw */
  lua_pop(L, 4);
  srv->nconns++;
}

static server *check_server (lua_State *L) {
  return (server *)luaL_checkudata(L, 1, "luaio.Server");
}

static int close_wait_k (lua_State *L, int status, lua_KContext ctx) {
  server *srv = check_server(L);
  (void)ctx;
  if (status != 0) return luaio_raise_uv(L, status, "server:close", NULL,
                                         NULL);
  if (srv->nconns > 0)
    return luaio_waitlist_wait(L, &srv->idle, close_wait_k, 0);
  server_release(L, srv);
  return 0;
}

static void server_stop (server *srv) {
  if (srv->closed) return;
  srv->closed = 1;
  uv_close(&srv->tcp->u.h, server_free_cb);
}

/* srv:close([{cancel = true | wait = true}]): stop accepting; with
 * cancel, cancel the open connections; with cancel or wait, wait until
 * they are done. */
static int server_close (lua_State *L) {
  server *srv = check_server(L);
  int cancel = 0, wait = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "cancel");
    cancel = lua_toboolean(L, -1);
    lua_getfield(L, 2, "wait");
    wait = cancel || lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  server_stop(srv);
  if (cancel) {
    lua_getiuservalue(L, 1, 2);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      luaio__cancel(luaio__check_task(L, -2), LUAIO_CANCEL_TASK, 0, L);
      lua_pop(L, 1);
    }
    lua_settop(L, 1);
  }
  if (wait && srv->nconns > 0) {
    luaio_check_wait(L, "server:close");
    return luaio_waitlist_wait(L, &srv->idle, close_wait_k, 0);
  }
  server_release(L, srv);
  return 0;
}

static int server_gc (lua_State *L) {
  server_stop(check_server(L));
  return 0;
}

static int server_index (lua_State *L) {
  server *srv = check_server(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "port") == 0 || strcmp(k, "address") == 0) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (srv->closed || srv->is_pipe) return 0;
    uv_tcp_getsockname(&srv->tcp->u.tcp, (struct sockaddr *)&ss, &len);
    push_addr(L, (struct sockaddr *)&ss);
    if (k[0] == 'p') return 1;
    lua_pop(L, 1);
    return 1;
  }
  if (strcmp(k, "close") == 0) { lua_pushcfunction(L, server_close); return 1; }
  if (strcmp(k, "connections") == 0) {
    lua_pushinteger(L, srv->nconns);
    return 1;
  }
  return 0;
}

static lua_Integer opt_backlog (lua_State *L, int idx) {
  lua_Integer backlog = 511;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "backlog");
    backlog = luaL_optinteger(L, -1, 511);
    lua_pop(L, 1);
  }
  return backlog;
}

/* Push a Server, closed until it listens, that will run handler (at
 * hidx) per connection, and take its registry ref: every Lua allocation
 * of a new server is done before there is a listener to leak. [-0, +1] */
static server *server_new (lua_State *L, int hidx, int is_pipe) {
  server *srv = lua_newuserdatauv(L, sizeof *srv, 2);
  memset(srv, 0, sizeof *srv);
  srv->closed = 1;
  srv->ref = LUA_NOREF;
  srv->is_pipe = is_pipe;
  srv->host = luaio__host(L);
  luaL_setmetatable(L, "luaio.Server");
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, -2, 1);                     /* the handler */
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2);                     /* live connections */
  lua_pushvalue(L, -1);
  srv->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return srv;
}

/* A listener (its handle inited by the caller, by l->u) for srv; NULL
 * out of memory. */
static listener *listener_new (void) {
  listener *l = malloc(sizeof *l);
  if (l == NULL) return NULL;
  memset(l, 0, sizeof *l);
  l->handles = 1;
  return l;
}

/* Listen on the bound l (rc: the bind's result) for srv, on top of the
 * stack; `where` names the address in errors. Raises nothing once
 * listening. [-0, +0] */
static int server_start (lua_State *L, server *srv, listener *l,
                         lua_Integer backlog, const char *where, int rc) {
  l->u.h.data = srv;
  if (rc == 0) rc = uv_listen(&l->u.s, (int)backlog, on_connection);
  if (rc < 0) {
    uv_close(&l->u.h, server_free_cb);
    server_release(L, srv);                        /* still closed */
    return luaio_raise_uv(L, rc, "listen", "address", where);
  }
  srv->tcp = l;
  srv->closed = 0;
  return 1;
}

/* net.serve(host, port, handler [, {backlog=}]) -> server. host must be
 * an IP address ("127.0.0.1", "::1", "0.0.0.0") or "localhost"; port 0
 * picks a free one (srv.port). */
static int net_serve (lua_State *L) {
  const char *host = check_cstring(L, 1, "net.serve", "host");
  lua_Integer port = luaio__checkinteger(L, 2, "net.serve"), backlog;
  struct sockaddr_storage ss;
  const char *where;
  server *srv;
  listener *l;
  luaio__checktype(L, 3, "net.serve", LUA_TFUNCTION);
  if (port < 0 || port > 65535)
    return luaio__argerror(L, 2, "net.serve", "port out of range");
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
    return luaio__argerror(L, 1, "net.serve", "IP address or 'localhost' "
                           "expected");
  backlog = opt_backlog(L, 4);
  where = lua_pushfstring(L, "%s:%d", host, (int)port);
  srv = server_new(L, 3, 0);
  if ((l = listener_new()) == NULL) {
    server_release(L, srv);
    return luaL_error(L, "net.serve: out of memory");
  }
  uv_tcp_init(luaio_loop(srv->host), &l->u.tcp);
  return server_start(L, srv, l, backlog, where,
                      uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0));
}

/* net.serve_unix(path, handler [, {backlog=}]) -> server on a Unix
 * socket (an existing socket file is an EADDRINUSE error). */
static int net_serve_unix (lua_State *L) {
  const char *path = check_cstring(L, 1, "net.serve_unix", "path");
  lua_Integer backlog;
  server *srv;
  listener *l;
  luaio__checktype(L, 2, "net.serve_unix", LUA_TFUNCTION);
  backlog = opt_backlog(L, 3);
  srv = server_new(L, 2, 1);
  if ((l = listener_new()) == NULL) {
    server_release(L, srv);
    return luaL_error(L, "net.serve_unix: out of memory");
  }
  uv_pipe_init(luaio_loop(srv->host), &l->u.pipe, 0);
  return server_start(L, srv, l, backlog, path,
                      uv_pipe_bind(&l->u.pipe, path));
}

/* ---- DNS ---------------------------------------------------------------- */

typedef struct resolve_op {
  uv_getaddrinfo_t req;
  luaio_waiter w;
  struct addrinfo *res;
} resolve_op;

static void resolve_cb (uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  resolve_op *op = (resolve_op *)req->data;
  op->res = res;
  if (!luaio_waiter_done(&op->w, status)) {
    if (res) uv_freeaddrinfo(res);
    free(op);
  }
}

static void resolve_abort (luaio_waiter *w) {
  resolve_op *op = (resolve_op *)((char *)w - offsetof(resolve_op, w));
  uv_cancel((uv_req_t *)&op->req);                 /* callback comes later */
}

static int resolve_k (lua_State *L, int status, lua_KContext ctx) {
  resolve_op *op = (resolve_op *)ctx;
  struct addrinfo *ai, *res = op->res;
  int n = 0;
  free(op);
  if (status < 0) {
    if (res) uv_freeaddrinfo(res);
    return luaio_raise_uv(L, status, "resolve", "address",
                          lua_tostring(L, 1));
  }
  lua_newtable(L);
  for (ai = res; ai; ai = ai->ai_next) {
    push_addr(L, ai->ai_addr);
    lua_pop(L, 1);
    lua_rawseti(L, -2, ++n);
  }
  uv_freeaddrinfo(res);
  return 1;
}

/* net.resolve(host) -> list of IP addresses */
static int net_resolve (lua_State *L) {
  const char *host = check_cstring(L, 1, "net.resolve", "host");
  struct addrinfo hints;
  resolve_op *op;
  int rc;
  luaio_check_wait(L, "net.resolve");
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "net.resolve: out of memory");
  luaio_waiter_init(&op->w, resolve_abort);
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  op->req.data = op;
  rc = uv_getaddrinfo(luaio_loop(luaio__host(L)), &op->req, resolve_cb,
                      host, NULL,
                      &hints);
  if (rc < 0) {
    free(op);
    return luaio_raise_uv(L, rc, "resolve", "address", host);
  }
  return luaio_wait(L, &op->w, resolve_k, (lua_KContext)op);
}

/* ---- UDP ---------------------------------------------------------------- */

/* Datagrams that arrived with no receiver waiting (its recv was cancelled
 * or timed out, or it has not resumed yet) wait in a FIFO for the next
 * recv. Reading stops while one is queued, so the kernel buffers the rest
 * and the FIFO stays short. */
typedef struct dgram {
  struct dgram *next;
  size_t len;
  struct sockaddr_storage from;
  char data[];
} dgram;

typedef struct udp {
  uv_udp_t h;
  int closed;
  luaio_waitlist receivers;
  char *rbuf;                   /* libuv reads each datagram into this */
  dgram *head, *tail;           /* received, not yet taken */
  int err;                      /* a receive error for the next recv */
} udp;

typedef struct udp_ud {
  udp *u;
} udp_ud;

static void udp_free_cb (uv_handle_t *h) {
  udp *u = (udp *)h->data;
  dgram *d;
  while ((d = u->head) != NULL) {
    u->head = d->next;
    free(d);
  }
  free(u->rbuf);
  free(u);
}

static udp *check_udp (lua_State *L, const char *fname) {
  udp_ud *x = (udp_ud *)luaL_checkudata(L, 1, "luaio.Udp");
  if (x->u == NULL || x->u->closed)
    luaL_error(L, "%s: the socket is closed", fname);
  return x->u;
}

/* One receive buffer per socket: libuv hands each datagram to
 * udp_recv_cb before it reads the next. */
static void udp_alloc_cb (uv_handle_t *h, size_t hint, uv_buf_t *b) {
  udp *u = (udp *)h->data;
  (void)hint;
  if (u->rbuf == NULL) u->rbuf = malloc(READ_CHUNK);
  b->base = u->rbuf;
  b->len = u->rbuf ? READ_CHUNK : 0;
}

/* Queue a copy of a datagram; returns 0 if out of memory. */
static int udp_queue (udp *u, const char *data, size_t len,
                      const struct sockaddr *from) {
  dgram *d = malloc(sizeof *d + len);
  if (d == NULL) return 0;
  d->next = NULL;
  d->len = len;
  memcpy(d->data, data, len);
  memcpy(&d->from, from, from->sa_family == AF_INET6
         ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  if (u->tail) u->tail->next = d; else u->head = d;
  u->tail = d;
  return 1;
}

static void udp_recv_cb (uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                         const struct sockaddr *from, unsigned flags) {
  udp *u = (udp *)h->data;
  (void)flags;
  if (n == 0 && from == NULL) return;              /* nothing more now */
  if (n < 0) u->err = (int)n;
  else if (!udp_queue(u, b->base, (size_t)n, from)) u->err = UV_ENOMEM;
  uv_udp_recv_stop(h);
  luaio_waitlist_wake(&u->receivers, 0);
}

/* Push the first queued datagram as data, host, port, or raise the
 * pending error; returns 0 if there is neither. [-0, +3] */
static int udp_take (lua_State *L, udp *u) {
  dgram *d = u->head;
  if (u->err) {
    int err = u->err;
    u->err = 0;
    return luaio_raise_uv(L, err, "udp:recv", NULL, NULL);
  }
  if (d == NULL) return 0;
  lua_pushlstring(L, d->data, d->len);
  push_addr(L, (struct sockaddr *)&d->from);
  u->head = d->next;
  if (u->head == NULL) u->tail = NULL;
  free(d);
  return 3;
}

/* Start reading (if stopped) and wait for a datagram. */
static int udp_wait (lua_State *L, udp *u, lua_KFunction k) {
  int rc;
  luaio_check_wait(L, "udp:recv");
  rc = uv_udp_recv_start(&u->h, udp_alloc_cb, udp_recv_cb);
  if (rc < 0 && rc != UV_EALREADY)
    return luaio_raise_uv(L, rc, "udp:recv", NULL, NULL);
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &u->receivers, k, 0);
}

static int udp_recv_k (lua_State *L, int status, lua_KContext ctx) {
  udp_ud *x = (udp_ud *)lua_touserdata(L, 1);
  (void)ctx;
  if (status == WAKE_CLOSED || (status == 0 && x->u == NULL))
    return closed_error(L, "udp:recv", "socket");
  if (status != 0) return luaio_raise_uv(L, status, "udp:recv", NULL, NULL);
  lua_settop(L, 1);
  if (udp_take(L, x->u)) return 3;
  return udp_wait(L, x->u, udp_recv_k);    /* another task took it first */
}

/* u:recv() -> data, host, port; at once if a datagram is queued. */
static int udp_recv (lua_State *L) {
  udp *u = check_udp(L, "udp:recv");
  lua_settop(L, 1);
  if (udp_take(L, u)) return 3;
  if (u->receivers.head)
    return luaL_error(L, "udp:recv: another task is receiving");
  return udp_wait(L, u, udp_recv_k);
}

static int ip_addr (lua_State *L, int hi, int pi, struct sockaddr_storage *ss,
                    const char *fname) {
  const char *host = check_cstring(L, hi, fname, "host");
  lua_Integer port = luaio__checkinteger(L, pi, fname);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (port < 0 || port > 65535)
    return luaio__argerror(L, pi, fname, "port out of range");
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0)
    return luaio__argerror(L, hi, fname, "IP address expected");
  return 0;
}

/* u:bind(host, port) */
static int udp_bind (lua_State *L) {
  udp *u = check_udp(L, "udp:bind");
  struct sockaddr_storage ss;
  int rc;
  ip_addr(L, 2, 3, &ss, "udp:bind");
  rc = uv_udp_bind(&u->h, (struct sockaddr *)&ss, 0);
  if (rc < 0) return luaio_raise_uv(L, rc, "bind", "address",
                                    lua_tostring(L, 2));
  return 0;
}

/* u:send(data, host, port): sent at once (datagrams are not queued). */
static int udp_send (lua_State *L) {
  udp *u = check_udp(L, "udp:send");
  size_t len;
  const char *data = luaio__checkstring(L, 2, "udp:send", &len);
  struct sockaddr_storage ss;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc;
  ip_addr(L, 3, 4, &ss, "udp:send");
  rc = uv_udp_try_send(&u->h, &b, 1, (struct sockaddr *)&ss);
  if (rc < 0) return luaio_raise_uv(L, rc, "send", "address",
                                    lua_tostring(L, 3));
  return 0;
}

static int udp_sockname (lua_State *L) {
  udp *u = check_udp(L, "udp:sockname");
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len);
  if (rc < 0) return luaio_raise_uv(L, rc, "udp:sockname", NULL, NULL);
  return push_addr(L, (struct sockaddr *)&ss);
}

static int udp_close (lua_State *L) {
  udp_ud *x = (udp_ud *)luaL_checkudata(L, 1, "luaio.Udp");
  if (x->u && !x->u->closed) {
    x->u->closed = 1;
    luaio_waitlist_wake_all(&x->u->receivers, WAKE_CLOSED);
    uv_close((uv_handle_t *)&x->u->h, udp_free_cb);
  }
  x->u = NULL;
  return 0;
}

/* net.udp() -> a UDP socket */
static int net_udp (lua_State *L) {
  udp_ud *x = lua_newuserdatauv(L, sizeof *x, 0);
  x->u = calloc(1, sizeof *x->u);
  if (x->u == NULL) return luaL_error(L, "net.udp: out of memory");
  uv_udp_init(luaio_loop(luaio__host(L)), &x->u->h);
  x->u->h.data = x->u;
  luaL_setmetatable(L, "luaio.Udp");
  return 1;
}

static const luaL_Reg udp_methods[] = {
  {"bind", udp_bind}, {"send", udp_send}, {"recv", udp_recv},
  {"sockname", udp_sockname}, {"close", udp_close}, {NULL, NULL}
};

/* ---- module ---------------------------------------------------------------- */

static const luaL_Reg stream_methods[] = {
  {"read", stream_read}, {"readexactly", stream_readexactly},
  {"readline", stream_readline}, {"readuntil", stream_readuntil},
  {"read_all", stream_read_all}, {"lines", stream_lines},
  {"write", stream_write}, {"drain", stream_drain},
  {"close", stream_close_m}, {"shutdown", stream_shutdown},
  {"setnodelay", stream_setnodelay}, {"keepalive", stream_keepalive},
  {"set_max_line", stream_set_max_line}, {"peername", stream_peername},
  {"sockname", stream_sockname}, {NULL, NULL}
};

static const luaL_Reg net_funcs[] = {
  {"connect", net_connect}, {"serve", net_serve}, {"resolve", net_resolve},
  {"udp", net_udp}, {"connect_unix", net_connect_unix},
  {"serve_unix", net_serve_unix}, {NULL, NULL}
};

int luaopen_luaio_net (lua_State *L) {
  luaio__host(L);
  static const luaL_Reg stream_meta[] = {
    {"__tostring", stream_tostring}, {NULL, NULL}
  };
  static const luaL_Reg server_meta[] = {
    {"__index", server_index}, {NULL, NULL}
  };
  luaio__class(L, "luaio.Stream", stream_methods, stream_gc, stream_meta);
  luaio__class(L, "luaio.Server", NULL, server_gc, server_meta);
  luaio__class(L, "luaio.Udp", udp_methods, udp_close, NULL);
  luaL_newlib(L, net_funcs);
  return 1;
}
