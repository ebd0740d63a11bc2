/* test_dedup.c - content-addressed pages: shared at commit, copied on write, kept by GC while shared. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_SIZE ((uint64_t)320 << 20)
#define MiB ((size_t)1 << 20)
#define PAGE 4096u
#define COPY_SIZE (8 * MiB)
#define COPY_PAGES (COPY_SIZE / PAGE)
#define NCOPIES 10

static int setup(void **state)
{
	/* Space and sharing are measured without history (one commit kept:
	 * test_history.c covers retention). */
	int r = tu_state_setup(state, TU_SHM_BASE, POOL_SIZE);
	if (!r && pog_set_keep(((struct tu_ctx *)*state)->s, 1))
		r = -1;
	return r;
}

static uint64_t blocks_used(pog_store *s)
{
	struct pog_status st;

	assert_ok(pog_status(s, &st));
	assert_int_equal(st.block_size, PAGE);
	return st.blocks_used;
}

static void fsck_print(void *ctx, int severity, const char *msgid,
		       uint64_t ino, const char *text)
{
	(void)ctx;
	if (severity >= POG_FSCK_WARN)
		print_message("  fsck %s ino %llu: %s\n", msgid,
			      (unsigned long long)ino, text);
}

/* fsck (must be clean) and its page counts. */
static struct pog_fsck_result fsck_counts(pog_store *s)
{
	struct pog_fsck_result res;

	memset(&res, 0, sizeof(res));
	assert_rc(pog_fsck(s, 0, fsck_print, NULL, &res), 0);
	assert_int_equal(res.errors, 0);
	return res;
}

static void gc(pog_store *s, struct pog_gc_result *out)
{
	struct pog_gc_result tmp;

	assert_ok(pog_gc(s, out ? out : &tmp));
}

static void name_of(char *buf, size_t size, int i)
{
	snprintf(buf, size, "copy%d", i);
}

/*
 * The same 8 MiB under ten names costs about one copy; fsck counts ten
 * page references and one set of stored pages.
 */
