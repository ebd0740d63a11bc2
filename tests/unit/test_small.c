/* test_small.c - small tree nodes (format 2): the root leaf of a small map,
 * list, xattr set or page table lives in a 256..2048-byte slot and grows
 * into a block; space, growth, abort, GC, reopen and the format upgrade. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static uint64_t blocks_used(pog_store *s)
{
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	return st.blocks_used;
}

static void name_of(char *buf, size_t size, const char *prefix, unsigned i)
{
	snprintf(buf, size, "%s%u", prefix, i);
}

/* n maps of three short strings each. */
static void make_small_maps(pog_store *s, uint64_t dir, unsigned n)
{
	char name[32];
	for (unsigned i = 0; i < n; i++) {
		name_of(name, sizeof(name), "m", i);
		uint64_t m = tu_mk(s, dir, name, POG_MAP);
		tu_mkfile(s, m, "id", name, strlen(name));
		tu_mkfile(s, m, "name", "someone", 7);
		tu_mkfile(s, m, "ok", "true", 4);
	}
}

/* 2,000 small maps used to take a block each; in slots they take ~1/16. */
static void test_small_maps_share_blocks(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t before = blocks_used(s);
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "space", POG_MAP);
	make_small_maps(s, dir, 2000);
	tu_commit_check(s, "small maps");
	uint64_t grew = blocks_used(s) - before;
	print_message("    2000 maps + 6000 strings: %llu blocks\n",
		      (unsigned long long)grew);
	/* the object table alone is ~8000 * 136 bytes = ~270 blocks */
	assert_true(grew < 600);
	tu_reopen(ctx);
	s = ctx->s;
	dir = tu_lookup(s, POG_ROOT_INO, "space");
	assert_int_equal(tu_count_entries(s, dir), 2000);
	uint64_t m = tu_lookup(s, dir, "m1234");
	tu_assert_content(s, tu_lookup(s, m, "id"), "m1234", 5);
	tu_assert_fsck_clean(s);
}

/* One map grows from a 256-byte slot through every size into a split tree
 * and shrinks back; every entry stays findable at every step. */
static void test_growth_through_sizes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "grow", POG_MAP);
	char name[64];
	const unsigned n = 600;
	for (unsigned i = 0; i < n; i++) {
		/* long names, so that the leaf outgrows a block early */
		snprintf(name, sizeof(name), "entry-with-a-long-name-%05u", i);
		tu_mkfile(s, dir, name, name, strlen(name));
		if (i % 7 == 0 || i < 40) {
			for (unsigned j = 0; j <= i; j += 1 + i / 8) {
				snprintf(name, sizeof(name),
					 "entry-with-a-long-name-%05u", j);
				tu_lookup(s, dir, name);
			}
		}
		if (i == 3 || i == 20 || i == 90 || i == 599)
			tu_commit_check(s, "grown");
	}
	assert_int_equal(tu_count_entries(s, dir), n);
	tu_reopen(ctx);
	s = ctx->s;
	dir = tu_lookup(s, POG_ROOT_INO, "grow");
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "entry-with-a-long-name-%05u", i);
		tu_assert_content(s, tu_lookup(s, dir, name), name,
				  strlen(name));
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "entry-with-a-long-name-%05u", i);
		assert_ok(pog_remove(s, dir, name, strlen(name), 0));
		if (i == 300)
			tu_commit_check(s, "half gone");
	}
	assert_int_equal(tu_count_entries(s, dir), 0);
	tu_commit_check(s, "all gone");
	assert_ok(pog_remove(s, POG_ROOT_INO, "grow", 4, POG_REMOVE_DIR));
	tu_commit_check(s, "map gone");
}

/* Lists, xattrs and page tables use slots too. */
static void test_lists_xattrs_page_tables(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t list = tu_mk(s, POG_ROOT_INO, "l", POG_LIST);
	char name[16], val[300];
	for (unsigned i = 0; i < 200; i++) {
		name_of(name, sizeof(name), "", i);
		tu_mkfile(s, list, name, "x", 1);
	}
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "data", 4);
	for (unsigned i = 0; i < 40; i++) {
		name_of(name, sizeof(name), "user.a", i);
		memset(val, 'a' + (int)(i % 26), sizeof(val));
		assert_ok(pog_setxattr(s, f, name, val, 10 + i * 7, 0));
	}
	/* three pages: a page table of three entries */
	static char big[3 * 4096 + 100];
	tu_fill_random(big, sizeof(big), 7);
	uint64_t g = tu_mkfile(s, POG_ROOT_INO, "g", big, sizeof(big));
	tu_commit_check(s, "slots everywhere");
	tu_reopen(ctx);
	s = ctx->s;
	list = tu_lookup(s, POG_ROOT_INO, "l");
	assert_int_equal(tu_count_entries(s, list), 200);
	for (unsigned i = 0; i < 40; i++) {
		char got[300];
		name_of(name, sizeof(name), "user.a", i);
		assert_rc(pog_getxattr(s, f, name, got, sizeof(got)), 10 + i * 7);
		assert_int_equal(got[0], 'a' + (int)(i % 26));
	}
	tu_assert_content(s, g, big, sizeof(big));
	/* a write into the middle copies the page table's slot */
	tu_write(s, g, 5000, "hello", 5);
	memcpy(big + 5000, "hello", 5);
	tu_commit_check(s, "rewritten");
	tu_assert_content(s, g, big, sizeof(big));
}

