/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * repl.c: the luaio program's REPL. Each entry runs as a task, so it may
 * wait; the prompt returns when it finishes. While the prompt waits the
 * loop keeps running (input arrives through libuv), so tasks, timers and
 * servers started at the prompt keep going.
 *
 * On a terminal, lines are edited with libedit's readline-compatible
 * callback interface (el_gets would block the loop), driven by a
 * uv_poll_t on fd 0; history is kept in ~/.luaio_history. Other input
 * is read without editing: a pipe (or a terminal when stdout is not one)
 * as a libuv stream, anything else with uv_fs_read on the thread pool.
 */
#include "cli.h"
#include <lauxlib.h>
#include <lualib.h>
#include <editline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HISTORY_LINES 1000

typedef struct buf { char *p; size_t n, cap; } buf;

enum { R_LINE, R_ENTRY, R_EOF };      /* what read_entry waits for */
enum { IN_TTY, IN_STREAM, IN_FILE };  /* how stdin is read */

typedef struct repl {
  cli *c;
  lua_State *L;
  int in;                 /* IN_TTY, IN_STREAM or IN_FILE */
  int state;              /* R_LINE, R_ENTRY or R_EOF */
  int status;             /* exit status when a signal ended it, or -1 */
  int reading;            /* a pipe or file read is in flight */
  int eof;                /* no more input after pending */
  union {                 /* freed in the close callback */
    uv_poll_t poll;       /* IN_TTY */
    uv_stream_t stream;   /* IN_STREAM: a pipe, or a terminal not edited */
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  uv_fs_t req;            /* IN_FILE */
  char rbuf[4096];
  buf pending;            /* IN_STREAM, IN_FILE: read, not yet a line */
  buf src;                /* the entry typed so far */
  char *history;          /* the history file, or NULL */
  int completer;          /* registry ref of the completion function */
  char **matches;         /* completions not yet handed to libedit */
  size_t nmatches, next;
  int closing;            /* torn down: a late file read frees it */
} repl;

/* libedit's callbacks carry no pointer; a program has one REPL. */
static repl *the_repl;

static void drop_matches (repl *r);

static void buf_add (buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL) { fputs("luaio: out of memory\n", stderr); abort(); }
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void buf_drop (buf *b, size_t n) {
  memmove(b->p, b->p + n, b->n - n);
  b->n -= n;
  b->p[b->n] = '\0';
}

/* ---- compiling an entry ---------------------------------------------- */

/* Does the load error mean the chunk is only incomplete? */
static int incomplete (lua_State *L, int status) {
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  return status == LUA_ERRSYNTAX && n >= 5 &&
         strcmp(msg + n - 5, "<eof>") == 0;
}

static int load_text (lua_State *L, const char *prefix, const char *s) {
  int status;
  lua_pushfstring(L, "%s%s", prefix, s);
  status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1),
                           "=stdin");
  lua_remove(L, -2);
  return status;
}

/* Compile an entry as lua.c does, first as an expression whose values are
 * printed ("= expr" too), then as statements. A top-level `local` is
 * tried as a global first, so the next entries (and completion) see it.
 * Pushes the function or the error; returns the load status. */
static int compile (lua_State *L, const char *src) {
  const char *s = src + strspn(src, " \t");
  if (*s == '=') return load_text(L, "return ", s + 1);
  if (load_text(L, "return ", s) == LUA_OK) return LUA_OK;
  lua_pop(L, 1);
  if (strncmp(s, "local", 5) == 0 && (s[5] == ' ' || s[5] == '\t')) {
    if (load_text(L, "", s + 5) == LUA_OK) return LUA_OK;
    lua_pop(L, 1);
  }
  return load_text(L, "", src);
}

/* ---- running an entry ------------------------------------------------ */

