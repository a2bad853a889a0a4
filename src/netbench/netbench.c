/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* netbench: raw TCP baselines for the nswap data-path benchmark.
 *
 *   netbench server --listen ADDR:PORT [--time-limit S] [--max-conns N]
 *   netbench client pingpong ADDR:PORT [--count N] [--size B] [--req-size B]
 *                                      [--warmup N] [--time-limit S]
 *   netbench client stream ADDR:PORT [--bytes B] [--size B] [--time-limit S]
 *
 * The client opens one TCP connection and sends a 16-byte hello
 * (magic, mode, request size, reply size; big-endian).  Ping-pong: the
 * client writes --req-size bytes (default --size), the server reads them
 * whole and writes --size bytes back; TCP_NODELAY on both ends; one round
 * trip is timed from before the write to after the last byte of the reply.
 * Stream: the client writes --bytes in --size writes, shuts down its write
 * side, and the server answers with the byte count it received (8 bytes),
 * so the time covers every byte arriving; msgs_per_s counts writes of
 * --size bytes, pages_per_s the same bytes in 4 KiB units.  The server serves one
 * connection at a time.
 *
 * Every loop is bounded: counts, bytes, --time-limit (client default 60 s,
 * server default 600 s), socket timeouts of 10 s, --max-conns.
 * The client prints one line of JSON.  A benchmark, not a test.
 * Addresses are numeric IPv4 or [IPv6]:PORT (no name resolution, so the
 * static binary needs no NSS). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "numbers.h"

#define NB_MAGIC 0x4e424231U /* "NBB1" */
#define NB_PINGPONG 1U
#define NB_STREAM 2U
#define NB_MAX_SIZE (1U << 20)
#define NB_IO_TIMEOUT_S 10
#define NB_MAX_COUNT 100000000ULL

struct nb_opts {
	const char *addr;
	uint64_t count, bytes, warmup, max_conns;
	uint32_t size, req_size;
	double time_limit;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: netbench server --listen ADDR:PORT [--time-limit S] [--max-conns N]\n"
		"       netbench client pingpong ADDR:PORT [--count N] [--size B] [--req-size B]\n"
		"                                          [--warmup N] [--time-limit S]\n"
		"       netbench client stream ADDR:PORT [--bytes B] [--size B] [--time-limit S]\n"
		"  ADDR is numeric: 10.0.0.1:7500 or [fd00::1]:7500\n"
		"  pingpong: --count round trips (default 10000) of --req-size bytes out\n"
		"            (default --size) and --size bytes back (default 4096), after\n"
		"            --warmup untimed ones (default 100)\n"
		"  stream:   --bytes in total (default 256M, suffixes K/M/G) in --size writes\n"
		"  --time-limit: stop early after S seconds (client 60, server 600)\n");
}

/* "1.2.3.4:P" or "[v6]:P" -> sockaddr. */
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *h = text, *port;
	size_t hl;
	char *end;
	unsigned long p;

	memset(ss, 0, sizeof(*ss));
	if (*text == '[') {
		const char *rb = strchr(text, ']');

		if (!rb || rb[1] != ':')
			return -1;
		h = text + 1;
		hl = (size_t)(rb - h);
		port = rb + 2;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - text);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *end || !*port || p == 0 || p > 65535)
		return -1;
	if (*text == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -1;
		*len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		*len = sizeof(*in);
	}
	return 0;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = NB_IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *b = buf;

	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 1: got len bytes, 0: clean EOF before the first byte, -1: error. */
static int read_all(int fd, void *buf, size_t len)
{
	unsigned char *b = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, b + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && got == 0)
			return 0;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 1;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* --- server -------------------------------------------------------------- */

static int serve_pingpong(int fd, uint32_t req, uint32_t resp, double deadline)
{
	unsigned char *rb = malloc(req), *sb = calloc(1, resp);
	int rc = -1;

	if (!rb || !sb)
		goto out;
	set_nodelay(fd);
	while (now_s() < deadline) {
		int r = read_all(fd, rb, req);

		if (r == 0) {
			rc = 0;
			break;
		}
		if (r < 0 || write_all(fd, sb, resp) != 0)
			break;
	}
out:
	free(rb);
	free(sb);
	return rc;
}

static int serve_stream(int fd, double deadline)
{
	static unsigned char buf[1 << 16];
	uint64_t total = 0;
	unsigned char ack[8];

	while (now_s() < deadline) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			for (int i = 0; i < 8; i++)
				ack[i] = (unsigned char)(total >> (56 - 8 * i));
			return write_all(fd, ack, sizeof(ack));
		}
		total += (uint64_t)n;
	}
	return -1;
}

