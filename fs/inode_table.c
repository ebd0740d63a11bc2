/* inode_table.c - a hash table of the inodes the kernel holds (see inode_table.h). */
#include "inode_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct inode_entry {
	struct inode_entry *next;
	uint64_t ino;
	uint64_t nlookup;
	uint64_t parent;
	char *name;
	size_t namelen;
};

static size_t bucket_of(const struct inode_table *t, uint64_t ino)
{
	uint64_t h = ino * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(h >> 32) & (t->nbuckets - 1);
}

int inode_table_init(struct inode_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static void entry_free(struct inode_entry *e)
{
	free(e->name);
	free(e);
}

void inode_table_release(struct inode_table *t)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct inode_entry *e = t->buckets[i];
		while (e) {
			struct inode_entry *next = e->next;
			entry_free(e);
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	pthread_mutex_destroy(&t->lock);
}

/* Double the bucket array when the load passes 1; failure is harmless. */
static void maybe_grow(struct inode_table *t)
{
	if (t->count < t->nbuckets)
		return;
	size_t old_n = t->nbuckets;
	struct inode_entry **old = t->buckets;
	struct inode_entry **fresh = calloc(old_n * 2, sizeof(*fresh));
	if (!fresh)
		return;
	t->buckets = fresh;
	t->nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct inode_entry *e = old[i];
		while (e) {
			struct inode_entry *next = e->next;
			size_t b = bucket_of(t, e->ino);
			e->next = t->buckets[b];
			t->buckets[b] = e;
			e = next;
		}
	}
	free(old);
}

static struct inode_entry **find(struct inode_table *t, uint64_t ino)
{
	struct inode_entry **p = &t->buckets[bucket_of(t, ino)];
	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Replace the remembered name unless it is the same. */
static void set_name(struct inode_entry *e, uint64_t parent, const char *name,
		     size_t len)
{
	if (!name)
		return;
	if (e->name && e->parent == parent && e->namelen == len &&
	    memcmp(e->name, name, len) == 0)
		return;
	char *copy = malloc(len + 1);
	if (!copy)
		return; /* keep the old one: only a cache hint */
	memcpy(copy, name, len);
	copy[len] = '\0';
	free(e->name);
	e->name = copy;
	e->namelen = len;
	e->parent = parent;
}

int inode_table_remember(struct inode_table *t, uint64_t ino, uint64_t parent,
			 const char *name, size_t len)
{
	pthread_mutex_lock(&t->lock);
	struct inode_entry **p = find(t, ino);
	struct inode_entry *e = *p;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		e->ino = ino;
		*p = e;
		t->count++;
		maybe_grow(t);
	}
	e->nlookup++;
	set_name(e, parent, name, len);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

uint64_t inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n)
{
	uint64_t dropped = 0;

	pthread_mutex_lock(&t->lock);
	struct inode_entry **p = find(t, ino);
	struct inode_entry *e = *p;
	if (e) {
		dropped = n < e->nlookup ? n : e->nlookup;
		e->nlookup -= dropped;
		if (e->nlookup == 0) {
			*p = e->next;
			t->count--;
			entry_free(e);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return dropped;
}

long inode_table_snapshot(struct inode_table *t, int (*want)(uint64_t ino),
			  struct inode_ref **out)
{
	long n = 0;

	pthread_mutex_lock(&t->lock);
	struct inode_ref *refs = calloc(t->count ? t->count : 1, sizeof(*refs));
	if (!refs) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct inode_entry *e = t->buckets[i]; e; e = e->next) {
			if (want && !want(e->ino))
				continue;
			struct inode_ref *r = &refs[n++];
			r->ino = e->ino;
			if (e->name) {
				r->name = malloc(e->namelen + 1);
				if (r->name) {
					memcpy(r->name, e->name, e->namelen + 1);
					r->namelen = e->namelen;
					r->parent = e->parent;
				}
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	*out = refs;
	return n;
}

void inode_table_snapshot_free(struct inode_ref *refs, long count)
{
	for (long i = 0; i < count; i++)
		free(refs[i].name);
	free(refs);
}

void inode_table_drain(struct inode_table *t,
		       void (*fn)(void *ctx, uint64_t ino, uint64_t nlookup),
		       void *ctx)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct inode_entry *e = t->buckets[i];
		while (e) {
			struct inode_entry *next = e->next;
			if (fn)
				fn(ctx, e->ino, e->nlookup);
			entry_free(e);
			e = next;
		}
		t->buckets[i] = NULL;
	}
	t->count = 0;
	pthread_mutex_unlock(&t->lock);
}
