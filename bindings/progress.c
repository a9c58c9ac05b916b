/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * progress.c: `luaio.progress`, progress bars that tell the truth on a
 * terminal and stay readable in a log.
 *
 * The bars drawn on one stream share a board: one uv timer (unref'd, so
 * a bar never keeps the loop alive) ticks ten times a second. On a
 * terminal the board redraws all its bars in place as one block (at
 * most once a tick, only when something changed or a second passed, so
 * rate and ETA move); in a file or a pipe, a bar writes a plain line
 * when its count changed and its interval passed, and a summary line on
 * close. No \r and no escape codes go anywhere but a terminal.
 *
 * The timer callback draws from C state only (no Lua runs there): a
 * bar's label and unit are C copies, and its stream's luaL_Stream is
 * anchored by the bar (its uservalue) and checked for being closed
 * before each write. The board, with its timer, is malloc'd and freed
 * in the timer's close callback once its last bar has gone.
 */
#include "progress.h"
#include <sys/ioctl.h>
#include <unistd.h>

#define BAR_CLASS "luaio.ProgressBar"
#define TICK_MS 100
#define FRAME_MAX 512                 /* bytes of one line */

typedef struct pboard {
  uv_timer_t timer;
  pbar *bars;                   /* oldest first */
  FILE *f;
  uint64_t last_draw;           /* tty: uv_hrtime of the last frame */
  int tty;
  int drawn;                    /* tty: lines of the block on screen */
  int dirty;                    /* tty: a bar changed since last frame */
} pboard;

static const char boards_key = 0;  /* registry: FILE* -> its board */

/* ---- writing ------------------------------------------------------------ */

/* Every bar's stream still open? A closed io file's FILE* is freed. */
static int board_writable (const pboard *bd) {
  const pbar *b;
  for (b = bd->bars; b; b = b->next)
    if (b->ls && b->ls->closef == NULL) return 0;
  return 1;
}

static int term_width (FILE *f) {
  struct winsize ws;
  if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
    return ws.ws_col;
  return 80;
}

/* Move to the start of the block and clear it and what follows. */
static void erase_block (pboard *bd) {
  if (bd->drawn == 0) return;
  fputc('\r', bd->f);
  if (bd->drawn > 1) fprintf(bd->f, "\x1b[%dA", bd->drawn - 1);
  fputs("\x1b[J", bd->f);
  bd->drawn = 0;
}

/* One line of b, cut to the terminal's width so it never wraps (which
 * would throw off the count of lines to move up). */
static void put_line (pboard *bd, const pbar *b, int mode, uint64_t now,
                      int width) {
  char line[FRAME_MAX];
  luaio__progress_line(b, mode, now, line, sizeof line);
  if (width > 0 && (int)strlen(line) > width - 1) line[width - 1] = '\0';
  fputs(line, bd->f);
}

/* Redraw the block: every bar, one line each, cursor left at the end of
 * the last one. */
static void draw_block (pboard *bd, uint64_t now) {
  int width = term_width(bd->f);
  pbar *b;
  erase_block(bd);
  for (b = bd->bars; b; b = b->next) {
    if (bd->drawn++ > 0) fputc('\n', bd->f);
    put_line(bd, b, LINE_TTY, now, width);
  }
  fflush(bd->f);
  bd->last_draw = now;
  bd->dirty = 0;
}

/* Plain mode: a line for each bar whose count moved, once its interval
 * has passed since its last line. */
static void plain_lines (pboard *bd, uint64_t now) {
  pbar *b;
  for (b = bd->bars; b; b = b->next) {
    if (b->count == b->shown || now - b->last_line < b->interval) continue;
    put_line(bd, b, LINE_PLAIN, now, 0);
    fputc('\n', bd->f);
    b->shown = b->count;
    b->last_line = now;
  }
  fflush(bd->f);
}

static void tick_cb (uv_timer_t *t) {
  pboard *bd = LUAIO_CONTAINER(t, pboard, timer);
  uint64_t now = uv_hrtime();
  if (!board_writable(bd)) return;
  if (!bd->tty) plain_lines(bd, now);
  else if (bd->dirty || now - bd->last_draw >= 1000000000u)
    draw_block(bd, now);
}

/* ---- boards ------------------------------------------------------------ */

