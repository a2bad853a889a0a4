/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Admission of connections that have not said HELLO yet ("pending"): a
 * guard against cheap denial of service.  A pending connection holds a slot
 * of max_clients and its buffers while it has proved nothing; without a
 * bound, 256 idle sockets locked every client out, STATUS from the node
 * itself included.  The rules (docs/protocol.md 10):
 *  - the node's own administrators (a loopback peer whose socket belongs to
 *    root or to nswapd's user, peercred.h) are not counted at all, so their
 *    tools always get in;
 *  - at most max_pending_per_address pending connections per address
 *    bucket: an IPv4 address, an IPv6 /64 (one host can have a whole one),
 *    or, for every other local user together, loopback.  Buckets are a
 *    keyed hash of the address: addresses that share one share its budget,
 *    and nobody can aim at another's without the key;
 *  - above max_pending pending connections in all (default: half of
 *    max_clients), a new one is still taken and the loops close their
 *    oldest pending ones, if at least 500 ms old, instead (server.c): an
 *    honest client says HELLO within a round trip, so a flood evicts
 *    itself, not the clients;
 *  - each is closed hello_timeout ms after it was accepted (server.c), but
 *    an administrator's: a tool may poll STATUS on one connection.
 * The main thread takes (accept); loop threads release (HELLO, close).
 */
#ifndef NSWAPD_ADMISSION_H
#define NSWAPD_ADMISSION_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siphash.h"

#define ADMISSION_BUCKETS	4096	/* and one more: loopback's */

struct admission {
	struct siphash_key key;
	uint32_t max_pending, max_per_address;
	_Atomic uint32_t pending;
	_Atomic uint32_t bucket[ADMISSION_BUCKETS + 1];
	uint64_t refused_address;	/* main thread only */
	_Atomic uint64_t evicted;	/* closed to make room (loops) */
};

/* 0, or -1 with errno (no random key). */
int admission_init(struct admission *a, uint32_t max_pending, uint32_t max_per_address);

/* Main thread, before a new connection (`local`: from a loopback address,
 * not an administrator) is queued.  0: taken, its counts raised, *bucket
 * names the ones to release; -1: its bucket is full (refuse it). */
int admission_take(struct admission *a, const struct sockaddr *peer, int local, int *bucket);
/* More pending connections than max_pending: the loops evict. */
static inline int admission_over(struct admission *a)
{
	return atomic_load_explicit(&a->pending, memory_order_relaxed) > a->max_pending;
}
/* Any thread, once: the connection said HELLO, or closed before it did. */
void admission_release(struct admission *a, int bucket);

#endif /* NSWAPD_ADMISSION_H */
