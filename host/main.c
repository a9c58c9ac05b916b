/*
 * main.c: the luaio program. Written only against luaio.h: the CLI is
 * the first embedder.
 *
 *   luaio [options] [script [args]]   run a script as the main task
 *   luaio test [busted args]          run busted specs under the host
 *   luaio                             a REPL whose lines run as tasks
 */
#include "luaio.h"
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cli {
  luaio_host *h;
  uv_async_t wakeup;          /* from the signal handler to the loop */
  luaio_task *main_task;
  volatile sig_atomic_t signo; /* the first SIGINT or SIGTERM, or 0 */
  int cancelled;              /* the main task was cancelled for it */
} cli;

/* The signal handler's way to the CLI: a program has one. */
static cli *the_cli;

#define EXIT_STUCK 70         /* tasks outlived the exit grace */

static void usage (void) {
  fprintf(stderr,
    "usage: luaio [options] [script [args]]\n"
    "       luaio test [busted options] [spec paths]\n"
    "Options:\n"
    "  -e stat   execute string 'stat'\n"
    "  -l mod    require 'mod' into global 'mod'\n"
    "  -i        enter the REPL after running the script\n"
    "  -v        show version information\n"
    "  --grace S cleanup grace for cancelled tasks and at exit, seconds\n"
    "            (default 5)\n"
    "  --        stop handling options\n"
    "  -         run stdin as the script\n");
}

static int signal_status (int signo) { return 128 + signo; }

/* First Ctrl-C (or SIGTERM) interrupts the Lua code running now, even a
 * loop that never waits, and cancels the main task from the loop, so
 * cleanup runs (exit 130, or 143); the second exits at once. Only
 * async-signal-safe calls here. */
static void on_signal (int signo) {
  cli *c = the_cli;
  if (c == NULL || c->signo) _exit(signal_status(c ? c->signo : signo));
  c->signo = signo;
  luaio_interrupt(c->h);
  uv_async_send(&c->wakeup);
}

static void wakeup_cb (uv_async_t *a) {
  cli *c = (cli *)a->data;
  if (c->signo && c->main_task && !c->cancelled) {
    c->cancelled = 1;
    luaio_task_cancel(c->main_task);
  }
}

static void wakeup_close (void *ud) {
  uv_close((uv_handle_t *)&((cli *)ud)->wakeup, NULL);
}

static void catch_signals (cli *c) {
  struct sigaction sa;
  uv_async_init(luaio_loop(c->h), &c->wakeup, wakeup_cb);
  c->wakeup.data = c;
  uv_unref((uv_handle_t *)&c->wakeup);
  luaio_on_close(c->h, wakeup_close, c);
  the_cli = c;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* Run t as the main task to completion; print its error. Returns the
 * process exit status it implies. */
static int run_main (cli *c, luaio_task *t) {
  int status, code;
  c->main_task = t;
  if (c->signo) wakeup_cb(&c->wakeup);   /* a signal came before it */
  status = luaio_run_until(c->h, t);
  c->main_task = NULL;
  code = luaio_exit_code(c->h);
  if (code >= 0) { luaio_task_release(t); return code; }
  if (c->signo) { luaio_task_release(t); return signal_status(c->signo); }
  if (status == LUAIO_DEADLOCK) {
    fprintf(stderr, "luaio: deadlock: the main task waits but nothing is "
            "left that could wake it\n");
    code = 1;
  }
  else if (status != LUAIO_OK) {
    fprintf(stderr, "luaio: %s\n", luaio_task_error(t));
    code = 1;
  }
  else code = 0;
  luaio_task_release(t);
  return code;
}

/* Print the n values on L's top with Lua's print, popping them. */
static void print_values (lua_State *L, int n) {
  lua_getglobal(L, "print");
  lua_insert(L, -(n + 1));
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* Compile code and run it as the main task. Returns the exit status. */
static int run_chunk (cli *c, const char *code, const char *name) {
  lua_State *L = luaio_state(c->h);
  if (luaL_loadbuffer(L, code, strlen(code), name) != LUA_OK) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return run_main(c, luaio_spawn(L, 0));
}

/* Run the function on top of the stack as a task (a REPL entry) and
 * print what it returns, or its error. */
static void run_entry (cli *c) {
  lua_State *L = luaio_state(c->h);
  luaio_task *t = luaio_spawn(L, 0);
  int status;
  c->main_task = t;
  status = luaio_run_until(c->h, t);
  c->main_task = NULL;
  c->signo = 0;
  c->cancelled = 0;
  if (status == LUAIO_OK) {
    int n = luaio_task_push_results(L, t);
    if (n > 0) print_values(L, n);
  }
  else if (status == LUAIO_DEADLOCK) fprintf(stderr, "deadlock\n");
  else fprintf(stderr, "%s\n", luaio_task_error(t));
  luaio_task_release(t);
}

/* Does the load error mean the chunk is only incomplete? */
static int incomplete (lua_State *L, int status) {
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  return status == LUA_ERRSYNTAX && n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
}

/* The REPL: each entry runs as a task (so it may wait); an expression's
 * values are printed. Other tasks progress while an entry runs. */
static int repl (cli *c) {
  lua_State *L = luaio_state(c->h);
  char line[4096];
  luaL_Buffer b;
  printf("luaio %s (%s) -- Ctrl-D exits\n", LUAIO_VERSION, LUA_RELEASE);
  for (;;) {
    int status;
    luaL_buffinit(L, &b);
    fputs("> ", stdout);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) break;
    luaL_addstring(&b, line);
    luaL_pushresult(&b);                            /* src */
    for (;;) {
      lua_pushfstring(L, "return %s", lua_tostring(L, -1));
      status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1),
                               "=stdin");
      lua_remove(L, -2);                            /* src chunk|err */
      if (status == LUA_OK) break;
      lua_pop(L, 1);
      status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1),
                               "=stdin");
      if (!incomplete(L, status)) break;
      lua_pop(L, 1);
      fputs(">> ", stdout);
      fflush(stdout);
      if (!fgets(line, sizeof line, stdin)) break;
      lua_pushstring(L, line);
      lua_concat(L, 2);
    }
    if (status != LUA_OK) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      lua_settop(L, 0);
      continue;
    }
    lua_remove(L, -2);                              /* chunk */
    run_entry(c);
    lua_settop(L, 0);
    if (luaio_exit_code(c->h) >= 0) break;
  }
  lua_settop(L, 0);
  putchar('\n');
  return luaio_exit_code(c->h) >= 0 ? luaio_exit_code(c->h) : 0;
}

