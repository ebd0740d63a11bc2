/* test_refs.c - refs, cycles, readlink, and what the GC keeps or frees. */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)256 << 20)

static int setup(void **state)
{
	/* GC's results are measured without history (one commit kept). */
	int r = tu_state_setup(state, NULL, POOL_SIZE);
	if (!r && pog_set_keep(((struct tu_ctx *)*state)->s, 1))
		r = -1;
	return r;
}

static uint64_t mkref(pog_store *s, uint64_t dir, const char *name,
		      uint64_t target)
{
	struct pog_new spec = { .type = POG_REF, .mode = 0777,
				.ref_target = target };
	struct pog_attr attr;
	int rc = pog_mknode(s, dir, name, strlen(name), &spec, &attr);

	if (rc != 0)
		fail_msg("mknode ref \"%s\" -> %llu: %d (%s)", name,
			 (unsigned long long)target, rc, tu_err(rc));
	assert_int_equal(attr.type, POG_REF);
	assert_true(S_ISLNK(attr.mode));
	return attr.ino;
}

static void assert_readlink(pog_store *s, uint64_t ino, const char *expect)
{
	char buf[4096];
	ssize_t n = pog_readlink(s, ino, buf, sizeof(buf));

	if (n < 0)
		fail_msg("pog_readlink(%llu) = %zd (%s)",
			 (unsigned long long)ino, n, tu_err(n));
	if ((size_t)n != strlen(expect) || memcmp(buf, expect, (size_t)n))
		fail_msg("readlink(%llu) = \"%.*s\", expected \"%s\"",
			 (unsigned long long)ino, (int)n, buf, expect);
}

/* readlink of a ref, resolved from the link's directory, is its target. */
static void assert_readlink_resolves(pog_store *s, uint64_t link_dir,
				     uint64_t link, uint64_t target)
{
	char buf[4096];
	uint64_t got = 0;
	ssize_t n = pog_readlink(s, link, buf, sizeof(buf) - 1);

	if (n < 0)
		fail_msg("pog_readlink(%llu) = %zd (%s)",
			 (unsigned long long)link, n, tu_err(n));
	buf[n] = '\0';
	assert_true(buf[0] != '/'); /* relative */
	if (pog_resolve(s, link_dir, buf, &got) != 0 || got != target)
		fail_msg("readlink(%llu) = \"%s\" resolves to %llu, expected %llu",
			 (unsigned long long)link, buf,
			 (unsigned long long)got, (unsigned long long)target);
}

/* A collected object: its ino answers -ENOENT (or -ESTALE). */
static void assert_gone(pog_store *s, uint64_t ino)
{
	struct pog_attr attr;
	int rc = pog_getattr(s, ino, &attr);

	if (rc != -ENOENT && rc != -ESTALE)
		fail_msg("ino %llu after GC: getattr = %d (%s)",
			 (unsigned long long)ino, rc, tu_err(rc));
}

static uint64_t ref_target(pog_store *s, uint64_t ino)
{
	uint64_t t = 0;

	assert_ok(pog_ref_target(s, ino, &t));
	return t;
}