static void board_free_cb (uv_handle_t *h) {
  free(LUAIO_CONTAINER(h, pboard, timer));
}

/* Push the registry's table of boards. [-0, +1] */
static void push_boards (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &boards_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &boards_key);
  }
}

/* The board of stream f, made (with its timer started) if need be. */
static pboard *get_board (lua_State *L, FILE *f) {
  pboard *bd;
  push_boards(L);
  bd = (pboard *)(lua_rawgetp(L, -1, f) == LUA_TLIGHTUSERDATA
                  ? lua_touserdata(L, -1) : NULL);
  lua_pop(L, 1);
  if (bd == NULL) {
    /* The slot first: setting it may fail for memory, and nothing may
     * be started by then (a later set of the same key allocates not). */
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, f);
    if ((bd = calloc(1, sizeof *bd)) == NULL) {
      lua_pushnil(L);
      lua_rawsetp(L, -2, f);
      luaL_error(L, "progress.bar: out of memory");
    }
    lua_pushlightuserdata(L, bd);
    lua_rawsetp(L, -2, f);
    bd->f = f;
    bd->tty = isatty(fileno(f));
    uv_timer_init(luaio_loop(luaio__host(L)), &bd->timer);
    uv_timer_start(&bd->timer, tick_cb, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&bd->timer);
  }
  lua_pop(L, 1);
  return bd;
}

/* Take b off its board; the last bar's leaving closes the board. */
static void board_unlink (lua_State *L, pbar *b) {
  pboard *bd = b->board;
  pbar **p = &bd->bars;
  while (*p != b) p = &(*p)->next;
  *p = b->next;
  b->board = NULL;
  if (bd->bars) return;
  push_boards(L);
  lua_pushnil(L);
  lua_rawsetp(L, -2, bd->f);
  lua_pop(L, 1);
  uv_close((uv_handle_t *)&bd->timer, board_free_cb);
}

/* The final frame (terminal) or summary (plain) of b, then unlink it.
 * On a terminal the finished bar's line stays above the live ones. */
static void board_remove (lua_State *L, pbar *b) {
  pboard *bd = b->board;
  uint64_t now = uv_hrtime();
  int ok = board_writable(bd);
  if (ok && bd->tty) {
    erase_block(bd);
    put_line(bd, b, LINE_TTY_FINAL, now, term_width(bd->f));
    fputc('\n', bd->f);
  }
  else if (ok && b->summary) {
    put_line(bd, b, LINE_SUMMARY, now, 0);
    fputc('\n', bd->f);
  }
  board_unlink(L, b);
  if (ok && bd->tty && bd->bars) draw_block(bd, now);
  if (ok) fflush(bd->f);
}

/* ---- the bar ---------------------------------------------------------- */

static pbar *check_bar (lua_State *L, const char *fname) {
  pbar *b = (pbar *)luaL_checkudata(L, 1, BAR_CLASS);
  if (b->closed) luaL_error(L, "%s: the progress bar is closed", fname);
  return b;
}

static void changed (pbar *b) {
  if (b->board) b->board->dirty = 1;
}

/* bar:close() (also <close> and collection): the final frame or summary
 * line, then the timer stops with the board's last bar. */
static int bar_close (lua_State *L) {
  pbar *b = (pbar *)luaL_checkudata(L, 1, BAR_CLASS);
  if (!b->closed) {
    b->closed = 1;
    if (b->board) board_remove(L, b);
  }
  free(b->label);
  free(b->unit);
  b->label = b->unit = NULL;
  return 0;
}

/* Check an optional count at arg: an integer >= 0, or nil (def). */
static lua_Integer check_count (lua_State *L, int arg, const char *fname,
                                const char *what, lua_Integer def) {
  lua_Integer n;
  if (lua_isnoneornil(L, arg)) return def;
  n = luaio__checkinteger(L, arg, fname);
  if (n < 0)
    luaL_error(L, "bad argument #%d to '%s' (%s must be >= 0, got %I)",
               arg, fname, what, n);
  return n;
}

/* bar:advance([n]): n more done (default 1). */
static int bar_advance (lua_State *L) {
  pbar *b = check_bar(L, "bar:advance");
  lua_Integer n = check_count(L, 2, "bar:advance", "n", 1);
  b->count = n > LUA_MAXINTEGER - b->count ? LUA_MAXINTEGER : b->count + n;
  changed(b);
  return 0;
}

