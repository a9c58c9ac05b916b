/* SPDX-License-Identifier: MIT (see LICENSE) */
/* minimal.c: add async Lua scripting to a libuv program (README). */
#include <luaio.h>
#include <stdio.h>

int main (int argc, char **argv) {
  uv_loop_t loop;
  luaio_config cfg = {0};
  luaio_host *h;
  luaio_task *t;
  int status;
  if (uv_loop_init(&loop) != 0) return 1;
  cfg.loop = &loop;                      /* the application's own loop */
  h = luaio_new(&cfg);
  if (h == NULL) {                       /* out of memory */
    uv_run(&loop, UV_RUN_DEFAULT);       /* as after luaio_close */
    uv_loop_close(&loop);
    return 1;
  }
  t = luaio_spawn_string(h, argc > 1 ? argv[1] :
        "local aio = require 'luaio'; aio.sleep(0.01); return 'done'", "=main");
  status = luaio_run_until(h, t);        /* or run the loop yourself */
  if (status != LUAIO_OK) fprintf(stderr, "%s\n", luaio_task_error(t));
  else puts("script finished");
  luaio_task_release(t);
  luaio_close(h);
  uv_run(&loop, UV_RUN_DEFAULT);         /* let luaio's handles close */
  uv_loop_close(&loop);
  return status == LUAIO_OK ? 0 : 1;
}
