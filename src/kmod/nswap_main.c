// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap - network swap block device (a modern rebuild of Nswap, Newhall et
 * al., Euro-Par 2003): /dev/nswapN stores its 4 KiB pages in the memory of
 * remote servers (nswapd) over kernel TCP.
 *
 * This file: module parameters, init/exit and the configfs interface
 *
 *   /sys/kernel/config/nswap/<name>/
 *	size			bytes, multiple of 4096 (K/M/G suffixes)
 *	servers			read: "addr:port state" lines;
 *				write: "add ADDR:PORT" / "del ADDR:PORT"
 *	connections_per_server	1..16
 *	timeout_ms		per-request timeout, 100..3600000
 *	retries			reissues before a request fails, 0..100
 *	client_id		64-bit id the servers file our pages under
 *	power			1: create /dev/nswapN, 0: remove it
 *	index			N (read-only)
 *
 * See docs/kmod.md for the full description.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bits.h>
#include <linux/blkdev.h>
#include <linux/configfs.h>
#include <linux/ctype.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "nswap.h"
#include "nswap_compat.h"

#define NSWAP_MAX_SIZE		BIT_ULL(44)	/* 16 TiB: 32-bit slot numbers */

unsigned int nswap_conns_per_server = 2;
module_param_named(connections_per_server, nswap_conns_per_server, uint,
		   0444);
MODULE_PARM_DESC(connections_per_server,
		 "Default TCP connections per server for new devices (1-16, default 2)");

unsigned int nswap_timeout_ms = 10000;
module_param_named(timeout_ms, nswap_timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms,
		 "Default per-request timeout in ms for new devices (100-3600000, default 10000)");

unsigned int nswap_max_retries = 3;
module_param_named(max_retries, nswap_max_retries, uint, 0444);
MODULE_PARM_DESC(max_retries,
		 "Default reissues of a failed request before it fails (0-100, default 3)");

unsigned int nswap_queue_depth = 128;
module_param_named(queue_depth, nswap_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "blk-mq queue depth (1-1024, default 128)");

/*
 * One hardware queue per CPU by default: a CPU that swaps issues on its own
 * queue (its own tags, its own dispatch), and each queue prefers its own
 * connection to a server (nswap_server_pick_conn), as nbd gives each
 * connection a queue.  0 is resolved at power on (NSWAP_DEFAULT_HW_QUEUES).
 */
unsigned int nswap_hw_queues;
module_param_named(hw_queues, nswap_hw_queues, uint, 0444);
MODULE_PARM_DESC(hw_queues,
		 "blk-mq hardware queues per device (0: one per online CPU at power on, at most 16, default; 1-256)");

unsigned int nswap_connect_timeout_ms = 3000;
module_param_named(connect_timeout_ms, nswap_connect_timeout_ms, uint, 0444);
MODULE_PARM_DESC(connect_timeout_ms,
		 "TCP connect and HELLO timeout in ms (100-60000, default 3000)");

unsigned int nswap_reconnect_max_ms = 5000;
module_param_named(reconnect_max_ms, nswap_reconnect_max_ms, uint, 0444);
MODULE_PARM_DESC(reconnect_max_ms,
		 "Longest back-off between reconnect attempts in ms (100-600000, default 5000)");

/*
 * A server's room as its last PUTPAGE reply told it (NSWAP_FEAT_FREE_HINT)
 * is placed by for this long, nswapd's gossip hint after: gossip's figure
 * is rounds old when it arrives (about 2 at 100 nodes, 1 s rounds), the
 * reply's counts every page stored up to it (docs/placement.md).
 */
unsigned int nswap_reply_hint_ms = 2000;
module_param_named(reply_hint_ms, nswap_reply_hint_ms, uint, 0444);
MODULE_PARM_DESC(reply_hint_ms,
		 "Place by the room a server's PUTPAGE reply reported for this long in ms, by nswapd's hint after (0: never; 0-60000, default 2000)");

struct workqueue_struct *nswap_wq;
/* disk fallback I/O (nswap_backing.c): apart from nswap_wq, whose invalidate
 * work may wait on a stalled server's socket, so that under memory pressure
 * the rescuer of one never waits behind the other */
