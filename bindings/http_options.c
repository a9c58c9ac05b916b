/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http_options.c: a request's options, in two steps.
 *
 * http__check_opts reads every option (the call's, else the client's
 * setting), validates it and leaves what it needs on the Lua stack: the
 * encoded body, the final URL, the header tables. It raises on any bad
 * input and allocates nothing outside Lua, so a bad option leaves no
 * curl handle and no request behind. http__apply_opts then turns the
 * checked options into curl settings on the request's easy handle; it
 * can only fail for lack of memory, and the request's __gc frees what
 * it made.
 */
#include "http_int.h"
#include <ctype.h>
#include <math.h>
#include <strings.h>
#include <unistd.h>

/* Push option name from the call's options (at opts, may be 0) or else
 * the client's settings (at settings, may be 0). [-0, +1] */
static int opt (lua_State *L, int opts, int settings, const char *name) {
  if (opts && lua_getfield(L, opts, name) != LUA_TNIL) return lua_type(L, -1);
  if (opts) lua_pop(L, 1);
  if (!settings) { lua_pushnil(L); return LUA_TNIL; }
  return lua_getfield(L, settings, name);
}

/* Raise "bad argument #<o->arg> to 'fname' (option 'name' what)". */
static int opt_error (lua_State *L, const req_opts *o, const char *fname,
                      const char *name, const char *what) {
  lua_pushfstring(L, "option '%s' %s", name, what);
  return luaio__argerror(L, o->arg, fname, lua_tostring(L, -1));
}

/* ---- one checker per kind of option ------------------------------------
 * Each reads the value on top of the stack (never nil) into its field of
 * req_opts and returns 1 to keep the value on the stack (its index is
 * the field), 0 to have it popped. */

#define FIELD(type) ((type *)((char *)o + s->off))

typedef struct optspec optspec;
typedef int (*opt_checker)(lua_State *L, req_opts *o, const optspec *s,
                           const char *fname);
struct optspec {
  const char *name;
  opt_checker check;
  size_t off;                  /* the field of req_opts */
  int call_only;               /* not a client setting */
};

/* Seconds, or false for off (-1). */
static int check_seconds (lua_State *L, req_opts *o, const optspec *s,
                          const char *fname) {
  double *v = FIELD(double);
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) *v = -1;
  else if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 0)
    *v = lua_tonumber(L, -1);
  else opt_error(L, o, fname, s->name, "must be seconds or false");
  return 0;
}

static int check_flag (lua_State *L, req_opts *o, const optspec *s,
                       const char *fname) {
  if (!lua_isboolean(L, -1))
    opt_error(L, o, fname, s->name, "must be a boolean");
  *FIELD(int) = lua_toboolean(L, -1);
  return 0;
}

/* A count: an integer from 0 to a million. */
static int check_count (lua_State *L, req_opts *o, const optspec *s,
                        const char *fname) {
  int isint = 0;
  lua_Integer n = lua_tointegerx(L, -1, &isint);
  if (lua_type(L, -1) != LUA_TNUMBER || !isint || n < 0 || n > 1000000)
    opt_error(L, o, fname, s->name, "must be a non-negative integer");
  *FIELD(lua_Integer) = n;
  return 0;
}

/* Text that C receives: a string without NUL, CR or LF (C would cut it
 * at a NUL; a CR or LF could start a new header line). */
static int check_text (lua_State *L, req_opts *o, const optspec *s,
                       const char *fname) {
  size_t len, i;
  const char *t;
  if (lua_type(L, -1) != LUA_TSTRING)
    opt_error(L, o, fname, s->name, "must be a string");
  t = lua_tolstring(L, -1, &len);
  if (memchr(t, '\0', len)) opt_error(L, o, fname, s->name, "contains a "
                                      "NUL byte");
  for (i = 0; i < len; i++)
    if (t[i] == '\r' || t[i] == '\n')
      opt_error(L, o, fname, s->name, "contains a CR or LF byte");
  *FIELD(int) = lua_gettop(L);
  return 1;
}

/* max_body in bytes; math.huge (or any value past SIZE_MAX) means no
 * limit. */
