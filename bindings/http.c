/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http.c: `luaio.http`, an HTTP client on libcurl's multi_socket API
 * driven by the host's libuv loop.
 *
 * A client owns one curl multi (its connection cache, so keep-alive and
 * HTTP/2 multiplexing work across requests), one uv timer that curl arms
 * and one uv_poll_t per socket curl asks us to watch. Each request is an
 * easy handle inside a userdata kept on the requesting task's stack while
 * it waits; cancellation removes it from the multi at once. Curl's
 * callbacks never call back into curl, and we close curl's sockets
 * ourselves, after libuv has stopped polling them.
 */
#include "../host/host.h"
#include <curl/curl.h>
#include <ctype.h>
#include <strings.h>
#include <math.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 300.0          /* seconds, like aiohttp */
#define DEFAULT_CONNECT_TIMEOUT 30.0
#define DEFAULT_MAX_BODY (256.0 * 1024 * 1024)
#define DEFAULT_MAX_HEADER (256 * 1024)
/* Connection caps of a client that sets none: more requests queue inside
 * curl instead of each opening a socket (1,000 concurrent gets once held
 * 765 sockets). A client that sets only max_connections gets as many per
 * host. */
#define DEFAULT_MAX_CONNECTIONS 100
#define DEFAULT_MAX_PER_HOST 8

static const char default_client_key = 0;

/* ---- the client: a curl multi on the loop ------------------------------ */

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

static void sock_free_cb (uv_handle_t *h) { free(h->data); }

static void sock_close (hclient *c, hsock *s) {
  hsock **p;
  for (p = &c->socks; *p; p = &(*p)->next)
    if (*p == s) { *p = s->next; break; }
  uv_poll_stop(&s->poll);                /* epoll forgets the fd now */
  uv_close((uv_handle_t *)&s->poll, sock_free_cb);
}

static void check_done (hclient *c);

static void poll_cb (uv_poll_t *p, int status, int events) {
  hsock *s = (hsock *)p->data;
  hclient *c = s->c;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch or forget a socket. Never fails. */
static int sock_cb (CURL *e, curl_socket_t fd, int what, void *userp,
                    void *sockp) {
  hclient *c = (hclient *)userp;
  hsock *s = (hsock *)sockp;
  int events = 0;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s) sock_close(c, s);
    curl_multi_assign(c->multi, fd, NULL);
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL) return 0;
    if (uv_poll_init_socket(c->h->loop, &s->poll, fd) != 0) {
      free(s);
      return 0;
    }
    s->poll.data = s;
    s->fd = fd;
    s->c = c;
    s->next = c->socks;
    c->socks = s;
    curl_multi_assign(c->multi, fd, s);
  }
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, poll_cb);
  return 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION: stop polling before the fd goes away. */
static int closesocket_cb (void *clientp, curl_socket_t fd) {
  hclient *c = (hclient *)clientp;
  hsock *s;
  for (s = c->socks; s; s = s->next)
    if (s->fd == fd) { sock_close(c, s); break; }
  return close(fd);
}

static void timeout_cb (uv_timer_t *t) {
  hclient *c = (hclient *)t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only arm the timer; curl refuses re-entry. */
static int timer_cb (CURLM *m, long ms, void *userp) {
  hclient *c = (hclient *)userp;
  (void)m;
  if (ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, timeout_cb, (uint64_t)ms, 0);
  return 0;
}

static void list_add (req **head, req *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
}

static void list_del (req **head, req *r) {
  if (r->prev) r->prev->next = r->next; else *head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void req_unlink (req *r) {
  luaio__deadline_stop(&r->c->h->timers, &r->idle_d);
  list_del(&r->c->reqs, r);
  r->in_multi = 0;
}

static void req_remove (req *r) {
  if (!r->in_multi) return;
  curl_multi_remove_handle(r->c->multi, r->easy);
  req_unlink(r);
}

/* Finish a transfer in the multi with result rc: the waiting task (or
 * the stream's reader) wakes and sees it. */
static void req_finish (req *r, CURLcode rc) {
  req_remove(r);
  r->result = rc;
  r->finished = 1;
  luaio_waiter_done(&r->w, 0);         /* no-op once a stream started */
  luaio_waitlist_wake_all(&r->readers, 0);
}

/* idle_timeout: curl's low-speed check works in whole seconds and fired
 * seconds late, so the deadline is ours. Every byte only stamps last_rx;
 * the deadline re-arms itself for what is left. A stream paused because
 * its reader is slow is not idle. */
static void idle_cb (luaio_deadline *d) {
  req *r = (req *)((char *)d - offsetof(req, idle_d));
  luaio_timers *tm = &r->c->h->timers;
  uint64_t quiet = uv_now(r->c->h->loop) - r->last_rx;
  if (r->paused || quiet < r->idle_ms) {
    uint64_t left = r->paused ? r->idle_ms : r->idle_ms - quiet;
    if (luaio__deadline_start(tm, &r->idle_d, left, idle_cb)) return;
  }
  snprintf(r->errbuf, sizeof r->errbuf, "no data received for %.3f s "
           "(idle_timeout)", (double)r->idle_ms / 1000);
  req_finish(r, CURLE_OPERATION_TIMEDOUT);
}

static int req_add (req *r) {
  hclient *c = r->c;
  if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) return 0;
  r->in_multi = 1;
  list_add(&c->reqs, r);
  if (r->idle_ms) {
    r->last_rx = uv_now(c->h->loop);
    luaio__deadline_start(&c->h->timers, &r->idle_d, r->idle_ms, idle_cb);
  }
  return 1;
}

static void check_done (hclient *c) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
    req *r;
    CURLcode rc = msg->data.result;      /* msg dies with remove_handle */
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    req_finish(r, rc);
  }
}

/* The cookie share goes last: curl refuses to free it while an easy
 * handle of a request still points to it. */
static void client_free (hclient *c) {
  if (c->share) curl_share_cleanup(c->share);
  free(c);
}

static void client_timer_closed (uv_handle_t *h) {
  hclient *c = (hclient *)h->data;
  c->timer_closed = 1;
  if (c->nreqs == 0) client_free(c);
}

static void client_unref (hclient *c) {
  if (--c->nreqs == 0 && c->timer_closed) client_free(c);
}

static void backoff_stop (req *r) {
  if (!r->backoff) return;
  luaio__deadline_stop(&r->c->h->timers, &r->d);
  list_del(&r->c->backoffs, r);
  r->backoff = 0;
}

/* Abort what is in flight or waiting to retry, then free curl's side; the
 * struct itself goes once its timer is closed and no request points to
 * it. Each request is marked client_closed and its tasks woken with
 * status 0: req_k and chunk_k then raise the same "closed" error, also
 * for a reader that was not waiting at this moment (woken for a chunk
 * and not yet run, or reading later), which used to see the transfer
 * error instead. */
static void client_close (hclient *c) {
  if (c->closed) return;
  c->closed = 1;
  while (c->reqs) {
    req *r = c->reqs;
    req_remove(r);
    r->finished = 1;                     /* a stream ends with an error */
    r->client_closed = 1;
    r->result = CURLE_ABORTED_BY_CALLBACK;
    luaio_waiter_done(&r->w, 0);
    luaio_waitlist_wake_all(&r->readers, 0);
  }
  while (c->backoffs) {
    req *r = c->backoffs;
    backoff_stop(r);
    r->client_closed = 1;
    luaio_waiter_done(&r->w, 0);
  }
  curl_multi_cleanup(c->multi);          /* may still call sock_cb */
  while (c->socks) sock_close(c, c->socks);
  uv_close((uv_handle_t *)&c->timer, client_timer_closed);
}

