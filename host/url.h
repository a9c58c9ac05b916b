/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * url.h: URL resolution and normalisation on libcurl's URL API (CURLU),
 * without Lua, so every binding that handles links (luaio.url, the HTML
 * parser's doc:links()) shares one implementation and none calls another.
 *
 * Strings returned are malloc'd and NUL-terminated: free() them. Error
 * messages are static strings that name the part that is wrong and, for
 * a join, the input it is in ("invalid host", "base URL: invalid port",
 * "reference: control character in path").
 */
#ifndef LUAIO_URL_H
#define LUAIO_URL_H

struct Curl_URL;                     /* CURLU of <curl/urlapi.h> */

#define LUAIO_URL_DROP_FRAGMENT 1    /* normalize: leave out the #part */

/* Resolves ref against base (RFC 3986 section 5). Returns a malloc'd
 * NUL-terminated absolute URL, or NULL with *err set to a static message
 * naming the wrong part. */
char *luaio__url_join(const char *base, const char *ref, const char **err);

/* Normalises an absolute URL (flags: LUAIO_URL_DROP_FRAGMENT ...). Same
 * return convention. */
char *luaio__url_normalize(const char *url, int flags, const char **err);

/* Parses an absolute URL (spaces and non-ASCII bytes of path, query and
 * fragment percent-encoded first) into a new handle the caller frees
 * with curl_url_cleanup, or NULL with *err set as above. */
struct Curl_URL *luaio__url_parse(const char *url, const char **err);

/* Parses an absolute URL and writes it back as libcurl does (spaces and
 * non-ASCII bytes percent-encoded, dot segments removed); no other
 * normalisation. Same return convention as luaio__url_join. */
char *luaio__url_rewrite(const char *url, const char **err);

#endif
