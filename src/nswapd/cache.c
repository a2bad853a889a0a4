/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline uint32_t key_hash(uint64_t client_id, uint64_t slot)
{
	uint64_t h = client_id * 0x9e3779b97f4a7c15ULL ^ slot;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

int cache_init(struct cache *c, uint64_t pages, int lock)
{
	uint64_t tsize = 16;

	memset(c, 0, sizeof(*c));
	if (pages == 0 || pages > CACHE_MAX_PAGES) {
		errno = EINVAL;
		return -1;
	}
	while (tsize < 2 * pages)	/* load factor <= 1/2 */
		tsize <<= 1;
	c->capacity = (uint32_t)pages;
	c->limit = c->capacity;
	c->mask = (uint32_t)(tsize - 1);
	c->arena_bytes = (size_t)pages * NSWAP_PAGE_SIZE;
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
	c->meta = calloc(pages, sizeof(*c->meta));
	c->free_stack = malloc(pages * sizeof(*c->free_stack));
	c->table = malloc(tsize * sizeof(*c->table));
	if (!c->meta || !c->free_stack || !c->table) {
		cache_destroy(c);
		errno = ENOMEM;
		return -1;
	}
	memset(c->table, 0xff, tsize * sizeof(*c->table));
	for (uint32_t i = 0; i < c->capacity; i++)	/* pop order: 0, 1, 2, ... */
		c->free_stack[i] = c->capacity - 1 - i;
	c->free_top = c->capacity;
	if (lock && mlock(c->arena, c->arena_bytes) == 0)
		c->locked = 1;
	return 0;
}

void cache_destroy(struct cache *c)
{
	if (c->arena)
		munmap(c->arena, c->arena_bytes);
	free(c->meta);
	free(c->free_stack);
	free(c->table);
	memset(c, 0, sizeof(*c));
}

/* Table position holding `idx`'s key, or of the empty cell ending its probe. */
static uint32_t probe(const struct cache *c, uint64_t client_id, uint64_t slot)
{
	uint32_t i = key_hash(client_id, slot) & c->mask;

	for (;;) {
		uint32_t e = c->table[i];

		if (e == CACHE_NONE ||
		    (c->meta[e].slot == slot && c->meta[e].client_id == client_id))
			return i;
		i = (i + 1) & c->mask;
	}
}

uint32_t cache_lookup(const struct cache *c, uint64_t client_id, uint64_t slot)
{
	return c->table[probe(c, client_id, slot)];
}

uint32_t cache_insert(struct cache *c, uint64_t client_id, uint64_t slot)
{
	uint32_t pos, idx;

	if (c->free_top == 0 || c->used >= c->limit)
		return CACHE_NONE;
	pos = probe(c, client_id, slot);
	if (c->table[pos] != CACHE_NONE)	/* caller's bug; keep the table sane */
		return c->table[pos];
	idx = c->free_stack[--c->free_top];
	c->meta[idx] = (struct cache_meta){
		.client_id = client_id, .slot = slot, .in_use = 1,
	};
	c->table[pos] = idx;
	c->used++;
	return idx;
}

void cache_remove(struct cache *c, uint32_t idx)
{
	struct cache_meta *m = &c->meta[idx];
	uint32_t i = probe(c, m->client_id, m->slot), j = i;

	if (c->table[i] != idx)
		return;
	/* Backward-shift deletion: pull later entries of the cluster into the
	 * hole unless their home position lies cyclically in (i, j]. */
	for (;;) {
		uint32_t e, k;

		j = (j + 1) & c->mask;
		e = c->table[j];
		if (e == CACHE_NONE)
			break;
		k = key_hash(c->meta[e].client_id, c->meta[e].slot) & c->mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->table[i] = e;
		i = j;
	}
	c->table[i] = CACHE_NONE;
	m->in_use = 0;
	c->free_stack[c->free_top++] = idx;
	c->used--;
}

int cache_set_limit(struct cache *c, uint64_t pages)
{
	if (pages == 0 || pages > c->capacity)
		return -1;
	c->limit = (uint32_t)pages;
	return 0;
}

uint64_t cache_invalidate_range(struct cache *c, uint64_t client_id, uint64_t slot,
				uint64_t count, uint64_t generation)
{
	uint64_t dropped = 0;

	if (count < c->capacity / 4 + 64) {
		for (uint64_t s = slot; s - slot < count; s++) {
			uint32_t idx = cache_lookup(c, client_id, s);

			if (idx != CACHE_NONE && c->meta[idx].generation <= generation) {
				cache_remove(c, idx);
				dropped++;
			}
		}
		return dropped;
	}
	/* Wide range: one pass over the page metadata is cheaper.  Removal
	 * never moves metadata, so the scan stays valid while it deletes. */
	for (uint32_t idx = 0; idx < c->capacity; idx++) {
		const struct cache_meta *m = &c->meta[idx];

		if (m->in_use && m->client_id == client_id && m->slot - slot < count &&
		    m->generation <= generation) {
			cache_remove(c, idx);
			dropped++;
		}
	}
	return dropped;
}
