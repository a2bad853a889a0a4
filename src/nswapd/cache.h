/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The page cache: one mmap'ed arena of `capacity` 4 KiB pages, a free-page
 * stack, and an open-addressing (linear probing, backward-shift deletion)
 * hash table keyed by (client_id, slot).  Everything is allocated by
 * cache_init(); no operation allocates memory afterwards. */
#ifndef NSWAPD_CACHE_H
#define NSWAPD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nswap_proto.h"

#define CACHE_NONE	UINT32_MAX
/* 8 TiB: keeps page indices and the table mask (2 x capacity) in 32 bits. */
#define CACHE_MAX_PAGES	(1ULL << 31)

struct cache_meta {
	uint64_t client_id;
	uint64_t slot;
	uint64_t generation;
	uint32_t crc;		/* crc32c of the stored page (checked on PUTPAGE) */
	uint8_t hop_count;
	uint8_t in_use;
};

struct cache {
	unsigned char *arena;
	size_t arena_bytes;
	uint32_t capacity;	/* pages in the arena: the most `limit` may be */
	uint32_t limit;		/* runtime limit, 1..capacity: no new key while used >= limit */
	uint32_t used;
	struct cache_meta *meta;	/* capacity entries, indexed by page */
	uint32_t *free_stack;	/* capacity entries */
	uint32_t free_top;
	uint32_t *table;	/* page index or CACHE_NONE */
	uint32_t mask;		/* table size - 1 */
	int locked;		/* arena is mlock'ed */
};

/* Returns 0, or -1 with errno set.  lock != 0: mlock the arena (failure is
 * reported through c->locked == 0, not as an error). */
int cache_init(struct cache *c, uint64_t pages, int lock);
void cache_destroy(struct cache *c);

uint32_t cache_lookup(const struct cache *c, uint64_t client_id, uint64_t slot);
/* Take a free page for a key that is not present.  CACHE_NONE when full,
 * i.e. when `used` has reached `limit` (or is above it after the limit was
 * lowered: stored pages are never dropped to honour a limit). */
uint32_t cache_insert(struct cache *c, uint64_t client_id, uint64_t slot);
void cache_remove(struct cache *c, uint32_t idx);
/* Set the runtime limit.  Returns 0, or -1 when pages is 0 or > capacity. */
int cache_set_limit(struct cache *c, uint64_t pages);
/* Drop pages of client_id in [slot, slot + count) whose generation is
 * <= generation.  Returns the number dropped. */
uint64_t cache_invalidate_range(struct cache *c, uint64_t client_id, uint64_t slot,
				uint64_t count, uint64_t generation);

static inline unsigned char *cache_page(const struct cache *c, uint32_t idx)
{
	return c->arena + (size_t)idx * NSWAP_PAGE_SIZE;
}

#endif
