// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap block device: blk-mq request handling.
 *
 * A READ or WRITE request of N pages becomes N frames (GETPAGE/PUTPAGE).
 * ->queue_rq never sleeps and never touches a socket: it picks a
 * connection per frame and queues the frame on it; the connection's tx
 * thread sends it and the conn thread matches the reply by its tag
 * (attempt cookie | blk-mq unique tag | frame index).
 *
 * Per-request state lives in struct nswap_cmd under cmd->lock:
 *   pending  frames queued or on the wire, plus one while ->queue_rq is
 *            still issuing; when it reaches zero the request "settles":
 *            all frames acknowledged -> complete; page lost on the server
 *            or budget exhausted -> complete with BLK_STS_IOERR; otherwise
 *            requeue (at once after a failure, after NSWAP_WAIT_CONN_MS if
 *            no connection was available or a write overtook a read).
 *   cookie   changes with every attempt; replies carrying an older cookie
 *            are ignored, so a requeued request never sees stale replies.
 * A frame that the tx thread is sending (tx_busy) is not settled under it:
 * abandoning it only flags it, and a reply that arrives first is only
 * recorded (a GET's page is already in place), and the tx thread settles it
 * when sendmsg returns, so a request is never completed -- nor its pages
 * or, with an I/O scheduler, the request itself freed -- while being sent.
 * Likewise while the conn thread receives a GET's page straight into the
 * request's page (one copy: nswap_rx_page_begin/end), the request holds one
 * more pending and cannot settle.
 *
 * Failure handling: a request that times out (blk-mq ->timeout) has its
 * frames abandoned; their connections are shut down unless they are still
 * answering other requests (nswap_conn_answering); a connection that
 * fails has every frame on it reissued (nswap_dev_abandon_conn).  A request
 * is retried up to max_retries times and for at most
 * (max_retries + 1) * timeout_ms in total.  Then a READ fails with
 * BLK_STS_IOERR.  A WRITE that no server took is completed successfully and
 * its slots are marked LOST (nswap_write_lost) if its last attempt found no
 * connected server (while one is connected the write fails as usual and
 * the kernel retries the dirty page later).  Linux keeps an anonymous
 * page whose swap write failed dirty and retries it forever, so with every
 * server gone reclaim would spin on pages it can never free and the OOM
 * killer would never run.  Completing the write frees the page; the owner
 * gets an I/O error (SIGBUS) when it reads the slot back -- never old or
 * zeroed data.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "nswap.h"
#include "nswap_compat.h"

/* Largest discard/write-zeroes request: 1 GiB, bounds the slot loop. */
#define NSWAP_MAX_DISCARD_SECTORS	(SZ_1G >> SECTOR_SHIFT)

static const struct block_device_operations nswap_fops;

struct nswap_dev *nswap_dev_from_disk(struct gendisk *disk)
{
	return disk->private_data;
}

bool nswap_disk_is_ours(struct gendisk *disk)
{
	return disk->fops == &nswap_fops;
}

u64 nswap_dev_gen_snapshot(struct nswap_dev *dev)
{
	return (u64)atomic64_read(&dev->next_gen) & NSWAP_SE_GEN_MASK;
}

/* ---- opening ---- */

int nswap_disk_open(struct gendisk *disk)
{
	struct nswap_dev *dev = nswap_dev_from_disk(disk);
	int ret = 0;

	spin_lock(&dev->open_lock);
	if (dev->dying)
		ret = -ENXIO;
	else
		dev->open_count++;
	spin_unlock(&dev->open_lock);
	return ret;
}

void nswap_disk_release(struct gendisk *disk)
{
	struct nswap_dev *dev = nswap_dev_from_disk(disk);

	spin_lock(&dev->open_lock);
	dev->open_count--;
	spin_unlock(&dev->open_lock);
}

/* ---- request state machine (cmd->lock held unless noted) ---- */

static void nswap_frame_finish(struct nswap_dev *dev, struct nswap_cmd *cmd,
			       struct nswap_frame *fr, u8 state)
{
	if (fr->state == NSWAP_FR_SENT) {
		cmd->pending--;
		atomic_dec(&dev->inflight);
	}
	fr->state = state;
}

/* Give up on a SENT frame; it is reissued by the next attempt. */
static void nswap_frame_abandon(struct nswap_dev *dev, struct nswap_cmd *cmd,
				struct nswap_frame *fr)
{
	if (fr->state != NSWAP_FR_SENT)
		return;
	if (fr->conn)
		nswap_conn_dequeue_frame(fr->conn, fr);
	if (fr->tx_busy) {
		/* the tx thread, or the backing device's work item, settles it */
		fr->abandon = true;
		return;
	}
	nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
}

/*
 * Mark the slots of @cmd's unacknowledged frames LOST (cmd->lock held, no
 * frame in flight).  A copy the slot held before, and one an unacknowledged
 * attempt may have left on a server, are invalidated.  A word recording a
 * write issued after this request began (a larger generation) is newer
 * data and stays.
 */
static void nswap_write_lost(struct nswap_dev *dev, struct nswap_cmd *cmd)
{
	unsigned int i;

	for (i = 0; i < cmd->nr_frames; i++) {
		struct nswap_frame *fr = &cmd->frames[i];
		atomic64_t *e = &dev->map.e[fr->slot];
		s64 cur, prev;

		if (fr->state == NSWAP_FR_DONE)
			continue;
		cur = atomic64_read(e);
		for (;;) {
			if (nswap_se_in_use(cur) &&
			    nswap_se_gen(cur) > cmd->first_gen)
				break;
			prev = atomic64_cmpxchg(e, cur, NSWAP_SE_LOST_WORD);
			if (prev == cur)
				break;
			cur = prev;
		}
		if (nswap_se_in_use(cur) && nswap_se_gen(cur) <= cmd->first_gen) {
			nswap_holder_add(dev, nswap_se_srv(cur), -1);
			nswap_inval_post(dev, nswap_se_srv(cur), fr->slot, 1,
					 nswap_se_gen(cur), nswap_se_gen(cur));
		}
		if (fr->prev_valid)
			nswap_inval_post(dev, fr->prev_srv, fr->slot, 1,
					 fr->prev_gen, fr->prev_gen);
		if (fr->stale_valid && (!fr->prev_valid ||
					fr->stale_srv != fr->prev_srv))
			nswap_inval_post(dev, fr->stale_srv, fr->slot, 1,
					 fr->stale_gen, fr->stale_gen);
		fr->prev_valid = false;
		fr->stale_valid = false;
		nswap_stat_inc(dev, lost_pages);
	}
}

static unsigned long nswap_budget(struct nswap_dev *dev)
{
	return msecs_to_jiffies(READ_ONCE(dev->timeout_ms)) *
	       (READ_ONCE(dev->max_retries) + 1);
}

static enum nswap_action nswap_cmd_settle(struct nswap_dev *dev,
					  struct nswap_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	const char *why;
	unsigned int i;

	if (cmd->pending || cmd->state != NSWAP_CMD_ACTIVE)
		return NSWAP_ACT_NONE;

	for (i = 0; i < cmd->nr_frames; i++)
		if (cmd->frames[i].state != NSWAP_FR_DONE)
			break;
	if (i == cmd->nr_frames) {
		cmd->status = BLK_STS_OK;
		goto complete;
	}
	if (cmd->fatal) {
		why = "page lost or refused by server";
		goto fail;
	}
	if (READ_ONCE(dev->dying)) {
		why = "device is being powered off";
		goto fail;
	}
	if (time_after(jiffies, cmd->first_issue + nswap_budget(dev))) {
		why = cmd->nowait ? "no server reachable" : "timed out";
		goto fail;
	}
	/* an overtaken read is no server's fault: only the budget bounds it */
	if (cmd->failed && !cmd->overtaken) {
		if (cmd->retries >= READ_ONCE(dev->max_retries)) {
			why = "retries exhausted";
			goto fail;
		}
		cmd->retries++;
	}
	if (cmd->failed)
		nswap_stat_inc(dev, retries);
	cmd->state = NSWAP_CMD_IDLE;
	if (cmd->overtaken) {
		/* give the write's reply time to update the slot map */
		cmd->overtaken = false;
		return NSWAP_ACT_REQUEUE_DELAYED;
	}
	return cmd->failed || !cmd->nowait ? NSWAP_ACT_REQUEUE :
					     NSWAP_ACT_REQUEUE_DELAYED;
fail:
	/*
	 * Lose a write only when no server could be reached at all: while one
	 * is connected but slow or refusing, the error keeps the page dirty in
	 * memory and the kernel writes it again later.  "At all" is over every
	 * attempt of the request (cmd->reached), not only the last: a timeout
	 * shuts the connections it used, so the attempt after it can find
	 * none up while they reconnect, although the server is alive.  A
	 * server that is really gone costs one more budget: the kernel's
	 * rewrite of the still-dirty page is a new request that reaches no one.
	 * With a backing device a write that finds no server goes there, so one
	 * that still fails (the disk fails too, or it lost every race with
	 * connections going down) fails as usual.
	 */
	if (rq_data_dir(rq) == WRITE && cmd->nowait && !cmd->reached &&
	    !dev->backing && !READ_ONCE(dev->dying)) {
		pr_err_ratelimited("%s: write of %u page(s) at slot %llu failed after %u retries: %s; slots marked lost, reading them back gives I/O errors\n",
				   dev->disk->disk_name, cmd->nr_frames,
				   cmd->frames[0].slot, cmd->retries, why);
		nswap_write_lost(dev, cmd);
		cmd->status = BLK_STS_OK;
		goto complete;
	}
	pr_err_ratelimited("%s: %s of %u page(s) at slot %llu failed after %u retries: %s\n",
			   dev->disk->disk_name,
			   rq_data_dir(rq) == WRITE ? "write" : "read",
			   cmd->nr_frames, cmd->frames[0].slot, cmd->retries,
			   why);
	cmd->status = BLK_STS_IOERR;
complete:
	cmd->state = NSWAP_CMD_DONE;
	return NSWAP_ACT_COMPLETE;
}

/* Carry out what nswap_cmd_settle() decided; cmd->lock not held. */
static void nswap_do_action(struct request *rq, enum nswap_action act)
{
	switch (act) {
	case NSWAP_ACT_COMPLETE:
		blk_mq_complete_request(rq);
		break;
	case NSWAP_ACT_REQUEUE:
		blk_mq_requeue_request(rq, true);
		break;
	case NSWAP_ACT_REQUEUE_DELAYED:
		blk_mq_requeue_request(rq, false);
		blk_mq_delay_kick_requeue_list(rq->q, NSWAP_WAIT_CONN_MS);
		break;
	case NSWAP_ACT_NONE:
		break;
	}
}

/* ---- slot map updates ---- */

/* An acknowledged PUTPAGE: record it, drop the copy it replaces. */
static void nswap_commit_put(struct nswap_dev *dev, struct nswap_frame *fr)
{
	u8 flags = NSWAP_SE_IN_USE |
		   (fr->srv == NSWAP_SE_SRV_LOCAL ? NSWAP_SE_LOCAL : 0);
	u64 new = nswap_se_make(fr->srv, 0, flags, fr->gen);
	u64 old;

	if (nswap_slotmap_commit(&dev->map, fr->slot, new, &old)) {
		/*
		 * After the word: a read that sees the new word with the old
		 * CRC (raw I/O racing its own write; swap never does) reads
		 * again, and a write whose commit lost keeps its CRC out.
		 */
		if (!(flags & NSWAP_SE_LOCAL))
			nswap_slotmap_set_crc(&dev->map, fr->slot, fr->crc);
		nswap_holder_add(dev, fr->srv, 1);
		if (!nswap_se_in_use(old))
			return;
		nswap_holder_add(dev, nswap_se_srv(old), -1);
		if (nswap_se_srv(old) != fr->srv)
			nswap_inval_post(dev, nswap_se_srv(old), fr->slot, 1,
					 nswap_se_gen(old), nswap_se_gen(old));
	} else if (nswap_se_srv(old) != fr->srv) {
		/* a later write of this block is recorded: drop ours */
		nswap_inval_post(dev, fr->srv, fr->slot, 1, fr->gen, fr->gen);
	}
}

static void nswap_discard(struct nswap_dev *dev, struct request *rq)
{
	DECLARE_BITMAP(touched, NSWAP_MAX_SERVERS);
	u64 first = blk_rq_pos(rq) / NSWAP_SECTORS_PER_PAGE;
	u64 count = blk_rq_bytes(rq) / NSWAP_PAGE_SIZE;
	u64 gen, s;
	unsigned int i;

	if (first >= dev->map.nslots)
		return;
	count = min(count, dev->map.nslots - first);
	bitmap_zero(touched, NSWAP_MAX_SERVERS);
	gen = nswap_dev_gen_snapshot(dev);
	for (s = first; s < first + count; s++) {
		u64 old = nswap_slotmap_clear(&dev->map, s);

		if (!nswap_se_in_use(old))
			continue;
		i = nswap_se_srv(old);
		nswap_holder_add(dev, i, -1);
		if (nswap_dev_server(dev, i))
			__set_bit(i, touched);
	}
	for_each_set_bit(i, touched, NSWAP_MAX_SERVERS)
		nswap_inval_post(dev, i, first, count, gen, gen);
}

/* ---- replies ---- */

static void nswap_put_result(struct nswap_dev *dev, struct nswap_cmd *cmd,
			     struct nswap_frame *fr, unsigned int status)
{
	struct nswap_server *srv = nswap_dev_server(dev, fr->srv);

	switch (status) {
	case NSWAP_OK:
		nswap_commit_put(dev, fr);
		fr->prev_valid = false;
		if (fr->stale_valid && fr->stale_srv != fr->srv)
			nswap_inval_post(dev, fr->stale_srv, fr->slot, 1,
					 fr->stale_gen, fr->stale_gen);
		fr->stale_valid = false;
		if (fr->srv == NSWAP_SE_SRV_LOCAL)
			nswap_stat_inc(dev, disk_writes);
		else
			nswap_stat_inc(dev, puts);
		nswap_frame_finish(dev, cmd, fr, NSWAP_FR_DONE);
		return;
	case NSWAP_ENOSPC:
		if (srv)
			WRITE_ONCE(srv->full_until, jiffies + HZ);
		if (dev->backing) {
			/*
			 * Not a failure: the next attempt skips the full server
			 * and ends on the backing device if no server has room
			 * (no retry counted; the time budget bounds it).
			 */
			nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
			return;
		}
		fallthrough;
	case NSWAP_ESTALE:
	case NSWAP_EBADCRC:
	case NSWAP_ESHUTDOWN:
		pr_warn_ratelimited("%s: PUTPAGE slot %llu to %s: %s, retrying\n",
				    dev->disk->disk_name, fr->slot,
				    srv ? srv->name : "?",
				    nswap_status_name(status));
		cmd->failed = true;
		break;
	default:
		pr_err_ratelimited("%s: PUTPAGE slot %llu to %s: %s\n",
				   dev->disk->disk_name, fr->slot,
				   srv ? srv->name : "?",
				   nswap_status_name(status));
		cmd->fatal = true;
		break;
	}
	nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
}

/* Not a wire status: a GETPAGE reply said OK but its payload was unusable. */
#define NSWAP_GET_BAD_PAYLOAD	0xffff
/* A page whose CRC is not the one written to the slot (nswap_slotmap.h). */
#define NSWAP_GET_WRONG_PAGE	0xfffe

/*
 * A GETPAGE reply read into the connection's receive buffer (cmd->lock
 * held): an error status, a bad length, or -- normally never, since
 * nswap_rx_get_page() receives this attempt's pages in place -- a page,
 * copied at once (also while tx_busy: @payload lives only until this reply
 * is handled).  Returns the status nswap_get_result() acts on.
 */
static u16 nswap_get_copy(struct nswap_frame *fr, unsigned int status,
			  u32 len, const void *payload, bool payload_ok, u32 crc)
{
	if (status != NSWAP_OK)
		return status;
	if (len != NSWAP_PAGE_SIZE || !payload_ok)
		return NSWAP_GET_BAD_PAYLOAD;
	if (crc != fr->crc)
		return NSWAP_GET_WRONG_PAGE;
	memcpy_to_page(fr->page, fr->offset, payload, NSWAP_PAGE_SIZE);
	return NSWAP_OK;
}

/* Does the slot map no longer name the copy @fr asked for? */
static bool nswap_get_word_changed(struct nswap_dev *dev,
				   struct nswap_frame *fr)
{
	u64 e = nswap_slotmap_get(&dev->map, fr->slot);

	return !nswap_se_live(e) || nswap_se_srv(e) != fr->srv ||
	       nswap_se_gen(e) != fr->gen;
}

static void nswap_get_result(struct nswap_dev *dev, struct nswap_cmd *cmd,
			     struct nswap_frame *fr, u16 status)
{
	struct nswap_server *srv = nswap_dev_server(dev, fr->srv);
	const char *name = srv ? srv->name : "?";

	switch (status) {
	case NSWAP_OK:
		nswap_stat_inc(dev, gets);
		nswap_frame_finish(dev, cmd, fr, NSWAP_FR_DONE);
		return;
	case NSWAP_GET_BAD_PAYLOAD:
		pr_warn_ratelimited("%s: GETPAGE slot %llu from %s: bad payload, retrying\n",
				    dev->disk->disk_name, fr->slot, name);
		cmd->failed = true;
		break;
	case NSWAP_GET_WRONG_PAGE:
		/* the frame is sound, the page is not the one written */
		nswap_stat_inc(dev, wrong_pages);
		pr_warn_ratelimited("%s: GETPAGE slot %llu from %s: not the page written (CRC differs), reading again\n",
				    dev->disk->disk_name, fr->slot, name);
		cmd->failed = true;
		break;
	case NSWAP_ESHUTDOWN:
		cmd->failed = true;
		break;
	case NSWAP_ESTALE:
		/*
		 * The server holds another generation of this slot: a write
		 * of it overtook the read (raw device I/O; swap never
		 * overlaps them).  Its reply may not have been handled yet
		 * (it can come on another connection), so the slot map may
		 * still name the old copy: retry, within the time budget,
		 * until the map names what the server holds.
		 */
		cmd->failed = true;
		cmd->overtaken = true;
		break;
	case NSWAP_ENOENT:
		if (nswap_get_word_changed(dev, fr)) {
			/* a discard or a write elsewhere dropped the copy */
			cmd->failed = true;
			break;
		}
		fallthrough;
	default:
		/* the only copy is gone */
		pr_err_ratelimited("%s: GETPAGE slot %llu generation %llu from %s: %s, page lost\n",
				   dev->disk->disk_name, fr->slot, fr->gen,
				   name, nswap_status_name(status));
		cmd->fatal = true;
		break;
	}
	nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
}

/* Act on a reply's status (GET: after nswap_get_copy); cmd->lock held. */
static void nswap_frame_result(struct nswap_dev *dev, struct nswap_cmd *cmd,
			       struct nswap_frame *fr, bool write, u16 status)
{
	if (write)
		nswap_put_result(dev, cmd, fr, status);
	else
		nswap_get_result(dev, cmd, fr, status);
}

/*
 * The frame a PUTPAGE/GETPAGE reply answers, with its request's lock held;
 * NULL (lock not held) for a stale reply: an older attempt's, another
 * connection's, or for a request that is gone.
 */
static struct nswap_frame *nswap_reply_frame(struct nswap_conn *conn,
					     const struct nswap_hdr *hdr,
					     bool *write)
{
	struct nswap_dev *dev = conn->srv->dev;
	u64 tag = le64_to_cpu(hdr->tag);
	u32 utag = (u32)(tag >> 8);
	u32 cookie = tag >> 40;
	unsigned int idx = tag & 0xff;
	unsigned int hwq = blk_mq_unique_tag_to_hwq(utag);
	unsigned int t = blk_mq_unique_tag_to_tag(utag);
	struct nswap_frame *fr;
	struct nswap_cmd *cmd;
	struct request *rq;

	if (hwq >= dev->tag_set.nr_hw_queues || t >= dev->tag_set.queue_depth)
		goto stale;
	rq = blk_mq_tag_to_rq(dev->tag_set.tags[hwq], t);
	if (!rq || !blk_mq_request_started(rq))
		goto stale;
	cmd = blk_mq_rq_to_pdu(rq);
	*write = rq_data_dir(rq) == WRITE;

	spin_lock(&cmd->lock);
	if (cmd->state != NSWAP_CMD_ACTIVE || cmd->cookie != cookie ||
	    idx >= cmd->nr_frames)
		goto stale_unlock;
	fr = &cmd->frames[idx];
	if (fr->state != NSWAP_FR_SENT || fr->conn != conn ||
	    le64_to_cpu(hdr->slot) != fr->slot ||
	    hdr->type != ((*write ? NSWAP_PUTPAGE : NSWAP_GETPAGE) |
			  NSWAP_REPLY))
		goto stale_unlock;
	return fr;

stale_unlock:
	spin_unlock(&cmd->lock);
stale:
	pr_debug("nswap%d: ignoring stale reply tag %016llx from %s\n",
		 dev->index, tag, conn->srv->name);
	return NULL;
}

/*
 * Act on @status for @fr, a frame of this attempt still SENT, then settle
 * its request; called with cmd->lock held, returns with it released.
 */
static void nswap_reply_settle(struct nswap_dev *dev, struct nswap_frame *fr,
			       bool write, u16 status)
{
	struct nswap_cmd *cmd = fr->cmd;
	enum nswap_action act;

	nswap_stats_latency(dev, fr->start_ns);
	if (fr->tx_busy) {
		/*
		 * sendmsg has not returned yet: the tx thread settles the frame
		 * when it has (nswap_tx_frame_end).  Settling here could
		 * complete the request -- and with an I/O scheduler free it --
		 * while the tx thread still uses the frame.
		 */
		fr->early = true;
		fr->early_status = status;
		spin_unlock(&cmd->lock);
		return;
	}
	nswap_frame_result(dev, cmd, fr, write, status);
	act = nswap_cmd_settle(dev, cmd);
	spin_unlock(&cmd->lock);
	nswap_do_action(blk_mq_rq_from_pdu(cmd), act);
}

/*
 * Called by the conn thread for every PUTPAGE/GETPAGE reply whose payload
 * (if any) it read into its receive buffer: PUT replies, GET errors, and
 * GET pages nswap_rx_page_begin() had no frame for.
 */
void nswap_dev_handle_reply(struct nswap_conn *conn,
			    const struct nswap_hdr *hdr, const void *payload,
			    bool payload_ok)
{
	unsigned int status = le16_to_cpu(hdr->status);
	struct nswap_frame *fr;
	bool write;

	fr = nswap_reply_frame(conn, hdr, &write);
	if (!fr)
		return;
	if (!write)
		status = nswap_get_copy(fr, status, le32_to_cpu(hdr->length),
					payload, payload_ok, le32_to_cpu(hdr->crc));
	nswap_reply_settle(conn->srv->dev, fr, write, status);
}

/*
 * One-copy receive of a GETPAGE reply's page: the conn thread reads the
 * payload straight into the request's page and checks its CRC there,
 * instead of into its receive buffer and then copying it.
 *
 * nswap_rx_page_begin() finds the frame of a GETPAGE reply with status OK
 * and a page of payload, and holds its request: one more pending, so the
 * request cannot settle -- complete, fail or be requeued, and so have its
 * page handed back or the frame reissued -- while the socket writes into
 * the page.  A timeout or a connection failure meanwhile only abandons the
 * frame; the request settles when the hold is dropped.
 * Return: the frame, or NULL (stale: read the payload into the receive
 * buffer and drop it, as nswap_dev_handle_reply does).
 */
struct nswap_frame *nswap_rx_page_begin(struct nswap_conn *conn,
					const struct nswap_hdr *hdr)
{
	struct nswap_frame *fr;
	bool write;

	/* a GETPAGE reply only matches a read's frame: write is false here */
	fr = nswap_reply_frame(conn, hdr, &write);
	if (!fr)
		return NULL;
	fr->cmd->pending++;
	spin_unlock(&fr->cmd->lock);
	return fr;
}

/*
 * The payload for @fr (from nswap_rx_page_begin) was read into its page
 * (@err 0) with the CRC @crc, which matched the frame's or not (@crc_ok), or
 * the read failed (@err: the connection is going down and reissues the
 * frame).
 */
void nswap_rx_page_end(struct nswap_conn *conn, struct nswap_frame *fr,
		       int err, bool crc_ok, u32 crc)
{
	struct nswap_dev *dev = conn->srv->dev;
	struct nswap_cmd *cmd = fr->cmd;
	enum nswap_action act;

	spin_lock(&cmd->lock);
	cmd->pending--;		/* the hold of nswap_rx_page_begin */
	if (!err && fr->state == NSWAP_FR_SENT && fr->conn == conn) {
		/* a bad page is read again: the retry overwrites it */
		nswap_reply_settle(dev, fr, false,
				   !crc_ok ? NSWAP_GET_BAD_PAYLOAD :
				   crc != fr->crc ? NSWAP_GET_WRONG_PAGE : NSWAP_OK);
		return;
	}
	act = nswap_cmd_settle(dev, cmd);
	spin_unlock(&cmd->lock);
	nswap_do_action(blk_mq_rq_from_pdu(cmd), act);
}

/*
 * The backing device wrote or read frames [first, end) of @cmd during
 * attempt @cookie, with result @err (nswap_backing.c): record them as a
 * reply would, and settle the request.  The frames were tx_busy, so the
 * attempt cannot have ended meanwhile.
 */
void nswap_dev_backing_done(struct nswap_cmd *cmd, unsigned int first,
			    unsigned int end, u32 cookie, int err)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct nswap_dev *dev = rq->q->queuedata;
	bool write = rq_data_dir(rq) == WRITE;
	enum nswap_action act = NSWAP_ACT_NONE;
	unsigned int i;

	spin_lock(&cmd->lock);
	for (i = first; i < end && cmd->cookie == cookie; i++) {
		struct nswap_frame *fr = &cmd->frames[i];

		if (!fr->tx_busy)
			continue;
		fr->tx_busy = false;
		/* a timeout flagged it: what the disk did stands all the same */
		fr->abandon = false;
		if (fr->state != NSWAP_FR_SENT)
			continue;
		if (err) {
			cmd->failed = true;
			nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
		} else if (write) {
			nswap_put_result(dev, cmd, fr, NSWAP_OK);
		} else {
			nswap_stat_inc(dev, disk_reads);
			nswap_frame_finish(dev, cmd, fr, NSWAP_FR_DONE);
		}
	}
	act = nswap_cmd_settle(dev, cmd);
	spin_unlock(&cmd->lock);
	nswap_do_action(rq, act);
}

