/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * repl_support.c: what an interactive embedder (the luaio program's REPL)
 * needs beyond the rest of the API.
 */
#include "private.h"

/* Only compares pointers and sets a hook: signal-safe like
 * luaio_interrupt. */
void luaio_interrupt_task (luaio_host *h, luaio_task *t) {
  if (t != NULL && h->current == t) luaio_interrupt(h);
}
