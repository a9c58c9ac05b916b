/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * progress.h: what the two files of `luaio.progress` share: the bar
 * (progress.c owns it and draws it) and its text (progress_fmt.c).
 */
#ifndef LUAIO_PROGRESS_H
#define LUAIO_PROGRESS_H

#include "../host/host.h"

struct pboard;

/* A bar lives in its userdata; a drawn bar is also on its board's list
 * (unlinked before the userdata can be freed). */
typedef struct pbar {
  struct pboard *board;         /* NULL: quiet, or closed */
  struct pbar *next;            /* the board's next bar */
  lua_Integer count, total;     /* total < 0: unknown */
  lua_Integer shown;            /* count at the last plain line */
  char *label, *unit;           /* malloc'd, "" when not given */
  luaL_Stream *ls;              /* the stream given, or NULL: stderr */
  FILE *f;
  uint64_t start, last_line;    /* uv_hrtime() */
  uint64_t interval;            /* ns between plain lines */
  unsigned char bytes;          /* unit "B": humanised sizes */
  unsigned char quiet, summary, closed;
} pbar;

/* What a line is for: a terminal frame (live or final), a plain line of
 * a log, the summary at close. */
enum { LINE_TTY, LINE_TTY_FINAL, LINE_PLAIN, LINE_SUMMARY };

/* "1023 B", "1.5 KiB", "2.0 MiB"... (binary units, one decimal). */
void luaio__progress_bytes(char *buf, size_t n, double v);
/* "0:05", "1:02:03"; "--:--" for a negative, infinite or NaN time. */
void luaio__progress_duration(char *buf, size_t n, double s);
/* The text of b for mode at time now (no newline), at most n-1 bytes. */
void luaio__progress_line(const pbar *b, int mode, uint64_t now, char *buf,
                          size_t n);

#endif
