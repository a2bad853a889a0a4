/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* The event loop: listener, signals (signalfd), gossip (gossip_net.c),
 * connections, and the bounded drain on SIGTERM/SIGINT. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "conn.h"
#include "crc32c.h"
#include "elastic.h"
#include "feed.h"
#include "punt.h"
#include "gossip_net.h"
#include "log.h"
#include "peercred.h"
#include "request.h"

static struct ev_src listen_src = { EV_LISTEN };
static struct ev_src signal_src = { EV_SIGNAL };
static struct ev_src done_src = { EV_DONE };
static struct ev_src elastic_src = { EV_ELASTIC_TIMER };

static int elastic_start(struct server *s);

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

void server_stats(const struct server *s, struct stats_sum *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int i = 0; i < s->nloops; i++) {
		const struct stats *st = &s->loops[i].st;

#define ADD(f) sum->f += atomic_load_explicit(&st->f, memory_order_relaxed)
		ADD(puts); ADD(gets); ADD(invalidates); ADD(get_misses);
		ADD(errors); ADD(bytes_in); ADD(bytes_out);
		ADD(punts); ADD(updates_sent); ADD(updates_dropped); ADD(overflows);
		ADD(punts_home); ADD(punts_home_refused);
#undef ADD
	}
}

void server_log_status(const struct server *s)
{
	struct stats_sum t;
	uint32_t used = cache_used(&s->cache), limit = cache_limit(&s->cache);

	server_stats(s, &t);
	log_msg(L_INFO,
		"status: capacity_pages %u used_pages %u clients %u connections %u limit_pages %u%s "
		"puts %llu gets %llu invalidates %llu get_misses %llu errors %llu "
		"bytes_in %llu bytes_out %llu punts %llu updates_sent %llu updates_dropped %llu "
		"overflows %llu punts_home %llu punts_home_refused %llu hello_timeouts %llu "
		"pending_refused %llu pending_evicted %llu uptime_s %llu loops %u%s",
		s->cache.capacity, used, atomic_load(&s->nclients), atomic_load(&s->nconns), limit,
		used > limit ? " (over limit: new slots refused, but for overflow)" : "",
		(unsigned long long)t.puts, (unsigned long long)t.gets,
		(unsigned long long)t.invalidates, (unsigned long long)t.get_misses,
		(unsigned long long)t.errors, (unsigned long long)t.bytes_in,
		(unsigned long long)t.bytes_out, (unsigned long long)t.punts,
		(unsigned long long)t.updates_sent, (unsigned long long)t.updates_dropped,
		(unsigned long long)t.overflows, (unsigned long long)t.punts_home,
		(unsigned long long)t.punts_home_refused,
		(unsigned long long)atomic_load(&s->hello_timeouts),
		(unsigned long long)s->admission.refused_address,
		(unsigned long long)atomic_load(&s->admission.evicted),
		(unsigned long long)server_uptime(s), s->nloops,
		atomic_load(&s->draining) ? " (draining)" : "");
}

static int add_fd(int epfd, int fd, void *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void wake(int fd)
{
	uint64_t one = 1;

	/* Cannot fail short of a counter overflow (2^64 - 2 unread wakes). */
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		log_msg(L_ERR, "eventfd write: %s", strerror(errno));
}

/* --- event-loop threads ---------------------------------------------------- */

/* Take what the main thread queued.  attach: add it to this loop; else
 * (stopping) close it. */
static void take_queue(struct loop *l, int attach)
{
	struct conn *q, *c;

	pthread_mutex_lock(&l->qlock);
	q = l->queue;
	l->queue = NULL;
	pthread_mutex_unlock(&l->qlock);
	while ((c = q) != NULL) {
		q = c->next;
		c->next = NULL;
		if (attach) {
			conn_attach(l, c);
		} else {
			conn_discard(l, c);
		}
	}
}

void server_wake_loops(struct server *s)
{
	for (unsigned int i = 0; i < s->nloops; i++)
		wake(s->loops[i].evfd);
}

void server_post_update(struct server *s, struct loop *from, const struct frame_hdr *h)
{
	struct update_msg m = {
		.client_id = h->client_id, .slot = h->slot, .generation = h->generation,
		.hop_count = h->hop_count,
	};

	for (unsigned int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];
		int posted = 0;

		pthread_mutex_lock(&l->qlock);
		if (l->nmbox < LOOP_MBOX) {
			l->mbox[l->nmbox++] = m;
			posted = 1;
		}
		pthread_mutex_unlock(&l->qlock);
		if (!posted)
			stat_add(&from->st.updates_dropped, 1);
		else if (l != from)
			wake(l->evfd);
	}
	/* the posting loop delivers its own after the current request */
	if (from->nmbox)
		wake(from->evfd);
}

