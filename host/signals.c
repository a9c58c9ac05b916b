/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * signals.c: signal names, and signal watchers that leave the process as
 * they found it.
 *
 * libuv installs its own handler when the first uv_signal_t of a signal
 * starts and sets SIG_DFL when the last one stops, whatever was there
 * before. The CLI's SIGINT and SIGTERM handlers (cancel the main task,
 * clean up, exit 130/143) would then be lost after a script closed its
 * SIGINT watcher, and Ctrl-C would kill the process without cleanup. So
 * every luaio watcher goes through here: the disposition found before
 * the first watcher of a signal is given back after the last one.
 *
 * The counts are process-wide static data, on purpose: signal
 * dispositions belong to the process, not to a host, and libuv's own
 * table of watchers is process-wide too. A mutex guards them (hosts may
 * run on several threads).
 */
#include "osproc.h"
#include <pthread.h>
#include <signal.h>

static const struct { const char *name; int signum; } names[] = {
  {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT},
  {"SIGILL", SIGILL}, {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},
  {"SIGBUS", SIGBUS}, {"SIGFPE", SIGFPE}, {"SIGKILL", SIGKILL},
  {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
  {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},
  {"SIGCHLD", SIGCHLD}, {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},
  {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},
  {"SIGURG", SIGURG}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
  {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
  {"SIGIO", SIGIO}, {"SIGSYS", SIGSYS},
};
#define NNAMES (sizeof names / sizeof names[0])

int luaio__signum (const char *name, int any) {
  size_t i;
  for (i = 0; i < NNAMES; i++) {
    if (strcmp(name, names[i].name) != 0 &&
        strcmp(name, names[i].name + 3) != 0) continue;
    if (!any && (names[i].signum == SIGKILL || names[i].signum == SIGSTOP))
      return 0;
    return names[i].signum;
  }
  return 0;
}

const char *luaio__signame (int signum) {
  size_t i;
  for (i = 0; i < NNAMES; i++)
    if (names[i].signum == signum) return names[i].name;
  return NULL;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int watchers[NSIG];
static struct sigaction saved[NSIG];

int luaio__signal_start (uv_signal_t *s, uv_signal_cb cb, int signum) {
  int err;
  pthread_mutex_lock(&lock);
  if (watchers[signum] == 0) sigaction(signum, NULL, &saved[signum]);
  err = uv_signal_start(s, cb, signum);
  if (err == 0) watchers[signum]++;
  pthread_mutex_unlock(&lock);
  return err;
}

/* uv_close stops the watcher at once (libuv's handler goes with the
 * last one), so the saved disposition is back before this returns. */
void luaio__signal_close (uv_signal_t *s, uv_close_cb cb) {
  int signum = s->signum;
  pthread_mutex_lock(&lock);
  uv_close((uv_handle_t *)s, cb);
  if (signum > 0 && signum < NSIG && --watchers[signum] == 0)
    sigaction(signum, &saved[signum], NULL);
  pthread_mutex_unlock(&lock);
}
