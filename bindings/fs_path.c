/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * fs_path.c: one-step calls on paths and folders: stat, mkdir, remove,
 * rename, readdir, realpath, chmod, mkdtemp, exists.
 */
#include "fs.h"

/* ---- one-step calls: stat, mkdir, remove, rename... ---------------------- */

static void push_stat (lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushnumber(L, st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushnumber(L, st->st_atim.tv_sec + st->st_atim.tv_nsec / 1e9);
  lua_setfield(L, -2, "atime");
  lua_pushnumber(L, st->st_ctim.tv_sec + st->st_ctim.tv_nsec / 1e9);
  lua_setfield(L, -2, "ctime");
  lua_pushinteger(L, (lua_Integer)st->st_nlink);
  lua_setfield(L, -2, "nlink");
  lua_pushinteger(L, (lua_Integer)st->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st->st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)st->st_ino);
  lua_setfield(L, -2, "ino");
}

/* Push what a finished one-step request returns. */
static int push_result (lua_State *L, fs_op *op) {
  uv_fs_t *r = &op->req;
  uv_dirent_t ent;
  int n = 0;
  switch (r->fs_type) {
    case UV_FS_STAT: case UV_FS_LSTAT: case UV_FS_FSTAT:
      push_stat(L, &r->statbuf);
      return 1;
    case UV_FS_SCANDIR:
      lua_newtable(L);
      while (uv_fs_scandir_next(r, &ent) != UV_EOF) {
        lua_pushstring(L, ent.name);
        lua_rawseti(L, -2, ++n);
      }
      return 1;
    case UV_FS_REALPATH:
      lua_pushstring(L, (const char *)r->ptr);
      return 1;
    case UV_FS_MKDTEMP:
      lua_pushstring(L, r->path);
      return 1;
    default:
      return 0;
  }
}

static const char *op_name (uv_fs_type t) {
  switch (t) {
    case UV_FS_STAT: return "stat";
    case UV_FS_LSTAT: return "lstat";
    case UV_FS_MKDIR: return "mkdir";
    case UV_FS_RMDIR: return "rmdir";
    case UV_FS_UNLINK: return "remove";
    case UV_FS_RENAME: return "rename";
    case UV_FS_SCANDIR: return "readdir";
    case UV_FS_REALPATH: return "realpath";
    case UV_FS_MKDTEMP: return "mkdtemp";
    case UV_FS_CHMOD: return "chmod";
    default: return "fs";
  }
}

static int simple_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  int n;
  if (status < 0) return op_fail(L, op, status, op_name(op->req.fs_type));
  n = push_result(L, op);
  op_free(op);
  return n;
}

/* path: what aio.tasks and timeouts show the task waits on. */
#define SIMPLE(fname, path, call) \
  do { fs_op *op = op_new(L, fname); uv_loop_t *loop = luaio_loop(op->h); \
       luaio__wait_detail(L, "%s", path); \
       return op_wait(L, op, (call), simple_k, fname); } while (0)

static int fs_stat (lua_State *L) {
  const char *p = PATH(1, "fs.stat");
  SIMPLE("fs.stat", p, uv_fs_stat(loop, &op->req, p, fs_cb));
}
static int fs_lstat (lua_State *L) {
  const char *p = PATH(1, "fs.lstat");
  SIMPLE("fs.lstat", p, uv_fs_lstat(loop, &op->req, p, fs_cb));
}
static int fs_rmdir (lua_State *L) {
  const char *p = PATH(1, "fs.rmdir");
  SIMPLE("fs.rmdir", p, uv_fs_rmdir(loop, &op->req, p, fs_cb));
}
static int fs_remove (lua_State *L) {
  const char *p = PATH(1, "fs.remove");
  SIMPLE("fs.remove", p, uv_fs_unlink(loop, &op->req, p, fs_cb));
}
static int fs_rename (lua_State *L) {
  const char *p = PATH(1, "fs.rename"), *to = PATH(2, "fs.rename");
  SIMPLE("fs.rename", p, uv_fs_rename(loop, &op->req, p, to, fs_cb));
}
static int fs_readdir (lua_State *L) {
  const char *p = PATH(1, "fs.readdir");
  SIMPLE("fs.readdir", p, uv_fs_scandir(loop, &op->req, p, 0, fs_cb));
}
static int fs_realpath (lua_State *L) {
  const char *p = PATH(1, "fs.realpath");
  SIMPLE("fs.realpath", p, uv_fs_realpath(loop, &op->req, p, fs_cb));
}
static int fs_chmod (lua_State *L) {
  const char *p = PATH(1, "fs.chmod");
  int mode = (int)luaio__checkinteger(L, 2, "fs.chmod");
  SIMPLE("fs.chmod", p, uv_fs_chmod(loop, &op->req, p, mode, fs_cb));
}

