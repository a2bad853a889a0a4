/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Admission of connections that have not said HELLO yet ("pending"): a
 * guard against cheap denial of service.  A pending connection holds a slot
 * of max_clients and its buffers while it has proved nothing; without a
 * bound, 256 idle sockets locked every client out, STATUS from the node
 * itself included.  Bounds (docs/protocol.md 10):
 *  - at most max_pending pending connections in all (default: half of
 *    max_clients, so clients past HELLO always have the other half); a
 *    loopback peer is not held to it, so that the node's own tools (STATUS,
 *    a drain) still get in while others flood;
 *  - at most max_pending_per_address from one peer address, counted per
 *    bucket of a keyed hash of the address (addresses that share a bucket
 *    share its budget; nobody can aim at another's bucket without the key);
 *  - each is closed hello_timeout ms after it was accepted (server.c).
 * The main thread takes (accept); loop threads release (HELLO, close).
 */
#ifndef NSWAPD_ADMISSION_H
#define NSWAPD_ADMISSION_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siphash.h"

#define ADMISSION_BUCKETS	4096

struct admission {
	struct siphash_key key;
	uint32_t max_pending, max_per_address;
	_Atomic uint32_t pending;
	_Atomic uint32_t bucket[ADMISSION_BUCKETS];
	uint64_t refused_total, refused_address;	/* main thread only */
};

/* 0, or -1 with errno (no random key). */
int admission_init(struct admission *a, uint32_t max_pending, uint32_t max_per_address);

enum admission_verdict {
	ADMIT = 0,
	ADMIT_FULL,		/* max_pending pending connections already */
	ADMIT_ADDRESS_FULL,	/* max_per_address of them from this address */
};

/* Main thread, before a new connection is queued (`local`: from a loopback
 * address): on ADMIT the counts are raised and *bucket names the ones to
 * release. */
enum admission_verdict admission_take(struct admission *a, const struct sockaddr *peer,
				      int local, int *bucket);
/* Any thread, once: the connection said HELLO, or closed before it did. */
void admission_release(struct admission *a, int bucket);

#endif /* NSWAPD_ADMISSION_H */
