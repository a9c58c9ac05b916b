/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * json.h: what the two files of `luaio.json` share: the decoder and the
 * module (json.c) and the encoder (json_encode.c) check UTF-8 the same
 * way and mark arrays with the same metatable.
 */
#ifndef LUAIO_JSON_H
#define LUAIO_JSON_H

#include "../host/host.h"

/* Push the metatable that marks a table as a JSON array (one per state,
 * in the registry; json.array sets it, decoded empty arrays carry it). */
void luaio__json_array_mt(lua_State *L);

/* Does the table at idx (an absolute index) carry that metatable? Makes
 * nothing, so it may run while json.encode writes (no allocation, no
 * finalizer). */
int luaio__json_has_array_mt(lua_State *L, int idx);

/* Set field "encode" of the module table on top of the stack. */
void luaio__json_open_encode(lua_State *L);

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0.
 * Strict (RFC 3629): no overlong forms, no UTF-16 surrogates, nothing
 * past U+10FFFF. Inline: the encoder calls it for every non-ASCII
 * character. */
static inline size_t luaio__utf8_seq (const unsigned char *p, size_t n) {
  unsigned char c = p[0], lo = 0x80, hi = 0xBF;
  size_t len, i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;                      /* overlong */
    if (c == 0xED) hi = 0x9F;                      /* surrogates */
  }
  else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;                      /* overlong */
    if (c == 0xF4) hi = 0x8F;                      /* past U+10FFFF */
  }
  else return 0;
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (i = 2; i < len; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return len;
}

#endif