/* Print the n values on L's top with Lua's print, popping them. */
static void print_values (lua_State *L, int n) {
  lua_getglobal(L, "print");
  lua_insert(L, -(n + 1));
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* Run the entry as a task and print what it returns, or its error. Other
 * tasks progress meanwhile; Ctrl-C cancels this entry only. */
static void run_entry (repl *r) {
  cli *c = r->c;
  lua_State *L = r->L;
  luaio_task *t;
  int status;
  if (compile(L, r->src.p) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return;
  }
  t = luaio_spawn(L, 0);
  c->main_task = t;
  status = luaio_run_until(c->h, t);
  if (status == LUAIO_DEADLOCK) {
    fprintf(stderr, "deadlock: the entry waits but nothing is left that "
            "could wake it\n");
    luaio_task_cancel(t);
    status = luaio_run_until(c->h, t);
  }
  c->main_task = NULL;
  c->signo = 0;
  c->forced = 0;
  c->cancelled = 0;
  if (luaio_exit_code(c->h) < 0) {          /* after os.exit: nothing */
    if (status == LUAIO_OK) {
      int n = luaio_task_push_results(L, t);
      if (n > 0) print_values(L, n);
    }
    else fprintf(stderr, "%s\n", luaio_task_error(t));
  }
  luaio_task_release(t);
}

/* ---- lines in -------------------------------------------------------- */

static void prompt (repl *r, const char *p);
static void on_readline (char *line);
static void prompt_signal (cli *c);

/* A line of the entry came in (NULL: end of input). */
static void got_line (repl *r, const char *line) {
  lua_State *L = r->L;
  int status;
  if (line == NULL) {
    fputc('\n', stdout);          /* as lua.c, after the prompt */
    r->state = R_EOF;
    return;
  }
  if (r->src.n) buf_add(&r->src, "\n", 1);
  buf_add(&r->src, line, strlen(line));
  status = compile(L, r->src.p);
  if (incomplete(L, status)) {
    lua_pop(L, 1);
    prompt(r, ">> ");
    return;
  }
  lua_pop(L, 1);
  r->state = R_ENTRY;
}

static void on_readline (char *line) {
  repl *r = the_repl;
  rl_callback_handler_remove();
  got_line(r, line);
  free(line);
}

static void poll_cb (uv_poll_t *p, int status, int events) {
  (void)p; (void)status; (void)events;
  rl_callback_read_char();
}

static void alloc_cb (uv_handle_t *h, size_t size, uv_buf_t *b) {
  repl *r = (repl *)h->data;
  (void)size;
  *b = uv_buf_init(r->rbuf, sizeof r->rbuf);
}

static void got_bytes (repl *r, ssize_t n) {
  r->reading = 0;
  if (n > 0) buf_add(&r->pending, r->rbuf, (size_t)n);
  else r->eof = 1;                               /* end or error */
}

static void stream_read_cb (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n == 0) return;                            /* EAGAIN */
  uv_read_stop(s);
  got_bytes((repl *)s->data, n);
}

static void repl_free (repl *r) {
  drop_matches(r);
  free(r->pending.p);
  free(r->src.p);
  free(r->history);
  free(r);
}

static void file_read_cb (uv_fs_t *req) {
  repl *r = (repl *)req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (r->closing) repl_free(r);
  else got_bytes(r, n);
}

/* Untyped input: hand over one buffered line (or the end) and return 1,
 * or start a read for more and return 0. */
static int next_line (repl *r) {
  char *nl = r->pending.n ? memchr(r->pending.p, '\n', r->pending.n) : NULL;
  if (nl || (r->eof && r->pending.n)) {
    size_t len = nl ? (size_t)(nl - r->pending.p) : r->pending.n;
    char *line = malloc(len + 1);
    if (line == NULL) { fputs("luaio: out of memory\n", stderr); abort(); }
    memcpy(line, r->pending.p, len);
    line[len] = '\0';
    buf_drop(&r->pending, nl ? len + 1 : len);
    got_line(r, line);
    free(line);
    return 1;
  }
  if (r->eof) { got_line(r, NULL); return 1; }
  r->reading = 1;
  if (r->in == IN_STREAM)
    uv_read_start(&r->u.stream, alloc_cb, stream_read_cb);
  else {
    uv_buf_t b = uv_buf_init(r->rbuf, sizeof r->rbuf);
    r->req.data = r;
    if (uv_fs_read(luaio_loop(r->c->h), &r->req, 0, &b, 1, -1,
                   file_read_cb) != 0)
      r->reading = 0, r->eof = 1;
  }
  return 0;
}

static void prompt (repl *r, const char *p) {
  if (r->in == IN_TTY) {
    rl_callback_handler_install(p, on_readline);
    return;
  }
  fputs(p, stdout);
  fflush(stdout);
}

/* Read lines until they make an entry (or the input ends), running the
 * loop meanwhile: this is where background tasks progress. */
static void read_entry (repl *r) {
  uv_loop_t *loop = luaio_loop(r->c->h);
  r->src.n = 0;
  if (r->src.p) r->src.p[0] = '\0';
  r->state = R_LINE;
  prompt(r, "> ");
  if (r->in == IN_TTY) uv_poll_start(&r->u.poll, UV_READABLE, poll_cb);
  r->c->at_prompt = 1;
  if (r->c->signo) prompt_signal(r->c);    /* came between two entries */
  while (r->state == R_LINE && luaio_exit_code(r->c->h) < 0) {
    if (r->in != IN_TTY && !r->reading && next_line(r)) continue;
    uv_run(loop, UV_RUN_ONCE);
  }
  r->c->at_prompt = 0;
  if (r->in == IN_TTY) uv_poll_stop(&r->u.poll);
}

