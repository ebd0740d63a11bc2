/* test_json.c - JSON import/export: plain documents, exact round trips, bad input. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)256 << 20)





static void assert_scalar(pog_store *s, uint64_t dir, const char *name,
			  uint32_t type, const char *text)
{
	struct pog_attr attr;

	assert_ok(pog_lookup(s, dir, name, strlen(name), &attr));
	if (attr.type != type)
		fail_msg("\"%s\": type %s, expected %s", name,
			 pog_type_name(attr.type), pog_type_name(type));
	tu_assert_content(s, attr.ino, text, strlen(text));
}

static void test_plain_document(void **state)
{
	struct tu_ctx ctx;
	static const char doc[] =
		"{\"name\": \"pogfs\", \"count\": 42, \"pi\": 2.5,\n"
		" \"ok\": true, \"none\": null,\n"
		" \"list\": [1, \"two\", false, {\"k\": \"v\"}, []],\n"
		" \"nested\": {\"deep\": {\"deeper\": \"x\"}}}\n";
	struct pog_attr attr;
	uint64_t list, nested;

	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	tu_import(ctx.s, POG_ROOT_INO, NULL, doc, strlen(doc));
	tu_commit_check(ctx.s, "imported");
	assert_scalar(ctx.s, POG_ROOT_INO, "name", POG_STRING, "pogfs");
	assert_scalar(ctx.s, POG_ROOT_INO, "count", POG_INT, "42\n");
	assert_scalar(ctx.s, POG_ROOT_INO, "ok", POG_BOOL, "true\n");
	assert_scalar(ctx.s, POG_ROOT_INO, "none", POG_NULL, "null\n");
	assert_ok(pog_lookup(ctx.s, POG_ROOT_INO, "pi", 2, &attr));
	assert_int_equal(attr.type, POG_FLOAT);
	list = tu_lookup(ctx.s, POG_ROOT_INO, "list");
	assert_ok(pog_getattr(ctx.s, list, &attr));
	assert_int_equal(attr.type, POG_LIST);
	assert_int_equal(tu_count_entries(ctx.s, list), 5);
	assert_scalar(ctx.s, list, "0", POG_INT, "1\n");
	assert_scalar(ctx.s, list, "1", POG_STRING, "two");
	assert_scalar(ctx.s, list, "2", POG_BOOL, "false\n");
	assert_scalar(ctx.s, tu_lookup(ctx.s, list, "3"), "k", POG_STRING,
		      "v");
	assert_ok(pog_lookup(ctx.s, list, "4", 1, &attr));
	assert_int_equal(attr.type, POG_LIST);
	nested = tu_lookup(ctx.s, POG_ROOT_INO, "nested");
	assert_scalar(ctx.s, tu_lookup(ctx.s, nested, "deep"), "deeper",
		      POG_STRING, "x");
	/* import under a name */
	tu_import(ctx.s, nested, "arr", "[1,2,3]", 7);
	assert_int_equal(tu_count_entries(ctx.s, tu_lookup(ctx.s, nested,
							   "arr")),
			 3);
	tu_commit_check(ctx.s, "named");
	tu_teardown(&ctx);
}

