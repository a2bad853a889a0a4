// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap invalidate batching.
 *
 * Pages stop being needed when the kernel frees a swap slot (the
 * swap_slot_free_notify hook, atomic context), when a block is discarded,
 * and when a newer copy of a slot landed on a different server.  Each of
 * these clears the slot map word at once and queues "drop [slot, slot+count)
 * at server S if stored generation <= gen" in a fixed per-device ring
 * (spinlock, no allocation).  A work item drains the ring, sorts by server
 * and slot, merges neighbours into ranges and sends INVALIDATE frames with
 * NSWAP_F_RANGE | NSWAP_F_NOREPLY.
 *
 * When the ring is full (a burst of frees: process exit, swapoff), the
 * free hook leaves the word in the slot map marked NSWAP_SE_FREED and asks
 * the work item to rescan the map; a write of such a slot claims the word
 * first (nswap_inval_claim_freed).  Entries are dropped (counted in
 * invalidates_dropped) only when the server cannot be reached or when the
 * ring is full for a displaced copy; the server then keeps a stale copy
 * until the slot is written to it again or the device is powered off.
 *
 * Generation rules (why a NOREPLY invalidate can never drop live data):
 * generations come from one per-device counter.  For a freed slot the
 * queued gen is the counter value read before the slot word was cleared;
 * any later write of that slot gets a larger generation, so the server
 * keeps it even if the INVALIDATE arrives after it.  Two entries may be
 * merged into one range only if the range's generation (the smaller of
 * the two) still covers the data generations of both ("dgen").  A rescan
 * run only takes words whose generation is at most the counter value at
 * the start of the scan, and claims each word (FREED -> 0) before use;
 * a write claims a FREED word before allocating its generation, so any
 * write racing with the scan has a generation above the run's.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "nswap.h"
#include "nswap_compat.h"

#define NSWAP_INVAL_DELAY_MS	10	/* batching window */

static void nswap_inval_workfn(struct work_struct *work);

int nswap_inval_init(struct nswap_dev *dev)
{
	dev->inval_ring = kvcalloc(NSWAP_INVAL_RING, sizeof(*dev->inval_ring),
				   GFP_KERNEL);
	dev->inval_work_buf = kvcalloc(NSWAP_INVAL_RING,
				       sizeof(*dev->inval_work_buf),
				       GFP_KERNEL);
	if (!dev->inval_ring || !dev->inval_work_buf) {
		nswap_inval_free(dev);
		return -ENOMEM;
	}
	dev->inval_head = 0;
	dev->inval_count = 0;
	dev->inval_stop = false;
	INIT_DELAYED_WORK(&dev->inval_work, nswap_inval_workfn);
	return 0;
}

/* Stop queueing and wait for a running batch (before servers stop). */
void nswap_inval_stop(struct nswap_dev *dev)
{
	unsigned long flags;

	spin_lock_irqsave(&dev->inval_lock, flags);
	dev->inval_stop = true;
	spin_unlock_irqrestore(&dev->inval_lock, flags);
	cancel_delayed_work_sync(&dev->inval_work);
}

void nswap_inval_free(struct nswap_dev *dev)
{
	kvfree(dev->inval_ring);
	kvfree(dev->inval_work_buf);
	dev->inval_ring = NULL;
	dev->inval_work_buf = NULL;
}

/**
 * nswap_inval_queue - queue an invalidate; callable in atomic context
 * @dev: device
 * @srv: server index
 * @slot: first slot
 * @count: number of slots
 * @gen: generation for the wire (drop if stored <= @gen)
 * @dgen: newest data generation the entry is meant to drop
 * @hop: NSWAP_INVAL_ANY_HOP, or drop only copies (@gen, @hop) or older
 *	(NSWAP_F_HOP: a moved page's old copy, protocol.md 11.1)
 */
bool nswap_inval_queue(struct nswap_dev *dev, u8 srv, u64 slot, u32 count,
		       u64 gen, u64 dgen, u8 hop)
{
	struct nswap_inval *e;
	unsigned long flags;
	unsigned int n;

	if (srv == NSWAP_SE_SRV_LOCAL)
		return true;	/* the backing device: nobody to tell */
	spin_lock_irqsave(&dev->inval_lock, flags);
	if (dev->inval_stop || !dev->inval_ring) {
		/* powering off: the power-off purge drops everything */
		spin_unlock_irqrestore(&dev->inval_lock, flags);
		return true;
	}
	n = dev->inval_count;
	if (n == NSWAP_INVAL_RING) {
		spin_unlock_irqrestore(&dev->inval_lock, flags);
		return false;
	}
	e = &dev->inval_ring[(dev->inval_head + n) % NSWAP_INVAL_RING];
	e->srv = srv;
	e->slot = slot;
	e->count = count;
	e->gen = gen;
	e->dgen = dgen;
	e->hop = hop;
	dev->inval_count = n + 1;
	if (!n)
		queue_delayed_work(nswap_wq, &dev->inval_work,
				   msecs_to_jiffies(NSWAP_INVAL_DELAY_MS));
	else if (n + 1 == NSWAP_INVAL_RING / 2)
		mod_delayed_work(nswap_wq, &dev->inval_work, 0);
	spin_unlock_irqrestore(&dev->inval_lock, flags);
	return true;
}

