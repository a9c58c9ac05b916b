# Turns the Lua files in lua/ into C: one preload loader per file, so
# require "luaio.<name>" finds it and tracebacks name "@luaio/<name>.lua".
# Run as: cmake -DOUT=file.c -DFILES="a.lua;b.lua" -P embed_lua.cmake
set(body "/* generated from lua/ by cmake/embed_lua.cmake */\n")
string(APPEND body "#include \"host.h\"\n\n")
set(reg "")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "static const char src_${name}[] = {${hex}};\n")
  string(APPEND body "static int load_${name} (lua_State *L) {\n")
  string(APPEND body "  if (luaL_loadbufferx(L, src_${name}, sizeof src_${name},\n")
  string(APPEND body "      \"@luaio/${name}.lua\", \"t\") != LUA_OK) return lua_error(L);\n")
  string(APPEND body "  lua_pushvalue(L, 1);\n  lua_call(L, 1, 1);\n  return 1;\n}\n\n")
  string(APPEND reg "  luaio_preload(h, \"luaio.${name}\", load_${name});\n")
endforeach()
string(APPEND body "void luaio__preload_lua (luaio_host *h) {\n  (void)h;\n${reg}}\n")
file(WRITE ${OUT} "${body}")
