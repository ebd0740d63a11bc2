/* test_txn.c - commit, abort, reopen, the log, the changes list, committed view. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_SIZE ((uint64_t)256 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static void test_fresh_store(void **state)
{
	struct tu_ctx *ctx = *state;
	struct pog_status st;
	struct pog_attr attr;

	assert_ok(pog_status(ctx->s, &st));
	assert_true(st.commit_id <= 1); /* creating may count as a commit */
	assert_int_equal(st.staged, 0);
	assert_int_equal(pog_staged_count(ctx->s), 0);
	assert_true(st.format_version >= 1);
	assert_true(st.pool_size > 0 && st.pool_size <= POOL_SIZE);
	assert_true(st.block_size > 0);
	assert_true(st.blocks_used <= st.blocks_total);
	assert_ok(pog_getattr(ctx->s, POG_ROOT_INO, &attr));
	assert_int_equal(attr.type, POG_MAP);
	assert_int_equal(tu_count_entries(ctx->s, POG_ROOT_INO), 0);
	tu_assert_fsck_clean(ctx->s);
	assert_int_equal(tu_commit_check(ctx->s, "first"), st.commit_id + 1);
	tu_reopen(ctx);
	assert_ok(pog_getattr(ctx->s, POG_ROOT_INO, &attr));
	assert_int_equal(tu_count_entries(ctx->s, POG_ROOT_INO), 0);
	tu_assert_fsck_clean(ctx->s);
}

static void test_abort_discards(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	uint64_t keep, gone, dir;
	uint64_t id1 = 0;

	keep = tu_mkfile(s, POG_ROOT_INO, "keep", "v1", 2);
	dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	tu_mkfile(s, dir, "inner", "i", 1);
	id1 = tu_commit_check(s, "base");

	/* stage all kinds of changes */
	gone = tu_mkfile(s, POG_ROOT_INO, "new", "staged", 6);
	tu_write(s, keep, 0, "v2-longer", 9);
	assert_ok(pog_remove(s, dir, "inner", 5, 0));
	assert_ok(pog_rename(s, POG_ROOT_INO, "dir", 3, POG_ROOT_INO, "dir2",
			     4, 0));
	assert_ok(pog_setxattr(s, keep, "user.x", "1", 1, 0));
	assert_true(pog_staged_count(s) > 0);
	tu_assert_content(s, keep, "v2-longer", 9);

	assert_ok(pog_abort(s));
	assert_int_equal(pog_staged_count(s), 0);
	tu_assert_content(s, keep, "v1", 2);
	assert_rc(pog_lookup(s, POG_ROOT_INO, "new", 3, &attr), -ENOENT);
	assert_rc(pog_lookup(s, POG_ROOT_INO, "dir2", 4, &attr), -ENOENT);
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "dir"), dir);
	tu_assert_content(s, tu_lookup(s, dir, "inner"), "i", 1);
	assert_rc(pog_getxattr(s, keep, "user.x", NULL, 0), -ENODATA);
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), 2);
	/* the aborted object is not reachable by its ino either */
	assert_true(pog_getattr(s, gone, &attr) < 0);
	{
		struct pog_status st;
		assert_ok(pog_status(s, &st));
		assert_int_equal(st.commit_id, id1);
		assert_int_equal(st.staged, 0);
	}
	/* new objects never reuse the aborted identity */
	{
		uint64_t again = tu_mk(s, POG_ROOT_INO, "new", POG_STRING);
		assert_true(again != gone);
	}
	tu_commit_check(s, "after abort");
	/* abort with nothing staged is fine */
	assert_ok(pog_abort(s));
	tu_reopen(ctx);
	tu_assert_content(ctx->s, keep, "v1", 2);
	tu_assert_fsck_clean(ctx->s);
}

