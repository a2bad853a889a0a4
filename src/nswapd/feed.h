/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The node's client side fed from the gossip table (client_device): after
 * each gossip round nswapd keeps nswap.ko's server list for that device in
 * step with what the table says, through configfs
 * (/sys/kernel/config/nswap/<client_device>/servers, docs/kmod.md):
 *  - the server set (gossip_server_set(): up to client_servers members,
 *    ALIVE with free pages, chosen by the placement rule) is added with
 *    "add ADDR:PORT"; nswap.ko connects to each at once;
 *  - every configured IPv4 server that the table knows gets a placement
 *    hint "hint ADDR:PORT FREE CAPACITY": its own announcement while it is
 *    ALIVE, no free page once it is SUSPECT, DEAD or LEFT (or gone from the
 *    table after it was hinted), so nswap.ko stops sending it pages but
 *    still reads the pages it holds;
 *  - servers the table does not know (an admin's "add") are left alone.
 * The device's own servers file is the state: it is read back each round
 * and only what differs is written, so a restarted nswapd carries on.
 * nswap.ko cannot drop a server while powered on (its pages may be there),
 * so the list only grows, up to nswap.ko's 64; the hints steer new pages.
 * A device that does not exist yet is waited for (logged once), so the
 * device may be created before or after nswapd starts.
 */
#ifndef NSWAPD_FEED_H
#define NSWAPD_FEED_H

#include <stdint.h>

#include "config.h"
#include "gossip.h"

#define FEED_MAX_SERVERS	64	/* nswap.ko's NSWAP_MAX_SERVERS */
#define FEED_CONFIGFS		"/sys/kernel/config/nswap"

/* One line of the device's servers file. */
struct feed_server {
	uint32_t addr;		/* IPv4, host order; 0: not an IPv4 name */
	uint16_t port;
	int hinted;		/* " hint=FREE/CAPACITY" shown */
	uint64_t free, capacity;
};

struct feed {
	char device[32];
	char servers_path[sizeof(FEED_CONFIGFS) + 48];
	unsigned int k;			/* client_servers */
	uint64_t set[FEED_MAX_SERVERS];	/* the gossip server set (node ids) */
	unsigned int nset;
	struct feed_server conf[FEED_MAX_SERVERS];	/* read back each round */
	unsigned int nconf;
	int missing;			/* device missing (logged once) */
	uint64_t added, hints, write_errors;
};

void feed_init(struct feed *f, const struct config *cfg);
/* One round: read the device's list, add from the set, write changed hints. */
void feed_round(struct feed *f, struct gossip *g);

#endif