/* ---- sending (tx thread) ---- */

/*
 * Prepare @fr, popped from @conn's queue during attempt @cookie, for sending:
 * mark it tx_busy and build its header in @hdr.  Return: false if the frame
 * is no longer this attempt's (nothing to send, nothing to finish).
 */
bool nswap_tx_frame_begin(struct nswap_conn *conn, struct nswap_frame *fr,
			  u32 cookie, struct nswap_hdr *hdr)
{
	struct nswap_cmd *cmd = fr->cmd;
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct nswap_dev *dev = conn->srv->dev;
	bool write;
	u64 tag;

	spin_lock(&cmd->lock);
	if (cmd->state != NSWAP_CMD_ACTIVE || cmd->cookie != cookie ||
	    fr->state != NSWAP_FR_SENT || fr->conn != conn) {
		spin_unlock(&cmd->lock);
		return false;
	}
	fr->tx_busy = true;
	write = rq_data_dir(rq) == WRITE;
	tag = nswap_make_tag(cookie, blk_mq_unique_tag(rq), fr->idx);
	spin_unlock(&cmd->lock);

	/*
	 * The request cannot complete while tx_busy: its pages are stable, and
	 * the reply that commits fr->crc is settled under cmd->lock after
	 * nswap_tx_frame_end (or by this thread, if it came first).
	 */
	if (write) {
		fr->crc = nswap_crc32c_page(fr->page, fr->offset);
		nswap_hdr_init(hdr, conn->version, NSWAP_PUTPAGE, 0, tag,
			       dev->client_id, fr->slot, fr->gen,
			       NSWAP_PAGE_SIZE, fr->crc);
	} else
		nswap_hdr_init(hdr, conn->version, NSWAP_GETPAGE, 0, tag,
			       dev->client_id, fr->slot, fr->gen, 0, 0);
	return true;
}