/* Send the posted UPDATEs on this loop's connections of their clients (one
 * each: the client needs it once).  A connection without room for the
 * frame drops it (counted): the owner then keeps reading from the old
 * server until that one drops its copy (protocol.md 11.1). */
static void deliver_updates(struct loop *l)
{
	struct update_msg *m, batch[64];
	unsigned int n;

	do {
		pthread_mutex_lock(&l->qlock);
		n = l->nmbox < 64 ? l->nmbox : 64;
		memcpy(batch, l->mbox + l->nmbox - n, n * sizeof(*batch));
		l->nmbox -= n;
		pthread_mutex_unlock(&l->qlock);
		for (m = batch; m < batch + n; m++) {
			struct conn *c;

			for (c = l->conns; c; c = c->next)
				/* not ahead of the reply a range under way owes
				 * (nswap.ko reads its purge's reply on its own); a
				 * connection with no request yet does take it: after a
				 * server restart an idle owner's connections may have
				 * none, and without UPDATEs no drain ends */
				if (!c->dead && !c->range_busy &&
				    c->client_id == m->client_id &&
				    (c->features & NSWAP_FEAT_MIGRATION))
					break;
			if (!c)
				continue;
			if (CONN_OBUF - conn_out_used(c) < NSWAP_HDR_SIZE) {
				stat_add(&l->st.updates_dropped, 1);
				continue;
			}
			struct frame_hdr h = {
				.magic = NSWAP_MAGIC, .version = c->version, .type = NSWAP_UPDATE,
				.client_id = m->client_id, .slot = m->slot,
				.generation = m->generation, .hop_count = m->hop_count,
			};

			conn_reply(c, &h, NULL, 0, 0);
			stat_add(&l->st.updates_sent, 1);
			conn_event(l, c, EPOLLOUT);	/* flush now */
		}
	} while (n == 64);
}

static void loop_close_all(struct loop *l)
{
	take_queue(l, 0);
	while (l->conns)
		conn_close(l, l->conns, NULL);
	conn_free_dead(l);
}

static void loop_start_drain(struct loop *l)
{
	struct conn *c, *next;

	l->drain_start_ms = l->srv->drain_start_ms;
	l->drain_deadline_ms = l->srv->drain_deadline_ms;
	l->draining = 1;
	for (c = l->conns; c; c = next) {
		next = c->next;
		conn_drain(l, c);
	}
}

/* The eventfd fired: new connections, and maybe drain or stop.  Returns 1
 * when the loop should stop now. */
/* Said at the 1st, 2nd, 4th, 8th, ... time: a flood is seen in the log
 * without filling it. */
static int power_of_two(uint64_t n)
{
	return n && !(n & (n - 1));
}

/* Over max_pending: close this loop's oldest counted pending connection
 * (admission.h), if it has waited EVICT_MIN_AGE_MS: an honest client says
 * HELLO within a round trip, so only a silent one is that old, and a loop
 * holding only a client that has just connected evicts nobody.  Each loop
 * evicts its own oldest; two loops at once may close one more than needed.
 * 0 when it has none. */
#define EVICT_MIN_AGE_MS	500

static int evict_pending(struct loop *l)
{
	int64_t old_enough = now_ms() + l->srv->cfg.hello_timeout_ms - EVICT_MIN_AGE_MS;
	struct conn *c, *oldest = NULL;
	uint64_t k;

	for (c = l->conns; c; c = c->next)
		if (!c->hello_done && !c->dead && c->admit_bucket >= 0 &&
		    (!oldest || c->accept_seq < oldest->accept_seq))
			oldest = c;
	if (!oldest || oldest->hello_deadline_ms > old_enough)
		return 0;
	k = atomic_fetch_add(&l->srv->admission.evicted, 1) + 1;
	if (power_of_two(k))
		log_peer(L_WARN, "%s: closed: more than max_pending (%u) connections have not "
			 "said HELLO; the oldest goes (%llu closed so far): a client that "
			 "connects and stays silent, or a flood", oldest->peer,
			 l->srv->admission.max_pending, (unsigned long long)k);
	conn_close(l, oldest, "evicted: max_pending");
	return 1;
}