struct workqueue_struct *nswap_backing_wq;
int nswap_major;
static DEFINE_IDA(nswap_index_ida);

static struct nswap_dev *to_nswap_dev(struct config_item *item)
{
	return container_of(item, struct nswap_dev, item);
}

/* Copy a configfs write into @buf without surrounding whitespace. */
static int nswap_copy_arg(char *buf, size_t size, const char *page,
			  size_t count)
{
	char *s;

	if (count >= size)
		return -EINVAL;
	memcpy(buf, page, count);
	buf[count] = '\0';
	s = strim(buf);
	memmove(buf, s, strlen(s) + 1);
	return 0;
}

static int nswap_parse_uint(const char *attr, const char *page,
			    unsigned int min, unsigned int max,
			    unsigned int *val)
{
	unsigned int v;

	if (kstrtouint(page, 0, &v) || v < min || v > max) {
		pr_warn("%s: expected an integer from %u to %u\n", attr, min,
			max);
		return -EINVAL;
	}
	*val = v;
	return 0;
}

/* ---- attributes ---- */

static ssize_t nswap_size_show(struct config_item *item, char *page)
{
	return sprintf(page, "%llu\n", to_nswap_dev(item)->size);
}

static ssize_t nswap_size_store(struct config_item *item, const char *page,
				size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	char buf[32];
	char *end;
	u64 size;
	int ret = count;

	if (nswap_copy_arg(buf, sizeof(buf), page, count) || !buf[0])
		goto bad;
	size = memparse(buf, &end);
	if (*end || !size || size % NSWAP_PAGE_SIZE || size > NSWAP_MAX_SIZE)
		goto bad;
	mutex_lock(&dev->cfg_lock);
	if (dev->powered) {
		pr_warn("nswap%d: size: cannot change while powered on\n",
			dev->index);
		ret = -EBUSY;
	} else {
		dev->size = size;
	}
	mutex_unlock(&dev->cfg_lock);
	return ret;
bad:
	pr_warn("size: expected bytes, a non-zero multiple of 4096 up to 16T (suffixes K, M, G, T), e.g. 1G\n");
	return -EINVAL;
}

static ssize_t nswap_servers_show(struct config_item *item, char *page)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	ssize_t len = 0;
	unsigned int i;

	mutex_lock(&dev->cfg_lock);
	for (i = 0; i < dev->nr_servers; i++) {
		struct nswap_server *srv = dev->servers[i];
		char line[160];
		int n;

		if (!srv)
			continue;
		if (srv->hinted)
			n = scnprintf(line, sizeof(line), "%s %s pages=%lld hint=%llu/%llu\n",
				      srv->name, nswap_server_state(srv),
				      (long long)atomic64_read(&srv->pages),
				      srv->hint_free, srv->hint_capacity);
		else
			n = scnprintf(line, sizeof(line), "%s %s pages=%lld\n",
				      srv->name, nswap_server_state(srv),
				      (long long)atomic64_read(&srv->pages));
		/* whole lines only: 64 long ones may not fit a page */
		if (len + n >= PAGE_SIZE)
			break;
		memcpy(page + len, line, n);
		len += n;
	}
	mutex_unlock(&dev->cfg_lock);
	return len;
}

static int nswap_server_find(struct nswap_dev *dev, const char *name)
{
	unsigned int i;

	for (i = 0; i < dev->nr_servers; i++)
		if (dev->servers[i] && !strcmp(dev->servers[i]->name, name))
			return i;
	return -1;
}

static int nswap_server_add(struct nswap_dev *dev,
			    const struct sockaddr_storage *ss, int addrlen,
			    const char *name)
{
	struct nswap_server *srv;
	unsigned int i;
	int err;

	if (nswap_server_find(dev, name) >= 0) {
		pr_warn("nswap%d: servers: %s is already configured\n",
			dev->index, name);
		return -EEXIST;
	}
	for (i = 0; i < NSWAP_MAX_SERVERS && dev->servers[i]; i++)
		;
	if (i == NSWAP_MAX_SERVERS) {
		pr_warn("nswap%d: servers: at most %d servers per device\n",
			dev->index, NSWAP_MAX_SERVERS);
		return -ENOSPC;
	}
	srv = nswap_server_alloc(dev, i, ss, addrlen, name);
	if (!srv)
		return -ENOMEM;
	if (dev->powered) {
		err = nswap_server_start(srv);
		if (err) {
			nswap_server_free(srv);
			return err;
		}
	}
	/* publish: request issue and the invalidate work read locklessly */
	smp_store_release(&dev->servers[i], srv);
	if (i >= dev->nr_servers)
		WRITE_ONCE(dev->nr_servers, i + 1);
	return 0;
}

