/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "request.h"

#define OMASK		(CONN_OBUF - 1)
#define MAX_FRAME	(NSWAP_HDR_SIZE + NSWAP_MAX_PAYLOAD)
/* Reads per turn before other connections get theirs. */
#define READS_PER_TURN	16
/* Requests executed per turn.  A turn ends there, and the connection waits
 * until every other connection of its loop with requests ready had a turn:
 * a client that pipelines thousands of requests delays a client with one
 * request by at most one turn per connection of the loop, not by its whole
 * backlog.  32 fills the output ring with page replies (CONN_OBUF / 4 KiB),
 * so a turn still sends full writes. */
#define FRAMES_PER_TURN 32

struct conn *conn_alloc(int fd, const char *peer)
{
	struct conn *c = malloc(sizeof(*c) + CONN_RBUF + CONN_OBUF);

	if (!c) {
		log_peer(L_WARN, "%s: out of memory for a connection; closing", peer);
		close(fd);
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->kind = EV_CONN;
	c->fd = fd;
	c->events = EPOLLIN;
	c->admit_bucket = -1;
	c->rbuf = (unsigned char *)(c + 1);
	c->obuf = c->rbuf + CONN_RBUF;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	return c;
}

/* Once: it said HELLO, or it closes before it did. */
void conn_admitted(struct loop *l, struct conn *c)
{
	admission_release(&l->srv->admission, c->admit_bucket);
	c->admit_bucket = -1;
}

void conn_discard(struct loop *l, struct conn *c)
{
	conn_admitted(l, c);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&l->nconns, 1);
	atomic_fetch_sub(&l->srv->nconns, 1);
}

int conn_attach(struct loop *l, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		log_msg(L_ERR, "epoll_ctl(ADD): %s", strerror(errno));
		conn_discard(l, c);
		return -1;
	}
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	if (!c->admin && (!l->hello_next_ms || c->hello_deadline_ms < l->hello_next_ms))
		l->hello_next_ms = c->hello_deadline_ms;
	log_msg(L_DEBUG, "%s: connected (%u connections)", c->peer,
		atomic_load_explicit(&l->srv->nconns, memory_order_relaxed));
	return 0;
}

static void ring_put(struct conn *c, const void *data, size_t len)
{
	size_t off = (size_t)(c->otail & OMASK), first = CONN_OBUF - off;

	if (first > len)
		first = len;
	memcpy(c->obuf + off, data, first);
	memcpy(c->obuf, (const unsigned char *)data + first, len - first);
	c->otail += len;
}

void conn_reply(struct conn *c, struct frame_hdr *h, const void *payload, size_t len,
		uint32_t payload_crc)
{
	unsigned char hdr[NSWAP_HDR_SIZE];

	h->length = (uint32_t)len;
	h->crc = len ? payload_crc : 0;
	frame_hdr_encode(hdr, h);
	ring_put(c, hdr, sizeof(hdr));
	if (len)
		ring_put(c, payload, len);
}

/* Write queued output.  Returns bytes written, or -1 on a fatal error. */
static ssize_t conn_flush(struct loop *l, struct conn *c)
{
	ssize_t total = 0;

	while (conn_out_used(c)) {
		size_t used = conn_out_used(c), off = (size_t)(c->ohead & OMASK);
		size_t first = CONN_OBUF - off < used ? CONN_OBUF - off : used;
		struct iovec iov[2] = {
			{ c->obuf + off, first },
			{ c->obuf, used - first },
		};
		ssize_t n = writev(c->fd, iov, used > first ? 2 : 1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_msg(L_DEBUG, "%s: write: %s", c->peer, strerror(errno));
			return -1;
		}
		c->ohead += (uint64_t)n;
		stat_add(&l->st.bytes_out, (uint64_t)n);
		total += n;
	}
	if (!conn_out_used(c))
		c->ohead = c->otail = 0;	/* keep the next batch contiguous */
	return total;
}

static int conn_turn_over(const struct conn *c)
{
	return c->turn_frames >= FRAMES_PER_TURN;
}

/* Cut complete frames out of rbuf and execute them while the ring has room
 * for a reply and the turn lasts. */
