/* hcache.c - the hash cache of a session, and what a change invalidates. */
#include <errno.h>

#include "hcache.h"

/*
 * Cache: each object's hash is kept after it is computed, and each object
 * remembers which cached maps and lists used its hash (the directory and
 * the entry key, recorded when the entry was signed: every name of a hard
 * link, wherever its owner pointer points). A change to an object marks
 * those entries stale and goes on up from each of them, so no cached hash
 * ever depends on one that changed. A map also keeps every entry's
 * signature, so after a change below it only the stale entries are signed
 * again: reading the root's hash after a small change costs the paths to
 * the change, not the store. A stale object has no users left (they were
 * marked with it): the walk up stops at what is already stale.
 */

/* Above this many (dir, key) pairs (hard links of one file) a change to
 * the object resets the whole cache instead of tracking each name. */
#define USERS_MAX 256

struct pog_hcache *pog_hcache_get(pog_store *s, uint64_t ino, bool create)
{
	uint64_t *v = pog_map64_find(&s->hashes, ino);
	if (v)
		return (struct pog_hcache *)(uintptr_t)*v;
	if (!create)
		return NULL;
	struct pog_hcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	v = pog_map64_get(&s->hashes, ino);
	if (!v) {
		free(c);
		return NULL;
	}
	*v = (uint64_t)(uintptr_t)c;
	return c;
}

static void cache_free(struct pog_hcache *c)
{
	pog_map64_release(&c->sigs);
	pog_vec_release(&c->dirty);
	pog_vec_release(&c->users);
	free(c);
}

void pog_hcache_reset_locked(pog_store *s)
{
	pog_map64_foreach(&s->hashes, i)
		cache_free((struct pog_hcache *)(uintptr_t)s->hashes.vals[i]);
	pog_map64_release(&s->hashes);
}

void pog_hash_reset(pog_store *s)
{
	pthread_mutex_lock(&s->hash_lock);
	pog_hcache_reset_locked(s);
	pthread_mutex_unlock(&s->hash_lock);
}

/* Mark dir's entry `key` to be signed again (and dir stale). */
static void mark_entry(pog_store *s, uint64_t dir, uint64_t key)
{
	struct pog_hcache *c = pog_hcache_get(s, dir, false);
	if (!c)
		return;
	c->valid = false;
	if (c->sum_valid && pog_vec_push(&c->dirty, key))
		c->sum_valid = false;
}

/*
 * ino's hash changed: it goes stale, and so does every cached entry that
 * used it, and everything above those (an explicit stack: chains may be
 * deep). Returns false when the cache could not be kept exact (too many
 * users, no memory): the caller then resets it.
 */
static bool stale_up(pog_store *s, uint64_t ino)
{
	struct pog_vec todo = {0};
	bool ok = pog_vec_push(&todo, ino) == 0;
	while (ok && todo.n) {
		struct pog_hcache *c = pog_hcache_get(s, todo.v[--todo.n], false);
		if (!c)
			continue;
		c->valid = false;
		if (c->many_users) {
			ok = false;
			break;
		}
		for (size_t i = 0; ok && i + 1 < c->users.n; i += 2) {
			mark_entry(s, c->users.v[i], c->users.v[i + 1]);
			ok = pog_vec_push(&todo, c->users.v[i]) == 0;
		}
		c->users.n = 0;
	}
	pog_vec_release(&todo);
	return ok;
}

/* Note that dir's cached hash (entry key) was computed from child's. */
int pog_hcache_add_user(struct pog_hcache *child, uint64_t dir, uint64_t key)
{
	if (child->many_users)
		return 0;
	for (size_t i = 0; i + 1 < child->users.n; i += 2)
		if (child->users.v[i] == dir && child->users.v[i + 1] == key)
			return 0;
	if (child->users.n >= 2 * USERS_MAX) {
		child->many_users = true;
		return 0;
	}
	if (pog_vec_push(&child->users, dir) ||
	    pog_vec_push(&child->users, key)) {
		child->users.n &= ~(size_t)1;
		return -ENOMEM;
	}
	return 0;
}

/* Stale up from ino, or drop the whole cache when that cannot be exact. */
static void changed_locked(pog_store *s, uint64_t ino)
{
	if (s->hashes.n && !stale_up(s, ino))
		pog_hcache_reset_locked(s);
}

void pog_hash_changed(pog_store *s, uint64_t ino)
{
	pthread_mutex_lock(&s->hash_lock);
	changed_locked(s, ino);
	pthread_mutex_unlock(&s->hash_lock);
}

void pog_hash_rekeyed(pog_store *s, uint64_t ino)
{
	pthread_mutex_lock(&s->hash_lock);
	struct pog_hcache *c = pog_hcache_get(s, ino, false);
	if (c)
		c->sum_valid = false; /* its signatures are signed again */
	changed_locked(s, ino);
	pthread_mutex_unlock(&s->hash_lock);
}

void pog_hash_entry_changed(pog_store *s, uint64_t dir, uint64_t key)
{
	pthread_mutex_lock(&s->hash_lock);
	mark_entry(s, dir, key);
	changed_locked(s, dir);
	pthread_mutex_unlock(&s->hash_lock);
}
