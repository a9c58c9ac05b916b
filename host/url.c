/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * url.c: URL join and normalisation on libcurl's URL API (see url.h).
 *
 * libcurl parses, validates, removes dot segments and resolves most
 * relative references. Where libcurl 7.88 disagrees with RFC 3986
 * section 5.4, this file decides instead (each case is commented where
 * it is handled):
 *   - "" and "#s" against "http://a/b/c/d;p?q": libcurl drops the last
 *     path segment ("http://a/b/c/#s"); the RFC keeps the base's path
 *     and query;
 *   - "g:h" and "http:g" (a scheme and no authority): libcurl refuses
 *     them; the RFC takes them as they are;
 *   - "//g", and any result whose path is empty: libcurl always writes
 *     a "/" path ("http://g/"); the RFC's result has none ("http://g").
 * And libcurl 7.88 writes "file:///" as "file://(nil)" (url_text).
 * To tell these apart a reference is split into its five components as
 * RFC 3986 appendix B does: that split only finds delimiters, libcurl
 * still checks every part.
 */
#include "url.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which input a message is about: the one URL, a join's base or its
 * reference. */
enum { ROLE_URL, ROLE_BASE, ROLE_REF };
#define ROLES(what) {what, "base URL: " what, "reference: " what}

static const char *const msg_oom = "out of memory";
static const char *const msg_relative[3] =
  ROLES("not an absolute URL (no scheme)");

typedef struct span {
  size_t at, len;
  int has;
} span;

/* The components of a URI reference, as offsets into its text. */
enum { P_SCHEME, P_AUTHORITY, P_PATH, P_QUERY, P_FRAGMENT, P_N };
typedef struct uri_parts {
  span p[P_N];
} uri_parts;

static const char *const msg_control[P_N][3] = {
  ROLES("control character in scheme"),
  ROLES("control character in authority"),
  ROLES("control character in path"),
  ROLES("control character in query"),
  ROLES("control character in fragment"),
};

/* What libcurl refused, by the part it names. */
static const struct {
  CURLUcode code;
  const char *msg[3];
} curl_msgs[] = {
  {CURLUE_BAD_SCHEME, ROLES("invalid scheme")},
  {CURLUE_UNSUPPORTED_SCHEME, ROLES("unsupported scheme")},
  {CURLUE_BAD_SLASHES, ROLES("no authority (//host) after the scheme")},
  {CURLUE_NO_HOST, ROLES("no host")},
  {CURLUE_BAD_HOSTNAME, ROLES("invalid host")},
  {CURLUE_BAD_IPV6, ROLES("invalid IPv6 address")},
  {CURLUE_BAD_PORT_NUMBER, ROLES("invalid port")},
  {CURLUE_BAD_USER, ROLES("invalid user")},
  {CURLUE_BAD_LOGIN, ROLES("invalid user or password")},
  {CURLUE_BAD_PASSWORD, ROLES("invalid password")},
  {CURLUE_BAD_PATH, ROLES("invalid path")},
  {CURLUE_BAD_FILE_URL, ROLES("invalid file: path")},
  {CURLUE_BAD_QUERY, ROLES("invalid query")},
  {CURLUE_BAD_FRAGMENT, ROLES("invalid fragment")},
};
static const char *const msg_malformed[3] = ROLES("malformed input");

static const char *curl_msg (CURLUcode rc, int role) {
  size_t i;
  if (rc == CURLUE_OUT_OF_MEMORY) return msg_oom;
  for (i = 0; i < sizeof curl_msgs / sizeof curl_msgs[0]; i++)
    if (curl_msgs[i].code == rc) return curl_msgs[i].msg[role];
  return msg_malformed[role];
}

/* ---- the split of RFC 3986 appendix B --------------------------------- */

