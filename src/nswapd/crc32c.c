/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* CRC-32C: slicing-by-8 tables, plus the SSE4.2 crc32 instruction behind a
 * cpuid check on x86-64.  Both produce the reflected CRC with init ~0 and
 * final xor ~0; crc32c_update() takes and returns the finished value, so
 * calls chain. */
#include "crc32c.h"

#include <string.h>

#define POLY 0x82f63b78U	/* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static uint32_t (*impl)(uint32_t, const void *, size_t) = crc32c_sw;
static const char *impl_name = "software (slicing-by-8)";

static void build_tables(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = table[0][n];
		for (int t = 1; t < 8; t++) {
			c = table[0][c & 0xff] ^ (c >> 8);
			table[t][n] = c;
		}
	}
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= crc;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		      table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		      table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = (uint32_t)~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int cpu_has_sse42(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & bit_SSE4_2) != 0;
}
#endif

int crc32c_init(int force_software)
{
	static const char check[] = "123456789";
	unsigned char buf[1031];

	build_tables();
	impl = crc32c_sw;
	impl_name = "software (slicing-by-8)";
#if defined(__x86_64__) && defined(__GNUC__)
	if (!force_software && cpu_has_sse42()) {
		impl = crc32c_hw;
		impl_name = "sse4.2";
	}
#else
	(void)force_software;
#endif
	/* Self-test: the standard check value, then the chosen implementation
	 * against the portable one at every alignment and with chaining. */
	if (crc32c_sw(0, check, 9) != 0xe3069283U || impl(0, check, 9) != 0xe3069283U)
		return -1;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++) {
		size_t n = sizeof(buf) - off;

		if (impl(0, buf + off, n) != crc32c_sw(0, buf + off, n))
			return -1;
		if (impl(impl(0, buf, off), buf + off, n) != crc32c_sw(0, buf, sizeof(buf)))
			return -1;
	}
	return 0;
}

const char *crc32c_impl(void)
{
	return impl_name;
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	return impl(crc, buf, len);
}