/* @fr (begun with nswap_tx_frame_begin) was sent, or failed with @err. */
void nswap_tx_frame_end(struct nswap_conn *conn, struct nswap_frame *fr,
			u32 cookie, int err)
{
	struct nswap_cmd *cmd = fr->cmd;
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct nswap_dev *dev = conn->srv->dev;
	enum nswap_action act = NSWAP_ACT_NONE;

	spin_lock(&cmd->lock);
	if (cmd->cookie == cookie && fr->tx_busy) {
		fr->tx_busy = false;
		if (fr->state == NSWAP_FR_SENT) {
			if (fr->early) {
				fr->early = false;
				nswap_frame_result(dev, cmd, fr,
						   rq_data_dir(rq) == WRITE,
						   fr->early_status);
			} else if (err || fr->abandon) {
				fr->abandon = false;
				nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
			}
			act = nswap_cmd_settle(dev, cmd);
		}
	}
	spin_unlock(&cmd->lock);
	nswap_do_action(rq, act);
}

/* ---- connection failure ---- */

static bool nswap_abandon_iter(struct request *rq, void *data)
{
	struct nswap_conn *conn = data;
	struct nswap_dev *dev = conn->srv->dev;
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	enum nswap_action act = NSWAP_ACT_NONE;
	unsigned int i;

	spin_lock(&cmd->lock);
	if (cmd->state == NSWAP_CMD_ACTIVE) {
		for (i = 0; i < cmd->nr_frames; i++)
			if (cmd->frames[i].state == NSWAP_FR_SENT &&
			    cmd->frames[i].conn == conn)
				nswap_frame_abandon(dev, cmd, &cmd->frames[i]);
		act = nswap_cmd_settle(dev, cmd);
	}
	spin_unlock(&cmd->lock);
	nswap_do_action(rq, act);
	return true;
}

