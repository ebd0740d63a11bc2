/* test_bulkdata.c - whole pages written with pwrite: their CRC taken at
 * staging, their own segments, early writeback; read back exactly and
 * CRC-checked after a reopen, and a crashed writer loses nothing committed. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MIB ((size_t)1 << 20)
#define PAGE 4096u

static int setup(void **state)
{
	return tu_state_setup(state, NULL, 64ull << 20);
}

/* Write buf[off, off + len) into the file and the model alike. */
static void write_both(pog_store *s, uint64_t ino, char *model, size_t off,
		       const char *buf, size_t len)
{
	tu_write(s, ino, off, buf, len);
	memcpy(model + off, buf, len);
}

/*
 * Whole-page runs (1 MiB writes: early writeback, CRCs at staging), a
 * whole page rewritten in place, a partial write into a whole-written
 * page (its CRC is then the commit's), writes across page boundaries, a
 * one-page file written whole then in part: after commit and reopen every
 * byte reads back (every read checks the page's CRC) and fsck is clean.
 */
static void test_roundtrip(void **state)
{
	struct tu_ctx *ctx = *state;
	size_t size = 4 * MIB + 3 * PAGE + 100;
	char *model = calloc(1, size), *buf = malloc(2 * MIB);
	assert_non_null(model);
	assert_non_null(buf);
	uint64_t ino = tu_mkfile(ctx->s, POG_ROOT_INO, "big", NULL, 0);
	for (size_t i = 0; i < 4; i++) {
		tu_fill_random(buf, MIB, 100 + i);
		write_both(ctx->s, ino, model, i * MIB, buf, MIB);
	}
	tu_fill_random(buf, 3 * PAGE + 100, 7);
	write_both(ctx->s, ino, model, 4 * MIB, buf, 3 * PAGE + 100);
	tu_fill_random(buf, PAGE, 8); /* a fresh page rewritten whole */
	write_both(ctx->s, ino, model, 5 * PAGE, buf, PAGE);
	tu_fill_random(buf, 300, 9); /* a whole-written page, then in part */
	write_both(ctx->s, ino, model, 9 * PAGE + 50, buf, 300);
	tu_fill_random(buf, 2 * PAGE, 10); /* straddling pages */
	write_both(ctx->s, ino, model, 20 * PAGE + 1000, buf, 2 * PAGE);

	char one[PAGE], one_model[PAGE];
	tu_fill_random(one, PAGE, 11);
	memcpy(one_model, one, PAGE);
	uint64_t small = tu_mkfile(ctx->s, POG_ROOT_INO, "one", one, PAGE);
	tu_fill_random(one, 10, 12);
	tu_write(ctx->s, small, 4000, one, 10);
	memcpy(one_model + 4000, one, 10);

	tu_assert_content(ctx->s, ino, model, size); /* staged */
	tu_commit_check(ctx->s, "bulk");
	tu_reopen(ctx);
	ino = tu_lookup(ctx->s, POG_ROOT_INO, "big");
	small = tu_lookup(ctx->s, POG_ROOT_INO, "one");
	tu_assert_content(ctx->s, ino, model, size);
	tu_assert_content(ctx->s, small, one_model, PAGE);
	tu_assert_fsck_clean(ctx->s);

	/* Rewrite whole pages of committed ones (copies), commit again. */
	tu_fill_random(buf, 2 * MIB, 13);
	write_both(ctx->s, ino, model, MIB, buf, 2 * MIB);
	tu_commit_check(ctx->s, "rewrite");
	tu_reopen(ctx);
	ino = tu_lookup(ctx->s, POG_ROOT_INO, "big");
	tu_assert_content(ctx->s, ino, model, size);
	tu_assert_fsck_clean(ctx->s);
	free(model);
	free(buf);
}

/* Identical whole pages are still shared (their CRC from staging). */
static void test_dedup(void **state)
{
	struct tu_ctx *ctx = *state;
	char *buf = malloc(MIB);
	assert_non_null(buf);
	tu_fill_random(buf, MIB, 21);
	struct pog_status before, after;
	assert_ok(pog_status(ctx->s, &before));
	uint64_t a = tu_mkfile(ctx->s, POG_ROOT_INO, "a", buf, MIB);
	uint64_t b = tu_mkfile(ctx->s, POG_ROOT_INO, "b", buf, MIB);
	tu_commit_check(ctx->s, "twins");
	assert_ok(pog_status(ctx->s, &after));
	/* one copy of the 256 pages, not two (plus a few nodes) */
	assert_true(after.blocks_used - before.blocks_used < 256 + 64);
	tu_reopen(ctx);
	tu_assert_content(ctx->s, a, buf, MIB);
	tu_assert_content(ctx->s, b, buf, MIB);
	free(buf);
}