static int check_bytes (lua_State *L, req_opts *o, const optspec *s,
                        const char *fname) {
  double v = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0))         /* NaN too */
    opt_error(L, o, fname, s->name, "must be a non-negative number of bytes");
  *FIELD(double) = v;
  return 0;
}

static int check_version (lua_State *L, req_opts *o, const optspec *s,
                          const char *fname) {
  static const char *const names[] = {"1.0", "1.1", "2", "2-prior-knowledge",
                                      NULL};
  static const long versions[] = {
    CURL_HTTP_VERSION_1_0, CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2TLS,
    CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
  };
  const char *v = lua_tostring(L, -1);
  int i;
  for (i = 0; v && lua_type(L, -1) == LUA_TSTRING && names[i]; i++)
    if (strcmp(v, names[i]) == 0) {
      *FIELD(long) = versions[i];
      return 0;
    }
  return opt_error(L, o, fname, s->name, "must be '1.0', '1.1', '2' or "
                   "'2-prior-knowledge'");
}

/* sensitive_headers: a list of header names. */
static int check_names (lua_State *L, req_opts *o, const optspec *s,
                        const char *fname) {
  lua_Integer i, n;
  int ok = lua_istable(L, -1);
  n = ok ? (lua_Integer)lua_rawlen(L, -1) : 0;
  for (i = 1; ok && i <= n; i++) {
    ok = lua_rawgeti(L, -1, i) == LUA_TSTRING;
    lua_pop(L, 1);
  }
  if (!ok) opt_error(L, o, fname, s->name, "must be a list of header names");
  *FIELD(int) = lua_gettop(L);
  return 1;
}

/* Text, or false (field -1): a request turning off its client's
 * setting (user_agent = false sends no User-Agent). */
static int check_text_or_off (lua_State *L, req_opts *o, const optspec *s,
                              const char *fname) {
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
    *FIELD(int) = -1;
    return 0;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    opt_error(L, o, fname, s->name, "must be a string or false");
  return check_text(L, o, s, fname);
}

/* auth = {user, password}: Basic credentials, or false (off for this
 * request). The user holds no ':'
 * (Basic joins the two with one) and neither holds NUL, CR or LF. */
static int check_auth (lua_State *L, req_opts *o, const optspec *s,
                       const char *fname) {
  int i, t = lua_gettop(L);
  if (lua_isboolean(L, t) && !lua_toboolean(L, t)) {
    *FIELD(int) = -1;                  /* off for this request */
    return 0;
  }
  if (!lua_istable(L, t))
    opt_error(L, o, fname, s->name, "must be a table {user, password} "
              "or false");
  for (i = 1; i <= 2; i++) {
    size_t len;
    const char *v;
    if (lua_rawgeti(L, t, i) != LUA_TSTRING)
      opt_error(L, o, fname, s->name, "must be a table {user, password} of "
                "strings");
    v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len || strpbrk(v, "\r\n"))
      opt_error(L, o, fname, s->name, "contains a NUL, CR or LF byte");
    if (i == 1 && memchr(v, ':', len))
      opt_error(L, o, fname, s->name, "user must not contain ':'");
  }
  lua_settop(L, t);
  *FIELD(int) = t;
  return 1;
}

#define F(field) offsetof(req_opts, field)
/* The options of the table-driven part, checked in this order. */
static const optspec optspecs[] = {
  {"timeout", check_seconds, F(timeout), 0},
  {"connect_timeout", check_seconds, F(connect_timeout), 0},
  {"idle_timeout", check_seconds, F(idle_timeout), 0},
  {"max_redirects", check_count, F(max_redirects), 0},
  {"follow_redirects", check_flag, F(follow), 0},
  {"verify", check_flag, F(verify), 0},
  {"ca_file", check_text, F(ca_file), 0},
  {"proxy", check_text, F(proxy), 0},
  {"http_version", check_version, F(http_version), 0},
  {"max_body", check_bytes, F(max_body), 0},
  {"retries", check_count, F(retries), 0},
  {"sensitive_headers", check_names, F(sensitive), 0},
  {"user_agent", check_text_or_off, F(user_agent), 0},
  {"auth", check_auth, F(auth), 0},
  {"bearer", check_text_or_off, F(bearer), 0},
  {"retry_any_method", check_flag, F(retry_any), 1},
  {"stream", check_flag, F(stream), 1},
  {NULL, NULL, 0, 0}
};
static const optspec base_url_spec = {"base_url", check_text, F(url), 0};
#undef F

