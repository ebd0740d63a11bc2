/* test_full.c - a full pool can always be emptied: the reserve at work. */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Each shape fills a 32 MiB pool until a growing operation answers
 * -ENOSPC, commits, reopens, and then: removing files one by one and
 * whole trees, truncating, renaming, the commit after them, GC, and GC
 * again after a reopen (what `pog gc` does) all succeed; the space comes
 * back, and new files can be written again.
 */
#define POOL_SIZE ((uint64_t)32 << 20)
#define CHUNK ((size_t)128 << 10) /* what the kernel hands a FUSE write */

static int setup(void **state)
{
	return tu_state_setup(state, TU_SHM_BASE, POOL_SIZE);
}

static struct pog_status status_of(pog_store *s)
{
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	return st;
}

static uint64_t used(pog_store *s)
{
	return status_of(s).blocks_used;
}

static void name_of(char *buf, size_t size, const char *prefix, uint64_t n)
{
	snprintf(buf, size, "%s%llu", prefix, (unsigned long long)n);
}

/* Like tu_mkfile but a full pool is an answer, not a failure. */
static int try_mkfile(pog_store *s, uint64_t dir, const char *name,
		      const void *data, size_t len, uint64_t *ino)
{
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	struct pog_attr a;
	int err = pog_mknode(s, dir, name, strlen(name), &spec, &a);
	if (err == -EEXIST) /* left by the add that found the pool full */
		err = pog_lookup(s, dir, name, strlen(name), &a);
	if (err)
		return err;
	*ino = a.ino;
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		ssize_t w = pog_write(s, a.ino, off, (const char *)data + off, n);
		if (w < 0)
			return (int)w;
	}
	return 0;
}

static int try_mkdir(pog_store *s, uint64_t dir, const char *name,
		     uint32_t type, uint64_t *ino)
{
	struct pog_new spec = {.type = type, .mode = 0755};
	struct pog_attr a;
	int err = pog_mknode(s, dir, name, strlen(name), &spec, &a);
	if (err == -EEXIST)
		err = pog_lookup(s, dir, name, strlen(name), &a);
	if (!err)
		*ino = a.ino;
	return err;
}

/* ---- rm -r ---------------------------------------------------------------- */

struct names {
	char **v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name, size_t len,
		   const struct pog_attr *attr, uint64_t next)
{
	struct names *ns = ctx;
	(void)attr;
	(void)next;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
		assert_non_null(ns->v);
	}
	ns->v[ns->n] = strndup(name, len);
	assert_non_null(ns->v[ns->n]);
	ns->n++;
	return 0;
}

/* Remove everything in dir, in listing order (as rm -r does). */
static void rm_contents(pog_store *s, uint64_t dir)
{
	struct names ns = {0};
	assert_ok(pog_readdir(s, dir, 0, collect, &ns));
	for (size_t i = 0; i < ns.n; i++) {
		struct pog_attr a;
		assert_ok(pog_lookup(s, dir, ns.v[i], strlen(ns.v[i]), &a));
		bool is_dir = a.type == POG_MAP || a.type == POG_LIST;
		if (is_dir)
			rm_contents(s, a.ino);
		assert_ok(pog_remove(s, dir, ns.v[i], strlen(ns.v[i]),
				     is_dir ? POG_REMOVE_DIR : 0));
		free(ns.v[i]);
	}
	free(ns.v);
}

static void rm_r(pog_store *s, uint64_t dir, const char *name)
{
	rm_contents(s, tu_lookup(s, dir, name));
	assert_ok(pog_remove(s, dir, name, strlen(name), POG_REMOVE_DIR));
}

static void truncate_to(pog_store *s, uint64_t ino, uint64_t size)
{
	struct pog_attr a = {.size = size};
	assert_ok(pog_setattr(s, ino, &a, POG_SET_SIZE, NULL));
}

