/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve_lua.c: the Lua side of the HTTP server's C core. lua/serve.lua
 * builds the public API (http.serve, routes, request objects) on these
 * primitives: a server object, and a request object per request whose
 * handler runs in its own task (spawned here, watched to its end).
 */
#include "serve.h"
#include <time.h>
#include <strings.h>

/* Internal classes: not under "luaio." (no public API) */
#define SERVER_MT "luaio__serve.Server"
#define REQ_MT "luaio__serve.Request"

typedef struct server_ud { hserver *s; } server_ud;
typedef struct req_ud { hreq *r; } req_ud;

static const char req_mt_key = 0;   /* registry: REQ_MT, by address */

/* ---- request tasks ------------------------------------------------- */

/* The task ended: a request it left unanswered gets a 500 (or, half
 * streamed, a closed connection). Its error is not reported (released
 * as seen): the handler's were, by dispatch. */
static void req_task_done (luaio_waiter *w, int status) {
  static const char err500[] = "HTTP/1.1 500 Internal Server Error\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";
  hreq *r = LUAIO_CONTAINER(w, hreq, watch);
  hserver *s = r->srv;
  (void)status;
  luaio_task_release(r->task);
  r->task = NULL;
  if (r->tprev) r->tprev->tnext = r->tnext; else s->tasks = r->tnext;
  if (r->tnext) r->tnext->tprev = r->tprev;
  r->srv->nhandlers--;
  srv_check_closed(r->srv);
  if (r->c && r->c->ws) ws_finish(r->c, 1000);
  if (!r->finished && r->c && r->started) {
    conn_close(r->c);                /* half a response: cut it off */
  } else if (!r->finished) {
    r->keep_alive = 0;
    if (r->c) {
      conn_write(r->c, err500, sizeof err500 - 1);
      r->aborted = 1;                /* close once it is out */
    }
    req_finished(r);
  }
  req_unref(r);
}

/* Push the request line's parts: method, url, path and query (nil
 * without a '?') and version: the Lua request is made of these. */
static void push_request_line (lua_State *L, hreq *r) {
  size_t ulen = r->noffs > 1 ? r->offs[1] : r->hlen;
  const char *q = memchr(r->hbuf, '?', ulen);
  lua_pushstring(L, http_method_str((enum http_method)r->method));
  lua_pushlstring(L, r->hbuf, ulen);
  if (q == NULL) {
    lua_pushnil(L);
    lua_pushnil(L);
  } else {
    lua_pushlstring(L, r->hbuf, (size_t)(q - r->hbuf));
    lua_pushlstring(L, q + 1, ulen - (size_t)(q - r->hbuf) - 1);
  }
  lua_pushstring(L, r->minor == 0 ? "1.0" : "1.1");
}

/* dispatch(req_core, method, url, path, query, version) in a task. */
int srv_dispatch (hserver *s, hreq *r) {
  lua_State *L = luaio_state(s->host);
  req_ud *u;
  luaio_task *t;
  if (s->dispatch_ref == LUA_NOREF || !lua_checkstack(L, 9)) return -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->dispatch_ref);   /* srv */
  lua_getiuservalue(L, -1, 1);                          /* srv fn */
  u = lua_newuserdatauv(L, sizeof *u, 0);               /* srv fn req */
  u->r = r;
  r->refs++;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &req_mt_key);
  lua_setmetatable(L, -2);
  push_request_line(L, r);
  t = luaio__spawn(L, 6, "http.serve");                 /* srv task */
  lua_pop(L, 2);
  r->task = t;
  r->refs++;
  r->srv = s;
  s->refs++;
  s->nhandlers++;
  r->tnext = s->tasks;
  if (s->tasks) s->tasks->tprev = r;
  s->tasks = r;
  luaio__watch(luaio__task_awaiters(t), &r->watch, req_task_done, NULL);
  return 0;
}

void srv_cancel (hreq *r) {
  if (r->task) luaio_task_cancel(r->task);
}

/* ---- request methods ----------------------------------------------- */

static hreq *check_req (lua_State *L, const char *fname) {
  req_ud *u = luaio__checkself(L, REQ_MT);
  (void)fname;
  return u->r;
}

