/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "nswap_proto.h"

#define VALID_KEYS "listen, cache_size, name, max_clients, log_level, lock_memory, loops, " \
	"gossip, gossip_port, gossip_interval, gossip_fanout, gossip_seeds, gossip_address, " \
	"node_id, gossip_subnet, gossip_table_file, client_device, client_servers, elastic, " \
	"elastic_reserve, elastic_step, elastic_psi, elastic_interval, meminfo_file, pressure_file, " \
	"overflow, hello_timeout, max_pending, max_pending_per_address"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", CONFIG_DEFAULT_LISTEN);
	cfg->cache_bytes = CONFIG_DEFAULT_CACHE;
	if (gethostname(cfg->name, sizeof(cfg->name) - 1) != 0 || !cfg->name[0])
		snprintf(cfg->name, sizeof(cfg->name), "nswapd");
	cfg->name[sizeof(cfg->name) - 1] = '\0';
	cfg->max_clients = CONFIG_DEFAULT_CLIENTS;
	cfg->hello_timeout_ms = CONFIG_DEFAULT_HELLO_TIMEOUT;
	cfg->max_pending_per_address = CONFIG_DEFAULT_PENDING_PER_ADDRESS;
	cfg->log_level = L_INFO;
	cfg->lock_memory = 0;
	cfg->loops = 0;

	struct gossip_config gc;

	gossip_config_defaults(&gc);
	cfg->gossip = 0;
	cfg->gossip_port = gc.gossip_port;
	cfg->gossip_interval_ms = gc.interval_ms;
	cfg->gossip_fanout = gc.fanout;
	cfg->client_servers = CONFIG_DEFAULT_CLIENT_SERVERS;
	cfg->elastic_reserve = CONFIG_DEFAULT_ELASTIC_RESERVE;
	cfg->elastic_step = CONFIG_DEFAULT_ELASTIC_STEP;
	cfg->elastic_psi = CONFIG_DEFAULT_ELASTIC_PSI;
	cfg->elastic_interval_ms = CONFIG_DEFAULT_ELASTIC_INTERVAL;
	snprintf(cfg->meminfo_file, sizeof(cfg->meminfo_file), "/proc/meminfo");
	snprintf(cfg->pressure_file, sizeof(cfg->pressure_file), "/proc/pressure/memory");
}

void config_gossip(const struct config *cfg, struct gossip_config *gc)
{
	gossip_config_defaults(gc);
	gc->gossip_port = cfg->gossip_port;
	gc->interval_ms = cfg->gossip_interval_ms;
	gc->fanout = cfg->gossip_fanout;
}

static int bad(const char *where, const char *value, const char *what)
{
	fprintf(stderr, "nswapd: %s: '%s' %s\n", where, value, what);
	return -1;
}

/* Bytes with an optional K/M/G/T suffix (powers of 1024, optional "iB"/"B"). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end || *out > max) ? -1 : 0;
}

static int parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return 1;
		if (!strcasecmp(s, no[i]))
			return 0;
	}
	return -1;
}

/* A dotted-quad IPv4 address (nothing else: no names, no shorthand) in host order. */
static int parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

static void format_ipv4(uint32_t addr, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(addr) };

	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* A value of a gossip_* key that gossip_config_check() limits: the check's
 * own message says the range. */
static int gossip_range(const struct config *cfg, const char *where, const char *value,
			const char *key, unsigned long long v)
{
	struct gossip_config gc;
	const char *err;
	char what[160];

	config_gossip(cfg, &gc);
	if (!strcmp(key, "gossip_port"))
		gc.gossip_port = (uint16_t)v;
	else if (!strcmp(key, "gossip_interval"))
		gc.interval_ms = (uint32_t)v;
	else
		gc.fanout = (uint32_t)v;
	err = gossip_config_check(&gc);
	if (!err)
		return 0;
	snprintf(what, sizeof(what), "is out of range: %s", err);
	return bad(where, value, what);
}

/* gossip_seeds: "A.B.C.D,A.B.C.D" (spaces allowed around commas), at most
 * GOSSIP_MAX_SEEDS; empty: none. */
