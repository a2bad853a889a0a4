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
#include <linux/sysfs.h>

#include "nswap.h"

static struct nswap_stats *dev_to_stats(struct device *d)
{
	return &nswap_dev_from_disk(dev_to_disk(d))->stats;
}

/* A counter file: the atomic64_t at @offset in struct nswap_stats. */
struct nswap_stat_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t nswap_stat_show(struct device *d,
			       struct device_attribute *attr, char *buf)
{
	struct nswap_stat_attr *sa = container_of(attr, struct nswap_stat_attr,
						  attr);
	atomic64_t *v = (void *)dev_to_stats(d) + sa->offset;

	return sysfs_emit(buf, "%lld\n", atomic64_read(v));
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
};

static ssize_t inflight_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&dev_to_stats(d)->inflight));
}
static DEVICE_ATTR_RO(inflight);

static ssize_t latency_hist_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	struct nswap_stats *st = dev_to_stats(d);
	int len = 0;
	int i;

	for (i = 0; i < NSWAP_LAT_BUCKETS; i++)
		len += sysfs_emit_at(buf, len, "%llu %lld\n",
				     i ? 1ULL << i : 0ULL,
				     atomic64_read(&st->lat[i]));
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
	&dev_attr_inflight.attr,
	&dev_attr_latency_hist.attr,
	NULL,
};
/* every counter of the list above has its file (reconnects once had none) */
static_assert(ARRAY_SIZE(nswap_stat_attrs) ==
	      ARRAY_SIZE(nswap_stat_attr_list) + 3);

static const struct attribute_group nswap_stat_group = {
	.name	= "nswap",
	.attrs	= nswap_stat_attrs,
};

const struct attribute_group *nswap_disk_groups[] = {
	&nswap_stat_group,
	NULL,
};

/* Account one round trip that started at @start_ns (ktime_get_ns()). */
void nswap_stats_latency(struct nswap_stats *st, u64 start_ns)
{
	u64 us = div_u64(ktime_get_ns() - start_ns, NSEC_PER_USEC);
	unsigned int b = us < 2 ? 0 : ilog2(us);

	if (b >= NSWAP_LAT_BUCKETS)
		b = NSWAP_LAT_BUCKETS - 1;
	atomic64_inc(&st->lat[b]);
}