hreq *srv_check_req (lua_State *L) { return check_req(L, NULL); }

static int closed_error (lua_State *L, const char *fname) {
  luaio_push_error(L, "io", "ECONNRESET", "the client connection was "
                   "closed");
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  return luaio_raise(L);
}

/* The connection was dropped: by the client, or by us for a slow one. */
int srv_gone_error (lua_State *L, hreq *r, const char *fname) {
  if (r->timed_out == TIMED_BODY)
    luaio_push_error(L, "timeout", "ETIMEDOUT", "the request body did "
                     "not arrive within body_timeout");
  else if (r->timed_out == TIMED_WRITE)
    luaio_push_error(L, "timeout", "ETIMEDOUT", "the client did not "
                     "read the response within write_timeout");
  else return closed_error(L, fname);
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "op");
  return luaio_raise(L);
}

/* req:headers() -> {name, value, ...} as received */
static int req_headers (lua_State *L) {
  hreq *r = check_req(L, "req:headers");
  size_t i, n = r->noffs;
  lua_createtable(L, (int)(n - 1), 0);
  for (i = 1; i < n; i++) {
    size_t end = i + 1 < n ? r->offs[i + 1] : r->hlen;
    lua_pushlstring(L, r->hbuf + r->offs[i], end - r->offs[i]);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  return 1;
}

/* req:remote() -> the client's IP address (as seen at the accept) */
static int req_remote (lua_State *L) {
  hreq *r = check_req(L, "req:remote");
  const srv_addr *a = r->c ? &r->c->peer : &r->peer;
  char ip[64] = "";
  if (a->sa.sa_family == AF_INET6)
    uv_ip6_name(&a->in6, ip, sizeof ip);
  else if (a->sa.sa_family == AF_INET)
    uv_ip4_name(&a->in4, ip, sizeof ip);
  lua_pushstring(L, ip);
  return 1;
}

static int read_k (lua_State *L, int status, lua_KContext ctx);

/* Did the client send `Expect: 100-continue`? */
static int expects_continue (hreq *r) {
  size_t i;
  for (i = 1; i + 1 < r->noffs; i += 2) {
    size_t n = r->offs[i + 1] - r->offs[i];
    size_t vend = i + 2 < r->noffs ? r->offs[i + 2] : r->hlen;
    if (n == 6 && strncasecmp(r->hbuf + r->offs[i], "expect", 6) == 0)
      return vend - r->offs[i + 1] == 12 &&
             strncasecmp(r->hbuf + r->offs[i + 1], "100-continue", 12) == 0;
  }
  return 0;
}

/* req:read() -> the body bytes buffered so far, or nil at its end;
 * waits for more. */
static int req_read (lua_State *L) {
  return read_k(L, 0, 0);
}

static int read_k (lua_State *L, int status, lua_KContext ctx) {
  hreq *r = check_req(L, "req:body");
  (void)ctx;
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "req:body", NULL, NULL);
  lua_settop(L, 1);
  if (r->too_large) {
    luaio_push_error(L, "http", "E2BIG", "request body larger than "
                     "max_body");
    return luaio_raise(L);
  }
  if (r->blen > 0) {
    lua_pushlstring(L, r->body, r->blen);
    r->blen = 0;
    req_body_taken(r);
    return 1;
  }
  if (r->complete) return 0;
  if (r->bad) {
    luaio_push_error(L, "http", "EBADMSG", "malformed request body");
    return luaio_raise(L);
  }
  if (r->aborted || r->c == NULL) return srv_gone_error(L, r, "req:body");
  if (!r->continued && !r->started && r->btotal == 0) {
    r->continued = 1;               /* the client waits for this */
    if (expects_continue(r))
      conn_write(r->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  luaio_check_wait(L, "req:body");
  return luaio_waitlist_wait(L, &r->readers, read_k, 0);
}

/* ---- the response head --------------------------------------------- */

/* The head is built in the server's scratch buffer (one head at a
 * time: nothing waits while it is built), sent from there. */
static void head_add (lua_State *L, hserver *s, const char *d, size_t n) {
  if (s->head_len + n > s->head_cap) {
    size_t cap = s->head_cap ? s->head_cap : 512;
    char *nb;
    while (cap < s->head_len + n) cap *= 2;
    if ((nb = realloc(s->head, cap)) == NULL)
      luaL_error(L, "out of memory");
    s->head = nb;
    s->head_cap = cap;
  }
  memcpy(s->head + s->head_len, d, n);
  s->head_len += n;
}

#define HEAD_LIT(L, s, lit) head_add(L, s, lit, sizeof lit - 1)

static void head_str (lua_State *L, hserver *s, const char *str) {
  head_add(L, s, str, strlen(str));
}

/* "Name: n\r\n" with n in decimal. */
static void head_number (lua_State *L, hserver *s, const char *name,
                         uint64_t n) {
  char digits[24];
  int i = (int)sizeof digits;
  do digits[--i] = (char)('0' + n % 10); while ((n /= 10) > 0);
  head_str(L, s, name);
  head_add(L, s, digits + i, sizeof digits - (size_t)i);
  HEAD_LIT(L, s, "\r\n");
}

/* The Date header, formatted once a second per server. */
static void add_date (lua_State *L, hserver *s) {
  time_t now = time(NULL);
  if (now != s->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof s->date, "Date: %a, %d %b %Y %H:%M:%S "
             "GMT\r\n", &tm);
    s->date_at = now;
  }
  head_str(L, s, s->date);
}

/* A header name or value that could split the head is refused. */
static void check_header (lua_State *L, const char *s, size_t n,
                          int is_name) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\r' || ch == '\n' || ch == '\0' ||
        (is_name && (ch <= ' ' || ch == ':' || ch >= 127)))
      luaL_error(L, "invalid character in response header %s",
                 is_name ? "name" : "value");
  }
}

