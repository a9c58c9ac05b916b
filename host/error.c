/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * error.c: luaio.Error values.
 *
 * Every failure luaio raises is a table with the metatable "luaio.Error":
 * kind ("io", "timeout", "cancelled", "error", ...), code (an errno name
 * such as "ENOENT"), message, op, the target (path, url or address), where
 * (the script position) and traceback. Plain Lua errors that kill a task
 * are wrapped into one with kind "error" and the original in `value`.
 */
#include "private.h"
#include <string.h>

static const char *const target_fields[] = {"path", "url", "address", NULL};

/* __tostring: `op 'target': CODE (message)` for I/O errors, otherwise the
 * position and the message. */
static int error_tostring (lua_State *L) {
  luaL_Buffer b;
  const char *op, *code, *msg, *where, *target = NULL;
  int i;
  lua_settop(L, 1);
  luaL_buffinit(L, &b);
  lua_getfield(L, 1, "op");  op = lua_tostring(L, -1);
  lua_getfield(L, 1, "code");  code = lua_tostring(L, -1);
  lua_getfield(L, 1, "message");  msg = lua_tostring(L, -1);
  lua_getfield(L, 1, "where");  where = lua_tostring(L, -1);
  for (i = 0; target_fields[i] && target == NULL; i++) {
    lua_getfield(L, 1, target_fields[i]);
    target = lua_tostring(L, -1);
  }
  if (where) luaL_addstring(&b, where);
  if (op) {
    luaL_addstring(&b, op);
    if (target) {
      luaL_addstring(&b, " '");  luaL_addstring(&b, target);
      luaL_addchar(&b, '\'');
    }
    luaL_addstring(&b, ": ");
  }
  if (code) {
    luaL_addstring(&b, code);
    if (msg) { luaL_addstring(&b, " ("); luaL_addstring(&b, msg);
               luaL_addchar(&b, ')'); }
  }
  else luaL_addstring(&b, msg ? msg : "error");
  luaL_pushresult(&b);
  return 1;
}

void luaio__error_init (lua_State *L) {
  if (luaL_newmetatable(L, "luaio.Error")) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

void luaio_push_error (lua_State *L, const char *kind, const char *code,
                       const char *message) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (code) { lua_pushstring(L, code); lua_setfield(L, -2, "code"); }
  if (message) { lua_pushstring(L, message); lua_setfield(L, -2, "message"); }
  luaL_setmetatable(L, "luaio.Error");
}

void luaio_push_uv_error (lua_State *L, int status, const char *op,
                          const char *field, const char *target) {
  if (status == LUAIO_EDENIED) {            /* the sandbox refused it */
    if (field && strcmp(field, "path") == 0)
      luaio__perm_push_path_error(L, target);
    else luaio__perm_push_addr_error(L, target);
    return;
  }
  luaio_push_error(L, status == UV_ETIMEDOUT ? "timeout" : "io",
                   uv_err_name(status), uv_strerror(status));
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "errno");
  if (op) { lua_pushstring(L, op); lua_setfield(L, -2, "op"); }
  if (field && target) { lua_pushstring(L, target); lua_setfield(L, -2, field); }
}

/* Is the value at idx a luaio.Error (of the given kind, if kind)? */
int luaio__is_error (lua_State *L, int idx, const char *kind) {
  int ok;
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, "luaio.Error");
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (ok && kind) {
    lua_getfield(L, idx, "kind");
    ok = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
  }
  return ok;
}

int luaio_raise (lua_State *L) {
  if (luaio__is_error(L, -1, NULL)) {
    lua_getfield(L, -1, "where");
    if (lua_isnil(L, -1)) {
      luaL_where(L, 1);
      lua_setfield(L, -3, "where");
    }
    lua_pop(L, 1);
  }
  return lua_error(L);
}

int luaio_raise_uv (lua_State *L, int status, const char *op,
                    const char *field, const char *target) {
  luaio_task *t = luaio__current(L);
  if (status == UV_ECANCELED && t && t->cancel_level > 0) {
    luaio__push_pending_cancel(L, t);
    return lua_error(L);
  }
  luaio_push_uv_error(L, status, op, field, target);
  return luaio_raise(L);
}

