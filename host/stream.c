/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * stream.c: the buffered stream engine and the luaio.Stream object (see
 * stream.h for who owns what).
 *
 * A stream buffers what it reads: reads served from the buffer return at
 * once without yielding; otherwise the reader waits for more data.
 * Reading stops while the buffer holds read_ahead bytes and nobody reads
 * (backpressure on the reading side). Writes try to go out at once and
 * queue the rest; write() waits while the queue is above a high-water
 * mark.
 */
#include "stream.h"
#include <unistd.h>

#define BUFFER_LIMIT (1024 * 1024)      /* default read_ahead */
#define DEFAULT_MAX_LINE (64 * 1024)
#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)

static const char STREAM[] = "luaio.Stream";

typedef struct stream_ud {
  luaio_stream *s;
} stream_ud;

/* ---- buffers ------------------------------------------------------------ */

int luaio__buf_reserve (luaio_buf *b, size_t want) {
  size_t cap;
  char *nb;
  if (b->start > 0 && b->cap - b->start - b->len < want) {
    memmove(b->base, b->base + b->start, b->len);      /* compact */
    b->start = 0;
  }
  if (b->cap - b->start - b->len >= want) return 1;
  cap = b->cap ? b->cap : want;
  while (cap - b->start - b->len < want) cap *= 2;
  if ((nb = realloc(b->base, cap)) == NULL) return 0;
  b->base = nb;
  b->cap = cap;
  return 1;
}

void luaio__buf_take (lua_State *L, luaio_buf *b, size_t n, size_t skip) {
  if (n == 0) lua_pushliteral(L, "");              /* base may be NULL */
  else lua_pushlstring(L, b->base + b->start, n);
  b->start += n + skip;
  b->len -= n + skip;
  if (b->len == 0) b->start = 0;
}

/* No pointer into the buffer before it has data: base is NULL until the
 * first read, and NULL + 0 is undefined. */
size_t luaio__buf_find (const luaio_buf *b, const char *sep, size_t seplen) {
  const char *p, *end, *hit;
  if (seplen == 0 || b->len < seplen) return 0;
  p = b->base + b->start;
  end = p + b->len;
  if (seplen == 1) {
    hit = memchr(p, sep[0], b->len);
    return hit ? (size_t)(hit - p) + 1 : 0;
  }
  for (hit = p; hit + seplen <= end; hit++)
    if (memcmp(hit, sep, seplen) == 0) return (size_t)(hit - p) + seplen;
  return 0;
}

void luaio__buf_free (luaio_buf *b) {
  free(b->base);
  memset(b, 0, sizeof *b);
}

/* ---- the engine: handle, reading ----------------------------------------- */

static void stream_free_cb (uv_handle_t *h) {
  luaio_stream *s = (luaio_stream *)h->data;
  if (s->own_fd >= 0) close(s->own_fd);
  luaio__buf_free(&s->own);
  free(s);
}

/* A struct with defaults; the caller inits the handle. */
static luaio_stream *stream_alloc (luaio_host *h) {
  luaio_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->host = h;
  s->in = &s->own;
  s->max_line = DEFAULT_MAX_LINE;
  s->read_ahead = BUFFER_LIMIT;
  s->own_fd = -1;
  return s;
}

luaio_stream *luaio__stream_new (luaio_host *h, uv_handle_type type) {
  luaio_stream *s = stream_alloc(h);
  if (s == NULL) return NULL;
  if (type == UV_TCP) uv_tcp_init(luaio_loop(h), &s->u.tcp);
  else uv_pipe_init(luaio_loop(h), &s->u.pipe, 0);
  s->u.h.data = s;
  return s;
}