enum { H_PLAIN, H_FRAMING, H_TYPE };

/* The framing headers are the server's (the handler's are dropped);
 * a Content-Type given means no default one. */
static int header_kind (const char *k, size_t n) {
  if (n == 14 && strncasecmp(k, "content-length", 14) == 0)
    return H_FRAMING;
  if (n == 17 && strncasecmp(k, "transfer-encoding", 17) == 0)
    return H_FRAMING;
  if (n == 12 && strncasecmp(k, "content-type", 12) == 0) return H_TYPE;
  return H_PLAIN;
}

/* The headers of table idx, but framing ones; 1 if a Content-Type was
 * among them. */
static int add_headers (lua_State *L, hserver *s, int idx) {
  int has_type = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t kn, vn;
    const char *k, *v;
    int kind;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "response headers: string names and values expected");
    k = lua_tolstring(L, -2, &kn);
    v = lua_tolstring(L, -1, &vn);      /* a number: a copy turns text */
    check_header(L, k, kn, 1);
    check_header(L, v, vn, 0);
    kind = header_kind(k, kn);
    has_type |= kind == H_TYPE;
    if (kind != H_FRAMING) {
      head_add(L, s, k, kn);
      HEAD_LIT(L, s, ": ");
      head_add(L, s, v, vn);
      HEAD_LIT(L, s, "\r\n");
    }
    lua_pop(L, 1);
  }
  return has_type;
}

/* The status line and the headers of table idx into the scratch head;
 * length is the Content-Length (-1: none; -2: chunked), ctype the
 * Content-Type unless the headers have one (NULL: none). */
static void build_head (lua_State *L, hreq *r, int status, int idx,
                        int64_t length, const char *ctype) {
  hserver *s = r->srv;
  char line[16] = "HTTP/1.1 ";
  line[9] = (char)('0' + status / 100);
  line[10] = (char)('0' + status / 10 % 10);
  line[11] = (char)('0' + status % 10);
  line[12] = ' ';
  s->head_len = 0;
  head_add(L, s, line, 13);
  head_str(L, s, http_status_str((enum http_status)status));
  HEAD_LIT(L, s, "\r\n");
  if (!add_headers(L, s, idx) && ctype) {
    HEAD_LIT(L, s, "Content-Type: ");
    head_str(L, s, ctype);
    HEAD_LIT(L, s, "\r\n");
  }
  add_date(L, s);
  if (length >= 0) head_number(L, s, "Content-Length: ", (uint64_t)length);
  else if (length == -2) HEAD_LIT(L, s, "Transfer-Encoding: chunked\r\n");
  if (!r->keep_alive || (r->c && r->c->srv->closing))
    HEAD_LIT(L, s, "Connection: close\r\n");
  else if (r->major == 1 && r->minor == 0)
    HEAD_LIT(L, s, "Connection: keep-alive\r\n");
  HEAD_LIT(L, s, "\r\n");
}

