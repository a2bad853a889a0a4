/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * nswap wire protocol, version 1 -- the one definition shared by nswap.ko
 * (kernel client) and nswapd (memory server).  docs/protocol.md is the
 * prose specification; plugins/module_utils/nswap_protocol.py is the Python
 * codec and a unit test checks that its constants match this file.
 *
 * Every frame is a fixed 56-byte little-endian header followed by `length`
 * payload bytes.  Requests carry a client-chosen `tag`; the reply to a request
 * has type (request type | NSWAP_REPLY) and the same tag, so any number of
 * requests may be in flight on one connection and replies may come back in
 * any order.
 */
#ifndef NSWAP_PROTO_H
#define NSWAP_PROTO_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/build_bug.h>
#else
/* The kernel's UAPI types, so that user space that also includes
 * <linux/types.h> (directly or through libc headers) sees one definition. */
#include <linux/types.h>
#include <assert.h>
#endif

#define NSWAP_MAGIC		0x5057534eU	/* bytes "NSWP" on the wire */
#define NSWAP_PROTO_VERSION	1	/* highest version this header speaks */
#define NSWAP_PROTO_MIN_VERSION	1	/* lowest version still accepted */
#define NSWAP_PAGE_SIZE		4096U
#define NSWAP_HDR_SIZE		56U
/* Largest payload any frame may carry: a page plus room for a MAC trailer
 * (reserved for NSWAP_F_AUTH) and for STATUS replies. */
#define NSWAP_MAX_PAYLOAD	(NSWAP_PAGE_SIZE + 256U)
#define NSWAP_DEFAULT_PORT	7405
/* Largest slot count of one range INVALIDATE (NSWAP_F_RANGE). */
#define NSWAP_MAX_RANGE_COUNT	(1ULL << 32)
/* Largest hop_count of a migrated page (4 bits in a client's slot map). */
#define NSWAP_MAX_HOPS		15

/* Message types.  Bit 7 marks a reply. */
enum nswap_msg_type {
	NSWAP_HELLO		= 1,	/* first frame on a connection: version/feature negotiation */
	NSWAP_PUTPAGE		= 2,	/* store a page: payload = 4096 bytes */
	NSWAP_GETPAGE		= 3,	/* fetch a page: reply payload = 4096 bytes */
	NSWAP_INVALIDATE	= 4,	/* drop a page (or a range, NSWAP_F_RANGE) */
	NSWAP_STATUS		= 5,	/* server state and counters, for tooling and gossip */
	/* Reserved for the next protocol features (see docs/protocol.md):
	 * server-to-server migration and its client notification, and gossip. */
	NSWAP_PUNTPAGE		= 6,
	NSWAP_UPDATE		= 7,
	NSWAP_GOSSIP		= 8,
	/* Runtime control of a server, from its own node only (loopback peers,
	 * root or the server's own user; after HELLO only if negotiated):
	 * payload __le64 limit in pages; reply payload = struct nswap_status_reply.
	 * Announced by NSWAP_FEAT_CACHE_LIMIT; allowed before HELLO like STATUS. */
	NSWAP_SET_CACHE_LIMIT	= 9,
	NSWAP_REPLY		= 0x80,
};

/* Header flags. */
enum nswap_flags {
	NSWAP_F_RANGE		= 1U << 0,	/* INVALIDATE: payload is __le64 slot count from `slot` */
	NSWAP_F_NOREPLY		= 1U << 1,	/* INVALIDATE: sender wants no reply (fire and forget) */
	NSWAP_F_HOP		= 1U << 2,	/* INVALIDATE: only copies (generation, hop_count) or older */
	NSWAP_F_SWEEP		= 1U << 3,	/* INVALIDATE: only copies written by PUTPAGE (hop_count 0), generation or older */
	NSWAP_F_AUTH		= 1U << 8,	/* reserved: payload ends in a MAC trailer */
	NSWAP_F_ENCRYPTED	= 1U << 9,	/* reserved: page payload is encrypted */
};

