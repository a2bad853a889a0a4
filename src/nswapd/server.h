/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#ifndef NSWAPD_SERVER_H
#define NSWAPD_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "nswapd.h"

#define NSWAPD_VERSION "0.1.0"

/* Allocate the cache, bind, set up epoll and signals.  0 or -1 (logged). */
int server_init(struct server *s, const struct config *cfg);
/* Serve until SIGTERM/SIGINT and the drain are done.  Returns the exit code. */
int server_run(struct server *s);
void server_destroy(struct server *s);

void format_addr(const struct sockaddr *sa, char *buf, size_t len);
/* 1 when sa is a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104):
 * the peer runs on this node, the only place control requests come from. */
int addr_is_loopback(const struct sockaddr *sa);

#endif
