/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * redis_link.c: hiredis connections attached to the host's loop with
 * hiredis's own libuv adapter, their set-up commands, the reconnect
 * backoff of the main link and the pool of links for blocking commands.
 *
 * Commands written in one loop turn share one write: hiredis appends
 * them to its output buffer and asks the adapter for writability, which
 * libuv reports once per turn.
 */
#include "redis.h"
#include <errno.h>
#include <adapters/libuv.h>

#define POOL_IDLE_MAX 16
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

redisReply *rd_steal (redisReply *r) {
  redisReply *mine = malloc(sizeof *mine);
  if (mine == NULL) return NULL;
  *mine = *r;
  r->type = REDIS_REPLY_INTEGER;          /* an empty shell for hiredis */
  r->str = NULL;
  r->len = 0;
  r->element = NULL;
  r->elements = 0;
  return mine;
}

/* The adapter's poll callback drops the error status libuv gives for a
 * socket in error (a refused connect, a reset) and hiredis then never
 * learns of it: the commands queued wait for ever. This one hands the
 * error to hiredis's handlers, which find it on the socket. */
static void link_poll (uv_poll_t *handle, int status, int events) {
  redisLibuvEvents *p = handle->data;
  if (status != 0) events = p->events ? p->events : UV_READABLE;
  if (p->context != NULL && (events & UV_WRITABLE))
    redisAsyncHandleWrite(p->context);
  if (p->context != NULL && (events & UV_READABLE))
    redisAsyncHandleRead(p->context);
}

static void poll_update (redisLibuvEvents *p) {
  if (p->events) uv_poll_start(&p->handle, p->events, link_poll);
  else uv_poll_stop(&p->handle);
}

static void ev_add_read (void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_READABLE;
  poll_update(p);
}

static void ev_del_read (void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_READABLE;
  poll_update(p);
}

static void ev_add_write (void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_WRITABLE;
  poll_update(p);
}

static void ev_del_write (void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_WRITABLE;
  poll_update(p);
}

/* A pool link is on its client's idle or busy list. */
static void list_remove (rd_link *l) {
  rd_link **pp;
  if (l->list == NULL) return;
  for (pp = l->list; *pp != l; pp = &(*pp)->next) {}
  *pp = l->next;
  if (l->list == &l->cl->idle) l->cl->nidle--;
  l->list = NULL;
  l->next = NULL;
}

static void list_push (rd_link **list, rd_link *l) {
  l->next = *list;
  *list = l;
  l->list = list;
}

static int remember_failure (rd_client *cl, int status, const char *msg) {
  cl->last_status = status;
  snprintf(cl->last_msg, sizeof cl->last_msg, "%s", msg);
  return status;
}

static void backoff (rd_client *cl) {
  cl->backoff_ms = cl->backoff_ms ? cl->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (cl->backoff_ms > BACKOFF_MAX_MS) cl->backoff_ms = BACKOFF_MAX_MS;
  cl->retry_at = uv_now(luaio_loop(cl->h)) + cl->backoff_ms;
}

/* The adapter's cleanup runs once per context, whatever ended it (a
 * failed connect, the server gone, redisAsyncFree), after every pending
 * callback: the one place a link learns its context is gone. A pool or
 * subscription link is freed here; the main link lives in its client. */
static void link_cleanup (void *privdata) {
  redisLibuvEvents *p = privdata;
  redisAsyncContext *ac = p->context;
  rd_link *l = ac ? ac->data : NULL;
  if (l == NULL) return;
  l->cleanup(privdata);             /* closes the poll handle, and sets
                                       p->context to NULL: keep ac */
  l->ac = NULL;
  l->connected = 0;
  if (l->kind == RD_MAIN) return;
  ac->data = NULL;                  /* on_disconnect runs after this */
  list_remove(l);
  if (l->sub) rd_sub_gone(l->sub);
  free(l->setup_err);
  free(l);
}

static void on_connect (const redisAsyncContext *ac, int status) {
  rd_link *l = ac->data;
  rd_client *cl = l->cl;
  int st;
  if (status == REDIS_OK) {
    l->connected = 1;
    if (l->kind == RD_MAIN) cl->backoff_ms = 0;
    return;
  }
  l->sys_errno = ac->c.err == REDIS_ERR_IO ? errno : 0;
  if (l->kind != RD_MAIN) return;
  st = l->sys_errno ? uv_translate_sys_error(l->sys_errno) : UV_EIO;
  remember_failure(cl, st, ac->errstr);
  backoff(cl);
}

static void on_disconnect (const redisAsyncContext *ac, int status) {
  rd_link *l = ac->data;
  (void)status;
  if (l && l->kind == RD_MAIN) l->cl->retry_at = 0;   /* reconnect at once */
}

/* AUTH, SELECT and CLIENT SETNAME replies: an error reply drops the
 * link, so the commands queued behind fail with its text. */
static void setup_cb (redisAsyncContext *ac, void *r, void *priv) {
  redisReply *reply = r;
  rd_link *l = ac->data;
  (void)priv;
  if (reply == NULL || reply->type != REDIS_REPLY_ERROR) return;
  if (l->setup_err == NULL) l->setup_err = strdup(reply->str);
  redisAsyncFree(ac);                     /* deferred: inside a callback */
}