static hclient *client_new (luaio_host *h, int cookies) {
  hclient *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->h = h;
  c->multi = curl_multi_init();
  if (c->multi == NULL) { free(c); return NULL; }
  if (cookies) {
    c->share = curl_share_init();
    if (c->share) curl_share_setopt(c->share, CURLSHOPT_SHARE,
                                    CURL_LOCK_DATA_COOKIE);
  }
  uv_timer_init(h->loop, &c->timer);
  c->timer.data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  return c;
}

/* ---- the Lua client object ----------------------------------------------- */

/* A client userdata: the C side, and its settings table as uservalue. */
typedef struct client_ud {
  hclient *c;
} client_ud;

static hclient *check_client (lua_State *L, int idx) {
  client_ud *u = (client_ud *)luaL_checkudata(L, idx, "luaio.HttpClient");
  if (u->c == NULL || u->c->closed)
    luaL_error(L, "http client is closed");
  return u->c;
}

static int client_gc (lua_State *L) {
  client_ud *u = (client_ud *)luaL_checkudata(L, 1, "luaio.HttpClient");
  if (u->c) client_close(u->c);
  u->c = NULL;
  return 0;
}

/* ---- requests ---------------------------------------------------------------- */

static int grow (char **buf, size_t *cap, size_t need) {
  char *b;
  size_t n = *cap ? *cap : 4096;
  if (need <= *cap) return 1;
  while (n < need) n *= 2;
  b = realloc(*buf, n);
  if (b == NULL) return 0;
  *buf = b;
  *cap = n;
  return 1;
}

#define STREAM_HIGH (256 * 1024)     /* a streamed body pauses past this */

static void headers_complete (req *r);
static void redirect_check (req *r);
static int is_final (req *r);

static size_t write_cb (char *p, size_t size, size_t n, void *ud) {
  req *r = (req *)ud;
  size_t len = size * n;
  r->last_rx = uv_now(r->c->h->loop);
  if (r->stream) {
    headers_complete(r);
    luaio_waitlist_wake(&r->readers, 0);
    if (r->len >= STREAM_HIGH) {       /* the reader is slow: hold on */
      r->paused = 1;
      return CURL_WRITEFUNC_PAUSE;
    }
  }
  else if (r->len + len > r->max_body) { r->too_big = 1; return 0; }
  if (!grow(&r->body, &r->cap, r->len + len)) return 0;
  memcpy(r->body + r->len, p, len);
  r->len += len;
  return len;
}

/* Keeps the header lines of the last response only (not of redirects or
 * 100-continue), bounded in size. A response starts where curl starts
 * one: first, and after the end of a 1xx or of a redirect it follows.
 * Anywhere else a line starting with "HTTP/" is just a header (or a
 * trailer) and must not restart the block. */
static size_t header_cb (char *p, size_t size, size_t n, void *ud) {
  req *r = (req *)ud;
  size_t len = size * n;
  r->last_rx = uv_now(r->c->h->loop);
  if (r->new_response) {
    r->new_response = 0;
    r->hlen = 0;
    r->in_header = 1;
  }
  if (r->hlen + len > r->max_header) { r->header_too_big = 1; return 0; }
  if (!grow(&r->hdrs, &r->hcap, r->hlen + len)) return 0;
  memcpy(r->hdrs + r->hlen, p, len);
  r->hlen += len;
  if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
    r->in_header = 0;
    r->new_response = !is_final(r);
    redirect_check(r);
    if (r->stream) headers_complete(r);  /* maybe: see there */
  }
  return len;
}

/* Copy the scheme, host and port of the URL u points at into o (host
 * lowercased, port filled in from the scheme). Returns 0 if unusable. */
typedef struct origin { char scheme[16], host[256], port[8]; } origin;

static int get_origin (CURLU *u, origin *o) {
  char *sc = NULL, *ho = NULL, *po = NULL;
  int ok = curl_url_get(u, CURLUPART_SCHEME, &sc, 0) == CURLUE_OK &&
           curl_url_get(u, CURLUPART_HOST, &ho, 0) == CURLUE_OK &&
           curl_url_get(u, CURLUPART_PORT, &po, CURLU_DEFAULT_PORT)
           == CURLUE_OK &&
           strlen(sc) < sizeof o->scheme && strlen(ho) < sizeof o->host &&
           strlen(po) < sizeof o->port;
  if (ok) {
    size_t i;
    strcpy(o->scheme, sc);
    strcpy(o->port, po);
    for (i = 0; ho[i]; i++) o->host[i] = (char)tolower((unsigned char)ho[i]);
    o->host[i] = '\0';
  }
  curl_free(sc);
  curl_free(ho);
  curl_free(po);
  return ok;
}

/* 1 if location (maybe relative) stays on the origin of url. Anything
 * that does not parse counts as another origin. */
static int same_origin (const char *url, const char *location) {
  CURLU *u = curl_url();
  origin from, to;
  int same = u != NULL &&
             curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             get_origin(u, &from) &&
             curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
             get_origin(u, &to) &&
             strcmp(from.scheme, to.scheme) == 0 &&
             strcmp(from.host, to.host) == 0 &&
             strcmp(from.port, to.port) == 0;
  curl_url_cleanup(u);
  return same;
}

/* At the end of a response's headers: if it redirects to another origin,
 * the next requests go without the secret headers (as browsers do; curl
 * only drops its own Authorization and Cookie). Setting the header list
 * here is safe: curl reads it when it builds the next request. Once
 * dropped they stay dropped, even if a later redirect comes back. */
static void redirect_check (req *r) {
  struct curl_header *h;
  char *url = NULL;
  long status = 0;
  if (!r->secrets || r->stripped || !r->follow) return;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 300 || status >= 400) return;
  if (curl_easy_header(r->easy, "Location", 0, CURLH_HEADER, -1, &h)
      != CURLHE_OK)
    return;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  if (url && same_origin(url, h->value)) return;
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->safe_headers);
  r->stripped = 1;
}

/* 1 if the response whose headers curl has read is the final one: not
 * a 1xx, nor a redirect we follow (curl then sends another request).
 * The status comes from curl: an HTTP/2 status line ("HTTP/2 200") is
 * not where an HTTP/1 parser looks. */
static int is_final (req *r) {
  long status = 0;
  struct curl_header *h;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200) return 0;
  return !(status >= 300 && status < 400 && r->follow &&
           curl_easy_header(r->easy, "Location", 0, CURLH_HEADER, -1, &h)
           == CURLHE_OK && h->value[strspn(h->value, " \t")] != '\0');
}

/* Stream mode: the waiting task gets the response once the final
 * headers are in. */
static void headers_complete (req *r) {
  if (r->headers_done || !is_final(r)) return;
  r->headers_done = 1;
  luaio_waiter_done(&r->w, 0);
}

static void req_release (req *r) {
  req_remove(r);
  if (r->c) backoff_stop(r);
  if (r->easy) curl_easy_cleanup(r->easy);
  if (r->headers) curl_slist_free_all(r->headers);
  if (r->safe_headers) curl_slist_free_all(r->safe_headers);
  r->safe_headers = NULL;
  if (r->mime) curl_mime_free(r->mime);
  free(r->body);
  free(r->hdrs);
  r->easy = NULL;
  r->headers = NULL;
  r->mime = NULL;
  r->body = r->hdrs = NULL;
  r->len = r->cap = r->hlen = r->hcap = 0;
  if (r->c) client_unref(r->c);                  /* after the easy handle */
  r->c = NULL;
}

