/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Every kernel-version difference nswap cares about, in one place.
 *
 * Supported: Linux 6.1 (Debian 12) through 6.12 (Debian 13).  Each shim
 * names the kernel release that changed the interface; they were checked
 * against the 6.1.192 and 6.12.117 sources (Debian linux-source packages).
 *
 * Two shims depend on fields that distributions backport into older
 * releases.  Kbuild greps the target kernel's headers and defines
 *   NSWAP_HAVE_SK_USE_TASK_FRAG   include/net/sock.h has sk_use_task_frag
 *                                 (mainline 6.2; backported to 6.1.y, the
 *                                 Debian 6.1.0-56 headers have it)
 *   NSWAP_HAVE_SLOT_FREE_NOTIFY   block_device_operations has
 *                                 swap_slot_free_notify (6.1 and 6.12 do)
 * and this file falls back to version checks when the probe found no
 * header at all (NSWAP_PROBED undefined).
 */
#ifndef NSWAP_COMPAT_H
#define NSWAP_COMPAT_H

#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "nswap.h"

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "nswap needs Linux 6.1 or later"
#endif

/* ---- probes with version fallbacks ---- */
#ifndef NSWAP_PROBED
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define NSWAP_HAVE_SK_USE_TASK_FRAG 1
#endif
#define NSWAP_HAVE_SLOT_FREE_NOTIFY 1
#endif

/*
 * sk_use_task_frag (6.2, "net: Introduce sk_use_task_frag in struct sock"):
 * a socket used from reclaim must not use current->task_frag.  Without the
 * field, GFP_NOIO | __GFP_MEMALLOC in sk_allocation already makes
 * sk_page_frag() pick the socket's own frag (as nbd relies on).
 */
static inline void nswap_sk_no_task_frag(struct sock *sk)
{
#ifdef NSWAP_HAVE_SK_USE_TASK_FRAG
	sk->sk_use_task_frag = false;
#endif
}

/* ITER_SOURCE/ITER_DEST (6.1/6.2 rename of WRITE/READ for iov_iter). */
#ifndef ITER_SOURCE
#define ITER_SOURCE	WRITE
#define ITER_DEST	READ
#endif

/*
 * block_device_operations ->open/->release: 6.5 ("block: pass a gendisk to
 * ->open", "block: remove the unused mode argument to ->release") changed
 * (struct block_device *, fmode_t) to (struct gendisk *, blk_mode_t).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
static inline int nswap_bdops_open(struct gendisk *disk, blk_mode_t mode)
{
	return nswap_disk_open(disk);
}

static inline void nswap_bdops_release(struct gendisk *disk)
{
	nswap_disk_release(disk);
}
#else
static inline int nswap_bdops_open(struct block_device *bdev, fmode_t mode)
{
	return nswap_disk_open(bdev->bd_disk);
}

static inline void nswap_bdops_release(struct gendisk *disk, fmode_t mode)
{
	nswap_disk_release(disk);
}
#endif

/*
 * BLK_MQ_F_SHOULD_MERGE: an enum (not testable with #ifdef), present in
 * 6.1 and 6.12, dropped in 6.14 when merging became unconditional.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 14, 0)
#define NSWAP_MQ_F_MERGE	BLK_MQ_F_SHOULD_MERGE
#else
#define NSWAP_MQ_F_MERGE	0
#endif

/* Queue limits nswap wants, independent of how the kernel takes them. */
struct nswap_limits {
	unsigned int block_size;	/* logical = physical = io_min/opt */
	unsigned int max_hw_sectors;
	unsigned short max_segments;
	unsigned int max_segment_size;
	unsigned int dma_alignment;	/* mask */
	unsigned int max_discard_sectors;
	unsigned int discard_granularity;
	unsigned int max_write_zeroes_sectors;
};

/*
 * Allocating the gendisk and applying limits and queue features:
 *  - 6.9 ("block: pass a queue_limits argument to blk_mq_alloc_disk"):
 *    blk_mq_alloc_disk(set, lim, queuedata); before: (set, queuedata) and
 *    blk_queue_*() setters afterwards.
 *  - 6.11 ("block: move the nonrot flag to queue_limits" and friends):
 *    queue flags became queue_limits.features; non-rotational and no
 *    add_random are the defaults (BLK_FEAT_ROTATIONAL/ADD_RANDOM opt in),
 *    QUEUE_FLAG_NONROT/ADD_RANDOM/STABLE_WRITES are gone.
 * In every version the device is non-rotational, not synchronous (no
 * QUEUE_FLAG_SYNCHRONOUS / BLK_FEAT_SYNCHRONOUS: swap must keep submitting
 * asynchronously), needs stable pages (the payload is checksummed) and has
 * no volatile write cache.
 */
