/* W2 libuv baseline: N timers of 1 s at once. usage: w2_uv [N] */
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>

static long fired;
static void on_timer (uv_timer_t *t) { (void)t; fired++; }

int main (int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000, i;
  uv_loop_t *loop = uv_default_loop();
  uv_timer_t *t = malloc(n * sizeof *t);
  uint64_t t0 = uv_hrtime();
  for (i = 0; i < n; i++) {
    uv_timer_init(loop, &t[i]);
    uv_timer_start(&t[i], on_timer, 1000, 0);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (fired != n) return 1;
  printf("W2 uv %.3f s\n", (uv_hrtime() - t0) / 1e9);
  return 0;
}
