/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * perm.c: the sandbox's permission model. luaio_new copies the allow-
 * lists of luaio_config.sandbox (paths resolved once); the checks below
 * are what bindings and the wrapped standard library call at each entry
 * point. A path is resolved the way the kernel will walk it (every
 * symlink followed, dangling ones too, ".." after them) before it is
 * compared, so neither a symlink inside an allowed folder nor "../.."
 * leads out. perm_lib.c wraps the standard library, perm_curl.c
 * libcurl's callbacks.
 */
#include "private.h"
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINKS 40                      /* as the kernel's ELOOP */

typedef struct net_rule {
  char host[256];                         /* lowercase name or IP text */
  int port;                               /* -1: any */
  int family;                             /* AF_INET(6) for an IP */
  unsigned char addr[16];
} net_rule;

struct luaio_perm {
  char **read, **write, **run, **env;     /* NULL-terminated, owned */
  net_rule *net;
  size_t nnet;
  int env_all;
  char last_addr[64];                     /* the last address refused */
};

/* ---- resolving paths ---------------------------------------------------- */

/* Append component c (len n) to the resolved path res (rlen): 0, or
 * -ENAMETOOLONG. */
static int push_comp (char *res, size_t *rlen, const char *c, size_t n) {
  if (*rlen + 1 + n >= PATH_MAX) return -ENAMETOOLONG;
  res[(*rlen)++] = '/';
  memcpy(res + *rlen, c, n);
  *rlen += n;
  res[*rlen] = '\0';
  return 0;
}

static void pop_comp (char *res, size_t *rlen) {
  while (*rlen > 0 && res[--(*rlen)] != '/') {}
  res[*rlen] = '\0';
}

/* res/c is a symlink: put its target in front of what is left (rest, at
 * p) and restart from the root for an absolute one. 0 or -errno. */
static int follow_link (char *res, size_t *rlen, char *rest, char **p) {
  char target[PATH_MAX], tmp[PATH_MAX * 2];
  ssize_t n = readlink(res, target, sizeof target - 1);
  if (n < 0) return -errno;
  target[n] = '\0';
  pop_comp(res, rlen);                    /* res/c -> res */
  if (target[0] == '/') { *rlen = 0; res[0] = '\0'; }
  if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s", target, *p) >= sizeof tmp)
    return -ENAMETOOLONG;
  strcpy(rest, tmp);
  *p = rest;
  return 0;
}

/* Resolve path into out (PATH_MAX): absolute, no ".", "..", symlink or
 * double slash; components that do not exist are kept as written. 0, or
 * -errno (ELOOP, ENAMETOOLONG, a failed getcwd). */
static int resolve (const char *path, char *out) {
  char rest[PATH_MAX * 2], *p = rest;
  size_t rlen = 0;
  int links = 0, missing = 0, rc;
  out[0] = '\0';
  if (strlen(path) >= PATH_MAX) return -ENAMETOOLONG;
  if (path[0] != '/') {
    if (getcwd(out, PATH_MAX) == NULL) return -errno;
    rlen = strcmp(out, "/") == 0 ? 0 : strlen(out);
    out[rlen] = '\0';
  }
  strcpy(rest, path);
  while (*p) {
    char *c = p;
    size_t n = strcspn(c, "/");
    struct stat st;
    p = c[n] ? c + n + 1 : c + n;
    if (n == 0 || (n == 1 && c[0] == '.')) continue;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
      pop_comp(out, &rlen);
      continue;
    }
    if ((rc = push_comp(out, &rlen, c, n)) < 0) return rc;
    if (missing || lstat(out, &st) != 0) { missing = 1; continue; }
    if (!S_ISLNK(st.st_mode)) continue;
    if (++links > MAX_LINKS) return -ELOOP;
    if ((rc = follow_link(out, &rlen, rest, &p)) < 0) return rc;
  }
  if (rlen == 0) strcpy(out, "/");
  return 0;
}

/* Is the resolved path under (or equal to) one of roots? */
static int under (char *const *roots, const char *path) {
  for (; roots && *roots; roots++) {
    size_t n = strlen(*roots);
    if (strcmp(*roots, "/") == 0) return 1;
    if (strncmp(path, *roots, n) == 0 && (path[n] == '\0' || path[n] == '/'))
      return 1;
  }
  return 0;
}

/* ---- network rules ------------------------------------------------------ */

/* An IP address in text into family/addr (IPv4-mapped IPv6 as IPv4):
 * 1, or 0 if text is not one. */