static void test_commit_survives_reopen(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	struct pog_status st;
	uint64_t id1, id2, id3, f, g, dir;
	int rc;

	dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	f = tu_mkfile(s, dir, "f", "committed", 9);
	id1 = tu_commit_check(s, "one");
	g = tu_mkfile(s, dir, "g", "second", 6);
	id2 = tu_commit_check(s, "two");
	assert_int_equal(id2, id1 + 1);
	/* staged but not committed: lost at close, which reports it */
	tu_mkfile(s, dir, "h", "staged only", 11);
	tu_write(s, f, 0, "XXX", 3);
	rc = pog_close(s, POG_CLOSE_NOGC);
	ctx->s = NULL;
	assert_true(rc >= 2);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	s = ctx->s;
	assert_ok(pog_status(s, &st));
	assert_int_equal(st.commit_id, id2);
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "dir"), dir);
	assert_int_equal(tu_lookup(s, dir, "f"), f);
	assert_int_equal(tu_lookup(s, dir, "g"), g);
	tu_assert_content(s, f, "committed", 9);
	tu_assert_content(s, g, "second", 6);
	assert_rc(pog_lookup(s, dir, "h", 1, &attr), -ENOENT);
	/* inos are stable and new ones are new */
	assert_ok(pog_getattr(s, f, &attr));
	assert_int_equal(attr.ino, f);
	assert_true(st.next_ino > g);
	id3 = tu_commit_check(s, NULL); /* empty commit still counts */
	assert_int_equal(id3, id2 + 1);
	tu_reopen(ctx);
	assert_ok(pog_status(ctx->s, &st));
	assert_int_equal(st.commit_id, id3);
	tu_assert_fsck_clean(ctx->s);
}

struct log_list {
	size_t n;
	uint64_t ids[16];
	char msgs[16][64];
	uint64_t changes[16];
	int64_t secs[16];
};

static int log_fn(void *vctx, const struct pog_log_entry *e)
{
	struct log_list *l = vctx;

	if (l->n < 16) {
		l->ids[l->n] = e->id;
		snprintf(l->msgs[l->n], sizeof(l->msgs[0]), "%s",
			 e->message ? e->message : "");
		l->changes[l->n] = e->changes;
		l->secs[l->n] = e->time.sec;
	}
	l->n++;
	return 0;
}

static int log_stop_fn(void *vctx, const struct pog_log_entry *e)
{
	(void)e;
	(*(int *)vctx)++;
	return 77;
}

static void test_log(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct log_list l;
	char longmsg[POG_MESSAGE_MAX + 2];
	uint64_t ids[4];
	int calls = 0;
	time_t now = time(NULL);

	tu_mkfile(s, POG_ROOT_INO, "a", "1", 1);
	ids[0] = tu_commit_check(s, "first");
	tu_mkfile(s, POG_ROOT_INO, "b", "2", 1);
	tu_mkfile(s, POG_ROOT_INO, "c", "3", 1);
	ids[1] = tu_commit_check(s, "second: two files");
	ids[2] = tu_commit_check(s, NULL);
	memset(longmsg, 'm', sizeof(longmsg));
	longmsg[POG_MESSAGE_MAX + 1] = '\0';
	assert_rc(pog_commit(s, longmsg, NULL), -E2BIG);
	longmsg[POG_MESSAGE_MAX] = '\0';
	ids[3] = tu_commit_check(s, longmsg);
	for (int i = 1; i < 4; i++)
		assert_int_equal(ids[i], ids[i - 1] + 1);

	for (int round = 0; round < 2; round++) {
		size_t base;

		memset(&l, 0, sizeof(l));
		assert_ok(pog_log(s, log_fn, &l));
		/* oldest first; ours are four in a row (a create or a GC
		 * may add commits of their own around them) */
		assert_true(l.n >= 4 && l.n <= 16);
		for (base = 0; base < l.n && l.ids[base] != ids[0]; base++)
			;
		assert_true(base + 4 <= l.n);
		for (size_t i = 0; i < 4; i++) {
			assert_int_equal(l.ids[base + i], ids[i]);
			assert_true(l.secs[base + i] >= now - 5 &&
				    l.secs[base + i] <= now + 60);
		}
		for (size_t i = 1; i < l.n; i++)
			assert_true(l.ids[i] > l.ids[i - 1]);
		assert_string_equal(l.msgs[base], "first");
		assert_string_equal(l.msgs[base + 1], "second: two files");
		assert_string_equal(l.msgs[base + 2], "");
		assert_int_equal(strlen(l.msgs[base + 3]), 63); /* cut by us */
		assert_true(l.changes[base + 1] >= 2);
		assert_int_equal(l.changes[base + 2], 0);
		tu_reopen(ctx);
		s = ctx->s;
	}
	/* fn's non-zero value stops the walk and is returned */
	assert_rc(pog_log(s, log_stop_fn, &calls), 77);
	assert_int_equal(calls, 1);
	tu_assert_fsck_clean(s);
}

#define MAX_CHANGES 64
struct change_list {
	size_t n;
	char kinds[MAX_CHANGES];
	char paths[MAX_CHANGES][64];
};

