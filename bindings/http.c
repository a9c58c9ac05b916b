/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http.c: `luaio.http`, an HTTP client on libcurl's multi_socket API
 * driven by the host's libuv loop. This file is the Lua module: its
 * functions, client objects and the life of a request (check, start,
 * wait, retry, finish). The other parts are listed in http_int.h.
 *
 * Each request is an easy handle inside a userdata kept on the
 * requesting task's stack while it waits; cancellation removes it from
 * the multi at once.
 */
#include "http_int.h"
#include <time.h>

/* Connection caps of a client that sets none: more requests queue inside
 * curl instead of each opening a socket (1,000 concurrent gets once held
 * 765 sockets). A client that sets only max_connections gets as many per
 * host. */
#define DEFAULT_MAX_CONNECTIONS 100
#define DEFAULT_MAX_PER_HOST 8

static const char default_client_key = 0;
static const char helper_key = 0;

/* The Lua part of the module (lua/download.lua) is taken from the
 * registry's preload table, not through the global require a script may
 * have replaced; it is what needs other modules (luaio.fs, luaio.json),
 * so that this binding calls no other one. Push its field name. [-0, +1] */
void http__push_helper (lua_State *L, const char *name) {
  luaio__push_lua_part(L, &helper_key, "luaio.download", "luaio.http");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* ---- the Lua client object ----------------------------------------------- */

/* A client userdata: the C side, and its settings table as uservalue. */
typedef struct client_ud {
  hclient *c;
} client_ud;

static hclient *check_client (lua_State *L, int idx, const char *fname) {
  client_ud *u = (client_ud *)luaL_checkudata(L, idx, "luaio.HttpClient");
  if (u->c == NULL || u->c->closed)
    luaL_error(L, "%s: http client is closed", fname);
  return u->c;
}

static int client_close_m (lua_State *L) {
  client_ud *u = (client_ud *)luaL_checkudata(L, 1, "luaio.HttpClient");
  if (u->c) http__client_close(u->c);
  u->c = NULL;
  return 0;
}

/* ---- retries ------------------------------------------------------------- */

#define MAX_RETRY_AFTER 60.0   /* seconds; a server asking more is not
                                  waited for: its response is returned */

/* A uniform number in [0, 1) for retry jitter, from the host's own
 * generator (splitmix64), seeded once from the system's entropy
 * (uv_random): rand() was never seeded, so every process (and every
 * client of a crowd restarting together) backed off in step. */
static double jitter_random (lua_State *L) {
  static const char rng_key = 0;
  uint64_t *s, z;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rng_key) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    s = (uint64_t *)lua_newuserdatauv(L, sizeof *s, 0);
    if (uv_random(NULL, NULL, s, sizeof *s, 0, NULL) != 0)
      *s = uv_hrtime() ^ (uint64_t)(uintptr_t)s;   /* no entropy: still
                                                      differs per host */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rng_key);
  }
  s = (uint64_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

/* Seconds to wait before retry number r->attempt (1-based): exponential
 * backoff with jitter, or longer if the server's Retry-After says so
 * (taken as a minimum: "0" must not make a crowd retry at once). */
static double backoff_seconds (lua_State *L, req *r) {
  int n = r->attempt < 1 ? 0 : r->attempt > 10 ? 9 : r->attempt - 1;
  double s = 0.1 * (double)(1 << n) * (0.5 + jitter_random(L));
  return r->retry_after > s ? r->retry_after : s;
}

/* The Retry-After of the response, in seconds: delay-seconds or an
 * HTTP-date (RFC 9110 10.2.3); 0 when absent, unreadable or past. */
static double retry_after (req *r) {
  struct curl_header *h;
  const char *v;
  time_t when;
  if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &h)
      != CURLHE_OK)
    return 0;
  v = h->value;
  if (*v && v[strspn(v, "0123456789")] == '\0') return strtod(v, NULL);
  when = curl_getdate(v, NULL);
  if (when == -1 || when <= time(NULL)) return 0;
  return difftime(when, time(NULL));
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
  return r->retry_after <= MAX_RETRY_AFTER;
}