static int req_gc (lua_State *L) {
  req_release((req *)lua_touserdata(L, 1));
  return 0;
}

/* Push option name from the call's options (at opts, may be 0) or else
 * the client's settings (at settings). [-0, +1] */
static int opt (lua_State *L, int opts, int settings, const char *name) {
  if (opts && lua_getfield(L, opts, name) != LUA_TNIL) return lua_type(L, -1);
  if (opts) lua_pop(L, 1);
  return lua_getfield(L, settings, name);
}

/* A seconds option: -1 when false (off), def when absent. */
static double opt_seconds (lua_State *L, int opts, int settings,
                           const char *name, double def, const char *fname) {
  double v = def;
  int t = opt(L, opts, settings, name);
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = -1;
  else if (t == LUA_TNUMBER && lua_tonumber(L, -1) >= 0) v = lua_tonumber(L, -1);
  else if (t != LUA_TNIL) {
    lua_pushfstring(L, "option '%s' must be seconds or false", name);
    luaio__argerror(L, 2, fname, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

/* A method or header name: RFC 9110 token characters only (so no NUL,
 * CR, LF or space). */
static int is_token (const char *s, size_t len) {
  size_t i;
  if (len == 0) return 0;
  for (i = 0; i < len; i++)
    if (!(isalnum((unsigned char)s[i]) ||
          (s[i] && strchr("!#$%&'*+-.^_`|~", s[i]))))
      return 0;
  return 1;
}

/* Header injection guard: CR, LF and NUL never reach the wire (C would
 * cut the string at a NUL; CR or LF would start a new header). */
static int clean_value (const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

/* Raise an argument error (arg) unless name: value is a safe header. */
static void check_header (lua_State *L, int arg, const char *fname,
                          const char *name, size_t nlen, const char *value,
                          size_t vlen) {
  if (!clean_value(name, nlen))
    luaio__argerror(L, arg, fname, "header name contains CR, LF or NUL");
  if (!is_token(name, nlen)) {
    lua_pushfstring(L, "invalid header name '%s'", name);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  if (!clean_value(value, vlen)) {
    lua_pushfstring(L, "header '%s' contains CR, LF or NUL", name);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
}

/* Append one header to r's list. An empty value is sent as "Name:" by
 * writing "Name;" (curl reads "Name:" as "remove this header"). */
static void add_header (lua_State *L, req *r, const char *name,
                        size_t nlen, const char *value, size_t vlen,
                        const char *fname) {
  struct curl_slist *l;
  check_header(L, 2, fname, name, nlen, value, vlen);
  if (vlen == 0) lua_pushfstring(L, "%s;", name);
  else lua_pushfstring(L, "%s: %s", name, value);
  l = curl_slist_append(r->headers, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (l == NULL) luaL_error(L, "%s: out of memory", fname);
  r->headers = l;
}

/* Check the headers table (name -> value) at idx, at argument arg; with
 * r, also append them to r's list. */
static void add_headers (lua_State *L, req *r, int idx, int arg,
                         const char *fname) {
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaio__argerror(L, arg, fname, "option 'headers' must be a table");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t nlen, vlen;
    const char *n, *v;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaio__argerror(L, arg, fname, "headers must map names to strings");
    n = lua_tolstring(L, -2, &nlen);
    v = lua_tolstring(L, -1, &vlen);             /* a number: in place */
    if (r) add_header(L, r, n, nlen, v, vlen, fname);
    else check_header(L, arg, fname, n, nlen, v, vlen);
    lua_pop(L, 1);
  }
}

/* 1 if the header line (from r's list) names a secret: one of the
 * built-in names or of the sensitive_headers list at sens (0: none). */
static int is_sensitive (lua_State *L, const char *line, int sens) {
  static const char *const builtin[] = {
    "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key",
    "X-Auth-Token", NULL
  };
  size_t n = strcspn(line, ":;"), i, len;
  lua_Integer k;
  for (i = 0; builtin[i]; i++)
    if (strlen(builtin[i]) == n && strncasecmp(line, builtin[i], n) == 0)
      return 1;
  for (k = 1; sens && lua_rawgeti(L, sens, k) == LUA_TSTRING; k++) {
    const char *name = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    if (len == n && strncasecmp(line, name, n) == 0) return 1;
  }
  if (sens) lua_pop(L, 1);
  return 0;
}

/* Build r->safe_headers, r's headers without the secret ones, used once
 * a redirect leaves the first origin (r->secrets says if any). */
static void set_safe_headers (lua_State *L, req *r, int opts, int settings,
                              const char *fname) {
  struct curl_slist *l, *safe = NULL;
  int sens = 0;
  lua_Integer i, n;
  if (opt(L, opts, settings, "sensitive_headers") != LUA_TNIL) {
    int ok = lua_istable(L, -1);
    n = ok ? (lua_Integer)lua_rawlen(L, -1) : 0;
    for (i = 1; ok && i <= n; i++) {
      ok = lua_rawgeti(L, -1, i) == LUA_TSTRING;
      lua_pop(L, 1);
    }
    if (!ok)
      luaio__argerror(L, 2, fname, "option 'sensitive_headers' must be a "
                      "list of header names");
    sens = lua_gettop(L);
  }
  for (l = r->headers; l && !r->secrets; l = l->next)
    r->secrets = is_sensitive(L, l->data, sens);
  for (l = r->secrets ? r->headers : NULL; l; l = l->next) {
    if (is_sensitive(L, l->data, sens)) continue;
    safe = curl_slist_append(r->safe_headers, l->data);
    if (safe == NULL) luaL_error(L, "%s: out of memory", fname);
    r->safe_headers = safe;
  }
  lua_pop(L, 1);
}

/* Push the string or number at idx percent-encoded as curl_easy_escape
 * does (RFC 3986 unreserved bytes kept). Done here, into a Lua buffer,
 * so that no curl allocation can leak when Lua raises; a NUL byte is
 * encoded, never a cut. A number key is converted on a copy (converting
 * it in place would break lua_next). [-0, +1] */
static void push_escaped (lua_State *L, int idx) {
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  size_t len, i;
  const char *s;
  lua_pushvalue(L, idx);
  s = lua_tolstring(L, -1, &len);
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
      luaL_addchar(&b, (char)c);
    else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

static int is_text (lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return t == LUA_TSTRING || t == LUA_TNUMBER;
}

/* Push the name=value pairs of the table at idx URL-encoded and joined
 * with '&'. Keys and values are strings or numbers (numbers converted).
 * The parts are collected in a table first: a luaL_Buffer cannot be used
 * while lua_next keeps a key and value above it. [-0, +1] */
static void encode_pairs (lua_State *L, int idx, const char *fname,
                          const char *what) {
  luaL_Buffer b;
  int parts, n = 0, i;
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  parts = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {                     /* parts key value */
    if (!is_text(L, -2) || !is_text(L, -1)) {
      lua_pushfstring(L, "option '%s' must map strings or numbers to "
                      "strings or numbers", what);
      luaio__argerror(L, 2, fname, lua_tostring(L, -1));
    }
    push_escaped(L, -2);
    lua_rawseti(L, parts, ++n);
    push_escaped(L, -1);
    lua_rawseti(L, parts, ++n);
    lua_pop(L, 1);
  }
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, i % 2 ? '&' : '=');
    lua_rawgeti(L, parts, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_remove(L, parts);
}

/* Push the string option name (nil when absent): an argument error if it
 * is not a string or holds a NUL byte, which C would cut at. [-0, +1] */
static const char *opt_text (lua_State *L, int opts, int settings,
                             const char *name, const char *fname) {
  size_t len;
  const char *s;
  int t = opt(L, opts, settings, name);
  if (t == LUA_TNIL) return NULL;
  if (t != LUA_TSTRING) {
    lua_pushfstring(L, "option '%s' must be a string", name);
    luaio__argerror(L, 2, fname, lua_tostring(L, -1));
  }
  s = lua_tolstring(L, -1, &len);
  if (memchr(s, '\0', len)) {
    lua_pushfstring(L, "option '%s' contains a NUL byte", name);
    luaio__argerror(L, 2, fname, lua_tostring(L, -1));
  }
  return s;
}

/* Push the encoded query option, or nil. [-0, +1] */
static void push_query (lua_State *L, int opts, const char *fname) {
  if (!opts) { lua_pushnil(L); return; }
  if (lua_getfield(L, opts, "query") == LUA_TNIL) return;
  if (!lua_istable(L, -1))
    luaio__argerror(L, 2, fname, "option 'query' must be a table");
  encode_pairs(L, -1, fname, "query");
  lua_remove(L, -2);
}

/* Resolve url against base_url, append query; set CURLOPT_URL. Leaves
 * the final URL string on the stack. Every Lua value is prepared before
 * the CURLU handle exists, and nothing raises while it does. [-0, +1] */
static void set_url (lua_State *L, req *r, const char *url, int opts,
                     int settings, const char *fname) {
  CURLU *u;
  CURLUcode uc = CURLUE_OK;
  char *full = NULL, *scheme = NULL;
  int web = 0, top = lua_gettop(L);
  const char *base = opt_text(L, opts, settings, "base_url", fname);
  const char *query;
  push_query(L, opts, fname);                      /* base query */
  query = lua_tostring(L, -1);
  u = curl_url();
  if (u == NULL) uc = CURLUE_OUT_OF_MEMORY;
  if (uc == CURLUE_OK && base) uc = curl_url_set(u, CURLUPART_URL, base, 0);
  if (uc == CURLUE_OK) uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_OK && query && *query)
    uc = curl_url_set(u, CURLUPART_QUERY, query, CURLU_APPENDQUERY);
  if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_URL, &full, 0);
  if (uc == CURLUE_OK)
    web = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
  if (web) curl_easy_setopt(r->easy, CURLOPT_URL, full);  /* copies */
  curl_free(scheme);
  curl_url_cleanup(u);
  lua_settop(L, top);
  if (!web) {
    curl_free(full);
    lua_pushfstring(L, "invalid URL '%s': %s", url, uc != CURLUE_OK
                    ? curl_url_strerror(uc) : "only http and https");
    luaio__argerror(L, 1, fname, lua_tostring(L, -1));
  }
  lua_pushstring(L, full);       /* a memory error here leaks the URL */
  curl_free(full);
}

/* Call luaio.json's function name on the value on top. [-1, +1] */
static void json_call (lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaio.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -2);
  lua_call(L, 1, 1);
}

/* multipart: {field = "text" | {path=, filename=, type=}} */
static void set_multipart (lua_State *L, req *r, int idx, const char *fname) {
  idx = lua_absindex(L, idx);
  r->mime = curl_mime_init(r->easy);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    curl_mimepart *part = curl_mime_addpart(r->mime);
    if (lua_type(L, -2) != LUA_TSTRING)
      luaio__argerror(L, 2, fname, "multipart field names must be strings");
    curl_mime_name(part, lua_tostring(L, -2));
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "path");
      if (!lua_isstring(L, -1) ||
          curl_mime_filedata(part, lua_tostring(L, -1)) != CURLE_OK)
        luaio__argerror(L, 2, fname, "multipart file needs a readable "
                        "'path'");
      lua_getfield(L, -2, "filename");
      if (lua_isstring(L, -1)) curl_mime_filename(part, lua_tostring(L, -1));
      lua_getfield(L, -3, "type");
      if (lua_isstring(L, -1)) curl_mime_type(part, lua_tostring(L, -1));
      lua_pop(L, 3);
    }
    else if (lua_isstring(L, -1)) {
      size_t len;
      const char *v = lua_tolstring(L, -1, &len);
      curl_mime_data(part, v, len);
    }
    else luaio__argerror(L, 2, fname, "multipart values must be strings "
                         "or file tables");
    lua_pop(L, 1);
  }
  curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, r->mime);
}

