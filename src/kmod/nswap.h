/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nswap: network swap block device -- shared definitions.
 *
 * Object model (one line each; details in docs/kmod.md):
 *   nswap_dev    one configfs item /sys/kernel/config/nswap/<name>; owns the
 *                gendisk /dev/nswapN while powered on, the slot map, the
 *                invalidate queue and the list of servers.
 *   nswap_server one memory server (address, port) of a device; owns
 *                connections_per_server connections.
 *   nswap_conn   one TCP connection with two kernel threads: the connection
 *                thread (connect, HELLO, receive replies, reconnect) and the
 *                transmit thread (sends queued request frames).
 *   nswap_cmd    blk-mq per-request data; a request of N pages is N frames.
 *   nswap_frame  one PUTPAGE/GETPAGE exchange for one 4 KiB page.
 */
#ifndef NSWAP_H
#define NSWAP_H

#include <linux/atomic.h>
#include <linux/bio.h>
#include <linux/bits.h>
#include <linux/blk-mq.h>
#include <linux/configfs.h>
#include <linux/kthread.h>
#include <linux/mutex.h>
#include <linux/ratelimit.h>
#include <linux/socket.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "nswap_proto.h"
#include "nswap_slotmap.h"

/* The one place the module version is defined (dkms.conf must match). */
#define NSWAP_VERSION		"0.1.0"

#define NSWAP_MAX_SERVERS	64	/* server index is 8 bits in the slot map */
#define NSWAP_REFUSED_PER_S	1024	/* INVALIDATEs per server for refused UPDATEs */

/* configfs placement: how a PUTPAGE's server is chosen (docs/placement.md) */
enum {
	NSWAP_PLACE_TWO_CHOICE,	/* by the hints, round robin without any */
	NSWAP_PLACE_ROUND_ROBIN,
};
#define NSWAP_BACKING_PATH_MAX	256	/* configfs backing: a block device path */
#define NSWAP_MAX_CONNS		16	/* per server */
/* A PUTPAGE reply claiming more is ignored: it keeps the placement rule's
 * products from wrapping (src/include/nswap_place.h; gossip has the same cap) */
#define NSWAP_REPLY_MAX_CAPACITY	(1ULL << 40)
#define NSWAP_MAX_FRAMES	32	/* pages per request (128 KiB) */
#define NSWAP_MAX_HW_QUEUES	256
/*
 * hw_queues=0: one per online CPU, at most this many.  Every queue
 * preallocates queue_depth commands of ~3.6 KiB (32 frames each): 16 queues
 * of 128 are ~7.4 MiB per device; one per CPU on a 256-CPU node would be
 * ~120 MiB.
 */
#define NSWAP_DEFAULT_HW_QUEUES	16
/*
 * Frames the tx thread hands to one sendmsg(): TCP then builds full-size
 * (TSO) segments instead of one skb -- and one virtio kick -- per frame.
 */
#define NSWAP_TX_BATCH		16
#define NSWAP_MAX_DEVICES	1024
#define NSWAP_SECTORS_PER_PAGE	(NSWAP_PAGE_SIZE >> SECTOR_SHIFT)
#define NSWAP_LAT_BUCKETS	24	/* log2(us) buckets, last one open-ended */
#ifndef NSWAP_INVAL_RING
#define NSWAP_INVAL_RING	4096	/* queued invalidates per device */
#endif
#define NSWAP_WAIT_CONN_MS	100	/* requeue delay while no connection is up */
#define NSWAP_CLOSE_WAIT_MS	2000	/* power off: wait for servers to close */
/* docs/protocol.md section 2: a client without its slot map drops [0, 2^32) */
#define NSWAP_ALL_SLOTS		BIT_ULL(32)

/* Module parameters (defaults for new devices), see nswap_main.c. */
extern unsigned int nswap_conns_per_server;
extern unsigned int nswap_timeout_ms;
extern unsigned int nswap_max_retries;
extern unsigned int nswap_queue_depth;
extern unsigned int nswap_hw_queues;
extern unsigned int nswap_connect_timeout_ms;
extern unsigned int nswap_reconnect_max_ms;
extern unsigned int nswap_reply_hint_ms;