/* Reply status codes (header field `status`; 0 = success). */
enum nswap_status {
	NSWAP_OK		= 0,
	NSWAP_ENOENT		= 1,	/* no such page at this server */
	NSWAP_ESTALE		= 2,	/* page exists with a different generation */
	NSWAP_ENOSPC		= 3,	/* cache full, page not stored */
	NSWAP_EBADCRC		= 4,	/* payload checksum mismatch, nothing stored */
	NSWAP_EPROTO		= 5,	/* malformed request; connection will be closed */
	NSWAP_EVERSION		= 6,	/* no common protocol version */
	NSWAP_EINVAL		= 7,	/* well-formed but invalid argument */
	NSWAP_ESHUTDOWN		= 8,	/* server is draining; retry elsewhere */
	NSWAP_EPERM		= 9,	/* request not allowed from this peer (control from a non-loopback address) */
};

/* Feature bits negotiated in HELLO (intersection of both sides). */
enum nswap_features {
	NSWAP_FEAT_RANGE_INVALIDATE	= 1U << 0,
	NSWAP_FEAT_MIGRATION		= 1U << 1,	/* reserved: PUNTPAGE/UPDATE */
	NSWAP_FEAT_AUTH			= 1U << 2,	/* reserved: per-message MAC */
	NSWAP_FEAT_ENCRYPTION		= 1U << 3,	/* reserved: page encryption */
	NSWAP_FEAT_CACHE_LIMIT		= 1U << 4,	/* server takes SET_CACHE_LIMIT (section 5.7) */
	NSWAP_FEAT_SWEEP		= 1U << 5,	/* INVALIDATE takes NSWAP_F_SWEEP */
	/* the client takes PUNTPAGE from the server (a page sent home to its
	 * local disk when no server has room) and answers it (section 11.1) */
	NSWAP_FEAT_PUNTHOME		= 1U << 6,
	/* the server's reply to PUTPAGE (OK or ENOSPC) carries its room just
	 * after the request, struct nswap_put_reply (section 5.2) */
	NSWAP_FEAT_FREE_HINT		= 1U << 7,
};

/* Bits of nswap_status_reply.state_flags. */
enum nswap_state_flags {
	/* More pages are stored than the cache limit allows (the limit was lowered
	 * below the usage, or an overflow took pages that are to move on):
	 * PUTPAGE of new slots is answered ENOSPC (but for an overflow, section
	 * 11.1) until usage falls below the limit; stored pages are kept and
	 * served. */
	NSWAP_STATE_OVER_LIMIT		= 1U << 0,
	/* SET_CACHE_LIMIT 0 asked the server to drain: it takes no new page and
	 * moves every page it holds to other servers (section 5.7). */
	NSWAP_STATE_DRAINING		= 1U << 1,
};

struct nswap_hdr {
	__le32 magic;		/*  0: NSWAP_MAGIC */
	__u8   version;		/*  4: protocol version of this frame */
	__u8   type;		/*  5: enum nswap_msg_type, | NSWAP_REPLY on replies */
	__le16 flags;		/*  6: enum nswap_flags */
	__le64 tag;		/*  8: request tag, echoed in the reply */
	__le64 client_id;	/* 16: client (node+device) the page belongs to */
	__le64 slot;		/* 24: swap slot (4 KiB block index) on the client device */
	__le64 generation;	/* 32: per-slot write generation, see docs */
	__le32 length;		/* 40: payload bytes that follow */
	__le32 crc;		/* 44: crc32c of the payload, 0 when length == 0 */
	__le16 status;		/* 48: enum nswap_status on replies, 0 on requests */
	__u8   hop_count;	/* 50: times this page has migrated between servers */
	__u8   reserved;	/* 51: must be 0 */
	__le32 hdr_crc;		/* 52: crc32c of bytes 0..51 */
} __attribute__((packed));

/* HELLO payload (both directions). */
struct nswap_hello {
	__le16 min_version;	/* sender accepts versions min..max; the reply */
	__le16 max_version;	/* carries the chosen one in both fields       */
	__le32 features;	/* enum nswap_features offered / accepted */
	__le64 capacity_pages;	/* reply: server cache capacity; request: 0 */
	char   name[32];	/* NUL-padded node name, for logs and STATUS */
} __attribute__((packed));

