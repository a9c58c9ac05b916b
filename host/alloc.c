/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * alloc.c: the host's allocator for Lua memory.
 *
 * Small blocks (coroutine stacks, tasks, closures, strings) come from
 * per-size free lists carved out of 2 MiB chunks, each faulted in with one
 * madvise call. Spawning many tasks otherwise spends most of its time
 * faulting in fresh 4 KiB pages one by one (measured: about 3x slower for
 * 100,000 tasks). The chunks are deliberately not marked MADV_HUGEPAGE:
 * where the kernel defragments on demand for such regions, a busy machine
 * stalls in compaction (W1 measured 230k-480k tasks/s with it, 876k
 * without, in the same benchmark runs). Freed blocks are reused. Lua
 * passes the old size on every free and realloc, so blocks need no
 * header. Larger blocks go to malloc.
 *
 * Size classes step by 8 bytes (LUAIO_SLAB_STEP): Lua's objects need no
 * more than 8-byte alignment on the platforms we build for (no long
 * double, no vector type), and 16-byte steps rounded a 152-byte task up
 * to 160, a 104-byte sleep to 112, every 40-byte closure to 48 and every
 * 56-byte table to 64.
 *
 * Each chunk is CHUNK_SIZE-aligned and starts with a count of its live
 * blocks, so a block finds its chunk by masking its address. After a
 * burst (a million tasks that have finished), luaio__slab_trim returns
 * the chunks whose blocks are all free to the system.
 */
#include "private.h"
#include <malloc.h>
#include <sys/mman.h>

#define CHUNK_SIZE ((size_t)2 << 20)
#define CHUNK_HEAD 64                 /* the count, on a cache line alone */

typedef struct chunk_head { size_t live; } chunk_head;

static chunk_head *chunk_of (void *p) {
  return (chunk_head *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
}

static size_t class_of (size_t size) {
  return (size + LUAIO_SLAB_STEP - 1) / LUAIO_SLAB_STEP - 1;
}

/* A new chunk to carve from; 0 on failure. */
static int slab_grow (luaio_slab *s) {
  void *chunk;
  if (s->nchunks == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    void **c = realloc(s->chunks, cap * sizeof *c);
    if (c == NULL) return 0;
    s->chunks = c;
    s->cap = cap;
  }
  if (posix_memalign(&chunk, CHUNK_SIZE, CHUNK_SIZE) != 0) return 0;
#ifdef MADV_POPULATE_WRITE
  /* Fault the chunk in with one call instead of a fault per page. */
  madvise(chunk, CHUNK_SIZE, MADV_POPULATE_WRITE);
#endif
  s->chunks[s->nchunks++] = chunk;
  ((chunk_head *)chunk)->live = 0;
  s->cur = (char *)chunk + CHUNK_HEAD;
  s->end = (char *)chunk + CHUNK_SIZE;
  return 1;
}

static inline void *slab_get (luaio_slab *s, size_t size) {
  size_t c = class_of(size), real = (c + 1) * LUAIO_SLAB_STEP;
  void *p = s->free[c];
  if (p) s->free[c] = *(void **)p;
  else {
    if ((size_t)(s->end - s->cur) < real && !slab_grow(s)) return NULL;
    p = s->cur;
    s->cur += real;
  }
  chunk_of(p)->live++;
  return p;
}

static inline void slab_put (luaio_slab *s, void *p, size_t size) {
  size_t c = class_of(size);
  *(void **)p = s->free[c];
  s->free[c] = p;
  chunk_of(p)->live--;
}

/* A block changing size, or moving between the slab and malloc: the
 * rare case, out of line so the fast paths below stay small. */
static void *slab_move (luaio_slab *s, void *ptr, size_t osize,
                        size_t nsize) {
  int small_old = osize <= LUAIO_SLAB_MAX;
  int small_new = nsize <= LUAIO_SLAB_MAX;
  void *p;
  if (!small_old && !small_new) return realloc(ptr, nsize);
  if (small_old && small_new && class_of(osize) == class_of(nsize))
    return ptr;
  p = small_new ? slab_get(s, nsize) : malloc(nsize);
  if (p == NULL) return NULL;
  memcpy(p, ptr, osize < nsize ? osize : nsize);
  if (small_old) slab_put(s, ptr, osize); else free(ptr);
  return p;
}

/* lua_Alloc semantics over the slab: [osize] is the old block's size. */
static inline void *slab_realloc (luaio_slab *s, void *ptr, size_t osize,
                                  size_t nsize) {
  if (nsize == 0) {
    if (ptr && osize <= LUAIO_SLAB_MAX) slab_put(s, ptr, osize);
    else free(ptr);
    return NULL;
  }
  if (ptr == NULL)
    return nsize <= LUAIO_SLAB_MAX ? slab_get(s, nsize) : malloc(nsize);
  return slab_move(s, ptr, osize, nsize);
}

void *luaio__slab_realloc (luaio_slab *s, void *ptr, size_t osize,
                           size_t nsize) {
  return slab_realloc(s, ptr, osize, nsize);
}

/* Everything the fast path below leaves out: the memory cap, torture
 * runs, system malloc, sizes that change or leave the slab, a chunk
 * used up. The cap applies while a task runs: past it an allocation
 * fails, which Lua raises as "not enough memory" in the script. The
 * host's own bookkeeping (finishing the failed task, say) is not
 * limited, so it never panics. */
static void *host_alloc_slow (luaio_host *h, void *ptr, size_t osize,
                              size_t nsize) {
  size_t old = ptr ? osize : 0;
  void *p;
  if (h->cfg.mem_limit && h->limited && nsize > old &&
      h->mem_used - old + nsize > h->cfg.mem_limit) {
    if (h->cfg.hard_limits) luaio__limit_hit(h, "max-memory");
    return NULL;
  }
  if (luaio__torture_on && nsize > old &&
      luaio__torture_alloc_fails(h, ptr, old, nsize))
    return NULL;
  if (h->system_malloc) p = nsize ? realloc(ptr, nsize) : (free(ptr), NULL);
  else p = slab_realloc(&h->slab, ptr, old, nsize);
  if (p || nsize == 0) h->mem_used = h->mem_used - old + nsize;
  return p;
}

/* The lua_Alloc of a host's own state (ud: the host): counts memory.
 * The common cases (a new small block, a small block freed) are a leaf
 * function without a stack frame: with the checks inline, saving and
 * restoring registers made a call ~60 instructions (callgrind), and a
 * task costs ~14 calls. */
void *luaio__host_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  luaio_host *h = (luaio_host *)ud;
  luaio_slab *s = &h->slab;
  if (h->cfg.mem_limit | h->system_malloc | luaio__torture_on)
    return host_alloc_slow(h, ptr, osize, nsize);
  if (nsize == 0) {
    if (ptr == NULL || osize > LUAIO_SLAB_MAX)
      return host_alloc_slow(h, ptr, osize, nsize);
    slab_put(s, ptr, osize);
    h->mem_used -= osize;
    return NULL;
  }
  if (ptr == NULL && nsize <= LUAIO_SLAB_MAX) {
    size_t c = class_of(nsize), real = (c + 1) * LUAIO_SLAB_STEP;
    void *p = s->free[c];
    if (p) s->free[c] = *(void **)p;
    else if ((size_t)(s->end - s->cur) >= real) {
      p = s->cur;
      s->cur += real;
    }
    else return host_alloc_slow(h, ptr, osize, nsize);
    chunk_of(p)->live++;
    h->mem_used += nsize;
    return p;
  }
  return host_alloc_slow(h, ptr, osize, nsize);
}

