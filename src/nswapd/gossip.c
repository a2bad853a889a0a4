// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Gossip membership without I/O; the scheme is described in gossip.h. */
#include "gossip.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "nswap_place.h"

#define ENTRY_SIZE	sizeof(struct nswap_gossip_entry)
#define SEED_EVERY	30
#define RUMOUR_AGE	4
/* The fresh-news ring (entries, power of 2), and how far back a datagram
 * looks in it (x max_entries), so that a datagram costs O(max_entries). */
#define FRESH_RING	256
#define FRESH_LOOK	4
/* Unanswered pushes in a row before a member is suspected: one lost datagram
 * of the two an exchange needs must not start a suspicion (at 1 % loss about
 * 2 % of exchanges fail, 8e-6 three times in a row). */
#define PROBE_TRIES	3
/* Bounds on what a datagram may claim: an incarnation step larger than this
 * over the known one is ignored (a restart raises it by the seconds it was
 * down, refutations by 1), and a capacity above 2^40 pages (4 PiB) is
 * refused, so that no peer can pin a member's incarnation at the top or
 * attract every page with an absurd free count.  Without authentication
 * (protocol.md 11.4) a peer can still lie within these bounds. */
#define INCARNATION_STEP	(1U << 20)
#define GOSSIP_MAX_CAPACITY	(1ULL << 40)

/* Timers that need a look at a later round; kept in a short list so that a
 * round costs O(fanout + suspects + tombstones), not O(members). */
enum watch_kind { WATCH_PROBE, WATCH_SUSPECT, WATCH_TOMB };

struct watch {
	uint64_t id;
	uint64_t due_round;
	uint32_t incarnation;
	uint8_t kind;
};

/* Private state hung off struct gossip (kept out of the header so that the
 * simulator and the daemon cannot depend on it). */
struct gossip_priv {
	struct watch *watch;
	uint32_t nwatch, awatch;
	/* Rumours, newest on top: a datagram takes the newest first, so that
	 * fresh news (a join, a crash) is never queued behind the thousands
	 * of joins a starting cluster rumours.  An entry is stale when its
	 * member was re-armed since (a newer entry exists), has no sends
	 * left, or is older than RUMOUR_AGE x its sends (the sample carries
	 * old news); stale entries are skipped and compacted away. */
	struct rumour {
		uint64_t id;
		uint64_t round;	/* when armed: equals the member's rumour_round */
	} *rumours;
	uint32_t nrumours, arumours;
	uint64_t retry[GOSSIP_MAX_FANOUT];	/* members to push to again next round */
	uint32_t nretry;
	/* Learning: entries heard (not about this node) and, of those, members
	 * first heard of, counted since the start; their values at the start
	 * of each of the last GOSSIP_GROW_ROUNDS rounds; the verdict of this
	 * round. */
	uint64_t heard, heard_new;
	uint64_t heard_at[GOSSIP_GROW_ROUNDS], heard_new_at[GOSSIP_GROW_ROUNDS];
	int learning;
	/* Fresh news: members whose version advanced here, newest last; an
	 * entry is stale when the member advanced again since (a newer entry
	 * exists), was sent GOSSIP_FRESH_SENDS times, or is gone. */
	struct fresh {
		uint64_t id;
		uint64_t heard_ms;	/* equals the member's heard_ms while live */
	} fresh[FRESH_RING];
	uint64_t fresh_head;	/* entries ever noted; the newest is at head - 1 */
};

void gossip_config_defaults(struct gossip_config *cfg)
{
	cfg->interval_ms = 1000;
	cfg->fanout = 3;
	cfg->max_entries = NSWAP_GOSSIP_MAX_ENTRIES;
	cfg->suspect_rounds = 5;
	cfg->cleanup_rounds = 60;
	cfg->rumour_factor = 3;
	cfg->gossip_port = NSWAP_DEFAULT_PORT;
}

