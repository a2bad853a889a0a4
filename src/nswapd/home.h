/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Punting pages back to their owners (docs/protocol.md 11.1, "home").
 *
 * When pages are over the cache limit and no gossip member has room for
 * them (or gossip is off), each event loop sends pages over the limit back
 * to their owners on the owners' own connections that negotiated
 * NSWAP_FEAT_PUNTHOME (a client offers it only when it has a local disk
 * for them): a PUNTPAGE frame, no REPLY bit, the stored (generation,
 * hop_count + 1) and the page, once the connection has sent a request past
 * HELLO.  The owner answers on that connection with a PUNTPAGE reply: OK
 * (the page is on its disk now) or ESTALE (the copy is dead: rewritten,
 * freed, or moved on): the copy here is dropped; ENOSPC (not taken: no room,
 * a disk error, or the owner does not know the copy yet): the copy stays,
 * readable, and that connection gets no page home for HOME_PAUSE_MS.  Until the answer the page is marked
 * `moving` (cache.h), so it counts as on its way and stays readable.
 * At most HOME_WINDOW pages are on their way per connection; the loop that
 * owns the connection does all of it, so nothing here is shared but the
 * cache (shard locks) and home_lock. */
#ifndef NSWAPD_HOME_H
#define NSWAPD_HOME_H

#include <stdint.h>

#define HOME_WINDOW	16	/* pages on their way home per connection */
#define HOME_SCAN	65536	/* arena pages looked at per fill */
#define HOME_PAUSE_MS	10000	/* after an owner could not take a page */
#define HOME_RETRY_MS	1000	/* a fill that left work waits at most this */

struct home_sent {
	uint64_t slot;
	uint64_t generation;
	uint8_t hop_count;	/* the stored copy's; the frame carried one more */
};

struct loop;
struct conn;
struct frame_hdr;

/* Send pages over the limit home on this loop's connections, as far as
 * their windows and output rings allow.  Sets l->home_waiting when it left
 * work for later (a full window or ring, a pause, an unfinished scan). */
void home_fill(struct loop *l);
/* The owner's answer (a validated PUNTPAGE reply on c).  0, or -1 when it
 * answers nothing sent home on c (a protocol violation). */
int home_answer(struct loop *l, struct conn *c, const struct frame_hdr *h);
/* c closes: the pages on their way home there are no longer moving. */
void home_conn_closed(struct loop *l, struct conn *c);

#endif
