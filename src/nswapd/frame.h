/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Frame header encode/decode between the little-endian wire layout of
 * struct nswap_hdr (src/include/nswap_proto.h) and host-order fields. */
#ifndef NSWAPD_FRAME_H
#define NSWAPD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "nswap_proto.h"

struct frame_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint64_t tag;
	uint64_t client_id;
	uint64_t slot;
	uint64_t generation;
	uint32_t length;
	uint32_t crc;
	uint16_t status;
	uint8_t hop_count;
	uint8_t reserved;
	uint32_t hdr_crc;
};

struct hello {
	uint16_t min_version;
	uint16_t max_version;
	uint32_t features;
	uint64_t capacity_pages;
	char name[32];		/* always NUL-terminated after decode */
};

#define HELLO_SIZE	sizeof(struct nswap_hello)
#define STATUS_SIZE	sizeof(struct nswap_status_reply)
#define PUT_REPLY_SIZE	sizeof(struct nswap_put_reply)

/* Decode 56 wire bytes.  Returns 1 when hdr_crc matches, 0 when not. */
int frame_hdr_decode(struct frame_hdr *h, const unsigned char *b);
/* Encode into 56 wire bytes, computing hdr_crc (h->hdr_crc is ignored). */
void frame_hdr_encode(unsigned char *b, const struct frame_hdr *h);

void hello_decode(struct hello *o, const unsigned char *b);
void hello_encode(unsigned char *b, const struct hello *o);

#define STATUS_FIELDS	(STATUS_SIZE / 8)
/* Encode the STATUS_FIELDS values of struct nswap_status_reply, in field order. */
void status_encode(unsigned char *b, const uint64_t v[STATUS_FIELDS]);

/* Encode a PUTPAGE reply's room (NSWAP_FEAT_FREE_HINT); free is clamped to
 * capacity. */
void put_reply_encode(unsigned char *b, uint64_t free_pages, uint64_t capacity_pages);

const char *msg_type_name(unsigned int type);
const char *status_name(unsigned int status);

static inline void put_le16(unsigned char *b, uint16_t v)
{
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}

static inline void put_le32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t get_le16(const unsigned char *b)
{
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t get_le32(const unsigned char *b)
{
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}

static inline uint64_t get_le64(const unsigned char *b)
{
	return (uint64_t)get_le32(b) | ((uint64_t)get_le32(b + 4) << 32);
}

#endif
