// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* SipHash-2-4; see siphash.h.  Checked against the reference test vectors
 * (tests/integration/test_nswapd_admission.py compiles this file). */
#include "siphash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3)                                                         \
	do {                                                                             \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                 \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                    \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                    \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                 \
	} while (0)

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int siphash_key_random(struct siphash_key *key)
{
	unsigned char *p = (unsigned char *)key->k;
	size_t got = 0;

	while (got < sizeof(key->k)) {
		ssize_t n = getrandom(p + got, sizeof(key->k) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static uint64_t finish(uint64_t v0, uint64_t v1, uint64_t v2, uint64_t v3, uint64_t b)
{
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#define SIPHASH_INIT(key)                                                                \
	uint64_t v0 = 0x736f6d6570736575ULL ^ (key)->k[0];                               \
	uint64_t v1 = 0x646f72616e646f6dULL ^ (key)->k[1];                               \
	uint64_t v2 = 0x6c7967656e657261ULL ^ (key)->k[0];                               \
	uint64_t v3 = 0x7465646279746573ULL ^ (key)->k[1]

uint64_t siphash(const struct siphash_key *key, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t whole = len - len % 8;
	uint64_t b = (uint64_t)len << 56;
	SIPHASH_INIT(key);

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = le64(p + i);

		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t i = 0; i < len % 8; i++)
		b |= (uint64_t)p[whole + i] << (8 * i);
	return finish(v0, v1, v2, v3, b);
}

uint64_t siphash_2u64(const struct siphash_key *key, uint64_t a, uint64_t b)
{
	SIPHASH_INIT(key);

	v3 ^= a;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= a;
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	return finish(v0, v1, v2, v3, (uint64_t)16 << 56);
}
