/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "home.h"
#include "punt.h"
#include "request.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "peercred.h"

static int known_request(unsigned int type)
{
	return type >= NSWAP_HELLO && type <= NSWAP_SET_CACHE_LIMIT;
}

static int implemented(unsigned int type)
{
	return (type >= NSWAP_HELLO && type <= NSWAP_PUNTPAGE) || type == NSWAP_SET_CACHE_LIMIT;
}

/* Requests a tool may send without HELLO (no client_id involved). */
static int allowed_before_hello(unsigned int type)
{
	return type == NSWAP_HELLO || type == NSWAP_STATUS || type == NSWAP_SET_CACHE_LIMIT;
}

#define FAIL(...) do { snprintf(buf, buflen, __VA_ARGS__); return buf; } while (0)

/* An owner's answer to a page sent home (home.h), on a connection that
 * negotiated NSWAP_FEAT_PUNTHOME (so past HELLO). */
static const char *home_answer_check(const struct conn *c, const struct frame_hdr *h,
				     char *buf, size_t buflen)
{
	if (h->version != c->version)
		FAIL("frame version %u, negotiated version %u", h->version, c->version);
	if (h->length || h->crc || h->flags || h->reserved)
		FAIL("PUNTPAGE reply with a payload, crc, flags or reserved byte, must be none");
	if (h->client_id != c->client_id)
		FAIL("PUNTPAGE reply for client_id 0x%llx on a connection of 0x%llx",
		     (unsigned long long)h->client_id, (unsigned long long)c->client_id);
	if (h->status != NSWAP_OK && h->status != NSWAP_ESTALE && h->status != NSWAP_ENOSPC)
		FAIL("PUNTPAGE reply status %u, must be OK, ESTALE or ENOSPC", h->status);
	return NULL;
}