static int check_status (lua_State *L, int arg, const char *fname) {
  lua_Integer st = luaio__checkinteger(L, arg, fname);
  if (st < 100 || st > 999)
    luaio__argerror(L, arg, fname, "status out of range");
  return (int)st;
}

static int end_stream (lua_State *L);

/* A handler's usual results: a number status, a headers table and a
 * string body or none. */
static int plain_results (lua_State *L) {
  int body = lua_type(L, 4);
  return lua_type(L, 2) == LUA_TNUMBER && lua_type(L, 3) == LUA_TTABLE &&
         (body == LUA_TSTRING || body <= LUA_TNIL);
}

/* req:respond(status, headers, body [, ctype]): the whole response at
 * once, ctype its Content-Type unless headers have one (without ctype:
 * text for a string body); true. Without ctype, other results than
 * plain_results are left for Lua to normalise: nil. After a streamed
 * response started, it ends that one instead: false. */
static int req_respond (lua_State *L) {
  hreq *r = check_req(L, "req:respond");
  int status, has_body;
  size_t blen;
  const char *body, *ctype;
  uv_buf_t bufs[2];
  if (r->started) {
    end_stream(L);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (lua_gettop(L) < 5 && !plain_results(L)) return 0;
  status = check_status(L, 2, "req:respond");
  luaio__checktype(L, 3, "req:respond", LUA_TTABLE);
  body = luaio__optstring(L, 4, "req:respond", "", &blen);
  ctype = luaio__optstring(L, 5, "req:respond", NULL, NULL);
  if (ctype == NULL && lua_type(L, 4) == LUA_TSTRING)
    ctype = "text/plain; charset=utf-8";
  if (r->c == NULL) return closed_error(L, "req:respond");
  has_body = status >= 200 && status != 204 && status != 304;
  build_head(L, r, status, 3, has_body ? (int64_t)blen : -1, ctype);
  r->started = 1;
  bufs[0] = uv_buf_init(r->srv->head, (unsigned)r->srv->head_len);
  bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
  conn_writev(r->c, bufs, has_body && !r->head_only ? 2 : 1);
  req_finished(r);
  lua_pushboolean(L, 1);
  return 1;
}

/* req:start(status, headers [, length]): a streamed response: of
 * that length, or chunked, or (HTTP/1.0 client) up to the close. */
static int req_start (lua_State *L) {
  hreq *r = check_req(L, "res:start");
  int status = check_status(L, 2, "res:start");
  int64_t length = -1;
  luaio__checktype(L, 3, "res:start", LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) {
    lua_Integer n = luaio__checkinteger(L, 4, "res:start");
    if (n < 0) return luaio__argerror(L, 4, "res:start", "negative length");
    r->sized = 1;
    r->remaining = (uint64_t)n;
    length = n;
  }
  lua_settop(L, 3);
  if (r->started)
    return luaL_error(L, "res:start: the response already started");
  if (r->c == NULL) return closed_error(L, "res:start");
  r->chunked = !r->sized && (r->major > 1 ||
                             (r->major == 1 && r->minor >= 1));
  if (!r->chunked && !r->sized) r->keep_alive = 0;
  if (r->chunked && !r->head_only) length = -2;
  build_head(L, r, status, 3, length, NULL);
  r->started = 1;
  conn_write(r->c, r->srv->head, r->srv->head_len);
  return 0;
}

static int write_k (lua_State *L, int status, lua_KContext ctx) {
  hreq *r = check_req(L, "res:write");
  (void)ctx;
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "res:write", NULL, NULL);
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  return 0;
}