/* x/y/up -> x (a cycle through a ref); root/link -> x/y. */
static void test_ref_cycle_and_readlink(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	uint64_t x = tu_mk(s, POG_ROOT_INO, "x", POG_MAP);
	uint64_t y = tu_mk(s, x, "y", POG_MAP);
	uint64_t up = mkref(s, y, "up", x);
	uint64_t link = mkref(s, POG_ROOT_INO, "link", y);
	uint64_t other = tu_mk(s, POG_ROOT_INO, "other", POG_MAP);
	char path[256];
	uint64_t t;

	assert_int_equal(ref_target(s, up), x);
	assert_int_equal(ref_target(s, link), y);
	assert_readlink(s, link, "x/y");
	assert_readlink_resolves(s, POG_ROOT_INO, link, y);
	assert_readlink_resolves(s, y, up, x);
	/* not a ref */
	assert_true(pog_ref_target(s, x, &t) < 0);
	/* a ref has a size: its readlink length */
	assert_ok(pog_getattr(s, link, &attr));
	assert_int_equal(attr.size, 3);
	/* lookup through the map finds the ref, not its target */
	assert_ok(pog_lookup(s, y, "up", 2, &attr));
	assert_int_equal(attr.ino, up);
	assert_int_equal(attr.type, POG_REF);
	/* a ref to a missing object is refused */
	{
		struct pog_new spec = { .type = POG_REF, .mode = 0777,
					.ref_target = 999999999 };
		assert_true(pog_mknode(s, other, "bad", 3, &spec, &attr) < 0);
	}
	tu_commit_check(s, "refs");

	/* the ref follows its target through renames */
	assert_ok(pog_rename(s, POG_ROOT_INO, "x", 1, other, "z", 1, 0));
	assert_readlink(s, link, "other/z/y");
	assert_readlink_resolves(s, POG_ROOT_INO, link, y);
	assert_readlink_resolves(s, y, up, x);
	assert_int_equal(ref_target(s, link), y);
	assert_rc(pog_path(s, y, path, sizeof(path)), 9);
	assert_memory_equal(path, "other/z/y", 9);
	/* committed view still answers the old path */
	assert_readlink(s, link | POG_COMMITTED_BIT, "x/y");
	tu_commit_check(s, "renamed");

	/* the ref itself moves: still relative to its new directory */
	assert_ok(pog_rename(s, POG_ROOT_INO, "link", 4, other, "link", 4, 0));
	assert_readlink(s, link, "z/y");
	tu_commit_check(s, "link moved");
	tu_reopen(ctx);
	s = ctx->s;
	assert_readlink(s, link, "z/y");
	assert_int_equal(ref_target(s, up), x);
	assert_readlink_resolves(s, y, up, x);
	/* GC keeps all of it */
	{
		struct pog_gc_result gc;
		assert_ok(pog_gc(s, &gc));
	}
	assert_int_equal(ref_target(s, link), y);
	assert_ok(pog_getattr(s, x, &attr));
	tu_assert_fsck_clean(s);
}

/* An object held only by a ref (its owning entry removed) survives GC. */
static void test_reachable_only_by_ref(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_gc_result gc;
	struct pog_attr attr;
	uint64_t tmp = tu_mk(s, POG_ROOT_INO, "tmp", POG_MAP);
	uint64_t obj = tu_mkfile(s, tmp, "obj", "precious", 8);
	uint64_t emptymap = tu_mk(s, tmp, "emptymap", POG_MAP);
	uint64_t r = mkref(s, POG_ROOT_INO, "r", obj);
	uint64_t r2 = mkref(s, POG_ROOT_INO, "r2", emptymap);
	char expect[64], buf[256];
	ssize_t n;

	tu_commit_check(s, "owned");
	assert_ok(pog_remove(s, tmp, "obj", 3, 0));
	assert_ok(pog_remove(s, tmp, "emptymap", 8, POG_REMOVE_DIR));
	assert_ok(pog_remove(s, POG_ROOT_INO, "tmp", 3, POG_REMOVE_DIR));
	tu_commit_check(s, "only refs hold them");
	assert_ok(pog_gc(s, &gc));
	tu_assert_fsck_clean(s);
	tu_reopen(ctx); /* pog_close collects garbage too */
	s = ctx->s;
	assert_ok(pog_gc(s, &gc));

	assert_int_equal(ref_target(s, r), obj);
	assert_ok(pog_getattr(s, obj, &attr));
	assert_int_equal(attr.type, POG_STRING);
	tu_assert_content(s, obj, "precious", 8);
	assert_ok(pog_getattr(s, emptymap, &attr));
	assert_int_equal(attr.type, POG_MAP);
	/* no owning place: pog_path says so, readlink names .pog/objects */
	assert_rc(pog_path(s, obj, buf, sizeof(buf)), -ENOENT);
	snprintf(expect, sizeof(expect), ".pog/objects/%" PRIu64, obj);
	assert_readlink(s, r, expect);
	snprintf(expect, sizeof(expect), ".pog/objects/%" PRIu64, emptymap);
	assert_readlink(s, r2, expect);
	/* a file can be given a place again by a hard link */
	assert_ok(pog_link(s, obj, POG_ROOT_INO, "back", 4, &attr));
	assert_int_equal(attr.ino, obj);
	assert_int_equal(attr.nlink, 1);
	assert_readlink(s, r, "back");
	n = pog_path(s, obj, buf, sizeof(buf));
	assert_rc(n, 4);
	tu_commit_check(s, "relinked");
	tu_assert_fsck_clean(s);
}

/*
 * Maps A and B point at each other by refs, and nothing else reaches
 * them: GC frees both, with what they own.
 */
