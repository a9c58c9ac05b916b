/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve_ws.c: WebSocket on a served connection (req:websocket()). The
 * framing is libwslay's event API: it reassembles fragmented messages,
 * answers pings, checks UTF-8 of text and runs the close handshake;
 * the handshake's accept key is OpenSSL's SHA-1 and base64. After the
 * 101 the connection belongs to the socket: bytes read go to wslay,
 * whole messages queue for ws:receive (reading stops while much is
 * unread), and frames wslay sends go out on the connection's queue.
 */
#include "serve.h"
#include <wslay/wslay.h>
#include <openssl/evp.h>

#define WS_MT "luaio.WebSocket"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The headers of the frames wslay reads, followed in the bytes handed
 * to it (recv_cb). wslay checks a frame's length against max_message
 * only once a payload byte arrived, so a client announcing 2^40 bytes
 * and sending none would hold the handler forever: the header itself
 * is what is refused. */
typedef struct ws_watch {
  uint8_t hdr[14];
  unsigned hlen;                /* header bytes seen so far */
  uint64_t skip;                /* payload bytes left in this frame */
  uint64_t msg;                 /* data bytes of the message so far */
} ws_watch;

typedef struct wsmsg {
  struct wsmsg *next;
  int binary;
  size_t len;
  char data[];
} wsmsg;

struct srv_ws {
  wslay_event_context_ptr ctx;  /* NULL once the connection closed */
  hconn *c;
  wsmsg *head, *tail;
  size_t qbytes;
  int refs, rpaused, closed_recv, failed;
  int busy, dead;               /* in wslay; closed meanwhile: ws_call */
  int closed_here;              /* ws:close was called */
  uint16_t close_code;
  luaio_waitlist readers;
  ws_watch watch;
  uint64_t max;                 /* max_message */
  int too_big;                  /* a header announced more: ws_pump */
};

typedef struct ws_ud { srv_ws *ws; } ws_ud;

static void ws_unref (srv_ws *ws) {
  wsmsg *m, *next;
  if (--ws->refs > 0) return;
  for (m = ws->head; m != NULL; m = next) { next = m->next; free(m); }
  free(ws);
}

/* ---- the frame header watch ---------------------------------------- */

/* The length of a header (RFC 6455 5.2) from its first two bytes. */
static unsigned header_len (const uint8_t *h) {
  unsigned n = h[1] & 0x7f;
  return 2 + (n == 126 ? 2 : n == 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
}

/* A whole header: its length counts toward the message (control
 * frames, at most 125 bytes and checked by wslay, do not). */
static void frame_start (srv_ws *ws) {
  ws_watch *w = &ws->watch;
  unsigned n = w->hdr[1] & 0x7f, i, ext = n == 126 ? 2 : n == 127 ? 8 : 0;
  uint64_t len = ext ? 0 : n;
  for (i = 0; i < ext; i++) len = len << 8 | w->hdr[2 + i];
  w->hlen = 0;
  w->skip = len;
  if (w->hdr[0] & 0x08) return;                 /* a control frame */
  if ((w->hdr[0] & 0x0f) != 0) w->msg = 0;      /* a new message */
  if (len > ws->max - w->msg) ws->too_big = 1;  /* msg <= max always */
  else w->msg += len;
}

static void watch_bytes (srv_ws *ws, const uint8_t *p, size_t n) {
  ws_watch *w = &ws->watch;
  while (n > 0 && !ws->too_big) {
    if (w->skip > 0) {
      size_t k = (uint64_t)n < w->skip ? n : (size_t)w->skip;
      p += k;
      n -= k;
      w->skip -= k;
      continue;
    }
    w->hdr[w->hlen++] = *p++;
    n--;
    if (w->hlen >= 2 && w->hlen == header_len(w->hdr)) frame_start(ws);
  }
}

/* ---- wslay callbacks ----------------------------------------------- */

/* Bytes for wslay; none after a header announcing too much. */
static ssize_t recv_cb (wslay_event_context_ptr ctx, uint8_t *buf,
                        size_t len, int flags, void *ud) {
  srv_ws *ws = ud;
  hconn *c = ws->c;
  (void)flags;
  if (c->in_len == 0 || ws->too_big) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (len > c->in_len) len = c->in_len;
  memcpy(buf, c->in + c->in_start, len);
  watch_bytes(ws, buf, len);
  c->in_start += len;
  c->in_len -= len;
  return (ssize_t)len;
}

static ssize_t send_cb (wslay_event_context_ptr ctx, const uint8_t *data,
                        size_t len, int flags, void *ud) {
  hconn *c = ((srv_ws *)ud)->c;
  (void)flags;
  if (c == NULL || c->closed) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  conn_write(c, (const char *)data, len);
  return (ssize_t)len;
}

static void msg_cb (wslay_event_context_ptr ctx,
                    const struct wslay_event_on_msg_recv_arg *arg,
                    void *ud) {
  srv_ws *ws = ud;
  wsmsg *m;
  (void)ctx;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    ws->closed_recv = 1;
    ws->close_code = arg->status_code;
  } else if (arg->opcode == WSLAY_TEXT_FRAME ||
             arg->opcode == WSLAY_BINARY_FRAME) {
    if ((m = malloc(sizeof *m + arg->msg_length)) == NULL) {
      ws->failed = 1;
      return;
    }
    m->next = NULL;
    m->binary = arg->opcode == WSLAY_BINARY_FRAME;
    m->len = arg->msg_length;
    memcpy(m->data, arg->msg, m->len);
    if (ws->tail) ws->tail->next = m; else ws->head = m;
    ws->tail = m;
    ws->qbytes += m->len;
  } else return;                        /* ping, pong: wslay answers */
  luaio_waitlist_wake_all(&ws->readers, 0);
}