static void conn_process(struct loop *l, struct conn *c)
{
	char reason[160];

	c->blocked = 0;
	while (!c->dead && !c->range_busy && !conn_turn_over(c)) {
		size_t avail = c->rlen - c->rpos, need;

		if (!c->have_hdr) {
			const char *why;
			int ok, trusted;

			if (avail < NSWAP_HDR_SIZE)
				break;
			ok = frame_hdr_decode(&c->hdr, c->rbuf + c->rpos);
			why = request_check(c, &c->hdr, ok, reason, sizeof(reason), &trusted);
			if (why) {
				conn_violation(l, c, trusted ? &c->hdr : NULL, why);
				return;
			}
			c->have_hdr = 1;
		}
		need = NSWAP_HDR_SIZE + c->hdr.length;
		if (avail < need)
			break;
		if (CONN_OBUF - conn_out_used(c) < CONN_MAX_REPLY) {
			c->blocked = 1;
			break;
		}
		request_handle(l, c, &c->hdr, c->rbuf + c->rpos + NSWAP_HDR_SIZE);
		if (c->dead)
			return;
		c->turn_frames++;
		if (c->hdr.type != NSWAP_HELLO)
			request_answered(l, c);
		c->rpos += need;
		c->have_hdr = 0;
	}
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (CONN_RBUF - c->rlen < MAX_FRAME) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
}

/* One read.  Returns 2 if bytes arrived and filled the buffer, 1 if fewer
 * arrived (the socket is probably empty now), 0 on EAGAIN or EOF, -1 on
 * error. */
static int conn_read(struct loop *l, struct conn *c)
{
	size_t space = CONN_RBUF - c->rlen;
	ssize_t n = read(c->fd, c->rbuf + c->rlen, space);

	if (n > 0) {
		c->rlen += (size_t)n;
		stat_add(&l->st.bytes_in, (uint64_t)n);
		if (l->draining)
			c->last_rx_ms = now_ms();
		return (size_t)n == space ? 2 : 1;
	}
	if (n == 0) {
		c->rd_closed = 1;
		return 0;
	}
	if (errno == EINTR)
		return 2;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		/* Draining: stop reading once the peer has been quiet for a while
		 * at a frame boundary; what it sent before the signal is in. */
		if (l->draining && c->rpos == c->rlen) {
			int64_t since = c->last_rx_ms > l->drain_start_ms ? c->last_rx_ms
									  : l->drain_start_ms;

			if (now_ms() - since >= NSWAPD_DRAIN_QUIET_MS)
				c->rd_closed = 1;
		}
		return 0;
	}
	log_msg(L_DEBUG, "%s: read: %s", c->peer, strerror(errno));
	return -1;
}

static void conn_set_events(struct loop *l, struct conn *c)
{
	uint32_t want = 0;

	if (!c->rd_closed && !c->blocked && c->rlen < CONN_RBUF)
		want |= EPOLLIN;
	if (conn_out_used(c))
		want |= EPOLLOUT;
	if (want != c->events) {
		struct epoll_event ev = { .events = want, .data.ptr = c };

		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
			log_msg(L_ERR, "%s: epoll_ctl(MOD): %s", c->peer, strerror(errno));
			conn_close(l, c, NULL);
			return;
		}
		c->events = want;
	}
}

/* Move data in both directions until nothing more can be done now, or this
 * connection's turn is over. */
