/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve.h: what the two halves of the HTTP server share. serve_conn.c
 * owns the sockets (accept, read, http_parser, write queues, timeouts);
 * serve_lua.c owns the Lua objects (server, request) and the per-request
 * tasks. HTTP is parsed by libhttp-parser, never by hand.
 */
#ifndef LUAIO_SERVE_H
#define LUAIO_SERVE_H

#include "../host/host.h"
#include <http_parser.h>

/* Status a close wakes waiters with (the task's own cancel is
 * UV_ECANCELED). */
#define SRV_WAKE_CLOSED UV_EBADF

#define SRV_HIGH_WATER (64 * 1024)  /* body buffered / bytes queued */
#define SRV_LOW_WATER (16 * 1024)
#define SRV_INLINE_OFFS 24            /* url and 11 headers */
#define SRV_INLINE_HEAD 384           /* bytes of url and headers */

typedef struct srv_limits {
  size_t max_header, max_body;
  uint64_t header_ms, idle_ms;    /* timeouts */
  uint64_t body_ms, write_ms;
  int max_conns, max_requests;
} srv_limits;

/* A peer's address, kept from the accept (req.remote). */
typedef union srv_addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} srv_addr;

typedef struct hserver hserver;
typedef struct hconn hconn;
typedef struct srv_ws srv_ws;   /* serve_ws.c */

/* One request: parsed head, buffered body, response state. Owned by up
 * to three holders (the connection while current, the Lua userdata, the
 * watch on its task); freed when the last lets go. */
typedef struct hreq hreq;
struct hreq {
  hconn *c;                     /* NULL once answered, or closed */
  srv_addr peer;                /* set when c goes */
  hserver *srv;                 /* set (and held) while a task runs it */
  int refs;
  char *hbuf;                   /* url, then header names and values */
  size_t hlen, hcap;
  size_t *offs;                 /* piece starts in hbuf: url, n1, v1.. */
  size_t noffs, offcap;
  int last_cb;                  /* 1 field, 2 value: pieces come split */
  char *body;                   /* buffered body bytes not yet read */
  size_t blen, bcap, btotal;
  int complete, too_large, aborted, dispatched, bad;
  int started, chunked, finished, head_only, sized, continued;
  int timed_out;                /* TIMED_BODY or TIMED_WRITE, below */
  int file_fd;                  /* serve_file.c: req:openfile until sent */
  uint64_t file_off, file_left;
  uint64_t remaining;           /* sized: body bytes still due */
  int keep_alive;
  unsigned char method, major, minor;
  luaio_task *task;             /* NULL once done */
  luaio_waiter watch;           /* on the task's end */
  hreq *tprev, *tnext;          /* the server's requests with a task */
  luaio_waitlist readers;
  /* Where the head goes first: most heads fit, and then the request
   * costs one allocation, not three. */
  size_t offs_in[SRV_INLINE_OFFS];
  char hbuf_in[SRV_INLINE_HEAD];
};

struct hconn {
  uv_tcp_t tcp;
  hserver *srv;
  srv_addr peer;
  http_parser p;
  char *in;
  size_t in_start, in_len, in_cap;
  hreq *req;                    /* being parsed or answered */
  hconn *prev, *next;           /* the server's connections */
  hconn *kick_next;             /* on the server's kick list */
  uint64_t deadline;            /* ms (uv_now) for the phase below */
  uint64_t body_deadline;       /* PH_BUSY, body still due */
  uint64_t write_deadline;      /* queued bytes must move by then */
  size_t wq_seen;               /* libuv's write queue at last sweep */
  int phase;                    /* PH_HEAD, PH_IDLE, PH_BUSY */
  int err_status;               /* answer for a parse error */
  size_t head_bytes, queued;
  int nreq, closed, reading, paused, kicked, close_after_write;
  int eof, spawn_pending, lingering;
  srv_ws *ws;                   /* after a WebSocket upgrade */
  luaio_waitlist writers;
};
enum { PH_HEAD, PH_IDLE, PH_BUSY };
enum { TIMED_BODY = 1, TIMED_WRITE };

struct hserver {
  uv_tcp_t listener;
  uv_timer_t sweep;
  uv_idle_t kick;
  luaio_host *host;
  srv_limits lim;
  int dispatch_ref;             /* registry: the Lua dispatch function */
  hconn *conns, *kicks;
  int nconns, nhandlers, handles, refs;
  int closing, accept_pending;
  uint64_t grace_end;
  hreq *tasks;                  /* requests whose task runs */
  char *head;                   /* scratch: the response head built */
  size_t head_len, head_cap;
  char date[48];                /* the Date header line, cached */
  int64_t date_at;
  luaio_waitlist closers;
};

/* serve_conn.c */
int srv_start (hserver *s, uv_loop_t *loop, const struct sockaddr *addr);
void srv_stop (hserver *s, uint64_t grace_ms);
void srv_unref (hserver *s);
void conn_close (hconn *c);
void conn_write (hconn *c, const char *data, size_t len);
void conn_writev (hconn *c, const uv_buf_t *bufs, int n);
void conn_kick (hconn *c);
/* Wake srv:close once no connection and no request task is left. */
void srv_check_closed (hserver *s);
void req_unref (hreq *r);
/* The response is complete: go on with the next request or close. */
void req_finished (hreq *r);
/* Let the parser go on after a reader took the buffered body. */
void req_body_taken (hreq *r);

/* Close once what is queued is out, reading and dropping what still
 * comes for a while (so the close does not reset the connection). */
void conn_linger (hconn *c);

/* serve_ws.c: the connection's WebSocket side. */
void ws_on_data (hconn *c);          /* bytes arrived, or kicked */
int ws_wants_read (hconn *c);
void ws_conn_closed (hconn *c);
void ws_finish (hconn *c, int code); /* the handler ended */
int srv_ws_upgrade (lua_State *L, hreq *r);
void srv_ws_register (lua_State *L);

/* serve_lua.c: start a task for r (its head is parsed). 0 or -1. */
int srv_dispatch (hserver *s, hreq *r);
hreq *srv_check_req (lua_State *L);
/* Raise: the client connection is gone (closed, or timed out). */
int srv_gone_error (lua_State *L, hreq *r, const char *fname);

/* serve_file.c: req:openfile(path, root), req:sendfile(offset, length) */
int srv_req_openfile (lua_State *L);
int srv_req_sendfile (lua_State *L);
void srv_cancel (hreq *r);

#endif
