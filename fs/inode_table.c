/* inode_table.c - a hash table of the inodes the kernel holds (see inode_table.h). */
#include "inode_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * A name the kernel was given: in the table's name hash (by parent and
 * name) and in its inode's circular list, newest first.
 */
struct inode_name {
	struct inode_name *hnext;      /* hash chain */
	struct inode_name *prev, *next; /* the owner's names */
	struct inode_entry *owner;
	uint64_t hash;
	uint64_t parent;
	size_t len;
	char name[];                   /* len bytes and a NUL */
};

struct inode_entry {
	struct inode_entry *next;
	uint64_t ino;
	uint64_t nlookup;
	struct inode_name *names; /* newest; names->prev is the oldest */
	size_t nnames;
};

#define INITIAL_BUCKETS 1024

static size_t bucket_of(const struct inode_table *t, uint64_t ino)
{
	uint64_t h = ino * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(h >> 32) & (t->nbuckets - 1);
}

/* FNV-1a over the name, seeded with the parent. */
static uint64_t name_hash(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^
		     (parent * UINT64_C(0x9E3779B97F4A7C15));

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h ^ (h >> 32);
}

int inode_table_init(struct inode_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = INITIAL_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->name_nbuckets = INITIAL_BUCKETS;
	t->name_buckets = calloc(t->name_nbuckets, sizeof(*t->name_buckets));
	if (!t->buckets || !t->name_buckets) {
		free(t->buckets);
		free(t->name_buckets);
		memset(t, 0, sizeof(*t));
		return -ENOMEM;
	}
	t->max_extra_names = INODE_TABLE_MAX_EXTRA_NAMES;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

/* ---- names ------------------------------------------------------------ */

/* A new name, in no table yet; NULL when out of memory. */
static struct inode_name *name_new(uint64_t parent, const char *name,
				   size_t len)
{
	struct inode_name *n = malloc(sizeof(*n) + len + 1);

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->hash = name_hash(parent, name, len);
	n->parent = parent;
	n->len = len;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	return n;
}

/* The link that holds (parent, name), or the NULL link that ends its
 * chain. */
static struct inode_name **name_find(struct inode_table *t, uint64_t hash,
				     uint64_t parent, const char *name,
				     size_t len)
{
	struct inode_name **p = &t->name_buckets[hash & (t->name_nbuckets - 1)];

	while (*p && !((*p)->hash == hash && (*p)->parent == parent &&
		       (*p)->len == len && memcmp((*p)->name, name, len) == 0))
		p = &(*p)->hnext;
	return p;
}

static void hash_unlink(struct inode_table *t, struct inode_name *n)
{
	struct inode_name **p = &t->name_buckets[n->hash & (t->name_nbuckets - 1)];

	while (*p != n)
		p = &(*p)->hnext;
	*p = n->hnext;
	n->hnext = NULL;
}

/* Take n out of its owner's list. */
static void detach(struct inode_table *t, struct inode_name *n)
{
	struct inode_entry *e = n->owner;

	if (n->next == n) {
		e->names = NULL;
	} else {
		n->prev->next = n->next;
		n->next->prev = n->prev;
		if (e->names == n)
			e->names = n->next;
	}
	n->prev = n->next = NULL;
	n->owner = NULL;
	e->nnames--;
	t->names--;
	if (e->nnames == 0)
		t->named--;
}

/* Out of the hash and its owner, and freed. */
static void name_drop(struct inode_table *t, struct inode_name *n)
{
	hash_unlink(t, n);
	detach(t, n);
	free(n);
}

/* Copy n into v's next name (its text at text), drop it from the table;
 * returns where the next name's text goes. */
static char *name_take(struct inode_table *t, struct inode_name *n,
		       struct inode_inval *v, char *text)
{
	struct inode_dentry *d = &v->names[v->nnames++];
	d->parent = n->parent;
	d->child = n->owner->ino;
	d->len = n->len;
	d->name = text;
	memcpy(text, n->name, n->len + 1);
	name_drop(t, n);
	return text + d->len + 1;
}

/* Make n (hashed, detached) e's newest name; past the bound on extra
 * names, e's oldest goes. */
static void attach(struct inode_table *t, struct inode_entry *e,
		   struct inode_name *n)
{
	struct inode_name *head = e->names;

	if (!head) {
		n->prev = n->next = n;
		t->named++;
	} else {
		n->next = head;
		n->prev = head->prev;
		head->prev->next = n;
		head->prev = n;
	}
	e->names = n;
	n->owner = e;
	e->nnames++;
	t->names++;
	if (e->nnames > 1 && t->names - t->named > t->max_extra_names)
		name_drop(t, e->names->prev);
}

/* Double the name buckets when the load passes 1; failure is harmless. */
static void names_maybe_grow(struct inode_table *t)
{
	if (t->names < t->name_nbuckets)
		return;
	size_t old_n = t->name_nbuckets;
	struct inode_name **old = t->name_buckets;
	struct inode_name **fresh = calloc(old_n * 2, sizeof(*fresh));
	if (!fresh)
		return;
	t->name_buckets = fresh;
	t->name_nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct inode_name *n = old[i];
		while (n) {
			struct inode_name *next = n->hnext;
			size_t b = n->hash & (t->name_nbuckets - 1);
			n->hnext = t->name_buckets[b];
			t->name_buckets[b] = n;
			n = next;
		}
	}
	free(old);
}

/* ---- entries ---------------------------------------------------------- */

static void entry_free(struct inode_table *t, struct inode_entry *e)
{
	while (e->names)
		name_drop(t, e->names);
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
			entry_free(t, e);
			e = next;
		}
	}
	free(t->buckets);
	free(t->name_buckets);
	t->buckets = NULL;
	t->name_buckets = NULL;
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