static int nswap_server_del(struct nswap_dev *dev, const char *name)
{
	struct nswap_server *srv;
	int i = nswap_server_find(dev, name);

	if (i < 0) {
		pr_warn("nswap%d: servers: %s is not configured\n", dev->index,
			name);
		return -ENOENT;
	}
	if (dev->powered) {
		pr_warn("nswap%d: servers: del is refused while powered on (pages may live on %s); write 0 to power first\n",
			dev->index, name);
		return -EBUSY;
	}
	srv = dev->servers[i];
	WRITE_ONCE(dev->servers[i], NULL);
	while (dev->nr_servers && !dev->servers[dev->nr_servers - 1])
		dev->nr_servers--;
	nswap_server_free(srv);
	return 0;
}

/* "FREE CAPACITY" (pages, FREE <= CAPACITY) or "none" */
static int nswap_parse_hint(char *arg, bool *hinted, u64 *free, u64 *cap)
{
	char *f = strsep(&arg, " \t");

	if (!strcmp(f, "none") && !arg) {
		*hinted = false;
		*free = *cap = 0;
		return 0;
	}
	arg = arg ? skip_spaces(arg) : NULL;
	if (!arg || kstrtou64(f, 10, free) || kstrtou64(arg, 10, cap) ||
	    *free > *cap)
		return -EINVAL;
	*hinted = true;
	return 0;
}

static int nswap_server_hint(struct nswap_dev *dev, const char *name,
			     bool hinted, u64 free, u64 cap)
{
	struct nswap_server *srv;
	int i = nswap_server_find(dev, name);

	if (i < 0) {
		pr_warn("nswap%d: servers: hint for %s, which is not configured; add it first\n",
			dev->index, name);
		return -ENOENT;
	}
	srv = dev->servers[i];
	/* free first: a reader between the writes sees free <= its capacity
	 * only after nswap_hint_cand()'s clamp, which it always applies */
	WRITE_ONCE(srv->hint_free, free);
	WRITE_ONCE(srv->hint_capacity, cap);
	WRITE_ONCE(srv->hinted, hinted);
	/* nswapd says it has no room (full, left or dead): that wins over a
	 * reply figure, which a server on its way out would otherwise keep
	 * renewing with every page we send it */
	if (!free)
		WRITE_ONCE(srv->reply_at, 0);
	return 0;
}

static ssize_t nswap_servers_store(struct config_item *item,
				   const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	struct sockaddr_storage ss;
	char buf[128], name[64];
	enum { ADD, DEL, HINT } op;
	bool hinted = false;
	u64 free = 0, cap = 0;
	char *arg, *rest;
	int addrlen, err;

	if (nswap_copy_arg(buf, sizeof(buf), page, count))
		goto bad;
	if (!strncmp(buf, "add", 3) && isspace(buf[3]))
		op = ADD;
	else if (!strncmp(buf, "del", 3) && isspace(buf[3]))
		op = DEL;
	else if (!strncmp(buf, "hint", 4) && isspace(buf[4]))
		op = HINT;
	else
		goto bad;
	arg = skip_spaces(buf + (op == HINT ? 5 : 4));
	rest = arg;
	arg = strsep(&rest, " \t");
	if (op == HINT ? !rest || nswap_parse_hint(skip_spaces(rest), &hinted,
						   &free, &cap) :
			 rest != NULL)
		goto bad;
	if (nswap_parse_addr(arg, &ss, &addrlen, name, sizeof(name)))
		goto bad;

	mutex_lock(&dev->cfg_lock);
	if (op == ADD)
		err = nswap_server_add(dev, &ss, addrlen, name);
	else if (op == DEL)
		err = nswap_server_del(dev, name);
	else
		err = nswap_server_hint(dev, name, hinted, free, cap);
	mutex_unlock(&dev->cfg_lock);
	return err ? err : count;
bad:
	pr_warn("servers: expected \"add ADDR:PORT\", \"del ADDR:PORT\" or \"hint ADDR:PORT FREE CAPACITY\" (pages, FREE <= CAPACITY; \"none\" clears), ADDR an IPv4 address or an IPv6 address in [brackets], PORT 1-65535 (nswapd listens on %d)\n",
		NSWAP_DEFAULT_PORT);
	return -EINVAL;
}

