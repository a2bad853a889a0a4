/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The event loop: listener, signals (signalfd), connections, and the
 * bounded drain on SIGTERM/SIGINT. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "crc32c.h"
#include "log.h"

struct ev_src {
	enum ev_kind kind;
};

static struct ev_src listen_src = { EV_LISTEN };
static struct ev_src signal_src = { EV_SIGNAL };

#define ACCEPT_PAUSE_MS 100

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t server_uptime(const struct server *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)(ts.tv_sec - s->started.tv_sec);
}

void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}

int addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;	/* 127.0.0.0/8 */
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		/* An IPv4 client of a dual-stack listener: ::ffff:127.x.y.z */
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return 0;
}

void server_log_status(const struct server *s)
{
	log_msg(L_INFO,
		"status: capacity_pages %u used_pages %u clients %u connections %u limit_pages %u%s "
		"puts %llu gets %llu invalidates %llu get_misses %llu errors %llu "
		"bytes_in %llu bytes_out %llu uptime_s %llu%s",
		s->cache.capacity, s->cache.used, s->nclients, s->nconns, s->cache.limit,
		s->cache.used > s->cache.limit ? " (over limit: new slots refused)" : "",
		(unsigned long long)s->st.puts, (unsigned long long)s->st.gets,
		(unsigned long long)s->st.invalidates, (unsigned long long)s->st.get_misses,
		(unsigned long long)s->st.errors, (unsigned long long)s->st.bytes_in,
		(unsigned long long)s->st.bytes_out, (unsigned long long)server_uptime(s),
		s->draining ? " (draining)" : "");
}

static int add_fd(struct server *s, int fd, void *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int server_init(struct server *s, const struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	sigset_t mask;
	const char *err;
	char where[96];
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->lfd = s->sfd = s->epfd = -1;
	clock_gettime(CLOCK_MONOTONIC, &s->started);

	if (cache_init(&s->cache, cfg->cache_bytes / NSWAP_PAGE_SIZE, cfg->lock_memory) != 0) {
		log_msg(L_ERR, "cannot allocate a %llu-byte cache: %s",
			(unsigned long long)cfg->cache_bytes, strerror(errno));
		return -1;
	}
	long phys = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	if (phys > 0 && psize > 0 && cfg->cache_bytes > (uint64_t)phys * (uint64_t)psize)
		log_msg(L_WARN, "cache_size (%llu MiB) exceeds physical memory (%llu MiB)",
			(unsigned long long)(cfg->cache_bytes >> 20),
			(unsigned long long)((uint64_t)phys * (uint64_t)psize >> 20));
	if (cfg->lock_memory && !s->cache.locked)
		log_msg(L_WARN, "lock_memory: mlock of the cache failed (raise LimitMEMLOCK / "
			"RLIMIT_MEMLOCK); continuing unlocked");

	if (parse_listen(cfg->listen, &ss, &len, &err) != 0) {
		log_msg(L_ERR, "listen '%s' %s", cfg->listen, err);
		return -1;
	}
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s->lfd, (struct sockaddr *)&ss, len) != 0 || listen(s->lfd, SOMAXCONN) != 0) {
		log_msg(L_ERR, "cannot listen on %s: %s", cfg->listen, strerror(errno));
		return -1;
	}
	len = sizeof(ss);
	getsockname(s->lfd, (struct sockaddr *)&ss, &len);
	format_addr((struct sockaddr *)&ss, where, sizeof(where));

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    add_fd(s, s->lfd, &listen_src) != 0 || add_fd(s, s->sfd, &signal_src) != 0) {
		log_msg(L_ERR, "event setup: %s", strerror(errno));
		return -1;
	}
	log_msg(L_INFO, "nswapd %s '%s' listening on %s: cache %u pages (%llu MiB%s), "
		"max_clients %u, protocol %u-%u, crc32c %s",
		NSWAPD_VERSION, cfg->name, where, s->cache.capacity,
		(unsigned long long)(cfg->cache_bytes >> 20), s->cache.locked ? ", locked" : "",
		cfg->max_clients, NSWAP_PROTO_MIN_VERSION, NSWAP_PROTO_VERSION, crc32c_impl());
	return 0;
}

