// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * Unit tests of nswapd's gossip code (src/nswapd/gossip.c) and the placement
 * rule (src/include/nswap_place.h), against outcomes computed by hand.
 * Datagrams are built here byte by byte from docs/protocol.md 11.2, not
 * with gossip.c's encoder, so the wire layout is checked too.
 *   gossip-test            run every test
 *   gossip-test NAME       run one (tests/unit/sim/test_gossip.py runs each)
 * Exit 0 when all pass; each failure prints FILE:LINE and the check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "gossip.h"
#include "nswap_place.h"

static int failures;

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s: failed: %s\n", __FILE__, \
	__LINE__, __func__, #c); failures++; } } while (0)

#define ADDR(i)	(0x0A000000u + (i))	/* 10.0.0.i */

struct ent {
	uint64_t id;
	uint32_t addr;
	uint16_t port;
	uint8_t state, flags;
	uint32_t inc, hb;
	uint64_t cap, free;
	uint32_t load, reserved;
};

/* A GOSSIP datagram from `sender` (its id is e[0].id unless forced). */
static size_t datagram(unsigned char *b, uint8_t type, uint64_t sender, const struct ent *e,
		       unsigned int n)
{
	struct frame_hdr h = { 0 };

	for (unsigned int i = 0; i < n; i++) {
		unsigned char *p = b + NSWAP_HDR_SIZE + 48 * i;

		memset(p, 0, 48);
		put_le64(p, e[i].id);
		p[8] = (unsigned char)(e[i].addr >> 24);
		p[9] = (unsigned char)(e[i].addr >> 16);
		p[10] = (unsigned char)(e[i].addr >> 8);
		p[11] = (unsigned char)e[i].addr;
		put_le16(p + 12, e[i].port);
		p[14] = e[i].state;
		p[15] = e[i].flags;
		put_le32(p + 16, e[i].inc);
		put_le32(p + 20, e[i].hb);
		put_le64(p + 24, e[i].cap);
		put_le64(p + 32, e[i].free);
		put_le32(p + 40, e[i].load);
		put_le32(p + 44, e[i].reserved);
	}
	h.magic = NSWAP_MAGIC;
	h.version = NSWAP_PROTO_VERSION;
	h.type = type;
	h.client_id = sender;
	h.length = 48 * n;
	h.crc = crc32c(b + NSWAP_HDR_SIZE, h.length);
	frame_hdr_encode(b, &h);
	return NSWAP_HDR_SIZE + h.length;
}

static struct ent alive(uint64_t id, uint32_t inc, uint32_t hb)
{
	return (struct ent){ .id = id, .addr = ADDR(id), .port = 7405, .inc = inc, .hb = hb,
			     .cap = 100, .free = 60, .load = 1 };
}

static void node(struct gossip *g, uint64_t id, const struct gossip_config *cfg)
{
	struct gossip_config def;

	gossip_config_defaults(&def);
	if (gossip_init(g, cfg ? cfg : &def, id, ADDR(id), 7405, 1, id * 77, 0))
		abort();
}

/* A reply from source address src, carrying e[0..n) (e[0] the sender's). */
static int feed_from(struct gossip *g, const struct ent *e, unsigned int n, uint32_t src,
		     const char **why)
{
	static struct gossip_out reply;
	unsigned char b[2048];
	size_t len = datagram(b, NSWAP_GOSSIP | NSWAP_REPLY, e[0].id, e, n);

	return gossip_receive(g, 0, src, b, len, &reply, why);
}

static int feed(struct gossip *g, const struct ent *e, unsigned int n, const char **why)
{
	return feed_from(g, e, n, e[0].addr, why);
}

