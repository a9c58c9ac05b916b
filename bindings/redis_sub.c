/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * redis_sub.c: r:subscribe and r:psubscribe, each a Subscription on a
 * link of its own (a subscribed connection takes no other command).
 *
 * hiredis calls the callback given with SUBSCRIBE for every message of
 * the channel, and with NULL when the link goes: messages are queued in
 * C (stolen replies) until the iterating task takes them.
 */
#include "redis.h"

typedef struct rd_msg {
  redisReply *r;
  struct rd_msg *next;
} rd_msg;

typedef struct rd_sub {
  rd_link *link;                    /* NULL once gone */
  rd_client *cl;                    /* pinned: the uservalue */
  rd_msg *head, *tail;
  luaio_waitlist waiters;
  int pending;                      /* confirmations still to come */
  int status, redis_kind, closed;
  char *errmsg;
} rd_sub;

static rd_sub *check_sub (lua_State *L, const char *fname) {
  rd_sub *s = luaL_testudata(L, 1, RD_SUBSCRIPTION);
  if (s == NULL) luaio__typeerror(L, 1, fname, "redis subscription");
  return s;
}

void rd_sub_gone (rd_sub *s) {
  s->link = NULL;
  if (!s->closed && s->status == 0) s->status = UV_ECONNRESET;
  luaio_waitlist_wake_all(&s->waiters, 0);
}

static int is_word (redisReply *r, const char *w) {
  return r->type == REDIS_REPLY_STRING && strlen(w) == r->len
         && memcmp(r->str, w, r->len) == 0;
}

static void enqueue (rd_sub *s, redisReply *r) {
  rd_msg *m = malloc(sizeof *m);
  redisReply *mine = m ? rd_steal(r) : NULL;
  if (mine == NULL) { free(m); return; }      /* dropped: out of memory */
  m->r = mine;
  m->next = NULL;
  if (s->tail) s->tail->next = m; else s->head = m;
  s->tail = m;
  luaio_waitlist_wake(&s->waiters, 0);
}

static void sub_cb (redisAsyncContext *ac, void *r, void *priv) {
  redisReply *reply = r;
  rd_sub *s = priv;
  if (s->closed) return;
  if (reply == NULL) {
    if (s->status == 0)
      s->status = rd_link_failure(ac->data, &s->errmsg, &s->redis_kind);
    luaio_waitlist_wake_all(&s->waiters, 0);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  if (is_word(reply->element[0], "message")
      || is_word(reply->element[0], "pmessage"))
    enqueue(s, reply);
  else if ((is_word(reply->element[0], "subscribe")
            || is_word(reply->element[0], "psubscribe"))
           && --s->pending == 0)
    luaio_waitlist_wake_all(&s->waiters, 0);
}

static void free_messages (rd_sub *s) {
  rd_msg *m;
  while ((m = s->head) != NULL) {
    s->head = m->next;
    freeReplyObject(m->r);
    free(m);
  }
  s->tail = NULL;
}

/* sub:close(): the subscription's connection closes; a task iterating
 * it ends its loop (nil). Also __gc and __close. */
static int sub_close (lua_State *L) {
  rd_sub *s = check_sub(L, "sub:close");
  if (s->closed) return 0;
  s->closed = 1;
  if (s->link) rd_link_drop(s->link, UV_ECONNABORTED, "closed");
  free_messages(s);
  free(s->errmsg);
  s->errmsg = NULL;
  luaio_waitlist_wake_all(&s->waiters, 0);
  return 0;
}

static int raise_status (lua_State *L, rd_sub *s, const char *op) {
  rd_push_failure(L, s->cl, op, s->status, s->errmsg, s->redis_kind);
  return luaio_raise(L);
}

/* Push the first message: channel, payload [, pattern]. */
static int pop_message (lua_State *L, rd_sub *s) {
  rd_msg *m = s->head;
  redisReply *r = m->r;
  int pm = r->elements >= 4 && is_word(r->element[0], "pmessage");
  s->head = m->next;
  if (s->head == NULL) s->tail = NULL;
  free(m);
  lua_pushlstring(L, r->element[pm + 1]->str, r->element[pm + 1]->len);
  lua_pushlstring(L, r->element[pm + 2]->str, r->element[pm + 2]->len);
  if (pm) lua_pushlstring(L, r->element[1]->str, r->element[1]->len);
  freeReplyObject(r);
  return 2 + pm;
}

static int sub_next (lua_State *L);

static int sub_next_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status < 0) return luaio_raise_uv(L, status, "sub:next", NULL, NULL);
  lua_settop(L, 1);
  return sub_next(L);
}