/* The request body from body / json / form / multipart. */
static void set_body (lua_State *L, req *r, int opts, const char *fname) {
  size_t len;
  if (!opts) return;
  if (lua_getfield(L, opts, "json") != LUA_TNIL) {
    json_call(L, "encode");
    add_header(L, r, "Content-Type", 12, "application/json", 16, fname);
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "form") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      luaio__argerror(L, 2, fname, "option 'form' must be a table");
    encode_pairs(L, -1, fname, "form");
    lua_remove(L, -2);
    add_header(L, r, "Content-Type", 12, "application/x-www-form-urlencoded",
               33, fname);
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "multipart") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      luaio__argerror(L, 2, fname, "option 'multipart' must be a table");
    set_multipart(L, r, -1, fname);
    lua_pop(L, 1);
    return;
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "body") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_isstring(L, -1))
    luaio__argerror(L, 2, fname, "option 'body' must be a string");
  lua_tolstring(L, -1, &len);
  curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, lua_tostring(L, -1));
  lua_pop(L, 1);
}

static void set_method (req *r, const char *method) {
  if (strcmp(method, "GET") == 0) curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
  else if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
  else curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
  r->idempotent = strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
}

/* Seconds to curl's milliseconds, rounded up: 0 would mean "never", so
 * a positive timeout under 1 ms becomes 1 ms. Capped at about 24 days. */
static long to_ms (double seconds) {
  double ms = ceil(seconds * 1000);
  return ms < 1 ? 1 : ms > 2e9 ? 2000000000L : (long)ms;
}

/* The max_body option in bytes; math.huge (or any value past SIZE_MAX)
 * means no limit. */