/* The global `arg`: script at 0, its arguments from 1, the interpreter
 * and options at negative indices (as lua does). */
static void create_arg (lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* luaio test [busted args]: busted inside the main task. */
static int run_tests (cli *c, int argc, char **argv) {
  lua_State *L = luaio_state(c->h);
  int i;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaio.test");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return run_main(c, luaio_spawn(L, 1));
}

static int run_script (cli *c, const char *path, int argc, char **argv) {
  lua_State *L = luaio_state(c->h);
  luaio_task *t = luaio_spawn_file(c->h, path, argc, argv);
  if (t == NULL) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return run_main(c, t);
}

/* Handle the command line like lua does; returns the exit status. */
static int run_args (cli *c, int argc, char **argv) {
  lua_State *L = luaio_state(c->h);
  int i, script = argc, interactive = 0, ran = 0, status = 0;
  for (i = 1; i < argc; i++) {               /* find the script */
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) { script = i; break; }
    if (strcmp(a, "--") == 0) { script = i + 1; break; }
    if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (++i >= argc) { usage(); return 1; }
    }
    else if (strcmp(a, "-i") == 0) interactive = 1;
    else if (strcmp(a, "--grace") == 0) {
      char *end;
      double s = ++i < argc ? strtod(argv[i], &end) : -1;
      if (i >= argc || *end || !(s >= 0 && s <= 86400)) {
        fprintf(stderr, "luaio: --grace takes seconds (0 to 86400)\n");
        return 1;
      }
      luaio_set_grace(c->h, (int)(s * 1000 + 0.5));
    }
    else if (strcmp(a, "-v") == 0) {
      printf("luaio %s (%s, libuv %s)\n", LUAIO_VERSION, LUA_RELEASE,
             uv_version_string());
      ran = 1;
    }
    else { usage(); return 1; }
  }
  create_arg(L, argv, argc, script < argc ? script : 0);
  for (i = 1; i < script && status == 0; i++) {
    if (strcmp(argv[i], "--grace") == 0) i++;
    else if (strcmp(argv[i], "-e") == 0) {
      status = run_chunk(c, argv[++i], "=(command line)");
      ran = 1;
    }
    else if (strcmp(argv[i], "-l") == 0) {
      i++;
      lua_getglobal(L, "require");
      lua_pushstring(L, argv[i]);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
        return 1;
      }
      lua_setglobal(L, argv[i]);
    }
  }
  if (status != 0) return status;
  if (script < argc) {
    const char *path = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
    status = run_script(c, path, argc - script - 1, argv + script + 1);
    ran = 1;
  }
  if (interactive || (!ran && isatty(0))) return repl(c);
  if (!ran) return run_script(c, NULL, 0, NULL);
  return status;
}

int main (int argc, char **argv) {
  cli c;
  int status;
  memset(&c, 0, sizeof c);
  c.h = luaio_new(NULL);
  if (c.h == NULL) {
    fprintf(stderr, "luaio: cannot create the host\n");
    return 1;
  }
  catch_signals(&c);
  if (argc >= 2 && strcmp(argv[1], "test") == 0)
    status = run_tests(&c, argc - 2, argv + 2);
  else
    status = run_args(&c, argc, argv);
  fflush(stdout);
  if (luaio_stop(c.h) > 0 && status <= 1) status = EXIT_STUCK;
  luaio_close(c.h);
  the_cli = NULL;
  return status;
}
