// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * nswap-sim: an nswap cluster in virtual time, driving nswapd's real gossip
 * code (src/nswapd/gossip.c: encoder, decoder, merge rules, failure
 * detector, server choice) and the real placement rule
 * (src/include/nswap_place.h) for every node.  What is simulated is only
 * what is around them: the network (a datagram arrives within its round,
 * or is lost with --loss), each node's memory demand, the pages, and the
 * elastic cache.  One run prints one JSON object; benchmarks/cluster_sim.py
 * runs the sizes and draws the plots.
 *
 * Model, per round (one gossip interval):
 *  - every node has RAM `mem` pages; its own demand follows a trace (idle
 *    at 20-60 %, busy episodes at 110-160 % of mem);
 *  - it lends capacity = 90 % of mem minus its demand (elastic cache, the
 *    paper's policy: shrink as soon as local demand rises); when what it
 *    stores exceeds that, the excess pages are punted (migrated) to servers
 *    of its own server set, or back to their owners' disks when none has
 *    room;
 *  - its own pages beyond 90 % of mem are swapped out: placed with the
 *    placement rule among its server set (gossip_server_set, k servers),
 *    after ENOSPC the next choice, after 3 the local disk; pages come back
 *    (freed remotely) when demand falls;
 *  - a client places by the free pages each PUTPAGE reply carries
 *    (NSWAP_FEAT_FREE_HINT, as nswap.ko does) while that figure is younger
 *    than --reply-hints rounds, by its table's (nswapd's hints) after;
 *  - --placement oracle replaces both choices by a central allocator that
 *    knows every server's true fill and picks the least full (the baseline
 *    for placement imbalance); gossip still runs, for equal traffic.
 * Phases: a cold start (every node knows 3 seeds, nothing else) of --warmup
 * rounds, or fewer once the mean node knows --settle of the others; then
 * --rounds rounds with busy episodes.  Events, in rounds after the warm-up:
 * --join R (one new node, seeded with 3 random nodes), --leave R (a node
 * drains: every page it stores is migrated, then it says LEFT and stops),
 * --crash R (a node stops; the pages it stored are lost, counted: one copy
 * per page until redundancy exists).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "gossip.h"
#include "nswap_place.h"

#define BASE_ADDR	0x0A000001u	/* node i is 10.0.0.1 + i */
#define SET_MAX		32
#define PLACE_TRIES	3
#define SET_REFRESHES	2
#define REPLY_LAG_MAX	128	/* --reply-lag: replies a client waits for at most */

struct hold {
	uint32_t peer;		/* server (in a client's list) or client (in a server's) */
	uint32_t count;
};

struct holds {
	struct hold *h;
	uint32_t n, alloc;
};

struct node {
	struct gossip g;
	int up;
	double base, level;	/* demand as a fraction of mem */
	int busy_left;		/* rounds left in a busy episode */
	double busy_to;
	int64_t demand, capacity, used, out_remote, out_disk;
	struct holds mine;	/* my pages on servers */
	struct holds stored;	/* pages I store, per owner */
	uint64_t punted_round;	/* last round it shrank below its pages */
	uint64_t squeezed_round;	/* last round its own demand shrank it below its pages */
	uint64_t best_free_round;	/* overflow: best_free is this round's */
	uint64_t best_free;
	uint64_t set[SET_MAX];
	unsigned int nset;
	/* nswap.ko's figures from PUTPAGE replies, parallel to set[] */
	struct reply_hint {
		uint64_t id, free, capacity, round;	/* round 0: none */
	} rh[SET_MAX];
	/* replies on their way: each arrives once --reply-lag more pages
	 * were placed, or at the end of the round (a round is 1 s, a reply
	 * takes about a millisecond) */
	struct reply_hint lag[REPLY_LAG_MAX];
	unsigned int lag_head, lag_n;
	uint64_t lag_round;
};

static struct opts {
	uint32_t nodes, rounds, warmup, mem, set_k;
	uint32_t overflow;	/* nswapd's overflow, pages; 0: off (its default) */
	uint32_t reply_hints;	/* rounds a PUTPAGE reply's free figure is used; 0: off */
	uint32_t reply_lag;	/* pages placed before a reply arrives */
	double loss, busy_rate, settle;
	int oracle;
	int64_t join, leave, crash;
	uint64_t seed;
	struct gossip_config gc;
} o;

static struct node *nodes;
static uint32_t total;	/* nodes incl. the one that joins */
static uint64_t cur_round;
static uint64_t warm_end;	/* last warm-up round; 0 while warming up */
static uint64_t trace_rng, net_rng;

