/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The page cache: one mmap'ed arena of `capacity` 4 KiB pages, a free-page
 * stack, and an open-addressing (linear probing, backward-shift deletion)
 * hash table keyed by (client_id, slot), split into shards.  Everything is
 * allocated by cache_init(); no operation allocates memory afterwards.
 *
 * Concurrency (one event loop per thread, see server.c):
 *  - A key lives in the shard chosen by the high bits of its hash.  The
 *    shard's mutex protects its part of the table and the cache_meta and
 *    page contents of every page that part of the table points to.  Callers
 *    take it with cache_lock() and hold it across lookup, insert, remove and
 *    the copy of the page (a GETPAGE copies the page into the reply with the
 *    lock held: once it is dropped a PUT or INVALIDATE may reuse the page).
 *  - The free-page stack and `used` are global, under free_lock (held for a
 *    few instructions); `used` and `limit` are atomics so that STATUS reads
 *    them without a lock.  Taking a page and counting it happen together
 *    under free_lock, so `used` never passes `limit` however many shards
 *    insert at once.
 *  - Lock order: a shard lock, then free_lock.  Nothing takes two shard
 *    locks at once. */
#ifndef NSWAPD_CACHE_H
#define NSWAPD_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nswap_proto.h"
#include "siphash.h"

#define CACHE_NONE	UINT32_MAX
/* 8 TiB: keeps page indices and the table mask (2 x capacity) in 32 bits. */
#define CACHE_MAX_PAGES	(1ULL << 31)
/* Shards: at most max_shards (cache_init(): 4 per event loop, so 1 with one
 * loop, which then has exactly the unsharded table of old), at most 64, and
 * at least CACHE_SHARD_MIN_PAGES pages each, so that a small cache (the
 * tests' 16 pages) stays one shard too. */
#define CACHE_MAX_SHARDS	64
#define CACHE_SHARD_MIN_PAGES	256

struct cache_meta {
	uint64_t client_id;
	uint64_t slot;
	uint64_t generation;
	uint32_t crc;		/* crc32c of the stored page (checked on PUTPAGE) */
	uint8_t hop_count;
	uint8_t in_use;
	uint8_t moving;		/* punted (punt.c): waits for the owner's INVALIDATE */
};

struct cache_shard {
	pthread_mutex_t lock;
	uint32_t *table;	/* page index or CACHE_NONE */
	uint32_t mask;		/* table size - 1 */
	uint32_t count;		/* keys in this shard */
	uint32_t max;		/* no new key in this shard once count reaches it */
	uint64_t removals;	/* keys removed (a range scan resuming checks it) */
} __attribute__((aligned(64)));	/* one cache line each: no false sharing */

struct cache {
	/* Read-mostly after cache_init(): shared by every loop's cache line. */
	unsigned char *arena;
	size_t arena_bytes;
	uint32_t capacity;	/* cache_size in pages: the most `limit` may be */
	/* pages in the arena: capacity + overflow (room a full cache still
	 * takes from owners that follow moves, while a gossip member can take
	 * the pages over its limit; see cache_insert()) */
	uint32_t arena_pages;
	struct cache_meta *meta;	/* arena_pages entries, indexed by page */
	uint32_t *free_stack;	/* arena_pages entries, under free_lock */
	struct cache_shard *shards;
	uint32_t nshards;	/* power of two */
	unsigned int shard_shift;	/* 64 - log2(nshards); hash >> shift = shard */
	uint32_t *tables;	/* one allocation for every shard's table */
	int locked;		/* arena is mlock'ed */
	int release_freed;	/* MADV_FREE each page freed (elastic cache) */
	int locks_ready;	/* the mutexes are initialised (cache_destroy) */
	struct siphash_key hash_key;	/* key_hash(): drawn by cache_init() */
	/* Written by every insert and remove: a cache line of its own, so that
	 * the writes do not evict the read-mostly fields above from the other
	 * cores' caches. */
	pthread_mutex_t free_lock __attribute__((aligned(64)));
	uint32_t free_top;
	_Atomic uint32_t used;	/* written under free_lock */
	_Atomic uint32_t limit;	/* runtime limit, 1..capacity: no new key while used >= limit */
	_Atomic uint32_t moving;	/* pages marked moving (under their shard locks) */
	/* pages over `limit` an insert with may_overflow may take now, at most
	 * arena_pages - capacity; the main thread sets it (0: none) */
	_Atomic uint32_t overflow;
};

/* A page's `moving` mark set or cleared, with the count (shard lock held). */
static inline void cache_set_moving(struct cache *c, struct cache_meta *m, int moving)
{
	if (m->moving == !!moving)
		return;
	m->moving = !!moving;
	if (moving)
		atomic_fetch_add_explicit(&c->moving, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&c->moving, 1, memory_order_relaxed);
}