int luaio__stream_open_fd (luaio_host *h, uv_file fd, luaio_stream **out) {
  luaio_stream *s = stream_alloc(h);
  uv_os_fd_t hfd;
  int rc;
  if (s == NULL) return UV_ENOMEM;
  s->u.h.data = s;
  if (isatty(fd)) {
    if ((rc = uv_tty_init(luaio_loop(h), &s->u.tty, fd, 0)) < 0) {
      free(s);                    /* not registered with the loop */
      return rc;
    }
    if (uv_fileno(&s->u.h, &hfd) == 0 && hfd != fd) s->own_fd = fd;
  }
  else {
    uv_pipe_init(luaio_loop(h), &s->u.pipe, 0);
    if ((rc = uv_pipe_open(&s->u.pipe, fd)) < 0) {
      uv_close(&s->u.h, stream_free_cb);
      return rc;
    }
  }
  s->u.h.data = s;
  *out = s;
  return 0;
}

void luaio__stream_close (luaio_stream *s) {
  if (s->closed) return;
  s->closed = 1;
  luaio_waitlist_wake_all(&s->readers, LUAIO_STREAM_CLOSED);
  luaio_waitlist_wake_all(&s->writers, LUAIO_STREAM_CLOSED);
  uv_close(&s->u.h, stream_free_cb);
}

static void alloc_cb (uv_handle_t *h, size_t hint, uv_buf_t *out) {
  luaio_stream *s = (luaio_stream *)h->data;
  luaio_buf *b = s->in;
  (void)hint;
  if (!luaio__buf_reserve(b, LUAIO_STREAM_CHUNK)) {
    out->base = NULL;                   /* read_cb gets UV_ENOBUFS */
    out->len = 0;
    return;
  }
  out->base = b->base + b->start + b->len;
  out->len = b->cap - b->start - b->len;
}

/* Wakes the readers on every event. Reading stops on EOF or an error,
 * and when read_ahead bytes wait with nobody reading (read_ahead 0:
 * after each chunk, so a terminal's input is not taken in advance). */
static void read_cb (uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  luaio_stream *s = (luaio_stream *)st->data;
  (void)b;
  if (n == 0) return;                              /* EAGAIN */
  if (n > 0) s->in->len += (size_t)n;
  else if (n == UV_EOF) s->eof = 1;
  else s->read_err = (int)n;
  if (n < 0 || s->read_ahead == 0 ||
      (s->in->len >= s->read_ahead && s->readers.head == NULL)) {
    uv_read_stop(st);
    s->reading = 0;
  }
  luaio_waitlist_wake_all(&s->readers, 0);
}

int luaio__stream_read_start (luaio_stream *s) {
  int rc;
  if (s->reading) return 0;
  rc = uv_read_start(&s->u.s, alloc_cb, read_cb);
  if (rc == 0) s->reading = 1;
  return rc;
}

/* ---- the engine: writing ------------------------------------------------- */

typedef struct write_req {
  uv_write_t req;
  luaio_stream *s;
  size_t len;
  char data[];
} write_req;

static void write_cb (uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  luaio_stream *s = w->s;
  s->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED && !s->write_err)
    s->write_err = status;
  free(w);
  if (s->queued <= LOW_WATER) luaio_waitlist_wake_all(&s->writers, 0);
}

int luaio__stream_send (luaio_stream *s, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  write_req *w;
  int n = 0, rc;
  if (s->queued == 0) {
    n = uv_try_write(&s->u.s, &b, 1);
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) return n;
    if (n < 0) n = 0;                  /* ENOSYS: a tty that cannot try */
  }
  if ((size_t)n == len) return 0;
  if ((w = malloc(sizeof *w + (len - n))) == NULL) return UV_ENOMEM;
  w->s = s;
  w->len = len - n;
  memcpy(w->data, data + n, len - n);
  b = uv_buf_init(w->data, (unsigned)w->len);
  if ((rc = uv_write(&w->req, &s->u.s, &b, 1, write_cb)) < 0) {
    free(w);
    return rc;
  }
  s->queued += w->len;
  return 0;
}

/* ---- shared by the bindings ---------------------------------------------- */

int luaio__closed_error (lua_State *L, const char *fname, const char *what) {
  luaio_push_uv_error(L, UV_ECANCELED, fname, NULL, NULL);
  lua_pushfstring(L, "the %s was closed", what);
  lua_setfield(L, -2, "message");
  return luaio_raise(L);
}