static void mv(pog_store *s, uint64_t from, const char *a, uint64_t to,
	       const char *b)
{
	assert_ok(pog_rename(s, from, a, strlen(a), to, b, strlen(b), 0));
}

/* ---- the scenario ---------------------------------------------------------- */

struct shape {
	const char *name;
	/* Add the n-th unit: 0, or -ENOSPC once the pool is full. */
	int (*add)(pog_store *s, uint64_t n);
	/* Remove, truncate and rename some of it (units added: n). */
	void (*shrink)(pog_store *s, uint64_t n);
};

/* A growing operation got -ENOSPC: free space is above the reserve's
 * floor but the reserve is not handed to growth. */
static void assert_full(pog_store *s, const char *what)
{
	struct pog_status st = status_of(s);
	uint64_t free_blocks = st.blocks_total - st.blocks_used;
	printf("# %s: full at %llu of %llu blocks, %llu free, %llu reserved\n",
	       what, (unsigned long long)st.blocks_used,
	       (unsigned long long)st.blocks_total,
	       (unsigned long long)free_blocks,
	       (unsigned long long)st.blocks_reserved);
	assert_true(st.blocks_reserved >= 640);
	assert_true(free_blocks >= st.blocks_reserved);
	/* full: what one operation may need (a write of CHUNK) is missing */
	assert_true(free_blocks < st.blocks_reserved + 128 + 2 * (CHUNK / 4096 + 2) + 64);
}

static void run_shape(struct tu_ctx *ctx, const struct shape *sh)
{
	pog_store *s = ctx->s;
	uint64_t n = 0;
	int err;
	while ((err = sh->add(s, n)) == 0)
		n++;
	assert_rc(err, -ENOSPC);
	assert_true(n > 0);
	assert_full(s, sh->name);
	assert_ok(pog_commit(s, "full", NULL));
	/* The reopen collects what the fill left (replaced small nodes):
	 * fill up again, to the last block growth may have. */
	tu_reopen(ctx);
	s = ctx->s;
	while ((err = sh->add(s, n)) == 0)
		n++;
	assert_rc(err, -ENOSPC);
	assert_full(s, sh->name);
	assert_ok(pog_commit(s, "full again", NULL));
	uint64_t full = used(s);

	sh->shrink(s, n);
	assert_ok(pog_commit(s, "emptied some", NULL));
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	uint64_t after = used(s);
	/* and once more offline: what `pog gc POOL` does */
	assert_ok(pog_close(s, POG_CLOSE_NOGC));
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	s = ctx->s;
	assert_ok(pog_gc(s, &gc));
	printf("# %s: %llu units; used %llu blocks full, %llu after emptying "
	       "(%llu given back)\n", sh->name, (unsigned long long)n,
	       (unsigned long long)full, (unsigned long long)after,
	       (unsigned long long)(full - after));
	assert_true(after + 64 < full);
	assert_true(used(s) <= after);

	/* New files can be written again, and committed. */
	char buf[100];
	memset(buf, 'n', sizeof(buf));
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "again", POG_MAP);
	for (int i = 0; i < 100; i++) {
		char nm[16];
		name_of(nm, sizeof(nm), "f", (uint64_t)i);
		tu_mkfile(s, dir, nm, buf, sizeof(buf));
	}
	tu_commit_check(s, "written again");
}

/* ---- shapes ---------------------------------------------------------------- */

/* 100-byte files in directories of 1,000. */
static int small_add(pog_store *s, uint64_t n)
{
	char dn[32], fn[32], data[100];
	uint64_t dir, ino;
	name_of(dn, sizeof(dn), "d", n / 1000);
	if (n % 1000 == 0) {
		int err = try_mkdir(s, POG_ROOT_INO, dn, POG_MAP, &dir);
		if (err)
			return err;
	} else {
		dir = tu_lookup(s, POG_ROOT_INO, dn);
	}
	memset(data, 'a' + (int)(n % 26), sizeof(data));
	data[sizeof(data) - 1] = '\n';
	name_of(fn, sizeof(fn), "f", n % 1000);
	return try_mkfile(s, dir, fn, data, sizeof(data), &ino);
}