static struct {
	/* disk: pages written to a local disk, swapped out there or punted home
	 * by a shrinking server; disk_with_room: of those, while some server of
	 * the cluster still had room */
	uint64_t placed, enospc, disk, disk_with_room, migrations, punted_home, returned_home, lost;
	uint64_t pages_moved_in;	/* pages that were ever placed remotely */
	uint64_t overflows;	/* pages a full server took (overflow), to punt on */
	double imb_sum, imb_max, imbp_sum, imbp_max;
	uint32_t imb_samples;
} st;

static double urand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void oracle_update(uint32_t j);

static uint32_t addr_of(uint32_t i) { return BASE_ADDR + i; }
static uint32_t node_of_addr(uint32_t a) { return a - BASE_ADDR; }
static uint32_t node_of_id(uint64_t id) { return (uint32_t)(id - 1); }

/* ---- page bookkeeping ---- */

static void holds_add(struct holds *hs, uint32_t peer, int64_t d)
{
	for (uint32_t i = 0; i < hs->n; i++)
		if (hs->h[i].peer == peer) {
			hs->h[i].count += d;
			if (!hs->h[i].count)
				hs->h[i] = hs->h[--hs->n];
			return;
		}
	if (d <= 0)
		abort();
	if (hs->n == hs->alloc) {
		hs->alloc = hs->alloc ? 2 * hs->alloc : 8;
		hs->h = realloc(hs->h, hs->alloc * sizeof(*hs->h));
		if (!hs->h)
			abort();
	}
	hs->h[hs->n++] = (struct hold){ peer, (uint32_t)d };
}

static int64_t room(const struct node *s)
{
	return s->up && s->capacity > s->used ? s->capacity - s->used : 0;
}

static void store(uint32_t owner, uint32_t server, int64_t n)
{
	holds_add(&nodes[owner].mine, server, n);
	holds_add(&nodes[server].stored, owner, n);
	nodes[server].used += n;
	oracle_update(server);
}

static int64_t cluster_room(void)
{
	int64_t r = 0;

	for (uint32_t i = 0; i < total; i++)
		r += room(&nodes[i]);
	return r;
}

/* ---- placement ---- */

/* The oracle: an indexed min-heap of every node by true fill (used /
 * capacity; no room sorts last), updated whenever a node's pages or
 * capacity change. */
static uint32_t *heap, *heap_pos;

static double fill_key(uint32_t j)
{
	return room(&nodes[j]) ? (double)nodes[j].used / (double)nodes[j].capacity : 1e300;
}

static void heap_swap(uint32_t a, uint32_t b)
{
	uint32_t t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
	heap_pos[heap[a]] = a;
	heap_pos[heap[b]] = b;
}

