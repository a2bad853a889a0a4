/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The daemon's side of gossip membership (gossip.h has no I/O): the UDP
 * socket, the round timer, the node id, the table file and the SIGHUP dump.
 * Everything here runs on the main thread (server.c), next to the listener
 * and the signals; the event loops never touch it.
 *
 * Choices an operator can observe:
 *  - The UDP socket is bound to gossip_address:gossip_port, not to 0.0.0.0:
 *    the source address of every datagram is then the announced address
 *    (the gossip module recognises seeds by it), and several nswapd on one
 *    host can gossip on the same port from different addresses.  So
 *    gossip_address must be an address of this host (else exit 1).
 *  - Pushes go to a member's address and gossip_port; a reply goes back to
 *    the address and port the push came from.
 *  - A seed equal to gossip_address is skipped (one seed list for all nodes).
 *  - node_id = auto: a hash of /etc/machine-id (else the host name) and the
 *    announced address:port, so two nswapd on one host differ and a restart
 *    keeps the id.
 *  - Incarnation: the wall clock in seconds at start, so a restart (a second
 *    or more after the previous start) supersedes the old entries.
 */
#ifndef NSWAPD_GOSSIP_NET_H
#define NSWAPD_GOSSIP_NET_H

#include <stdint.h>

#include "config.h"
#include "gossip.h"
#include "nswapd.h"

/* Members listed in the table file and in the SIGHUP dump; the counts by
 * state always cover the whole table. */
#define GOSSIP_TABLE_FILE_MAX	4096
#define GOSSIP_LOG_MAX		64

struct gossip_net {
	struct ev_src sock_src;		/* EV_GOSSIP: the UDP socket */
	struct ev_src timer_src;	/* EV_GOSSIP_TIMER: the round timerfd */
	int fd, tfd, epfd;
	int left;			/* gossip_leave() was sent; no more rounds */
	struct gossip g;
	uint16_t udp_port;
	int has_subnet;
	uint32_t net, mask;		/* gossip_subnet, host order */
	char table_file[CONFIG_PATH_MAX];
	char table_tmp[CONFIG_PATH_MAX + 8];
	int table_failing;		/* the last write failed (logged once) */
	char name[32];
	uint64_t outside_subnet;	/* datagrams dropped: source outside gossip_subnet */
	uint64_t send_errors;		/* sendto failed (the datagram is lost) */
	struct gossip_out *out;		/* GOSSIP_MAX_FANOUT + 1, for rounds and leaving */
	struct gossip_out reply;
	unsigned char *rbuf;		/* one datagram of any size */
};

/* Bind, arm the timer, register both with epfd.  tcp_port: the port the
 * listener got.  Returns 0, or -1 (logged; n is then safe to destroy). */
int gossip_net_init(struct gossip_net *n, const struct config *cfg, uint16_t tcp_port, int epfd);
/* The timer fired: what this node lends now, one round, the table file. */
void gossip_net_timer(struct gossip_net *n, uint64_t capacity, uint64_t free_pages,
		      uint32_t load);
/* The socket is readable: receive, merge, answer. */
void gossip_net_readable(struct gossip_net *n);
/* Stopping: tell `fanout` members that this node leaves, stop the rounds. */
void gossip_net_leave(struct gossip_net *n);
/* SIGHUP: log this node's entry, the counters and the members. */
void gossip_net_log_table(const struct gossip_net *n);
void gossip_net_destroy(struct gossip_net *n);

#endif