/*
 * @conn went down (it is no longer UP, so nothing new gets queued on it):
 * reissue the frames that were queued or waiting for a reply on it.  These
 * reissues do not count as retries; the request's time budget bounds them.
 */
void nswap_dev_abandon_conn(struct nswap_conn *conn)
{
	blk_mq_tagset_busy_iter(&conn->srv->dev->tag_set, nswap_abandon_iter,
				conn);
}

/* ---- blk-mq ---- */

static blk_status_t nswap_cmd_init(struct nswap_dev *dev,
				   struct nswap_cmd *cmd, struct request *rq)
{
	u64 pos = blk_rq_pos(rq);
	struct req_iterator iter;
	struct bio_vec bv;
	unsigned int n = 0;

	if (pos % NSWAP_SECTORS_PER_PAGE || blk_rq_bytes(rq) % NSWAP_PAGE_SIZE)
		goto bad;
	rq_for_each_segment(bv, rq, iter) {
		struct nswap_frame *fr;

		if (n == NSWAP_MAX_FRAMES || bv.bv_len != NSWAP_PAGE_SIZE ||
		    bv.bv_offset)
			goto bad;
		fr = &cmd->frames[n];
		fr->page = bv.bv_page;
		fr->offset = bv.bv_offset;
		fr->slot = pos / NSWAP_SECTORS_PER_PAGE + n;
		fr->state = NSWAP_FR_TODO;
		fr->prev_valid = false;
		fr->stale_valid = false;
		n++;
	}
	if (!n || (u64)n * NSWAP_PAGE_SIZE != blk_rq_bytes(rq) ||
	    cmd->frames[n - 1].slot >= dev->map.nslots)
		goto bad;
	cmd->nr_frames = n;
	cmd->retries = 0;
	cmd->fatal = false;
	cmd->reached = false;
	cmd->status = BLK_STS_OK;
	cmd->first_issue = jiffies;
	cmd->first_gen = nswap_dev_gen_snapshot(dev);
	cmd->started = true;
	/*
	 * The frames now describe this request's pages and survive requeues:
	 * a requeued request must go straight back to the dispatch list, not
	 * to a software queue where a new bio could be merged into it.
	 */
	rq->rq_flags |= RQF_DONTPREP;
	return BLK_STS_OK;
bad:
	pr_err_ratelimited("%s: unsupported request layout (sector %llu, %u bytes)\n",
			   dev->disk->disk_name, pos, blk_rq_bytes(rq));
	return BLK_STS_IOERR;
}