static void opts_defaults (req_opts *o) {
  int arg = o->arg;
  memset(o, 0, sizeof *o);
  o->arg = arg;
  o->timeout = DEFAULT_TIMEOUT;
  o->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
  o->idle_timeout = -1;
  o->max_redirects = 10;
  o->follow = o->verify = 1;
  o->http_version = -1;
  o->max_body = DEFAULT_MAX_BODY;
}

/* ---- headers ------------------------------------------------------------- */

/* A method or header name: RFC 9110 token characters only (so no NUL,
 * CR, LF or space). */
int http__is_token (const char *s, size_t len) {
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
  if (!http__is_token(name, nlen)) {
    lua_pushfstring(L, "invalid header name '%s'", name);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  if (!clean_value(value, vlen)) {
    lua_pushfstring(L, "header '%s' contains CR, LF or NUL", name);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
}

/* Check the headers table (name -> value, or nil) at idx, given at
 * argument arg. */
void http__check_headers (lua_State *L, int idx, int arg, const char *fname) {
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
    check_header(L, arg, fname, n, nlen, v, vlen);
    lua_pop(L, 1);
  }
}

/* ---- query, form and JSON bodies ----------------------------------------- */

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

/* Push the name=value pairs of the table option `what` on top (which
 * it replaces), URL-encoded and joined with '&'. Keys and values are
 * strings or numbers. The parts are collected in a table first: a
 * luaL_Buffer cannot be used while lua_next keeps a key and value above
 * it. [-1, +1] */
static void encode_pairs (lua_State *L, const req_opts *o, const char *fname,
                          const char *what) {
  luaL_Buffer b;
  int idx = lua_gettop(L), parts, n = 0, i;
  if (!lua_istable(L, idx)) opt_error(L, o, fname, what, "must be a table");
  lua_newtable(L);
  parts = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {                     /* parts key value */
    if (!is_text(L, -2) || !is_text(L, -1))
      opt_error(L, o, fname, what, "must map strings or numbers to strings "
                "or numbers");
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
  lua_replace(L, idx);
  lua_settop(L, idx);
}

/* multipart: {field = "text" | {path=, filename=, type=}}; a file must
 * be readable now (curl would only find out later). */
static void check_multipart (lua_State *L, const req_opts *o, int idx,
                             const char *fname) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaio__argerror(L, o->arg, fname, "multipart field names must be "
                      "strings");
    if (lua_istable(L, -1)) {
      int ok = lua_getfield(L, -1, "path") == LUA_TSTRING &&
               luaio__perm_arg(L, -1, LUAIO_PERM_READ) &&   /* sandbox */
               access(lua_tostring(L, -1), R_OK) == 0;
      if (!ok)
        luaio__argerror(L, o->arg, fname, "multipart file needs a readable "
                        "'path'");
      lua_pop(L, 1);
    }
    else if (!lua_isstring(L, -1))
      luaio__argerror(L, o->arg, fname, "multipart values must be strings "
                      "or file tables");
    lua_pop(L, 1);
  }
}

/* The body from json / form / multipart / body: an encoded string left
 * on the stack (o->body), or the checked multipart table. */