static const char *const nswap_placement_names[] = {
	[NSWAP_PLACE_TWO_CHOICE] = "two-choice",
	[NSWAP_PLACE_ROUND_ROBIN] = "round-robin",
};

static ssize_t nswap_placement_show(struct config_item *item, char *page)
{
	return sprintf(page, "%s\n",
		       nswap_placement_names[READ_ONCE(to_nswap_dev(item)->placement)]);
}

static ssize_t nswap_placement_store(struct config_item *item,
				     const char *page, size_t count)
{
	int i = sysfs_match_string(nswap_placement_names, page);

	if (i < 0) {
		pr_warn("placement: expected two-choice (by the free pages nswapd hints, round robin without hints) or round-robin\n");
		return -EINVAL;
	}
	WRITE_ONCE(to_nswap_dev(item)->placement, i);
	return count;
}

static ssize_t nswap_connections_per_server_show(struct config_item *item,
						 char *page)
{
	return sprintf(page, "%u\n", to_nswap_dev(item)->conns_per_server);
}

static ssize_t nswap_connections_per_server_store(struct config_item *item,
						  const char *page,
						  size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	unsigned int v;
	int ret = count;

	if (nswap_parse_uint("connections_per_server", page, 1,
			     NSWAP_MAX_CONNS, &v))
		return -EINVAL;
	mutex_lock(&dev->cfg_lock);
	if (dev->powered) {
		pr_warn("nswap%d: connections_per_server: cannot change while powered on\n",
			dev->index);
		ret = -EBUSY;
	} else {
		dev->conns_per_server = v;
	}
	mutex_unlock(&dev->cfg_lock);
	return ret;
}

static ssize_t nswap_timeout_ms_show(struct config_item *item, char *page)
{
	return sprintf(page, "%u\n", to_nswap_dev(item)->timeout_ms);
}

static ssize_t nswap_timeout_ms_store(struct config_item *item,
				      const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	unsigned int v;

	if (nswap_parse_uint("timeout_ms", page, 100, 3600000, &v))
		return -EINVAL;
	mutex_lock(&dev->cfg_lock);
	WRITE_ONCE(dev->timeout_ms, v);
	if (dev->powered)
		nswap_dev_set_timeout(dev);
	mutex_unlock(&dev->cfg_lock);
	return count;
}

static ssize_t nswap_retries_show(struct config_item *item, char *page)
{
	return sprintf(page, "%u\n", to_nswap_dev(item)->max_retries);
}

static ssize_t nswap_retries_store(struct config_item *item,
				   const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	unsigned int v;

	if (nswap_parse_uint("retries", page, 0, 100, &v))
		return -EINVAL;
	WRITE_ONCE(dev->max_retries, v);
	return count;
}

static ssize_t nswap_migration_show(struct config_item *item, char *page)
{
	return sprintf(page, "%u\n", READ_ONCE(to_nswap_dev(item)->migration) ? 1 : 0);
}

static ssize_t nswap_migration_store(struct config_item *item,
				     const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	int ret = count;
	unsigned int v;

	if (nswap_parse_uint("migration", page, 0, 1, &v))
		return -EINVAL;
	mutex_lock(&dev->cfg_lock);
	if (dev->powered) {
		pr_warn("nswap%d: migration: cannot change while powered on\n",
			dev->index);
		ret = -EBUSY;
	} else {
		WRITE_ONCE(dev->migration, v);
	}
	mutex_unlock(&dev->cfg_lock);
	return ret;
}

static ssize_t nswap_backing_show(struct config_item *item, char *page)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	ssize_t n;

	mutex_lock(&dev->cfg_lock);
	n = sprintf(page, "%s\n", dev->backing_path);
	mutex_unlock(&dev->cfg_lock);
	return n;
}

