/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_walk.c: fs.walk, a recursive directory iterator.
 *
 * The walker is a userdata with a stack of entries still to give (its
 * first user value, a Lua table of entry tables) and, when following
 * links, the directories already entered ("dev:ino" keys, its second).
 * Each call of the iterator pops an entry, finishes it (a stat when its
 * type is unknown or a link is followed, a scandir when it is a
 * directory to enter, pushing its children) and returns it: depth
 * first, in name order. Every request is an fs_op that must finish, so
 * a cancelled walk leaves nothing in flight; an I/O error about one
 * entry goes into the entry (entry.error) and the walk goes on.
 */
#include "fs.h"

static const char WALKER[] = "luaio.Walker";

typedef struct walker {
  lua_Integer max_depth;        /* -1: no limit */
  int follow;                   /* follow links (stat, not lstat) */
  int busy;                     /* a request is in flight */
  uint64_t dev, ino;            /* the last stat, for the loop check */
} walker;

/* The walker's user values (UV_ is libuv's prefix). */
enum { SLOT_STACK = 1, SLOT_SEEN = 2 };

static const char *dirent_type (uv_dirent_type_t t) {
  switch (t) {
    case UV_DIRENT_FILE: return "file";
    case UV_DIRENT_DIR: return "directory";
    case UV_DIRENT_LINK: return "link";
    case UV_DIRENT_FIFO: return "fifo";
    case UV_DIRENT_SOCKET: return "socket";
    case UV_DIRENT_CHAR: return "char";
    case UV_DIRENT_BLOCK: return "block";
    default: return "unknown";
  }
}

/* Field k of the entry at 2, as a string (the entry is ours: no
 * metamethods). */
static const char *entry_str (lua_State *L, const char *k) {
  const char *s;
  lua_getfield(L, 2, k);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);                         /* still anchored by the entry */
  return s;
}

static lua_Integer entry_depth (lua_State *L) {
  lua_Integer d;
  lua_getfield(L, 2, "depth");
  d = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return d;
}

static int entry_is (lua_State *L, const char *type) {
  const char *t = entry_str(L, "type");
  return t != NULL && strcmp(t, type) == 0;
}

/* Set entry.error to the I/O error status about the entry's path and
 * return the entry. Stack: walker, entry. */
static int entry_error (lua_State *L, int status) {
  luaio_push_uv_error(L, status, "walk", "path", entry_str(L, "path"));
  lua_setfield(L, 2, "error");
  lua_settop(L, 2);
  return 1;
}

static int walk_step (lua_State *L);
static int stat_k (lua_State *L, int status, lua_KContext ctx);
static int scan_k (lua_State *L, int status, lua_KContext ctx);

/* Wait for op (rc: its submit) with k, the walker busy meanwhile. */
static int walk_wait (lua_State *L, fs_op *op, int rc, lua_KFunction k) {
  walker *w = (walker *)lua_touserdata(L, 1);
  if (rc < 0) return op_fail_at(L, op, rc, "walk", entry_str(L, "path"));
  w->busy = 1;
  return luaio_wait(L, &op->w, k, (lua_KContext)op);
}

/* Push the "dev:ino" key of the last stat. [-0, +1] */
static void push_id (lua_State *L, const walker *w) {
  lua_pushfstring(L, "%I:%I", (lua_Integer)w->dev, (lua_Integer)w->ino);
}

/* A cancelled request: put the entry at 2 back (a folder about to be
 * entered no longer counts as entered), so the walk can go on from it,
 * then raise the cancellation. */
static int walk_cancelled (lua_State *L, fs_op *op, int entering) {
  walker *w = (walker *)lua_touserdata(L, 1);
  if (entering && w->follow) {
    lua_getiuservalue(L, 1, SLOT_SEEN);
    push_id(L, w);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_getiuservalue(L, 1, SLOT_STACK);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return op_fail_at(L, op, UV_ECANCELED, "walk", NULL);
}

/* The continuation's common start: the request is over. */
static walker *walk_resume (lua_State *L) {
  walker *w = (walker *)lua_touserdata(L, 1);
  w->busy = 0;
  lua_settop(L, 2);
  return w;
}

/* Enter the entry at 2 if it is a directory within max_depth (and, when
 * following links, not entered before); else return it. */
static int walk_descend (lua_State *L) {
  walker *w = (walker *)lua_touserdata(L, 1);
  lua_Integer depth = entry_depth(L);
  fs_op *op;
  if (depth == 0 && !entry_is(L, "directory"))     /* the root */
    return luaio_raise_uv(L, UV_ENOTDIR, "walk", "path",
                          entry_str(L, "path"));
  if (!entry_is(L, "directory") ||
      (w->max_depth >= 0 && depth >= w->max_depth))
    return depth == 0 ? walk_step(L) : 1;
  if (w->follow) {                       /* a link loop: list, not enter */
    lua_getiuservalue(L, 1, SLOT_SEEN);
    push_id(L, w);
    if (lua_rawget(L, -2) != LUA_TNIL) { lua_settop(L, 2); return 1; }
    push_id(L, w);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
    lua_settop(L, 2);
  }
  if (w->follow) luaio__perm_path(L, entry_str(L, "path"), LUAIO_PERM_READ);
  op = op_new(L, "fs.walk");
  return walk_wait(L, op, uv_fs_scandir(luaio_loop(op->h), &op->req,
                                        entry_str(L, "path"), 0, fs_cb),
                   scan_k);
}

/* Finish the entry at 2: stat it if its type is unknown or a link (or
 * directory) is followed, then descend. */
static int walk_entry (lua_State *L) {
  walker *w = (walker *)lua_touserdata(L, 1);
  fs_op *op;
  int rc;
  if (!entry_is(L, "unknown") &&
      !(w->follow && (entry_is(L, "link") || entry_is(L, "directory"))))
    return walk_descend(L);
  op = op_new(L, "fs.walk");
  rc = w->follow ? uv_fs_stat(luaio_loop(op->h), &op->req, entry_str(L, "path"),
                              fs_cb)
                 : uv_fs_lstat(luaio_loop(op->h), &op->req, entry_str(L, "path"),
                               fs_cb);
  return walk_wait(L, op, rc, stat_k);
}

static int stat_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  walker *w = walk_resume(L);
  if (status == UV_ECANCELED || op->aborted)
    return walk_cancelled(L, op, 0);
  if (status < 0 && entry_depth(L) == 0)           /* the root */
    return op_fail_at(L, op, status, "walk", entry_str(L, "path"));
  if (status < 0) {
    op_free(op);
    return entry_error(L, status);
  }
  if (entry_is(L, "link")) {
    lua_pushboolean(L, 1);
    lua_setfield(L, 2, "link");
  }
  lua_pushstring(L, type_name(op->req.statbuf.st_mode));
  lua_setfield(L, 2, "type");
  w->dev = op->req.statbuf.st_dev;
  w->ino = op->req.statbuf.st_ino;
  op_free(op);
  return walk_descend(L);
}

