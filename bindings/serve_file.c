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
 * leaks nothing. The file is opened (and checked) before the response
 * starts, so a file refused is still a 404.
 */
#include "serve.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
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

/* Is the file open at fd under root (a real path, no symlink)? What
 * is served is checked once opened, by its real path (/proc/self/fd),
 * not by the path: a folder swapped for a symlink out of root between
 * http.static's realpath and the open is caught (the sandbox's
 * luaio__perm_fd does the same). Opening each component relative to a
 * root folder with O_NOFOLLOW would refuse symlinks that stay in root
 * (served today), and openat2's RESOLVE_BENEATH refuses absolute ones.
 * No /proc: no real path, nothing is served. */
static int under_root (int fd, const char *root, size_t n) {
  char real[PATH_MAX];
  if (!luaio__fd_path(fd, real)) return 0;
  if (n > 0 && root[n - 1] == '/') n--;             /* root is "/" */
  return strncmp(real, root, n) == 0 &&
         (real[n] == '/' || (real[n] == '\0' && n > 0));
}

/* req:openfile(path, root) -> size, mtime; nil, why: opens the file to
 * serve (http.static checked the path against root) and checks it
 * again: a regular file under root. It stays open, in the request,
 * for req:sendfile (req_unref closes it). */
int srv_req_openfile (lua_State *L) {
  hreq *r = srv_check_req(L);
  const char *path = luaio__checkcstring(L, 2, "req:openfile", "path");
  size_t n;
  const char *root = luaio__checkstring(L, 3, "req:openfile", &n);
  struct stat st;
  int fd;
  if (r->file_fd >= 0) return luaL_error(L, "req:openfile: a file is open");
  /* O_NONBLOCK: a FIFO swapped in does not block the loop */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return luaio_raise_uv(L, uv_translate_sys_error(errno),
                                    "req:openfile", "path", path);
  r->file_fd = fd;
  luaio__perm_fd(L, fd);             /* raises: req_unref closes it */
  if (!under_root(fd, root, n) || fstat(fd, &st) != 0 ||
      !S_ISREG(st.st_mode)) {
    file_done(r);
    lua_pushnil(L);
    lua_pushstring(L, "not a file under root");
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_pushnumber(L, st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
  return 2;
}

/* req:sendfile(offset, length): bytes of the file req:openfile opened
 * as the body (or the next part of it) of a response started with a
 * length. */
int srv_req_sendfile (lua_State *L) {
  hreq *r = srv_check_req(L);
  lua_Integer off = luaio__checkinteger(L, 2, "res:sendfile");
  lua_Integer len = luaio__checkinteger(L, 3, "res:sendfile");
  if (off < 0 || len < 0)
    return luaio__argerror(L, off < 0 ? 2 : 3, "res:sendfile",
                           "negative offset or length");
  if (!r->started || r->finished || !r->sized || r->file_fd < 0 ||
      r->file_left > 0 || (uint64_t)len > r->remaining)
    return luaL_error(L, "res:sendfile: not in a response of that length");
  if (r->c == NULL) return srv_gone_error(L, r, "res:write");
  luaio_check_wait(L, "res:write");
  r->remaining -= (uint64_t)len;
  r->file_off = (uint64_t)off;
  r->file_left = (uint64_t)len;
  if (r->head_only) r->file_left = 0;
  lua_settop(L, 1);
  return sendfile_k(L, 0, 0);
}
