/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * stream.h: one buffered stream over a libuv stream (a TCP socket, a
 * pipe or Unix socket, a terminal), shared by every binding that hands
 * one to Lua: net's connections, fs's FIFOs and terminals, a process's
 * pipes.
 *
 * Two layers. The C engine (luaio_stream) owns the handle, a read
 * buffer and a write queue; a binding may drive it with its own methods
 * (fs's File does). The Lua object (`luaio.Stream`, the methods the
 * README documents under "Stream methods") wraps an engine for scripts.
 *
 * Who owns what:
 * - A luaio_stream is malloc'd by luaio__stream_new/_open_fd and freed
 *   only in its handle's close callback, after luaio__stream_close;
 *   nothing else frees it. The Lua object holds a pointer and closes the
 *   stream on close(), <close> or collection; the pointer is then NULL.
 * - Every write copies what the OS did not take at once into a request
 *   that owns the copy until its callback (which always runs, with
 *   UV_ECANCELED once the handle is closing). A closed stream, a
 *   cancelled task or a collected object never frees memory libuv still
 *   uses.
 * - Closing wakes every task waiting on the stream (readers, writers,
 *   drains) with LUAIO_STREAM_CLOSED.
 *
 * A process pipe: s = luaio__stream_new(h, UV_NAMED_PIPE), put &s->u.s
 * in uv_stdio_container_t (UV_CREATE_PIPE), uv_spawn, then
 * luaio__stream_push(L, s) whenever the script should see it (on a
 * failed spawn, luaio__stream_close(s)).
 */
#ifndef LUAIO_STREAM_H
#define LUAIO_STREAM_H

#include "host.h"

#define LUAIO_STREAM_CHUNK 65536          /* read size, default read([n]) */

/* The status a close wakes waiters with (a task's own cancellation comes
 * as UV_ECANCELED). */
#define LUAIO_STREAM_CLOSED UV_EBADF

/* A read buffer: data is base[start, start+len), room up to cap. base
 * is NULL until the first byte. */
typedef struct luaio_buf {
  char *base;
  size_t start, len, cap;
} luaio_buf;

/* Make room for want more bytes after the data (compacting, then
 * growing). Returns 0 out of memory (the data is kept). */
int luaio__buf_reserve(luaio_buf *b, size_t want);
/* Push the first n bytes, then drop n + skip. [-0, +1] */
void luaio__buf_take(lua_State *L, luaio_buf *b, size_t n, size_t skip);
/* The length of the data through the first sep, or 0 if it has none. */
size_t luaio__buf_find(const luaio_buf *b, const char *sep, size_t seplen);
void luaio__buf_free(luaio_buf *b);

typedef struct luaio_stream {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;                          /* first: &s->u is s */
  luaio_host *host;
  luaio_buf *in;                /* what reads fill: &own, or a buffer the
                                   owner keeps alive until the close */
  luaio_buf own;
  size_t max_line;              /* readline, readuntil: longest line */
  size_t read_ahead;            /* reading stops at this many buffered
                                   bytes when nobody reads; 0: after each
                                   chunk (a terminal shared with others) */
  size_t queued;                /* bytes written, not yet gone out */
  int eof, read_err, write_err, reading;
  int closing;                  /* close() is flushing: no new I/O */
  int closed;                   /* the handle is closing or closed */
  uv_file own_fd;               /* a terminal libuv reopened: ours */
  luaio_waitlist readers;       /* woken by each read callback */
  luaio_waitlist writers;       /* woken when the queue is low or empty */
} luaio_stream;

/* ---- the engine ------------------------------------------------------- */

/* A new stream of type UV_TCP or UV_NAMED_PIPE on h's loop, ready to be
 * connected, accepted into, opened or spawned on. NULL out of memory. */
luaio_stream *luaio__stream_new(luaio_host *h, uv_handle_type type);
/* Wrap fd, a pipe, FIFO, socket or terminal. Returns 0 and sets *out,
 * or a uv error (fd is then still the caller's). */
int luaio__stream_open_fd(luaio_host *h, uv_file fd, luaio_stream **out);
/* Close now (idempotent): wakes every waiter with LUAIO_STREAM_CLOSED;
 * queued writes end with UV_ECANCELED; the memory goes in the close
 * callback. */
void luaio__stream_close(luaio_stream *s);
/* Start reading into *s->in unless reading. Returns 0 or a uv error. */
int luaio__stream_read_start(luaio_stream *s);
/* Write data: at once if the queue is empty, the rest queued (copied).
 * Returns 0 or the uv error of the attempt (a later failure is left in
 * s->write_err). The caller waits on s->writers for backpressure. */
int luaio__stream_send(luaio_stream *s, const char *data, size_t len);

/* ---- the Lua object --------------------------------------------------- */

/* Push a luaio.Stream owning s (NULL: a closed one, for a connect to
 * fill in with luaio__stream_set). Registers the class on first use.
 * May raise a memory error: s is then still the caller's to close (push
 * a closed Stream first and set it when that matters). [-0, +1] */
void luaio__stream_push(lua_State *L, luaio_stream *s);
/* The open stream at idx, or raise "fname: the stream is closed". */
luaio_stream *luaio__stream_check(lua_State *L, int idx, const char *fname);
/* The stream at idx (a luaio.Stream), NULL once closed. */
luaio_stream *luaio__stream_get(lua_State *L, int idx);
/* Give the (closed) Stream at idx the stream s. */
void luaio__stream_set(lua_State *L, int idx, luaio_stream *s);
/* Close the Stream at idx at once, if it is a luaio.Stream. */
void luaio__stream_close_at(lua_State *L, int idx);

/* ---- shared by the bindings ------------------------------------------- */

/* Raise kind "io", code ECANCELED, message "the <what> was closed", op
 * fname: what a close gives the tasks it wakes. */
int luaio__closed_error(lua_State *L, const char *fname, const char *what);
/* Push host, port of an IPv4 or IPv6 address ("", 0 for others).
 * [-0, +2] */
int luaio__push_addr(lua_State *L, const struct sockaddr *sa);

#endif
