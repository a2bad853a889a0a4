// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* The elastic cache; see elastic.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "elastic.h"
#include "log.h"
#include "nswap_proto.h"

#define MIB(b)	((unsigned long long)((b) >> 20))

void elastic_init(struct elastic *e, const struct config *cfg, struct cache *c)
{
	uint64_t start = cfg->elastic_step / NSWAP_PAGE_SIZE;

	memset(e, 0, sizeof(*e));
	snprintf(e->meminfo, sizeof(e->meminfo), "%s", cfg->meminfo_file);
	snprintf(e->pressure, sizeof(e->pressure), "%s", cfg->pressure_file);
	e->reserve = cfg->elastic_reserve;
	e->step = cfg->elastic_step;
	e->psi = cfg->elastic_psi;
	e->stall = -1;
	cache_set_limit(c, start < c->capacity ? (start ? start : 1) : c->capacity);
	c->release_freed = 1;	/* freed pages go back to the node */
}

/* MemAvailable in bytes; -1 (errno set) when the file or the line is missing. */
static int read_avail(const char *path, uint64_t *bytes)
{
	char line[256];
	unsigned long long kb;
	FILE *f = fopen(path, "re");
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
	fclose(f);
	if (!found) {
		errno = ENODATA;
		return -1;
	}
	*bytes = (uint64_t)kb << 10;
	return 0;
}

/* "some avg10=X.XX ..." in percent; -1 (errno set) when missing. */
static int read_stall(const char *path, double *pct)
{
	char line[256];
	FILE *f = fopen(path, "re");
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "some avg10=%lf", pct) == 1;
	fclose(f);
	if (!found) {
		errno = ENODATA;
		return -1;
	}
	return 0;
}

/* Log a read failure once, and its end. */
static int reading(int rc, int *failing, const char *what, const char *path, const char *effect)
{
	if (rc != 0 && !*failing)
		log_msg(L_WARN, "elastic: cannot read %s from %s: %s; %s", what, path,
			errno == ENODATA ? "no such line" : strerror(errno), effect);
	else if (rc == 0 && *failing)
		log_msg(L_INFO, "elastic: %s readable again from %s", what, path);
	*failing = rc != 0;
	return rc;
}

int elastic_tick(struct elastic *e, struct cache *c)
{
	uint32_t limit = cache_limit(c), used = cache_used(c);
	uint64_t step = e->step / NSWAP_PAGE_SIZE, want = limit, room;
	const char *why = NULL;
	char because[160];

	e->ticks++;
	if (reading(read_avail(e->meminfo, &e->avail), &e->meminfo_failing, "MemAvailable",
		    e->meminfo, "the cache limit stays where it is") != 0)
		return 0;
	e->stall = -1;
	if (e->pressure[0])
		reading(read_stall(e->pressure, &e->stall), &e->pressure_failing,
			"the memory stall (PSI)", e->pressure, "deciding on MemAvailable alone");
	/* Room promised but not used yet costs nothing now, and MemAvailable
	 * does not see it: count it as spent before growing further. */
	room = (uint64_t)(limit > used ? limit - used : 0) * NSWAP_PAGE_SIZE;
	if (e->avail < e->reserve || e->stall > e->psi) {
		uint64_t short_pages = e->avail < e->reserve ?
			(e->reserve - e->avail + NSWAP_PAGE_SIZE - 1) / NSWAP_PAGE_SIZE : 0;
		uint64_t cut = short_pages > step ? short_pages : step;
		uint64_t base = used < limit ? used : limit;

		/* from what is used: no new page is taken at once, and what is
		 * above the limit is what would have to move elsewhere */
		want = base > cut ? base - cut : 1;
		if (e->avail < e->reserve)
			snprintf(because, sizeof(because), "MemAvailable %llu MiB is below the "
				 "reserve %llu MiB", MIB(e->avail), MIB(e->reserve));
		else
			snprintf(because, sizeof(because), "memory stall %.2f%% is above %.2f%%",
				 e->stall, e->psi);
		why = because;
		e->last_shrink = e->ticks;
	} else if (limit < c->capacity && e->avail >= room &&
		   e->avail - room >= e->reserve + e->step + e->step / 2 &&
		   e->stall < e->psi / 2 &&
		   (!e->last_shrink || e->ticks - e->last_shrink >= ELASTIC_HOLD_TICKS)) {
		want = limit + step < c->capacity ? limit + step : c->capacity;
		snprintf(because, sizeof(because), "MemAvailable %llu MiB, reserve %llu MiB",
			 MIB(e->avail), MIB(e->reserve));
		why = because;
	}
	if (want == limit || cache_set_limit(c, want) != 0)
		return 0;
	if (want < limit)
		e->shrinks++;
	else
		e->grows++;
	log_msg(L_INFO, "elastic: cache limit %u -> %" PRIu64 " pages (%s; %u in use%s)", limit,
		want, why, used, used > want ? ", kept: new pages are refused until use falls" : "");
	return 1;
}
