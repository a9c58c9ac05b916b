/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http_response.c: what comes back. Curl's write and header callbacks
 * (bounded buffers, the last response's header block, redirects that
 * must drop secret headers), the errors of failed transfers, the
 * response table with headers parsed on first use, and streamed bodies
 * read chunk by chunk.
 */
#include "http_int.h"
#include <ctype.h>

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

static size_t write_cb (char *p, size_t size, size_t n, void *ud) {
  req *r = (req *)ud;
  size_t len = size * n;
  r->last_rx = uv_now(luaio_loop(r->c->h));
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

/* Keeps the header lines of the last response only (not of redirects or
 * 100-continue), bounded in size. A response starts where curl starts
 * one: first, and after the end of a 1xx or of a redirect it follows.
 * Anywhere else a line starting with "HTTP/" is just a header (or a
 * trailer) and must not restart the block. */
static size_t header_cb (char *p, size_t size, size_t n, void *ud) {
  req *r = (req *)ud;
  size_t len = size * n;
  r->last_rx = uv_now(luaio_loop(r->c->h));
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

/* Point r's transfer at the callbacks of this file. */
void http__set_callbacks (req *r) {
  curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
}

/* Free everything r holds but the userdata itself; r may be released
 * again (a response closed, then collected). */
void http__req_release (req *r) {
  http__req_remove(r);
  if (r->c) http__backoff_stop(r);
  if (r->easy) curl_easy_cleanup(r->easy);
  if (r->headers) curl_slist_free_all(r->headers);
  if (r->safe_headers) curl_slist_free_all(r->safe_headers);
  if (r->mime) curl_mime_free(r->mime);
  free(r->body);
  free(r->hdrs);
  r->easy = NULL;
  r->headers = r->safe_headers = NULL;
  r->mime = NULL;
  r->body = r->hdrs = NULL;
  r->len = r->cap = r->hlen = r->hcap = 0;
  if (r->c) http__client_unref(r->c);            /* after the easy handle */
  r->c = NULL;
}

/* ---- errors of failed transfers ------------------------------------------ */

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

/* A table: curl's result to the error kind. */
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

/* The error code of a failed transfer: ours, the errno name, or
 * curl's code (in cbuf). */
static const char *error_code (req *r, char *cbuf, size_t size) {
  long oserr = 0;
  curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
  if (r->too_big) return "BODY_TOO_LARGE";
  if (r->incomplete) return "INCOMPLETE_HEADERS";
  if (header_limit(r)) return "EMSGSIZE";
  if (oserr) return uv_err_name(-(int)oserr);
  switch (r->result) {
    case CURLE_OPERATION_TIMEDOUT: return "ETIMEDOUT";
    case CURLE_TOO_MANY_REDIRECTS: return "TOO_MANY_REDIRECTS";
    case CURLE_COULDNT_RESOLVE_HOST: return "EAI_NONAME";
    case CURLE_PEER_FAILED_VERIFICATION: return "TLS_VERIFY";
    default: return curl_code_name(r->result, cbuf, size);
  }
}

/* Raise the error of a failed transfer: kind, errno name (or curl's
 * code), curl's message, method and URL. Stack: ... url on top. */
int http__raise_transfer_error (lua_State *L, req *r, const char *method) {
  const char *msg;
  char cbuf[32], hbuf[80];
  size_t hmax = header_limit(r);
  luaio__perm_curl_raise(L, &r->perm);     /* the sandbox refused it */
  if (hmax)
    snprintf(hbuf, sizeof hbuf, "response header too large (%s over %zu "
             "bytes)", r->header_too_big ? "headers" : "a line", hmax);
  if (r->too_big) msg = "response body larger than max_body";
  else if (r->incomplete) msg = "the connection closed before the end of "
                                "the response headers";
  else if (hmax) msg = hbuf;
  else msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
  luaio_push_error(L, error_kind(r), error_code(r, cbuf, sizeof cbuf), msg);
  lua_pushstring(L, method);
  lua_setfield(L, -2, "op");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "url");
  return luaio_raise(L);
}

/* Raise the error of a request or stream ended by a close: kind "io",
 * code ECANCELED, operation op, the URL at index url. */
int http__raise_closed (lua_State *L, const char *op, int url,
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
void http__stream_ended (req *r) {
  if (r->in_header || r->new_response) r->incomplete = 1;
  else r->headers_done = 1;
}

/* ---- the response table -------------------------------------------------- */

/* Push s lowercased. [-0, +1] */
static void push_lower (lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  size_t i;
  char *d = luaL_buffinitsize(L, &b, len);     /* on the C stack if short */
  for (i = 0; i < len; i++) d[i] = (char)tolower((unsigned char)s[i]);
  luaL_pushresultsize(&b, len);
}

/* Append an obs-fold continuation (v, len: the line without its leading
 * white space) to header number n of the list on top, and to its joined
 * value in the headers table just below: RFC 9112 5.2 replaces the fold
 * with a space. [-0, +0] */
static void fold_header (lua_State *L, lua_Integer n, const char *v,
                         size_t len) {
  const char *name;
  size_t nlen;
  if (len == 0) return;
  lua_rawgeti(L, -1, n);                           /* ... entry */
  lua_rawgeti(L, -1, 2);
  lua_pushliteral(L, " ");
  lua_pushlstring(L, v, len);
  lua_concat(L, 3);
  lua_rawseti(L, -2, 2);
  lua_rawgeti(L, -1, 1);                           /* ... entry name */
  name = lua_tolstring(L, -1, &nlen);
  push_lower(L, name, nlen);                       /* ... entry name key */
  lua_pushvalue(L, -1);
  lua_rawget(L, -6);                               /* the joined value */
  lua_pushliteral(L, " ");
  lua_pushlstring(L, v, len);
  lua_concat(L, 3);
  lua_rawset(L, -6);
  lua_pop(L, 2);
}

/* Add header number n, name: value, to the list on top and to the
 * headers table just below (a repeated name joins with ", "). [-0, +0] */
static void add_parsed (lua_State *L, lua_Integer n, const char *name,
                        size_t nlen, const char *v, size_t vlen) {
  push_lower(L, name, nlen);                       /* ... list key */
  lua_createtable(L, 2, 0);
  lua_pushlstring(L, name, nlen);
  lua_rawseti(L, -2, 1);
  lua_pushlstring(L, v, vlen);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -3, n);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -4) == LUA_TSTRING) {          /* repeated: join */
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, v, vlen);
    lua_concat(L, 3);
  }
  else {
    lua_pop(L, 1);
    lua_pushlstring(L, v, vlen);
  }
  lua_rawset(L, -4);
}