static int is_alpha (int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit (int c) { return c >= '0' && c <= '9'; }

static int is_hex (int c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void set_span (uri_parts *u, int part, size_t at, size_t len) {
  u->p[part].at = at;
  u->p[part].len = len;
  u->p[part].has = 1;
}

/* Split s into scheme ":" "//" authority path "?" query "#" fragment;
 * a missing component has has == 0 (the path is always there). */
static void split (const char *s, uri_parts *u) {
  size_t i = 0, n;
  memset(u, 0, sizeof *u);
  if (is_alpha((unsigned char)s[0])) {
    n = 1;
    while (is_alpha((unsigned char)s[n]) || is_digit((unsigned char)s[n])
           || s[n] == '+' || s[n] == '-' || s[n] == '.') n++;
    if (s[n] == ':') { set_span(u, P_SCHEME, 0, n); i = n + 1; }
  }
  if (s[i] == '/' && s[i + 1] == '/') {
    n = strcspn(s + i + 2, "/?#");
    set_span(u, P_AUTHORITY, i + 2, n);
    i += 2 + n;
  }
  n = strcspn(s + i, "?#");
  set_span(u, P_PATH, i, n);
  i += n;
  if (s[i] == '?') {
    n = strcspn(s + i + 1, "#");
    set_span(u, P_QUERY, i + 1, n);
    i += 1 + n;
  }
  if (s[i] == '#') set_span(u, P_FRAGMENT, i + 1, strlen(s + i + 1));
}

/* The component holding byte at of a split string. */
static int part_at (const uri_parts *u, size_t at) {
  int part;
  for (part = P_N - 1; part > P_SCHEME; part--)
    if (u->p[part].has && at >= u->p[part].at) return part;
  return P_SCHEME;
}

/* ---- percent-encoding ------------------------------------------------- */

static int is_unreserved (int c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_'
         || c == '~';
}

/* Bytes RFC 3986 never allows raw: space, these ASCII marks, non-ASCII. */
static int must_encode (int c) {
  return c == ' ' || c >= 0x7f || strchr("\"<>\\^`{|}", c) != NULL;
}

static int hex_value (int c) {
  if (is_digit(c)) return c - '0';
  return (c | 0x20) - 'a' + 10;
}

/* Append the bytes of s[at, at+len) to out, percent-encoding what must
 * be; with normalize, a valid %XX of an unreserved character is decoded,
 * any other gets uppercase hex, and a "%" that starts no escape becomes
 * "%25": left as it is, "%%62" would become "%b" and a second pass would
 * read that as an escape. Returns the new end of out. */
static char *encode_span (char *out, const char *s, size_t len,
                          int normalize) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%' && normalize && i + 2 < len
        && is_hex((unsigned char)s[i + 1])
        && is_hex((unsigned char)s[i + 2])) {
      int v = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
      if (is_unreserved(v)) *out++ = (char)v;
      else { *out++ = '%'; *out++ = hex[v >> 4]; *out++ = hex[v & 15]; }
      i += 2;
    }
    else if (must_encode(c) || (c == '%' && normalize)) {
      *out++ = '%'; *out++ = hex[c >> 4]; *out++ = hex[c & 15];
    }
    else *out++ = (char)c;
  }
  return out;
}

/* A "%" in the host (after any userinfo) that is not a %XX escape?
 * libcurl decodes the host's escapes, so "%1%41" would become "%1A",
 * which it then refuses: an invalid escape is refused here, at once. */
static int bad_host_escape (const char *s, const uri_parts *u) {
  const char *p = s + u->p[P_AUTHORITY].at;
  const char *end = p + u->p[P_AUTHORITY].len, *at;
  if (!u->p[P_AUTHORITY].has) return 0;
  for (at = p; at < end; at++)
    if (*at == '@') p = at + 1;
  for (; p < end; p++)
    if (*p == '%' && (end - p < 3 || !is_hex((unsigned char)p[1])
                      || !is_hex((unsigned char)p[2]))) return 1;
  return 0;
}

static int is_file (const char *s, const uri_parts *u) {
  return u->p[P_SCHEME].len == 4 && (s[0] | 0x20) == 'f'
         && (s[1] | 0x20) == 'i' && (s[2] | 0x20) == 'l'
         && (s[3] | 0x20) == 'e';
}

/* "http:///x": libcurl skips the third slash and takes "x" for the
 * host; RFC 3986 reads an empty authority, which only file: allows. */
static int empty_authority (const char *s, const uri_parts *u) {
  return u->p[P_AUTHORITY].has && u->p[P_AUTHORITY].len == 0
         && !is_file(s, u);
}

/* Check s for control characters, then return a malloc'd copy whose
 * path, query and fragment are percent-encoded where they must be (and
 * normalised with normalize; the authority too), split into u. NULL with
 * *err set on failure. */
static char *prepare (const char *s, int role, int normalize, uri_parts *u,
                      const char **err) {
  size_t i, n = strlen(s), auth_end;
  char *out, *end;
  split(s, u);
  for (i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
      *err = msg_control[part_at(u, i)][role];
      return NULL;
    }
  }
  if (bad_host_escape(s, u)) {
    *err = curl_msg(CURLUE_BAD_HOSTNAME, role);
    return NULL;
  }
  if (empty_authority(s, u)) {
    *err = curl_msg(CURLUE_NO_HOST, role);
    return NULL;
  }
  if ((out = malloc(3 * n + 1)) == NULL) { *err = msg_oom; return NULL; }
  auth_end = u->p[P_PATH].at;      /* scheme and authority end here */
  if (normalize && u->p[P_AUTHORITY].has) {
    size_t at = u->p[P_AUTHORITY].at;
    memcpy(out, s, at);
    end = encode_span(out + at, s + at, auth_end - at, 1);
  }
  else {
    memcpy(out, s, auth_end);
    end = out + auth_end;
  }
  end = encode_span(end, s + auth_end, n - auth_end, normalize);
  *end = '\0';
  split(out, u);
  return out;
}