const char *request_check(const struct conn *c, const struct frame_hdr *h, int hdr_ok,
			  char *buf, size_t buflen, int *trusted)
{
	unsigned int allowed_flags = 0;
	const char *name = msg_type_name(h->type);

	*trusted = 0;
	if (h->magic != NSWAP_MAGIC)
		FAIL("bad magic 0x%08x", (unsigned int)h->magic);
	if (!hdr_ok)
		FAIL("bad header crc");
	*trusted = 1;
	if (h->type == (NSWAP_PUNTPAGE | NSWAP_REPLY) && (c->features & NSWAP_FEAT_PUNTHOME))
		return home_answer_check(c, h, buf, buflen);
	if (h->type & NSWAP_REPLY)
		FAIL("reply-type frame (type 0x%02x) from a client", h->type);
	if (!known_request(h->type))
		FAIL("unknown message type %u", h->type);
	if (!implemented(h->type))
		FAIL("%s (type %u) is reserved and not implemented", name, h->type);
	if (h->reserved)
		FAIL("reserved byte is 0x%02x, must be 0", h->reserved);
	if (h->status)
		FAIL("status %u in a request, must be 0", h->status);
	if (h->length > NSWAP_MAX_PAYLOAD)
		FAIL("length %u exceeds NSWAP_MAX_PAYLOAD (%u)", (unsigned int)h->length,
		     NSWAP_MAX_PAYLOAD);
	if (h->length == 0 && h->crc)
		FAIL("crc 0x%08x with an empty payload, must be 0", (unsigned int)h->crc);
	if (c->hello_done) {
		if (h->type == NSWAP_HELLO)
			FAIL("second HELLO");
		if (h->version != c->version)
			FAIL("frame version %u, negotiated version %u", h->version, c->version);
	} else if (!allowed_before_hello(h->type)) {
		FAIL("%s before HELLO (version not negotiated)", name);
	} else if (h->version == 0) {
		FAIL("version 0 in %s", name);
	}

	switch (h->type) {
	case NSWAP_HELLO:
		if (h->length < HELLO_SIZE)
			FAIL("HELLO payload is %u bytes, needs at least %zu",
			     (unsigned int)h->length, HELLO_SIZE);
		break;
	case NSWAP_PUTPAGE:
		if (h->length != NSWAP_PAGE_SIZE)
			FAIL("PUTPAGE length %u, must be %u", (unsigned int)h->length,
			     NSWAP_PAGE_SIZE);
		break;
	case NSWAP_PUNTPAGE:
		if (!(c->features & NSWAP_FEAT_MIGRATION))
			FAIL("PUNTPAGE without negotiated NSWAP_FEAT_MIGRATION");
		if (h->length != NSWAP_PAGE_SIZE)
			FAIL("PUNTPAGE length %u, must be %u", (unsigned int)h->length,
			     NSWAP_PAGE_SIZE);
		if (h->hop_count < 1 || h->hop_count > NSWAP_MAX_HOPS)
			FAIL("PUNTPAGE hop_count %u, must be 1-%u", h->hop_count, NSWAP_MAX_HOPS);
		break;
	case NSWAP_GETPAGE:
		if (h->length)
			FAIL("GETPAGE with a %u-byte payload, must be empty",
			     (unsigned int)h->length);
		break;
	case NSWAP_INVALIDATE:
		allowed_flags = NSWAP_F_RANGE | NSWAP_F_NOREPLY | NSWAP_F_HOP | NSWAP_F_SWEEP;
		if ((h->flags & NSWAP_F_HOP) && !(c->features & NSWAP_FEAT_MIGRATION))
			FAIL("NSWAP_F_HOP without negotiated NSWAP_FEAT_MIGRATION");
		if ((h->flags & NSWAP_F_SWEEP) && !(c->features & NSWAP_FEAT_SWEEP))
			FAIL("NSWAP_F_SWEEP without negotiated NSWAP_FEAT_SWEEP");
		if ((h->flags & NSWAP_F_SWEEP) && (h->flags & NSWAP_F_HOP))
			FAIL("NSWAP_F_SWEEP and NSWAP_F_HOP together");
		if ((h->flags & NSWAP_F_RANGE) && !(c->features & NSWAP_FEAT_RANGE_INVALIDATE))
			FAIL("NSWAP_F_RANGE without negotiated NSWAP_FEAT_RANGE_INVALIDATE");
		if ((h->flags & NSWAP_F_RANGE) && h->length != 8)
			FAIL("range INVALIDATE length %u, must be 8", (unsigned int)h->length);
		if (!(h->flags & NSWAP_F_RANGE) && h->length)
			FAIL("INVALIDATE with a %u-byte payload, must be empty",
			     (unsigned int)h->length);
		break;
	case NSWAP_STATUS:
		if (h->length)
			FAIL("STATUS with a %u-byte payload, must be empty",
			     (unsigned int)h->length);
		break;
	case NSWAP_SET_CACHE_LIMIT:
		if (h->length != 8)
			FAIL("SET_CACHE_LIMIT length %u, must be 8", (unsigned int)h->length);
		break;
	}
	if (h->flags & ~allowed_flags)
		FAIL("flags 0x%04x not valid for %s", h->flags & ~allowed_flags, name);
	return NULL;
}

void request_reply_init(const struct conn *c, const struct frame_hdr *req, struct frame_hdr *r)
{
	memset(r, 0, sizeof(*r));
	r->magic = NSWAP_MAGIC;
	if (c->hello_done)
		r->version = c->version;
	else if (req->version >= NSWAP_PROTO_MIN_VERSION && req->version <= NSWAP_PROTO_VERSION)
		r->version = req->version;
	else
		r->version = NSWAP_PROTO_VERSION;
	r->type = req->type | NSWAP_REPLY;
	r->tag = req->tag;
	r->client_id = req->client_id;
	r->slot = req->slot;
	r->generation = req->generation;
	r->hop_count = req->hop_count;
}

static void reply_status(struct conn *c, struct frame_hdr *r, unsigned int status)
{
	r->status = (uint16_t)status;
	conn_reply(c, r, NULL, 0, 0);
}

/* The reply to a client's PUTPAGE, OK or ENOSPC: with NSWAP_FEAT_FREE_HINT it
 * carries this server's room just after the request -- what its gossip entry
 * announces (server.c gossip_tick), without the rounds that entry takes to
 * reach the client -- for the client's placement (protocol.md 5.2). */