static void retry_due_cb (luaio_deadline *d) {
  req *r = LUAIO_CONTAINER(d, req, d);
  http__list_del(&r->c->backoffs, r);
  r->backoff = 0;
  r->len = r->hlen = 0;
  r->too_big = r->header_too_big = r->in_header = 0;
  r->new_response = 1;
  if (r->stripped) {                   /* back to the first origin */
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    r->stripped = 0;
  }
  r->errbuf[0] = '\0';
  if (!http__req_add(r)) {
    r->result = CURLE_FAILED_INIT;
    luaio_waiter_done(&r->w, 0);
  }
}

/* Wait before trying r again; 0 if the timer cannot start. */
static int start_backoff (lua_State *L, req *r) {
  double s;
  r->attempt++;
  s = backoff_seconds(L, r);
  r->backoff = luaio__deadline_start(r->c->h, &r->d,
                                     (uint64_t)(s * 1000), retry_due_cb);
  if (r->backoff) http__list_add(&r->c->backoffs, r);
  return r->backoff;
}

/* ---- a request's life ---------------------------------------------------- */

static int req_gc (lua_State *L) {
  luaio__resource_gc(L, 1, "streamed luaio.HttpResponse");
  http__req_release((req *)lua_touserdata(L, 1));
  return 0;
}

static void req_abort (luaio_waiter *w) {
  req *r = LUAIO_CONTAINER(w, req, w);
  http__req_remove(r);
  http__backoff_stop(r);
  luaio_waiter_done(w, UV_ECANCELED);
}

/* Raise the error of a request ended by cancel or by closing its client.
 * Stack: ... r method url start_time. */
static int raise_ended (lua_State *L, req *r, int status,
                        const char *method) {
  lua_pop(L, 1);                                   /* ... url */
  if (status != 0)
    return luaio_raise_uv(L, status, method, "url", lua_tostring(L, -1));
  (void)r;
  return http__raise_closed(L, method, -1, "the client was closed");
}

/* Push the streamed response, holding r. Stack as in req_k. */
static int push_stream (lua_State *L, req *r, const char *method, int top) {
  http__push_response(L, r, method, (lua_Number)uv_hrtime() / 1e9
                      - lua_tonumber(L, top));
  lua_pushnil(L);
  lua_setfield(L, -2, "body");
  lua_pushvalue(L, top - 3);                       /* keeps r alive */
  lua_setfield(L, -2, "_stream");
  luaio__resource_open(L, top - 3);                /* debug mode: where */
  return 1;
}

/* Stack of a request: ... r(ud) method url start_time */
static int req_k (lua_State *L, int status, lua_KContext ctx) {
  req *r = (req *)ctx;
  int top = lua_gettop(L);
  const char *method = lua_tostring(L, top - 2);
  if (status != 0 || r->client_closed)
    return raise_ended(L, r, status, method);
  if (r->stream && !r->headers_done && r->result == CURLE_OK &&
      !r->too_big && !r->header_too_big)
    http__stream_ended(r);
  if (r->stream && r->headers_done) return push_stream(L, r, method, top);
  if (should_retry(r) && start_backoff(L, r))
    return luaio_wait(L, &r->w, req_k, ctx);
  if (r->result != CURLE_OK || r->too_big || r->header_too_big ||
      r->incomplete) {
    lua_settop(L, top - 1);
    return http__raise_transfer_error(L, r, method);
  }
  http__push_response(L, r, method, (lua_Number)uv_hrtime() / 1e9
                      - lua_tonumber(L, top));
  http__req_release(r);
  return 1;
}

/* A new request object of client c, with its easy handle. [-0, +1] */
static req *req_new (lua_State *L, hclient *c, const char *fname) {
  req *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaio_waiter_init(&r->w, req_abort);
  r->new_response = 1;
  r->c = c;
  c->nreqs++;
  luaL_setmetatable(L, "luaio.HttpRequest");
  r->easy = curl_easy_init();
  if (r->easy == NULL) luaL_error(L, "%s: out of memory", fname);
  return r;
}

/* Start a request on the client at cidx (its settings as uservalue):
 * method and url are Lua strings (lengths mlen, ulen) given at argument
 * arg; the options table at opts (0: none) is argument oarg. Every
 * option is checked before the request and its curl handle exist. */
