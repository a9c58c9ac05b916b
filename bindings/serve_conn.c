/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve_conn.c: the HTTP server's connections, on our own uv_tcp_t.
 *
 * Bytes read go to a per-connection buffer that libhttp-parser consumes.
 * One request per connection is answered at a time: the parser pauses
 * at the end of each message until its response is complete, so
 * pipelined requests are answered in order and unread ones wait in the
 * buffer (reading stops meanwhile). It pauses too while a request body
 * piles up unread (backpressure). One repeating timer per server drops
 * connections past their header or idle deadline; accepting pauses at
 * max_conns (libuv stops polling the listener until we accept).
 */
#include "serve.h"
#include <limits.h>
#include <strings.h>
#include <unistd.h>

#define IN_CHUNK 65536
#define LINGER_MS 2000

static void conn_parse (hconn *c);

/* ---- small buffers ------------------------------------------------- */

/* Append to a growing buffer; inl is the inline storage it starts in
 * (never freed), or NULL. */
static int buf_add (char **b, size_t *len, size_t *cap, const char *d,
                    size_t n, const char *inl) {
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 256;
    char *nb;
    while (ncap < *len + n) ncap *= 2;
    if (*b != NULL && *b == inl) {
      if ((nb = malloc(ncap)) != NULL) memcpy(nb, *b, *len);
    } else {
      nb = realloc(*b, ncap);
    }
    if (nb == NULL) return -1;
    *b = nb;
    *cap = ncap;
  }
  memcpy(*b + *len, d, n);
  *len += n;
  return 0;
}

static int off_push (hreq *r) {
  if (r->noffs == r->offcap) {
    size_t ncap = r->offcap * 2, *no;
    if (r->offs == r->offs_in) {
      if ((no = malloc(ncap * sizeof *no)) != NULL)
        memcpy(no, r->offs, r->noffs * sizeof *no);
    } else {
      no = realloc(r->offs, ncap * sizeof *no);
    }
    if (no == NULL) return -1;
    r->offs = no;
    r->offcap = ncap;
  }
  r->offs[r->noffs++] = r->hlen;
  return 0;
}

void req_unref (hreq *r) {
  if (--r->refs > 0) return;
  if (r->srv) srv_unref(r->srv);
  if (r->file_fd >= 0) close(r->file_fd);
  if (r->hbuf != r->hbuf_in) free(r->hbuf);
  if (r->offs != r->offs_in) free(r->offs);
  free(r->body);
  free(r);
}

static uint64_t now_ms (hconn *c) { return uv_now(c->tcp.loop); }

/* ---- parser callbacks ---------------------------------------------- */

static int on_begin (http_parser *p) {
  hconn *c = p->data;
  hreq *r = calloc(1, sizeof *r);
  if (r == NULL) {
    c->err_status = 503;
    return -1;
  }
  r->offs = r->offs_in;
  r->offcap = SRV_INLINE_OFFS;
  r->hbuf = r->hbuf_in;
  r->hcap = SRV_INLINE_HEAD;
  r->offs[r->noffs++] = 0;            /* the url's start */
  r->refs = 1;
  r->file_fd = -1;
  r->c = c;
  c->req = r;
  c->phase = PH_HEAD;
  c->deadline = now_ms(c) + c->srv->lim.header_ms;
  c->head_bytes = 0;
  return 0;
}

/* Count every byte of the head against max_header (431 past it). */
static int head_add (hconn *c, const char *d, size_t n) {
  hreq *r = c->req;
  c->head_bytes += n;
  if (c->head_bytes > c->srv->lim.max_header) {
    c->err_status = 431;
    return -1;
  }
  if (buf_add(&r->hbuf, &r->hlen, &r->hcap, d, n, r->hbuf_in) < 0) {
    c->err_status = 503;
    return -1;
  }
  return 0;
}

static int on_url (http_parser *p, const char *d, size_t n) {
  return head_add(p->data, d, n);
}

/* Names and values may come in pieces: a new piece starts when the
 * callback kind changes. */