static void small_shrink(pog_store *s, uint64_t n)
{
	assert_true(n > 5000);
	/* rm d1/f0 ... d1/f999 one by one */
	uint64_t d1 = tu_lookup(s, POG_ROOT_INO, "d1");
	for (int i = 0; i < 1000; i++) {
		char fn[16];
		name_of(fn, sizeof(fn), "f", (uint64_t)i);
		assert_ok(pog_remove(s, d1, fn, strlen(fn), 0));
	}
	uint64_t d2 = tu_lookup(s, POG_ROOT_INO, "d2");
	truncate_to(s, tu_lookup(s, d2, "f0"), 10);
	truncate_to(s, tu_lookup(s, d2, "f1"), 0);
	mv(s, d2, "f2", POG_ROOT_INO, "moved");
	mv(s, POG_ROOT_INO, "d3", d2, "d3-moved");
	rm_r(s, POG_ROOT_INO, "d4");
	rm_r(s, POG_ROOT_INO, "d5");
}

/* 1 MiB files of distinct bytes (nothing to share), 4 to a directory. */
static int mib_add(pog_store *s, uint64_t n)
{
	static char *data;
	size_t len = (size_t)1 << 20;
	char dn[32], fn[32];
	uint64_t dir, ino;
	if (!data) {
		data = malloc(len);
		assert_non_null(data);
	}
	tu_fill_random(data, len, n + 1);
	name_of(dn, sizeof(dn), "d", n / 4);
	if (n % 4 == 0) {
		int err = try_mkdir(s, POG_ROOT_INO, dn, POG_MAP, &dir);
		if (err)
			return err;
	} else {
		dir = tu_lookup(s, POG_ROOT_INO, dn);
	}
	name_of(fn, sizeof(fn), "f", n % 4);
	return try_mkfile(s, dir, fn, data, len, &ino);
}

static void mib_shrink(pog_store *s, uint64_t n)
{
	assert_true(n >= 8);
	uint64_t d0 = tu_lookup(s, POG_ROOT_INO, "d0");
	assert_ok(pog_remove(s, d0, "f0", 2, 0));
	truncate_to(s, tu_lookup(s, d0, "f1"), 1000);
	truncate_to(s, tu_lookup(s, d0, "f2"), 0);
	mv(s, d0, "f3", POG_ROOT_INO, "moved");
	rm_r(s, POG_ROOT_INO, "d1");
}

/* One file growing by 128 KiB writes. */
static int big_add(pog_store *s, uint64_t n)
{
	static char data[CHUNK];
	uint64_t ino;
	if (n == 0)
		return try_mkfile(s, POG_ROOT_INO, "big", NULL, 0, &ino);
	ino = tu_lookup(s, POG_ROOT_INO, "big");
	tu_fill_random(data, sizeof(data), n);
	ssize_t w = pog_write(s, ino, (n - 1) * CHUNK, data, sizeof(data));
	return w < 0 ? (int)w : 0;
}

static void big_shrink(pog_store *s, uint64_t n)
{
	(void)n;
	uint64_t ino = tu_lookup(s, POG_ROOT_INO, "big");
	struct pog_attr a;
	assert_ok(pog_getattr(s, ino, &a));
	truncate_to(s, ino, a.size / 2 + 1234);
	mv(s, POG_ROOT_INO, "big", POG_ROOT_INO, "half");
}

/* Chains of 64 nested directories, each holding a 100-byte file. */
#define DEPTH 64
static int deep_add(pog_store *s, uint64_t n)
{
	char cn[32], data[100];
	uint64_t dir, ino;
	memset(data, 'd', sizeof(data));
	name_of(cn, sizeof(cn), "c", n);
	int err = try_mkdir(s, POG_ROOT_INO, cn, POG_MAP, &dir);
	for (int level = 0; !err && level < DEPTH; level++) {
		err = try_mkfile(s, dir, "file", data, sizeof(data), &ino);
		if (!err)
			err = try_mkdir(s, dir, "d", POG_MAP, &dir);
	}
	return err;
}

