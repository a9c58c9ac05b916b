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
 * Most of its time goes to Lua's API (lua_next, a type test and a
 * conversion per value), so the writer keeps its own share small: one
 * reservation for a repeated key with its ',' and ':', numbers written
 * in place, a value's type tested commonest first, values popped with
 * lua_pop (cheaper than lua_settop to an absolute index), and a table's
 * length asked only where a walk of its keys cannot tell.
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

/* Kept out of line where inlining made every caller save more registers
 * than the call costs. */
#if defined(__GNUC__)
#define JSON_NOINLINE __attribute__((noinline))
#else
#define JSON_NOINLINE
#endif

#define JSON_MAX_ENCODE_DEPTH 120    /* what yajl's generator allowed */
#define JSON_KEEP_BUFFER (1u << 20)  /* a larger buffer is freed after use */

typedef struct jbuf {
  char *p;
  size_t cap;
  lua_Alloc alloc;                   /* the state's, as Lua's own memory */
  void *ud;
} jbuf;

/* A string written before in this call, by its address: within a call
 * every string of the value stays alive and unchanged (no Lua code
 * runs), so the same address is the same text, and its JSON form can be
 * copied from where it was written. Keys repeat that way: Lua keeps one
 * object per short string. */
#define STRING_CACHE 64              /* entries, a power of two */
#define CACHED_MAX 40          /* Lua's short strings (LUAI_MAXSHORTLEN) */

typedef struct cached {
  const char *s;
  size_t off, len;                   /* its JSON form in the buffer */
} cached;

/* The text so far is p[0..len); p and cap are the buffer's (b), copied
 * here to spare a load on every write. */
typedef struct encoder {
  lua_State *L;
  char *p;
  size_t len, cap;
  jbuf *b;
  int indent;                        /* yajl's beautify: 4 spaces a level */
  cached strings[STRING_CACHE];
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
  b->cap = 0;
}

static int jbuf_gc (lua_State *L) {
  jbuf_free((jbuf *)lua_touserdata(L, 1));
  return 0;
}

static void grow (encoder *e, size_t n) {
  jbuf *b = e->b;
  size_t cap = b->cap ? b->cap : 1024;
  char *p = NULL;
  while (cap - e->len < n && cap <= (size_t)-1 / 2) cap *= 2;
  if (cap - e->len >= n)
    p = (char *)b->alloc(b->ud, b->p, b->p ? b->cap : 0, cap);
  /* Lua's own words, so out of memory reads the same wherever it hits */
  if (p == NULL) luaL_error(e->L, "json.encode: not enough memory");
  e->p = b->p = p;
  e->cap = b->cap = cap;
}

/* Room for n more bytes, at the end of the text. */
static inline char *room (encoder *e, size_t n) {
  if (e->cap - e->len < n) grow(e, n);
  return e->p + e->len;
}

/* The text now ends at o (within the room asked for). */
static inline void end_at (encoder *e, const char *o) {
  e->len = (size_t)(o - e->p);
}

static inline void put (encoder *e, const void *s, size_t n) {
  memcpy(room(e, n), s, n);
  e->len += n;
}

static inline void put_char (encoder *e, char c) {
  *room(e, 1) = c;
  e->len++;
}

#define put_lit(e, s) put((e), (s), sizeof(s) - 1)

/* ---- layout: compact, or yajl's beautified form ------------------------- */

static void put_spaces (encoder *e, int depth) {
  size_t n = 4 * (size_t)depth;
  memset(room(e, n), ' ', n);
  e->len += n;
}

/* "[" or "{" (and a newline when indenting). */
static inline void open_container (encoder *e, char c) {
  put_char(e, c);
  if (e->indent) put_char(e, '\n');
}

/* yajl's ",\n" (but before the first element) and the indent. */
static void next_indented (encoder *e, int depth, int first) {
  if (!first) put_lit(e, ",\n");
  put_spaces(e, depth + 1);
}

