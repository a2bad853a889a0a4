/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Gossip membership (the paper's IPTable) without I/O: who is in the
 * cluster, how much cache each lends, and which of them are alive.
 *
 * The daemon and the cluster simulator (src/sim) drive the same code: every
 * function takes the current time in milliseconds and returns datagrams to
 * send instead of sending them, so the simulator runs 10,000 nodes in
 * virtual time with the real encoder, decoder, merge rules and failure
 * detector.  Wire format: struct nswap_gossip_entry, docs/protocol.md 11.2.
 *
 * The scheme (push-pull gossip with piggybacked rumours, as in SWIM):
 *  - Every round (interval_ms) a node raises its heartbeat and sends a push
 *    to `fanout` members chosen at random; each answers with a pull reply.
 *    Both carry the sender's own entry, then rumours (entries whose state,
 *    incarnation or existence changed lately, each sent rumour_factor x
 *    ceil(log2(n + 2)) times), then a sample of live entries: the datagram
 *    size is bounded, so the traffic per node does not grow with the
 *    cluster.  While the node is still learning the cluster (of the entries
 *    it heard in the last GOSSIP_GROW_ROUNDS rounds, 1/GOSSIP_GROW_SHARE or
 *    more, and GOSSIP_GROW_MIN or more, were members it had not known)
 *    the sample is random and fills the datagram; once its table is
 *    stable, the sample stops at 3/4 of max_entries (rumours may still use
 *    the rest) and takes first the entries whose numbers advanced here
 *    lately, each at most GOSSIP_FRESH_SENDS times, newest first, then
 *    random ones (fresher free counts for placement, less traffic).
 *  - A newer (incarnation, heartbeat) replaces an entry; at the same
 *    incarnation a worse state wins (LEFT > DEAD > SUSPECT > ALIVE), and only
 *    the node itself can undo it, by raising its incarnation (refutation).
 *  - A push not answered by the next round is sent again to the same member
 *    in the next rounds; after PROBE_TRIES unanswered in a row it becomes
 *    SUSPECT (a rumour), and every datagram to a member held SUSPECT or DEAD
 *    carries that entry so that it can refute at once; a SUSPECT not refuted
 *    for suspect_rounds rounds becomes DEAD.
 *    DEAD and LEFT entries stay as tombstones for cleanup_rounds rounds so
 *    that stale gossip cannot bring them back, then they are dropped.
 *  - A node pushes to one of its seed addresses each round until a seed
 *    has answered, then every 30th round (partitions heal).
 */
#ifndef NSWAPD_GOSSIP_H
#define NSWAPD_GOSSIP_H

#include <stddef.h>
#include <stdint.h>

#include "nswap_proto.h"
#include "siphash.h"

#define GOSSIP_DATAGRAM_MAX	(NSWAP_HDR_SIZE + NSWAP_GOSSIP_MAX_ENTRIES * \
				 sizeof(struct nswap_gossip_entry))
#define GOSSIP_MAX_SEEDS	16
#define GOSSIP_MAX_FANOUT	16
#define GOSSIP_MAX_MEMBERS	(1U << 20)
/* Learning: within GOSSIP_GROW_ROUNDS rounds, GOSSIP_GROW_MIN or more
 * members first heard of, at least 1/GOSSIP_GROW_SHARE of the entries heard. */
#define GOSSIP_GROW_MIN		4
#define GOSSIP_GROW_SHARE	16
#define GOSSIP_GROW_ROUNDS	4
/* Sends of an entry whose numbers advanced here, as fresh news. */
#define GOSSIP_FRESH_SENDS	4

struct gossip_config {
	uint32_t interval_ms;	/* one round */
	uint32_t fanout;	/* pushes per round, 1..GOSSIP_MAX_FANOUT */
	uint32_t max_entries;	/* per datagram, 2..NSWAP_GOSSIP_MAX_ENTRIES */
	uint32_t suspect_rounds;	/* SUSPECT -> DEAD after this many rounds */
	uint32_t cleanup_rounds;	/* tombstones kept this many rounds */
	uint32_t rumour_factor;	/* sends per rumour = factor x ceil(log2(n+1)) */
	uint16_t gossip_port;	/* UDP port every member listens on */
};

void gossip_config_defaults(struct gossip_config *cfg);
/* Returns NULL when valid, else what is wrong and the valid range. */
const char *gossip_config_check(const struct gossip_config *cfg);

