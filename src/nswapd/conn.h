/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* One client connection: a fixed read buffer that frames are parsed from in
 * place, a fixed output ring that replies are built into, and the epoll
 * interest that follows from them (backpressure: no reading while the ring
 * cannot take another reply). */
#ifndef NSWAPD_CONN_H
#define NSWAPD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "home.h"
#include "nswapd.h"

#define CONN_RBUF	(128U * 1024)	/* >= NSWAP_HDR_SIZE + NSWAP_MAX_PAYLOAD */
#define CONN_OBUF	(128U * 1024)	/* power of two */
/* Room a request needs in the output ring before it is processed. */
#define CONN_MAX_REPLY	(NSWAP_HDR_SIZE + NSWAP_MAX_PAYLOAD)

_Static_assert(CONN_RBUF >= NSWAP_HDR_SIZE + NSWAP_MAX_PAYLOAD, "read buffer too small");
_Static_assert((CONN_OBUF & (CONN_OBUF - 1)) == 0, "ring size not a power of two");
_Static_assert(CONN_OBUF >= 4 * CONN_MAX_REPLY, "ring too small");

struct conn {
	enum ev_kind kind;	/* EV_CONN; first, see struct ev_src in nswapd.h */
	int fd;
	int dead;
	uint32_t events;	/* current epoll interest */
	struct conn *prev, *next, *next_dead;
	char peer[64];
	int local;		/* peer address is loopback: control requests allowed */
	/* not past HELLO yet: its admission bucket (admission.h), -1 after
	 * HELLO; closed at hello_deadline_ms (CLOCK_MONOTONIC) if still there */
	int admit_bucket;
	int admin;		/* root or nswapd's user on this node: no HELLO due */
	int64_t hello_deadline_ms;
	uint64_t accept_seq;	/* order of accept: the oldest has the lowest */
	/* a range INVALIDATE under way (request.h RANGE_STEP): its reply
	 * header, and whether one is due */
	int range_busy, range_noreply;
	unsigned int range_stepped;	/* the loop's range_round it last stepped in */
	struct cache_range range;
	struct frame_hdr range_reply;

	/* negotiated by HELLO */
	int hello_done;
	uint8_t version;
	uint32_t features;
	uint64_t client_id;
	char name[32];

	int rd_closed;		/* EOF, or read sweep done while draining */
	int64_t last_rx_ms;	/* while draining: when bytes last arrived */
	int blocked;		/* a complete frame waits for ring space */
	/* frames executed in this turn (conn_pump); at FRAMES_PER_TURN the
	 * connection yields: it is on its loop's yielded count and gets its
	 * next turn after every other ready connection had one */
	unsigned int turn_frames;
	int yielded;
	size_t rpos, rlen;	/* unparsed bytes are rbuf[rpos..rlen) */
	int have_hdr;		/* hdr holds the validated header at rpos */
	struct frame_hdr hdr;

	/* pages on their way home on this connection (home.h) */
	struct home_sent home[HOME_WINDOW];
	uint32_t nhome;
	/* its first request past HELLO is answered: UPDATEs and pages sent
	 * home may go (request_answered) */
	int answered;
	uint64_t home_tag;
	int64_t home_pause_until_ms;

	uint64_t ohead, otail;	/* ring: bytes [ohead, otail) are queued */
	unsigned char *rbuf;
	unsigned char *obuf;
};

/* Accept side (main thread): a connection not yet owned by a loop; NULL
 * (and fd closed) on allocation failure. */
struct conn *conn_alloc(int fd, const char *peer);
/* In its loop's thread: register with the loop's epoll and list.  -1 (c
 * closed, freed and uncounted) on failure.  The counts were raised by the
 * main thread when it queued c. */
int conn_attach(struct loop *l, struct conn *c);
/* A handed-over connection never attached (stopping, or attach failed):
 * close and free it, and take it off the counts. */
void conn_discard(struct loop *l, struct conn *c);
/* Go on after a range INVALIDATE ended: the requests that waited. */
void conn_resume(struct loop *l, struct conn *c);
/* One more turn for each connection that yielded with requests left
 * (FRAMES_PER_TURN); called once per event-loop round, after the events. */
void conn_run_yielded(struct loop *l);
/* It said HELLO (or closes before): its admission counts are released. */
void conn_admitted(struct loop *l, struct conn *c);
/* Handle epoll events for c.  May close it. */
void conn_event(struct loop *l, struct conn *c, uint32_t events);
/* SIGTERM drain: keep reading c until it is quiet, then stop (see
 * NSWAPD_DRAIN_QUIET_MS).  Called repeatedly by the drain loop. */
void conn_drain(struct loop *l, struct conn *c);
/* Close now (unsent replies are dropped) and queue for freeing. */
void conn_close(struct loop *l, struct conn *c, const char *why);
void conn_free_dead(struct loop *l);

/* For request.c: queue a reply.  Space was reserved before dispatch. */
void conn_reply(struct conn *c, struct frame_hdr *h, const void *payload, size_t len,
		uint32_t payload_crc);
/* Protocol violation: log, answer EPROTO when the header could be trusted
 * (h != NULL), close. */
void conn_violation(struct loop *l, struct conn *c, const struct frame_hdr *h,
		    const char *reason);
/* Reply already queued; send what we can and close (EVERSION). */
void conn_finish(struct loop *l, struct conn *c, const char *why);

static inline size_t conn_out_used(const struct conn *c)
{
	return (size_t)(c->otail - c->ohead);
}

#endif