extern struct workqueue_struct *nswap_wq;
extern struct workqueue_struct *nswap_backing_wq;
extern int nswap_major;

struct nswap_dev;
struct nswap_server;

/*
 * Per-device counters, exported under /sys/block/nswapN/nswap/.  One copy
 * per CPU, summed when read: a page costs no write to a cache line that
 * every CPU shares.  Only add with nswap_stat_add()/nswap_stat_inc().
 */
struct nswap_stats {
	u64 puts;			/* PUTPAGE acknowledged OK */
	u64 gets;			/* GETPAGE answered with a valid page */
	u64 invalidates;		/* INVALIDATE frames sent */
	u64 invalidates_dropped;	/* queue full or server unreachable */
	u64 bytes_out;			/* bytes written to sockets */
	u64 bytes_in;			/* bytes read from sockets */
	u64 errors;			/* requests completed with an error */
	u64 lost_pages;			/* writes no server took: slot LOST */
	u64 retries;			/* request re-issues after a failure */
	u64 reconnects;			/* connections re-established */
	u64 timeouts;			/* requests not answered in time */
	u64 wrong_pages;		/* GETPAGE pages not the ones written (CRC) */
	u64 migrations;			/* UPDATEs applied: a page moved */
	u64 updates_refused;		/* UPDATEs for a copy not current, or bad */
	u64 disk_writes;		/* pages written to the backing device */
	u64 disk_reads;			/* pages read from the backing device */
	u64 disk_errors;		/* backing device I/O errors (retried) */
	u64 sweeps;			/* dead-page sweeps done (whole slot map) */
	u64 sweep_invalidates;		/* their NSWAP_F_SWEEP INVALIDATE frames */
	u64 punts_home;			/* pages servers sent home, now on the disk */
	u64 punts_home_refused;		/* ... answered ENOSPC or ESTALE, or bad */
	u64 free_hints;			/* PUTPAGE replies that carried the room */
	u64 lat[NSWAP_LAT_BUCKETS];	/* PUT/GET round trips */
};

/* this_cpu ops: safe in any context, no lock, no shared atomic */
#define nswap_stat_add(dev, field, n)	this_cpu_add((dev)->stats->field, (n))
#define nswap_stat_inc(dev, field)	this_cpu_inc((dev)->stats->field)

enum nswap_conn_state {
	NSWAP_CONN_DOWN = 0,		/* connecting, handshaking or backing off */
	NSWAP_CONN_UP,			/* usable for requests */
};

/* An answer to a page a server sent home (nswap_home.c), waiting to go. */
struct nswap_home_answer {
	u64 tag;
	u64 slot;
	u64 gen;
	u8 hop;
	u16 status;
	unsigned int epoch;	/* conn->epoch of the socket the page came on */
};

#define NSWAP_HOME_ANSWERS	32	/* nswapd waits for at most 16 */

struct nswap_conn {
	struct nswap_server *srv;
	unsigned int idx;

	/* txq, queued flags of frames on it, and state transitions */
	spinlock_t txq_lock;
	struct list_head txq;
	int state;			/* enum nswap_conn_state */
	bool ever_up;
	bool stopping;			/* teardown: do not connect (sock_mutex) */

	struct mutex sock_mutex;	/* publishes/clears sock, shutdown */
	struct mutex tx_lock;		/* one sendmsg() at a time on the socket */
	struct socket *sock;
	/*
	 * Bumped with every socket published (under tx_lock and sock_mutex):
	 * a kill decided earlier names the epoch it saw, so that it cannot
	 * shut a connection re-established since (nswap_conn_kill_epoch).
	 */
	unsigned int epoch;
	/*
	 * jiffies of the last reply read (conn thread; set when the socket is
	 * published): a request that times out on a connection still
	 * answering others is retried without shutting the connection.
	 */
	unsigned long last_reply;

	struct task_struct *conn_thread;
	struct task_struct *tx_thread;
	wait_queue_head_t tx_wait;
	wait_queue_head_t backoff_wait;
	wait_queue_head_t state_wait;	/* woken when the connection goes down */

	void *rxbuf;			/* NSWAP_MAX_PAYLOAD bytes */