static uint64_t deep_at(pog_store *s, const char *chain, int level)
{
	uint64_t dir = tu_lookup(s, POG_ROOT_INO, chain);
	for (int i = 0; i < level; i++)
		dir = tu_lookup(s, dir, "d");
	return dir;
}

static void deep_shrink(pog_store *s, uint64_t n)
{
	assert_true(n > 20);
	uint64_t bottom = deep_at(s, "c1", DEPTH - 1);
	assert_ok(pog_remove(s, bottom, "file", 4, 0));
	truncate_to(s, tu_lookup(s, deep_at(s, "c2", DEPTH / 2), "file"), 3);
	mv(s, deep_at(s, "c3", 10), "d", POG_ROOT_INO, "c3-lower");
	for (uint64_t i = 4; i < 20; i++) {
		char cn[32];
		name_of(cn, sizeof(cn), "c", i);
		rm_r(s, POG_ROOT_INO, cn);
	}
}

/* Files of 64 xattrs of 200 bytes each. */
static int xattr_add(pog_store *s, uint64_t n)
{
	char fn[32], val[200], data[100];
	uint64_t ino;
	memset(data, 'x', sizeof(data));
	name_of(fn, sizeof(fn), "x", n);
	int err = try_mkfile(s, POG_ROOT_INO, fn, data, sizeof(data), &ino);
	for (int i = 0; !err && i < 64; i++) {
		char an[32];
		name_of(an, sizeof(an), "user.attr", (uint64_t)i);
		memset(val, 'a' + i % 26, sizeof(val));
		err = pog_setxattr(s, ino, an, val, sizeof(val), 0);
	}
	return err;
}

static void xattr_shrink(pog_store *s, uint64_t n)
{
	assert_true(n > 100);
	for (uint64_t f = 1; f < 20; f++) {
		char fn[32];
		name_of(fn, sizeof(fn), "x", f);
		uint64_t ino = tu_lookup(s, POG_ROOT_INO, fn);
		for (int i = 0; i < 64; i++) {
			char an[32];
			name_of(an, sizeof(an), "user.attr", (uint64_t)i);
			assert_ok(pog_removexattr(s, ino, an));
		}
	}
	for (uint64_t f = 20; f < 60; f++) {
		char fn[32];
		name_of(fn, sizeof(fn), "x", f);
		assert_ok(pog_remove(s, POG_ROOT_INO, fn, strlen(fn), 0));
	}
	truncate_to(s, tu_lookup(s, POG_ROOT_INO, "x60"), 0);
	mv(s, POG_ROOT_INO, "x61", POG_ROOT_INO, "renamed");
}

/* Lists of 1,000 entries named 0, 1, 2, ... (100-byte strings). */
static int list_add(pog_store *s, uint64_t n)
{
	char ln[32], en[32], data[100];
	uint64_t list, ino;
	name_of(ln, sizeof(ln), "l", n / 1000);
	if (n % 1000 == 0) {
		int err = try_mkdir(s, POG_ROOT_INO, ln, POG_LIST, &list);
		if (err)
			return err;
	} else {
		list = tu_lookup(s, POG_ROOT_INO, ln);
	}
	memset(data, 'l', sizeof(data));
	name_of(en, sizeof(en), "", n % 1000);
	return try_mkfile(s, list, en, data, sizeof(data), &ino);
}