static int run_server(const struct nb_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd, one = 1;
	uint64_t served = 0;
	double deadline = now_s() + o->time_limit;

	if (parse_addr(o->addr, &ss, &len) != 0) {
		fprintf(stderr, "netbench: bad address %s\n", o->addr);
		return 2;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&ss, len) != 0 || listen(lfd, 16) != 0) {
		fprintf(stderr, "netbench: listen %s: %s\n", o->addr, strerror(errno));
		return 1;
	}
	fprintf(stderr, "netbench: listening on %s\n", o->addr);
	while (served < o->max_conns) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		double left = deadline - now_s();
		unsigned char hello[16];
		int fd, r;

		if (left <= 0)
			break;
		r = poll(&pfd, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		served++;
		set_timeouts(fd);
		if (read_all(fd, hello, sizeof(hello)) == 1 && get_be32(hello) == NB_MAGIC) {
			uint32_t mode = get_be32(hello + 4), req = get_be32(hello + 8);
			uint32_t resp = get_be32(hello + 12);

			if (mode == NB_PINGPONG && req && resp && req <= NB_MAX_SIZE &&
			    resp <= NB_MAX_SIZE)
				serve_pingpong(fd, req, resp, deadline);
			else if (mode == NB_STREAM)
				serve_stream(fd, deadline);
		}
		close(fd);
	}
	close(lfd);
	fprintf(stderr, "netbench: server done after %llu connections\n",
		(unsigned long long)served);
	return 0;
}

/* --- client -------------------------------------------------------------- */

