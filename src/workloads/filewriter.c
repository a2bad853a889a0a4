/* The W3/W4 file writer: a large sequential write()+fsync() of a patterned
 * file, then a read-back that bypasses the page cache (O_DIRECT, or
 * fsync + posix_fadvise(DONTNEED) where O_DIRECT is refused) checking every
 * byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"

#define CHUNK (1024u * 1024u) /* bytes per write()/read() */

static int fail(struct file_result *res, const char *what, const char *path, int err)
{
	snprintf(res->error, sizeof(res->error), "file writer: %s %s: %s", what, path,
		 strerror(err));
	msg("%s", res->error);
	return WL_EXIT_FAILED;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return false;
		if (w == 0) {
			errno = EIO;
			return false;
		}
		p += w;
		len -= (size_t)w;
	}
	return true;
}

/* Reads up to len bytes; returns bytes read (short only at end of file) or -1. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int open_uncached(const char *path, struct file_result *res)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (fd >= 0) {
		snprintf(res->method, sizeof(res->method), "O_DIRECT");
		return fd;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* The file was fsync()ed, so its cached pages are clean and can be dropped. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	snprintf(res->method, sizeof(res->method), "fadvise");
	return fd;
}

static int verify(const struct file_job *job, struct file_result *res, uint64_t *buf,
		  uint64_t key)
{
	int fd = open_uncached(job->path, res);
	if (fd < 0)
		return fail(res, "open for verify", job->path, errno);
	double t0 = now_seconds();
	uint64_t blocks = job->size / WL_PAGE, block = 0;
	unsigned printed = 0;
	struct progress pr;
	progress_start(&pr, job->progress, "[file] verify", blocks);
	while (block < blocks) {
		uint64_t want = blocks - block;
		if (want > CHUNK / WL_PAGE)
			want = CHUNK / WL_PAGE;
		ssize_t got = read_full(fd, buf, (size_t)want * WL_PAGE);
		if (got < 0 && errno == EINVAL && block == 0 && strcmp(res->method, "O_DIRECT") == 0) {
			/* O_DIRECT accepted at open() but not for reads here: fall back. */
			close(fd);
			fd = open(job->path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return fail(res, "open for verify", job->path, errno);
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			snprintf(res->method, sizeof(res->method), "fadvise");
			continue;
		}
		if (got < 0) {
			int err = errno;
			close(fd);
			return fail(res, "read", job->path, err);
		}
		if ((uint64_t)got != want * WL_PAGE) {
			close(fd);
			snprintf(res->error, sizeof(res->error),
				 "file writer: %s is short: %llu bytes read back, %llu written",
				 job->path, (unsigned long long)(block * WL_PAGE + (uint64_t)got),
				 (unsigned long long)job->size);
			msg("%s", res->error);
			return WL_EXIT_FAILED;
		}
		for (uint64_t i = 0; i < want; i++, block++) {
			const uint64_t *p = buf + i * WL_WORDS;
			uint64_t base = page_base(key, block);
			if (page_differs(p, base)) {
				struct page_diff d;
				page_diff_count(p, base, &d);
				res->mismatched_blocks++;
				res->mismatched_bytes += d.bytes;
				if (printed < WL_MAX_REPORT) {
					char kind[96];
					printed++;
					msg("[file] MISMATCH block %llu word %u: expected 0x%016llx, "
					    "found 0x%016llx (%u bytes differ; %s)",
					    (unsigned long long)block, d.first,
					    (unsigned long long)d.expected, (unsigned long long)d.actual,
					    d.bytes, page_diff_kind(p, &d, 0, false, kind, sizeof(kind)));
				}
			}
			res->bytes_verified += WL_PAGE;
		}
		progress_tick(&pr, block);
	}
	close(fd);
	res->verify_seconds = now_seconds() - t0;
	res->verified = res->mismatched_blocks == 0;
	if (!res->verified) {
		msg("[file] %llu mismatched blocks, %llu mismatched bytes",
		    (unsigned long long)res->mismatched_blocks,
		    (unsigned long long)res->mismatched_bytes);
		return WL_EXIT_MISMATCH;
	}
	return WL_EXIT_OK;
}

int file_run(const struct file_job *job, struct file_result *res)
{
	uint64_t *buf = aligned_alloc(WL_PAGE, CHUNK);
	if (buf == NULL)
		return fail(res, "allocate buffer for", job->path, ENOMEM);
	uint64_t key = stream_key(job->seed, WL_FILE_PROC, 1);
	char hb[32], hf[32];
	if (job->fsync_every > 0)
		human_bytes(job->fsync_every, hf, sizeof(hf));
	else
		snprintf(hf, sizeof(hf), "only at the end");
	msg("[file] sequential write of %s to %s (fsync %s%s)",
	    human_bytes(job->size, hb, sizeof(hb)), job->path, job->fsync_every > 0 ? "every " : "", hf);

	int fd = open(job->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(buf);
		return fail(res, "create", job->path, errno);
	}
	double t0 = now_seconds();
	uint64_t blocks = job->size / WL_PAGE, block = 0, since_sync = 0;
	struct progress pr;
	progress_start(&pr, job->progress, "[file] write", blocks);
	while (block < blocks) {
		uint64_t n = blocks - block;
		if (n > CHUNK / WL_PAGE)
			n = CHUNK / WL_PAGE;
		for (uint64_t i = 0; i < n; i++)
			fill_page(buf + i * WL_WORDS, page_base(key, block + i));
		if (!write_all(fd, buf, (size_t)n * WL_PAGE)) {
			int err = errno;
			close(fd);
			free(buf);
			return fail(res, "write", job->path, err);
		}
		block += n;
		res->bytes += n * WL_PAGE;
		since_sync += n * WL_PAGE;
		if (job->fsync_every > 0 && since_sync >= job->fsync_every) {
			if (fsync(fd) != 0) {
				int err = errno;
				close(fd);
				free(buf);
				return fail(res, "fsync", job->path, err);
			}
			since_sync = 0;
		}
		progress_tick(&pr, block);
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		int err = errno;
		free(buf);
		return fail(res, "fsync/close", job->path, err);
	}
	res->seconds = now_seconds() - t0;
	msg("[file] wrote %s in %.2f s; verifying", hb, res->seconds);

	int rc = verify(job, res, buf, key);
	free(buf);
	return rc;
}
