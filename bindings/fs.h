/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs.h: what the files of `luaio.fs` share (private to the module).
 *
 * The shared helpers keep short names inside the module; the macros
 * below give them the host-internal prefix, so the static library
 * exports no `opt_limit`.
 */
#ifndef LUAIO_FS_H
#define LUAIO_FS_H

#include "../host/stream.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_SIZE ((lua_Integer)1 << 30)   /* whole-file reads */
#define DEFAULT_MAX_LINE ((lua_Integer)1 << 20)   /* lines, read_line */

#define opt_limit luaio__fs_opt_limit
#define size_error luaio__fs_size_error
#define is_stream luaio__fs_is_stream
#define set_blocking luaio__fs_set_blocking
#define open_file luaio__fs_open_file
#define op_free luaio__fs_op_free
#define fs_cb luaio__fs_cb
#define op_new luaio__fs_op_new
#define op_fail_at luaio__fs_op_fail_at
#define op_fail luaio__fs_op_fail
#define op_reset luaio__fs_op_reset
#define op_wait luaio__fs_op_wait
#define protected_push luaio__fs_protected_push
#define push_bytes luaio__fs_push_bytes
#define type_name luaio__fs_type_name

/* ---- arguments (fs.c) ---- */

/* Every path argument comes through here: C stops at a NUL byte, so
 * "victim\0.txt" would act on "victim"; in a sandbox the path must be
 * one the script may read (or write, for the calls that change files),
 * and what is returned is the path resolved. */
const char *luaio__fs_check_path(lua_State *L, int arg, const char *fname);
#define PATH(i, fname) luaio__fs_check_path(L, (i), (fname))
/* Integer field `name` of the options table at arg (nil: no options),
 * at least min; def when absent. */
lua_Integer opt_limit(lua_State *L, int arg, const char *fname,
                      const char *name, lua_Integer def, lua_Integer min);
/* Raise "larger than max_size" for path. */
int size_error(lua_State *L, const char *op, const char *path,
               lua_Integer max);

/* ---- descriptors (fs.c) ---- */

/* Is fd (st its fstat) a FIFO, socket or terminal: a uv stream's job? */
int is_stream(int fd, const struct stat *st);
void set_blocking(int fd);
/* Open without ever blocking (a FIFO's open waits for its other end);
 * fills st. -1 and errno on failure. */
int open_file(const char *path, int flags, int mode, struct stat *st);

/* ---- one request at a time: uv_fs ops (fs.c) ---- */

typedef struct fs_op {
  uv_fs_t req;
  luaio_waiter w;
  luaio_host *h;
  uv_file fd;                   /* a file this op opened, or -1 */
  char *buf;                    /* owned: data read or written */
  size_t len, done;
  int step;
  int aborted;                  /* the task was cancelled meanwhile */
  lua_KFunction then;           /* file reads: what runs after a fill */
} fs_op;

void op_free(fs_op *op);
void fs_cb(uv_fs_t *req);
/* Check that L can wait, then a new op (must_finish: a cancel waits for
 * the request). Raises out of memory. */
fs_op *op_new(lua_State *L, const char *fname);
/* Free op and raise the I/O error for status (cancel: the pending
 * cancellation) about path; op_fail: the path being argument 1. */
int op_fail_at(lua_State *L, fs_op *op, int status, const char *what,
               const char *path);
int op_fail(lua_State *L, fs_op *op, int status, const char *what);
/* Ready op->req for the next step. */
void op_reset(fs_op *op);
/* After submitting: wait, or fail at once if the submit failed. */
int op_wait(lua_State *L, fs_op *op, int rc, lua_KFunction k,
            const char *what);

/* ---- pushing what C owns (fs.c) ---- */

/* Run fn(p, n) protected, for a Lua allocation whose failure must first
 * free what C holds. Returns fn's status, with its one result or the
 * error on top. [-0, +1] */
int protected_push(lua_State *L, lua_CFunction fn, const void *p, size_t n);
/* (p, n) -> the string of the n bytes at p. */
int push_bytes(lua_State *L);
/* "file", "directory", "link"... for a stat mode. */
const char *type_name(uint64_t mode);

/* ---- across the parts ---- */

/* fs.read or fs.write found a FIFO, socket or terminal (fd, taken):
 * finish through a File on a uv stream (fs_file.c). Stack: path, data
 * (writing). */
int luaio__fs_stream_whole(lua_State *L, int reading, int fd,
                           lua_Integer max);

/* Each part adds its functions to the module table on top (and
 * registers its classes). [-0, +0] */
void luaio__fs_whole_open(lua_State *L);
void luaio__fs_path_open(lua_State *L);
void luaio__fs_file_open(lua_State *L);
void luaio__fs_watch_open(lua_State *L);
void luaio__fs_walk_open(lua_State *L);

#endif
