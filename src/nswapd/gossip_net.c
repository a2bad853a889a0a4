/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* UDP, timer, node id and table file around the gossip module; see gossip_net.h. */
#include "gossip_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define RECV_BUF	65536	/* any UDP datagram: the gossip module judges the size */
#define RECV_BATCH	64	/* datagrams per wake, so accepts and signals are not starved */
#define MACHINE_ID	"/etc/machine-id"

static void ipv4_str(uint32_t addr, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(addr) };

	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* ---- node id ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001B3ULL;
	}
	return h;
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return x;
}

/* A hash of the machine id (else the host name), a label, and the announced
 * address and port; never 0.  Not a secret and not a MAC: it only has to
 * differ between nodes and stay the same across restarts. */
static uint64_t derive_node_id(uint32_t addr, uint16_t port, const char **source)
{
	char host[256], buf[128];
	unsigned char ap[6];
	uint64_t h = 0xCBF29CE484222325ULL;
	ssize_t len = -1;
	int fd = open(MACHINE_ID, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		len = read(fd, buf, sizeof(buf));
		close(fd);
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	h = fnv1a(h, "nswap node id", sizeof("nswap node id"));
	if (len > 0) {
		h = fnv1a(h, buf, (size_t)len);
		*source = MACHINE_ID;
	} else {
		if (gethostname(host, sizeof(host) - 1) != 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		h = fnv1a(h, host, strlen(host));
		*source = "the host name (" MACHINE_ID " is missing or empty)";
	}
	ap[0] = (unsigned char)(addr >> 24);
	ap[1] = (unsigned char)(addr >> 16);
	ap[2] = (unsigned char)(addr >> 8);
	ap[3] = (unsigned char)addr;
	ap[4] = (unsigned char)(port >> 8);
	ap[5] = (unsigned char)port;
	h = mix64(fnv1a(h, ap, sizeof(ap)));
	return h ? h : 1;
}

/* ---- sending ---- */

static void send_to(struct gossip_net *n, const struct gossip_out *o, uint32_t addr,
		    uint16_t port)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	char a[INET_ADDRSTRLEN];

	to.sin_addr.s_addr = htonl(addr);
	to.sin_port = htons(port);
	if (sendto(n->fd, o->buf, o->len, MSG_DONTWAIT, (struct sockaddr *)&to,
		   sizeof(to)) == (ssize_t)o->len)
		return;
	n->send_errors++;
	ipv4_str(addr, a, sizeof(a));
	/* Rate limited: a member's address is what peers told us. */
	log_peer(L_WARN, "gossip: sending to %s:%u: %s", a, port, strerror(errno));
}

/* ---- the table file ---- */

static unsigned int count_state(const struct gossip *g, unsigned int state)
{
	unsigned int c = 0;

	for (uint32_t i = 0; i < g->count; i++)
		c += g->members[i].state == state;
	return c;
}

static void json_entry(FILE *f, const struct gossip_member *m, int64_t heard_ago)
{
	char a[INET_ADDRSTRLEN];

	ipv4_str(m->addr, a, sizeof(a));
	fprintf(f, "{\"id\": \"0x%016llx\", \"address\": \"%s\", \"port\": %u, "
		"\"state\": \"%s\", \"incarnation\": %u, \"heartbeat\": %u, "
		"\"capacity\": %llu, \"free\": %llu, \"load\": %u",
		(unsigned long long)m->id, a, m->port, gossip_state_name(m->state),
		m->incarnation, m->heartbeat, (unsigned long long)m->capacity,
		(unsigned long long)m->free, m->load);
	if (heard_ago >= 0)
		fprintf(f, ", \"heard_ms_ago\": %lld", (long long)heard_ago);
	fputc('}', f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static int write_table(struct gossip_net *n, FILE *f, uint64_t now)
{
	const struct gossip *g = &n->g;
	const struct gossip_stats *st = &g->stats;
	uint32_t listed = g->count < GOSSIP_TABLE_FILE_MAX ? g->count : GOSSIP_TABLE_FILE_MAX;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	fprintf(f, "{\n\"version\": 1,\n\"pid\": %ld,\n\"name\": ", (long)getpid());
	json_string(f, n->name);
	fprintf(f, ",\n\"written_unix_ms\": %lld,\n\"gossip_port\": %u,\n"
		"\"interval_ms\": %u,\n\"self\": ",
		(long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, n->udp_port, g->cfg.interval_ms);
	json_entry(f, &g->self, -1);
	fprintf(f, ",\n\"members_total\": %u,\n\"members_listed\": %u,\n"
		"\"alive\": %u,\n\"suspect\": %u,\n\"dead\": %u,\n\"left\": %u,\n\"members\": [",
		g->count, listed, count_state(g, NSWAP_MEMBER_ALIVE),
		count_state(g, NSWAP_MEMBER_SUSPECT), count_state(g, NSWAP_MEMBER_DEAD),
		count_state(g, NSWAP_MEMBER_LEFT));
	for (uint32_t i = 0; i < listed; i++) {
		const struct gossip_member *m = &g->members[i];

		fputs(i ? ",\n  " : "\n  ", f);
		json_entry(f, m, now > m->heard_ms ? (int64_t)(now - m->heard_ms) : 0);
	}
	fprintf(f, "\n],\n\"stats\": {\"rounds\": %llu, \"sent_datagrams\": %llu, "
		"\"sent_bytes\": %llu, \"recv_datagrams\": %llu, \"recv_bytes\": %llu, "
		"\"rejected\": %llu, \"outside_subnet\": %llu, \"send_errors\": %llu, "
		"\"joins\": %llu, \"suspected\": %llu, \"declared_dead\": %llu, "
		"\"refuted\": %llu, \"expired\": %llu}\n}\n",
		(unsigned long long)st->rounds, (unsigned long long)st->sent_datagrams,
		(unsigned long long)st->sent_bytes, (unsigned long long)st->recv_datagrams,
		(unsigned long long)st->recv_bytes, (unsigned long long)st->rejected,
		(unsigned long long)n->outside_subnet, (unsigned long long)n->send_errors,
		(unsigned long long)st->joins, (unsigned long long)st->suspected,
		(unsigned long long)st->declared_dead, (unsigned long long)st->refuted,
		(unsigned long long)st->expired);
	return ferror(f) ? -1 : 0;
}

/* Written to PATH.tmp and renamed over PATH: a reader sees the previous
 * table or this one, never half of one.  No fsync: it is runtime state
 * (/run), rewritten every round. */
static void table_file(struct gossip_net *n)
{
	const char *what = "open";
	FILE *f;
	int err = 0;

	if (!n->table_file[0])
		return;
	f = fopen(n->table_tmp, "we");
	if (f) {
		what = "write";
		errno = 0;
		/* umask 077 made it 0600; the table is no secret (it is on the wire) */
		if (fchmod(fileno(f), 0644) != 0 || write_table(n, f, (uint64_t)now_ms()) != 0)
			err = errno ? errno : EIO;
		if (fclose(f) != 0 && !err)
			err = errno;
		if (!err) {
			what = "rename";
			if (rename(n->table_tmp, n->table_file) != 0)
				err = errno;
		}
		if (err)
			unlink(n->table_tmp);
	} else {
		err = errno;
	}
	if (err && !n->table_failing)
		log_msg(L_WARN, "gossip: cannot %s table file %s: %s (logged once until it works)",
			what, what[0] == 'r' ? n->table_file : n->table_tmp, strerror(err));
	else if (!err && n->table_failing)
		log_msg(L_INFO, "gossip: table file %s written again", n->table_file);
	n->table_failing = err != 0;
}

/* ---- setup ---- */

int gossip_net_init(struct gossip_net *n, const struct config *cfg, uint16_t tcp_port, int epfd)
{
	struct gossip_config gc;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct itimerspec its = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	char a[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN], extra[CONFIG_PATH_MAX + 96];
	const char *err, *id_source = NULL;
	uint64_t id = cfg->node_id, now = (uint64_t)now_ms();
	unsigned int nseeds = 0;
	struct siphash_key seed;

	memset(n, 0, sizeof(*n));
	n->fd = n->tfd = -1;
	n->epfd = epfd;
	n->sock_src.kind = EV_GOSSIP;
	n->timer_src.kind = EV_GOSSIP_TIMER;
	n->udp_port = cfg->gossip_port;
	n->has_subnet = cfg->gossip_has_subnet;
	n->net = cfg->gossip_net;
	n->mask = cfg->gossip_mask;
	snprintf(n->name, sizeof(n->name), "%s", cfg->name);
	snprintf(n->table_file, sizeof(n->table_file), "%s", cfg->gossip_table_file);
	snprintf(n->table_tmp, sizeof(n->table_tmp), "%s.tmp", cfg->gossip_table_file);
	ipv4_str(cfg->gossip_address, a, sizeof(a));

	config_gossip(cfg, &gc);
	err = gossip_config_check(&gc);
	if (err) {	/* config_set() checked each key; this cannot happen */
		log_msg(L_ERR, "gossip: %s", err);
		return -1;
	}
	if (!id)
		id = derive_node_id(cfg->gossip_address, tcp_port, &id_source);
	/* the seed of whom to tell and of the member index's hash key: random,
	 * or a peer that guessed it (the node id is public) could choose ids
	 * that collide in the index */
	if (siphash_key_random(&seed) != 0) {
		log_msg(L_ERR, "gossip: no random seed: %s", strerror(errno));
		return -1;
	}
	n->out = calloc(GOSSIP_MAX_FANOUT + 1, sizeof(*n->out));
	n->rbuf = malloc(RECV_BUF);
	if (!n->out || !n->rbuf ||
	    gossip_init(&n->g, &gc, id, cfg->gossip_address, tcp_port, (uint32_t)time(NULL),
			seed.k[0] | 1, now) != 0) {
		log_msg(L_ERR, "gossip: out of memory");
		return -1;
	}
	for (unsigned int i = 0; i < cfg->gossip_nseeds; i++) {
		if (cfg->gossip_seeds[i] == cfg->gossip_address)
			continue;	/* one seed list for every node includes this one */
		gossip_add_seed(&n->g, cfg->gossip_seeds[i]);
		nseeds++;
	}

	sa.sin_addr.s_addr = htonl(cfg->gossip_address);
	sa.sin_port = htons(cfg->gossip_port);
	n->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->fd < 0 || bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		log_msg(L_ERR, "gossip: cannot bind UDP %s:%u: %s%s", a, cfg->gossip_port,
			strerror(e), e == EADDRNOTAVAIL ?
			" (gossip_address must be an address of this host)" : "");
		return -1;
	}
	/* The first round at once (seeds hear of us now), then every interval. */
	its.it_value.tv_nsec = 1;
	its.it_interval.tv_sec = gc.interval_ms / 1000;
	its.it_interval.tv_nsec = (long)(gc.interval_ms % 1000) * 1000000L;
	n->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.data.ptr = &n->sock_src;
	if (n->tfd < 0 || timerfd_settime(n->tfd, 0, &its, NULL) != 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, n->fd, &ev) != 0) {
		log_msg(L_ERR, "gossip: timer setup: %s", strerror(errno));
		return -1;
	}
	ev.data.ptr = &n->timer_src;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, n->tfd, &ev) != 0) {
		log_msg(L_ERR, "gossip: timer setup: %s", strerror(errno));
		return -1;
	}
	extra[0] = '\0';
	if (n->has_subnet) {
		unsigned int bits = 0;

		for (uint32_t m = n->mask; m; m <<= 1)
			bits++;
		ipv4_str(n->net, net, sizeof(net));
		snprintf(extra, sizeof(extra), ", subnet %s/%u", net, bits);
	}
	if (n->table_file[0])
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", table file %s",
			 n->table_file);
	log_msg(L_INFO, "gossip: node 0x%016llx announces %s:%u, UDP %s:%u, interval %u ms, "
		"fanout %u, %u seeds, incarnation %u%s", (unsigned long long)id, a, tcp_port,
		a, cfg->gossip_port, gc.interval_ms, gc.fanout, nseeds, n->g.self.incarnation,
		extra);
	if (id_source)
		log_msg(L_INFO, "gossip: node_id derived from %s and %s:%u", id_source, a, tcp_port);
	if (nseeds < cfg->gossip_nseeds)
		log_msg(L_INFO, "gossip: seed %s is this node's own address; skipped", a);
	if (!nseeds)
		log_msg(L_INFO, "gossip: no seeds: waiting for another node to contact this one");
	return 0;
}