/* A graph with everything awkward in it, made through the API. */
static void build_awkward_graph(pog_store *s)
{
	struct pog_new ref = { .type = POG_REF, .mode = 0777 };
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	uint64_t x, y, shared, f;
	char bin[300];

	for (int i = 0; i < 300; i++)
		bin[i] = (char)(i * 7);
	x = tu_mk(s, POG_ROOT_INO, "x", POG_MAP);
	y = tu_mk(s, x, "y", POG_MAP);
	/* a cycle through a ref */
	ref.ref_target = x;
	assert_ok(pog_mknode(s, y, "up", 2, &ref, &attr));
	/* bytes that are not UTF-8, NULs, a page and a bit */
	tu_mkfile(s, y, "bin", bin, sizeof(bin));
	tu_mkfile(s, y, "bad-utf8", "\xff\xfe\xc3(\x00z", 6);
	tu_mkfile(s, y, "empty", "", 0);
	{
		char *big = malloc(5000);
		tu_fill_random(big, 5000, 5);
		tu_mkfile(s, y, "big", big, 5000);
		free(big);
	}
	/* keys that need escaping */
	assert_ok(pog_mknode(s, x, "a/b", 3, &spec, &attr));
	tu_write(s, attr.ino, 0, "slash", 5);
	assert_ok(pog_mknode(s, x, "", 0, &spec, &attr));
	assert_ok(pog_mknode(s, x, ".", 1, &spec, &attr));
	assert_ok(pog_mknode(s, x, "n\0ul", 4, &spec, &attr));
	assert_ok(pog_mknode(s, x, "%2F", 3, &spec, &attr));
	assert_ok(pog_mknode(s, x, "\xff\xfe", 2, &spec, &attr));
	/* a shared object: owned once, referenced twice */
	shared = tu_mkfile(s, POG_ROOT_INO, "shared", "one object", 10);
	ref.ref_target = shared;
	assert_ok(pog_mknode(s, x, "r1", 2, &ref, &attr));
	assert_ok(pog_mknode(s, y, "r2", 2, &ref, &attr));
	/* a hard link */
	f = tu_mkfile(s, POG_ROOT_INO, "linked", "two names", 9);
	assert_ok(pog_link(s, f, y, "linked-too", 10, &attr));
	/* an xattr (not part of the JSON format) and a list */
	assert_ok(pog_setxattr(s, f, "user.note", "n", 1, 0));
	{
		uint64_t l = tu_mk(s, POG_ROOT_INO, "list", POG_LIST);
		tu_mkfile(s, l, "0", "first", 5);
		ref.ref_target = y;
		assert_ok(pog_mknode(s, l, "1", 1, &ref, &attr));
	}
	/* a plain symlink */
	{
		struct pog_new sym = { .type = POG_SYMLINK, .mode = 0777,
				       .text = "../../elsewhere" };
		assert_ok(pog_mknode(s, x, "sym", 3, &sym, &attr));
	}
}

static void test_round_trip(void **state)
{
	struct tu_ctx a, b;
	struct tu_buf d1, d1b, d2, d3;
	struct pog_attr attr;
	uint64_t x, y, up, r1, r2, shared, t;

	(void)state;
	tu_setup(&a, NULL, POOL_SIZE);
	build_awkward_graph(a.s);
	tu_commit_check(a.s, "graph");
	d1 = tu_export(a.s, POG_ROOT_INO);
	d1b = tu_export(a.s, POG_ROOT_INO);
	tu_assert_same_doc(&d1, &d1b, "exports"); /* deterministic */
	{
		struct tu_buf c = tu_export(a.s, POG_ROOT_INO | POG_COMMITTED_BIT);
		tu_assert_same_doc(&d1, &c, "exports");
		free(c.data);
	}

	/* into a fresh store: export again gives the same bytes */
	tu_setup(&b, NULL, POOL_SIZE);
	tu_import(b.s, POG_ROOT_INO, NULL, d1.data, d1.len);
	tu_commit_check(b.s, "imported");
	d2 = tu_export(b.s, POG_ROOT_INO);
	tu_assert_same_doc(&d1, &d2, "exports");
	tu_reopen(&b);
	d3 = tu_export(b.s, POG_ROOT_INO);
	tu_assert_same_doc(&d1, &d3, "exports");

	/* and the graph is the same graph: shared object, cycle, bytes */
	x = tu_lookup(b.s, POG_ROOT_INO, "x");
	y = tu_lookup(b.s, x, "y");
	up = tu_lookup(b.s, y, "up");
	assert_ok(pog_ref_target(b.s, up, &t));
	assert_int_equal(t, x);
	shared = tu_lookup(b.s, POG_ROOT_INO, "shared");
	r1 = tu_lookup(b.s, x, "r1");
	r2 = tu_lookup(b.s, y, "r2");
	assert_ok(pog_ref_target(b.s, r1, &t));
	assert_int_equal(t, shared);
	assert_ok(pog_ref_target(b.s, r2, &t));
	assert_int_equal(t, shared);
	tu_assert_content(b.s, tu_lookup(b.s, y, "bad-utf8"),
			  "\xff\xfe\xc3(\x00z", 6);
	assert_ok(pog_lookup(b.s, x, "a/b", 3, &attr));
	tu_assert_content(b.s, attr.ino, "slash", 5);
	assert_ok(pog_lookup(b.s, x, "n\0ul", 4, &attr));
	assert_ok(pog_lookup(b.s, x, "", 0, &attr));
	assert_ok(pog_lookup(b.s, x, "\xff\xfe", 2, &attr));
	assert_int_equal(tu_lookup(b.s, POG_ROOT_INO, "linked"),
			 tu_lookup(b.s, y, "linked-too"));
	tu_assert_fsck_clean(b.s);

	free(d1.data);
	free(d1b.data);
	free(d2.data);
	free(d3.data);
	tu_teardown(&a);
	tu_teardown(&b);
}

