/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * perm_curl.c: the sandbox's net checks inside libcurl. Checking the
 * URL before the request is not enough: curl follows redirects, and a
 * name may resolve anywhere. So in a sandbox each transfer gets three
 * callbacks, all answered from the allow-lists without touching Lua:
 *   - CURLOPT_RESOLVER_START_FUNCTION: before each DNS lookup (the first
 *     URL and every redirect), the URL's host and port by name, so a
 *     refused name is not even looked up;
 *   - CURLOPT_OPENSOCKETFUNCTION: before each connect, the address DNS
 *     gave (a public name resolving to 127.0.0.1 is refused), with no
 *     packet sent to a refused one;
 *   - CURLOPT_PREREQFUNCTION: before each request is sent, the URL's
 *     host by name and the connected address again, which covers a
 *     connection curl reuses (no lookup, no connect then).
 * A refusal records what was refused in the request's luaio_perm_curl
 * and fails the transfer; the binding raises the permission error.
 */
#include "private.h"
#include <curl/curl.h>

/* Is the host and port of url (a proxy: flags guess the scheme) allowed
 * by name? If not, "host:port" is put in pc->denied. */
static int url_allowed_flags (luaio_perm_curl *pc, const char *url,
                              unsigned flags) {
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL;
  int ok = 0;
  if (u && curl_url_set(u, CURLUPART_URL, url, flags) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
        CURLUE_OK) {
    size_t n = strlen(host);
    if (host[0] == '[' && n > 2) { memmove(host, host + 1, n - 2);
                                   host[n - 2] = '\0'; }
    ok = luaio__perm_name(pc->h, host, atoi(port));
    if (!ok) snprintf(pc->denied, sizeof pc->denied,
                      strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
  }
  else snprintf(pc->denied, sizeof pc->denied, "%s", url);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

static int url_allowed (luaio_perm_curl *pc, const char *url) {
  return url_allowed_flags(pc, url, 0);
}

void luaio__perm_proxy (lua_State *L, const char *proxy) {
  luaio_perm_curl pc;
  pc.h = luaio_host_of(L);
  if (pc.h == NULL || pc.h->perm == NULL) return;
  pc.denied[0] = '\0';
  if (!url_allowed_flags(&pc, proxy, CURLU_GUESS_SCHEME |
                         CURLU_NON_SUPPORT_SCHEME))
    luaio__perm_curl_raise(L, &pc);
}

static int current_url_allowed (luaio_perm_curl *pc) {
  char *url = NULL;
  curl_easy_getinfo((CURL *)pc->easy, CURLINFO_EFFECTIVE_URL, &url);
  return url == NULL || url_allowed(pc, url);
}

static int resolver_start_cb (void *state, void *reserved, void *clientp) {
  (void)state; (void)reserved;
  return current_url_allowed((luaio_perm_curl *)clientp) ? 0 : 1;
}

static curl_socket_t opensocket_cb (void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  luaio_perm_curl *pc = (luaio_perm_curl *)clientp;
  (void)purpose;
  if (luaio__perm_addr(pc->h, &a->addr) != 0) {
    luaio__perm_last_addr(pc->h, pc->denied, sizeof pc->denied);
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype, a->protocol);
}

static int prereq_cb (void *clientp, char *ip, char *local_ip, int port,
                      int local_port) {
  luaio_perm_curl *pc = (luaio_perm_curl *)clientp;
  (void)local_ip; (void)local_port;
  if (!current_url_allowed(pc)) return CURL_PREREQFUNC_ABORT;
  if (!luaio__perm_ip(pc->h, ip, port)) {
    luaio__perm_last_addr(pc->h, pc->denied, sizeof pc->denied);
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

void luaio__perm_curl (lua_State *L, luaio_perm_curl *pc, void *easy,
                       const char *url) {
  CURL *e = (CURL *)easy;
  pc->h = luaio_host_of(L);
  pc->easy = easy;
  pc->denied[0] = '\0';
  if (pc->h == NULL || pc->h->perm == NULL) return;
  if (!url_allowed(pc, url)) luaio__perm_curl_raise(L, pc);
  curl_easy_setopt(e, CURLOPT_RESOLVER_START_FUNCTION, resolver_start_cb);
  curl_easy_setopt(e, CURLOPT_RESOLVER_START_DATA, pc);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, pc);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, pc);
}

int luaio__perm_curl_raise (lua_State *L, luaio_perm_curl *pc) {
  if (pc->h == NULL || pc->h->perm == NULL || pc->denied[0] == '\0')
    return 0;
  luaio__perm_push_error(L, "net", pc->denied, NULL);
  return luaio_raise(L);
}