/* ---- events ---- */

void gossip_net_timer(struct gossip_net *n, uint64_t capacity, uint64_t free_pages,
		      uint32_t load)
{
	uint64_t expirations;
	unsigned int count;

	/* Rounds missed while the thread was busy are not made up: one now. */
	if (n->tfd < 0 || read(n->tfd, &expirations, sizeof(expirations)) != sizeof(expirations) || n->left)
		return;
	gossip_set_self(&n->g, capacity, free_pages, load);
	count = gossip_round(&n->g, (uint64_t)now_ms(), n->out, GOSSIP_MAX_FANOUT + 1);
	for (unsigned int i = 0; i < count; i++)
		send_to(n, &n->out[i], n->out[i].addr, n->out[i].port);
	table_file(n);
}

void gossip_net_readable(struct gossip_net *n)
{
	/* n->fd < 0: closed by gossip_net_leave() earlier in this event batch */
	for (int i = 0; i < RECV_BATCH && n->fd >= 0; i++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		char peer[32], a[INET_ADDRSTRLEN];
		const char *why;
		uint32_t addr;
		ssize_t len;
		int r;

		len = recvfrom(n->fd, n->rbuf, RECV_BUF, MSG_DONTWAIT, (struct sockaddr *)&from,
			       &flen);
		if (len < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_peer(L_WARN, "gossip: recvfrom: %s", strerror(errno));
			return;
		}
		if (flen < sizeof(from) || from.sin_family != AF_INET)
			continue;
		addr = ntohl(from.sin_addr.s_addr);
		ipv4_str(addr, a, sizeof(a));
		snprintf(peer, sizeof(peer), "%s:%u", a, ntohs(from.sin_port));
		if (n->has_subnet && (addr & n->mask) != n->net) {
			n->outside_subnet++;
			log_peer(L_WARN, "%s: gossip: source outside gossip_subnet; datagram dropped",
				 peer);
			continue;
		}
		r = gossip_receive(&n->g, (uint64_t)now_ms(), addr, n->rbuf, (size_t)len,
				   &n->reply, &why);
		if (r < 0)
			log_peer(L_WARN, "%s: gossip: %s; datagram dropped", peer,
				 why ? why : "malformed");
		else if (r > 0)
			send_to(n, &n->reply, addr, ntohs(from.sin_port));
	}
}

