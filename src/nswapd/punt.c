// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Moving pages away from a shrunk cache; see punt.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "crc32c.h"
#include "frame.h"
#include "log.h"
#include "punt.h"

#define PUNT_IO_TIMEOUT_S	5
#define PUNT_BATCH		256	/* pages per round before looking at `want` again */
#define PUNT_WINDOW		32	/* PUNTPAGEs sent before the first reply is read */

/* The whole buffer, sent (`out`) or received; -1 on an error, EOF or the
 * socket's timeout. */
static int io_all(int fd, void *buf, size_t len, int out)
{
	unsigned char *b = buf;

	while (len) {
		ssize_t n = out ? send(fd, b, len, MSG_NOSIGNAL) : recv(fd, b, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send one request (with its payload, if any).  0, or -1. */
static int send_req(int fd, struct frame_hdr *h, const void *payload)
{
	unsigned char hdr[NSWAP_HDR_SIZE];

	h->length = payload ? (h->type == NSWAP_HELLO ? HELLO_SIZE : NSWAP_PAGE_SIZE) : 0;
	h->crc = payload ? crc32c(payload, h->length) : 0;
	frame_hdr_encode(hdr, h);
	if (io_all(fd, hdr, sizeof(hdr), 1) ||
	    (payload && io_all(fd, (void *)payload, h->length, 1)))
		return -1;
	return 0;
}

/* Read the reply to h (the next one: replies come in order); its status, or
 * -1.  Its payload lands in rbuf, its header in *r. */
static int recv_reply(int fd, const struct frame_hdr *h, unsigned char *rbuf, struct frame_hdr *r)
{
	unsigned char hdr[NSWAP_HDR_SIZE];

	if (io_all(fd, hdr, sizeof(hdr), 0) || !frame_hdr_decode(r, hdr) ||
	    r->type != (h->type | NSWAP_REPLY) || r->tag != h->tag ||
	    r->length > NSWAP_MAX_PAYLOAD || (r->length && io_all(fd, rbuf, r->length, 0)))
		return -1;
	return r->status;
}

/* One request and its reply (header only kept); the reply's status, or -1. */
static int exchange(int fd, struct frame_hdr *h, const void *payload, unsigned char *rbuf)
{
	struct frame_hdr r;

	if (send_req(fd, h, payload) || recv_reply(fd, h, rbuf, &r) < 0)
		return -1;
	if (h->type == NSWAP_HELLO && r.status == NSWAP_OK) {
		struct hello o;

		if (r.length < HELLO_SIZE)
			return -1;
		hello_decode(&o, rbuf);
		if (!(o.features & NSWAP_FEAT_MIGRATION))
			return NSWAP_EPROTO;	/* it will not take PUNTPAGE */
	}
	return r.status;
}

static int connect_to(struct punter *p, uint32_t addr, uint16_t port, unsigned char *rbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(addr) };
	struct timeval tv = { .tv_sec = PUNT_IO_TIMEOUT_S };
	struct frame_hdr h = { .magic = NSWAP_MAGIC, .version = NSWAP_PROTO_VERSION,
			       .type = NSWAP_HELLO, .tag = 1, .client_id = p->self_id };
	unsigned char hello[HELLO_SIZE];
	struct hello o = { .min_version = NSWAP_PROTO_VERSION,
			   .max_version = NSWAP_PROTO_VERSION,
			   .features = NSWAP_FEAT_MIGRATION };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(o.name, sizeof(o.name), "%s", p->srv->cfg.name);
	hello_encode(hello, &o);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    exchange(fd, &h, hello, rbuf) != NSWAP_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

static int skipped(const struct punter *p, uint64_t client_id)
{
	for (uint32_t i = 0; i < p->nskipped; i++)
		if (p->skipped[i] == client_id)
			return 1;
	return 0;
}

/* The next page to move, copied out under its shard lock: 1, or 0 when a
 * whole scan found none. */
static int next_page(struct punter *p, struct cache_meta *out, unsigned char *page)
{
	struct cache *c = &p->srv->cache;

	for (uint32_t n = 0; n < c->arena_pages; n++) {
		uint32_t idx = p->cursor++ % c->arena_pages;
		struct cache_meta m = c->meta[idx];	/* racy: checked under the lock */
		struct cache_shard *sh;

		if (!m.in_use || m.moving || m.hop_count >= NSWAP_MAX_HOPS ||
		    !followers_has(p->followers, p->nfollowers, m.client_id) ||
		    skipped(p, m.client_id))
			continue;
		sh = cache_lock(c, m.client_id, m.slot);
		if (cache_lookup(c, sh, m.client_id, m.slot) == idx && !c->meta[idx].moving) {
			*out = c->meta[idx];
			memcpy(page, cache_page(c, idx), NSWAP_PAGE_SIZE);
			cache_unlock(sh);
			return 1;
		}
		cache_unlock(sh);
	}
	return 0;
}

/* The target took (client, slot, generation): unless rewritten meanwhile,
 * the copy here waits for its owner's INVALIDATE. */
static void mark_moving(struct punter *p, const struct cache_meta *m)
{
	struct cache *c = &p->srv->cache;
	struct cache_shard *sh = cache_lock(c, m->client_id, m->slot);
	uint32_t idx = cache_lookup(c, sh, m->client_id, m->slot);

	if (idx != CACHE_NONE && c->meta[idx].generation == m->generation &&
	    c->meta[idx].hop_count == m->hop_count)
		cache_set_moving(c, &c->meta[idx], 1);
	cache_unlock(sh);
}

struct sent {
	struct cache_meta m;
	struct frame_hdr h;
};

/* Whether m's page is already on its way (one of the nout from head). */
static int in_flight(const struct sent *out, uint32_t head, uint32_t nout,
		     const struct cache_meta *m)
{
	for (uint32_t i = 0; i < nout; i++) {
		const struct cache_meta *o = &out[(head + i) % PUNT_WINDOW].m;

		if (o->client_id == m->client_id && o->slot == m->slot)
			return 1;
	}
	return 0;
}

/* Move up to `want` pages to addr:port; returns how many were taken. */
static uint64_t punt_round(struct punter *p, uint32_t addr, uint16_t port, uint64_t want,
			   unsigned char *page, unsigned char *rbuf)
{
	char name[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = htonl(addr) };
	uint64_t moved = 0, tag = 2;
	struct cache_meta m;
	struct sent out[PUNT_WINDOW];
	uint32_t cursor = p->cursor, head = 0, nout = 0;
	int fd, st = NSWAP_OK, sending = 1;

	inet_ntop(AF_INET, &a, name, sizeof(name));
	p->nfollowers = followers_snapshot(&p->srv->followers, p->followers);
	p->nskipped = 0;
	/* a probe: is there a page to move at all?  (then connect) */
	if (!cache_over_limit(&p->srv->cache) || !next_page(p, &m, page)) {
		if (!p->stuck_logged)
			log_msg(L_WARN, "migration: the pages over the limit cannot move: their "
				"owners do not follow moves (nswap.ko migration = 0, or not "
				"connected) or went %d hops; they stay here", NSWAP_MAX_HOPS);
		p->stuck_logged = 1;
		if (cache_over_limit(&p->srv->cache))
			atomic_store(&p->stuck, 1);
		return 0;
	}
	p->stuck_logged = 0;
	p->cursor = cursor;	/* the page is looked up again once connected */
	fd = connect_to(p, addr, port, rbuf);
	if (fd < 0) {
		atomic_fetch_add(&p->failures, 1);
		log_msg(L_WARN, "migration: cannot move pages to %s:%u (connect or HELLO with "
			"migration failed); trying again at the next check", name, port);
		return 0;
	}
	/* Up to PUNT_WINDOW pages on their way before the first reply is read:
	 * a drain then moves at the link's rate, not at one page per round
	 * trip.  This needs the target to answer in order, as nswapd does
	 * (docs/protocol.md 11.1): a reply out of order reads as a lost
	 * connection, and nothing is marked wrongly.  Every reply is read,
	 * also after a refusal or a failed send, so that each page the target
	 * took is marked. */
	while (sending || nout) {
		while (sending && nout < PUNT_WINDOW && moved + nout < want &&
		       !__atomic_load_n(&p->stop, __ATOMIC_RELAXED) &&
		       cache_over_limit(&p->srv->cache) > nout && next_page(p, &m, page)) {
			struct sent *s = &out[(head + nout) % PUNT_WINDOW];

			if (in_flight(out, head, nout, &m))
				break;	/* the scan came round to a page on its way */
			s->m = m;
			s->h = (struct frame_hdr){ .magic = NSWAP_MAGIC,
						   .version = NSWAP_PROTO_VERSION,
						   .type = NSWAP_PUNTPAGE, .tag = tag++,
						   .client_id = m.client_id, .slot = m.slot,
						   .generation = m.generation,
						   .hop_count = (uint8_t)(m.hop_count + 1) };
			if (send_req(fd, &s->h, page)) {
				/* the replies to what went out may still be
				 * here: read them (the OKs are marked) */
				st = -1;
				sending = 0;
				break;
			}
			nout++;
		}
		if (!nout)
			break;
		struct sent *s = &out[head];
		struct frame_hdr r;
		int rs = recv_reply(fd, &s->h, rbuf, &r);

		head = (head + 1) % PUNT_WINDOW;
		nout--;
		if (rs == NSWAP_OK) {
			mark_moving(p, &s->m);
			moved++;
		} else if (rs == NSWAP_ENOENT) {
			/* the target has no migration connection of this owner:
			 * its other pages wait for the next round (or target) */
			if (!skipped(p, s->m.client_id) && p->nskipped < PUNT_SKIP_MAX)
				p->skipped[p->nskipped++] = s->m.client_id;
			else if (!skipped(p, s->m.client_id) && st == NSWAP_OK)
				st = rs;	/* too many owners to leave out */
		} else {
			if (st == NSWAP_OK || rs < 0)
				st = rs;	/* a lost connection counts as a failure */
			sending = 0;
			if (rs < 0)
				nout = 0;	/* nothing more can be read: those pages
						 * stay here, unmarked */
		}
		if (st != NSWAP_OK)
			sending = 0;
	}
	close(fd);
	atomic_fetch_add(&p->punted, moved);
	if (!moved && p->nskipped && st == NSWAP_OK) {
		atomic_store(&p->stuck, 1);
		if (!p->skip_logged)
			log_msg(L_WARN, "migration: %s:%u took none of the pages over the limit: "
				"their %u owner(s) are not connected to it with migration; they "
				"stay here until their owners free them", name, port, p->nskipped);
		p->skip_logged = 1;
	} else if (moved) {
		atomic_store(&p->stuck, 0);
		p->skip_logged = 0;
	}
	if (st != NSWAP_OK) {
		atomic_fetch_add(st < 0 ? &p->failures : &p->refused, 1);
		log_msg(L_WARN, "migration: %s:%u stopped taking pages (%s) after %llu", name, port,
			st < 0 ? "connection lost" : "refused", (unsigned long long)moved);
	}
	if (moved)
		log_msg(L_INFO, "migration: moved %llu pages to %s:%u (their owners are told "
			"where they are; the copies here go when the owners drop them)",
			(unsigned long long)moved, name, port);
	return moved;
}

static void *punter_main(void *arg)
{
	struct punter *p = arg;
	static unsigned char page[NSWAP_PAGE_SIZE], rbuf[NSWAP_MAX_PAYLOAD];

	pthread_mutex_lock(&p->lock);
	for (;;) {
		uint32_t addr;
		uint16_t port;
		uint64_t want, moved;

		while (!p->stop && (!p->want || !p->addr))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		addr = p->addr;
		port = p->port;
		want = p->want < PUNT_BATCH ? p->want : PUNT_BATCH;
		pthread_mutex_unlock(&p->lock);
		moved = punt_round(p, addr, port, want, page, rbuf);
		pthread_mutex_lock(&p->lock);
		p->want -= moved < p->want ? moved : p->want;
		if (!moved)
			p->want = 0;	/* wait for the next check */
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int punter_start(struct punter *p, struct server *srv, uint64_t self_id)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->srv = srv;
	p->self_id = self_id;
	p->followers = calloc(srv->followers.cap ? srv->followers.cap : 1, sizeof(uint64_t));
	if (!p->followers) {
		log_msg(L_ERR, "migration: out of memory");
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	err = pthread_create(&p->thread, NULL, punter_main, p);
	if (err) {
		log_msg(L_ERR, "migration: cannot start the page mover: %s", strerror(err));
		free(p->followers);
		p->followers = NULL;
		return -1;
	}
	p->started = 1;
	return 0;
}

void punter_ask(struct punter *p, uint32_t addr, uint16_t port, uint64_t want)
{
	pthread_mutex_lock(&p->lock);
	p->addr = addr;
	p->port = port;
	p->want = want;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void punter_stop(struct punter *p)
{
	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->started = 0;
	free(p->followers);
	p->followers = NULL;
}
