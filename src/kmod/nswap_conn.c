// SPDX-License-Identifier: GPL-2.0-only
/*
 * nswap connections: kernel TCP sockets to memory servers.
 *
 * Every connection has two kernel threads:
 *   conn thread  creates the socket, connects, exchanges HELLO, purges the
 *                server's stale pages of this client on first contact, then
 *                receives replies until the connection fails; it then marks
 *                the connection down, has the device reissue the frames that
 *                were on it, and reconnects: at once after a connection
 *                that stayed up NSWAP_STABLE_MS, else (and after a failed
 *                connect) with exponential back-off.
 *   tx thread    sends the request frames queued on conn->txq.  Request
 *                submission never touches the socket: blk-mq ->queue_rq may
 *                run in a user task with a signal pending, and a signal in
 *                the middle of sendmsg() would tear a frame.
 *
 * The sockets are set up for swapping the way drivers/block/nbd.c does it:
 * sk_set_memalloc(), sk_allocation = GFP_NOIO | __GFP_MEMALLOC, no task
 * page frag, and memalloc_noreclaim_save() around every send/receive and
 * around connect, HELLO, purge and teardown of a connection, so that
 * swap-out does not recurse into reclaim and may use the reserves.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/inet.h>
#include <linux/net.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <linux/utsname.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "nswap.h"
#include "nswap_compat.h"
#include "nswap_place.h"

#define NSWAP_BACKOFF_MIN_MS	100
/* A connection up this long resets the reconnect back-off. */
#define NSWAP_STABLE_MS		1000
#define NSWAP_KEEPIDLE_S	10
#define NSWAP_KEEPINTVL_S	5
#define NSWAP_KEEPCNT		3
#define NSWAP_PURGE_TAG		1
#define NSWAP_MAX_SINGLES	4096	/* range split without range support */

/* ---- addresses ---- */

/**
 * nswap_parse_addr - parse "A.B.C.D:PORT" or "[V6]:PORT"
 * @s: NUL-terminated string without trailing whitespace
 * @ss: parsed address
 * @len: sockaddr length
 * @name: canonical "addr:port" text
 * @namelen: size of @name
 *
 * Return: 0 or -EINVAL.
 */
int nswap_parse_addr(const char *s, struct sockaddr_storage *ss, int *len,
		     char *name, size_t namelen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_str;
	const char *end;
	unsigned int port;
	size_t hlen;
	bool v6;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hlen = rb - (s + 1);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		port_str = rb + 2;
		v6 = true;
	} else {
		const char *colon = strchr(s, ':');

		if (!colon)
			return -EINVAL;
		hlen = colon - s;
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		port_str = colon + 1;
		v6 = false;
	}
	host[hlen] = '\0';

	if (kstrtouint(port_str, 10, &port) || !port || port > 65535)
		return -EINVAL;

	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (!in6_pton(host, -1, sin6->sin6_addr.s6_addr, -1, &end) ||
		    *end)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		snprintf(name, namelen, "[%pI6c]:%u", &sin6->sin6_addr, port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (!in4_pton(host, -1, (u8 *)&sin->sin_addr.s_addr, -1,
			      &end) || *end)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		snprintf(name, namelen, "%pI4:%u", &sin->sin_addr, port);
	}
	return 0;
}

/* ---- socket I/O ---- */

/* Send or receive all of @iter; never returns a short count. */
static int nswap_sock_xfer(struct socket *sock, bool send,
			   struct iov_iter *iter, int flags)
{
	struct msghdr msg = { };
	unsigned int noreclaim;
	int ret = 0;

	msg.msg_iter = *iter;
	noreclaim = memalloc_noreclaim_save();
	while (msg_data_left(&msg)) {
		sock->sk->sk_allocation = GFP_NOIO | __GFP_MEMALLOC;
		nswap_sk_no_task_frag(sock->sk);
		msg.msg_flags = flags | MSG_NOSIGNAL;
		if (send)
			ret = sock_sendmsg(sock, &msg);
		else
			ret = sock_recvmsg(sock, &msg, msg.msg_flags);
		if (ret <= 0) {
			if (!ret)
				ret = -EPIPE;	/* peer closed */
			break;
		}
		ret = 0;
	}
	memalloc_noreclaim_restore(noreclaim);
	return ret;
}

static int nswap_sock_recv(struct nswap_conn *conn, void *buf, size_t len)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct iov_iter it;
	int err;

	iov_iter_kvec(&it, ITER_DEST, &kv, 1, len);
	err = nswap_sock_xfer(conn->sock, false, &it, MSG_WAITALL);
	if (!err)
		nswap_stat_add(conn->srv->dev, bytes_in, len);
	return err;
}

static void nswap_bvec(struct bio_vec *bv, struct page *page,
		       unsigned int offset, unsigned int len)
{
	bv->bv_page = page;
	bv->bv_offset = offset;
	bv->bv_len = len;
}

/* One page of payload, straight into @page at @offset (a request's page). */
static int nswap_sock_recv_page(struct nswap_conn *conn, struct page *page,
				unsigned int offset)
{
	struct bio_vec bv;
	struct iov_iter it;
	int err;

	nswap_bvec(&bv, page, offset, NSWAP_PAGE_SIZE);
	iov_iter_bvec(&it, ITER_DEST, &bv, 1, NSWAP_PAGE_SIZE);
	err = nswap_sock_xfer(conn->sock, false, &it, MSG_WAITALL);
	if (!err)
		nswap_stat_add(conn->srv->dev, bytes_in, NSWAP_PAGE_SIZE);
	return err;
}

/*
 * A payload whose CRC-32C does not match: protocol.md section 9, close the
 * connection; its frames are reissued, on this server or another.
 */
static int nswap_rx_bad_payload(struct nswap_conn *conn)
{
	pr_warn_ratelimited("nswap%d: payload checksum error from %s, closing connection\n",
			    conn->srv->dev->index, conn->srv->name);
	return -EBADMSG;
}

/*
 * A GETPAGE reply with a page: into the request's page (one copy) when its
 * frame is this attempt's.  Return: 1 handled, 0 not (read it into rxbuf),
 * or an error that ends the connection.
 */