	/* tx thread only: the batch being sent, headers in their own page */
	struct page *txhdr_page;	/* NSWAP_TX_BATCH headers */
	struct nswap_frame *txframe[NSWAP_TX_BATCH];
	u32 txcookie[NSWAP_TX_BATCH];
	struct bio_vec txvec[2 * NSWAP_TX_BATCH];
	u8 version;			/* negotiated protocol version */
	u32 features;			/* negotiated features */

	/* answers to pages sent home: the receive thread adds, home_work
	 * sends them (nswap_home.c) */
	spinlock_t home_lock;
	struct nswap_home_answer home_ans[NSWAP_HOME_ANSWERS];
	unsigned int home_head, home_count;
	struct work_struct home_work;
};

struct nswap_server {
	struct nswap_dev *dev;
	unsigned int index;		/* in dev->servers[], kept in slot map */
	struct sockaddr_storage addr;
	int addrlen;
	char name[64];			/* "10.0.0.2:7405" or "[fd00::2]:7405" */

	unsigned int nconns;
	struct nswap_conn *conns;
	atomic_t rr;			/* connection round robin (invalidates) */
	atomic_t nr_up;

	struct mutex purge_lock;	/* serializes the first-contact purge */
	bool purged;			/* first-contact purge done */
	u64 capacity_pages;		/* from the HELLO reply */
	unsigned long full_until;	/* jiffies; ENOSPC back-off */
	/* Placement hints written by the node's nswapd from its gossip
	 * table ("hint" in configfs servers; cfg_lock for writers, read
	 * locklessly): pages the server lends and has free.  A hinted server
	 * with no free page gets no page while another has room. */
	bool hinted;
	u64 hint_capacity;
	u64 hint_free;
	/* The same from the server's latest PUTPAGE reply (rx threads,
	 * NSWAP_FEAT_FREE_HINT), placed by instead of the above while
	 * younger than reply_hint_ms: newer than any gossip figure */
	u64 reply_capacity;		/* at most NSWAP_REPLY_MAX_CAPACITY */
	u64 reply_free;
	unsigned long reply_at;		/* jiffies; 0: none yet */
	/* INVALIDATEs answering this server's refused UPDATEs (nswap_migrate.c):
	 * bounded, so a server that keeps sending stale ones cannot fill the
	 * device's invalidate ring */
	struct ratelimit_state refused_rs;
	atomic64_t pages;		/* slot map entries naming this server */
	bool sweep_wanted;		/* an INVALIDATE for it was dropped */
};

/* Invalidate queue entry: drop [slot, slot + count) where stored gen <= gen. */
struct nswap_inval {
	u64 slot;
	u64 gen;		/* generation sent on the wire */
	u64 dgen;		/* newest data generation covered (for merging) */
	u32 count;
	u8 srv;
	u8 hop;			/* NSWAP_F_HOP with this hop count, or ANY */
};

#define NSWAP_INVAL_ANY_HOP	0xff	/* no NSWAP_F_HOP: generations alone */
#define NSWAP_INVAL_SWEEP	0xfe	/* NSWAP_F_SWEEP: written copies only */

struct nswap_dev {
	struct config_item item;
	struct mutex cfg_lock;		/* configfs stores, power on/off */
	int index;			/* N of /dev/nswapN */

	/* configuration (cfg_lock) */
	u64 size;
	unsigned int conns_per_server;
	unsigned int timeout_ms;
	unsigned int max_retries;
	u64 client_id;
	bool powered;
	bool depended;			/* configfs dependency held while on */

