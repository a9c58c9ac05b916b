/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * main.c: the luaio program. Written only against luaio.h: the CLI is
 * the first embedder.
 *
 *   luaio [options] [script [args]]   run a script as the main task
 *   luaio test [busted args]          run busted specs under the host
 *   luaio                             a REPL whose lines run as tasks
 *
 * The options are lua5.4's, with the same meanings and order of effects
 * (lua.c's collectargs/runargs), plus luaio's own long ones.
 */
#include "cli.h"
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The signal handler's way to the CLI: a program has one. */
static cli *the_cli;

#define EXIT_STUCK 70         /* tasks outlived the exit grace */

/* The one table of options: --help and the usage message print it, and
 * a spec checks that the man page (cmake/luaio.1) documents each. */
static const struct { const char *name, *text; } options[] = {
  {"-e stat", "execute string 'stat'"},
  {"-i", "enter the REPL after running 'script' (implies -v)"},
  {"-l mod", "require library 'mod' into global 'mod'"},
  {"-l g=mod", "require library 'mod' into global 'g'"},
  {"-v", "show version information"},
  {"-E", "ignore environment variables (LUA_INIT, LUA_PATH, LUA_CPATH)"},
  {"-W", "turn warnings on (luaio's default: they are always on)"},
  {"--grace S", "seconds a cancelled task may spend cleaning up, and the"},
  {"", "exit waits for cancelled tasks (default 5)"},
  {"--debug", "debug mode: warn about slow tasks, unawaited failures,"},
  {"", "tasks pending at exit, unclosed resources"},
  {"--sandbox", "run with no access to files, network, programs or the"},
  {"", "environment but what the --allow options give"},
  {"--allow-read=P", "read these files or folders (comma-separated)"},
  {"--allow-write=P", "write, create, remove these files or folders"},
  {"--allow-net=H", "reach these hosts (host, host:port, [IPv6]:port)"},
  {"--allow-run=P", "start these programs (names or paths)"},
  {"--allow-env", "read the environment (=NAME[,NAME] for some variables)"},
  {"--max-memory=N", "end the script past N bytes of memory (k, M, G)"},
  {"--max-time=S", "end the script after S seconds"},
  {"--max-tasks=N", "end the script past N live tasks"},
  {"", "(a cap ends the script with status 3)"},
  {"--help", "show this help and exit"},
  {"--version", "show version information and exit"},
  {"--", "stop handling options"},
  {"-", "stop handling options and execute stdin"},
};

static void print_options (FILE *f) {
  size_t i;
  fprintf(f,
    "usage: luaio [options] [script [args]]\n"
    "       luaio test [busted options] [spec paths]\n"
    "Available options are:\n");
  for (i = 0; i < sizeof options / sizeof options[0]; i++)
    fprintf(f, "  %-16s%s\n", options[i].name, options[i].text);
}

static void print_help (void) {
  printf("luaio runs Lua 5.4 scripts as tasks on a libuv event loop.\n");
  print_options(stdout);
  printf("Environment: LUA_INIT_5_4 or LUA_INIT (code, or @file, run "
         "first),\nLUA_PATH, LUA_CPATH, LUAIO_HISTORY (the REPL's history "
         "file).\nWith no script and a terminal on stdin: the REPL.\n");
}

/* A bad command line: say why, then how, on stderr (exit 1). */
static int usage (const char *why, const char *opt) {
  fprintf(stderr, "luaio: ");
  fprintf(stderr, why, opt);
  fputc('\n', stderr);
  print_options(stderr);
  return 1;
}

void cli_print_version (void) {
  printf("luaio %s (%s, libuv %s)\n", luaio_version(), LUA_RELEASE,
         uv_version_string());
  fflush(stdout);
}

int cli_signal_status (int signo) { return 128 + signo; }

/* First Ctrl-C (or SIGTERM) interrupts the Lua code running now, even a
 * loop that never waits, and cancels the main task from the loop, so
 * cleanup runs (exit 130, or 143); the second exits at once. In the REPL
 * the first interrupts and cancels the entry only (at the prompt, it
 * clears the line), the second interrupts whatever Lua code runs, the
 * third exits. Only async-signal-safe calls here. */
static void on_signal (int signo) {
  cli *c = the_cli;
  if (c != NULL && c->signo && c->repl && !c->forced) {
    c->forced = 1;
    luaio_interrupt(c->h);
    return;
  }
  if (c == NULL || c->signo) {
    if (c && c->has_saved_tty) tcsetattr(0, TCSANOW, &c->saved_tty);
    _exit(cli_signal_status(c ? c->signo : signo));
  }
  c->signo = signo;
  if (c->repl == NULL) luaio_interrupt(c->h);
  else if (!c->at_prompt) luaio_interrupt_task(c->h, c->main_task);
  uv_async_send(&c->wakeup);
}

static void wakeup_cb (uv_async_t *a) {
  cli *c = (cli *)a->data;
  if (!c->signo) return;
  if (c->main_task) {
    if (!c->cancelled) {
      c->cancelled = 1;
      luaio_task_cancel(c->main_task);
    }
  }
  else if (c->at_prompt && c->prompt_signal) c->prompt_signal(c);
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

/* Run t as the main task to completion; print its error. With keep, the
 * task's first result stays on the stack when it succeeded. Returns the
 * process exit status it implies. */
static int run_main (cli *c, luaio_task *t, int keep) {
  lua_State *L = luaio_state(c->h);
  int status, code;
  c->main_task = t;
  if (c->signo) wakeup_cb(&c->wakeup);   /* a signal came before it */
  status = luaio_run_until(c->h, t);
  c->main_task = NULL;
  code = luaio_exit_code(c->h);
  if (code >= 0) { luaio_task_release(t); return code; }
  if (c->signo) {
    luaio_task_release(t);
    return cli_signal_status(c->signo);
  }
  if (status == LUAIO_DEADLOCK) {
    fprintf(stderr, "luaio: deadlock: the main task waits but nothing is "
            "left that could wake it\n");
    code = 1;
  }
  else if (status != LUAIO_OK) {
    fprintf(stderr, "luaio: %s\n", luaio_task_error(t));
    code = 1;
  }
  else {
    if (keep) {
      int n = luaio_task_push_results(L, t);
      if (n <= 0) lua_pushnil(L);
      else lua_pop(L, n - 1);
    }
    code = 0;
  }
  luaio_task_release(t);
  return code;
}

/* Compile code and run it as the main task. Returns the exit status. */
static int run_chunk (cli *c, const char *code, const char *name) {
  lua_State *L = luaio_state(c->h);
  if (luaL_loadbuffer(L, code, strlen(code), name) != LUA_OK) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return run_main(c, luaio_spawn(L, 0), 0);
}

/* Run a file (NULL: stdin) as the main task, with its arguments. */
static int run_file (cli *c, const char *path, int argc, char **argv) {
  lua_State *L = luaio_state(c->h);
  luaio_task *t = luaio_spawn_file(c->h, path, argc, argv);
  if (t == NULL) {
    fprintf(stderr, "luaio: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return run_main(c, t, 0);
}

/* -l g=mod or -l mod: g = require(mod), as Lua 5.4.4's lua does (the
 * global of -l mod-2 is "mod-2"). Runs in a task, so a module may wait
 * while it loads. */
static int run_require (cli *c, const char *arg) {
  lua_State *L = luaio_state(c->h);
  const char *eq = strchr(arg, '=');
  const char *mod = eq ? eq + 1 : arg;
  size_t glen = eq ? (size_t)(eq - arg) : strlen(arg);
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  status = run_main(c, luaio_spawn(L, 1), 1);
  if (status != 0) return status;
  lua_pushlstring(L, arg, glen);
  lua_insert(L, -2);
  lua_setglobal(L, lua_tostring(L, -2));
  lua_pop(L, 1);
  return 0;
}

/* LUA_INIT_5_4 or LUA_INIT: code, or @file, run before everything. */
static int run_init (cli *c) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return 0;
  if (init[0] == '@') return run_file(c, init + 1, 0, NULL);
  return run_chunk(c, init, name);
}

/* -E: forget LUA_PATH and LUA_CPATH, which the standard library read
 * when the host was created, as lua.c's LUA_NOENV does. */
static void ignore_env (lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  if (lua_getglobal(L, "package") == LUA_TTABLE) {
    lua_pushliteral(L, LUA_PATH_DEFAULT);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, LUA_CPATH_DEFAULT);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
}

/* The global `arg`: script at 0, its arguments from 1, the interpreter
 * and options at negative indices; with no script, the interpreter at 0
 * and the options from 1 (as lua does). */
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
  return run_main(c, luaio_spawn(L, 1), 0);
}

/* What the options asked for. */
enum { HAS_E = 1, HAS_I = 2, HAS_V = 4, NO_ENV = 8, HELP = 16, VERSION = 32,
       DEBUG = 64 };

typedef struct args {
  int flags;
  int script;    /* argv index of the script, 0 if none */
  int grace_ms;  /* --grace, or -1 */
  cli_sandbox sandbox;  /* --sandbox, --allow-*, --max-* */
} args;

/* --grace S: seconds, 0 to a day. Returns 0, or 1 after a message. */
static int parse_grace (args *a, const char *s) {
  char *end;
  double v = s ? strtod(s, &end) : -1;
  if (s == NULL || *end || end == s || !(v >= 0 && v <= 86400)) {
    fprintf(stderr, "luaio: --grace takes seconds (0 to 86400)\n");
    return 1;
  }
  a->grace_ms = (int)(v * 1000 + 0.5);
  return 0;
}

/* Find the options and the script like lua.c's collectargs: stops at the
 * first argument that is not an option. Returns 0, or the exit status
 * after a message. */
static int collect_args (args *a, int argc, char **argv) {
  int i;
  a->flags = 0;
  a->script = 0;
  a->grace_ms = -1;
  memset(&a->sandbox, 0, sizeof a->sandbox);
  for (i = 1; i < argc; i++) {
    const char *o = argv[i];
    a->script = i;
    if (o[0] != '-') return 0;                      /* the script */
    if (strcmp(o, "--help") == 0) { a->flags |= HELP; return 0; }
    if (strcmp(o, "--version") == 0) { a->flags |= VERSION; return 0; }
    if (strcmp(o, "--debug") == 0) { a->flags |= DEBUG; continue; }
    if (strcmp(o, "--grace") == 0) {
      if (parse_grace(a, argv[i + 1])) return 1;
      i++;
      continue;
    }
    if (o[1] == '-' && o[2]) {
      int rc = cli_sandbox_option(&a->sandbox, o);
      if (rc > 0) return 1;
      if (rc == 0) continue;
    }
    switch (o[1]) {
      case '-':                                     /* -- */
        if (o[2]) return usage("unrecognized option '%s'", o);
        a->script = i + 1 < argc ? i + 1 : 0;
        return 0;
      case '\0': return 0;                          /* - is stdin */
      case 'E': case 'W': case 'i': case 'v':
        if (o[2]) return usage("unrecognized option '%s'", o);
        a->flags |= o[1] == 'E' ? NO_ENV : o[1] == 'i' ? HAS_I | HAS_V
                  : o[1] == 'v' ? HAS_V : 0;
        break;
      case 'e': case 'l':
        if (o[1] == 'e') a->flags |= HAS_E;
        if (o[2] == '\0' && (++i >= argc || argv[i][0] == '-'))
          return usage("'%s' needs argument", o);
        break;
      default: return usage("unrecognized option '%s'", o);
    }
  }
  a->script = 0;
  return 0;
}

/* os.exit ran: nothing more runs. */
static int exited (cli *c) { return luaio_exit_code(c->h) >= 0; }

/* Run -e, -l and -W in their order, up to the script (lua.c's runargs).
 * Returns the exit status of the first that failed, or 0. */
static int run_options (cli *c, int n, char **argv) {
  int i, status = 0;
  for (i = 1; i < n && status == 0 && !exited(c); i++) {
    const char *o = argv[i], *extra = o + 2;
    if (strcmp(o, "--grace") == 0) { i++; continue; }
    if (o[1] == '-') continue;            /* --sandbox, --allow-*... */
    if (o[1] == 'W') lua_warning(luaio_state(c->h), "@on", 0);
    if (o[1] != 'e' && o[1] != 'l') continue;
    if (*extra == '\0') extra = argv[++i];
    status = o[1] == 'e' ? run_chunk(c, extra, "=(command line)")
                         : run_require(c, extra);
  }
  return status;
}

/* Handle the command line like lua does (collected in a); returns the
 * exit status. */
static int run_args (cli *c, args *ap, int argc, char **argv) {
  lua_State *L = luaio_state(c->h);
  args a = *ap;
  int status = 0;
  int optlim = a.script > 0 ? a.script : argc;
  if (a.flags & HELP) { print_help(); return 0; }
  if (a.flags & (VERSION | HAS_V)) cli_print_version();
  if (a.flags & VERSION) return 0;
  if (a.grace_ms >= 0) luaio_set_grace(c->h, a.grace_ms);
  if (a.flags & DEBUG) luaio_set_debug(c->h, 1);
  if (a.flags & NO_ENV) ignore_env(L);
  create_arg(L, argv, argc, a.script);
  if (!(a.flags & NO_ENV)) status = run_init(c);
  if (status != 0 || exited(c)) return status;
  status = run_options(c, optlim, argv);
  if (status != 0 || exited(c)) return status;
  if (a.script > 0) {
    const char *path = argv[a.script];
    /* "-" is stdin, except as the first argument after "--" */
    if (strcmp(path, "-") == 0 && strcmp(argv[a.script - 1], "--") != 0)
      path = NULL;
    status = run_file(c, path, argc - a.script - 1, argv + a.script + 1);
    if (status != 0 || exited(c)) return status;
  }
  if (a.flags & HAS_I) return cli_repl(c, 0);
  if (a.script == 0 && !(a.flags & (HAS_E | HAS_V))) {
    if (isatty(0)) return cli_repl(c, 1);
    return run_file(c, NULL, 0, NULL);
  }
  return 0;
}

/* The command line's options, then the host they configure. Returns
 * NULL with *status set when the options end it (a usage error). */
static luaio_host *new_host (args *a, int argc, char **argv, int *status) {
  luaio_config cfg;
  luaio_host *h;
  memset(a, 0, sizeof *a);
  memset(&cfg, 0, sizeof cfg);
  if (argc < 2 || strcmp(argv[1], "test") != 0) {
    if ((*status = collect_args(a, argc, argv)) != 0) return NULL;
    if ((*status = cli_sandbox_config(&a->sandbox, &cfg)) != 0) return NULL;
  }
  cfg.raise_fd_limit = 1;       /* the program's process is ours */
  if ((h = luaio_new(&cfg)) == NULL) {
    fprintf(stderr, "luaio: cannot create the host\n");
    *status = 1;
  }
  return h;
}

int main (int argc, char **argv) {
  cli c;
  args a;
  int status = 0;
  memset(&c, 0, sizeof c);
  c.h = new_host(&a, argc, argv, &status);
  if (c.h == NULL) { cli_sandbox_free(&a.sandbox); return status; }
  catch_signals(&c);
  if (argc >= 2 && strcmp(argv[1], "test") == 0)
    status = run_tests(&c, argc - 2, argv + 2);
  else
    status = run_args(&c, &a, argc, argv);
  fflush(stdout);
  if (luaio_limit_hit(c.h)) status = LUAIO_EXIT_LIMIT;
  if (luaio_stop(c.h) > 0 && status <= 1) status = EXIT_STUCK;
  luaio_close(c.h);
  cli_sandbox_free(&a.sandbox);
  the_cli = NULL;
  return status;
}
