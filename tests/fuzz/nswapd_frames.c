// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Fuzz harness: nswapd's request path (frame cutting, header and payload
 * checks, every request type, range steps, turns, pages sent home) fed one
 * connection's byte stream, in process, against a small page cache (empty at
 * each input).
 *
 * Built two ways (tests/fuzz/Makefile):
 *  - libFuzzer (clang -fsanitize=fuzzer): LLVMFuzzerTestOneInput, coverage
 *    guided, for long runs by hand (tests/fuzz/README.md);
 *  - standalone (gcc, ASan + UBSan): main() replays a corpus and then runs a
 *    fixed number of seeded random mutations of it, for the test command.
 *
 * Input layout (so that mutations reach past the CRCs):
 *   byte 0        the connection: bit 0 from loopback (control requests
 *                 allowed), bit 1 an administrator (no HELLO due)
 *   then records  [control byte][56-byte header][payload], payload as long
 *                 as the header's length says (cut at the input's end);
 *                 control bit 0 keeps the header's hdr_crc, bit 1 the
 *                 payload's crc, as they are; otherwise the harness computes
 *                 them, as an honest sender would.
 * The connection is a socketpair; the harness writes the stream, reads and
 * drops the replies, and runs the loop's work (range steps, owed turns,
 * pages sent home) until nswapd has closed the connection or the stream is
 * done and every reply read.  A connection that neither finishes nor makes
 * progress within HANG_ROUNDS rounds is a hang: abort(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "conn.h"
#include "config.h"
#include "crc32c.h"
#include "frame.h"
#include "home.h"
#include "log.h"
#include "nswapd.h"
#include "request.h"

#define CACHE_PAGES	64	/* small: ENOSPC, limits and sends home are reachable */
#define HANG_ROUNDS	100000
#define STREAM_MAX	(1 << 20)

static struct server srv;
static struct loop *loop;

/* An empty cache for each input, hashed with a fixed key: an input replays the
 * same way every time (nswapd draws its key at random). */
static void fresh_cache(void)
{
	if (srv.cache.arena)
		cache_destroy(&srv.cache);
	if (cache_init(&srv.cache, CACHE_PAGES, 0, 0, 1) != 0) {
		perror("harness: cache_init");
		abort();
	}
	memset(&srv.cache.hash_key, 0x5a, sizeof(srv.cache.hash_key));
}

static void setup(void)
{
	struct config cfg;

	config_defaults(&cfg);
	cfg.cache_bytes = (uint64_t)CACHE_PAGES * NSWAP_PAGE_SIZE;
	cfg.max_clients = 16;
	memset(&srv, 0, sizeof(srv));
	srv.cfg = cfg;
	srv.lfd = srv.sfd = srv.epfd = srv.donefd = srv.elastic_tfd = -1;
	clock_gettime(CLOCK_MONOTONIC, &srv.started);
	log_set_level(getenv("NSWAPD_FUZZ_LOG") ? L_DEBUG : -1);
	if (followers_init(&srv.followers, cfg.max_clients) != 0 ||
	    admission_init(&srv.admission, 8, 8) != 0) {
		perror("harness setup");
		abort();
	}
	pthread_mutex_init(&srv.home_lock, NULL);
	atomic_store(&srv.home_ok, 1);	/* no gossip: pages over the limit go home */
	loop = aligned_alloc(64, sizeof(*loop));
	if (!loop)
		abort();
	memset(loop, 0, sizeof(*loop));
	loop->wake_src.kind = EV_WAKE;
	loop->srv = &srv;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->evfd = -1;
	pthread_mutex_init(&loop->qlock, NULL);
	if (loop->epfd < 0)
		abort();
	srv.nloops = 1;
	srv.loops = loop;
}

/* The byte stream the records describe, CRCs computed where asked. */
static size_t build_stream(const uint8_t *data, size_t size, unsigned char *out)
{
	size_t pos = 1, len = 0;

	while (pos + 1 + NSWAP_HDR_SIZE <= size && len + NSWAP_HDR_SIZE <= STREAM_MAX) {
		unsigned int ctl = data[pos++];
		unsigned char *hdr = out + len;
		size_t plen;

		memcpy(hdr, data + pos, NSWAP_HDR_SIZE);
		pos += NSWAP_HDR_SIZE;
		len += NSWAP_HDR_SIZE;
		plen = get_le32(hdr + 40);	/* length */
		if (plen > size - pos)
			plen = size - pos;
		if (plen > STREAM_MAX - len)
			plen = STREAM_MAX - len;
		memcpy(out + len, data + pos, plen);
		if (!(ctl & 2))
			put_le32(hdr + 44, crc32c(out + len, plen));	/* crc */
		if (!(ctl & 1))
			put_le32(hdr + 52, crc32c(hdr, 52));	/* hdr_crc */
		pos += plen;
		len += plen;
	}
	return len;
}

static void run_loop_work(void)
{
	if (loop->range_jobs)
		request_range_steps(loop);
	if (loop->yielded)
		conn_run_yielded(loop);
	if (loop->home_due || loop->home_waiting)
		home_fill(loop);
}

static void run_connection(unsigned int who, const unsigned char *stream, size_t len)
{
	static unsigned char sink[1 << 16];
	size_t sent = 0;
	int sv[2], shut = 0;
	struct conn *c;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	c = conn_alloc(sv[0], "fuzz-peer");
	if (!c)
		abort();
	c->local = who & 1;
	c->admin = (who >> 1) & 1;
	atomic_fetch_add(&loop->nconns, 1);
	atomic_fetch_add(&srv.nconns, 1);
	if (conn_attach(loop, c) != 0)
		abort();
	for (unsigned int round = 0; !c->dead; round++) {
		ssize_t n;
		int progress = 0;

		if (round == HANG_ROUNDS) {
			fprintf(stderr, "harness: the connection made no end in %d rounds "
				"(%zu of %zu bytes sent)\n", HANG_ROUNDS, sent, len);
			abort();
		}
		loop->range_budget = RANGE_STEP;	/* a round, as loop_main() starts one */
		if (sent < len) {
			n = write(sv[1], stream + sent, len - sent);
			if (n > 0) {
				sent += (size_t)n;
				progress = 1;
			}
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = 1;
		}
		conn_event(loop, c, EPOLLIN);
		while ((n = read(sv[1], sink, sizeof(sink))) > 0)
			progress = 1;
		run_loop_work();
		/* nothing moved, all sent, and nothing owed: nswapd waits for a
		 * frame's rest that never comes -- the close ends it */
		if (!progress && shut && !loop->range_jobs && !loop->yielded &&
		    !c->dead && c->rd_closed)
			break;
	}
	if (!c->dead)
		conn_close(loop, c, "harness: input done");
	while (read(sv[1], sink, sizeof(sink)) > 0)
		;
	close(sv[1]);
	conn_free_dead(loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char *stream;
	size_t len;

	if (!loop) {
		setup();
		stream = malloc(STREAM_MAX);
		if (!stream)
			abort();
	}
	if (size < 1)
		return 0;
	fresh_cache();
	len = build_stream(data, size, stream);
	run_connection(data[0], stream, len);
	return 0;
}

#ifndef NSWAPD_LIBFUZZER
/* --- the standalone driver: corpus, then seeded mutations ---------------- */

struct input {
	uint8_t *data;
	size_t size;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64: reproducible from the seed */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static int read_file(const char *path, struct input *in)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return -1;
	}
	in->data = malloc((size_t)n + 1);
	in->size = in->data ? fread(in->data, 1, (size_t)n, f) : 0;
	fclose(f);
	return in->data ? 0 : -1;
}

/* Where the records start (their control bytes), as build_stream() cuts them. */
static size_t record_starts(const uint8_t *buf, size_t size, size_t *starts, size_t max)
{
	size_t pos = 1, n = 0;

	while (pos + 1 + NSWAP_HDR_SIZE <= size && n < max) {
		size_t plen = get_le32(buf + pos + 1 + 40);

		starts[n++] = pos;
		pos += 1 + NSWAP_HDR_SIZE;
		pos += plen < size - pos ? plen : size - pos;
	}
	return n;
}

/* One to four of: a header field of a record set to an edge or random value
 * (4 in 10), a bit flipped, a byte set to an edge or random value, bytes
 * inserted, removed or repeated. */
static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
	static size_t starts[4096];
	static const uint8_t edges[] = { 0, 1, 0x7f, 0x80, 0xfe, 0xff };
	/* offsets from a record's control byte: type, flags, slot, generation
	 * and length bytes, status, hop_count (the header after the byte) */
	static const unsigned int fields[] = { 6, 7, 8, 25, 32, 33, 40, 41, 42, 44, 49, 51 };
	unsigned int times = 1 + (unsigned int)(rnd() % 4);

	for (unsigned int t = 0; t < times && size; t++) {
		size_t at = (size_t)(rnd() % size);

		switch (rnd() % 10) {
		case 0:
			buf[at] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1:
			buf[at] = edges[rnd() % sizeof(edges)];
			break;
		case 2:
		case 7:
		case 8:
		case 9: {	/* a header field of one of the records (the most often) */
			size_t n = record_starts(buf, size, starts, sizeof(starts) / sizeof(starts[0]));
			size_t off;

			if (!n)
				break;
			off = starts[rnd() % n] + fields[rnd() % (sizeof(fields) / sizeof(fields[0]))];
			buf[off] = rnd() % 2 ? edges[rnd() % sizeof(edges)] : (uint8_t)rnd();
			break;
		}
		case 3:
			buf[at] = (uint8_t)rnd();
			break;
		case 4: {	/* insert up to 64 random bytes */
			size_t n = 1 + (size_t)(rnd() % 64);

			if (size + n > cap)
				break;
			memmove(buf + at + n, buf + at, size - at);
			for (size_t i = 0; i < n; i++)
				buf[at + i] = (uint8_t)rnd();
			size += n;
			break;
		}
		case 5: {	/* remove up to 64 bytes */
			size_t n = 1 + (size_t)(rnd() % 64);

			if (n > size - at)
				n = size - at;
			memmove(buf + at, buf + at + n, size - at - n);
			size -= n;
			break;
		}
		case 6: {	/* repeat a stretch (a frame twice, a replay) */
			size_t n = 1 + (size_t)(rnd() % 512);

			if (n > size - at)
				n = size - at;
			if (size + n > cap)
				break;
			memmove(buf + at + n, buf + at, size - at);
			size += n;
			break;
		}
		}
	}
	return size;
}