/* Close this loop's connections that have not said HELLO by their deadline
 * (admission.h), and note the next deadline. */
static void close_silent(struct loop *l)
{
	int64_t now = now_ms(), next = 0;
	struct conn *c, *n;

	for (c = l->conns; c; c = n) {
		n = c->next;
		if (c->hello_done || c->dead || c->admin)
			continue;
		if (c->hello_deadline_ms <= now) {
			uint64_t k = atomic_fetch_add(&l->srv->hello_timeouts, 1) + 1;

			if (power_of_two(k))
				log_peer(L_WARN, "%s: closed: no HELLO within hello_timeout (%u ms; "
					 "%llu closed so far)", c->peer, l->srv->cfg.hello_timeout_ms,
					 (unsigned long long)k);
			conn_close(l, c, "no HELLO within hello_timeout");
			continue;
		}
		if (!next || c->hello_deadline_ms < next)
			next = c->hello_deadline_ms;
	}
	l->hello_next_ms = next;
}

static int loop_wake(struct loop *l)
{
	uint64_t n;

	if (read(l->evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_msg(L_ERR, "loop %u: eventfd read: %s", l->id, strerror(errno));
	/* The acquire loads pair with the main thread's release stores: the
	 * drain deadlines written before them are visible here. */
	if (atomic_load_explicit(&l->srv->stop, memory_order_acquire))
		return 1;
	take_queue(l, 1);
	while (admission_over(&l->srv->admission) && evict_pending(l))
		;
	deliver_updates(l);
	if (atomic_load(&l->srv->home_ok))
		l->home_due = 1;	/* maybe pages to send home (move_over_limit) */
	if (!l->draining && atomic_load_explicit(&l->srv->draining, memory_order_acquire))
		loop_start_drain(l);
	return 0;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct epoll_event evs[64];

	for (;;) {
		int timeout = -1, n, stop = 0;

		l->range_budget = RANGE_STEP;	/* request.h: one round's range work */

		if (l->draining) {
			int64_t left = l->drain_deadline_ms - now_ms();
			unsigned int nc = atomic_load(&l->nconns);

			if (nc == 0)
				break;
			if (left <= 0) {
				log_msg(L_WARN, "drain timeout: closing %u connections with replies "
					"unsent", nc);
				break;
			}
			timeout = left < 20 ? (int)left : 20;
		} else if (l->home_waiting) {
			timeout = HOME_RETRY_MS;
		}
		if (l->range_jobs || l->yielded)
			timeout = 0;	/* range steps or owed turns are due */
		else if (l->hello_next_ms && !l->draining) {
			int64_t left = l->hello_next_ms - now_ms();

			if (left < 0)
				left = 0;
			if (timeout < 0 || left < timeout)
				timeout = left > 60000 ? 60000 : (int)left;
		}
		n = epoll_wait(l->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(L_ERR, "loop %u: epoll_wait: %s", l->id, strerror(errno));
			l->failed = 1;
			break;
		}
		for (int i = 0; i < n && !stop; i++) {
			struct ev_src *src = evs[i].data.ptr;

			if (src->kind == EV_WAKE)
				stop = loop_wake(l);
			else
				conn_event(l, (struct conn *)src, evs[i].events);
		}
		if (stop)
			break;
		if (l->range_jobs)
			request_range_steps(l);
		if (l->yielded)
			conn_run_yielded(l);
		if (l->hello_next_ms && now_ms() >= l->hello_next_ms)
			close_silent(l);
		if (l->home_due || (l->home_waiting && now_ms() - l->home_last_ms >= HOME_RETRY_MS)) {
			l->home_last_ms = now_ms();
			home_fill(l);
		}
		if (l->draining) {
			/* Keep sweeping: a connection that has not yet seen EAGAIN
			 * may have no readiness event left to report. */
			struct conn *c, *next;

			for (c = l->conns; c; c = next) {
				next = c->next;
				conn_drain(l, c);
			}
		}
		conn_free_dead(l);
	}
	loop_close_all(l);
	wake(l->srv->donefd);
	return NULL;
}

/* 0 (auto): the CPUs this process may run on (its affinity: CPUAffinity=,
 * a cpuset, a container), else the online ones; at most CONFIG_AUTO_LOOPS. */
static unsigned int resolve_loops(unsigned int want)
{
	cpu_set_t set;
	long n;

	if (want)
		return want;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > CONFIG_AUTO_LOOPS ? CONFIG_AUTO_LOOPS : (unsigned int)n;
}

static int loops_start(struct server *s)
{
	s->loops = aligned_alloc(64, s->nloops * sizeof(*s->loops));
	if (!s->loops)
		return -1;
	memset(s->loops, 0, s->nloops * sizeof(*s->loops));
	for (unsigned int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];

		l->wake_src.kind = EV_WAKE;
		l->srv = s;
		l->id = i;
		l->epfd = l->evfd = -1;
		pthread_mutex_init(&l->qlock, NULL);
	}
	for (unsigned int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];
		int err;

		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->epfd < 0 || l->evfd < 0 || add_fd(l->epfd, l->evfd, &l->wake_src) != 0)
			return -1;
		/* Threads inherit the blocked signal mask: signals reach only the
		 * main thread's signalfd. */
		err = pthread_create(&l->thread, NULL, loop_main, l);
		if (err) {
			errno = err;
			return -1;
		}
		l->started = 1;
	}
	return 0;
}

