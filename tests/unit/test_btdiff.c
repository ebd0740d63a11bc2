/* test_btdiff.c - pog_bt_diff: the keys two copy-on-write trees differ in,
 * found without reading the subtrees they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "store_int.h"

#define NKEYS 20000u

struct seen {
	uint64_t keys[64];
	int kinds[64]; /* 'D' only in a, 'A' only in b, 'M' both */
	unsigned n;
};

static int record(void *ctx, uint64_t key, const void *a, uint16_t alen,
		  const void *b, uint16_t blen)
{
	struct seen *sn = ctx;
	(void)alen;
	(void)blen;
	if (sn->n == 64)
		return -E2BIG;
	sn->keys[sn->n] = key;
	sn->kinds[sn->n++] = a && b ? 'M' : a ? 'D' : 'A';
	return 0;
}

static uint64_t val_of(uint64_t key)
{
	return key * 2654435761u;
}

/* A committed tree of NKEYS keys 0, 10, 20, ... (its root returned). */
static uint64_t committed_tree(pog_store *s)
{
	uint64_t root = 0;
	assert_ok(pog_wrlock(s));
	for (uint64_t k = 0; k < NKEYS; k++) {
		uint64_t v = val_of(k * 10);
		assert_ok(pog_bt_put(s, POG_TREE_LOG, &root, k * 10, &v, sizeof(v)));
	}
	pog_unlock(s);
	/* The commit seals the nodes: from now on they are copied on write. */
	assert_ok(pog_commit(s, NULL, NULL));
	return root;
}

static void test_diff_reports_changes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t a = committed_tree(s), b = a;

	assert_ok(pog_wrlock(s));
	struct seen none = { 0 };
	assert_ok(pog_bt_diff(s, a, b, record, &none));
	assert_int_equal(none.n, 0);

	uint64_t v = 7;
	assert_ok(pog_bt_put(s, POG_TREE_LOG, &b, 5, &v, sizeof(v)));        /* A */
	assert_ok(pog_bt_put(s, POG_TREE_LOG, &b, 100000, &v, sizeof(v)));   /* M */
	assert_ok(pog_bt_del(s, &b, 150000));                                /* D */
	assert_ok(pog_bt_put(s, POG_TREE_LOG, &b, NKEYS * 10 + 1, &v, 8));   /* A */
	uint64_t same = val_of(30);
	assert_ok(pog_bt_put(s, POG_TREE_LOG, &b, 30, &same, sizeof(same))); /* = */

	struct seen sn = { 0 };
	assert_ok(pog_bt_diff(s, a, b, record, &sn));
	uint64_t want_keys[] = { 5, 100000, 150000, NKEYS * 10 + 1 };
	int want_kinds[] = { 'A', 'M', 'D', 'A' };
	assert_int_equal(sn.n, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(sn.keys[i], want_keys[i]);
		assert_int_equal(sn.kinds[i], want_kinds[i]);
	}
	/* The other way round: the same keys, A and D swapped. */
	struct seen back = { 0 };
	assert_ok(pog_bt_diff(s, b, a, record, &back));
	assert_int_equal(back.n, 4);
	assert_int_equal(back.kinds[0], 'D');
	assert_int_equal(back.kinds[2], 'A');
	/* Against an empty tree: every key. */
	struct seen all = { 0 };
	assert_rc(pog_bt_diff(s, 0, a, record, &all), -E2BIG);
	pog_unlock(s);
}

static int count(void *ctx, uint64_t key, const void *a, uint16_t alen,
		 const void *b, uint16_t blen)
{
	(void)key, (void)a, (void)alen, (void)b, (void)blen;
	++*(uint64_t *)ctx;
	return 0;
}

/* The last leaf of a walk in key order: the rightmost. */
static int last_leaf(void *ctx, uint64_t addr, const struct pog_node_hdr *h)
{
	if (!h->level)
		*(uint64_t *)ctx = addr;
	return 0;
}

/* Damage a shared leaf: the diff never reads it, a full scan does. */
static void test_diff_skips_shared(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t a = committed_tree(s), b = a;

	assert_ok(pog_wrlock(s));
	/* Found without checking its CRC (reading it would remember it
	 * as checked). */
	uint64_t leaf = 0;
	assert_ok(pog_bt_walk(s, a, last_leaf, &leaf));
	assert_true(leaf != 0 && leaf != a);
	uint64_t v = 9;
	assert_ok(pog_bt_put(s, POG_TREE_LOG, &b, 10, &v, sizeof(v)));
	/* One byte of the far leaf's entries (its CRC no longer matches). */
	char *node = pog_node(s, leaf);
	node[pog_node_size(leaf) - 1] ^= 0x5a;

	struct seen sn = { 0 };
	assert_ok(pog_bt_diff(s, a, b, record, &sn));
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.keys[0], 10);
	uint64_t n = 0;
	assert_rc(pog_bt_diff(s, 0, b, count, &n), POG_ECORRUPT);
	assert_true(n > 0 && n < NKEYS);
	node[pog_node_size(leaf) - 1] ^= 0x5a;
	pog_unlock(s);
}

static int setup(void **state)
{
	return tu_state_setup(state, NULL, 64u << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_diff_reports_changes, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_diff_skips_shared, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
