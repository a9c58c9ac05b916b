/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * net.h: what the files of `luaio.net` share (private to the module).
 * Streams themselves are the host's (host/stream.h).
 */
#ifndef LUAIO_NET_H
#define LUAIO_NET_H

#include "../host/stream.h"

/* Parse the host (an IP address or "localhost") at hi and the port at
 * pi into ss; `expected` is the argument error for a bad host. */
void luaio__net_ip_addr(lua_State *L, int hi, int pi,
                        struct sockaddr_storage *ss, const char *fname,
                        const char *expected);

/* Each part adds its functions to the module table on top (registering
 * its classes). [-0, +0] */
void luaio__net_connect_open(lua_State *L);
void luaio__net_server_open(lua_State *L);
void luaio__net_dns_open(lua_State *L);
void luaio__net_udp_open(lua_State *L);

#endif
