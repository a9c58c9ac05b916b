/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http_int.h: what the files of `luaio.http` share, and nothing else.
 *
 *   http.c            the Lua module: functions, client objects, requests
 *   http_transport.c  the client's curl multi on the loop (sockets, timer)
 *   http_options.c    checking an options table, then building a transfer
 *   http_response.c   headers, body, redirects, responses, streamed chunks
 *
 * A client (hclient) owns a curl multi; a request (req) is an easy handle
 * inside a userdata kept on the requesting task's stack while it waits.
 */
#ifndef LUAIO_HTTP_INT_H
#define LUAIO_HTTP_INT_H

#include "../host/host.h"
#include <curl/curl.h>

#define DEFAULT_TIMEOUT 300.0          /* seconds, like aiohttp */
#define DEFAULT_CONNECT_TIMEOUT 30.0
#define DEFAULT_MAX_BODY (256.0 * 1024 * 1024)
#define DEFAULT_MAX_HEADER (256 * 1024)
#define STREAM_HIGH (256 * 1024)       /* a streamed body pauses past this */

typedef struct hsock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct hclient *c;
  struct hsock *next;
} hsock;

typedef struct req req;

typedef struct hclient {
  CURLM *multi;
  CURLSH *share;                /* the cookie jar of the client */
  uv_timer_t timer;
  luaio_host *h;
  hsock *socks;
  req *reqs;                    /* requests in the multi */
  req *backoffs;                /* requests waiting to retry */
  int nreqs;                    /* request objects pointing here: the
                                   struct outlives close until they go */
  int closed, timer_closed;
} hclient;

struct req {
  luaio_waiter w;
  luaio_perm_curl perm;         /* the sandbox's checks of this request */
  luaio_deadline d;             /* retry backoff */
  luaio_deadline idle_d;        /* idle_timeout, while in the multi */
  uint64_t idle_ms, last_rx;    /* last_rx: uv_now of the last byte */
  hclient *c;
  CURL *easy;
  struct curl_slist *headers;
  struct curl_slist *safe_headers; /* headers minus secrets */
  curl_mime *mime;
  char *body, *hdrs;
  size_t len, cap, hlen, hcap, max_body, max_header;
  int too_big, header_too_big, in_multi, backoff, attempt, retries;
  int stream, follow, headers_done, paused, finished;
  int secrets;                  /* some headers must not leave the origin */
  int stripped;                 /* safe_headers in use (cross-origin) */
  int in_header;                /* between a status line and its end */
  int new_response;             /* the next header line is a status line */
  int incomplete;               /* stream: ended before its final headers */
  int client_closed;            /* ended by closing its client */
  luaio_waitlist readers;       /* stream: a task waiting for a chunk */
  int idempotent;
  CURLcode result;
  double retry_after;
  req *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

/* The checked options of one request: numbers decoded, every string and
 * table left on the Lua stack at the index kept here (0: absent). Made
 * by http__check_opts before anything is allocated. */
typedef struct req_opts {
  double timeout, connect_timeout, idle_timeout;  /* -1: off */
  long max_redirects, http_version;               /* -1: curl's default */
  double max_body;
  lua_Integer retries;
  int follow, verify, retry_any, stream;
  int ca_file, proxy, sensitive;                   /* stack indices */
  int user_agent, auth, bearer;    /* stack indices; -1: off (false) */
  int client_headers, headers;                     /* tables, or 0 */
  int body;                    /* the encoded body string, or 0 */
  const char *content_type;    /* of json and form bodies, or NULL */
  int multipart;               /* the checked multipart table, or 0 */
  int url;                     /* the final URL string */
  int arg;                     /* the argument holding the options */
} req_opts;

/* http_transport.c */
hclient *http__client_new(luaio_host *h, int cookies);
void http__client_close(hclient *c);
void http__client_unref(hclient *c);
void http__set_caps(hclient *c, long total, long per_host);
int http__req_add(req *r);
void http__req_remove(req *r);
void http__backoff_stop(req *r);
void http__list_add(req **head, req *r);
void http__list_del(req **head, req *r);
int http__closesocket_cb(void *clientp, curl_socket_t fd);

/* http_options.c: check (may raise, allocates nothing outside Lua), then
 * apply (curl and slist memory owned by r; raises only out of memory). */
int http__is_token(const char *s, size_t len);
void http__check_headers(lua_State *L, int idx, int arg, const char *fname);
void http__check_settings(lua_State *L, int sidx, const char *fname);
void http__check_opts(lua_State *L, req_opts *o, const char *url, int opts,
                      int settings, const char *fname);
void http__apply_opts(lua_State *L, req *r, const req_opts *o,
                      const char *method, const char *fname);

/* http_response.c */
void http__set_callbacks(req *r);
void http__req_release(req *r);
int http__raise_transfer_error(lua_State *L, req *r, const char *method);
int http__raise_closed(lua_State *L, const char *op, int url,
                       const char *msg);
void http__stream_ended(req *r);
void http__push_response(lua_State *L, req *r, const char *method,
                         lua_Number elapsed);
void http__make_response_meta(lua_State *L);

/* http.c: the Lua helper of the module (lua/download.lua) and its
 * functions: "download", "json_encode", "json_decode". [-0, +1] */
void http__push_helper(lua_State *L, const char *name);

/* serve_lua.c: http.serve, http.static and the server classes, added
 * to the module table on top. */
void luaio__serve_register(lua_State *L);

#endif