static int parse_seeds(struct config *cfg, const char *value, const char *where)
{
	uint32_t seeds[GOSSIP_MAX_SEEDS];
	unsigned int n = 0;
	char buf[1024], *item, *save = NULL;

	if (strlen(value) >= sizeof(buf))
		return bad(where, value, "is too long");
	snprintf(buf, sizeof(buf), "%s", value);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *e;

		while (isspace((unsigned char)*item))
			item++;
		e = item + strlen(item);
		while (e > item && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*item)
			return bad(where, value, "has an empty entry; list IPv4 addresses "
				   "separated by commas, e.g. 10.0.0.1,10.0.0.2");
		if (n == GOSSIP_MAX_SEEDS)
			return bad(where, value, "lists more than 16 seeds");
		if (parse_ipv4(item, &seeds[n]) != 0)
			return bad(where, item, "is not an IPv4 address; list seeds as "
				   "A.B.C.D separated by commas, e.g. 10.0.0.1,10.0.0.2");
		if (seeds[n] == 0 || seeds[n] == UINT32_MAX)
			return bad(where, item, "is not a node's address");
		n++;
	}
	memcpy(cfg->gossip_seeds, seeds, n * sizeof(seeds[0]));
	cfg->gossip_nseeds = n;
	return 0;
}

/* gossip_subnet: "A.B.C.D/N" without host bits; empty: none. */
static int parse_subnet(struct config *cfg, const char *value, const char *where)
{
	static const char *const form = "is not an IPv4 subnet; use A.B.C.D/N, e.g. 10.0.0.0/24";
	char buf[32];
	const char *slash = strchr(value, '/');
	unsigned long long bits;
	uint32_t addr, mask;

	if (!*value) {
		cfg->gossip_has_subnet = 0;
		return 0;
	}
	if (!slash || (size_t)(slash - value) >= sizeof(buf))
		return bad(where, value, form);
	memcpy(buf, value, (size_t)(slash - value));
	buf[slash - value] = '\0';
	if (parse_ipv4(buf, &addr) != 0 || parse_uint(slash + 1, 32, &bits) != 0)
		return bad(where, value, form);
	mask = bits ? UINT32_MAX << (32 - bits) : 0;
	if (addr & ~mask)
		return bad(where, value, "has host bits set; write the network address, "
			   "e.g. 10.0.0.0/24");
	cfg->gossip_has_subnet = 1;
	cfg->gossip_net = addr;
	cfg->gossip_mask = mask;
	return 0;
}

/* node_id: auto, or a nonzero 64-bit integer, decimal or 0x hex. */
static int parse_node_id(const char *s, uint64_t *out)
{
	char *end;

	if (!strcasecmp(s, "auto")) {
		*out = 0;
		return 0;
	}
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -1;
		*out = strtoull(s + 2, &end, 16);
	} else {
		if (!isdigit((unsigned char)*s))
			return -1;
		*out = strtoull(s, &end, 10);
	}
	return (errno || *end || !*out) ? -1 : 0;
}