static void conn_pump(struct loop *l, struct conn *c, int readable)
{
	int reads = 0;

	if (c->yielded) {	/* an event came first: this is its owed turn */
		c->yielded = 0;
		l->yielded--;
	}
	c->turn_frames = 0;
	for (;;) {
		int progress = 0;
		ssize_t wrote;

		conn_process(l, c);
		if (c->dead)
			return;
		wrote = conn_flush(l, c);
		if (wrote < 0) {
			conn_close(l, c, "write error");
			return;
		}
		if (conn_turn_over(c)) {
			/* requests may be left in rbuf or the socket: the next
			 * turn comes after the other connections' (and a
			 * frame boundary is never waited on here) */
			c->yielded = 1;
			l->yielded++;
			break;
		}
		if (wrote > 0 && c->blocked)
			progress = 1;	/* room for the waiting frame, maybe */
		if (!c->rd_closed && !c->blocked && c->rlen < CONN_RBUF &&
		    (readable || l->draining) && reads < READS_PER_TURN) {
			int r = conn_read(l, c);

			reads++;
			if (r < 0) {
				conn_close(l, c, "read error");
				return;
			}
			if (r > 0)
				progress = 1;
			/* A short read emptied the socket: skip the read that would
			 * only say EAGAIN; level-triggered epoll reports new data.
			 * (The drain needs to see EAGAIN, so it reads on.) */
			if (r < 2)
				readable = 0;
		}
		if (!progress)
			break;
	}
	if (c->rd_closed && !conn_out_used(c) && !c->range_busy && !c->yielded) {
		/* Peer finished sending (or the drain sweep is done) and every
		 * reply is out; a trailing partial frame is dropped. */
		conn_close(l, c, l->draining ? "drained" : "closed by peer");
		return;
	}
	conn_set_events(l, c);
}

void conn_resume(struct loop *l, struct conn *c)
{
	if (!c->dead)
		conn_pump(l, c, 0);
}

void conn_run_yielded(struct loop *l)
{
	struct conn *c, *next;
	unsigned int owed = l->yielded;

	/* Only those that yielded before this walk: one that yields again
	 * waits for the next round (after the next epoll_wait). */
	for (c = l->conns; c && owed; c = next) {
		next = c->next;
		if (!c->yielded || c->dead)
			continue;
		owed--;
		conn_pump(l, c, 1);
	}
}

void conn_event(struct loop *l, struct conn *c, uint32_t events)
{
	if (c->dead)
		return;
	conn_pump(l, c, (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0);
}

void conn_drain(struct loop *l, struct conn *c)
{
	if (!c->dead && !c->rd_closed)
		conn_pump(l, c, 1);
}

void conn_close(struct loop *l, struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		log_msg(L_DEBUG, "%s: %s", c->peer, why);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	/* Swallow what the peer already sent, so that close() sends FIN, not
	 * an RST that could overtake our last reply. */
	for (int i = 0; i < 4; i++)
		if (read(c->fd, c->rbuf, CONN_RBUF) <= 0)
			break;
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
	conn_admitted(l, c);
	if (c->range_busy) {
		c->range_busy = 0;
		l->range_jobs--;
	}
	if (c->yielded) {
		c->yielded = 0;
		l->yielded--;
	}
	if (c->hello_done)
		atomic_fetch_sub(&l->srv->nclients, 1);
	if (c->hello_done && (c->features & NSWAP_FEAT_MIGRATION))
		followers_del(&l->srv->followers, c->client_id);
	home_conn_closed(l, c);
	atomic_fetch_sub(&l->nconns, 1);
	atomic_fetch_sub(&l->srv->nconns, 1);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next_dead = l->dead;
	l->dead = c;
}

void conn_free_dead(struct loop *l)
{
	while (l->dead) {
		struct conn *c = l->dead;

		l->dead = c->next_dead;
		free(c);
	}
}

void conn_violation(struct loop *l, struct conn *c, const struct frame_hdr *h,
		    const char *reason)
{
	stat_add(&l->st.errors, 1);
	log_peer(L_WARN, "%s: protocol violation: %s; closing connection", c->peer, reason);
	/* not even EPROTO to a fire-and-forget INVALIDATE (protocol.md 5.4) */
	if (h && !(h->type == NSWAP_INVALIDATE && (h->flags & NSWAP_F_NOREPLY)) &&
	    CONN_OBUF - conn_out_used(c) >= NSWAP_HDR_SIZE) {
		struct frame_hdr r;

		request_reply_init(c, h, &r);
		r.status = NSWAP_EPROTO;
		conn_reply(c, &r, NULL, 0, 0);
	}
	conn_finish(l, c, NULL);
}

void conn_finish(struct loop *l, struct conn *c, const char *why)
{
	if (conn_flush(l, c) >= 0)
		shutdown(c->fd, SHUT_WR);
	conn_close(l, c, why);
}
