/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * sandbox.c: the luaio program's sandbox and cap options (--sandbox,
 * --allow-*, --max-*), turned into a luaio_config and a luaio_sandbox
 * before the host exists. Written only against luaio.h.
 */
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append the comma-separated entries of value to list (NULL-terminated,
 * owned by the options). 0, or 1 after a message. */
static int add_list (cli_sandbox *s, const char ***list, const char *flag,
                     const char *value) {
  size_t n = 0, more = 1;
  const char *p;
  char *copy, *tok, *save;
  if (value == NULL || *value == '\0') {
    fprintf(stderr, "luaio: %s needs a value (%s=A[,B...])\n", flag, flag);
    return 1;
  }
  for (p = value; *p; p++) more += *p == ',';
  while (*list && (*list)[n]) n++;
  *list = realloc((void *)*list, (n + more + 1) * sizeof **list);
  copy = strdup(value);
  if (*list == NULL || copy == NULL || s->ncopies == CLI_MAX_COPIES) {
    fprintf(stderr, "luaio: too many or too long %s options\n", flag);
    free(copy);
    return 1;
  }
  s->copies[s->ncopies++] = copy;
  for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    (*list)[n++] = tok;
  (*list)[n] = NULL;
  return 0;
}

/* "64M", "512k", "2G", "1000000": bytes; 0 if malformed. */
static size_t parse_size (const char *s) {
  char *end;
  double v = strtod(s, &end);
  double mul = 1;
  if (end == s || !(v > 0)) return 0;
  switch (*end) {
    case 'k': case 'K': mul = 1024; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end || v * mul > 1e15 || v * mul < 1) return 0;
  return (size_t)(v * mul);
}

static int bad_value (const char *flag, const char *value, const char *want) {
  fprintf(stderr, "luaio: bad value for %s: '%s' (%s)\n", flag,
          value ? value : "", want);
  return 1;
}

/* The caps: --max-memory=SIZE, --max-time=SECONDS, --max-tasks=N. */
static int parse_cap (cli_sandbox *s, const char *flag, const char *v) {
  char *end;
  double d;
  if (strcmp(flag, "--max-memory") == 0) {
    if (v == NULL || (s->cfg.mem_limit = parse_size(v)) == 0)
      return bad_value(flag, v, "a size such as 64M, 512k or 1G");
    s->cfg.hard_limits = 1;
    return 0;
  }
  d = v ? strtod(v, &end) : 0;
  if (v == NULL || end == v || *end || !(d > 0) || d > 1e7)
    return bad_value(flag, v, strcmp(flag, "--max-time") == 0
                     ? "seconds, more than 0" : "a whole number, more than 0");
  if (strcmp(flag, "--max-time") == 0) {
    s->cfg.max_time_ms = (unsigned)(d * 1000 + 0.5);
    if (s->cfg.max_time_ms == 0) s->cfg.max_time_ms = 1;
  }
  else if (d != (int)d) return bad_value(flag, v, "a whole number");
  else s->cfg.max_tasks = (int)d;
  return 0;
}

/* One option o of the command line: returns 0 if it was one of ours
 * (handled), 1 after a message, -1 if it is not one of ours. */
int cli_sandbox_option (cli_sandbox *s, const char *o) {
  static const char *const lists[] = {"--allow-read", "--allow-write",
    "--allow-net", "--allow-run", "--allow-env", NULL};
  const char *eq = strchr(o, '='), *v = eq ? eq + 1 : NULL;
  size_t n = eq ? (size_t)(eq - o) : strlen(o);
  int i;
  if (strcmp(o, "--sandbox") == 0) { s->on = 1; return 0; }
  if (n == 11 && strncmp(o, "--allow-env", n) == 0 && v == NULL) {
    s->on = s->sb.env_all = 1;
    return 0;
  }
  for (i = 0; lists[i]; i++) {
    const char ***l[] = {(const char ***)&s->sb.read,
      (const char ***)&s->sb.write, (const char ***)&s->sb.net,
      (const char ***)&s->sb.run, (const char ***)&s->sb.env};
    if (strlen(lists[i]) != n || strncmp(o, lists[i], n) != 0) continue;
    s->on = 1;
    return add_list(s, l[i], lists[i], v);
  }
  if ((n == 12 && strncmp(o, "--max-memory", n) == 0) ||
      (n == 10 && strncmp(o, "--max-time", n) == 0) ||
      (n == 11 && strncmp(o, "--max-tasks", n) == 0)) {
    char flag[16];
    memcpy(flag, o, n);
    flag[n] = '\0';
    return parse_cap(s, flag, v);
  }
  return -1;
}

/* The config for luaio_new: with the sandbox when asked for. 0, or 1
 * after a message (a malformed --allow-net entry). */
int cli_sandbox_config (cli_sandbox *s, luaio_config *cfg) {
  const char *bad;
  *cfg = s->cfg;
  if (!s->on) return 0;
  if ((bad = luaio_sandbox_invalid(&s->sb)) != NULL)
    return bad_value("--allow-net", bad, "host, host:port or [IPv6]:port");
  cfg->sandbox = &s->sb;
  return 0;
}

void cli_sandbox_free (cli_sandbox *s) {
  int i;
  for (i = 0; i < s->ncopies; i++) free(s->copies[i]);
  free((void *)s->sb.read);
  free((void *)s->sb.write);
  free((void *)s->sb.net);
  free((void *)s->sb.run);
  free((void *)s->sb.env);
  memset(s, 0, sizeof *s);
}