/* luaL_tolstring as a protected call. [-1, +1] */
static int tostring_protected (lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *luaio__tostring (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {        /* the common case */
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  lua_pushcfunction(L, tostring_protected);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {        /* the value is the reason */
    const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                      : "(error object is not a string)";
    lua_pushfstring(L, "(error object is a %s value; __tostring failed: %s)",
                    luaL_typename(L, idx), why);
    lua_remove(L, -2);
  }
  return lua_tostring(L, -1);
}

/* Replace the error table on top with a shallow copy (same metatable):
 * the awaiter's section is added to its own copy, so the error kept by
 * the task it came from (and seen by its other awaiters) is unchanged.
 * [-1, +1] */
static void copy_error (lua_State *L) {
  lua_createtable(L, 0, 8);                     /* e copy */
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

/* Push "'NAME' (#N)" for co's task, or nil when co is not a task.
 * [-0, +1] */
static void push_task_label (lua_State *L, lua_State *co) {
  luaio_task *t = task_of(co);
  if (t == NULL || t->co != co) { lua_pushnil(L); return; }
  luaio__push_task(L, t);
  if (luaio__task_getextra(L, -1, "name") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "task-%d", (int)t->id);
  }
  lua_pushfstring(L, "'%s' (#%d)", lua_tostring(L, -1), (int)t->id);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* Push the traceback so far of error e (at idx) for the next section:
 * at the first await, its plain "stack traceback:" (as lua5.4 prints
 * it, for an error no task awaited) is named after e.task, the task
 * that raised it. [-0, +1] */
static void push_chain (lua_State *L, int idx, const char *prev) {
  int named = strncmp(prev, "stack traceback:", 16) == 0 &&
              lua_getfield(L, idx, "task") == LUA_TSTRING;
  if (named)
    lua_pushfstring(L, "stack traceback of task %s:%s", lua_tostring(L, -1),
                    prev + 16);
  else lua_pushstring(L, prev);
  if (strncmp(prev, "stack traceback:", 16) == 0) lua_remove(L, -2);
}

/* Turn the error at erridx of coroutine co into a luaio.Error on L's top,
 * with co's traceback from level on. An error that already has one came
 * from a task co awaited (through await, gather, a group...): co's stack
 * is appended as the next section of the await chain, "awaited by" co's
 * task, on a copy of the error. Nothing of this runs unless a task
 * fails. L and co may be the same. [-0, +1] on L */
void luaio__wrap_error (lua_State *L, lua_State *co, int erridx,
                        int level) {
  const char *prev, *tb;
  luaL_checkstack(L, 8, NULL);
  lua_pushvalue(co, erridx);
  if (co != L) lua_xmove(co, L, 1);             /* err */
  if (!luaio__is_error(L, -1, NULL)) {
    luaio__tostring(L, -1);                     /* err msg */
    luaio_push_error(L, "error", NULL, lua_tostring(L, -1));
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "value");               /* err msg e */
    lua_replace(L, -3);
    lua_pop(L, 1);                              /* e */
  }
  lua_getfield(L, -1, "traceback");
  prev = lua_tostring(L, -1);
  if (prev == NULL) {                           /* where it was raised */
    lua_pop(L, 1);
    push_task_label(L, co);
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    else lua_setfield(L, -2, "task");
    luaL_traceback(L, co, NULL, level);
    lua_setfield(L, -2, "traceback");
    return;
  }
  lua_insert(L, -2);                            /* prev e */
  copy_error(L);
  push_chain(L, -1, prev);                      /* prev e chain */
  lua_remove(L, -3);                            /* e chain */
  push_task_label(L, co);
  if (lua_isnil(L, -1)) lua_pushliteral(L, "\nawaited at:");
  else lua_pushfstring(L, "\nawaited by task %s:", lua_tostring(L, -1));
  lua_remove(L, -2);                            /* e chain head */
  luaL_traceback(L, co, NULL, level);
  tb = lua_tostring(L, -1);                     /* "stack traceback:..." */
  if (strncmp(tb, "stack traceback:", 16) == 0) {
    lua_pushstring(L, tb + 16);
    lua_remove(L, -2);
  }
  lua_concat(L, 3);                             /* e tb */
  lua_setfield(L, -2, "traceback");
}

/* Print "luaio: <what>: <error>\n<traceback>" to stderr. */
void luaio__report (luaio_host *h, const char *what, lua_State *L, int idx) {
  const char *msg, *tb = NULL;
  (void)h;
  idx = lua_absindex(L, idx);
  msg = luaio__tostring(L, idx);
  if (luaio__is_error(L, idx, NULL)) {
    lua_getfield(L, idx, "traceback");
    tb = lua_tostring(L, -1);
  }
  fprintf(stderr, "luaio: %s: %s\n%s%s", what, msg, tb ? tb : "",
          tb ? "\n" : "");
  fflush(stderr);
  lua_pop(L, tb ? 2 : 1);
}

/* Raise a timeout error for op after seconds, naming what it
 * interrupted. */
int luaio__raise_timeout (lua_State *L, const char *op, lua_Number secs,
                          const char *in) {
  int named = in && *in;
  lua_pushfstring(L, "timed out after %f s%s%s", secs, named ? " in " : "",
                  named ? in : "");
  luaio_push_error(L, "timeout", "ETIMEDOUT", lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_pushnumber(L, secs);
  lua_setfield(L, -2, "seconds");
  if (named) {
    lua_pushstring(L, in);
    lua_setfield(L, -2, "interrupted");
  }
  return luaio_raise(L);
}