static int dial(const struct nb_opts *o, uint32_t mode, uint32_t req, uint32_t resp)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned char hello[16];
	int fd;

	if (parse_addr(o->addr, &ss, &len) != 0) {
		fprintf(stderr, "netbench: bad address %s\n", o->addr);
		return -2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	set_timeouts(fd); /* also bounds connect() */
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		fprintf(stderr, "netbench: connect %s: %s\n", o->addr, strerror(errno));
		close(fd);
		return -1;
	}
	if (mode == NB_PINGPONG)
		set_nodelay(fd);
	put_be32(hello, NB_MAGIC);
	put_be32(hello + 4, mode);
	put_be32(hello + 8, req);
	put_be32(hello + 12, resp);
	if (write_all(fd, hello, sizeof(hello)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int client_pingpong(const struct nb_opts *o)
{
	uint32_t req = o->req_size ? o->req_size : o->size;
	unsigned char *sb = calloc(1, req), *rb = malloc(o->size);
	uint64_t *ns = malloc(o->count * sizeof(*ns)), n = 0, sum = 0;
	double t0, deadline = now_s() + o->time_limit, elapsed;
	int fd, rc = 1;

	if (!sb || !rb || !ns)
		goto out;
	fd = dial(o, NB_PINGPONG, req, o->size);
	if (fd < 0) {
		rc = fd == -2 ? 2 : 1;
		goto out;
	}
	for (uint64_t i = 0; i < o->warmup && now_s() < deadline; i++) {
		if (write_all(fd, sb, req) != 0 || read_all(fd, rb, o->size) != 1)
			goto io_error;
	}
	t0 = now_s();
	while (n < o->count) {
		uint64_t a, b;

		if ((n & 63) == 0 && now_s() >= deadline)
			break;
		sb[0] = (unsigned char)n;
		a = now_ns();
		if (write_all(fd, sb, req) != 0 || read_all(fd, rb, o->size) != 1)
			goto io_error;
		b = now_ns();
		ns[n++] = b - a;
		sum += b - a;
	}
	elapsed = now_s() - t0;
	close(fd);
	if (n == 0) {
		fprintf(stderr, "netbench: no round trip within the time limit\n");
		goto out;
	}
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("{\"mode\": \"pingpong\", \"req_size\": %u, \"size\": %u, \"count\": %llu, "
	       "\"truncated\": %s, \"elapsed_s\": %.3f, \"min_us\": %.1f, \"p50_us\": %.1f, "
	       "\"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f, "
	       "\"round_trips_per_s\": %.0f}\n",
	       req, o->size, (unsigned long long)n, n < o->count ? "true" : "false", elapsed,
	       ns[0] / 1e3, ns[n / 2] / 1e3, ns[n * 90 / 100] / 1e3, ns[n * 99 / 100] / 1e3,
	       ns[n - 1] / 1e3, (double)sum / (double)n / 1e3, (double)n / elapsed);
	rc = 0;
	goto out;
io_error:
	fprintf(stderr, "netbench: pingpong I/O error after %llu round trips: %s\n",
		(unsigned long long)n, strerror(errno));
	close(fd);
out:
	free(sb);
	free(rb);
	free(ns);
	return rc;
}

static int client_stream(const struct nb_opts *o)
{
	unsigned char *buf = malloc(o->size), ack[8];
	uint64_t sent = 0, got = 0;
	double t0, deadline, elapsed;
	int fd, rc = 1;

	if (!buf)
		return 1;
	memset(buf, 0x5a, o->size);
	fd = dial(o, NB_STREAM, 0, 0);
	if (fd < 0) {
		free(buf);
		return fd == -2 ? 2 : 1;
	}
	t0 = now_s();
	deadline = t0 + o->time_limit;
	while (sent < o->bytes) {
		size_t chunk = o->bytes - sent < o->size ? (size_t)(o->bytes - sent) : o->size;

		if ((sent / o->size & 255) == 0 && now_s() >= deadline)
			break;
		if (write_all(fd, buf, chunk) != 0) {
			fprintf(stderr, "netbench: stream send: %s\n", strerror(errno));
			goto out;
		}
		sent += chunk;
	}
	shutdown(fd, SHUT_WR);
	if (read_all(fd, ack, sizeof(ack)) != 1) {
		fprintf(stderr, "netbench: stream: no byte count from the server\n");
		goto out;
	}
	elapsed = now_s() - t0;
	for (int i = 0; i < 8; i++)
		got = got << 8 | ack[i];
	if (got != sent) {
		fprintf(stderr, "netbench: stream: sent %llu bytes, server got %llu\n",
			(unsigned long long)sent, (unsigned long long)got);
		goto out;
	}
	printf("{\"mode\": \"stream\", \"size\": %u, \"bytes\": %llu, \"truncated\": %s, "
	       "\"elapsed_s\": %.3f, \"mb_per_s\": %.1f, \"mib_per_s\": %.1f, "
	       "\"msgs_per_s\": %.0f, \"pages_per_s\": %.0f}\n",
	       o->size, (unsigned long long)sent, sent < o->bytes ? "true" : "false", elapsed,
	       (double)sent / elapsed / 1e6, (double)sent / elapsed / 1048576.0,
	       (double)sent / o->size / elapsed, (double)sent / 4096.0 / elapsed);
	rc = 0;
out:
	close(fd);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'L' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "req-size", required_argument, NULL, 'r' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct nb_opts o = {
		.count = 10000, .bytes = 256ULL << 20, .warmup = 100, .max_conns = 1000,
		.size = 4096, .time_limit = 0,
	};
	const char *role, *mode = NULL;
	uint64_t v;
	int opt, idx = 0;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	role = argv[1];
	if (!strcmp(role, "-h") || !strcmp(role, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(role, "client")) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		mode = argv[2];
		o.addr = argv[3];
		optind = 4;
	} else if (!strcmp(role, "server")) {
		optind = 2;
	} else {
		usage(stderr);
		return 2;
	}
	while ((opt = getopt_long(argc, argv, "h", lopts, &idx)) != -1) {
		switch (opt) {
		case 'L': o.addr = optarg; break;
		case 'n':
			if (parse_u64(optarg, 1, NB_MAX_COUNT, &o.count)) goto bad;
			break;
		case 's':
			if (parse_u64(optarg, 1, NB_MAX_SIZE, &v)) goto bad;
			o.size = (uint32_t)v;
			break;
		case 'r':
			if (parse_u64(optarg, 1, NB_MAX_SIZE, &v)) goto bad;
			o.req_size = (uint32_t)v;
			break;
		case 'b':
			if (parse_u64(optarg, 1, 1ULL << 40, &o.bytes)) goto bad;
			break;
		case 'w':
			if (parse_u64(optarg, 0, NB_MAX_COUNT, &o.warmup)) goto bad;
			break;
		case 't':
			if (parse_u64(optarg, 1, 86400, &v)) goto bad;
			o.time_limit = (double)v;
			break;
		case 'm':
			if (parse_u64(optarg, 1, 1000000, &o.max_conns)) goto bad;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o.addr) {
		usage(stderr);
		return 2;
	}
	if (!mode) {
		if (o.time_limit == 0)
			o.time_limit = 600;
		return run_server(&o);
	}
	if (o.time_limit == 0)
		o.time_limit = 60;
	if (!strcmp(mode, "pingpong"))
		return client_pingpong(&o);
	if (!strcmp(mode, "stream"))
		return client_stream(&o);
	usage(stderr);
	return 2;
bad:
	fprintf(stderr, "netbench: bad value '%s' for --%s\n", optarg, lopts[idx].name);
	usage(stderr);
	return 2;
}