static size_t opt_max_body (lua_State *L, int opts, int settings,
                            const char *fname) {
  double v = DEFAULT_MAX_BODY;
  int t = opt(L, opts, settings, "max_body");
  if (t == LUA_TNUMBER) v = lua_tonumber(L, -1);
  if ((t != LUA_TNUMBER && t != LUA_TNIL) || !(v >= 0))   /* NaN too */
    luaio__argerror(L, 2, fname, "option 'max_body' must be a "
                    "non-negative number of bytes");
  lua_pop(L, 1);
  return v >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/* Timeouts, redirects, TLS, proxy, version, limits. */
static void set_transfer_opts (lua_State *L, req *r, int opts, int settings,
                               const char *fname) {
  CURL *e = r->easy;
  double total = opt_seconds(L, opts, settings, "timeout", DEFAULT_TIMEOUT,
                             fname);
  double conn = opt_seconds(L, opts, settings, "connect_timeout",
                            DEFAULT_CONNECT_TIMEOUT, fname);
  double idle = opt_seconds(L, opts, settings, "idle_timeout", -1, fname);
  long redirects = 10;
  if (total > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, to_ms(total));
  if (conn > 0) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(conn));
  if (idle > 0) r->idle_ms = (uint64_t)to_ms(idle);
  if (opt(L, opts, settings, "max_redirects") == LUA_TNUMBER)
    redirects = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (opt(L, opts, settings, "follow_redirects") == LUA_TBOOLEAN &&
      !lua_toboolean(L, -1))
    redirects = 0;
  lua_pop(L, 1);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, redirects > 0 ? 1L : 0L);
  r->follow = redirects > 0;
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, redirects);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (opt(L, opts, settings, "verify") == LUA_TBOOLEAN &&
      !lua_toboolean(L, -1)) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  lua_pop(L, 1);
  if (opt_text(L, opts, settings, "ca_file", fname))
    curl_easy_setopt(e, CURLOPT_CAINFO, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (opt_text(L, opts, settings, "proxy", fname))
    curl_easy_setopt(e, CURLOPT_PROXY, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (opt(L, opts, settings, "http_version") == LUA_TSTRING) {
    const char *v = lua_tostring(L, -1);
    long cv = strcmp(v, "1.0") == 0 ? CURL_HTTP_VERSION_1_0
            : strcmp(v, "1.1") == 0 ? CURL_HTTP_VERSION_1_1
            : strcmp(v, "2") == 0 ? CURL_HTTP_VERSION_2TLS
            : strcmp(v, "2-prior-knowledge") == 0
              ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : -1;
    if (cv < 0) luaio__argerror(L, 2, fname, "option 'http_version' must be "
                                "'1.0', '1.1', '2' or '2-prior-knowledge'");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, cv);
  }
  lua_pop(L, 1);
  r->max_body = opt_max_body(L, opts, settings, fname);
  r->max_header = DEFAULT_MAX_HEADER;
  if (opt(L, opts, settings, "retries") == LUA_TNUMBER)
    r->retries = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (opts) {
    lua_getfield(L, opts, "retry_any_method");
    if (lua_toboolean(L, -1)) r->idempotent = 1;
    lua_getfield(L, opts, "stream");
    r->stream = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  if (r->stream) r->retries = 0;       /* a body half-read cannot restart */
}

/* ---- completion: errors, responses, retries ---------------------------- */

/* The header limit a failed transfer hit, 0 if none: ours on the whole
 * block, or curl's own on one line, which curl reports as "out of
 * memory" (its line buffer refuses to grow past CURL_MAX_HTTP_HEADER):
 * an "out of memory" in the middle of a header block is that. */
static size_t header_limit (req *r) {
  if (r->header_too_big) return r->max_header;
  if (r->result == CURLE_OUT_OF_MEMORY && r->in_header)
    return CURL_MAX_HTTP_HEADER;
  return 0;
}

static const char *error_kind (req *r) {
  if (r->too_big) return "body_too_large";
  if (r->incomplete) return "reset";
  if (header_limit(r)) return "http";
  switch (r->result) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
      return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_TOO_MANY_REDIRECTS: return "redirect";
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CACERT_BADFILE:
      return "tls";
    case CURLE_UNSUPPORTED_PROTOCOL: return "protocol";
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING: return "reset";
    default: return "io";
  }
}

static const char *curl_code_name (CURLcode rc, char *buf, size_t size) {
  static const struct { CURLcode rc; const char *name; } names[] = {
    {CURLE_UNSUPPORTED_PROTOCOL, "CURLE_UNSUPPORTED_PROTOCOL"},
    {CURLE_WEIRD_SERVER_REPLY, "CURLE_WEIRD_SERVER_REPLY"},
    {CURLE_PARTIAL_FILE, "CURLE_PARTIAL_FILE"},
    {CURLE_WRITE_ERROR, "CURLE_WRITE_ERROR"},
    {CURLE_OUT_OF_MEMORY, "CURLE_OUT_OF_MEMORY"},
    {CURLE_SSL_CONNECT_ERROR, "CURLE_SSL_CONNECT_ERROR"},
    {CURLE_GOT_NOTHING, "CURLE_GOT_NOTHING"},
    {CURLE_SEND_ERROR, "CURLE_SEND_ERROR"},
    {CURLE_RECV_ERROR, "CURLE_RECV_ERROR"},
    {CURLE_BAD_CONTENT_ENCODING, "CURLE_BAD_CONTENT_ENCODING"},
    {CURLE_COULDNT_CONNECT, "CURLE_COULDNT_CONNECT"},
  };
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].rc == rc) return names[i].name;
  snprintf(buf, size, "CURLE_%d", (int)rc);
  return buf;
}

/* Raise the error of a failed transfer: kind, errno name (or curl's
 * code), curl's message, method and URL. Stack: ... url on top. */
static int raise_transfer_error (lua_State *L, req *r, const char *method) {
  long oserr = 0;
  const char *code, *msg;
  char cbuf[32], hbuf[80];
  size_t hmax = header_limit(r);
  curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
  if (hmax)
    snprintf(hbuf, sizeof hbuf, "response header too large (%s over %zu "
             "bytes)", r->header_too_big ? "headers" : "a line", hmax);
  if (r->too_big) msg = "response body larger than max_body";
  else if (r->incomplete) msg = "the connection closed before the end of "
                                "the response headers";
  else if (hmax) msg = hbuf;
  else msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
  if (r->too_big) code = "BODY_TOO_LARGE";
  else if (r->incomplete) code = "INCOMPLETE_HEADERS";
  else if (hmax) code = "EMSGSIZE";
  else if (oserr) code = uv_err_name(-(int)oserr);
  else if (r->result == CURLE_OPERATION_TIMEDOUT) code = "ETIMEDOUT";
  else if (r->result == CURLE_TOO_MANY_REDIRECTS) code = "TOO_MANY_REDIRECTS";
  else if (r->result == CURLE_COULDNT_RESOLVE_HOST) code = "EAI_NONAME";
  else if (r->result == CURLE_PEER_FAILED_VERIFICATION) code = "TLS_VERIFY";
  else code = curl_code_name(r->result, cbuf, sizeof cbuf);
  luaio_push_error(L, error_kind(r), code, msg);
  lua_pushstring(L, method);
  lua_setfield(L, -2, "op");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "url");
  return luaio_raise(L);
}

/* Append an obs-fold continuation (v, len: the line without its leading
 * white space) to header number n of the list on top, and to its joined
 * value in the headers table just below: RFC 9112 5.2 replaces the fold
 * with a space. [-0, +0] */
static void fold_header (lua_State *L, lua_Integer n, const char *v,
                         size_t len) {
  luaL_Buffer b;
  const char *name;
  size_t i, nlen;
  if (len == 0) return;
  lua_rawgeti(L, -1, n);                           /* ... entry */
  lua_rawgeti(L, -1, 2);
  lua_pushliteral(L, " ");
  lua_pushlstring(L, v, len);
  lua_concat(L, 3);
  lua_rawseti(L, -2, 2);
  lua_rawgeti(L, -1, 1);                           /* ... entry name */
  name = lua_tolstring(L, -1, &nlen);
  luaL_buffinit(L, &b);
  for (i = 0; i < nlen; i++) luaL_addchar(&b, tolower((unsigned char)name[i]));
  luaL_pushresult(&b);                             /* ... entry name key */
  lua_pushvalue(L, -1);
  lua_rawget(L, -6);                               /* the joined value */
  lua_pushliteral(L, " ");
  lua_pushlstring(L, v, len);
  lua_concat(L, 3);
  lua_rawset(L, -6);
  lua_pop(L, 2);
}

/* Parse the raw header block into t's reason, headers (case-insensitive,
 * repeated ones joined) and header_list. A line starting with white
 * space continues the header before it (obs-fold); with no header just
 * before it (first, or after the blank line ending the block) it is
 * dropped. [-0, +0] */