static void check_body (lua_State *L, req_opts *o, int opts,
                        const char *fname) {
  if (!opts) return;
  if (lua_getfield(L, opts, "json") != LUA_TNIL) {
    http__push_helper(L, "json_encode");
    lua_insert(L, -2);
    lua_call(L, 1, 2);                           /* text | nil why */
    if (lua_isnil(L, -2)) {
      lua_pushfstring(L, "cannot be encoded (%s)", lua_tostring(L, -1));
      opt_error(L, o, fname, "json", lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    o->content_type = "application/json";
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "form") != LUA_TNIL) {
    encode_pairs(L, o, fname, "form");
    o->content_type = "application/x-www-form-urlencoded";
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "multipart") != LUA_TNIL) {
    if (!lua_istable(L, -1)) opt_error(L, o, fname, "multipart", "must be a "
                                       "table");
    check_multipart(L, o, lua_gettop(L), fname);
    o->multipart = lua_gettop(L);
    return;
  }
  else if (lua_pop(L, 1), lua_getfield(L, opts, "body") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    opt_error(L, o, fname, "body", "must be a string");
  lua_tostring(L, -1);
  o->body = lua_gettop(L);
}

/* ---- the URL ------------------------------------------------------------- */

/* Resolve url against base, append query (may be NULL); the final URL
 * (or NULL) in *full, for curl_free. Nothing raises while the CURLU
 * handle exists. */
static CURLUcode build_url (const char *base, const char *url,
                            const char *query, char **full) {
  CURLUcode uc = CURLUE_OK;
  char *scheme = NULL;
  CURLU *u = curl_url();
  *full = NULL;
  if (u == NULL) return CURLUE_OUT_OF_MEMORY;
  if (base) uc = curl_url_set(u, CURLUPART_URL, base, 0);
  if (uc == CURLUE_OK) uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_OK && query && *query)
    uc = curl_url_set(u, CURLUPART_QUERY, query, CURLU_APPENDQUERY);
  if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (uc == CURLUE_OK && strcmp(scheme, "http") != 0 &&
      strcmp(scheme, "https") != 0)
    uc = CURLUE_UNSUPPORTED_SCHEME;
  if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_URL, full, 0);
  curl_free(scheme);
  curl_url_cleanup(u);
  return uc;
}

/* Push the final URL: url resolved against base_url, with the query
 * option appended. Raises if it is not an http or https URL. [-0, +1] */
static void check_url (lua_State *L, req_opts *o, const char *url, int opts,
                       int settings, const char *fname) {
  const char *base = NULL, *query = NULL;
  char *full;
  CURLUcode uc;
  int top = lua_gettop(L);
  if (opt(L, opts, settings, "base_url") != LUA_TNIL) {
    check_text(L, o, &base_url_spec, fname);         /* sets o->url for now */
    base = lua_tostring(L, o->url);
  }
  if (opts && lua_getfield(L, opts, "query") != LUA_TNIL) {
    encode_pairs(L, o, fname, "query");
    query = lua_tostring(L, -1);
  }
  uc = build_url(base, url, query, &full);
  lua_settop(L, top);
  if (uc != CURLUE_OK) {
    lua_pushfstring(L, "invalid URL '%s': %s", url,
                    uc == CURLUE_UNSUPPORTED_SCHEME ? "only http and https"
                    : curl_url_strerror(uc));
    luaio__argerror(L, 1, fname, lua_tostring(L, -1));
  }
  lua_pushstring(L, full);       /* a memory error here leaks the URL */
  curl_free(full);
  o->url = lua_gettop(L);
}

/* Check every option of a request for url, from the call's options at
 * opts (0: none) and the client's settings at settings, into o. Leaves
 * the values o points to on the stack. */
void http__check_opts (lua_State *L, req_opts *o, const char *url, int opts,
                       int settings, const char *fname) {
  const optspec *s;
  luaL_checkstack(L, 40, fname);
  opts_defaults(o);
  for (s = optspecs; s->name; s++) {
    if (opt(L, opts, s->call_only ? 0 : settings, s->name) == LUA_TNIL ||
        !s->check(L, o, s, fname))
      lua_pop(L, 1);
  }
  lua_getfield(L, settings, "headers");          /* checked by the client */
  o->client_headers = lua_gettop(L);
  if (opts) {
    lua_getfield(L, opts, "headers");
    http__check_headers(L, -1, o->arg, fname);
    o->headers = lua_gettop(L);
  }
  check_body(L, o, opts, fname);
  check_url(L, o, url, opts, settings, fname);
  if (o->ca_file) luaio__perm_arg(L, o->ca_file, LUAIO_PERM_READ);
  if (o->proxy) luaio__perm_proxy(L, lua_tostring(L, o->proxy));
}

/* ---- applying checked options to a transfer ------------------------------ */