static int parse_ip (const char *text, int *family, unsigned char *addr) {
  static const unsigned char mapped[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
  if (inet_pton(AF_INET, text, addr) == 1) { *family = AF_INET; return 1; }
  if (inet_pton(AF_INET6, text, addr) != 1) return 0;
  *family = AF_INET6;
  if (memcmp(addr, mapped, 12) == 0) {
    memmove(addr, addr + 12, 4);
    *family = AF_INET;
  }
  return 1;
}

/* The port after a colon: 0, or -1 if malformed. */
static int parse_port (const char *s, int *port) {
  char *e;
  long v = strtol(s, &e, 10);
  if (*e || e == s || *s == '-' || *s == '+' || v < 0 || v > 65535)
    return -1;
  *port = (int)v;
  return 0;
}

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address into
 * r: 0, or -1 if malformed. */
static int parse_rule (const char *s, net_rule *r) {
  const char *hs = s, *he = s + strlen(s), *colon = strchr(s, ':');
  size_t i, n;
  r->port = -1;
  if (s[0] == '[') {
    if ((he = strchr(s, ']')) == NULL) return -1;
    hs = s + 1;
    if (he[1] && (he[1] != ':' || parse_port(he + 2, &r->port) < 0))
      return -1;
  }
  else if (colon && strchr(colon + 1, ':') == NULL) {   /* not bare IPv6 */
    he = colon;
    if (parse_port(colon + 1, &r->port) < 0) return -1;
  }
  n = (size_t)(he - hs);
  if (n == 0 || n >= sizeof r->host) return -1;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)hs[i];
    if (ch <= ' ' || ch >= 127 || strchr("/@[]?#*\\", ch)) return -1;
    r->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  r->host[n] = '\0';
  r->family = 0;
  parse_ip(r->host, &r->family, r->addr);
  return 0;
}

/* Loopback, private, link-local, unspecified, multicast or reserved:
 * what a host name in the allow-list does not cover (a name that
 * resolves there is DNS pointing inside the machine or its network). */
static int is_internal (int family, const unsigned char *a) {
  if (family == AF_INET)
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
           (a[0] == 100 && (a[1] & 0xc0) == 64) ||
           (a[0] == 169 && a[1] == 254) ||
           (a[0] == 172 && (a[1] & 0xf0) == 16) ||
           (a[0] == 192 && a[1] == 168);
  return (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0x80) == 0x80) ||
         a[0] == 0xff || memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15) == 0;
}

static int is_loopback (int family, const unsigned char *a) {
  static const unsigned char one[16] = {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1};
  return family == AF_INET ? a[0] == 127 : memcmp(a, one, 16) == 0;
}

static int same_ip (const net_rule *r, int family, const unsigned char *a) {
  return r->family == family &&
         memcmp(r->addr, a, family == AF_INET ? 4 : 16) == 0;
}

/* May a connection go to address a:port? An IP rule allows itself,
 * "localhost" loopback addresses, any other name public addresses only
 * (its own name was checked before the lookup). */
static int addr_allowed (struct luaio_perm *p, int family,
                         const unsigned char *a, int port) {
  size_t i;
  for (i = 0; i < p->nnet; i++) {
    const net_rule *r = &p->net[i];
    if (r->port >= 0 && r->port != port) continue;
    if (r->family) { if (same_ip(r, family, a)) return 1; }
    else if (strcmp(r->host, "localhost") == 0) {
      if (is_loopback(family, a)) return 1;
    }
    else if (!is_internal(family, a)) return 1;
  }
  return 0;
}

/* May the script name host (and port; -1: any)? */
static int name_allowed (struct luaio_perm *p, const char *host, int port) {
  net_rule q;
  size_t i;
  if (parse_rule(host, &q) != 0 || q.port >= 0) return 0;
  for (i = 0; i < p->nnet; i++) {
    const net_rule *r = &p->net[i];
    if (port >= 0 && r->port >= 0 && r->port != port) continue;
    if (q.family ? (same_ip(r, q.family, q.addr) ||
                    (strcmp(r->host, "localhost") == 0 &&
                     is_loopback(q.family, q.addr)))
                 : (!r->family && strcmp(r->host, q.host) == 0))
      return 1;
  }
  return 0;
}

/* ---- the lists ---------------------------------------------------------- */

static void strv_free (char **v) {
  char **s;
  for (s = v; s && *s; s++) free(*s);
  free(v);
}

/* Copy a NULL-terminated list; paths (all, or those with a slash when
 * resolve is 2) resolved. NULL out of memory (*ok = 0). */
static char **strv_copy (const char *const *src, int resolve_paths,
                         int *ok) {
  size_t n = 0, i;
  char **v;
  while (src && src[n]) n++;
  if ((v = calloc(n + 1, sizeof *v)) == NULL) { *ok = 0; return NULL; }
  for (i = 0; i < n; i++) {
    char buf[PATH_MAX];
    const char *s = src[i];
    if ((resolve_paths == 1 || (resolve_paths == 2 && strchr(s, '/'))) &&
        resolve(s, buf) == 0)
      s = buf;
    if ((v[i] = strdup(s)) == NULL) { strv_free(v); *ok = 0; return NULL; }
  }
  return v;
}

