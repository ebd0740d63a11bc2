/* test_edits.c - saving by rename is an edit, empty typed scalars, links made before their targets. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)64 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static uint64_t mkint(pog_store *s, uint64_t dir, const char *name,
		      const char *text)
{
	uint64_t ino = tu_mkfile(s, dir, name, text, strlen(text));
	assert_ok(pog_set_type(s, ino, POG_INT));
	return ino;
}

static uint64_t mkref(pog_store *s, uint64_t dir, const char *name,
		      uint64_t target)
{
	struct pog_new spec = { .type = POG_REF, .mode = 0777,
				.ref_target = target };
	struct pog_attr a;
	assert_ok(pog_mknode(s, dir, name, strlen(name), &spec, &a));
	return a.ino;
}

static uint32_t type_of(pog_store *s, uint64_t ino)
{
	struct pog_attr a;
	assert_ok(pog_getattr(s, ino, &a));
	return a.type;
}

static uint64_t target_of(pog_store *s, uint64_t ref)
{
	uint64_t t = 0;
	assert_ok(pog_ref_target(s, ref, &t));
	return t;
}

struct lines {
	char text[4096];
};

static int add_line(void *ctx, char kind, const char *path)
{
	struct lines *l = ctx;
	size_t n = strlen(l->text);
	snprintf(l->text + n, sizeof(l->text) - n, "%c %s\n", kind, path);
	return 0;
}

static const char *changes(pog_store *s, struct lines *l)
{
	l->text[0] = '\0';
	assert_ok(pog_changes(s, add_line, l));
	return l->text;
}

/* sed -i: a new file renamed over an int with one name. */
static void test_rename_over(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t born = mkint(s, POG_ROOT_INO, "born", "1815\n");
	assert_ok(pog_setxattr(s, born, "user.note", "hi", 2, 0));
	uint64_t ref = mkref(s, POG_ROOT_INO, "ref", born);
	tu_commit_check(s, "first");

	uint64_t tmp = tu_mkfile(s, POG_ROOT_INO, "sedXYZ", "1816\n", 5);
	assert_ok(pog_rename(s, POG_ROOT_INO, "sedXYZ", 6, POG_ROOT_INO,
			     "born", 4, 0));
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "born"), tmp);
	assert_int_equal(type_of(s, tmp), POG_INT);
	assert_int_equal(target_of(s, ref), tmp);
	char v[8];
	assert_rc(pog_getxattr(s, tmp, "user.note", v, sizeof(v)), 2);
	/* the old object is untouched: a descriptor on it reads it */
	tu_assert_content(s, born, "1815\n", 5);
	struct lines l;
	changes(s, &l);
	assert_non_null(strstr(l.text, "M born\n"));
	assert_non_null(strstr(l.text, "M ref\n"));
	assert_null(strstr(l.text, "A born\n"));
	assert_null(strstr(l.text, "D born\n"));
	tu_commit_check(s, "edit");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "born"), "1816\n", 5);
}

/* vim: the old file renamed away, a new one written, the old removed. */
static void test_rename_away_and_unlink(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "vim", POG_MAP);
	uint64_t n = mkint(s, d, "n", "5\n");
	uint64_t ref = mkref(s, POG_ROOT_INO, "vimref", n);
	tu_commit_check(s, "vim first");

	assert_ok(pog_rename(s, d, "n", 1, d, "n~", 2, 0));
	uint64_t fresh = tu_mkfile(s, d, "n", "6\n", 2);
	assert_int_equal(type_of(s, fresh), POG_STRING);
	assert_ok(pog_remove(s, d, "n~", 2, 0));
	assert_int_equal(type_of(s, fresh), POG_INT);
	assert_int_equal(target_of(s, ref), fresh);
	struct lines l;
	assert_string_equal(changes(s, &l), "M vim\nM vim/n\nM vimref\n");
	assert_null(strstr(l.text, "n~"));
	tu_commit_check(s, "vim edit");
}

