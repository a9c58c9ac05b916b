/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * cli.h: what the files of the luaio program (main.c, repl.c) share.
 * Not part of libluaio: both files use only the public luaio.h.
 */
#ifndef LUAIO_CLI_H
#define LUAIO_CLI_H

#include "luaio.h"
#include <signal.h>
#include <termios.h>

typedef struct cli cli;

struct cli {
  luaio_host *h;
  uv_async_t wakeup;          /* from the signal handler to the loop */
  luaio_task *main_task;      /* the script, or the REPL entry running */
  volatile sig_atomic_t signo; /* the first SIGINT or SIGTERM, or 0 */
  /* The REPL waits for input: a signal then concerns the prompt, never
   * the background task that happens to run Lua at that instant. */
  volatile sig_atomic_t at_prompt;
  int cancelled;              /* the main task was cancelled for it */
  /* REPL: a second Ctrl-C interrupted whatever Lua code was running (a
   * task of the entry's that never waits); the third exits. */
  volatile sig_atomic_t forced;
  /* Called from the loop for a signal that came at the prompt. */
  void (*prompt_signal)(cli *c);
  void *repl;                 /* the REPL's state, while it runs */
  /* The terminal's settings before line editing changed them: a second
   * Ctrl-C exits at once, and restores them first. */
  struct termios saved_tty;
  volatile sig_atomic_t has_saved_tty;
};

int cli_signal_status(int signo);

/* sandbox.c: --sandbox, --allow-*=LIST, --max-*=N. */
#define CLI_MAX_COPIES 64
typedef struct cli_sandbox {
  int on;                     /* --sandbox or any --allow-* */
  luaio_sandbox sb;           /* the lists (their arrays malloc'd) */
  luaio_config cfg;           /* the caps */
  char *copies[CLI_MAX_COPIES]; /* the option values the lists point in */
  int ncopies;
} cli_sandbox;
/* 0: o was ours and is recorded; 1: bad, after a message; -1: not ours. */
int cli_sandbox_option(cli_sandbox *s, const char *o);
/* Fill cfg for luaio_new. 0, or 1 after a message. */
int cli_sandbox_config(cli_sandbox *s, luaio_config *cfg);
void cli_sandbox_free(cli_sandbox *s);

/* The REPL: returns the exit status. banner: print the version first. */
int cli_repl(cli *c, int banner);

/* The version line of -v, --version and the REPL. */
void cli_print_version(void);

#endif