static void reply_put(struct loop *l, struct conn *c, struct frame_hdr *r, unsigned int status)
{
	unsigned char buf[PUT_REPLY_SIZE];
	uint32_t used = cache_used(&l->srv->cache), limit = cache_limit(&l->srv->cache);

	if (!(c->features & NSWAP_FEAT_FREE_HINT)) {
		reply_status(c, r, status);
		return;
	}
	if (atomic_load_explicit(&l->srv->draining, memory_order_relaxed))
		used = limit = 0;	/* stopping (SIGTERM): lends nothing from now on */
	put_reply_encode(buf, used < limit ? limit - used : 0, limit);
	r->status = (uint16_t)status;
	conn_reply(c, r, buf, sizeof(buf), crc32c(buf, sizeof(buf)));
}

static void do_hello(struct loop *l, struct conn *c, const struct frame_hdr *h,
		     const unsigned char *payload, struct frame_hdr *r)
{
	struct hello in, out = {
		.min_version = NSWAP_PROTO_MIN_VERSION,
		.max_version = NSWAP_PROTO_VERSION,
		.features = NSWAPD_FEATURES,
		.capacity_pages = cache_limit(&l->srv->cache),	/* what we offer now */
	};
	unsigned char buf[HELLO_SIZE];
	unsigned int lo, hi;

	memcpy(out.name, l->srv->cfg.name, sizeof(out.name));
	hello_decode(&in, payload);
	for (char *p = in.name; *p; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	lo = in.min_version > NSWAP_PROTO_MIN_VERSION ? in.min_version : NSWAP_PROTO_MIN_VERSION;
	hi = in.max_version < NSWAP_PROTO_VERSION ? in.max_version : NSWAP_PROTO_VERSION;
	if (lo > hi) {
		/* The reply carries our own range so the client can tell why. */
		stat_add(&l->st.errors, 1);
		r->status = NSWAP_EVERSION;
		r->version = NSWAP_PROTO_VERSION;
		hello_encode(buf, &out);
		conn_reply(c, r, buf, sizeof(buf), crc32c(buf, sizeof(buf)));
		log_peer(L_WARN, "%s: HELLO from '%s' offers versions %u-%u, we speak %u-%u; closing",
			 c->peer, in.name, in.min_version, in.max_version,
			 NSWAP_PROTO_MIN_VERSION, NSWAP_PROTO_VERSION);
		conn_finish(l, c, "no common version");
		return;
	}
	if (h->client_id == 0) {
		stat_add(&l->st.errors, 1);
		reply_status(c, r, NSWAP_EINVAL);
		return;
	}
	c->hello_done = 1;
	conn_admitted(l, c);
	c->version = (uint8_t)hi;
	c->features = in.features & NSWAPD_FEATURES;
	c->client_id = h->client_id;
	memcpy(c->name, in.name, sizeof(c->name));
	/* Atomic: connections on other loops say HELLO at the same time. */
	atomic_fetch_add(&l->srv->nclients, 1);
	if (c->features & NSWAP_FEAT_MIGRATION)
		followers_add(&l->srv->followers, c->client_id);

	out.min_version = out.max_version = (uint16_t)hi;
	out.features = c->features;
	r->version = c->version;
	hello_encode(buf, &out);
	conn_reply(c, r, buf, sizeof(buf), crc32c(buf, sizeof(buf)));
	log_peer(L_INFO, "%s: HELLO client_id 0x%llx name '%s' version %u features 0x%x",
		 c->peer, (unsigned long long)c->client_id, c->name, c->version,
		 (unsigned int)c->features);
}

/* Store the page of h (PUTPAGE, or PUNTPAGE with `punt`).  Everything about
 * one key happens under its shard lock: the order check, taking a page and
 * the copy in, so two connections of one client (on different loops) writing
 * one slot leave one of the two pages, whole.  A stored copy that is newer
 * wins: by generation for PUTPAGE, by (generation, hop_count) for PUNTPAGE.
 * Returns the status, already answered unless it is OK. */
static unsigned int store_page(struct loop *l, struct conn *c, const struct frame_hdr *h,
			       const unsigned char *payload, struct frame_hdr *r, int punt)
{
	struct cache *cache = &l->srv->cache;
	struct cache_shard *sh = cache_lock(cache, h->client_id, h->slot);
	uint32_t idx = cache_lookup(cache, sh, h->client_id, h->slot);
	struct cache_meta *m;

	if (idx != CACHE_NONE &&
	    (cache->meta[idx].generation > h->generation ||
	     (punt && cache->meta[idx].generation == h->generation &&
	      cache->meta[idx].hop_count > h->hop_count))) {
		/* An older copy overtaken by a newer one: keep the newer page. */
		r->generation = cache->meta[idx].generation;
		r->hop_count = cache->meta[idx].hop_count;
		cache_unlock(sh);
		stat_add(&l->st.errors, 1);
		reply_status(c, r, NSWAP_ESTALE);
		return NSWAP_ESTALE;
	}
	if (idx == CACHE_NONE) {
		/* A full cache still takes an owner's new page when the owner
		 * follows moves (it will hear where the page goes) and a gossip
		 * member has room (cache->overflow > 0): the page mover sends the
		 * pages over the limit there at the next round (protocol.md 10).
		 * Not for PUNTPAGE: a moved page must land where there is room. */
		int may_overflow = !punt && (c->features & NSWAP_FEAT_MIGRATION) &&
				   !atomic_load(&l->srv->emptying) &&
				   !atomic_load(&l->srv->draining);
		int over = 0;

		idx = cache_insert(cache, sh, h->client_id, h->slot, may_overflow, &over);
		if (over)
			stat_add(&l->st.overflows, 1);
		if (idx == CACHE_NONE) {
			cache_unlock(sh);
			stat_add(&l->st.errors, 1);
			if (punt)
				reply_status(c, r, NSWAP_ENOSPC);
			else
				reply_put(l, c, r, NSWAP_ENOSPC);
			return NSWAP_ENOSPC;
		}
	}
	m = &cache->meta[idx];
	memcpy(cache_page(cache, idx), payload, NSWAP_PAGE_SIZE);
	m->generation = h->generation;
	/* a PUTPAGE's copy is the owner's own write: hop 0 whatever the header
	 * says (a sweep drops only those, NSWAP_F_SWEEP) */
	m->hop_count = punt ? h->hop_count : 0;
	m->crc = h->crc;
	cache_set_moving(cache, m, 0);	/* a new copy: not the one that was punted */
	cache_unlock(sh);
	return NSWAP_OK;
}

static void do_put(struct loop *l, struct conn *c, const struct frame_hdr *h,
		   const unsigned char *payload, struct frame_hdr *r)
{
	if (store_page(l, c, h, payload, r, 0) != NSWAP_OK)
		return;
	stat_add(&l->st.puts, 1);
	reply_put(l, c, r, NSWAP_OK);
}

/* A page moved here from another server (protocol.md 11.1): stored under
 * its owner's client_id, then the owner is told where it is (UPDATE, on its
 * own connections). */
static void do_punt(struct loop *l, struct conn *c, const struct frame_hdr *h,
		    const unsigned char *payload, struct frame_hdr *r)
{
	/* an owner not connected here with migration would never hear of the
	 * page (UPDATE): it would read the sender's copy forever, and this one
	 * would be an orphan nothing frees */
	if (!followers_contains(&l->srv->followers, h->client_id)) {
		stat_add(&l->st.errors, 1);
		log_peer(L_DEBUG, "%s: PUNTPAGE for client_id 0x%llx refused: not connected "
			 "here with migration", c->peer, (unsigned long long)h->client_id);
		reply_status(c, r, NSWAP_ENOENT);
		return;
	}
	if (store_page(l, c, h, payload, r, 1) != NSWAP_OK)
		return;
	stat_add(&l->st.punts, 1);
	server_post_update(l->srv, l, h);
	reply_status(c, r, NSWAP_OK);
}

static void do_get(struct loop *l, struct conn *c, const struct frame_hdr *h,
		   struct frame_hdr *r)
{
	struct cache *cache = &l->srv->cache;
	struct cache_shard *sh = cache_lock(cache, h->client_id, h->slot);
	uint32_t idx = cache_lookup(cache, sh, h->client_id, h->slot);
	const struct cache_meta *m;

	stat_add(&l->st.gets, 1);
	if (idx == CACHE_NONE) {
		cache_unlock(sh);
		stat_add(&l->st.get_misses, 1);
		reply_status(c, r, NSWAP_ENOENT);
		return;
	}
	m = &cache->meta[idx];
	r->generation = m->generation;
	r->hop_count = m->hop_count;
	if (m->generation != h->generation) {
		cache_unlock(sh);
		stat_add(&l->st.get_misses, 1);
		reply_status(c, r, NSWAP_ESTALE);
		return;
	}
	/* The copy into the output ring happens with the lock held: after
	 * cache_unlock() a PUT or INVALIDATE on another loop may reuse the page. */
	conn_reply(c, r, cache_page(cache, idx), NSWAP_PAGE_SIZE, m->crc);
	cache_unlock(sh);
}

/* c's share of this round's range budget (request.h), taken: 0 when none is
 * left (its range waits for the next round). */
static uint64_t range_take(struct loop *l, struct conn *c, unsigned int jobs)
{
	uint64_t step = range_share(jobs, l->range_budget);

	l->range_budget -= step;
	c->range_stepped = l->range_round;
	return step;
}

static void do_invalidate(struct loop *l, struct conn *c, const struct frame_hdr *h,
			  const unsigned char *payload, struct frame_hdr *r)
{
	struct cache *cache = &l->srv->cache;
	int reply = !(h->flags & NSWAP_F_NOREPLY);
	unsigned int hop = (h->flags & NSWAP_F_SWEEP) ? CACHE_SWEEP :
			   (h->flags & NSWAP_F_HOP) ? h->hop_count : CACHE_ANY_HOP;

	if (h->flags & NSWAP_F_RANGE) {
		uint64_t count = get_le64(payload);

		/* slot + count may reach 2^64 exactly (protocol.md 5.4): the
		 * range ends at the last slot there is */
		if (count > NSWAP_MAX_RANGE_COUNT ||
		    (count && h->slot && h->slot - 1 > UINT64_MAX - count)) {
			stat_add(&l->st.errors, 1);
			if (reply)
				reply_status(c, r, NSWAP_EINVAL);
			return;
		}
		/* In steps (request.h range_share; request_range_steps() does
		 * the rest, one step per event-loop round): a wide range on a
		 * large cache took up to ~80 ms of the loop at once.  This connection's next requests
		 * wait for it; a PUT of the range racing with it on another
		 * connection lands before or after, per key. */
		uint64_t step = range_take(l, c, l->range_jobs + 1);

		cache_range_begin(cache, &c->range, h->client_id, h->slot, count,
				  h->generation, hop);
		if (!step || !cache_range_step(cache, &c->range, step)) {
			c->range_busy = 1;
			c->range_reply = *r;
			c->range_noreply = !reply;
			l->range_jobs++;
			return;
		}
	} else {
		struct cache_shard *sh = cache_lock(cache, h->client_id, h->slot);
		uint32_t idx = cache_lookup(cache, sh, h->client_id, h->slot);

		if (idx != CACHE_NONE && cache_older(&cache->meta[idx], h->generation, hop))
			cache_remove(cache, sh, idx);
		cache_unlock(sh);
	}
	stat_add(&l->st.invalidates, 1);
	if (reply)
		reply_status(c, r, NSWAP_OK);
}

/* Reply with `status` and the STATUS payload (STATUS, SET_CACHE_LIMIT).
 * The counters are the sum over every loop (server_stats()): this loop's
 * own are exact; the others' are relaxed loads, which may lag by requests
 * still being executed, but a loop updates its counters before it writes
 * the reply, so what a client has seen answered is counted. */
static void reply_with_status(struct loop *l, struct conn *c, struct frame_hdr *r,
			      unsigned int status)
{
	const struct server *s = l->srv;
	unsigned char buf[STATUS_SIZE];
	struct stats_sum t;
	uint32_t used = cache_used(&s->cache), limit = cache_limit(&s->cache);
	uint64_t flags = (used > limit ? NSWAP_STATE_OVER_LIMIT : 0) |
			 (atomic_load(&s->emptying) ? NSWAP_STATE_DRAINING : 0);

	server_stats(s, &t);
	const uint64_t v[STATUS_FIELDS] = {
		s->cache.capacity, used, atomic_load_explicit(&s->nclients, memory_order_relaxed),
		t.puts, t.gets, t.invalidates, t.get_misses,
		t.errors, t.bytes_in, t.bytes_out, server_uptime(s),
		limit, flags,
		t.punts, s->punter ? atomic_load(&s->punter->punted) : 0, t.updates_sent,
		t.overflows, t.punts_home,
	};

	r->status = (uint16_t)status;
	status_encode(buf, v);
	conn_reply(c, r, buf, sizeof(buf), crc32c(buf, sizeof(buf)));
}

/* SET_CACHE_LIMIT 0: the admin's drain (before a restart or removal).  No
 * new page is taken, and with gossip on the page mover sends every page to
 * other members (punt.h); the server holds none once their owners have
 * dropped the copies here.  Elastic or not, the limit stays 0 until a
 * SET_CACHE_LIMIT above 0. */
static void start_page_drain(struct loop *l, struct conn *c, struct frame_hdr *r, uint32_t old)
{
	struct server *s = l->srv;
	int was = atomic_exchange(&s->emptying, 1);

	/* after the flag: an elastic tick that set a limit meanwhile sees the
	 * flag when it checks again, and sets 0 itself (elastic_timer); no
	 * overflow from here on (set_overflow keeps it 0 while emptying) */
	atomic_store_explicit(&s->cache.overflow, 0, memory_order_relaxed);
	cache_set_limit(&s->cache, 0);
	server_wake_loops(s);	/* pages may go home (home.h) */
	if (!was)
		log_msg(L_INFO, "%s: drain: cache limit %u -> 0 pages, %u held%s", c->peer, old,
			cache_used(&s->cache),
			s->punter ? "; they move to other servers of the gossip table" :
			"; gossip is off, so they go back to owners that take them (home.h), the "
			"others stay until their owners drop them");
	reply_with_status(l, c, r, NSWAP_OK);
}

/* Control from the node itself only: protocol version 1 has no
 * authentication, so "the peer is on loopback" is the one check there is
 * (a local user could also stop the daemon).  The reply carries the STATUS
 * payload so the caller sees the bound (capacity_pages) and the result. */
static void do_set_cache_limit(struct loop *l, struct conn *c, const unsigned char *payload,
			       struct frame_hdr *r)
{
	uint64_t pages = get_le64(payload);
	uint32_t old = cache_limit(&l->srv->cache);
	uid_t uid = (uid_t)-1;

	if (!c->local) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT refused: control requests are accepted "
			 "only from a loopback address (run the tool on the server's node)",
			 c->peer);
		reply_status(c, r, NSWAP_EPERM);
		return;
	}
	if (c->hello_done && !(c->features & NSWAP_FEAT_CACHE_LIMIT)) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT refused: this connection did not negotiate "
			 "NSWAP_FEAT_CACHE_LIMIT in HELLO (send it before HELLO, or offer the "
			 "feature)", c->peer);
		reply_status(c, r, NSWAP_EPERM);
		return;
	}
	/* peer_is_admin(), with the reason for the log */
	if (peer_uid(c->fd, &uid) != 0) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT refused: cannot tell which user sent it "
			 "(socket table: %s); only root or nswapd's own user may change the cache "
			 "limit", c->peer, strerror(errno));
		reply_status(c, r, NSWAP_EPERM);
		return;
	}
	if (!uid_is_admin(uid)) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT refused: sent by uid %u; only root or "
			 "nswapd's own user (uid %u) may change the cache limit", c->peer,
			 (unsigned int)uid, (unsigned int)geteuid());
		reply_status(c, r, NSWAP_EPERM);
		return;
	}
	if (pages > l->srv->cache.capacity) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT %llu pages refused: must be 0 to %u pages "
			 "(cache_size, the maximum; raise it in nswapd.conf and restart for more)",
			 c->peer, (unsigned long long)pages, l->srv->cache.capacity);
		reply_with_status(l, c, r, NSWAP_EINVAL);
		return;
	}
	if (pages == 0) {
		start_page_drain(l, c, r, old);
		return;
	}
	if (atomic_exchange(&l->srv->emptying, 0)) {
		/* the end of a drain: also with elastic on, which takes over again
		 * from this limit */
		cache_set_limit(&l->srv->cache, pages);
		log_msg(L_INFO, "%s: drain ended: cache limit 0 -> %u pages", c->peer,
			(unsigned int)pages);
		reply_with_status(l, c, r, NSWAP_OK);
		return;
	}
	if (l->srv->cfg.elastic) {
		stat_add(&l->st.errors, 1);
		log_peer(L_WARN, "%s: SET_CACHE_LIMIT %llu pages refused: elastic = on moves the "
			 "limit with this node's memory (set elastic_reserve and cache_size, or "
			 "elastic = off to set the limit by hand)", c->peer,
			 (unsigned long long)pages);
		reply_with_status(l, c, r, NSWAP_EINVAL);
		return;
	}
	cache_set_limit(&l->srv->cache, pages);
	if (pages < old)
		server_wake_loops(l->srv);	/* pages may go home (home.h) */
	if (pages != old)
		log_msg(L_INFO, "%s: cache limit %u -> %u pages (maximum %u, %u in use)%s",
			c->peer, old, (unsigned int)pages, l->srv->cache.capacity,
			cache_used(&l->srv->cache),
			cache_used(&l->srv->cache) > pages ?
			"; over the limit: new slots are refused until usage falls below it" : "");
	reply_with_status(l, c, r, NSWAP_OK);
}