/* bar:set_total(n): the total becomes n (nil: unknown). */
static int bar_set_total (lua_State *L) {
  pbar *b = check_bar(L, "bar:set_total");
  b->total = check_count(L, 2, "bar:set_total", "total", -1);
  changed(b);
  return 0;
}

static int bar_log (lua_State *L) {
  pbar *b = check_bar(L, "bar:log");
  size_t len;
  const char *msg = luaio__checkstring(L, 2, "bar:log", &len);
  pboard *bd = b->board;
  FILE *f = b->f;
  if ((b->ls && b->ls->closef == NULL) || (bd && !board_writable(bd)))
    return 0;
  if (bd && bd->tty) erase_block(bd);
  fwrite(msg, 1, len, f);
  fputc('\n', f);
  if (bd && bd->tty) draw_block(bd, uv_hrtime());
  fflush(f);
  return 0;
}

/* ---- progress.bar{...} -------------------------------------------------- */

static int opt_error (lua_State *L, const char *name, const char *msg,
                      int v) {
  return luaL_error(L, "bad argument #1 to 'progress.bar' (option '%s' %s, "
                    "got %s)", name, msg, luaL_typename(L, v));
}

/* A malloc'd copy of the string option at v. */
static char *opt_text (lua_State *L, const char *name, int v) {
  size_t len;
  const char *s;
  char *out;
  if (lua_type(L, v) != LUA_TSTRING)
    opt_error(L, name, "must be a string", v);
  s = lua_tolstring(L, v, &len);
  if (memchr(s, '\0', len) || strpbrk(s, "\r\n"))
    luaL_error(L, "bad argument #1 to 'progress.bar' (option '%s' must "
               "be one line without NUL)", name);
  if ((out = malloc(len + 1)) == NULL)
    luaL_error(L, "progress.bar: out of memory");
  memcpy(out, s, len + 1);
  return out;
}

static void opt_total (lua_State *L, pbar *b, int v) {
  int ok;
  if (lua_type(L, v) != LUA_TNUMBER) opt_error(L, "total",
                                               "must be an integer", v);
  b->total = lua_tointegerx(L, v, &ok);
  if (!ok) opt_error(L, "total", "must be an integer", v);
  if (b->total < 0)
    luaL_error(L, "bad argument #1 to 'progress.bar' (option 'total' must "
               "be >= 0, got %I)", b->total);
}

static void opt_label (lua_State *L, pbar *b, int v) {
  free(b->label);
  b->label = NULL;
  b->label = opt_text(L, "label", v);
}

static void opt_unit (lua_State *L, pbar *b, int v) {
  free(b->unit);
  b->unit = NULL;
  b->unit = opt_text(L, "unit", v);
  b->bytes = strcmp(b->unit, "B") == 0;
}

static void opt_stream (lua_State *L, pbar *b, int v) {
  luaL_Stream *ls = (luaL_Stream *)luaL_testudata(L, v, LUA_FILEHANDLE);
  if (ls == NULL) opt_error(L, "stream", "must be a file", v);
  if (ls->closef == NULL)
    luaL_error(L, "bad argument #1 to 'progress.bar' (option 'stream' is "
               "a closed file)");
  b->ls = ls;
  b->f = ls->f;
  lua_pushvalue(L, v);
  lua_setiuservalue(L, 2, 1);            /* the bar anchors its stream */
}

static void opt_interval (lua_State *L, pbar *b, int v) {
  lua_Number s = lua_tonumber(L, v);
  if (lua_type(L, v) != LUA_TNUMBER) opt_error(L, "interval",
                                               "must be a number", v);
  if (!(s > 0) || s > 1e6)
    luaL_error(L, "bad argument #1 to 'progress.bar' (option 'interval' "
               "must be > 0 seconds)");
  b->interval = (uint64_t)(s * 1e9);
}

static int opt_bool (lua_State *L, const char *name, int v) {
  if (lua_type(L, v) != LUA_TBOOLEAN) opt_error(L, name, "must be a boolean",
                                                v);
  return lua_toboolean(L, v);
}