static void test_ten_copies(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char *data = malloc(COPY_SIZE), *changed = malloc(COPY_SIZE);
	uint64_t ino[NCOPIES], b0, b1, b2, b3, b4;
	struct pog_fsck_result r0, r1, r2, r3;
	struct pog_gc_result g;
	char name[32];
	size_t at = 5 * MiB + 1;

	assert_non_null(data);
	assert_non_null(changed);
	tu_mkfile(s, POG_ROOT_INO, "other", "something else", 14);
	tu_commit_check(s, "base");
	gc(s, NULL);
	b0 = blocks_used(s);
	r0 = fsck_counts(s);

	tu_fill_random(data, COPY_SIZE, 42);
	for (int i = 0; i < NCOPIES; i++) {
		name_of(name, sizeof(name), i);
		ino[i] = tu_mkfile(s, POG_ROOT_INO, name, data, COPY_SIZE);
	}
	tu_commit_check(s, "ten copies");
	b1 = blocks_used(s);
	r1 = fsck_counts(s);
	print_message("    10 x 8 MiB: blocks_used %llu -> %llu (+%llu; one copy is %u pages); fsck pages %llu, unique %llu (ratio %.2f)\n",
		      (unsigned long long)b0, (unsigned long long)b1,
		      (unsigned long long)(b1 - b0), (unsigned)COPY_PAGES,
		      (unsigned long long)r1.pages,
		      (unsigned long long)r1.pages_unique,
		      (double)r1.pages / (double)(r1.pages_unique ? r1.pages_unique : 1));
	assert_true(b1 - b0 >= COPY_PAGES);
	if (b1 - b0 > COPY_PAGES + COPY_PAGES / 4)
		fail_msg("ten identical copies grew blocks_used by %llu blocks, more than 1.25 copies (%u)",
			 (unsigned long long)(b1 - b0),
			 COPY_PAGES + COPY_PAGES / 4);
	assert_int_equal(r1.pages - r0.pages, NCOPIES * COPY_PAGES);
	assert_int_equal(r1.pages_unique - r0.pages_unique, COPY_PAGES);
	/* GC gives nothing of the data back: everything is live (GC records
	 * a commit of its own, so a few blocks may move) */
	gc(s, &g);
	print_message("    gc with all live: freed %llu objects, %llu blocks; blocks_used %llu -> %llu\n",
		      (unsigned long long)g.objects_freed,
		      (unsigned long long)g.blocks_freed,
		      (unsigned long long)b1,
		      (unsigned long long)blocks_used(s));
	assert_int_equal(g.objects_freed, 0);
	assert_true(blocks_used(s) <= b1 + 16);
	assert_true(blocks_used(s) + 16 >= b1);
	b1 = blocks_used(s);
	/* and repeated runs do not grow the store */
	for (int i = 0; i < 3; i++)
		gc(s, NULL);
	print_message("    three more gc runs: blocks_used %llu -> %llu\n",
		      (unsigned long long)b1, (unsigned long long)blocks_used(s));
	assert_true(blocks_used(s) <= b1 + 16);
	b1 = blocks_used(s);
	for (int i = 0; i < NCOPIES; i++)
		tu_assert_content(s, ino[i], data, COPY_SIZE);

	/* copy on write: one byte in one copy changes only that copy */
	memcpy(changed, data, COPY_SIZE);
	changed[at] ^= 0x5a;
	tu_write(s, ino[3], at, changed + at, 1);
	tu_assert_content(s, ino[3], changed, COPY_SIZE);
	for (int i = 0; i < NCOPIES; i++) {
		if (i != 3)
			tu_assert_content(s, ino[i], data, COPY_SIZE);
	}
	/* the committed view still has the old byte */
	{
		char c;
		assert_rc(pog_read(s, ino[3] | POG_COMMITTED_BIT, at, &c, 1), 1);
		assert_int_equal((unsigned char)c, (unsigned char)data[at]);
	}
	tu_commit_check(s, "one byte changed");
	gc(s, NULL);
	b2 = blocks_used(s);
	r2 = fsck_counts(s);
	print_message("    one byte changed: blocks_used %llu -> %llu, unique pages %llu -> %llu\n",
		      (unsigned long long)b1, (unsigned long long)b2,
		      (unsigned long long)r1.pages_unique,
		      (unsigned long long)r2.pages_unique);
	assert_int_equal(r2.pages_unique, r1.pages_unique + 1);
	assert_int_equal(r2.pages, r1.pages);
	/* one page and a few rewritten tree nodes */
	assert_true(b2 >= b1 + 1);
	if (b2 > b1 + 32)
		fail_msg("one changed byte cost %llu blocks after gc",
			 (unsigned long long)(b2 - b1));

	/* writing the byte back makes the page identical again: shared */
	tu_write(s, ino[3], at, data + at, 1);
	tu_commit_check(s, "byte restored");
	gc(s, NULL);
	r3 = fsck_counts(s);
	assert_int_equal(r3.pages_unique, r1.pages_unique);
	assert_true(blocks_used(s) <= b2);
	tu_assert_content(s, ino[3], data, COPY_SIZE);

	/* remove 9 of the 10: the last one stays whole */
	for (int i = 0; i < NCOPIES - 1; i++) {
		name_of(name, sizeof(name), i);
		assert_ok(pog_remove(s, POG_ROOT_INO, name, strlen(name), 0));
	}
	tu_commit_check(s, "nine removed");
	gc(s, &g);
	b3 = blocks_used(s);
	print_message("    nine removed + gc: freed %llu objects, %llu blocks; blocks_used %llu\n",
		      (unsigned long long)g.objects_freed,
		      (unsigned long long)g.blocks_freed,
		      (unsigned long long)b3);
	assert_int_equal(g.objects_freed, NCOPIES - 1);
	assert_true(b3 >= b0 + COPY_PAGES);
	assert_true(b3 < b1);
	tu_assert_content(s, ino[NCOPIES - 1], data, COPY_SIZE);
	r3 = fsck_counts(s);
	assert_int_equal(r3.pages - r0.pages, COPY_PAGES);
	assert_int_equal(r3.pages_unique - r0.pages_unique, COPY_PAGES);
	tu_reopen(ctx);
	s = ctx->s;
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "copy9"), data,
			  COPY_SIZE);

	/* and the last one: back to where we started */
	assert_ok(pog_remove(s, POG_ROOT_INO, "copy9", 5, 0));
	tu_commit_check(s, "all removed");
	gc(s, &g);
	b4 = blocks_used(s);
	print_message("    all removed + gc: blocks_used %llu (started at %llu)\n",
		      (unsigned long long)b4, (unsigned long long)b0);
	assert_true(b4 < b0 + 64);
	r3 = fsck_counts(s);
	assert_int_equal(r3.pages_unique, r0.pages_unique);
	free(data);
	free(changed);
}

