/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The server state shared by the event loop, connections and requests. */
#ifndef NSWAPD_H
#define NSWAPD_H

#include <stdint.h>
#include <time.h>

#include "cache.h"
#include "config.h"

/* Feature bits this server implements (see enum nswap_features). */
#define NSWAPD_FEATURES		(NSWAP_FEAT_RANGE_INVALIDATE | NSWAP_FEAT_CACHE_LIMIT)
/* Drain after SIGTERM/SIGINT: a connection is read until it has been quiet
 * for NSWAPD_DRAIN_QUIET_MS with no partial frame buffered, so requests
 * already in flight get answered; the whole drain ends after NSWAPD_DRAIN_MS
 * regardless. */
#define NSWAPD_DRAIN_MS		5000
#define NSWAPD_DRAIN_QUIET_MS	100

struct conn;

struct stats {
	uint64_t puts;		/* PUTPAGE answered OK */
	uint64_t gets;		/* GETPAGE requests */
	uint64_t invalidates;	/* INVALIDATE requests executed */
	uint64_t get_misses;	/* GETPAGE answered ENOENT or ESTALE */
	uint64_t errors;	/* other non-OK answers, plus protocol violations */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

enum ev_kind { EV_LISTEN = 1, EV_SIGNAL, EV_CONN };

struct server {
	struct config cfg;
	struct cache cache;
	struct stats st;
	int epfd;
	int lfd;
	int sfd;
	int draining;
	struct timespec started;
	int64_t drain_start_ms;		/* CLOCK_MONOTONIC */
	int64_t drain_deadline_ms;
	struct conn *conns;	/* all open connections */
	struct conn *dead;	/* closed during this event batch, freed after it */
	unsigned int nconns;
	unsigned int nclients;	/* connections past HELLO */
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t now_ms(void);
/* Seconds since start, from CLOCK_MONOTONIC. */
uint64_t server_uptime(const struct server *s);
void server_log_status(const struct server *s);

#endif
