/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* Logging to stderr, one write(2) per line.  Under systemd (JOURNAL_STREAM
 * set) lines carry a "<N>" syslog priority prefix for the journal. */
#ifndef NSWAPD_LOG_H
#define NSWAPD_LOG_H

enum log_level { L_ERR = 0, L_WARN = 1, L_INFO = 2, L_DEBUG = 3 };

void log_set_level(int level);
int log_enabled(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like log_msg, but at most LOG_BURST lines per second through this call;
 * the number suppressed is reported once the next line gets through.  For
 * messages a remote peer can trigger at will. */
void log_peer(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOG_BURST 100

const char *log_level_name(int level);
int log_level_parse(const char *s);	/* -1 if unknown */

#endif
