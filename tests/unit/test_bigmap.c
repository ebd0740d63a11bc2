/* test_bigmap.c - one map of 1,000,000 entries: insert, commit, reopen, lookup, list. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRIES 1000000u
#define PRIME 999983u /* coprime to ENTRIES: i * PRIME % ENTRIES permutes */
#define POOL_SIZE ((uint64_t)4 << 30)

static void name_of(unsigned i, char *buf, size_t size)
{
	snprintf(buf, size, "entry-%07u", i);
}

struct seen {
	unsigned char *bits;
	uint64_t n, bad, dup;
};

static int seen_fn(void *ctx, const char *name, size_t len,
		   const struct pog_attr *attr, uint64_t next_cookie)
{
	struct seen *sn = ctx;
	unsigned i;
	char buf[32];

	(void)attr;
	(void)next_cookie;
	sn->n++;
	if (len != 13 || sscanf(name, "entry-%7u", &i) != 1 || i >= ENTRIES) {
		sn->bad++;
		return 0;
	}
	name_of(i, buf, sizeof(buf));
	if (memcmp(buf, name, len) != 0) {
		sn->bad++;
		return 0;
	}
	if (sn->bits[i / 8] & (1u << (i % 8)))
		sn->dup++;
	sn->bits[i / 8] |= (unsigned char)(1u << (i % 8));
	return 0;
}

static void test_million_entries(void **state)
{
	struct tu_ctx ctx;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	uint64_t *inos = calloc(ENTRIES, sizeof(uint64_t));
	uint64_t dir, rnd = 77;
	struct seen sn = { 0 };
	char nm[32];
	double t0, t1, t2, t3, t4, t5, t6;

	(void)state;
	tu_setup(&ctx, TU_SHM_BASE, POOL_SIZE);
	dir = tu_mk(ctx.s, POG_ROOT_INO, "big", POG_MAP);
	t0 = tu_now();
	for (unsigned k = 0; k < ENTRIES; k++) {
		unsigned i = (unsigned)((uint64_t)k * PRIME % ENTRIES);
		int rc;

		name_of(i, nm, sizeof(nm));
		rc = pog_mknode(ctx.s, dir, nm, strlen(nm), &spec, &attr);
		if (rc)
			fail_msg("mknode #%u (%s): %d (%s)", k, nm, rc,
				 tu_err(rc));
		inos[i] = attr.ino;
	}
	t1 = tu_now();
	tu_commit_check(ctx.s, "a million");
	t2 = tu_now();
	assert_int_equal(pog_close(ctx.s, POG_CLOSE_NOGC), 0);
	ctx.s = NULL;
	assert_ok(pog_open(ctx.pool, 0, &ctx.s));
	t3 = tu_now();

	/* lookups of a random sample, and of missing names */
	for (int k = 0; k < 20000; k++) {
		unsigned i = (unsigned)(tu_rand64(&rnd) % ENTRIES);

		name_of(i, nm, sizeof(nm));
		assert_ok(pog_lookup(ctx.s, dir, nm, strlen(nm), &attr));
		assert_int_equal(attr.ino, inos[i]);
	}
	assert_rc(pog_lookup(ctx.s, dir, "entry-1000000", 13, &attr),
		  -ENOENT);
	assert_rc(pog_lookup(ctx.s, dir, "entry-", 6, &attr), -ENOENT);
	t4 = tu_now();

	/* readdir: every entry exactly once */
	sn.bits = calloc(ENTRIES / 8 + 1, 1);
	assert_ok(pog_readdir(ctx.s, dir, 0, seen_fn, &sn));
	t5 = tu_now();
	if (sn.n != ENTRIES || sn.bad || sn.dup)
		fail_msg("readdir: %llu entries (%llu bad names, %llu duplicates), expected %u",
			 (unsigned long long)sn.n, (unsigned long long)sn.bad,
			 (unsigned long long)sn.dup, ENTRIES);
	assert_ok(pog_getattr(ctx.s, dir, &attr));
	assert_int_equal(attr.nlink, 2);

	/* a few changes to the big map commit quickly */
	for (unsigned i = 0; i < 1000; i++) {
		name_of(i * 997, nm, sizeof(nm));
		assert_ok(pog_remove(ctx.s, dir, nm, strlen(nm), 0));
	}
	tu_mk(ctx.s, dir, "new-one", POG_STRING);
	{
		double c0 = tu_now();
		assert_ok(pog_commit(ctx.s, "small change", NULL));
		t6 = tu_now() - c0;
	}
	assert_int_equal(tu_count_entries(ctx.s, dir), ENTRIES - 1000 + 1);
	name_of(997, nm, sizeof(nm));
	assert_rc(pog_lookup(ctx.s, dir, nm, strlen(nm), &attr), -ENOENT);
	tu_assert_fsck_clean(ctx.s);

	print_message("    insert %.2f s, commit+fsck %.2f s, reopen %.2f s, 20k lookups %.3f s, readdir %.2f s, commit of 1001 changes %.3f s\n",
		      t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6);
	free(sn.bits);
	free(inos);
	tu_teardown(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million_entries),
	};

	return cmocka_run_group_tests_name("bigmap", tests, NULL, NULL);
}
