/* spool.h - a JSON document on its way into the store, held in an unlinked temporary file rather than in the daemon's memory. */
#ifndef POGFS_SPOOL_H
#define POGFS_SPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct pogfs;

/*
 * An import's document (ctl's "import LENGTH PATH", the control socket's
 * "import LENGTH PATH"): its bytes are written, as they arrive, to an
 * unlinked temporary file beside the pool (else in $TMPDIR or /tmp; see
 * spool.c for why), then mapped for pog_import. While it is mapped a
 * thread keeps dropping the pages already read from the daemon's
 * address space (they stay in the page cache), so the daemon's resident
 * memory stays bounded whatever the document's size.
 */
struct pogfs_spool {
	int fd;              /* -1: none */
	size_t want;         /* LENGTH */
	size_t have;         /* bytes written so far */
	char *map;           /* the document once mapped (want > 0) */
	pthread_t pager;
	bool pager_running;
	bool stop;           /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
};

/* A spool that holds nothing (pogfs_spool_release is then a no-op). */
void pogfs_spool_init(struct pogfs_spool *sp);

/*
 * Make room for a document of len bytes: the first place that has it
 * (space reserved with fallocate where the filesystem can). Returns 0,
 * or -errno with the reason, naming the places tried, in why.
 */
int pogfs_spool_open(struct pogfs *fs, struct pogfs_spool *sp, size_t len,
		     char *why, size_t size);

/* Append n bytes (at most want - have). 0 or -errno. */
int pogfs_spool_write(struct pogfs_spool *sp, const void *buf, size_t n);

/*
 * The complete document (have == want), mapped read-only: *doc, valid
 * until release (an empty document is ""). 0 or -errno.
 */
int pogfs_spool_map(struct pogfs_spool *sp, const char **doc);

/* Unmap, close (the file goes with its descriptor), back to empty. */
void pogfs_spool_release(struct pogfs_spool *sp);

#endif /* POGFS_SPOOL_H */
