/* test_errors.c - refused opens, locking, full pool, xattr errors, corrupt pages. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_SIZE ((uint64_t)256 << 20)
#define MiB ((size_t)1 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static int setup_nopool(void **state)
{
	struct tu_ctx *ctx = calloc(1, sizeof(*ctx));

	tu_setup(ctx, NULL, 0);
	*state = ctx;
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* ---- open and create ---------------------------------------------------- */

static void test_open_missing(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = (pog_store *)0x1;

	assert_rc(pog_open(ctx->pool, 0, &s), -ENOENT);
	assert_ptr_equal(s, (pog_store *)0x1); /* untouched on failure */
	{
		char *p = tu_join(ctx->dir, "no/such/dir.pool");
		assert_rc(pog_open(p, 0, &s), -ENOENT);
		free(p);
	}
}

static void test_open_not_a_pool(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = NULL;
	char *text = malloc(64 * 1024);
	char *zeros = calloc(1, 16 * MiB);

	for (size_t i = 0; i < 64 * 1024; i++)
		text[i] = "hello, this is not a pool\n"[i % 26];
	write_file(ctx->pool, text, 64 * 1024);
	assert_rc(pog_open(ctx->pool, 0, &s), POG_ENOTPOOL);
	assert_null(s);
	write_file(ctx->pool, zeros, 16 * MiB);
	assert_rc(pog_open(ctx->pool, 0, &s), POG_ENOTPOOL);
	write_file(ctx->pool, "", 0);
	assert_rc(pog_open(ctx->pool, 0, &s), POG_ENOTPOOL);
	assert_null(s);
	/* nothing was written to the file */
	{
		struct stat st;
		assert_int_equal(stat(ctx->pool, &st), 0);
		assert_int_equal(st.st_size, 0);
	}
	assert_non_null(pog_strerror(POG_ENOTPOOL));
	free(text);
	free(zeros);
}

static void test_create_existing(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = NULL;
	struct stat st;

	write_file(ctx->pool, "precious", 8);
	assert_rc(pog_create(ctx->pool, 64 * MiB, &s), -EEXIST);
	assert_null(s);
	assert_int_equal(stat(ctx->pool, &st), 0);
	assert_int_equal(st.st_size, 8);
	/* an existing pool is not overwritten either */
	unlink(ctx->pool);
	assert_ok(pog_create(ctx->pool, 64 * MiB, &s));
	tu_mkfile(s, POG_ROOT_INO, "f", "data", 4);
	tu_commit_check(s, "f");
	assert_rc(pog_close(s, 0), 0);
	s = NULL;
	assert_rc(pog_create(ctx->pool, 64 * MiB, &s), -EEXIST);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "f"), "data",
			  4);
	tu_assert_fsck_clean(ctx->s);
}

/* Run pog_open in a forked child; return what it answered. */
static int open_in_child(const char *pool, unsigned flags)
{
	int fds[2];
	pid_t pid;
	int rc = -9999, status;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pog_store *s2 = NULL;
		int r;

		close(fds[0]);
		r = pog_open(pool, flags, &s2);
		if (r == 0)
			pog_close(s2, POG_CLOSE_NOGC);
		if (write(fds[1], &r, sizeof(r)) != sizeof(r))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &rc, sizeof(rc)) != sizeof(rc))
		rc = -9999;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child died (status %#x)", status);
	return rc;
}

static void test_locked(void **state)
{
	struct tu_ctx *ctx = *state;

	tu_mkfile(ctx->s, POG_ROOT_INO, "f", "x", 1);
	tu_commit_check(ctx->s, "f");
	assert_rc(open_in_child(ctx->pool, 0), POG_ELOCKED);
	assert_rc(open_in_child(ctx->pool, POG_OPEN_READONLY), POG_ELOCKED);
	/* the parent's store still works */
	tu_mkfile(ctx->s, POG_ROOT_INO, "g", "y", 1);
	tu_commit_check(ctx->s, "g");
	/* once closed, the child can open it */
	assert_rc(pog_close(ctx->s, 0), 0);
	ctx->s = NULL;
	assert_rc(open_in_child(ctx->pool, 0), 0);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	tu_assert_fsck_clean(ctx->s);
}