	struct nswap_server *servers[NSWAP_MAX_SERVERS];
	unsigned int nr_servers;	/* highest used index + 1 */
	atomic_t rr;			/* server round robin for PUTPAGE */
	unsigned int placement;		/* NSWAP_PLACE_*; read locklessly */
	bool migration;			/* offer NSWAP_FEAT_MIGRATION (powered off) */
	/* disk fallback (nswap_backing.c): the block device a page goes to
	 * when no server has room or none is reachable; set while powered
	 * off, opened exclusively while powered on */
	char backing_path[NSWAP_BACKING_PATH_MAX];
	struct block_device *backing;
	void *backing_handle;
	struct bio_set backing_bs;	/* its own bios: see nswap_backing.c */
	atomic64_t disk_pages;		/* slot map entries on the backing device */
	/* pages sent home (nswap_home.c): writes of a page sent home hold it
	 * for writing, the backing device's writes for reading; it also
	 * covers opening and closing the backing device */
	struct rw_semaphore home_rwsem;
	struct page *home_page;		/* the page being written home */
	/* dead-page sweep (nswap_sweep.c): every sweep_interval_s, 0 = off */
	unsigned int sweep_interval_s;
	bool sweep_stop;
	u64 sweep_cursor;		/* work item only: where the walk goes on */
	unsigned long sweep_walks;	/* work item only: walks begun */
	DECLARE_BITMAP(sweep_servers, NSWAP_MAX_SERVERS);	/* in this walk */
	struct delayed_work sweep_work;

	/* open accounting: power off refuses while open */
	spinlock_t open_lock;
	unsigned int open_count;
	bool dying;

	/* block device (valid while powered) */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	struct nswap_slotmap map;
	atomic64_t next_gen;		/* last generation handed out */
	atomic_t cookie_seq;		/* attempt cookies for reply matching */

	/* invalidate batching, see nswap_inval.c */
	spinlock_t inval_lock;
	struct nswap_inval *inval_ring;
	struct nswap_inval *inval_work_buf;
	unsigned int inval_head, inval_count;
	bool inval_stop;
	bool inval_rescan;		/* FREED words wait in the slot map */
	struct delayed_work inval_work;

	struct nswap_stats __percpu *stats;
	atomic_t inflight;		/* frames sent or queued, not answered */
};

/* ---- per-request data ---- */

enum nswap_frame_state {
	NSWAP_FR_TODO = 0,	/* to be (re)sent by the next attempt */
	NSWAP_FR_SENT,		/* queued or on the wire; counted in pending */
	NSWAP_FR_DONE,		/* acknowledged */
};

struct nswap_cmd;

struct nswap_frame {
	struct nswap_cmd *cmd;
	struct list_head txnode;	/* on conn->txq while queued */
	struct page *page;
	unsigned int offset;
	u64 slot;
	u64 gen;			/* PUT: new generation; GET: expected */
	u32 crc;			/* PUT: of the page sent; GET: of the page written */
	u64 start_ns;
	struct nswap_conn *conn;	/* connection of the current attempt */
	unsigned int conn_epoch;	/* conn->epoch when it was queued */
	u8 idx;
	u8 state;
	u8 srv;				/* server index of the current attempt */
	bool queued;			/* on conn->txq (txq_lock) */
	bool tx_busy;			/* tx thread is sending it (cmd->lock) */
	bool abandon;			/* give up once the send returns */
	bool early;			/* reply arrived during the send */
	u16 early_status;		/* its status (GET: after the copy) */
	/* the last PUT attempt, until acknowledged */
	bool prev_valid;
	u8 prev_srv;
	u64 prev_gen;
	/* an unacknowledged attempt on another server, dropped after the ack */
	bool stale_valid;
	u8 stale_srv;
	u64 stale_gen;
};

enum nswap_cmd_state {
	NSWAP_CMD_IDLE = 0,	/* not owned by the driver (new or requeued) */
	NSWAP_CMD_ACTIVE,	/* an attempt is running */
	NSWAP_CMD_DONE,		/* completion decided */
};

struct nswap_cmd {
	spinlock_t lock;	/* everything below and the frames' state */
	u32 cookie;		/* 24-bit attempt cookie, part of every tag */
	u8 state;
	u8 nr_frames;
	u8 pending;		/* SENT frames (+1 while queue_rq issues,
				 * +1 while a GET's page is received) */
	u8 retries;
	bool started;		/* frames describe the current request */
	bool fatal;		/* unrecoverable (e.g. page lost on server) */
	bool failed;		/* this attempt had a retryable failure */
	bool nowait;		/* some frame found no connection */
	bool overtaken;		/* a GET found a newer copy on the server: a
				 * write of the slot is still being answered */
	bool reached;		/* some attempt queued a frame on a connection
				 * or the backing device (sticky for the
				 * request: see nswap_cmd_settle) */
	bool backing_todo;	/* frames wait for backing_work */
	struct work_struct backing_work;	/* backing device I/O */
	blk_status_t status;
	unsigned long first_issue;	/* jiffies */
	u64 first_gen;		/* generation counter when first issued */
	struct nswap_frame frames[NSWAP_MAX_FRAMES];
};