static void test_unreachable_cycle_freed(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_gc_result gc;
	struct pog_status st;
	size_t len = 1 << 20;
	char *data = malloc(len);
	uint64_t a = tu_mk(s, POG_ROOT_INO, "a", POG_MAP);
	uint64_t b = tu_mk(s, POG_ROOT_INO, "b", POG_MAP);
	uint64_t ra = mkref(s, POG_ROOT_INO, "ra", a);
	uint64_t rb = mkref(s, POG_ROOT_INO, "rb", b);
	uint64_t keep = tu_mkfile(s, POG_ROOT_INO, "keep", "k", 1);
	uint64_t ab, ba, payload;

	(void)ra;
	(void)rb;
	/* give A and B no owning place, then link them to each other */
	assert_ok(pog_remove(s, POG_ROOT_INO, "a", 1, POG_REMOVE_DIR));
	assert_ok(pog_remove(s, POG_ROOT_INO, "b", 1, POG_REMOVE_DIR));
	ab = mkref(s, a, "toB", b);
	ba = mkref(s, b, "toA", a);
	tu_fill_random(data, len, 3);
	payload = tu_mkfile(s, a, "payload", data, len);
	tu_commit_check(s, "cycle held by ra, rb");
	assert_ok(pog_gc(s, &gc));
	tu_assert_content(s, payload, data, len);
	assert_int_equal(ref_target(s, ab), b);

	/* drop the outside refs: the cycle is garbage */
	assert_ok(pog_remove(s, POG_ROOT_INO, "ra", 2, 0));
	assert_ok(pog_remove(s, POG_ROOT_INO, "rb", 2, 0));
	tu_commit_check(s, "cycle unreachable");
	assert_ok(pog_gc(s, &gc));
	print_message("    gc: live %llu freed %llu objects, %llu blocks\n",
		      (unsigned long long)gc.objects_live,
		      (unsigned long long)gc.objects_freed,
		      (unsigned long long)gc.blocks_freed);
	/* a, b, toB, toA, payload (and ra, rb unless freed earlier) */
	assert_true(gc.objects_freed >= 5);
	assert_true(gc.bytes_freed >= len);
	assert_ok(pog_status(s, &st));
	assert_true(st.gc_runs >= 2);
	assert_true(st.gc_freed_objects >= 5);
	{
		const uint64_t gone[] = { a, b, ab, ba, payload };
		for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
			assert_gone(s, gone[i]);
	}
	tu_assert_content(s, keep, "k", 1);
	tu_assert_fsck_clean(s);
	tu_reopen(ctx);
	assert_gone(ctx->s, a);
	assert_gone(ctx->s, payload);
	tu_assert_content(ctx->s, keep, "k", 1);
	tu_assert_fsck_clean(ctx->s);
	free(data);
}

/* A pinned object survives GC while pinned and is freed after unpin. */
static void test_pins(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_gc_result gc;
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "open file", 9);

	tu_commit_check(s, "f");
	pog_pin(s, f);
	pog_pin(s, f);
	assert_ok(pog_remove(s, POG_ROOT_INO, "f", 1, 0));
	/* unlinked but open: still readable */
	tu_assert_content(s, f, "open file", 9);
	tu_commit_check(s, "f unlinked");
	assert_ok(pog_gc(s, &gc));
	tu_assert_content(s, f, "open file", 9);
	pog_unpin(s, f, 1);
	assert_ok(pog_gc(s, &gc));
	tu_assert_content(s, f, "open file", 9);
	pog_unpin(s, f, 1);
	assert_ok(pog_gc(s, &gc));
	assert_gone(s, f);
	tu_assert_fsck_clean(s);
}

/* Hard links: two names, one object; nlink counts them. */
static void test_hard_links(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "data", 4);

	assert_ok(pog_link(s, f, d, "g", 1, &attr));
	assert_int_equal(attr.ino, f);
	assert_int_equal(attr.nlink, 2);
	assert_rc(pog_link(s, d, POG_ROOT_INO, "d2", 2, &attr), -EPERM);
	tu_write(s, tu_lookup(s, d, "g"), 4, "more", 4);
	tu_assert_content(s, f, "datamore", 8);
	tu_commit_check(s, "linked");
	assert_ok(pog_remove(s, POG_ROOT_INO, "f", 1, 0));
	assert_ok(pog_getattr(s, f, &attr));
	assert_int_equal(attr.nlink, 1);
	tu_commit_check(s, "one name left");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, d, "g"), "datamore", 8);
	tu_assert_fsck_clean(ctx->s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ref_cycle_and_readlink,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_reachable_only_by_ref,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_cycle_freed,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_pins, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_hard_links, setup,
						tu_state_teardown),
	};

	return cmocka_run_group_tests_name("refs", tests, NULL, NULL);
}