static void list_shrink(pog_store *s, uint64_t n)
{
	assert_true(n > 5000);
	uint64_t l1 = tu_lookup(s, POG_ROOT_INO, "l1");
	for (int i = 999; i >= 0; i--) { /* rm l1/999 ... l1/0 */
		char en[16];
		name_of(en, sizeof(en), "", (uint64_t)i);
		assert_ok(pog_remove(s, l1, en, strlen(en), 0));
	}
	uint64_t l2 = tu_lookup(s, POG_ROOT_INO, "l2");
	truncate_to(s, tu_lookup(s, l2, "5"), 7);
	mv(s, l2, "999", POG_ROOT_INO, "from-list");
	mv(s, l2, "3", l2, "0");
	rm_r(s, POG_ROOT_INO, "l3");
	rm_r(s, POG_ROOT_INO, "l4");
}

#define SHAPE_TEST(fn, nm, add_fn, shrink_fn)                               \
	static void fn(void **state)                                        \
	{                                                                   \
		static const struct shape sh = {nm, add_fn, shrink_fn};     \
		run_shape(*state, &sh);                                     \
	}

SHAPE_TEST(test_full_small_files, "small files", small_add, small_shrink)
SHAPE_TEST(test_full_mib_files, "1 MiB files", mib_add, mib_shrink)
SHAPE_TEST(test_full_one_big_file, "one big file", big_add, big_shrink)
SHAPE_TEST(test_full_deep_dirs, "deep directories", deep_add, deep_shrink)
SHAPE_TEST(test_full_xattrs, "many xattrs", xattr_add, xattr_shrink)
SHAPE_TEST(test_full_lists, "lists", list_add, list_shrink)

/*
 * A staged deletion bigger than the reserve: removing everything in one
 * transaction runs out (-ENOSPC, the reason in last_error) but committing
 * what is staged always works, GC then frees it, and the removal goes on.
 */
static void test_full_huge_deletion_in_batches(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t n = 0;
	while (small_add(s, n) == 0)
		n++;
	assert_ok(pog_commit(s, "full", NULL));
	uint64_t dirs = (n + 999) / 1000, full = used(s);
	int rounds = 0, refused = 0;
	uint64_t d = 0, f = 0;
	while (d < dirs) {
		char dn[32], fn[32];
		name_of(dn, sizeof(dn), "d", d);
		uint64_t dir = tu_lookup(s, POG_ROOT_INO, dn);
		int err = 0;
		while (!err && f < 1000) {
			name_of(fn, sizeof(fn), "f", f);
			err = pog_remove(s, dir, fn, strlen(fn), 0);
			if (err == -ENOENT) /* the last directory is not full */
				err = 0;
			if (!err)
				f++;
		}
		if (!err)
			err = pog_remove(s, POG_ROOT_INO, dn, strlen(dn),
					 POG_REMOVE_DIR);
		if (err) {
			assert_rc(err, -ENOSPC);
			assert_non_null(strstr(status_of(s).last_error, "commit"));
			refused++;
			assert_ok(pog_commit(s, "batch", NULL));
			rounds++;
			assert_true(rounds < 100);
			continue;
		}
		d++;
		f = 0;
	}
	assert_ok(pog_commit(s, "the rest", NULL));
	/* Once space is back, the batches' commits are history again (the
	 * last keep = 16 stay readable, holding what they had): with only
	 * the last one kept, GC frees everything. */
	assert_ok(pog_set_keep(s, 1));
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	printf("# huge deletion: %llu files in %d commits (%d refusals); used "
	       "%llu blocks full, %llu after\n", (unsigned long long)n,
	       rounds + 1, refused, (unsigned long long)full,
	       (unsigned long long)used(s));
	assert_true(refused > 0); /* the deletion was bigger than the reserve */
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), 0);
	assert_true(used(s) < 64);
	tu_assert_fsck_clean(s);
}

