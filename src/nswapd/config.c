/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "nswap_proto.h"

#define VALID_KEYS "listen, cache_size, name, max_clients, log_level, lock_memory, loops"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", CONFIG_DEFAULT_LISTEN);
	cfg->cache_bytes = CONFIG_DEFAULT_CACHE;
	if (gethostname(cfg->name, sizeof(cfg->name) - 1) != 0 || !cfg->name[0])
		snprintf(cfg->name, sizeof(cfg->name), "nswapd");
	cfg->name[sizeof(cfg->name) - 1] = '\0';
	cfg->max_clients = CONFIG_DEFAULT_CLIENTS;
	cfg->log_level = L_INFO;
	cfg->lock_memory = 0;
	cfg->loops = 0;
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
		if (b < NSWAP_PAGE_SIZE)
			return bad(where, value, "is too small; the minimum is one page, 4K");
		if (b / NSWAP_PAGE_SIZE > CACHE_MAX_PAGES)
			return bad(where, value, "is too large; the maximum is 8T");
		cfg->cache_bytes = b - b % NSWAP_PAGE_SIZE;
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

void config_print(const struct config *cfg)
{
	printf("listen = %s\n", cfg->listen);
	if (cfg->cache_bytes % (1ULL << 40) == 0)
		printf("cache_size = %lluT\n", (unsigned long long)(cfg->cache_bytes >> 40));
	else if (cfg->cache_bytes % (1ULL << 30) == 0)
		printf("cache_size = %lluG\n", (unsigned long long)(cfg->cache_bytes >> 30));
	else if (cfg->cache_bytes % (1ULL << 20) == 0)
		printf("cache_size = %lluM\n", (unsigned long long)(cfg->cache_bytes >> 20));
	else
		printf("cache_size = %lluK\n", (unsigned long long)(cfg->cache_bytes >> 10));
	printf("name = %s\n", cfg->name);
	printf("max_clients = %u\n", cfg->max_clients);
	printf("log_level = %s\n", log_level_name(cfg->log_level));
	printf("lock_memory = %s\n", cfg->lock_memory ? "yes" : "no");
	if (cfg->loops)
		printf("loops = %u\n", cfg->loops);
	else
		printf("loops = auto\n");
}