/* PUTPAGE reply payload with NSWAP_FEAT_FREE_HINT (status OK or ENOSPC):
 * what the server's gossip entry would announce now, for the client's
 * placement (docs/placement.md). */
struct nswap_put_reply {
	__le64 free_pages;	/* of capacity_pages, not in use; <= capacity_pages */
	__le64 capacity_pages;	/* pages it lends now (its cache limit) */
} __attribute__((packed));

/* STATUS reply payload.  New fields are only ever appended; readers accept
 * a longer payload and ignore what they do not know. */
struct nswap_status_reply {
	__le64 capacity_pages;
	__le64 used_pages;
	__le64 clients;
	__le64 puts;
	__le64 gets;
	__le64 invalidates;
	__le64 get_misses;
	__le64 errors;
	__le64 bytes_in;
	__le64 bytes_out;
	__le64 uptime_s;
	/* appended after the first release: readers accept the 88-byte form */
	__le64 limit_pages;	/* runtime cache limit; capacity_pages is the maximum */
	__le64 state_flags;	/* enum nswap_state_flags */
	/* appended with page migration (section 11.1): readers accept 104 bytes */
	__le64 punts_received;	/* PUNTPAGE stored here (pages moved here) */
	__le64 punts_sent;	/* pages this server moved to another that took them */
	__le64 updates_sent;	/* UPDATE frames queued to owners */
	__le64 overflows;	/* PUTPAGE stored over the limit (overflow) */
	/* appended with punting home (section 11.1): readers accept 136 bytes */
	__le64 punts_home;	/* pages sent back to their owners, who took them */
} __attribute__((packed));

/*
 * GOSSIP (docs/protocol.md section 11.2): one UDP datagram per frame, the
 * 56-byte header (type NSWAP_GOSSIP for a push, | NSWAP_REPLY for the
 * answer to one; tag = the sender's round; client_id = the sender's node id;
 * crc over the payload) and then `length` / sizeof(entry) membership entries,
 * the sender's own first.  At most NSWAP_GOSSIP_MAX_ENTRIES: 1208 bytes,
 * one unfragmented datagram on a 1500-byte MTU.
 */
enum nswap_member_state {	/* higher wins at the same incarnation */
	NSWAP_MEMBER_ALIVE	= 0,
	NSWAP_MEMBER_SUSPECT	= 1,	/* a probe went unanswered; dead unless refuted */
	NSWAP_MEMBER_DEAD	= 2,	/* suspected for too long */
	NSWAP_MEMBER_LEFT	= 3,	/* said goodbye (drained, stopping) */
};

struct nswap_gossip_entry {
	__le64 node_id;		/* nonzero, stable across restarts of the node */
	__be32 addr;		/* IPv4 address of its nswap service (network order) */
	__le16 port;		/* its TCP port */
	__u8   state;		/* enum nswap_member_state */
	__u8   flags;		/* must be 0 */
	__le32 incarnation;	/* raised by the node itself: restart, refutation */
	__le32 heartbeat;	/* raised by the node itself every round */
	__le64 capacity_pages;	/* pages it lends now (its cache limit; 0: borrows only) */
	__le64 free_pages;	/* of those, not in use; <= capacity_pages */
	__le32 load;		/* connections it serves */
	__le32 reserved;	/* must be 0 */
} __attribute__((packed));

#define NSWAP_GOSSIP_MAX_ENTRIES	24

/* Size of the STATUS reply of the first release (before limit_pages). */
#define NSWAP_STATUS_V1_SIZE	88

#ifdef __KERNEL__
static_assert(sizeof(struct nswap_hdr) == NSWAP_HDR_SIZE);
#else
static_assert(sizeof(struct nswap_hdr) == NSWAP_HDR_SIZE, "header size");
static_assert(sizeof(struct nswap_hello) == 48, "hello size");
static_assert(sizeof(struct nswap_status_reply) == 144, "status size");
static_assert(sizeof(struct nswap_put_reply) == 16, "put reply size");
static_assert(sizeof(struct nswap_gossip_entry) == 48, "gossip entry size");
#endif

#endif /* NSWAP_PROTO_H */
