/* Helpers: time, messages, size parsing, /proc/vmstat, JSON strings,
 * progress lines, mismatch description, and the keyed page permutation. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One write(2) per line, so lines of concurrent processes do not interleave. */
void msg(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s: ", WL_PROG);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

const char *human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	unsigned u = 0;
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

bool parse_u64(const char *s, int base, uint64_t *out)
{
	if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, base);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Bytes, or a whole number with a binary suffix: 4096, 64K, 512M, 8G, 1T
 * (K/M/G/T, optionally followed by "iB" or "B"; all mean powers of 1024). */
bool parse_size(const char *s, uint64_t *out)
{
	if (s == NULL || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return false;
	}
	if (shift != 0) {
		if (end[0] == 'i' && (end[1] == 'B' || end[1] == 'b'))
			end += 2;
		else if (end[0] == 'B' || end[0] == 'b')
			end++;
	}
	if (*end != '\0')
		return false;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

bool read_vmstat(uint64_t *pswpin, uint64_t *pswpout)
{
	FILE *f = fopen("/proc/vmstat", "re");
	if (f == NULL)
		return false;
	char name[64];
	unsigned long long val;
	int found = 0;
	while (fscanf(f, "%63s %llu", name, &val) == 2) {
		if (strcmp(name, "pswpin") == 0) {
			*pswpin = val;
			found |= 1;
		} else if (strcmp(name, "pswpout") == 0) {
			*pswpout = val;
			found |= 2;
		}
	}
	fclose(f);
	return found == 3;
}

void json_str(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void progress_start(struct progress *pr, bool on, const char *label, uint64_t total)
{
	pr->on = on && total >= 10;
	pr->label = label;
	pr->total = total;
	pr->step = total / 10;
	pr->next = pr->step;
	pr->tenth = 0;
	pr->t0 = now_seconds();
}

void progress_tick(struct progress *pr, uint64_t done)
{
	if (!pr->on || done < pr->next)
		return;
	pr->tenth++;
	pr->next = pr->tenth >= 9 ? UINT64_MAX : pr->step * (pr->tenth + 1);
	double dt = now_seconds() - pr->t0;
	double mib = (double)done * WL_PAGE / (1024.0 * 1024.0);
	msg("%s %u%% (%.1f MiB/s)", pr->label, pr->tenth * 10, dt > 0 ? mib / dt : 0.0);
}

void page_diff_count(const uint64_t *p, uint64_t base, struct page_diff *d)
{
	memset(d, 0, sizeof(*d));
	for (unsigned k = 0; k < WL_WORDS; k++) {
		uint64_t x = p[k] ^ (base + k);
		if (x == 0)
			continue;
		if (d->words == 0) {
			d->first = k;
			d->expected = base + k;
			d->actual = p[k];
		}
		d->words++;
		for (unsigned b = 0; b < 8; b++)
			d->bytes += ((x >> (8 * b)) & 0xff) != 0;
	}
}

const char *page_diff_kind(const uint64_t *p, const struct page_diff *d, uint64_t prev_base,
			   bool have_prev, char *buf, size_t len)
{
	bool zero = true, pattern = true;
	for (unsigned k = 0; k < WL_WORDS; k++) {
		zero = zero && p[k] == 0;
		pattern = pattern && p[k] == p[0] + k;
	}
	if (zero)
		snprintf(buf, len, "all-zero page");
	else if (d->words < WL_WORDS)
		snprintf(buf, len, "partly wrong: %u of %u words differ", d->words, WL_WORDS);
	else if (have_prev && !page_differs(p, prev_base))
		snprintf(buf, len, "stale: holds the previous pass's content");
	else if (pattern)
		snprintf(buf, len, "a whole pattern page, but another page's (wrong slot?)");
	else
		snprintf(buf, len, "every word wrong");
	return buf;
}

/* A bijection on [0, 2^bits) (add, multiply by an odd number, xorshift; each
 * step invertible), walked in cycles until it lands in [0, n). */
void perm_init(struct perm *pm, uint64_t n, uint64_t key)
{
	unsigned bits = 0;
	while (bits < 64 && (1ULL << bits) < n)
		bits++;
	pm->n = n;
	pm->mask = bits >= 64 ? UINT64_MAX : (1ULL << bits) - 1;
	pm->shift = bits / 2 ? bits / 2 : 1;
	for (unsigned r = 0; r < 4; r++) {
		key = splitmix64(key);
		pm->add[r] = key;
		key = splitmix64(key);
		pm->mul[r] = key | 1;
	}
}

static inline uint64_t perm_round(const struct perm *pm, uint64_t x)
{
	for (unsigned r = 0; r < 4; r++) {
		x = (x + pm->add[r]) & pm->mask;
		x = (x * pm->mul[r]) & pm->mask;
		x ^= x >> pm->shift;
	}
	return x;
}

uint64_t perm_at(const struct perm *pm, uint64_t i)
{
	uint64_t x = perm_round(pm, i);
	while (x >= pm->n)
		x = perm_round(pm, x);
	return x;
}