/* Ctrl-C at the prompt drops the entry typed so far; SIGTERM ends. */
static void prompt_signal (cli *c) {
  repl *r = (repl *)c->repl;
  int signo = c->signo;
  c->signo = 0;
  c->forced = 0;
  if (signo != SIGINT) {
    r->status = cli_signal_status(signo);
    r->state = R_EOF;
    if (r->in == IN_TTY) rl_callback_handler_remove();
    return;
  }
  r->src.n = 0;
  if (r->src.p) r->src.p[0] = '\0';
  if (r->in == IN_TTY) {
    rl_callback_handler_remove();
    rl_replace_line("", 0);
  }
  fputc('\n', stdout);
  prompt(r, "> ");
}

/* ---- completion of globals and table fields --------------------------- */

/* Candidates for a word like "aio.sl" or "s:up": the fields of the
 * tables along the path (raw reads, so no metamethod runs), then those
 * of the __index tables of their metatables. */
static const char completer_src[] =
  "local text = ...\n"
  "local path, sep, prefix = text:match('^(.-)([.:]?)([%w_]*)$')\n"
  "local t = _G\n"
  "if sep ~= '' then\n"
  "  for name in path:gmatch('[^.:]+') do\n"
  "    if type(t) ~= 'table' then return {} end\n"
  "    t = rawget(t, name)\n"
  "  end\n"
  "  path = path .. sep\n"
  "else path = '' end\n"
  "local out, seen = {}, {}\n"
  "for _ = 1, 8 do\n"
  "  if type(t) == 'table' then\n"
  "    for k, v in next, t do\n"
  "      if type(k) == 'string' and not seen[k] and k:find('^[%a_][%w_]*$')\n"
  "         and k:sub(1, #prefix) == prefix\n"
  "         and (sep ~= ':' or type(v) == 'function') then\n"
  "        seen[k] = true\n"
  "        out[#out + 1] = path .. k\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "  local mt = debug.getmetatable(t)\n"
  "  t = type(mt) == 'table' and rawget(mt, '__index') or nil\n"
  "  if t == nil then break end\n"
  "end\n"
  "table.sort(out)\n"
  "return out\n";

static void drop_matches (repl *r) {
  while (r->next < r->nmatches) free(r->matches[r->next++]);
  free(r->matches);
  r->matches = NULL;
  r->nmatches = r->next = 0;
}

/* Run the completer on text; keep its candidates as C strings. */
static void find_matches (repl *r, const char *text) {
  lua_State *L = r->L;
  int top = lua_gettop(L);
  size_t i, n;
  drop_matches(r);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->completer);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    n = (size_t)lua_rawlen(L, -1);
    r->matches = calloc(n ? n : 1, sizeof *r->matches);
    for (i = 0; r->matches && i < n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      r->matches[i] = strdup(lua_tostring(L, -1));
      lua_pop(L, 1);
      if (r->matches[i] == NULL) break;
    }
    r->nmatches = r->matches ? i : 0;
  }
  lua_settop(L, top);
}

/* libedit asks for the matches one at a time; state 0 starts over. */
static char *next_match (const char *text, int state) {
  repl *r = the_repl;
  if (state == 0) find_matches(r, text);
  if (r->next < r->nmatches) return r->matches[r->next++];
  drop_matches(r);
  return NULL;
}

static char **complete (const char *text, int start, int end) {
  (void)start; (void)end;
  rl_attempted_completion_over = 1;     /* never file names */
  return rl_completion_matches(text, next_match);
}

/* ---- output while the prompt waits ----------------------------------- */

/* print() from a background task while the prompt waits: clear the
 * prompt line, print, and draw the prompt and the typed text again, so
 * output and input do not mix on one line. */
static int prompt_print (lua_State *L) {
  repl *r = the_repl;
  int redraw = r && r->in == IN_TTY && r->c->at_prompt;
  int n = lua_gettop(L);
  if (redraw) fputs("\r\033[K", stdout);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 0);
  if (redraw) rl_forced_update_display();
  return 0;
}

static void wrap_print (lua_State *L) {
  lua_getglobal(L, "print");
  lua_pushcclosure(L, prompt_print, 1);
  lua_setglobal(L, "print");
}

/* ---- setup and teardown ---------------------------------------------- */