static int on_piece (http_parser *p, const char *d, size_t n, int kind) {
  hconn *c = p->data;
  hreq *r = c->req;
  if (r->last_cb != kind) {
    if (off_push(r) < 0) { c->err_status = 503; return -1; }
    r->last_cb = kind;
  }
  return head_add(c, d, n);
}

/* http_parser, built lenient, lets a space into a header name and
 * still honours "Transfer-Encoding : chunked" or "Content-Length :":
 * a proxy that does not would frame the body otherwise (request
 * smuggling). RFC 9112 5.1: a 400. */
static int on_field (http_parser *p, const char *d, size_t n) {
  if (memchr(d, ' ', n) != NULL) {
    ((hconn *)p->data)->err_status = 400;
    return -1;
  }
  return on_piece(p, d, n, 1);
}

static int on_value (http_parser *p, const char *d, size_t n) {
  return on_piece(p, d, n, 2);
}

/* RFC 9112 3.2: an HTTP/1.1 request without Host, or any with more
 * than one, gets a 400 (HTTP/1.0 may omit it). Names sit at the odd
 * pieces of hbuf, each ending where its value starts. */
static int host_bad (const hreq *r, const http_parser *p) {
  size_t i, n = 0;
  for (i = 1; i + 1 < r->noffs; i += 2)
    if (r->offs[i + 1] - r->offs[i] == 4 &&
        strncasecmp(r->hbuf + r->offs[i], "host", 4) == 0)
      n++;
  return n > 1 || (n == 0 && p->http_major == 1 && p->http_minor >= 1);
}

static int on_headers (http_parser *p) {
  hconn *c = p->data;
  hreq *r = c->req;
  hserver *s = c->srv;
  if (r->last_cb == 1 && off_push(r) < 0) {      /* a name, no value */
    c->err_status = 503;
    return -1;
  }
  if (host_bad(r, p)) {
    c->err_status = 400;
    return -1;
  }
  r->method = (unsigned char)p->method;
  r->major = (unsigned char)p->http_major;
  r->minor = (unsigned char)p->http_minor;
  r->head_only = p->method == HTTP_HEAD;
  r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
  if (++c->nreq >= s->lim.max_requests || s->closing) r->keep_alive = 0;
  if (p->content_length != ULLONG_MAX &&
      p->content_length > s->lim.max_body) {
    c->err_status = 413;
    return -1;
  }
  c->phase = PH_BUSY;
  c->body_deadline = now_ms(c) + s->lim.body_ms;
  c->spawn_pending = 1;
  return 0;
}

static void pause_parser (hconn *c) {
  http_parser_pause(&c->p, 1);
  c->paused = 1;
}

static int on_body (http_parser *p, const char *d, size_t n) {
  hconn *c = p->data;
  hreq *r = c->req;
  if (r->finished) return 0;             /* answered: drop the rest */
  if (r->btotal + n > c->srv->lim.max_body) {
    r->too_large = 1;
    luaio_waitlist_wake_all(&r->readers, 0);
    pause_parser(c);
    return 0;
  }
  if (buf_add(&r->body, &r->blen, &r->bcap, d, n, NULL) < 0) {
    c->err_status = 503;
    return -1;
  }
  r->btotal += n;
  luaio_waitlist_wake_all(&r->readers, 0);
  if (r->blen >= SRV_HIGH_WATER) pause_parser(c);
  return 0;
}

static int on_complete (http_parser *p) {
  hconn *c = p->data;
  c->req->complete = 1;
  luaio_waitlist_wake_all(&c->req->readers, 0);
  pause_parser(c);
  return 0;
}

static const http_parser_settings settings = {
  .on_message_begin = on_begin, .on_url = on_url,
  .on_header_field = on_field, .on_header_value = on_value,
  .on_headers_complete = on_headers, .on_body = on_body,
  .on_message_complete = on_complete,
};

/* ---- writing ------------------------------------------------------- */

typedef struct wop {
  uv_write_t req;
  hconn *c;
  size_t len;
  char data[];
} wop;

static void write_cb (uv_write_t *req, int status) {
  wop *op = (wop *)req;
  hconn *c = op->c;
  c->queued -= op->len;
  free(op);
  if (status < 0) { conn_close(c); return; }
  if (c->queued <= SRV_LOW_WATER)
    luaio_waitlist_wake_all(&c->writers, 0);
  if (c->queued == 0 && c->close_after_write) conn_close(c);
}