static int do_request (lua_State *L, int cidx, const char *method,
                       size_t mlen, const char *url, size_t ulen, int arg,
                       int opts, int oarg, const char *fname) {
  hclient *c = check_client(L, cidx, fname);
  req_opts o;
  req *r;
  if (!http__is_token(method, mlen))
    return luaio__argerror(L, arg, fname, "invalid method");
  if (memchr(url, '\0', ulen))
    return luaio__argerror(L, arg, fname, "URL contains a NUL byte");
  luaio_check_wait(L, fname);
  lua_getiuservalue(L, cidx, 1);
  o.arg = oarg;
  http__check_opts(L, &o, url, opts, lua_gettop(L), fname);
  r = req_new(L, c, fname);
  http__apply_opts(L, r, &o, method, fname);
  luaio__perm_curl(L, &r->perm, r->easy, lua_tostring(L, o.url));
  lua_pushstring(L, method);                       /* r method */
  lua_pushvalue(L, o.url);                         /* r method url */
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  if (!http__req_add(r))
    return luaL_error(L, "%s: cannot start the transfer", fname);
  luaio__wait_detail(L, "%s %s", method, url);     /* nothing raises now */
  return luaio_wait(L, &r->w, req_k, (lua_KContext)r);
}

/* ---- the Lua API --------------------------------------------------------- */

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
  return do_request(L, cidx, method, mlen, url, ulen, tidx, tidx, tidx,
                    fname);
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
                    uidx + 1, fname);
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

/* The GET of http.download(url, path, opts), whose Lua part streams the
 * response to the file: its errors name http.download, and the options
 * are its argument #3. */
static int download_get (lua_State *L) {
  const char *fname = "http.download";
  size_t ulen;
  const char *url = luaio__checkstring(L, 1, fname, &ulen);
  luaio__checktype(L, 2, fname, LUA_TTABLE);
  lua_settop(L, 2);
  push_default_client(L);
  return do_request(L, 3, "GET", 3, url, ulen, 1, 2, 3, fname);
}

/* ---- clients ------------------------------------------------------------- */

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

/* Push a private copy of the settings table at sidx (0: an empty
 * table). [-0, +1] */
static void push_settings_copy (lua_State *L, int sidx) {
  lua_newtable(L);
  if (!sidx) return;
  lua_pushnil(L);
  while (lua_next(L, sidx)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* Make a client for the settings table at sidx (0: defaults, with no
 * cookie jar unless cookies). [-0, +1] */
static int new_client (lua_State *L, int sidx, int cookies,
                       const char *fname) {
  client_ud *u;
  long maxc, maxh;
  int set_total = 0;
  if (sidx) {
    luaio__checktype(L, sidx, fname, LUA_TTABLE);
    http__check_settings(L, sidx, fname);
    lua_getfield(L, sidx, "headers");
    http__check_headers(L, -1, sidx, fname);
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
  push_settings_copy(L, sidx);
  lua_setiuservalue(L, -2, 1);
  u->c = http__client_new(luaio__host(L), cookies);
  if (u->c == NULL) return luaL_error(L, "%s: out of memory", fname);
  http__set_caps(u->c, maxc, maxh);
  return 1;
}

/* http.client{base_url=, headers=, timeout=, connect_timeout=,
 * max_connections=, max_per_host=, retries=, cookies=, ...} */
static int http_client (lua_State *L) {
  return new_client(L, lua_isnoneornil(L, 1) ? 0 : 1, 1, "http.client");
}

static int push_default_client (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &default_client_key) == LUA_TNIL) {
    lua_pop(L, 1);
    new_client(L, 0, 0, "http");       /* no cookies across calls */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &default_client_key);
  }
  return 1;
}

/* ---- the module ---------------------------------------------------------- */

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

/* Registered once per state: opening the module again (after
 * package.loaded["luaio.http"] = nil) finds them made and changes
 * nothing, so the objects of an earlier open keep working. */
static void make_metatables (lua_State *L) {
  static const luaL_Reg request_meta[] = {{"__gc", req_gc}, {NULL, NULL}};
  luaio__class(L, "luaio.HttpClient", client_methods, client_close_m, NULL);
  luaio__class(L, "luaio.HttpRequest", NULL, NULL, request_meta);
  http__make_response_meta(L);
}

int luaopen_luaio_http (lua_State *L) {
  luaio__host(L);
  curl_global_init(CURL_GLOBAL_DEFAULT);   /* thread-safe since 7.84 */
  make_metatables(L);
  luaL_newlib(L, http_funcs);
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  http__push_helper(L, "download_for");            /* download: in Lua */
  lua_pushcfunction(L, download_get);
  lua_call(L, 1, 1);
  lua_setfield(L, -2, "download");
  luaio__serve_register(L);                        /* http.serve */
  return 1;
}