const char *gossip_config_check(const struct gossip_config *cfg)
{
	if (cfg->interval_ms < 10 || cfg->interval_ms > 600000)
		return "gossip interval must be 10 ms to 600 s";
	if (cfg->fanout < 1 || cfg->fanout > GOSSIP_MAX_FANOUT)
		return "gossip fanout must be 1 to 16";
	if (cfg->max_entries < 2 || cfg->max_entries > NSWAP_GOSSIP_MAX_ENTRIES)
		return "gossip entries per datagram must be 2 to 24";
	if (cfg->suspect_rounds < 1 || cfg->suspect_rounds > 1000)
		return "gossip suspect rounds must be 1 to 1000";
	if (cfg->cleanup_rounds < 1 || cfg->cleanup_rounds > 100000)
		return "gossip cleanup rounds must be 1 to 100000";
	if (cfg->rumour_factor < 1 || cfg->rumour_factor > 16)
		return "gossip rumour factor must be 1 to 16";
	if (cfg->gossip_port == 0)
		return "gossip port must be 1 to 65535";
	return NULL;
}

const char *gossip_state_name(unsigned int state)
{
	static const char *const names[] = { "alive", "suspect", "dead", "left" };

	return state < 4 ? names[state] : "invalid";
}

/* xorshift64*: the simulator needs reproducible runs from a seed. */
static uint64_t rnd(struct gossip *g)
{
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545F4914F6CDD1DULL;
}

static uint32_t rnd_below(struct gossip *g, uint32_t n)
{
	return (uint32_t)(((rnd(g) >> 32) * (uint64_t)n) >> 32);
}

static struct gossip_priv *priv(const struct gossip *g)
{
	return (struct gossip_priv *)g->members_priv;
}

/* ---- the member index: id -> dense position ---- */

/* Keyed (SipHash): member ids come from peers, and without the key nobody
 * can choose ids that collide in the index. */
static uint32_t hash_id(const struct gossip *g, uint64_t id)
{
	return (uint32_t)(siphash_2u64(&g->hash_key, id, 0) >> 32) & g->index_mask;
}

static uint32_t index_slot(const struct gossip *g, uint64_t id)
{
	uint32_t i = hash_id(g, id);

	while (g->index[i] && g->members[g->index[i] - 1].id != id)
		i = (i + 1) & g->index_mask;
	return i;
}

static struct gossip_member *gossip_lookup(struct gossip *g, uint64_t id)
{
	uint32_t i = index_slot(g, id);

	return g->index[i] ? &g->members[g->index[i] - 1] : NULL;
}

const struct gossip_member *gossip_find(const struct gossip *g, uint64_t id)
{
	return gossip_lookup((struct gossip *)g, id);
}

static int index_rebuild(struct gossip *g, uint32_t size)
{
	uint32_t *index = calloc(size, sizeof(*index));

	if (!index)
		return -1;
	free(g->index);
	g->index = index;
	g->index_mask = size - 1;
	for (uint32_t p = 0; p < g->count; p++)
		g->index[index_slot(g, g->members[p].id)] = p + 1;
	return 0;
}

static struct gossip_member *member_add(struct gossip *g, uint64_t id)
{
	if (g->count >= GOSSIP_MAX_MEMBERS)
		return NULL;
	if (g->count == g->alloc) {
		uint32_t n = g->alloc ? 2 * g->alloc : 64;
		struct gossip_member *m = realloc(g->members, n * sizeof(*m));

		if (!m)
			return NULL;
		g->members = m;
		g->alloc = n;
	}
	/* load factor at most 1/2 keeps probe sequences short */
	if (2 * (g->count + 1) > g->index_mask + 1 &&
	    index_rebuild(g, 2 * (g->index_mask + 1)))
		return NULL;
	struct gossip_member *m = &g->members[g->count];

	memset(m, 0, sizeof(*m));
	m->id = id;
	g->index[index_slot(g, id)] = ++g->count;
	return m;
}

/* Backward-shift deletion from the index, then the last member fills the hole. */
static void member_remove(struct gossip *g, uint64_t id)
{
	uint32_t i = index_slot(g, id), j, pos, last;

	if (!g->index[i])
		return;
	pos = g->index[i] - 1;
	g->index[i] = 0;
	for (j = (i + 1) & g->index_mask; g->index[j]; j = (j + 1) & g->index_mask) {
		uint32_t home = hash_id(g, g->members[g->index[j] - 1].id);

		/* move j back to i when i lies cyclically in [home, j) */
		if (((j - home) & g->index_mask) >= ((j - i) & g->index_mask)) {
			g->index[i] = g->index[j];
			g->index[j] = 0;
			i = j;
		}
	}
	last = g->count - 1;
	if (pos != last) {
		g->members[pos] = g->members[last];
		g->index[index_slot(g, g->members[pos].id)] = pos + 1;
	}
	g->count--;
}

/* ---- timers and rumours ---- */