/* Push {path=, name=, type=, depth=} for a child of the entry at 2.
 * [-0, +1] */
static void push_child (lua_State *L, const uv_dirent_t *d,
                        lua_Integer depth) {
  const char *dir = entry_str(L, "path");
  size_t n = strlen(dir);
  lua_createtable(L, 0, 5);
  if (n > 0 && dir[n - 1] == '/') lua_pushfstring(L, "%s%s", dir, d->name);
  else lua_pushfstring(L, "%s/%s", dir, d->name);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, d->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, dirent_type(d->type));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, depth + 1);
  lua_setfield(L, -2, "depth");
}

/* Push the children of the entry at 2 onto the stack of entries, last
 * name first, so the first name is given first. */
static void push_children (lua_State *L, fs_op *op) {
  uv_dirent_t d;
  lua_Integer depth = entry_depth(L), i, n = 0, top;
  lua_newtable(L);                                 /* children */
  while (uv_fs_scandir_next(&op->req, &d) != UV_EOF) {
    push_child(L, &d, depth);
    lua_rawseti(L, -2, ++n);
  }
  lua_getiuservalue(L, 1, SLOT_STACK);               /* children stack */
  top = (lua_Integer)lua_rawlen(L, -1);
  for (i = n; i >= 1; i--) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, ++top);
  }
  lua_settop(L, 2);
}

static int scan_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  int root;
  walk_resume(L);
  if (status == UV_ECANCELED || op->aborted)
    return walk_cancelled(L, op, 1);
  root = entry_depth(L) == 0;
  if (status < 0 && root)
    return op_fail_at(L, op, status, "walk", entry_str(L, "path"));
  if (status < 0) {
    op_free(op);
    return entry_error(L, status);
  }
  push_children(L, op);
  op_free(op);
  return root ? walk_step(L) : 1;
}

/* Pop the next entry and finish it; nil when none is left. Stack:
 * walker. */
static int walk_step (lua_State *L) {
  lua_Integer n;
  lua_settop(L, 1);
  luaio_check_wait(L, "fs.walk");        /* a pending cancel: lose nothing */
  lua_getiuservalue(L, 1, SLOT_STACK);
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n == 0) { lua_pushnil(L); return 1; }
  lua_rawgeti(L, 2, n);                            /* walker stack entry */
  lua_pushnil(L);
  lua_rawseti(L, 2, n);
  lua_remove(L, 2);                                /* walker entry */
  return walk_entry(L);
}

/* The iterator: walker -> the next entry, or nil at the end. */
static int walk_next (lua_State *L) {
  walker *w = (walker *)luaL_checkudata(L, 1, WALKER);
  if (w->busy)
    return luaL_error(L, "fs.walk: another task is using this walk");
  return walk_step(L);
}

/* The options at 2 into w. */
static void walk_opts (lua_State *L, walker *w) {
  w->max_depth = opt_limit(L, 2, "fs.walk", "max_depth", -1, 0);
  if (lua_istable(L, 2)) {
    int t = lua_getfield(L, 2, "follow_links");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
      luaio__argerror(L, 2, "fs.walk", "follow_links must be a boolean");
    w->follow = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
}

/* fs.walk(dir [, {max_depth=, follow_links=false}]) -> iterator: each
 * call gives the next entry {path=, name=, type=, depth= [, link=]
 * [, error=]} under dir, depth first; nil at the end. No I/O here. */
static int fs_walk (lua_State *L) {
  const char *dir = PATH(1, "fs.walk");
  walker *w;
  walker opts = {0};
  walk_opts(L, &opts);
  lua_settop(L, 1);
  w = lua_newuserdatauv(L, sizeof *w, 2);          /* dir walker */
  *w = opts;
  luaL_setmetatable(L, WALKER);
  lua_createtable(L, 4, 0);                        /* dir walker stack */
  lua_createtable(L, 0, 3);                        /* the root entry */
  lua_pushstring(L, dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "directory");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "depth");
  lua_rawseti(L, -2, 1);
  lua_setiuservalue(L, -2, SLOT_STACK);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SLOT_SEEN);
  lua_pushcfunction(L, walk_next);
  lua_insert(L, -2);                               /* dir next walker */
  return 2;
}

void luaio__fs_walk_open (lua_State *L) {
  luaio__class(L, WALKER, NULL, NULL, NULL);
  lua_pushcfunction(L, fs_walk);
  lua_setfield(L, -2, "walk");
}
