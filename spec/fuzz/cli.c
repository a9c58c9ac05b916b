/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * cli.c: fuzz target for the luaio program's command line.
 *
 * cli/main.c keeps its parser (run_args) static beside main, so the
 * target compiles main.c itself, with main renamed, and calls it with an
 * argv cut from the input at NUL bytes: the exact entry the program
 * uses. Three things are changed around it, so that running what the
 * command line asks for stays harmless and quick:
 *  - the host is made restricted (no os.execute, io.popen, os.exit,
 *    loadlib, C modules), with a memory limit and a runaway interrupt;
 *  - it runs in an empty scratch folder, with '/' mapped to '_' in the
 *    arguments, so a script path, `-l` module or `-e` chunk cannot reach
 *    another file (nor /dev/zero, nor a spec), and stdin is /dev/null;
 *  - `luaio test ...` (busted, a program of its own) is not fuzzed.
 */
#include "luaio.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static luaio_host *fuzz_cli_new (void) {
  luaio_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.restricted = 1;
  cfg.mem_limit = (size_t)256 << 20;
  cfg.runaway_ms = 1000;
  return luaio_new(&cfg);
}

/* luaio.h is included above, so only main's call is replaced here. */
#define luaio_new(cfg) fuzz_cli_new()
#define main luaio_cli_main
#include "../../cli/main.c"
#undef main
#undef luaio_new

/* The REPL (cli/repl.c, on libedit) is not linked in: stdin is
 * /dev/null here, where it would read nothing and end, as this does. */
int cli_repl (cli *c, int banner) {
  int code = luaio_exit_code(c->h);
  (void)banner;
  return code < 0 ? 0 : code;
}

/* More than the 44 or so arguments that overran a task's stack before
 * luaio__spawn checked it (cli-many-args in spec/fuzz/crashes/). */
#define MAX_ARGS 64

static char scratch[] = "/tmp/luaio-fuzz-cli.XXXXXX";
static int home = -1;             /* the starting folder, to come back */

static void remove_scratch (void) { rmdir(scratch); }

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  int fd = open("/dev/null", O_RDONLY);
  (void)argc; (void)argv;
  setenv("LUAIO_MALLOC", "system", 1);
  home = open(".", O_RDONLY | O_DIRECTORY);
  if (fd < 0 || dup2(fd, 0) < 0 || home < 0 || mkdtemp(scratch) == NULL) {
    perror("fuzz cli: setup");
    exit(2);
  }
  close(fd);
  atexit(remove_scratch);
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  char *buf, *argv[MAX_ARGS + 2];
  size_t i, start = 0;
  int argc = 1;
  if (size > 4096) return 0;
  buf = malloc(size + 1);
  if (buf == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (i = 0; i < size; i++) if (buf[i] == '/') buf[i] = '_';
  argv[0] = "luaio";
  for (i = 0; i <= size && argc <= MAX_ARGS; i++) {
    if (buf[i] != '\0') continue;
    if (i > start || i < size) argv[argc++] = buf + start;
    start = i + 1;
  }
  argv[argc] = NULL;
  if (argc >= 2 && strcmp(argv[1], "test") == 0) { free(buf); return -1; }
  /* Only while the program runs: libFuzzer's own paths are relative. */
  if (chdir(scratch) != 0) abort();
  luaio_cli_main(argc, argv);
  if (fchdir(home) != 0) abort();
  free(buf);
  return 0;
}