static void parse_headers (lua_State *L, int t, const char *p, size_t len) {
  const char *start = p, *end = p + len;
  lua_Integer n = 0, last = 0;                     /* last: fold target */
  t = lua_absindex(L, t);
  luaL_checkstack(L, 10, NULL);
  lua_newtable(L);                                 /* headers */
  luaL_setmetatable(L, "luaio.HttpHeaders");
  lua_newtable(L);                                 /* headers list */
  while (p < end) {
    const char *eol = memchr(p, '\n', end - p), *colon, *v, *ve;
    if (eol == NULL) eol = end;
    ve = eol;
    while (ve > p && (ve[-1] == '\r' || ve[-1] == '\n')) ve--;
    colon = memchr(p, ':', ve - p);
    if (p == start) {                              /* the status line */
      const char *sp = memchr(p, ' ', ve - p);
      if (sp) sp = memchr(sp + 1, ' ', ve - sp - 1);
      lua_pushlstring(L, sp ? sp + 1 : "", sp ? (size_t)(ve - sp - 1) : 0);
      lua_setfield(L, t, "reason");
    }
    else if ((*p == ' ' || *p == '\t') && last) {  /* obs-fold */
      for (v = p; v < ve && (*v == ' ' || *v == '\t'); v++) {}
      fold_header(L, last, v, ve - v);
      p = eol + 1;
      continue;
    }
    else if (colon && *p != ' ' && *p != '\t') {
      size_t i, nlen = colon - p;
      for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++) {}
      luaL_Buffer b;
      char *d = luaL_buffinitsize(L, &b, nlen);  /* on the C stack if short */
      for (i = 0; i < nlen; i++) d[i] = tolower((unsigned char)p[i]);
      luaL_pushresultsize(&b, nlen);               /* ... list name */
      lua_createtable(L, 2, 0);
      lua_pushlstring(L, p, nlen);
      lua_rawseti(L, -2, 1);
      lua_pushlstring(L, v, ve - v);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, -3, ++n);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -4) == LUA_TSTRING) {      /* repeated: join */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, ve - v);
        lua_concat(L, 3);
      }
      else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, ve - v);
      }
      lua_rawset(L, -4);
      last = n;
      p = eol + 1;
      continue;
    }
    last = 0;                  /* no fold joins across another line */
    p = eol + 1;
  }
  lua_setfield(L, t, "header_list");
  lua_setfield(L, t, "headers");
}

/* Build the response table from the finished transfer. The headers are
 * kept raw and parsed on first use (resp_index): most callers never look
 * at them, and parsing them was a fifth of the cost of a small request.
 * [-0, +1] */
static void push_response (lua_State *L, req *r, const char *method,
                           lua_Number elapsed) {
  long status = 0, version = 0;
  char *url = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
  lua_createtable(L, 0, 12);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushboolean(L, status < 400);
  lua_setfield(L, -2, "ok");
  lua_pushlstring(L, r->body ? r->body : "", r->len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, url ? url : "");
  lua_setfield(L, -2, "url");
  lua_pushstring(L, method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2"
                 : version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
  lua_setfield(L, -2, "http_version");
  lua_pushnumber(L, elapsed);
  lua_setfield(L, -2, "elapsed");
  lua_pushinteger(L, r->attempt);
  lua_setfield(L, -2, "retries");
  lua_pushlstring(L, r->hdrs ? r->hdrs : "", r->hlen);
  lua_setfield(L, -2, "raw_headers");
  luaL_setmetatable(L, "luaio.HttpResponse");
}

/* resp.headers, resp.header_list and resp.reason parse raw_headers once;
 * other keys are the methods. */
static int resp_index (lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k && (strcmp(k, "headers") == 0 || strcmp(k, "header_list") == 0 ||
            strcmp(k, "reason") == 0)) {
    size_t len;
    const char *raw;
    lua_pushliteral(L, "raw_headers");
    lua_rawget(L, 1);
    raw = lua_tolstring(L, -1, &len);
    if (raw) {
      parse_headers(L, 1, raw, len);
      lua_pushvalue(L, 2);
      lua_rawget(L, 1);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_gettable(L, lua_upvalueindex(1));
  return 1;
}

/* Seconds to wait before retry number r->attempt (1-based): Retry-After
 * when the server said so, else exponential backoff with jitter. */
static double backoff_seconds (req *r) {
  int n = r->attempt < 1 ? 0 : r->attempt > 10 ? 9 : r->attempt - 1;
  double base = 0.1 * (double)(1 << n);
  if (r->retry_after > 0) return r->retry_after < 60 ? r->retry_after : 60;
  return base * (0.5 + (double)rand() / RAND_MAX);
}

static double retry_after (req *r) {
  struct curl_header *h;
  if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &h)
      != CURLHE_OK)
    return 0;
  return atof(h->value);
}

/* Should this outcome be tried again? */
static int should_retry (req *r) {
  long status = 0;
  if (r->attempt >= r->retries || !r->idempotent || r->c->closed) return 0;
  if (r->result != CURLE_OK) {
    switch (r->result) {
      case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
      case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE: case CURLE_COULDNT_RESOLVE_HOST:
        return !r->too_big && !r->header_too_big;
      default: return 0;
    }
  }
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 429 && status != 503) return 0;
  r->retry_after = retry_after(r);
  return 1;
}

static void retry_due_cb (luaio_deadline *d) {
  req *r = (req *)((char *)d - offsetof(req, d));
  list_del(&r->c->backoffs, r);
  r->backoff = 0;
  r->len = r->hlen = 0;
  r->too_big = r->header_too_big = r->in_header = 0;
  r->new_response = 1;
  if (r->stripped) {                   /* back to the first origin */
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    r->stripped = 0;
  }
  r->errbuf[0] = '\0';
  if (!req_add(r)) {
    r->result = CURLE_FAILED_INIT;
    luaio_waiter_done(&r->w, 0);
  }
}

static void req_abort (luaio_waiter *w) {
  req *r = (req *)w;
  req_remove(r);
  backoff_stop(r);
  luaio_waiter_done(w, UV_ECANCELED);
}

/* Raise the error of a request or stream ended by a close: kind "io",
 * code ECANCELED, operation op, the URL at index url. */
static int raise_closed (lua_State *L, const char *op, int url,
                         const char *msg) {
  url = lua_absindex(L, url);
  luaio_push_error(L, "io", "ECANCELED", msg);
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_pushvalue(L, url);
  lua_setfield(L, -2, "url");
  return luaio_raise(L);
}

/* Stream mode, a transfer that curl ended without error before we saw
 * its final headers: inside a header block, or right after a 1xx or a
 * redirect it did not follow. Only a complete block is a response
 * (its body, if any, is in the buffer for chunks()); the rest is the
 * error of a connection lost mid-response, never a plain response. */
static void stream_ended (req *r) {
  if (r->in_header || r->new_response) r->incomplete = 1;
  else r->headers_done = 1;
}

