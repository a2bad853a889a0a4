/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* nswap-bench: load generator for an nswap memory server.
 *
 * Opens N connections (client ids BASE..BASE+N-1), says HELLO on each, then
 *   1. PUTPAGE W pages in total, D requests in flight per connection;
 *   2. GETPAGE all of them (same window) and verifies every byte;
 *   3. GETPAGE at depth 1 on one connection to measure latency;
 *   4. drops its pages again with a range INVALIDATE (unless --keep).
 * Prints pages/s for (1) and (2) and p50/p99 latency for (3).  Exit status:
 * 0 ok, 1 a reply failed verification or had an error status, 2 usage,
 * 3 connection or protocol failure.  A benchmark, not a test. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "frame.h"

#define FRAME_MAX (NSWAP_HDR_SIZE + NSWAP_MAX_PAYLOAD)

struct opts {
	const char *host, *port;
	unsigned int conns, depth;
	uint64_t pages, samples, client_base;
	int keep;
};

struct worker {
	pthread_t th;
	const struct opts *o;
	int fd;
	uint64_t client_id, npages, gen;
	unsigned char *sbuf, *rbuf;
	size_t slen, soff, rlen;
	uint64_t bad, errors;	/* verification failures, error replies */
	int failed;		/* connection/protocol failure */
	uint32_t features;
};

static pthread_barrier_t barrier;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_page(unsigned char *p, uint64_t cid, uint64_t slot, uint64_t gen)
{
	uint64_t x = (cid * 0x9e3779b97f4a7c15ULL) ^ (slot * 0xbf58476d1ce4e5b9ULL) ^ gen;

	x |= 1;
	for (size_t i = 0; i < NSWAP_PAGE_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		put_le64(p + i, x);
	}
}

