/* test_pins.c - pinned commits stay readable; their blocks come back
 * once nothing older is pinned; GC marks shared trees once. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define POOL_SIZE ((uint64_t)256 << 20)
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
	return st.blocks_used;
}

/* The first len bytes of path `name` as of commit id (size: the file's). */
static void assert_old_bytes(pog_store *s, uint64_t id, const char *name,
			     uint64_t size, const void *data, size_t len)
{
	struct pog_state st;
	assert_ok(pog_rdlock(s));
	assert_ok(pog_commit_state(s, id, &st));
	uint64_t ino;
	assert_ok(pog_resolve_locked(s, &st, POG_ROOT_INO, name, &ino));
	const struct pog_inode *in;
	assert_ok(pog_inode_get(s, &st, ino, &in));
	assert_int_equal(in->size, size);
	char *buf = malloc(len);
	assert_rc(pog_data_read(s, in, 0, buf, len), (long long)len);
	pog_unlock(s);
	assert_memory_equal(buf, data, len);
	free(buf);
}

static void assert_old_content(pog_store *s, uint64_t id, const char *name,
			       const void *data, size_t len)
{
	assert_old_bytes(s, id, name, len, data, len);
}

/* A pinned commit keeps its pages and nodes through later commits and
 * GC; unpinned, GC gives them back. */
static void test_pin_keeps_old_commit(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char *old = malloc(MiB), *new = malloc(MiB);
	tu_fill_random(old, MiB, 1);
	tu_fill_random(new, MiB, 2);
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "a", old, MiB);
	uint64_t id1 = tu_commit_check(s, "old");
	assert_ok(pog_gc(s, NULL));
	assert_ok(pog_commit_pin(s, id1));
	tu_write(s, f, 0, new, MiB);
	uint64_t id2 = tu_commit_check(s, "new");
	assert_true(id2 > id1);
	assert_int_equal(pog_pins_oldest(s), id1);
	assert_ok(pog_gc(s, NULL));
	uint64_t pinned = blocks_used(s);
	assert_old_content(s, id1, "a", old, MiB);
	assert_old_content(s, s->env->commit_id, "a", new, MiB);
	tu_assert_content(s, f, new, MiB);

	pog_commit_unpin(s, id1);
	assert_int_equal(pog_pins_oldest(s), s->env->commit_id);
	assert_ok(pog_gc(s, NULL));
	uint64_t after = blocks_used(s);
	print_message("    pinned %llu blocks, unpinned %llu\n",
		      (unsigned long long)pinned, (unsigned long long)after);
	assert_true(pinned >= after + MiB / POG_BLOCK_SIZE);
	/* The old commit's record went with it. */
	struct pog_state st;
	assert_rc(pog_commit_state(s, id1, &st), -ENOENT);
	assert_rc(pog_commit_pin(s, id1), -ENOENT);
	tu_assert_fsck_clean(s);
	free(old);
	free(new);
}

/* Without GC: what later commits replace is queued while an older commit
 * is pinned, and freed by the release that follows the unpin. */
static void test_deferred_release(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	for (int i = 0; i < 400; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "f%03d", i);
		tu_mkfile(s, dir, nm, nm, strlen(nm));
	}
	uint64_t base = tu_commit_check(s, "base");
	assert_ok(pog_gc(s, NULL));
	uint64_t b0 = blocks_used(s);

	/* Unpinned: each commit frees what it replaced at once. */
	uint64_t f = tu_lookup(s, dir, "f000");
	tu_write(s, f, 0, "x", 1);
	tu_commit_check(s, "one");
	uint64_t unpinned_growth = blocks_used(s) - b0;

	base = s->env->commit_id;
	assert_ok(pog_commit_pin(s, base));
	uint64_t b1 = blocks_used(s), prev = b1;
	for (int i = 1; i <= 10; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "f%03d", i * 37);
		tu_write(s, tu_lookup(s, dir, nm), 0, "y", 1);
		tu_commit_check(s, "edit");
		uint64_t now = blocks_used(s);
		/* at least the previous commit record is kept each time */
		assert_true(now > prev);
		prev = now;
	}
	pog_commit_unpin(s, base);
	assert_ok(pog_wrlock(s));
	pog_deferred_release(s);
	pog_unlock(s);
	uint64_t released = blocks_used(s);
	print_message("    base %llu, one commit +%llu; 10 pinned commits %llu, "
		      "released %llu\n", (unsigned long long)b0,
		      (unsigned long long)unpinned_growth, (unsigned long long)prev,
		      (unsigned long long)released);
	assert_true(released < prev);
	/* Only the last commit's own blocks are left beyond the start. */
	assert_true(released <= b1 + 10 * (unpinned_growth + 8));
	tu_assert_fsck_clean(s);
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	tu_assert_fsck_clean(s);
}

/* Sixteen pinned commits of a store that changes a little each time:
 * GC keeps their distinct blocks, not sixteen copies of the store. */
static void test_mark_shares_trees(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "m", POG_MAP);
	char buf[8192];
	for (int i = 0; i < 2000; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "g%04d", i);
		tu_fill_random(buf, sizeof(buf), 1000 + (uint64_t)i);
		tu_mkfile(s, dir, nm, buf, sizeof(buf));
	}
	tu_commit_check(s, "many");
	struct pog_gc_result gc;
	assert_ok(pog_gc(s, &gc));
	uint64_t one = gc.blocks_live;
	uint64_t ids[16];
	for (int i = 0; i < 16; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "g%04d", i * 97);
		tu_write(s, tu_lookup(s, dir, nm), 0, "changed", 7);
		ids[i] = tu_commit_check(s, "change");
		assert_ok(pog_commit_pin(s, ids[i]));
	}
	assert_ok(pog_gc(s, &gc));
	uint64_t sixteen = gc.blocks_live;
	print_message("    live blocks: 1 commit %llu, 16 pinned commits %llu\n",
		      (unsigned long long)one, (unsigned long long)sixteen);
	/* each commit adds a path of nodes and a page, not a store */
	assert_true(sixteen < one + one / 4);
	for (int i = 0; i < 16; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "m/g%04d", i * 97);
		assert_old_bytes(s, ids[i], nm, sizeof(buf), "changed", 7);
		if (i < 15) { /* the next one was still as written at first */
			snprintf(nm, sizeof(nm), "m/g%04d", (i + 1) * 97);
			tu_fill_random(buf, sizeof(buf), 1000 + (uint64_t)(i + 1) * 97);
			assert_old_content(s, ids[i], nm, buf, sizeof(buf));
		}
	}
	for (int i = 0; i < 16; i++)
		pog_commit_unpin(s, ids[i]);
	assert_ok(pog_gc(s, &gc));
	assert_true(gc.blocks_live <= one + one / 50);
	tu_assert_fsck_clean(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pin_keeps_old_commit, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_deferred_release, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_mark_shares_trees, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