int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **err)
{
	char host[128];
	const char *port;
	struct addrinfo hints = { 0 }, *res = NULL;
	unsigned long long p;
	int rc;

	if (strlen(s) >= sizeof(host)) {
		*err = "is too long";
		return -1;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':') {
			*err = "is not ADDR:PORT; use e.g. 0.0.0.0:7405, [::]:7405 or 7405";
			return -1;
		}
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		port = rb + 2;
	} else if (strchr(s, ':')) {
		const char *colon = strrchr(s, ':');

		if (strchr(s, ':') != colon) {
			*err = "is not ADDR:PORT (write IPv6 addresses as [ADDR]:PORT)";
			return -1;
		}
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	} else {
		snprintf(host, sizeof(host), "0.0.0.0");
		port = s;
	}
	if (parse_uint(port, 65535, &p) != 0) {
		*err = "has no valid port (0-65535); use e.g. 0.0.0.0:7405";
		return -1;
	}
	if (!host[0] || !strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		*err = "is not a numeric IP address and port; use e.g. 0.0.0.0:7405 or [::1]:7405";
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, const char *where)
{
	unsigned long long u;

	if (!strcmp(key, "listen")) {
		struct sockaddr_storage ss;
		socklen_t len;
		const char *err;

		if (parse_listen(value, &ss, &len, &err) != 0)
			return bad(where, value, err);
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", value);
	} else if (!strcmp(key, "cache_size")) {
		uint64_t b;

		if (parse_size(value, &b) != 0)
			return bad(where, value,
				   "is not a size; use bytes or K/M/G suffix, e.g. 512M");
		/* 0: lends nothing (a node that only borrows, hearing the
		 * gossip); checked against gossip in config_finish */
		if (b && b < NSWAP_PAGE_SIZE)
			return bad(where, value, "is too small; use 0 (lend nothing) or at "
				   "least one page, 4K");
		if (b / NSWAP_PAGE_SIZE > CACHE_MAX_PAGES)
			return bad(where, value, "is too large; the maximum is 8T");
		cfg->cache_bytes = b - b % NSWAP_PAGE_SIZE;
	} else if (!strcmp(key, "overflow")) {
		uint64_t b;

		if (parse_size(value, &b) != 0)
			return bad(where, value,
				   "is not a size; use bytes or K/M/G suffix, e.g. 16M, or 0 for none");
		if (b / NSWAP_PAGE_SIZE > CACHE_MAX_PAGES)
			return bad(where, value, "is too large; the maximum is 8T");
		cfg->overflow_bytes = b - b % NSWAP_PAGE_SIZE;
	} else if (!strcmp(key, "name")) {
		size_t n = strlen(value);

		if (n == 0 || n > 31)
			return bad(where, value, "is not a valid name; use 1 to 31 characters");
		for (size_t i = 0; i < n; i++)
			if (!isgraph((unsigned char)value[i]))
				return bad(where, value,
					   "is not a valid name; use printable ASCII without spaces");
		snprintf(cfg->name, sizeof(cfg->name), "%s", value);
	} else if (!strcmp(key, "max_clients")) {
		if (parse_uint(value, CONFIG_MAX_CLIENTS, &u) != 0 || u == 0)
			return bad(where, value, "is not a client count; use an integer 1-65536");
		cfg->max_clients = (unsigned int)u;
	} else if (!strcmp(key, "hello_timeout")) {
		if (parse_uint(value, 600000, &u) != 0 || u < 100)
			return bad(where, value, "is not a number of milliseconds; use 100-600000, "
				   "e.g. 10000");
		cfg->hello_timeout_ms = (uint32_t)u;
	} else if (!strcmp(key, "max_pending")) {
		if (!strcasecmp(value, "auto"))
			u = 0;
		else if (parse_uint(value, CONFIG_MAX_CLIENTS, &u) != 0 || u == 0)
			return bad(where, value, "is not a connection count; use auto (half of "
				   "max_clients) or an integer 1-65536");
		cfg->max_pending = (unsigned int)u;
	} else if (!strcmp(key, "max_pending_per_address")) {
		if (parse_uint(value, CONFIG_MAX_CLIENTS, &u) != 0 || u == 0)
			return bad(where, value, "is not a connection count; use an integer 1-65536");
		cfg->max_pending_per_address = (unsigned int)u;
	} else if (!strcmp(key, "log_level")) {
		int l = log_level_parse(value);

		if (l < 0)
			return bad(where, value, "is not a log level; use error, warning, info or debug");
		cfg->log_level = l;
	} else if (!strcmp(key, "lock_memory")) {
		int b = parse_bool(value);

		if (b < 0)
			return bad(where, value, "is not a boolean; use yes or no");
		cfg->lock_memory = b;
	} else if (!strcmp(key, "loops")) {
		if (!strcasecmp(value, "auto"))
			u = 0;
		else if (parse_uint(value, CONFIG_MAX_LOOPS, &u) != 0)
			return bad(where, value, "is not a loop count; use auto, 0 (auto) "
				   "or an integer 1-64");
		cfg->loops = (unsigned int)u;
	} else if (!strcmp(key, "gossip")) {
		int b = parse_bool(value);

		if (b < 0)
			return bad(where, value, "is not a boolean; use on or off");
		cfg->gossip = b;
	} else if (!strcmp(key, "gossip_port")) {
		if (parse_uint(value, 65535, &u) != 0)
			return bad(where, value, "is not a UDP port; use an integer 1-65535");
		if (gossip_range(cfg, where, value, key, u) != 0)
			return -1;
		cfg->gossip_port = (uint16_t)u;
	} else if (!strcmp(key, "gossip_interval")) {
		if (parse_uint(value, UINT32_MAX, &u) != 0)
			return bad(where, value, "is not a number of milliseconds; use e.g. 1000");
		if (gossip_range(cfg, where, value, key, u) != 0)
			return -1;
		cfg->gossip_interval_ms = (uint32_t)u;
	} else if (!strcmp(key, "gossip_fanout")) {
		if (parse_uint(value, UINT32_MAX, &u) != 0)
			return bad(where, value, "is not a count; use an integer 1-16");
		if (gossip_range(cfg, where, value, key, u) != 0)
			return -1;
		cfg->gossip_fanout = (uint32_t)u;
	} else if (!strcmp(key, "gossip_seeds")) {
		return parse_seeds(cfg, value, where);
	} else if (!strcmp(key, "gossip_address")) {
		uint32_t a = 0;

		if (*value && parse_ipv4(value, &a) != 0)
			return bad(where, value, "is not an IPv4 address; use this node's cluster "
				   "address, e.g. 10.0.0.5");
		if (*value && (a == 0 || a == UINT32_MAX))
			return bad(where, value, "is not an address other nodes can reach; use "
				   "this node's cluster address, e.g. 10.0.0.5");
		cfg->gossip_address = a;
	} else if (!strcmp(key, "node_id")) {
		uint64_t id;

		if (parse_node_id(value, &id) != 0)
			return bad(where, value, "is not a node id; use auto or a nonzero 64-bit "
				   "integer (decimal or 0x hex)");
		cfg->node_id = id;
	} else if (!strcmp(key, "gossip_subnet")) {
		return parse_subnet(cfg, value, where);
	} else if (!strcmp(key, "gossip_table_file")) {
		size_t n = strlen(value);

		if (n && value[0] != '/')
			return bad(where, value, "is not an absolute path; use e.g. "
				   "/run/nswap/gossip.json");
		if (n + sizeof(".tmp") > sizeof(cfg->gossip_table_file))
			return bad(where, value, "is too long; use at most 250 characters");
		for (size_t i = 0; i < n; i++)
			if (!isprint((unsigned char)value[i]))
				return bad(where, value, "is not a path of printable characters");
		snprintf(cfg->gossip_table_file, sizeof(cfg->gossip_table_file), "%s", value);
	} else if (!strcmp(key, "client_device")) {
		size_t n = strlen(value), ok = n <= 31 && strcmp(value, ".") && strcmp(value, "..");

		for (size_t i = 0; ok && i < n; i++)
			ok = isalnum((unsigned char)value[i]) || strchr("._-", value[i]);
		if (!ok)
			return bad(where, value, "is not a device name; use the configfs name of "
				   "this node's nswap device (1-31 of A-Z a-z 0-9 . _ -), e.g. "
				   "nswap0, or nothing for none");
		snprintf(cfg->client_device, sizeof(cfg->client_device), "%s", value);
	} else if (!strcmp(key, "client_servers")) {
		if (parse_uint(value, 64, &u) != 0 || u == 0)
			return bad(where, value, "is not a server count; use an integer 1-64 "
				   "(nswap.ko holds 64 servers per device)");
		cfg->client_servers = (unsigned int)u;
	} else if (!strcmp(key, "elastic")) {
		int b = parse_bool(value);

		if (b < 0)
			return bad(where, value, "is not a boolean; use on or off");
		cfg->elastic = b;
	} else if (!strcmp(key, "elastic_reserve") || !strcmp(key, "elastic_step")) {
		uint64_t b;
		int step = !strcmp(key, "elastic_step");

		if (parse_size(value, &b) != 0)
			return bad(where, value,
				   "is not a size; use bytes or K/M/G suffix, e.g. 256M");
		if (step && b < NSWAP_PAGE_SIZE)
			return bad(where, value, "is too small; the minimum is one page, 4K");
		if (b > (1ULL << 50))
			return bad(where, value, "is too large; the maximum is 1P");
		*(step ? &cfg->elastic_step : &cfg->elastic_reserve) = b;
	} else if (!strcmp(key, "elastic_psi")) {
		char *end;
		double d;

		errno = 0;
		d = strtod(value, &end);
		if (!*value || *end || errno || !(d > 0 && d <= 100))
			return bad(where, value, "is not a percentage; use a number above 0, at "
				   "most 100, e.g. 10");
		cfg->elastic_psi = d;
	} else if (!strcmp(key, "elastic_interval")) {
		if (parse_uint(value, 600000, &u) != 0 || u < 10)
			return bad(where, value, "is not a number of milliseconds; use 10-600000, "
				   "e.g. 1000");
		cfg->elastic_interval_ms = (uint32_t)u;
	} else if (!strcmp(key, "meminfo_file") || !strcmp(key, "pressure_file")) {
		int mem = !strcmp(key, "meminfo_file");
		char *dst = mem ? cfg->meminfo_file : cfg->pressure_file;
		size_t n = strlen(value);

		if ((mem && !n) || (n && value[0] != '/'))
			return bad(where, value, mem ? "is not an absolute path; use /proc/meminfo" :
				   "is not an absolute path; use /proc/pressure/memory, or nothing "
				   "to decide on MemAvailable alone");
		if (n >= CONFIG_PATH_MAX)
			return bad(where, value, "is too long; use at most 255 characters");
		snprintf(dst, CONFIG_PATH_MAX, "%s", value);
	} else {
		fprintf(stderr, "nswapd: %s: unknown key; valid keys: " VALID_KEYS "\n", where);
		return -1;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int config_load(struct config *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024], where[1200];
	unsigned int lineno = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "nswapd: %s: cannot open config file: %s\n", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *value;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "nswapd: %s:%u: line too long (max %zu characters)\n",
				path, lineno, sizeof(line) - 2);
			rc = -1;
			break;
		}
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "nswapd: %s:%u: expected 'key = value', got '%s'\n",
				path, lineno, s);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (*value == '#')	/* "key = # comment" is an empty value */
			*value = '\0';
		else {	/* trailing comment after whitespace: "key = 1G  # note" */
			char *h = value;

			while ((h = strchr(h, '#')) != NULL) {
				if (isspace((unsigned char)h[-1])) {
					*h = '\0';
					value = trim(value);
					break;
				}
				h++;
			}
		}
		snprintf(where, sizeof(where), "%s:%u: %s", path, lineno, key);
		if (!*key) {
			fprintf(stderr, "nswapd: %s:%u: expected 'key = value', key is empty\n",
				path, lineno);
			rc = -1;
		} else {
			rc = config_set(cfg, key, value, where);
		}
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "nswapd: %s: read error: %s\n", path, strerror(errno));
		rc = -1;
	}
	fclose(f);
	return rc;
}