/* Before the first or a next element of a container at depth. */
static inline void next_element (encoder *e, int depth, int first) {
  if (e->indent) next_indented(e, depth, first);
  else if (!first) put_char(e, ',');
}

/* yajl's "\n" + indent before a "]" or "}", even of an empty one. */
static void close_indented (encoder *e, int depth) {
  put_char(e, '\n');
  put_spaces(e, depth);
}

/* "]" or "}". */
static inline void close_container (encoder *e, char c, int depth) {
  if (e->indent) close_indented(e, depth);
  put_char(e, c);
}

/* ---- scalars ------------------------------------------------------------ */

/* Written in place: its digits counted first, then put from the last. */
static void put_integer (encoder *e, lua_Integer i) {
  lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i, t;
  char *o = room(e, 21);             /* "-" and 20 digits */
  if (i < 0) *o++ = '-';
  for (t = u, o++; t >= 10; t /= 10) o++;
  end_at(e, o);
  do {
    *--o = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
}

/* Bytes that go into a JSON string as they are: printable ASCII but '"'
 * and '\\'. Control characters are escaped, bytes past ASCII checked as
 * UTF-8. */
static const unsigned char plain[256] = {
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,0,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  /* 0x80 to 0xFF: 0 */
};

/* The bytes of the 8-byte word w that are not plain (under 0x20, '"',
 * '\\' or past ASCII), as their high bit. The "has a zero byte" tests
 * may also mark a more significant byte than a marked one (a borrow),
 * never a less: the lowest mark is exact, and the result is 0 exactly
 * when all 8 are plain. */
static inline uint64_t special8 (uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t ctl = (w - ones * 0x20) & ~w;
  q = (q - ones) & ~q;
  b = (b - ones) & ~b;
  return (ctl | q | b | w) & (ones * 0x80);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_LITTLE_ENDIAN 1
#else
#define JSON_LITTLE_ENDIAN 0
#endif

/* How many plain bytes the mask m (not 0) of special8 starts with. The
 * lowest mark is the first byte on a little-endian machine; elsewhere 0,
 * and the byte loop finds it. */
static inline size_t first_special (uint64_t m) {
#if JSON_LITTLE_ENDIAN
  return (size_t)__builtin_ctzll(m) >> 3;
#else
  (void)m;
  return 0;
#endif
}

/* The r bytes at p (0 < r < 8) as a word, the bytes past them plain
 * ('a'), read with three loads within the r bytes: two that may overlap
 * (the same byte at the same place in both) for 4 to 7, a first, middle
 * and last byte for 1 to 3. Little-endian order, as special8 reads. */
static inline uint64_t load_short (const unsigned char *p, size_t r) {
  const uint64_t ones = 0x0101010101010101ull;
  uint64_t w;
  if (r >= 4) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + r - 4, 4);
    w = (uint64_t)lo | (uint64_t)hi << (8 * (r - 4));
  }
  else w = (uint64_t)p[0] | (uint64_t)p[r / 2] << (8 * (r / 2))
           | (uint64_t)p[r - 1] << (8 * (r - 1));
  return w | (ones * 'a') << (8 * r);
}

/* yajl's escapes: the short ones, else \u00XX (upper case hex). "/" and
 * DEL go as they are. */
static unsigned char *write_escape (unsigned char *o, unsigned char c) {
  static const char hex[] = "0123456789ABCDEF";
  static const char short_form[32] = {
    0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0
  };
  *o++ = '\\';
  if (c == '"' || c == '\\') *o++ = c;
  else if (short_form[c]) *o++ = (unsigned char)short_form[c];
  else {
    memcpy(o, "u00", 3);
    o[3] = (unsigned char)hex[c >> 4];
    o[4] = (unsigned char)hex[c & 15];
    o += 5;
  }
  return o;
}

#define STRING_CHUNK 4096            /* input bytes per reservation */