void gossip_net_leave(struct gossip_net *n)
{
	unsigned int count;

	if (n->left)
		return;
	n->left = 1;
	count = gossip_leave(&n->g, (uint64_t)now_ms(), n->out, GOSSIP_MAX_FANOUT + 1);
	for (unsigned int i = 0; i < count; i++)
		send_to(n, &n->out[i], n->out[i].addr, n->out[i].port);
	log_msg(L_INFO, "gossip: leaving: told %u members", count);
	table_file(n);
	/* No more rounds and no more answers (a node that left answers none):
	 * the datagrams above are already on their way. */
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->tfd, NULL);
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->fd, NULL);
	close(n->tfd);
	close(n->fd);
	n->tfd = n->fd = -1;
}

void gossip_net_log_table(const struct gossip_net *n)
{
	const struct gossip *g = &n->g;
	const struct gossip_member *m = &g->self;
	const struct gossip_stats *st = &g->stats;
	uint64_t now = (uint64_t)now_ms();
	uint32_t listed = g->count < GOSSIP_LOG_MAX ? g->count : GOSSIP_LOG_MAX;
	char a[INET_ADDRSTRLEN];

	ipv4_str(m->addr, a, sizeof(a));
	log_msg(L_INFO, "gossip: self 0x%016llx %s:%u %s incarnation %u heartbeat %u "
		"capacity %llu free %llu load %u; %u members (%u alive, %u suspect, %u dead, "
		"%u left); rounds %llu sent %llu received %llu rejected %llu outside_subnet %llu "
		"send_errors %llu joins %llu suspected %llu declared_dead %llu refuted %llu "
		"expired %llu", (unsigned long long)m->id, a, m->port,
		gossip_state_name(m->state), m->incarnation, m->heartbeat,
		(unsigned long long)m->capacity, (unsigned long long)m->free, m->load, g->count,
		count_state(g, NSWAP_MEMBER_ALIVE), count_state(g, NSWAP_MEMBER_SUSPECT),
		count_state(g, NSWAP_MEMBER_DEAD), count_state(g, NSWAP_MEMBER_LEFT),
		(unsigned long long)st->rounds, (unsigned long long)st->sent_datagrams,
		(unsigned long long)st->recv_datagrams, (unsigned long long)st->rejected,
		(unsigned long long)n->outside_subnet, (unsigned long long)n->send_errors,
		(unsigned long long)st->joins, (unsigned long long)st->suspected,
		(unsigned long long)st->declared_dead, (unsigned long long)st->refuted,
		(unsigned long long)st->expired);
	for (uint32_t i = 0; i < listed; i++) {
		m = &g->members[i];
		ipv4_str(m->addr, a, sizeof(a));
		log_msg(L_INFO, "gossip: member 0x%016llx %s:%u %s incarnation %u heartbeat %u "
			"capacity %llu free %llu load %u heard %llu ms ago",
			(unsigned long long)m->id, a, m->port, gossip_state_name(m->state),
			m->incarnation, m->heartbeat, (unsigned long long)m->capacity,
			(unsigned long long)m->free, m->load,
			(unsigned long long)(now > m->heard_ms ? now - m->heard_ms : 0));
	}
	if (listed < g->count)
		log_msg(L_INFO, "gossip: %u more members not logged%s", g->count - listed,
			n->table_file[0] ? " (see the table file)" : "");
}

void gossip_net_destroy(struct gossip_net *n)
{
	if (n->tfd >= 0)
		close(n->tfd);
	if (n->fd >= 0)
		close(n->fd);
	n->tfd = n->fd = -1;
	if (n->g.members_priv)
		gossip_free(&n->g);
	free(n->out);
	free(n->rbuf);
	n->out = NULL;
	n->rbuf = NULL;
}