static const struct wslay_event_callbacks callbacks = {
  recv_cb, send_cb, NULL, NULL, NULL, NULL, msg_cb
};

/* ---- the connection side ------------------------------------------- */

/* Both sides closed (or a protocol error): close once flushed. */
static void ws_done (srv_ws *ws) {
  hconn *c = ws->c;
  ws->closed_recv = 1;
  luaio_waitlist_wake_all(&ws->readers, 0);
  if (c && !c->closed) conn_linger(c);
}

#define WS_GONE (-100)   /* ws_call: the connection closed under wslay */

/* wslay_event_send or _recv. A write failing in send_cb closes the
 * connection, and its close (ws_conn_closed) would free the context
 * with wslay still inside it: while busy, that free is left to here.
 * WS_GONE then, and ws may be freed: the caller touches it no more. */
static int ws_call (srv_ws *ws, int send) {
  int rc;
  ws->busy = 1;
  rc = send ? wslay_event_send(ws->ctx) : wslay_event_recv(ws->ctx);
  ws->busy = 0;
  if (!ws->dead) return rc;
  wslay_event_context_free(ws->ctx);
  ws->ctx = NULL;
  ws_unref(ws);                         /* the connection's reference */
  return WS_GONE;
}

/* A header announced more than max_message: 1009, and read no more.
 * Out of wslay (not in recv_cb), as ws:close queues its close. */
static void refuse_too_big (srv_ws *ws) {
  if (!ws->too_big || !wslay_event_get_read_enabled(ws->ctx)) return;
  wslay_event_shutdown_read(ws->ctx);
  wslay_event_queue_close(ws->ctx, WSLAY_CODE_MESSAGE_TOO_BIG, NULL, 0);
}

static void ws_pump (srv_ws *ws) {
  int rc = 0, sent;
  if (ws->ctx == NULL) return;
  if (!ws->rpaused) rc = ws_call(ws, 0);
  if (rc == WS_GONE) return;
  refuse_too_big(ws);
  sent = ws_call(ws, 1);        /* also after a bad frame: its 1002 */
  if (sent == WS_GONE) return;
  if (rc >= 0) rc = sent;
  if (rc < 0 || ws->failed) {
    ws_done(ws);
    return;
  }
  if (ws->qbytes >= SRV_HIGH_WATER) ws->rpaused = 1;
  if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
    ws_done(ws);
}

void ws_on_data (hconn *c) {
  ws_pump(c->ws);
}

int ws_wants_read (hconn *c) {
  return !c->ws->rpaused;
}

void ws_conn_closed (hconn *c) {
  srv_ws *ws = c->ws;
  c->ws = NULL;
  ws->c = NULL;
  ws->closed_recv = 1;
  luaio_waitlist_wake_all(&ws->readers, SRV_WAKE_CLOSED);
  if (ws->busy) {                       /* inside wslay: see ws_call */
    ws->dead = 1;
    return;
  }
  wslay_event_context_free(ws->ctx);
  ws->ctx = NULL;
  ws_unref(ws);
}