/* Stack of a request: ... r(ud) method url start_time */
static int req_k (lua_State *L, int status, lua_KContext ctx) {
  req *r = (req *)ctx;
  int top = lua_gettop(L);
  const char *method = lua_tostring(L, top - 2);
  if (status != 0) {                               /* cancelled, closed */
    lua_settop(L, top - 1);
    return luaio_raise_uv(L, status, method, "url", lua_tostring(L, -1));
  }
  if (r->client_closed) {
    lua_settop(L, top - 1);
    return raise_closed(L, method, lua_gettop(L), "the client was closed");
  }
  if (r->stream && !r->headers_done && r->result == CURLE_OK &&
      !r->too_big && !r->header_too_big)
    stream_ended(r);
  if (r->stream && r->headers_done) {
    push_response(L, r, method, (lua_Number)uv_hrtime() / 1e9
                  - lua_tonumber(L, top));
    lua_pushnil(L);
    lua_setfield(L, -2, "body");
    lua_pushvalue(L, top - 3);                     /* keeps r alive */
    lua_setfield(L, -2, "_stream");
    return 1;
  }
  if (should_retry(r)) {
    double s;
    r->attempt++;
    s = backoff_seconds(r);
    r->backoff = luaio__deadline_start(&r->c->h->timers, &r->d,
                                       (uint64_t)(s * 1000), retry_due_cb);
    if (r->backoff) {
      list_add(&r->c->backoffs, r);
      return luaio_wait(L, &r->w, req_k, ctx);
    }
  }
  if (r->result != CURLE_OK || r->too_big || r->header_too_big ||
      r->incomplete) {
    lua_settop(L, top - 1);
    return raise_transfer_error(L, r, method);
  }
  push_response(L, r, method, (lua_Number)uv_hrtime() / 1e9
                - lua_tonumber(L, top));
  req_release(r);
  return 1;
}

/* Start a request: client at cidx (its settings as uservalue), method,
 * url, options at opts (0: none). */
/* method and url are Lua strings (lengths mlen, ulen) given at argument
 * arg. */
static int do_request (lua_State *L, int cidx, const char *method,
                       size_t mlen, const char *url, size_t ulen, int arg,
                       int opts, const char *fname) {
  hclient *c = check_client(L, cidx);
  int settings;
  req *r;
  if (!is_token(method, mlen))
    return luaio__argerror(L, arg, fname, "invalid method");
  if (memchr(url, '\0', ulen))
    return luaio__argerror(L, arg, fname, "URL contains a NUL byte");
  luaio_check_wait(L, fname);
  lua_getiuservalue(L, cidx, 1);
  settings = lua_gettop(L);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaio_waiter_init(&r->w, req_abort);
  r->new_response = 1;
  r->c = c;
  c->nreqs++;
  luaL_setmetatable(L, "luaio.HttpRequest");
  r->easy = curl_easy_init();
  if (r->easy == NULL) return luaL_error(L, "%s: out of memory", fname);
  lua_getfield(L, settings, "headers");
  add_headers(L, r, -1, 2, fname);
  lua_pop(L, 1);
  if (opts) {
    lua_getfield(L, opts, "headers");
    add_headers(L, r, -1, 2, fname);
    lua_pop(L, 1);
  }
  set_method(r, method);
  set_transfer_opts(L, r, opts, settings, fname);
  set_body(L, r, opts, fname);
  set_safe_headers(L, r, opts, settings, fname);
  lua_pushstring(L, method);                       /* r method */
  set_url(L, r, url, opts, settings, fname);       /* r method url */
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(r->easy, CURLOPT_QUICK_EXIT, 1L);
  /* a proxy's CONNECT answer is not the response */
  curl_easy_setopt(r->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
  curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETDATA, c);
  if (c->share) {
    curl_easy_setopt(r->easy, CURLOPT_SHARE, c->share);
    curl_easy_setopt(r->easy, CURLOPT_COOKIEFILE, "");
  }
  if (!req_add(r)) return luaL_error(L, "%s: cannot start the transfer",
                                     fname);
  return luaio_wait(L, &r->w, req_k, (lua_KContext)r);
}

/* ---- the Lua API ------------------------------------------------------------- */

/* Push the host's default client, making it on first use. [-0, +1] */
static int push_default_client (lua_State *L);

/* client:request{method=, url=, ...} and http.request{...} */
static int request_table (lua_State *L, int cidx, int tidx,
                          const char *fname) {
  const char *method = "GET", *url;
  size_t mlen = 3, ulen;
  luaio__checktype(L, tidx, fname, LUA_TTABLE);
  lua_getfield(L, tidx, "url");
  if (lua_type(L, -1) != LUA_TSTRING)
    return luaio__argerror(L, tidx, fname, "field 'url' must be a string");
  url = lua_tolstring(L, -1, &ulen);
  lua_getfield(L, tidx, "method");
  if (lua_isstring(L, -1)) method = lua_tolstring(L, -1, &mlen);
  return do_request(L, cidx, method, mlen, url, ulen, tidx, tidx, fname);
}

/* method(url [, opts]) on client at cidx. */
static int request_url (lua_State *L, int cidx, int uidx, const char *method,
                        const char *fname) {
  size_t ulen;
  const char *url = luaio__checkstring(L, uidx, fname, &ulen);
  int opts = uidx + 1;
  if (lua_isnoneornil(L, opts)) opts = 0;
  else luaio__checktype(L, opts, fname, LUA_TTABLE);
  return do_request(L, cidx, method, strlen(method), url, ulen, uidx, opts,
                    fname);
}

#define VERB(name, METHOD) \
  static int http_##name (lua_State *L) { \
    lua_settop(L, 2); \
    push_default_client(L); \
    return request_url(L, 3, 1, METHOD, "http." #name); \
  } \
  static int client_##name (lua_State *L) { \
    return request_url(L, 1, 2, METHOD, "client:" #name); \
  }
VERB(get, "GET")
VERB(post, "POST")
VERB(put, "PUT")
VERB(patch, "PATCH")
VERB(delete, "DELETE")
VERB(head, "HEAD")
VERB(options, "OPTIONS")

static int http_request (lua_State *L) {
  lua_settop(L, 1);
  push_default_client(L);
  return request_table(L, 2, 1, "http.request");
}

static int client_request (lua_State *L) {
  return request_table(L, 1, 2, "client:request");
}

static int client_close_m (lua_State *L) {
  client_ud *u = (client_ud *)luaL_checkudata(L, 1, "luaio.HttpClient");
  if (u->c) client_close(u->c);
  u->c = NULL;
  return 0;
}

/* A connection cap setting at sidx (0: none): def when absent, 0 (no
 * cap) when false, else a positive integer. */
static long cap_setting (lua_State *L, int sidx, const char *name, long def,
                         const char *fname) {
  long v = def;
  int t = sidx ? lua_getfield(L, sidx, name) : (lua_pushnil(L), LUA_TNIL);
  int isint = 0;
  lua_Integer n = t == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = 0;
  else if (isint && n > 0 && n <= 1000000) v = (long)n;
  else if (t != LUA_TNIL) {
    lua_pushfstring(L, "option '%s' must be a positive integer or false",
                    name);
    luaio__argerror(L, 1, fname, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

/* Cap the client's connections in total and per host (0: no cap). */
static void set_caps (hclient *c, long total, long per_host) {
  if (total > 0) {             /* a cache as big, so none is reopened */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);
  }
  if (per_host > 0)
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
}

/* Make a client for the settings table at sidx (0: defaults). [-0, +1] */
static int new_client (lua_State *L, int sidx, const char *fname) {
  client_ud *u;
  int cookies = 1, set_total = 0;
  long maxc, maxh;
  if (sidx) {
    luaio__checktype(L, sidx, fname, LUA_TTABLE);
    lua_getfield(L, sidx, "headers");
    add_headers(L, NULL, -1, sidx, fname);
    lua_getfield(L, sidx, "cookies");
    cookies = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, sidx, "max_connections");
    set_total = !lua_isnil(L, -1);
    lua_pop(L, 3);
  }
  maxc = cap_setting(L, sidx, "max_connections", DEFAULT_MAX_CONNECTIONS,
                     fname);
  maxh = cap_setting(L, sidx, "max_per_host",
                     set_total ? maxc : DEFAULT_MAX_PER_HOST, fname);
  u = lua_newuserdatauv(L, sizeof *u, 1);
  u->c = NULL;
  luaL_setmetatable(L, "luaio.HttpClient");
  if (sidx) {                                      /* a private copy */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, sidx)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  else lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  u->c = client_new(luaio__host(L), cookies);
  if (u->c == NULL) return luaL_error(L, "%s: out of memory", fname);
  set_caps(u->c, maxc, maxh);
  return 1;
}

/* http.client{base_url=, headers=, timeout=, connect_timeout=,
 * max_connections=, max_per_host=, retries=, cookies=, ...} */
static int http_client (lua_State *L) {
  return new_client(L, lua_isnoneornil(L, 1) ? 0 : 1, "http.client");
}

static int push_default_client (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &default_client_key) == LUA_TNIL) {
    lua_pop(L, 1);
    new_client(L, 0, "http");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &default_client_key);
  }
  return 1;
}

