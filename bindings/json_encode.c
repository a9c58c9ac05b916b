/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * json_encode.c: json.encode, writing JSON text straight into one
 * growing buffer.
 *
 * It went through yajl's generator before: a call, a state check and a
 * buffer append per token, UTF-8 checked twice, a generator, a userdata
 * and a metatable made per call, and floats printed by trying
 * printf("%.15g"), "%.16g", "%.17g" with strtod after each. That took
 * 1.5x lua-cjson's time on the HTTP benchmark's document. The text is
 * the same byte for byte as yajl's (compact, or yajl's beautified form
 * with {indent = true}); decoding stays on yajl (json.c).
 *
 * The buffer belongs to the encode function (an upvalue userdata freed
 * by its __gc), so an error raised half way leaks nothing and the next
 * call reuses the memory. Encoding runs no Lua code: the only API calls
 * that may run a finalizer (pushing the result, raising an error) come
 * after the last write.
 */
#include "json.h"
#include <math.h>
#include <stdint.h>

#define JSON_MAX_ENCODE_DEPTH 120    /* what yajl's generator allowed */
#define JSON_KEEP_BUFFER (1u << 20)  /* a larger buffer is freed after use */

typedef struct jbuf {
  char *p;
  size_t len, cap;
  lua_Alloc alloc;                   /* the state's, as Lua's own memory */
  void *ud;
} jbuf;

typedef struct encoder {
  lua_State *L;
  jbuf *b;
  const void *array_mt;              /* json.array's metatable */
  int indent;                        /* yajl's beautify: 4 spaces a level */
} encoder;

static int encode_fail (lua_State *L, const char *msg) {
  lua_pushfstring(L, "json.encode: %s", msg);
  luaio_push_error(L, "json", NULL, lua_tostring(L, -1));
  return luaio_raise(L);
}

/* ---- the buffer --------------------------------------------------------- */

