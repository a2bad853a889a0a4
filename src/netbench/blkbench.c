/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* blkbench: timed O_DIRECT I/O on a block device.
 *
 *   blkbench write DEV [--bs B] [--count N] [--offset BYTES] [--seed S] [--jobs J]
 *                      [--time-limit S]
 *   blkbench read  DEV [--bs B] [--count N] [--offset BYTES] [--span BYTES] [--random]
 *                      [--seed S] [--jobs J] [--time-limit S] [--no-verify]
 *
 * write: --count sequential pwrite()s of --bs bytes from --offset.
 * read:  --count pread()s of --bs bytes; sequential from --offset, or with
 *        --random at bs-aligned offsets in [offset, offset + span).
 * The file is opened O_DIRECT, so each request is one trip through the
 * block driver, and each process has one request outstanding: --jobs 1
 * (the default) is queue depth 1 as far as the application goes (a request
 * of bs > 4 KiB still carries bs/4 KiB pages in flight inside the driver);
 * --jobs J forks J processes, request i going to process i % J: queue
 * depth J.
 *
 * Each 4 KiB block is filled with a pattern derived from its device offset
 * and --seed, so reads of blocks written with the same seed are verified
 * (mismatched_blocks in the output).  Every request is timed on its own;
 * one line of JSON gives the latency distribution and the throughput over
 * busy_s: for one job the sum of the request times (the pattern generation
 * between requests excluded), for several the time from the first job's
 * start to the last completion.
 *
 * Bounded: --count (default 1000, at most 10^8), --time-limit (default 60 s),
 * offsets checked against the device size.  Exit status 0, 1 I/O or setup
 * error, 2 usage, 3 a block read back differs.  A benchmark, not a test. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numbers.h"

#define BLK 4096U
#define MAX_BS (16U << 20)
#define MAX_JOBS 64

