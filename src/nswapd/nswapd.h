/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The server state shared by the event loops, connections and requests.
 *
 * Threads: the main thread owns the listening socket and the signals; it
 * accepts and hands each connection to one of `nloops` event-loop threads
 * (struct loop), which own their connections from then on.  What more than
 * one thread touches, and why that is safe:
 *  - the page cache: sharded locks, see cache.h;
 *  - struct stats: one per loop, written only by that loop's thread with
 *    relaxed atomic stores (plain moves on x86), read by any thread that
 *    answers STATUS or logs status; a reader may see another loop's counters
 *    a few requests behind, never torn;
 *  - nconns, nclients and each loop's nconns: atomics.  Only the main thread
 *    adds connections, so its check against max_clients cannot be overtaken
 *    by another accept; loops only ever lower the count;
 *  - draining, stop and the drain deadlines: written by the main thread
 *    before the release store to `draining`/`stop`, read after an acquire
 *    load (loops are woken through their eventfd);
 *  - cfg, started, nloops: written before the loop threads start, read-only
 *    afterwards;
 *  - gossip (gossip_net.c): the main thread's alone, like the listener.
 * Client-wide state: the protocol keeps none across connections (a
 * connection's client_id, version and features are its own; generations are
 * per key and checked under the key's shard lock), so two connections of one
 * client on different loops need nothing more. */
#ifndef NSWAPD_H
#define NSWAPD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "admission.h"
#include "cache.h"
#include "config.h"
#include "followers.h"

/* Feature bits this server implements (see enum nswap_features). */
#define NSWAPD_FEATURES		(NSWAP_FEAT_RANGE_INVALIDATE | NSWAP_FEAT_CACHE_LIMIT | \
				 NSWAP_FEAT_MIGRATION | NSWAP_FEAT_SWEEP | NSWAP_FEAT_PUNTHOME | \
				 NSWAP_FEAT_FREE_HINT)
/* Drain after SIGTERM/SIGINT: a connection is read until it has been quiet
 * for NSWAPD_DRAIN_QUIET_MS with no partial frame buffered, so requests
 * already in flight get answered; the whole drain ends after NSWAPD_DRAIN_MS
 * regardless. */
#define NSWAPD_DRAIN_MS		5000
#define NSWAPD_DRAIN_QUIET_MS	100

struct conn;
struct server;
struct gossip_net;

/* Counters of one loop; see the comment at the top for the atomics. */
struct stats {
	_Atomic uint64_t puts;		/* PUTPAGE answered OK */
	_Atomic uint64_t gets;		/* GETPAGE requests */
	_Atomic uint64_t invalidates;	/* INVALIDATE requests executed */
	_Atomic uint64_t get_misses;	/* GETPAGE answered ENOENT or ESTALE */
	_Atomic uint64_t errors;	/* other non-OK answers, plus protocol violations */
	_Atomic uint64_t bytes_in;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t punts;		/* PUNTPAGE stored (a page moved here) */
	_Atomic uint64_t updates_sent;	/* UPDATE frames queued to owners */
	_Atomic uint64_t updates_dropped;	/* mailbox or output ring full */
	_Atomic uint64_t overflows;	/* PUTPAGE stored over the limit (overflow) */
	_Atomic uint64_t punts_home;	/* pages sent home that their owners took */
	_Atomic uint64_t punts_home_refused;	/* ... that they could not take (ENOSPC) */
};

/* Plain (non-atomic) totals of every loop's struct stats. */
struct stats_sum {
	uint64_t puts, gets, invalidates, get_misses, errors, bytes_in, bytes_out;
	uint64_t punts, updates_sent, updates_dropped, overflows, punts_home, punts_home_refused;
};

/* Only the owning loop writes its counters: a relaxed load and store, no
 * locked read-modify-write. */
static inline void stat_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

enum ev_kind { EV_LISTEN = 1, EV_SIGNAL, EV_CONN, EV_WAKE, EV_DONE, EV_GOSSIP, EV_GOSSIP_TIMER,
	       EV_ELASTIC_TIMER };

/* Anything registered with an epoll starts with its kind. */
struct ev_src {
	enum ev_kind kind;
};

/* An UPDATE to deliver (docs/protocol.md 11.1): a page of client_id moved
 * here.  The loop that stored it posts one to every loop's mailbox; each
 * sends it on one of its connections of that client that negotiated
 * migration, if it has one. */
struct update_msg {
	uint64_t client_id, slot, generation;
	uint8_t hop_count;
};