/* Drop the free blocks of empty chunks from the free lists, then free
 * those chunks (never the one being carved). Costs a walk over every
 * free block, so the host calls it rarely: see luaio__slab_maybe_trim. */
static void slab_trim (luaio_slab *s) {
  size_t c, i, kept = 0;
  char *carving = s->cur ? (char *)chunk_of(s->cur - 1) : NULL;
  for (c = 0; c < LUAIO_SLAB_MAX / LUAIO_SLAB_STEP; c++) {
    void **link = &s->free[c];
    while (*link) {
      if (chunk_of(*link)->live == 0 && (char *)chunk_of(*link) != carving)
        *link = *(void **)*link;                 /* unlink the block */
      else link = (void **)*link;
    }
  }
  for (i = 0; i < s->nchunks; i++) {
    chunk_head *h = s->chunks[i];
    if (h->live == 0 && (char *)h != carving) free(h);
    else s->chunks[kept++] = h;
  }
  s->nchunks = kept;
  s->trimmed_at = kept;
  malloc_trim(0);                    /* and what malloc holds free */
}

/* Trim when less than a quarter of the slab is in use (used: the bytes
 * Lua has allocated), and the slab has grown or the use has halved since
 * the last trim, so a trim that freed little is not repeated each turn. */
void luaio__slab_maybe_trim (luaio_slab *s, size_t used) {
  size_t cap = s->nchunks * CHUNK_SIZE;
  if (s->nchunks < 16 || used >= cap / 4) return;
  if (s->nchunks > s->trimmed_at || used < s->trim_used / 2) {
    slab_trim(s);
    s->trim_used = used;
  }
}

void luaio__slab_free_all (luaio_slab *s) {
  size_t i;
  for (i = 0; i < s->nchunks; i++) free(s->chunks[i]);
  free(s->chunks);
  memset(s, 0, sizeof *s);
}

/* Small C structs of bindings (wait ops) from the same free lists: no
 * malloc header, memory reused across waits. The caller passes the same
 * size to free. */
void *luaio__op_alloc (luaio_host *h, size_t size) {
  if (h->system_malloc || !h->owns_state || size > LUAIO_SLAB_MAX)
    return malloc(size);
  return luaio__slab_realloc(&h->slab, NULL, 0, size);
}

void luaio__op_free (luaio_host *h, void *p, size_t size) {
  if (p == NULL) return;
  if (h->system_malloc || !h->owns_state || size > LUAIO_SLAB_MAX) free(p);
  else luaio__slab_realloc(&h->slab, p, size, 0);
}
