/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * Page placement: which server takes the next page (docs/placement.md).
 * Integer-only and allocation-free so that nswap.ko, nswapd and the cluster
 * simulator (src/sim) run the same code.
 *
 * Policy "two choices, weighted by free space": draw two candidates, each
 * with probability proportional to its free pages, and take the one that
 * is less full (used/capacity; ties to the first).  A candidate with no
 * free pages is never drawn, so a server known to be full gets nothing.
 * Drawing by free space sends most pages to the emptiest servers; comparing
 * two draws keeps clients that share stale numbers from all piling onto the
 * same one (the "power of two choices": max load - mean load is
 * O(log log n) instead of O(log n / log log n)).
 */
#ifndef NSWAP_PLACE_H
#define NSWAP_PLACE_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint64_t __nswap_u64;
typedef uint32_t __nswap_u32;
#endif

#ifdef __KERNEL__
typedef u64 __nswap_u64;
typedef u32 __nswap_u32;
#endif

struct nswap_place_cand {
	__nswap_u64 capacity;	/* pages the server lends */
	__nswap_u64 free;	/* pages believed free (<= capacity) */
};

/* Index of the candidate whose cumulative free space covers r (r < total). */
static inline unsigned int nswap_place_draw(const struct nswap_place_cand *c,
					    unsigned int n, __nswap_u64 r)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (r < c[i].free)
			return i;
		r -= c[i].free;
	}
	return n - 1;	/* not reached when r < total */
}

/* a less full than b: a.used/a.cap < b.used/b.cap, without division. */
static inline int nswap_place_less_full(const struct nswap_place_cand *a,
					const struct nswap_place_cand *b)
{
	/* exact for caches below 2^32 pages (16 TiB) each; gossip refuses
	 * capacities above 2^40, where the products may wrap (a wrong choice
	 * between two servers, never a full one) */
	__nswap_u64 ua = a->capacity - a->free, ub = b->capacity - b->free;

	return ua * b->capacity < ub * a->capacity;
}

/* total + free, saturating: absurd announcements cannot wrap to 0. */
static inline __nswap_u64 nswap_place_add(__nswap_u64 total, __nswap_u64 free)
{
	return free > ~0ULL - total ? ~0ULL : total + free;
}

/*
 * The point in [0, total) that a 32-bit random number selects, total > 0:
 * (rand * total) >> 32 when total < 2^32; above, drawn at a granularity of
 * 2^shift pages (no 64-bit division, which a 32-bit kernel cannot link).
 */
static inline __nswap_u64 nswap_place_point(__nswap_u64 total, __nswap_u32 rand)
{
	unsigned int shift = 0;

	while ((total >> shift) > 0xffffffffULL)
		shift++;
	return (((__nswap_u64)rand * (__nswap_u32)(total >> shift)) >> 32) << shift;
}

/*
 * Choose among c[0..n) using two random 32-bit numbers.  Returns the index,
 * or -1 when no candidate has a free page (the caller falls back: another
 * server list, local disk).  nswap.ko walks its server table with the same
 * three helpers instead of building an array (nswap_conn.c).
 */
static inline int nswap_place_pick(const struct nswap_place_cand *c, unsigned int n,
				   __nswap_u32 rand1, __nswap_u32 rand2)
{
	__nswap_u64 total = 0;
	unsigned int i, a, b;

	for (i = 0; i < n; i++)
		total = nswap_place_add(total, c[i].free);
	if (!total)
		return -1;
	a = nswap_place_draw(c, n, nswap_place_point(total, rand1));
	b = nswap_place_draw(c, n, nswap_place_point(total, rand2));
	return (int)(nswap_place_less_full(&c[b], &c[a]) ? b : a);
}

#endif /* NSWAP_PLACE_H */