static int changes_fn(void *vctx, char kind, const char *path)
{
	struct change_list *l = vctx;

	if (l->n < MAX_CHANGES) {
		l->kinds[l->n] = kind;
		snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", path);
	}
	l->n++;
	return 0;
}

/* The kind recorded for path, or 0. */
static char change_of(const struct change_list *l, const char *path)
{
	char kind = 0;

	for (size_t i = 0; i < l->n && i < MAX_CHANGES; i++) {
		if (strcmp(l->paths[i], path) == 0) {
			if (kind)
				fail_msg("path \"%s\" listed twice", path);
			kind = l->kinds[i];
		}
	}
	return kind;
}

static void dump_changes(const struct change_list *l)
{
	for (size_t i = 0; i < l->n && i < MAX_CHANGES; i++)
		print_message("    %c %s\n", l->kinds[i], l->paths[i]);
}

static void test_changes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct change_list l;
	uint64_t dir, mod;

	dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	mod = tu_mkfile(s, dir, "mod", "old", 3);
	tu_mkfile(s, dir, "gone", "x", 1);
	tu_mkfile(s, dir, "same", "y", 1);
	tu_mkfile(s, POG_ROOT_INO, "top", "t", 1);
	tu_commit_check(s, "base");

	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	assert_int_equal(l.n, 0);

	tu_mkfile(s, dir, "added", "a", 1);
	tu_write(s, mod, 0, "new", 3);
	assert_ok(pog_remove(s, dir, "gone", 4, 0));
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	dump_changes(&l);
	assert_int_equal(change_of(&l, "dir/added"), 'A');
	assert_int_equal(change_of(&l, "dir/mod"), 'M');
	assert_int_equal(change_of(&l, "dir/gone"), 'D');
	assert_int_equal(change_of(&l, "dir/same"), 0);
	assert_int_equal(change_of(&l, "top"), 0);
	for (size_t i = 0; i < l.n; i++)
		assert_true(l.kinds[i] == 'A' || l.kinds[i] == 'M' ||
			    l.kinds[i] == 'D');
	assert_true(pog_staged_count(s) >= 3);

	/* after commit nothing is listed; after abort nothing either */
	tu_commit_check(s, "changed");
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	assert_int_equal(l.n, 0);
	assert_int_equal(pog_staged_count(s), 0);
	tu_mkfile(s, POG_ROOT_INO, "x", "", 0);
	assert_ok(pog_abort(s));
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	assert_int_equal(l.n, 0);
	tu_assert_fsck_clean(s);
}

/* An import is listed by what it added to existing directories; what it
 * made inside the directories it made has no line of its own. */
static void test_import_changes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct change_list l;
	static const char doc[] =
		"{\"a\": {\"b\": [1, 2, {\"deep\": true}], \"c\": \"x\"}, \"n\": 5}";

	uint64_t dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	tu_commit_check(s, "base");
	tu_import(s, dir, "doc", doc, sizeof(doc) - 1);
	tu_import(s, dir, NULL, "{\"top\": {\"k\": 1}}", 17);
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	dump_changes(&l);
	assert_int_equal(change_of(&l, "dir/doc"), 'A');
	assert_int_equal(change_of(&l, "dir/top"), 'A');
	assert_int_equal(change_of(&l, "dir"), 'M');
	assert_int_equal(l.n, 3);
	assert_int_equal(pog_staged_count(s), 3);
	/* made and removed in the same transaction: no D line; moved out of
	 * the new directory: an A line of its own */
	uint64_t doc_ino = tu_lookup(s, dir, "doc");
	uint64_t a = tu_lookup(s, doc_ino, "a");
	assert_ok(pog_remove(s, a, "c", 1, 0));
	assert_ok(pog_rename(s, doc_ino, "n", 1, POG_ROOT_INO, "n", 1, 0));
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	dump_changes(&l);
	assert_int_equal(change_of(&l, "dir/doc/a/c"), 0);
	assert_int_equal(change_of(&l, "n"), 'A');
	assert_int_equal(change_of(&l, "dir/doc"), 'A');
	tu_commit_check(s, "imported");
	uint64_t b = tu_lookup(s, tu_lookup(s, tu_lookup(s, dir, "doc"), "a"), "b");
	assert_int_equal(tu_count_entries(s, b), 3);
	/* after the commit, a change inside is listed as usual */
	tu_write(s, tu_lookup(s, b, "0"), 0, "7\n", 2);
	memset(&l, 0, sizeof(l));
	assert_ok(pog_changes(s, changes_fn, &l));
	assert_int_equal(change_of(&l, "dir/doc/a/b/0"), 'M');
}

