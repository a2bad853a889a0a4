// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap dead-page sweep: servers may keep copies of this device's slots
 * that no slot map entry names any more -- the INVALIDATE that should have
 * dropped them was lost (the server was unreachable, counted in
 * invalidates_dropped), or an unacknowledged write attempt was stored after
 * all.  They cost the server memory until the next power cycle.  Every
 * sweep_interval_s (configfs, 0 = off) a work item walks the slot map once
 * and tells servers, with range INVALIDATEs flagged NSWAP_F_SWEEP, to drop
 * their copies of the slots they do not hold for us now.  A walk covers the
 * servers an INVALIDATE was dropped for since the last walk
 * (nswap_inval_dropped), and every NSWAP_SWEEP_ALL_EVERY-th walk, the first
 * included, all of them: an unacknowledged attempt stored after its
 * INVALIDATE (which can overtake it on another connection) leaves no mark.
 * A walk costs a server one frame per gap between the slots it holds.
 *
 * What makes that safe (docs/protocol.md 5.4, NSWAP_F_SWEEP):
 *  - Such an INVALIDATE carries a generation floor: the generation counter
 *    before the walk, lowered to the first generation of every write in
 *    flight.  A write that may still be recorded in the slot map -- in
 *    flight now, or issued later -- has a larger generation, so its copy is
 *    kept even if the walk saw the slot elsewhere.
 *  - It drops only copies a PUTPAGE stored (hop count 0).  A copy that a
 *    server moved to another (PUNTPAGE) may be named by an UPDATE still on
 *    its way; it is never swept.
 *  - A slot whose slot map entry names the server (live) breaks the range:
 *    that copy is the page.
 * A walk covers at most NSWAP_SWEEP_WINDOW slots per run of the work item;
 * a larger device is swept in several runs, NSWAP_SWEEP_NEXT_MS apart.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/sched.h>

#include "nswap.h"

#define NSWAP_SWEEP_WINDOW	(1U << 20)	/* slots per run: 4 GiB of device */
#define NSWAP_SWEEP_NEXT_MS	10		/* between the runs of one walk */
#define NSWAP_SWEEP_ALL_EVERY	8		/* walks: one of them takes every server */

/* The floor: the first generation of each write request in flight. */
static bool nswap_sweep_floor_iter(struct request *rq, void *data)
{
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 *floor = data;

	if (rq_data_dir(rq) != WRITE)
		return true;
	spin_lock(&cmd->lock);
	if (cmd->started && cmd->first_gen < *floor)
		*floor = cmd->first_gen;
	spin_unlock(&cmd->lock);
	return true;
}

/*
 * Tell server @idx to drop its written copies of [start, end) up to @floor;
 * on a send failure (not connected, no NSWAP_FEAT_SWEEP) the server is left
 * out of the rest of this run.
 */
static void nswap_sweep_send(struct nswap_dev *dev, unsigned long *skip,
			     unsigned int idx, u64 start, u64 end, u64 floor)
{
	struct nswap_server *srv = nswap_dev_server(dev, idx);

	if (test_bit(idx, skip) || start >= end)
		return;
	if (!srv || nswap_server_send_invalidate(srv, start, end - start,
						 floor, NSWAP_INVAL_SWEEP,
						 true)) {
		__set_bit(idx, skip);
		return;
	}
	nswap_stat_inc(dev, sweep_invalidates);
}

static void nswap_sweep_run(struct nswap_dev *dev)
{
	DECLARE_BITMAP(skip, NSWAP_MAX_SERVERS);
	u64 run[NSWAP_MAX_SERVERS];	/* first slot of each server's range */
	u64 floor = nswap_dev_gen_snapshot(dev);
	u64 start = dev->sweep_cursor, end, s;
	unsigned int n = READ_ONCE(dev->nr_servers), i;

	blk_mq_tagset_busy_iter(&dev->tag_set, nswap_sweep_floor_iter, &floor);
	/* a write allocates its generation after first_gen: below it, only
	 * copies of writes that can no longer be recorded */
	if (!floor)
		return;
	end = min_t(u64, dev->map.nslots, start + NSWAP_SWEEP_WINDOW);
	if (!start) {
		/* a new walk: which servers it takes (marks after this count
		 * for the next one) */
		bool all = !(dev->sweep_walks++ % NSWAP_SWEEP_ALL_EVERY);

		bitmap_zero(dev->sweep_servers, NSWAP_MAX_SERVERS);
		for (i = 0; i < n; i++) {
			struct nswap_server *srv = READ_ONCE(dev->servers[i]);

			if (srv && (xchg(&srv->sweep_wanted, false) || all))
				__set_bit(i, dev->sweep_servers);
		}
	}
	bitmap_zero(skip, NSWAP_MAX_SERVERS);
	for (i = 0; i < n; i++) {
		struct nswap_server *srv = READ_ONCE(dev->servers[i]);

		run[i] = start;
		if (!srv || !atomic_read(&srv->nr_up) ||
		    !test_bit(i, dev->sweep_servers))
			__set_bit(i, skip);
	}
	for (s = start; s < end; s++) {
		u64 e = nswap_slotmap_get(&dev->map, s);

		if (!(s & 4095))
			cond_resched();
		if (!nswap_se_live(e) || nswap_se_srv(e) >= n)
			continue;
		i = nswap_se_srv(e);
		nswap_sweep_send(dev, skip, i, run[i], s, floor);
		run[i] = s + 1;
	}
	for (i = 0; i < n; i++)
		nswap_sweep_send(dev, skip, i, run[i], end, floor);
	dev->sweep_cursor = end < dev->map.nslots ? end : 0;
	if (!dev->sweep_cursor)
		nswap_stat_inc(dev, sweeps);
}

static void nswap_sweep_workfn(struct work_struct *work)
{
	struct nswap_dev *dev = container_of(to_delayed_work(work),
					     struct nswap_dev, sweep_work);
	unsigned int interval_s;

	if (READ_ONCE(dev->sweep_stop))
		return;
	nswap_sweep_run(dev);
	interval_s = READ_ONCE(dev->sweep_interval_s);
	if (!interval_s || READ_ONCE(dev->sweep_stop))
		return;
	queue_delayed_work(nswap_wq, &dev->sweep_work, dev->sweep_cursor ?
			   msecs_to_jiffies(NSWAP_SWEEP_NEXT_MS) :
			   interval_s * HZ);
}

/* Power on, after the servers started: the first walk after one interval. */
void nswap_sweep_start(struct nswap_dev *dev)
{
	dev->sweep_cursor = 0;
	dev->sweep_walks = 0;
	WRITE_ONCE(dev->sweep_stop, false);
	INIT_DELAYED_WORK(&dev->sweep_work, nswap_sweep_workfn);
	nswap_sweep_reschedule(dev);
}

/* sweep_interval_s changed (cfg_lock held), or power on. */
void nswap_sweep_reschedule(struct nswap_dev *dev)
{
	unsigned int interval_s = READ_ONCE(dev->sweep_interval_s);

	if (!dev->powered || READ_ONCE(dev->sweep_stop))
		return;
	if (interval_s)
		mod_delayed_work(nswap_wq, &dev->sweep_work, interval_s * HZ);
	else
		cancel_delayed_work(&dev->sweep_work);
}

/* Power off, before the servers stop: no walk runs or starts after this. */
void nswap_sweep_stop(struct nswap_dev *dev)
{
	WRITE_ONCE(dev->sweep_stop, true);
	cancel_delayed_work_sync(&dev->sweep_work);
}
