/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net_udp.c: net.udp, datagram sockets.
 */
#include "net.h"


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
  udp *u = LUAIO_CONTAINER(h, udp, h);
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
  udp *u = LUAIO_CONTAINER(h, udp, h);
  (void)hint;
  if (u->rbuf == NULL) u->rbuf = malloc(LUAIO_STREAM_CHUNK);
  b->base = u->rbuf;
  b->len = u->rbuf ? LUAIO_STREAM_CHUNK : 0;
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
  udp *u = LUAIO_CONTAINER(h, udp, h);
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
  luaio__push_addr(L, (struct sockaddr *)&d->from);
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
  if (status == LUAIO_STREAM_CLOSED || (status == 0 && x->u == NULL))
    return luaio__closed_error(L, "udp:recv", "socket");
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

/* u:bind(host, port) */
static int udp_bind (lua_State *L) {
  udp *u = check_udp(L, "udp:bind");
  struct sockaddr_storage ss;
  int rc;
  luaio__net_ip_addr(L, 2, 3, &ss, "udp:bind", "IP address expected");
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
  luaio__net_ip_addr(L, 3, 4, &ss, "udp:send", "IP address expected");
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
  return luaio__push_addr(L, (struct sockaddr *)&ss);
}

static int udp_close (lua_State *L) {
  udp_ud *x = (udp_ud *)luaL_checkudata(L, 1, "luaio.Udp");
  if (x->u && !x->u->closed) {
    x->u->closed = 1;
    luaio_waitlist_wake_all(&x->u->receivers, LUAIO_STREAM_CLOSED);
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
  luaL_setmetatable(L, "luaio.Udp");
  return 1;
}

static const luaL_Reg udp_methods[] = {
  {"bind", udp_bind}, {"send", udp_send}, {"recv", udp_recv},
  {"sockname", udp_sockname}, {"close", udp_close}, {NULL, NULL}
};

static const luaL_Reg udp_funcs[] = {
  {"udp", net_udp}, {NULL, NULL}
};

void luaio__net_udp_open (lua_State *L) {
  luaio__class(L, "luaio.Udp", udp_methods, udp_close, NULL);
  luaL_setfuncs(L, udp_funcs, 0);
}
