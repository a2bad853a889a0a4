/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Number helpers shared by netbench and blkbench. */
#ifndef NETBENCH_NUMBERS_H
#define NETBENCH_NUMBERS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Parse "123", "4K", "16M", "1G" into *out; -1 when malformed or outside min..max. */
static inline int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	uint64_t mult = 1;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': mult = 1ULL << 10; end++; break;
	case 'M': case 'm': mult = 1ULL << 20; end++; break;
	case 'G': case 'g': mult = 1ULL << 30; end++; break;
	default: break;
	}
	if (*end || *out > max / mult)
		return -1;
	*out *= mult;
	return *out < min ? -1 : 0;
}

/* qsort comparator for uint64_t. */
static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#endif
