// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* The client side fed from the gossip table; see feed.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed.h"
#include "log.h"

void feed_init(struct feed *f, const struct config *cfg)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->device, sizeof(f->device), "%s", cfg->client_device);
	snprintf(f->servers_path, sizeof(f->servers_path), FEED_CONFIGFS "/%s/servers",
		 cfg->client_device);
	f->k = cfg->client_servers;
}

/* "a.b.c.d:port" -> addr, port; 0 for anything else (IPv6, a bad line). */
static void parse_name(const char *name, struct feed_server *s)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(name, ':');
	struct in_addr a;
	char *end;
	unsigned long port;

	s->addr = 0;
	s->port = 0;
	if (!colon || colon == name || (size_t)(colon - name) >= sizeof(host))
		return;
	memcpy(host, name, (size_t)(colon - name));
	host[colon - name] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (inet_pton(AF_INET, host, &a) != 1 || *end || errno || port == 0 || port > 65535)
		return;
	s->addr = ntohl(a.s_addr);
	s->port = (uint16_t)port;
}

/* Read the device's servers file: "NAME STATE pages=N [hint=FREE/CAPACITY]".
 * Returns 0, or -1 with errno (ENOENT: no such device). */
static int read_servers(struct feed *f)
{
	char line[256];
	FILE *fp = fopen(f->servers_path, "re");

	if (!fp)
		return -1;
	f->nconf = 0;
	while (f->nconf < FEED_MAX_SERVERS && fgets(line, sizeof(line), fp)) {
		struct feed_server *s = &f->conf[f->nconf];
		char name[128];
		const char *h = strstr(line, " hint=");

		if (sscanf(line, "%127s", name) != 1)
			continue;
		memset(s, 0, sizeof(*s));
		parse_name(name, s);
		if (h && sscanf(h, " hint=%" SCNu64 "/%" SCNu64, &s->free, &s->capacity) == 2)
			s->hinted = 1;
		f->nconf++;
	}
	fclose(fp);
	return 0;
}

static void ipv4_name(uint32_t addr, uint16_t port, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(addr) };
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, host, sizeof(host));
	snprintf(buf, len, "%s:%u", host, port);
}

/* One configfs store: the whole line in one write().  0, or -errno;
 * `quiet`: that errno is expected and not logged. */
static int store(struct feed *f, const char *line, int quiet)
{
	int fd = open(f->servers_path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(line);
	ssize_t n = -1;
	int err = EIO;

	if (fd >= 0) {
		n = write(fd, line, len);
		err = n < 0 ? errno : EIO;
		close(fd);
	} else {
		err = errno;
	}
	if (n == (ssize_t)len)
		return 0;
	errno = err;
	if (err == quiet)
		return -err;
	f->write_errors++;
	/* rate: at most one message per server and round; a refusal names
	 * its reason in the kernel log */
	log_msg(L_WARN, "client_device %s: writing \"%.*s\" to %s: %s", f->device,
		(int)(len && line[len - 1] == '\n' ? len - 1 : len), line, f->servers_path,
		n < 0 ? strerror(errno) : "short write");
	return -err;
}

static struct feed_server *find_conf(struct feed *f, uint32_t addr, uint16_t port)
{
	for (unsigned int i = 0; i < f->nconf; i++)
		if (f->conf[i].addr == addr && f->conf[i].port == port && addr)
			return &f->conf[i];
	return NULL;
}

static void add_from_set(struct feed *f, struct gossip *g)
{
	char name[32], line[64];
	int rc;

	f->nset = gossip_server_set(g, f->set, f->nset, f->k);
	for (unsigned int i = 0; i < f->nset && f->nconf < FEED_MAX_SERVERS; i++) {
		const struct gossip_member *m = gossip_find(g, f->set[i]);

		if (!m || find_conf(f, m->addr, m->port))
			continue;
		ipv4_name(m->addr, m->port, name, sizeof(name));
		snprintf(line, sizeof(line), "add %s\n", name);
		/* EEXIST: configured, but past what the servers file could show
		 * (a page of text): hinted from here on like the others */
		rc = store(f, line, EEXIST);
		if (rc != 0 && rc != -EEXIST)
			continue;
		if (rc == 0) {
			f->added++;
			log_msg(L_INFO, "client_device %s: added server %s (node %016" PRIx64
				", %" PRIu64 " of %" PRIu64 " pages free)", f->device, name, m->id,
				m->free, m->capacity);
		}
		f->conf[f->nconf] = (struct feed_server){ .addr = m->addr, .port = m->port };
		f->nconf++;
	}
}

static void hint(struct feed *f, struct feed_server *s, uint64_t free_pages, uint64_t capacity)
{
	char name[32], line[96];

	if (s->hinted && s->free == free_pages && s->capacity == capacity)
		return;
	ipv4_name(s->addr, s->port, name, sizeof(name));
	snprintf(line, sizeof(line), "hint %s %" PRIu64 " %" PRIu64 "\n", name, free_pages,
		 capacity);
	if (store(f, line, 0) != 0)
		return;
	f->hints++;
	s->hinted = 1;
	s->free = free_pages;
	s->capacity = capacity;
}

/* Of two members at one address (a node that came back with another id,
 * or someone's stale entry), the one that speaks for it: ALIVE first, then
 * the later incarnation. */
static int better(const struct gossip_member *a, const struct gossip_member *b)
{
	if ((a->state == NSWAP_MEMBER_ALIVE) != (b->state == NSWAP_MEMBER_ALIVE))
		return a->state == NSWAP_MEMBER_ALIVE;
	return a->incarnation > b->incarnation;
}

/* Each configured server the table knows gets its announced room; one the
 * table lost after we hinted it keeps its capacity with nothing free.  This
 * node's own server (a node that lends and swaps) is not in the table: its
 * own announcement speaks for it (unhinted, placement would pass it over
 * while hinted servers have room). */
static void write_hints(struct feed *f, struct gossip *g)
{
	const struct gossip_member *best[FEED_MAX_SERVERS] = { 0 };
	struct feed_server *own = find_conf(f, g->self.addr, g->self.port);

	/* O(members x configured): at most 64 comparisons per member, once a
	 * round; the table is keyed by node id, not address */
	for (uint32_t i = 0; i < g->count; i++) {
		const struct gossip_member *m = &g->members[i];
		struct feed_server *s = find_conf(f, m->addr, m->port);

		if (s && (!best[s - f->conf] || better(m, best[s - f->conf])))
			best[s - f->conf] = m;
	}
	if (own)
		best[own - f->conf] = &g->self;
	for (unsigned int i = 0; i < f->nconf; i++) {
		const struct gossip_member *m = best[i];

		if (m)
			hint(f, &f->conf[i], m->state == NSWAP_MEMBER_ALIVE ? m->free : 0,
			     m->capacity);
		else if (f->conf[i].addr && f->conf[i].hinted)
			hint(f, &f->conf[i], 0, f->conf[i].capacity);
	}
}

void feed_round(struct feed *f, struct gossip *g)
{
	if (read_servers(f) != 0) {
		if (!f->missing)
			log_msg(L_WARN, "client_device %s: cannot read %s: %s; create the device "
				"(mkdir, size; e.g. the nswap_device module) or fix client_device; "
				"servers are added once it can be read", f->device,
				f->servers_path, strerror(errno));
		f->missing = 1;
		return;
	}
	if (f->missing)
		log_msg(L_INFO, "client_device %s: %s found", f->device, f->servers_path);
	f->missing = 0;
	add_from_set(f, g);
	write_hints(f, g);
}