/* A value reserved by protocol.md 7 where a page's own is due: generation
 * UINT64_MAX means "any" and names no page; a client's PUTPAGE and GETPAGE
 * carry hop count 0; NSWAP_F_HOP's is at most NSWAP_MAX_HOPS.  Well-formed
 * but wrong (EINVAL, the connection stays).  NULL when none. */
static const char *reserved_value(const struct frame_hdr *h)
{
	switch (h->type) {
	case NSWAP_PUTPAGE:
	case NSWAP_GETPAGE:
		if (h->hop_count)
			return "hop_count is not 0";
		/* fall through */
	case NSWAP_PUNTPAGE:
		if (h->generation == UINT64_MAX)
			return "generation UINT64_MAX (\"any\") names no page";
		break;
	case NSWAP_INVALIDATE:
		if ((h->flags & NSWAP_F_HOP) && h->hop_count > NSWAP_MAX_HOPS)
			return "NSWAP_F_HOP with hop_count above 15";
		break;
	}
	return NULL;
}

void request_answered(struct loop *l, struct conn *c)
{
	if (c->answered || !c->hello_done || c->range_busy)
		return;
	/* Frames the server sends on its own (UPDATE, pages sent home) only
	 * once the client's first request past HELLO is answered: until then
	 * it may read replies one by one (nswap.ko's purge INVALIDATE of a
	 * first connection, itself done in steps) */
	c->answered = 1;
	if (c->features & NSWAP_FEAT_PUNTHOME)
		l->home_due = 1;
}