/*
 * The server and connection the previous frame of one issue pass went to.
 * A request's pages go to one server over one connection (unless a frame
 * must avoid the server of its failed attempt): the tx thread then sends
 * them in one sendmsg, and a later readahead of these neighbouring slots
 * finds them in one place.  Spreading page by page over every server and
 * connection woke a tx thread per page and cost more packets and context
 * switches than it gained (lab, W1 x1 on the hdd profile: 3 servers took
 * 30.6 s against 13.5 s for 1 before, 17.2 s against 17.7 s after).
 */
struct nswap_issue_ctx {
	struct nswap_server *srv;
	struct nswap_conn *conn;
	unsigned int hwq;	/* hardware queue: the connection it prefers */
};

static struct nswap_server *nswap_issue_put_server(struct nswap_dev *dev,
						   struct nswap_issue_ctx *ctx,
						   struct nswap_frame *fr)
{
	int avoid = fr->prev_valid ? fr->prev_srv : -1;

	if (ctx->srv && (int)ctx->srv->index != avoid &&
	    atomic_read(&ctx->srv->nr_up) &&
	    !time_before(jiffies, READ_ONCE(ctx->srv->full_until)))
		return ctx->srv;
	return nswap_choose_put_server(dev, avoid, !dev->backing);
}

static struct nswap_conn *nswap_issue_conn(struct nswap_issue_ctx *ctx,
					   struct nswap_server *srv)
{
	/* acquire: pairs with nswap_conn_up(); rechecked on queueing */
	if (ctx->srv == srv && ctx->conn &&
	    smp_load_acquire(&ctx->conn->state) == NSWAP_CONN_UP)
		return ctx->conn;
	ctx->srv = srv;
	ctx->conn = nswap_server_pick_conn(srv, ctx->hwq);
	return ctx->conn;
}

