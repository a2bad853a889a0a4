/* nswap-workload: command line, planning, process orchestration and the JSON
 * result line.  See README.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define DEFAULT_RATIO       1.5
#define DEFAULT_SEED        1ULL
#define DEFAULT_FILE_DIR    "/var/tmp"
#define DEFAULT_FSYNC_EVERY (64ULL << 20)
#define MAX_PASSES          1000u
#define MAX_RATIO           1000.0

struct opts {
	unsigned workload; /* 1..4 */
	unsigned procs;
	bool have_size, have_ratio, have_file_size, have_file_dir;
	uint64_t size, file_size, fsync_every, seed, inject;
	double ratio;
	unsigned passes;
	const char *file_dir, *size_arg;
	bool keep_file, progress, dry_run;
	const char *meminfo, *cgroup_root, *self_cgroup;
};

static const char usage_text[] =
	"Usage: " WL_PROG " [--workload W1|W2|W3|W4] [--procs N] [--size SIZE | --ratio R]\n"
	"                      [--seed N] [--passes N] [--file-dir DIR] [--file-size SIZE]\n"
	"                      [--fsync-every SIZE] [--keep-file] [--progress] [--dry-run]\n"
	"\n"
	"The Nswap paper's workloads (Euro-Par 2003, section 4.1), verifying every byte:\n"
	"  W1  sequential write of the region, then sequential read\n"
	"  W2  random-order write of every page, then random-order read of every page\n"
	"  W3  W1 plus a concurrent sequential file writer (write+fsync, then read back)\n"
	"  W4  W2 plus the file writer\n"
	"\n"
	"Options:\n"
	"  --workload W      W1..W4 (default W1)\n"
	"  --procs N         N processes (1..64), each taking region/N (default 1)\n"
	"  --size SIZE       region size in bytes; K/M/G/T suffixes are powers of 1024\n"
	"  --ratio R         region = R x memory limit (default 1.5); the limit is the lowest\n"
	"                    cgroup memory limit of this process (v2 memory.max, v1\n"
	"                    memory.limit_in_bytes), or MemTotal if lower or unset\n"
	"  --seed N          pattern seed (default 1; decimal or 0x hex)\n"
	"  --passes N        write+read rounds, each with a new pattern (default 1)\n"
	"  --file-dir DIR    W3/W4: directory of the file (default " DEFAULT_FILE_DIR ")\n"
	"  --file-size SIZE  W3/W4: file size (default half the region)\n"
	"  --fsync-every SIZE  W3/W4: fsync after this many bytes (default 64M; 0 = at end)\n"
	"  --keep-file       W3/W4: do not delete the file afterwards\n"
	"  --progress        print progress every 10%% of each phase\n"
	"  --dry-run         print the planned sizes as JSON and exit\n"
	"  -h, --help        this text\n"
	"\n"
	"Self-test and test hooks:\n"
	"  --inject-corruption N  flip one byte in N pages between the (last) write and read\n"
	"                    phases; the run must then exit 1 with mismatched_pages == N\n"
	"  --meminfo PATH    read MemTotal from PATH instead of /proc/meminfo\n"
	"  --cgroup-root PATH  cgroup mount instead of /sys/fs/cgroup\n"
	"  --proc-cgroup PATH  cgroup membership instead of /proc/self/cgroup\n"
	"\n"
	"Output: progress on stderr, one JSON line on stdout.\n"
	"Exit: 0 all verified, 1 mismatch, 2 usage/configuration error,\n"
	"      3 a process died or failed (allocation, I/O) or the run was interrupted.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	msg("%s", buf);
	msg("see '" WL_PROG " --help'");
	exit(WL_EXIT_USAGE);
}

enum {
	O_WORKLOAD = 256, O_PROCS, O_SIZE, O_RATIO, O_SEED, O_PASSES, O_FILE_DIR, O_FILE_SIZE,
	O_FSYNC_EVERY, O_KEEP_FILE, O_PROGRESS, O_DRY_RUN, O_INJECT, O_MEMINFO, O_CGROUP_ROOT,
	O_PROC_CGROUP,
};

