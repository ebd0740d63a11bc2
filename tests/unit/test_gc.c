/* test_gc.c - garbage collection gives the space of removed data back. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)1 << 30)
#define MiB ((size_t)1 << 20)

static int setup(void **state)
{
	/* Space and sharing are measured without history (one commit kept:
	 * test_history.c covers retention). */
	int r = tu_state_setup(state, NULL, POOL_SIZE);
	if (!r && pog_set_keep(((struct tu_ctx *)*state)->s, 1))
		r = -1;
	return r;
}

static uint64_t blocks_used(pog_store *s)
{
	struct pog_status st;

	assert_ok(pog_status(s, &st));
	assert_true(st.blocks_used <= st.blocks_total);
	return st.blocks_used;
}

static void assert_back_to(uint64_t before, uint64_t after, const char *what)
{
	/* within 5% of the usage before the data was written */
	if (after > before + before / 20)
		fail_msg("%s: blocks_used %llu, was %llu before (more than 5%% over)",
			 what, (unsigned long long)after,
			 (unsigned long long)before);
}

/*
 * A store with some baseline content; write a 100 MiB string, commit,
 * remove it, commit, GC: the blocks come back.
 */
static void test_gc_frees_100mib(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_status st;
	struct pog_gc_result gc;
	char *buf = malloc(MiB);
	uint64_t before, with, after, big, dir;

	/* baseline: 200 files of 64 KiB in a dir */
	dir = tu_mk(s, POG_ROOT_INO, "base", POG_MAP);
	for (int i = 0; i < 200; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "f%d", i);
		tu_fill_random(buf, 65536, (uint64_t)i);
		tu_mkfile(s, dir, nm, buf, 65536);
	}
	tu_commit_check(s, "baseline");
	assert_ok(pog_gc(s, &gc));
	before = blocks_used(s);

	big = tu_mk(s, POG_ROOT_INO, "big", POG_STRING);
	for (size_t i = 0; i < 100; i++) {
		tu_fill_random(buf, MiB, 500 + i);
		tu_write(s, big, i * MiB, buf, MiB);
	}
	tu_commit_check(s, "100 MiB");
	with = blocks_used(s);
	assert_ok(pog_status(s, &st));
	if ((with - before) * st.block_size < 100 * MiB)
		fail_msg("100 MiB committed but blocks_used grew by only %llu blocks of %llu",
			 (unsigned long long)(with - before),
			 (unsigned long long)st.block_size);

	assert_ok(pog_remove(s, POG_ROOT_INO, "big", 3, 0));
	tu_commit_check(s, "removed");
	assert_ok(pog_gc(s, &gc));
	after = blocks_used(s);
	print_message("    blocks (of %llu B): before %llu, with 100 MiB %llu, after gc %llu; gc freed %llu objects, %llu blocks\n",
		      (unsigned long long)st.block_size,
		      (unsigned long long)before, (unsigned long long)with,
		      (unsigned long long)after,
		      (unsigned long long)gc.objects_freed,
		      (unsigned long long)gc.blocks_freed);
	assert_true(gc.objects_freed >= 1);
	assert_true(gc.bytes_freed >= 100 * MiB);
	{
		/* for the report: does a second pass give back more? */
		struct pog_gc_result gc2;
		assert_ok(pog_gc(s, &gc2));
		print_message("    second gc: blocks_used %llu, freed %llu blocks\n",
			      (unsigned long long)blocks_used(s),
			      (unsigned long long)gc2.blocks_freed);
	}
	assert_back_to(before, after, "after gc");
	tu_assert_fsck_clean(s);

	/* the same after reopen (free space re-derived on open) */
	tu_reopen(ctx);
	assert_back_to(before, blocks_used(ctx->s), "after reopen");
	/* the baseline is intact */
	tu_fill_random(buf, 65536, 199);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, dir, "f199"), buf, 65536);
	tu_assert_fsck_clean(ctx->s);
	free(buf);
}

/* Overwriting in place many times does not grow the store after GC. */
static void test_gc_after_rewrites(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_gc_result gc;
	char *buf = malloc(MiB);
	uint64_t f, before, after;

	f = tu_mk(s, POG_ROOT_INO, "f", POG_STRING);
	for (int i = 0; i < 8; i++) {
		/* distinct content: identical pages would be stored once */
		tu_fill_random(buf, MiB, 1 + (uint64_t)i);
		tu_write(s, f, (uint64_t)i * MiB, buf, MiB);
	}
	tu_commit_check(s, "8 MiB");
	assert_ok(pog_gc(s, &gc));
	before = blocks_used(s);
	for (int round = 0; round < 20; round++) {
		tu_fill_random(buf, MiB, 100 + (uint64_t)round);
		tu_write(s, f, (uint64_t)(round % 8) * MiB, buf, MiB);
		tu_commit_check(s, "rewrite");
	}
	assert_ok(pog_gc(s, &gc));
	after = blocks_used(s);
	print_message("    8 MiB file, 20 rewrites of 1 MiB: blocks %llu -> %llu\n",
		      (unsigned long long)before, (unsigned long long)after);
	assert_back_to(before, after, "after rewrites and gc");
	tu_assert_fsck_clean(s);
	free(buf);
}

/* GC runs with changes staged (in a session of its own) and keeps them. */
static void test_gc_busy(void **state)
{
	struct tu_ctx *ctx = *state;
	struct pog_gc_result gc;

	tu_mkfile(ctx->s, POG_ROOT_INO, "f", "x", 1);
	assert_ok(pog_gc(ctx->s, &gc));
	assert_true(pog_staged_count(ctx->s) > 0);
	/* still staged */
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "f"), "x",
			  1);
	tu_commit_check(ctx->s, "f");
	assert_ok(pog_gc(ctx->s, &gc));
	tu_assert_fsck_clean(ctx->s);
}

/* A detached map whose files have names elsewhere too: after GC those
 * files count only the names left (fsck checks every link count). */
static void test_gc_detached_links(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_gc_result gc;
	struct pog_attr a;

	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	uint64_t f = tu_mkfile(s, d, "f", "shared", 6);
	assert_ok(pog_link(s, f, POG_ROOT_INO, "g", 1, NULL));
	assert_ok(pog_link(s, f, d, "h", 1, NULL));
	tu_commit_check(s, "three names");
	assert_ok(pog_detach(s, POG_ROOT_INO, "d", 1));
	tu_commit_check(s, "d detached");
	assert_ok(pog_gc(s, &gc));
	assert_int_equal(gc.objects_freed, 1);
	assert_ok(pog_getattr(s, tu_lookup(s, POG_ROOT_INO, "g"), &a));
	assert_int_equal(a.nlink, 1);
	tu_assert_content(s, a.ino, "shared", 6);
	tu_assert_fsck_clean(s);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gc_frees_100mib, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_gc_after_rewrites, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_gc_busy, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_gc_detached_links, setup,
						tu_state_teardown),
	};

	return cmocka_run_group_tests_name("gc", tests, NULL, NULL);
}