/*
 * @count slots' INVALIDATE for server @idx was not sent: count it, and have
 * the next dead-page sweep walk that server (nswap_sweep.c).
 */
void nswap_inval_dropped(struct nswap_dev *dev, u8 idx, u64 count)
{
	struct nswap_server *srv;

	nswap_stat_add(dev, invalidates_dropped, count);
	srv = nswap_dev_server(dev, idx);
	if (srv)
		WRITE_ONCE(srv->sweep_wanted, true);
}

/* Queue an invalidate that cannot wait in the slot map; count a loss. */
void nswap_inval_post(struct nswap_dev *dev, u8 srv, u64 slot, u32 count,
		      u64 gen, u64 dgen)
{
	if (!nswap_inval_queue(dev, srv, slot, count, gen, dgen,
			       NSWAP_INVAL_ANY_HOP))
		nswap_inval_dropped(dev, srv, count);
}

/* The same for one slot's copy (@gen, @hop) or older only. */
void nswap_inval_post_hop(struct nswap_dev *dev, u8 srv, u64 slot, u64 gen,
			  u8 hop)
{
	if (!nswap_inval_queue(dev, srv, slot, 1, gen, gen, hop))
		nswap_inval_dropped(dev, srv, 1);
}

static int nswap_inval_cmp(const void *a, const void *b)
{
	const struct nswap_inval *x = a, *y = b;

	if (x->srv != y->srv)
		return x->srv < y->srv ? -1 : 1;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return 0;
}

static void nswap_inval_send(struct nswap_dev *dev, u8 idx, u64 slot,
			     u64 count, u64 gen, u8 hop)
{
	struct nswap_server *srv = nswap_dev_server(dev, idx);

	if (!srv || nswap_server_send_invalidate(srv, slot, count, gen, hop,
						 true))
		nswap_inval_dropped(dev, idx, count);
}

/* Drain the ring once (work item only). */
static void nswap_inval_run(struct nswap_dev *dev)
{
	struct nswap_inval *buf = dev->inval_work_buf;
	unsigned long flags;
	unsigned int n, i, j;

	spin_lock_irqsave(&dev->inval_lock, flags);
	n = dev->inval_count;
	for (i = 0; i < n; i++)
		buf[i] = dev->inval_ring[(dev->inval_head + i) %
					 NSWAP_INVAL_RING];
	dev->inval_head = (dev->inval_head + n) % NSWAP_INVAL_RING;
	dev->inval_count = 0;
	spin_unlock_irqrestore(&dev->inval_lock, flags);
	if (!n)
		return;

	sort(buf, n, sizeof(*buf), nswap_inval_cmp, NULL);
	for (i = 0; i < n; i = j) {
		u64 start = buf[i].slot;
		u64 end = start + buf[i].count;
		u64 gen = buf[i].gen;
		u64 dgen = buf[i].dgen;

		for (j = i + 1; j < n; j++) {
			u64 ngen = min(gen, buf[j].gen);
			u64 ndgen = max(dgen, buf[j].dgen);

			if (buf[j].srv != buf[i].srv || buf[j].slot != end ||
			    buf[j].hop != buf[i].hop || ndgen > ngen)
				break;
			end += buf[j].count;
			gen = ngen;
			dgen = ndgen;
		}
		nswap_inval_send(dev, buf[i].srv, start, end - start, gen,
				 buf[i].hop);
	}
}

/*
 * Send the invalidates of the FREED words left in the slot map when the
 * ring was full.  Runs of neighbouring slots on one server whose
 * generation is at most @snap become one range (see the rules above).
 */
