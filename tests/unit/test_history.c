/* test_history.c - retained commits across reopen, snapshots, diff,
 * revert, and history giving way in a full pool. */
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

static void write_file(pog_store *s, const char *name, const char *text)
{
	struct pog_attr a;
	int rc = pog_lookup(s, POG_ROOT_INO, name, strlen(name), &a);
	uint64_t ino = rc == 0 ? a.ino : tu_mk(s, POG_ROOT_INO, name, POG_STRING);
	struct pog_attr t = {.size = 0};
	assert_ok(pog_setattr(s, ino, &t, POG_SET_SIZE, NULL));
	tu_write(s, ino, 0, text, strlen(text));
}

/* The text of name in retained commit id. */
static void assert_in_commit(pog_store *s, uint64_t id, const char *name,
			     const char *text)
{
	uint64_t root;
	struct pog_attr a;
	char buf[256];
	assert_ok(pog_history_root(s, id, &root));
	assert_ok(pog_lookup(s, root, name, strlen(name), &a));
	assert_true(a.ino & POG_COMMITTED_BIT);
	assert_true((a.ino & ~POG_COMMITTED_BIT) > POG_INO_MASK);
	ssize_t n = pog_read(s, a.ino, 0, buf, sizeof(buf));
	assert_true(n >= 0);
	assert_int_equal((size_t)n, strlen(text));
	assert_memory_equal(buf, text, (size_t)n);
	/* read-only */
	assert_rc(pog_write(s, a.ino, 0, "x", 1), -EROFS);
}

static void assert_history(pog_store *s, const uint64_t *want, size_t n)
{
	uint64_t *ids;
	size_t got;
	assert_ok(pog_history(s, &ids, &got));
	if (got != n)
		fail_msg("history: %zu commits retained, expected %zu", got, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], want[i]);
	free(ids);
}

static void test_keep_across_reopen(void **state)
{
	struct tu_ctx *ctx = *state;
	assert_ok(pog_set_keep(ctx->s, 5));
	uint64_t ids[20];
	for (int i = 0; i < 20; i++) {
		char text[16];
		snprintf(text, sizeof(text), "v%d", i);
		write_file(ctx->s, "f", text);
		ids[i] = tu_commit_check(ctx->s, "v");
	}
	assert_history(ctx->s, ids + 15, 5);
	assert_in_commit(ctx->s, ids[15], "f", "v15");
	assert_rc(pog_history_root(ctx->s, ids[14], &(uint64_t){0}), -ENOENT);
	/* reopen without GC, and after a GC (a close runs it) */
	assert_ok(pog_close(ctx->s, POG_CLOSE_NOGC));
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_int_equal(pog_keep(ctx->s), 5);
	assert_history(ctx->s, ids + 15, 5);
	for (int i = 15; i < 20; i++) {
		char text[16];
		snprintf(text, sizeof(text), "v%d", i);
		assert_in_commit(ctx->s, ids[i], "f", text);
	}
	tu_reopen(ctx);
	struct pog_status st;
	assert_ok(pog_status(ctx->s, &st));
	assert_int_equal(st.retained, 5);
	assert_in_commit(ctx->s, st.commit_id - 4, "f",
			 st.commit_id - 4 == ids[15] ? "v15" : "v16");
	tu_assert_fsck_clean(ctx->s);
	/* keep lowered: the next commit leaves the rest */
	assert_ok(pog_set_keep(ctx->s, 2));
	write_file(ctx->s, "f", "last");
	uint64_t last = tu_commit_check(ctx->s, "last");
	uint64_t want[2] = {last - 1, last};
	assert_history(ctx->s, want, 2);
	assert_rc(pog_set_keep(ctx->s, 0), -EINVAL);
	assert_rc(pog_set_keep(ctx->s, POG_KEEP_MAX + 1), -EINVAL);
}

static int count_snap(void *ctx, const char *name, size_t len, uint64_t id)
{
	(void)name;
	(void)len;
	(void)id;
	(*(int *)ctx)++;
	return 0;
}

