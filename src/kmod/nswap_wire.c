// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap wire format helpers: header building/checking and CRC-32C.
 *
 * The wire carries the standard CRC-32C (Castagnoli, reflected, initial
 * value and final xor 0xffffffff; check value 0xe3069283 for "123456789").
 * The kernel's crc32c(seed, buf, len) applies neither the initial nor the
 * final inversion itself, so the standard value is crc32c(~0, buf, len) ^ ~0.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crc32c.h>
#include <linux/highmem.h>
#include <linux/kernel.h>

#include "nswap.h"

u32 nswap_crc32c(const void *buf, size_t len)
{
	return crc32c(~0U, buf, len) ^ ~0U;
}

u32 nswap_crc32c_page(struct page *page, unsigned int offset)
{
	void *p = kmap_local_page(page);
	u32 crc = nswap_crc32c(p + offset, NSWAP_PAGE_SIZE);

	kunmap_local(p);
	return crc;
}

void nswap_hdr_init(struct nswap_hdr *hdr, u8 version, u8 type, u16 flags,
		    u64 tag, u64 client_id, u64 slot, u64 gen, u32 len,
		    u32 crc)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le32(NSWAP_MAGIC);
	hdr->version = version;
	hdr->type = type;
	hdr->flags = cpu_to_le16(flags);
	hdr->tag = cpu_to_le64(tag);
	hdr->client_id = cpu_to_le64(client_id);
	hdr->slot = cpu_to_le64(slot);
	hdr->generation = cpu_to_le64(gen);
	hdr->length = cpu_to_le32(len);
	hdr->crc = cpu_to_le32(crc);
	nswap_hdr_seal(hdr);
}

/* (Re)compute hdr_crc over bytes 0..51 after changing any field. */
void nswap_hdr_seal(struct nswap_hdr *hdr)
{
	u32 crc = nswap_crc32c(hdr, offsetof(struct nswap_hdr, hdr_crc));

	hdr->hdr_crc = cpu_to_le32(crc);
}

/*
 * Check a received header before trusting its length.
 * Return: 0, or -EPROTO (the stream is unusable: close the connection).
 */
int nswap_hdr_check(const struct nswap_hdr *hdr)
{
	u32 want = nswap_crc32c(hdr, offsetof(struct nswap_hdr, hdr_crc));

	if (le32_to_cpu(hdr->magic) != NSWAP_MAGIC)
		return -EPROTO;
	if (le32_to_cpu(hdr->hdr_crc) != want)
		return -EPROTO;
	if (hdr->version < NSWAP_PROTO_MIN_VERSION ||
	    hdr->version > NSWAP_PROTO_VERSION)
		return -EPROTO;
	if (le32_to_cpu(hdr->length) > NSWAP_MAX_PAYLOAD)
		return -EPROTO;
	return 0;
}

const char *nswap_status_name(unsigned int status)
{
	static const char * const names[] = {
		[NSWAP_OK]		= "OK",
		[NSWAP_ENOENT]		= "ENOENT",
		[NSWAP_ESTALE]		= "ESTALE",
		[NSWAP_ENOSPC]		= "ENOSPC",
		[NSWAP_EBADCRC]		= "EBADCRC",
		[NSWAP_EPROTO]		= "EPROTO",
		[NSWAP_EVERSION]	= "EVERSION",
		[NSWAP_EINVAL]		= "EINVAL",
		[NSWAP_ESHUTDOWN]	= "ESHUTDOWN",
	};

	if (status < ARRAY_SIZE(names) && names[status])
		return names[status];
	return "unknown";
}

/* Refuse to load if the checksum convention is not the wire's. */
int nswap_wire_selftest(void)
{
	static const char check[] = "123456789";
	u32 crc = nswap_crc32c(check, sizeof(check) - 1);

	BUILD_BUG_ON(sizeof(struct nswap_hdr) != NSWAP_HDR_SIZE);
	BUILD_BUG_ON(sizeof(struct nswap_hello) != 48);
	BUILD_BUG_ON(offsetof(struct nswap_hdr, hdr_crc) != 52);

	if (crc != 0xe3069283U) {
		pr_err("crc32c self-test failed: got %08x, want e3069283\n",
		       crc);
		return -ELIBBAD;
	}
	return 0;
}
