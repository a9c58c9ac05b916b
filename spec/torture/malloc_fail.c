/*
 * malloc_fail.c: an LD_PRELOAD shim for scripts/torture.sh that makes the
 * n-th malloc, calloc or realloc (counted from when the shim loads) of the
 * C code fail: LUAIO_FAIL_MALLOC=n (0: fail nothing, print the count at
 * exit). Lua's own blocks, which come through luaio's allocator, are left
 * alone: LUAIO_FAIL_ALLOC covers those. LUAIO_FAIL_MALLOC_TRACE=1 prints
 * where the failing call came from. glibc only.
 *
 *   cc -shared -fPIC -O1 -o malloc_fail.so malloc_fail.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static long fail_at = -1;               /* -1: not armed */
static int trace;
static atomic_long count;
static _Thread_local int inside;        /* dladdr may allocate */

static void report (void) {
  fprintf(stderr, "malloc torture: %ld allocations\n", (long)count);
}

__attribute__((constructor)) static void arm (void) {
  const char *s = getenv("LUAIO_FAIL_MALLOC");
  if (s == NULL || *s == '\0') return;
  fail_at = strtol(s, NULL, 10);
  trace = getenv("LUAIO_FAIL_MALLOC_TRACE") != NULL;
  atexit(report);
}

/* Should the allocation called from caller fail? Not when Lua's
 * allocator (luaio__slab_realloc) asks. */
static int fails (void *caller) {
  Dl_info info;
  long n;
  if (fail_at < 0 || inside) return 0;
  inside = 1;
  n = dladdr(caller, &info) && info.dli_sname &&
      strcmp(info.dli_sname, "luaio__slab_realloc") == 0
      ? 0 : atomic_fetch_add(&count, 1) + 1;
  if (n != 0 && n == fail_at && trace) {
    void *frames[16];
    fprintf(stderr, "malloc torture: failing allocation %ld from:\n", n);
    backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
  }
  inside = 0;
  return n != 0 && n == fail_at;
}

void *malloc (size_t n) {
  if (fails(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
  return __libc_malloc(n);
}

void *calloc (size_t n, size_t size) {
  if (fails(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
  return __libc_calloc(n, size);
}

void *realloc (void *p, size_t n) {
  if (n > 0 && fails(__builtin_return_address(0))) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_realloc(p, n);
}