static void send_setup (rd_client *cl, redisAsyncContext *ac) {
  char db[24];
  if (cl->password) {
    const char *argv[3] = {"AUTH", cl->user, cl->password};
    if (cl->user) redisAsyncCommandArgv(ac, setup_cb, NULL, 3, argv, NULL);
    else {
      argv[1] = cl->password;
      redisAsyncCommandArgv(ac, setup_cb, NULL, 2, argv, NULL);
    }
  }
  if (cl->db) {
    const char *argv[2] = {"SELECT", db};
    snprintf(db, sizeof db, "%d", cl->db);
    redisAsyncCommandArgv(ac, setup_cb, NULL, 2, argv, NULL);
  }
  if (cl->name) {
    const char *argv[3] = {"CLIENT", "SETNAME", cl->name};
    redisAsyncCommandArgv(ac, setup_cb, NULL, 3, argv, NULL);
  }
}

/* Start connecting l; commands may be queued on it at once (hiredis
 * sends them once connected). Returns 0 or a uv status, the reason in
 * cl->last_msg. */
int rd_link_open (rd_client *cl, rd_link *l, int kind) {
  redisAsyncContext *ac = redisAsyncConnect(cl->host, cl->port);
  int status;
  if (ac == NULL) return remember_failure(cl, UV_ENOMEM, "out of memory");
  if (ac->err) {
    status = ac->err == REDIS_ERR_IO ? uv_translate_sys_error(errno)
                                     : UV_EINVAL;
    if (status == 0) status = UV_EIO;
    remember_failure(cl, status, ac->errstr);
    redisAsyncFree(ac);
    return status;
  }
  if (redisLibuvAttach(ac, luaio_loop(cl->h)) != REDIS_OK) {
    redisAsyncFree(ac);
    return remember_failure(cl, UV_ENOMEM, "cannot attach to the loop");
  }
  l->cl = cl;
  l->kind = kind;
  l->ac = ac;
  l->connected = 0;
  l->down_why = NULL;
  l->sys_errno = 0;
  free(l->setup_err);
  l->setup_err = NULL;
  ac->data = l;
  l->cleanup = ac->ev.cleanup;
  ac->ev.cleanup = link_cleanup;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  send_setup(cl, ac);
  return 0;
}

/* Drop l's context now: its pending callbacks run (NULL replies, failing
 * with status and why) before this returns, unless we are inside one of
 * its callbacks, where hiredis defers the free to its return. */
void rd_link_drop (rd_link *l, int status, const char *why) {
  if (l->ac == NULL) return;
  l->down_status = status;
  l->down_why = why;
  redisAsyncFree(l->ac);
}

/* The main link, connected or connecting: 0, or the uv status of the
 * last failure while the backoff since it lasts. */
int rd_main_ready (rd_client *cl) {
  int status;
  if (cl->main.ac) return 0;
  if (uv_now(luaio_loop(cl->h)) < cl->retry_at) return cl->last_status;
  status = rd_link_open(cl, &cl->main, RD_MAIN);
  if (status) backoff(cl);
  return status;
}

/* A link for one blocking command: idle from the pool or new. NULL with
 * *status on failure. */
rd_link *rd_pool_get (rd_client *cl, int *status) {
  rd_link *l = cl->idle;
  if (l) list_remove(l);
  else {
    l = calloc(1, sizeof *l);
    if (l == NULL) { *status = UV_ENOMEM; return NULL; }
    *status = rd_link_open(cl, l, RD_POOL);
    if (*status) { free(l); return NULL; }
  }
  list_push(&cl->busy, l);
  return l;
}

/* A new link for a subscription, on the client's list of them. */
rd_link *rd_sub_link (rd_client *cl, struct rd_sub *sub, int *status) {
  rd_link *l = calloc(1, sizeof *l);
  if (l == NULL) { *status = UV_ENOMEM; return NULL; }
  *status = rd_link_open(cl, l, RD_SUB);
  if (*status) { free(l); return NULL; }
  l->sub = sub;
  list_push(&cl->subs, l);
  return l;
}

/* Give back a pool link whose command has replied (from its callback:
 * a drop here is deferred by hiredis to the callback's return). */
void rd_pool_put (rd_link *l) {
  rd_client *cl = l->cl;
  if (l->ac == NULL || cl->closed || l->ac->err) return;
  if (cl->nidle >= POOL_IDLE_MAX) {
    rd_link_drop(l, UV_ECANCELED, "pool full");
    return;
  }
  list_remove(l);
  list_push(&cl->idle, l);
  cl->nidle++;
}

/* r:close(): every link dropped, every waiting command woken (their
 * callbacks run now, failing with "connection closed"). */
void rd_client_shutdown (rd_client *cl) {
  cl->closed = 1;
  while (cl->idle)
    rd_link_drop(cl->idle, UV_ECONNABORTED, "connection closed");
  while (cl->busy)
    rd_link_drop(cl->busy, UV_ECONNABORTED, "connection closed");
  while (cl->subs)
    rd_link_drop(cl->subs, UV_ECONNABORTED, "connection closed");
  rd_link_drop(&cl->main, UV_ECONNABORTED, "connection closed");
  free(cl->main.setup_err);
  cl->main.setup_err = NULL;
}

int rd_link_failure (rd_link *l, char **msg, int *redis_kind) {
  redisAsyncContext *ac = l->ac;
  *msg = NULL;
  *redis_kind = 0;
  if (l->setup_err) {
    *redis_kind = 1;
    *msg = strdup(l->setup_err);
    return UV_EPROTO;
  }
  if (ac && ac->err) {
    int st = l->sys_errno ? uv_translate_sys_error(l->sys_errno) : 0;
    if (st == 0) st = ac->err == REDIS_ERR_EOF ? UV_EOF : UV_ECONNRESET;
    *msg = strdup(ac->errstr);
    return st;
  }
  if (l->down_why) *msg = strdup(l->down_why);
  return l->down_status ? l->down_status : UV_ECONNRESET;
}
