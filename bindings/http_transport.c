/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * http_transport.c: a client's curl multi driven by the host's libuv
 * loop (curl's multi_socket API).
 *
 * A client owns one curl multi (its connection cache, so keep-alive and
 * HTTP/2 multiplexing work across requests), one uv timer that curl arms
 * and one uv_poll_t per socket curl asks us to watch. Cancellation
 * removes a transfer from the multi at once. Curl's callbacks never call
 * back into curl, and we close curl's sockets ourselves, after libuv has
 * stopped polling them.
 */
#include "http_int.h"
#include <unistd.h>

static void sock_free_cb (uv_handle_t *h) {
  free(LUAIO_CONTAINER(h, hsock, poll));
}

static void sock_close (hclient *c, hsock *s) {
  hsock **p;
  for (p = &c->socks; *p; p = &(*p)->next)
    if (*p == s) { *p = s->next; break; }
  uv_poll_stop(&s->poll);                /* epoll forgets the fd now */
  uv_close((uv_handle_t *)&s->poll, sock_free_cb);
}

static void check_done (hclient *c);

static void poll_cb (uv_poll_t *p, int status, int events) {
  hsock *s = LUAIO_CONTAINER(p, hsock, poll);
  hclient *c = s->c;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_done(c);
}

/* A watcher for fd, linked into c and assigned to curl's socket; NULL
 * when out of memory or libuv refuses the fd. */
static hsock *sock_new (hclient *c, curl_socket_t fd) {
  hsock *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  if (uv_poll_init_socket(luaio_loop(c->h), &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->fd = fd;
  s->c = c;
  s->next = c->socks;
  c->socks = s;
  curl_multi_assign(c->multi, fd, s);
  return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch or forget a socket. Never fails. */
static int sock_cb (CURL *e, curl_socket_t fd, int what, void *userp,
                    void *sockp) {
  hclient *c = (hclient *)userp;
  hsock *s = (hsock *)sockp;
  int events = 0;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s) sock_close(c, s);
    curl_multi_assign(c->multi, fd, NULL);
    return 0;
  }
  if (s == NULL && (s = sock_new(c, fd)) == NULL) return 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, poll_cb);
  return 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION: stop polling before the fd goes away. */
int http__closesocket_cb (void *clientp, curl_socket_t fd) {
  hclient *c = (hclient *)clientp;
  hsock *s;
  for (s = c->socks; s; s = s->next)
    if (s->fd == fd) { sock_close(c, s); break; }
  return close(fd);
}

static void timeout_cb (uv_timer_t *t) {
  hclient *c = LUAIO_CONTAINER(t, hclient, timer);
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only arm the timer; curl refuses re-entry. */
static int timer_cb (CURLM *m, long ms, void *userp) {
  hclient *c = (hclient *)userp;
  (void)m;
  if (ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, timeout_cb, (uint64_t)ms, 0);
  return 0;
}

void http__list_add (req **head, req *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
}

void http__list_del (req **head, req *r) {
  if (r->prev) r->prev->next = r->next; else *head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

void http__req_remove (req *r) {
  if (!r->in_multi) return;
  curl_multi_remove_handle(r->c->multi, r->easy);
  luaio__deadline_stop(r->c->h, &r->idle_d);
  http__list_del(&r->c->reqs, r);
  r->in_multi = 0;
}

/* Finish a transfer in the multi with result rc: the waiting task (or
 * the stream's reader) wakes and sees it. */
static void req_finish (req *r, CURLcode rc) {
  http__req_remove(r);
  r->result = rc;
  r->finished = 1;
  luaio_waiter_done(&r->w, 0);         /* no-op once a stream started */
  luaio_waitlist_wake_all(&r->readers, 0);
}

/* idle_timeout: curl's low-speed check works in whole seconds and fired
 * seconds late, so the deadline is ours. Every byte only stamps last_rx;
 * the deadline re-arms itself for what is left. A stream paused because
 * its reader is slow is not idle. */
static void idle_cb (luaio_deadline *d) {
  req *r = LUAIO_CONTAINER(d, req, idle_d);
  luaio_host *tm = r->c->h;
  uint64_t quiet = uv_now(luaio_loop(r->c->h)) - r->last_rx;
  if (r->paused || quiet < r->idle_ms) {
    uint64_t left = r->paused ? r->idle_ms : r->idle_ms - quiet;
    if (luaio__deadline_start(tm, &r->idle_d, left, idle_cb)) return;
  }
  snprintf(r->errbuf, sizeof r->errbuf, "no data received for %.3f s "
           "(idle_timeout)", (double)r->idle_ms / 1000);
  req_finish(r, CURLE_OPERATION_TIMEDOUT);
}

/* Put r's transfer in its client's multi; 0 if curl refuses it. */
int http__req_add (req *r) {
  hclient *c = r->c;
  if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) return 0;
  r->in_multi = 1;
  http__list_add(&c->reqs, r);
  if (r->idle_ms) {
    r->last_rx = uv_now(luaio_loop(c->h));
    luaio__deadline_start(c->h, &r->idle_d, r->idle_ms, idle_cb);
  }
  return 1;
}

static void check_done (hclient *c) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
    req *r;
    CURLcode rc = msg->data.result;      /* msg dies with remove_handle */
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    req_finish(r, rc);
  }
}

/* The cookie share goes last: curl refuses to free it while an easy
 * handle of a request still points to it. */
static void client_free (hclient *c) {
  if (c->share) curl_share_cleanup(c->share);
  free(c);
}

static void client_timer_closed (uv_handle_t *h) {
  hclient *c = LUAIO_CONTAINER(h, hclient, timer);
  c->timer_closed = 1;
  if (c->nreqs == 0) client_free(c);
}

void http__client_unref (hclient *c) {
  if (--c->nreqs == 0 && c->timer_closed) client_free(c);
}

void http__backoff_stop (req *r) {
  if (!r->backoff) return;
  luaio__deadline_stop(r->c->h, &r->d);
  http__list_del(&r->c->backoffs, r);
  r->backoff = 0;
}

/* Abort what is in flight or waiting to retry, then free curl's side; the
 * struct itself goes once its timer is closed and no request points to
 * it. Each request is marked client_closed and its tasks woken with
 * status 0: req_k and chunk_k then raise the same "closed" error, also
 * for a reader that was not waiting at this moment (woken for a chunk
 * and not yet run, or reading later), which used to see the transfer
 * error instead. */
void http__client_close (hclient *c) {
  if (c->closed) return;
  c->closed = 1;
  while (c->reqs) {
    req *r = c->reqs;
    http__req_remove(r);
    r->finished = 1;                     /* a stream ends with an error */
    r->client_closed = 1;
    r->result = CURLE_ABORTED_BY_CALLBACK;
    luaio_waiter_done(&r->w, 0);
    luaio_waitlist_wake_all(&r->readers, 0);
  }
  while (c->backoffs) {
    req *r = c->backoffs;
    http__backoff_stop(r);
    r->client_closed = 1;
    luaio_waiter_done(&r->w, 0);
  }
  curl_multi_cleanup(c->multi);          /* may still call sock_cb */
  while (c->socks) sock_close(c, c->socks);
  uv_close((uv_handle_t *)&c->timer, client_timer_closed);
}

/* A client on h's loop, with a cookie jar if cookies; NULL when out of
 * memory. */
hclient *http__client_new (luaio_host *h, int cookies) {
  hclient *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->h = h;
  c->multi = curl_multi_init();
  if (c->multi == NULL) { free(c); return NULL; }
  if (cookies) {
    c->share = curl_share_init();
    if (c->share) curl_share_setopt(c->share, CURLSHOPT_SHARE,
                                    CURL_LOCK_DATA_COOKIE);
  }
  uv_timer_init(luaio_loop(h), &c->timer);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  return c;
}

/* Cap the client's connections in total and per host (0: no cap). */
void http__set_caps (hclient *c, long total, long per_host) {
  if (total > 0) {             /* a cache as big, so none is reopened */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);
  }
  if (per_host > 0)
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
}