enum nswap_action {
	NSWAP_ACT_NONE = 0,
	NSWAP_ACT_COMPLETE,
	NSWAP_ACT_REQUEUE,
	NSWAP_ACT_REQUEUE_DELAYED,
};

/* Tag layout: bits 0..7 frame index, 8..39 blk-mq unique tag, 40..63 cookie */
#define NSWAP_TAG_COOKIE_MASK	0xffffffU
static inline u64 nswap_make_tag(u32 cookie, u32 unique_tag, u8 idx)
{
	return ((u64)(cookie & NSWAP_TAG_COOKIE_MASK) << 40) |
	       ((u64)unique_tag << 8) | idx;
}

/*
 * The pages counter of the holder @idx of a slot word names: a server's,
 * the backing device's (NSWAP_SE_SRV_LOCAL), or none (LOST, or a server
 * removed since).  Every slot map change that adds or drops a holder's
 * page goes through nswap_holder_add().
 */
/*
 * The server at index @idx (a slot word's, a frame's, an invalidate's), or
 * NULL: no such server (removed), or no server index at all (LOCAL, LOST).
 * Read locklessly: servers are published with smp_store_release().
 */
static inline struct nswap_server *nswap_dev_server(struct nswap_dev *dev,
						    u8 idx)
{
	return idx < NSWAP_MAX_SERVERS ? READ_ONCE(dev->servers[idx]) : NULL;
}

static inline atomic64_t *nswap_holder_pages(struct nswap_dev *dev, u8 idx)
{
	struct nswap_server *srv;

	if (idx == NSWAP_SE_SRV_LOCAL)
		return &dev->disk_pages;
	srv = nswap_dev_server(dev, idx);
	return srv ? &srv->pages : NULL;
}

static inline void nswap_holder_add(struct nswap_dev *dev, u8 idx, int n)
{
	atomic64_t *pages = nswap_holder_pages(dev, idx);

	if (pages)
		atomic64_add(n, pages);
}

/* nswap_main.c */
struct nswap_dev *nswap_dev_from_disk(struct gendisk *disk);
bool nswap_disk_is_ours(struct gendisk *disk);

/* nswap_dev.c: block device */
int nswap_dev_power_on(struct nswap_dev *dev);
int nswap_dev_power_off(struct nswap_dev *dev);
void nswap_dev_set_timeout(struct nswap_dev *dev);
int nswap_disk_open(struct gendisk *disk);
void nswap_disk_release(struct gendisk *disk);
void nswap_migrate_update(struct nswap_conn *conn, const struct nswap_hdr *hdr);

/* nswap_home.c: pages servers send home */
void nswap_home_receive(struct nswap_conn *conn, const struct nswap_hdr *hdr,
			const void *data);
void nswap_home_workfn(struct work_struct *work);
void nswap_dev_handle_reply(struct nswap_conn *conn,
			    const struct nswap_hdr *hdr, const void *payload,
			    bool payload_ok);
struct nswap_frame *nswap_rx_page_begin(struct nswap_conn *conn,
					const struct nswap_hdr *hdr);
void nswap_rx_page_end(struct nswap_conn *conn, struct nswap_frame *frame,
		       int err, bool crc_ok, u32 crc);
void nswap_dev_abandon_conn(struct nswap_conn *conn);
bool nswap_tx_frame_begin(struct nswap_conn *conn, struct nswap_frame *frame,
			  u32 cookie, struct nswap_hdr *hdr);
void nswap_tx_frame_end(struct nswap_conn *conn, struct nswap_frame *frame,
			u32 cookie, int err);
u64 nswap_dev_gen_snapshot(struct nswap_dev *dev);
void nswap_dev_backing_done(struct nswap_cmd *cmd, unsigned int first,
			    unsigned int end, u32 cookie, int err);