int main(int argc, char **argv)
{
	unsigned long long iterations = 10000, seed = 1;
	struct input *corpus;
	size_t ncorpus = 0, cap = 1 << 18;
	uint8_t *buf;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			iterations = strtoull(optarg, NULL, 0);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else {
			fprintf(stderr, "usage: %s [-n MUTATIONS] [-s SEED] CORPUS_FILE...\n", argv[0]);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no corpus files\n", argv[0]);
		return 2;
	}
	corpus = calloc((size_t)(argc - optind), sizeof(*corpus));
	buf = malloc(cap);
	if (!corpus || !buf)
		return 1;
	for (int i = optind; i < argc; i++) {
		if (read_file(argv[i], &corpus[ncorpus]) != 0) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
			return 2;
		}
		LLVMFuzzerTestOneInput(corpus[ncorpus].data, corpus[ncorpus].size);
		ncorpus++;
	}
	rng_state = seed;
	for (unsigned long long i = 0; i < iterations; i++) {
		const struct input *in = &corpus[rnd() % ncorpus];
		size_t size = in->size < cap ? in->size : cap;

		memcpy(buf, in->data, size);
		size = mutate(buf, size, cap);
		LLVMFuzzerTestOneInput(buf, size);
	}
	printf("replayed %zu corpus inputs, ran %llu mutations (seed %llu)\n", ncorpus,
	       iterations, seed);
	for (size_t i = 0; i < ncorpus; i++)
		free(corpus[i].data);
	free(corpus);
	free(buf);
	return 0;
}
#endif