int config_finish(struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *err;

	if (cfg->elastic && cfg->lock_memory) {
		fprintf(stderr, "nswapd: elastic = on with lock_memory = yes: a locked cache "
			"cannot give memory back to the node; set one of them off\n");
		return -1;
	}
	if (!cfg->cache_bytes && !cfg->gossip) {
		fprintf(stderr, "nswapd: cache_size = 0 lends nothing: it is for a node that "
			"only borrows and hears the gossip; set gossip = on (and client_device), "
			"or a cache_size of at least 4K\n");
		return -1;
	}
	if (!cfg->cache_bytes && cfg->elastic) {
		fprintf(stderr, "nswapd: elastic = on with cache_size = 0: there is no cache "
			"to grow or shrink; set elastic off, or a cache_size of at least 4K\n");
		return -1;
	}
	if (cfg->client_device[0] && !cfg->gossip) {
		fprintf(stderr, "nswapd: client_device = %s: needs gossip = on (the servers come "
			"from the gossip table); set gossip = on, or remove client_device\n",
			cfg->client_device);
		return -1;
	}
	if (cfg->overflow_bytes && !cfg->gossip) {
		fprintf(stderr, "nswapd: overflow needs gossip = on: the pages a full cache "
			"takes are moved to a gossip member with room; set gossip = on, or "
			"overflow = 0\n");
		return -1;
	}
	if (cfg->overflow_bytes && !cfg->cache_bytes) {
		fprintf(stderr, "nswapd: overflow with cache_size = 0: a node that lends nothing "
			"takes no page; set overflow = 0, or a cache_size of at least 4K\n");
		return -1;
	}
	if ((cfg->cache_bytes + cfg->overflow_bytes) / NSWAP_PAGE_SIZE > CACHE_MAX_PAGES) {
		fprintf(stderr, "nswapd: cache_size + overflow is above 8T; lower one of them\n");
		return -1;
	}
	if (!cfg->gossip || cfg->gossip_address)
		return 0;
	/* Announce the listen address when it is one IPv4 address. */
	if (parse_listen(cfg->listen, &ss, &len, &err) == 0 && ss.ss_family == AF_INET) {
		uint32_t a = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);

		if (a != INADDR_ANY) {
			cfg->gossip_address = a;
			return 0;
		}
	}
	fprintf(stderr, "nswapd: gossip_address: not set, and listen = %s is not one IPv4 "
		"address to announce to other nodes; set gossip_address (--gossip-address) "
		"to this node's cluster IPv4 address, or listen on it\n", cfg->listen);
	return -1;
}