static const struct option long_opts[] = {
	{"workload", required_argument, NULL, O_WORKLOAD},
	{"procs", required_argument, NULL, O_PROCS},
	{"size", required_argument, NULL, O_SIZE},
	{"ratio", required_argument, NULL, O_RATIO},
	{"seed", required_argument, NULL, O_SEED},
	{"passes", required_argument, NULL, O_PASSES},
	{"file-dir", required_argument, NULL, O_FILE_DIR},
	{"file-size", required_argument, NULL, O_FILE_SIZE},
	{"fsync-every", required_argument, NULL, O_FSYNC_EVERY},
	{"keep-file", no_argument, NULL, O_KEEP_FILE},
	{"progress", no_argument, NULL, O_PROGRESS},
	{"dry-run", no_argument, NULL, O_DRY_RUN},
	{"inject-corruption", required_argument, NULL, O_INJECT},
	{"meminfo", required_argument, NULL, O_MEMINFO},
	{"cgroup-root", required_argument, NULL, O_CGROUP_ROOT},
	{"proc-cgroup", required_argument, NULL, O_PROC_CGROUP},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static const char size_form[] =
	"use bytes or a whole number with a K, M, G or T suffix (powers of 1024), e.g. 512M";

static void parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->workload = 1;
	o->procs = 1;
	o->ratio = DEFAULT_RATIO;
	o->seed = DEFAULT_SEED;
	o->passes = 1;
	o->file_dir = DEFAULT_FILE_DIR;
	o->fsync_every = DEFAULT_FSYNC_EVERY;
	o->meminfo = "/proc/meminfo";
	o->cgroup_root = "/sys/fs/cgroup";
	o->self_cgroup = "/proc/self/cgroup";

	opterr = 0;
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			exit(WL_EXIT_OK);
		case O_WORKLOAD: {
			const char *w = optarg;
			if (w[0] == 'W' || w[0] == 'w')
				w++;
			if (w[0] < '1' || w[0] > '4' || w[1] != '\0')
				usage_error("--workload '%s': use W1, W2, W3 or W4", optarg);
			o->workload = (unsigned)(w[0] - '0');
			break;
		}
		case O_PROCS:
			if (!parse_u64(optarg, 10, &v) || v < 1 || v > WL_MAX_PROCS)
				usage_error("--procs '%s': use an integer from 1 to %u", optarg,
					    WL_MAX_PROCS);
			o->procs = (unsigned)v;
			break;
		case O_SIZE:
			if (!parse_size(optarg, &o->size) || o->size == 0)
				usage_error("--size '%s': %s", optarg, size_form);
			o->have_size = true;
			o->size_arg = optarg;
			break;
		case O_RATIO: {
			char *end;
			errno = 0;
			double r = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' || !isfinite(r) || r <= 0 ||
			    r > MAX_RATIO)
				usage_error("--ratio '%s': use a positive number up to %g, e.g. 1.5 "
					    "(times the memory limit)",
					    optarg, MAX_RATIO);
			o->ratio = r;
			o->have_ratio = true;
			break;
		}
		case O_SEED:
			if (!parse_u64(optarg, 0, &o->seed))
				usage_error("--seed '%s': use an unsigned 64-bit integer (decimal or "
					    "0x hex)",
					    optarg);
			break;
		case O_PASSES:
			if (!parse_u64(optarg, 10, &v) || v < 1 || v > MAX_PASSES)
				usage_error("--passes '%s': use an integer from 1 to %u", optarg,
					    MAX_PASSES);
			o->passes = (unsigned)v;
			break;
		case O_FILE_DIR:
			if (optarg[0] == '\0')
				usage_error("--file-dir '': use an existing writable directory");
			o->file_dir = optarg;
			o->have_file_dir = true;
			break;
		case O_FILE_SIZE:
			if (!parse_size(optarg, &o->file_size) || o->file_size < WL_PAGE)
				usage_error("--file-size '%s': use a size of at least 4K; %s", optarg,
					    size_form);
			o->have_file_size = true;
			break;
		case O_FSYNC_EVERY:
			if (!parse_size(optarg, &o->fsync_every))
				usage_error("--fsync-every '%s': %s (0 = only at the end)", optarg,
					    size_form);
			break;
		case O_KEEP_FILE: o->keep_file = true; break;
		case O_PROGRESS: o->progress = true; break;
		case O_DRY_RUN: o->dry_run = true; break;
		case O_INJECT:
			if (!parse_u64(optarg, 10, &o->inject))
				usage_error("--inject-corruption '%s': use a number of pages (an "
					    "integer from 0 to the region's page count)",
					    optarg);
			break;
		case O_MEMINFO: o->meminfo = optarg; break;
		case O_CGROUP_ROOT: o->cgroup_root = optarg; break;
		case O_PROC_CGROUP: o->self_cgroup = optarg; break;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s' (all settings are --options)", argv[optind]);
	if (o->have_size && o->have_ratio)
		usage_error("--size and --ratio: give one of them, not both");
	if (o->workload <= 2 && (o->have_file_dir || o->have_file_size))
		msg("note: --file-dir/--file-size are ignored for W%u (no file writer)", o->workload);
}

