/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Moving pages away when the elastic cache shrinks below its use (the
 * sending server B of docs/protocol.md 11.1): a thread of its own, so that
 * the event loops and the main thread never wait on another server.
 *
 * Every elastic tick the main thread says how many pages are over the limit
 * and which member of the gossip table takes them (ALIVE, the most free
 * pages).  The thread connects to it (HELLO with NSWAP_FEAT_MIGRATION, as
 * this node), and sends PUNTPAGE for pages it holds, up to 32 before it
 * reads the first reply (nswapd answers in order), each with its hop
 * count + 1: only pages of clients that follow moves
 * (followers.h), whose owner will hear the target's UPDATE.  A page the target took is marked `moving`: it
 * stays here, readable, until its owner, told by the target (UPDATE),
 * invalidates this copy; it is not sent again.  A refusal (ENOSPC, ESTALE),
 * a lost connection or a target that stops answering ends the round; the
 * next tick picks a target again.  Pages at the highest hop count stay.
 */
#ifndef NSWAPD_PUNT_H
#define NSWAPD_PUNT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "nswapd.h"

#define PUNT_SKIP_MAX	64

struct punter {
	struct server *srv;
	uint64_t self_id;		/* client_id of our HELLO: this node */
	pthread_t thread;
	int started;
	pthread_mutex_t lock;		/* the fields below up to `stop` */
	pthread_cond_t cond;
	uint32_t addr;			/* target, IPv4 host order; 0: none */
	uint16_t port;
	uint64_t want;			/* pages to move */
	int stop;
	uint32_t cursor;		/* thread only: where the scan goes on */
	uint64_t *followers;		/* thread only: snapshot, room for max_clients */
	uint32_t nfollowers;
	/* thread only: owners the target refused (ENOENT: not connected
	 * there with migration), left out for the rest of the round */
	uint64_t skipped[PUNT_SKIP_MAX];
	uint32_t nskipped;
	int stuck_logged;		/* thread only: "cannot move" said */
	int skip_logged;		/* thread only: "took none" said */
	_Atomic uint64_t punted, refused, failures;
	/* the last round moved nothing: its pages' owners do not follow
	 * moves or are not connected to the target (main thread: no
	 * overflow then; cleared once nothing is over the limit) */
	_Atomic int stuck;
};

/* Start the thread.  0, or -1 (logged). */
int punter_start(struct punter *p, struct server *srv, uint64_t self_id);
/* Main thread: move `want` pages to addr:port (want 0: nothing to do). */
void punter_ask(struct punter *p, uint32_t addr, uint16_t port, uint64_t want);
void punter_stop(struct punter *p);

#endif