/* Abort gives back the slot blocks of the transaction. */
static void test_abort_frees_slots(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t before = blocks_used(s);
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "gone", POG_MAP);
	make_small_maps(s, dir, 500);
	assert_true(blocks_used(s) > before);
	assert_ok(pog_abort(s));
	assert_int_equal(blocks_used(s), before);
	assert_rc(pog_lookup(s, POG_ROOT_INO, "gone", 4, &(struct pog_attr){0}),
		  -ENOENT);
	tu_assert_fsck_clean(s);
}

/* Changing small maps replaces their slots; the old ones keep their
 * blocks busy until GC finds the blocks idle and frees them. */
static void test_gc_frees_idle_slot_blocks(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "churn", POG_MAP);
	make_small_maps(s, dir, 1000);
	tu_commit_check(s, "made");
	struct pog_gc_result res;
	assert_ok(pog_gc(s, &res));
	uint64_t base = blocks_used(s);
	char name[32];
	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 1000; i++) {
			name_of(name, sizeof(name), "m", i);
			uint64_t m = tu_lookup(s, dir, name);
			name_of(name, sizeof(name), "r", (unsigned)round);
			tu_mkfile(s, m, name, "v", 1);
		}
		tu_commit_check(s, "changed");
	}
	uint64_t churned = blocks_used(s);
	assert_ok(pog_gc(s, &res));
	uint64_t after = blocks_used(s);
	print_message("    before churn %llu, after %llu, after gc %llu blocks\n",
		      (unsigned long long)base, (unsigned long long)churned,
		      (unsigned long long)after);
	assert_true(res.blocks_freed > 0);
	assert_true(after < churned);
	tu_assert_fsck_clean(s);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
	assert_int_equal(blocks_used(ctx->s), after);
}

/* Small commits that each change a small map fill one slot block after
 * another instead of taking a block each; aborted slots are used again. */
static void test_small_commits_share_blocks(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	tu_mkfile(s, dir, "f", "0", 1);
	tu_commit_check(s, "start");
	uint64_t before = blocks_used(s);
	char name[16];
	for (unsigned i = 0; i < 300; i++) {
		name_of(name, sizeof(name), "n", i % 5);
		struct pog_attr a;
		if (pog_lookup(s, dir, name, strlen(name), &a) == 0)
			assert_ok(pog_remove(s, dir, name, strlen(name), 0));
		else
			tu_mkfile(s, dir, name, "x", 1);
		if (i % 3 == 2) {
			assert_ok(pog_abort(s));
		} else {
			assert_ok(pog_commit(s, NULL, NULL));
		}
	}
	uint64_t after = blocks_used(s);
	print_message("    300 small commits/aborts: %llu -> %llu blocks\n",
		      (unsigned long long)before, (unsigned long long)after);
	/* one block a commit would be 200 */
	assert_true(after - before < 60);
	tu_assert_fsck_clean(s);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
}

/* Patch the superblock's format_version field in the pool file. */
static void set_format_version(const char *pool, uint32_t version)
{
	int fd = open(pool, O_RDWR);
	assert_true(fd >= 0);
	size_t size = 64u << 20;
	char *buf = malloc(size);
	assert_non_null(buf);
	ssize_t n = pread(fd, buf, size, 0);
	assert_true(n > 16);
	char *at = memmem(buf, (size_t)n, "POGPOOL1", 8);
	assert_non_null(at);
	assert_int_equal(pwrite(fd, &version, 4, (at - buf) + 8), 4);
	free(buf);
	close(fd);
}

/* A format-1 pool (no small nodes) opens; a writable open records the
 * current version,
 * a read-only one changes nothing. */
static void test_format_upgrade(void **state)
{
	struct tu_ctx *ctx = *state;
	tu_mkfile(ctx->s, POG_ROOT_INO, "kept", "yes", 3);
	tu_commit_check(ctx->s, "before");
	assert_ok(pog_close(ctx->s, POG_CLOSE_NOGC));
	ctx->s = NULL;
	set_format_version(ctx->pool, 1);
	struct pog_status st;
	assert_ok(pog_open(ctx->pool, POG_OPEN_READONLY, &ctx->s));
	assert_ok(pog_status(ctx->s, &st));
	assert_int_equal(st.format_version, 1);
	assert_ok(pog_close(ctx->s, 0));
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_ok(pog_status(ctx->s, &st));
	assert_int_equal(st.format_version, pog_format_version());
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "kept"),
			  "yes", 3);
	tu_assert_fsck_clean(ctx->s);
	tu_reopen(ctx);
	assert_ok(pog_status(ctx->s, &st));
	assert_int_equal(st.format_version, pog_format_version());
}

static int setup(void **state)
{
	/* Space and sharing are measured without history (one commit kept:
	 * test_history.c covers retention). */
	int r = tu_state_setup(state, NULL, 256u << 20);
	if (!r && pog_set_keep(((struct tu_ctx *)*state)->s, 1))
		r = -1;
	return r;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_maps_share_blocks,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_growth_through_sizes,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_lists_xattrs_page_tables,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_abort_frees_slots, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_gc_frees_idle_slot_blocks,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_small_commits_share_blocks,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_format_upgrade, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
