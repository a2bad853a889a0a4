/* One memory process of W1..W4: write every page of a private anonymous
 * region (sequentially or in a keyed random permutation), then read every page
 * back (same order kind, other permutation) and check every byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "workload.h"

static uint64_t *page_ptr(void *mem, uint64_t idx)
{
	return (uint64_t *)((char *)mem + idx * WL_PAGE);
}

/* --inject-corruption: flip one byte in each of n evenly spread pages. */
static void inject_corruption(void *mem, const struct region_job *job)
{
	for (uint64_t j = 0; j < job->inject; j++) {
		uint64_t idx = j * job->pages / job->inject;
		uint64_t off = splitmix64(job->seed ^ idx ^ 0xc0ffeeULL) % WL_PAGE;
		((unsigned char *)page_ptr(mem, idx))[off] ^= 0xff;
	}
	msg("[proc %u] self-test: corrupted one byte in each of %llu pages", job->proc,
	    (unsigned long long)job->inject);
}

int region_run(const struct region_job *job, struct proc_result *res)
{
	size_t len = (size_t)job->pages * WL_PAGE;
	res->pages = job->pages;
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		char hb[32];
		snprintf(res->error, sizeof(res->error), "proc %u: mmap of %s failed: %s", job->proc,
			 human_bytes(len, hb, sizeof(hb)), strerror(errno));
		msg("%s", res->error);
		return WL_EXIT_FAILED;
	}
#ifdef MADV_NOHUGEPAGE
	/* Swap per 4 KiB page, not per huge page; harmless where THP is absent. */
	(void)madvise(mem, len, MADV_NOHUGEPAGE);
#endif
	const char *order = job->random ? "random" : "sequential";
	char hb[32], label[64];
	human_bytes(len, hb, sizeof(hb));
	unsigned printed = 0;
	unsigned char *seen = NULL; /* pages read in this pass (random order only) */
	int rc = WL_EXIT_OK;

	for (unsigned pass = 1; pass <= job->passes; pass++) {
		uint64_t key = stream_key(job->seed, job->proc, pass);
		uint64_t prev_key = stream_key(job->seed, job->proc, pass - 1);
		struct perm pm;
		struct progress pr;

		/* write phase */
		msg("[proc %u] pass %u: %s write of %llu pages (%s)", job->proc, pass, order,
		    (unsigned long long)job->pages, hb);
		snprintf(label, sizeof(label), "[proc %u] pass %u write", job->proc, pass);
		if (job->random)
			perm_init(&pm, job->pages, splitmix64(key ^ 0x77726974ULL)); /* "writ" */
		progress_start(&pr, job->progress, label, job->pages);
		double t0 = now_seconds();
		for (uint64_t i = 0; i < job->pages; i++) {
			uint64_t idx = job->random ? perm_at(&pm, i) : i;
			fill_page(page_ptr(mem, idx), page_base(key, idx));
			progress_tick(&pr, i + 1);
		}
		res->write_seconds += now_seconds() - t0;

		if (pass == job->passes && job->inject > 0)
			inject_corruption(mem, job);

		/* read phase */
		msg("[proc %u] pass %u: %s read and verify of %llu pages", job->proc, pass, order,
		    (unsigned long long)job->pages);
		snprintf(label, sizeof(label), "[proc %u] pass %u read", job->proc, pass);
		if (job->random) {
			perm_init(&pm, job->pages, splitmix64(key ^ 0x72656164ULL)); /* "read" */
			/* Coverage check of the random order: one bit per page. */
			free(seen);
			seen = calloc(job->pages / 8 + 1, 1);
		}
		progress_start(&pr, job->progress, label, job->pages);
		t0 = now_seconds();
		for (uint64_t i = 0; i < job->pages; i++) {
			uint64_t idx = job->random ? perm_at(&pm, i) : i;
			if (seen != NULL) {
				if (idx >= job->pages || (seen[idx / 8] & (1u << (idx % 8))) != 0) {
					snprintf(res->error, sizeof(res->error),
						 "proc %u: internal error: random order repeats or "
						 "leaves page %llu",
						 job->proc, (unsigned long long)idx);
					msg("%s", res->error);
					rc = WL_EXIT_FAILED;
					break;
				}
				seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
			}
			const uint64_t *p = page_ptr(mem, idx);
			uint64_t base = page_base(key, idx);
			if (page_differs(p, base)) {
				struct page_diff d;
				page_diff_count(p, base, &d);
				res->mismatched_pages++;
				res->mismatched_bytes += d.bytes;
				if (printed < WL_MAX_REPORT) {
					char kind[96];
					printed++;
					msg("[proc %u] MISMATCH pass %u page %llu word %u: expected "
					    "0x%016llx, found 0x%016llx (%u bytes differ; %s)",
					    job->proc, pass, (unsigned long long)idx, d.first,
					    (unsigned long long)d.expected, (unsigned long long)d.actual,
					    d.bytes,
					    page_diff_kind(p, &d, page_base(prev_key, idx), pass > 1,
							   kind, sizeof(kind)));
				}
			}
			res->bytes_verified += WL_PAGE;
			progress_tick(&pr, i + 1);
		}
		res->read_seconds += now_seconds() - t0;
		if (rc != WL_EXIT_OK)
			break;
	}
	free(seen);
	munmap(mem, len);
	if (rc != WL_EXIT_OK)
		return rc;

	if (res->mismatched_pages > 0) {
		msg("[proc %u] %llu mismatched pages, %llu mismatched bytes", job->proc,
		    (unsigned long long)res->mismatched_pages,
		    (unsigned long long)res->mismatched_bytes);
		return WL_EXIT_MISMATCH;
	}
	return WL_EXIT_OK;
}