/* The gossip keys are printed only with gossip = on: off, they do nothing,
 * and the output stays what it was before gossip existed. */
static void print_gossip(const struct config *cfg)
{
	char a[INET_ADDRSTRLEN];

	if (!cfg->gossip)
		return;
	printf("gossip = on\n");
	printf("gossip_port = %u\n", cfg->gossip_port);
	printf("gossip_interval = %u\n", cfg->gossip_interval_ms);
	printf("gossip_fanout = %u\n", cfg->gossip_fanout);
	if (cfg->gossip_address) {
		format_ipv4(cfg->gossip_address, a, sizeof(a));
		printf("gossip_address = %s\n", a);
	}
	if (cfg->node_id)
		printf("node_id = 0x%016llx\n", (unsigned long long)cfg->node_id);
	else
		printf("node_id = auto\n");
	if (cfg->gossip_nseeds) {
		printf("gossip_seeds = ");
		for (unsigned int i = 0; i < cfg->gossip_nseeds; i++) {
			format_ipv4(cfg->gossip_seeds[i], a, sizeof(a));
			printf("%s%s", i ? "," : "", a);
		}
		printf("\n");
	}
	if (cfg->gossip_has_subnet) {
		unsigned int bits = 0;

		for (uint32_t m = cfg->gossip_mask; m; m <<= 1)
			bits++;
		format_ipv4(cfg->gossip_net, a, sizeof(a));
		printf("gossip_subnet = %s/%u\n", a, bits);
	}
	if (cfg->gossip_table_file[0])
		printf("gossip_table_file = %s\n", cfg->gossip_table_file);
	if (cfg->client_device[0]) {
		printf("client_device = %s\n", cfg->client_device);
		printf("client_servers = %u\n", cfg->client_servers);
	}
}