int inode_table_remember(struct inode_table *t, uint64_t ino, uint64_t parent,
			 const char *name, size_t len)
{
	struct inode_name *fresh = NULL;

	if (name) {
		fresh = name_new(parent, name, len);
		if (!fresh)
			return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	struct inode_entry **p = find(t, ino);
	struct inode_entry *e = *p;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&t->lock);
			free(fresh);
			return -ENOMEM;
		}
		e->ino = ino;
		*p = e;
		t->count++;
		maybe_grow(t);
	}
	e->nlookup++;
	if (fresh) {
		struct inode_name **np = name_find(t, fresh->hash, parent, name,
						   len);
		struct inode_name *n = *np;
		if (n) {
			/* known: now e's newest (it may have been another's) */
			free(fresh);
			detach(t, n);
			attach(t, e, n);
		} else {
			*np = fresh;
			attach(t, e, fresh);
			names_maybe_grow(t);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

bool inode_table_has(struct inode_table *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	bool has = *find(t, ino) != NULL;
	pthread_mutex_unlock(&t->lock);
	return has;
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
			entry_free(t, e);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return dropped;
}

void inode_table_unname(struct inode_table *t, uint64_t parent,
			const char *name, size_t len)
{
	uint64_t h = name_hash(parent, name, len);

	pthread_mutex_lock(&t->lock);
	struct inode_name *n = *name_find(t, h, parent, name, len);
	if (n)
		name_drop(t, n);
	pthread_mutex_unlock(&t->lock);
}

int inode_table_rename(struct inode_table *t, uint64_t parent,
		       const char *name, size_t len, uint64_t newparent,
		       const char *newname, size_t newlen, bool exchange)
{
	uint64_t h = name_hash(parent, name, len);
	uint64_t newh = name_hash(newparent, newname, newlen);
	struct inode_name *fresh = NULL;
	int rc = 0;

	if (!exchange)
		fresh = name_new(newparent, newname, newlen);

	pthread_mutex_lock(&t->lock);
	struct inode_name *from = *name_find(t, h, parent, name, len);
	struct inode_name *to = *name_find(t, newh, newparent, newname, newlen);
	if (from == to) {
		/* the same name (or neither known): nothing moves */
	} else if (exchange) {
		if (from && to) {
			struct inode_entry *a = from->owner, *b = to->owner;
			detach(t, from);
			detach(t, to);
			attach(t, b, from);
			attach(t, a, to);
		} else {
			/* one side's inode is unknown: forget the other */
			name_drop(t, from ? from : to);
		}
	} else {
		struct inode_entry *moved = from ? from->owner : NULL;
		if (to)
			name_drop(t, to); /* the kernel's dentry goes negative */
		if (from)
			name_drop(t, from);
		if (moved && fresh) {
			*name_find(t, newh, newparent, newname, newlen) = fresh;
			attach(t, moved, fresh);
			names_maybe_grow(t);
			fresh = NULL;
		} else if (moved) {
			rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&t->lock);
	free(fresh);
	return rc;
}

int inode_table_take(struct inode_table *t, int (*want)(uint64_t ino),
		     struct inode_inval **out)
{
	size_t ninos = 0, nnames = 0, bytes = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct inode_entry *e = t->buckets[i]; e; e = e->next) {
			if (want && !want(e->ino))
				continue;
			ninos++;
			nnames += e->nnames;
			struct inode_name *n = e->names;
			for (size_t k = 0; k < e->nnames; k++, n = n->next)
				bytes += n->len + 1;
		}
	}
	/* The header, the inos, the names, their bytes: all 8-aligned but
	 * the last. */
	struct inode_inval *v = malloc(sizeof(*v) + ninos * sizeof(uint64_t) +
				       nnames * sizeof(struct inode_dentry) +
				       bytes);
	if (!v) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	v->inos = (uint64_t *)(v + 1);
	v->names = (struct inode_dentry *)(v->inos + ninos);
	char *text = (char *)(v->names + nnames);
	v->ninos = 0;
	v->nnames = 0;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct inode_entry *e = t->buckets[i]; e; e = e->next) {
			if (want && !want(e->ino))
				continue;
			v->inos[v->ninos++] = e->ino;
			while (e->names) {
				text = name_take(t, e->names, v, text);
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	*out = v;
	return 0;
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
			entry_free(t, e);
			e = next;
		}
		t->buckets[i] = NULL;
	}
	t->count = 0;
	pthread_mutex_unlock(&t->lock);
}

int inode_table_take_names(struct inode_table *t,
			   int (*want_parent)(void *ctx, uint64_t parent),
			   void *ctx, struct inode_inval **out)
{
	size_t nnames = 0, bytes = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->name_nbuckets; i++) {
		for (struct inode_name *n = t->name_buckets[i]; n; n = n->hnext) {
			if (!want_parent(ctx, n->parent))
				continue;
			nnames++;
			bytes += n->len + 1;
		}
	}
	struct inode_inval *v = malloc(sizeof(*v) +
				       nnames * sizeof(struct inode_dentry) +
				       bytes);
	if (!v) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	v->ninos = 0;
	v->inos = NULL;
	v->names = (struct inode_dentry *)(v + 1);
	v->nnames = 0;
	char *text = (char *)(v->names + nnames);
	for (size_t i = 0; i < t->name_nbuckets; i++) {
		struct inode_name *n = t->name_buckets[i], *next;
		for (; n; n = next) {
			next = n->hnext;
			if (!want_parent(ctx, n->parent))
				continue;
			text = name_take(t, n, v, text);
		}
	}
	pthread_mutex_unlock(&t->lock);
	*out = v;
	return 0;
}
