/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The elastic cache (elastic = on): nswapd moves its cache limit with its
 * own node's memory needs, as the paper's Nswap cache grows and shrinks.
 *
 * Every elastic_interval it reads MemAvailable (/proc/meminfo) and the
 * memory pressure stall (PSI, /proc/pressure/memory, "some avg10"):
 *  - shrink when MemAvailable is below elastic_reserve or the stall is above
 *    elastic_psi percent: the limit drops to the pages in use (no new page
 *    is taken) less the shortfall, at least one elastic_step, down to one
 *    page;
 *  - grow by one elastic_step, up to cache_size, when MemAvailable, less the
 *    room already promised and not used yet ((limit - used) pages, which
 *    MemAvailable cannot see), is above the reserve by a step and a half
 *    (room for the step, and a margin so that one step's use does not
 *    shrink it again), the stall is below half
 *    the threshold, and the last shrink is at least ELASTIC_HOLD_TICKS ticks
 *    old (hysteresis: a node under pressure does not oscillate).
 * It starts at one step and grows from there while the node is idle.
 *
 * Pages freed while elastic are given back to the node (MADV_FREE), so a
 * shrunk cache's memory returns as its clients free their pages; a locked
 * cache (lock_memory) cannot, and is refused with elastic.
 *
 * Shrinking never drops a page: pages above the new limit stay readable
 * and the cache refuses new ones (ENOSPC, or takes them into `overflow`)
 * until use falls below it; the gossip entry announces the new limit and
 * no free page at once, so clients send their new pages elsewhere.  With
 * gossip on the pages over the limit move to another member (punt.h).
 *
 * With elastic on the limit is nswapd's own: SET_CACHE_LIMIT is refused.
 */
#ifndef NSWAPD_ELASTIC_H
#define NSWAPD_ELASTIC_H

#include <stdint.h>

#include "cache.h"
#include "config.h"

#define ELASTIC_HOLD_TICKS	10

struct elastic {
	char meminfo[CONFIG_PATH_MAX];
	char pressure[CONFIG_PATH_MAX];	/* "" = PSI not used */
	uint64_t reserve, step;		/* bytes */
	double psi;			/* percent, some avg10 */
	uint64_t ticks, last_shrink;	/* tick of the last shrink */
	int meminfo_failing, pressure_failing;
	uint64_t grows, shrinks;
	/* the last reading, for logs and STATUS */
	uint64_t avail;			/* bytes */
	double stall;			/* percent; -1 when not read */
};

/* Set up; the cache limit starts at one step (at most cache_size). */
void elastic_init(struct elastic *e, const struct config *cfg, struct cache *c);
/* One tick: read, decide, set the limit.  Returns 1 when it changed. */
int elastic_tick(struct elastic *e, struct cache *c);

#endif