static void test_handshake(void)
{
	struct gossip a, b;
	struct gossip_out out[4], reply;
	const char *why;

	node(&a, 1, NULL);
	node(&b, 2, NULL);
	gossip_set_self(&a, 100, 40, 0);
	gossip_set_self(&b, 200, 150, 3);
	gossip_add_seed(&a, ADDR(2));
	CHECK(gossip_round(&b, 1000, out, 4) == 0);	/* knows nobody, no seeds */
	CHECK(gossip_round(&a, 1000, out, 4) == 1);	/* the seed */
	CHECK(out[0].addr == ADDR(2) && out[0].port == 7405);
	CHECK(out[0].len == 56 + 48);			/* its own entry only */
	CHECK(gossip_receive(&b, 1000, ADDR(1), out[0].buf, out[0].len, &reply, &why) == 1);
	CHECK(reply.addr == ADDR(1));
	CHECK(reply.len == 56 + 2 * 48);		/* own entry + a's (news) */
	CHECK(reply.buf[5] == (NSWAP_GOSSIP | NSWAP_REPLY));
	CHECK(gossip_receive(&a, 1000, ADDR(2), reply.buf, reply.len, &out[1], &why) == 0);
	const struct gossip_member *m = gossip_find(&a, 2);

	CHECK(m && m->state == NSWAP_MEMBER_ALIVE && m->capacity == 200 && m->free == 150 &&
	      m->load == 3 && m->addr == ADDR(2) && m->port == 7405);
	m = gossip_find(&b, 1);
	CHECK(m && m->capacity == 100 && m->free == 40);
	CHECK(a.seed_answered == 1);
	/* a knows b now and its seed answered: one push, to b, no seed push */
	CHECK(gossip_round(&a, 2000, out, 4) == 1 && out[0].addr == ADDR(2));
	CHECK(a.stats.joins == 1 && b.stats.joins == 1);
	gossip_free(&a);
	gossip_free(&b);
}

static void test_rejects(void)
{
	struct gossip g;
	struct gossip_out reply;
	struct ent e[25];
	unsigned char b[2048];
	const char *why;
	size_t len;

	node(&g, 9, NULL);
	for (int i = 0; i < 25; i++)
		e[i] = alive(10 + (uint64_t)i, 1, 1);
#define REJECT(expr_len, text) do { \
		CHECK(gossip_receive(&g, 0, ADDR(10), b, (expr_len), &reply, &why) == -1); \
		CHECK(why && strcmp(why, text) == 0); \
	} while (0)
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(55, "datagram shorter than a header");
	b[60] ^= 1;
	REJECT(len, "payload checksum mismatch");
	b[60] ^= 1;
	b[3] ^= 1;
	REJECT(len, "header checksum mismatch");
	b[3] ^= 1;
	REJECT(len - 1, "length does not match the datagram");
	len = datagram(b, NSWAP_GOSSIP, 10, e, 25);
	REJECT(len, "payload is not 1 to 24 whole entries");
	len = datagram(b, NSWAP_PUTPAGE, 10, e, 1);
	REJECT(len, "not a GOSSIP frame");
	len = datagram(b, NSWAP_GOSSIP, 11, e, 2);
	REJECT(len, "first entry is not the sender's");
	e[0].id = 9;
	len = datagram(b, NSWAP_GOSSIP, 9, e, 2);
	REJECT(len, "sender uses this node's id");
	e[0].id = 10;
	e[1].free = 101;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with more free pages than capacity");
	e[1].free = 60;
	e[1].reserved = 1;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with nonzero reserved bytes");
	e[1].reserved = 0;
	e[1].flags = 1;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with nonzero reserved bytes");
	e[1].flags = 0;
	e[1].state = 4;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with an unknown state");
	e[1].state = 0;
	e[1].id = 0;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with node id 0");
	e[1].id = 11;
	e[1].port = 0;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry without an address or port");
	e[1].port = 7405;
	e[1].inc = UINT32_MAX;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with the largest incarnation (none could refute it)");
	e[1].inc = 1;
	e[1].cap = (1ULL << 40) + 1;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 2);
	REJECT(len, "entry with a capacity above 2^40 pages");
	e[1].cap = 100;
	CHECK(g.count == 0 && g.stats.rejected == 16 && g.stats.recv_datagrams == 0);
	/* a bad entry after good ones: nothing of the datagram is applied */
	e[2].cap = 5;
	e[2].free = 6;
	len = datagram(b, NSWAP_GOSSIP, 10, e, 3);
	REJECT(len, "entry with more free pages than capacity");
	CHECK(g.count == 0);
	e[2] = alive(12, 1, 1);
	len = datagram(b, NSWAP_GOSSIP, 10, e, 24);
	CHECK(gossip_receive(&g, 0, ADDR(10), b, len, &reply, &why) == 1);
	CHECK(g.count == 24);
	gossip_free(&g);
}

