// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Admission of connections not past HELLO; see admission.h. */
#include "admission.h"

#include <netinet/in.h>
#include <string.h>

int admission_init(struct admission *a, uint32_t max_pending, uint32_t max_per_address)
{
	memset(a, 0, sizeof(*a));
	a->max_pending = max_pending;
	a->max_per_address = max_per_address;
	return siphash_key_random(&a->key);
}

/* The address alone (not the port: one peer has any number of ports). */
static unsigned int bucket_of(const struct admission *a, const struct sockaddr *peer)
{
	const void *addr = "";
	size_t len = 0;

	if (peer->sa_family == AF_INET) {
		addr = &((const struct sockaddr_in *)peer)->sin_addr;
		len = sizeof(struct in_addr);
	} else if (peer->sa_family == AF_INET6) {
		addr = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		len = sizeof(struct in6_addr);
	}
	return (unsigned int)(siphash(&a->key, addr, len) % ADMISSION_BUCKETS);
}

enum admission_verdict admission_take(struct admission *a, const struct sockaddr *peer,
				      int local, int *bucket)
{
	unsigned int b = bucket_of(a, peer);

	/* Only this (main) thread raises the counts: a check here cannot be
	 * overtaken by another raise before the increment below. */
	if (!local && atomic_load(&a->pending) >= a->max_pending) {
		a->refused_total++;
		return ADMIT_FULL;
	}
	if (atomic_load(&a->bucket[b]) >= a->max_per_address) {
		a->refused_address++;
		return ADMIT_ADDRESS_FULL;
	}
	atomic_fetch_add(&a->bucket[b], 1);
	atomic_fetch_add(&a->pending, 1);
	*bucket = (int)b;
	return ADMIT;
}

void admission_release(struct admission *a, int bucket)
{
	if (bucket < 0 || bucket >= ADMISSION_BUCKETS)
		return;
	atomic_fetch_sub(&a->bucket[bucket], 1);
	atomic_fetch_sub(&a->pending, 1);
}