const char *luaio_sandbox_invalid (const luaio_sandbox *sb) {
  const char *const *s;
  net_rule r;
  for (s = sb ? sb->net : NULL; s && *s; s++)
    if (parse_rule(*s, &r) != 0) return *s;
  return NULL;
}

int luaio__perm_new (luaio_host *h, const luaio_sandbox *sb) {
  struct luaio_perm *p = calloc(1, sizeof *p);
  size_t n = 0;
  int ok = 1;
  if (p == NULL || luaio_sandbox_invalid(sb)) { free(p); return -1; }
  h->perm = p;
  p->read = strv_copy(sb->read, 1, &ok);
  p->write = strv_copy(sb->write, 1, &ok);
  p->run = strv_copy(sb->run, 2, &ok);
  p->env = strv_copy(sb->env, 0, &ok);
  p->env_all = sb->env_all;
  while (sb->net && sb->net[n]) n++;
  p->net = calloc(n + 1, sizeof *p->net);
  if (p->net == NULL) ok = 0;
  for (p->nnet = 0; ok && p->nnet < n; p->nnet++)
    parse_rule(sb->net[p->nnet], &p->net[p->nnet]);
  return ok ? 0 : -1;
}

void luaio__perm_free (luaio_host *h) {
  struct luaio_perm *p = h->perm;
  if (p == NULL) return;
  strv_free(p->read);
  strv_free(p->write);
  strv_free(p->run);
  strv_free(p->env);
  free(p->net);
  free(p);
  h->perm = NULL;
}

/* ---- checks ------------------------------------------------------------- */

static struct luaio_perm *perm_of (lua_State *L) {
  luaio_host *h = luaio_host_of(L);
  return h ? h->perm : NULL;
}

int luaio__sandboxed (lua_State *L) { return perm_of(L) != NULL; }