/* A file whose pages are all alike stores one page. */
static void test_identical_pages_in_one_file(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 4 * MiB, pages = len / PAGE;
	char *data = malloc(len), *changed = malloc(len);
	struct pog_fsck_result r0, r1, r2;
	uint64_t f, b0, b1;

	tu_commit_check(s, "empty");
	gc(s, NULL);
	b0 = blocks_used(s);
	r0 = fsck_counts(s);
	tu_fill_random(data, PAGE, 9);
	for (size_t i = 1; i < pages; i++)
		memcpy(data + i * PAGE, data, PAGE);
	f = tu_mkfile(s, POG_ROOT_INO, "same", data, len);
	tu_commit_check(s, "one file, one page content");
	b1 = blocks_used(s);
	r1 = fsck_counts(s);
	print_message("    %zu identical pages: blocks +%llu, pages +%llu, unique +%llu\n",
		      pages, (unsigned long long)(b1 - b0),
		      (unsigned long long)(r1.pages - r0.pages),
		      (unsigned long long)(r1.pages_unique - r0.pages_unique));
	assert_int_equal(r1.pages - r0.pages, pages);
	assert_int_equal(r1.pages_unique - r0.pages_unique, 1);
	assert_true(b1 - b0 < 64); /* one page and the page table */
	tu_assert_content(s, f, data, len);
	/* st_blocks shows the logical pages */
	{
		struct pog_attr attr;
		assert_ok(pog_getattr(s, f, &attr));
		print_message("    st_blocks %llu (of 512 B) for %zu bytes\n",
			      (unsigned long long)attr.blocks, len);
	}

	/* change one page in the middle: the others stay */
	memcpy(changed, data, len);
	memset(changed + 500 * PAGE + 100, 'X', 10);
	tu_write(s, f, 500 * PAGE + 100, changed + 500 * PAGE + 100, 10);
	tu_assert_content(s, f, changed, len);
	tu_commit_check(s, "one page differs");
	gc(s, NULL);
	r2 = fsck_counts(s);
	assert_int_equal(r2.pages_unique - r0.pages_unique, 2);
	tu_assert_content(s, f, changed, len);
	/* a second file with the same page content shares too */
	{
		uint64_t g = tu_mkfile(s, POG_ROOT_INO, "again", data, PAGE * 3);
		tu_commit_check(s, "another");
		r2 = fsck_counts(s);
		assert_int_equal(r2.pages_unique - r0.pages_unique, 2);
		tu_assert_content(s, g, data, PAGE * 3);
	}
	tu_reopen(ctx);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "same"),
			  changed, len);
	free(data);
	free(changed);
}

