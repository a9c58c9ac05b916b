/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * perm_lib.c: the standard library in a sandbox. Every function that
 * names a file, a program or a variable is replaced by a C closure that
 * checks the permission and then calls the original, held as its
 * upvalue (out of the script's reach: the debug library is gone); what
 * no flag can allow (C libraries, binary chunks, the debug library,
 * collectgarbage's tuning options) is removed or refuses.
 */
#include "private.h"
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

/* Call the original (upvalue 1) with every argument; return all it
 * returns. */
static int call_original (lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* The path argument at arg, which C will read up to a NUL: checked for
 * access and replaced by its resolved form. */
static void check_arg (lua_State *L, int arg, const char *fname,
                       int access) {
  luaio__checkcstring(L, arg, fname, "path");
  luaio__perm_arg(L, arg, access);
}

/* What an io.open mode asks for. */
static int mode_access (const char *mode) {
  int access = 0;
  if (strchr(mode, 'r') || strchr(mode, '+')) access |= LUAIO_PERM_READ;
  if (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))
    access |= LUAIO_PERM_WRITE;
  return access ? access : LUAIO_PERM_READ;
}

/* The file at idx was opened by path: check again what it really is
 * (/proc/self/fd), so a symlink swapped in between the check and the
 * open is caught; closes the file and raises if it is not allowed. */
static void check_opened (lua_State *L, int idx, int access) {
  luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);
  char link[64], real[PATH_MAX];
  ssize_t n;
  if (s == NULL || s->closef == NULL) return;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fileno(s->f));
  if ((n = readlink(link, real, sizeof real - 1)) < 0) return;
  real[n] = '\0';
  if (real[0] != '/' || luaio__perm_allows(L, real, access)) return;
  fclose(s->f);                     /* closef NULL: closed, for io and gc */
  s->closef = NULL;
  luaio__perm_path(L, real, access);                      /* raises */
}

/* What no flag allows: "permission denied: call 'fname' (why)". */
static int refuse (lua_State *L, const char *fname, const char *why) {
  luaio__perm_push_error(L, "call", fname, why);
  return luaio_raise(L);
}

/* ---- io ----------------------------------------------------------------- */

static int sb_io_open (lua_State *L) {
  int access = mode_access(luaL_optstring(L, 2, "r"));
  check_arg(L, 1, "io.open", access);
  call_original(L);
  check_opened(L, 1, access);
  return lua_gettop(L);
}

/* io.lines(path, ...): the fourth result is the file (Lua 5.4). */
static int sb_io_lines (lua_State *L) {
  int n;
  if (lua_isnoneornil(L, 1)) return call_original(L);
  check_arg(L, 1, "io.lines", LUAIO_PERM_READ);
  n = call_original(L);
  if (n >= 4) check_opened(L, 4, LUAIO_PERM_READ);
  return n;
}

/* io.input(path) and io.output(path) open a file; a file or nothing
 * goes through. The access is the closure's second upvalue. */
static int sb_io_inout (lua_State *L) {
  int access = (int)lua_tointeger(L, lua_upvalueindex(2));
  if (lua_type(L, 1) == LUA_TSTRING) {
    check_arg(L, 1, access == LUAIO_PERM_READ ? "io.input" : "io.output",
              access);
    lua_settop(L, 1);
    call_original(L);
    check_opened(L, 1, access);
    return 1;
  }
  return call_original(L);
}

/* What needs a shell (io.popen, os.execute) needs --allow-run=sh: with
 * a shell a script runs anything. */
static int sb_shell (lua_State *L) {
  luaio__perm_run(L, "sh");
  return call_original(L);
}

/* io.tmpfile and os.tmpname create a file in the system temp folder. */
static int sb_tmp (lua_State *L) {
  luaio__perm_path(L, P_tmpdir, LUAIO_PERM_WRITE);
  return call_original(L);
}

/* ---- os ----------------------------------------------------------------- */

static int sb_os_remove (lua_State *L) {
  check_arg(L, 1, "os.remove", LUAIO_PERM_WRITE);
  return call_original(L);
}