static void test_precedence(void)
{
	struct gossip g;
	struct ent e[2];
	const char *why;
	const struct gossip_member *m;

	node(&g, 1, NULL);
	e[0] = alive(2, 1, 1);	/* the sender, 2, tells about 3 */
	e[1] = alive(3, 1, 5);
	CHECK(feed(&g, e, 2, &why) == 0);
	m = gossip_find(&g, 3);
	CHECK(m && m->heartbeat == 5 && m->free == 60);
	e[1].hb = 4;		/* older: ignored */
	e[1].free = 10;
	feed(&g, e, 2, &why);
	CHECK(m->heartbeat == 5 && m->free == 60);
	e[1].hb = 6;		/* newer: taken */
	feed(&g, e, 2, &why);
	CHECK(m->heartbeat == 6 && m->free == 10);
	e[1].state = NSWAP_MEMBER_SUSPECT;	/* worse state, same incarnation */
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_SUSPECT);
	e[1].state = NSWAP_MEMBER_ALIVE;	/* only the member may undo it */
	e[1].hb = 9;
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_SUSPECT);
	e[1].inc = 2;		/* ... with a higher incarnation */
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_ALIVE && m->incarnation == 2);
	e[1].state = NSWAP_MEMBER_DEAD;
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_DEAD);
	e[1].state = NSWAP_MEMBER_ALIVE;	/* stale gossip cannot revive it */
	e[1].inc = 1;
	e[1].hb = 100;
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_DEAD && m->incarnation == 2);
	e[1].state = NSWAP_MEMBER_LEFT;	/* LEFT beats DEAD at the same incarnation */
	e[1].inc = 2;
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_LEFT);
	e[1].state = NSWAP_MEMBER_ALIVE;	/* a restart: higher incarnation */
	e[1].inc = 3;
	e[1].hb = 0;
	feed(&g, e, 2, &why);
	CHECK(m->state == NSWAP_MEMBER_ALIVE && m->incarnation == 3 && m->heartbeat == 0);
	gossip_free(&g);
}

static void test_refute(void)
{
	struct gossip g;
	struct gossip_out out[4];
	struct ent e[2];
	const char *why;

	node(&g, 1, NULL);
	e[0] = alive(2, 1, 1);
	e[1] = alive(1, 1, 3);	/* about node 1 itself */
	e[1].state = NSWAP_MEMBER_SUSPECT;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 2 && g.stats.refuted == 1);
	e[1].state = NSWAP_MEMBER_DEAD;	/* an older incarnation's death: nothing to refute */
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 2 && g.stats.refuted == 1);
	e[1].inc = 2;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 3 && g.stats.refuted == 2);
	/* an earlier life of this node, ALIVE at a later incarnation (or at ours
	 * with a heartbeat we never reached): go past it */
	e[1].state = NSWAP_MEMBER_ALIVE;
	e[1].inc = 7;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 8 && g.stats.refuted == 3);
	e[1].inc = 8;
	e[1].hb = 1000;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 9 && g.stats.refuted == 4);
	/* our own entry echoed back (same incarnation, old heartbeat): nothing */
	e[1].inc = 9;
	e[1].hb = 0;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 9 && g.stats.refuted == 4);
	/* the incarnation cannot wrap: at the top nothing more is done */
	e[1].inc = UINT32_MAX;
	e[1].state = NSWAP_MEMBER_DEAD;
	feed(&g, e, 2, &why);
	CHECK(g.self.incarnation == 9);
	/* its next datagram says ALIVE at incarnation 9, first entry */
	CHECK(gossip_round(&g, 1000, out, 4) == 1);
	CHECK(get_le64(out[0].buf + 56) == 1 && out[0].buf[56 + 14] == NSWAP_MEMBER_ALIVE &&
	      get_le32(out[0].buf + 56 + 16) == 9);
	gossip_free(&g);
}

