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

/* The address alone (not the port: one peer has any number of ports); an
 * IPv6 peer by its /64 (but IPv4-mapped ones by their IPv4 address). */
static unsigned int bucket_of(const struct admission *a, const struct sockaddr *peer, int local)
{
	const unsigned char *addr = (const unsigned char *)"";
	size_t len = 0;

	if (local)
		return ADMISSION_BUCKETS;
	if (peer->sa_family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
		len = 4;
	} else if (peer->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		addr = in6->s6_addr;
		len = IN6_IS_ADDR_V4MAPPED(in6) ? 16 : 8;
	}
	return (unsigned int)(siphash(&a->key, addr, len) % ADMISSION_BUCKETS);
}

int admission_take(struct admission *a, const struct sockaddr *peer, int local, int *bucket)
{
	unsigned int b = bucket_of(a, peer, local);

	/* Only this (main) thread raises the counts: a check here cannot be
	 * overtaken by another raise before the increment below. */
	if (atomic_load(&a->bucket[b]) >= a->max_per_address) {
		a->refused_address++;
		return -1;
	}
	atomic_fetch_add(&a->bucket[b], 1);
	atomic_fetch_add(&a->pending, 1);
	*bucket = (int)b;
	return 0;
}

void admission_release(struct admission *a, int bucket)
{
	if (bucket < 0 || bucket > ADMISSION_BUCKETS)
		return;
	atomic_fetch_sub(&a->bucket[bucket], 1);
	atomic_fetch_sub(&a->pending, 1);
}
