/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Who is at the other end of a TCP connection from this very host: the uid
 * owning the peer's socket, from the kernel's socket table (sock_diag, as
 * `ss -e` shows it).  SO_PEERCRED works on Unix sockets only; control
 * requests (SET_CACHE_LIMIT) come over the same TCP port as everything else,
 * from loopback, and must come from root or nswapd's own user.
 */
#ifndef NSWAPD_PEERCRED_H
#define NSWAPD_PEERCRED_H

#include <sys/types.h>

/* 0 with *uid set, or -1 with errno (ENOENT: no such socket here, e.g. the
 * peer is on another host; ESRCH: its owner closed it already). */
int peer_uid(int fd, uid_t *uid);
/* root or this process's own user: the node's administrators (1), or not. */
int uid_is_admin(uid_t uid);
/* The peer is an administrator (1), or not or unknown (0). */
int peer_is_admin(int fd);

#endif /* NSWAPD_PEERCRED_H */
