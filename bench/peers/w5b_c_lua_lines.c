/* W5b floor: a C line splitter handing each line to a Lua loop as a
 * string (what a C-implemented lines() can at best do).
 * usage: w5b_c_lua_lines PATH */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* next(state) -> line or nil: reads 64 KiB chunks, splits in C. */
typedef struct reader { FILE *f; char buf[1 << 17]; size_t start, len; } reader;

static int next_line (lua_State *L) {
  reader *r = lua_touserdata(L, lua_upvalueindex(1));
  for (;;) {
    char *p = memchr(r->buf + r->start, '\n', r->len);
    if (p) {
      size_t n = (size_t)(p - (r->buf + r->start));
      lua_pushlstring(L, r->buf + r->start, n);
      r->start += n + 1;
      r->len -= n + 1;
      return 1;
    }
    memmove(r->buf, r->buf + r->start, r->len);
    r->start = 0;
    {
      size_t got = fread(r->buf + r->len, 1, sizeof r->buf - r->len, r->f);
      if (got == 0) {
        if (r->len == 0) return 0;
        lua_pushlstring(L, r->buf, r->len);
        r->len = 0;
        return 1;
      }
      r->len += got;
    }
  }
}

int main (int argc, char **argv) {
  lua_State *L = luaL_newstate();
  reader *r;
  double t0;
  if (argc < 2) return 2;
  luaL_openlibs(L);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  r->f = fopen(argv[1], "rb");
  r->start = r->len = 0;
  if (!r->f) return 1;
  lua_pushcclosure(L, next_line, 1);
  lua_setglobal(L, "next_line");
  t0 = now();
  if (luaL_dostring(L, "local n, b = 0, 0 for l in next_line do n = n + 1; "
                       "b = b + #l + 1 end return n, b"))
    return 1;
  printf("W5b c-lua %.0f MB/s lines=%lld\n",
         lua_tonumber(L, -1) / (now() - t0) / 1e6, (long long)lua_tointeger(L, -2));
  return 0;
}
