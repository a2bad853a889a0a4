/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* nswapd settings: defaults, the `key = value` config file, and the command
 * line (which overrides the file).  Every error names where it came from
 * and the valid form; the caller exits 2. */
#ifndef NSWAPD_CONFIG_H
#define NSWAPD_CONFIG_H

#include <stdint.h>
#include <sys/socket.h>

#include "gossip.h"

#define CONFIG_DEFAULT_LISTEN	"127.0.0.1:7405"
#define CONFIG_DEFAULT_CACHE	(256ULL << 20)
#define CONFIG_DEFAULT_CLIENTS	256
/* Connections not past HELLO (admission.h): closed this long after accept;
 * at most this many from one address (a node opens up to 16 per device). */
#define CONFIG_DEFAULT_HELLO_TIMEOUT	10000
#define CONFIG_DEFAULT_PENDING_PER_ADDRESS	32
#define CONFIG_MAX_CLIENTS	65536
/* loops = auto (0): one event loop per CPU of the affinity, at most CONFIG_AUTO_LOOPS.
 * The cap: the measurements stop at 16 cores; past that the loops
 * share one free-page lock and one accepting thread, which we expect (not
 * measured) to limit the gain, and a memory server should not take a thread
 * on every core of a big host unasked.  An explicit
 * value may go up to CONFIG_MAX_LOOPS (the cache's shard count, see
 * CACHE_MAX_SHARDS: more loops than shards would only queue on the locks). */
#define CONFIG_AUTO_LOOPS	16
#define CONFIG_MAX_LOOPS	64
/* gossip_table_file: an absolute path, at most this long. */
#define CONFIG_PATH_MAX		256
#define CONFIG_DEFAULT_CLIENT_SERVERS	16
#define CONFIG_DEFAULT_ELASTIC_RESERVE	(256ULL << 20)
#define CONFIG_DEFAULT_ELASTIC_STEP	(64ULL << 20)
#define CONFIG_DEFAULT_ELASTIC_PSI	10.0
#define CONFIG_DEFAULT_ELASTIC_INTERVAL	1000

struct config {
	char listen[128];
	uint64_t cache_bytes;
	char name[32];
	unsigned int max_clients;
	uint32_t hello_timeout_ms;	/* a connection not past HELLO is closed then */
	unsigned int max_pending;	/* connections not past HELLO; 0: max_clients / 2 */
	unsigned int max_pending_per_address;
	int log_level;
	int lock_memory;
	unsigned int loops;	/* event-loop threads; 0 = auto */
	/* Gossip membership (gossip.h, gossip_net.c); off by default.  The
	 * gossip_* limits are the ones gossip_config_check() enforces. */
	int gossip;
	uint16_t gossip_port;		/* UDP */
	uint32_t gossip_interval_ms;
	uint32_t gossip_fanout;
	uint32_t gossip_seeds[GOSSIP_MAX_SEEDS];	/* IPv4, host order */
	unsigned int gossip_nseeds;
	uint32_t gossip_address;	/* IPv4, host order; 0: the listen address */
	uint64_t node_id;		/* 0: derived (gossip_net.c) */
	int gossip_has_subnet;
	uint32_t gossip_net, gossip_mask;	/* host order */
	char gossip_table_file[CONFIG_PATH_MAX];	/* "" = none */
	/* The node's client side fed from the table (feed.h); needs gossip. */
	char client_device[32];		/* configfs name; "" = off */
	unsigned int client_servers;	/* servers taken from the table, 1-64 */
	/* The elastic cache (elastic.h); off by default. */
	int elastic;
	uint64_t elastic_reserve;	/* bytes kept available for the node */
	uint64_t elastic_step;		/* bytes per grow or shrink, >= a page */
	double elastic_psi;		/* percent of "some avg10" that shrinks */
	uint32_t elastic_interval_ms;
	char meminfo_file[CONFIG_PATH_MAX];
	char pressure_file[CONFIG_PATH_MAX];	/* "" = PSI not used */
	/* Room beyond the limit for pages of clients that follow moves while a
	 * gossip member can take them (docs/protocol.md 10); 0 = none. */
	uint64_t overflow_bytes;
};

void config_defaults(struct config *cfg);
/* Apply one setting.  `where` prefixes error messages: "FILE:LINE: key" or
 * "--option".  Returns 0, or -1 after printing the error to stderr. */
int config_set(struct config *cfg, const char *key, const char *value, const char *where);
/* The gossip module's settings: its defaults, with cfg's gossip_* keys. */
void config_gossip(const struct config *cfg, struct gossip_config *gc);
/* Read a config file.  Returns 0, or -1 after printing the error. */
int config_load(struct config *cfg, const char *path);
/* Checks between keys, once every setting is applied (file, then command
 * line); fills in what defaults to another key (gossip_address from listen).
 * Returns 0, or -1 after printing the error. */
int config_finish(struct config *cfg);
/* Print the effective configuration as a valid config file. */
void config_print(const struct config *cfg);

/* "ADDR:PORT", "[V6ADDR]:PORT", or "PORT" (all IPv4 addresses).
 * Returns 0, or -1 with *err set to a reason. */
int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err);

#endif