int luaio__push_addr (lua_State *L, const struct sockaddr *sa) {
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

/* ---- the Lua object ----------------------------------------------------- */

static void stream_class (lua_State *L);

void luaio__stream_push (lua_State *L, luaio_stream *s) {
  stream_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = s;
  stream_class(L);
  luaL_setmetatable(L, STREAM);
}

luaio_stream *luaio__stream_check (lua_State *L, int idx, const char *fname) {
  stream_ud *u = (stream_ud *)luaL_checkudata(L, idx, STREAM);
  if (u->s == NULL || u->s->closed || u->s->closing)
    luaL_error(L, "%s: the stream is closed", fname);
  return u->s;
}

luaio_stream *luaio__stream_get (lua_State *L, int idx) {
  stream_ud *u = (stream_ud *)luaL_testudata(L, idx, STREAM);
  return u ? u->s : NULL;
}

void luaio__stream_set (lua_State *L, int idx, luaio_stream *s) {
  ((stream_ud *)luaL_checkudata(L, idx, STREAM))->s = s;
}

void luaio__stream_close_at (lua_State *L, int idx) {
  stream_ud *u = (stream_ud *)luaL_testudata(L, idx, STREAM);
  if (u == NULL || u->s == NULL) return;
  luaio__stream_close(u->s);
  u->s = NULL;
}

static int stream_gc (lua_State *L) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (u->s) luaio__stream_close(u->s);
  u->s = NULL;
  luaio__resource_closed(L, 1);     /* <close>; __gc checked before */
  return 0;
}

#define check_stream(L, fname) luaio__stream_check((L), 1, (fname))

/* ---- reading ------------------------------------------------------------ */

/* Suspend until more data, EOF or an error arrives; k re-checks. */
static int wait_data (lua_State *L, luaio_stream *s, lua_KFunction k,
                      const char *fname) {
  int rc;
  if (s->readers.head) return luaL_error(L, "%s: another task is reading "
                                         "this stream", fname);
  luaio_check_wait(L, fname);
  if ((rc = luaio__stream_read_start(s)) < 0)
    return luaio_raise_uv(L, rc, fname, NULL, NULL);
  return luaio_waitlist_wait(L, &s->readers, k, (lua_KContext)fname);
}

#define take(L, s, n) luaio__buf_take((L), (s)->in, (n), 0)

/* Raise the read error; what was received before it is not lost: it
 * is in the error's `partial` field. */
static int read_error (lua_State *L, luaio_stream *s, const char *fname) {
  luaio_push_uv_error(L, s->read_err, fname, NULL, NULL);
  if (s->in->len > 0) {
    take(L, s, s->in->len);
    lua_setfield(L, -2, "partial");
  }
  return luaio_raise(L);
}

/* Common start of every read continuation: the stream at 1, the waiter
 * (if any) popped. Returns the stream, or raises. */
static luaio_stream *resume_read (lua_State *L, int status,
                                  lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (status == UV_ECANCELED)                      /* the task's cancel */
    luaio_raise_uv(L, status, (const char *)ctx, NULL, NULL);
  if (u->s == NULL || u->s->closed || u->s->closing)
    luaio__closed_error(L, (const char *)ctx, "stream");
  return u->s;
}

static int read_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_stream *s = resume_read(L, status, ctx);
  lua_Integer n = lua_tointeger(L, 2);
  lua_settop(L, 2);
  if (s->in->len > 0) {
    take(L, s, s->in->len < (size_t)n ? s->in->len : (size_t)n);
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
  n = luaio__optinteger(L, 2, "stream:read", LUAIO_STREAM_CHUNK);
  if (n <= 0) return luaio__argerror(L, 2, "stream:read", "size must be > 0");
  lua_settop(L, 1);
  lua_pushinteger(L, n);
  return read_k(L, 0, (lua_KContext)"stream:read");
}