/* The handler ended: close with this code if nobody did. */
void ws_finish (hconn *c, int code) {
  srv_ws *ws = c->ws;
  int rc = 0;
  if (ws->ctx && !wslay_event_get_close_sent(ws->ctx))
    wslay_event_queue_close(ws->ctx, (uint16_t)code, NULL, 0);
  if (ws->ctx) rc = ws_call(ws, 1);
  if (rc == WS_GONE) return;
  if (rc < 0) { ws_done(ws); return; }
  conn_linger(c);
}

/* ---- Lua methods --------------------------------------------------- */

static srv_ws *check_ws (lua_State *L) {
  return ((ws_ud *)luaL_checkudata(L, 1, WS_MT))->ws;
}

static int receive_k (lua_State *L, int status, lua_KContext ctx) {
  srv_ws *ws = check_ws(L);
  wsmsg *m = ws->head;
  (void)ctx;
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "ws:receive", NULL, NULL);
  lua_settop(L, 1);
  if (m != NULL) {
    ws->head = m->next;
    if (ws->head == NULL) ws->tail = NULL;
    ws->qbytes -= m->len;
    lua_pushlstring(L, m->data, m->len);
    lua_pushstring(L, m->binary ? "binary" : "text");
    free(m);
    if (ws->rpaused && ws->qbytes < SRV_LOW_WATER && ws->c) {
      ws->rpaused = 0;
      conn_kick(ws->c);
    }
    return 2;
  }
  if (ws->closed_recv || ws->ctx == NULL) {
    lua_pushnil(L);
    lua_pushinteger(L, ws->close_code ? ws->close_code : 1006);
    return 2;
  }
  luaio_check_wait(L, "ws:receive");
  return luaio_waitlist_wait(L, &ws->readers, receive_k, 0);
}

/* ws:receive() -> data, "text"|"binary"; nil, close code at the end. */
static int ws_receive (lua_State *L) {
  return receive_k(L, 0, 0);
}

/* The client closed or went away: ECONNRESET, with the op, so that
 * left uncaught it ends the handler quietly (like res:write's). */
static int gone_error (lua_State *L, const char *fname) {
  luaio_push_error(L, "io", "ECONNRESET", "the WebSocket was closed");
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  return luaio_raise(L);
}

/* ctx: 1 for ws:ping, 0 for ws:send. */
static int send_k (lua_State *L, int status, lua_KContext ctx) {
  srv_ws *ws = check_ws(L);
  const char *fname = ctx ? "ws:ping" : "ws:send";
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, fname, NULL, NULL);
  if (ws->ctx == NULL) return gone_error(L, fname);
  return 0;
}

/* ws:send(data [, "binary"]) (opcode 0x1 text, 0x2 binary, 0x9 ping):
 * waits while much is queued. */
static int ws_send_op (lua_State *L, uint8_t opcode, const char *fname) {
  srv_ws *ws = check_ws(L);
  size_t n;
  const char *s = luaio__optstring(L, 2, fname, "", &n);
  struct wslay_event_msg msg;
  int rc;
  if (opcode == WSLAY_PING && n > 125)
    return luaio__argerror(L, 2, fname, "ping data over 125 bytes");
  if (ws->ctx == NULL || (wslay_event_get_close_sent(ws->ctx) &&
                          !ws->closed_here))
    return gone_error(L, fname);       /* the client's doing */
  if (wslay_event_get_close_sent(ws->ctx))
    return luaL_error(L, "%s: the WebSocket is closing", fname);
  msg.opcode = opcode;
  msg.msg = (const uint8_t *)s;
  msg.msg_length = n;
  rc = wslay_event_queue_msg(ws->ctx, &msg);
  if (rc == WSLAY_ERR_INVALID_ARGUMENT)
    return luaio__argerror(L, 2, fname, "invalid message");
  if (rc < 0) return luaL_error(L, "%s: out of memory", fname);
  ws_pump(ws);
  if (ws->c == NULL || ws->c->queued <= SRV_HIGH_WATER)
    return send_k(L, 0, opcode == WSLAY_PING);
  luaio_check_wait(L, fname);
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &ws->c->writers, send_k,
                             opcode == WSLAY_PING);
}

