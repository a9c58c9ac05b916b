/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * harness.c: the libFuzzer driver shared by the Lua-driven targets.
 *
 * Each input runs in a fresh host, the way a script would: the target's
 * Lua file (spec/fuzz/<target>.lua) is spawned as a task with the input
 * as its one argument. The script calls the luaio function under test,
 * catches the Lua errors that are a fine answer to bad input, and raises
 * only when a property breaks (a round trip differs, a reference
 * disagrees). A failed task, a deadlock or a crash is then a finding.
 * A host per input keeps runs independent (a crash input reproduces
 * alone) and lets LeakSanitizer see anything an input leaks.
 */
#include "luaio.h"
#include <errno.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET, the name of the target's Lua file"
#endif
#ifndef FUZZ_DIR
#define FUZZ_DIR "spec/fuzz"
#endif

static char *script;
static size_t script_len;

/* Read the target's script once; every input compiles it again, so a
 * host never depends on a previous one. */
static void load_script (void) {
  const char *dir = getenv("LUAIO_FUZZ_DIR");
  char path[4096];
  FILE *f;
  long n;
  snprintf(path, sizeof path, "%s/%s.lua", dir ? dir : FUZZ_DIR,
           FUZZ_TARGET);
  f = fopen(path, "rb");
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
    fprintf(stderr, "fuzz: cannot read %s\n", path);
    exit(2);
  }
  rewind(f);
  script = malloc((size_t)n + 1);
  if (script == NULL || fread(script, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "fuzz: cannot read %s\n", path);
    exit(2);
  }
  script_len = (size_t)n;
  fclose(f);
}

/* fuzz.mkfifo(path) -> true, or nil and the errno text: the lines
 * target reads a FIFO to get short reads at random places, and luaio.fs
 * has no mkfifo. The only helper the scripts get beyond luaio. */
static int fuzz_mkfifo (lua_State *L) {
  if (mkfifo(luaL_checkstring(L, 1), 0600) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc; (void)argv;
  setenv("LUAIO_MALLOC", "system", 1);   /* ASan sees every Lua block */
  /* The HTTP targets talk to 127.0.0.1 only: no proxy from outside. */
  unsetenv("http_proxy"); unsetenv("HTTP_PROXY");
  unsetenv("https_proxy"); unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy"); unsetenv("ALL_PROXY");
  unsetenv("no_proxy"); unsetenv("NO_PROXY");
  load_script();
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  luaio_config cfg;
  luaio_host *h;
  lua_State *L;
  luaio_task *t;
  int status;
  memset(&cfg, 0, sizeof cfg);
  cfg.mem_limit = (size_t)512 << 20;     /* an input never needs more */
  cfg.runaway_ms = 5000;                 /* a busy loop is a finding */
  h = luaio_new(&cfg);
  if (h == NULL) abort();
  L = luaio_state(h);
  if (luaL_loadbuffer(L, script, script_len, "@" FUZZ_TARGET ".lua")
      != LUA_OK) {
    fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fuzz_mkfifo);
  lua_setfield(L, -2, "mkfifo");
  lua_setglobal(L, "fuzz");
  lua_pushlstring(L, (const char *)data, size);
  t = luaio_spawn(L, 1);
  status = luaio_run_until(h, t);
  if (status == LUAIO_DEADLOCK) {
    fprintf(stderr, "fuzz: the target's task deadlocked\n");
    abort();
  }
  if (status != LUAIO_OK) {
    fprintf(stderr, "fuzz: property broken: %s\n", luaio_task_error(t));
    abort();
  }
  luaio_task_release(t);
  luaio_close(h);
  return 0;
}