#define LOOP_MBOX	1024	/* UPDATEs a loop holds before dropping (counted) */

/* One event-loop thread and the connections it owns.  Cache-line aligned,
 * with the counters (written for every request) on lines of their own, so
 * that loops do not slow each other down through false sharing. */
struct loop {
	struct ev_src wake_src;		/* EV_WAKE: evfd */
	struct server *srv;
	unsigned int id;
	pthread_t thread;
	int started;			/* thread was created */
	int epfd;
	int evfd;			/* eventfd: new connections, drain, stop */
	pthread_mutex_t qlock;		/* protects queue */
	struct conn *queue;		/* handed over by the main thread, not yet added */
	struct update_msg mbox[LOOP_MBOX];	/* qlock; UPDATEs for this loop to send */
	unsigned int nmbox;
	_Atomic unsigned int nconns;	/* own connections, queued ones included */
	int draining;			/* this loop has started its drain */
	int64_t drain_start_ms;		/* copies of the server's, once draining */
	int64_t drain_deadline_ms;
	struct conn *conns;		/* open connections of this loop */
	struct conn *dead;		/* closed during this event batch, freed after it */
	/* punting home (home.c): the next arena page to look at; a fill is
	 * due (woken, or a window slot freed); a fill left work for later */
	uint32_t home_cursor;
	int home_due, home_waiting;
	int64_t home_last_ms;
	/* earliest hello_deadline_ms of its connections not past HELLO, or
	 * later; 0: none (server.c hello_timeouts) */
	int64_t hello_next_ms;
	unsigned int range_jobs;	/* connections in a range INVALIDATE (request.h) */
	uint64_t range_budget;		/* range work left this round (request.h) */
	unsigned int range_round;	/* rounds that stepped ranges: who goes first */
	unsigned int yielded;		/* connections owed a turn (conn.h turn_frames) */
	int failed;			/* epoll_wait failed: the server exits 1 */
	struct stats st __attribute__((aligned(64)));
} __attribute__((aligned(64)));

struct server {
	struct config cfg;
	struct cache cache;
	int epfd;			/* main thread: listener, signals, loop exits */
	int lfd;
	int sfd;
	int donefd;			/* eventfd: a loop thread has finished */
	_Atomic int draining;
	_Atomic int stop;		/* second SIGTERM: close everything now */
	struct timespec started;
	int64_t drain_start_ms;		/* CLOCK_MONOTONIC */
	int64_t drain_deadline_ms;
	_Atomic unsigned int nconns;	/* all open connections */
	_Atomic unsigned int nclients;	/* connections past HELLO */
	unsigned int nloops;
	unsigned int next_loop;		/* main thread: round-robin start */
	struct loop *loops;
	struct gossip_net *gossip;	/* main thread only; NULL with gossip off */
	struct feed *feed;		/* main thread only; NULL without client_device */
	struct elastic *elastic;	/* main thread only; NULL with elastic off */
	struct punter *punter;		/* gossip on: moves pages away */
	struct followers followers;	/* clients whose pages may move (punt.h) */
	int punt_no_target_logged;
	/* SET_CACHE_LIMIT 0 (a loop thread sets it): the limit stays 0, elastic
	 * or not, until a SET_CACHE_LIMIT above 0 ends the drain */
	_Atomic int emptying;
	int emptied_logged;		/* main thread: "drained" said once */
	/* pages over the limit may go back to their owners (home.c): no
	 * gossip member can take them, or gossip is off; the main thread sets
	 * it, loops read it.  home_lock: the check of what is over the limit
	 * and the `moving` mark of a page sent home happen together */
	_Atomic int home_ok;
	pthread_mutex_t home_lock;
	int elastic_tfd;		/* its timerfd, -1 without */
	struct admission admission;	/* connections not past HELLO (admission.h) */
	_Atomic uint64_t hello_timeouts;	/* of those, closed at hello_timeout */
	uint64_t accepts;		/* main thread: connections accepted */
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t now_ms(void);
/* Seconds since start, from CLOCK_MONOTONIC. */
uint64_t server_uptime(const struct server *s);
void server_stats(const struct server *s, struct stats_sum *sum);
void server_log_status(const struct server *s);
struct frame_hdr;
/* A page of h->client_id was stored by PUNTPAGE: tell its owner (any loop).
 * Called by loop `from`, whose counters it may raise. */
void server_post_update(struct server *s, struct loop *from, const struct frame_hdr *h);
/* Wake every loop (from any thread): e.g. pages may go home now (home.h). */
void server_wake_loops(struct server *s);

#endif