/* A block device path, or nothing (a lone newline) for no backing device. */
static ssize_t nswap_backing_store(struct config_item *item,
				   const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	size_t len = strcspn(page, "\n"), i;
	int ret = count;

	for (i = 0; i < len; i++)
		if (isspace(page[i]))
			break;
	if (len >= NSWAP_BACKING_PATH_MAX || (len && page[0] != '/') ||
	    i < len || (page[len] && page[len + 1])) {
		pr_warn("backing: expected the absolute path of a block device (at most %d bytes, no spaces, one line), e.g. /dev/vdb, or an empty line for none\n",
			NSWAP_BACKING_PATH_MAX - 1);
		return -EINVAL;
	}
	mutex_lock(&dev->cfg_lock);
	if (dev->powered) {
		pr_warn("nswap%d: backing: cannot change while powered on\n",
			dev->index);
		ret = -EBUSY;
	} else {
		memcpy(dev->backing_path, page, len);
		dev->backing_path[len] = '\0';
	}
	mutex_unlock(&dev->cfg_lock);
	return ret;
}

static ssize_t nswap_sweep_interval_s_show(struct config_item *item,
					   char *page)
{
	return sprintf(page, "%u\n",
		       READ_ONCE(to_nswap_dev(item)->sweep_interval_s));
}

static ssize_t nswap_sweep_interval_s_store(struct config_item *item,
					    const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	unsigned int v;

	if (nswap_parse_uint("sweep_interval_s", page, 0, 86400, &v))
		return -EINVAL;
	mutex_lock(&dev->cfg_lock);
	WRITE_ONCE(dev->sweep_interval_s, v);
	nswap_sweep_reschedule(dev);
	mutex_unlock(&dev->cfg_lock);
	return count;
}

static ssize_t nswap_client_id_show(struct config_item *item, char *page)
{
	return sprintf(page, "0x%016llx\n", to_nswap_dev(item)->client_id);
}

static ssize_t nswap_client_id_store(struct config_item *item,
				     const char *page, size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	int ret = count;
	u64 v;

	if (kstrtou64(page, 0, &v) || !v) {
		pr_warn("client_id: expected a non-zero 64-bit integer, e.g. 0x1234abcd\n");
		return -EINVAL;
	}
	mutex_lock(&dev->cfg_lock);
	if (dev->powered) {
		pr_warn("nswap%d: client_id: cannot change while powered on\n",
			dev->index);
		ret = -EBUSY;
	} else {
		dev->client_id = v;
	}
	mutex_unlock(&dev->cfg_lock);
	return ret;
}

static ssize_t nswap_power_show(struct config_item *item, char *page)
{
	return sprintf(page, "%d\n", to_nswap_dev(item)->powered);
}

static int nswap_power_on(struct nswap_dev *dev);

static ssize_t nswap_power_store(struct config_item *item, const char *page,
				 size_t count)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	bool on;
	int err = 0;

	if (kstrtobool(page, &on)) {
		pr_warn("power: expected 1 (create /dev/nswapN) or 0 (remove it)\n");
		return -EINVAL;
	}
	mutex_lock(&dev->cfg_lock);
	if (on && !dev->powered) {
		err = nswap_power_on(dev);
	} else if (!on && dev->powered) {
		err = nswap_dev_power_off(dev);
		if (!err && dev->depended) {
			configfs_undepend_item_unlocked(&dev->item);
			dev->depended = false;
		}
	}
	mutex_unlock(&dev->cfg_lock);
	return err ? err : count;
}

static ssize_t nswap_index_show(struct config_item *item, char *page)
{
	return sprintf(page, "%d\n", to_nswap_dev(item)->index);
}

CONFIGFS_ATTR(nswap_, size);
CONFIGFS_ATTR(nswap_, servers);
CONFIGFS_ATTR(nswap_, connections_per_server);
CONFIGFS_ATTR(nswap_, timeout_ms);
CONFIGFS_ATTR(nswap_, retries);
CONFIGFS_ATTR(nswap_, client_id);
CONFIGFS_ATTR(nswap_, power);
CONFIGFS_ATTR(nswap_, placement);
CONFIGFS_ATTR(nswap_, migration);
CONFIGFS_ATTR(nswap_, backing);
CONFIGFS_ATTR(nswap_, sweep_interval_s);
CONFIGFS_ATTR_RO(nswap_, index);