static int nswap_rx_get_page(struct nswap_conn *conn,
			     const struct nswap_hdr *hdr)
{
	struct nswap_frame *fr;
	bool ok = false;
	u32 crc = 0;
	int err;

	if (hdr->type != (NSWAP_GETPAGE | NSWAP_REPLY) ||
	    le16_to_cpu(hdr->status) != NSWAP_OK ||
	    le32_to_cpu(hdr->length) != NSWAP_PAGE_SIZE)
		return 0;
	fr = nswap_rx_page_begin(conn, hdr);
	if (!fr)
		return 0;
	err = nswap_sock_recv_page(conn, fr->page, fr->offset);
	if (!err) {
		crc = nswap_crc32c_page(fr->page, fr->offset);
		ok = crc == le32_to_cpu(hdr->crc);
	}
	nswap_rx_page_end(conn, fr, err, ok, crc);
	if (err)
		return err;
	if (!ok)
		return nswap_rx_bad_payload(conn);
	WRITE_ONCE(conn->last_reply, jiffies);
	return 1;
}

/* Header and payload (@buf, hdr->length bytes) with one sendmsg(). */
static int nswap_sock_send_frame(struct nswap_conn *conn,
				 struct nswap_hdr *hdr, const void *buf)
{
	u32 len = le32_to_cpu(hdr->length);
	struct kvec kv[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(*hdr) },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	struct iov_iter it;
	int err;

	iov_iter_kvec(&it, ITER_SOURCE, kv, len ? 2 : 1, sizeof(*hdr) + len);
	err = nswap_sock_xfer(conn->sock, true, &it, 0);
	if (!err)
		nswap_stat_add(conn->srv->dev, bytes_out, sizeof(*hdr) + len);
	return err;
}

/* Shut the socket down: wakes the conn thread and any blocked sender. */
void nswap_conn_kill(struct nswap_conn *conn)
{
	mutex_lock(&conn->sock_mutex);
	if (conn->sock)
		kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	mutex_unlock(&conn->sock_mutex);
}

/*
 * Shut the socket down if it is still the one of @epoch.  For kills decided
 * before the lock is taken (a request timeout, a failed send): by then the
 * connection may have gone down and come back with a new socket, which has
 * done nothing wrong.
 */
void nswap_conn_kill_epoch(struct nswap_conn *conn, unsigned int epoch)
{
	mutex_lock(&conn->sock_mutex);
	if (conn->sock && conn->epoch == epoch)
		kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	mutex_unlock(&conn->sock_mutex);
}

/**
 * nswap_conn_send - send one frame on an established connection
 * @conn: connection
 * @hdr: sealed header
 * @buf: payload of hdr->length bytes (or NULL)
 *
 * A failed send leaves the byte stream unusable, so the connection is
 * killed; the conn thread then reissues whatever was in flight on it.
 *
 * Return: 0, -ENOTCONN if the connection is not up, or a socket error.
 */
int nswap_conn_send(struct nswap_conn *conn, struct nswap_hdr *hdr,
		    const void *buf)
{
	return nswap_conn_send_epoch(conn, hdr, buf, NSWAP_ANY_EPOCH);
}

/* nswap_conn_send() on the socket of @want (a conn->epoch) only, or any. */
int nswap_conn_send_epoch(struct nswap_conn *conn, struct nswap_hdr *hdr,
			  const void *buf, unsigned int want)
{
	unsigned int epoch;
	int err;

	mutex_lock(&conn->tx_lock);
	epoch = conn->epoch;
	/* acquire: pairs with the release in nswap_conn_up(), handshake done */
	if (smp_load_acquire(&conn->state) != NSWAP_CONN_UP || !conn->sock ||
	    (want != NSWAP_ANY_EPOCH && want != epoch))
		err = -ENOTCONN;
	else
		err = nswap_sock_send_frame(conn, hdr, buf);
	mutex_unlock(&conn->tx_lock);
	if (err && err != -ENOTCONN)
		nswap_conn_kill_epoch(conn, epoch);
	return err;
}

/* ---- frame queue (caller holds the frame's cmd->lock) ---- */

bool nswap_conn_queue_frame(struct nswap_conn *conn,
			    struct nswap_frame *frame)
{
	bool ok = false, wake = false;

	spin_lock(&conn->txq_lock);
	if (conn->state == NSWAP_CONN_UP) {
		/* the tx thread sleeps only on an empty queue */
		wake = list_empty(&conn->txq);
		list_add_tail(&frame->txnode, &conn->txq);
		frame->queued = true;
		/* UP: the epoch of the socket published before UP, stable
		 * until DOWN, which needs txq_lock */
		frame->conn_epoch = READ_ONCE(conn->epoch);
		ok = true;
	}
	spin_unlock(&conn->txq_lock);
	if (wake)
		wake_up(&conn->tx_wait);
	return ok;
}

void nswap_conn_dequeue_frame(struct nswap_conn *conn,
			      struct nswap_frame *frame)
{
	spin_lock(&conn->txq_lock);
	if (frame->queued) {
		list_del_init(&frame->txnode);
		frame->queued = false;
	}
	spin_unlock(&conn->txq_lock);
}

static bool nswap_tx_ready(struct nswap_conn *conn)
{
	bool ready;

	spin_lock(&conn->txq_lock);
	ready = conn->state == NSWAP_CONN_UP && !list_empty(&conn->txq);
	spin_unlock(&conn->txq_lock);
	return ready;
}

/* Take up to NSWAP_TX_BATCH frames off the queue; return how many. */
static unsigned int nswap_tx_pop(struct nswap_conn *conn)
{
	unsigned int n = 0;

	spin_lock(&conn->txq_lock);
	while (conn->state == NSWAP_CONN_UP && n < NSWAP_TX_BATCH &&
	       !list_empty(&conn->txq)) {
		struct nswap_frame *frame;

		frame = list_first_entry(&conn->txq, struct nswap_frame,
					 txnode);
		list_del_init(&frame->txnode);
		frame->queued = false;
		conn->txframe[n] = frame;
		/* stable: a queued frame pins its attempt */
		conn->txcookie[n] = READ_ONCE(frame->cmd->cookie);
		n++;
	}
	spin_unlock(&conn->txq_lock);
	return n;
}

