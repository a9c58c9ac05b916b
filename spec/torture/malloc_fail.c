/*
 * malloc_fail.c: an LD_PRELOAD shim for scripts/torture.sh that makes the
 * n-th malloc, calloc or realloc (counted from when the shim loads) of the
 * C code fail: LUAIO_FAIL_MALLOC=n (0: fail nothing, print the count at
 * exit). Lua's own blocks, which come through luaio's allocator, are left
 * alone: LUAIO_FAIL_ALLOC covers those. glibc only.
 *
 *   cc -shared -fPIC -O1 -o malloc_fail.so malloc_fail.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static long fail_at = -1;               /* -1: not armed */
static atomic_long count;
static _Thread_local int inside;        /* dladdr may allocate */

static void report (void) {
  fprintf(stderr, "malloc torture: %ld allocations\n", (long)count);
}

__attribute__((constructor)) static void arm (void) {
  const char *s = getenv("LUAIO_FAIL_MALLOC");
  if (s == NULL || *s == '\0') return;
  fail_at = strtol(s, NULL, 10);
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
