/* inode_table.h - the inodes the kernel holds (lookup counts), for forget and cache invalidation. */
#ifndef POGFS_INODE_TABLE_H
#define POGFS_INODE_TABLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every reply that gives the kernel an entry (lookup, create, readdirplus,
 * ...) adds one to the entry's lookup count; forget subtracts. The table
 * also remembers one (parent, name) under which the kernel last saw each
 * inode, so that an abort can drop the kernel's dentries
 * (fuse_lowlevel_notify_inval_entry) as well as its inode caches.
 *
 * All functions take the table's own lock; none calls out while holding
 * it. A zeroed table is not usable: call inode_table_init first.
 */
struct inode_entry;

struct inode_table {
	pthread_mutex_t lock;        /* protects everything below */
	struct inode_entry **buckets;
	size_t nbuckets;             /* power of two */
	size_t count;
};

/* One entry as copied out by inode_table_snapshot. */
struct inode_ref {
	uint64_t ino;
	uint64_t parent;  /* 0 when unknown */
	char *name;       /* NULL when unknown; owned by the snapshot */
	size_t namelen;
};

int inode_table_init(struct inode_table *t);
/* Frees everything. */
void inode_table_release(struct inode_table *t);

/*
 * Add one lookup of ino, seen as name in parent (name may be NULL).
 * Returns 0 or -ENOMEM (then nothing was recorded).
 */
int inode_table_remember(struct inode_table *t, uint64_t ino,
			 uint64_t parent, const char *name, size_t len);

/* Drop n lookups of ino; returns how many were held (<= n). */
uint64_t inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/*
 * Copy the entries for which want(ino) is true. *out is malloc'd (free
 * with inode_table_snapshot_free). Returns the count or -ENOMEM.
 */
long inode_table_snapshot(struct inode_table *t, int (*want)(uint64_t ino),
			  struct inode_ref **out);
void inode_table_snapshot_free(struct inode_ref *refs, long count);

/*
 * Empty the table, calling fn(ctx, ino, nlookup) for each entry (under
 * the lock: fn must not call back into the table).
 */
void inode_table_drain(struct inode_table *t,
		       void (*fn)(void *ctx, uint64_t ino, uint64_t nlookup),
		       void *ctx);

#endif /* POGFS_INODE_TABLE_H */