static int sb_os_rename (lua_State *L) {
  check_arg(L, 1, "os.rename", LUAIO_PERM_WRITE);
  check_arg(L, 2, "os.rename", LUAIO_PERM_WRITE);
  return call_original(L);
}

static int sb_os_getenv (lua_State *L) {
  luaio__perm_env(L, luaio__checkcstring(L, 1, "os.getenv", "name"));
  return call_original(L);
}

/* os.exit unwinds the tasks (the host's own os.exit); outside a task (a
 * finalizer) it would end the embedder's process. */
static int sb_os_exit (lua_State *L) {
  if (luaio__current(L) == NULL)
    return luaL_error(L, "os.exit: not inside a task");
  return call_original(L);
}

/* os.setlocale(nil [, category]) asks; setting changes the process. */
static int sb_os_setlocale (lua_State *L) {
  if (!lua_isnoneornil(L, 1)) return refuse(L, "os.setlocale",
      "the locale belongs to the whole process");
  return call_original(L);
}

/* ---- chunks: text only -------------------------------------------------- */

/* load(chunk [, name [, mode [, env]]]) with mode "t": a binary chunk
 * can crash the VM. An absent env stays absent (it is not nil). */
static int sb_load (lua_State *L) {
  if (lua_gettop(L) < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  return call_original(L);
}

/* loadfile([path [, mode [, env]]]): no path reads stdin. */
static int sb_loadfile (lua_State *L) {
  if (!lua_isnoneornil(L, 1)) check_arg(L, 1, "loadfile", LUAIO_PERM_READ);
  if (lua_gettop(L) < 2) lua_settop(L, 2);
  lua_pushliteral(L, "t");
  lua_replace(L, 2);
  return call_original(L);
}

static int dofile_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L) - 1;
}

/* dofile([path]) as Lua's, loading text only. */
static int sb_dofile (lua_State *L) {
  const char *path = NULL;
  if (!lua_isnoneornil(L, 1)) {
    check_arg(L, 1, "dofile", LUAIO_PERM_READ);
    path = lua_tostring(L, 1);
  }
  lua_settop(L, 1);
  if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
  lua_callk(L, 0, LUA_MULTRET, 0, dofile_k);
  return dofile_k(L, LUA_OK, 0);
}

/* ---- require: preloaded modules and Lua files the script may read ------- */

/* package.searchers[2] in a sandbox: package.path's candidates that the
 * sandbox allows to read, loaded as text. Refused candidates are named
 * in the "not found" message without saying whether they exist. */
static int sb_searcher (lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *path, *e;
  luaL_Buffer why;
  lua_getfield(L, lua_upvalueindex(1), "path");
  path = lua_tostring(L, -1);
  if (path == NULL) return luaL_error(L, "'package.path' must be a string");
  name = luaL_gsub(L, name, ".", "/");                /* name path mname */
  luaL_buffinit(L, &why);
  for (; *path; path = *e ? e + 1 : e) {
    e = strchr(path, ';');
    if (e == NULL) e = path + strlen(path);
    lua_pushlstring(L, path, (size_t)(e - path));
    luaL_gsub(L, lua_tostring(L, -1), "?", name);     /* ... tpl file */
    lua_remove(L, -2);
    if (!luaio__perm_allows(L, lua_tostring(L, -1), LUAIO_PERM_READ)) {
      lua_pushfstring(L, "\n\tno file '%s' (not allowed)", lua_tostring(L, -1));
      lua_remove(L, -2);
      luaL_addvalue(&why);
      continue;
    }
    if (access(lua_tostring(L, -1), R_OK) == 0) {
      if (luaL_loadfilex(L, lua_tostring(L, -1), "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          lua_tostring(L, 1), lua_tostring(L, -2),
                          lua_tostring(L, -1));
      lua_insert(L, -2);                              /* loader file */
      return 2;
    }
    lua_pushfstring(L, "\n\tno file '%s'", lua_tostring(L, -1));
    lua_remove(L, -2);
    luaL_addvalue(&why);
  }
  luaL_pushresult(&why);
  return 1;
}

static int sb_loadlib (lua_State *L) {
  return refuse(L, "package.loadlib", "C libraries cannot be loaded in "
                "the sandbox");
}

static int sb_searchpath (lua_State *L) {
  return refuse(L, "package.searchpath", "it probes files; use require");
}

/* Keep the preload searcher, replace the Lua one, drop the C ones. */
static void sandbox_package (lua_State *L) {
  if (lua_getglobal(L, "package") != LUA_TTABLE) { lua_pop(L, 1); return; }
  lua_getfield(L, -1, "searchers");
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, sb_searcher, 1);
  lua_rawseti(L, -2, 2);
  lua_pushnil(L); lua_rawseti(L, -2, 4);
  lua_pushnil(L); lua_rawseti(L, -2, 3);
  lua_pop(L, 1);
  lua_pushcfunction(L, sb_loadlib);
  lua_setfield(L, -2, "loadlib");
  lua_pushcfunction(L, sb_searchpath);
  lua_setfield(L, -2, "searchpath");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_getfield(L, -1, "loaded");
  lua_pushnil(L);
  lua_setfield(L, -2, "debug");                /* require "debug" too */
  lua_pop(L, 2);
}