/* ---- responses ------------------------------------------------------------- */

static int resp_text (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  return 1;
}

static int resp_json (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  json_call(L, "decode");
  return 1;
}

/* resp:raise_for_status() -> resp, or an error of kind "http" with the
 * status for 4xx and 5xx. */
static int resp_raise_for_status (lua_State *L) {
  lua_Integer status;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "status");
  status = lua_tointeger(L, -1);
  if (status < 400) { lua_settop(L, 1); return 1; }
  lua_getfield(L, 1, "reason");
  lua_pushfstring(L, "HTTP %d %s", (int)status, luaL_optstring(L, -1, ""));
  luaio_push_error(L, "http", NULL, lua_tostring(L, -1));
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_getfield(L, 1, "method");
  lua_setfield(L, -2, "op");
  lua_getfield(L, 1, "url");
  lua_setfield(L, -2, "url");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "response");
  return luaio_raise(L);
}

/* ---- streamed bodies -------------------------------------------------- */

static req *stream_of (lua_State *L, const char *fname) {
  req *r;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "_stream");
  r = (req *)luaL_testudata(L, -1, "luaio.HttpRequest");
  if (r == NULL) luaL_error(L, "%s: not a streamed response (use "
                            "{stream = true})", fname);
  lua_pop(L, 1);
  return r;
}

static int chunk_k (lua_State *L, int status, lua_KContext ctx) {
  req *r = (req *)ctx;
  lua_settop(L, 1);
  if (status != 0) return luaio_raise_uv(L, status, "response:chunks", NULL,
                                         NULL);
  if (r->easy == NULL || r->client_closed) {
    lua_getfield(L, 1, "url");
    return raise_closed(L, "response:chunks", -1, r->easy == NULL
                        ? "response closed" : "the client was closed");
  }
  if (r->len > 0) {
    lua_pushlstring(L, r->body, r->len);
    r->len = 0;
    if (r->paused && r->in_multi) {    /* room again: let curl go on */
      r->paused = 0;
      curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
    return 1;
  }
  if (r->finished) {
    if (r->result != CURLE_OK) {
      lua_getfield(L, 1, "url");
      lua_getfield(L, 1, "method");
      lua_insert(L, -2);
      return raise_transfer_error(L, r, lua_tostring(L, -2));
    }
    lua_pushnil(L);
    return 1;
  }
  luaio_check_wait(L, "response:chunks");
  return luaio_waitlist_wait(L, &r->readers, chunk_k, ctx);
}

static int chunks_next (lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  return chunk_k(L, 0, (lua_KContext)lua_touserdata(L, lua_upvalueindex(2)));
}

/* resp:chunks() -> iterator over the body as it arrives (stream mode);
 * a slow loop pauses the transfer instead of buffering the body. */
static int resp_chunks (lua_State *L) {
  req *r = stream_of(L, "response:chunks");
  lua_settop(L, 1);
  lua_pushlightuserdata(L, r);
  lua_pushcclosure(L, chunks_next, 2);
  return 1;
}

/* resp:close(): stops a streamed transfer (also on <close>); a task
 * waiting in chunks() wakes and raises that the response was closed. */
static int resp_close (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "_stream");
  if (luaL_testudata(L, -1, "luaio.HttpRequest")) {
    req *r = (req *)lua_touserdata(L, -1);
    req_release(r);
    luaio_waitlist_wake_all(&r->readers, 0);
  }
  return 0;
}

/* headers[name]: case-insensitive. */
static int headers_index (lua_State *L) {
  luaL_Buffer b;
  size_t len, i;
  const char *k = lua_tolstring(L, 2, &len);
  if (k == NULL) return 0;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) luaL_addchar(&b, tolower((unsigned char)k[i]));
  luaL_pushresult(&b);
  lua_rawget(L, 1);
  return 1;
}

static const luaL_Reg resp_methods[] = {
  {"text", resp_text}, {"json", resp_json}, {"chunks", resp_chunks},
  {"close", resp_close},
  {"raise_for_status", resp_raise_for_status}, {NULL, NULL}
};

static const luaL_Reg client_methods[] = {
  {"get", client_get}, {"post", client_post}, {"put", client_put},
  {"patch", client_patch}, {"delete", client_delete}, {"head", client_head},
  {"options", client_options}, {"request", client_request},
  {"close", client_close_m}, {NULL, NULL}
};

static const luaL_Reg http_funcs[] = {
  {"get", http_get}, {"post", http_post}, {"put", http_put},
  {"patch", http_patch}, {"delete", http_delete}, {"head", http_head},
  {"options", http_options}, {"request", http_request},
  {"client", http_client}, {NULL, NULL}
};

/* The response metatable: resp_index in front of the methods table. */
static void make_response_meta (lua_State *L) {
  static const luaL_Reg resp_meta[] = {{"__close", resp_close}, {NULL, NULL}};
  luaio__class(L, "luaio.HttpResponse", resp_methods, NULL, resp_meta);
  luaL_getmetatable(L, "luaio.HttpResponse");
  if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {
    lua_pushcclosure(L, resp_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
  else lua_pop(L, 2);                  /* done by an earlier open */
}

/* Registered once per state: opening the module again (after
 * package.loaded["luaio.http"] = nil) finds them made and changes
 * nothing, so the objects of an earlier open keep working. */
static void make_metatables (lua_State *L) {
  static const luaL_Reg request_meta[] = {{"__gc", req_gc}, {NULL, NULL}};
  static const luaL_Reg headers_meta[] = {
    {"__index", headers_index}, {NULL, NULL}
  };
  luaio__class(L, "luaio.HttpClient", client_methods, client_gc, NULL);
  luaio__class(L, "luaio.HttpRequest", NULL, NULL, request_meta);
  make_response_meta(L);
  luaio__class(L, "luaio.HttpHeaders", NULL, NULL, headers_meta);
}

int luaopen_luaio_http (lua_State *L) {
  luaio__host(L);
  curl_global_init(CURL_GLOBAL_DEFAULT);   /* thread-safe since 7.84 */
  make_metatables(L);
  luaL_newlib(L, http_funcs);
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  lua_getglobal(L, "require");                     /* download: in Lua */
  lua_pushliteral(L, "luaio.download");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  lua_setfield(L, -2, "download");
  luaio__serve_register(L);                        /* http.serve */
  return 1;
}