static struct configfs_attribute *nswap_dev_attrs[] = {
	&nswap_attr_size,
	&nswap_attr_servers,
	&nswap_attr_connections_per_server,
	&nswap_attr_timeout_ms,
	&nswap_attr_retries,
	&nswap_attr_client_id,
	&nswap_attr_power,
	&nswap_attr_placement,
	&nswap_attr_migration,
	&nswap_attr_backing,
	&nswap_attr_sweep_interval_s,
	&nswap_attr_index,
	NULL,
};

/* ---- items ---- */

static void nswap_item_release(struct config_item *item)
{
	struct nswap_dev *dev = to_nswap_dev(item);
	unsigned int i;

	for (i = 0; i < NSWAP_MAX_SERVERS; i++)
		nswap_server_free(dev->servers[i]);
	ida_free(&nswap_index_ida, dev->index);
	free_percpu(dev->stats);
	kfree(dev);
}

static struct configfs_item_operations nswap_dev_item_ops = {
	.release	= nswap_item_release,
};

static const struct config_item_type nswap_dev_type = {
	.ct_item_ops	= &nswap_dev_item_ops,
	.ct_attrs	= nswap_dev_attrs,
	.ct_owner	= THIS_MODULE,
};

/* An item named "nswapN" gets /dev/nswapN if N is free. */
static int nswap_alloc_index(const char *name)
{
	unsigned int n;

	if (!strncmp(name, "nswap", 5) && !kstrtouint(name + 5, 10, &n) &&
	    n < NSWAP_MAX_DEVICES) {
		int ret = ida_alloc_range(&nswap_index_ida, n, n, GFP_KERNEL);

		if (ret >= 0)
			return ret;
	}
	return ida_alloc_max(&nswap_index_ida, NSWAP_MAX_DEVICES - 1,
			     GFP_KERNEL);
}

static struct config_item *nswap_make_item(struct config_group *group,
					   const char *name)
{
	struct nswap_dev *dev;
	int index;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	dev->stats = alloc_percpu(struct nswap_stats);
	if (!dev->stats) {
		kfree(dev);
		return ERR_PTR(-ENOMEM);
	}
	index = nswap_alloc_index(name);
	if (index < 0) {
		free_percpu(dev->stats);
		kfree(dev);
		return ERR_PTR(index);
	}
	dev->index = index;
	mutex_init(&dev->cfg_lock);
	spin_lock_init(&dev->open_lock);
	init_rwsem(&dev->home_rwsem);
	spin_lock_init(&dev->inval_lock);
	dev->conns_per_server = nswap_conns_per_server;
	dev->timeout_ms = nswap_timeout_ms;
	dev->max_retries = nswap_max_retries;
	do {
		dev->client_id = get_random_u64();
	} while (!dev->client_id);
	config_item_init_type_name(&dev->item, name, &nswap_dev_type);
	return &dev->item;
}

static void nswap_drop_item(struct config_group *group,
			    struct config_item *item)
{
	struct nswap_dev *dev = to_nswap_dev(item);

	/*
	 * Cannot normally be powered here: power on takes a configfs
	 * dependency on the item, so rmdir fails with EBUSY until power off.
	 */
	mutex_lock(&dev->cfg_lock);
	if (dev->powered)
		WARN_ON(nswap_dev_power_off(dev));
	mutex_unlock(&dev->cfg_lock);
	config_item_put(item);
}

static struct configfs_group_operations nswap_group_ops = {
	.make_item	= nswap_make_item,
	.drop_item	= nswap_drop_item,
};

static const struct config_item_type nswap_group_type = {
	.ct_group_ops	= &nswap_group_ops,
	.ct_owner	= THIS_MODULE,
};

static struct configfs_subsystem nswap_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf	= "nswap",
			.ci_type	= &nswap_group_type,
		},
	},
};