/* 100-byte files in directories of 10. */
static int tiny_dirs_add(pog_store *s, uint64_t n)
{
	char dn[32], fn[32], data[100];
	uint64_t dir, ino;
	name_of(dn, sizeof(dn), "d", n / 10);
	if (n % 10 == 0) {
		int err = try_mkdir(s, POG_ROOT_INO, dn, POG_MAP, &dir);
		if (err)
			return err;
	} else {
		dir = tu_lookup(s, POG_ROOT_INO, dn);
	}
	memset(data, 't', sizeof(data));
	name_of(fn, sizeof(fn), "f", n % 10);
	return try_mkfile(s, dir, fn, data, sizeof(data), &ino);
}

/*
 * Deletions scattered over many directories: each copies its own path
 * (the directory's node, the object-table leaves of the file and of the
 * directory). One transaction takes them until the reserve is down to
 * the floor; then a commit gives the copies back and the next one goes on.
 */
static void test_full_scattered_deletions(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t n = 0;
	while (tiny_dirs_add(s, n) == 0)
		n++;
	assert_ok(pog_commit(s, "full", NULL));
	uint64_t dirs = n / 10, d = 0, full = used(s);
	int txns = 0;
	while (d < dirs) {
		uint64_t start = d, before = used(s);
		for (; d < dirs; d++) {
			char dn[32];
			name_of(dn, sizeof(dn), "d", d);
			int err = pog_remove(s, tu_lookup(s, POG_ROOT_INO, dn), "f0",
					     2, 0);
			if (err) {
				assert_rc(err, -ENOSPC);
				break;
			}
		}
		if (txns == 0)
			printf("# scattered deletions: %llu in one transaction, "
			       "%.2f blocks each\n", (unsigned long long)(d - start),
			       (double)(used(s) - before) / (double)(d - start));
		assert_true(d - start >= 100);
		assert_ok(pog_commit(s, "scattered", NULL));
		txns++;
	}
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	printf("# scattered deletions: %llu of %llu files in %d commits; used "
	       "%llu blocks full, %llu after\n", (unsigned long long)dirs,
	       (unsigned long long)n, txns, (unsigned long long)full,
	       (unsigned long long)used(s));
	assert_true(txns > 1);
	/* a tenth of the files went: the packed object table gives back */
	assert_true(used(s) + full / 20 <= full);
	/* and every other file is still there, whole, after the packing */
	char data[100];
	memset(data, 't', sizeof(data));
	for (d = 0; d < dirs; d++) {
		char dn[32], fn[32];
		name_of(dn, sizeof(dn), "d", d);
		uint64_t dir = tu_lookup(s, POG_ROOT_INO, dn);
		for (uint64_t f = 1; f < 10; f++) {
			name_of(fn, sizeof(fn), "f", f);
			tu_assert_content(s, tu_lookup(s, dir, fn), data,
					  sizeof(data));
		}
	}
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
}

/* Commit, gc and reopen on a full pool never need more than the floor:
 * committing again and again neither fails nor eats the reserve. */
static void test_full_repeated_commits(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t n = 0;
	while (small_add(s, n) == 0)
		n++;
	assert_ok(pog_commit(s, "full", NULL));
	struct pog_status st0 = status_of(s);
	for (int i = 0; i < 200; i++)
		assert_ok(pog_commit(s, "nothing", NULL));
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	struct pog_status st = status_of(s);
	assert_true(st.blocks_total - st.blocks_used >= st.blocks_reserved);
	assert_true(st.blocks_used <= st0.blocks_used + 8); /* the log */
	/* a rename and a chmod still go through */
	uint64_t d0 = tu_lookup(s, POG_ROOT_INO, "d0");
	mv(s, d0, "f0", d0, "g0");
	struct pog_attr a = {.mode = 0600};
	assert_ok(pog_setattr(s, tu_lookup(s, d0, "g0"), &a, POG_SET_MODE, NULL));
	tu_commit_check(s, "renamed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_small_files, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_mib_files, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_one_big_file, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_deep_dirs, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_xattrs, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_lists, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_huge_deletion_in_batches,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_scattered_deletions,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_repeated_commits, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