/* req:write(chunk): waits while much is queued (a slow reader). */
static int req_write (lua_State *L) {
  hreq *r = check_req(L, "res:write");
  size_t n;
  const char *s = luaio__checkstring(L, 2, "res:write", &n);
  char size[32];
  if (!r->started || r->finished)
    return luaL_error(L, "res:write: response not streaming");
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  if (r->sized && !r->head_only) {
    if (n > r->remaining)
      return luaL_error(L, "res:write: more than the announced length");
    r->remaining -= n;
  }
  if (n > 0 && !r->head_only) {      /* one write: a failed one closes */
    uv_buf_t bufs[3];
    int nb = 0;
    if (r->chunked) {
      int k = snprintf(size, sizeof size, "%zx\r\n", n);
      bufs[nb++] = uv_buf_init(size, (unsigned)k);
    }
    bufs[nb++] = uv_buf_init((char *)s, (unsigned)n);
    if (r->chunked) bufs[nb++] = uv_buf_init("\r\n", 2);
    conn_writev(r->c, bufs, nb);
  }
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  if (r->c->queued <= SRV_HIGH_WATER) return 0;
  luaio_check_wait(L, "res:write");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &r->c->writers, write_k, 0);
}

/* The end of a streamed response (req at 1). */
static int end_stream (lua_State *L) {
  hreq *r = check_req(L, "res:finish");
  if (!r->started || r->finished) return 0;
  if (r->c && r->chunked && !r->head_only)
    conn_write(r->c, "0\r\n\r\n", 5);
  if (r->sized && r->remaining > 0 && !r->head_only)
    r->aborted = 1;                  /* short: the client must see it */
  req_finished(r);
  return 0;
}

/* req:finish(): the end of a streamed response. */
static int req_finish (lua_State *L) {
  return end_stream(L);
}

static int req_state (lua_State *L) {
  hreq *r = check_req(L, "req:state");
  lua_pushboolean(L, r->started);
  lua_pushboolean(L, r->finished);
  return 2;
}

/* req:upgrade(key, max_message) -> WebSocket (see serve_ws.c) */
static int req_upgrade (lua_State *L) {
  return srv_ws_upgrade(L, check_req(L, "req:websocket"));
}

static int req_gc (lua_State *L) {
  req_ud *u = lua_touserdata(L, 1);
  if (u->r) req_unref(u->r);
  u->r = NULL;
  return 0;
}

/* ---- the server object --------------------------------------------- */

static server_ud *check_server (lua_State *L) {
  return luaL_checkudata(L, 1, SERVER_MT);
}

static void server_release (lua_State *L, hserver *s) {
  if (s->dispatch_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->dispatch_ref);
    s->dispatch_ref = LUA_NOREF;
  }
}

static int server_port (lua_State *L) {
  hserver *s = check_server(L)->s;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (s->closing || uv_tcp_getsockname(&s->listener,
                                       (struct sockaddr *)&ss, &len))
    return 0;
  lua_pushinteger(L, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  return 1;
}

static int close_k (lua_State *L, int status, lua_KContext ctx) {
  hserver *s = check_server(L)->s;
  (void)ctx;
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "srv:close", NULL, NULL);
  lua_settop(L, 1);
  if (s->nconns > 0 || s->nhandlers > 0)
    return luaio_waitlist_wait(L, &s->closers, close_k, 0);
  return 0;
}

/* Is the caller the task of one of s's requests? (It must not wait
 * for itself.) */
static int in_own_handler (lua_State *L, hserver *s) {
  luaio_task *t = luaio__current(L);
  hreq *r;
  for (r = s->tasks; t != NULL && r != NULL; r = r->tnext)
    if (r->task == t) return 1;
  return 0;
}

/* srv:close(grace_ms, wait): stop accepting; with wait, wait for the
 * connections and the request tasks to end (not from a handler of the
 * same server: it would wait for itself). */
static int server_close (lua_State *L) {
  hserver *s = check_server(L)->s;
  lua_Integer grace = luaL_checkinteger(L, 2);
  int wait = lua_toboolean(L, 3) && !in_own_handler(L, s);
  srv_stop(s, grace < 0 ? 0 : (uint64_t)grace);
  server_release(L, s);
  lua_settop(L, 1);
  if ((s->nconns == 0 && s->nhandlers == 0) || !wait ||
      !lua_isyieldable(L))
    return 0;
  luaio_check_wait(L, "srv:close");
  return luaio_waitlist_wait(L, &s->closers, close_k, 0);
}