static int ws_send (lua_State *L) {
  const char *kind = luaL_optstring(L, 3, "text");
  int binary = strcmp(kind, "binary") == 0;
  if (!binary && strcmp(kind, "text") != 0)
    return luaio__argerror(L, 3, "ws:send", "'text' or 'binary' expected");
  luaio__checkstring(L, 2, "ws:send", NULL);
  return ws_send_op(L, binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
                    "ws:send");
}

static int ws_ping (lua_State *L) {
  return ws_send_op(L, WSLAY_PING, "ws:ping");
}

/* ws:close([code [, reason]]): start the close handshake. */
static int ws_close (lua_State *L) {
  srv_ws *ws = check_ws(L);
  lua_Integer code = luaio__optinteger(L, 2, "ws:close", 1000);
  size_t n;
  const char *reason = luaio__optstring(L, 3, "ws:close", "", &n);
  if (code < 1000 || code > 4999 || n > 123)
    return luaio__argerror(L, code < 1000 || code > 4999 ? 2 : 3,
                           "ws:close", "invalid close code or reason");
  if (ws->ctx == NULL || wslay_event_get_close_sent(ws->ctx)) return 0;
  ws->closed_here = 1;
  wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason,
                          n);
  ws_pump(ws);
  return 0;
}

static int ws_gc (lua_State *L) {
  ws_ud *u = luaL_checkudata(L, 1, WS_MT);
  if (u->ws) ws_unref(u->ws);
  u->ws = NULL;
  return 0;
}

static const luaL_Reg ws_methods[] = {
  {"receive", ws_receive}, {"send", ws_send}, {"ping", ws_ping},
  {"close", ws_close}, {NULL, NULL}
};

/* ---- the handshake ------------------------------------------------- */

/* The Sec-WebSocket-Accept value for a client's key (RFC 6455 4.2.2):
 * base64 of the SHA-1 of the key and the GUID. 0 on failure. */
static int accept_key (const char *key, size_t n, unsigned char out[64]) {
  unsigned char sha[EVP_MAX_MD_SIZE];
  char cat[128];
  unsigned shalen = 0;
  if (n > 64) return 0;
  memcpy(cat, key, n);
  memcpy(cat + n, WS_GUID, sizeof WS_GUID - 1);
  if (!EVP_Digest(cat, n + sizeof WS_GUID - 1, sha, &shalen, EVP_sha1(),
                  NULL))
    return 0;
  EVP_EncodeBlock(out, sha, (int)shalen);
  return 1;
}

/* A socket for c, in a new userdata; raises out of memory. [-0, +1] */
static srv_ws *ws_new (lua_State *L, hconn *c, lua_Integer max) {
  ws_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  srv_ws *ws;
  u->ws = NULL;
  luaL_setmetatable(L, WS_MT);
  if ((ws = calloc(1, sizeof *ws)) == NULL)
    luaL_error(L, "out of memory");
  if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
    free(ws);
    luaL_error(L, "out of memory");
  }
  wslay_event_config_set_max_recv_msg_length(ws->ctx, (uint64_t)max);
  ws->max = (uint64_t)max;
  ws->refs = 2;                         /* the connection, the userdata */
  ws->c = c;
  u->ws = ws;
  return ws;
}

/* req:upgrade(key, max_message) -> a WebSocket: answers 101 with the
 * accept key for the client's Sec-WebSocket-Key (checked in Lua). */
int srv_ws_upgrade (lua_State *L, hreq *r) {
  size_t n;
  const char *key = luaio__checkstring(L, 2, "req:websocket", &n);
  lua_Integer max = luaio__checkinteger(L, 3, "req:websocket");
  unsigned char acc[64];
  char head[256];
  hconn *c = r->c;
  if (r->started) return luaL_error(L, "response already started");
  if (c == NULL) return luaL_error(L, "req:websocket: connection closed");
  if (!accept_key(key, n, acc))
    return luaio__argerror(L, 2, "req:websocket", "invalid key");
  c->ws = ws_new(L, c, max);
  snprintf(head, sizeof head, "HTTP/1.1 101 Switching Protocols\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
  conn_write(c, head, strlen(head));
  r->started = r->finished = 1;
  r->keep_alive = 0;
  conn_kick(c);                        /* frames already buffered */
  return 1;
}

void srv_ws_register (lua_State *L) {
  luaio__class(L, WS_MT, ws_methods, ws_gc, NULL);
}