static void stop_accepting(struct server *s)
{
	if (s->lfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
		close(s->lfd);
		s->lfd = -1;
	}
}

/* Wake every loop; with stop, they close their connections and end now.
 * No more connections are accepted: none would be served (a loop that
 * failed has the fewest, and would get them). */
static void loops_stop(struct server *s)
{
	stop_accepting(s);
	atomic_store_explicit(&s->stop, 1, memory_order_release);
	for (unsigned int i = 0; i < s->nloops; i++)
		if (s->loops[i].started)
			wake(s->loops[i].evfd);
}

/* Returns 1 when a loop failed. */
static int loops_join(struct server *s)
{
	int failed = 0;

	for (unsigned int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];

		if (l->started) {
			pthread_join(l->thread, NULL);
			l->started = 0;
		}
		failed |= l->failed;
	}
	return failed;
}

/* --- main thread ------------------------------------------------------------ */

int server_init(struct server *s, const struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	sigset_t mask;
	const char *err;
	char where[96];
	uint16_t lport;
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->lfd = s->sfd = s->epfd = s->donefd = s->elastic_tfd = -1;
	clock_gettime(CLOCK_MONOTONIC, &s->started);

	s->nloops = resolve_loops(cfg->loops);
	/* Four shards per loop keep two loops rarely on one lock; one loop has
	 * nobody to contend with and keeps the single table. */
	if (cache_init(&s->cache, cfg->cache_bytes / NSWAP_PAGE_SIZE,
		       cfg->overflow_bytes / NSWAP_PAGE_SIZE, cfg->lock_memory,
		       s->nloops == 1 ? 1 : 4 * s->nloops) != 0) {
		log_msg(L_ERR, "cannot allocate a %llu-byte cache: %s",
			(unsigned long long)cfg->cache_bytes, strerror(errno));
		return -1;
	}
	pthread_mutex_init(&s->home_lock, NULL);
	if (followers_init(&s->followers, cfg->max_clients) != 0) {
		log_msg(L_ERR, "out of memory");
		return -1;
	}
	if (admission_init(&s->admission,
			   cfg->max_pending ? cfg->max_pending :
			   (cfg->max_clients > 1 ? cfg->max_clients / 2 : 1),
			   cfg->max_pending_per_address) != 0) {
		log_msg(L_ERR, "no random key for the admission hash: %s", strerror(errno));
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
	/* One listening socket, no SO_REUSEPORT: a second nswapd on the port
	 * must fail with EADDRINUSE rather than silently share it. */
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
	lport = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) :
		ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (s->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    add_fd(s->epfd, s->lfd, &listen_src) != 0 ||
	    add_fd(s->epfd, s->sfd, &signal_src) != 0 ||
	    add_fd(s->epfd, s->donefd, &done_src) != 0) {
		log_msg(L_ERR, "event setup: %s", strerror(errno));
		return -1;
	}
	/* Gossip announces the port the listener got (port 0 picks one). */
	if (cfg->gossip && ss.ss_family == AF_INET) {
		uint32_t la = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);

		if (la != INADDR_ANY && la != cfg->gossip_address)
			log_msg(L_WARN, "gossip: gossip_address differs from the listen address %s: "
				"other nodes are told to connect where nswapd does not listen", where);
	}
	if (cfg->gossip) {
		s->gossip = malloc(sizeof(*s->gossip));
		if (!s->gossip) {
			log_msg(L_ERR, "gossip: out of memory");
			return -1;
		}
		if (gossip_net_init(s->gossip, cfg, lport, s->epfd) != 0)
			return -1;
	}
	if (cfg->elastic && elastic_start(s) != 0)
		return -1;
	if (s->gossip) {
		s->punter = malloc(sizeof(*s->punter));
		if (!s->punter || punter_start(s->punter, s, s->gossip->g.self.id) != 0) {
			free(s->punter);
			s->punter = NULL;
			log_msg(L_ERR, "migration: cannot start the page mover");
			return -1;
		}
	} else if (cfg->elastic) {
		log_msg(L_INFO, "elastic: gossip is off: pages over a shrunk limit go back to "
			"owners that take them, the others stay here (with gossip on they move "
			"to the member with the most room)");
	}
	/* gossip off: no other server is known, so pages over the limit can only
	 * go home; with gossip, move_over_limit() decides each round */
	atomic_store(&s->home_ok, s->punter == NULL);
	if (cfg->client_device[0]) {
		s->feed = malloc(sizeof(*s->feed));
		if (!s->feed) {
			log_msg(L_ERR, "client_device: out of memory");
			return -1;
		}
		feed_init(s->feed, cfg);
		log_msg(L_INFO, "client_device %s: its servers follow the gossip table "
			"(%u servers, %s)", cfg->client_device, cfg->client_servers,
			s->feed->servers_path);
	}
	if (loops_start(s) != 0) {
		log_msg(L_ERR, "starting %u event loops: %s", s->nloops, strerror(errno));
		return -1;
	}
	char overflow_note[64] = "";

	if (cfg->overflow_bytes)
		snprintf(overflow_note, sizeof(overflow_note), ", overflow %u pages",
			 s->cache.arena_pages - s->cache.capacity);
	log_msg(L_INFO, "nswapd %s '%s' listening on %s: cache %u pages (%llu MiB%s, "
		"%u shards%s), max_clients %u, loops %u, protocol %u-%u, crc32c %s",
		NSWAPD_VERSION, cfg->name, where, s->cache.capacity,
		(unsigned long long)(cfg->cache_bytes >> 20), s->cache.locked ? ", locked" : "",
		s->cache.nshards, overflow_note, cfg->max_clients, s->nloops,
		NSWAP_PROTO_MIN_VERSION, NSWAP_PROTO_VERSION, crc32c_impl());
	if (!s->cache.capacity)
		log_msg(L_INFO, "cache_size 0: this node lends nothing; it hears the gossip%s",
			cfg->client_device[0] ? " for its client_device" : "");
	return 0;
}

