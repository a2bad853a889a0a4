/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Request validation and execution: everything the protocol says about a
 * frame once it has been cut out of the byte stream. */
#ifndef NSWAPD_REQUEST_H
#define NSWAPD_REQUEST_H

#include <stddef.h>

#include "conn.h"

/* Check a decoded header (hdr_ok: its hdr_crc matched) against the protocol
 * and the connection's state.  Returns NULL if the frame may be read, else
 * the violation, formatted into buf.  *trusted says whether the header is
 * good enough to address an EPROTO reply to. */
const char *request_check(const struct conn *c, const struct frame_hdr *h, int hdr_ok,
			  char *buf, size_t buflen, int *trusted);
/* Execute a checked request with its complete payload.  May queue one reply
 * (at most CONN_MAX_REPLY bytes) and may close the connection. */
/* Fill a reply header for `req`: type | NSWAP_REPLY, echoed tag and key. */
void request_reply_init(const struct conn *c, const struct frame_hdr *req, struct frame_hdr *r);
void request_handle(struct loop *l, struct conn *c, const struct frame_hdr *h,
		    const unsigned char *payload);
/* A range INVALIDATE is done in steps of lookups or table cells (the first
 * when the request is read, the others one per event-loop round for each
 * connection waiting on one, l->range_jobs); the connection reads no further
 * request meanwhile.  All of a round's range work, which every other client's
 * request waits behind, is at most RANGE_STEP (l->range_budget, reset each
 * round), however many connections flood the loop with ranges: the ranges
 * under way share it, RANGE_STEP_MIN at least each, taking turns at going
 * first when there are more than RANGE_STEP / RANGE_STEP_MIN.  A step of
 * 65,536 for each of 4 such connections cost others' page reads 20x their
 * p99, 16,384 shared 4.65x (benchmarks/nswapd_attack.py). */
#define RANGE_STEP	4096
#define RANGE_STEP_MIN	256

/* The step for one of `jobs` ranges with `budget` left this round; 0: none
 * (the range waits for the next round). */
static inline uint64_t range_share(unsigned int jobs, uint64_t budget)
{
	uint64_t share = RANGE_STEP / (jobs ? jobs : 1);

	if (share < RANGE_STEP_MIN)
		share = RANGE_STEP_MIN;
	return budget < RANGE_STEP_MIN ? 0 : share < budget ? share : budget;
}
void request_range_steps(struct loop *l);
/* After a request: the first one past HELLO answered, the server may send
 * frames of its own on the connection (conn->answered). */
void request_answered(struct loop *l, struct conn *c);

#endif