static int eof_error (lua_State *L, luaio_stream *s, const char *fname) {
  luaio_push_error(L, "eof", "EOF", "end of stream before the data "
                   "expected");
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  take(L, s, s->in->len);
  lua_setfield(L, -2, "partial");
  return luaio_raise(L);
}

static int readexactly_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_stream *s = resume_read(L, status, ctx);
  size_t n = (size_t)lua_tointeger(L, 2);
  lua_settop(L, 2);
  if (s->in->len >= n) { take(L, s, n); return 1; }
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

static int limit_error (lua_State *L, luaio_stream *s, const char *fname) {
  lua_pushfstring(L, "no separator within %d bytes", (int)s->max_line);
  luaio_push_error(L, "limit", NULL, lua_tostring(L, -1));
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  return luaio_raise(L);
}

/* What readuntil_k does when the buffer has no whole line: raise or
 * return the end, or wait for more. */
static int readuntil_more (lua_State *L, luaio_stream *s, int strip,
                           const char *fname, lua_KFunction k) {
  if (s->in->len > s->max_line) return limit_error(L, s, fname);
  if (s->read_err) return read_error(L, s, fname);
  if (s->eof) {
    if (s->in->len == 0) { lua_pushnil(L); return 1; }  /* end of stream */
    if (strip) { take(L, s, s->in->len); return 1; }    /* a last line */
    return eof_error(L, s, fname);
  }
  return wait_data(L, s, k, fname);
}

/* Stack: stream, sep, strip(boolean). */
static int readuntil_k (lua_State *L, int status, lua_KContext ctx) {
  luaio_stream *s = resume_read(L, status, ctx);
  size_t seplen, n;
  const char *sep = lua_tolstring(L, 2, &seplen);
  int strip = lua_toboolean(L, 3);
  const char *fname = (const char *)ctx;
  lua_settop(L, 3);
  n = luaio__buf_find(s->in, sep, seplen);
  if (n > 0 && n - seplen <= s->max_line) {
    size_t keep = strip ? n - seplen : n;
    if (strip && keep > 0 && s->in->base[s->in->start + keep - 1] == '\r')
      keep--;
    luaio__buf_take(L, s->in, keep, n - keep);
    return 1;
  }
  if (n > 0) return limit_error(L, s, fname);
  return readuntil_more(L, s, strip, fname, readuntil_k);
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
  luaio_stream *s = resume_read(L, status, ctx);
  lua_settop(L, 1);
  if (s->read_err) return read_error(L, s, "stream:read_all");
  if (s->eof) { take(L, s, s->in->len); return 1; }
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

static int drain_k (lua_State *L, int status, lua_KContext ctx) {
  stream_ud *u = (stream_ud *)lua_touserdata(L, 1);
  if (status == UV_ECANCELED)                      /* the task's cancel */
    return luaio_raise_uv(L, status, (const char *)ctx, NULL, NULL);
  if (status == LUAIO_STREAM_CLOSED || u->s == NULL || u->s->closed)
    return luaio__closed_error(L, (const char *)ctx, "stream");
  if (u->s->write_err)
    return luaio_raise_uv(L, u->s->write_err, (const char *)ctx, NULL, NULL);
  return 0;
}

/* s:write(data): queued at once; waits while more than 64 KiB are
 * queued (backpressure). Nothing is dropped: a failure is raised here or
 * by the next write/close. */
static int stream_write (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:write");
  size_t len;
  const char *data = luaio__checkstring(L, 2, "stream:write", &len);
  int rc;
  if (s->write_err)
    return luaio_raise_uv(L, s->write_err, "stream:write", NULL, NULL);
  if ((rc = luaio__stream_send(s, data, len)) == UV_ENOMEM)
    return luaL_error(L, "stream:write: out of memory");
  if (rc < 0) return luaio_raise_uv(L, rc, "stream:write", NULL, NULL);
  if (s->queued <= HIGH_WATER) return 0;
  luaio_check_wait(L, "stream:write");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &s->writers, drain_k,
                             (lua_KContext)"stream:write");
}