/* fs.mkdtemp([prefix]) -> a new private folder (prefix: a path start;
 * default: the system temp folder + "/luaio-"). */
static int fs_mkdtemp (lua_State *L) {
  char tmp[1024];
  size_t n = sizeof tmp;
  lua_settop(L, 1);
  if (lua_isnil(L, 1)) {
    if (uv_os_tmpdir(tmp, &n) != 0) strcpy(tmp, "/tmp");
    luaio__perm_path(L, tmp, LUAIO_PERM_WRITE);    /* the sandbox */
    lua_pushfstring(L, "%s/luaio-XXXXXX", tmp);
  }
  else lua_pushfstring(L, "%sXXXXXX", PATH(1, "fs.mkdtemp"));
  lua_replace(L, 1);
  {
    const char *tpl = lua_tostring(L, 1);
    SIMPLE("fs.mkdtemp", tpl, uv_fs_mkdtemp(loop, &op->req, tpl, fs_cb));
  }
}

/* fs.tmpdir() -> the system temp folder (no I/O). */
static int fs_tmpdir (lua_State *L) {
  char tmp[1024];
  size_t n = sizeof tmp;
  if (uv_os_tmpdir(tmp, &n) != 0) strcpy(tmp, "/tmp");
  lua_pushstring(L, tmp);
  return 1;
}

static int exists_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  if (status == UV_ENOENT || status == UV_ENOTDIR) {
    op_free(op);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (status < 0) return op_fail(L, op, status, "stat");
  op_free(op);
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.exists(path) -> boolean */
static int fs_exists (lua_State *L) {
  const char *p = PATH(1, "fs.exists");
  fs_op *op = op_new(L, "fs.exists");
  return op_wait(L, op, uv_fs_stat(luaio_loop(op->h), &op->req, p, fs_cb),
                 exists_k, "stat");
}

/* mkdir with parents: op->done is where the next component ends. */
static int mkdir_k (lua_State *L, int status, lua_KContext ctx) {
  fs_op *op = (fs_op *)ctx;
  size_t len;
  const char *path = lua_tolstring(L, 1, &len);
  if (status < 0 && !(status == UV_EEXIST && (op->step || op->done < len)))
    return op_fail(L, op, status, "mkdir");
  if (op->done >= len) { op_free(op); return 0; }
  if (op->aborted) return op_fail(L, op, UV_ECANCELED, "mkdir");
  do op->done++; while (op->done < len && path[op->done] != '/');
  lua_pushlstring(L, path, op->done);
  op_reset(op);
  status = uv_fs_mkdir(luaio_loop(op->h), &op->req, lua_tostring(L, -1), 0777,
                       fs_cb);
  lua_pop(L, 1);
  return op_wait(L, op, status, mkdir_k, "mkdir");
}

/* fs.mkdir(path [, {parents=true, mode=}]); with parents, existing
 * folders are fine. */
static int fs_mkdir (lua_State *L) {
  const char *p = PATH(1, "fs.mkdir");
  int parents = 0, mode = 0777;
  fs_op *op;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "fs.mkdir", LUA_TTABLE);
    lua_getfield(L, 2, "parents");
    parents = lua_toboolean(L, -1);
    mode = (int)luaio__optfield_integer(L, 2, "mode", "fs.mkdir", 0777);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  op = op_new(L, "fs.mkdir");
  if (!parents)
    return op_wait(L, op, uv_fs_mkdir(luaio_loop(op->h), &op->req, p, mode, fs_cb),
                   simple_k, "mkdir");
  op->step = 1;                          /* EEXIST is fine at every level */
  op->done = p[0] == '/' ? 1 : 0;
  return mkdir_k(L, UV_EEXIST, (lua_KContext)op);
}

static const luaL_Reg path_funcs[] = {
  {"stat", fs_stat}, {"lstat", fs_lstat}, {"exists", fs_exists},
  {"mkdir", fs_mkdir}, {"rmdir", fs_rmdir}, {"remove", fs_remove},
  {"rename", fs_rename}, {"readdir", fs_readdir},
  {"realpath", fs_realpath}, {"mkdtemp", fs_mkdtemp},
  {"tmpdir", fs_tmpdir}, {"chmod", fs_chmod}, {NULL, NULL}
};

void luaio__fs_path_open (lua_State *L) {
  luaL_setfuncs(L, path_funcs, 0);
}