static int server_connections (lua_State *L) {
  lua_pushinteger(L, check_server(L)->s->nconns);
  return 1;
}

static int server_gc (lua_State *L) {
  server_ud *u = check_server(L);
  if (u->s == NULL) return 0;
  srv_stop(u->s, 0);
  srv_unref(u->s);
  u->s = NULL;
  return 0;
}

static lua_Integer limit (lua_State *L, const char *name) {
  lua_Integer v;
  lua_getfield(L, 3, name);
  v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* core.listen(host, port, limits, dispatch) -> server; dispatch(req,
 * method, url, path, query, version) runs in a new task per request.
 * Lua checked the arguments. */
static int core_listen (lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2), rc;
  struct sockaddr_storage ss;
  server_ud *u;
  hserver *s;
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return luaio__argerror(L, 1, "http.serve", "host: IP address or "
                           "'localhost' expected");
  u = lua_newuserdatauv(L, sizeof *u, 1);
  u->s = NULL;
  luaL_setmetatable(L, SERVER_MT);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, -2, 1);
  if ((s = calloc(1, sizeof *s)) == NULL) return luaL_error(L, "out of "
                                                            "memory");
  s->lim.max_header = (size_t)limit(L, "max_header");
  s->lim.max_body = (size_t)limit(L, "max_body");
  s->lim.header_ms = (uint64_t)limit(L, "header_ms");
  s->lim.idle_ms = (uint64_t)limit(L, "idle_ms");
  s->lim.body_ms = (uint64_t)limit(L, "body_ms");
  s->lim.write_ms = (uint64_t)limit(L, "write_ms");
  s->lim.max_conns = (int)limit(L, "max_conns");
  s->lim.max_requests = (int)limit(L, "max_requests");
  s->host = luaio__host(L);
  s->refs = 1;
  u->s = s;
  lua_pushvalue(L, -1);
  s->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if ((rc = srv_start(s, luaio_loop(s->host), (struct sockaddr *)&ss))) {
    server_release(L, s);
    srv_stop(s, 0);
    return luaio_raise_uv(L, rc, "http.serve", "address", host);
  }
  return 1;
}

static const luaL_Reg req_methods[] = {
  {"headers", req_headers}, {"remote", req_remote},
  {"read", req_read}, {"respond", req_respond},
  {"start", req_start}, {"write", req_write}, {"finish", req_finish},
  {"state", req_state}, {"upgrade", req_upgrade},
  {"openfile", srv_req_openfile}, {"sendfile", srv_req_sendfile},
  {NULL, NULL}
};

static const luaL_Reg server_methods[] = {
  {"port", server_port}, {"close", server_close},
  {"connections", server_connections}, {NULL, NULL}
};

/* http.serve and http.static before their first call: load
 * luaio.serve (it sets both on the module, upvalue 1), then call the
 * real one (named by upvalue 2). Loaded on first use, `require
 * "luaio.http"` costs a client what it did before the server. */
static int serve_first (lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(2));
  luaL_checkstack(L, 4, NULL);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaio.serve");
  lua_call(L, 1, 1);                         /* the factory */
  lua_newtable(L);
  lua_pushcfunction(L, core_listen);
  lua_setfield(L, -2, "listen");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 2, 0);                         /* factory(core, http) */
  lua_getfield(L, lua_upvalueindex(1), name);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Set http.serve and http.static on the module table on top. */
void luaio__serve_register (lua_State *L) {
  static const char *const names[] = {"serve", "static"};
  int i;
  static const luaL_Reg req_meta[] = {{"__gc", req_gc}, {NULL, NULL}};
  luaio__class(L, REQ_MT, req_methods, NULL, req_meta);
  luaL_getmetatable(L, REQ_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &req_mt_key);
  luaio__class(L, SERVER_MT, server_methods, server_gc, NULL);
  srv_ws_register(L);
  for (i = 0; i < 2; i++) {
    lua_pushvalue(L, -1);
    lua_pushstring(L, names[i]);
    lua_pushcclosure(L, serve_first, 2);
    lua_setfield(L, -2, names[i]);
  }
}