/* A cache of `pages` (cache_size) plus `overflow` pages of arena.  Returns 0,
 * or -1 with errno set.  lock != 0: mlock the arena (failure is reported
 * through c->locked == 0, not as an error).  max_shards: the most shards to
 * split the table into (a power of two is used, 1 at least). */
int cache_init(struct cache *c, uint64_t pages, uint64_t overflow, int lock,
	       unsigned int max_shards);
void cache_destroy(struct cache *c);

/* Lock and return the shard that holds (client_id, slot). */
struct cache_shard *cache_lock(struct cache *c, uint64_t client_id, uint64_t slot);
static inline void cache_unlock(struct cache_shard *sh)
{
	pthread_mutex_unlock(&sh->lock);
}

/* The following three need sh = cache_lock(c, client_id, slot) held. */
uint32_t cache_lookup(const struct cache *c, const struct cache_shard *sh,
		      uint64_t client_id, uint64_t slot);
/* Take a free page for a key that is not present.  CACHE_NONE when full,
 * i.e. when `used` has reached `limit` (or is above it after the limit was
 * lowered: stored pages are never dropped to honour a limit) -- or, with
 * may_overflow, `limit` + `overflow` -- or, rarely, when the key's shard is
 * full (see CACHE_SHARD_MIN_PAGES in cache.c).  *over: set to 1 when the page
 * taken is over the limit (decided under the same lock as the count). */
uint32_t cache_insert(struct cache *c, struct cache_shard *sh, uint64_t client_id,
		      uint64_t slot, int may_overflow, int *over);
void cache_remove(struct cache *c, struct cache_shard *sh, uint32_t idx);
/* Set the runtime limit.  Returns 0, or -1 when pages is 0 or > capacity. */
int cache_set_limit(struct cache *c, uint64_t pages);
/* INVALIDATE's rule: a stored copy is dropped when (generation, hop_count)
 * is at most the request's, in that order; CACHE_ANY_HOP (no NSWAP_F_HOP)
 * compares generations alone; CACHE_SWEEP (NSWAP_F_SWEEP, a client's
 * dead-page sweep) drops only copies a PUTPAGE stored (hop_count 0) of at
 * most that generation: a moved copy may be one the client is about to
 * hear of (UPDATE). */
#define CACHE_ANY_HOP	256U
#define CACHE_SWEEP	512U
static inline int cache_older(const struct cache_meta *m, uint64_t generation,
			      unsigned int hop)
{
	if (hop == CACHE_SWEEP)
		return m->hop_count == 0 && m->generation <= generation;
	return m->generation < generation ||
	       (m->generation == generation && m->hop_count <= hop);
}
/* A range INVALIDATE in steps, so that one request costs an event loop at
 * most `budget` lookups or table cells per turn (request.c): the pages of
 * client_id in [slot, slot + count) that cache_older() says are older are
 * dropped (`dropped` counts them), the shard locks taken one at a time; a
 * key stored meanwhile is dropped or kept, per key, as if it came before or
 * after the request. */
struct cache_range {
	uint64_t client_id, slot, count, generation;
	unsigned int hop;
	int wide;		/* scanning the tables, not looking slots up */
	uint64_t next;		/* narrow: slots done */
	uint32_t shard;		/* wide: where the scan is */
	uint64_t cell;
	uint64_t removals;	/* the shard's `removals` when the scan paused */
	uint64_t run;		/* where the run of occupied cells before `cell` starts */
	uint64_t dropped;
};

void cache_range_begin(const struct cache *c, struct cache_range *r, uint64_t client_id,
		       uint64_t slot, uint64_t count, uint64_t generation, unsigned int hop);
/* At most `budget` lookups or new cells (a wide scan resuming in a shard
 * that others changed examines again the run of cells it paused in, not
 * charged); 1 when the range is done. */
int cache_range_step(struct cache *c, struct cache_range *r, uint64_t budget);

static inline uint32_t cache_used(const struct cache *c)
{
	return atomic_load_explicit(&c->used, memory_order_relaxed);
}

static inline uint32_t cache_limit(const struct cache *c)
{
	return atomic_load_explicit(&c->limit, memory_order_relaxed);
}

/* Pages over the limit that are not on their way yet (moved to another
 * server, punt.c, or sent home, home.c).  Read before each page by whoever
 * marks them, so that none moves one too many. */
static inline uint32_t cache_over_limit(struct cache *c)
{
	/* `moving` first: an owner's INVALIDATE of a moving page lowers both
	 * counts; read in this order, one landing between the loads makes the
	 * result smaller, never larger (read the other way round, it moved the
	 * page the limit keeps: seen once in a full suite run) */
	uint32_t moving = atomic_load_explicit(&c->moving, memory_order_acquire);
	uint32_t used = cache_used(c), limit = cache_limit(c);

	return used > limit && used - limit > moving ? used - limit - moving : 0;
}

static inline unsigned char *cache_page(const struct cache *c, uint32_t idx)
{
	return c->arena + (size_t)idx * NSWAP_PAGE_SIZE;
}

#endif