static void test_committed_view(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr, cattr;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	uint64_t dir, f, cdir, cf;
	char buf[64];

	dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	f = tu_mkfile(s, dir, "f", "committed text", 14);
	tu_commit_check(s, "base");

	/* stage a different state */
	tu_write(s, f, 0, "STAGED", 6);
	tu_write(s, f, 14, "+more", 5);
	tu_mkfile(s, dir, "newfile", "n", 1);
	assert_ok(pog_setattr(s, f, &(struct pog_attr){ .mode = 0600 },
			      POG_SET_MODE, &attr));

	/* the staged view */
	tu_assert_content(s, f, "STAGEDted text+more", 19);
	assert_int_equal(tu_count_entries(s, dir), 2);
	/* the committed view: old content, old size, old mode */
	tu_assert_content(s, f | POG_COMMITTED_BIT, "committed text", 14);
	assert_ok(pog_getattr(s, f | POG_COMMITTED_BIT, &cattr));
	assert_int_equal(cattr.size, 14);
	assert_int_equal(cattr.mode & 07777, 0644);
	assert_int_equal(cattr.ino & POG_INO_MASK, f);
	assert_int_equal(tu_count_entries(s, dir | POG_COMMITTED_BIT), 1);
	/* lookup in the committed view answers committed inos */
	assert_ok(pog_lookup(s, POG_ROOT_INO | POG_COMMITTED_BIT, "dir", 3,
			     &attr));
	cdir = attr.ino;
	assert_int_equal(cdir, dir | POG_COMMITTED_BIT);
	assert_ok(pog_lookup(s, cdir, "f", 1, &attr));
	cf = attr.ino;
	assert_int_equal(cf, f | POG_COMMITTED_BIT);
	assert_rc(pog_lookup(s, cdir, "newfile", 7, &attr), -ENOENT);
	assert_rc(pog_read(s, cf, 0, buf, sizeof(buf)), 14);
	assert_memory_equal(buf, "committed text", 14);

	/* read-only */
	assert_rc(pog_write(s, cf, 0, "x", 1), -EROFS);
	assert_rc(pog_mknode(s, cdir, "z", 1, &spec, &attr), -EROFS);
	assert_rc(pog_remove(s, cdir, "f", 1, 0), -EROFS);
	assert_rc(pog_setattr(s, cf, &(struct pog_attr){ .size = 0 },
			      POG_SET_SIZE, &attr),
		  -EROFS);
	assert_rc(pog_setxattr(s, cf, "user.a", "b", 1, 0), -EROFS);
	assert_rc(pog_rename(s, cdir, "f", 1, cdir, "g", 1, 0), -EROFS);
	/* and nothing changed by the attempts */
	tu_assert_content(s, cf, "committed text", 14);
	tu_assert_content(s, f, "STAGEDted text+more", 19);

	/* an object created since the commit has no committed view */
	{
		uint64_t nf = tu_lookup(s, dir, "newfile");
		assert_true(pog_getattr(s, nf | POG_COMMITTED_BIT, &attr) < 0);
	}

	/* after commit the committed view is the new state */
	tu_commit_check(s, "staged committed");
	tu_assert_content(s, f | POG_COMMITTED_BIT, "STAGEDted text+more", 19);
	assert_int_equal(tu_count_entries(s, dir | POG_COMMITTED_BIT), 2);
	/* after abort of new changes the committed view is unchanged */
	tu_write(s, f, 0, "again", 5);
	tu_assert_content(s, f | POG_COMMITTED_BIT, "STAGEDted text+more", 19);
	assert_ok(pog_abort(s));
	tu_assert_content(s, f, "STAGEDted text+more", 19);
	tu_assert_fsck_clean(s);
}

