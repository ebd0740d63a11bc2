/* inode_table.h - the inodes the kernel holds (lookup counts), for forget and cache invalidation. */
#ifndef POGFS_INODE_TABLE_H
#define POGFS_INODE_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every reply that gives the kernel an entry (lookup, create, readdirplus,
 * ...) adds one to the entry's lookup count; forget subtracts. The table
 * also remembers every (parent, name) under which the kernel was given
 * each inode, so that an abort can drop all the kernel's dentries of a
 * file with several names (fuse_lowlevel_notify_inval_entry) as well as
 * its inode caches.
 *
 * A name belongs to one inode at a time, as a dentry does: a name handed
 * out again for another inode moves to it. A name is dropped when its
 * inode is forgotten, when it is unlinked or renamed away, and when
 * inode_table_take hands it out for invalidation. Names beyond the first
 * of each inode are bounded by max_extra_names in all: past that, an
 * inode's new name replaces its least recently given one.
 *
 * All functions take the table's own lock; none calls out while holding
 * it. A zeroed table is not usable: call inode_table_init first.
 */
struct inode_entry;
struct inode_name;

#define INODE_TABLE_MAX_EXTRA_NAMES ((size_t)1 << 18)

struct inode_table {
	pthread_mutex_t lock;        /* protects everything below */
	struct inode_entry **buckets; /* by ino */
	size_t nbuckets;             /* power of two */
	size_t count;                /* entries */
	struct inode_name **name_buckets; /* by (parent, name) */
	size_t name_nbuckets;        /* power of two */
	size_t names;                /* names of all entries */
	size_t named;                /* entries with at least one name */
	size_t max_extra_names;      /* bound on names - named */
};

/* One name of an inode, as handed out by inode_table_take. */
struct inode_dentry {
	uint64_t parent;
	uint64_t child;   /* the inode the name was given for */
	const char *name; /* NUL-terminated, inside the inode_inval block */
	size_t len;
};

/*
 * What inode_table_take hands out: the inodes, then all their names.
 * One allocation: free() it.
 */
struct inode_inval {
	size_t ninos;
	uint64_t *inos;
	size_t nnames;
	struct inode_dentry *names;
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

/* Drop n lookups of ino, and its names with the last; returns how many
 * were held (<= n). */
/* Does the kernel hold ino (looked up and not forgotten)? */
bool inode_table_has(struct inode_table *t, uint64_t ino);

uint64_t inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/* name in parent is gone (unlink, rmdir): forget it. */
void inode_table_unname(struct inode_table *t, uint64_t parent,
			const char *name, size_t len);

/*
 * name in parent was renamed to newname in newparent: the kernel moves
 * its dentry there, so the new name now belongs to the moved inode and
 * the old one to none (or, with exchange, the two names swap inodes).
 * Returns 0, or -ENOMEM when the moved inode's new name could not be
 * remembered (both names are forgotten then).
 */
int inode_table_rename(struct inode_table *t, uint64_t parent,
		       const char *name, size_t len, uint64_t newparent,
		       const char *newname, size_t newlen, bool exchange);

/*
 * Copy out the entries for which want(ino) is true, with all their
 * names, and forget those names (the caller is about to invalidate
 * them). *out is one malloc'd block. Returns 0 or -ENOMEM (then nothing
 * changed).
 */
int inode_table_take(struct inode_table *t, int (*want)(uint64_t ino),
		     struct inode_inval **out);

/*
 * Copy out every name given out in a directory for which
 * want_parent(ctx, parent) is true, and forget those names (the caller
 * is about to invalidate them: a commit renumbered those lists). Costs
 * the names the table holds, never the size of a directory. *out is one
 * malloc'd block (no inos). Returns 0 or -ENOMEM (nothing changed).
 */
int inode_table_take_names(struct inode_table *t,
			   int (*want_parent)(void *ctx, uint64_t parent),
			   void *ctx, struct inode_inval **out);

/*
 * Empty the table, calling fn(ctx, ino, nlookup) for each entry (under
 * the lock: fn must not call back into the table).
 */
void inode_table_drain(struct inode_table *t,
		       void (*fn)(void *ctx, uint64_t ino, uint64_t nlookup),
		       void *ctx);

#endif /* POGFS_INODE_TABLE_H */