/* Send what goes out now of the n buffers (a head and a body: one
 * system call for both); queue a copy of the rest. */
void conn_writev (hconn *c, const uv_buf_t *bufs, int n) {
  size_t total = 0, skip = 0, at = 0;
  int i, w = 0;
  wop *op;
  uv_buf_t b;
  for (i = 0; i < n; i++) total += bufs[i].len;
  if (c->closed || total == 0) return;
  if (c->queued == 0) {
    w = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)n);
    if (w == (int)total) return;
    if (w < 0 && w != UV_EAGAIN) { conn_close(c); return; }
    if (w < 0) w = 0;
  }
  op = malloc(sizeof *op + total - (size_t)w);
  if (op == NULL) { conn_close(c); return; }
  op->c = c;
  op->len = total - (size_t)w;
  skip = (size_t)w;
  for (i = 0; i < n; i++) {               /* what was not sent */
    size_t len = bufs[i].len, from = skip < len ? skip : len;
    memcpy(op->data + at, bufs[i].base + from, len - from);
    at += len - from;
    skip -= from;
  }
  b = uv_buf_init(op->data, (unsigned)op->len);
  if (uv_write(&op->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
    free(op);
    conn_close(c);
    return;
  }
  c->queued += op->len;
}

void conn_write (hconn *c, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  conn_writev(c, &b, 1);
}

static void shutdown_cb (uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

/* Close once the answer is out, lingering: the write side is shut
 * after it, and what the client still sends is read and dropped for
 * LINGER_MS, so the close does not reset the connection (losing the
 * answer) while the client is still writing. */
void conn_linger (hconn *c) {
  uv_shutdown_t *sd;
  if (c->closed || c->lingering) return;
  sd = malloc(sizeof *sd);
  if (sd == NULL || uv_shutdown(sd, (uv_stream_t *)&c->tcp,
                                shutdown_cb) < 0) {
    free(sd);
    c->close_after_write = 1;
    if (c->queued == 0) conn_close(c);
    return;
  }
  c->lingering = 1;
  c->phase = PH_IDLE;
  c->deadline = now_ms(c) + LINGER_MS;
  c->in_len = 0;
}

/* Answer a request the parser refused, then close. */
static void conn_fail (hconn *c, int status) {
  char head[160];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nConnection: "
                   "close\r\nContent-Length: 0\r\n\r\n", status,
                   http_status_str((enum http_status)status));
  conn_write(c, head, (size_t)n);
  conn_linger(c);
}

/* ---- the connection's life ----------------------------------------- */

