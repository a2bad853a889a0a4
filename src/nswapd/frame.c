/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "frame.h"

#include <stddef.h>
#include <string.h>

#include "crc32c.h"

/* Offsets are taken from the shared struct so a layout change there is
 * caught at compile time rather than on the wire. */
#define OFF(f) offsetof(struct nswap_hdr, f)
static_assert(OFF(magic) == 0 && OFF(version) == 4 && OFF(type) == 5 && OFF(flags) == 6,
	      "hdr layout");
static_assert(OFF(tag) == 8 && OFF(client_id) == 16 && OFF(slot) == 24 &&
	      OFF(generation) == 32, "hdr layout");
static_assert(OFF(length) == 40 && OFF(crc) == 44 && OFF(status) == 48 &&
	      OFF(hop_count) == 50 && OFF(reserved) == 51 && OFF(hdr_crc) == 52,
	      "hdr layout");
#define HCRC_LEN OFF(hdr_crc)

int frame_hdr_decode(struct frame_hdr *h, const unsigned char *b)
{
	h->magic = get_le32(b + OFF(magic));
	h->version = b[OFF(version)];
	h->type = b[OFF(type)];
	h->flags = get_le16(b + OFF(flags));
	h->tag = get_le64(b + OFF(tag));
	h->client_id = get_le64(b + OFF(client_id));
	h->slot = get_le64(b + OFF(slot));
	h->generation = get_le64(b + OFF(generation));
	h->length = get_le32(b + OFF(length));
	h->crc = get_le32(b + OFF(crc));
	h->status = get_le16(b + OFF(status));
	h->hop_count = b[OFF(hop_count)];
	h->reserved = b[OFF(reserved)];
	h->hdr_crc = get_le32(b + OFF(hdr_crc));
	return crc32c(b, HCRC_LEN) == h->hdr_crc;
}

void frame_hdr_encode(unsigned char *b, const struct frame_hdr *h)
{
	put_le32(b + OFF(magic), h->magic);
	b[OFF(version)] = h->version;
	b[OFF(type)] = h->type;
	put_le16(b + OFF(flags), h->flags);
	put_le64(b + OFF(tag), h->tag);
	put_le64(b + OFF(client_id), h->client_id);
	put_le64(b + OFF(slot), h->slot);
	put_le64(b + OFF(generation), h->generation);
	put_le32(b + OFF(length), h->length);
	put_le32(b + OFF(crc), h->crc);
	put_le16(b + OFF(status), h->status);
	b[OFF(hop_count)] = h->hop_count;
	b[OFF(reserved)] = h->reserved;
	put_le32(b + OFF(hdr_crc), crc32c(b, HCRC_LEN));
}

#define HOFF(f) offsetof(struct nswap_hello, f)

void hello_decode(struct hello *o, const unsigned char *b)
{
	o->min_version = get_le16(b + HOFF(min_version));
	o->max_version = get_le16(b + HOFF(max_version));
	o->features = get_le32(b + HOFF(features));
	o->capacity_pages = get_le64(b + HOFF(capacity_pages));
	memcpy(o->name, b + HOFF(name), sizeof(o->name));
	o->name[sizeof(o->name) - 1] = '\0';
}

void hello_encode(unsigned char *b, const struct hello *o)
{
	put_le16(b + HOFF(min_version), o->min_version);
	put_le16(b + HOFF(max_version), o->max_version);
	put_le32(b + HOFF(features), o->features);
	put_le64(b + HOFF(capacity_pages), o->capacity_pages);
	memset(b + HOFF(name), 0, sizeof(o->name));
	memcpy(b + HOFF(name), o->name, strnlen(o->name, sizeof(o->name) - 1));
}

void status_encode(unsigned char *b, const uint64_t v[STATUS_FIELDS])
{
	static_assert(sizeof(struct nswap_status_reply) == 18 * 8, "status layout");
	static_assert(offsetof(struct nswap_status_reply, limit_pages) == NSWAP_STATUS_V1_SIZE,
		      "fields appended after the first release start at its size");
	for (size_t i = 0; i < STATUS_FIELDS; i++)
		put_le64(b + 8 * i, v[i]);
}

void put_reply_encode(unsigned char *b, uint64_t free_pages, uint64_t capacity_pages)
{
	put_le64(b + offsetof(struct nswap_put_reply, free_pages),
		 free_pages < capacity_pages ? free_pages : capacity_pages);
	put_le64(b + offsetof(struct nswap_put_reply, capacity_pages), capacity_pages);
}

const char *msg_type_name(unsigned int type)
{
	switch (type & ~(unsigned int)NSWAP_REPLY) {
	case NSWAP_HELLO: return "HELLO";
	case NSWAP_PUTPAGE: return "PUTPAGE";
	case NSWAP_GETPAGE: return "GETPAGE";
	case NSWAP_INVALIDATE: return "INVALIDATE";
	case NSWAP_STATUS: return "STATUS";
	case NSWAP_PUNTPAGE: return "PUNTPAGE";
	case NSWAP_UPDATE: return "UPDATE";
	case NSWAP_GOSSIP: return "GOSSIP";
	case NSWAP_SET_CACHE_LIMIT: return "SET_CACHE_LIMIT";
	default: return "unknown";
	}
}

const char *status_name(unsigned int status)
{
	static const char *const names[] = {
		[NSWAP_OK] = "OK", [NSWAP_ENOENT] = "ENOENT", [NSWAP_ESTALE] = "ESTALE",
		[NSWAP_ENOSPC] = "ENOSPC", [NSWAP_EBADCRC] = "EBADCRC",
		[NSWAP_EPROTO] = "EPROTO", [NSWAP_EVERSION] = "EVERSION",
		[NSWAP_EINVAL] = "EINVAL", [NSWAP_ESHUTDOWN] = "ESHUTDOWN",
		[NSWAP_EPERM] = "EPERM",
	};

	if (status < sizeof(names) / sizeof(names[0]) && names[status])
		return names[status];
	return "unknown";
}
