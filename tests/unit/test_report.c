/* test_report.c - pog_commit_report: the changes of a commit with their paths and Merkle hashes after it. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)128 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static const struct pog_change *find(const struct pog_commit_report *r,
				     char kind, const char *path)
{
	for (size_t i = 0; i < r->nchanges; i++)
		if (r->changes[i].kind == kind &&
		    strcmp(r->changes[i].path, path) == 0)
			return &r->changes[i];
	return NULL;
}

static uint32_t hash_of(pog_store *s, uint64_t ino)
{
	uint32_t h = 0;
	assert_ok(pog_hash(s, ino, &h));
	return h;
}

static void test_lines_and_hashes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_commit_report *r = NULL;
	const char *paths[] = { "a", "a/x", "nothing/here", "" };
	uint64_t a, x, gone, id = 0, before;

	a = tu_mk(s, POG_ROOT_INO, "a", POG_MAP);
	x = tu_mkfile(s, a, "x", "one", 3);
	gone = tu_mkfile(s, POG_ROOT_INO, "gone", "g", 1);
	(void)gone;
	before = tu_commit_check(s, "base");

	tu_write(s, x, 0, "two", 3);
	tu_mkfile(s, POG_ROOT_INO, "b", "bee", 3);
	assert_ok(pog_remove(s, POG_ROOT_INO, "gone", 4, 0));
	assert_ok(pog_commit_report(s, "m", &id, paths, 4, &r));
	assert_non_null(r);
	assert_int_equal(id, before + 1);
	assert_int_equal(r->id, id);
	assert_false(r->incomplete);
	assert_int_equal(r->nchanges, 4); /* M ., M a/x, A b, D gone */
	const struct pog_change *c = find(r, 'M', "a/x");
	assert_non_null(c);
	assert_int_equal(c->ino, x);
	assert_true(c->has_hash);
	assert_int_equal(c->hash, hash_of(s, x));
	c = find(r, 'A', "b");
	assert_non_null(c);
	assert_true(c->has_hash);
	c = find(r, 'M', "");
	assert_non_null(c);
	assert_int_equal(c->hash, hash_of(s, POG_ROOT_INO));
	c = find(r, 'D', "gone");
	assert_non_null(c);
	assert_false(c->has_hash);
	assert_int_equal(c->ino, 0);
	for (size_t i = 1; i < r->nchanges; i++) /* sorted by path */
		assert_true(strcmp(r->changes[i - 1].path, r->changes[i].path) <= 0);
	assert_true(r->paths[0].found);
	assert_int_equal(r->paths[0].hash, hash_of(s, a));
	assert_true(r->paths[1].found);
	assert_int_equal(r->paths[1].hash, hash_of(s, x));
	assert_false(r->paths[2].found);
	assert_true(r->paths[3].found);
	assert_int_equal(r->paths[3].hash, hash_of(s, POG_ROOT_INO));
	/* the committed view says the same */
	assert_int_equal(r->paths[1].hash, hash_of(s, x | POG_COMMITTED_BIT));
	pog_commit_report_free(r);
	assert_int_equal(pog_staged_count(s), 0);

	/* nothing staged: a commit with no lines, paths still hashed */
	assert_ok(pog_commit_report(s, NULL, &id, paths, 1, &r));
	assert_int_equal(r->nchanges, 0);
	assert_true(r->paths[0].found);
	pog_commit_report_free(r);
	pog_commit_report_free(NULL);
}

/* A list's names settle at the commit: the report names the new ones. */
static void test_list_paths_after_commit(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_commit_report *r = NULL;
	uint64_t list, id;

	list = tu_mk(s, POG_ROOT_INO, "todo", POG_LIST);
	tu_mkfile(s, list, "0", "milk", 4);
	tu_mkfile(s, list, "1", "eggs", 4);
	tu_commit_check(s, "list");
	uint64_t tea = tu_mkfile(s, list, "0.5", "tea", 3);
	assert_ok(pog_remove(s, list, "0", 1, 0));
	assert_ok(pog_commit_report(s, NULL, &id, NULL, 0, &r));
	/* tea was 0.5 while staged; the commit made it 0 */
	const struct pog_change *c = find(r, 'A', "todo/0");
	assert_non_null(c);
	assert_int_equal(c->ino, tea);
	assert_int_equal(c->hash, hash_of(s, tea));
	assert_non_null(find(r, 'M', "todo"));
	pog_commit_report_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_and_hashes, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_list_paths_after_commit,
						setup, tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