static void test_suspect_dead_expire(void)
{
	struct gossip_config cfg;
	struct gossip g;
	struct gossip_out out[4];
	struct ent e[1];
	const char *why;
	const struct gossip_member *m;

	gossip_config_defaults(&cfg);
	cfg.suspect_rounds = 2;
	cfg.cleanup_rounds = 3;
	node(&g, 1, &cfg);
	e[0] = alive(2, 1, 50);
	feed(&g, e, 1, &why);
	m = gossip_find(&g, 2);
	/* rounds 1-3: a push to 2 each round (the retry), none answered */
	for (int r = 1; r <= 3; r++) {
		CHECK(gossip_round(&g, 1000 * (uint64_t)r, out, 4) == 1 && out[0].addr == ADDR(2));
		CHECK(m->state == NSWAP_MEMBER_ALIVE && g.stats.suspected == 0);
	}
	gossip_round(&g, 4000, out, 4);			/* round 4: the third went unanswered */
	CHECK(m->state == NSWAP_MEMBER_SUSPECT && g.stats.suspected == 1);
	/* the push to a suspect carries its SUSPECT entry, so it can refute */
	CHECK(out[0].len == 56 + 2 * 48 && get_le64(out[0].buf + 56 + 48) == 2 &&
	      out[0].buf[56 + 48 + 14] == NSWAP_MEMBER_SUSPECT);
	gossip_round(&g, 5000, out, 4);
	CHECK(m->state == NSWAP_MEMBER_SUSPECT);
	gossip_round(&g, 6000, out, 4);			/* round 6 = 4 + suspect_rounds */
	m = gossip_find(&g, 2);
	CHECK(m && m->state == NSWAP_MEMBER_DEAD && g.stats.declared_dead == 1);
	gossip_round(&g, 7000, out, 4);
	gossip_round(&g, 8000, out, 4);
	CHECK(gossip_find(&g, 2) != NULL);
	gossip_round(&g, 9000, out, 4);			/* round 9 = 6 + cleanup_rounds */
	CHECK(gossip_find(&g, 2) == NULL && g.count == 0 && g.stats.expired == 1);
	/* answered pushes keep it alive; two unanswered in a row do not
	 * suspect it, an answer in between resets the count */
	feed(&g, e, 1, &why);
	for (int r = 10; r < 20; r++) {
		gossip_round(&g, 1000 * (uint64_t)r, out, 4);
		if (r % 3 == 0) {
			e[0].hb++;
			feed(&g, e, 1, &why);
		}
	}
	m = gossip_find(&g, 2);
	CHECK(m && m->state == NSWAP_MEMBER_ALIVE && g.stats.suspected == 1);
	/* an answer from another address does not count: a third party cannot
	 * vouch for it */
	for (int r = 20; r < 24; r++) {
		gossip_round(&g, 1000 * (uint64_t)r, out, 4);
		e[0].hb++;
		feed_from(&g, e, 1, ADDR(99), &why);
	}
	CHECK(m->state == NSWAP_MEMBER_SUSPECT && m->addr == ADDR(2));
	/* nor can it move the member elsewhere: only the member's own datagram,
	 * from the address it names, changes the address */
	struct ent moved[2] = { alive(3, 1, 1), alive(2, 2, 200) };

	moved[1].addr = ADDR(98);
	feed(&g, moved, 2, &why);
	CHECK(m->incarnation == 2 && m->addr == ADDR(2));
	moved[0] = moved[1];
	moved[0].hb = 201;
	feed(&g, moved, 1, &why);
	CHECK(m->addr == ADDR(98));
	gossip_free(&g);
}