/*
 * Send up to NSWAP_TX_BATCH queued frames with one sendmsg(): header and
 * page of every frame as one bio_vec list.  A frame per sendmsg() makes TCP
 * emit at least one skb -- under virtio one device kick -- per 4 KiB page;
 * a batch fills full-size segments, and the server reads (and answers) the
 * batch at once.  Frames the device gave up on meanwhile are skipped.
 */
static void nswap_tx_batch(struct nswap_conn *conn, unsigned int n)
{
	struct nswap_hdr *hdrs = page_address(conn->txhdr_page);
	struct bio_vec *bv = conn->txvec;
	unsigned int i, nvec = 0;
	struct iov_iter it;
	unsigned int epoch;
	size_t len = 0;
	int err = 0;

	BUILD_BUG_ON(NSWAP_TX_BATCH * sizeof(*hdrs) > PAGE_SIZE);
	for (i = 0; i < n; i++) {
		struct nswap_frame *fr = conn->txframe[i];

		if (!nswap_tx_frame_begin(conn, fr, conn->txcookie[i],
					  &hdrs[i])) {
			conn->txframe[i] = NULL;
			continue;
		}
		nswap_bvec(&bv[nvec++], conn->txhdr_page,
			   offset_in_page(&hdrs[i]), sizeof(hdrs[i]));
		len += sizeof(hdrs[i]);
		if (le32_to_cpu(hdrs[i].length)) {
			nswap_bvec(&bv[nvec++], fr->page, fr->offset,
				   NSWAP_PAGE_SIZE);
			len += NSWAP_PAGE_SIZE;
		}
	}
	if (!nvec)
		return;

	mutex_lock(&conn->tx_lock);
	epoch = conn->epoch;
	/* acquire: pairs with the release in nswap_conn_up(), handshake done */
	if (smp_load_acquire(&conn->state) != NSWAP_CONN_UP || !conn->sock) {
		err = -ENOTCONN;
	} else {
		iov_iter_bvec(&it, ITER_SOURCE, bv, nvec, len);
		err = nswap_sock_xfer(conn->sock, true, &it, 0);
		if (!err)
			nswap_stat_add(conn->srv->dev, bytes_out, len);
	}
	mutex_unlock(&conn->tx_lock);
	/* a failed send leaves the byte stream unusable */
	if (err && err != -ENOTCONN)
		nswap_conn_kill_epoch(conn, epoch);

	for (i = 0; i < n; i++)
		if (conn->txframe[i])
			nswap_tx_frame_end(conn, conn->txframe[i],
					   conn->txcookie[i], err);
}

static int nswap_tx_thread(void *data)
{
	struct nswap_conn *conn = data;

	while (!kthread_should_stop()) {
		unsigned int n;

		wait_event_interruptible(conn->tx_wait,
					 kthread_should_stop() ||
					 nswap_tx_ready(conn));
		n = nswap_tx_pop(conn);
		if (n)
			nswap_tx_batch(conn, n);
	}
	return 0;
}

/* ---- connection set-up ---- */

static void nswap_sock_setup(struct socket *sock)
{
	struct sock *sk = sock->sk;

	sk_set_memalloc(sk);
	sk->sk_allocation = GFP_NOIO | __GFP_MEMALLOC;
	nswap_sk_no_task_frag(sk);
	tcp_sock_set_nodelay(sk);
	sock_set_keepalive(sk);
	tcp_sock_set_keepidle(sk, NSWAP_KEEPIDLE_S);
	tcp_sock_set_keepintvl(sk, NSWAP_KEEPINTVL_S);
	tcp_sock_set_keepcnt(sk, NSWAP_KEEPCNT);
}

/* Receive one reply header (+ payload into rxbuf) during the handshake. */
static int nswap_recv_reply(struct nswap_conn *conn, struct nswap_hdr *hdr,
			    u8 type, u64 tag)
{
	u32 len;
	int err;

	err = nswap_sock_recv(conn, hdr, sizeof(*hdr));
	if (err)
		return err;
	if (nswap_hdr_check(hdr))
		return -EPROTO;
	len = le32_to_cpu(hdr->length);
	if (len) {
		err = nswap_sock_recv(conn, conn->rxbuf, len);
		if (err)
			return err;
		if (nswap_crc32c(conn->rxbuf, len) != le32_to_cpu(hdr->crc))
			return -EBADMSG;
	}
	if (hdr->type != (type | NSWAP_REPLY) || le64_to_cpu(hdr->tag) != tag)
		return -EPROTO;
	return 0;
}

