/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * redis_call.c: r:call, its op, and hiredis replies as Lua values.
 *
 * An op is shared by the reply callback and the task: it is freed by the
 * last of them (refs). A cancelled task drops its share at once and the
 * reply, when it comes, is consumed and freed by the callback, so the
 * connection stays in step with the commands sent. A blocking command
 * runs on a pool link of its own; cancelling it drops that link.
 */
#include "redis.h"
#include <strings.h>

#define ARGV_STACK 16

typedef struct rd_op {
  luaio_waiter w;
  luaio_deadline d;
  luaio_host *h;
  rd_link *link;                    /* until the reply callback */
  redisReply *reply;
  char *errmsg;
  int refs, status, armed, redis_kind;
} rd_op;

static void op_unref (rd_op *op) {
  if (--op->refs > 0) return;
  if (op->reply) freeReplyObject(op->reply);
  free(op->errmsg);
  free(op);
}

/* ---- replies ------------------------------------------------------------ */

/* An error reply as a luaio.Error of kind "redis": code its first word
 * when that is a code (WRONGTYPE, NOSCRIPT), message the rest, reply
 * the whole text. [-0, +1] */
void rd_push_redis_error (lua_State *L, const char *text, size_t len) {
  size_t n = 0;
  while (n < len && ((text[n] >= 'A' && text[n] <= 'Z') || text[n] == '_'))
    n++;
  if (n > 0 && n < len && text[n] == ' ') {
    lua_pushlstring(L, text, n);
    luaio_push_error(L, "redis", lua_tostring(L, -1), NULL);
    lua_remove(L, -2);
    lua_pushlstring(L, text + n + 1, len - n - 1);
  } else {
    luaio_push_error(L, "redis", NULL, NULL);
    lua_pushlstring(L, text, len);
  }
  lua_setfield(L, -2, "message");
  lua_pushlstring(L, text, len);
  lua_setfield(L, -2, "reply");
}

/* Push reply r: nil at the top level and redis.null (a NULL light
 * userdata, like cjson.null) inside arrays, where nil cannot be; an
 * error reply inside an array as its error value. [-0, +1] */