static void test_rumour_sends(void)
{
	struct gossip g;
	struct gossip_out out[4];
	struct ent e[3];
	const char *why;
	const struct gossip_member *m;

	node(&g, 1, NULL);
	e[0] = alive(2, 1, 100);	/* old members: not news */
	e[1] = alive(3, 1, 100);
	feed(&g, e, 2, &why);
	CHECK(gossip_find(&g, 2)->rumour_left == 0 && gossip_find(&g, 3)->rumour_left == 0);
	e[2] = alive(4, 1, 1);		/* heartbeat 1: joined lately */
	feed(&g, e, 3, &why);
	m = gossip_find(&g, 4);
	/* rumour_factor 3 x ceil(log2(count 3 + 2)) = 3 x 3 */
	CHECK(m->rumour_left == 9);
	unsigned int sends = 0;

	/* 3 members, fanout 3: 3 datagrams a round, each carrying the rumour:
	 * gone after exactly 3 rounds (before anyone is suspected in round 4) */
	for (int r = 0; r < 3; r++) {
		CHECK(m->rumour_left == 9 - 3 * r);
		sends += gossip_round(&g, 1000 * (uint64_t)(r + 1), out, 4);
	}
	CHECK(sends == 9 && m->rumour_left == 0);
	gossip_free(&g);
}

static void test_server_set(void)
{
	struct gossip g;
	struct ent e[6];
	const char *why;
	uint64_t set[8];
	unsigned int n;

	node(&g, 1, NULL);
	for (int i = 0; i < 6; i++)
		e[i] = alive(2 + (uint64_t)i, 1, 100);
	e[1].free = 0;		/* full: never chosen */
	e[2].state = NSWAP_MEMBER_SUSPECT;
	feed(&g, e, 6, &why);
	n = gossip_server_set(&g, set, 0, 8);
	CHECK(n == 4);		/* 2, 5, 6, 7 */
	for (unsigned int i = 0; i < n; i++)
		CHECK(set[i] != 3 && set[i] != 4);
	/* kept while usable, dropped when found full */
	gossip_note_free(&g, set[0], 0);
	uint64_t dropped = set[0];

	n = gossip_server_set(&g, set, n, 2);
	CHECK(n == 2 || n == 3);
	for (unsigned int i = 0; i < n; i++)
		CHECK(set[i] != dropped);
	gossip_free(&g);
}

static void test_placement(void)
{
	struct nswap_place_cand c[3] = { { 100, 0 }, { 100, 0 }, { 50, 0 } };
	uint64_t s = 12345;
	int hits[3] = { 0 };

	CHECK(nswap_place_pick(c, 3, 1, 2) == -1);	/* all full */
	c[2].free = 1;
	CHECK(nswap_place_pick(c, 3, 0, 0xffffffffu) == 2);	/* the only one with room */
	c[0].free = 10;		/* 90 % full */
	c[1].free = 90;		/* 10 % full */
	c[2].free = 0;
	for (int i = 0; i < 10000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		int k = nswap_place_pick(c, 3, (uint32_t)s, (uint32_t)(s >> 32));

		CHECK(k >= 0 && k < 3);
		if (k >= 0)
			hits[k]++;
	}
	/* 0 only when both draws are 0: p = 0.1^2 = 1 % (binomial sd ~10) */
	CHECK(hits[2] == 0);
	CHECK(hits[0] > 50 && hits[0] < 160);
	/* the less full of the two draws wins, by fill not by free pages */
	struct nswap_place_cand d[2] = { { 1000, 500 }, { 10, 9 } };

	CHECK(nswap_place_less_full(&d[1], &d[0]));
	CHECK(nswap_place_pick(d, 2, 0, 0xffffffffu) == 1);
}