static int nswap_conn_hello(struct nswap_conn *conn)
{
	struct nswap_server *srv = conn->srv;
	struct nswap_dev *dev = srv->dev;
	struct nswap_hello hello = { };
	struct nswap_hello *rep;
	struct nswap_hdr hdr;
	unsigned int status, ver;
	/* migration only when asked: an UPDATE moves a page on the word of
	 * the server that sends it, which nothing authenticates yet; pages
	 * sent home only with a disk for them */
	u32 offer = NSWAP_FEAT_RANGE_INVALIDATE | NSWAP_FEAT_SWEEP |
		    (dev->migration ? NSWAP_FEAT_MIGRATION : 0) |
		    (dev->backing ? NSWAP_FEAT_PUNTHOME : 0) |
		    (nswap_reply_hint_ms ? NSWAP_FEAT_FREE_HINT : 0);
	int err;

	hello.min_version = cpu_to_le16(NSWAP_PROTO_MIN_VERSION);
	hello.max_version = cpu_to_le16(NSWAP_PROTO_VERSION);
	hello.features = cpu_to_le32(offer);
	strscpy(hello.name, init_utsname()->nodename, sizeof(hello.name));
	nswap_hdr_init(&hdr, NSWAP_PROTO_VERSION, NSWAP_HELLO, 0, 0,
		       dev->client_id, 0, 0, sizeof(hello),
		       nswap_crc32c(&hello, sizeof(hello)));
	err = nswap_sock_send_frame(conn, &hdr, &hello);
	if (err)
		return err;
	err = nswap_recv_reply(conn, &hdr, NSWAP_HELLO, 0);
	if (err)
		return err;
	status = le16_to_cpu(hdr.status);
	if (status) {
		pr_err("nswap%d: server %s refused HELLO: %s\n", dev->index,
		       srv->name, nswap_status_name(status));
		return -ECONNREFUSED;
	}
	if (le32_to_cpu(hdr.length) < sizeof(*rep))
		return -EPROTO;
	rep = conn->rxbuf;
	ver = le16_to_cpu(rep->min_version);
	if (ver != le16_to_cpu(rep->max_version) ||
	    ver < NSWAP_PROTO_MIN_VERSION || ver > NSWAP_PROTO_VERSION) {
		pr_err("nswap%d: server %s chose unsupported protocol version %u\n",
		       dev->index, srv->name, ver);
		return -EPROTO;
	}
	conn->version = ver;
	conn->features = le32_to_cpu(rep->features) & offer;
	WRITE_ONCE(srv->capacity_pages, le64_to_cpu(rep->capacity_pages));
	return 0;
}

/*
 * On the first connection to a server after power on, drop every page the
 * server holds for this client_id (generation "any"): an earlier incarnation
 * with the same client_id may have left pages with generations newer than
 * this incarnation's, which would make its PUTPAGEs ESTALE.  The server is
 * not used for PUTPAGE until this has been acknowledged.
 */
static int nswap_server_purge(struct nswap_conn *conn)
{
	struct nswap_server *srv = conn->srv;
	struct nswap_dev *dev = srv->dev;
	struct nswap_hdr hdr;
	__le64 count;
	unsigned int status;
	int err = 0;

	/* acquire: pairs with the release below */
	if (smp_load_acquire(&srv->purged))
		return 0;
	mutex_lock(&srv->purge_lock);
	if (srv->purged)
		goto out;
	if (!(conn->features & NSWAP_FEAT_RANGE_INVALIDATE)) {
		/*
		 * Without the purge, pages an earlier incarnation left there
		 * may carry newer generations than ours: PUTs would be refused
		 * ESTALE, and reads could not tell them apart.  Not used.
		 */
		pr_warn_ratelimited("nswap%d: server %s lacks range invalidation (protocol feature 0x%x), so stale pages of client 0x%016llx cannot be purged: not using it; upgrade its nswapd\n",
				    dev->index, srv->name,
				    NSWAP_FEAT_RANGE_INVALIDATE, dev->client_id);
		err = -EPROTONOSUPPORT;
		goto out;
	}
	count = cpu_to_le64(NSWAP_ALL_SLOTS);
	nswap_hdr_init(&hdr, conn->version, NSWAP_INVALIDATE, NSWAP_F_RANGE,
		       NSWAP_PURGE_TAG, dev->client_id, 0, U64_MAX,
		       sizeof(count), nswap_crc32c(&count, sizeof(count)));
	err = nswap_sock_send_frame(conn, &hdr, &count);
	if (!err)
		err = nswap_recv_reply(conn, &hdr, NSWAP_INVALIDATE,
				       NSWAP_PURGE_TAG);
	if (err)
		goto out;
	nswap_stat_inc(dev, invalidates);
	status = le16_to_cpu(hdr.status);
	if (status != NSWAP_OK && status != NSWAP_ENOENT) {
		pr_err("nswap%d: server %s refused the purge of client 0x%016llx: %s\n",
		       dev->index, srv->name, dev->client_id,
		       nswap_status_name(status));
		err = -EREMOTEIO;
		goto out;
	}
	/* release: PUTPAGEs to this server only after the purge reply */
	smp_store_release(&srv->purged, true);
out:
	mutex_unlock(&srv->purge_lock);
	return err;
}

/* Undo sk_set_memalloc() (it counts in a static key) and free. */
static void nswap_sock_free(struct socket *sock)
{
	lock_sock(sock->sk);
	sk_clear_memalloc(sock->sk);
	release_sock(sock->sk);
	sock_release(sock);
}

static void nswap_conn_release_sock(struct nswap_conn *conn)
{
	struct socket *sock;

	nswap_conn_kill(conn);		/* unblocks a sender holding tx_lock */
	mutex_lock(&conn->tx_lock);
	mutex_lock(&conn->sock_mutex);
	sock = conn->sock;
	conn->sock = NULL;
	mutex_unlock(&conn->sock_mutex);
	mutex_unlock(&conn->tx_lock);
	if (sock)
		nswap_sock_free(sock);
}

static int nswap_conn_establish(struct nswap_conn *conn)
{
	struct nswap_server *srv = conn->srv;
	struct socket *sock;
	bool stopping;
	int err;

	err = sock_create_kern(&init_net, srv->addr.ss_family, SOCK_STREAM,
			       IPPROTO_TCP, &sock);
	if (err)
		return err;
	nswap_sock_setup(sock);
	sock->sk->sk_sndtimeo = msecs_to_jiffies(nswap_connect_timeout_ms);
	sock->sk->sk_rcvtimeo = msecs_to_jiffies(nswap_connect_timeout_ms);

	/* publish first, so that teardown can shut it down mid-connect */
	mutex_lock(&conn->tx_lock);
	mutex_lock(&conn->sock_mutex);
	stopping = conn->stopping;
	if (!stopping) {
		conn->sock = sock;
		WRITE_ONCE(conn->epoch, conn->epoch + 1);
	}
	mutex_unlock(&conn->sock_mutex);
	mutex_unlock(&conn->tx_lock);
	if (stopping) {
		nswap_sock_free(sock);
		return -ESHUTDOWN;
	}

	err = kernel_connect(sock, (struct sockaddr *)&srv->addr, srv->addrlen,
			     0);
	if (!err)
		err = nswap_conn_hello(conn);
	if (!err)
		err = nswap_server_purge(conn);
	if (err)
		return err;
	/* bound unacknowledged data; keepalive covers the idle case */
	tcp_sock_set_user_timeout(sock->sk, READ_ONCE(srv->dev->timeout_ms));
	sock->sk->sk_sndtimeo = MAX_SCHEDULE_TIMEOUT;
	sock->sk->sk_rcvtimeo = MAX_SCHEDULE_TIMEOUT;
	return 0;
}