/* nswap_sweep.c: dead-page sweep */
void nswap_sweep_start(struct nswap_dev *dev);
void nswap_sweep_reschedule(struct nswap_dev *dev);
void nswap_sweep_stop(struct nswap_dev *dev);

/* nswap_backing.c: disk fallback */
int nswap_backing_open(struct nswap_dev *dev);
void nswap_backing_close(struct nswap_dev *dev);
void nswap_backing_workfn(struct work_struct *work);
int nswap_backing_io(struct nswap_dev *dev, u64 slot, struct page **pages,
		     const unsigned int *offsets, unsigned int nr, bool write);

/* nswap_conn.c: servers, connections, sockets */
int nswap_parse_addr(const char *s, struct sockaddr_storage *ss, int *len,
		     char *name, size_t namelen);
struct nswap_server *nswap_server_alloc(struct nswap_dev *dev,
					unsigned int index,
					const struct sockaddr_storage *ss,
					int addrlen, const char *name);
void nswap_server_free(struct nswap_server *srv);
int nswap_server_start(struct nswap_server *srv);
void nswap_server_quiesce(struct nswap_server *srv);
void nswap_server_stop(struct nswap_server *srv, unsigned long deadline);
const char *nswap_server_state(struct nswap_server *srv);
struct nswap_conn *nswap_server_pick_conn(struct nswap_server *srv,
					  unsigned int hint);
struct nswap_server *nswap_choose_put_server(struct nswap_dev *dev,
					     int avoid, bool fallback_any);
bool nswap_conn_queue_frame(struct nswap_conn *conn,
			    struct nswap_frame *frame);
void nswap_conn_dequeue_frame(struct nswap_conn *conn,
			      struct nswap_frame *frame);
void nswap_conn_kill(struct nswap_conn *conn);
void nswap_conn_kill_epoch(struct nswap_conn *conn, unsigned int epoch);
int nswap_conn_send(struct nswap_conn *conn, struct nswap_hdr *hdr,
		    const void *buf);
#define NSWAP_ANY_EPOCH	UINT_MAX
int nswap_conn_send_epoch(struct nswap_conn *conn, struct nswap_hdr *hdr,
			  const void *buf, unsigned int want);
int nswap_server_send_invalidate(struct nswap_server *srv, u64 slot,
				 u64 count, u64 gen, u8 hop, bool noreply);

/* nswap_wire.c: frame headers and checksums */
u32 nswap_crc32c(const void *buf, size_t len);
u32 nswap_crc32c_page(struct page *page, unsigned int offset);
void nswap_hdr_init(struct nswap_hdr *hdr, u8 version, u8 type, u16 flags,
		    u64 tag, u64 client_id, u64 slot, u64 gen, u32 len,
		    u32 crc);
void nswap_hdr_seal(struct nswap_hdr *hdr);
int nswap_hdr_check(const struct nswap_hdr *hdr);
int nswap_wire_selftest(void);
const char *nswap_status_name(unsigned int status);

/* nswap_inval.c: batched invalidates */
int nswap_inval_init(struct nswap_dev *dev);
void nswap_inval_stop(struct nswap_dev *dev);
void nswap_inval_free(struct nswap_dev *dev);
bool nswap_inval_queue(struct nswap_dev *dev, u8 srv, u64 slot, u32 count,
		       u64 gen, u64 dgen, u8 hop);
void nswap_inval_post(struct nswap_dev *dev, u8 srv, u64 slot, u32 count,
		      u64 gen, u64 dgen);
void nswap_inval_post_hop(struct nswap_dev *dev, u8 srv, u64 slot, u64 gen,
			  u8 hop);
void nswap_inval_claim_freed(struct nswap_dev *dev, u64 slot);
void nswap_inval_dropped(struct nswap_dev *dev, u8 idx, u64 count);
void nswap_swap_slot_free_notify(struct block_device *bdev,
				 unsigned long offset);

/* nswap_sysfs.c: counters */
extern const struct attribute_group *nswap_disk_groups[];
void nswap_stats_latency(struct nswap_dev *dev, u64 start_ns);
void nswap_stats_reset(struct nswap_dev *dev);

#endif /* NSWAP_H */