/* Write s[0..n) of the string that ends at end into o, which has room
 * for 6 bytes per input byte and 3 more (a UTF-8 sequence may go past
 * n). Plain bytes go 8 at a time: the word is copied whole and the
 * output advances to its first special byte. Returns the end of the
 * output and sets *next to the next input byte, or returns NULL at
 * invalid UTF-8. */
static unsigned char *write_chunk (unsigned char *o, const unsigned char *p,
                                   size_t n, const unsigned char *end,
                                   const unsigned char **next) {
  const unsigned char *stop = p + n;
  while (p < stop) {
    uint64_t w, m;
    size_t k;
    size_t r = 8;
    if (stop - p >= 8) memcpy(&w, p, 8);
    else if (JSON_LITTLE_ENDIAN) {                /* the last bytes */
      r = (size_t)(stop - p);
      w = load_short(p, r);
    }
    else w = 0;                      /* special: the byte loop takes them */
    memcpy(o, &w, 8);
    if ((m = special8(w)) == 0) {
      o += r;
      p += r;
      continue;
    }
    k = first_special(m);
    o += k;
    p += k;
    while (p < stop && plain[*p]) *o++ = *p++;
    if (p == stop) break;
    if (*p < 0x80) o = write_escape(o, *p++);
    else if ((k = luaio__utf8_seq(p, (size_t)(end - p))) == 0) return NULL;
    else {
      memcpy(o, p, k);
      o += k;
      p += k;
    }
  }
  *next = p;
  return o;
}

/* Write s as a JSON string; returns 0 (having written part of it) if s
 * is not strict UTF-8. A string under 4 KiB takes one reservation. */
JSON_NOINLINE
static int put_string (encoder *e, const unsigned char *s, size_t len) {
  const unsigned char *p = s, *end = s + len;
  do {
    size_t n = (size_t)(end - p) < STRING_CHUNK ? (size_t)(end - p)
                                                : STRING_CHUNK;
    unsigned char *o0 = (unsigned char *)room(e, 6 * n + 5), *o = o0;
    if (p == s) *o++ = '"';
    if ((o = write_chunk(o, p, n, end, &p)) == NULL) return 0;
    if (p == end) *o++ = '"';
    e->len += (size_t)(o - o0);
  } while (p < end);
  return 1;
}

/* The cache entry for the string at s (16 bytes apart: Lua's alignment). */
static inline cached *cache_slot (encoder *e, const char *s) {
  uintptr_t h = (uintptr_t)s >> 4 ^ (uintptr_t)s >> 10;
  return &e->strings[h & (STRING_CACHE - 1)];
}

#define CACHED_SLACK 15              /* room past a copy of cached text */

/* Copy c's text to o, in blocks of 16 that a compiler moves with two
 * instructions, where a memcpy of any length is a call: the caller has
 * room for CACHED_SLACK bytes past o + c->len. The blocks may read up to
 * 15 bytes past the cached text (still in the buffer, below o + c->len +
 * 15), and those bytes may be o's own: memmove, not memcpy. The bytes
 * that count were written before o and are not moved over. */
static inline char *copy_cached (encoder *e, char *o, const cached *c) {
  const char *src = e->p + c->off;
  size_t i;
  for (i = 0; i < c->len; i += 16) memmove(o + i, src + i, 16);
  return o + c->len;
}

/* put_string, or a copy of what it wrote for the same string before. */
static inline int put_short_string (encoder *e, const char *s, size_t len) {
  cached *c = cache_slot(e, s);
  size_t at;
  if (len > CACHED_MAX) return put_string(e, (const unsigned char *)s, len);
  if (c->s == s) {
    end_at(e, copy_cached(e, room(e, c->len + CACHED_SLACK), c));
    return 1;
  }
  at = e->len;
  if (!put_string(e, (const unsigned char *)s, len)) return 0;
  c->s = s;
  c->off = at;
  c->len = e->len - at;
  return 1;
}