static int dial(const struct opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, one = 1, rc;

	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "nswap-bench: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "nswap-bench: connect %s:%s: %s\n", o->host, o->port,
			strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static size_t build(unsigned char *b, unsigned int type, uint16_t flags, uint64_t tag,
		    uint64_t cid, uint64_t slot, uint64_t gen, const void *payload, size_t len)
{
	struct frame_hdr h = {
		.magic = NSWAP_MAGIC, .version = NSWAP_PROTO_VERSION, .type = (uint8_t)type,
		.flags = flags, .tag = tag, .client_id = cid, .slot = slot, .generation = gen,
		.length = (uint32_t)len, .crc = len ? crc32c(payload, len) : 0,
	};

	frame_hdr_encode(b, &h);
	if (len)
		memcpy(b + NSWAP_HDR_SIZE, payload, len);
	return NSWAP_HDR_SIZE + len;
}

static int write_all(int fd, const unsigned char *b, size_t len)
{
	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Blocking read of one whole frame into w->rbuf. */
static int read_frame(struct worker *w, struct frame_hdr *h)
{
	size_t need = NSWAP_HDR_SIZE, got = 0;

	while (got < need) {
		ssize_t n = read(w->fd, w->rbuf + got, need - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if (got == NSWAP_HDR_SIZE && need == NSWAP_HDR_SIZE) {
			if (!frame_hdr_decode(h, w->rbuf) || h->magic != NSWAP_MAGIC ||
			    h->length > NSWAP_MAX_PAYLOAD)
				return -1;
			need += h->length;
		}
	}
	return 0;
}

/* Check one reply; for GETPAGE compare the page with what was put. */
static void check_reply(struct worker *w, unsigned int type, const struct frame_hdr *h,
			const unsigned char *payload, unsigned char *scratch)
{
	if (h->type != (type | NSWAP_REPLY) || h->tag >= w->npages || h->slot != h->tag) {
		w->failed = 1;
		return;
	}
	if (h->status != NSWAP_OK) {
		if (w->errors++ < 5)
			fprintf(stderr, "nswap-bench: client 0x%llx slot %llu: %s -> %s\n",
				(unsigned long long)w->client_id, (unsigned long long)h->slot,
				msg_type_name(type), status_name(h->status));
		return;
	}
	if (type == NSWAP_GETPAGE) {
		fill_page(scratch, w->client_id, h->slot, w->gen);
		if (h->length != NSWAP_PAGE_SIZE || crc32c(payload, h->length) != h->crc ||
		    memcmp(payload, scratch, NSWAP_PAGE_SIZE) != 0) {
			if (w->bad++ < 5)
				fprintf(stderr, "nswap-bench: client 0x%llx slot %llu: page "
					"content mismatch\n", (unsigned long long)w->client_id,
					(unsigned long long)h->slot);
		}
	}
}

/* Pipelined PUTPAGE or GETPAGE of all of this worker's pages, at most
 * o->depth in flight, over a non-blocking socket driven by poll(). */
static int pipeline(struct worker *w, unsigned int type)
{
	unsigned char page[NSWAP_PAGE_SIZE], scratch[NSWAP_PAGE_SIZE];
	uint64_t sent = 0, done = 0;
	size_t rcap = 64 * FRAME_MAX;

	w->slen = w->soff = w->rlen = 0;
	while (done < w->npages) {
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		size_t pos = 0;

		/* Refill the send buffer up to the window. */
		if (w->soff == w->slen)
			w->slen = w->soff = 0;
		while (sent < w->npages && sent - done < w->o->depth &&
		       w->slen + FRAME_MAX <= (size_t)w->o->depth * FRAME_MAX) {
			if (type == NSWAP_PUTPAGE) {
				fill_page(page, w->client_id, sent, w->gen);
				w->slen += build(w->sbuf + w->slen, type, 0, sent, w->client_id,
						 sent, w->gen, page, sizeof(page));
			} else {
				w->slen += build(w->sbuf + w->slen, type, 0, sent, w->client_id,
						 sent, w->gen, NULL, 0);
			}
			sent++;
		}
		if (w->soff < w->slen)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "nswap-bench: no progress for 10 s (%s)\n",
				msg_type_name(type));
			return -1;
		}
		if (pfd.revents & POLLOUT) {
			ssize_t n = send(w->fd, w->sbuf + w->soff, w->slen - w->soff,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
			if (n > 0)
				w->soff += (size_t)n;
		}
		if (!(pfd.revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		ssize_t n = recv(w->fd, w->rbuf + w->rlen, rcap - w->rlen, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			fprintf(stderr, "nswap-bench: connection lost\n");
			return -1;
		}
		if (n > 0)
			w->rlen += (size_t)n;
		for (;;) {
			struct frame_hdr h;

			if (w->rlen - pos < NSWAP_HDR_SIZE)
				break;
			if (!frame_hdr_decode(&h, w->rbuf + pos) || h.magic != NSWAP_MAGIC ||
			    h.length > NSWAP_MAX_PAYLOAD) {
				fprintf(stderr, "nswap-bench: malformed reply\n");
				return -1;
			}
			if (w->rlen - pos < NSWAP_HDR_SIZE + h.length)
				break;
			check_reply(w, type, &h, w->rbuf + pos + NSWAP_HDR_SIZE, scratch);
			if (w->failed) {
				fprintf(stderr, "nswap-bench: unexpected reply\n");
				return -1;
			}
			pos += NSWAP_HDR_SIZE + h.length;
			done++;
		}
		memmove(w->rbuf, w->rbuf + pos, w->rlen - pos);
		w->rlen -= pos;
	}
	return 0;
}

static int hello(struct worker *w)
{
	struct hello hl = {
		.min_version = NSWAP_PROTO_MIN_VERSION, .max_version = NSWAP_PROTO_VERSION,
		.features = NSWAP_FEAT_RANGE_INVALIDATE, .name = "nswap-bench",
	};
	unsigned char pl[HELLO_SIZE], frame[FRAME_MAX];
	struct frame_hdr h;

	hello_encode(pl, &hl);
	if (write_all(w->fd, frame, build(frame, NSWAP_HELLO, 0, 0, w->client_id, 0, 0, pl,
					  sizeof(pl))) != 0 || read_frame(w, &h) != 0)
		return -1;
	if (h.type != (NSWAP_HELLO | NSWAP_REPLY) || h.status != NSWAP_OK ||
	    h.length < HELLO_SIZE) {
		fprintf(stderr, "nswap-bench: HELLO refused: %s\n", status_name(h.status));
		return -1;
	}
	hello_decode(&hl, w->rbuf + NSWAP_HDR_SIZE);
	w->features = hl.features;
	return 0;
}

static int cleanup(struct worker *w)
{
	unsigned char frame[FRAME_MAX], pl[8];
	struct frame_hdr h;

	if (!(w->features & NSWAP_FEAT_RANGE_INVALIDATE))
		return 0;
	put_le64(pl, w->npages);
	if (write_all(w->fd, frame, build(frame, NSWAP_INVALIDATE, NSWAP_F_RANGE, 1,
					  w->client_id, 0, UINT64_MAX, pl, 8)) != 0 ||
	    read_frame(w, &h) != 0 || h.status != NSWAP_OK)
		return -1;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* Every phase is entered through the barrier, also after a failure,
	 * so that no thread waits forever.  main() takes the times. */
	pthread_barrier_wait(&barrier);
	if (!w->failed && pipeline(w, NSWAP_PUTPAGE) != 0)
		w->failed = 1;
	pthread_barrier_wait(&barrier);
	if (!w->failed && pipeline(w, NSWAP_GETPAGE) != 0)
		w->failed = 1;
	pthread_barrier_wait(&barrier);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Depth-1 GETPAGE round trips on one connection. */
static int latency(struct worker *w, uint64_t samples)
{
	uint64_t *ns = malloc(samples * sizeof(*ns)), x = 88172645463325252ULL, sum = 0;
	unsigned char frame[NSWAP_HDR_SIZE], scratch[NSWAP_PAGE_SIZE];

	if (!ns)
		return -1;
	for (uint64_t i = 0; i < samples; i++) {
		struct timespec a, b;
		struct frame_hdr h;
		uint64_t slot;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		slot = x % w->npages;
		build(frame, NSWAP_GETPAGE, 0, slot, w->client_id, slot, w->gen, NULL, 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (write_all(w->fd, frame, sizeof(frame)) != 0 || read_frame(w, &h) != 0) {
			free(ns);
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		check_reply(w, NSWAP_GETPAGE, &h, w->rbuf + NSWAP_HDR_SIZE, scratch);
		ns[i] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ULL +
			(uint64_t)(b.tv_nsec - a.tv_nsec);
		sum += ns[i];
	}
	qsort(ns, samples, sizeof(*ns), cmp_u64);
	printf("get latency (depth 1, %llu samples): p50 %.1f us  p99 %.1f us  "
	       "p99.9 %.1f us  mean %.1f us  max %.1f us\n",
	       (unsigned long long)samples, ns[samples / 2] / 1e3,
	       ns[samples * 99 / 100] / 1e3, ns[samples * 999 / 1000] / 1e3,
	       (double)sum / (double)samples / 1e3, ns[samples - 1] / 1e3);
	free(ns);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nswap-bench [-H HOST] [-p PORT] [-c CONNS] [-n PAGES] [-d DEPTH]\n"
		"                   [-l SAMPLES] [-b CLIENT_ID_BASE] [--keep]\n"
		"  -H HOST     server address (default 127.0.0.1)\n"
		"  -p PORT     server port (default %d)\n"
		"  -c CONNS    connections, one client id each (default 4)\n"
		"  -n PAGES    pages in total, split over the connections (default 16384);\n"
		"              the server cache must hold them\n"
		"  -d DEPTH    requests in flight per connection (default 32)\n"
		"  -l SAMPLES  depth-1 GETPAGE latency samples (default 10000)\n"
		"  -b BASE     first client id (default derived from the pid)\n"
		"  --keep      leave the pages on the server\n",
		NSWAP_DEFAULT_PORT);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return (errno || *end || !*s || *out < min || *out > max) ? -1 : 0;
}

int main(int argc, char **argv)
{
	static char port_default[8];
	static const struct option lopts[] = {
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.host = "127.0.0.1", .port = port_default, .conns = 4, .depth = 32,
		.pages = 16384, .samples = 10000,
		.client_base = 0xbe0c000000000000ULL | ((uint64_t)getpid() << 16),
	};
	struct worker *w;
	uint64_t v, bad = 0, errors = 0;
	int opt, failed = 0;
	double t0, t1, t2, t_phase[2];

	snprintf(port_default, sizeof(port_default), "%d", NSWAP_DEFAULT_PORT);
	while ((opt = getopt_long(argc, argv, "H:p:c:n:d:l:b:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'H': o.host = optarg; break;
		case 'p': o.port = optarg; break;
		case 'c':
			if (parse_u64(optarg, 1, 1024, &v)) goto bad_arg;
			o.conns = (unsigned int)v;
			break;
		case 'n':
			if (parse_u64(optarg, 1, 1ULL << 32, &v)) goto bad_arg;
			o.pages = v;
			break;
		case 'd':
			if (parse_u64(optarg, 1, 4096, &v)) goto bad_arg;
			o.depth = (unsigned int)v;
			break;
		case 'l':
			if (parse_u64(optarg, 1, 100000000, &v)) goto bad_arg;
			o.samples = v;
			break;
		case 'b':
			if (parse_u64(optarg, 1, UINT64_MAX - 1024, &v)) goto bad_arg;
			o.client_base = v;
			break;
		case 'k': o.keep = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (o.pages < o.conns) {
		fprintf(stderr, "nswap-bench: need at least one page per connection\n");
		return 2;
	}
	if (crc32c_init(0) != 0) {
		fprintf(stderr, "nswap-bench: crc32c self-test failed\n");
		return 3;
	}
	w = calloc(o.conns, sizeof(*w));
	if (!w)
		return 3;
	for (unsigned int i = 0; i < o.conns; i++) {
		w[i].o = &o;
		w[i].client_id = o.client_base + i;
		w[i].gen = 1;
		w[i].npages = o.pages / o.conns + (i < o.pages % o.conns);
		w[i].sbuf = malloc((size_t)o.depth * FRAME_MAX);
		w[i].rbuf = malloc(64 * FRAME_MAX);
		if (!w[i].sbuf || !w[i].rbuf || (w[i].fd = dial(&o)) < 0 || hello(&w[i]) != 0)
			return 3;
	}
	printf("nswap-bench: %s:%s, %u connections, %llu pages (%llu MiB), depth %u\n",
	       o.host, o.port, o.conns, (unsigned long long)o.pages,
	       (unsigned long long)(o.pages * NSWAP_PAGE_SIZE >> 20), o.depth);
	pthread_barrier_init(&barrier, NULL, o.conns + 1);
	for (unsigned int i = 0; i < o.conns; i++)
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			return 3;
	pthread_barrier_wait(&barrier);
	t0 = now_s();
	pthread_barrier_wait(&barrier);
	t1 = now_s();
	pthread_barrier_wait(&barrier);
	t2 = now_s();
	for (unsigned int i = 0; i < o.conns; i++) {
		pthread_join(w[i].th, NULL);
		failed |= w[i].failed;
	}
	t_phase[0] = t1 - t0;
	t_phase[1] = t2 - t1;
	if (!failed) {
		uint64_t b = 0, e = 0;

		for (unsigned int i = 0; i < o.conns; i++) {
			b += w[i].bad;
			e += w[i].errors;
		}
		printf("put: %.0f pages/s (%.1f MiB/s, %.3f s)\n", o.pages / t_phase[0],
		       o.pages * 4096.0 / t_phase[0] / 1048576.0, t_phase[0]);
		printf("get: %.0f pages/s (%.1f MiB/s, %.3f s, %s)\n",
		       o.pages / t_phase[1], o.pages * 4096.0 / t_phase[1] / 1048576.0,
		       t_phase[1], b || e ? "FAILURES, see above" : "all pages verified");
		if (latency(&w[0], o.samples) != 0)
			failed = 1;
	}
	for (unsigned int i = 0; i < o.conns; i++) {
		if (!failed && !o.keep && cleanup(&w[i]) != 0)
			failed = 1;
		bad += w[i].bad;	/* all phases, latency included */
		errors += w[i].errors;
		close(w[i].fd);
		free(w[i].sbuf);
		free(w[i].rbuf);
	}
	free(w);
	if (failed) {
		fprintf(stderr, "nswap-bench: FAILED (connection or protocol error)\n");
		return 3;
	}
	if (bad || errors) {
		fprintf(stderr, "nswap-bench: FAILED: %llu pages differ, %llu error replies\n",
			(unsigned long long)bad, (unsigned long long)errors);
		return 1;
	}
	printf("nswap-bench: ok\n");
	return 0;
bad_arg:
	fprintf(stderr, "nswap-bench: bad value '%s' for -%c\n", optarg, opt);
	usage(stderr);
	return 2;
}