/* One step of c's range (budget permitting); when it is done, the reply and
 * the requests that waited. */
static void range_step(struct loop *l, struct conn *c, unsigned int jobs)
{
	uint64_t step = range_take(l, c, jobs);

	if (!step || !cache_range_step(&l->srv->cache, &c->range, step))
		return;
	c->range_busy = 0;
	l->range_jobs--;
	stat_add(&l->st.invalidates, 1);
	if (!c->range_noreply)
		reply_status(c, &c->range_reply, NSWAP_OK);
	request_answered(l, c);
	conn_resume(l, c);	/* the requests that waited, and the reply */
}

/* The round's steps: the ranges under way share what is left of the round's
 * budget.  When it does not go round, the connections take turns at going
 * first (the first `skip` of them wait for the second pass); a range begun
 * meanwhile (conn_resume) had its first step and is not stepped again. */
void request_range_steps(struct loop *l)
{
	const unsigned int jobs = l->range_jobs;
	const unsigned int round = ++l->range_round;
	unsigned int skip = round % jobs;
	struct conn *c, *next;

	for (int pass = 0; pass < 2; pass++) {
		for (c = l->conns; c && l->range_jobs && l->range_budget; c = next) {
			next = c->next;
			if (!c->range_busy || c->dead || c->range_stepped == round)
				continue;
			if (pass == 0 && skip) {
				skip--;
				continue;
			}
			range_step(l, c, jobs);
		}
	}
}