struct bb_opts {
	const char *op, *dev;
	uint64_t bs, count, offset, span, seed;
	unsigned int jobs;
	double time_limit;
	int random, verify;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill_block(unsigned char *p, uint64_t off, uint64_t seed)
{
	uint64_t x = (off / BLK) * 0x9e3779b97f4a7c15ULL ^ seed ^ 0xbf58476d1ce4e5b9ULL;

	x |= 1;
	memcpy(p, &off, sizeof(off)); /* the block's own offset first: misplacement shows */
	for (size_t i = 8; i < BLK; i += 8) {
		uint64_t v = xorshift(&x);

		memcpy(p + i, &v, sizeof(v));
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blkbench write DEV [--bs B] [--count N] [--offset BYTES] [--seed S]\n"
		"                          [--jobs J] [--time-limit S]\n"
		"       blkbench read  DEV [--bs B] [--count N] [--offset BYTES] [--span BYTES]\n"
		"                          [--random] [--seed S] [--jobs J] [--time-limit S]\n"
		"                          [--no-verify]\n"
		"  --bs: request size, a multiple of 4096 (default 4096, suffixes K/M)\n"
		"  --count: requests in total (default 1000); --time-limit: stop after S s\n"
		"           (default 60)\n"
		"  --span: region for --random reads (default bs * count)\n"
		"  --jobs: processes issuing requests at once (default 1, at most 64); job j\n"
		"          takes every request i with i %% J == j\n");
}

/* What each job leaves in the shared area. */
struct job_res {
	uint64_t n, sum_ns, mismatched, first_ns, last_ns;
	int failed;
};

/* One job: requests i = j, j + jobs, ...; latencies into ns[i]. */
static void job(const struct bb_opts *o, int write_op, unsigned int j, unsigned int jobs,
		uint64_t slots, uint64_t deadline, uint64_t *ns, struct job_res *res)
{
	uint64_t x = (o->seed + j) * 0x2545f4914f6cdd1dULL + 88172645463325252ULL;
	unsigned char *buf, expect[BLK];
	int fd;

	res->first_ns = now_ns();
	fd = open(o->dev, (write_op ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign((void **)&buf, BLK, o->bs) != 0) {
		fprintf(stderr, "blkbench: open %s: %s\n", o->dev, strerror(errno));
		res->failed = 1;
		return;
	}
	for (uint64_t i = j; i < o->count; i += jobs) {
		uint64_t off, a, b;
		ssize_t r;

		if ((res->n & 15) == 0 && now_ns() >= deadline)
			break;
		off = o->offset + (o->random ? xorshift(&x) % slots : i) * o->bs;
		if (write_op)
			for (uint64_t k = 0; k < o->bs; k += BLK)
				fill_block(buf + k, off + k, o->seed);
		a = now_ns();
		r = write_op ? pwrite(fd, buf, o->bs, (off_t)off) : pread(fd, buf, o->bs, (off_t)off);
		b = now_ns();
		if (r != (ssize_t)o->bs) {
			fprintf(stderr, "blkbench: %s of %llu bytes at %llu: %s\n", o->op,
				(unsigned long long)o->bs, (unsigned long long)off,
				r < 0 ? strerror(errno) : "short transfer");
			res->failed = 1;
			break;
		}
		if (!write_op && o->verify)
			for (uint64_t k = 0; k < o->bs; k += BLK) {
				fill_block(expect, off + k, o->seed);
				if (memcmp(expect, buf + k, BLK) != 0 && res->mismatched++ < 5)
					fprintf(stderr, "blkbench: block at %llu differs\n",
						(unsigned long long)(off + k));
			}
		ns[res->n * jobs + j] = b - a;
		res->n++;
		res->sum_ns += b - a;
		res->last_ns = b;
	}
	close(fd);
	free(buf);
}

static int run(const struct bb_opts *o)
{
	int write_op = !strcmp(o->op, "write"), failed = 0;
	uint64_t devsize = 0, *ns, *all, n = 0, sum = 0, mismatched = 0, slots, deadline;
	uint64_t first = UINT64_MAX, last = 0;
	struct job_res *res;
	struct stat st;
	size_t shared;
	void *area;
	int fd;

	fd = open(o->dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "blkbench: open %s: %s\n", o->dev, strerror(errno));
		return 1;
	}
	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode))
		ioctl(fd, BLKGETSIZE64, &devsize);
	else if (fstat(fd, &st) == 0)
		devsize = (uint64_t)st.st_size;
	close(fd);
	slots = o->random ? o->span / o->bs : o->count;
	if (slots == 0 || o->offset + slots * o->bs > devsize) {
		fprintf(stderr, "blkbench: region %llu+%llu bytes is outside %s (%llu bytes)\n",
			(unsigned long long)o->offset, (unsigned long long)(slots * o->bs),
			o->dev, (unsigned long long)devsize);
		return 2;
	}
	/* Latencies and per-job results live in shared memory: the jobs are processes. */
	shared = o->count * sizeof(*ns) + o->jobs * sizeof(*res);
	area = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	all = malloc(o->count * sizeof(*all));
	if (area == MAP_FAILED || !all) {
		fprintf(stderr, "blkbench: out of memory\n");
		return 1;
	}
	ns = area;
	res = (struct job_res *)(ns + o->count);
	deadline = now_ns() + (uint64_t)(o->time_limit * 1e9);
	if (o->jobs == 1) {
		job(o, write_op, 0, 1, slots, deadline, ns, res);
	} else {
		pid_t pids[MAX_JOBS];

		fflush(NULL);
		for (unsigned int j = 0; j < o->jobs; j++) {
			pids[j] = fork();
			if (pids[j] == 0) {
				job(o, write_op, j, o->jobs, slots, deadline, ns, &res[j]);
				_exit(0);
			}
			if (pids[j] < 0)
				res[j].failed = 1;
		}
		for (unsigned int j = 0; j < o->jobs; j++)
			if (pids[j] > 0 && waitpid(pids[j], NULL, 0) < 0)
				res[j].failed = 1;
	}
	for (unsigned int j = 0; j < o->jobs; j++) {
		failed |= res[j].failed;
		for (uint64_t k = 0; k < res[j].n; k++)
			all[n++] = ns[k * o->jobs + j];
		sum += res[j].sum_ns;
		mismatched += res[j].mismatched;
		if (res[j].n && res[j].first_ns < first)
			first = res[j].first_ns;
		if (res[j].last_ns > last)
			last = res[j].last_ns;
	}
	munmap(area, shared);
	if (failed || n == 0) {
		if (!failed)
			fprintf(stderr, "blkbench: no request within the time limit\n");
		free(all);
		return 1;
	}
	{
		/* busy: the time requests were outstanding.  One job: the sum of request
		 * times (the pattern generation between requests excluded); several: from
		 * the first job's start to the last completion. */
		double busy = o->jobs == 1 ? (double)sum / 1e9 : (double)(last - first) / 1e9;
		double bytes = (double)(n * o->bs);

		qsort(all, n, sizeof(*all), cmp_u64);
		printf("{\"op\": \"%s\", \"bs\": %llu, \"jobs\": %u, \"count\": %llu, "
		       "\"random\": %s, \"truncated\": %s, \"bytes\": %llu, \"busy_s\": %.3f, "
		       "\"mb_per_s\": %.2f, \"iops\": %.0f, \"pages_per_s\": %.0f, "
		       "\"min_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
		       "\"max_us\": %.1f, \"mean_us\": %.1f, \"verified\": %s, "
		       "\"mismatched_blocks\": %llu}\n",
		       o->op, (unsigned long long)o->bs, o->jobs, (unsigned long long)n,
		       o->random ? "true" : "false", n < o->count ? "true" : "false",
		       (unsigned long long)(n * o->bs), busy, bytes / busy / 1e6,
		       (double)n / busy, bytes / BLK / busy, all[0] / 1e3, all[n / 2] / 1e3,
		       all[n * 90 / 100] / 1e3, all[n * 99 / 100] / 1e3, all[n - 1] / 1e3,
		       (double)sum / (double)n / 1e3,
		       !write_op && o->verify ? "true" : "false", (unsigned long long)mismatched);
	}
	free(all);
	return mismatched ? 3 : 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "bs", required_argument, NULL, 'b' },
		{ "count", required_argument, NULL, 'n' },
		{ "offset", required_argument, NULL, 'o' },
		{ "span", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "random", no_argument, NULL, 'r' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bb_opts o = {
		.bs = BLK, .count = 1000, .seed = 1, .jobs = 1, .time_limit = 60, .verify = 1,
	};
	uint64_t v;
	int opt, idx = 0;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "read") && strcmp(argv[1], "write"))) {
		usage(stderr);
		return 2;
	}
	o.op = argv[1];
	o.dev = argv[2];
	optind = 3;
	while ((opt = getopt_long(argc, argv, "h", lopts, &idx)) != -1) {
		switch (opt) {
		case 'b':
			if (parse_u64(optarg, BLK, MAX_BS, &o.bs) || o.bs % BLK) goto bad;
			break;
		case 'n':
			if (parse_u64(optarg, 1, 100000000, &o.count)) goto bad;
			break;
		case 'o':
			if (parse_u64(optarg, 0, 1ULL << 50, &o.offset) || o.offset % BLK) goto bad;
			break;
		case 's':
			if (parse_u64(optarg, BLK, 1ULL << 50, &o.span)) goto bad;
			break;
		case 'S':
			if (parse_u64(optarg, 0, UINT64_MAX, &o.seed)) goto bad;
			break;
		case 't':
			if (parse_u64(optarg, 1, 86400, &v)) goto bad;
			o.time_limit = (double)v;
			break;
		case 'j':
			if (parse_u64(optarg, 1, MAX_JOBS, &v)) goto bad;
			o.jobs = (unsigned int)v;
			break;
		case 'r': o.random = 1; break;
		case 'V': o.verify = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!o.span)
		o.span = o.bs * o.count;
	return run(&o);
bad:
	fprintf(stderr, "blkbench: bad value '%s' for --%s\n", optarg, lopts[idx].name);
	usage(stderr);
	return 2;
}
