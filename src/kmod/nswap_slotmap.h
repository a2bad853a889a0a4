/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nswap shadow slot map: where each 4 KiB slot of a device lives.
 *
 * One 64-bit word per slot (8 bytes per 4 KiB = 0.2% of the device size),
 * the layout of docs/protocol.md section 11.3:
 *
 *   63                                    16 15   12 11  8 7          0
 *  +----------------------------------------+-------+-----+------------+
 *  |               generation               | flags | hop |   server   |
 *  +----------------------------------------+-------+-----+------------+
 *
 *   server      index into nswap_dev.servers[] (8 bits)
 *   hop         hop_count of the stored copy (reserved for migration)
 *   flags       NSWAP_SE_IN_USE, NSWAP_SE_LOCAL (on the backing device,
 *               server NSWAP_SE_SRV_LOCAL: slot N at byte N * 4096),
 *               NSWAP_SE_MIRRORED (reserved), NSWAP_SE_FREED (the spare
 *               bit: freed by the kernel, INVALIDATE still to be sent)
 *   generation  the PUTPAGE generation the server acknowledged (48 bits)
 *
 * A zero word means "never written or freed": reads return zeroes without
 * network traffic.  So does a FREED word; it only keeps server and
 * generation until nswap_inval.c has told the server.  Words are atomic64_t
 * and change only through atomic exchange/compare-exchange, so readers
 * (request issue, the free hook in atomic context) need no lock; the rules
 * for who may change a word are in nswap_dev.c (PUT commit, discard) and
 * nswap_inval.c (free hook, rescan, claim before a write).
 */
#ifndef NSWAP_SLOTMAP_H
#define NSWAP_SLOTMAP_H

#include <linux/atomic.h>
#include <linux/types.h>

#define NSWAP_SE_GEN_BITS	48
#define NSWAP_SE_GEN_MASK	((1ULL << NSWAP_SE_GEN_BITS) - 1)
#define NSWAP_SE_SRV_SHIFT	0
#define NSWAP_SE_HOP_SHIFT	8
#define NSWAP_SE_FLAGS_SHIFT	12
#define NSWAP_SE_GEN_SHIFT	16

#define NSWAP_SE_IN_USE		0x1U
#define NSWAP_SE_LOCAL		0x2U	/* page kept on the backing device */
#define NSWAP_SE_MIRRORED	0x4U	/* reserved: second copy exists */
#define NSWAP_SE_FREED		0x8U	/* freed, INVALIDATE pending */

/*
 * A write that no server accepted within the device's retry budget is
 * completed anyway and its slot is marked LOST (see nswap_dev_write_lost):
 * reads of it fail with an I/O error instead of returning old or zero data.
 * Encoded as server 0xff (never a real index) with no flags, so every
 * "in use" test treats the slot as empty and a free, discard or later write
 * simply replaces the word.
 */
#define NSWAP_SE_SRV_LOST	0xffU
#define NSWAP_SE_LOST_WORD	((u64)NSWAP_SE_SRV_LOST << NSWAP_SE_SRV_SHIFT)

/*
 * The server index of a slot on the backing device (with NSWAP_SE_LOCAL):
 * never a real index either, so no server is told about such a slot and
 * nswap_holder_add() counts it in the device's disk_pages.
 */
#define NSWAP_SE_SRV_LOCAL	0xfeU

/*
 * Beside the words, the CRC-32C of each slot's page as it was written to a
 * server (4 bytes per slot), set once the write is acknowledged: a GETPAGE
 * reply whose page has another CRC is not the page written -- a server's
 * damage or mix-up, or a hostile server, behind a frame whose own checksum
 * is fine -- and is read again, then failed, never returned (nswap_dev.c).
 * Not kept for the backing device's slots; a freed slot keeps its value
 * (a word put back before its INVALIDATE names the same page).
 */
struct nswap_slotmap {
	atomic64_t *e;
	u32 *crc;
	u64 nslots;
};

static inline u64 nswap_se_make(u8 srv, u8 hop, u8 flags, u64 gen)
{
	return ((u64)srv << NSWAP_SE_SRV_SHIFT) |
	       ((u64)(hop & 0xf) << NSWAP_SE_HOP_SHIFT) |
	       ((u64)(flags & 0xf) << NSWAP_SE_FLAGS_SHIFT) |
	       ((gen & NSWAP_SE_GEN_MASK) << NSWAP_SE_GEN_SHIFT);
}

static inline u8 nswap_se_srv(u64 e)
{
	return (e >> NSWAP_SE_SRV_SHIFT) & 0xff;
}

static inline u8 nswap_se_hop(u64 e)
{
	return (e >> NSWAP_SE_HOP_SHIFT) & 0xf;
}

static inline u8 nswap_se_flags(u64 e)
{
	return (e >> NSWAP_SE_FLAGS_SHIFT) & 0xf;
}

static inline u64 nswap_se_gen(u64 e)
{
	return e >> NSWAP_SE_GEN_SHIFT;
}

/* A copy exists on a server (live or freed-but-not-yet-invalidated). */
static inline bool nswap_se_in_use(u64 e)
{
	return nswap_se_flags(e) & NSWAP_SE_IN_USE;
}

/* The slot holds data the kernel may read. */
static inline bool nswap_se_live(u64 e)
{
	return (nswap_se_flags(e) & (NSWAP_SE_IN_USE | NSWAP_SE_FREED)) ==
	       NSWAP_SE_IN_USE;
}

static inline bool nswap_se_lost(u64 e)
{
	return e == NSWAP_SE_LOST_WORD;
}

static inline bool nswap_se_local(u64 e)
{
	return nswap_se_flags(e) & NSWAP_SE_LOCAL;
}

static inline bool nswap_se_freed(u64 e)
{
	return nswap_se_flags(e) & NSWAP_SE_FREED;
}

static inline u32 nswap_slotmap_crc(struct nswap_slotmap *map, u64 slot)
{
	return READ_ONCE(map->crc[slot]);
}

static inline void nswap_slotmap_set_crc(struct nswap_slotmap *map, u64 slot,
					 u32 crc)
{
	WRITE_ONCE(map->crc[slot], crc);
}

int nswap_slotmap_init(struct nswap_slotmap *map, u64 nslots);
void nswap_slotmap_free(struct nswap_slotmap *map);

static inline u64 nswap_slotmap_get(struct nswap_slotmap *map, u64 slot)
{
	return atomic64_read(&map->e[slot]);
}

/* Clear a slot; returns the previous word. */
static inline u64 nswap_slotmap_clear(struct nswap_slotmap *map, u64 slot)
{
	return atomic64_xchg(&map->e[slot], 0);
}

bool nswap_slotmap_commit(struct nswap_slotmap *map, u64 slot, u64 new,
			  u64 *old);

/* Atomically replace @old by @new; true if the word still was @old. */
static inline bool nswap_slotmap_cmpxchg(struct nswap_slotmap *map, u64 slot,
					 u64 old, u64 new)
{
	return atomic64_cmpxchg(&map->e[slot], old, new) == (s64)old;
}

#endif /* NSWAP_SLOTMAP_H */