/* ---- planning ------------------------------------------------------------- */

struct plan {
	uint64_t pages;       /* whole region */
	uint64_t file_size;   /* 0 = no file writer */
	char file_path[4096];
	struct memlimit ml;
};

static uint64_t proc_pages(const struct plan *pl, unsigned procs, unsigned i)
{
	return pl->pages / procs + (i < pl->pages % procs ? 1 : 0);
}

static uint64_t share(uint64_t total, unsigned procs, unsigned i)
{
	return total / procs + (i < total % procs ? 1 : 0);
}

static void make_plan(const struct opts *o, struct plan *pl)
{
	char hb[32], hb2[32];
	memset(pl, 0, sizeof(*pl));
	memlimit_read(o->meminfo, o->cgroup_root, o->self_cgroup, &pl->ml);

	uint64_t bytes;
	if (o->have_size) {
		bytes = o->size;
	} else {
		if (!pl->ml.have_limit)
			usage_error("--ratio %g: no memory limit found (no cgroup limit, and no "
				    "MemTotal in %s); use --size",
				    o->ratio, o->meminfo);
		long double b = (long double)o->ratio * (long double)pl->ml.limit;
		if (b >= 18446744073709547520.0L)
			usage_error("--ratio %g: region too large", o->ratio);
		bytes = (uint64_t)b;
		if (bytes == 0)
			bytes = 1;
	}
	pl->pages = bytes / WL_PAGE + (bytes % WL_PAGE ? 1 : 0);
	if (pl->pages < o->procs)
		usage_error("%s: %llu pages is too small for --procs %u (each process needs at "
			    "least one 4 KiB page)",
			    o->have_size ? "--size" : "--ratio", (unsigned long long)pl->pages,
			    o->procs);
	if (o->inject > pl->pages)
		usage_error("--inject-corruption '%llu': use an integer from 0 to the region's "
			    "page count (%llu)",
			    (unsigned long long)o->inject, (unsigned long long)pl->pages);

	if (o->workload >= 3) {
		uint64_t fs = o->have_file_size ? o->file_size : pl->pages * WL_PAGE / 2;
		fs = (fs + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
		if (fs < WL_PAGE)
			fs = WL_PAGE;
		pl->file_size = fs;
		struct stat st;
		const char *why = NULL;
		if (stat(o->file_dir, &st) != 0)
			why = strerror(errno);
		else if (!S_ISDIR(st.st_mode))
			why = "not a directory";
		else if (access(o->file_dir, W_OK | X_OK) != 0)
			why = strerror(errno);
		if (why != NULL)
			usage_error("--file-dir '%s': use an existing writable directory (%s)",
				    o->file_dir, why);
		struct statvfs sv;
		if (statvfs(o->file_dir, &sv) == 0) {
			uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
			if (avail < fs)
				usage_error("--file-size %s: --file-dir '%s' has only %s free",
					    human_bytes(fs, hb, sizeof(hb)), o->file_dir,
					    human_bytes(avail, hb2, sizeof(hb2)));
		}
		if (snprintf(pl->file_path, sizeof(pl->file_path), "%s/" WL_PROG ".%ld.dat",
			     o->file_dir, (long)getpid()) >= (int)sizeof(pl->file_path))
			usage_error("--file-dir '%s': path too long", o->file_dir);
	}
}

static void json_u64_or_null(FILE *f, bool have, uint64_t v)
{
	if (have)
		fprintf(f, "%llu", (unsigned long long)v);
	else
		fputs("null", f);
}

static void print_dry_run(const struct opts *o, const struct plan *pl)
{
	FILE *f = stdout;
	fprintf(f, "{\"dry_run\":true,\"workload\":\"W%u\",\"procs\":%u,\"size_bytes\":%llu,"
		   "\"pages\":%llu,\"proc_pages\":[",
		o->workload, o->procs, (unsigned long long)(pl->pages * WL_PAGE),
		(unsigned long long)pl->pages);
	for (unsigned i = 0; i < o->procs; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)proc_pages(pl, o->procs, i));
	fprintf(f, "],\"passes\":%u,\"seed\":%llu,\"ratio\":", o->passes,
		(unsigned long long)o->seed);
	if (o->have_size)
		fputs("null", f);
	else
		fprintf(f, "%g", o->ratio);
	fputs(",\"memory_limit_bytes\":", f);
	json_u64_or_null(f, pl->ml.have_limit, pl->ml.limit);
	fputs(",\"limit_source\":", f);
	json_str(f, pl->ml.source);
	fputs(",\"memtotal_bytes\":", f);
	json_u64_or_null(f, pl->ml.have_memtotal, pl->ml.memtotal);
	fputs(",\"cgroup_limit_bytes\":", f);
	json_u64_or_null(f, pl->ml.have_cgroup, pl->ml.cgroup);
	fputs(",\"cgroup_limit_file\":", f);
	json_str(f, pl->ml.have_cgroup ? pl->ml.cgroup_file : NULL);
	fputs(",\"file_writer\":", f);
	if (pl->file_size) {
		fputs("{\"dir\":", f);
		json_str(f, o->file_dir);
		fprintf(f, ",\"size_bytes\":%llu,\"fsync_every_bytes\":%llu}",
			(unsigned long long)pl->file_size, (unsigned long long)o->fsync_every);
	} else {
		fputs("null", f);
	}
	fprintf(f, ",\"inject_corruption\":%llu}\n", (unsigned long long)o->inject);
}