static void opt_quiet (lua_State *L, pbar *b, int v) {
  b->quiet = (unsigned char)opt_bool(L, "quiet", v);
}

static void opt_summary (lua_State *L, pbar *b, int v) {
  b->summary = (unsigned char)opt_bool(L, "summary", v);
}

static const struct {
  const char *name;
  void (*set)(lua_State *L, pbar *b, int v);
} bar_opts[] = {
  {"total", opt_total}, {"label", opt_label}, {"unit", opt_unit},
  {"stream", opt_stream}, {"interval", opt_interval}, {"quiet", opt_quiet},
  {"summary", opt_summary},
};

/* Apply the options of the table at 1 to b (its userdata at 2). */
static void set_options (lua_State *L, pbar *b) {
  size_t i, n = sizeof bar_opts / sizeof bar_opts[0];
  lua_pushnil(L);
  while (lua_next(L, 1)) {                         /* key value */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                   : "";
    for (i = 0; i < n && strcmp(k, bar_opts[i].name) != 0; i++) {}
    if (i == n)
      luaL_error(L, "bad argument #1 to 'progress.bar' (unknown option "
                 "'%s')", luaio__tostring(L, -2));
    bar_opts[i].set(L, b, lua_gettop(L));
    lua_pop(L, 1);
  }
}

static char *empty_text (lua_State *L) {
  char *s = calloc(1, 1);
  if (s == NULL) luaL_error(L, "progress.bar: out of memory");
  return s;
}

/* progress.bar{total=, label=, unit=, stream=, interval=, quiet=,
 * summary=} -> bar. Made closed, opened once every option is valid
 * (a closed bar's __gc frees what the options copied). */
static int progress_bar (lua_State *L) {
  pbar *b;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaio__checktype(L, 1, "progress.bar", LUA_TTABLE);
  lua_settop(L, 1);
  b = (pbar *)lua_newuserdatauv(L, sizeof *b, 1);  /* 2 */
  memset(b, 0, sizeof *b);
  b->closed = 1;
  b->total = -1;
  b->summary = 1;
  b->interval = 5000000000u;
  b->f = stderr;
  luaL_setmetatable(L, BAR_CLASS);
  set_options(L, b);
  if (b->label == NULL) b->label = empty_text(L);
  if (b->unit == NULL) b->unit = empty_text(L);
  b->start = b->last_line = uv_hrtime();
  if (!b->quiet) {
    b->board = get_board(L, b->f);
    b->next = NULL;
    {
      pbar **p = &b->board->bars;                  /* oldest first */
      while (*p) p = &(*p)->next;
      *p = b;
    }
    b->board->dirty = 1;
  }
  b->closed = 0;
  return 1;
}

static lua_Number check_number (lua_State *L, const char *fname) {
  if (lua_type(L, 1) != LUA_TNUMBER) luaio__typeerror(L, 1, fname, "number");
  return lua_tonumber(L, 1);
}

/* progress.format_bytes(n) -> "1.5 MiB" */
static int progress_format_bytes (lua_State *L) {
  char buf[48];
  lua_Number n = check_number(L, "progress.format_bytes");
  if (!(n >= 0))
    return luaio__argerror(L, 1, "progress.format_bytes", "must be >= 0");
  luaio__progress_bytes(buf, sizeof buf, (double)n);
  lua_pushstring(L, buf);
  return 1;
}

/* progress.format_duration(seconds) -> "1:02:03" */
static int progress_format_duration (lua_State *L) {
  char buf[48];
  lua_Number s = check_number(L, "progress.format_duration");
  if (!(s >= 0))
    return luaio__argerror(L, 1, "progress.format_duration",
                           "must be >= 0");
  luaio__progress_duration(buf, sizeof buf, (double)s);
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg bar_methods[] = {
  {"advance", bar_advance}, {"set_total", bar_set_total}, {"log", bar_log},
  {"close", bar_close}, {NULL, NULL}
};

static const luaL_Reg progress_funcs[] = {
  {"bar", progress_bar}, {"format_bytes", progress_format_bytes},
  {"format_duration", progress_format_duration}, {NULL, NULL}
};

int luaopen_luaio_progress (lua_State *L) {
  luaio__class(L, BAR_CLASS, bar_methods, bar_close, NULL);
  luaL_newlib(L, progress_funcs);
  return 1;
}
