/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash, so that nobody
 * who does not know the key can choose inputs that collide.  nswapd hashes
 * what peers choose with it: (client_id, slot) keys of the page table, and
 * peer addresses of connections not past HELLO.  Each process draws its own
 * key at start (siphash_key_random).
 */
#ifndef NSWAPD_SIPHASH_H
#define NSWAPD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k[2];
};

/* A key from getrandom(); 0, or -1 with errno. */
int siphash_key_random(struct siphash_key *key);
uint64_t siphash(const struct siphash_key *key, const void *data, size_t len);
/* The same as siphash() over the 16 little-endian bytes of a and b, faster. */
uint64_t siphash_2u64(const struct siphash_key *key, uint64_t a, uint64_t b);

#endif /* NSWAPD_SIPHASH_H */