static void nswap_inval_rescan(struct nswap_dev *dev)
{
	u64 snap = nswap_dev_gen_snapshot(dev);
	u64 start = 0, end = 0, gen = 0, s;
	u8 run_srv = 0;
	bool run = false;

	for (s = 0; s < dev->map.nslots; s++) {
		u64 e = nswap_slotmap_get(&dev->map, s);
		u64 g;
		u8 idx;

		if (!(s & 4095))
			cond_resched();
		if (!nswap_se_freed(e) ||
		    !nswap_slotmap_cmpxchg(&dev->map, s, e, 0)) {
			if (run)
				nswap_inval_send(dev, run_srv, start,
						 end - start, gen,
						 NSWAP_INVAL_ANY_HOP);
			run = false;
			continue;
		}
		idx = nswap_se_srv(e);
		g = nswap_se_gen(e);
		nswap_holder_add(dev, idx, -1);
		if (g > snap) {
			/* written during the scan: on its own, exact */
			nswap_inval_send(dev, idx, s, 1, g,
					 NSWAP_INVAL_ANY_HOP);
			continue;
		}
		if (run && idx == run_srv && s == end) {
			end++;
			gen = max(gen, g);
			continue;
		}
		if (run)
			nswap_inval_send(dev, run_srv, start, end - start, gen,
					 NSWAP_INVAL_ANY_HOP);
		run = true;
		run_srv = idx;
		start = s;
		end = s + 1;
		gen = g;
	}
	if (run)
		nswap_inval_send(dev, run_srv, start, end - start, gen,
				 NSWAP_INVAL_ANY_HOP);
}

static void nswap_inval_workfn(struct work_struct *work)
{
	struct nswap_dev *dev = container_of(to_delayed_work(work),
					     struct nswap_dev, inval_work);
	unsigned long flags;
	bool rescan;

	nswap_inval_run(dev);
	spin_lock_irqsave(&dev->inval_lock, flags);
	rescan = dev->inval_rescan && !dev->inval_stop;
	dev->inval_rescan = false;
	spin_unlock_irqrestore(&dev->inval_lock, flags);
	if (rescan)
		nswap_inval_rescan(dev);
}

/* Ask the work item for a rescan; atomic context. */
static void nswap_inval_want_rescan(struct nswap_dev *dev)
{
	unsigned long flags;

	spin_lock_irqsave(&dev->inval_lock, flags);
	if (!dev->inval_stop && !dev->inval_rescan) {
		dev->inval_rescan = true;
		mod_delayed_work(nswap_wq, &dev->inval_work,
				 msecs_to_jiffies(NSWAP_INVAL_DELAY_MS));
	}
	spin_unlock_irqrestore(&dev->inval_lock, flags);
}

/*
 * A write is about to be issued for @slot: if the slot is FREED in the
 * map, take the word over now, before the write's generation exists, and
 * queue the invalidate of the old copy.
 */
void nswap_inval_claim_freed(struct nswap_dev *dev, u64 slot)
{
	u64 e = nswap_slotmap_get(&dev->map, slot);

	if (!nswap_se_freed(e) || !nswap_slotmap_cmpxchg(&dev->map, slot, e, 0))
		return;
	nswap_holder_add(dev, nswap_se_srv(e), -1);
	nswap_inval_post(dev, nswap_se_srv(e), slot, 1, nswap_se_gen(e),
			 nswap_se_gen(e));
}

/*
 * block_device_operations.swap_slot_free_notify: the kernel freed swap slot
 * @offset.  Atomic context (swap locks held): clear the slot word and queue
 * the INVALIDATE; never sleeps.
 */
void nswap_swap_slot_free_notify(struct block_device *bdev,
				 unsigned long offset)
{
	struct nswap_dev *dev = nswap_dev_from_disk(bdev->bd_disk);
	u64 snap, old, gen;
	u8 idx;

	if (!dev->map.e || offset >= dev->map.nslots)
		return;
	snap = nswap_dev_gen_snapshot(dev);
	old = nswap_slotmap_clear(&dev->map, offset);
	if (!nswap_se_in_use(old))
		return;
	if (nswap_se_freed(old)) {
		/* freed twice?  keep the pending invalidate */
		nswap_slotmap_cmpxchg(&dev->map, offset, 0, old);
		return;
	}
	idx = nswap_se_srv(old);
	gen = nswap_se_gen(old);
	if (nswap_inval_queue(dev, idx, offset, 1, max(snap, gen), gen,
			      NSWAP_INVAL_ANY_HOP)) {
		nswap_holder_add(dev, idx, -1);
		return;
	}
	/* ring full: park it in the map (reads see zeroes) for the rescan */
	if (nswap_slotmap_cmpxchg(&dev->map, offset, 0,
				  old | ((u64)NSWAP_SE_FREED <<
					 NSWAP_SE_FLAGS_SHIFT))) {
		nswap_inval_want_rescan(dev);
	} else {
		nswap_holder_add(dev, idx, -1);
		nswap_inval_dropped(dev, idx, 1);
	}
}