static void test_hostile(void)
{
	struct gossip g;
	struct ent e[24];
	const char *why;
	uint32_t rumours, timers;
	const struct gossip_member *m;

	node(&g, 1, NULL);
	e[0] = alive(2, 1, 100);
	e[1] = alive(3, 1000, 100);
	feed(&g, e, 2, &why);
	m = gossip_find(&g, 3);
	/* an incarnation far above the known one is ignored (no pinning) */
	e[1].inc = 1000 + (1U << 20) + 1;
	e[1].state = NSWAP_MEMBER_DEAD;
	feed(&g, e, 2, &why);
	CHECK(m->incarnation == 1000 && m->state == NSWAP_MEMBER_ALIVE);
	/* one peer re-arming one member 23 times a datagram, 2000 datagrams in
	 * one round: the rumour stack and the timer list stay small */
	uint32_t inc = 1000;

	for (int d = 0; d < 2000; d++) {
		for (int i = 1; i < 24; i++) {
			e[i] = alive(3, ++inc, 100);
			e[i].state = (uint8_t)(i % 2 ? NSWAP_MEMBER_DEAD : NSWAP_MEMBER_ALIVE);
		}
		feed(&g, e, 24, &why);
	}
	gossip_queues(&g, &rumours, &timers);
	CHECK(g.count == 2);
	CHECK(rumours <= 64 && timers <= 4 * 2 + 256);
	gossip_free(&g);
	/* placement: absurd free counts cannot wrap the total to "no room" */
	struct nswap_place_cand c[2] = { { ~0ULL, 1ULL << 63 }, { ~0ULL, 1ULL << 63 } };

	CHECK(nswap_place_pick(c, 2, 7, 9) >= 0);
}

/* Node 1 hears of members 2..201 (old heartbeats: not news), 23 a datagram
 * from senders it knows after the first. */
static void know_200(struct gossip *g)
{
	struct ent e[24];
	const char *why;

	node(g, 1, NULL);
	for (uint64_t first = 2; first <= 201; first += 23) {
		unsigned int n = 0;

		e[n++] = alive(first == 2 ? 2 : first - 1, 1, 100);
		for (uint64_t id = first; id < first + 23 && id <= 201; id++)
			if (id != e[0].id)
				e[n++] = alive(id, 1, 100);
		CHECK(feed(g, e, n, &why) == 0);
	}
	CHECK(g->count == 200);
}

static int carries(const struct gossip_out *o, uint64_t id)
{
	for (size_t i = 1; 56 + 48 * (i + 1) <= o->len; i++)
		if (get_le64(o->buf + 56 + 48 * i) == id)
			return 1;
	return 0;
}