void request_handle(struct loop *l, struct conn *c, const struct frame_hdr *h,
		    const unsigned char *payload)
{
	const char *reserved;
	struct frame_hdr r;

	request_reply_init(c, h, &r);
	if (h->length && crc32c(payload, h->length) != h->crc) {
		/* Not a protocol violation: the frame boundary is intact, only the
		 * payload is damaged.  Nothing is executed. */
		stat_add(&l->st.errors, 1);
		log_peer(L_DEBUG, "%s: %s tag %llu: payload crc mismatch", c->peer,
			 msg_type_name(h->type), (unsigned long long)h->tag);
		if (!(h->type == NSWAP_INVALIDATE && (h->flags & NSWAP_F_NOREPLY)))
			reply_status(c, &r, NSWAP_EBADCRC);
		return;
	}
	if (h->type == (NSWAP_PUNTPAGE | NSWAP_REPLY)) {
		/* checked by request_check(): an owner answers a page sent home */
		if (home_answer(l, c, h) != 0)
			conn_violation(l, c, NULL, "PUNTPAGE reply for no page sent home on this "
				       "connection");
		return;
	}
	reserved = reserved_value(h);
	if (reserved) {
		stat_add(&l->st.errors, 1);
		log_peer(L_DEBUG, "%s: %s tag %llu refused: %s", c->peer, msg_type_name(h->type),
			 (unsigned long long)h->tag, reserved);
		if (!(h->type == NSWAP_INVALIDATE && (h->flags & NSWAP_F_NOREPLY)))
			reply_status(c, &r, NSWAP_EINVAL);
		return;
	}
	switch (h->type) {
	case NSWAP_HELLO:
		do_hello(l, c, h, payload, &r);
		return;
	case NSWAP_STATUS:
		reply_with_status(l, c, &r, NSWAP_OK);
		return;
	case NSWAP_SET_CACHE_LIMIT:
		do_set_cache_limit(l, c, payload, &r);
		return;
	}
	/* A server moving another client's page: any client_id (protocol.md 11.1). */
	if (h->type == NSWAP_PUNTPAGE) {
		do_punt(l, c, h, payload, &r);
		return;
	}
	/* Page requests: a connection speaks for the client it said HELLO as. */
	if (h->client_id != c->client_id) {
		stat_add(&l->st.errors, 1);
		log_peer(L_DEBUG, "%s: %s for client_id 0x%llx on a connection of 0x%llx",
			 c->peer, msg_type_name(h->type), (unsigned long long)h->client_id,
			 (unsigned long long)c->client_id);
		if (!(h->type == NSWAP_INVALIDATE && (h->flags & NSWAP_F_NOREPLY)))
			reply_status(c, &r, NSWAP_EINVAL);
		return;
	}
	switch (h->type) {
	case NSWAP_PUTPAGE:
		do_put(l, c, h, payload, &r);
		break;
	case NSWAP_GETPAGE:
		do_get(l, c, h, &r);
		break;
	case NSWAP_INVALIDATE:
		do_invalidate(l, c, h, payload, &r);
		break;
	}
}
