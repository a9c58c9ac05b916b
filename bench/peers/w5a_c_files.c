/* W5a baseline: N files of 4 KiB written then read back, concurrently,
 * through libuv's thread pool. usage: w5a_c_files DIR [N] */
#include <uv.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
  uv_fs_t req;
  char path[512];
  char buf[4096];
  uv_file fd;
  int step;
} job;

static long done;
static char data[4096];

static void step (uv_fs_t *req) {
  job *j = req->data;
  uv_loop_t *loop = req->loop;
  ssize_t res = req->result;
  uv_buf_t b;
  uv_fs_req_cleanup(req);
  if (res < 0) { fprintf(stderr, "%s\n", uv_strerror((int)res)); exit(1); }
  j->req.data = j;
  switch (j->step++) {
    case 0: j->fd = (uv_file)res; b = uv_buf_init(data, sizeof data);
      uv_fs_write(loop, &j->req, j->fd, &b, 1, 0, step); break;
    case 1: uv_fs_close(loop, &j->req, j->fd, step); break;
    case 2: uv_fs_open(loop, &j->req, j->path, O_RDONLY, 0, step); break;
    case 3: j->fd = (uv_file)res; b = uv_buf_init(j->buf, sizeof j->buf);
      uv_fs_read(loop, &j->req, j->fd, &b, 1, 0, step); break;
    case 4: if (res != 4096) exit(1);
      uv_fs_close(loop, &j->req, j->fd, step); break;
    default: done++; free(j);
  }
}

int main (int argc, char **argv) {
  long n = argc > 2 ? atol(argv[2]) : 1000, i;
  uv_loop_t *loop = uv_default_loop();
  uint64_t t0;
  if (argc < 2) return 2;
  memset(data, 'x', sizeof data);
  t0 = uv_hrtime();
  for (i = 0; i < n; i++) {
    job *j = calloc(1, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s/f%ld", argv[1], i);
    j->req.data = j;
    uv_fs_open(loop, &j->req, j->path, O_WRONLY | O_CREAT | O_TRUNC, 0644, step);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (done != n) return 1;
  printf("W5a uv %.0f files/s\n", n / ((uv_hrtime() - t0) / 1e9));
  return 0;
}