/* sub:next() -> channel, payload [, pattern], waiting for one; nil once
 * closed. Also the subscription's __call: `for ch, msg in sub do`. */
static int sub_next (lua_State *L) {
  rd_sub *s = check_sub(L, "sub:next");
  if (s->head) return pop_message(L, s);
  if (s->closed) return 0;
  if (s->status) return raise_status(L, s, "sub:next");
  luaio_check_wait(L, "sub:next");
  lua_settop(L, 1);
  return luaio_waitlist_wait(L, &s->waiters, sub_next_k, 0);
}

static int subscribed_k (lua_State *L, int status, lua_KContext ctx) {
  rd_sub *s = (rd_sub *)ctx;
  if (status < 0) return luaio_raise_uv(L, status, NULL, NULL, NULL);
  if (s->status) return raise_status(L, s, "subscribe");
  lua_settop(L, 2);                              /* cl sub */
  if (s->pending > 0)          /* woken by a message before the last */
    return luaio_waitlist_wait(L, &s->waiters, subscribed_k, ctx);
  lua_pushvalue(L, 2);                           /* the subscription */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, -3);                          /* closing value */
  return 4;
}

/* r:subscribe(channel, ...) / r:psubscribe(pattern, ...) -> sub, once
 * the server has confirmed every channel. */
static int subscribe (lua_State *L, const char *cmd, const char *fname) {
  rd_client *cl = rd_check_client(L, 1, fname);
  rd_sub *s;
  int status, top;
  rd_check_words(L, 2, fname);
  luaio_check_wait(L, fname);
  if (cl->closed)
    rd_raise_failure(L, cl, cmd, UV_ECONNABORTED, "connection closed", 0);
  top = lua_gettop(L);
  lua_pushstring(L, cmd);
  lua_insert(L, 2);                      /* cl cmd channels... */
  s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->closed = 1;
  luaL_setmetatable(L, RD_SUBSCRIPTION);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);           /* pins the connection */
  lua_insert(L, 2);                      /* cl sub cmd channels... */
  s->cl = cl;
  s->link = rd_sub_link(cl, s, &status);
  if (s->link == NULL) rd_raise_failure(L, cl, cmd, status, cl->last_msg, 0);
  s->closed = 0;
  s->pending = top - 1;
  if (rd_send(L, 3, s->link, sub_cb, s) != REDIS_OK)
    rd_raise_failure(L, cl, cmd, UV_ECONNRESET, "connection closing", 0);
  lua_settop(L, 2);                      /* cl sub */
  return luaio_waitlist_wait(L, &s->waiters, subscribed_k, (lua_KContext)s);
}

int rd_subscribe (lua_State *L) {
  return subscribe(L, "SUBSCRIBE", "r:subscribe");
}

int rd_psubscribe (lua_State *L) {
  return subscribe(L, "PSUBSCRIBE", "r:psubscribe");
}

void rd_sub_register (lua_State *L) {
  static const luaL_Reg methods[] = {{"next", sub_next},
    {"close", sub_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__call", sub_next}, {NULL, NULL}};
  luaio__class(L, RD_SUBSCRIPTION, methods, sub_close, meta);
}
