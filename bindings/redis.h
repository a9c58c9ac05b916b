/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * redis.h: the private header of luaio.redis (redis.c the module and the
 * Connection, redis_link.c hiredis connections on the loop, redis_call.c
 * commands and replies, redis_sub.c pub/sub).
 *
 * Ownership: a Connection userdata holds its rd_client, whose main link
 * is embedded; pool and subscription links are malloc'd. hiredis owns
 * each redisAsyncContext and frees it itself (failed connect, server
 * gone, redisAsyncFree); every way ends in the adapter's cleanup, which
 * we wrap (rd_link_gone), so a link learns there that its context is
 * gone. Every pending reply callback runs before that, with NULL on
 * failure, so an op is freed by the last of its callback and its task.
 */
#ifndef LUAIO_REDIS_H
#define LUAIO_REDIS_H

#include "../host/host.h"
#include <hiredis.h>
#include <async.h>

#define RD_CONNECTION "luaio.RedisConnection"
#define RD_SUBSCRIPTION "luaio.RedisSubscription"

enum { RD_MAIN, RD_POOL, RD_SUB };

typedef struct rd_client rd_client;
struct rd_sub;

typedef struct rd_link {
  redisAsyncContext *ac;            /* NULL when down */
  rd_client *cl;
  struct rd_link *next, **list;     /* pool/sub links: the client's list */
  struct rd_sub *sub;               /* RD_SUB: the subscription */
  void (*cleanup)(void *);          /* the adapter's own cleanup */
  int kind, connected;
  int down_status;                  /* why we dropped it (uv code) */
  const char *down_why;
  int sys_errno;                    /* errno of a failed connect */
  char *setup_err;                  /* AUTH/SELECT error reply text */
} rd_link;

struct rd_client {
  luaio_host *h;
  char *url;                        /* shown in errors, no password */
  char *host, *password, *user, *name;
  int port, db, closed;
  lua_Integer timeout_ms;           /* -1: none */
  rd_link main;
  rd_link *idle, *busy;             /* pool links without/with a command */
  rd_link *subs;                    /* subscription links */
  int nidle;
  uint64_t retry_at, backoff_ms;    /* reconnect backoff of main */
  int last_status;                  /* last connect failure */
  char last_msg[160];
};

/* redis_link.c */
int rd_link_open(rd_client *cl, rd_link *l, int kind);
void rd_link_drop(rd_link *l, int status, const char *why);
int rd_main_ready(rd_client *cl);
rd_link *rd_pool_get(rd_client *cl, int *status);
void rd_pool_put(rd_link *l);
rd_link *rd_sub_link(rd_client *cl, struct rd_sub *sub, int *status);
void rd_client_shutdown(rd_client *cl);
/* The failure of a NULL reply on l: a uv status, *msg a malloc'd text
 * (or NULL), *redis_kind 1 when it is a Redis error reply (AUTH). */
int rd_link_failure(rd_link *l, char **msg, int *redis_kind);
/* Take a reply from hiredis (which frees what it handed over once the
 * callback returns): a malloc'd copy of the top, the children moved. */
redisReply *rd_steal(redisReply *r);

/* redis_call.c */
int rd_call(lua_State *L);
void rd_check_words(lua_State *L, int first, const char *fname);
int rd_send(lua_State *L, int first, rd_link *l, redisCallbackFn *fn,
            void *priv);
int rd_push_reply(lua_State *L, redisReply *r, int depth);
void rd_push_redis_error(lua_State *L, const char *text, size_t len);
void rd_push_failure(lua_State *L, rd_client *cl, const char *op,
                     int status, const char *msg, int redis_kind);
void rd_raise_failure(lua_State *L, rd_client *cl, const char *op,
                      int status, const char *msg, int redis_kind);

/* redis_sub.c */
void rd_sub_gone(struct rd_sub *s);
int rd_subscribe(lua_State *L);
int rd_psubscribe(lua_State *L);
void rd_sub_register(lua_State *L);

rd_client *rd_check_client(lua_State *L, int idx, const char *fname);

#endif