/* ---- collectgarbage, debug, the string metatable ------------------------ */

/* collectgarbage with the options that only look or collect: stopping
 * the collector or retuning it (the generational mode has had crash
 * bugs in 5.4) is refused. */
static int sb_collectgarbage (lua_State *L) {
  static const char *const safe[] = {"collect", "count", "step",
                                     "isrunning", NULL};
  const char *opt = luaL_optstring(L, 1, "collect");
  int i;
  for (i = 0; safe[i]; i++)
    if (strcmp(opt, safe[i]) == 0) return call_original(L);
  lua_pushfstring(L, "collectgarbage('%s')", opt);
  return refuse(L, lua_tostring(L, -1), "only collect, count, step and "
                "isrunning are allowed in the sandbox");
}

/* Replace lib.name by fn with the original as upvalue 1 (and extra, if
 * not 0, as upvalue 2); nothing if lib or the field is missing. */
static void wrap (lua_State *L, const char *lib, const char *name,
                  lua_CFunction fn, int extra) {
  int t = lib ? lua_getglobal(L, lib) : (lua_pushglobaltable(L), LUA_TTABLE);
  if (t == LUA_TTABLE) {
    lua_getfield(L, -1, name);
    if (extra) lua_pushinteger(L, extra);
    lua_pushcclosure(L, fn, extra ? 2 : 1);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);
}

static const struct {
  const char *lib, *name;
  lua_CFunction fn;
  int extra;
} wrapped[] = {
  {"io", "open", sb_io_open, 0}, {"io", "lines", sb_io_lines, 0},
  {"io", "input", sb_io_inout, LUAIO_PERM_READ},
  {"io", "output", sb_io_inout, LUAIO_PERM_WRITE},
  {"io", "popen", sb_shell, 0}, {"io", "tmpfile", sb_tmp, 0},
  {"os", "execute", sb_shell, 0}, {"os", "tmpname", sb_tmp, 0},
  {"os", "remove", sb_os_remove, 0}, {"os", "rename", sb_os_rename, 0},
  {"os", "getenv", sb_os_getenv, 0}, {"os", "exit", sb_os_exit, 0},
  {"os", "setlocale", sb_os_setlocale, 0},
  {NULL, "load", sb_load, 0}, {NULL, "loadfile", sb_loadfile, 0},
  {NULL, "collectgarbage", sb_collectgarbage, 0},
};

void luaio__perm_stdlib (lua_State *L) {
  size_t i;
  for (i = 0; i < sizeof wrapped / sizeof wrapped[0]; i++)
    wrap(L, wrapped[i].lib, wrapped[i].name, wrapped[i].fn,
         wrapped[i].extra);
  lua_pushcfunction(L, sb_dofile);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "debug");
  sandbox_package(L);
  lua_pushliteral(L, "");                      /* the string metatable */
  if (lua_getmetatable(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");        /* getmetatable("") is false */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