void luaio__perm_push_error (lua_State *L, const char *what,
                             const char *target, const char *detail) {
  luaL_checkstack(L, 4, NULL);
  if (detail)
    lua_pushfstring(L, "permission denied: %s '%s' (%s)", what, target,
                    detail);
  else
    lua_pushfstring(L, "permission denied: %s '%s' (run with --allow-%s=%s)",
                    what, target, what, target);
  luaio_push_error(L, "permission", NULL, lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushstring(L, what);
  lua_setfield(L, -2, "permission");
  lua_pushstring(L, target);
  lua_setfield(L, -2, "target");
}

static int raise_denied (lua_State *L, const char *what, const char *target,
                         const char *detail) {
  luaio__perm_push_error(L, what, target, detail);
  return luaio_raise(L);
}

/* Resolve and check path; the resolved path is pushed. [-0, +1] */
static const char *check_resolved (lua_State *L, struct luaio_perm *p,
                                   const char *path, int access) {
  char buf[PATH_MAX];
  int rc = resolve(path, buf);
  const char *what = NULL;
  if (rc < 0)
    return luaio_raise_uv(L, rc, "resolve", "path", path), NULL;
  if ((access & LUAIO_PERM_READ) && !under(p->read, buf)) what = "read";
  else if ((access & LUAIO_PERM_WRITE) && !under(p->write, buf))
    what = "write";
  if (what && strcmp(buf, path) != 0) {
    lua_pushfstring(L, "it resolves to '%s'; run with --allow-%s=%s", buf,
                    what, buf);
    raise_denied(L, what, path, lua_tostring(L, -1));
  }
  if (what) raise_denied(L, what, buf, NULL);
  return lua_pushstring(L, buf);
}

const char *luaio__perm_arg (lua_State *L, int arg, int access) {
  struct luaio_perm *p = perm_of(L);
  if (p == NULL) return lua_tostring(L, arg);
  arg = lua_absindex(L, arg);
  check_resolved(L, p, lua_tostring(L, arg), access);
  lua_replace(L, arg);
  return lua_tostring(L, arg);
}

int luaio__perm_allows (lua_State *L, const char *path, int access) {
  struct luaio_perm *p = perm_of(L);
  char buf[PATH_MAX];
  if (p == NULL) return 1;
  if (resolve(path, buf) < 0) return 0;
  return (!(access & LUAIO_PERM_READ) || under(p->read, buf)) &&
         (!(access & LUAIO_PERM_WRITE) || under(p->write, buf));
}

/* The real path of fd into real (PATH_MAX); 0 if it has none (a pipe,
 * say, or no /proc). */
int luaio__fd_path (int fd, char *real) {
  char link[64];
  ssize_t n;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  if ((n = readlink(link, real, PATH_MAX - 1)) < 0 || real[0] != '/')
    return 0;
  real[n] = '\0';
  return 1;
}

int luaio__perm_fd_ok (luaio_host *h, int fd) {
  struct luaio_perm *p = h->perm;
  char real[PATH_MAX];
  if (p == NULL || !luaio__fd_path(fd, real)) return 1;
  return under(p->read, real) || under(p->write, real);
}

void luaio__perm_fd (lua_State *L, int fd) {
  luaio_host *h = luaio_host_of(L);
  char real[PATH_MAX];
  if (h == NULL || luaio__perm_fd_ok(h, fd)) return;
  luaio__fd_path(fd, real);
  raise_denied(L, "read", real, NULL);
}

void luaio__perm_push_path_error (lua_State *L, const char *path) {
  luaio__perm_push_error(L, "read", path ? path : "?", "a folder on its "
                         "way was swapped for a link out of the allowed "
                         "ones during the call");
}

void luaio__perm_path (lua_State *L, const char *path, int access) {
  struct luaio_perm *p = perm_of(L);
  if (p == NULL) return;
  check_resolved(L, p, path, access);
  lua_pop(L, 1);
}

/* "host:port", "[v6]:port" or "host" (port < 0). [-0, +1] */
static const char *push_hostport (lua_State *L, const char *host, int port) {
  int v6 = strchr(host, ':') != NULL && host[0] != '[';
  if (port < 0) return lua_pushstring(L, host);
  return lua_pushfstring(L, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

int luaio__perm_name (luaio_host *h, const char *host, int port) {
  return h->perm == NULL || name_allowed(h->perm, host, port);
}

int luaio__perm_ip (luaio_host *h, const char *ip, int port) {
  struct luaio_perm *p = h->perm;
  unsigned char a[16];
  int family;
  if (p == NULL) return 1;
  if (parse_ip(ip, &family, a) && addr_allowed(p, family, a, port))
    return 1;
  snprintf(p->last_addr, sizeof p->last_addr,
           strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
  return 0;
}

void luaio__perm_last_addr (luaio_host *h, char *buf, size_t size) {
  snprintf(buf, size, "%s", h->perm ? h->perm->last_addr : "");
}

void luaio__perm_net (lua_State *L, const char *host, int port) {
  struct luaio_perm *p = perm_of(L);
  if (p == NULL || name_allowed(p, host, port)) return;
  raise_denied(L, "net", push_hostport(L, host, port), NULL);
}

int luaio__perm_addr (luaio_host *h, const struct sockaddr *sa) {
  struct luaio_perm *p = h->perm;
  unsigned char a[16];
  char text[48];
  int family = sa->sa_family, port;
  if (p == NULL) return 0;
  if (family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    memcpy(a, &s4->sin_addr, 4);
    port = ntohs(s4->sin_port);
  }
  else if (family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
    parse_ip(text, &family, a);
    port = ntohs(s6->sin6_port);
  }
  else return LUAIO_EDENIED;
  if (addr_allowed(p, family, a, port)) return 0;
  inet_ntop(family, a, text, sizeof text);
  snprintf(p->last_addr, sizeof p->last_addr,
           family == AF_INET6 ? "[%s]:%d" : "%s:%d", text, port);
  return LUAIO_EDENIED;
}

/* The permission error for a connection to target refused at its
 * address (luaio_raise_uv with LUAIO_EDENIED). [-0, +1] */
void luaio__perm_push_addr_error (lua_State *L, const char *target) {
  struct luaio_perm *p = perm_of(L);
  const char *addr = p && p->last_addr[0] ? p->last_addr : "?";
  lua_pushfstring(L, "its address %s is not allowed: run with "
                  "--allow-net=%s", addr, addr);
  luaio__perm_push_error(L, "net", target ? target : addr,
                         lua_tostring(L, -1));
  lua_remove(L, -2);
}

void luaio__perm_run (lua_State *L, const char *prog) {
  struct luaio_perm *p = perm_of(L);
  char buf[PATH_MAX];
  char **r;
  if (p == NULL) return;
  if (strchr(prog, '/') && resolve(prog, buf) == 0) {
    for (r = p->run; r && *r; r++) if (strcmp(*r, buf) == 0) return;
  }
  else for (r = p->run; r && *r; r++) if (strcmp(*r, prog) == 0) return;
  raise_denied(L, "run", prog, NULL);
}

void luaio__perm_env (lua_State *L, const char *name) {
  struct luaio_perm *p = perm_of(L);
  char **e;
  if (p == NULL || p->env_all) return;
  for (e = p->env; e && *e; e++) if (strcmp(*e, name) == 0) return;
  raise_denied(L, "env", name, NULL);
}
