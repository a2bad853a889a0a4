// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap pages sent home: a server punts a page back to us (docs/protocol.md
 * 11.1, "home").
 *
 * When a server must shed pages (its cache shrank, or it drains) and no
 * other server has room, it sends them back to their owner, which writes
 * them to its local disk (paper, section 3.2).  nswap.ko offers
 * NSWAP_FEAT_PUNTHOME in HELLO only when the device has a backing device.
 * The server then sends, on one of our connections to it, a PUNTPAGE frame
 * (no REPLY bit) with the page, its slot, generation and hop count + 1.
 * The connection's receive thread (process context) calls
 * nswap_home_receive(), which
 *
 *  - writes the page to the backing device at the slot and switches the
 *    slot map word from "that generation at this server" to "that
 *    generation on the backing device" (NSWAP_SE_LOCAL), and answers OK:
 *    the server drops its copy;
 *  - answers ESTALE when the word names another copy (the slot was
 *    rewritten or freed since): the server drops that stale copy;
 *  - answers ENOSPC when it cannot (no backing device any more, a write
 *    error): the server keeps the page, readable, and stops sending pages
 *    home on that connection for a while.
 *
 * Ordering against the device's own writes of the slot: a write of the slot
 * that goes to the backing device at the same moment could otherwise reach
 * the disk before the old page and be overwritten by it.  So the home write
 * (check the word, write, switch the word) holds dev->home_rwsem for
 * writing, and nswap_backing_workfn() holds it for reading across its writes
 * and their slot map commits: either the device's write and its commit come
 * first (then the word no longer names the server's copy: ESTALE, nothing
 * written), or they come after the switch (and the newer generation wins,
 * as for any two writes).  A write of the slot that goes to a server needs no
 * such care: it commits a newer generation whatever the word says, and the
 * switch's compare-exchange then fails (ESTALE).  Reads are unaffected: the
 * word names the disk only once the page is on it, and the server keeps its
 * copy until our answer.
 *
 * The answer is sent by a work item (conn->home_work on nswap_wq),
 * not by the receive thread: a send may block until the server reads, and
 * a server stops reading while its replies to us wait to be read.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>

#include "nswap.h"
#include "nswap_slotmap.h"

/* Write @data at @slot of the backing device (home_rwsem held). */
static int nswap_home_write(struct nswap_dev *dev, u64 slot, const void *data)
{
	static const unsigned int offset;

	memcpy(page_address(dev->home_page), data, NSWAP_PAGE_SIZE);
	return nswap_backing_io(dev, slot, &dev->home_page, &offset, 1, true);
}

/*
 * The answer for a copy (@gen, stored hop count @hop - 1, at server @idx)
 * that word @cur does not name: ESTALE (the server drops it) only when the
 * copy is certainly dead -- a newer write is recorded, or the same write
 * was freed, is on disk already, or moved on to another server since.
 * Otherwise the word may just not know the copy yet: its PUTPAGE reply or
 * the UPDATE that names it is still on its way (and a slot freed since is
 * invalidated at that server anyway).  Then ENOSPC: the server keeps it.
 */
static unsigned int nswap_home_unnamed(u64 cur, u8 idx, u64 gen, u8 hop)
{
	if (nswap_se_gen(cur) > gen)
		return NSWAP_ESTALE;
	if (nswap_se_gen(cur) == gen && nswap_se_in_use(cur) &&
	    (nswap_se_freed(cur) || nswap_se_local(cur) ||
	     (nswap_se_srv(cur) != idx && nswap_se_hop(cur) >= hop - 1)))
		return NSWAP_ESTALE;
	return NSWAP_ENOSPC;
}

/* Store the page sent home by server @idx; the status to answer. */
static unsigned int nswap_home_store(struct nswap_dev *dev, u8 idx, u64 slot,
				     u64 gen, u8 hop, const void *data)
{
	unsigned int status;
	u64 cur, local;
	int err;

	down_write(&dev->home_rwsem);
	if (!dev->backing) {
		status = NSWAP_ENOSPC;		/* powering off */
		goto out;
	}
	cur = nswap_slotmap_get(&dev->map, slot);
	if (!nswap_se_live(cur) || nswap_se_local(cur) ||
	    nswap_se_srv(cur) != idx || nswap_se_gen(cur) != gen) {
		status = nswap_home_unnamed(cur, idx, gen, hop);
		goto out;
	}
	err = nswap_home_write(dev, slot, data);
	if (err) {
		nswap_stat_inc(dev, disk_errors);
		pr_err_ratelimited("nswap%d: backing %s: write of slot %llu sent home failed (%d); the server keeps it\n",
				   dev->index, dev->backing_path, slot, err);
		status = NSWAP_ENOSPC;
		goto out;
	}
	local = nswap_se_make(NSWAP_SE_SRV_LOCAL, hop,
			      NSWAP_SE_IN_USE | NSWAP_SE_LOCAL, gen);
	if (!nswap_slotmap_cmpxchg(&dev->map, slot, cur, local)) {
		/* rewritten or freed during the write: the disk copy is
		 * unused (a disk write of the slot waits for us) */
		status = nswap_home_unnamed(nswap_slotmap_get(&dev->map, slot),
					    idx, gen, hop);
		goto out;
	}
	nswap_holder_add(dev, idx, -1);
	nswap_holder_add(dev, NSWAP_SE_SRV_LOCAL, 1);
	nswap_stat_inc(dev, disk_writes);
	nswap_stat_inc(dev, punts_home);
	status = NSWAP_OK;
out:
	up_write(&dev->home_rwsem);
	return status;
}