/* Returns 1 when accepting should pause (out of descriptors). */
static int do_accept(struct server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char peer[64];
		struct conn *c;
		int one = 1, fd;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			log_peer(L_WARN, "accept: %s; pausing accepts for %d ms",
				 strerror(errno), ACCEPT_PAUSE_MS);
			return 1;
		}
		format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
		if (s->nconns >= s->cfg.max_clients) {
			log_peer(L_WARN, "%s: refused: max_clients (%u) reached", peer,
				 s->cfg.max_clients);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(s, fd, peer);
		if (c)
			c->local = addr_is_loopback((struct sockaddr *)&ss);
	}
	return 0;
}

static void start_drain(struct server *s, const char *signame)
{
	struct conn *c, *next;

	log_msg(L_INFO, "%s: draining %u connections (at most %d ms)", signame, s->nconns,
		NSWAPD_DRAIN_MS);
	if (s->lfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
		close(s->lfd);
		s->lfd = -1;
	}
	s->draining = 1;
	s->drain_start_ms = now_ms();
	s->drain_deadline_ms = s->drain_start_ms + NSWAPD_DRAIN_MS;
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_drain(s, c);
	}
}

static void close_all(struct server *s, const char *why)
{
	while (s->conns)
		conn_close(s, s->conns, why);
	conn_free_dead(s);
}

/* Returns 1 when the server should stop now. */
static int handle_signals(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		const char *name = si.ssi_signo == SIGTERM ? "SIGTERM" :
				   si.ssi_signo == SIGINT ? "SIGINT" : "SIGHUP";

		if (si.ssi_signo == SIGHUP) {
			server_log_status(s);
		} else if (!s->draining) {
			start_drain(s, name);
		} else {
			log_msg(L_WARN, "%s during drain: closing %u connections now", name,
				s->nconns);
			return 1;
		}
	}
	return 0;
}

int server_run(struct server *s)
{
	struct epoll_event evs[64];
	int64_t accept_resume = 0;

	for (;;) {
		int timeout = -1, n;

		if (s->draining) {
			int64_t left = s->drain_deadline_ms - now_ms();

			if (s->nconns == 0)
				break;
			if (left <= 0) {
				log_msg(L_WARN, "drain timeout: closing %u connections with replies "
					"unsent", s->nconns);
				break;
			}
			timeout = left < 20 ? (int)left : 20;
		} else if (accept_resume) {
			int64_t left = accept_resume - now_ms();

			if (left <= 0) {
				if (add_fd(s, s->lfd, &listen_src) == 0)
					accept_resume = 0;
				left = ACCEPT_PAUSE_MS;
			}
			if (accept_resume)
				timeout = (int)left;
		}
		n = epoll_wait(s->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(L_ERR, "epoll_wait: %s", strerror(errno));
			close_all(s, NULL);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct ev_src *src = evs[i].data.ptr;

			if (src->kind == EV_LISTEN) {
				if (s->lfd >= 0 && do_accept(s)) {
					epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
					accept_resume = now_ms() + ACCEPT_PAUSE_MS;
				}
			} else if (src->kind == EV_SIGNAL) {
				if (handle_signals(s)) {
					close_all(s, NULL);
					return 0;
				}
			} else {
				conn_event(s, (struct conn *)src, evs[i].events);
			}
		}
		if (s->draining) {
			/* Keep sweeping: a connection that has not yet seen EAGAIN
			 * may have no readiness event left to report. */
			struct conn *c, *next;

			for (c = s->conns; c; c = next) {
				next = c->next;
				conn_drain(s, c);
			}
		}
		conn_free_dead(s);
	}
	close_all(s, NULL);
	return 0;
}

void server_destroy(struct server *s)
{
	close_all(s, NULL);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->epfd >= 0) {
		close(s->epfd);
		log_msg(L_INFO, "stopped");
	}
	cache_destroy(&s->cache);
}