/* Drop timers whose member is gone or has another incarnation now. */
static void watch_compact(struct gossip *g)
{
	struct gossip_priv *p = priv(g);
	uint32_t keep = 0;

	for (uint32_t i = 0; i < p->nwatch; i++) {
		const struct gossip_member *m = gossip_lookup(g, p->watch[i].id);

		if (m && m->incarnation == p->watch[i].incarnation)
			p->watch[keep++] = p->watch[i];
	}
	p->nwatch = keep;
}

static void watch_add(struct gossip *g, uint64_t id, uint32_t incarnation, int kind,
		      uint64_t due_round)
{
	struct gossip_priv *p = priv(g);

	/* a peer re-arming one member many times must not grow the list */
	if (p->nwatch >= 4 * g->count + 256) {
		watch_compact(g);
		if (p->nwatch >= 4 * g->count + 256)
			return;	/* the member keeps its state until a later change */
	}
	if (p->nwatch == p->awatch) {
		uint32_t n = p->awatch ? 2 * p->awatch : 64;
		struct watch *w = realloc(p->watch, n * sizeof(*w));

		if (!w)
			return;	/* the timer is lost: the member stays as it is */
		p->watch = w;
		p->awatch = n;
	}
	p->watch[p->nwatch++] = (struct watch){ id, due_round, incarnation, (uint8_t)kind };
}

static uint32_t log2_ceil(uint32_t n)
{
	uint32_t l = 0;

	while (l < 32 && (1ULL << l) < n)
		l++;
	return l;
}

static uint32_t rumour_sends(const struct gossip *g)
{
	uint32_t n = g->cfg.rumour_factor * log2_ceil(g->count + 2);

	return n > 255 ? 255 : n;
}

static int rumour_live(struct gossip *g, const struct rumour *r, struct gossip_member **mp)
{
	struct gossip_member *m = gossip_lookup(g, r->id);

	*mp = m;
	if (!m || !m->rumour_left || m->rumour_round != r->round)
		return 0;
	if (r->round + RUMOUR_AGE * (uint64_t)rumour_sends(g) < g->round) {
		m->rumour_left = 0;	/* too old to be news */
		return 0;
	}
	return 1;
}

/* Drop stale entries once they are most of the stack. */
static void rumours_compact(struct gossip *g)
{
	struct gossip_priv *p = priv(g);
	struct gossip_member *m;
	uint32_t keep = 0;

	for (uint32_t i = 0; i < p->nrumours; i++)
		if (rumour_live(g, &p->rumours[i], &m))
			p->rumours[keep++] = p->rumours[i];
	p->nrumours = keep;
}

static void rumour(struct gossip *g, struct gossip_member *m)
{
	struct gossip_priv *p = priv(g);

	if (m->rumour_left && m->rumour_round == g->round) {
		/* armed again in the same round: one stack entry is enough */
		m->rumour_left = (uint8_t)rumour_sends(g);
		return;
	}

	if (p->nrumours == p->arumours) {
		rumours_compact(g);
		if (2 * p->nrumours >= p->arumours) {
			uint32_t n = p->arumours ? 2 * p->arumours : 64;
			struct rumour *r = realloc(p->rumours, n * sizeof(*r));

			if (!r)
				return;	/* not rumoured: the sample still carries it */
			p->rumours = r;
			p->arumours = n;
		}
	}
	m->rumour_left = (uint8_t)rumour_sends(g);
	m->rumour_round = g->round;
	p->rumours[p->nrumours++] = (struct rumour){ m->id, g->round };
}

/* m's version advanced here: fresh news for the next datagrams. */
static void fresh_note(struct gossip *g, struct gossip_member *m)
{
	struct gossip_priv *p = priv(g);

	m->fresh_left = GOSSIP_FRESH_SENDS;
	p->fresh[p->fresh_head++ % FRESH_RING] = (struct fresh){ m->id, m->heard_ms };
}

static void set_state(struct gossip *g, struct gossip_member *m, unsigned int state,
		      uint64_t now_ms)
{
	m->state = (uint8_t)state;
	m->state_ms = now_ms;
	if (state == NSWAP_MEMBER_SUSPECT)
		watch_add(g, m->id, m->incarnation, WATCH_SUSPECT,
			  g->round + g->cfg.suspect_rounds);
	else if (state >= NSWAP_MEMBER_DEAD)
		watch_add(g, m->id, m->incarnation, WATCH_TOMB,
			  g->round + g->cfg.cleanup_rounds);
	rumour(g, m);
}

