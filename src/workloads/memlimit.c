/* The memory limit that --ratio multiplies: the lowest cgroup memory limit on
 * this process's cgroup path (v2 memory.max, or v1 memory.limit_in_bytes), or
 * MemTotal when that is lower or no limit is set. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

/* v1 reports "no limit" as a page-rounded LONG_MAX; treat anything this big as none. */
#define V1_UNLIMITED (1ULL << 62)

static bool read_memtotal(const char *path, uint64_t *out)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	char line[256];
	bool ok = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long kb;
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
			*out = (uint64_t)kb * 1024;
			ok = kb > 0;
			break;
		}
	}
	fclose(f);
	return ok;
}

/* Reads one limit file; true with *out set when it holds a number. */
static bool read_limit_file(const char *path, uint64_t *out)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	char buf[64] = "";
	bool ok = false;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		uint64_t v;
		if (strcmp(buf, "max") != 0 && parse_u64(buf, 10, &v) && v < V1_UNLIMITED) {
			*out = v;
			ok = true;
		}
	}
	fclose(f);
	return ok;
}

/* Walks dir = base + rel up to base, keeping the lowest limit in `file`. */
static void walk_up(struct memlimit *ml, const char *base, const char *rel, const char *file,
		    int version)
{
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s%s", base, rel) >= (int)sizeof(dir))
		return;
	size_t base_len = strlen(base);
	for (;;) {
		size_t len = strlen(dir);
		while (len > base_len && dir[len - 1] == '/')
			dir[--len] = '\0';
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		uint64_t v;
		if (read_limit_file(path, &v) && (!ml->have_cgroup || v < ml->cgroup)) {
			ml->have_cgroup = true;
			ml->cgroup = v;
			ml->cgroup_version = version;
			snprintf(ml->cgroup_file, sizeof(ml->cgroup_file), "%s", path);
		}
		if (len <= base_len)
			break;
		char *slash = strrchr(dir + base_len, '/');
		if (slash == NULL)
			break;
		*slash = '\0';
	}
}

static void read_cgroup(struct memlimit *ml, const char *root, const char *self_cgroup)
{
	FILE *f = fopen(self_cgroup, "re");
	if (f == NULL)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* hierarchy-ID:controller-list:path */
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL || c2[1] != '/')
			continue;
		*c1 = *c2 = '\0';
		const char *controllers = c1 + 1, *path = c2 + 1;
		if (strcmp(line, "0") == 0 && *controllers == '\0') {
			walk_up(ml, root, path, "memory.max", 2);
		} else {
			char list[256];
			snprintf(list, sizeof(list), ",%s,", controllers);
			if (strstr(list, ",memory,") != NULL) {
				char base[PATH_MAX];
				snprintf(base, sizeof(base), "%s/memory", root);
				walk_up(ml, base, path, "memory.limit_in_bytes", 1);
			}
		}
	}
	fclose(f);
}

void memlimit_read(const char *meminfo, const char *cgroup_root, const char *self_cgroup,
		   struct memlimit *ml)
{
	memset(ml, 0, sizeof(*ml));
	ml->have_memtotal = read_memtotal(meminfo, &ml->memtotal);
	read_cgroup(ml, cgroup_root, self_cgroup);
	if (ml->have_cgroup && (!ml->have_memtotal || ml->cgroup < ml->memtotal)) {
		ml->have_limit = true;
		ml->limit = ml->cgroup;
		ml->source = "cgroup";
	} else if (ml->have_memtotal) {
		ml->have_limit = true;
		ml->limit = ml->memtotal;
		ml->source = "meminfo";
	}
}
