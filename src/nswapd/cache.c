/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The low 32 bits pick the position in a shard's table, the high bits the
 * shard (independent bits of the same hash).  Keyed with this process's own
 * random key: a peer that chose slots whose keys collide (an unkeyed mix
 * can be inverted) would make every probe of theirs walk one long run of the
 * table, and stall its shard for every client. */
static inline uint64_t key_hash(const struct cache *c, uint64_t client_id, uint64_t slot)
{
	return siphash_2u64(&c->hash_key, client_id, slot);
}

static inline struct cache_shard *shard_of(const struct cache *c, uint64_t h)
{
	return &c->shards[c->nshards == 1 ? 0 : h >> c->shard_shift];
}

int cache_init(struct cache *c, uint64_t cache_pages, uint64_t overflow, int lock,
	       unsigned int max_shards)
{
	uint64_t tsize = 16, per, pages = cache_pages + overflow;
	unsigned int bits = 0;

	memset(c, 0, sizeof(*c));
	if (pages > CACHE_MAX_PAGES) {
		errno = EINVAL;
		return -1;
	}
	if (siphash_key_random(&c->hash_key) != 0)
		return -1;
	c->nshards = 1;
	while (c->nshards < CACHE_MAX_SHARDS && c->nshards * 2 <= max_shards &&
	       pages / (2ULL * c->nshards) >= CACHE_SHARD_MIN_PAGES) {
		c->nshards *= 2;
		bits++;
	}
	c->shard_shift = 64 - bits;
	/* One shard: the table of the unsharded cache (load factor <= 1/2), and
	 * the shard never fills before the arena does.  Several: each table has
	 * room for 4x its share (load <= 1/4 on average); keys are spread by a
	 * hash, so a shard can get more than its share, and one that reaches
	 * 3/4 load refuses new keys (ENOSPC) rather than probe on.  With at
	 * least CACHE_SHARD_MIN_PAGES per shard that needs a shard to hold
	 * three times its share, which a fair hash makes vanishingly rare; the
	 * hash is keyed (key_hash), so a peer cannot aim its keys at one shard
	 * (it can still fill the whole cache: protocol v1 has no
	 * authentication, see docs/protocol.md).
	 * Tables cost 16 bytes per page instead of 8. */
	per = (pages + c->nshards - 1) / c->nshards;
	while (tsize < (c->nshards == 1 ? 2 : 4) * per)
		tsize <<= 1;
	c->capacity = (uint32_t)cache_pages;
	c->arena_pages = (uint32_t)pages;
	atomic_init(&c->limit, c->capacity);
	atomic_init(&c->overflow, 0);
	atomic_init(&c->used, 0);
	c->arena_bytes = (size_t)pages * NSWAP_PAGE_SIZE;
	/* No pages (cache_size 0, a node that lends nothing): no arena; every
	 * insert is refused by the limit, every lookup misses. */
	if (pages) {
		c->arena = mmap(NULL, c->arena_bytes, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (c->arena == MAP_FAILED) {
			c->arena = NULL;
			return -1;
		}
#ifdef MADV_DONTDUMP
		/* Other nodes' memory has no business in our core dumps. */
		(void)madvise(c->arena, c->arena_bytes, MADV_DONTDUMP);
#endif
	}
	c->meta = calloc(pages ? pages : 1, sizeof(*c->meta));
	c->free_stack = malloc((pages ? pages : 1) * sizeof(*c->free_stack));
	c->tables = malloc(tsize * c->nshards * sizeof(*c->tables));
	c->shards = aligned_alloc(64, c->nshards * sizeof(*c->shards));
	if (!c->meta || !c->free_stack || !c->tables || !c->shards) {
		cache_destroy(c);
		errno = ENOMEM;
		return -1;
	}
	memset(c->tables, 0xff, tsize * c->nshards * sizeof(*c->tables));
	pthread_mutex_init(&c->free_lock, NULL);
	c->locks_ready = 1;
	for (uint32_t i = 0; i < c->nshards; i++) {
		struct cache_shard *sh = &c->shards[i];

		memset(sh, 0, sizeof(*sh));
		pthread_mutex_init(&sh->lock, NULL);
		sh->table = c->tables + (size_t)i * tsize;
		sh->mask = (uint32_t)(tsize - 1);
		sh->max = c->nshards == 1 ? (uint32_t)(tsize / 2) : (uint32_t)(tsize - tsize / 4);
	}
	for (uint32_t i = 0; i < c->arena_pages; i++)	/* pop order: 0, 1, 2, ... */
		c->free_stack[i] = c->arena_pages - 1 - i;
	c->free_top = c->arena_pages;
	if (lock && pages && mlock(c->arena, c->arena_bytes) == 0)
		c->locked = 1;
	return 0;
}

void cache_destroy(struct cache *c)
{
	if (c->arena)
		munmap(c->arena, c->arena_bytes);
	if (c->locks_ready) {
		for (uint32_t i = 0; i < c->nshards; i++)
			pthread_mutex_destroy(&c->shards[i].lock);
		pthread_mutex_destroy(&c->free_lock);
	}
	free(c->meta);
	free(c->free_stack);
	free(c->tables);
	free(c->shards);
	memset(c, 0, sizeof(*c));
}

struct cache_shard *cache_lock(struct cache *c, uint64_t client_id, uint64_t slot)
{
	struct cache_shard *sh = shard_of(c, key_hash(c, client_id, slot));

	pthread_mutex_lock(&sh->lock);
	return sh;
}

/* Table position holding the key, or of the empty cell ending its probe. */
static uint32_t probe(const struct cache *c, const struct cache_shard *sh,
		      uint64_t client_id, uint64_t slot)
{
	uint32_t i = (uint32_t)key_hash(c, client_id, slot) & sh->mask;

	for (;;) {
		uint32_t e = sh->table[i];

		if (e == CACHE_NONE ||
		    (c->meta[e].slot == slot && c->meta[e].client_id == client_id))
			return i;
		i = (i + 1) & sh->mask;
	}
}

uint32_t cache_lookup(const struct cache *c, const struct cache_shard *sh,
		      uint64_t client_id, uint64_t slot)
{
	return sh->table[probe(c, sh, client_id, slot)];
}

uint32_t cache_insert(struct cache *c, struct cache_shard *sh, uint64_t client_id,
		      uint64_t slot, int may_overflow, int *over)
{
	uint32_t pos, idx;
	uint64_t bound;

	if (sh->count >= sh->max)
		return CACHE_NONE;
	pos = probe(c, sh, client_id, slot);
	if (sh->table[pos] != CACHE_NONE)	/* caller's bug; keep the table sane */
		return sh->table[pos];
	/* The check against the limit and the count that it guards are one
	 * step under free_lock: two loops cannot both take the last page. */
	pthread_mutex_lock(&c->free_lock);
	bound = atomic_load_explicit(&c->limit, memory_order_relaxed);
	if (may_overflow)
		bound += atomic_load_explicit(&c->overflow, memory_order_relaxed);
	if (c->free_top == 0 || atomic_load_explicit(&c->used, memory_order_relaxed) >= bound) {
		pthread_mutex_unlock(&c->free_lock);
		return CACHE_NONE;
	}
	*over = atomic_load_explicit(&c->used, memory_order_relaxed) >=
		atomic_load_explicit(&c->limit, memory_order_relaxed);
	idx = c->free_stack[--c->free_top];
	atomic_store_explicit(&c->used, atomic_load_explicit(&c->used, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&c->free_lock);
	/* The page was free: no shard points to it, so its metadata is ours
	 * (under sh->lock) from here on. */
	c->meta[idx] = (struct cache_meta){
		.client_id = client_id, .slot = slot, .in_use = 1,
	};
	sh->table[pos] = idx;
	sh->count++;
	return idx;
}

/* Remove the entry at table position i of sh. */
static void remove_at(struct cache *c, struct cache_shard *sh, uint32_t i)
{
	uint8_t was_moving;
	uint32_t idx = sh->table[i], j = i;

	/* Backward-shift deletion: pull later entries of the cluster into the
	 * hole unless their home position lies cyclically in (i, j]. */
	for (;;) {
		uint32_t e, k;

		j = (j + 1) & sh->mask;
		e = sh->table[j];
		if (e == CACHE_NONE)
			break;
		k = (uint32_t)key_hash(c, c->meta[e].client_id, c->meta[e].slot) & sh->mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		sh->table[i] = e;
		i = j;
	}
	sh->table[i] = CACHE_NONE;
	sh->count--;
	sh->removals++;
	was_moving = c->meta[idx].moving;
	c->meta[idx].moving = 0;
	c->meta[idx].in_use = 0;
	/* Give the memory back (elastic cache): MADV_FREE before the page is
	 * free for reuse, and MADV_FREE rather than DONTNEED, so that a write
	 * after it keeps its data whatever the timing. */
	if (c->release_freed)
		madvise(cache_page(c, idx), NSWAP_PAGE_SIZE, MADV_FREE);
	pthread_mutex_lock(&c->free_lock);
	c->free_stack[c->free_top++] = idx;
	atomic_store_explicit(&c->used, atomic_load_explicit(&c->used, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&c->free_lock);
	/* after `used`, with release: whoever sees the lower moving count sees
	 * the lower use too (punt.c's over_limit reads them in that order) */
	if (was_moving)
		atomic_fetch_sub_explicit(&c->moving, 1, memory_order_release);
}

void cache_remove(struct cache *c, struct cache_shard *sh, uint32_t idx)
{
	const struct cache_meta *m = &c->meta[idx];
	uint32_t i = probe(c, sh, m->client_id, m->slot);

	if (sh->table[i] == idx)
		remove_at(c, sh, i);
}

int cache_set_limit(struct cache *c, uint64_t pages)
{
	if (pages > c->capacity)
		return -1;
	/* Read by cache_insert under free_lock; a PUT racing with the change
	 * sees the old or the new limit, either is fine. */
	atomic_store_explicit(&c->limit, (uint32_t)pages, memory_order_relaxed);
	return 0;
}

void cache_range_begin(const struct cache *c, struct cache_range *r, uint64_t client_id,
		       uint64_t slot, uint64_t count, uint64_t generation, unsigned int hop)
{
	*r = (struct cache_range){
		.client_id = client_id, .slot = slot, .count = count,
		.generation = generation, .hop = hop,
		.wide = count >= c->arena_pages / 4 + 64,
	};
}

/* Narrow range: look each slot up (no state kept between steps but the
 * next slot; a key PUT meanwhile lands before or after, per key). */
static int range_lookups(struct cache *c, struct cache_range *r, uint64_t budget)
{
	for (; r->next < r->count && budget; r->next++, budget--) {
		uint64_t s = r->slot + r->next;
		struct cache_shard *sh = cache_lock(c, r->client_id, s);
		uint32_t idx = cache_lookup(c, sh, r->client_id, s);

		if (idx != CACHE_NONE && cache_older(&c->meta[idx], r->generation, r->hop)) {
			cache_remove(c, sh, idx);
			r->dropped++;
		}
		cache_unlock(sh);
	}
	return r->next == r->count;
}

/* Where the run of occupied cells that holds cell - 1 starts (0 at the
 * earliest: the scan has not been past the table's end). */
static uint64_t run_start(const struct cache_shard *sh, uint64_t cell)
{
	while (cell && sh->table[cell - 1] != CACHE_NONE)
		cell--;
	return cell;
}

/* Wide range: one pass over every shard's table, a shard under its lock
 * (so PUTs to other shards go on meanwhile).  After a removal at position i
 * the backward shift may have moved a later entry into i, so i is examined
 * again; entries only ever move to earlier positions of their cluster, never
 * before their home cell, so none is skipped (one pulled across the table's
 * end was seen at the start and is seen again).  Between steps the lock is
 * let go, and if anyone else removed a key from the shard meanwhile, an
 * entry not yet seen may have moved before the position reached -- but not
 * before its home, and every unseen entry's home was in the run of occupied
 * cells that held the position (linear probing: the cells from an entry's
 * home to the entry are occupied), so the scan goes on from that run's start
 * (r->run, found when it paused; re-examining that part is not charged to the
 * budget: under a flood of removals a step still makes `budget` of new cells'
 * progress, and one step's work stays bounded).  It restarted the whole shard
 * before, and after 4 restarts scanned the rest in one go: under a flood of
 * ranges from several connections that was a whole shard at a time. */
static int range_scan(struct cache *c, struct cache_range *r, uint64_t budget)
{
	while (r->shard < c->nshards) {
		struct cache_shard *sh = &c->shards[r->shard];
		uint64_t left = budget;

		pthread_mutex_lock(&sh->lock);
		if (r->cell && sh->removals != r->removals) {
			left += r->cell - r->run;
			r->cell = r->run;
		}
		/* 64-bit index: with one shard of a 4-8 TiB cache the mask is
		 * 0xffffffff, and a 32-bit i would wrap and never end. */
		while (r->cell <= (uint64_t)sh->mask && sh->count && left) {
			uint32_t e = sh->table[r->cell];
			const struct cache_meta *m = e != CACHE_NONE ? &c->meta[e] : NULL;

			left--;
			if (m && m->client_id == r->client_id && m->slot - r->slot < r->count &&
			    cache_older(m, r->generation, r->hop)) {
				remove_at(c, sh, (uint32_t)r->cell);
				r->dropped++;
				continue;
			}
			r->cell++;
		}
		if (r->cell <= (uint64_t)sh->mask && sh->count) {
			r->removals = sh->removals;	/* ours included */
			r->run = run_start(sh, r->cell);
			pthread_mutex_unlock(&sh->lock);
			return 0;
		}
		pthread_mutex_unlock(&sh->lock);
		r->shard++;
		r->cell = 0;
		budget = left;
		if (!budget)
			return r->shard == c->nshards;
	}
	return 1;
}

int cache_range_step(struct cache *c, struct cache_range *r, uint64_t budget)
{
	return r->wide ? range_scan(c, r, budget) : range_lookups(c, r, budget);
}
