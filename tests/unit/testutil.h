/* testutil.h - helpers shared by the core unit tests: temp pools, checks. */
#ifndef POG_TESTUTIL_H
#define POG_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <cmocka.h>

#include "pog.h"

/*
 * Every test works on real pool files in a fresh directory made with
 * mkdtemp under $POG_TEST_DIR (default /tmp, an ext4 disk here) or, for
 * the big and slow tests, under /dev/shm. Directories are removed by
 * tu_teardown and, should a test die half-way, at exit.
 */
#define TU_DISK_BASE "/tmp"
#define TU_SHM_BASE "/dev/shm"

struct tu_ctx {
	char *dir;        /* the temp directory (owned) */
	char *pool;       /* dir + "/test.pool" (owned) */
	pog_store *s;     /* open store or NULL */
};

/* Make a fresh temp dir under base (NULL: $POG_TEST_DIR or /tmp). */
char *tu_mkdtemp(const char *base);
/* Remove a directory tree. */
void tu_rmtree(const char *path);
/* path = dir + "/" + name, malloc'ed. */
char *tu_join(const char *dir, const char *name);

/* Fill ctx: temp dir under base, pool path; create the pool with that
 * size unless size is 0 (then only the directory is made). */
void tu_setup(struct tu_ctx *ctx, const char *base, uint64_t size);
/* Close the store (no GC) if open and remove the directory. */
void tu_teardown(struct tu_ctx *ctx);
/* cmocka group fixtures: *state becomes a new tu_ctx set up with
 * tu_setup(ctx, base, size); tu_state_teardown tears it down and frees it. */
int tu_state_setup(void **state, const char *base, uint64_t size);
int tu_state_teardown(void **state);
/* pog_close + pog_open of ctx->pool. */
void tu_reopen(struct tu_ctx *ctx);

/* Human name of a return code (errno or POG_E*). */
const char *tu_err(long long rc);

#define assert_rc(expr, expected)                                            \
	do {                                                                 \
		long long tu_r_ = (long long)(expr);                         \
		long long tu_e_ = (long long)(expected);                     \
		if (tu_r_ != tu_e_)                                          \
			fail_msg("%s = %lld (%s), expected %lld (%s)", #expr,  \
				 tu_r_, tu_err(tu_r_), tu_e_, tu_err(tu_e_)); \
	} while (0)
#define assert_ok(expr) assert_rc(expr, 0)

/* pog_fsck must answer 0 with 0 errors; problems are printed. */
void tu_assert_fsck_clean(pog_store *s);
/* Commit (asserting success) then tu_assert_fsck_clean. Returns the id. */
uint64_t tu_commit_check(pog_store *s, const char *message);

/* Create a child; asserts success and returns its ino. */
uint64_t tu_mk(pog_store *s, uint64_t dir, const char *name, uint32_t type);
/* Create a string file with the given content; returns its ino. */
uint64_t tu_mkfile(pog_store *s, uint64_t dir, const char *name,
		   const void *data, size_t len);
/* Look name up; returns its ino (asserts success). */
uint64_t tu_lookup(pog_store *s, uint64_t dir, const char *name);
/* Write all of buf at off (asserting the full length was written). */
void tu_write(pog_store *s, uint64_t ino, uint64_t off, const void *buf,
	      size_t len);
/* Read the whole file (size from getattr); malloc'ed, *len set. */
void *tu_read_all(pog_store *s, uint64_t ino, size_t *len);
/* Assert the file holds exactly data. */
void tu_assert_content(pog_store *s, uint64_t ino, const void *data,
		       size_t len);

/* A growing NUL-terminated buffer; tu_buf_write is a pog_write_fn. */
struct tu_buf {
	char *data;
	size_t len, cap;
};
int tu_buf_write(void *ctx, const void *p, size_t len);
/* pog_export of ino into a new buffer (asserting success, non-empty). */
struct tu_buf tu_export(pog_store *s, uint64_t ino);
/* pog_import (asserting success; failures print line, column, why). */
void tu_import(pog_store *s, uint64_t dir, const char *name, const char *doc,
	       size_t len);
/* Two exports are the same bytes; else fail showing where they part. */
void tu_assert_same_doc(const struct tu_buf *a, const struct tu_buf *b,
			const char *what);

/* Count the entries of a directory with pog_readdir. */
uint64_t tu_count_entries(pog_store *s, uint64_t dir);

/* Deterministic pseudo-random bytes (xorshift seeded). */
void tu_fill_random(void *buf, size_t len, uint64_t seed);
uint64_t tu_rand64(uint64_t *state);

/* Monotonic clock in seconds. */
double tu_now(void);

#endif /* POG_TESTUTIL_H */