/*
 * A read-only open reads, refuses changes and still holds the pool
 * exclusively (libpmemobj locks the file; see POG_OPEN_READONLY).
 */
static void test_readonly(void **state)
{
	struct tu_ctx *ctx = *state;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	pog_store *ro = NULL;
	uint64_t g;

	g = tu_mkfile(ctx->s, POG_ROOT_INO, "g", "y", 1);
	tu_commit_check(ctx->s, "g");
	assert_rc(pog_close(ctx->s, 0), 0);
	ctx->s = NULL;
	assert_ok(pog_open(ctx->pool, POG_OPEN_READONLY, &ro));
	ctx->s = ro; /* closed by tu_state_teardown should an assert fail */
	assert_rc(open_in_child(ctx->pool, 0), POG_ELOCKED);
	assert_rc(open_in_child(ctx->pool, POG_OPEN_READONLY), POG_ELOCKED);
	tu_assert_content(ro, tu_lookup(ro, POG_ROOT_INO, "g"), "y", 1);
	assert_true(pog_write(ro, g, 0, "z", 1) < 0);
	assert_true(pog_mknode(ro, POG_ROOT_INO, "h", 1, &spec, &attr) < 0);
	assert_true(pog_commit(ro, "no", NULL) < 0);
	tu_assert_content(ro, g, "y", 1);
	pog_close(ro, POG_CLOSE_NOGC);
	ctx->s = NULL;
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	tu_assert_content(ctx->s, g, "y", 1);
	tu_assert_fsck_clean(ctx->s);
}

/* ---- pool full ---------------------------------------------------------- */

#define FULL_POOL ((uint64_t)64 << 20)
#define MAX_FILES 400

static void check_files(pog_store *s, int nfiles, char *buf)
{
	char nm[16];

	for (int i = 0; i < nfiles; i++) {
		snprintf(nm, sizeof(nm), "f%d", i);
		tu_fill_random(buf, MiB, 7000 + (uint64_t)i);
		tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, nm), buf, MiB);
	}
}

/* Fill with 1 MiB files, committing every 4; return the files committed. */
static int fill_until_full(pog_store *s, int first, int *committed,
			   char *buf, int *hit_in_commit)
{
	int i;

	*hit_in_commit = 0;
	for (i = first; i < MAX_FILES; i++) {
		struct pog_attr attr;
		struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
		char nm[16];
		ssize_t n;
		int rc;

		snprintf(nm, sizeof(nm), "f%d", i);
		rc = pog_mknode(s, POG_ROOT_INO, nm, strlen(nm), &spec, &attr);
		if (rc == -ENOSPC)
			break;
		assert_ok(rc);
		tu_fill_random(buf, MiB, 7000 + (uint64_t)i);
		n = pog_write(s, attr.ino, 0, buf, MiB);
		if (n == -ENOSPC)
			break;
		assert_rc(n, (ssize_t)MiB);
		if ((i + 1) % 4 == 0) {
			uint64_t staged = pog_staged_count(s);

			rc = pog_commit(s, "more", NULL);
			if (rc == -ENOSPC) {
				/* nothing committed, everything still staged */
				assert_int_equal(pog_staged_count(s), staged);
				*hit_in_commit = 1;
				break;
			}
			assert_ok(rc);
			*committed = i + 1;
		}
	}
	if (i == MAX_FILES)
		fail_msg("no ENOSPC after %d MiB in a %llu MiB pool", i,
			 (unsigned long long)(FULL_POOL >> 20));
	assert_ok(pog_abort(s));
	return *committed;
}