/* The loop with the fewest connections; ties go round robin. */
static struct loop *pick_loop(struct server *s)
{
	struct loop *best = NULL;
	unsigned int best_n = UINT32_MAX;

	for (unsigned int k = 0; k < s->nloops; k++) {
		struct loop *l = &s->loops[(s->next_loop + k) % s->nloops];
		unsigned int n = atomic_load_explicit(&l->nconns, memory_order_relaxed);

		if (n < best_n) {
			best = l;
			best_n = n;
		}
	}
	s->next_loop = (s->next_loop + 1) % s->nloops;
	return best;
}

/* Connections beyond max_clients only for the node's administrators. */
#define ADMIN_EXTRA_CONNS	16

/* Returns 1 when accepting should pause (out of descriptors). */
static int do_accept(struct server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char peer[64];
		struct conn *c;
		struct loop *l;
		int one = 1, fd, bucket = -1, local, admin;

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
		local = addr_is_loopback((struct sockaddr *)&ss);
		/* the node's own administrators (their tools: STATUS, a drain)
		 * get in whatever others do (admission.h) */
		admin = local && peer_is_admin(fd);
		/* Only this thread raises nconns, so no other accept can slip in
		 * between this check and the increment below. */
		if (atomic_load(&s->nconns) >= s->cfg.max_clients + (admin ? ADMIN_EXTRA_CONNS : 0)) {
			log_peer(L_WARN, "%s: refused: max_clients (%u) reached", peer,
				 s->cfg.max_clients);
			close(fd);
			continue;
		}
		if (!admin && admission_take(&s->admission, (struct sockaddr *)&ss, local,
					     &bucket) != 0) {
			if (power_of_two(s->admission.refused_address))
				log_peer(L_WARN, "%s: refused: %u connections from %s have not said "
					 "HELLO yet (max_pending_per_address; %llu refused so far)",
					 peer, s->admission.max_per_address,
					 local ? "other local users" : "this address",
					 (unsigned long long)s->admission.refused_address);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_alloc(fd, peer);
		if (!c) {
			admission_release(&s->admission, bucket);
			continue;
		}
		c->admit_bucket = bucket;
		c->hello_deadline_ms = now_ms() + s->cfg.hello_timeout_ms;
		c->accept_seq = ++s->accepts;
		c->local = local;
		c->admin = admin;	/* a tool may hold a control connection */
		l = pick_loop(s);
		atomic_fetch_add(&s->nconns, 1);
		atomic_fetch_add(&l->nconns, 1);
		pthread_mutex_lock(&l->qlock);
		c->next = l->queue;
		l->queue = c;
		pthread_mutex_unlock(&l->qlock);
		wake(l->evfd);
		if (admission_over(&s->admission))
			server_wake_loops(s);	/* they evict (evict_pending) */
	}
	return 0;
}

