/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * debug_mode.c: luaio --debug, LUAIO_DEBUG=1, aio.debug(true). Warns
 * about a task that runs too long without yielding, a failed task nobody
 * awaits (when it fails), tasks still pending at exit (with where they
 * were spawned) and resources collected without being closed (with where
 * they were opened). Every hook is behind one test of h->debug, so
 * outside debug mode nothing is recorded; the sites are captured only
 * in debug mode.
 */
#include "private.h"

static const char sites_key = 0;   /* registry: resource -> where opened */

#define WHERE_MAX 160

/* "file:line" of the first Lua frame of co, from level on; "?" if none
 * (a C caller). */
static void where (lua_State *co, int level, char *buf, size_t size) {
  lua_Debug ar;
  for (; lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "Sl", &ar) || ar.currentline < 0) continue;
    snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
    return;
  }
  snprintf(buf, size, "?");
}

/* "'NAME' (#N)" of t into buf. */
static void label (lua_State *L, luaio_task *t, char *buf, size_t size) {
  luaio__push_task(L, t);
  if (luaio__task_getextra(L, -1, "name") == LUA_TSTRING)
    snprintf(buf, size, "'%s' (#%u)", lua_tostring(L, -1), t->id);
  else snprintf(buf, size, "'task-%u' (#%u)", t->id, t->id);
  lua_pop(L, 2);
}

void luaio__debug_before (luaio_host *h, luaio_task *t, luaio_ran *r) {
  r->t0 = uv_hrtime();
  if (t->state == T_NEW) snprintf(r->from, sizeof r->from, "its start");
  else where(t->co, 0, r->from, sizeof r->from);
  (void)h;
}

void luaio__debug_after (luaio_host *h, luaio_task *t, luaio_ran *r,
                         int yielded) {
  uint64_t ms = (uv_hrtime() - r->t0) / 1000000u;
  char to[WHERE_MAX], name[WHERE_MAX];
  if (ms < h->slow_ms) return;
  if (yielded) where(t->co, 0, to, sizeof to);
  else snprintf(to, sizeof to, "its end");
  label(h->L, t, name, sizeof name);
  fprintf(stderr, "luaio: debug: task %s ran %u ms without yielding "
          "(over %u ms): resumed at %s, yielded at %s\n", name,
          (unsigned)ms, h->slow_ms, r->from, to);
  fflush(stderr);
}

void luaio__debug_spawned (lua_State *L, luaio_task *t) {
  char at[WHERE_MAX];
  where(L, 1, at, sizeof at);
  lua_pushstring(L, at);
  luaio__task_setextra(L, -2, "spawned_at");      /* t's userdata on top */
  (void)t;
}

/* A task failed and no task waits for it: say so now, not at exit.
 * Its userdata is on L's top. */
void luaio__debug_unawaited (lua_State *L, luaio_task *t) {
  char name[WHERE_MAX], head[2 * WHERE_MAX];
  label(L, t, name, sizeof name);
  snprintf(head, sizeof head, "debug: task %s failed and no task awaits "
           "it", name);
  t->observed = 1;
  lua_getiuservalue(L, -1, LUAIO_TASK_RESULT);
  luaio__report(t->host, head, L, -1);
  lua_pop(L, 1);
}

/* Tasks still pending when the program ends, before they are cancelled. */
void luaio__debug_pending (luaio_host *h) {
  lua_State *L = h->L;
  char name[WHERE_MAX];
  int i;
  if (!lua_checkstack(L, 4)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->live_ref);
  for (i = 1; i <= h->ntasks; i++) {
    luaio_task *t;
    lua_rawgeti(L, -1, i);
    t = lua_touserdata(L, -1);
    label(L, t, name, sizeof name);
    luaio__task_getextra(L, -1, "spawned_at");
    fprintf(stderr, "luaio: debug: task %s still pending at exit, "
            "spawned at %s\n", name,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  fflush(stderr);
}

/* ---- resources ----------------------------------------------------- */

/* Push the weak-keyed table of sites, made on first use. [-0, +1] */
static void push_sites (lua_State *L) {
  luaio__push_weak_table(L, &sites_key, "k");
}

void luaio__resource_open (lua_State *L, int idx) {
  luaio_host *h = luaio_host_of(L);
  char at[WHERE_MAX];
  if (h == NULL || !h->debug) return;
  idx = lua_absindex(L, idx);
  where(L, 1, at, sizeof at);
  push_sites(L);
  lua_pushvalue(L, idx);
  lua_pushstring(L, at);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void luaio__resource_closed (lua_State *L, int idx) {
  luaio_host *h = luaio_host_of(L);
  if (h == NULL || !h->debug) return;
  idx = lua_absindex(L, idx);
  push_sites(L);
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* From __gc, before the close: an object still in the table was never
 * closed. (A finalized key stays in a weak-keyed table until the next
 * collection, so it is still there now.) */
void luaio__resource_gc (lua_State *L, int idx, const char *what) {
  luaio_host *h = luaio_host_of(L);
  if (h == NULL || !h->debug || h->closed) return;
  idx = lua_absindex(L, idx);
  push_sites(L);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TSTRING) {
    int t = what ? LUA_TNIL : luaL_getmetafield(L, idx, "__name");
    if (t == LUA_TSTRING) what = lua_tostring(L, -1);
    else {                              /* one slot for the pop below */
      if (t != LUA_TNIL) lua_pop(L, 1);
      lua_pushnil(L);
      if (what == NULL) what = "resource";
    }
    fprintf(stderr, "luaio: debug: a %s opened at %s was collected "
            "without being closed\n", what, lua_tostring(L, -2));
    fflush(stderr);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* ---- switching ----------------------------------------------------- */

void luaio_set_debug (luaio_host *h, int on) { h->debug = on != 0; }

void luaio__debug_init (luaio_host *h) {
  const char *e = getenv("LUAIO_DEBUG");
  h->slow_ms = 100;
  if (h->cfg.debug || (e && *e && strcmp(e, "0") != 0)) h->debug = 1;
}

/* aio.debug([on [, {slow = seconds}]]) -> whether debug mode is on */
int luaio__debug_lua (lua_State *L) {
  luaio_host *h = luaio__host(L);
  if (!lua_isnoneornil(L, 2)) {
    lua_Number s;
    int isnum;
    luaio__checktype(L, 2, "aio.debug", LUA_TTABLE);
    lua_getfield(L, 2, "slow");
    s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s >= 0 && s <= 86400))
      return luaio__argerror(L, 2, "aio.debug",
                             "slow must be seconds from 0 to 86400");
    h->slow_ms = (unsigned)(s * 1000 + 0.5);
    lua_pop(L, 1);
  }
  if (!lua_isnone(L, 1)) {
    luaio__checktype(L, 1, "aio.debug", LUA_TBOOLEAN);
    h->debug = lua_toboolean(L, 1);
  }
  lua_pushboolean(L, h->debug);
  return 1;
}
