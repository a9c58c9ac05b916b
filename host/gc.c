/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * gc.c: the collector's pause, scaled by the share of the heap that live
 * tasks hold.
 *
 * Lua's incremental collector starts a cycle when the heap reaches
 * pause% of what the last cycle kept (200 by default), and a cycle walks
 * every live coroutine twice (Lua 5.4 never marks a thread black: each is
 * walked again in the atomic phase, stack and all). A live task is never
 * garbage, so while a script spawns thousands of tasks most of every
 * cycle is work that frees nothing: measured, 25-30% of W1's wall time
 * at 100,000 tasks (bench/RESULTS.md, "Where the time goes").
 *
 * So the host raises the pause from 200 towards 400 as live tasks make up
 * more of the heap. A heap of tasks is collected about a third as often;
 * a heap of plain data and its garbage keeps Lua's 200, and with it the
 * memory such a script reaches. The garbage a task-heavy heap may gather
 * before a cycle grows from 1x to at most 3x what is live, most of which
 * is the tasks themselves.
 *
 * A script that sets the collector itself keeps its setting: the host
 * stops for good as soon as the pause is not the one it last set
 * (collectgarbage("setpause", n), or "incremental" with a pause). Only a
 * state the host created is tuned: an embedding application's own state
 * keeps the application's policy.
 */
#include "private.h"

#define PAUSE_LUA 200           /* Lua's default, LUAI_GCPAUSE */
#define PAUSE_MAX 400
#define PAUSE_STEP 20           /* change it only by whole steps */
/* What a live task holds at least: its coroutine (a lua_State of 208
 * bytes and a 720-byte stack) and its record. An underestimate keeps
 * the pause nearer Lua's. */
#define TASK_BYTES 1024

void luaio__gc_init (luaio_host *h) {
  h->gc_pause = h->owns_state ? PAUSE_LUA : 0;
}

void luaio__gc_tune (luaio_host *h) {
  size_t tasks, heap = h->mem_used;
  int pause, old;
  if (h->gc_pause == 0 || heap == 0) return;
  tasks = (size_t)h->ntasks * TASK_BYTES;
  if (tasks > heap) tasks = heap;
  pause = PAUSE_LUA + (int)((PAUSE_MAX - PAUSE_LUA) * tasks / heap);
  pause -= pause % PAUSE_STEP;
  if (pause == h->gc_pause) return;
  old = lua_gc(h->L, LUA_GCSETPAUSE, pause);
  if (old == -1) return;              /* inside a finalizer: next time */
  if (old != h->gc_pause) {           /* the script set it: keep that */
    lua_gc(h->L, LUA_GCSETPAUSE, old);
    h->gc_pause = 0;
    return;
  }
  h->gc_pause = pause;
}