static void on_alloc (uv_handle_t *h, size_t size, uv_buf_t *b) {
  hconn *c = h->data;
  size_t need;
  (void)size;
  if (c->in_len == 0) c->in_start = 0;
  else if (c->in_start > 0) {
    memmove(c->in, c->in + c->in_start, c->in_len);
    c->in_start = 0;
  }
  need = c->in_len + IN_CHUNK;
  if (c->in_cap < need) {
    char *nb = realloc(c->in, need);
    if (nb == NULL) { *b = uv_buf_init(NULL, 0); return; }
    c->in = nb;
    c->in_cap = need;
  }
  *b = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* Give the input buffer back once it holds nothing: an idle keep-alive
 * connection then costs its struct, not IN_CHUNK (10,000 idle clients
 * kept some 45 MB of touched pages otherwise). The next read allocates
 * again; libuv holds no buffer between its alloc and read callbacks. */
static void in_release (hconn *c) {
  if (c->in_len != 0 || c->in == NULL) return;
  free(c->in);
  c->in = NULL;
  c->in_cap = c->in_start = 0;
}

/* The peer finished sending (or the link broke). A request still
 * arriving is aborted; buffered pipelined ones are still answered. */
static void conn_eof (hconn *c, ssize_t n) {
  hreq *r = c->req;
  c->eof = 1;
  if (n != UV_EOF || r == NULL || !r->dispatched || c->lingering ||
      c->ws) {
    conn_close(c);
    return;
  }
  if (!r->complete) {
    r->aborted = 1;
    r->keep_alive = 0;
    luaio_waitlist_wake_all(&r->readers, 0);
  }
  conn_parse(c);                       /* stops reading */
}

static void on_read (uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  hconn *c = st->data;
  (void)b;
  if (n == 0) return;
  if (n < 0) { conn_eof(c, n); return; }
  if (c->lingering) return;              /* dropped: see conn_linger */
  c->in_len += (size_t)n;
  conn_parse(c);
}

/* The current request is answered and fully read: on to the next one.
 * Returns 1 if the connection closed. */
static int conn_next (hconn *c) {
  hreq *r = c->req;
  int keep = r->keep_alive && !r->aborted && !c->srv->closing;
  c->req = NULL;
  r->c = NULL;                 /* it may outlive the connection */
  r->peer = c->peer;
  req_unref(r);
  http_parser_pause(&c->p, 0);
  c->paused = 0;
  c->phase = PH_IDLE;
  c->deadline = now_ms(c) + c->srv->lim.idle_ms;
  if (!keep || (c->eof && c->in_len == 0)) {
    c->close_after_write = 1;
    if (c->queued == 0) conn_close(c);
    return 1;
  }
  return 0;
}

/* Reading goes on while the parser waits at a request's end for its
 * answer: what the client pipelines waits in the buffer (up to
 * IN_CHUNK), and the socket is not taken out of epoll and put back
 * (two system calls) for every request. It stops while a body is not
 * taken (backpressure). */
static int wants_read (hconn *c) {
  if (c->lingering) return 1;
  if (c->ws) return ws_wants_read(c) && !c->eof;
  if (c->close_after_write || c->eof) return 0;
  return !c->paused || (c->req && c->req->complete && c->in_len < IN_CHUNK);
}

static void set_reading (hconn *c) {
  int want = wants_read(c);
  if (c->closed || want == c->reading) return;
  if (want) want = uv_read_start((uv_stream_t *)&c->tcp, on_alloc,
                                 on_read) == 0;
  else uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = want;
}

/* Start the task of a request whose head was just parsed. */
static void conn_spawn (hconn *c) {
  c->spawn_pending = 0;
  if (srv_dispatch(c->srv, c->req) < 0) conn_fail(c, 503);
  else c->req->dispatched = 1;
}

/* Feed the buffered bytes to the parser until it pauses or runs dry. */
static void conn_parse (hconn *c) {
  if (c->ws && !c->lingering && !c->closed) ws_on_data(c);
  while (!c->ws && !c->closed && !c->close_after_write && !c->lingering) {
    enum http_errno e;
    size_t n;
    if (c->req && c->req->finished && c->req->complete) {
      if (conn_next(c)) return;
      continue;
    }
    if (c->paused || c->in_len == 0) break;
    n = http_parser_execute(&c->p, &settings, c->in + c->in_start,
                            c->in_len);
    c->in_start += n;
    c->in_len -= n;
    e = HTTP_PARSER_ERRNO(&c->p);
    if (e == HPE_OK || e == HPE_PAUSED) {
      if (c->spawn_pending) conn_spawn(c);
      continue;
    }
    /* A head followed by an error its handler never saw (a Transfer-
     * Encoding not ending in chunked, a bad chunk size in the same
     * read): a 400 before any handler runs. */
    c->spawn_pending = 0;
    if (c->req && c->req->dispatched) {   /* broken body: drop it */
      c->req->aborted = c->req->bad = 1;
      c->req->keep_alive = 0;
      luaio_waitlist_wake_all(&c->req->readers, 0);
      c->paused = 1;
      break;
    }
    conn_fail(c, c->err_status ? c->err_status :
              e == HPE_HEADER_OVERFLOW ? 431 : 400);
    return;
  }
  in_release(c);
  set_reading(c);
}

static void kick_cb (uv_idle_t *h) {
  hserver *s = h->data;
  while (s->kicks) {
    hconn *c = s->kicks;
    s->kicks = c->kick_next;
    c->kicked = 0;
    conn_parse(c);
  }
  uv_idle_stop(h);
}

/* Parse again on the next loop turn (never from inside a task). */
void conn_kick (hconn *c) {
  if (c->kicked || c->closed) return;
  c->kicked = 1;
  c->kick_next = c->srv->kicks;
  c->srv->kicks = c;
  uv_idle_start(&c->srv->kick, kick_cb);
}

void req_finished (hreq *r) {
  hconn *c = r->c;
  r->finished = 1;
  if (c == NULL) return;
  if (!r->keep_alive || r->too_large || r->aborted || c->srv->closing) {
    r->keep_alive = 0;
    if (r->too_large || (r->bad && !c->eof)) {
      conn_linger(c);
      set_reading(c);
      return;
    }
    if (!r->complete || r->aborted) {
      c->close_after_write = 1;
      set_reading(c);
      if (c->queued == 0) conn_close(c);
      return;
    }
  }
  if (!r->complete && c->paused) {       /* drop the unread rest */
    http_parser_pause(&c->p, 0);
    c->paused = 0;
  }
  conn_kick(c);
}

void req_body_taken (hreq *r) {
  hconn *c = r->c;
  if (c == NULL || !c->paused || r->complete || r->too_large ||
      r->aborted)
    return;
  /* the wait was the handler's: the client's clock starts again */
  c->body_deadline = now_ms(c) + c->srv->lim.body_ms;
  http_parser_pause(&c->p, 0);
  c->paused = 0;
  conn_kick(c);
}

static void conn_closed_cb (uv_handle_t *h) {
  hconn *c = h->data;
  hserver *s = c->srv;
  free(c->in);
  free(c);
  srv_unref(s);
}

static void unkick (hconn *c) {
  hconn **pp = &c->srv->kicks;
  while (*pp && *pp != c) pp = &(*pp)->kick_next;
  if (*pp) *pp = c->kick_next;
  c->kicked = 0;
}

static void accept_one (hserver *s);
static void close_handles (hserver *s);

/* Close now; tasks waiting on the connection wake with an error. The
 * struct goes in the close callback. */
void conn_close (hconn *c) {
  hserver *s = c->srv;
  hreq *r = c->req;
  if (c->closed) return;
  c->closed = 1;
  if (c->kicked) unkick(c);
  if (c->prev) c->prev->next = c->next; else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  luaio_waitlist_wake_all(&c->writers, SRV_WAKE_CLOSED);
  if (r != NULL) {
    c->req = NULL;
    r->c = NULL;
    r->peer = c->peer;
    if (!r->complete) r->aborted = 1;
    luaio_waitlist_wake_all(&r->readers, SRV_WAKE_CLOSED);
    req_unref(r);
  }
  if (c->ws) ws_conn_closed(c);
  uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
  if (s->accept_pending && !s->closing) accept_one(s);
  srv_check_closed(s);
}

void srv_check_closed (hserver *s) {
  if (!s->closing || s->nconns > 0) return;
  close_handles(s);
  if (s->nhandlers == 0) luaio_waitlist_wake_all(&s->closers, 0);
}

/* ---- the server ---------------------------------------------------- */

static void handle_closed_cb (uv_handle_t *h) {
  srv_unref((hserver *)h->data);
}

void srv_unref (hserver *s) {
  if (--s->refs > 0) return;
  free(s->head);
  free(s);
}

static void accept_one (hserver *s) {
  hconn *c = calloc(1, sizeof *c);
  int len;
  s->accept_pending = 0;
  if (c == NULL) { s->accept_pending = 1; return; }
  c->srv = s;
  s->refs++;
  uv_tcp_init(s->listener.loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
    return;
  }
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  len = sizeof c->peer;
  uv_tcp_getpeername(&c->tcp, &c->peer.sa, &len);  /* else AF_UNSPEC */
  http_parser_init(&c->p, HTTP_REQUEST);
  c->p.data = c;
  c->phase = PH_HEAD;
  c->deadline = now_ms(c) + s->lim.header_ms;
  uv_tcp_nodelay(&c->tcp, 1);
  set_reading(c);
}

static void on_connection (uv_stream_t *l, int status) {
  hserver *s = l->data;
  if (status < 0 || s->closing) return;
  if (s->nconns >= s->lim.max_conns) { s->accept_pending = 1; return; }
  accept_one(s);
}

/* Did the client stop reading what we send for write_ms? Progress is
 * libuv's write queue shrinking between sweeps (a write callback comes
 * only once a whole buffer is out, too late for a big one). The clock
 * starts at the first sweep that sees a queue. */
static int write_stalled (hconn *c, uint64_t now) {
  size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (q == 0 || q < c->wq_seen || c->wq_seen == 0) {
    c->wq_seen = q;
    c->write_deadline = now + c->srv->lim.write_ms;
    return 0;
  }
  c->wq_seen = q;
  return now >= c->write_deadline;
}

/* Is the request body overdue? Not while the parser waits for the
 * handler to take what came (backpressure is ours, not the client's). */
static int body_overdue (hconn *c, uint64_t now) {
  hreq *r = c->req;
  return c->phase == PH_BUSY && r != NULL && !r->complete && !c->paused
         && !c->ws && !c->lingering && !c->eof && now >= c->body_deadline;
}

/* Drop a slow client; the request's waiters learn why. */
static void conn_timeout (hconn *c, int why) {
  if (c->req) c->req->timed_out = why;
  conn_close(c);
}

/* Drop connections past their deadline. Past a closing server's grace,
 * cancel the requests still running (their tasks' ends answer 500 and
 * close) and close the other connections; LINGER_MS later, all. */
static void sweep_cb (uv_timer_t *t) {
  hserver *s = t->data;
  uint64_t now = uv_now(t->loop);
  int over = s->closing && now >= s->grace_end;
  int all = over && now >= s->grace_end + LINGER_MS;
  hconn *c = s->conns, *next;
  for (; c != NULL; c = next) {
    next = c->next;
    if (over && c->req && c->req->task && !all) srv_cancel(c->req);
    else if (over || (c->phase != PH_BUSY && now >= c->deadline))
      conn_close(c);
    else if (write_stalled(c, now)) conn_timeout(c, TIMED_WRITE);
    else if (body_overdue(c, now)) conn_timeout(c, TIMED_BODY);
  }
}

int srv_start (hserver *s, uv_loop_t *loop, const struct sockaddr *addr) {
  uint64_t every = s->lim.header_ms;
  int rc;
  if (s->lim.idle_ms < every) every = s->lim.idle_ms;
  if (s->lim.body_ms < every) every = s->lim.body_ms;
  if (s->lim.write_ms < every) every = s->lim.write_ms;
  every = every / 4 < 50 ? 50 : every / 4 > 1000 ? 1000 : every / 4;
  uv_tcp_init(loop, &s->listener);
  uv_timer_init(loop, &s->sweep);
  uv_idle_init(loop, &s->kick);
  s->listener.data = s->sweep.data = s->kick.data = s;
  s->refs += 3;
  s->handles = 3;
  rc = uv_tcp_bind(&s->listener, addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511,
                              on_connection);
  if (rc == 0) uv_timer_start(&s->sweep, sweep_cb, every, every);
  return rc;
}

static void close_handles (hserver *s) {
  if (s->handles == 0) return;
  s->handles = 0;
  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, handle_closed_cb);
  uv_close((uv_handle_t *)&s->sweep, handle_closed_cb);
  uv_close((uv_handle_t *)&s->kick, handle_closed_cb);
}

/* Stop accepting and close idle connections; requests in flight get
 * grace_ms to finish, then sweep_cb cancels them. */
void srv_stop (hserver *s, uint64_t grace_ms) {
  hconn *c, *next;
  if (!s->closing) {
    s->closing = 1;
    s->grace_end = uv_now(s->listener.loop) + grace_ms;
    uv_close((uv_handle_t *)&s->listener, handle_closed_cb);
  } else if (uv_now(s->listener.loop) + grace_ms < s->grace_end) {
    s->grace_end = uv_now(s->listener.loop) + grace_ms;
  }
  for (c = s->conns; c != NULL; c = next) {
    next = c->next;
    if (c->phase != PH_BUSY || grace_ms == 0) {
      if (c->req && grace_ms == 0) srv_cancel(c->req);
      conn_close(c);
    }
  }
  srv_check_closed(s);
}