static void set_method (req *r, const char *method) {
  if (strcmp(method, "GET") == 0)
    curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
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

/* Timeouts, redirects, limits and retries. */
static void apply_limits (req *r, const req_opts *o) {
  CURL *e = r->easy;
  long redirects = o->follow ? (long)o->max_redirects : 0;
  if (o->timeout > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                                       to_ms(o->timeout));
  if (o->connect_timeout > 0)
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(o->connect_timeout));
  if (o->idle_timeout > 0) r->idle_ms = (uint64_t)to_ms(o->idle_timeout);
  r->follow = redirects > 0;
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, redirects);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  r->max_body = o->max_body >= (double)SIZE_MAX ? SIZE_MAX
                                                : (size_t)o->max_body;
  r->max_header = DEFAULT_MAX_HEADER;
  r->stream = o->stream;
  r->retries = r->stream ? 0 : (int)o->retries;  /* a half-read body
                                                    cannot restart */
  if (o->retry_any) r->idempotent = 1;
}

/* TLS, proxy, HTTP version, who we are and the Basic credentials. */
static void apply_transport (lua_State *L, req *r, const req_opts *o) {
  CURL *e = r->easy;
  if (!o->verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (o->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, lua_tostring(L, o->ca_file));
  if (o->proxy) curl_easy_setopt(e, CURLOPT_PROXY, lua_tostring(L, o->proxy));
  if (o->http_version >= 0)
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, o->http_version);
  if (o->user_agent >= 0)
    curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent
                     ? lua_tostring(L, o->user_agent)
                     : "luaio/" LUAIO_VERSION);
  if (o->auth > 0) {                   /* curl keeps them to the origin */
    lua_rawgeti(L, o->auth, 1);
    lua_rawgeti(L, o->auth, 2);
    curl_easy_setopt(e, CURLOPT_USERNAME, lua_tostring(L, -2));
    curl_easy_setopt(e, CURLOPT_PASSWORD, lua_tostring(L, -1));
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    lua_pop(L, 2);
  }
}

/* Can a connection for url multiplex? https may get HTTP/2 by ALPN;
 * plain http only by prior knowledge. */
static int may_multiplex (const char *url, long version) {
  if (version == (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE) return 1;
  if (version == (long)CURL_HTTP_VERSION_1_0 ||
      version == (long)CURL_HTTP_VERSION_1_1) return 0;
  return strncasecmp(url, "https:", 6) == 0;
}

/* Append the header line on top to r's list, popping it. */
static void append_line (lua_State *L, struct curl_slist **list,
                         const char *fname) {
  struct curl_slist *l = curl_slist_append(*list, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (l == NULL) luaL_error(L, "%s: out of memory", fname);
  *list = l;
}

/* Append a checked header. An empty value is sent as "Name:" by writing
 * "Name;" (curl reads "Name:" as "remove this header"). */
static void add_header (lua_State *L, req *r, const char *name,
                        const char *value, const char *fname) {
  if (*value == '\0') lua_pushfstring(L, "%s;", name);
  else lua_pushfstring(L, "%s: %s", name, value);
  append_line(L, &r->headers, fname);
}

/* Append the checked headers table at idx (0: none). */
static void add_headers (lua_State *L, req *r, int idx, const char *fname) {
  if (!idx || !lua_istable(L, idx)) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -1);                        /* a number: on a copy */
    add_header(L, r, lua_tostring(L, -3), lua_tostring(L, -1), fname);
    lua_pop(L, 2);
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
static void set_safe_headers (lua_State *L, req *r, int sens,
                              const char *fname) {
  struct curl_slist *l;
  for (l = r->headers; l && !r->secrets; l = l->next)
    r->secrets = is_sensitive(L, l->data, sens);
  for (l = r->secrets ? r->headers : NULL; l; l = l->next) {
    if (is_sensitive(L, l->data, sens)) continue;
    lua_pushstring(L, l->data);
    append_line(L, &r->safe_headers, fname);
  }
}

/* The client's, then the call's headers, the body's type, the bearer
 * token (a secret header, so it stays on the first origin). */
static void apply_headers (lua_State *L, req *r, const req_opts *o,
                           const char *fname) {
  add_headers(L, r, o->client_headers, fname);
  add_headers(L, r, o->headers, fname);
  if (o->content_type) add_header(L, r, "Content-Type", o->content_type,
                                  fname);
  if (o->bearer > 0) {
    lua_pushfstring(L, "Bearer %s", lua_tostring(L, o->bearer));
    add_header(L, r, "Authorization", lua_tostring(L, -1), fname);
    lua_pop(L, 1);
  }
  set_safe_headers(L, r, o->sensitive, fname);
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
}

/* One part of a checked multipart body: the field (key) and its value
 * (a string or a file table) on top. 0 when curl fails. */
static int add_part (lua_State *L, curl_mimepart *part) {
  size_t len;
  const char *v;
  if (part == NULL || curl_mime_name(part, lua_tostring(L, -2)) != CURLE_OK)
    return 0;
  if (!lua_istable(L, -1)) {
    v = lua_tolstring(L, -1, &len);              /* a copy: see check */
    return curl_mime_data(part, v, len) == CURLE_OK;
  }
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "filename");
  lua_getfield(L, -3, "type");
  len = curl_mime_filedata(part, lua_tostring(L, -3)) == CURLE_OK &&
        (!lua_isstring(L, -2) ||
         curl_mime_filename(part, lua_tostring(L, -2)) == CURLE_OK) &&
        (!lua_isstring(L, -1) ||
         curl_mime_type(part, lua_tostring(L, -1)) == CURLE_OK);
  lua_pop(L, 3);
  return (int)len;
}

static void apply_multipart (lua_State *L, req *r, int idx,
                             const char *fname) {
  r->mime = curl_mime_init(r->easy);
  if (r->mime == NULL) luaL_error(L, "%s: out of memory", fname);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!lua_istable(L, -1)) {       /* a number value: convert a copy */
      lua_pushvalue(L, -1);
      lua_tostring(L, -1);
      lua_replace(L, -2);
    }
    if (!add_part(L, curl_mime_addpart(r->mime)))
      luaL_error(L, "%s: cannot add multipart field '%s'", fname,
                 lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, r->mime);
}

