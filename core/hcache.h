/* hcache.h - merkle.c's cache of computed hashes (hcache.c keeps it). */
#ifndef POG_HCACHE_H
#define POG_HCACHE_H

#include "store_int.h"

/*
 * One object's cached hash, in s->hashes (ino -> struct pog_hcache *),
 * under s->hash_lock. The objects (below merkle.c) only invalidate it
 * (pog_hash_changed and the rest, declared in store_int.h); merkle.c
 * computes and fills it.
 */
struct pog_hcache {
	uint32_t hash;
	bool valid;
	bool sum_valid;        /* maps: sum and sigs are right but for dirty */
	uint32_t sum;
	struct pog_map64 sigs; /* entry key + 1 -> signature + 1 */
	struct pog_vec dirty;  /* entry keys to sign again */
	struct pog_vec users;  /* (dir, key) pairs whose cached hash used this */
	bool many_users;       /* too many to track: a change resets all */
};

/* The cache entry of ino (made when create): NULL when absent or out of
 * memory. */
struct pog_hcache *pog_hcache_get(pog_store *s, uint64_t ino, bool create);
/* Note that dir's cached hash (entry key) was computed from child's. */
int pog_hcache_add_user(struct pog_hcache *child, uint64_t dir, uint64_t key);
/* Drop every entry (hash_lock held). */
void pog_hcache_reset_locked(pog_store *s);

#endif /* POG_HCACHE_H */