/* Attributes: mode, owner, times are kept through commit and reopen. */
static void test_attributes_persist(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr set, out;
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "abc", 3);

	memset(&set, 0, sizeof(set));
	set.mode = 0640;
	set.uid = 1234;
	set.gid = 5678;
	set.mtime.sec = 1000000000;
	set.mtime.nsec = 123456789;
	set.atime.sec = 1100000000;
	set.atime.nsec = 5;
	assert_ok(pog_setattr(s, f, &set,
			      POG_SET_MODE | POG_SET_UID | POG_SET_GID |
				      POG_SET_MTIME | POG_SET_ATIME,
			      &out));
	tu_commit_check(s, "attrs");
	tu_reopen(ctx);
	assert_ok(pog_getattr(ctx->s, f, &out));
	assert_int_equal(out.mode, S_IFREG | 0640);
	assert_int_equal(out.uid, 1234);
	assert_int_equal(out.gid, 5678);
	assert_int_equal(out.mtime.sec, 1000000000);
	assert_int_equal(out.mtime.nsec, 123456789);
	assert_int_equal(out.atime.sec, 1100000000);
	assert_int_equal(out.atime.nsec, 5);
	assert_int_equal(out.size, 3);
	tu_assert_fsck_clean(ctx->s);
}

static int64_t tns(struct pog_time t)
{
	return t.sec * 1000000000 + t.nsec;
}

/* Times move as a filesystem's do; special files keep mode and rdev. */
static void test_times_and_specials(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr a0, a1, d0, d1;
	struct pog_new fifo = { .type = POG_SPECIAL, .mode = S_IFIFO | 0600 };
	struct pog_new chr = { .type = POG_SPECIAL, .mode = S_IFCHR | 0600,
			       .rdev = 0x0501 };
	struct pog_new sym = { .type = POG_SYMLINK, .mode = 0777,
			       .text = "/outside/the/store" };
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "f", "abc", 3);
	char buf[64];
	time_t now = time(NULL);

	assert_ok(pog_getattr(s, f, &a0));
	assert_true(a0.mtime.sec >= now - 5 && a0.mtime.sec <= now + 5);
	assert_ok(pog_getattr(s, POG_ROOT_INO, &d0));
	/* make sure the clock moves past the creation times */
	{
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	tu_write(s, f, 3, "d", 1);
	assert_ok(pog_getattr(s, f, &a1));
	assert_true(tns(a1.mtime) > tns(a0.mtime));
	assert_true(tns(a1.ctime) >= tns(a1.mtime));
	/* chmod changes ctime, not mtime */
	{
		struct pog_attr set = { .mode = 0600 }, out;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		assert_ok(pog_setattr(s, f, &set, POG_SET_MODE, &out));
		assert_int_equal(tns(out.mtime), tns(a1.mtime));
		assert_true(tns(out.ctime) > tns(a1.ctime));
		assert_int_equal(out.mode, S_IFREG | 0600);
	}
	/* creating an entry changes the directory's mtime */
	assert_ok(pog_mknode(s, POG_ROOT_INO, "fifo", 4, &fifo, &a0));
	assert_ok(pog_getattr(s, POG_ROOT_INO, &d1));
	assert_true(tns(d1.mtime) > tns(d0.mtime));
	assert_int_equal(a0.mode, S_IFIFO | 0600);
	assert_ok(pog_mknode(s, POG_ROOT_INO, "chr", 3, &chr, &a1));
	assert_int_equal(a1.mode, S_IFCHR | 0600);
	assert_int_equal(a1.rdev, 0x0501);
	assert_ok(pog_mknode(s, POG_ROOT_INO, "sym", 3, &sym, &a1));
	assert_int_equal(a1.type, POG_SYMLINK);
	assert_true(S_ISLNK(a1.mode));
	assert_int_equal(a1.size, 18);
	tu_commit_check(s, "specials");
	tu_reopen(ctx);
	s = ctx->s;
	assert_ok(pog_lookup(s, POG_ROOT_INO, "chr", 3, &a1));
	assert_int_equal(a1.mode, S_IFCHR | 0600);
	assert_int_equal(a1.rdev, 0x0501);
	assert_ok(pog_lookup(s, POG_ROOT_INO, "fifo", 4, &a0));
	assert_int_equal(a0.mode, S_IFIFO | 0600);
	assert_ok(pog_lookup(s, POG_ROOT_INO, "sym", 3, &a1));
	assert_rc(pog_readlink(s, a1.ino, buf, sizeof(buf)), 18);
	assert_memory_equal(buf, "/outside/the/store", 18);
	tu_assert_fsck_clean(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_store, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_abort_discards, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_commit_survives_reopen,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_log, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_changes, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_import_changes, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_committed_view, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_attributes_persist, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_times_and_specials, setup,
						tu_state_teardown),
	};

	return cmocka_run_group_tests_name("txn", tests, NULL, NULL);
}
