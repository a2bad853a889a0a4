/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int cur_level = L_INFO;
/* Event-loop threads log concurrently: every line is one write(2), and the
 * few shared variables are an atomic (journal, the same value whoever sets
 * it) and the rate limiter's state under peer_lock. */
static _Atomic int journal = -1;
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const names[] = { "error", "warning", "info", "debug" };
static const int syslog_prio[] = { 3, 4, 6, 7 };

void log_set_level(int level)
{
	cur_level = level;
}

int log_enabled(int level)
{
	return level <= cur_level;
}

const char *log_level_name(int level)
{
	return level >= 0 && level <= L_DEBUG ? names[level] : "?";
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= L_DEBUG; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	if (!strcasecmp(s, "warn"))
		return L_WARN;
	if (!strcasecmp(s, "err"))
		return L_ERR;
	return -1;
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	int j = atomic_load_explicit(&journal, memory_order_relaxed);

	if (j < 0) {
		j = getenv("JOURNAL_STREAM") != NULL;
		atomic_store_explicit(&journal, j, memory_order_relaxed);
	}
	if (j)
		n = snprintf(buf, sizeof(buf), "<%d>", syslog_prio[level]);
	else
		n = snprintf(buf, sizeof(buf), "nswapd: %s%s", level == L_INFO ? "" : names[level],
			     level == L_INFO ? "" : ": ");
	if (n < 0)
		return;
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* Best effort: a full or closed stderr must not stop the server. */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void log_peer(int level, const char *fmt, ...)
{
	static time_t window;
	static unsigned int lines;
	static unsigned long suppressed;
	struct timespec ts;
	va_list ap;

	if (!log_enabled(level))
		return;
	unsigned long dropped;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&peer_lock);
	if (ts.tv_sec != window) {
		window = ts.tv_sec;
		lines = 0;
	}
	if (++lines > LOG_BURST) {
		suppressed++;
		pthread_mutex_unlock(&peer_lock);
		return;
	}
	dropped = suppressed;
	suppressed = 0;
	pthread_mutex_unlock(&peer_lock);
	if (dropped)
		log_msg(L_WARN, "%lu peer messages suppressed (more than %d per second)",
			dropped, LOG_BURST);
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