static void nswap_issue_frame(struct nswap_dev *dev, struct nswap_cmd *cmd,
			      struct nswap_frame *fr, bool write,
			      struct nswap_issue_ctx *ctx)
{
	struct nswap_server *srv = NULL;
	struct nswap_conn *conn = NULL;
	bool local = false;
	u64 gen = 0;
	u32 crc = 0;
	u8 idx;

	if (fr->state == NSWAP_FR_DONE)
		return;
	if (write) {
		/* before a generation is allocated: see nswap_inval.c */
		nswap_inval_claim_freed(dev, fr->slot);
		srv = nswap_issue_put_server(dev, ctx, fr);
		if (srv)
			conn = nswap_issue_conn(ctx, srv);
		/* no server with room, or none reachable: the backing device */
		local = !conn && dev->backing;
	} else {
		u64 e = nswap_slotmap_get(&dev->map, fr->slot);

		if (nswap_se_lost(e)) {
			pr_err_ratelimited("%s: read of slot %llu: its last write reached no server, page lost\n",
					   dev->disk->disk_name, fr->slot);
			spin_lock(&cmd->lock);
			cmd->fatal = true;
			spin_unlock(&cmd->lock);
			return;
		}
		if (!nswap_se_live(e)) {
			/* never written (or freed): zeroes, no traffic */
			memzero_page(fr->page, fr->offset, NSWAP_PAGE_SIZE);
			spin_lock(&cmd->lock);
			nswap_frame_finish(dev, cmd, fr, NSWAP_FR_DONE);
			spin_unlock(&cmd->lock);
			return;
		}
		gen = nswap_se_gen(e);
		smp_rmb();	/* the CRC set after this word (nswap_commit_put) */
		crc = nswap_slotmap_crc(&dev->map, fr->slot);
		local = nswap_se_local(e) && dev->backing;
		srv = nswap_dev_server(dev, nswap_se_srv(e));
		if (!srv && !local) {
			spin_lock(&cmd->lock);
			cmd->fatal = true;
			spin_unlock(&cmd->lock);
			return;
		}
		if (srv)
			conn = nswap_issue_conn(ctx, srv);
	}
	idx = local ? NSWAP_SE_SRV_LOCAL : srv ? srv->index : 0;

	spin_lock(&cmd->lock);
	if (!conn && !local) {
		cmd->nowait = true;
		spin_unlock(&cmd->lock);
		return;
	}
	if (write) {
		gen = (u64)atomic64_inc_return(&dev->next_gen) &
		      NSWAP_SE_GEN_MASK;
		/*
		 * An unacknowledged earlier attempt on another server may have
		 * been stored there: drop it once this attempt is acknowledged
		 * (not before -- the map may still name that server).
		 */
		if (fr->prev_valid && fr->prev_srv != idx) {
			fr->stale_valid = true;
			fr->stale_srv = fr->prev_srv;
			fr->stale_gen = fr->prev_gen;
		}
	}
	fr->conn = local ? NULL : conn;
	fr->srv = idx;
	fr->gen = gen;
	if (!write)
		fr->crc = crc;
	fr->start_ns = ktime_get_ns();
	fr->state = NSWAP_FR_SENT;
	cmd->pending++;
	atomic_inc(&dev->inflight);
	if (local) {
		/* nswap_backing.c's work item does the I/O and settles it */
		fr->tx_busy = true;
		cmd->backing_todo = true;
		cmd->reached = true;
		if (write) {
			fr->prev_valid = true;
			fr->prev_srv = idx;
			fr->prev_gen = gen;
		}
	} else if (!nswap_conn_queue_frame(conn, fr)) {
		/* went down since we looked */
		nswap_frame_finish(dev, cmd, fr, NSWAP_FR_TODO);
		cmd->nowait = true;
		ctx->conn = NULL;
	} else {
		cmd->reached = true;
		if (write) {
			fr->prev_valid = true;
			fr->prev_srv = srv->index;
			fr->prev_gen = gen;
		}
	}
	spin_unlock(&cmd->lock);
}

