/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The clients that follow moved pages: client_ids with at least one
 * connection here that negotiated NSWAP_FEAT_MIGRATION.  The page mover
 * (punt.h) moves only their pages: another owner would never hear where its
 * page went, so the copy it reads stays here and the moved one would be an
 * orphan on the receiver. */
#ifndef NSWAPD_FOLLOWERS_H
#define NSWAPD_FOLLOWERS_H

#include <pthread.h>
#include <stdint.h>

struct follower {
	uint64_t client_id;
	uint32_t conns;
};

struct followers {
	pthread_mutex_t lock;
	uint32_t n, cap;		/* cap: max_clients, one per connection at most */
	struct follower *v;
};

/* 0, or -1 (out of memory). */
int followers_init(struct followers *f, uint32_t cap);
void followers_free(struct followers *f);
/* A connection of client_id said HELLO with migration / closed (any thread). */
void followers_add(struct followers *f, uint64_t client_id);
void followers_del(struct followers *f, uint64_t client_id);
/* Whether client_id follows now (any thread). */
int followers_contains(struct followers *f, uint64_t client_id);
/* The followers now, sorted, into ids (room for f->cap); their number. */
uint32_t followers_snapshot(struct followers *f, uint64_t *ids);
/* Whether id is among the n sorted ids of a snapshot. */
int followers_has(const uint64_t *ids, uint32_t n, uint64_t id);

#endif