void nswap_home_receive(struct nswap_conn *conn, const struct nswap_hdr *hdr,
			const void *data)
{
	struct nswap_server *srv = conn->srv;
	struct nswap_dev *dev = srv->dev;
	u64 slot = le64_to_cpu(hdr->slot);
	u64 gen = le64_to_cpu(hdr->generation);
	u8 hop = hdr->hop_count;
	struct nswap_home_answer *a;
	unsigned int status;
	bool queued = false;

	if (!(conn->features & NSWAP_FEAT_PUNTHOME) || slot >= dev->map.nslots ||
	    !gen || gen > NSWAP_SE_GEN_MASK || !hop || hop > NSWAP_MAX_HOPS ||
	    le64_to_cpu(hdr->client_id) != dev->client_id || hdr->flags ||
	    le32_to_cpu(hdr->length) != NSWAP_PAGE_SIZE) {
		nswap_stat_inc(dev, punts_home_refused);
		pr_warn_ratelimited("nswap%d: page sent home (slot %llu generation %llu hop %u) by %s ignored: %s\n",
				    dev->index, slot, gen, hop, srv->name,
				    !(conn->features & NSWAP_FEAT_PUNTHOME) ?
				    "not negotiated (no backing device)" :
				    "not ours, flags, a short page, or slot, generation or hop count out of range");
		return;
	}
	status = nswap_home_store(dev, srv->index, slot, gen, hop, data);
	if (status != NSWAP_OK)
		nswap_stat_inc(dev, punts_home_refused);

	spin_lock(&conn->home_lock);
	if (conn->home_count < NSWAP_HOME_ANSWERS) {
		a = &conn->home_ans[(conn->home_head + conn->home_count) %
				    NSWAP_HOME_ANSWERS];
		a->tag = le64_to_cpu(hdr->tag);
		a->slot = slot;
		a->gen = gen;
		a->hop = hop;
		a->status = status;
		/* this receive thread's socket: not a later one's */
		a->epoch = READ_ONCE(conn->epoch);
		conn->home_count++;
		queued = true;
	}
	spin_unlock(&conn->home_lock);
	if (queued)
		queue_work(nswap_wq, &conn->home_work);
	else
		/* more on their way than any server's window: it sees no
		 * answer, keeps the page, and resends after reconnecting */
		pr_warn_ratelimited("nswap%d: %s sends more pages home than it waits answers for; slot %llu not answered\n",
				    dev->index, srv->name, slot);
}

void nswap_home_workfn(struct work_struct *work)
{
	struct nswap_conn *conn = container_of(work, struct nswap_conn,
					       home_work);
	struct nswap_dev *dev = conn->srv->dev;

	for (;;) {
		struct nswap_home_answer a;
		struct nswap_hdr hdr;

		spin_lock(&conn->home_lock);
		if (!conn->home_count) {
			spin_unlock(&conn->home_lock);
			return;
		}
		a = conn->home_ans[conn->home_head];
		conn->home_head = (conn->home_head + 1) % NSWAP_HOME_ANSWERS;
		conn->home_count--;
		spin_unlock(&conn->home_lock);

		nswap_hdr_init(&hdr, conn->version,
			       NSWAP_PUNTPAGE | NSWAP_REPLY, 0, a.tag,
			       dev->client_id, a.slot, a.gen, 0, 0);
		hdr.hop_count = a.hop;
		hdr.status = cpu_to_le16(a.status);
		nswap_hdr_seal(&hdr);
		/* lost with the connection (or skipped on a socket connected
		 * since, which never saw the page): the server keeps it then */
		nswap_conn_send_epoch(conn, &hdr, NULL, a.epoch);
	}
}