static void test_pool_full(void **state)
{
	struct tu_ctx *ctx = *state;
	char *buf = malloc(MiB);
	int committed = 0, in_commit, refill = 0;
	struct pog_gc_result gc;
	struct pog_status st;
	char nm[16];

	assert_ok(pog_create(ctx->pool, FULL_POOL, &ctx->s));
	fill_until_full(ctx->s, 0, &committed, buf, &in_commit);
	print_message("    64 MiB pool: %d MiB committed, ENOSPC from %s\n",
		      committed, in_commit ? "commit" : "write/mknode");
	assert_true(committed >= 16);
	assert_ok(pog_status(ctx->s, &st));
	assert_true(st.commit_id >= (uint64_t)committed / 4);
	/* consistent and intact now, and after reopen */
	tu_assert_fsck_clean(ctx->s);
	check_files(ctx->s, committed, buf);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
	check_files(ctx->s, committed, buf);
	assert_int_equal(tu_count_entries(ctx->s, POG_ROOT_INO), committed);

	/* delete half, commit, gc: there is room again */
	for (int i = 0; i < committed; i += 2) {
		snprintf(nm, sizeof(nm), "f%d", i);
		assert_ok(pog_remove(ctx->s, POG_ROOT_INO, nm, strlen(nm), 0));
	}
	tu_commit_check(ctx->s, "deleted half");
	assert_ok(pog_gc(ctx->s, &gc));
	tu_assert_fsck_clean(ctx->s);
	/* write 1 MiB files again, one commit each, until full */
	for (int i = 0; i < MAX_FILES; i++) {
		struct pog_attr attr;
		struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
		ssize_t n;
		int rc;

		snprintf(nm, sizeof(nm), "g%d", i);
		rc = pog_mknode(ctx->s, POG_ROOT_INO, nm, strlen(nm), &spec,
				&attr);
		if (rc == -ENOSPC)
			break;
		assert_ok(rc);
		tu_fill_random(buf, MiB, 9000 + (uint64_t)i);
		n = pog_write(ctx->s, attr.ino, 0, buf, MiB);
		if (n == -ENOSPC)
			break;
		assert_rc(n, (ssize_t)MiB);
		rc = pog_commit(ctx->s, "refill", NULL);
		if (rc == -ENOSPC)
			break;
		assert_ok(rc);
		refill++;
	}
	assert_ok(pog_abort(ctx->s));
	print_message("    after deleting %d MiB: %d MiB written again\n",
		      (committed + 1) / 2, refill);
	/* most of the freed space is usable again */
	assert_true(refill >= ((committed + 1) / 2) * 8 / 10);
	tu_assert_fsck_clean(ctx->s);
	tu_reopen(ctx);
	for (int i = 1; i < committed; i += 2) {
		snprintf(nm, sizeof(nm), "f%d", i);
		tu_fill_random(buf, MiB, 7000 + (uint64_t)i);
		tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, nm),
				  buf, MiB);
	}
	tu_assert_fsck_clean(ctx->s);
	free(buf);
}

/*
 * Stage as much as fits without committing, then commit it all at once:
 * the commit either succeeds with everything, or fails with -ENOSPC and
 * leaves the last commit intact and everything still staged.
 */
static void test_pool_full_in_one_commit(void **state)
{
	struct tu_ctx *ctx = *state;
	char *buf = malloc(MiB);
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	uint64_t before, base;
	int staged = 0, rc;
	char nm[16];

	assert_ok(pog_create(ctx->pool, FULL_POOL, &ctx->s));
	base = tu_mkfile(ctx->s, POG_ROOT_INO, "base", "kept", 4);
	tu_commit_check(ctx->s, "base");
	for (; staged < MAX_FILES; staged++) {
		struct pog_attr attr;
		ssize_t n;

		snprintf(nm, sizeof(nm), "s%d", staged);
		rc = pog_mknode(ctx->s, POG_ROOT_INO, nm, strlen(nm), &spec,
				&attr);
		if (rc == -ENOSPC)
			break;
		assert_ok(rc);
		tu_fill_random(buf, MiB, 100 + (uint64_t)staged);
		n = pog_write(ctx->s, attr.ino, 0, buf, MiB);
		if (n == -ENOSPC) {
			/* what did not fit is not kept half-way */
			assert_ok(pog_remove(ctx->s, POG_ROOT_INO, nm,
					     strlen(nm), 0));
			break;
		}
		assert_rc(n, (ssize_t)MiB);
	}
	assert_true(staged < MAX_FILES);
	before = pog_staged_count(ctx->s);
	rc = pog_commit(ctx->s, "all at once", NULL);
	print_message("    staged %d MiB before ENOSPC; commit: %s\n", staged,
		      tu_err(rc));
	if (rc == -ENOSPC) {
		assert_int_equal(pog_staged_count(ctx->s), before);
		if (staged) {
			tu_fill_random(buf, MiB, 100);
			tu_assert_content(ctx->s,
					  tu_lookup(ctx->s, POG_ROOT_INO, "s0"),
					  buf, MiB);
		}
		assert_ok(pog_abort(ctx->s));
	} else {
		assert_ok(rc);
	}
	tu_assert_fsck_clean(ctx->s);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
	tu_assert_content(ctx->s, base, "kept", 4);
	for (int i = 0; i < staged; i++) {
		struct pog_attr attr;

		snprintf(nm, sizeof(nm), "s%d", i);
		if (rc == -ENOSPC) {
			assert_rc(pog_lookup(ctx->s, POG_ROOT_INO, nm,
					     strlen(nm), &attr),
				  -ENOENT);
		} else {
			tu_fill_random(buf, MiB, 100 + (uint64_t)i);
			tu_assert_content(ctx->s,
					  tu_lookup(ctx->s, POG_ROOT_INO, nm),
					  buf, MiB);
		}
	}
	free(buf);
}