static void nswap_conn_up(struct nswap_conn *conn)
{
	struct nswap_server *srv = conn->srv;
	struct nswap_dev *dev = srv->dev;

	spin_lock(&conn->txq_lock);
	/* release: sock, version and features are set before UP is seen */
	WRITE_ONCE(conn->last_reply, jiffies);
	smp_store_release(&conn->state, NSWAP_CONN_UP);
	spin_unlock(&conn->txq_lock);
	atomic_inc(&srv->nr_up);
	if (conn->ever_up)
		nswap_stat_inc(dev, reconnects);
	conn->ever_up = true;
	pr_info("nswap%d: connected to %s (connection %u, protocol %u)\n",
		dev->index, srv->name, conn->idx, conn->version);
	wake_up(&conn->tx_wait);
}

static void nswap_conn_down(struct nswap_conn *conn, int err)
{
	struct nswap_server *srv = conn->srv;

	spin_lock(&conn->txq_lock);
	/* release: pairs with the lockless acquire in pick_conn */
	smp_store_release(&conn->state, NSWAP_CONN_DOWN);
	spin_unlock(&conn->txq_lock);
	atomic_dec(&srv->nr_up);
	if (!conn->stopping)
		pr_warn("nswap%d: lost connection %u to %s (%d), reconnecting\n",
			srv->dev->index, conn->idx, srv->name, err);
	nswap_conn_release_sock(conn);
	/* nothing can be queued now; reissue what was on this connection */
	nswap_dev_abandon_conn(conn);
	wake_up(&conn->state_wait);
}

/*
 * A PUTPAGE reply's room (NSWAP_FEAT_FREE_HINT, protocol.md 5.2), from the
 * rx thread.  Lockless: several connections' threads may write at once, and
 * a reader may pair one reply's free with another's capacity; both are
 * hints, and nswap_hint_cand() keeps free <= capacity.  An unauthenticated
 * server can lie here as it can in gossip (issue: authentication).
 */
static void nswap_note_put_reply(struct nswap_conn *conn,
				 const struct nswap_hdr *hdr, const void *buf, u32 len)
{
	const struct nswap_put_reply *rep = buf;
	struct nswap_server *srv = conn->srv;
	unsigned int status = le16_to_cpu(hdr->status);

	if (len != sizeof(*rep) || !(conn->features & NSWAP_FEAT_FREE_HINT) ||
	    (status != NSWAP_OK && status != NSWAP_ENOSPC) ||
	    le64_to_cpu(rep->capacity_pages) > NSWAP_REPLY_MAX_CAPACITY)
		return;
	WRITE_ONCE(srv->reply_free, le64_to_cpu(rep->free_pages));
	WRITE_ONCE(srv->reply_capacity, le64_to_cpu(rep->capacity_pages));
	/* release: a reader that sees this time sees the figures above */
	smp_store_release(&srv->reply_at, jiffies | 1);	/* never 0 ("none") */
	nswap_stat_inc(srv->dev, free_hints);
}

/* Read replies until the connection fails. */
static int nswap_conn_rx_loop(struct nswap_conn *conn)
{
	struct nswap_dev *dev = conn->srv->dev;
	struct nswap_hdr hdr;
	int err;

	for (;;) {
		bool ok = true;
		u32 len;

		err = nswap_sock_recv(conn, &hdr, sizeof(hdr));
		if (err)
			return err;
		if (nswap_hdr_check(&hdr)) {
			pr_err_ratelimited("nswap%d: bad reply header from %s, closing connection\n",
					   dev->index, conn->srv->name);
			return -EPROTO;
		}
		err = nswap_rx_get_page(conn, &hdr);
		if (err < 0)
			return err;
		if (err)
			continue;
		len = le32_to_cpu(hdr.length);
		if (len) {
			err = nswap_sock_recv(conn, conn->rxbuf, len);
			if (err)
				return err;
			ok = nswap_crc32c(conn->rxbuf, len) ==
			     le32_to_cpu(hdr.crc);
		}
		if (ok)
			WRITE_ONCE(conn->last_reply, jiffies);
		switch (hdr.type) {
		case NSWAP_PUTPAGE | NSWAP_REPLY:
			if (ok)
				nswap_note_put_reply(conn, &hdr, conn->rxbuf, len);
			fallthrough;
		case NSWAP_GETPAGE | NSWAP_REPLY:
			nswap_dev_handle_reply(conn, &hdr, conn->rxbuf, ok);
			break;
		case NSWAP_INVALIDATE | NSWAP_REPLY:
		case NSWAP_STATUS | NSWAP_REPLY:
			break;
		case NSWAP_UPDATE:
			if (ok)
				nswap_migrate_update(conn, &hdr);
			break;
		case NSWAP_PUNTPAGE:
			/* a page sent home (no room on any server) */
			if (ok)
				nswap_home_receive(conn, &hdr, conn->rxbuf);
			break;
		default:
			/* ignore what we do not know */
			pr_debug("nswap%d: ignoring frame type 0x%02x from %s\n",
				 dev->index, hdr.type, conn->srv->name);
			break;
		}
		if (!ok)
			return nswap_rx_bad_payload(conn);
	}
}