/* Stage n MiB of seeded pages at MiB offset first of ino. */
static void stage(pog_store *s, uint64_t ino, size_t first, size_t n,
		  uint64_t seed)
{
	char *buf = malloc(MIB);
	if (!buf)
		_exit(3);
	for (size_t i = first; i < first + n; i++) {
		tu_fill_random(buf, MIB, seed + i);
		if (pog_write(s, ino, i * MIB, buf, MIB) != (ssize_t)MIB)
			_exit(4);
	}
	free(buf);
}

/* Run fn(pool, ino) in a child that _exit()s; assert it exited 0. */
static void in_child(const char *pool, uint64_t ino,
		     void (*fn)(const char *pool, uint64_t ino))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn(pool, ino);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Commit 6 MiB, then die with 4 MiB staged, their writeback under way. */
static void crash_staged(const char *pool, uint64_t ino)
{
	pog_store *s;
	if (pog_open(pool, 0, &s))
		_exit(2);
	stage(s, ino, 0, 6, 1000);
	if (pog_commit(s, "six", NULL))
		_exit(5);
	stage(s, ino, 6, 4, 2000);
}

#ifndef __SANITIZE_ADDRESS__
/* Stage 2 MiB (the early-writeback thread starts), fork a writer from
 * the open store (the thread stays behind) that stages 3 MiB more,
 * commits, stages 4 MiB and dies; die too. */
static void crash_forked(const char *pool, uint64_t ino)
{
	pog_store *s;
	if (pog_open(pool, 0, &s))
		_exit(2);
	stage(s, ino, 6, 2, 3000);
	pid_t g = fork();
	if (g == 0) {
		stage(s, ino, 8, 3, 3000);
		if (pog_commit(s, "five more", NULL))
			_exit(6);
		stage(s, ino, 11, 4, 4000);
		_exit(0);
	}
	int st;
	if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		_exit(7);
}
#endif

/* The file holds MiB i seeded seed(i) for i < n, and nothing more. */
static void assert_mibs(pog_store *s, uint64_t ino, size_t n)
{
	size_t len;
	char *got = tu_read_all(s, ino, &len);
	assert_int_equal(len, n * MIB);
	char *want = malloc(MIB);
	assert_non_null(want);
	for (size_t i = 0; i < n; i++) {
		tu_fill_random(want, MIB, i < 6 ? 1000 + i : 3000 + i);
		assert_memory_equal(got + i * MIB, want, MIB);
	}
	free(want);
	free(got);
}

/*
 * Writers die with large writes staged and their early writeback under
 * way, one of them forked from an open store: the reopened pool holds
 * exactly the last commit, CRC-checked on every read, fsck clean.
 */
static void test_crash(void **state)
{
	struct tu_ctx *ctx = *state;
	uint64_t ino = tu_mkfile(ctx->s, POG_ROOT_INO, "f", NULL, 0);
	tu_commit_check(ctx->s, "empty");
	assert_ok(pog_close(ctx->s, POG_CLOSE_NOGC));
	ctx->s = NULL;
	in_child(ctx->pool, ino, crash_staged);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_mibs(ctx->s, ino, 6);
	tu_assert_fsck_clean(ctx->s);
#ifdef __SANITIZE_ADDRESS__
	/* ASan's allocator is not fork-safe: a process forked while another
	 * thread holds its lock (the early-writeback thread here) hangs in
	 * its next malloc. The build without ASan runs this part. */
	print_message("    forked writer skipped under ASan\n");
#else
	assert_ok(pog_close(ctx->s, POG_CLOSE_NOGC));
	ctx->s = NULL;
	in_child(ctx->pool, ino, crash_forked);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_mibs(ctx->s, ino, 11);
	tu_assert_fsck_clean(ctx->s);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_dedup, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, tu_state_teardown),
	};
	return cmocka_run_group_tests_name("bulkdata", tests, NULL, NULL);
}
