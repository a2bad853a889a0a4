/* nswap-workload: the Nswap paper's workloads (Newhall et al., Euro-Par 2003,
 * section 4.1), with every byte read back checked against a deterministic
 * pattern.  Shared declarations. */
#ifndef NSWAP_WORKLOAD_H
#define NSWAP_WORKLOAD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WL_PROG       "nswap-workload"
#define WL_PAGE       4096u                 /* verification unit (bytes) */
#define WL_WORDS      (WL_PAGE / 8u)        /* 64-bit words per page */
#define WL_MAX_PROCS  64u
#define WL_FILE_PROC  0xffffffffu           /* pattern "process index" of the file writer */
#define WL_MAX_REPORT 5u                    /* mismatch lines printed per process */

/* Exit statuses. */
enum {
	WL_EXIT_OK = 0,
	WL_EXIT_MISMATCH = 1,
	WL_EXIT_USAGE = 2,
	WL_EXIT_FAILED = 3,
};

/* ---- pattern ------------------------------------------------------------ */

static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Key of one (seed, process index, pass) stream. */
static inline uint64_t stream_key(uint64_t seed, uint32_t proc, uint64_t pass)
{
	uint64_t h = splitmix64(seed ^ 0x6e73776170ULL); /* "nswap" */
	h = splitmix64(h ^ proc);
	return splitmix64(h ^ (pass << 1));
}

/* First word of a page; word k of the page holds base + k. */
static inline uint64_t page_base(uint64_t key, uint64_t page)
{
	return splitmix64(key ^ page);
}

static inline void fill_page(uint64_t *restrict p, uint64_t base)
{
	for (unsigned k = 0; k < WL_WORDS; k++)
		p[k] = base + k;
}

/* True when the page differs anywhere from the pattern. */
static inline bool page_differs(const uint64_t *restrict p, uint64_t base)
{
	uint64_t diff = 0;
	for (unsigned k = 0; k < WL_WORDS; k++)
		diff |= p[k] ^ (base + k);
	return diff != 0;
}

/* Mismatch details of one page. */
struct page_diff {
	unsigned words;     /* mismatching 64-bit words */
	unsigned bytes;     /* mismatching bytes */
	unsigned first;     /* index of the first mismatching word */
	uint64_t expected;  /* that word, expected ... */
	uint64_t actual;    /* ... and found */
};
void page_diff_count(const uint64_t *p, uint64_t base, struct page_diff *d);
/* A short human description of what a wrong page holds. */
const char *page_diff_kind(const uint64_t *p, const struct page_diff *d, uint64_t prev_base,
			   bool have_prev, char *buf, size_t len);

/* ---- keyed permutation of [0, n) without a table ------------------------- */

struct perm {
	uint64_t n, mask;
	unsigned shift;
	uint64_t add[4], mul[4];
};
void perm_init(struct perm *pm, uint64_t n, uint64_t key);
uint64_t perm_at(const struct perm *pm, uint64_t i);

/* ---- memory limit -------------------------------------------------------- */

struct memlimit {
	bool have_memtotal;
	uint64_t memtotal;          /* MemTotal, bytes */
	bool have_cgroup;
	uint64_t cgroup;            /* lowest memory limit on the cgroup path, bytes */
	int cgroup_version;         /* 1 or 2 (where cgroup came from) */
	char cgroup_file[PATH_MAX + 64]; /* the file that held it */
	bool have_limit;
	uint64_t limit;             /* min(cgroup, MemTotal) */
	const char *source;         /* "cgroup", "meminfo" or NULL */
};
void memlimit_read(const char *meminfo, const char *cgroup_root, const char *self_cgroup,
		   struct memlimit *ml);

/* ---- shared results (in a MAP_SHARED page, written by the children) ------ */

struct proc_result {
	int32_t state;              /* 0 not started, 1 running, 2 finished */
	int32_t status;             /* the child's intended exit status */
	double write_seconds, read_seconds;
	uint64_t pages;
	uint64_t bytes_verified, mismatched_pages, mismatched_bytes;
	char error[200];
};

struct file_result {
	int32_t state, status;
	uint64_t bytes;             /* written */
	double seconds;             /* writing, fsyncs included */
	double verify_seconds;
	uint64_t bytes_verified, mismatched_blocks, mismatched_bytes;
	int32_t verified;
	char method[16];            /* "O_DIRECT" or "fadvise" */
	char error[300];
};

struct region_job {
	unsigned proc;              /* process index, 0-based */
	uint64_t pages;
	bool random;                /* W2/W4 order */
	unsigned passes;
	uint64_t seed;
	uint64_t inject;            /* pages to corrupt before the last read phase */
	bool progress;
};
int region_run(const struct region_job *job, struct proc_result *res);

struct file_job {
	const char *path;
	uint64_t size;              /* whole 4 KiB blocks */
	uint64_t fsync_every;       /* bytes, 0 = only at the end */
	uint64_t seed;
	bool progress;
};
int file_run(const struct file_job *job, struct file_result *res);

/* ---- utilities ----------------------------------------------------------- */

double now_seconds(void);
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *human_bytes(uint64_t n, char *buf, size_t len);
bool parse_size(const char *s, uint64_t *out);
bool parse_u64(const char *s, int base, uint64_t *out);
/* Reads pswpin/pswpout; false when /proc/vmstat cannot be read. */
bool read_vmstat(uint64_t *pswpin, uint64_t *pswpout);
void json_str(FILE *f, const char *s);

/* Progress lines every 10 % of a phase (only with --progress). */
struct progress {
	bool on;
	const char *label;
	uint64_t total, next, step;
	double t0;
	unsigned tenth;
};
void progress_start(struct progress *pr, bool on, const char *label, uint64_t total);
void progress_tick(struct progress *pr, uint64_t done);

#endif