static blk_status_t nswap_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct nswap_dev *dev = hctx->queue->queuedata;
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nswap_issue_ctx ctx = { .hwq = hctx->queue_num };
	enum nswap_action act;
	bool write;
	unsigned int i;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		blk_mq_start_request(rq);
		nswap_discard(dev, rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	case REQ_OP_FLUSH:
		/* no volatile cache: acknowledged writes are on a server */
		blk_mq_start_request(rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	default:
		return BLK_STS_NOTSUPP;
	}

	if (!cmd->started) {
		blk_status_t st = nswap_cmd_init(dev, cmd, rq);

		if (st) {
			nswap_stat_inc(dev, errors);
			return st;
		}
	}
	write = rq_data_dir(rq) == WRITE;

	spin_lock(&cmd->lock);
	cmd->state = NSWAP_CMD_ACTIVE;
	cmd->cookie = (u32)atomic_inc_return(&dev->cookie_seq) &
		      NSWAP_TAG_COOKIE_MASK;
	cmd->pending = 1;		/* held until every frame is issued */
	cmd->failed = false;
	cmd->nowait = false;
	cmd->overtaken = false;
	cmd->backing_todo = false;
	for (i = 0; i < cmd->nr_frames; i++) {
		cmd->frames[i].tx_busy = false;
		cmd->frames[i].abandon = false;
		cmd->frames[i].early = false;
	}
	spin_unlock(&cmd->lock);

	blk_mq_start_request(rq);
	for (i = 0; i < cmd->nr_frames; i++)
		nswap_issue_frame(dev, cmd, &cmd->frames[i], write, &ctx);

	spin_lock(&cmd->lock);
	if (cmd->backing_todo)
		queue_work(nswap_backing_wq, &cmd->backing_work);
	cmd->pending--;
	act = nswap_cmd_settle(dev, cmd);
	spin_unlock(&cmd->lock);
	nswap_do_action(rq, act);
	return BLK_STS_OK;
}

static void nswap_complete_rq(struct request *rq)
{
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nswap_dev *dev = rq->q->queuedata;

	/* state is DONE: nobody else touches the frames any more */
	cmd->started = false;
	if (cmd->status)
		nswap_stat_inc(dev, errors);
	blk_mq_end_request(rq, cmd->status);
}

/*
 * A connection that read a reply within the last timeout period is healthy:
 * the server answers, only this request's frame went missing (dropped by a
 * faulty peer, or stuck behind a slow page), so the request is retried and
 * the connection kept -- with every frame on it, which would otherwise all
 * be reissued.  One that read nothing is shut and reconnects.
 */
static bool nswap_conn_answering(struct nswap_conn *conn, unsigned long tmo)
{
	return time_after(READ_ONCE(conn->last_reply), jiffies - tmo);
}

static enum blk_eh_timer_return nswap_timeout(struct request *rq)
{
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nswap_dev *dev = rq->q->queuedata;
	struct nswap_conn *victims[NSWAP_MAX_FRAMES];
	unsigned int epochs[NSWAP_MAX_FRAMES];
	unsigned int timeout_ms = READ_ONCE(dev->timeout_ms);
	unsigned long tmo = msecs_to_jiffies(timeout_ms);
	enum nswap_action act;
	unsigned int i, j, nv = 0, nkill = 0;

	spin_lock(&cmd->lock);
	if (cmd->state != NSWAP_CMD_ACTIVE) {
		bool done = cmd->state == NSWAP_CMD_DONE;

		spin_unlock(&cmd->lock);
		return done ? BLK_EH_DONE : BLK_EH_RESET_TIMER;
	}
	for (i = 0; i < cmd->nr_frames; i++)
		if (cmd->frames[i].state == NSWAP_FR_SENT && cmd->frames[i].conn)
			break;
	if (i == cmd->nr_frames) {
		/* only the backing device is still working on it: a slow
		 * disk is no server's timeout, and its I/O cannot be cut short */
		spin_unlock(&cmd->lock);
		return BLK_EH_RESET_TIMER;
	}
	for (i = 0; i < cmd->nr_frames; i++) {
		struct nswap_frame *fr = &cmd->frames[i];

		if (fr->state != NSWAP_FR_SENT)
			continue;
		if (!fr->conn) {
			/* on the backing device: no connection to reset */
			nswap_frame_abandon(dev, cmd, fr);
			continue;
		}
		for (j = 0; j < nv && (victims[j] != fr->conn ||
				       epochs[j] != fr->conn_epoch); j++)
			;
		if (j == nv) {
			victims[nv] = fr->conn;
			epochs[nv++] = fr->conn_epoch;
		}
		nswap_frame_abandon(dev, cmd, fr);
	}
	cmd->failed = true;
	act = nswap_cmd_settle(dev, cmd);
	spin_unlock(&cmd->lock);
	nswap_stat_inc(dev, timeouts);

	/* a server that does not answer in time: reconnect to it (unless the
	 * connection has been re-established since the frame was queued) */
	for (j = 0; j < nv; j++) {
		if (nswap_conn_answering(victims[j], tmo))
			continue;
		nswap_conn_kill_epoch(victims[j], epochs[j]);
		nkill++;
	}
	pr_warn_ratelimited("%s: request at slot %llu (%u pages) timed out after %u ms; %u connection(s) reset, %u still answering kept\n",
			    dev->disk->disk_name, cmd->frames[0].slot,
			    cmd->nr_frames, timeout_ms, nkill, nv - nkill);

	if (act == NSWAP_ACT_NONE)
		return BLK_EH_RESET_TIMER;	/* a frame is still being sent */
	nswap_do_action(rq, act);
	return BLK_EH_DONE;
}

static int nswap_init_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx, unsigned int numa_node)
{
	struct nswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int i;

	spin_lock_init(&cmd->lock);
	INIT_WORK(&cmd->backing_work, nswap_backing_workfn);
	for (i = 0; i < NSWAP_MAX_FRAMES; i++) {
		cmd->frames[i].cmd = cmd;
		cmd->frames[i].idx = i;
		INIT_LIST_HEAD(&cmd->frames[i].txnode);
	}
	return 0;
}

