/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * serve_file.c: a file as (part of) a response body, by sendfile(2) from
 * the file to the socket: the bytes never pass through Lua or a buffer
 * of ours (http.static uses it).
 *
 * It runs on the loop thread, as nginx does: the socket is non-blocking,
 * so sendfile moves what fits in the socket buffer and returns, and a
 * file served is normally in the page cache. A thread-pool sendfile
 * would need the socket's descriptor kept open under a running thread
 * and gains nothing here. libuv tells when a write finished but not
 * when a socket is writable, so when the socket is full, the next
 * 16 KiB go out as an ordinary queued write (a copy) and sendfile
 * resumes once the queue is empty: the order of the bytes is kept, and
 * write_timeout sees a client that stops reading. The descriptor lives
 * in the request (req_unref closes it): a cancel or a close mid-file
 * leaks nothing.
 */
#include "serve.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define SF_STEP (4 * 1024 * 1024)   /* per sendfile call: others run */
#define SF_COPY (16 * 1024)         /* a write when the socket is full */

static void file_done (hreq *r) {
  if (r->file_fd >= 0) close(r->file_fd);
  r->file_fd = -1;
}

/* The socket is full: queue the next bytes as a write. 0, or an errno
 * for the file. */
static int copy_step (hreq *r) {
  char buf[SF_COPY];
  size_t want = r->file_left < SF_COPY ? (size_t)r->file_left : SF_COPY;
  ssize_t n = pread(r->file_fd, buf, want, (off_t)r->file_off);
  if (n <= 0) return n == 0 ? EIO : errno;       /* the file shrank */
  conn_write(r->c, buf, (size_t)n);
  if (r->c == NULL) return ECONNRESET;           /* the write failed */
  r->file_off += (uint64_t)n;
  r->file_left -= (uint64_t)n;
  return 0;
}

/* Move what the socket takes now. 1: wait for the queue, 0: done, or
 * an errno (the connection is then closed). */
static int pump (hreq *r) {
  int sock;
  if (uv_fileno((uv_handle_t *)&r->c->tcp, &sock) != 0) return EBADF;
  while (r->file_left > 0) {
    off_t off = (off_t)r->file_off;
    size_t want = r->file_left < SF_STEP ? (size_t)r->file_left : SF_STEP;
    ssize_t n;
    if (r->c->queued > 0) return 1;
    n = sendfile(sock, r->file_fd, &off, want);
    if (n > 0) {
      r->file_off += (uint64_t)n;
      r->file_left -= (uint64_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      int e = copy_step(r);
      if (e) return e;
    } else {
      return n == 0 ? EIO : errno;
    }
  }
  return 0;
}

static int sendfile_k (lua_State *L, int status, lua_KContext ctx) {
  hreq *r = srv_check_req(L);
  int rc;
  (void)ctx;
  if (status == UV_ECANCELED || r->c == NULL) file_done(r);
  if (status == UV_ECANCELED)
    return luaio_raise_uv(L, status, "res:write", NULL, NULL);
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  rc = pump(r);
  if (rc == 1) {
    lua_settop(L, 1);
    return luaio_waitlist_wait(L, &r->c->writers, sendfile_k, 0);
  }
  file_done(r);
  if (rc != 0) {
    if (r->c) conn_close(r->c);
    return srv_gone_error(L, r, "res:write");
  }
  return 0;
}

/* req:sendfile(path, offset, length): the bytes of the file as the
 * body (or the next part of it) of a response started with a length.
 * The caller (http.static) checked the path against root and the
 * sandbox; the open is checked again (luaio__perm_fd). */
int srv_req_sendfile (lua_State *L) {
  hreq *r = srv_check_req(L);
  const char *path = luaio__checkcstring(L, 2, "res:sendfile",
                                          "path");
  lua_Integer off = luaio__checkinteger(L, 3, "res:sendfile");
  lua_Integer len = luaio__checkinteger(L, 4, "res:sendfile");
  if (off < 0 || len < 0)
    return luaio__argerror(L, off < 0 ? 3 : 4, "res:sendfile",
                           "negative offset or length");
  if (!r->started || r->finished || !r->sized || r->file_fd >= 0 ||
      (uint64_t)len > r->remaining)
    return luaL_error(L, "res:sendfile: not in a response of that length");
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  luaio_check_wait(L, "res:write");
  r->file_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->file_fd < 0) return luaio_raise_uv(L, uv_translate_sys_error(
                                errno), "res:sendfile", "path", path);
  luaio__perm_fd(L, r->file_fd);     /* raises: req_unref closes it */
  r->remaining -= (uint64_t)len;
  r->file_off = (uint64_t)off;
  r->file_left = (uint64_t)len;
  if (r->head_only) r->file_left = 0;
  lua_settop(L, 1);
  return sendfile_k(L, 0, 0);
}