/* ---- floats ------------------------------------------------------------- */

static const double tens[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
  1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* "m / 10^k" (m > 0) in fixed notation, trailing zeros of the fraction
 * dropped but one ("2.0"), as printf's %g (then ".0") writes it. The
 * digits are counted first, then written from the last. */
static size_t fixed_text (char *out, int neg, uint64_t m, int k) {
  char *o = out, *end;
  uint64_t t;
  int n = 1, i;
  while (k > 0 && m % 10 == 0) {               /* 2.50 -> 2.5 */
    m /= 10;
    k--;
  }
  for (t = m; t >= 10; t /= 10) n++;
  if (neg) *o++ = '-';
  if (n <= k) {                                /* 0.00ddd */
    *o++ = '0';
    *o++ = '.';
    for (i = n; i < k; i++) *o++ = '0';
    k = n + 1;                                 /* no point among them */
    o = end = o + n;
  }
  else {                                       /* ddd.ddd or ddd.0 */
    o = end = o + n + 1 + (k == 0);
    if (k == 0) *--o = '0';
  }
  for (i = 0; i < n; i++, m /= 10) {
    if (i == k) *--o = '.';
    *--o = (char)('0' + m % 10);
  }
  return (size_t)(end - out);
}

/* The shortest decimal of at most 15 digits that reads back as v, for
 * 1e-4 <= |v| < 1e15 (where %g writes fixed notation), or 0 if none.
 * m / 10^k reads back as v exactly when the division, correctly rounded
 * like strtod, gives v: m < 2^53 and 10^k (k <= 22) are exact. Such a
 * decimal is the one %.15g prints (two are further apart than v's ulp),
 * and it is found (a * 10^k is off its integer by far less than 0.5). */
static size_t short_double (char *out, double v) {
  double a = fabs(v), m;
  int k;
  for (k = 0; k <= 22; k++) {
    double s = a * tens[k];
    if (s >= 1e15) return 0;
    m = nearbyint(s);
    if (m / tens[k] == a) return fixed_text(out, v < 0, (uint64_t)m, k);
  }
  return 0;
}

/* ---- floats of 16 or 17 digits, exactly ---------------------------------
 * a = f * 2^e (f < 2^53) times 10^k is f * 5^k * 2^(e+k): for
 * 1e-4 <= a < 1e15 and k <= 22 that fits in 128 bits, so the decimal
 * rounding printf does ("%.16g", "%.17g") and strtod's test (is m / 10^k
 * within half a gap of a?) are exact integer arithmetic here. */

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;

static const uint64_t pow5[] = {
  1ull, 5ull, 25ull, 125ull, 625ull, 3125ull, 15625ull, 78125ull,
  390625ull, 1953125ull, 9765625ull, 48828125ull, 244140625ull,
  1220703125ull, 6103515625ull, 30517578125ull, 152587890625ull,
  762939453125ull, 3814697265625ull, 19073486328125ull,
  95367431640625ull, 476837158203125ull, 2384185791015625ull
};

static const uint64_t pow10u[] = {
  1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
  10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
  100000000000ull, 1000000000000ull, 10000000000000ull,
  100000000000000ull, 1000000000000000ull, 10000000000000000ull,
  100000000000000000ull
};

/* f * 2^e * 10^k rounded to an integer, half to even (as glibc's printf
 * in the default rounding mode). */
static uint64_t scaled_round (uint64_t f, int e, int k) {
  u128 t = (u128)f * pow5[k], q, r, half;
  int sh = e + k;
  if (sh >= 0) return (uint64_t)(t << sh);
  q = t >> -sh;
  r = t - (q << -sh);
  half = (u128)1 << (-sh - 1);
  if (r > half || (r == half && (q & 1))) q++;
  return (uint64_t)q;
}

/* The p-digit decimal nearest to f * 2^e: m / 10^k, m of p digits; *k
 * comes in as a guess (off by one at most). 0 if k leaves the tables. */
static uint64_t round_digits (uint64_t f, int e, int p, int *k) {
  for (;;) {
    uint64_t m;
    if (*k < 0 || *k > 22) return 0;
    m = scaled_round(f, e, *k);
    if (m < pow10u[p - 1]) (*k)++;
    else if (m > pow10u[p]) (*k)--;
    else if (m == pow10u[p]) {                /* 9.99.. rounded up */
      (*k)--;
      return pow10u[p - 1];
    }
    else return m;
  }
}

/* Does m / 10^k read back as f * 2^e (normal, f >= 2^52)? Within half
 * the gap to either neighbour, a tie going to the even f; the gap below
 * a power of two is half the gap above. Scaled by 4 * 10^k * 2^-e. */
static int reads_back (uint64_t f, int e, uint64_t m, int k) {
  int sh = e + k;
  u128 d = (u128)m << 2, t = ((u128)f * pow5[k]) << 2;
  u128 up = (u128)pow5[k] << 1, down, diff;
  if (sh >= 0) {
    t <<= sh;
    up <<= sh;
  }
  else d <<= -sh;
  down = f == (1ull << 52) ? up >> 1 : up;
  diff = d >= t ? d - t : t - d;
  if (d >= t) return diff < up || (diff == up && f % 2 == 0);
  return diff < down || (diff == down && f % 2 == 0);
}

/* The %.16g text of v if it reads back, else the %.17g text, for
 * 1e-4 <= |v| < 1e15 (0 elsewhere): what the printf loop below writes,
 * without printf or strtod. */
static size_t exact_double (char *out, double v) {
  double a = fabs(v);
  int e, k, x;
  uint64_t f, m;
  if (!(a >= 1e-4 && a < 1e15)) return 0;
  f = (uint64_t)ldexp(frexp(a, &e), 53);
  e -= 53;
  x = (int)floor(log10(a));
  k = 15 - x;
  m = round_digits(f, e, 16, &k);
  if (m == 0 || !reads_back(f, e, m, k)) {
    k = 16 - x;
    m = round_digits(f, e, 17, &k);
  }
  return m == 0 ? 0 : fixed_text(out, v < 0, m, k);
}
#else
static size_t exact_double (char *out, double v) {  /* printf does it */
  (void)out;
  (void)v;
  return 0;
}
#endif

/* The shortest %g form that reads back as the same double, with ".0"
 * kept on integral values so a float stays a float. */
static size_t format_double (char *buf, size_t size, double v) {
  size_t n;
  int prec;
  if (v == 0) {
    strcpy(buf, signbit(v) ? "-0.0" : "0.0");
    return strlen(buf);
  }
  if (fabs(v) >= 1e-4 && fabs(v) < 1e15) {
    if ((n = short_double(buf, v)) != 0) return n;
    if ((n = exact_double(buf, v)) != 0) return n;
  }
  for (prec = 15; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (strpbrk(buf, ".eEn") == NULL) strncat(buf, ".0", size - strlen(buf) - 1);
  return strlen(buf);
}

/* The number at idx. A float's text is written in place: format_double
 * writes at most 26 bytes ("-", %.17g's 17 digits, ".", "e-308"). */
static void put_number (encoder *e, int idx) {
  double v;
  char *o;
  if (lua_isinteger(e->L, idx)) {
    put_integer(e, lua_tointeger(e->L, idx));
    return;
  }
  v = (double)lua_tonumber(e->L, idx);
  if (isnan(v) || isinf(v)) encode_fail(e->L, "cannot encode NaN or infinity");
  o = room(e, 64);
  e->len += format_double(o, 64, v);
}

/* ---- values and tables -------------------------------------------------- */

static void encode_table (encoder *e, int idx, int depth);

#define MIXED "table mixes keys or has holes or non-string keys"
#define STACK_LEVELS 8               /* levels per luaL_checkstack */

/* json.null (a NULL light userdata), else an error naming the type. */
static void encode_other (encoder *e, int idx, int type) {
  lua_State *L = e->L;
  if (type == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) {
    put_lit(e, "null");
    return;
  }
  lua_pushfstring(L, "cannot encode a %s", lua_typename(L, type));
  encode_fail(L, lua_tostring(L, -1));
}

/* The value at idx, the top of the stack. A table's walk uses the stack
 * above idx and leaves it as it found it: the callers pop the value
 * alone. Inline in the loops over elements, which call it for every
 * one: a table is the one case that calls back out. */
static inline void encode_value (encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  size_t len;
  const char *s;
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING) {         /* the commonest first */
    s = lua_tolstring(L, idx, &len);
    if (!put_short_string(e, s, len))
      encode_fail(L, "string is not valid UTF-8");
  }
  else if (type == LUA_TNUMBER) put_number(e, idx);
  else if (type == LUA_TTABLE) encode_table(e, idx, depth);
  else if (type == LUA_TBOOLEAN) {
    if (lua_toboolean(L, idx)) put_lit(e, "true");
    else put_lit(e, "false");
  }
  else if (type == LUA_TNIL) put_lit(e, "null");
  else encode_other(e, idx, type);
}

/* A table is always encoded at the top of the stack (idx): its key goes
 * at idx + 1 and its value at idx + 2 (an object's) or idx + 1 (an
 * array's), so no index needs asking for. */

/* Are the keys, from the first (a number, on the stack with its value),
 * n integers from 1 to n? Then the table is the sequence 1..n. Counting
 * numbers was not enough: {1, nil, 3, [10] = x} has 3 number keys and a
 * length of 3, and its x was dropped without a word. */
static int sequence_keys (encoder *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  lua_Integer count = 0;
  do {
    int is_int;
    lua_Integer k;
    lua_settop(L, idx + 1);
    k = lua_tointegerx(L, idx + 1, &is_int);
    if (!is_int || lua_type(L, idx + 1) != LUA_TNUMBER || k < 1 || k > n)
      return 0;
    count++;
  } while (lua_next(L, idx));
  return count == n;
}

static void encode_array (encoder *e, int idx, int depth, lua_Integer n) {
  lua_Integer i;
  open_container(e, '[');
  for (i = 1; i <= n; i++) {
    next_element(e, depth, i == 1);
    lua_rawgeti(e->L, idx, i);
    encode_value(e, idx + 1, depth + 1);
    lua_pop(e->L, 1);
  }
  close_container(e, ']', depth);
}

/* Forget the strings written at or past off (the text there is undone). */
static void forget_strings_from (encoder *e, size_t off) {
  int i;
  for (i = 0; i < STRING_CACHE; i++)
    if (e->strings[i].s != NULL && e->strings[i].off + e->strings[i].len > off)
      e->strings[i].s = NULL;
}

/* Undo what encode_array_walk wrote from start. */
static int undo_array (encoder *e, int idx, size_t start) {
  e->len = start;
  forget_strings_from(e, start);
  lua_settop(e->L, idx);
  return 0;
}

/* The common case in one walk: lua_next gives a sequence's keys 1, 2, ...
 * in order (they live in the table's array part), so each is checked as
 * its value is written. Keys 1..n in that order, and no other, are
 * exactly the sequence 1..n; its length (a border, as # gives) can only
 * be n, so it need not be asked. At the first key out of that order it
 * undoes what it wrote and returns 0: the caller then checks all keys
 * first. The first key and its value are on the stack. */
static int encode_array_walk (encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  size_t start = e->len;
  lua_Integer i = 0;
  open_container(e, '[');
  do {
    if (!lua_isinteger(L, idx + 1) || lua_tointeger(L, idx + 1) != ++i)
      return undo_array(e, idx, start);
    next_element(e, depth, i == 1);
    encode_value(e, idx + 2, depth + 1);
    lua_pop(L, 1);                   /* the value: its key on top again */
  } while (lua_next(L, idx));
  close_container(e, ']', depth);
  return 1;
}

/* An object member's start: next_element, the key and ':' (yajl's ": "
 * when beautifying); 0 if the key is not valid UTF-8. Compact, a key
 * written before (the keys of an array of objects) takes one
 * reservation for all three. */
static inline int put_key (encoder *e, const char *k, size_t len, int depth,
                           int first) {
  cached *c = cache_slot(e, k);
  char *o;
  if (e->indent || c->s != k) {
    next_element(e, depth, first);
    if (!put_short_string(e, k, len)) return 0;
    if (e->indent) put_lit(e, ": ");
    else put_char(e, ':');
    return 1;
  }
  o = room(e, 1 + c->len + 1 + CACHED_SLACK);
  *o = ',';                          /* written over when first */
  o = copy_cached(e, o + !first, c);
  *o++ = ':';
  end_at(e, o);
  return 1;
}

/* The first key, of type key_type, and its value are on the stack. */
static void encode_object (encoder *e, int idx, int depth, int key_type) {
  lua_State *L = e->L;
  int first = 1;
  open_container(e, '{');
  for (;;) {
    size_t len;
    const char *k;
    if (key_type != LUA_TSTRING) encode_fail(L, MIXED);
    k = lua_tolstring(L, idx + 1, &len);
    if (!put_key(e, k, len, depth, first))
      encode_fail(L, "key is not valid UTF-8");
    first = 0;
    encode_value(e, idx + 2, depth + 1);
    lua_pop(L, 1);                   /* the value: its key on top again */
    if (!lua_next(L, idx)) break;
    key_type = lua_type(L, idx + 1);
  }
  close_container(e, '}', depth);
}

/* A sequence 1..n is an array; a table of string keys an object (unless
 * it has a length or json.array's metatable); an empty table either, by
 * the metatable. Anything else is refused before any of it is written;
 * an object's non-string key when it is met. */
JSON_NOINLINE
static void encode_table (encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  lua_Integer n;
  int key_type;
  if (depth > JSON_MAX_ENCODE_DEPTH)
    encode_fail(L, "nesting too deep (a cycle?)");
  /* Key and value a level, and room for an error. The depth limit keeps
   * this far below Lua's stack limit, so a refusal is want of memory. */
  if (depth % STACK_LEVELS == 0 && !lua_checkstack(L, 2 * STACK_LEVELS + 8))
    luaL_error(L, "json.encode: not enough memory");
  lua_pushnil(L);
  if (!lua_next(L, idx)) {
    int arr = luaio__json_has_array_mt(L, idx);
    open_container(e, arr ? '[' : '{');
    close_container(e, arr ? ']' : '}', depth);
  }
  else if ((key_type = lua_type(L, idx + 1)) == LUA_TNUMBER) {
    if (encode_array_walk(e, idx, depth)) return;
    n = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    if (!lua_next(L, idx) || !sequence_keys(e, idx, n)) encode_fail(L, MIXED);
    lua_settop(L, idx);
    encode_array(e, idx, depth, n);
  }
  else if (lua_rawlen(L, idx) > 0 || luaio__json_has_array_mt(L, idx))
    encode_fail(L, MIXED);
  else encode_object(e, idx, depth, key_type);
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
  e.p = e.b->p;
  e.cap = e.b->cap;
  e.len = 0;
  memset(e.strings, 0, sizeof e.strings);
  encode_value(&e, 1, 0);
  if (e.indent) put_char(&e, '\n');            /* yajl ends with one */
  lua_pushlstring(L, e.p, e.len);
  if (e.b->cap > JSON_KEEP_BUFFER) jbuf_free(e.b);
  return 1;
}

void luaio__json_open_encode (lua_State *L) {
  jbuf *b = (jbuf *)lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->cap = 0;
  b->alloc = lua_getallocf(L, &b->ud);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -2, "encode");
}