static void oracle_update(uint32_t j)
{
	uint32_t i;

	if (!o.oracle)
		return;
	i = heap_pos[j];
	while (i > 0 && fill_key(heap[(i - 1) / 2]) > fill_key(heap[i])) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < total && fill_key(heap[l]) < fill_key(heap[m]))
			m = l;
		if (r < total && fill_key(heap[r]) < fill_key(heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
}

static int64_t oracle_pick(uint32_t self)
{
	uint32_t j = heap[0];

	if (!room(&nodes[j]))
		return -1;
	if (j != self)
		return j;
	/* the least full is the asker itself (a punting server): next best child */
	int64_t best = -1;

	for (uint32_t c = 1; c <= 2 && c < total; c++)
		if (room(&nodes[heap[c]]) && (best < 0 || fill_key(heap[c]) < fill_key((uint32_t)best)))
			best = heap[c];
	return best;
}

/* The most free pages of an ALIVE member of node j's table (not j): what
 * nswapd's set_overflow arms from, once per round. */
static uint64_t best_free(uint32_t j)
{
	struct node *s = &nodes[j];

	if (s->best_free_round != cur_round) {
		s->best_free = 0;
		for (uint32_t m = 0; m < s->g.count; m++) {
			const struct gossip_member *e = &s->g.members[m];

			if (e->state == NSWAP_MEMBER_ALIVE && e->free > s->best_free)
				s->best_free = e->free;
		}
		s->best_free_round = cur_round;
	}
	return s->best_free;
}

/* nswapd's overflow (src/nswapd/server.c set_overflow): a full server j
 * still takes a client's page when it was not squeezed lately (its own
 * memory shrank it below its pages within ELASTIC_HOLD_ROUNDS rounds) and
 * its table knows a member with room: at most min(--overflow, half that
 * member's free pages) over its capacity; the round's shrink check punts
 * the excess on.  Not modelled: the stuck rule (a target refusing owners
 * not connected to it: the simulator has no connections), and punt()
 * places over the server's own set where nswapd sends to the member with
 * the most free pages; pages that find no room go home to the owner's disk
 * here, where nswapd keeps them over its limit.  The oracle never
 * overflows, so imbalance ratios with --overflow compare unlike runs. */
#define ELASTIC_HOLD_ROUNDS	10

static int overflow_takes(uint32_t j)
{
	struct node *s = &nodes[j];
	uint64_t allow;

	if (!o.overflow || !s->up || s->capacity <= 0 ||
	    (s->squeezed_round && cur_round - s->squeezed_round < ELASTIC_HOLD_ROUNDS))
		return 0;
	allow = best_free(j) / 2;
	if (allow > o.overflow)
		allow = o.overflow;
	return s->used < s->capacity + (int64_t)allow;
}

/* Keep each reply figure with its server when the set changed (nswap.ko
 * keeps them per server; the set only names which servers it has). */
static void reply_hints_follow_set(struct node *c)
{
	struct reply_hint old[SET_MAX];

	memcpy(old, c->rh, sizeof(old));
	for (unsigned int i = 0; i < c->nset; i++) {
		if (c->rh[i].id == c->set[i])
			continue;
		c->rh[i] = (struct reply_hint){ .id = c->set[i] };
		for (unsigned int j = 0; j < SET_MAX; j++)
			if (old[j].id == c->set[i]) {
				c->rh[i] = old[j];
				break;
			}
	}
}

/* A reply arrives: its figure replaces the one kept for its server (none
 * if the server left the set meanwhile). */
static void reply_arrives(struct node *c, const struct reply_hint *h)
{
	for (unsigned int i = 0; i < c->nset; i++)
		if (c->rh[i].id == h->id) {
			c->rh[i] = *h;
			c->rh[i].round = cur_round;
			return;
		}
}

/* Replies that have arrived before the next page is placed: all of them
 * in a new round, else those --reply-lag pages old. */
static void replies_arrive(struct node *c, unsigned int keep)
{
	if (c->lag_round != cur_round)
		keep = 0;
	c->lag_round = cur_round;
	while (c->lag_n > keep) {
		reply_arrives(c, &c->lag[c->lag_head]);
		c->lag_head = (c->lag_head + 1) % REPLY_LAG_MAX;
		c->lag_n--;
	}
}

/* What a server's reply to a client's PUTPAGE will tell it: its free pages
 * and capacity after the request (the page stored or refused), known to
 * the client --reply-lag pages later. */
static void reply_hint_note(struct node *c, unsigned int i, const struct node *srv)
{
	int64_t f = room(srv);
	struct reply_hint h = {
		.id = c->set[i],
		.free = f > 0 ? (uint64_t)f : 0,
		.capacity = srv->capacity > 0 ? (uint64_t)srv->capacity : 0,
	};

	if (c->lag_n == REPLY_LAG_MAX)
		replies_arrive(c, REPLY_LAG_MAX - 1);
	c->lag[(c->lag_head + c->lag_n) % REPLY_LAG_MAX] = h;
	c->lag_n++;
	replies_arrive(c, o.reply_lag);
}

/* One server for a page of `self` (a client's own page, may_overflow, or one
 * it punts): gossip's server set and the placement rule, as nswapd and
 * nswap.ko do; a server that answers ENOSPC is left out of the next choice.
 * With --overflow a full server may take a client's page instead. */
static int64_t place(uint32_t self, int may_overflow)
{
	struct node *c = &nodes[self];
	struct nswap_place_cand cand[SET_MAX];
	unsigned int full[SET_MAX] = { 0 };
	/* a client's own page goes through nswap.ko, which keeps the replies'
	 * figures; a punted page is placed by nswapd, from its table */
	int replies = o.reply_hints && may_overflow;

	if (o.oracle) {
		int64_t j = oracle_pick(self);

		if (j < 0)
			return -1;
		return j;
	}
	for (int t = 0; t < PLACE_TRIES * (SET_REFRESHES + 1); t++) {
		/* a fresh server set at first and after every PLACE_TRIES ENOSPCs:
		 * nswapd drops the servers found full and draws others */
		if (t % PLACE_TRIES == 0) {
			c->nset = gossip_server_set(&c->g, c->set, c->nset, o.set_k);
			memset(full, 0, sizeof(full));
			if (replies) {
				reply_hints_follow_set(c);
				replies_arrive(c, o.reply_lag);
			}
		}
		for (unsigned int i = 0; i < c->nset; i++) {
			const struct gossip_member *m = gossip_find(&c->g, c->set[i]);
			const struct reply_hint *h = &c->rh[i];

			cand[i].capacity = m ? m->capacity : 0;
			cand[i].free = m && !full[i] ? m->free : 0;
			if (replies && h->round && h->round + o.reply_hints > cur_round) {
				cand[i].capacity = h->capacity;
				cand[i].free = full[i] ? 0 : h->free;
			}
		}
		int i = nswap_place_pick(cand, c->nset, (uint32_t)(urand(&net_rng) * 4294967296.0),
					 (uint32_t)(urand(&net_rng) * 4294967296.0));

		if (i < 0)
			break;
		uint32_t j = node_of_id(c->set[i]);

		if (j != self && room(&nodes[j])) {
			/* the table's own figure: nswapd never sees the replies */
			const struct gossip_member *m = gossip_find(&c->g, c->set[i]);

			if (m && m->free)
				gossip_note_free(&c->g, c->set[i], m->free - 1);
			if (replies) {
				nodes[j].used++;	/* the reply's figure counts this page */
				reply_hint_note(c, (unsigned int)i, &nodes[j]);
				nodes[j].used--;
			}
			return j;
		}
		if (j != self && may_overflow && overflow_takes(j)) {
			gossip_note_free(&c->g, c->set[i], 0);	/* it answered OK, but is full */
			if (replies)
				reply_hint_note(c, (unsigned int)i, &nodes[j]);
			st.overflows++;
			return j;
		}
		st.enospc++;
		full[i] = 1;
		gossip_note_free(&c->g, c->set[i], 0);
		if (replies && j != self)
			reply_hint_note(c, (unsigned int)i, &nodes[j]);
	}
	return -1;
}

/* ---- one round of memory ---- */

static void trace_step(struct node *n)
{
	if (n->busy_left > 0) {
		n->busy_left--;
		n->level += (n->busy_to - n->level) * 0.3;
	} else {
		n->level += (n->base - n->level) * 0.3;
		/* busy episodes start after the warm-up: it only builds the tables */
		if (warm_end && cur_round > warm_end && urand(&trace_rng) < o.busy_rate) {
			n->busy_left = 10 + (int)(urand(&trace_rng) * 30);
			n->busy_to = 1.1 + 0.5 * urand(&trace_rng);
		}
	}
	n->demand = (int64_t)(n->level * o.mem);
}

/* Move n pages stored at server s elsewhere (shrink or drain). */
static void punt(uint32_t s, int64_t n)
{
	struct node *srv = &nodes[s];

	while (n > 0 && srv->stored.n) {
		struct hold h = srv->stored.h[srv->stored.n - 1];
		uint32_t owner = h.peer;
		int64_t j = place(s, 0);	/* a PUNTPAGE never overflows */

		holds_add(&srv->stored, owner, -1);
		holds_add(&nodes[owner].mine, s, -1);
		srv->used--;
		oracle_update(s);
		n--;
		if (j >= 0 && (uint32_t)j != owner && (uint32_t)j != s) {
			store(owner, (uint32_t)j, 1);
			st.migrations++;
		} else if (j >= 0 && (uint32_t)j == owner) {
			/* the owner has room again: the page goes home to its RAM */
			nodes[owner].out_remote--;
			st.returned_home++;
		} else {
			/* back to the owner, who writes it to its disk */
			nodes[owner].out_remote--;
			nodes[owner].out_disk++;
			st.punted_home++;
			st.disk++;
			if (cluster_room() > 0)
				st.disk_with_room++;
		}
	}
}

static void swap_out(uint32_t i, int64_t n)
{
	struct node *c = &nodes[i];

	for (; n > 0; n--) {
		int64_t j = place(i, 1);

		if (j >= 0) {
			store(i, (uint32_t)j, 1);
			c->out_remote++;
			st.placed++;
		} else {
			c->out_disk++;
			st.disk++;
			if (cluster_room() > 0)
				st.disk_with_room++;
		}
	}
}

static void swap_in(uint32_t i, int64_t n)
{
	struct node *c = &nodes[i];
	int64_t d = n < c->out_disk ? n : c->out_disk;

	c->out_disk -= d;
	n -= d;
	while (n > 0 && c->mine.n) {
		struct hold h = c->mine.h[c->mine.n - 1];
		int64_t k = n < h.count ? n : h.count;

		holds_add(&c->mine, h.peer, -k);
		holds_add(&nodes[h.peer].stored, i, -k);
		nodes[h.peer].used -= k;
		oracle_update(h.peer);
		c->out_remote -= k;
		n -= k;
	}
}

static void memory_round(void)
{
	for (uint32_t i = 0; i < total; i++) {
		struct node *n = &nodes[i];

		if (!n->up)
			continue;
		trace_step(n);
		int64_t lend = (int64_t)(0.9 * o.mem) - n->demand;
		int64_t was = n->capacity;

		n->capacity = lend > 0 ? lend : 0;
		/* nswapd's elastic_squeezed(): its memory shrank it below its use
		 * (not pages it took by overflow, which only punt) */
		if (n->capacity < was && n->used > n->capacity)
			n->squeezed_round = cur_round;
		oracle_update(i);
		if (n->used > n->capacity) {
			n->punted_round = cur_round;
			punt(i, n->used - n->capacity);
		}
	}
	for (uint32_t i = 0; i < total; i++) {
		struct node *n = &nodes[i];

		if (!n->up)
			continue;
		int64_t want = n->demand - (int64_t)(0.9 * o.mem);
		int64_t out = n->out_remote + n->out_disk;

		if (want < 0)
			want = 0;
		if (want > out)
			swap_out(i, want - out);
		else if (want < out)
			swap_in(i, out - want);
	}
	for (uint32_t i = 0; i < total; i++) {
		struct node *n = &nodes[i];

		if (n->up)
			gossip_set_self(&n->g, (uint64_t)n->capacity,
					(uint64_t)(n->capacity > n->used ? n->capacity - n->used : 0),
					n->stored.n);
	}
}

/* ---- network ---- */

static struct gossip_out outs[GOSSIP_MAX_FANOUT + GOSSIP_MAX_SEEDS], reply, reply2;

static void deliver(uint32_t from, struct gossip_out *d, uint64_t now)
{
	uint32_t to = node_of_addr(d->addr);
	const char *why;

	if (to >= total || !nodes[to].up || urand(&net_rng) < o.loss)
		return;
	int r = gossip_receive(&nodes[to].g, now, addr_of(from), d->buf, d->len, &reply, &why);

	if (r < 0) {
		fprintf(stderr, "nswap-sim: node %u rejected a datagram of node %u: %s\n", to, from, why);
		exit(3);
	}
	if (r == 1 && nodes[from].up && urand(&net_rng) >= o.loss) {
		reply2 = reply;
		if (gossip_receive(&nodes[from].g, now, addr_of(to), reply2.buf, reply2.len, &reply,
				   &why) < 0) {
			fprintf(stderr, "nswap-sim: node %u rejected a reply of node %u: %s\n", from, to,
				why);
			exit(3);
		}
	}
}

static void gossip_round_all(uint64_t now)
{
	for (uint32_t k = 0; k < total; k++) {
		/* a random start and stride: no node always goes first */
		uint32_t i = (uint32_t)((k * 2654435761ULL + (uint64_t)now) % total);

		if (!nodes[i].up)
			continue;
		unsigned int n = gossip_round(&nodes[i].g, now, outs, GOSSIP_MAX_FANOUT);

		for (unsigned int d = 0; d < n; d++)
			deliver(i, &outs[d], now);
	}
}

/* ---- measurements ---- */

static double fill_mean;

/* Max fill / mean fill (fill = used / capacity) over up nodes that lend.
 * placement_only leaves out nodes that shrank below their pages in the
 * last PINNED_ROUNDS rounds: elasticity, not placement, made those full
 * (they sit at exactly 100 % after punting), and they would pin the max
 * at 1 / mean for every placement rule alike. */
#define PINNED_ROUNDS	5

static double imbalance(int placement_only)
{
	double used = 0, cap = 0, maxfill = 0;

	for (uint32_t i = 0; i < total; i++) {
		struct node *n = &nodes[i];

		if (!n->up || n->capacity <= 0)
			continue;
		if (placement_only && n->punted_round && n->punted_round + PINNED_ROUNDS > cur_round)
			continue;
		used += n->used;
		cap += n->capacity;
		double f = (double)n->used / n->capacity;

		if (f > maxfill)
			maxfill = f;
	}
	fill_mean = cap > 0 ? used / cap : 0;
	return used > 0 ? maxfill / (used / cap) : 1.0;
}

/* Fraction of up nodes (not `who`) whose table has `who` in a state that
 * `want` accepts: 0 = ALIVE, 1 = not ALIVE (suspect, dead, left or gone). */
static double seen(uint32_t who, int want)
{
	uint32_t up = 0, yes = 0;

	for (uint32_t i = 0; i < total; i++) {
		if (!nodes[i].up || i == who)
			continue;
		const struct gossip_member *m = gossip_find(&nodes[i].g, nodes[who].g.self.id);

		up++;
		if (want == 0 ? m && m->state == NSWAP_MEMBER_ALIVE : !m || m->state != NSWAP_MEMBER_ALIVE)
			yes++;
	}
	return up ? (double)yes / up : 1.0;
}

/* Fraction of up nodes still learning the cluster (full random samples). */
static double learning_fraction(void)
{
	uint32_t up = 0, yes = 0;

	for (uint32_t i = 0; i < total; i++)
		if (nodes[i].up) {
			up++;
			yes += gossip_learning(&nodes[i].g) != 0;
		}
	return up ? (double)yes / up : 0;
}

static double known_fraction(void)
{
	double sum = 0;
	uint32_t up = 0, live = 0;

	for (uint32_t i = 0; i < total; i++)
		live += nodes[i].up;
	for (uint32_t i = 0; i < total; i++)
		if (nodes[i].up) {
			sum += (double)gossip_alive(&nodes[i].g) / (live - 1);
			up++;
		}
	return up ? sum / up : 0;
}

static void node_start(uint32_t i, uint64_t now)
{
	struct node *n = &nodes[i];

	if (gossip_init(&n->g, &o.gc, i + 1, addr_of(i), 7405, 1000, o.seed * 7919 + i + 1, now)) {
		fprintf(stderr, "nswap-sim: out of memory at node %u\n", i);
		exit(1);
	}
	n->up = 1;
	n->base = 0.2 + 0.4 * urand(&trace_rng);
	n->level = n->base;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: nswap-sim [--nodes N] [--warmup W] [--settle F] [--rounds R] [--seed S]\n"
		"                 [--loss P] [--fanout F] [--entries E] [--suspect-rounds R] [--set K]\n"
		"                 [--busy-rate P] [--mem PAGES] [--placement gossip|oracle]\n"
		"                 [--join R] [--leave R] [--crash R] [--overflow PAGES]\n"
		"                 [--reply-hints ROUNDS] [--reply-lag PAGES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "nodes", 1, 0, 'n' }, { "rounds", 1, 0, 'r' }, { "warmup", 1, 0, 'w' }, { "settle", 1, 0, 'K' },
		{ "seed", 1, 0, 's' }, { "loss", 1, 0, 'l' }, { "fanout", 1, 0, 'f' },
		{ "entries", 1, 0, 'e' }, { "suspect-rounds", 1, 0, 'S' }, { "set", 1, 0, 'k' },
		{ "busy-rate", 1, 0, 'b' }, { "mem", 1, 0, 'm' }, { "placement", 1, 0, 'p' },
		{ "join", 1, 0, 'J' }, { "leave", 1, 0, 'L' }, { "crash", 1, 0, 'C' },
		{ "overflow", 1, 0, 'O' }, { "reply-hints", 1, 0, 'R' },
		{ "reply-lag", 1, 0, 'G' }, { 0 }
	};
	int c;

	o = (struct opts){ .nodes = 100, .rounds = 100, .warmup = 40, .mem = 1000, .set_k = 32,
			   .busy_rate = 0.01, .reply_hints = 2, .reply_lag = 32, .join = -1, .leave = -1, .crash = -1, .seed = 1 };
	gossip_config_defaults(&o.gc);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o.nodes = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o.rounds = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'w': o.warmup = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'K': o.settle = strtod(optarg, NULL); break;
		case 's': o.seed = strtoull(optarg, NULL, 0); break;
		case 'l': o.loss = strtod(optarg, NULL); break;
		case 'f': o.gc.fanout = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'e': o.gc.max_entries = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'S': o.gc.suspect_rounds = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': o.set_k = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'b': o.busy_rate = strtod(optarg, NULL); break;
		case 'm': o.mem = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p':
			if (strcmp(optarg, "gossip") && strcmp(optarg, "oracle"))
				usage();
			o.oracle = !strcmp(optarg, "oracle");
			break;
		case 'J': o.join = strtoll(optarg, NULL, 0); break;
		case 'L': o.leave = strtoll(optarg, NULL, 0); break;
		case 'C': o.crash = strtoll(optarg, NULL, 0); break;
		case 'O':
			if (optarg[0] == '-')
				usage();
			o.overflow = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'R':
			if (optarg[0] == '-')
				usage();
			o.reply_hints = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'G':
			if (optarg[0] == '-' || strtoul(optarg, NULL, 0) >= REPLY_LAG_MAX)
				usage();
			o.reply_lag = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default: usage();
		}
	}
	const char *bad = gossip_config_check(&o.gc);

	if (bad || o.nodes < 2 || o.nodes > 100000 || o.set_k < 1 || o.set_k > SET_MAX ||
	    o.loss < 0 || o.loss >= 1 || o.mem < 10 || o.settle < 0 || o.settle > 1 ||
	    ((o.leave >= 0 || o.crash >= 0) && o.nodes < 4)) {
		fprintf(stderr, "nswap-sim: %s\n",
			bad ? bad : "bad --nodes (2-100000; 4 or more with --leave or --crash), "
				    "--set (1-32), --loss (0 to <1), --settle (0-1) or --mem (10 or more)");
		usage();
	}
	crc32c_init(0);
	trace_rng = o.seed * 2 + 1;
	net_rng = o.seed * 3 + 7;
	total = o.nodes + (o.join >= 0);
	nodes = calloc(total, sizeof(*nodes));
	heap = calloc(total, sizeof(*heap));
	heap_pos = calloc(total, sizeof(*heap_pos));
	if (!nodes || !heap || !heap_pos)
		return 1;
	for (uint32_t i = 0; i < total; i++)
		heap[i] = heap_pos[i] = i;	/* all keys equal (no room) at start */
	/* Cold start: every node knows 3 seeds among those before it (node 0
	 * none); nothing else is given. */
	for (uint32_t i = 0; i < o.nodes; i++) {
		node_start(i, 0);
		for (int s = 0; s < 3 && i > 0; s++)
			gossip_add_seed(&nodes[i].g, addr_of((uint32_t)(urand(&trace_rng) * i)));
	}

	uint32_t joiner = o.nodes, leaver = 1, crashed = 2;
	int64_t join_seen99 = -1, leave_seen99 = -1, crash_seen99 = -1;
	uint64_t bytes0 = 0, rounds_measured = 0;
	double known_at_warmup = 0;

	printf("{\"nodes\": %u, \"seed\": %llu, \"placement\": \"%s\", \"fanout\": %u, \"entries\": %u, \"loss\": %g, \"reply_hints\": %u, \"reply_lag\": %u,\n \"rounds\": [",
	       o.nodes, (unsigned long long)o.seed, o.oracle ? "oracle" : "gossip", o.gc.fanout,
	       o.gc.max_entries, o.loss, o.reply_hints, o.reply_lag);
	for (uint64_t r = 1; !warm_end || r <= warm_end + o.rounds; r++) {
		uint64_t now = r * o.gc.interval_ms;

		cur_round = r;

		int64_t since = warm_end ? (int64_t)(r - warm_end) : -1;

		if (o.join >= 0 && since == o.join) {
			node_start(joiner, now);
			for (int s = 0; s < 3; s++)
				gossip_add_seed(&nodes[joiner].g,
						addr_of((uint32_t)(urand(&trace_rng) * o.nodes)));
		}
		if (o.leave >= 0 && since == o.leave && nodes[leaver].up) {
			nodes[leaver].capacity = 0;
			punt(leaver, nodes[leaver].used);
			swap_in(leaver, nodes[leaver].out_remote + nodes[leaver].out_disk);
			unsigned int n = gossip_leave(&nodes[leaver].g, now, outs, GOSSIP_MAX_FANOUT);

			for (unsigned int d = 0; d < n; d++)
				deliver(leaver, &outs[d], now);
			nodes[leaver].up = 0;
			oracle_update(leaver);
		}
		if (o.crash >= 0 && since == o.crash && nodes[crashed].up) {
			struct node *x = &nodes[crashed];

			for (uint32_t k = 0; k < x->stored.n; k++) {
				struct hold h = x->stored.h[k];

				holds_add(&nodes[h.peer].mine, crashed, -(int64_t)h.count);
				nodes[h.peer].out_remote -= h.count;
				st.lost += h.count;
			}
			x->stored.n = 0;
			x->used = 0;
			swap_in(crashed, x->out_remote + x->out_disk);
			x->up = 0;
			oracle_update(crashed);
		}
		memory_round();
		gossip_round_all(now);

		uint64_t bytes = 0;

		for (uint32_t i = 0; i < total; i++)
			bytes += nodes[i].g.stats.sent_bytes;
		double known = known_fraction();
		double learning = learning_fraction();
		double imbp = imbalance(1);
		double imb = imbalance(0);

		if (!warm_end && (r >= o.warmup || (o.settle > 0 && known >= o.settle))) {
			warm_end = r;
			bytes0 = bytes;
			known_at_warmup = known;
		}
		if (warm_end && r > warm_end)
			rounds_measured++;
		/* steady state: the first 20 rounds of load only fill the cluster */
		if (warm_end && r > warm_end + 20) {
			st.imb_sum += imb;
			st.imbp_sum += imbp;
			st.imb_samples++;
			if (imb > st.imb_max)
				st.imb_max = imb;
			if (imbp > st.imbp_max)
				st.imbp_max = imbp;
		}
		double js = o.join >= 0 && since >= o.join ? seen(joiner, 0) : -1;
		double ls = o.leave >= 0 && since >= o.leave ? seen(leaver, 1) : -1;
		double cs = o.crash >= 0 && since >= o.crash ? seen(crashed, 1) : -1;

		if (js >= 0.99 && join_seen99 < 0)
			join_seen99 = since - o.join;
		if (ls >= 0.99 && leave_seen99 < 0)
			leave_seen99 = since - o.leave;
		if (cs >= 0.99 && crash_seen99 < 0)
			crash_seen99 = since - o.crash;
		printf("%s\n  {\"round\": %llu, \"known\": %.4f, \"learning\": %.4f, \"imbalance\": %.4f, \"imbalance_placement\": %.4f, \"fill_mean\": %.4f, \"bytes\": %llu, \"join_seen\": %.4f, \"leave_seen\": %.4f, \"crash_seen\": %.4f}",
		       r > 1 ? "," : "", (unsigned long long)r, known, learning, imb, imbp, fill_mean, (unsigned long long)bytes,
		       js, ls, cs);
	}
	uint64_t bytes = 0, rejected = 0, suspected = 0, dead = 0, refuted = 0;

	for (uint32_t i = 0; i < total; i++) {
		bytes += nodes[i].g.stats.sent_bytes;
		rejected += nodes[i].g.stats.rejected;
		suspected += nodes[i].g.stats.suspected;
		dead += nodes[i].g.stats.declared_dead;
		refuted += nodes[i].g.stats.refuted;
	}
	double secs = rounds_measured * o.gc.interval_ms / 1000.0;

	printf("\n ],\n \"summary\": {\"warmup_rounds\": %llu, \"known_at_warmup\": %.4f, \"gossip_bytes_per_node_s\": %.1f, "
	       "\"imbalance_mean\": %.4f, \"imbalance_max\": %.4f, \"imbalance_placement_mean\": %.4f, \"imbalance_placement_max\": %.4f, \"placed\": %llu, \"enospc\": %llu, "
	       "\"disk\": %llu, \"disk_with_room\": %llu, \"migrations\": %llu, \"punted_home\": %llu, \"returned_home\": %llu, "
	       "\"migrations_per_page\": %.5f, \"lost_in_crash\": %llu, \"join_seen99_rounds\": %lld, "
	       "\"leave_seen99_rounds\": %lld, \"crash_seen99_rounds\": %lld, \"rejected\": %llu, "
	       "\"suspected\": %llu, \"declared_dead\": %llu, \"refuted\": %llu, \"overflows\": %llu}}\n",
	       (unsigned long long)warm_end, known_at_warmup, secs > 0 ? (double)(bytes - bytes0) / o.nodes / secs : 0,
	       st.imb_samples ? st.imb_sum / st.imb_samples : 1.0, st.imb_max,
	       st.imb_samples ? st.imbp_sum / st.imb_samples : 1.0, st.imbp_max,
	       (unsigned long long)st.placed, (unsigned long long)st.enospc,
	       (unsigned long long)st.disk, (unsigned long long)st.disk_with_room,
	       (unsigned long long)st.migrations, (unsigned long long)st.punted_home,
	       (unsigned long long)st.returned_home,
	       st.placed ? (double)st.migrations / st.placed : 0, (unsigned long long)st.lost,
	       (long long)join_seen99, (long long)leave_seen99, (long long)crash_seen99,
	       (unsigned long long)rejected, (unsigned long long)suspected,
	       (unsigned long long)dead, (unsigned long long)refuted,
	       (unsigned long long)st.overflows);
	return 0;
}