/* ---- on libcurl ------------------------------------------------------- */

static CURLU *parse_handle (const char *s, int role, const char **err) {
  CURLU *h = curl_url();
  CURLUcode rc;
  if (h == NULL) { *err = msg_oom; return NULL; }
  rc = curl_url_set(h, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    curl_url_cleanup(h);
    *err = curl_msg(rc, role);
    return NULL;
  }
  return h;
}

static char *copy (const char *s) {
  size_t n = strlen(s) + 1;
  char *out = malloc(n);
  if (out) memcpy(out, s, n);
  return out;
}

/* h's URL as libcurl writes it, in a malloc'd copy. libcurl 7.88
 * writes "file:///" as "file://(nil)": a file: URL (never a host) is
 * put together here from its path, query and fragment instead. */
static char *url_text (CURLU *h, unsigned flags, const char **err) {
  char *scheme = NULL, *part[3] = {NULL, NULL, NULL}, *text = NULL, *out;
  static const CURLUPart parts[3] = {CURLUPART_PATH, CURLUPART_QUERY,
                                     CURLUPART_FRAGMENT};
  size_t i, n = 8;
  CURLUcode rc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
  if (rc == CURLUE_OK && strcmp(scheme, "file") != 0)
    rc = curl_url_get(h, CURLUPART_URL, &text, flags);
  else if (rc == CURLUE_OK)
    for (i = 0; i < 3; i++) {
      curl_url_get(h, parts[i], &part[i], 0);
      n += part[i] ? strlen(part[i]) + 1 : 0;
    }
  curl_free(scheme);
  if (rc != CURLUE_OK) { *err = curl_msg(rc, ROLE_URL); return NULL; }
  if ((out = malloc(text ? strlen(text) + 1 : n)) == NULL) *err = msg_oom;
  else if (text) strcpy(out, text);
  else sprintf(out, "file://%s%s%s%s%s", part[0] ? part[0] : "/",
               part[1] ? "?" : "", part[1] ? part[1] : "",
               part[2] ? "#" : "", part[2] ? part[2] : "");
  curl_free(text);
  for (i = 0; i < 3; i++) curl_free(part[i]);
  return out;
}

/* The URL of h as a malloc'd string; with empty_path, without the "/"
 * libcurl writes for an empty path (RFC 3986's results keep it empty).
 * Frees h. */
static char *get_url (CURLU *h, unsigned flags, int empty_path,
                      const char **err) {
  char *out = url_text(h, flags, err);
  curl_url_cleanup(h);
  if (out && empty_path) {
    char *auth = strstr(out, "://");
    char *slash = auth ? strchr(auth + 3, '/') : NULL;
    if (slash && (slash[1] == '\0' || slash[1] == '?' || slash[1] == '#'))
      memmove(slash, slash + 1, strlen(slash + 1) + 1);
  }
  return out;
}

/* An absolute reference with an authority: libcurl parses it alone. */
static char *join_absolute (const char *r, int empty_path,
                            const char **err) {
  CURLU *h = parse_handle(r, ROLE_REF, err);
  return h ? get_url(h, 0, empty_path, err) : NULL;
}

/* "//g": the base's scheme, then the reference, parsed as absolute. */
static char *join_network_path (const char *b, const uri_parts *bu,
                                const char *r, const uri_parts *ru,
                                const char **err) {
  size_t slen = bu->p[P_SCHEME].len, rlen = strlen(r);
  char *abs = malloc(slen + 1 + rlen + 1), *out;
  if (abs == NULL) { *err = msg_oom; return NULL; }
  memcpy(abs, b, slen);
  abs[slen] = ':';
  memcpy(abs + slen + 1, r, rlen + 1);
  out = join_absolute(abs, ru->p[P_PATH].len == 0, err);
  free(abs);
  return out;
}

/* A reference without scheme or authority. libcurl resolves paths and
 * queries; a reference that is empty or only a fragment keeps the
 * base's path and query (RFC 3986 5.2.2), which libcurl 7.88 does not. */