/* The elastic cache's timer (elastic.h): first tick after one interval. */
static int elastic_start(struct server *s)
{
	struct itimerspec its = { 0 };
	uint32_t ms = s->cfg.elastic_interval_ms;

	s->elastic = malloc(sizeof(*s->elastic));
	if (!s->elastic) {
		log_msg(L_ERR, "elastic: out of memory");
		return -1;
	}
	elastic_init(s->elastic, &s->cfg, &s->cache);
	its.it_value.tv_sec = its.it_interval.tv_sec = ms / 1000;
	its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000L;
	s->elastic_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->elastic_tfd < 0 || timerfd_settime(s->elastic_tfd, 0, &its, NULL) != 0 ||
	    add_fd(s->epfd, s->elastic_tfd, &elastic_src) != 0) {
		log_msg(L_ERR, "elastic: timer setup: %s", strerror(errno));
		return -1;
	}
	log_msg(L_INFO, "elastic: cache limit starts at %u of %u pages; reserve %llu MiB, step "
		"%llu MiB, memory stall above %g%% shrinks (%s), every %u ms",
		cache_limit(&s->cache), s->cache.capacity,
		(unsigned long long)(s->cfg.elastic_reserve >> 20),
		(unsigned long long)(s->cfg.elastic_step >> 20), s->cfg.elastic_psi,
		s->cfg.pressure_file[0] ? s->cfg.pressure_file : "PSI not used", ms);
	return 0;
}

/* The member that takes our pages: ALIVE, the most free pages (at least
 * what is asked, or the most there is). */
static const struct gossip_member *punt_target(const struct gossip *g)
{
	const struct gossip_member *best = NULL;

	for (uint32_t i = 0; i < g->count; i++) {
		const struct gossip_member *m = &g->members[i];

		if (m->state == NSWAP_MEMBER_ALIVE && m->free && (!best || m->free > best->free))
			best = m;
	}
	return best;
}

/* Pages over the limit (elastic shrank it, or SET_CACHE_LIMIT lowered it)
 * and not on their way yet: move them (punt.h). */
