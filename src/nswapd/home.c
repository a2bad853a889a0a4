// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* Punting pages back to their owners; see home.h. */
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>

#include "conn.h"
#include "home.h"
#include "log.h"
#include "nswapd.h"

/* A connection that may take another page home now. */
static int can_send(const struct conn *c, int64_t now)
{
	return c->nhome < HOME_WINDOW && now >= c->home_pause_until_ms &&
	       CONN_OBUF - conn_out_used(c) >= 2 * CONN_MAX_REPLY;
}

static int home_capable(const struct conn *c)
{
	return !c->dead && c->answered && (c->features & NSWAP_FEAT_PUNTHOME);
}

/* Send page idx of the cache home on c if it is still the copy seen and
 * still over the limit; 1 when sent. */
static int send_home(struct loop *l, struct conn *c, uint32_t idx, const struct cache_meta *seen)
{
	struct server *s = l->srv;
	struct cache *cache = &s->cache;
	struct cache_shard *sh;
	struct cache_meta *m;
	int sent = 0;

	pthread_mutex_lock(&s->home_lock);
	if (!cache_over_limit(cache)) {
		pthread_mutex_unlock(&s->home_lock);
		return 0;
	}
	sh = cache_lock(cache, seen->client_id, seen->slot);
	m = &cache->meta[idx];
	if (cache_lookup(cache, sh, seen->client_id, seen->slot) == idx && !m->moving &&
	    m->hop_count < NSWAP_MAX_HOPS) {
		struct frame_hdr h = {
			.magic = NSWAP_MAGIC, .version = c->version, .type = NSWAP_PUNTPAGE,
			.tag = ++c->home_tag, .client_id = m->client_id, .slot = m->slot,
			.generation = m->generation, .hop_count = (uint8_t)(m->hop_count + 1),
		};

		c->home[c->nhome++] = (struct home_sent){ .slot = m->slot,
							  .generation = m->generation,
							  .hop_count = m->hop_count };
		/* the stored crc is the page's (checked when it was stored) */
		conn_reply(c, &h, cache_page(cache, idx), NSWAP_PAGE_SIZE, m->crc);
		cache_set_moving(cache, m, 1);
		sent = 1;
	}
	cache_unlock(sh);
	pthread_mutex_unlock(&s->home_lock);
	return sent;
}

void home_fill(struct loop *l)
{
	struct server *s = l->srv;
	struct cache *cache = &s->cache;
	struct conn *ready[64], *touched[64], *c;
	unsigned int nready = 0, ntouched = 0;
	int64_t now = now_ms();

	l->home_due = 0;
	l->home_waiting = 0;
	if (l->draining || !atomic_load(&s->home_ok) || !cache_over_limit(cache))
		return;
	for (c = l->conns; c; c = c->next) {
		if (!home_capable(c))
			continue;
		if (nready < 64 && can_send(c, now))
			ready[nready++] = c;
		else
			l->home_waiting = 1;
	}
	for (uint32_t n = 0; nready && n < HOME_SCAN; n++) {
		uint32_t idx = l->home_cursor++ % cache->arena_pages;
		struct cache_meta m = cache->meta[idx];	/* racy: checked under the lock */
		unsigned int i;

		if (!m.in_use || m.moving || m.hop_count >= NSWAP_MAX_HOPS)
			continue;
		for (i = 0; i < nready && ready[i]->client_id != m.client_id; i++)
			;
		if (i == nready)
			continue;
		c = ready[i];
		if (send_home(l, c, idx, &m)) {
			unsigned int t;

			for (t = 0; t < ntouched && touched[t] != c; t++)
				;
			if (t == ntouched)
				touched[ntouched++] = c;
		} else if (!cache_over_limit(cache)) {
			break;
		}
		if (!can_send(c, now)) {
			ready[i] = ready[--nready];
			l->home_waiting = 1;
		}
		if (n + 1 == HOME_SCAN && cache_over_limit(cache))
			l->home_waiting = 1;	/* more of the arena to look at */
	}
	for (unsigned int t = 0; t < ntouched; t++)
		conn_event(l, touched[t], EPOLLOUT);	/* flush now */
}

int home_answer(struct loop *l, struct conn *c, const struct frame_hdr *h)
{
	struct cache *cache = &l->srv->cache;
	struct cache_shard *sh;
	struct home_sent sent;
	uint32_t i, idx;

	for (i = 0; i < c->nhome; i++)
		if (c->home[i].slot == h->slot && c->home[i].generation == h->generation &&
		    c->home[i].hop_count + 1 == h->hop_count)
			break;
	if (i == c->nhome)
		return -1;
	sent = c->home[i];
	c->home[i] = c->home[--c->nhome];
	l->home_due = 1;	/* a window slot is free */
	sh = cache_lock(cache, c->client_id, sent.slot);
	idx = cache_lookup(cache, sh, c->client_id, sent.slot);
	if (idx != CACHE_NONE && cache->meta[idx].generation == sent.generation &&
	    cache->meta[idx].hop_count == sent.hop_count && cache->meta[idx].moving) {
		/* else rewritten (a new copy, not moving) or dropped meanwhile */
		cache_set_moving(cache, &cache->meta[idx], 0);
		if (h->status == NSWAP_OK || h->status == NSWAP_ESTALE)
			cache_remove(cache, sh, idx);
	}
	cache_unlock(sh);
	if (h->status == NSWAP_OK) {
		stat_add(&l->st.punts_home, 1);
	} else if (h->status != NSWAP_ESTALE) {
		stat_add(&l->st.punts_home_refused, 1);
		c->home_pause_until_ms = now_ms() + HOME_PAUSE_MS;
		log_peer(L_WARN, "%s: client '%s' could not take slot %llu home (%s); no page goes "
			 "back to it for %d s", c->peer, c->name, (unsigned long long)sent.slot,
			 status_name(h->status), HOME_PAUSE_MS / 1000);
	}
	return 0;
}

void home_conn_closed(struct loop *l, struct conn *c)
{
	struct cache *cache = &l->srv->cache;

	for (uint32_t i = 0; i < c->nhome; i++) {
		struct cache_shard *sh = cache_lock(cache, c->client_id, c->home[i].slot);
		uint32_t idx = cache_lookup(cache, sh, c->client_id, c->home[i].slot);

		if (idx != CACHE_NONE && cache->meta[idx].generation == c->home[i].generation &&
		    cache->meta[idx].hop_count == c->home[i].hop_count)
			cache_set_moving(cache, &cache->meta[idx], 0);
		cache_unlock(sh);
	}
	/* another connection of the owner, on any loop, may take them */
	if (c->nhome && atomic_load(&l->srv->home_ok))
		server_wake_loops(l->srv);
	c->nhome = 0;
}