/* Sharing survives reopen, and new copies after reopen share too. */
static void test_reopen_keeps_sharing(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 2 * MiB;
	char *data = malloc(len);
	struct pog_fsck_result r0, r1, r2;
	uint64_t b0, b1, b2;

	tu_commit_check(s, "empty");
	r0 = fsck_counts(s);
	b0 = blocks_used(s);
	tu_fill_random(data, len, 77);
	tu_mkfile(s, POG_ROOT_INO, "a", data, len);
	tu_mkfile(s, POG_ROOT_INO, "b", data, len);
	tu_commit_check(s, "two");
	tu_reopen(ctx);
	s = ctx->s;
	r1 = fsck_counts(s);
	b1 = blocks_used(s);
	assert_int_equal(r1.pages_unique - r0.pages_unique, len / PAGE);
	assert_int_equal(r1.pages - r0.pages, 2 * len / PAGE);
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "a"), data, len);
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "b"), data, len);
	/* a third copy after reopen finds the indexed pages */
	tu_mkfile(s, POG_ROOT_INO, "c", data, len);
	tu_commit_check(s, "third after reopen");
	gc(s, NULL);
	r2 = fsck_counts(s);
	b2 = blocks_used(s);
	print_message("    after reopen: third copy cost %lld blocks (one copy %zu); first two cost %llu\n",
		      (long long)(b2 - b1), len / PAGE,
		      (unsigned long long)(b1 - b0));
	assert_int_equal(r2.pages_unique, r1.pages_unique);
	assert_true(b2 < b1 + len / PAGE / 4);
	/* copy on write after reopen */
	tu_write(s, tu_lookup(s, POG_ROOT_INO, "b"), 0, "B", 1);
	tu_commit_check(s, "b changed");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "a"), data, len);
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "c"), data, len);
	data[0] = 'B';
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "b"), data, len);
	free(data);
}

/* GC never frees a page another file still shares. */
static void test_gc_keeps_shared_pages(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 256 * 1024;
	char *x = malloc(len), *y = malloc(len), *junk = malloc(MiB);
	uint64_t a, b;

	tu_fill_random(x, len, 1);
	tu_fill_random(y, len, 2);

	/* a and b share; a goes, b stays */
	a = tu_mkfile(s, POG_ROOT_INO, "a", x, len);
	b = tu_mkfile(s, POG_ROOT_INO, "b", x, len);
	tu_commit_check(s, "shared");
	assert_ok(pog_remove(s, POG_ROOT_INO, "a", 1, 0));
	tu_commit_check(s, "a removed");
	gc(s, NULL);
	tu_assert_content(s, b, x, len);

	/* overwrite a file whose pages another shares, in the same
	 * transaction that adds a third copy */
	a = tu_mkfile(s, POG_ROOT_INO, "a", x, len);
	tu_commit_check(s, "a again");
	tu_write(s, b, 0, y, len);
	(void)tu_mkfile(s, POG_ROOT_INO, "c", x, len);
	tu_commit_check(s, "b overwritten, c added");
	gc(s, NULL);
	tu_assert_content(s, a, x, len);
	tu_assert_content(s, b, y, len);
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "c"), x, len);

	/* removed and re-added in one transaction: the new one shares the
	 * page the removed one held */
	assert_ok(pog_remove(s, POG_ROOT_INO, "a", 1, 0));
	assert_ok(pog_remove(s, POG_ROOT_INO, "c", 1, 0));
	(void)tu_mkfile(s, POG_ROOT_INO, "d", x, len);
	tu_commit_check(s, "a, c out; d in");
	gc(s, NULL);
	/* fill the freed space with other data so a wrongly freed page
	 * would be overwritten */
	for (int i = 0; i < 8; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "junk%d", i);
		tu_fill_random(junk, MiB, 100 + (uint64_t)i);
		tu_mkfile(s, POG_ROOT_INO, nm, junk, MiB);
	}
	tu_commit_check(s, "junk");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "d"), x, len);

	/* removed, committed, no GC yet: a new copy shares the indexed page;
	 * then GC must keep it */
	assert_ok(pog_remove(s, POG_ROOT_INO, "d", 1, 0));
	tu_commit_check(s, "d out");
	(void)tu_mkfile(s, POG_ROOT_INO, "e", x, len);
	tu_commit_check(s, "e in");
	gc(s, NULL);
	for (int i = 0; i < 8; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "junk%d", i);
		assert_ok(pog_remove(s, POG_ROOT_INO, nm, strlen(nm), 0));
	}
	tu_commit_check(s, "junk out");
	gc(s, NULL);
	for (int i = 0; i < 8; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "more%d", i);
		tu_fill_random(junk, MiB, 200 + (uint64_t)i);
		tu_mkfile(s, POG_ROOT_INO, nm, junk, MiB);
	}
	tu_commit_check(s, "more junk");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "e"), x, len);

	/* staged and aborted copies do not disturb the index */
	(void)tu_mkfile(s, POG_ROOT_INO, "aborted", y, len);
	assert_ok(pog_abort(s));
	gc(s, NULL);
	(void)tu_mkfile(s, POG_ROOT_INO, "f", y, len);
	tu_commit_check(s, "f");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "f"), y, len);
	tu_assert_content(s, b, y, len);

	tu_reopen(ctx);
	s = ctx->s;
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "e"), x, len);
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "f"), y, len);
	tu_assert_fsck_clean(s);
	free(x);
	free(y);
	free(junk);
}