static void move_over_limit(struct server *s)
{
	uint32_t over = cache_over_limit(&s->cache);
	const struct gossip_member *t;

	if (!over)
		return;
	t = s->punter ? punt_target(&s->gossip->g) : NULL;
	if (t) {
		atomic_store(&s->home_ok, 0);
		s->punt_no_target_logged = 0;
		punter_ask(s->punter, t->addr, t->port, over);
		return;
	}
	/* no server can take them: back to owners that have a disk for them
	 * (home.h); the pages of the others stay here */
	if (!s->punt_no_target_logged)
		log_msg(L_WARN, "migration: %u pages over the limit and %s; they go back to "
			"their owners that take them (nswap.ko with a backing device), the others "
			"stay here", over,
			s->punter ? "no member of the gossip table with free pages to take them" :
			"gossip is off");
	s->punt_no_target_logged = 1;
	atomic_store(&s->home_ok, 1);
	server_wake_loops(s);
}

static void elastic_timer(struct server *s)
{
	uint64_t expirations;

	if (read(s->elastic_tfd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	if (atomic_load(&s->emptying))
		return;		/* a drain: the limit stays 0 */
	if (elastic_tick(s->elastic, &s->cache)) {
		/* a drain that began during the tick wins */
		if (atomic_load(&s->emptying))
			cache_set_limit(&s->cache, 0);
		move_over_limit(s);
	}
}

/* Say once when a drain has emptied the cache, and again after a new one. */
static void log_drained(struct server *s)
{
	uint32_t used = cache_used(&s->cache);

	if (!atomic_load(&s->emptying)) {
		s->emptied_logged = 0;
		return;
	}
	if (used || s->emptied_logged)
		return;
	s->emptied_logged = 1;
	log_msg(L_INFO, "drain: done, no page is held here; stop nswapd now, or end the drain "
		"with a cache limit above 0");
}

/* Whether the elastic cache shrank within its hold time: the node is short
 * of memory, and overflow would touch more of it. */
static int elastic_squeezed(const struct server *s)
{
	const struct elastic *e = s->elastic;

	return e && e->shrinks && e->ticks - e->last_shrink < ELASTIC_HOLD_TICKS;
}

/* The overflow a full cache may take now (cache.h).  None while it drains
 * or stops, while its node is short of memory (elastic shrank lately), while
 * the page mover's last round was stuck (a target refused owners that are not
 * connected to it: their pages could not leave), or while no gossip member
 * has free pages; else up to half of what the best such member has free
 * (other full servers may send it theirs). */
static void set_overflow(struct server *s)
{
	uint32_t room = s->cache.arena_pages - s->cache.capacity, allow = 0;
	const struct gossip_member *t;

	if (s->punter && cache_used(&s->cache) <= cache_limit(&s->cache))
		atomic_store(&s->punter->stuck, 0);	/* the stuck pages are gone */
	if (room && s->punter && !atomic_load(&s->emptying) && !atomic_load(&s->draining) &&
	    !s->gossip->left && !elastic_squeezed(s) && !atomic_load(&s->punter->stuck)) {
		t = punt_target(&s->gossip->g);
		if (t)
			allow = t->free / 2 < room ? (uint32_t)(t->free / 2) : room;
	}
	atomic_store_explicit(&s->cache.overflow, allow, memory_order_relaxed);
}

/* What this node lends now, for its gossip entry. */
static void gossip_tick(struct server *s)
{
	uint32_t used = cache_used(&s->cache), limit = cache_limit(&s->cache);

	gossip_net_timer(s->gossip, limit, used < limit ? limit - used : 0,
			 atomic_load(&s->nconns));
	if (s->feed && !s->gossip->left)
		feed_round(s->feed, &s->gossip->g);
	if (!s->gossip->left)
		move_over_limit(s);
	set_overflow(s);
	log_drained(s);
}

static void start_drain(struct server *s, const char *signame)
{
	/* Before the drain, which may take seconds: members hear that this
	 * node leaves instead of suspecting it. */
	if (s->gossip)
		gossip_net_leave(s->gossip);
	/* no gossip round runs from here on: a full cache takes no more
	 * (request.c also checks `draining`, for a PUT already on its way) */
	atomic_store_explicit(&s->cache.overflow, 0, memory_order_relaxed);
	log_msg(L_INFO, "%s: draining %u connections (at most %d ms)", signame,
		atomic_load(&s->nconns), NSWAPD_DRAIN_MS);
	stop_accepting(s);
	s->drain_start_ms = now_ms();
	s->drain_deadline_ms = s->drain_start_ms + NSWAPD_DRAIN_MS;
	/* Release: the deadlines above are visible to a loop that sees it. */
	atomic_store_explicit(&s->draining, 1, memory_order_release);
	for (unsigned int i = 0; i < s->nloops; i++)
		wake(s->loops[i].evfd);
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
			if (s->gossip)
				gossip_net_log_table(s->gossip);
		} else if (!atomic_load(&s->draining)) {
			start_drain(s, name);
		} else {
			log_msg(L_WARN, "%s during drain: closing %u connections now", name,
				atomic_load(&s->nconns));
			return 1;
		}
	}
	return 0;
}