static char *join_relative (const char *b, const uri_parts *bu,
                            const char *r, const uri_parts *ru,
                            const char **err) {
  CURLU *h = parse_handle(b, ROLE_BASE, err);
  CURLUcode rc;
  int no_path = ru->p[P_PATH].len == 0;
  if (h == NULL) return NULL;
  if (no_path && !ru->p[P_QUERY].has) {
    const char *frag = ru->p[P_FRAGMENT].has ? r + ru->p[P_FRAGMENT].at
                                             : NULL;
    rc = curl_url_set(h, CURLUPART_FRAGMENT, frag, 0);
  }
  else rc = curl_url_set(h, CURLUPART_URL, r, CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    curl_url_cleanup(h);
    *err = curl_msg(rc, ROLE_REF);
    return NULL;
  }
  return get_url(h, 0, no_path && bu->p[P_PATH].len == 0, err);
}

static char *resolve (const char *b, const uri_parts *bu, const char *r,
                      const uri_parts *ru, const char **err) {
  char *out;
  /* "g:h", "http:g", "mailto:x": a scheme and no authority. libcurl
   * refuses them; RFC 3986 takes the reference as it is. */
  if (ru->p[P_SCHEME].has && !ru->p[P_AUTHORITY].has) {
    if ((out = copy(r)) == NULL) *err = msg_oom;
    return out;
  }
  if (ru->p[P_SCHEME].has)
    return join_absolute(r, ru->p[P_PATH].len == 0, err);
  if (ru->p[P_AUTHORITY].has)
    return join_network_path(b, bu, r, ru, err);
  return join_relative(b, bu, r, ru, err);
}

/* Is the split s an absolute URL with an authority (file: may lack
 * one)? libcurl also takes "g:/x" as having the host "x". */
static int check_absolute (const char *s, const uri_parts *u, int role,
                           const char **err) {
  if (!u->p[P_SCHEME].has) *err = msg_relative[role];
  else if (!u->p[P_AUTHORITY].has
           && (!is_file(s, u) || s[u->p[P_PATH].at] != '/'))
    *err = curl_msg(CURLUE_BAD_SLASHES, role);   /* file:/x is a path */
  else return 1;
  return 0;
}

char *luaio__url_join (const char *base, const char *ref, const char **err) {
  uri_parts bu, ru;
  char *b, *r = NULL, *out = NULL;
  if ((b = prepare(base, ROLE_BASE, 0, &bu, err)) == NULL) return NULL;
  if (check_absolute(b, &bu, ROLE_BASE, err)
      && (r = prepare(ref, ROLE_REF, 0, &ru, err)) != NULL)
    out = resolve(b, &bu, r, &ru, err);
  free(b);
  free(r);
  return out;
}

struct Curl_URL *luaio__url_parse (const char *url, const char **err) {
  uri_parts u;
  CURLU *h = NULL;
  char *s = prepare(url, ROLE_URL, 0, &u, err);
  if (s == NULL) return NULL;
  if (check_absolute(s, &u, ROLE_URL, err))
    h = parse_handle(s, ROLE_URL, err);
  free(s);
  return h;
}

char *luaio__url_rewrite (const char *url, const char **err) {
  CURLU *h = luaio__url_parse(url, err);
  return h ? get_url(h, 0, 0, err) : NULL;
}

/* Lowercase the host of h (libcurl keeps its case). 0 or a CURLUcode. */
static CURLUcode lower_host (CURLU *h) {
  char *host = NULL, *p;
  CURLUcode rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
  if (rc == CURLUE_NO_HOST) return CURLUE_OK;      /* file:///x */
  if (rc != CURLUE_OK) return rc;
  for (p = host; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
  rc = curl_url_set(h, CURLUPART_HOST, host, 0);
  curl_free(host);
  return rc;
}

/* RFC 3986 section 6.2.2 and 6.2.3: percent-encoding first (so "%2E"
 * segments are dot segments), then libcurl's parse removes dot
 * segments and lowercases the scheme; the host is lowercased here and
 * a default port left out when writing. */
char *luaio__url_normalize (const char *url, int flags, const char **err) {
  uri_parts u;
  CURLU *h = NULL;
  CURLUcode rc = CURLUE_OK;
  char *s = prepare(url, ROLE_URL, 1, &u, err);
  if (s == NULL) return NULL;
  if (check_absolute(s, &u, ROLE_URL, err))
    h = parse_handle(s, ROLE_URL, err);
  free(s);
  if (h == NULL) return NULL;
  rc = lower_host(h);
  if (rc == CURLUE_OK && (flags & LUAIO_URL_DROP_FRAGMENT))
    rc = curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
  if (rc != CURLUE_OK) {
    curl_url_cleanup(h);
    *err = curl_msg(rc, ROLE_URL);
    return NULL;
  }
  return get_url(h, CURLU_NO_DEFAULT_PORT, 0, err);
}
