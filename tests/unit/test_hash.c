/* test_hash.c - user.pog.hash: fixed vectors, change detection, stability. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"

#define POOL_SIZE (64ULL << 20)

static uint32_t hash_of(pog_store *s, uint64_t ino)
{
	uint32_t h = 0;
	assert_ok(pog_hash(s, ino, &h));
	return h;
}

static uint64_t mk_typed(pog_store *s, uint64_t dir, const char *name,
			 const char *text, uint32_t type)
{
	uint64_t ino = tu_mkfile(s, dir, name, text, strlen(text));
	assert_ok(pog_set_type(s, ino, type));
	return ino;
}

/*
 * The README's worked examples (computed independently with Python's
 * zlib.crc32): a string "hello", a list [true, null], and the map
 * {"a": "hello", "n": 42, "l": [true, null]}.
 */
static void test_fixed_vectors(void **state)
{
	struct tu_ctx ctx;
	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	pog_store *s = ctx.s;
	uint64_t a = tu_mkfile(s, POG_ROOT_INO, "a", "hello", 5);
	uint64_t n = mk_typed(s, POG_ROOT_INO, "n", "42", POG_INT);
	uint64_t l = tu_mk(s, POG_ROOT_INO, "l", POG_MAP);
	assert_ok(pog_set_type(s, l, POG_LIST));
	mk_typed(s, l, "0", "true", POG_BOOL);
	mk_typed(s, l, "1", "null", POG_NULL);
	assert_int_equal(hash_of(s, a), 0xcc468f57);
	assert_int_equal(hash_of(s, n), 0xcbba8bca);
	assert_int_equal(hash_of(s, l), 0xd418c282);
	assert_int_equal(hash_of(s, POG_ROOT_INO), 0x4ccbb424);
	tu_commit_check(s, "vectors");
	/* the committed view hashes the same, uncached */
	assert_int_equal(hash_of(s, POG_ROOT_INO | POG_COMMITTED_BIT), 0x4ccbb424);
	tu_reopen(&ctx);
	assert_int_equal(hash_of(ctx.s, POG_ROOT_INO), 0x4ccbb424);
	tu_teardown(&ctx);
}

/* Every kind of edit below the root changes its hash; undoing it brings
 * the old hash back; nothing changed means the same hash. */
static void test_every_edit_changes_the_hash(void **state)
{
	struct tu_ctx ctx;
	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	pog_store *s = ctx.s;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	uint64_t deep = tu_mk(s, d, "deep", POG_MAP);
	uint64_t f = tu_mkfile(s, deep, "f", "content", 7);
	uint64_t n = mk_typed(s, deep, "n", "1", POG_INT);
	tu_commit_check(s, "base");
	uint32_t h0 = hash_of(s, POG_ROOT_INO);
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0); /* stable */

	tu_write(s, f, 0, "C", 1); /* content */
	uint32_t h1 = hash_of(s, POG_ROOT_INO);
	assert_int_not_equal(h1, h0);
	tu_write(s, f, 0, "c", 1);
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0); /* back */

	assert_int_equal(pog_write(s, n, 0, "2\n", 2), 2); /* typed value */
	assert_int_not_equal(hash_of(s, POG_ROOT_INO), h0);
	assert_int_equal(pog_write(s, n, 0, "1\n", 2), 2);
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0);

	tu_mkfile(s, deep, "new", "", 0); /* add */
	uint32_t h2 = hash_of(s, POG_ROOT_INO);
	assert_int_not_equal(h2, h0);
	assert_ok(pog_rename(s, deep, "new", 3, deep, "renamed", 7, 0));
	uint32_t h3 = hash_of(s, POG_ROOT_INO);
	assert_int_not_equal(h3, h2); /* keys are hashed */
	assert_ok(pog_remove(s, deep, "renamed", 7, 0)); /* remove */
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0);

	struct pog_attr attr = {.size = 3};
	assert_ok(pog_setattr(s, f, &attr, POG_SET_SIZE, NULL)); /* truncate */
	assert_int_not_equal(hash_of(s, POG_ROOT_INO), h0);
	tu_write(s, f, 3, "tent", 4);
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0);

	attr.mode = 0600; /* metadata is not content */
	assert_ok(pog_setattr(s, f, &attr, POG_SET_MODE, NULL));
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0);

	assert_ok(pog_set_type(s, n, POG_FLOAT)); /* type */
	assert_int_not_equal(hash_of(s, POG_ROOT_INO), h0);

	assert_ok(pog_abort(s)); /* abort: the committed hash again */
	assert_int_equal(hash_of(s, POG_ROOT_INO), h0);
	tu_teardown(&ctx);
}

/* Map order does not matter: the same entries made in another order (in
 * another store) hash the same. */
static void test_map_order_free(void **state)
{
	struct tu_ctx a, b;
	(void)state;
	tu_setup(&a, NULL, POOL_SIZE);
	tu_setup(&b, NULL, POOL_SIZE);
	char name[32];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		tu_mkfile(a.s, POG_ROOT_INO, name, name, strlen(name));
		snprintf(name, sizeof(name), "k%d", 299 - i);
		tu_mkfile(b.s, POG_ROOT_INO, name, name, strlen(name));
	}
	assert_int_equal(hash_of(a.s, POG_ROOT_INO), hash_of(b.s, POG_ROOT_INO));
	tu_teardown(&a);
	tu_teardown(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_vectors),
		cmocka_unit_test(test_every_edit_changes_the_hash),
		cmocka_unit_test(test_map_order_free),
	};
	return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}