/* The main thread accepts and handles signals until every loop has ended:
 * after the drain, after a second signal, or (exit 1) after a loop failed. */
int server_run(struct server *s)
{
	struct epoll_event evs[16];
	int64_t accept_resume = 0;
	unsigned int done = 0;
	int rc = 0;

	while (done < s->nloops) {
		int timeout = -1, n;

		if (accept_resume && s->lfd >= 0) {
			int64_t left = accept_resume - now_ms();

			if (left <= 0) {
				if (add_fd(s->epfd, s->lfd, &listen_src) == 0)
					accept_resume = 0;
				left = ACCEPT_PAUSE_MS;
			}
			if (accept_resume)
				timeout = (int)left;
		}
		n = epoll_wait(s->epfd, evs, 16, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(L_ERR, "epoll_wait: %s", strerror(errno));
			loops_stop(s);
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev_src *src = evs[i].data.ptr;

			if (src->kind == EV_LISTEN) {
				if (s->lfd >= 0 && do_accept(s)) {
					epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
					accept_resume = now_ms() + ACCEPT_PAUSE_MS;
				}
			} else if (src->kind == EV_GOSSIP) {
				gossip_net_readable(s->gossip);
			} else if (src->kind == EV_GOSSIP_TIMER) {
				gossip_tick(s);
			} else if (src->kind == EV_ELASTIC_TIMER) {
				elastic_timer(s);
			} else if (src->kind == EV_SIGNAL) {
				if (handle_signals(s))
					loops_stop(s);
			} else if (src->kind == EV_DONE) {
				uint64_t k;

				if (read(s->donefd, &k, sizeof(k)) == sizeof(k))
					done += (unsigned int)k;
				/* A loop that ends outside a drain has failed:
				 * stop the rest, exit 1. */
				if (!atomic_load(&s->draining) && !atomic_load(&s->stop))
					loops_stop(s);
			}
		}
	}
	if (loops_join(s))
		rc = 1;
	return rc;
}

void server_destroy(struct server *s)
{
	if (s->loops) {
		loops_stop(s);
		loops_join(s);
		for (unsigned int i = 0; i < s->nloops; i++) {
			struct loop *l = &s->loops[i];

			take_queue(l, 0);
			if (l->epfd >= 0)
				close(l->epfd);
			if (l->evfd >= 0)
				close(l->evfd);
			pthread_mutex_destroy(&l->qlock);
		}
		free(s->loops);
		s->loops = NULL;
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->donefd >= 0)
		close(s->donefd);
	free(s->feed);
	s->feed = NULL;
	if (s->punter) {
		punter_stop(s->punter);
		free(s->punter);
		s->punter = NULL;
	}
	followers_free(&s->followers);
	if (s->elastic_tfd >= 0)
		close(s->elastic_tfd);
	s->elastic_tfd = -1;
	free(s->elastic);
	s->elastic = NULL;
	if (s->gossip) {
		gossip_net_destroy(s->gossip);
		free(s->gossip);
		s->gossip = NULL;
	}
	if (s->epfd >= 0) {
		close(s->epfd);
		log_msg(L_INFO, "stopped");
	}
	cache_destroy(&s->cache);
}
