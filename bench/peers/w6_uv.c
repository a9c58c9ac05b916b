/* W6 libuv baseline in one process: a line echo server and CONNS
 * clients, each sending LINES lines and waiting for each echo.
 * usage: w6_uv [CONNS] [LINES] */
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conn {
  uv_tcp_t tcp;
  char in[65536];
  size_t len;
  long sent, got;
  int client;
} conn;

typedef struct wreq { uv_write_t w; char data[]; } wreq;

static uv_loop_t *loop;
static uv_tcp_t server;
static long conns, lines, finished;

static void on_alloc (uv_handle_t *h, size_t sz, uv_buf_t *b) {
  conn *c = h->data;
  (void)sz;
  *b = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - c->len));
}

static void on_written (uv_write_t *w, int st) { (void)st; free(w); }

static void send_bytes (conn *c, const char *p, size_t n) {
  wreq *r = malloc(sizeof *r + n);
  uv_buf_t b;
  memcpy(r->data, p, n);
  b = uv_buf_init(r->data, (unsigned)n);
  uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void send_line (conn *c) {
  char m[32];
  int n = snprintf(m, sizeof m, "line %ld\n", ++c->sent);
  send_bytes(c, m, (size_t)n);
}

static void on_close (uv_handle_t *h) { free(h->data); }

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  char *p, *last = NULL, *end;
  (void)b;
  if (n < 0) { uv_close((uv_handle_t *)s, on_close); return; }
  c->len += (size_t)n;
  end = c->in + c->len;
  for (p = c->in; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
    last = p + 1;
    if (c->client) c->got++;
  }
  if (!last) return;
  if (!c->client) send_bytes(c, c->in, (size_t)(last - c->in));
  memmove(c->in, last, (size_t)(end - last));
  c->len = (size_t)(end - last);
  if (!c->client) return;
  if (c->got < lines) send_line(c);
  else {
    uv_close((uv_handle_t *)s, on_close);
    if (++finished == conns) uv_close((uv_handle_t *)&server, NULL);
  }
}

static conn *new_conn (int client) {
  conn *c = calloc(1, sizeof *c);
  c->client = client;
  uv_tcp_init(loop, &c->tcp);
  uv_tcp_nodelay(&c->tcp, 1);
  c->tcp.data = c;
  return c;
}

static void on_conn (uv_stream_t *srv, int st) {
  conn *c;
  if (st) return;
  c = new_conn(0);
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connect (uv_connect_t *r, int st) {
  conn *c = r->data;
  free(r);
  if (st) exit(1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  send_line(c);
}

int main (int argc, char **argv) {
  struct sockaddr_in a;
  int len = sizeof a;
  long i;
  uint64_t t0;
  double dt;
  conns = argc > 1 ? atol(argv[1]) : 100;
  lines = argc > 2 ? atol(argv[2]) : 10000;
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &server);
  uv_tcp_bind(&server, (struct sockaddr *)&a, 0);
  if (uv_listen((uv_stream_t *)&server, 1024, on_conn)) return 1;
  uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
  t0 = uv_hrtime();
  for (i = 0; i < conns; i++) {
    conn *c = new_conn(1);
    uv_connect_t *r = malloc(sizeof *r);
    r->data = c;
    uv_tcp_connect(r, &c->tcp, (struct sockaddr *)&a, on_connect);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  dt = (uv_hrtime() - t0) / 1e9;
  if (finished != conns) return 1;
  printf("W6 uv %.0f msg/s wall_s=%.3f\n", conns * lines / dt, dt);
  return 0;
}
