/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html_url.c: reference resolution for doc:links() until the shared one
 * of host/url.c (luaio.url) lands; then this file goes. On libcurl's URL
 * API, which resolves a reference against the URL it holds (except
 * an empty reference or a fragment alone, which curl 7.88 takes as "."
 * where RFC 3986 keeps the base's path and query).
 */
#include "html.h"
#include <curl/curl.h>

char *luaio__url_join (const char *base, const char *ref, const char **err) {
  CURLU *u = curl_url();
  char *out = NULL, *copy = NULL;
  unsigned flags = CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE;
  *err = "invalid URL";
  if (u == NULL) return *err = "out of memory", NULL;
  if (ref[0] == '\0' || ref[0] == '#') ref = base;      /* RFC 3986 5.2.2 */
  if (curl_url_set(u, CURLUPART_URL, base, flags) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, ref, flags) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
    copy = strdup(out);
    *err = copy ? NULL : "out of memory";
  }
  curl_free(out);
  curl_url_cleanup(u);
  return copy;
}