/* ---- wire ---- */

static void entry_encode(unsigned char *b, const struct gossip_member *m)
{
	memset(b, 0, ENTRY_SIZE);
	put_le64(b, m->id);
	b[8] = (unsigned char)(m->addr >> 24);
	b[9] = (unsigned char)(m->addr >> 16);
	b[10] = (unsigned char)(m->addr >> 8);
	b[11] = (unsigned char)m->addr;
	put_le16(b + 12, m->port);
	b[14] = m->state;
	put_le32(b + 16, m->incarnation);
	put_le32(b + 20, m->heartbeat);
	put_le64(b + 24, m->capacity);
	put_le64(b + 32, m->free);
	put_le32(b + 40, m->load);
}

static const char *entry_decode(struct gossip_member *m, const unsigned char *b)
{
	memset(m, 0, sizeof(*m));
	m->id = get_le64(b);
	m->addr = ((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) | ((uint32_t)b[10] << 8) | b[11];
	m->port = get_le16(b + 12);
	m->state = b[14];
	m->incarnation = get_le32(b + 16);
	m->heartbeat = get_le32(b + 20);
	m->capacity = get_le64(b + 24);
	m->free = get_le64(b + 32);
	m->load = get_le32(b + 40);
	if (!m->id)
		return "entry with node id 0";
	if (!m->addr || !m->port)
		return "entry without an address or port";
	if (m->state > NSWAP_MEMBER_LEFT)
		return "entry with an unknown state";
	if (b[15] || get_le32(b + 44))
		return "entry with nonzero reserved bytes";
	if (m->free > m->capacity)
		return "entry with more free pages than capacity";
	if (m->capacity > GOSSIP_MAX_CAPACITY)
		return "entry with a capacity above 2^40 pages";
	if (m->incarnation == UINT32_MAX)
		return "entry with the largest incarnation (none could refute it)";
	return NULL;
}

static int in_list(const uint64_t *ids, unsigned int n, uint64_t id)
{
	for (unsigned int i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* Up to `room` fresh entries (ALIVE, version advanced here lately, sends
 * left), newest first; returns the new n. */
static unsigned int add_fresh(struct gossip *g, unsigned char *e, uint64_t *ids, unsigned int n,
			      unsigned int room)
{
	struct gossip_priv *p = priv(g);
	uint64_t look = (uint64_t)FRESH_LOOK * g->cfg.max_entries;

	if (look > FRESH_RING)
		look = FRESH_RING;
	for (uint64_t k = 0, taken = 0; k < look && k < p->fresh_head && taken < room; k++) {
		const struct fresh *f = &p->fresh[(p->fresh_head - 1 - k) % FRESH_RING];
		struct gossip_member *m = gossip_lookup(g, f->id);

		if (!m || m->heard_ms != f->heard_ms || !m->fresh_left ||
		    m->state != NSWAP_MEMBER_ALIVE || in_list(ids, n, m->id))
			continue;
		entry_encode(e + n * ENTRY_SIZE, m);
		ids[n++] = m->id;
		m->fresh_left--;
		taken++;
	}
	return n;
}

/* The room: max_entries while the node is learning, else 3/4 of it.  Own
 * entry, rumours (at most 3/4 of the room), then a sample of live entries
 * (at least 1/4 of the room): random while learning; else fresh entries
 * first (all but 1/8 of the room), then random ones. */
static void build(struct gossip *g, struct gossip_out *out, uint32_t to_addr, uint8_t type,
		  uint64_t to_id)
{
	struct gossip_priv *p = priv(g);
	unsigned int max = g->cfg.max_entries, n = 0, rumour_room;
	unsigned char *e = out->buf + NSWAP_HDR_SIZE;

	if (!p->learning)
		max -= max / 4;	/* a stable table: 3/4 of the room */
	uint64_t ids[NSWAP_GOSSIP_MAX_ENTRIES];
	struct frame_hdr h = { 0 };

	entry_encode(e, &g->self);
	ids[n++] = g->self.id;
	if (to_id) {
		/* what we hold against the receiver, so that it can refute now */
		struct gossip_member *to = gossip_lookup(g, to_id);

		if (to && (to->state == NSWAP_MEMBER_SUSPECT || to->state == NSWAP_MEMBER_DEAD)) {
			entry_encode(e + n * ENTRY_SIZE, to);
			ids[n++] = to_id;
		}
	}
	rumour_room = max - n - max / 4;
	for (uint32_t i = p->nrumours, taken = 0; i > 0 && taken < rumour_room; i--) {
		struct gossip_member *m;

		if (!rumour_live(g, &p->rumours[i - 1], &m)) {
			if (i == p->nrumours)
				p->nrumours--;	/* stale on top: pop it */
			continue;
		}
		if (in_list(ids, n, m->id))
			continue;
		entry_encode(e + n * ENTRY_SIZE, m);
		ids[n++] = m->id;
		m->rumour_left--;
		taken++;
	}
	if (!p->learning && n + max / 8 < max)
		n = add_fresh(g, e, ids, n, max - max / 8 - n);
	for (unsigned int tries = 0; n < max && g->count && tries < 2 * max; tries++) {
		struct gossip_member *m = &g->members[rnd_below(g, g->count)];

		if (m->state != NSWAP_MEMBER_ALIVE || in_list(ids, n, m->id))
			continue;
		entry_encode(e + n * ENTRY_SIZE, m);
		ids[n++] = m->id;
	}
	h.magic = NSWAP_MAGIC;
	h.version = NSWAP_PROTO_VERSION;
	h.type = type;
	h.tag = g->round;
	h.client_id = g->self.id;
	h.length = (uint32_t)(n * ENTRY_SIZE);
	h.crc = crc32c(e, h.length);
	frame_hdr_encode(out->buf, &h);
	out->addr = to_addr;
	out->port = g->cfg.gossip_port;
	out->len = NSWAP_HDR_SIZE + h.length;
	g->stats.sent_datagrams++;
	g->stats.sent_bytes += out->len;
}

/* ---- merging what others say ---- */

/* first_hand: the entry is the sender's own, from the address it names;
 * only such an entry may move a member to another address. */
static void merge(struct gossip *g, const struct gossip_member *e, uint64_t now_ms,
		  int first_hand)
{
	struct gossip_member *m;

	if (e->id != g->self.id)
		priv(g)->heard++;
	if (e->id == g->self.id) {
		if (g->self.state != NSWAP_MEMBER_ALIVE || e->incarnation == UINT32_MAX)
			return;
		/* Only we may say we are alive again: refute with a higher
		 * incarnation.  An ALIVE entry of ours at our incarnation or later
		 * is an earlier life of this node (restarted within the same
		 * second, or after refutations raised it past the clock): others
		 * would ignore our entries until the clock caught up, so go past
		 * it too. */
		if (e->incarnation >= g->self.incarnation &&
		    (e->state != NSWAP_MEMBER_ALIVE || e->heartbeat > g->self.heartbeat ||
		     e->incarnation > g->self.incarnation)) {
			g->self.incarnation = e->incarnation + 1;
			g->stats.refuted++;
		}
		return;
	}
	m = gossip_lookup(g, e->id);
	if (!m) {
		m = member_add(g, e->id);
		if (!m)
			return;
		priv(g)->heard_new++;
		*m = *e;
		m->rumour_left = 0;
		m->unanswered = 0;
		m->heard_ms = m->state_ms = now_ms;
		if (e->state == NSWAP_MEMBER_ALIVE)
			g->stats.joins++;
		/* News only when young: a member first heard of with a low
		 * heartbeat (or a bad state) joined or changed lately; old
		 * members learnt from samples are not news. */
		if (e->state != NSWAP_MEMBER_ALIVE) {
			m->state = NSWAP_MEMBER_ALIVE;
			set_state(g, m, e->state, now_ms);
		} else if (e->heartbeat <= rumour_sends(g)) {
			rumour(g, m);
		}
		return;
	}
	if (e->incarnation > m->incarnation) {
		struct gossip_member old = *m;

		if (e->incarnation - m->incarnation > INCARNATION_STEP)
			return;
		*m = *e;
		m->rumour_left = old.rumour_left;
		m->rumour_round = old.rumour_round;
		m->unanswered = 0;
		m->probe_fails = 0;
		if (!first_hand) {
			m->addr = old.addr;
			m->port = old.port;
		}
		m->heard_ms = now_ms;
		m->state = old.state;
		set_state(g, m, e->state, now_ms);	/* a restart or refutation is news */
		return;
	}
	if (e->incarnation < m->incarnation)
		return;
	if (e->state > m->state) {
		if (e->heartbeat > m->heartbeat) {
			m->heartbeat = e->heartbeat;
			m->capacity = e->capacity;
			m->free = e->free;
			m->load = e->load;
			m->heard_ms = now_ms;
		}
		set_state(g, m, e->state, now_ms);
		return;
	}
	if (e->state == m->state && e->heartbeat > m->heartbeat) {
		m->heartbeat = e->heartbeat;
		if (first_hand) {
			m->addr = e->addr;
			m->port = e->port;
		}
		m->capacity = e->capacity;
		m->free = e->free;
		m->load = e->load;
		m->heard_ms = now_ms;
		fresh_note(g, m);
	}
}

int gossip_receive(struct gossip *g, uint64_t now_ms, uint32_t addr, const void *buf,
		   size_t len, struct gossip_out *reply, const char **why)
{
	struct gossip_member entries[NSWAP_GOSSIP_MAX_ENTRIES], *sender;
	const unsigned char *b = buf;
	struct frame_hdr h;
	unsigned int n;

	*why = NULL;
	if (len < NSWAP_HDR_SIZE)
		*why = "datagram shorter than a header";
	else if (!frame_hdr_decode(&h, b))
		*why = "header checksum mismatch";
	else if (h.magic != NSWAP_MAGIC)
		*why = "bad magic";
	else if (h.version != NSWAP_PROTO_VERSION)
		*why = "unsupported protocol version";
	else if (h.type != NSWAP_GOSSIP && h.type != (NSWAP_GOSSIP | NSWAP_REPLY))
		*why = "not a GOSSIP frame";
	else if (h.flags || h.slot || h.generation || h.status || h.hop_count || h.reserved)
		*why = "nonzero field that GOSSIP does not use";
	else if (h.length != len - NSWAP_HDR_SIZE)
		*why = "length does not match the datagram";
	else if (!h.length || h.length % ENTRY_SIZE ||
		 h.length / ENTRY_SIZE > NSWAP_GOSSIP_MAX_ENTRIES)
		*why = "payload is not 1 to 24 whole entries";
	else if (crc32c(b + NSWAP_HDR_SIZE, h.length) != h.crc)
		*why = "payload checksum mismatch";
	else if (h.client_id == g->self.id)
		*why = "sender uses this node's id";
	if (*why)
		goto reject;
	n = h.length / ENTRY_SIZE;
	for (unsigned int i = 0; i < n; i++) {
		*why = entry_decode(&entries[i], b + NSWAP_HDR_SIZE + i * ENTRY_SIZE);
		if (!*why && i == 0 && entries[0].id != h.client_id)
			*why = "first entry is not the sender's";
		if (*why)
			goto reject;
	}
	g->stats.recv_datagrams++;
	g->stats.recv_bytes += len;
	for (unsigned int i = 0; i < n; i++)
		merge(g, &entries[i], now_ms, i == 0 && entries[0].addr == addr);
	for (uint32_t i = 0; i < g->nseeds; i++)
		if (g->seeds[i] == addr)
			g->seed_answered = 1;
	sender = gossip_lookup(g, h.client_id);
	if (sender && sender->addr == addr) {
		/* it is up (from its own address: a third party cannot vouch) */
		sender->unanswered = 0;
		sender->probe_fails = 0;
	}
	if (h.type != NSWAP_GOSSIP || g->self.state != NSWAP_MEMBER_ALIVE)
		return 0;
	build(g, reply, addr, NSWAP_GOSSIP | NSWAP_REPLY, h.client_id);
	return 1;
reject:
	g->stats.rejected++;
	return -1;
}

/* ---- rounds ---- */

static void run_timers(struct gossip *g, uint64_t now_ms)
{
	struct gossip_priv *p = priv(g);
	uint32_t keep = 0, n = p->nwatch;

	for (uint32_t i = 0; i < n; i++) {
		struct watch w = p->watch[i];
		struct gossip_member *m;

		if (w.due_round > g->round) {
			p->watch[keep++] = w;
			continue;
		}
		m = gossip_lookup(g, w.id);
		if (!m)
			continue;
		if (m->incarnation != w.incarnation) {
			if (w.kind == WATCH_PROBE)
				m->unanswered = 0;	/* it restarted or refuted: news enough */
			continue;
		}
		if (w.kind == WATCH_PROBE && m->unanswered) {
			m->unanswered = 0;
			if (m->state != NSWAP_MEMBER_ALIVE)
				continue;
			if (++m->probe_fails >= PROBE_TRIES) {
				m->probe_fails = 0;
				g->stats.suspected++;
				set_state(g, m, NSWAP_MEMBER_SUSPECT, now_ms);
			} else if (p->nretry < GOSSIP_MAX_FANOUT) {
				p->retry[p->nretry++] = m->id;	/* ask it again next round */
			}
		} else if (w.kind == WATCH_SUSPECT && m->state == NSWAP_MEMBER_SUSPECT) {
			g->stats.declared_dead++;
			set_state(g, m, NSWAP_MEMBER_DEAD, now_ms);
		} else if (w.kind == WATCH_TOMB && m->state >= NSWAP_MEMBER_DEAD) {
			g->stats.expired++;
			member_remove(g, w.id);
		}
	}
	/* timers added by set_state() above landed after n: keep them */
	for (uint32_t i = n; i < p->nwatch; i++)
		p->watch[keep++] = p->watch[i];
	p->nwatch = keep;
}

/* Up to `want` distinct members that are ALIVE or SUSPECT (a probe lets a
 * suspect refute); bounded tries, so a table of tombstones ends quickly. */
static unsigned int pick_targets(struct gossip *g, struct gossip_member **t, unsigned int want,
				 struct gossip_member *const *already, unsigned int nalready)
{
	unsigned int n = 0;

	for (unsigned int tries = 0; n < want && g->count && tries < 4 * want + 8; tries++) {
		struct gossip_member *m = &g->members[rnd_below(g, g->count)];
		unsigned int k;

		if (m->state > NSWAP_MEMBER_SUSPECT)
			continue;
		for (k = 0; k < n && t[k] != m; k++)
			;
		if (k < n)
			continue;
		for (k = 0; k < nalready && already[k] != m; k++)
			;
		if (k == nalready)
			t[n++] = m;
	}
	return n;
}

static unsigned int push(struct gossip *g, struct gossip_out *out, unsigned int max,
			 int probe)
{
	struct gossip_priv *p = priv(g);
	struct gossip_member *t[GOSSIP_MAX_FANOUT];
	unsigned int want = g->cfg.fanout < max ? g->cfg.fanout : max, n = 0;

	/* members that did not answer last time first, then random ones */
	for (uint32_t i = 0; i < p->nretry && n < want; i++) {
		struct gossip_member *m = gossip_lookup(g, p->retry[i]);

		if (m && m->state == NSWAP_MEMBER_ALIVE)
			t[n++] = m;
	}
	p->nretry = 0;
	n += pick_targets(g, t + n, want - n, t, n);
	for (unsigned int i = 0; i < n; i++) {
		/* t[] are pointers into members[]: build() does not move them */
		build(g, &out[i], t[i]->addr, NSWAP_GOSSIP, t[i]->id);
		if (probe && !t[i]->unanswered) {
			t[i]->unanswered = 1;
			watch_add(g, t[i]->id, t[i]->incarnation, WATCH_PROBE, g->round + 1);
		}
	}
	if (!probe || !g->nseeds || n >= max)
		return n;
	/* A node pushes to a seed (one per round, in turn) until a seed has
	 * answered, so that nodes that start together and hear of each other
	 * first cannot form a cluster of their own; later one seed every
	 * SEED_EVERY rounds joins partitions that formed anyway. */
	if (!g->seed_answered || !n || g->round % SEED_EVERY == 0)
		build(g, &out[n++], g->seeds[g->round % g->nseeds], NSWAP_GOSSIP, 0);
	return n;
}

unsigned int gossip_round(struct gossip *g, uint64_t now_ms, struct gossip_out *out,
			  unsigned int max)
{
	struct gossip_priv *p = priv(g);
	unsigned int slot = (unsigned int)(g->round % GOSSIP_GROW_ROUNDS);
	uint64_t heard = p->heard - p->heard_at[slot], fresh = p->heard_new - p->heard_new_at[slot];

	g->round++;
	g->stats.rounds++;
	/* Learning: over the last GOSSIP_GROW_ROUNDS rounds, at least
	 * GOSSIP_GROW_MIN members first heard of, and they were at least
	 * 1/GOSSIP_GROW_SHARE of the entries heard (a cold start until the node
	 * knows about 15/16 of the cluster whatever its size, a partition
	 * healing, a node that joined; not one join elsewhere). */
	p->learning = fresh >= GOSSIP_GROW_MIN && fresh * GOSSIP_GROW_SHARE >= heard;
	p->heard_at[slot] = p->heard;
	p->heard_new_at[slot] = p->heard_new;
	run_timers(g, now_ms);
	if (g->self.state != NSWAP_MEMBER_ALIVE)
		return 0;
	g->self.heartbeat++;
	return push(g, out, max, 1);
}

unsigned int gossip_leave(struct gossip *g, uint64_t now_ms, struct gossip_out *out,
			  unsigned int max)
{
	(void)now_ms;
	g->self.state = NSWAP_MEMBER_LEFT;
	return push(g, out, max, 0);
}

/* ---- setup and queries ---- */

int gossip_init(struct gossip *g, const struct gossip_config *cfg, uint64_t id,
		uint32_t addr, uint16_t port, uint32_t incarnation, uint64_t seed,
		uint64_t now_ms)
{
	memset(g, 0, sizeof(*g));
	g->cfg = *cfg;
	g->self.id = id;
	g->self.addr = addr;
	g->self.port = port;
	g->self.incarnation = incarnation;
	g->self.heard_ms = g->self.state_ms = now_ms;
	g->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
	g->hash_key.k[0] = rnd(g);	/* as random as the seed gossip_net.c draws */
	g->hash_key.k[1] = rnd(g);
	g->members_priv = calloc(1, sizeof(struct gossip_priv));
	if (!g->members_priv || index_rebuild(g, 128)) {
		gossip_free(g);
		return -1;
	}
	return 0;
}

void gossip_free(struct gossip *g)
{
	struct gossip_priv *p = priv(g);

	if (p) {
		free(p->watch);
		free(p->rumours);
		free(p);
	}
	free(g->members);
	free(g->index);
	memset(g, 0, sizeof(*g));
}

int gossip_add_seed(struct gossip *g, uint32_t addr)
{
	if (g->nseeds == GOSSIP_MAX_SEEDS)
		return -1;
	g->seeds[g->nseeds++] = addr;
	return 0;
}

void gossip_set_self(struct gossip *g, uint64_t capacity, uint64_t free_pages, uint32_t load)
{
	g->self.capacity = capacity;
	g->self.free = free_pages < capacity ? free_pages : capacity;
	g->self.load = load;
}

void gossip_note_free(struct gossip *g, uint64_t id, uint64_t free_pages)
{
	struct gossip_member *m = gossip_lookup(g, id);

	if (m && free_pages < m->free)
		m->free = free_pages;
}

int gossip_learning(const struct gossip *g)
{
	return priv(g)->learning;
}

void gossip_queues(const struct gossip *g, uint32_t *rumours, uint32_t *timers)
{
	*rumours = priv(g)->nrumours;
	*timers = priv(g)->nwatch;
}

uint32_t gossip_alive(const struct gossip *g)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < g->count; i++)
		n += g->members[i].state == NSWAP_MEMBER_ALIVE;
	return n;
}

unsigned int gossip_server_set(struct gossip *g, uint64_t *set, unsigned int n,
			       unsigned int k)
{
	struct nswap_place_cand cand[64];
	uint64_t ids[64];
	unsigned int keep = 0, ns = 0;

	for (unsigned int i = 0; i < n; i++) {
		const struct gossip_member *m = gossip_lookup(g, set[i]);

		if (m && m->state == NSWAP_MEMBER_ALIVE && m->free)
			set[keep++] = set[i];
	}
	n = keep < k ? keep : k;
	if (n >= k || !g->count)
		return n;
	for (unsigned int tries = 0; tries < 4 * k + 8 && ns < 64; tries++) {
		const struct gossip_member *m = &g->members[rnd_below(g, g->count)];

		if (m->state != NSWAP_MEMBER_ALIVE || !m->free || in_list(set, n, m->id) ||
		    in_list(ids, ns, m->id))
			continue;
		ids[ns] = m->id;
		cand[ns].capacity = m->capacity;
		cand[ns].free = m->free;
		ns++;
	}
	while (n < k) {
		uint32_t r1 = (uint32_t)rnd(g), r2 = (uint32_t)rnd(g);	/* in this order */
		int i = nswap_place_pick(cand, ns, r1, r2);

		if (i < 0)
			break;
		set[n++] = ids[i];
		cand[i] = cand[--ns];
		ids[i] = ids[ns];
	}
	return n;
}