/* ---- processes ------------------------------------------------------------ */

static volatile sig_atomic_t g_interrupted;
static pid_t g_pids[WL_MAX_PROCS + 1];
static unsigned g_npids;

static void on_signal(int sig)
{
	int saved = errno;
	g_interrupted = sig;
	for (unsigned i = 0; i < g_npids; i++)
		if (g_pids[i] > 0)
			kill(g_pids[i], SIGTERM);
	errno = saved;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};

static void signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
}

struct run_state {
	struct proc_result *res;   /* [procs], then the file writer's result */
	struct file_result *fres;
	int wstatus[WL_MAX_PROCS + 1];
	bool reaped[WL_MAX_PROCS + 1];
	unsigned nchildren;
};

/* Fork one child; returns false if fork failed. */
static bool spawn(struct run_state *rs, unsigned slot, const struct region_job *rj,
		  const struct file_job *fj, pid_t parent)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
			signal(caught[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(WL_EXIT_FAILED);
		int rc;
		if (rj != NULL) {
			rs->res[slot].state = 1;
			rc = region_run(rj, &rs->res[slot]);
			rs->res[slot].status = rc;
			rs->res[slot].state = 2;
		} else {
			rs->fres->state = 1;
			rc = file_run(fj, rs->fres);
			rs->fres->status = rc;
			rs->fres->state = 2;
		}
		_exit(rc);
	}
	if (pid > 0) {
		g_pids[slot] = pid;
		if (slot + 1 > g_npids)
			g_npids = slot + 1;
		rs->nchildren++;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid > 0;
}

static void wait_all(struct run_state *rs)
{
	unsigned live = rs->nchildren;
	while (live > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (unsigned i = 0; i < g_npids; i++) {
			if (g_pids[i] == pid) {
				rs->wstatus[i] = st;
				rs->reaped[i] = true;
				g_pids[i] = -pid; /* reaped: never signal a recycled pid */
				live--;
				break;
			}
		}
	}
}

/* Describes why child `slot` failed into buf; returns false if it did not fail. */
static bool child_failure(const struct run_state *rs, unsigned slot, const char *who, int rc_ok,
			  const char *child_error, char *buf, size_t len)
{
	if (!rs->reaped[slot]) {
		snprintf(buf, len, "%s: not started or not reaped", who);
		return true;
	}
	int st = rs->wstatus[slot];
	if (WIFSIGNALED(st)) {
		char name[32];
		signal_name(WTERMSIG(st), name, sizeof(name));
		snprintf(buf, len, "%s: killed by %s%s", who, name,
			 WTERMSIG(st) == SIGKILL ? " (out of memory? see the kernel log for the "
						   "OOM killer)"
						 : "");
		return true;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (code == rc_ok || code == WL_EXIT_MISMATCH)
		return false;
	if (child_error != NULL && child_error[0] != '\0')
		snprintf(buf, len, "%s", child_error);
	else
		snprintf(buf, len, "%s: exited with status %d", who, code);
	return true;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	static struct plan pl;
	make_plan(&o, &pl);
	if (o.dry_run) {
		print_dry_run(&o, &pl);
		return WL_EXIT_OK;
	}

	char hb[32], hl[32];
	uint64_t size_bytes = pl.pages * WL_PAGE;
	msg("W%u: %u process%s, region %s (%llu pages), memory limit %s (%s), seed %llu, "
	    "%u pass%s",
	    o.workload, o.procs, o.procs == 1 ? "" : "es", human_bytes(size_bytes, hb, sizeof(hb)),
	    (unsigned long long)pl.pages,
	    pl.ml.have_limit ? human_bytes(pl.ml.limit, hl, sizeof(hl)) : "unknown",
	    pl.ml.source ? pl.ml.source : "none", (unsigned long long)o.seed, o.passes,
	    o.passes == 1 ? "" : "es");

	size_t shm_len = sizeof(struct proc_result) * WL_MAX_PROCS + sizeof(struct file_result);
	void *shm = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		msg("mmap of the shared result area failed: %s", strerror(errno));
		return WL_EXIT_FAILED;
	}
	static struct run_state rs;
	rs.res = shm;
	rs.fres = (struct file_result *)(rs.res + WL_MAX_PROCS);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		sigaction(caught[i], &sa, NULL);

	uint64_t in0 = 0, out0 = 0, in1 = 0, out1 = 0;
	bool have_vm = read_vmstat(&in0, &out0);
	pid_t self = getpid();
	double t0 = now_seconds();
	bool fork_failed = false;
	int fork_errno = 0;

	struct file_job fj = {
		.path = pl.file_path,
		.size = pl.file_size,
		.fsync_every = o.fsync_every,
		.seed = o.seed,
		.progress = o.progress,
	};
	if (pl.file_size > 0 && !spawn(&rs, WL_MAX_PROCS, NULL, &fj, self)) {
		fork_failed = true;
		fork_errno = errno;
	}
	for (unsigned i = 0; i < o.procs && !fork_failed && !g_interrupted; i++) {
		struct region_job rj = {
			.proc = i,
			.pages = proc_pages(&pl, o.procs, i),
			.random = o.workload == 2 || o.workload == 4,
			.passes = o.passes,
			.seed = o.seed,
			.inject = share(o.inject, o.procs, i),
			.progress = o.progress,
		};
		if (!spawn(&rs, i, &rj, NULL, self)) {
			fork_failed = true;
			fork_errno = errno;
		}
	}
	if (fork_failed) {
		msg("fork failed: %s; stopping the started processes", strerror(fork_errno));
		on_signal(SIGTERM);
		g_interrupted = 0;
	}
	wait_all(&rs);
	double seconds = now_seconds() - t0;
	bool have_vm1 = have_vm && read_vmstat(&in1, &out1);
	if (pl.file_size > 0 && !o.keep_file)
		(void)unlink(pl.file_path); /* normally done already; not if the writer died */

	/* aggregate */
	uint64_t verified = 0, bad_pages = 0, bad_bytes = 0;
	double wsec = 0, rsec = 0;
	unsigned failed = 0;
	char failures[WL_MAX_PROCS + 2][320];
	unsigned nfail = 0;
	if (fork_failed)
		snprintf(failures[nfail++], sizeof(failures[0]), "fork failed: %s",
			 strerror(fork_errno));
	for (unsigned i = 0; i < o.procs; i++) {
		const struct proc_result *r = &rs.res[i];
		verified += r->bytes_verified;
		bad_pages += r->mismatched_pages;
		bad_bytes += r->mismatched_bytes;
		if (r->write_seconds > wsec)
			wsec = r->write_seconds;
		if (r->read_seconds > rsec)
			rsec = r->read_seconds;
		char who[32];
		snprintf(who, sizeof(who), "proc %u", i);
		if (fork_failed && !rs.reaped[i])
			continue; /* never started: counted by the fork failure */
		if (child_failure(&rs, i, who, WL_EXIT_OK, r->error, failures[nfail],
				  sizeof(failures[0]))) {
			nfail++;
			failed++;
		}
	}
	bool file_bad = false;
	if (pl.file_size > 0 && rs.reaped[WL_MAX_PROCS]) {
		if (child_failure(&rs, WL_MAX_PROCS, "file writer", WL_EXIT_OK, rs.fres->error,
				  failures[nfail], sizeof(failures[0]))) {
			nfail++;
			failed++;
		}
		file_bad = rs.fres->mismatched_blocks > 0;
	}

	/* the result line */
	FILE *f = stdout;
	fprintf(f,
		"{\"workload\":\"W%u\",\"procs\":%u,\"size_bytes\":%llu,\"seconds\":%.6f,"
		"\"write_seconds\":%.6f,\"read_seconds\":%.6f,\"bytes_verified\":%llu,"
		"\"mismatched_pages\":%llu,\"mismatched_bytes\":%llu,\"file_writer\":",
		o.workload, o.procs, (unsigned long long)size_bytes, seconds, wsec, rsec,
		(unsigned long long)verified, (unsigned long long)bad_pages,
		(unsigned long long)bad_bytes);
	if (pl.file_size > 0) {
		const struct file_result *fr = rs.fres;
		fputs("{\"path\":", f);
		json_str(f, pl.file_path);
		fprintf(f,
			",\"size_bytes\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"verify_seconds\":%.6f,"
			"\"bytes_verified\":%llu,\"verified\":%s,\"method\":",
			(unsigned long long)pl.file_size, (unsigned long long)fr->bytes, fr->seconds,
			fr->verify_seconds, (unsigned long long)fr->bytes_verified,
			fr->state == 2 && fr->verified ? "true" : "false");
		json_str(f, fr->method[0] ? fr->method : NULL);
		fprintf(f, ",\"mismatched_blocks\":%llu,\"mismatched_bytes\":%llu,\"error\":",
			(unsigned long long)fr->mismatched_blocks,
			(unsigned long long)fr->mismatched_bytes);
		json_str(f, fr->error[0] ? fr->error : NULL);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	fputs(",\"pswpin_delta\":", f);
	json_u64_or_null(f, have_vm1, in1 - in0);
	fputs(",\"pswpout_delta\":", f);
	json_u64_or_null(f, have_vm1, out1 - out0);
	fprintf(f, ",\"failed_procs\":%u,\"memory_limit_bytes\":", failed);
	json_u64_or_null(f, pl.ml.have_limit, pl.ml.limit);
	fputs(",\"limit_source\":", f);
	json_str(f, pl.ml.source);
	fprintf(f, ",\"passes\":%u,\"seed\":%llu,\"page_size\":%u,\"ratio\":", o.passes,
		(unsigned long long)o.seed, WL_PAGE);
	if (o.have_size)
		fputs("null", f);
	else
		fprintf(f, "%g", o.ratio);
	fputs(",\"failures\":[", f);
	for (unsigned i = 0; i < nfail; i++) {
		if (i)
			fputc(',', f);
		json_str(f, failures[i]);
	}
	fputs("],\"interrupted\":", f);
	if (g_interrupted) {
		char name[32];
		signal_name(g_interrupted, name, sizeof(name));
		json_str(f, name);
	} else {
		fputs("null", f);
	}
	fputs("}\n", f);
	fflush(f);

	int rc;
	if (bad_pages > 0 || file_bad)
		rc = WL_EXIT_MISMATCH;
	else if (nfail > 0 || g_interrupted)
		rc = WL_EXIT_FAILED;
	else
		rc = WL_EXIT_OK;
	for (unsigned i = 0; i < nfail; i++)
		msg("FAILED: %s", failures[i]);
	if (rc == WL_EXIT_OK)
		msg("OK: %s verified in %.2f s", human_bytes(verified, hb, sizeof(hb)), seconds);
	else if (rc == WL_EXIT_MISMATCH)
		msg("MISMATCH: %llu pages / %llu bytes wrong in memory%s",
		    (unsigned long long)bad_pages, (unsigned long long)bad_bytes,
		    file_bad ? ", and the file read back wrong" : "");
	return rc;
}