/* Set t.reason from the status line p..ve ("HTTP/1.1 200 OK"). */
static void set_reason (lua_State *L, int t, const char *p, const char *ve) {
  const char *sp = memchr(p, ' ', ve - p);
  if (sp) sp = memchr(sp + 1, ' ', ve - sp - 1);
  lua_pushlstring(L, sp ? sp + 1 : "", sp ? (size_t)(ve - sp - 1) : 0);
  lua_setfield(L, t, "reason");
}

static const char *skip_ws (const char *v, const char *end) {
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  return v;
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
    const char *eol = memchr(p, '\n', end - p), *colon, *ve;
    if (eol == NULL) eol = end;
    ve = eol;
    while (ve > p && (ve[-1] == '\r' || ve[-1] == '\n')) ve--;
    colon = memchr(p, ':', ve - p);
    if (p == start) { set_reason(L, t, p, ve); last = 0; }
    else if (*p == ' ' || *p == '\t') {            /* obs-fold */
      const char *v = skip_ws(p, ve);
      if (last) fold_header(L, last, v, ve - v);
    }
    else if (colon) {
      const char *v = skip_ws(colon + 1, ve);
      add_parsed(L, ++n, p, colon - p, v, ve - v);
      last = n;
    }
    else last = 0;             /* no fold joins across another line */
    p = eol + 1;
  }
  lua_setfield(L, t, "header_list");
  lua_setfield(L, t, "headers");
}

/* Build the response table from the finished transfer. The headers are
 * kept raw and parsed on first use (resp_index): most callers never look
 * at them, and parsing them was a fifth of the cost of a small request.
 * [-0, +1] */