int rd_push_reply (lua_State *L, redisReply *r, int depth) {
  size_t i;
  luaL_checkstack(L, 3, "redis reply too deep");
  switch (r->type) {
  case REDIS_REPLY_STRING: case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len); break;
  case REDIS_REPLY_INTEGER: lua_pushinteger(L, r->integer); break;
  case REDIS_REPLY_ERROR: rd_push_redis_error(L, r->str, r->len); break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    for (i = 0; i < r->elements; i++) {
      rd_push_reply(L, r->element[i], depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  default:
    if (depth == 0) lua_pushnil(L);
    else lua_pushlightuserdata(L, NULL);
  }
  return 1;
}

/* Raise a failed command's error: a Redis error (AUTH refused) or an I/O
 * error naming the command and the URL, message hiredis's text. */
void rd_push_failure (lua_State *L, rd_client *cl, const char *op,
                      int status, const char *msg, int redis_kind) {
  if (redis_kind && msg) rd_push_redis_error(L, msg, strlen(msg));
  else luaio_push_uv_error(L, status, op, "url", cl->url);
  if (!redis_kind && msg) {
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
  }
  lua_pushstring(L, cl->url);
  lua_setfield(L, -2, "url");
}

void rd_raise_failure (lua_State *L, rd_client *cl, const char *op,
                       int status, const char *msg, int redis_kind) {
  rd_push_failure(L, cl, op, status, msg, redis_kind);
  luaio_raise(L);
}

/* ---- the op ------------------------------------------------------------- */

static void call_cb (redisAsyncContext *ac, void *r, void *priv) {
  rd_op *op = priv;
  rd_link *l = ac->data;
  if (op->armed) luaio__deadline_stop(op->h, &op->d);
  op->armed = 0;
  if (r) {
    op->reply = rd_steal(r);
    if (op->reply == NULL) op->status = UV_ENOMEM;
  } else if (op->status == 0)
    op->status = rd_link_failure(l, &op->errmsg, &op->redis_kind);
  op->link = NULL;
  if (l->kind == RD_POOL && r) rd_pool_put(l);
  luaio_waiter_done(&op->w, op->status);
  op_unref(op);
}

/* A command timed out: its task gets a timeout error; the link is
 * dropped (the replies behind it would be late too) and the next command
 * reconnects. */
static void call_due (luaio_deadline *d) {
  rd_op *op = LUAIO_CONTAINER(d, rd_op, d);
  op->armed = 0;
  op->status = UV_ETIMEDOUT;
  luaio_waiter_done(&op->w, UV_ETIMEDOUT);
  if (op->link)
    rd_link_drop(op->link, UV_ECONNRESET,
                 "connection reset after a command timed out");
}

/* Cancellation. On the main link the task goes at once and the reply is
 * consumed later by call_cb; a blocking command's link is dropped, which
 * completes the op here. */
static void call_abort (luaio_waiter *w) {
  rd_op *op = LUAIO_CONTAINER(w, rd_op, w);
  if (op->armed) luaio__deadline_stop(op->h, &op->d);
  op->armed = 0;
  if (op->link && op->link->kind == RD_POOL) {
    op->status = UV_ECANCELED;
    rd_link_drop(op->link, UV_ECANCELED, "cancelled");
    return;
  }
  op_unref(op);                     /* the task's share: k never runs */
}

/* The task's stack is as r:call left it: r at 1, the command at 2. */
static int call_k (lua_State *L, int status, lua_KContext ctx) {
  rd_op *op = (rd_op *)ctx;
  rd_client *cl = rd_check_client(L, 1, "r:call");
  const char *cmd = lua_tostring(L, 2);
  if (status == UV_ECANCELED) {
    op_unref(op);
    return luaio_raise_uv(L, status, NULL, NULL, NULL);
  }
  if (status < 0) {
    rd_push_failure(L, cl, cmd, status,
                    status == UV_ETIMEDOUT ? NULL : op->errmsg,
                    op->redis_kind);
    op_unref(op);
    return luaio_raise(L);
  }
  rd_push_reply(L, op->reply, 0);
  if (op->reply->type == REDIS_REPLY_ERROR) {
    lua_pushstring(L, cmd);
    lua_setfield(L, -2, "op");
    op_unref(op);
    return luaio_raise(L);
  }
  op_unref(op);
  return 1;
}

/* ---- r:call ------------------------------------------------------------ */

/* Check the command's words (from first to the top): strings, or
 * numbers written as Lua writes them. */
void rd_check_words (lua_State *L, int first, const char *fname) {
  int i, top = lua_gettop(L);
  if (first > top) luaio__argerror(L, first, fname, "command expected");
  for (i = first; i <= top; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      luaio__typeerror(L, i, fname, "string or number");
    lua_tolstring(L, i, NULL);      /* numbers to strings, in place */
  }
}

static int word_is (const char *w, size_t n, const char *name) {
  return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

/* 1 for a command that blocks the connection (it runs on a pool link),
 * -1 for one that would turn it into a subscriber, else 0. */
static int command_kind (lua_State *L, int first) {
  static const char *const blocking[] = {"BLPOP", "BRPOP", "BRPOPLPUSH",
    "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", NULL};
  static const char *const sub[] = {"SUBSCRIBE", "PSUBSCRIBE",
    "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "MONITOR", NULL};
  size_t n, m;
  const char *w = lua_tolstring(L, first, &n);
  int i, top = lua_gettop(L);
  if (n == 0 || !strchr("BbWwXxSsUuPpMm", w[0])) return 0;  /* most */
  for (i = 0; blocking[i]; i++) if (word_is(w, n, blocking[i])) return 1;
  for (i = 0; sub[i]; i++) if (word_is(w, n, sub[i])) return -1;
  if (!word_is(w, n, "XREAD") && !word_is(w, n, "XREADGROUP")) return 0;
  for (i = first + 1; i <= top; i++) {
    const char *a = lua_tolstring(L, i, &m);
    if (word_is(a, m, "BLOCK")) return 1;
  }
  return 0;
}

/* Send the words from first to the top on l, fn(priv) to get the reply.
 * REDIS_OK or REDIS_ERR (the link is closing). */
int rd_send (lua_State *L, int first, rd_link *l, redisCallbackFn *fn,
             void *priv) {
  const char *sargv[ARGV_STACK], **argv = sargv;
  size_t slens[ARGV_STACK], *lens = slens;
  int i, n = lua_gettop(L) - first + 1;
  if (n > ARGV_STACK) {
    argv = lua_newuserdatauv(L, n * (sizeof *argv + sizeof *lens), 0);
    lens = (size_t *)(argv + n);
  }
  for (i = 0; i < n; i++) argv[i] = lua_tolstring(L, first + i, &lens[i]);
  return redisAsyncCommandArgv(l->ac, fn, priv, n, argv, lens);
}

static rd_link *pick_link (rd_client *cl, int blocking, int *status) {
  *status = 0;
  if (blocking) return rd_pool_get(cl, status);
  *status = rd_main_ready(cl);
  return *status ? NULL : &cl->main;
}

/* r:call(command, ...) -> the reply */
int rd_call (lua_State *L) {
  rd_client *cl = rd_check_client(L, 1, "r:call");
  rd_link *l;
  rd_op *op;
  int kind, status;
  rd_check_words(L, 2, "r:call");
  kind = command_kind(L, 2);
  if (kind < 0)
    return luaio__argerror(L, 2, "r:call", "use r:subscribe or "
                           "r:psubscribe for pub/sub");
  luaio_check_wait(L, "r:call");
  if (cl->closed)
    rd_raise_failure(L, cl, lua_tostring(L, 2), UV_ECONNABORTED,
                     "connection closed", 0);
  l = pick_link(cl, kind, &status);
  if (l == NULL) {
    rd_raise_failure(L, cl, lua_tostring(L, 2), status, cl->last_msg, 0);
    return 0;
  }
  op = calloc(1, sizeof *op);
  if (op == NULL) return luaL_error(L, "r:call: out of memory");
  luaio_waiter_init(&op->w, call_abort);
  op->h = cl->h;
  op->link = l;
  op->refs = 2;
  if (rd_send(L, 2, l, call_cb, op) != REDIS_OK) {
    free(op);
    rd_raise_failure(L, cl, lua_tostring(L, 2), UV_ECONNRESET,
                     "connection is closing", 0);
  }
  if (cl->timeout_ms >= 0 && !kind)
    op->armed = luaio__deadline_start(cl->h, &op->d,
                                      (uint64_t)cl->timeout_ms, call_due);
  return luaio_wait(L, &op->w, call_k, (lua_KContext)op);
}