/* ---- xattrs ------------------------------------------------------------- */

static int list_has(const char *list, ssize_t len, const char *name)
{
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
		if (strcmp(list + i, name) == 0)
			return 1;
	}
	return 0;
}

static void test_xattrs(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char buf[4096], list[4096];
	char big[POG_XATTR_VALUE_MAX + 1];
	char longname[POG_XATTR_NAME_MAX + 10];
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "x", 1);
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	ssize_t n;
	int rc;

	/* missing */
	assert_rc(pog_getxattr(s, f, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_rc(pog_removexattr(s, f, "user.a"), -ENODATA);
	assert_rc(pog_setxattr(s, f, "user.a", "v", 1, POG_XATTR_REPLACE),
		  -ENODATA);
	/* set, get, measure */
	assert_ok(pog_setxattr(s, f, "user.a", "hello", 5, 0));
	assert_ok(pog_setxattr(s, f, "user.empty", "", 0, POG_XATTR_CREATE));
	assert_ok(pog_setxattr(s, f, "user.bin", "\0\1\2\0", 4, 0));
	assert_ok(pog_setxattr(s, d, "user.dir", "on a map", 8, 0));
	assert_rc(pog_getxattr(s, f, "user.a", NULL, 0), 5);
	assert_rc(pog_getxattr(s, f, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_rc(pog_getxattr(s, f, "user.empty", buf, sizeof(buf)), 0);
	assert_rc(pog_getxattr(s, f, "user.bin", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "\0\1\2\0", 4);
	assert_rc(pog_getxattr(s, f, "user.a", buf, 4), -ERANGE);
	assert_rc(pog_getxattr(s, d, "user.dir", buf, sizeof(buf)), 8);
	/* flags */
	assert_rc(pog_setxattr(s, f, "user.a", "x", 1, POG_XATTR_CREATE),
		  -EEXIST);
	assert_ok(pog_setxattr(s, f, "user.a", "replaced", 8,
			       POG_XATTR_REPLACE));
	assert_rc(pog_getxattr(s, f, "user.a", buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "replaced", 8);
	/* list */
	n = pog_listxattr(s, f, NULL, 0);
	assert_true(n > 0);
	assert_rc(pog_listxattr(s, f, list, sizeof(list)), n);
	assert_true(list_has(list, n, "user.a"));
	assert_true(list_has(list, n, "user.empty"));
	assert_true(list_has(list, n, "user.bin"));
	assert_false(list_has(list, n, "user.dir"));
	assert_int_equal(list[n - 1], '\0');
	assert_rc(pog_listxattr(s, f, list, 3), -ERANGE);
	/* limits */
	memset(big, 'v', sizeof(big));
	assert_ok(pog_setxattr(s, f, "user.max", big, POG_XATTR_VALUE_MAX, 0));
	assert_rc(pog_getxattr(s, f, "user.max", buf, sizeof(buf)),
		  POG_XATTR_VALUE_MAX);
	assert_rc(pog_setxattr(s, f, "user.big", big, POG_XATTR_VALUE_MAX + 1,
			       0),
		  -E2BIG);
	assert_rc(pog_getxattr(s, f, "user.big", buf, sizeof(buf)), -ENODATA);
	memcpy(longname, "user.", 5);
	memset(longname + 5, 'n', sizeof(longname) - 6);
	longname[sizeof(longname) - 1] = '\0';
	rc = pog_setxattr(s, f, longname, "v", 1, 0);
	if (rc != -ERANGE && rc != -ENAMETOOLONG)
		fail_msg("setxattr of a %zu-byte name = %d (%s)",
			 strlen(longname), rc, tu_err(rc));
	longname[POG_XATTR_NAME_MAX] = '\0';
	assert_ok(pog_setxattr(s, f, longname, "v", 1, 0));

	tu_commit_check(s, "xattrs");
	tu_reopen(ctx);
	s = ctx->s;
	assert_rc(pog_getxattr(s, f, "user.a", buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "replaced", 8);
	assert_rc(pog_getxattr(s, f, "user.bin", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "\0\1\2\0", 4);
	assert_rc(pog_getxattr(s, f, "user.max", buf, sizeof(buf)),
		  POG_XATTR_VALUE_MAX);
	assert_rc(pog_getxattr(s, d, "user.dir", buf, sizeof(buf)), 8);
	assert_rc(pog_getxattr(s, f, longname, buf, sizeof(buf)), 1);
	/* remove */
	assert_ok(pog_removexattr(s, f, "user.a"));
	assert_rc(pog_getxattr(s, f, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_rc(pog_removexattr(s, f, "user.a"), -ENODATA);
	n = pog_listxattr(s, f, list, sizeof(list));
	assert_true(n > 0);
	assert_false(list_has(list, n, "user.a"));
	assert_true(list_has(list, n, "user.bin"));
	/* the committed view still has it, read-only */
	assert_rc(pog_getxattr(s, f | POG_COMMITTED_BIT, "user.a", buf,
			       sizeof(buf)),
		  8);
	assert_rc(pog_removexattr(s, f | POG_COMMITTED_BIT, "user.bin"),
		  -EROFS);
	tu_commit_check(s, "removed");
	tu_reopen(ctx);
	assert_rc(pog_getxattr(ctx->s, f, "user.a", buf, sizeof(buf)),
		  -ENODATA);
	tu_assert_fsck_clean(ctx->s);
}

/* ---- limits of names and values ------------------------------------------ */

static void test_name_and_value_limits(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char key[POG_KEY_MAX + 1], text[POG_SYMLINK_MAX + 2];
	struct pog_attr attr;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "x", 1);

	memset(key, 'k', sizeof(key));
	assert_rc(pog_mknode(s, POG_ROOT_INO, key, POG_KEY_MAX + 1, &spec,
			     &attr),
		  -ENAMETOOLONG);
	assert_rc(pog_link(s, f, POG_ROOT_INO, key, POG_KEY_MAX + 1, &attr),
		  -ENAMETOOLONG);
	assert_rc(pog_rename(s, POG_ROOT_INO, "f", 1, POG_ROOT_INO, key,
			     POG_KEY_MAX + 1, 0),
		  -ENAMETOOLONG);
	assert_rc(pog_remove(s, POG_ROOT_INO, key, POG_KEY_MAX + 1, 0),
		  -ENAMETOOLONG);
	/* symlink text */
	memset(text, 't', sizeof(text));
	text[POG_SYMLINK_MAX + 1] = '\0';
	spec.type = POG_SYMLINK;
	spec.mode = 0777;
	spec.text = text;
	assert_rc(pog_mknode(s, POG_ROOT_INO, "l", 1, &spec, &attr),
		  -ENAMETOOLONG);
	text[POG_SYMLINK_MAX] = '\0';
	assert_ok(pog_mknode(s, POG_ROOT_INO, "l", 1, &spec, &attr));
	{
		char buf[POG_SYMLINK_MAX + 10];
		assert_rc(pog_readlink(s, attr.ino, buf, sizeof(buf)),
			  POG_SYMLINK_MAX);
		assert_memory_equal(buf, text, POG_SYMLINK_MAX);
		/* cut at size, full length returned */
		assert_rc(pog_readlink(s, attr.ino, buf, 10), POG_SYMLINK_MAX);
	}
	/* file size */
	assert_rc(pog_write(s, f, POG_FILE_MAX - 1, "ab", 2), -EFBIG);
	{
		struct pog_attr set = { .size = POG_FILE_MAX + 1 };
		assert_rc(pog_setattr(s, f, &set, POG_SET_SIZE, &attr),
			  -EFBIG);
	}
	tu_assert_content(s, f, "x", 1);
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), 2);
	tu_commit_check(s, "limits");
}

/* ---- corrupt page -------------------------------------------------------- */

/* A record of the pattern lying inside the 11th page (37 * 1110). */
#define VICTIM_OFF ((size_t)41070)

static void test_corrupt_page(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static const char marker[] = "pogfs-corruption-test-marker:";
	size_t len = 64 * 1024, plen = sizeof(marker) - 1;
	char *data = malloc(len), *buf = malloc(len);
	uint64_t f, g;
	struct pog_fsck_result res;
	struct stat st;
	int fd, found = 0, rc;
	ssize_t n;
	unsigned char *map;

	/* a page full of a pattern we can find in the pool file */
	for (size_t i = 0; i < len; i += plen + 8)
		snprintf(data + i, len - i < plen + 9 ? len - i : plen + 9,
			 "%s%08zu", marker, i);
	f = tu_mkfile(s, POG_ROOT_INO, "victim", data, len);
	g = tu_mkfile(s, POG_ROOT_INO, "bystander", "safe", 4);
	tu_commit_check(s, "victim");
	assert_rc(pog_close(s, POG_CLOSE_NOGC), 0);
	ctx->s = NULL;

	/* flip one byte of every copy of the record at VICTIM_OFF */
	fd = open(ctx->pool, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	{
		char needle[64];
		size_t nlen;

		nlen = (size_t)snprintf(needle, sizeof(needle), "%s%08zu",
					marker, VICTIM_OFF);
		for (unsigned char *p = map;
		     (p = memmem(p, (size_t)st.st_size - (size_t)(p - map),
				 needle, nlen)) != NULL;
		     p += nlen) {
			p[nlen - 1] ^= 0x40;
			found++;
		}
	}
	msync(map, (size_t)st.st_size, MS_SYNC);
	munmap(map, (size_t)st.st_size);
	close(fd);
	if (!found) {
		print_message("    pattern not found in the pool file (pages transformed?): skipped\n");
		skip();
	}

	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	s = ctx->s;
	/* the damaged range is EIO, never wrong data */
	n = pog_read(s, f, VICTIM_OFF, buf, 100);
	if (n != -EIO && n != POG_ECORRUPT)
		fail_msg("read of a damaged page = %zd (%s), expected EIO or POG_ECORRUPT",
			 n, tu_err(n));
	/* other pages of the file and other files are fine */
	assert_rc(pog_read(s, f, 0, buf, 4096), 4096);
	assert_memory_equal(buf, data, 4096);
	tu_assert_content(s, g, "safe", 4);
	{
		struct pog_status sst;
		assert_ok(pog_status(s, &sst));
		assert_true(sst.checksum_errors >= 1);
	}
	/* fsck reports it */
	memset(&res, 0, sizeof(res));
	rc = pog_fsck(s, 0, NULL, NULL, &res);
	assert_rc(rc, 1);
	assert_true(res.errors >= 1);
	free(data);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_missing,
						setup_nopool, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_open_not_a_pool,
						setup_nopool, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_create_existing,
						setup_nopool, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_pool_full, setup_nopool,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_pool_full_in_one_commit,
						setup_nopool, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_xattrs, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_name_and_value_limits,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_page, setup,
						tu_state_teardown),
	};

	return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