/* KEY = SIZE with the largest suffix that is exact. */
static void print_size(const char *key, uint64_t b)
{
	if (b && b % (1ULL << 40) == 0)
		printf("%s = %lluT\n", key, (unsigned long long)(b >> 40));
	else if (b && b % (1ULL << 30) == 0)
		printf("%s = %lluG\n", key, (unsigned long long)(b >> 30));
	else if (b && b % (1ULL << 20) == 0)
		printf("%s = %lluM\n", key, (unsigned long long)(b >> 20));
	else if (b % (1ULL << 10) == 0)
		printf("%s = %lluK\n", key, (unsigned long long)(b >> 10));
	else
		printf("%s = %llu\n", key, (unsigned long long)b);
}

/* Printed only with elastic = on, like the gossip keys. */
static void print_elastic(const struct config *cfg)
{
	if (!cfg->elastic)
		return;
	printf("elastic = on\n");
	print_size("elastic_reserve", cfg->elastic_reserve);
	print_size("elastic_step", cfg->elastic_step);
	printf("elastic_psi = %g\n", cfg->elastic_psi);
	printf("elastic_interval = %u\n", cfg->elastic_interval_ms);
	printf("meminfo_file = %s\n", cfg->meminfo_file);
	printf("pressure_file = %s\n", cfg->pressure_file);
}

void config_print(const struct config *cfg)
{
	printf("listen = %s\n", cfg->listen);
	print_size("cache_size", cfg->cache_bytes);
	printf("name = %s\n", cfg->name);
	printf("max_clients = %u\n", cfg->max_clients);
	printf("hello_timeout = %u\n", cfg->hello_timeout_ms);
	if (cfg->max_pending)
		printf("max_pending = %u\n", cfg->max_pending);
	else
		printf("max_pending = auto\n");
	printf("max_pending_per_address = %u\n", cfg->max_pending_per_address);
	printf("log_level = %s\n", log_level_name(cfg->log_level));
	printf("lock_memory = %s\n", cfg->lock_memory ? "yes" : "no");
	if (cfg->loops)
		printf("loops = %u\n", cfg->loops);
	else
		printf("loops = auto\n");
	print_gossip(cfg);
	print_elastic(cfg);
	if (cfg->overflow_bytes)
		print_size("overflow", cfg->overflow_bytes);
}
