/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net.c: `luaio.net`, TCP and Unix-socket streams, servers, DNS and UDP
 * on libuv. Streams are the host's (host/stream.c); this module makes
 * them: net_connect.c (connecting), net_server.c (accepting),
 * net_dns.c (net.resolve) and net_udp.c (datagrams).
 */
#include "net.h"

void luaio__net_ip_addr (lua_State *L, int hi, int pi,
                         struct sockaddr_storage *ss, const char *fname,
                         const char *expected) {
  const char *host = luaio__checkcstring(L, hi, fname, "host");
  lua_Integer port = luaio__checkinteger(L, pi, fname);
  if (port < 0 || port > 65535)
    luaio__argerror(L, pi, fname, "port out of range");
  luaio__perm_net(L, host, (int)port);        /* serve, bind, send to */
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0)
    luaio__argerror(L, hi, fname, expected);
}

int luaopen_luaio_net (lua_State *L) {
  luaio__host(L);
  lua_newtable(L);
  luaio__net_connect_open(L);
  luaio__net_server_open(L);
  luaio__net_dns_open(L);
  luaio__net_udp_open(L);
  return 1;
}
