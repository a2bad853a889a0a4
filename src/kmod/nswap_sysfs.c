// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap counters: /sys/block/nswapN/nswap/<counter>, one value per file;
 * latency_hist has one line per bucket "<lower bound in us> <count>",
 * bucket i covering [lower_i, lower_i+1) (the last one is open-ended).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/percpu.h>
#include <linux/sysfs.h>

#include "nswap.h"

static struct nswap_dev *dev_to_nswap(struct device *d)
{
	return nswap_dev_from_disk(dev_to_disk(d));
}

/*
 * The u64 at @offset in struct nswap_stats, summed over the CPUs.  Each CPU's
 * copy only grows, so the sum is a value the counter had while it was read
 * (a 64-bit load: the module runs on x86-64 and arm64, docs/kmod.md).
 */
static u64 nswap_stat_sum(struct nswap_dev *dev, size_t offset)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*(u64 *)((void *)per_cpu_ptr(dev->stats, cpu) +
					  offset));
	return sum;
}

/* Zero every CPU's counters (power on: nothing runs on the device yet). */
void nswap_stats_reset(struct nswap_dev *dev)
{
	int cpu;

	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(dev->stats, cpu), 0, sizeof(struct nswap_stats));
}

/* A counter file: the u64 at @offset in struct nswap_stats. */
struct nswap_stat_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t nswap_stat_show(struct device *d,
			       struct device_attribute *attr, char *buf)
{
	struct nswap_stat_attr *sa = container_of(attr, struct nswap_stat_attr,
						  attr);
	return sysfs_emit(buf, "%llu\n", nswap_stat_sum(dev_to_nswap(d), sa->offset));
}

static struct nswap_stat_attr nswap_stat_attr_list[] = {
	{ __ATTR(puts, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, puts) },
	{ __ATTR(gets, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, gets) },
	{ __ATTR(invalidates, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, invalidates) },
	{ __ATTR(invalidates_dropped, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, invalidates_dropped) },
	{ __ATTR(bytes_out, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, bytes_out) },
	{ __ATTR(bytes_in, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, bytes_in) },
	{ __ATTR(errors, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, errors) },
	{ __ATTR(lost_pages, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, lost_pages) },
	{ __ATTR(retries, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, retries) },
	{ __ATTR(reconnects, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, reconnects) },
	{ __ATTR(timeouts, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, timeouts) },
	{ __ATTR(wrong_pages, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, wrong_pages) },
	{ __ATTR(migrations, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, migrations) },
	{ __ATTR(updates_refused, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, updates_refused) },
	{ __ATTR(disk_writes, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, disk_writes) },
	{ __ATTR(disk_reads, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, disk_reads) },
	{ __ATTR(disk_errors, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, disk_errors) },
	{ __ATTR(sweeps, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, sweeps) },
	{ __ATTR(sweep_invalidates, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, sweep_invalidates) },
	{ __ATTR(punts_home, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, punts_home) },
	{ __ATTR(punts_home_refused, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, punts_home_refused) },
	{ __ATTR(free_hints, 0444, nswap_stat_show, NULL),
	  offsetof(struct nswap_stats, free_hints) },
};

static ssize_t inflight_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&dev_to_nswap(d)->inflight));
}
static DEVICE_ATTR_RO(inflight);

/* pages the slot map keeps on the backing device now (a gauge) */
static ssize_t disk_pages_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  (long long)atomic64_read(&dev_to_nswap(d)->disk_pages));
}
static DEVICE_ATTR_RO(disk_pages);

static ssize_t latency_hist_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	struct nswap_dev *dev = dev_to_nswap(d);
	int len = 0;
	int i;

	for (i = 0; i < NSWAP_LAT_BUCKETS; i++)
		len += sysfs_emit_at(buf, len, "%llu %llu\n",
				     i ? 1ULL << i : 0ULL,
				     nswap_stat_sum(dev, offsetof(struct nswap_stats,
								  lat[i])));
	return len;
}
static DEVICE_ATTR_RO(latency_hist);

static struct attribute *nswap_stat_attrs[] = {
	&nswap_stat_attr_list[0].attr.attr,
	&nswap_stat_attr_list[1].attr.attr,
	&nswap_stat_attr_list[2].attr.attr,
	&nswap_stat_attr_list[3].attr.attr,
	&nswap_stat_attr_list[4].attr.attr,
	&nswap_stat_attr_list[5].attr.attr,
	&nswap_stat_attr_list[6].attr.attr,
	&nswap_stat_attr_list[7].attr.attr,
	&nswap_stat_attr_list[8].attr.attr,
	&nswap_stat_attr_list[9].attr.attr,
	&nswap_stat_attr_list[10].attr.attr,
	&nswap_stat_attr_list[11].attr.attr,
	&nswap_stat_attr_list[12].attr.attr,
	&nswap_stat_attr_list[13].attr.attr,
	&nswap_stat_attr_list[14].attr.attr,
	&nswap_stat_attr_list[15].attr.attr,
	&nswap_stat_attr_list[16].attr.attr,
	&nswap_stat_attr_list[17].attr.attr,
	&nswap_stat_attr_list[18].attr.attr,
	&nswap_stat_attr_list[19].attr.attr,
	&nswap_stat_attr_list[20].attr.attr,
	&nswap_stat_attr_list[21].attr.attr,
	&dev_attr_inflight.attr,
	&dev_attr_disk_pages.attr,
	&dev_attr_latency_hist.attr,
	NULL,
};
/* every counter of the list above has its file (reconnects once had none) */
static_assert(ARRAY_SIZE(nswap_stat_attrs) ==
	      ARRAY_SIZE(nswap_stat_attr_list) + 4);

static const struct attribute_group nswap_stat_group = {
	.name	= "nswap",
	.attrs	= nswap_stat_attrs,
};

const struct attribute_group *nswap_disk_groups[] = {
	&nswap_stat_group,
	NULL,
};

/* Account one round trip that started at @start_ns (ktime_get_ns()). */
void nswap_stats_latency(struct nswap_dev *dev, u64 start_ns)
{
	u64 us = div_u64(ktime_get_ns() - start_ns, NSEC_PER_USEC);
	unsigned int b = us < 2 ? 0 : ilog2(us);

	if (b >= NSWAP_LAT_BUCKETS)
		b = NSWAP_LAT_BUCKETS - 1;
	nswap_stat_inc(dev, lat[b]);
}