/* One member as this node knows it (host order). */
struct gossip_member {
	uint64_t id;
	uint32_t addr;		/* IPv4, host order */
	uint16_t port;		/* TCP service port */
	uint8_t state;		/* enum nswap_member_state */
	uint8_t rumour_left;	/* sends left as a rumour */
	uint32_t incarnation;
	uint32_t heartbeat;
	uint64_t capacity;	/* pages lent */
	uint64_t free;		/* pages free */
	uint32_t load;
	uint32_t unanswered;	/* a push from us awaits its answer (0/1) */
	uint32_t probe_fails;	/* pushes in a row it did not answer */
	uint8_t fresh_left;	/* sends left as fresh news (its version advanced here) */
	uint64_t rumour_round;	/* round its rumour was armed */
	uint64_t heard_ms;	/* when its version last advanced here */
	uint64_t state_ms;	/* when its state last changed here */
};

struct gossip_stats {
	uint64_t rounds;
	uint64_t sent_datagrams, sent_bytes;
	uint64_t recv_datagrams, recv_bytes;
	uint64_t rejected;	/* malformed datagrams */
	uint64_t joins;		/* members first heard of */
	uint64_t suspected, declared_dead, refuted, expired;
};

/* A datagram to send: to addr:gossip_port (host order), len bytes of buf. */
struct gossip_out {
	uint32_t addr;
	uint16_t port;
	size_t len;
	unsigned char buf[GOSSIP_DATAGRAM_MAX];
};

struct gossip {
	struct gossip_config cfg;
	struct gossip_member self;
	struct gossip_member *members;	/* dense, unordered; never self */
	uint32_t count, alloc;
	uint32_t *index;		/* open addressing: member position + 1, or 0 */
	uint32_t index_mask;
	uint32_t seeds[GOSSIP_MAX_SEEDS];
	uint32_t nseeds;
	int seed_answered;		/* a datagram came from a seed address */
	uint64_t rng;
	uint64_t round;
	struct siphash_key hash_key;	/* keys the member index (from the seed) */
	void *members_priv;		/* timers and the rumour queue (gossip.c) */
	struct gossip_stats stats;
};

/* `incarnation`: pass something that grows across restarts (the daemon uses
 * the wall clock in seconds) so that a restarted node supersedes its old
 * entries.  Returns 0, or -1 (no memory). */
int gossip_init(struct gossip *g, const struct gossip_config *cfg, uint64_t id,
		uint32_t addr, uint16_t port, uint32_t incarnation, uint64_t seed,
		uint64_t now_ms);
void gossip_free(struct gossip *g);
int gossip_add_seed(struct gossip *g, uint32_t addr);
/* What this node lends now; announced from the next datagram on. */
void gossip_set_self(struct gossip *g, uint64_t capacity, uint64_t free, uint32_t load);

/* One round: timeouts, heartbeat, pushes.  Fills out[0..max) and returns how
 * many datagrams to send. */
unsigned int gossip_round(struct gossip *g, uint64_t now_ms, struct gossip_out *out,
			  unsigned int max);
/* A datagram from addr (host order).  Returns 1 with *reply filled (send it
 * back to addr), 0 (nothing to send), or -1 with *why set (malformed:
 * nothing of it was applied). */
int gossip_receive(struct gossip *g, uint64_t now_ms, uint32_t addr, const void *buf,
		   size_t len, struct gossip_out *reply, const char **why);
/* Leaving: state LEFT, and pushes telling up to `fanout` members. */
unsigned int gossip_leave(struct gossip *g, uint64_t now_ms, struct gossip_out *out,
			  unsigned int max);

const struct gossip_member *gossip_find(const struct gossip *g, uint64_t id);
/* The servers this node's client uses (nswap.ko's server list): keeps the
 * ids in set[0..n) that are still ALIVE with free pages, and fills up to k
 * from a random sample of the table with the placement rule
 * (src/include/nswap_place.h).  Cost O(k), not O(members).  Returns the new n. */
unsigned int gossip_server_set(struct gossip *g, uint64_t *set, unsigned int n,
			       unsigned int k);
/* What this node learnt first hand (it placed pages there, or got ENOSPC)
 * lowers a member's free count, until the member's next heartbeat brings
 * its own number. */
void gossip_note_free(struct gossip *g, uint64_t id, uint64_t free_pages);
/* 1 while this node is still learning the cluster (full random samples),
 * 0 once its table is stable (capped, fresh-first samples); see above. */
int gossip_learning(const struct gossip *g);
/* Lengths of the rumour stack and the timer list (bounded; for tests). */
void gossip_queues(const struct gossip *g, uint32_t *rumours, uint32_t *timers);
/* Members in state ALIVE (not self). */
uint32_t gossip_alive(const struct gossip *g);
const char *gossip_state_name(unsigned int state);

#endif