/* Wait until everything written has gone out, then k. */
static int stream_drain_all (lua_State *L, luaio_stream *s, const char *fname,
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

/* s:drain(): waits until everything written has gone out. */
static int stream_drain (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:drain");
  lua_settop(L, 1);
  return stream_drain_all(L, s, "stream:drain", drained_k);
}

/* ---- closing ------------------------------------------------------------- */

/* Close at once: a write error not yet raised is returned. */
static int close_now (stream_ud *u) {
  int err = u->s->write_err;
  luaio__stream_close(u->s);
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
 * write error, by another close (LUAIO_STREAM_CLOSED: nothing left to
 * do) or by the task's cancellation (close at once, then raise it). */
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
  stream_ud *u = (stream_ud *)luaL_checkudata(L, 1, STREAM);
  luaio_stream *s = u->s;
  int err;
  lua_settop(L, 1);
  luaio__resource_closed(L, 1);
  if (s == NULL || s->closed) return 0;
  s->closing = 1;
  luaio_waitlist_wake_all(&s->readers, LUAIO_STREAM_CLOSED);
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
    return luaio__closed_error(L, "stream:shutdown", "stream");
  if (status < 0)
    return luaio_raise_uv(L, status, "stream:shutdown", NULL, NULL);
  return 0;
}

/* s:shutdown(): half-close after queued data is sent (peer reads EOF). */
static int stream_shutdown (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:shutdown");
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

/* ---- options and addresses (TCP only; no-ops on other kinds) -------- */

static int stream_setnodelay (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:setnodelay");
  if (s->u.h.type == UV_TCP) uv_tcp_nodelay(&s->u.tcp, lua_toboolean(L, 2));
  return 0;
}

static int stream_keepalive (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:keepalive");
  lua_Integer delay = luaio__optinteger(L, 3, "stream:keepalive", 60);
  if (s->u.h.type == UV_TCP)
    uv_tcp_keepalive(&s->u.tcp, lua_toboolean(L, 2), (unsigned)delay);
  return 0;
}

static int stream_set_max_line (lua_State *L) {
  luaio_stream *s = check_stream(L, "stream:set_max_line");
  lua_Integer n = luaio__checkinteger(L, 2, "stream:set_max_line");
  if (n <= 0) return luaio__argerror(L, 2, "stream:set_max_line",
                                     "must be > 0");
  s->max_line = (size_t)n;
  return 0;
}

static int sock_name (lua_State *L, int peer, const char *fname) {
  luaio_stream *s = check_stream(L, fname);
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (s->u.h.type != UV_TCP) return 0;
  rc = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len)
            : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0) return luaio_raise_uv(L, rc, fname, NULL, NULL);
  return luaio__push_addr(L, (struct sockaddr *)&ss);
}

/* s:peername() / s:sockname() -> host, port */
static int stream_peername (lua_State *L) {
  return sock_name(L, 1, "stream:peername");
}
static int stream_sockname (lua_State *L) {
  return sock_name(L, 0, "stream:sockname");
}

static int stream_tostring (lua_State *L) {
  stream_ud *u = (stream_ud *)luaL_checkudata(L, 1, STREAM);
  int open = u->s && !u->s->closed && !u->s->closing;
  lua_pushfstring(L, "luaio.Stream (%s): %p", open ? "open" : "closed",
                  (void *)u);
  return 1;
}

static void stream_class (lua_State *L) {
  static const luaL_Reg methods[] = {
    {"read", stream_read}, {"readexactly", stream_readexactly},
    {"readline", stream_readline}, {"readuntil", stream_readuntil},
    {"read_all", stream_read_all}, {"lines", stream_lines},
    {"write", stream_write}, {"drain", stream_drain},
    {"close", stream_close_m}, {"shutdown", stream_shutdown},
    {"setnodelay", stream_setnodelay}, {"keepalive", stream_keepalive},
    {"set_max_line", stream_set_max_line}, {"peername", stream_peername},
    {"sockname", stream_sockname}, {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", stream_tostring}, {NULL, NULL}
  };
  luaio__class(L, STREAM, methods, stream_gc, meta);
}