static inline struct gendisk *
nswap_alloc_disk(struct blk_mq_tag_set *set, void *queuedata,
		 const struct nswap_limits *l)
{
	struct gendisk *disk;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct queue_limits lim = {
		.logical_block_size	= l->block_size,
		.physical_block_size	= l->block_size,
		.io_min			= l->block_size,
		.io_opt			= l->block_size,
		.max_hw_sectors		= l->max_hw_sectors,
		.max_segments		= l->max_segments,
		.max_segment_size	= l->max_segment_size,
		.dma_alignment		= l->dma_alignment,
		.max_hw_discard_sectors	= l->max_discard_sectors,
		.discard_granularity	= l->discard_granularity,
		.max_write_zeroes_sectors = l->max_write_zeroes_sectors,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
		.features		= BLK_FEAT_STABLE_WRITES,
#endif
	};

	disk = blk_mq_alloc_disk(set, &lim, queuedata);
	if (IS_ERR(disk))
		return disk;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, disk->queue);
	blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, disk->queue);
#endif
#else /* < 6.9 */
	struct request_queue *q;

	disk = blk_mq_alloc_disk(set, queuedata);
	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, l->block_size);
	blk_queue_physical_block_size(q, l->block_size);
	blk_queue_io_min(q, l->block_size);
	blk_queue_io_opt(q, l->block_size);
	blk_queue_max_hw_sectors(q, l->max_hw_sectors);
	blk_queue_max_segments(q, l->max_segments);
	blk_queue_max_segment_size(q, l->max_segment_size);
	blk_queue_dma_alignment(q, l->dma_alignment);
	blk_queue_max_discard_sectors(q, l->max_discard_sectors);
	q->limits.discard_granularity = l->discard_granularity;
	blk_queue_max_write_zeroes_sectors(q, l->max_write_zeroes_sectors);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, q);
#endif
	return disk;
}

/*
 * The backing (disk fallback) device, opened by path for reading and
 * writing, exclusively: @holder (the nswap_dev) claims it, so no file
 * system, swap area or second nswap device can use it meanwhile.  *@handle
 * is what nswap_bdev_close() needs.
 *   6.1-6.4  blkdev_get_by_path(path, fmode | FMODE_EXCL, holder)
 *   6.5-6.7  blkdev_get_by_path(path, blk_mode, holder, hops)  (holder: excl)
 *   6.8      bdev_open_by_path() -> struct bdev_handle
 *   6.9      bdev_file_open_by_path() -> struct file, released by fput()
 *   6.10     bdev_fput(): gives the claim back before returning
 * Only the 6.1 and 6.12 branches run in the test suite.
 */
static inline struct block_device *nswap_bdev_open(const char *path,
						   void *holder, void **handle)
{
	struct block_device *bdev;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct file *f = bdev_file_open_by_path(path, BLK_OPEN_READ |
						BLK_OPEN_WRITE, holder, NULL);

	if (IS_ERR(f))
		return ERR_CAST(f);
	*handle = f;
	bdev = file_bdev(f);
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	struct bdev_handle *h = bdev_open_by_path(path, BLK_OPEN_READ |
						  BLK_OPEN_WRITE, holder, NULL);

	if (IS_ERR(h))
		return ERR_CAST(h);
	*handle = h;
	bdev = h->bdev;
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	bdev = blkdev_get_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, holder,
				  NULL);
	*handle = bdev;
#else
	bdev = blkdev_get_by_path(path, FMODE_READ | FMODE_WRITE | FMODE_EXCL,
				  holder);
	*handle = bdev;
#endif
	return bdev;
}

static inline void nswap_bdev_close(void *handle, void *holder)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	bdev_fput(handle);
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	fput(handle);
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	bdev_release(handle);
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	blkdev_put(handle, holder);
#else
	blkdev_put(handle, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
#endif
}

/*
 * The per-slot free hook: block_device_operations.swap_slot_free_notify,
 * called by mm/swapfile.c swap_range_free() for every freed slot, in atomic
 * context (swap_info or cluster lock held).  Present in 6.1 and 6.12.
 */
#ifdef NSWAP_HAVE_SLOT_FREE_NOTIFY
#define NSWAP_SLOT_FREE_NOTIFY	.swap_slot_free_notify = nswap_swap_slot_free_notify,
#else
#define NSWAP_SLOT_FREE_NOTIFY
#endif

#endif /* NSWAP_COMPAT_H */