static char *history_path (void) {
  const char *p = getenv("LUAIO_HISTORY"), *home = getenv("HOME");
  char *s;
  if (p) return *p ? strdup(p) : NULL;
  if (home == NULL || *home == '\0') return NULL;
  s = malloc(strlen(home) + sizeof "/.luaio_history");
  if (s) sprintf(s, "%s/.luaio_history", home);
  return s;
}

static void setup_editing (repl *r) {
  if (tcgetattr(0, &r->c->saved_tty) == 0) r->c->has_saved_tty = 1;
  rl_catch_signals = 0;          /* SIGINT stays the CLI's (main.c) */
  rl_readline_name = "luaio";
  rl_initialize();
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = " \t\n\"\\'><=;+-*/%^~#&|{}()[],";
  rl_completer_word_break_characters =
    (char *)rl_basic_word_break_characters;
  rl_completion_append_character = '\0';
  wrap_print(r->L);
  luaL_loadbuffer(r->L, completer_src, sizeof completer_src - 1,
                  "=completion");
  r->completer = luaL_ref(r->L, LUA_REGISTRYINDEX);
  using_history();
  stifle_history(HISTORY_LINES);
  r->history = history_path();
  if (r->history) read_history(r->history);
  uv_poll_init(luaio_loop(r->c->h), &r->u.poll, 0);
}

/* Remember an entry (not a repeat of the last one) in the history. */
static void remember (repl *r) {
  HIST_ENTRY *last;
  if (r->src.n == 0 || strspn(r->src.p, " \t\n") == r->src.n) return;
  using_history();
  last = history_length > 0 ? history_get(history_base + history_length - 1)
                            : NULL;
  if (last && strcmp(last->line, r->src.p) == 0) return;
  add_history(r->src.p);
  if (r->history) write_history(r->history);
}

static void close_cb (uv_handle_t *h) {
  repl_free((repl *)h->data);
}

static void teardown (repl *r) {
  if (r->in == IN_TTY) {
    rl_callback_handler_remove();
    luaL_unref(r->L, LUA_REGISTRYINDEX, r->completer);
    r->c->has_saved_tty = 0;
  }
  if (r->in == IN_STREAM && r->reading) uv_read_stop(&r->u.stream);
  r->c->prompt_signal = NULL;
  r->c->repl = NULL;
  the_repl = NULL;
  if (r->in == IN_FILE) {
    /* a read in flight still writes into rbuf: its callback frees r */
    if (r->reading) r->closing = 1;
    else repl_free(r);
    return;
  }
  uv_close((uv_handle_t *)&r->u, close_cb);
}

/* Read stdin as a stream when libuv can (a pipe, a terminal): a read
 * in flight can then be stopped at exit. Returns 0 on success. */
static int open_stream (repl *r, uv_handle_type type) {
  uv_loop_t *loop = luaio_loop(r->c->h);
  int err = type == UV_TTY ? uv_tty_init(loop, &r->u.tty, 0, 1)
                           : uv_pipe_init(loop, &r->u.pipe, 0);
  if (err == 0 && type == UV_NAMED_PIPE) {
    err = uv_pipe_open(&r->u.pipe, 0);
    if (err) {                       /* closed before r can go */
      uv_close((uv_handle_t *)&r->u.pipe, NULL);
      uv_run(loop, UV_RUN_NOWAIT);
    }
  }
  return err;
}

static repl *repl_new (cli *c) {
  repl *r = calloc(1, sizeof *r);
  uv_handle_type type = uv_guess_handle(0);
  if (r == NULL) return NULL;
  r->c = c;
  r->L = luaio_state(c->h);
  r->status = -1;
  if (type == UV_TTY && isatty(1)) r->in = IN_TTY;
  else if ((type == UV_TTY || type == UV_NAMED_PIPE) &&
           open_stream(r, type) == 0)
    r->in = IN_STREAM;
  else r->in = IN_FILE;
  r->u.poll.data = r;
  r->req.data = r;
  return r;
}

int cli_repl (cli *c, int banner) {
  repl *r = repl_new(c);
  int code;
  if (r == NULL) { fputs("luaio: out of memory\n", stderr); return 1; }
  if (r->in == IN_TTY) setup_editing(r);
  the_repl = r;
  c->repl = r;
  c->prompt_signal = prompt_signal;
  if (banner) cli_print_version();
  for (;;) {
    read_entry(r);
    if (r->state != R_ENTRY) break;
    if (r->in == IN_TTY) remember(r);
    run_entry(r);
    lua_settop(r->L, 0);
    if (luaio_exit_code(c->h) >= 0) break;
  }
  code = luaio_exit_code(c->h);
  if (code < 0) code = r->status >= 0 ? r->status : 0;
  teardown(r);
  return code;
}