static void test_snapshots_persist(void **state)
{
	struct tu_ctx *ctx = *state;
	assert_ok(pog_set_keep(ctx->s, 1));
	write_file(ctx->s, "f", "named");
	uint64_t named = tu_commit_check(ctx->s, "named");
	assert_ok(pog_snapshot(ctx->s, "v1", 2, 0));
	assert_rc(pog_snapshot(ctx->s, "v1", 2, 0), -EEXIST);
	assert_rc(pog_snapshot(ctx->s, "", 0, 0), -EINVAL);
	assert_rc(pog_snapshot(ctx->s, "x", 1, 999), -ENOENT);
	for (int i = 0; i < 5; i++) {
		write_file(ctx->s, "f", "later");
		tu_commit_check(ctx->s, "later");
	}
	tu_reopen(ctx);
	uint64_t id;
	assert_ok(pog_snapshot_find(ctx->s, "v1", 2, &id));
	assert_int_equal(id, named);
	assert_in_commit(ctx->s, named, "f", "named");
	int n = 0;
	assert_ok(pog_snapshots(ctx->s, count_snap, &n));
	assert_int_equal(n, 1);
	tu_assert_fsck_clean(ctx->s);
	assert_ok(pog_unsnapshot(ctx->s, "v1", 2));
	assert_rc(pog_unsnapshot(ctx->s, "v1", 2), -ENOENT);
	assert_ok(pog_gc(ctx->s, NULL));
	assert_false(pog_retained(ctx->s, named));
	tu_reopen(ctx);
	assert_rc(pog_snapshot_find(ctx->s, "v1", 2, &id), -ENOENT);
	tu_assert_fsck_clean(ctx->s);
}

struct lines {
	char buf[4096];
	size_t len;
};

static int add_line(void *ctx, char kind, const char *path)
{
	struct lines *l = ctx;
	l->len += (size_t)snprintf(l->buf + l->len, sizeof(l->buf) - l->len,
				   "%c %s\n", kind, path);
	return 0;
}

static int add_conflict(void *ctx, const char *path)
{
	return add_line(ctx, 'C', path);
}

static void test_diff_and_revert(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	write_file(s, "a", "1");
	write_file(s, "b", "1");
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	tu_mkfile(s, d, "x", "x", 1);
	uint64_t base = tu_commit_check(s, "base");
	write_file(s, "a", "2");
	assert_ok(pog_remove(s, POG_ROOT_INO, "b", 1, 0));
	tu_mkfile(s, d, "y", "y", 1);
	assert_ok(pog_rename(s, d, "x", 1, POG_ROOT_INO, "x", 1, 0));
	struct lines l = {{0}, 0};
	assert_ok(pog_diff(s, base, POG_DIFF_STAGED, add_line, &l));
	assert_string_equal(l.buf, "M .\nM a\nD b\nM d\nD d/x\nA d/y\nA x\n");
	uint64_t edits = tu_commit_check(s, "edits");
	l.len = 0;
	l.buf[0] = '\0';
	assert_ok(pog_diff(s, base, edits, add_line, &l));
	assert_string_equal(l.buf, "M .\nM a\nD b\nM d\nD d/x\nA d/y\nA x\n");
	assert_ok(pog_gc(s, NULL)); /* b is collected */
	assert_ok(pog_revert(s, edits, NULL, NULL));
	tu_commit_check(s, "undo");
	uint64_t undo;
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	undo = st.commit_id;
	l.len = 0;
	l.buf[0] = '\0';
	assert_ok(pog_diff(s, base, undo, add_line, &l));
	assert_string_equal(l.buf, "");
	tu_assert_content(s, tu_lookup(s, POG_ROOT_INO, "b"), "1", 1);
	tu_assert_content(s, tu_lookup(s, d, "x"), "x", 1);
	/* reverting it again: everything it changed was changed since */
	l.len = 0;
	l.buf[0] = '\0';
	assert_rc(pog_revert(s, edits, add_conflict, &l), -ESTALE);
	assert_true(l.len > 0);
	assert_int_equal(pog_staged_count(s), 0);
	tu_assert_fsck_clean(s);
}

/* A full pool: commits keep only named ones, and say so. */
static void test_full_pool_drops_history(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	write_file(s, "keepme", "k");
	uint64_t named = tu_commit_check(s, "named");
	assert_ok(pog_snapshot(s, "n", 1, 0));
	char *buf = malloc(1 << 20);
	int rc = 0;
	for (int i = 0; rc == 0; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "big%d", i);
		struct pog_new spec = {.type = POG_STRING, .mode = 0644};
		struct pog_attr a;
		rc = pog_mknode(s, POG_ROOT_INO, nm, strlen(nm), &spec, &a);
		if (rc == 0) {
			tu_fill_random(buf, 1 << 20, (uint64_t)i);
			ssize_t n = pog_write(s, a.ino, 0, buf, 1 << 20);
			rc = n < 0 ? (int)n : 0;
		}
		if (rc == 0)
			rc = pog_commit(s, "fill", NULL);
	}
	assert_rc(rc, -ENOSPC);
	assert_ok(pog_commit(s, "full", NULL));
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	assert_true(st.history_dropped > 0);
	assert_int_equal(st.retained, 2); /* the last and the named one */
	assert_true(pog_retained(s, named));
	assert_in_commit(s, named, "keepme", "k");
	tu_assert_fsck_clean(s);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keep_across_reopen, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_snapshots_persist, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_diff_and_revert, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_full_pool_drops_history, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
