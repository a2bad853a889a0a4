/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* CRC-32C (Castagnoli), as Linux crc32c(~0, ...) ^ ~0: the standard CRC-32C,
 * check value crc32c("123456789") == 0xE3069283. */
#ifndef NSWAPD_CRC32C_H
#define NSWAPD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Pick the implementation (SSE4.2 when the CPU has it and !force_software,
 * else slicing-by-8) and self-test it.  Returns 0, or -1 if the self-test
 * failed.  Must be called once before crc32c(); crc32c_impl() names the
 * one in use. */
int crc32c_init(int force_software);
const char *crc32c_impl(void);

/* CRC of buf[0..len), continuing from `crc` (pass 0 to start). */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_update(0, buf, len);
}

/* The portable implementation, always available (used by the self-test). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