static void jbuf_free (jbuf *b) {
  if (b->p) b->alloc(b->ud, b->p, b->cap, 0);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int jbuf_gc (lua_State *L) {
  jbuf_free((jbuf *)lua_touserdata(L, 1));
  return 0;
}

static void grow (encoder *e, size_t n) {
  jbuf *b = e->b;
  size_t cap = b->cap ? b->cap : 1024;
  char *p;
  while (cap - b->len < n) {
    if (cap > (size_t)-1 / 2) luaL_error(e->L, "json.encode: out of memory");
    cap *= 2;
  }
  p = (char *)b->alloc(b->ud, b->p, b->p ? b->cap : 0, cap);
  if (p == NULL) luaL_error(e->L, "json.encode: out of memory");
  b->p = p;
  b->cap = cap;
}

/* Room for n more bytes, at the end of the text. */
static inline char *room (encoder *e, size_t n) {
  if (e->b->cap - e->b->len < n) grow(e, n);
  return e->b->p + e->b->len;
}

static inline void put (encoder *e, const void *s, size_t n) {
  memcpy(room(e, n), s, n);
  e->b->len += n;
}

static inline void put_char (encoder *e, char c) {
  *room(e, 1) = c;
  e->b->len++;
}

#define put_lit(e, s) put((e), (s), sizeof(s) - 1)

/* ---- layout: compact, or yajl's beautified form ------------------------- */

static void put_spaces (encoder *e, int depth) {
  size_t n = 4 * (size_t)depth;
  memset(room(e, n), ' ', n);
  e->b->len += n;
}

/* "[" or "{" (and a newline when indenting). */
static void open_container (encoder *e, char c) {
  put_char(e, c);
  if (e->indent) put_char(e, '\n');
}

/* Before the first or a next element of a container at depth. */
static void next_element (encoder *e, int depth, int first) {
  if (!first) put_char(e, ',');
  if (e->indent) {
    if (!first) put_char(e, '\n');
    put_spaces(e, depth + 1);
  }
}

/* "]" or "}": yajl's "\n" + indent even when the container is empty. */
static void close_container (encoder *e, char c, int depth) {
  if (e->indent) {
    put_char(e, '\n');
    put_spaces(e, depth);
  }
  put_char(e, c);
}

/* ---- scalars ------------------------------------------------------------ */

static void put_integer (encoder *e, lua_Integer i) {
  char tmp[24], *p = tmp + sizeof tmp;
  lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (i < 0) *--p = '-';
  put(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* Bytes that go into a JSON string as they are: printable ASCII but '"'
 * and '\\'. Control characters are escaped, bytes past ASCII checked as
 * UTF-8. */
static const unsigned char plain[256] = {
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,0,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
};

/* yajl's escapes: the short ones, else \u00XX (upper case hex). "/" and
 * DEL go as they are. */
static void put_escape (encoder *e, unsigned char c) {
  static const char hex[] = "0123456789ABCDEF";
  char u[6] = {'\\', 'u', '0', '0', 0, 0};
  switch (c) {
    case '"': put_lit(e, "\\\""); return;
    case '\\': put_lit(e, "\\\\"); return;
    case '\b': put_lit(e, "\\b"); return;
    case '\f': put_lit(e, "\\f"); return;
    case '\n': put_lit(e, "\\n"); return;
    case '\r': put_lit(e, "\\r"); return;
    case '\t': put_lit(e, "\\t"); return;
  }
  u[4] = hex[c >> 4];
  u[5] = hex[c & 15];
  put(e, u, sizeof u);
}

/* Write s as a JSON string, runs of plain bytes and valid UTF-8 at once;
 * returns 0 (having written part of it) if s is not strict UTF-8. */
static int put_string (encoder *e, const unsigned char *s, size_t len) {
  size_t i = 0, start, k;
  room(e, len + 2);
  put_char(e, '"');
  while (i < len) {
    for (start = i; i < len; ) {
      if (plain[s[i]]) i++;
      else if (s[i] < 0x80) break;
      else if ((k = luaio__utf8_seq(s + i, len - i)) != 0) i += k;
      else return 0;
    }
    put(e, s + start, i - start);
    if (i < len) put_escape(e, s[i++]);
  }
  put_char(e, '"');
  return 1;
}

/* ---- floats ------------------------------------------------------------- */

static const double tens[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
  1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* "m / 10^k" in fixed notation, trailing zeros of the fraction dropped
 * but one ("2.0"), as printf's %g (then ".0") writes it. */
static size_t fixed_text (char *out, int neg, uint64_t m, int k) {
  char dig[24];
  int n = 0, lo = 0, i, lead;
  size_t len = 0;
  do {
    dig[n++] = (char)('0' + m % 10);        /* least significant first */
    m /= 10;
  } while (m != 0);
  while (k > 0 && dig[lo] == '0' && n - lo > 1) {   /* 2.50 -> 2.5 */
    lo++;
    k--;
  }
  if (neg) out[len++] = '-';
  lead = n - lo > k ? n - lo - k : 0;       /* digits before the point */
  if (lead == 0) out[len++] = '0';
  for (i = n - 1; i >= n - lead; i--) out[len++] = dig[i];
  out[len++] = '.';
  if (k == 0) out[len++] = '0';
  for (i = n - lo; i < k; i++) out[len++] = '0';   /* 0.00ddd */
  for (i = n - lead - 1; i >= lo; i--) out[len++] = dig[i];
  return len;
}

/* The shortest decimal of at most 16 digits that reads back as v, for
 * 1e-4 <= |v| < 1e15 (where %g writes fixed notation), or 0 if none is
 * found. m / 10^k reads back as v exactly when the division, correctly
 * rounded like strtod, gives v: m < 2^53 and 10^k (k <= 22) are exact.
 * A decimal of at most 15 digits that reads back is the one %.15g
 * prints (two such are further apart than v's ulp), and it is found
 * (a * 10^k is off its integer by far less than 0.5), so the text is
 * the same as the printf loop's below. */
static size_t short_double (char *out, double v) {
  double a = fabs(v), m;
  int k;
  if (!(a >= 1e-4 && a < 1e15)) return 0;
  for (k = 0; k <= 22; k++) {
    double s = a * tens[k];
    if (s >= 9007199254740992.0) return 0;   /* 2^53 */
    m = nearbyint(s);
    if (m / tens[k] == a) return fixed_text(out, v < 0, (uint64_t)m, k);
  }
  return 0;
}

/* The shortest %g form that reads back as the same double, with ".0"
 * kept on integral values so a float stays a float. */
static size_t format_double (char *buf, size_t size, double v) {
  size_t n;
  int prec;
  if (v == 0) {
    strcpy(buf, signbit(v) ? "-0.0" : "0.0");
    return strlen(buf);
  }
  if ((n = short_double(buf, v)) != 0) return n;
  for (prec = 15; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (strpbrk(buf, ".eEn") == NULL) strncat(buf, ".0", size - strlen(buf) - 1);
  return strlen(buf);
}

static void put_number (encoder *e, int idx) {
  char buf[64];
  double v;
  if (lua_isinteger(e->L, idx)) {
    put_integer(e, lua_tointeger(e->L, idx));
    return;
  }
  v = (double)lua_tonumber(e->L, idx);
  if (isnan(v) || isinf(v)) encode_fail(e->L, "cannot encode NaN or infinity");
  put(e, buf, format_double(buf, sizeof buf, v));
}

/* ---- tables ------------------------------------------------------------- */

static void encode_value (encoder *e, int idx, int depth);

#define MIXED "table mixes keys or has holes or non-string keys"

/* Is the table at idx a sequence (array) to encode as [...]? 1 yes, 0 an
 * object, -1 neither. */
static int is_array (encoder *e, int idx) {
  lua_State *L = e->L;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  int mt_array = 0;
  if (lua_getmetatable(L, idx)) {
    mt_array = lua_topointer(L, -1) == e->array_mt;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      if (mt_array || n > 0) return -1;          /* mixed keys */
      return 0;
    }
    count++;
  }
  if (count == 0) return mt_array;
  return count == n ? 1 : -1;
}

static void encode_array (encoder *e, int idx, int depth) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(e->L, idx);
  open_container(e, '[');
  for (i = 1; i <= n; i++) {
    next_element(e, depth, i == 1);
    lua_rawgeti(e->L, idx, i);
    encode_value(e, lua_gettop(e->L), depth + 1);
    lua_pop(e->L, 1);
  }
  close_container(e, ']', depth);
}

static void encode_object (encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  int first = 1;
  open_container(e, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len;
    const char *k;
    if (lua_type(L, -2) != LUA_TSTRING) encode_fail(L, MIXED);
    k = lua_tolstring(L, -2, &len);
    next_element(e, depth, first);
    first = 0;
    if (!put_string(e, (const unsigned char *)k, len))
      encode_fail(L, "key is not valid UTF-8");
    put_char(e, ':');
    if (e->indent) put_char(e, ' ');
    encode_value(e, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  close_container(e, '}', depth);
}

static void encode_table (encoder *e, int idx, int depth) {
  int arr;
  if (depth > JSON_MAX_ENCODE_DEPTH)
    encode_fail(e->L, "nesting too deep (a cycle?)");
  luaL_checkstack(e->L, 4, "json.encode");
  arr = is_array(e, idx);
  if (arr < 0) encode_fail(e->L, MIXED);
  if (arr) encode_array(e, idx, depth);
  else encode_object(e, idx, depth);
}

static void encode_value (encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_lit(e, "null"); break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put_lit(e, "true");
      else put_lit(e, "false");
      break;
    case LUA_TNUMBER: put_number(e, idx); break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (!put_string(e, (const unsigned char *)s, len))
        encode_fail(L, "string is not valid UTF-8");
      break;
    }
    case LUA_TTABLE: encode_table(e, idx, depth); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { put_lit(e, "null"); break; }
      /* fall through */
    default:
      lua_pushfstring(L, "cannot encode a %s", luaL_typename(L, idx));
      encode_fail(L, lua_tostring(L, -1));
  }
}

/* json.encode(value [, {indent = true}]) -> text */
static int json_encode (lua_State *L) {
  encoder e;
  e.indent = 0;
  luaL_checkany(L, 1);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "indent");
    e.indent = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  e.L = L;
  e.b = (jbuf *)lua_touserdata(L, lua_upvalueindex(1));
  e.b->len = 0;
  luaio__json_array_mt(L);
  e.array_mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  encode_value(&e, 1, 0);
  if (e.indent) put_char(&e, '\n');            /* yajl ends with one */
  lua_pushlstring(L, e.b->p, e.b->len);
  if (e.b->cap > JSON_KEEP_BUFFER) jbuf_free(e.b);
  return 1;
}

void luaio__json_open_encode (lua_State *L) {
  jbuf *b = (jbuf *)lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->len = b->cap = 0;
  b->alloc = lua_getallocf(L, &b->ud);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -2, "encode");
}