static int nswap_conn_thread(void *data)
{
	struct nswap_conn *conn = data;
	struct nswap_server *srv = conn->srv;
	unsigned int backoff = NSWAP_BACKOFF_MIN_MS;
	unsigned long up_at;
	bool logged = false;
	int err;

	while (!kthread_should_stop()) {
		unsigned int noreclaim;

		/*
		 * Socket creation, connect, HELLO and purge allocate.  Reclaim
		 * from here could write to this device, whose requests may all
		 * be waiting for this very connection: sleeping on a tag then
		 * stalls them until their retry budget ends and they are
		 * marked lost.  No reclaim, reserves allowed, as sunrpc does
		 * around its swap transport's connect (xs_tcp_setup_socket).
		 */
		noreclaim = memalloc_noreclaim_save();
		err = nswap_conn_establish(conn);
		if (err)
			nswap_conn_release_sock(conn);
		memalloc_noreclaim_restore(noreclaim);
		if (err) {
			if (!logged && !conn->stopping) {
				pr_warn("nswap%d: cannot connect to %s (connection %u): %d; retrying\n",
					srv->dev->index, srv->name, conn->idx,
					err);
				logged = true;
			}
			wait_event_interruptible_timeout(conn->backoff_wait,
							 kthread_should_stop(),
							 msecs_to_jiffies(backoff));
			backoff = min(backoff * 2, nswap_reconnect_max_ms);
			continue;
		}
		logged = false;
		up_at = jiffies;
		nswap_conn_up(conn);
		err = nswap_conn_rx_loop(conn);
		noreclaim = memalloc_noreclaim_save();	/* as for the connect */
		nswap_conn_down(conn, err);
		memalloc_noreclaim_restore(noreclaim);
		/*
		 * A connection that stayed up reconnects at once.  One that
		 * went down within NSWAP_STABLE_MS (a server that accepts and
		 * then drops us, or kills in a row) keeps backing off, so a
		 * flapping server costs a reconnect per back-off, not a loop.
		 */
		if (time_before(jiffies, up_at +
				msecs_to_jiffies(NSWAP_STABLE_MS))) {
			wait_event_interruptible_timeout(conn->backoff_wait,
							 kthread_should_stop(),
							 msecs_to_jiffies(backoff));
			backoff = min(backoff * 2, nswap_reconnect_max_ms);
		} else {
			backoff = NSWAP_BACKOFF_MIN_MS;
		}
	}
	return 0;
}

/* ---- servers ---- */

struct nswap_server *nswap_server_alloc(struct nswap_dev *dev,
					unsigned int index,
					const struct sockaddr_storage *ss,
					int addrlen, const char *name)
{
	struct nswap_server *srv;

	srv = kzalloc(sizeof(*srv), GFP_KERNEL);
	if (!srv)
		return NULL;
	srv->dev = dev;
	srv->index = index;
	srv->addr = *ss;
	srv->addrlen = addrlen;
	strscpy(srv->name, name, sizeof(srv->name));
	mutex_init(&srv->purge_lock);
	ratelimit_state_init(&srv->refused_rs, HZ, NSWAP_REFUSED_PER_S);
	/* no "callbacks suppressed" lines: the drops are counted instead */
	ratelimit_set_flags(&srv->refused_rs, RATELIMIT_MSG_ON_RELEASE);
	return srv;
}

/* The server is stopped (or was never started). */
void nswap_server_free(struct nswap_server *srv)
{
	if (!srv)
		return;
	WARN_ON_ONCE(srv->conns);
	kfree(srv);
}

static void nswap_server_free_conns(struct nswap_server *srv)
{
	unsigned int i;

	if (!srv->conns)
		return;
	for (i = 0; i < srv->nconns; i++) {
		kfree(srv->conns[i].rxbuf);
		if (srv->conns[i].txhdr_page)
			__free_page(srv->conns[i].txhdr_page);
	}
	kfree(srv->conns);
	srv->conns = NULL;
	srv->nconns = 0;
}

