// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap disk fallback: the device's backing block device.
 *
 * A device may name a local block device in configfs (backing).  When no
 * server has room for a write (every one answered ENOSPC or is hinted
 * full) or none is reachable, nswap_dev.c sends the page there instead,
 * and records the slot as NSWAP_SE_LOCAL in the slot map; a later write of
 * the slot goes to a server again when one has room, and a read comes from
 * wherever the slot map says the page is (docs/protocol.md section 11.3).
 * Slot N lives at byte N * 4096 of the backing device, so it must be at
 * least as large as the nswap device; nothing on it needs freeing.
 *
 * ->queue_rq must not sleep, so it marks such frames busy (tx_busy, as if a
 * tx thread were sending them) and queues the request's backing_work on
 * nswap_backing_wq (WQ_MEM_RECLAIM: it runs under memory pressure, with a
 * rescuer of its own).  The work item writes or reads each run of
 * neighbouring frames with one bio and settles them through
 * nswap_dev_backing_done().  Bios come from the device's own mempool-backed
 * bio set (GFP_NOIO): not from fs_bio_set, whose reserve the swap bios that
 * wait on these very requests may hold, so reclaim always makes progress.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/file.h>

#include "nswap.h"
#include "nswap_compat.h"

/* Open the configured backing device, if any (power on, cfg_lock held). */
int nswap_backing_open(struct nswap_dev *dev)
{
	struct block_device *bdev;
	void *handle;
	int err;

	atomic64_set(&dev->disk_pages, 0);
	dev->backing = NULL;
	if (!dev->backing_path[0])
		return 0;
	bdev = nswap_bdev_open(dev->backing_path, dev, &handle);
	if (IS_ERR(bdev)) {
		pr_err("nswap%d: backing %s: cannot open it exclusively for reading and writing (%ld): is it a block device that nothing else (file system, swap, another nswap device) uses?\n",
		       dev->index, dev->backing_path, PTR_ERR(bdev));
		return PTR_ERR(bdev);
	}
	if (nswap_disk_is_ours(bdev->bd_disk) || bdev_read_only(bdev)) {
		/* an nswap device's I/O would wait on this one's work items */
		pr_err("nswap%d: backing %s: %s: use a local disk\n", dev->index,
		       dev->backing_path, bdev_read_only(bdev) ? "read-only" :
		       "an nswap device cannot back another");
		nswap_bdev_close(handle, dev);
		return -EINVAL;
	}
	if (bdev_nr_bytes(bdev) < dev->size ||
	    bdev_logical_block_size(bdev) > NSWAP_PAGE_SIZE) {
		pr_err("nswap%d: backing %s: %lld bytes in blocks of %u, needs at least the device's %llu bytes in blocks of at most %u: use a larger device or a smaller size\n",
		       dev->index, dev->backing_path,
		       (long long)bdev_nr_bytes(bdev),
		       bdev_logical_block_size(bdev), dev->size,
		       NSWAP_PAGE_SIZE);
		nswap_bdev_close(handle, dev);
		return -EINVAL;
	}
	err = bioset_init(&dev->backing_bs, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
	if (err) {
		nswap_bdev_close(handle, dev);
		return err;
	}
	/* for pages servers send home (nswap_home.c), one at a time */
	dev->home_page = alloc_page(GFP_KERNEL);
	if (!dev->home_page) {
		bioset_exit(&dev->backing_bs);
		nswap_bdev_close(handle, dev);
		return -ENOMEM;
	}
	down_write(&dev->home_rwsem);
	dev->backing = bdev;
	dev->backing_handle = handle;
	up_write(&dev->home_rwsem);
	pr_info("nswap%d: backing device %s: pages go there when no server has room\n",
		dev->index, dev->backing_path);
	return 0;
}

/* Power off or a failed power on, no request left (cfg_lock held). */
void nswap_backing_close(struct nswap_dev *dev)
{
	void *handle = dev->backing_handle;

	if (!dev->backing)
		return;
	/* a page being written home finishes first; later ones see NULL */
	down_write(&dev->home_rwsem);
	dev->backing = NULL;
	dev->backing_handle = NULL;
	up_write(&dev->home_rwsem);
	bioset_exit(&dev->backing_bs);
	nswap_bdev_close(handle, dev);
	__free_page(dev->home_page);
	dev->home_page = NULL;
}

/* Write or read @nr pages at @slot and on (@pages[i] at @offsets[i]) in one
 * bio from the device's own reserve; also for pages sent home (nswap_home.c). */
int nswap_backing_io(struct nswap_dev *dev, u64 slot, struct page **pages,
		     const unsigned int *offsets, unsigned int nr, bool write)
{
	struct bio *bio;
	unsigned int i;
	int err;

	bio = bio_alloc_bioset(dev->backing, nr,
			       write ? REQ_OP_WRITE : REQ_OP_READ, GFP_NOIO,
			       &dev->backing_bs);
	bio->bi_iter.bi_sector = slot * NSWAP_SECTORS_PER_PAGE;
	for (i = 0; i < nr; i++) {
		if (bio_add_page(bio, pages[i], NSWAP_PAGE_SIZE, offsets[i]) !=
		    NSWAP_PAGE_SIZE) {
			bio_put(bio);
			return -EIO;
		}
	}
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

/* Write or read frames [first, end) of @cmd, neighbouring slots, in one bio. */
static int nswap_backing_rw(struct nswap_dev *dev, struct nswap_cmd *cmd,
			    unsigned int first, unsigned int end, bool write)
{
	struct page *pages[NSWAP_MAX_FRAMES];
	unsigned int offsets[NSWAP_MAX_FRAMES];
	unsigned int i;

	for (i = first; i < end; i++) {
		pages[i - first] = cmd->frames[i].page;
		offsets[i - first] = cmd->frames[i].offset;
	}
	return nswap_backing_io(dev, cmd->frames[first].slot, pages, offsets,
				end - first, write);
}

void nswap_backing_workfn(struct work_struct *work)
{
	struct nswap_cmd *cmd = container_of(work, struct nswap_cmd,
					     backing_work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct nswap_dev *dev = rq->q->queuedata;
	bool write = rq_data_dir(rq) == WRITE;
	unsigned long todo = 0;
	unsigned int i, j, n;
	u32 cookie;
	int err;

	BUILD_BUG_ON(NSWAP_MAX_FRAMES > BITS_PER_LONG);
	spin_lock(&cmd->lock);
	cmd->backing_todo = false;
	cookie = cmd->cookie;
	n = cmd->nr_frames;
	for (i = 0; i < n; i++) {
		struct nswap_frame *fr = &cmd->frames[i];

		if (fr->state == NSWAP_FR_SENT && fr->tx_busy && !fr->conn)
			todo |= BIT(i);
	}
	spin_unlock(&cmd->lock);

	/*
	 * The frames stay tx_busy until nswap_dev_backing_done(): the request
	 * cannot settle, so its pages stay put, and a timeout only flags them.
	 * Writes and their slot map commits hold home_rwsem for reading: a page
	 * a server sends home is written and recorded before or after them,
	 * never between (nswap_home.c).
	 */
	if (write)
		down_read(&dev->home_rwsem);
	for (i = 0; i < n; i = j) {
		j = i + 1;
		if (!(todo & BIT(i)))
			continue;
		while (j < n && (todo & BIT(j)))
			j++;
		err = nswap_backing_rw(dev, cmd, i, j, write);
		if (err) {
			nswap_stat_add(dev, disk_errors, j - i);
			pr_err_ratelimited("%s: backing %s: %s of %u page(s) at slot %llu failed (%d), retrying\n",
					   dev->disk->disk_name,
					   dev->backing_path,
					   write ? "write" : "read", j - i,
					   cmd->frames[i].slot, err);
		}
		nswap_dev_backing_done(cmd, i, j, cookie, err);
	}
	if (write)
		up_read(&dev->home_rwsem);
}