void http__push_response (lua_State *L, req *r, const char *method,
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

/* headers[name]: case-insensitive. */
static int headers_index (lua_State *L) {
  size_t len;
  const char *k = lua_tolstring(L, 2, &len);
  if (k == NULL) return 0;
  push_lower(L, k, len);
  lua_rawget(L, 1);
  return 1;
}

static int resp_text (lua_State *L) {
  luaio__checktype(L, 1, "response:text", LUA_TTABLE);
  lua_getfield(L, 1, "body");
  return 1;
}

/* resp:json(): the body decoded by luaio.json (through the module's Lua
 * helper, so this binding never calls another one). */
static int resp_json (lua_State *L) {
  luaio__checktype(L, 1, "response:json", LUA_TTABLE);
  http__push_helper(L, "json_decode");
  lua_getfield(L, 1, "body");
  lua_call(L, 1, 1);
  return 1;
}

/* resp:raise_for_status() -> resp, or an error of kind "http" with the
 * status for 4xx and 5xx. */
static int resp_raise_for_status (lua_State *L) {
  lua_Integer status;
  luaio__checktype(L, 1, "response:raise_for_status", LUA_TTABLE);
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

/* ---- streamed bodies ----------------------------------------------------- */

static req *stream_of (lua_State *L, const char *fname) {
  req *r;
  luaio__checktype(L, 1, fname, LUA_TTABLE);
  lua_getfield(L, 1, "_stream");
  r = (req *)luaL_testudata(L, -1, "luaio.HttpRequest");
  if (r == NULL) luaL_error(L, "%s: not a streamed response (use "
                            "{stream = true})", fname);
  lua_pop(L, 1);
  return r;
}

/* Push the next buffered chunk, letting a paused transfer go on. */
static int push_chunk (lua_State *L, req *r) {
  lua_pushlstring(L, r->body, r->len);
  r->len = 0;
  if (r->paused && r->in_multi) {      /* room again: let curl go on */
    r->paused = 0;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
  }
  return 1;
}

/* Stack: resp. The next chunk, nil at the end, or an error. */
static int chunk_k (lua_State *L, int status, lua_KContext ctx) {
  req *r = (req *)ctx;
  lua_settop(L, 1);
  if (status != 0) return luaio_raise_uv(L, status, "response:chunks", NULL,
                                         NULL);
  if (r->easy == NULL || r->client_closed) {
    lua_getfield(L, 1, "url");
    return http__raise_closed(L, "response:chunks", -1, r->easy == NULL
                              ? "response closed" : "the client was closed");
  }
  if (r->len > 0) return push_chunk(L, r);
  if (r->finished) {
    lua_getfield(L, 1, "_stream");                 /* read to its end */
    luaio__resource_closed(L, -1);
    lua_pop(L, 1);
    if (r->result != CURLE_OK) {
      lua_getfield(L, 1, "url");
      lua_getfield(L, 1, "method");
      lua_insert(L, -2);
      return http__raise_transfer_error(L, r, lua_tostring(L, -2));
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
  luaio__checktype(L, 1, "response:close", LUA_TTABLE);
  lua_getfield(L, 1, "_stream");
  if (luaL_testudata(L, -1, "luaio.HttpRequest")) {
    req *r = (req *)lua_touserdata(L, -1);
    luaio__resource_closed(L, -1);
    http__req_release(r);
    luaio_waitlist_wake_all(&r->readers, 0);
  }
  return 0;
}

/* The response metatable (resp_index in front of the methods table) and
 * the headers metatable. Registered once per state: see make_metatables
 * in http.c. */
void http__make_response_meta (lua_State *L) {
  static const luaL_Reg methods[] = {
    {"text", resp_text}, {"json", resp_json}, {"chunks", resp_chunks},
    {"close", resp_close},
    {"raise_for_status", resp_raise_for_status}, {NULL, NULL}
  };
  static const luaL_Reg meta[] = {{"__close", resp_close}, {NULL, NULL}};
  static const luaL_Reg headers_meta[] = {
    {"__index", headers_index}, {NULL, NULL}
  };
  luaio__class(L, "luaio.HttpResponse", methods, NULL, meta);
  luaio__class(L, "luaio.HttpHeaders", NULL, NULL, headers_meta);
  luaL_getmetatable(L, "luaio.HttpResponse");
  if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {
    lua_pushcclosure(L, resp_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
  else lua_pop(L, 2);                  /* done by an earlier open */
}