static const struct blk_mq_ops nswap_mq_ops = {
	.queue_rq	= nswap_queue_rq,
	.complete	= nswap_complete_rq,
	.timeout	= nswap_timeout,
	.init_request	= nswap_init_request,
};

static const struct block_device_operations nswap_fops = {
	.owner		= THIS_MODULE,
	.open		= nswap_bdops_open,
	.release	= nswap_bdops_release,
	NSWAP_SLOT_FREE_NOTIFY
};

/* ---- power on/off (cfg_lock held) ---- */

int nswap_dev_power_on(struct nswap_dev *dev)
{
	static const struct nswap_limits lim = {
		.block_size		= NSWAP_PAGE_SIZE,
		.max_hw_sectors		= NSWAP_MAX_FRAMES *
					  NSWAP_SECTORS_PER_PAGE,
		.max_segments		= NSWAP_MAX_FRAMES,
		.max_segment_size	= NSWAP_PAGE_SIZE,
		.dma_alignment		= NSWAP_PAGE_SIZE - 1,
		.max_discard_sectors	= NSWAP_MAX_DISCARD_SECTORS,
		.discard_granularity	= NSWAP_PAGE_SIZE,
		.max_write_zeroes_sectors = NSWAP_MAX_DISCARD_SECTORS,
	};
	struct blk_mq_tag_set *set = &dev->tag_set;
	struct gendisk *disk;
	unsigned int i;
	int err;

	err = nswap_slotmap_init(&dev->map, dev->size / NSWAP_PAGE_SIZE);
	if (err) {
		pr_err("nswap%d: cannot allocate the slot map for %llu bytes\n",
		       dev->index, dev->size);
		return err;
	}
	err = nswap_inval_init(dev);
	if (err)
		goto err_map;
	err = nswap_backing_open(dev);
	if (err)
		goto err_inval;

	nswap_stats_reset(dev);
	atomic_set(&dev->inflight, 0);
	atomic64_set(&dev->next_gen, 0);
	dev->open_count = 0;
	dev->dying = false;

	memset(set, 0, sizeof(*set));
	set->ops = &nswap_mq_ops;
	set->nr_hw_queues = nswap_hw_queues ?:
			    min_t(unsigned int, num_online_cpus(),
				  NSWAP_DEFAULT_HW_QUEUES);
	set->queue_depth = nswap_queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct nswap_cmd);
	set->flags = NSWAP_MQ_F_MERGE | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	set->driver_data = dev;
	set->timeout = msecs_to_jiffies(dev->timeout_ms);
	err = blk_mq_alloc_tag_set(set);
	if (err)
		goto err_backing;

	disk = nswap_alloc_disk(set, dev, &lim);
	if (IS_ERR(disk)) {
		err = PTR_ERR(disk);
		goto err_tags;
	}
	disk->major = nswap_major;
	disk->first_minor = dev->index;
	disk->minors = 1;
	disk->fops = &nswap_fops;
	disk->private_data = dev;
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, DISK_NAME_LEN, "nswap%d", dev->index);
	set_capacity(disk, dev->size >> SECTOR_SHIFT);
	dev->disk = disk;

	/* connections first: powered is what the servers attribute shows */
	dev->powered = true;
	for (i = 0; i < dev->nr_servers; i++) {
		if (!dev->servers[i])
			continue;
		err = nswap_server_start(dev->servers[i]);
		if (err)
			goto err_servers;
	}

	err = device_add_disk(NULL, disk, nswap_disk_groups);
	if (err)
		goto err_servers;
	nswap_sweep_start(dev);

	pr_info("%s: %llu MiB, %u server slot(s), client_id 0x%016llx\n",
		disk->disk_name, dev->size >> 20, dev->nr_servers,
		dev->client_id);
	return 0;

err_servers:
	for (i = 0; i < dev->nr_servers; i++)
		if (dev->servers[i])
			nswap_server_stop(dev->servers[i], jiffies);
	dev->powered = false;
	put_disk(disk);
	dev->disk = NULL;
err_tags:
	blk_mq_free_tag_set(set);
err_backing:
	nswap_backing_close(dev);
err_inval:
	nswap_inval_free(dev);
err_map:
	nswap_slotmap_free(&dev->map);
	return err;
}

int nswap_dev_power_off(struct nswap_dev *dev)
{
	struct gendisk *disk = dev->disk;
	unsigned long deadline;
	unsigned int i;

	spin_lock(&dev->open_lock);
	if (dev->open_count) {
		spin_unlock(&dev->open_lock);
		pr_warn("%s: power: device is open (an active swap area?); run swapoff first\n",
			disk->disk_name);
		return -EBUSY;
	}
	dev->dying = true;
	spin_unlock(&dev->open_lock);

	del_gendisk(disk);		/* waits for in-flight requests */
	nswap_sweep_stop(dev);
	nswap_inval_stop(dev);
	/* a backing work item may still be returning from its last request */
	flush_workqueue(nswap_backing_wq);
	nswap_backing_close(dev);

	/*
	 * Tell the servers every page of ours is garbage, half-close, and give
	 * them NSWAP_CLOSE_WAIT_MS to execute it and close.
	 */
	for (i = 0; i < dev->nr_servers; i++) {
		struct nswap_server *srv = dev->servers[i];

		if (srv && srv->purged)
			nswap_server_send_invalidate(srv, 0, NSWAP_ALL_SLOTS,
						     U64_MAX,
						     NSWAP_INVAL_ANY_HOP, true);
	}
	for (i = 0; i < dev->nr_servers; i++)
		if (dev->servers[i])
			nswap_server_quiesce(dev->servers[i]);
	deadline = jiffies + msecs_to_jiffies(NSWAP_CLOSE_WAIT_MS);
	for (i = 0; i < dev->nr_servers; i++)
		if (dev->servers[i])
			nswap_server_stop(dev->servers[i], deadline);

	pr_info("%s: powered off\n", disk->disk_name);
	put_disk(disk);
	dev->disk = NULL;
	blk_mq_free_tag_set(&dev->tag_set);
	nswap_inval_free(dev);
	nswap_slotmap_free(&dev->map);
	dev->powered = false;
	return 0;
}

/* timeout_ms changed while powered on (cfg_lock held) */
void nswap_dev_set_timeout(struct nswap_dev *dev)
{
	if (dev->disk)
		blk_queue_rq_timeout(dev->disk->queue,
				     msecs_to_jiffies(dev->timeout_ms));
}