static void test_steady_room(void)
{
	struct gossip g;
	struct gossip_out out[4];
	struct ent e[6];
	const char *why;

	know_200(&g);
	/* rounds 1-4: the 200 first heard of are in the last 4 rounds' window
	 * (all new, 200 >= 4 and >= 1/16 of what was heard): learning, full
	 * datagrams of 24 entries (56 + 24 x 48 = 1208 bytes) */
	for (int r = 1; r <= 4; r++) {
		CHECK(gossip_round(&g, 1000 * (uint64_t)r, out, 4) == 3);
		CHECK(gossip_learning(&g) == 1);
		for (int i = 0; i < 3; i++)
			CHECK(out[i].len == 1208);
	}
	/* round 5: nothing heard in rounds 1-4: stable, 3/4 of the room: 18
	 * entries, 56 + 18 x 48 = 920 bytes (rumours of the unanswered pushes'
	 * suspicions included) */
	for (int r = 5; r <= 8; r++) {
		CHECK(gossip_round(&g, 1000 * (uint64_t)r, out, 4) == 3);
		CHECK(gossip_learning(&g) == 0);
		for (int i = 0; i < 3; i++)
			CHECK(out[i].len == 920);
	}
	/* 3 new members (one join elsewhere is not learning: fewer than 4) */
	e[0] = alive(2, 1, 200);
	for (int i = 1; i <= 3; i++)
		e[i] = alive(300 + (uint64_t)i, 1, 100);
	feed(&g, e, 4, &why);
	CHECK(gossip_round(&g, 9000, out, 4) == 3 && gossip_learning(&g) == 0);
	/* 4 more in the window (7 new of 9 heard): learning, full datagrams
	 * again from the next round */
	e[0] = alive(2, 1, 201);
	for (int i = 1; i <= 4; i++)
		e[i] = alive(400 + (uint64_t)i, 1, 100);
	feed(&g, e, 5, &why);
	CHECK(gossip_round(&g, 10000, out, 4) == 3 && gossip_learning(&g) == 1);
	CHECK(out[0].len == 1208);
	gossip_free(&g);
	/* a 10-node table never fills 3/4 of 24: 10 entries either way */
}

static void test_fresh_first(void)
{
	struct gossip g;
	struct gossip_out out[4];
	struct ent e[1];
	const char *why;
	unsigned int with = 0, sent = 0;

	know_200(&g);
	for (int r = 1; r <= 5; r++)
		gossip_round(&g, 1000 * (uint64_t)r, out, 4);
	CHECK(gossip_learning(&g) == 0);
	/* member 150's own entry, heartbeat advanced: fresh news, carried by
	 * each of the next GOSSIP_FRESH_SENDS (4) datagrams, then only when
	 * the random part draws it (p ~ 2/200 a datagram) */
	e[0] = alive(150, 1, 101);
	e[0].free = 7;
	CHECK(feed(&g, e, 1, &why) == 0);
	CHECK(gossip_find(&g, 150)->free == 7 && gossip_find(&g, 150)->fresh_left == 4);
	for (int r = 6; r <= 7; r++) {
		unsigned int n = gossip_round(&g, 1000 * (uint64_t)r, out, 4);

		for (unsigned int i = 0; i < n; i++, sent++)
			if (sent < 4)
				with += carries(&out[i], 150);
	}
	CHECK(with == 4);
	CHECK(gossip_find(&g, 150)->fresh_left == 0);
	gossip_free(&g);
}

static void test_config_check(void)
{
	struct gossip_config c;

	gossip_config_defaults(&c);
	CHECK(gossip_config_check(&c) == NULL);
	c.fanout = 0;
	CHECK(gossip_config_check(&c) != NULL);
	gossip_config_defaults(&c);
	c.max_entries = 25;
	CHECK(gossip_config_check(&c) != NULL);
	gossip_config_defaults(&c);
	c.interval_ms = 5;
	CHECK(gossip_config_check(&c) != NULL);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "handshake", test_handshake },
	{ "rejects", test_rejects },
	{ "precedence", test_precedence },
	{ "refute", test_refute },
	{ "suspect_dead_expire", test_suspect_dead_expire },
	{ "rumour_sends", test_rumour_sends },
	{ "server_set", test_server_set },
	{ "placement", test_placement },
	{ "hostile", test_hostile },
	{ "steady_room", test_steady_room },
	{ "fresh_first", test_fresh_first },
	{ "config_check", test_config_check },
};

int main(int argc, char **argv)
{
	int ran = 0;

	crc32c_init(0);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name))
			continue;
		int before = failures;

		tests[i].fn();
		printf("%s %s\n", failures == before ? "ok" : "FAIL", tests[i].name);
		ran++;
	}
	if (!ran) {
		fprintf(stderr, "gossip-test: no test named %s\n", argv[1]);
		return 2;
	}
	return failures ? 1 : 0;
}