/* Other names, explicit types and text that does not parse: no edit. */
static void test_no_take_over(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "no", POG_MAP);
	uint64_t a = mkint(s, d, "a", "1\n");
	struct pog_attr at;
	assert_ok(pog_link(s, a, d, "a2", 2, &at));
	uint64_t b = mkint(s, d, "b", "2\n");
	uint64_t c = mkint(s, d, "c", "3\n");
	uint64_t rb = mkref(s, d, "rb", b);
	tu_commit_check(s, "no first");

	uint64_t na = tu_mkfile(s, d, "ta", "9\n", 2);
	assert_ok(pog_rename(s, d, "ta", 2, d, "a", 1, 0));
	assert_int_equal(type_of(s, na), POG_STRING); /* a2 still names a */
	assert_int_equal(type_of(s, a), POG_INT);

	uint64_t nb = tu_mkfile(s, d, "tb", "9\n", 2);
	assert_ok(pog_set_type(s, nb, POG_STRING)); /* typed on purpose */
	assert_ok(pog_rename(s, d, "tb", 2, d, "b", 1, 0));
	assert_int_equal(type_of(s, nb), POG_STRING);
	assert_int_equal(target_of(s, rb), b);

	uint64_t nc = tu_mkfile(s, d, "tc", "abc\n", 4);
	assert_ok(pog_rename(s, d, "tc", 2, d, "c", 1, 0));
	assert_int_equal(type_of(s, nc), POG_STRING);
	(void)c;
	tu_commit_check(s, "no edit");
}

/* An empty file takes a type; an empty typed scalar is not committed. */
static void test_empty_scalar(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t e = tu_mkfile(s, POG_ROOT_INO, "empty", "", 0);
	assert_ok(pog_set_type(s, e, POG_FLOAT));
	assert_int_equal(type_of(s, e), POG_FLOAT);
	uint64_t id0 = 0;
	assert_rc(pog_commit(s, NULL, &id0), -EINVAL);
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	assert_non_null(strstr(st.last_error, "empty: an empty float"));
	struct tu_buf buf = {0};
	assert_rc(pog_export(s, e, tu_buf_write, &buf), -EINVAL);
	free(buf.data);
	tu_write(s, e, 0, "2.5\n", 4);
	tu_commit_check(s, "filled");

	struct pog_attr want = { .size = 0 }, out;
	assert_ok(pog_setattr(s, e, &want, POG_SET_SIZE, &out));
	assert_int_equal(out.size, 0);
	assert_rc(pog_commit(s, NULL, NULL), -EINVAL);
	assert_ok(pog_remove(s, POG_ROOT_INO, "empty", 5, 0));
	tu_commit_check(s, "removed");
}

/* A plain link made before its target becomes a ref at commit. */
static void test_pending_link(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "links", POG_MAP);
	struct pog_new spec = { .type = POG_SYMLINK, .mode = 0777,
				.text = "z/target" };
	struct pog_attr a, b;
	assert_ok(pog_mknode(s, d, "a", 1, &spec, &a));
	assert_ok(pog_symlink_pending(s, a.ino, NULL));
	spec.text = "/mnt/links/z/other";
	assert_ok(pog_mknode(s, d, "b", 1, &spec, &b));
	assert_ok(pog_symlink_pending(s, b.ino, "links/z/other"));
	uint64_t z = tu_mk(s, d, "z", POG_MAP);
	uint64_t t = tu_mkfile(s, z, "target", "t", 1);
	uint64_t o = tu_mkfile(s, z, "other", "o", 1);
	tu_commit_check(s, "links");
	assert_int_equal(type_of(s, a.ino), POG_REF);
	assert_int_equal(target_of(s, a.ino), t);
	assert_int_equal(target_of(s, b.ino), o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rename_over),
		cmocka_unit_test(test_rename_away_and_unlink),
		cmocka_unit_test(test_no_take_over),
		cmocka_unit_test(test_empty_scalar),
		cmocka_unit_test(test_pending_link),
	};
	return cmocka_run_group_tests(tests, setup, tu_state_teardown);
}
