/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * timer.c: one uv_timer_t per host and a min-heap of deadlines.
 *
 * aio.sleep and other waits with a deadline use this instead of a
 * uv_timer_t each: a deadline is a few words in the op (no handle to
 * init and close, no close callback), which matters with 100,000
 * sleepers. Equal deadlines fire in the order they were set.
 */
#include "private.h"

/* seq wraps (32 bits: 24 bytes a deadline, not 32): compared as serial
 * numbers, right while equal deadlines are set less than 2^31 apart. */
static int before (const luaio_deadline *a, const luaio_deadline *b) {
  return a->due < b->due ||
         (a->due == b->due && (int32_t)(a->seq - b->seq) < 0);
}

static void heap_set (luaio_timers *tm, size_t i, luaio_deadline *d) {
  tm->heap[i] = d;
  d->slot = (uint32_t)i;
}

static void sift_up (luaio_timers *tm, size_t i) {
  luaio_deadline *d = tm->heap[i];
  while (i > 0 && before(d, tm->heap[(i - 1) / 2])) {
    heap_set(tm, i, tm->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(tm, i, d);
}

static void sift_down (luaio_timers *tm, size_t i) {
  luaio_deadline *d = tm->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= tm->n) break;
    if (c + 1 < tm->n && before(tm->heap[c + 1], tm->heap[c])) c++;
    if (!before(tm->heap[c], d)) break;
    heap_set(tm, i, tm->heap[c]);
    i = c;
  }
  heap_set(tm, i, d);
}

static void timers_cb (uv_timer_t *timer);
static void heap_remove (luaio_timers *tm, luaio_deadline *d);

/* Arm the uv timer for the earliest deadline, or stop it. */
static void rearm (luaio_timers *tm) {
  uint64_t now;
  if (tm->n == 0) { uv_timer_stop(&tm->timer); return; }
  now = uv_now(tm->timer.loop);
  uv_timer_start(&tm->timer, timers_cb,
                 tm->heap[0]->due > now ? tm->heap[0]->due - now : 0, 0);
}

static void timers_cb (uv_timer_t *timer) {
  luaio_timers *tm = LUAIO_CONTAINER(timer, luaio_timers, timer);
  uint64_t now = uv_now(timer->loop);
  while (tm->n > 0 && tm->heap[0]->due <= now) {
    luaio_deadline *d = tm->heap[0];
    heap_remove(tm, d);
    d->cb(d);
  }
  rearm(tm);
}

void luaio__timers_init (luaio_timers *tm, uv_loop_t *loop) {
  memset(tm, 0, sizeof *tm);
  uv_timer_init(loop, &tm->timer);
}

/* Returns 0 when out of memory. */
int luaio__deadline_start (luaio_host *h, luaio_deadline *d, uint64_t ms,
                           void (*cb)(luaio_deadline *d)) {
  luaio_timers *tm = &h->timers;
  if (tm->n == tm->cap) {
    size_t cap = tm->cap ? tm->cap * 2 : 64;
    if (tm->n >= UINT32_MAX) return 0;
    luaio_deadline **heap = realloc(tm->heap, cap * sizeof *heap);
    if (heap == NULL) return 0;
    tm->heap = heap;
    tm->cap = cap;
  }
  uv_update_time(tm->timer.loop);   /* the cached time may be a turn old */
  /* uv_now counts whole milliseconds: +1 so the wait is never shorter
   * than asked when measured with a finer clock. */
  d->due = uv_now(tm->timer.loop) + ms + (ms > 0);
  d->seq = (uint32_t)tm->seq++;
  d->cb = cb;
  heap_set(tm, tm->n++, d);
  sift_up(tm, d->slot);
  if (d->slot == 0) rearm(tm);
  return 1;
}

void luaio__deadline_stop (luaio_host *h, luaio_deadline *d) {
  heap_remove(&h->timers, d);
}

static void heap_remove (luaio_timers *tm, luaio_deadline *d) {
  size_t i = d->slot;
  if (i >= tm->n || tm->heap[i] != d) return;    /* not armed */
  tm->n--;
  if (i != tm->n) {
    heap_set(tm, i, tm->heap[tm->n]);
    sift_down(tm, i);
    sift_up(tm, tm->heap[i]->slot);
  }
  d->slot = UINT32_MAX;
}

/* Close the timer; its close callback gets data in handle->data. */
void luaio__timers_close (luaio_timers *tm, void *data, uv_close_cb cb) {
  free(tm->heap);
  tm->timer.data = data;
  tm->heap = NULL;
  tm->n = tm->cap = 0;
  uv_close((uv_handle_t *)&tm->timer, cb);
}