/*
 * A subtree exports alone: refs from inside to objects it does not own
 * carry a copy of their target (pog.h), so the document imports again
 * under a name and exports to the same bytes.
 */
static void test_subtree_export(void **state)
{
	struct tu_ctx ctx;
	struct tu_buf sub, again;
	uint64_t list, copy, t;

	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	build_awkward_graph(ctx.s);
	tu_commit_check(ctx.s, "graph");
	list = tu_lookup(ctx.s, POG_ROOT_INO, "list");
	sub = tu_export(ctx.s, list);
	print_message("    export of list/: %.200s\n", sub.data);
	tu_import(ctx.s, POG_ROOT_INO, "list-copy", sub.data, sub.len);
	tu_commit_check(ctx.s, "copied");
	copy = tu_lookup(ctx.s, POG_ROOT_INO, "list-copy");
	again = tu_export(ctx.s, copy);
	tu_assert_same_doc(&sub, &again, "exports");
	/* the ref in the copy reaches a map holding what y held */
	assert_ok(pog_ref_target(ctx.s, tu_lookup(ctx.s, copy, "1"), &t));
	tu_assert_content(ctx.s, tu_lookup(ctx.s, t, "empty"), "", 0);
	free(sub.data);
	free(again.data);
	tu_teardown(&ctx);
}

static void test_bad_json(void **state)
{
	struct tu_ctx ctx;
	static const char bad[] = "{\"a\": 1,\n  \"b\": [1, 2,, 3]}";
	static const char notobj[] = "[1, 2]";
	struct pog_json_error err;
	struct pog_attr attr;
	int rc;

	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	tu_mkfile(ctx.s, POG_ROOT_INO, "keep", "k", 1);
	tu_commit_check(ctx.s, "base");

	memset(&err, 0, sizeof(err));
	rc = pog_import(ctx.s, POG_ROOT_INO, NULL, 0, bad, strlen(bad), 0, 0,
			&err);
	assert_rc(rc, -EINVAL);
	print_message("    bad JSON: line %d, column %d: %s\n", err.line,
		      err.column, err.message);
	assert_int_equal(err.line, 2);
	assert_true(err.column >= 12 && err.column <= 16); /* the second "," is column 14 */
	assert_true(err.message[0] != '\0');
	/* nothing applied */
	assert_int_equal(pog_staged_count(ctx.s), 0);
	assert_rc(pog_lookup(ctx.s, POG_ROOT_INO, "a", 1, &attr), -ENOENT);
	/* a document that is not an object cannot be merged into a map */
	memset(&err, 0, sizeof(err));
	assert_rc(pog_import(ctx.s, POG_ROOT_INO, NULL, 0, notobj,
			     strlen(notobj), 0, 0, &err),
		  -EINVAL);
	assert_int_equal(pog_staged_count(ctx.s), 0);
	/* truncated and empty documents */
	assert_rc(pog_import(ctx.s, POG_ROOT_INO, NULL, 0, "{\"a\": ", 6, 0, 0,
			     &err),
		  -EINVAL);
	assert_rc(pog_import(ctx.s, POG_ROOT_INO, NULL, 0, "", 0, 0, 0, &err),
		  -EINVAL);
	assert_int_equal(pog_staged_count(ctx.s), 0);
	assert_int_equal(tu_count_entries(ctx.s, POG_ROOT_INO), 1);
	tu_commit_check(ctx.s, "nothing");
	tu_teardown(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_document),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_subtree_export),
		cmocka_unit_test(test_bad_json),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