/* What every transfer gets: our callbacks, no signals, any encoding,
 * the client's sockets and cookies. */
static void apply_fixed (req *r) {
  CURL *e = r->easy;
  http__set_callbacks(r);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
  /* a proxy's CONNECT answer is not the response */
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, http__closesocket_cb);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->c);
  if (r->c->share) {
    curl_easy_setopt(e, CURLOPT_SHARE, r->c->share);
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");
  }
}

/* Set up r's easy handle from the checked options o. Raises only when
 * out of memory; what it made is r's, freed by its __gc. */
void http__apply_opts (lua_State *L, req *r, const req_opts *o,
                       const char *method, const char *fname) {
  set_method(r, method);
  apply_limits(r, o);
  apply_transport(L, r, o);
  apply_headers(L, r, o, fname);
  if (o->multipart) apply_multipart(L, r, o->multipart, fname);
  else if (o->body) {
    size_t len;
    const char *b = lua_tolstring(L, o->body, &len);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, b);
  }
  curl_easy_setopt(r->easy, CURLOPT_URL, lua_tostring(L, o->url));
  /* Wait for a connection that may multiplex rather than open one more:
   * a burst to one HTTP/2 origin then shares one. Where none can, the
   * wait would only hold a cold burst until the first answer. */
  if (may_multiplex(lua_tostring(L, o->url), o->http_version))
    curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
  apply_fixed(r);
}

/* Check the request options among a client's settings (the table at
 * sidx, argument 1 of fname): a bad setting fails where it is made, not
 * at each request. */
void http__check_settings (lua_State *L, int sidx, const char *fname) {
  req_opts o;
  const optspec *s;
  int top = lua_gettop(L);
  o.arg = 1;
  opts_defaults(&o);
  for (s = optspecs; s->name; s++) {
    if (!s->call_only && lua_getfield(L, sidx, s->name) != LUA_TNIL)
      s->check(L, &o, s, fname);
    lua_settop(L, top);
  }
  if (lua_getfield(L, sidx, "base_url") != LUA_TNIL)
    check_text(L, &o, &base_url_spec, fname);
  lua_settop(L, top);
}
