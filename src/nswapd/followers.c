// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* The clients that follow moved pages; see followers.h. */
#include <stdlib.h>

#include "followers.h"

int followers_init(struct followers *f, uint32_t cap)
{
	f->n = 0;
	f->cap = cap;
	f->v = calloc(cap ? cap : 1, sizeof(*f->v));
	if (!f->v)
		return -1;
	pthread_mutex_init(&f->lock, NULL);
	return 0;
}

void followers_free(struct followers *f)
{
	if (!f->v)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->v);
	f->v = NULL;
}

static uint32_t find(const struct followers *f, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < f->n && f->v[i].client_id != id; i++)
		;
	return i;
}

void followers_add(struct followers *f, uint64_t client_id)
{
	uint32_t i;

	pthread_mutex_lock(&f->lock);
	i = find(f, client_id);
	if (i < f->n)
		f->v[i].conns++;
	else if (f->n < f->cap)	/* always: no more connections than cap */
		f->v[f->n++] = (struct follower){ .client_id = client_id, .conns = 1 };
	pthread_mutex_unlock(&f->lock);
}

void followers_del(struct followers *f, uint64_t client_id)
{
	uint32_t i;

	pthread_mutex_lock(&f->lock);
	i = find(f, client_id);
	if (i < f->n && !--f->v[i].conns)
		f->v[i] = f->v[--f->n];
	pthread_mutex_unlock(&f->lock);
}

int followers_contains(struct followers *f, uint64_t client_id)
{
	int found;

	pthread_mutex_lock(&f->lock);
	found = find(f, client_id) < f->n;
	pthread_mutex_unlock(&f->lock);
	return found;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint32_t followers_snapshot(struct followers *f, uint64_t *ids)
{
	uint32_t n;

	pthread_mutex_lock(&f->lock);
	n = f->n;
	for (uint32_t i = 0; i < n; i++)
		ids[i] = f->v[i].client_id;
	pthread_mutex_unlock(&f->lock);
	qsort(ids, n, sizeof(*ids), cmp_id);
	return n;
}

int followers_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_id) != NULL;
}
