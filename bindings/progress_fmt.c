/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * progress_fmt.c: the text of a progress bar: humanised sizes and
 * durations, and the three shapes of line (terminal frame, plain log
 * line, summary). No Lua and no I/O here, so the timer callback can use
 * it and the specs can table-test it through progress.format_bytes.
 */
#include "progress.h"

#define BAR_WIDTH 20

void luaio__progress_bytes (char *buf, size_t n, double v) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB",
                                      "PiB", "EiB"};
  size_t u = 1;
  if (!(v >= 0)) v = 0;                           /* NaN */
  if (v < 1023.5) {                               /* "1024 B" never */
    snprintf(buf, n, "%.0f B", v);
    return;
  }
  v /= 1024;
  while (v >= 1023.95 && u < 6) {                 /* "1024.0 KiB" never */
    v /= 1024;
    u++;
  }
  snprintf(buf, n, "%.1f %s", v, units[u]);
}

void luaio__progress_duration (char *buf, size_t n, double s) {
  unsigned long long t;
  if (!(s >= 0) || s >= 3.6e9) {                 /* NaN, < 0, absurd */
    snprintf(buf, n, "--:--");
    return;
  }
  t = (unsigned long long)s;
  if (t >= 3600)
    snprintf(buf, n, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%llu:%02llu", t / 60, t % 60);
}

/* "42/100 pages", "1.5 MiB/3.0 MiB", "42" (no total, no unit). */
static void amount (const pbar *b, char *buf, size_t n) {
  char c[32], t[32];
  if (b->bytes) {
    luaio__progress_bytes(c, sizeof c, (double)b->count);
    if (b->total < 0) snprintf(buf, n, "%s", c);
    else {
      luaio__progress_bytes(t, sizeof t, (double)b->total);
      snprintf(buf, n, "%s/%s", c, t);
    }
    return;
  }
  if (b->total < 0) snprintf(c, sizeof c, "%lld", (long long)b->count);
  else snprintf(c, sizeof c, "%lld/%lld", (long long)b->count,
                (long long)b->total);
  snprintf(buf, n, "%s%s%s", c, *b->unit ? " " : "", b->unit);
}

/* "12.3 pages/s", "512.0 KiB/s". */
static void rate_text (const pbar *b, double rate, char *buf, size_t n) {
  char r[32];
  if (b->bytes) {
    luaio__progress_bytes(r, sizeof r, rate);
    snprintf(buf, n, "%s/s", r);
  }
  else snprintf(buf, n, "%.1f%s%s/s", rate, *b->unit ? " " : "", b->unit);
}

/* "[#########-----------]" for pct (clamped). */
static void bar_text (int pct, char *buf) {
  int i, fill = (pct < 0 ? 0 : pct > 100 ? 100 : pct) * BAR_WIDTH / 100;
  buf[0] = '[';
  for (i = 0; i < BAR_WIDTH; i++) buf[1 + i] = i < fill ? '#' : '-';
  buf[1 + BAR_WIDTH] = ']';
  buf[2 + BAR_WIDTH] = '\0';
}

/* The shapes, for a known total and for an unknown one:
 *   tty      label [####----]  42% 42/100 pages  12.3 pages/s  ETA 0:05
 *            label 42 pages  12.3 pages/s
 *   final    as tty, "in 0:08" for the ETA ("  in 0:08" appended)
 *   plain    label: 42/100 pages (42%), 12.3 pages/s, ETA 0:05
 *            label: 42 pages, 12.3 pages/s
 *   summary  label: 100/100 pages (100%) in 0:08, 12.3 pages/s
 *            label: 42 pages in 0:03, 12.3 pages/s */
void luaio__progress_line (const pbar *b, int mode, uint64_t now, char *buf,
                           size_t n) {
  double secs = (double)(now - b->start) / 1e9;
  double rate = secs > 0 ? (double)b->count / secs : 0;
  double eta = rate > 0 ? (double)(b->total - b->count) / rate : -1;
  int known = b->total >= 0, tty = mode <= LINE_TTY_FINAL;
  int pct = !known ? 0 : b->total == 0 ? 100
            : (int)((double)b->count * 100 / (double)b->total);
  char am[80], rt[48], time[24], bar[BAR_WIDTH + 3], pre[8];
  const char *lsep = *b->label ? (tty ? " " : ": ") : "";
  amount(b, am, sizeof am);
  rate_text(b, rate, rt, sizeof rt);
  luaio__progress_duration(time, sizeof time,
                           mode == LINE_TTY || mode == LINE_PLAIN ? eta : secs);
  bar_text(pct, bar);
  snprintf(pre, sizeof pre, "%3d%%", pct);
  switch (mode) {
    case LINE_TTY: case LINE_TTY_FINAL:
      if (known)
        snprintf(buf, n, "%s%s%s %s %s  %s  %s %s", b->label, lsep, bar, pre,
                 am, rt, mode == LINE_TTY ? "ETA" : "in", time);
      else if (mode == LINE_TTY)
        snprintf(buf, n, "%s%s%s  %s", b->label, lsep, am, rt);
      else snprintf(buf, n, "%s%s%s  %s  in %s", b->label, lsep, am, rt,
                    time);
      break;
    case LINE_PLAIN:
      if (known) snprintf(buf, n, "%s%s%s (%d%%), %s, ETA %s", b->label,
                          lsep, am, pct, rt, time);
      else snprintf(buf, n, "%s%s%s, %s", b->label, lsep, am, rt);
      break;
    default:
      if (known) snprintf(buf, n, "%s%s%s (%d%%) in %s, %s", b->label, lsep,
                          am, pct, time, rt);
      else snprintf(buf, n, "%s%s%s in %s, %s", b->label, lsep, am, time, rt);
  }
}
