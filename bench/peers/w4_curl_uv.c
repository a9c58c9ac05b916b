/* W4 baseline: TOTAL GETs of URL with CONC transfers in flight on one
 * curl multi driven by libuv (multi_socket), keep-alive.
 * usage: w4_curl_uv URL TOTAL CONC */
#include <curl/curl.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sock { uv_poll_t poll; curl_socket_t fd; } sock;

static uv_loop_t *loop;
static uv_timer_t timer;
static CURLM *multi;
static const char *url;
static long total, started, ok;

static size_t discard (char *p, size_t s, size_t n, void *u) {
  (void)p; (void)u;
  return s * n;
}

static void start_one (void) {
  CURL *e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_multi_add_handle(multi, e);
  started++;
}

static void check_done (void) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(multi, &left))) {
    long code = 0;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
    if (m->data.result == CURLE_OK && code == 200) ok++;
    curl_multi_remove_handle(multi, m->easy_handle);
    curl_easy_cleanup(m->easy_handle);
    if (started < total) start_one();
  }
}

static void on_poll (uv_poll_t *p, int st, int ev) {
  sock *s = p->data;
  int running, flags = st < 0 ? CURL_CSELECT_ERR
    : ((ev & UV_READABLE) ? CURL_CSELECT_IN : 0) |
      ((ev & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  curl_multi_socket_action(multi, s->fd, flags, &running);
  check_done();
}

static void on_close (uv_handle_t *h) { free(h->data); }

static int sock_cb (CURL *e, curl_socket_t fd, int what, void *u, void *sp) {
  sock *s = sp;
  (void)e; (void)u;
  if (what == CURL_POLL_REMOVE) {
    if (s) { uv_poll_stop(&s->poll); uv_close((uv_handle_t *)&s->poll, on_close); }
    curl_multi_assign(multi, fd, NULL);
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    s->fd = fd;
    uv_poll_init_socket(loop, &s->poll, fd);
    s->poll.data = s;
    curl_multi_assign(multi, fd, s);
  }
  uv_poll_start(&s->poll, ((what & CURL_POLL_IN) ? UV_READABLE : 0) |
                ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0), on_poll);
  return 0;
}

static void on_timeout (uv_timer_t *t) {
  int running;
  (void)t;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

static int timer_cb (CURLM *m, long ms, void *u) {
  (void)m; (void)u;
  if (ms < 0) uv_timer_stop(&timer);
  else uv_timer_start(&timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

int main (int argc, char **argv) {
  long conc, i;
  uint64_t t0;
  double dt;
  if (argc < 4) return 2;
  url = argv[1];
  total = atol(argv[2]);
  conc = atol(argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);
  t0 = uv_hrtime();
  for (i = 0; i < conc && i < total; i++) start_one();
  while (ok < total && uv_run(loop, UV_RUN_ONCE)) {}
  dt = (uv_hrtime() - t0) / 1e9;
  if (ok != total) { fprintf(stderr, "only %ld of %ld ok\n", ok, total); return 1; }
  printf("W4 curl-uv %.0f req/s wall_s=%.3f\n", total / dt, dt);
  return 0;
}
