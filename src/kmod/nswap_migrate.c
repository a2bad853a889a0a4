// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap page migration, the client's side: UPDATE (docs/protocol.md 11.1).
 *
 * A server C that received a page of ours from another server B (PUNTPAGE,
 * when B's cache shrank) tells us with an UPDATE frame on our own
 * connection to C: "(slot, generation) now lives here, hop_count h".  The
 * connection's receive thread (process context) calls
 * nswap_migrate_update(), which compares the frame with the slot map word:
 *
 *  - the word holds that generation at another server with a smaller hop
 *    count: the page moved.  The word is switched to C with one
 *    compare-exchange, and B is told to drop its copy (INVALIDATE of that
 *    generation and B's hop count, NSWAP_F_HOP: a copy punted back to B
 *    since has a larger one and stays).  A read already on its way to B
 *    gets ENOENT, sees that the word changed and is reissued to C;
 *  - the word holds that generation at C already: a duplicate, nothing
 *    (with a larger hop count: the page went away and came back, and only
 *    the recorded hop count is raised);
 *  - the word names another copy (the slot was rewritten or freed since,
 *    or a later move is already recorded, i.e. a hop count at least as
 *    large): C's copy is stale, and C is told to drop it;
 *  - anything else (a slot past the device, generation 0, hop count 0) is
 *    a malformed frame: counted and logged, nothing changes.
 *
 * Generations come from one per-device counter, and INVALIDATE drops only
 * stored copies up to the (generation, hop count) named, so none of these
 * can drop a newer write or a later move of the slot, at B or at C,
 * whatever order frames arrive in.
 * UPDATE is taken only on connections that negotiated
 * NSWAP_FEAT_MIGRATION; a server that did not is ignored (counted).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "nswap.h"
#include "nswap_slotmap.h"

void nswap_migrate_update(struct nswap_conn *conn, const struct nswap_hdr *hdr)
{
	struct nswap_server *to = conn->srv;
	struct nswap_dev *dev = to->dev;
	u64 slot = le64_to_cpu(hdr->slot);
	u64 gen = le64_to_cpu(hdr->generation);
	u8 hop = hdr->hop_count;
	u64 cur, moved;

	if (!(conn->features & NSWAP_FEAT_MIGRATION) || slot >= dev->map.nslots ||
	    !gen || gen > NSWAP_SE_GEN_MASK || !hop || hop > NSWAP_MAX_HOPS ||
	    le64_to_cpu(hdr->client_id) != dev->client_id || hdr->length) {
		nswap_stat_inc(dev, updates_refused);
		pr_warn_ratelimited("nswap%d: UPDATE slot %llu generation %llu hop %u from %s ignored: %s\n",
				    dev->index, slot, gen, hop, to->name,
				    !(conn->features & NSWAP_FEAT_MIGRATION) ?
				    "migration was not negotiated" :
				    "not ours, a payload, or slot, generation or hop count out of range");
		return;
	}
	do {
		cur = nswap_slotmap_get(&dev->map, slot);
		if (!nswap_se_live(cur) || nswap_se_local(cur) ||
		    nswap_se_gen(cur) != gen ||
		    (nswap_se_srv(cur) != to->index && hop <= nswap_se_hop(cur))) {
			/* a copy the slot map no longer names: drop it at C
			 * (that copy only: not one that moved there since) */
			nswap_stat_inc(dev, updates_refused);
			if (__ratelimit(&to->refused_rs))
				nswap_inval_post_hop(dev, to->index, slot, gen, hop);
			else
				nswap_stat_inc(dev, invalidates_dropped);
			return;
		}
		if (nswap_se_srv(cur) == to->index && hop <= nswap_se_hop(cur))
			return;		/* already recorded: a duplicate */
		/* (the sender already, with a larger hop count: the page went
		 * away and came back; record the hop so that the UPDATE of the
		 * move in between, if it comes late, is seen as older) */
		moved = nswap_se_make(to->index, hop, NSWAP_SE_IN_USE, gen);
	} while (!nswap_slotmap_cmpxchg(&dev->map, slot, cur, moved));

	if (nswap_se_srv(cur) == to->index)
		return;
	nswap_holder_add(dev, to->index, 1);
	nswap_holder_add(dev, nswap_se_srv(cur), -1);
	nswap_stat_inc(dev, migrations);
	/* B's old copy only: the page may come back to B, same generation,
	 * a larger hop count, before this INVALIDATE arrives */
	nswap_inval_post_hop(dev, nswap_se_srv(cur), slot, gen,
			     nswap_se_hop(cur));
}
