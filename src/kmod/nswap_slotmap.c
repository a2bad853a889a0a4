// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap shadow slot map (layout in nswap_slotmap.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>

#include "nswap_slotmap.h"

int nswap_slotmap_init(struct nswap_slotmap *map, u64 nslots)
{
	BUILD_BUG_ON(sizeof(atomic64_t) != 8);

	if (!nslots || nslots > ULONG_MAX / sizeof(atomic64_t))
		return -EINVAL;
	/* kvcalloc: vmalloc for anything but tiny maps; zero = unused */
	map->e = kvcalloc(nslots, sizeof(atomic64_t), GFP_KERNEL);
	if (!map->e)
		return -ENOMEM;
	map->crc = kvcalloc(nslots, sizeof(u32), GFP_KERNEL);
	if (!map->crc) {
		kvfree(map->e);
		map->e = NULL;
		return -ENOMEM;
	}
	map->nslots = nslots;
	return 0;
}

void nswap_slotmap_free(struct nswap_slotmap *map)
{
	kvfree(map->crc);
	map->crc = NULL;
	kvfree(map->e);
	map->e = NULL;
	map->nslots = 0;
}

/**
 * nswap_slotmap_commit - record an acknowledged PUTPAGE
 * @map: slot map
 * @slot: slot number
 * @new: the new word (in use, server, generation)
 * @old: the word that was replaced, or the newer word that won
 *
 * Generations are handed out from one per-device counter, so a larger
 * generation is a later write.  If the slot already records a later write
 * (two writes of one block completed out of order) the map is left alone.
 *
 * Return: true if @new was stored, false if a newer write is recorded.
 */
bool nswap_slotmap_commit(struct nswap_slotmap *map, u64 slot, u64 new,
			  u64 *old)
{
	atomic64_t *e = &map->e[slot];
	s64 cur = atomic64_read(e);

	for (;;) {
		s64 prev;

		if (nswap_se_in_use(cur) &&
		    nswap_se_gen(cur) > nswap_se_gen(new)) {
			*old = cur;
			return false;
		}
		prev = atomic64_cmpxchg(e, cur, new);
		if (prev == cur)
			break;
		cur = prev;
	}
	*old = cur;
	return true;
}