/*
 * After an unclean shutdown the free space is re-derived: pages that only
 * the index holds must not be handed out while the index still offers
 * them for sharing.
 */
static void test_unclean_reopen_index(void **state)
{
	struct tu_ctx *ctx = *state;
	size_t len = 128 * 1024;
	char *x = malloc(len), *junk = malloc(MiB);
	pid_t pid;
	int status;

	tu_fill_random(x, len, 3);
	tu_mkfile(ctx->s, POG_ROOT_INO, "a", x, len);
	tu_commit_check(ctx->s, "a");
	assert_ok(pog_remove(ctx->s, POG_ROOT_INO, "a", 1, 0));
	tu_commit_check(ctx->s, "a removed, not collected");
	assert_true(pog_close(ctx->s, POG_CLOSE_NOGC) >= 0);
	ctx->s = NULL;

	/* a child opens the pool and dies without closing it */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pog_store *c;
		if (pog_open(ctx->pool, 0, &c))
			_exit(2);
		if (pog_commit(c, "child", NULL))
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	tu_assert_fsck_clean(ctx->s);
	tu_mkfile(ctx->s, POG_ROOT_INO, "b", x, len);
	for (int i = 0; i < 4; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "junk%d", i);
		tu_fill_random(junk, MiB, 300 + (uint64_t)i);
		tu_mkfile(ctx->s, POG_ROOT_INO, nm, junk, MiB);
	}
	tu_commit_check(ctx->s, "b shares a's old page; junk around it");
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "b"), x, len);
	gc(ctx->s, NULL);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "b"), x, len);
	tu_reopen(ctx);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "b"), x, len);
	tu_assert_fsck_clean(ctx->s);
	free(x);
	free(junk);
}

/* Hard links and identical content are different things: a write through
 * one name of a hard link shows through the other, not in a copy. */
static void test_links_versus_copies(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 64 * 1024;
	char *x = malloc(len);
	struct pog_attr attr;
	uint64_t a, c;

	tu_fill_random(x, len, 11);
	a = tu_mkfile(s, POG_ROOT_INO, "a", x, len);
	c = tu_mkfile(s, POG_ROOT_INO, "copy", x, len);
	assert_ok(pog_link(s, a, POG_ROOT_INO, "link", 4, &attr));
	tu_commit_check(s, "a, link, copy");
	tu_write(s, tu_lookup(s, POG_ROOT_INO, "link"), 10, "LINK", 4);
	tu_commit_check(s, "written through the link");
	tu_assert_content(s, c, x, len);
	memcpy(x + 10, "LINK", 4);
	tu_assert_content(s, a, x, len);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, tu_state_teardown)
		T(test_ten_copies),
		T(test_identical_pages_in_one_file),
		T(test_reopen_keeps_sharing),
		T(test_gc_keeps_shared_pages),
		T(test_unclean_reopen_index),
		T(test_links_versus_copies),
#undef T
	};

	return cmocka_run_group_tests_name("dedup", tests, NULL, NULL);
}