/* cfg_lock held */
static int nswap_power_on(struct nswap_dev *dev)
{
	unsigned int i, n = 0;
	int err;

	for (i = 0; i < dev->nr_servers; i++)
		n += !!dev->servers[i];
	if (!n) {
		pr_warn("nswap%d: power: add a server first, e.g. echo \"add 10.0.0.2:%d\" > servers\n",
			dev->index, NSWAP_DEFAULT_PORT);
		return -EINVAL;
	}
	if (!dev->size) {
		pr_warn("nswap%d: power: set size first, e.g. echo 1G > size\n",
			dev->index);
		return -EINVAL;
	}
	/* while powered on, rmdir of the item fails with EBUSY */
	err = configfs_depend_item_unlocked(&nswap_subsys, &dev->item);
	if (err)
		return err;
	dev->depended = true;
	err = nswap_dev_power_on(dev);
	if (err) {
		configfs_undepend_item_unlocked(&dev->item);
		dev->depended = false;
	}
	return err;
}

/* ---- module ---- */

static void nswap_check_param(const char *name, unsigned int *v,
			      unsigned int min, unsigned int max,
			      unsigned int def)
{
	if (*v >= min && *v <= max)
		return;
	pr_warn("%s=%u out of range %u-%u, using %u\n", name, *v, min, max,
		def);
	*v = def;
}

static int __init nswap_init(void)
{
	int err;

	BUILD_BUG_ON(PAGE_SIZE != NSWAP_PAGE_SIZE);
	BUILD_BUG_ON(NSWAP_MAX_FRAMES > 256);	/* 8-bit frame index in tags */

	nswap_check_param("connections_per_server", &nswap_conns_per_server,
			  1, NSWAP_MAX_CONNS, 2);
	nswap_check_param("timeout_ms", &nswap_timeout_ms, 100, 3600000,
			  10000);
	nswap_check_param("max_retries", &nswap_max_retries, 0, 100, 3);
	nswap_check_param("queue_depth", &nswap_queue_depth, 1, 1024, 128);
	nswap_check_param("hw_queues", &nswap_hw_queues, 0, NSWAP_MAX_HW_QUEUES,
			  0);
	nswap_check_param("connect_timeout_ms", &nswap_connect_timeout_ms,
			  100, 60000, 3000);
	nswap_check_param("reconnect_max_ms", &nswap_reconnect_max_ms, 100,
			  600000, 5000);
	nswap_check_param("reply_hint_ms", &nswap_reply_hint_ms, 0, 60000, 2000);

	err = nswap_wire_selftest();
	if (err)
		return err;

	nswap_wq = alloc_workqueue("nswap", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!nswap_wq)
		return -ENOMEM;
	nswap_backing_wq = alloc_workqueue("nswap_backing",
					   WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!nswap_backing_wq) {
		err = -ENOMEM;
		goto err_wq;
	}

	nswap_major = register_blkdev(0, "nswap");
	if (nswap_major < 0) {
		err = nswap_major;
		goto err_wq;
	}

	config_group_init(&nswap_subsys.su_group);
	mutex_init(&nswap_subsys.su_mutex);
	err = configfs_register_subsystem(&nswap_subsys);
	if (err) {
		pr_err("cannot register configfs subsystem: %d\n", err);
		goto err_blkdev;
	}
	pr_info("version %s loaded (protocol %d)\n", NSWAP_VERSION,
		NSWAP_PROTO_VERSION);
	return 0;

err_blkdev:
	unregister_blkdev(nswap_major, "nswap");
err_wq:
	if (nswap_backing_wq)
		destroy_workqueue(nswap_backing_wq);
	destroy_workqueue(nswap_wq);
	return err;
}

static void __exit nswap_exit(void)
{
	/* every item is gone: each one holds a module reference */
	configfs_unregister_subsystem(&nswap_subsys);
	unregister_blkdev(nswap_major, "nswap");
	destroy_workqueue(nswap_backing_wq);
	destroy_workqueue(nswap_wq);
	ida_destroy(&nswap_index_ida);
	pr_info("unloaded\n");
}

module_init(nswap_init);
module_exit(nswap_exit);

MODULE_AUTHOR("nswap project");
MODULE_DESCRIPTION("Network swap block device: swap to remote memory over TCP");
MODULE_LICENSE("GPL");
MODULE_VERSION(NSWAP_VERSION);
MODULE_SOFTDEP("pre: crc32c");