static int nswap_server_alloc_conns(struct nswap_server *srv,
				    unsigned int n)
{
	unsigned int i;

	srv->conns = kcalloc(n, sizeof(*srv->conns), GFP_KERNEL);
	if (!srv->conns)
		return -ENOMEM;
	srv->nconns = n;
	for (i = 0; i < n; i++) {
		struct nswap_conn *conn = &srv->conns[i];

		conn->srv = srv;
		conn->idx = i;
		conn->state = NSWAP_CONN_DOWN;
		spin_lock_init(&conn->txq_lock);
		INIT_LIST_HEAD(&conn->txq);
		mutex_init(&conn->sock_mutex);
		mutex_init(&conn->tx_lock);
		init_waitqueue_head(&conn->tx_wait);
		init_waitqueue_head(&conn->backoff_wait);
		init_waitqueue_head(&conn->state_wait);
		spin_lock_init(&conn->home_lock);
		INIT_WORK(&conn->home_work, nswap_home_workfn);
		conn->rxbuf = kmalloc(NSWAP_MAX_PAYLOAD, GFP_KERNEL);
		conn->txhdr_page = alloc_page(GFP_KERNEL);
		if (!conn->rxbuf || !conn->txhdr_page) {
			nswap_server_free_conns(srv);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Stop a connection.  Before @deadline (jiffies), wait for a connection
 * that nswap_server_quiesce() half-closed to be closed by the server, which
 * does so once it has executed everything sent on it.
 */
static void nswap_conn_stop(struct nswap_conn *conn, unsigned long deadline)
{
	long left = (long)(deadline - jiffies);

	if (left > 0)
		wait_event_timeout(conn->state_wait,
				   READ_ONCE(conn->state) != NSWAP_CONN_UP,
				   left);
	mutex_lock(&conn->sock_mutex);
	conn->stopping = true;
	if (conn->sock)
		kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	mutex_unlock(&conn->sock_mutex);
	if (conn->conn_thread) {
		kthread_stop(conn->conn_thread);
		conn->conn_thread = NULL;
	}
	if (conn->tx_thread) {
		kthread_stop(conn->tx_thread);
		conn->tx_thread = NULL;
	}
	/* the receive thread is gone: no answer is queued any more */
	cancel_work_sync(&conn->home_work);
	/* abandon_conn emptied the queue when the connection went down */
	WARN_ON_ONCE(!list_empty(&conn->txq));
}

/*
 * Start the connections of a server: the device is powered on (or being
 * powered on) and cfg_lock is held.  The connection array is built here,
 * with the device's connections_per_server, and freed by nswap_server_stop.
 */
int nswap_server_start(struct nswap_server *srv)
{
	int id = srv->dev->index;
	unsigned int i;

	if (nswap_server_alloc_conns(srv, srv->dev->conns_per_server))
		return -ENOMEM;
	srv->purged = false;
	srv->full_until = jiffies;
	atomic64_set(&srv->pages, 0);
	atomic_set(&srv->nr_up, 0);
	for (i = 0; i < srv->nconns; i++) {
		struct nswap_conn *conn = &srv->conns[i];
		struct task_struct *t;

		t = kthread_run(nswap_tx_thread, conn, "nswap%d-t%u.%u", id,
				srv->index, i);
		if (IS_ERR(t))
			goto err;
		conn->tx_thread = t;
		t = kthread_run(nswap_conn_thread, conn, "nswap%d-c%u.%u", id,
				srv->index, i);
		if (IS_ERR(t))
			goto err;
		conn->conn_thread = t;
	}
	return 0;
err:
	pr_err("nswap%d: cannot start threads for server %s\n", id,
	       srv->name);
	nswap_server_stop(srv, jiffies);
	return -ENOMEM;
}

/*
 * Power off, step 1: half-close every connection (shutdown SHUT_WR).  The
 * server executes what it received -- the final purge included -- and then
 * closes (docs/protocol.md section 4.5).  No new connection is made.
 */
void nswap_server_quiesce(struct nswap_server *srv)
{
	unsigned int i;

	for (i = 0; i < srv->nconns; i++) {
		struct nswap_conn *conn = &srv->conns[i];

		mutex_lock(&conn->sock_mutex);
		conn->stopping = true;
		/* acquire: pairs with nswap_conn_up(); handshake is over */
		if (conn->sock && smp_load_acquire(&conn->state) ==
				  NSWAP_CONN_UP)
			kernel_sock_shutdown(conn->sock, SHUT_WR);
		mutex_unlock(&conn->sock_mutex);
	}
}

/*
 * Stop all connections and free them; no request may still use them.
 * Waits until @deadline for quiesced connections to be closed by the server.
 */
void nswap_server_stop(struct nswap_server *srv, unsigned long deadline)
{
	unsigned int i;

	for (i = 0; i < srv->nconns; i++)
		nswap_conn_stop(&srv->conns[i], deadline);
	nswap_server_free_conns(srv);
}

const char *nswap_server_state(struct nswap_server *srv)
{
	if (!srv->dev->powered)
		return "idle";
	if (atomic_read(&srv->nr_up) > 0)
		return "up";
	return "connecting";
}

struct nswap_conn *nswap_server_pick_conn(struct nswap_server *srv,
					  unsigned int hint)
{
	unsigned int k;

	for (k = 0; k < srv->nconns; k++) {
		struct nswap_conn *conn = &srv->conns[(hint + k) % srv->nconns];

		/* acquire: pairs with nswap_conn_up(); rechecked on queueing */
		if (smp_load_acquire(&conn->state) == NSWAP_CONN_UP)
			return conn;
	}
	return NULL;
}

/*
 * A server that may take a PUTPAGE now, connected and purged, in pass
 * @pass of nswap_choose_put_server(): 0 not @avoid and not recently full,
 * 1 not recently full, 2 any.
 */
static bool nswap_put_eligible(struct nswap_server *srv, int avoid,
			       unsigned int pass)
{
	/* acquire: pairs with the release in server_purge */
	if (!srv || !smp_load_acquire(&srv->purged) || !atomic_read(&srv->nr_up))
		return false;
	if (pass == 2)
		return true;
	return (pass == 1 || (int)srv->index != avoid) &&
	       !time_before(jiffies, READ_ONCE(srv->full_until));
}

static struct nswap_place_cand nswap_hint_cand(struct nswap_server *srv)
{
	unsigned long at = smp_load_acquire(&srv->reply_at);
	bool fresh = at && time_before(jiffies, at + msecs_to_jiffies(nswap_reply_hint_ms));
	struct nswap_place_cand c = {
		.capacity = fresh ? READ_ONCE(srv->reply_capacity) : READ_ONCE(srv->hint_capacity),
		.free = fresh ? READ_ONCE(srv->reply_free) : READ_ONCE(srv->hint_free),
	};

	/* expired: forgotten, so that jiffies wrapping round (32-bit) cannot
	 * make it look fresh again */
	if (at && !fresh)
		cmpxchg(&srv->reply_at, at, 0);
	/* the two are written one after the other: keep free <= capacity */
	c.free = min(c.free, c.capacity);
	return c;
}

/*
 * Two choices weighted by free space (src/include/nswap_place.h) over the
 * eligible servers that nswapd gave hints for, walking the table twice
 * instead of copying it (no 1 KiB array on a reclaim stack).  NULL when no
 * hinted server has room, or when the table changed between the walks.
 * The figures may drop between the walks (each PUTPAGE reply rewrites its
 * server's, nswap_note_put_reply): when one draw falls past the end the
 * other one's server is taken; when both do, NULL (round robin).
 */
static struct nswap_server *nswap_choose_two(struct nswap_dev *dev,
					     unsigned int n, int avoid)
{
	struct nswap_server *pick[2] = { NULL, NULL };
	struct nswap_place_cand c[2];
	u64 total = 0, point[2];
	unsigned int k, j;

	for (k = 0; k < n; k++) {
		struct nswap_server *srv = READ_ONCE(dev->servers[k]);

		if (nswap_put_eligible(srv, avoid, 0) && READ_ONCE(srv->hinted))
			total = nswap_place_add(total, nswap_hint_cand(srv).free);
	}
	if (!total)
		return NULL;
	point[0] = nswap_place_point(total, get_random_u32());
	point[1] = nswap_place_point(total, get_random_u32());
	for (k = 0; k < n && (!pick[0] || !pick[1]); k++) {
		struct nswap_server *srv = READ_ONCE(dev->servers[k]);
		u64 free;

		if (!nswap_put_eligible(srv, avoid, 0) || !READ_ONCE(srv->hinted))
			continue;
		free = nswap_hint_cand(srv).free;
		for (j = 0; j < 2; j++) {
			if (pick[j])
				continue;
			if (point[j] < free)
				pick[j] = srv;
			else
				point[j] -= free;
		}
	}
	if (!pick[0] || !pick[1])
		pick[0] = pick[1] = pick[0] ? pick[0] : pick[1];
	if (!pick[0])
		return NULL;
	c[0] = nswap_hint_cand(pick[0]);
	c[1] = nswap_hint_cand(pick[1]);
	return nswap_place_less_full(&c[1], &c[0]) ? pick[1] : pick[0];
}

/**
 * nswap_choose_put_server - pick the server for a PUTPAGE
 * @dev: device
 * @avoid: server index to avoid if possible (failed attempt), or -1
 * @fallback_any: when no server qualifies, take any connected one (there is
 *	no backing device to take the page instead)
 *
 * With placement two-choice and hints from the node's nswapd (its gossip
 * table), the two-choice rule of docs/placement.md among the hinted
 * servers with room.  Otherwise, and when that finds none, round robin
 * over the servers that are connected, purged, not recently full and not
 * known (hinted) to be full, first without @avoid, then with it (a failed
 * attempt other than ENOSPC does not send the page to disk while its server
 * has room); then, with @fallback_any, over any connected server, which
 * answers ENOSPC if it is full (the request is retried within its budget).
 *
 * Return: a server with at least one connection up, or NULL.
 */
struct nswap_server *nswap_choose_put_server(struct nswap_dev *dev,
					     int avoid, bool fallback_any)
{
	unsigned int n = READ_ONCE(dev->nr_servers);
	unsigned int start, pass, k;
	struct nswap_server *srv;

	if (READ_ONCE(dev->placement) == NSWAP_PLACE_TWO_CHOICE) {
		srv = nswap_choose_two(dev, n, avoid);
		if (srv)
			return srv;
	}
	start = atomic_inc_return(&dev->rr);
	for (pass = 0; pass < (fallback_any ? 3 : 2); pass++) {
		for (k = 0; k < n; k++) {
			srv = READ_ONCE(dev->servers[(start + k) % n]);
			if (!nswap_put_eligible(srv, avoid, pass))
				continue;
			if (pass < 2 && READ_ONCE(srv->hinted) &&
			    !nswap_hint_cand(srv).free)
				continue;
			return srv;
		}
	}
	return NULL;
}

/* NSWAP_F_HOP's hop count in a sealed header (nothing for ANY). */
static void nswap_hdr_set_hop(struct nswap_hdr *hdr, u8 hop)
{
	if (hop == NSWAP_INVAL_ANY_HOP)
		return;
	hdr->hop_count = hop;
	nswap_hdr_seal(hdr);
}

/**
 * nswap_server_send_invalidate - send a no-reply or fire-and-check INVALIDATE
 * @srv: server
 * @slot: first slot
 * @count: number of slots
 * @gen: drop pages whose stored generation is <= @gen (U64_MAX: any)
 * @hop: NSWAP_INVAL_ANY_HOP, or only pages (@gen, @hop) or older: sent with
 *	NSWAP_F_HOP where the connection negotiated migration, else as a plain
 *	generation compare; or NSWAP_INVAL_SWEEP: NSWAP_F_SWEEP, only where the
 *	connection negotiated it (-EOPNOTSUPP otherwise)
 * @noreply: set NSWAP_F_NOREPLY
 *
 * Ranges need NSWAP_FEAT_RANGE_INVALIDATE; without it a range of up to
 * NSWAP_MAX_SINGLES slots goes out as single-slot frames, a longer one is
 * not sent at all.
 *
 * Return: 0 or a negative errno (nothing connected, send failure, range
 * too long for single frames).
 */
int nswap_server_send_invalidate(struct nswap_server *srv, u64 slot,
				 u64 count, u64 gen, u8 hop, bool noreply)
{
	struct nswap_dev *dev = srv->dev;
	u16 flags = noreply ? NSWAP_F_NOREPLY : 0;
	struct nswap_conn *conn;
	struct nswap_hdr hdr;
	__le64 lecount;
	u64 i;
	int err;

	conn = nswap_server_pick_conn(srv, atomic_inc_return(&srv->rr));
	if (!conn)
		return -ENOTCONN;
	if (hop == NSWAP_INVAL_SWEEP) {
		if (!(conn->features & NSWAP_FEAT_SWEEP))
			return -EOPNOTSUPP;
		flags |= NSWAP_F_SWEEP;
		hop = NSWAP_INVAL_ANY_HOP;
	} else if (hop == NSWAP_INVAL_ANY_HOP ||
		   !(conn->features & NSWAP_FEAT_MIGRATION)) {
		hop = NSWAP_INVAL_ANY_HOP;
	} else {
		flags |= NSWAP_F_HOP;
	}
	if (count > 1 && (conn->features & NSWAP_FEAT_RANGE_INVALIDATE)) {
		lecount = cpu_to_le64(count);
		nswap_hdr_init(&hdr, conn->version, NSWAP_INVALIDATE,
			       flags | NSWAP_F_RANGE, 0, dev->client_id, slot,
			       gen, sizeof(lecount),
			       nswap_crc32c(&lecount, sizeof(lecount)));
		nswap_hdr_set_hop(&hdr, hop);
		err = nswap_conn_send(conn, &hdr, &lecount);
		if (!err)
			nswap_stat_inc(dev, invalidates);
		return err;
	}
	if (count > NSWAP_MAX_SINGLES)
		return -E2BIG;
	for (i = 0; i < count; i++) {
		nswap_hdr_init(&hdr, conn->version, NSWAP_INVALIDATE, flags, 0,
			       dev->client_id, slot + i, gen, 0, 0);
		nswap_hdr_set_hop(&hdr, hop);
		err = nswap_conn_send(conn, &hdr, NULL);
		if (err)
			return err;
		nswap_stat_inc(dev, invalidates);
	}
	return 0;
}
