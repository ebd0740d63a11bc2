/* test_strings.c - string objects: sizes, page boundaries, big, sparse, truncate. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)1 << 30)
#define MiB ((size_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static void assert_size(pog_store *s, uint64_t ino, uint64_t size)
{
	struct pog_attr attr;

	assert_ok(pog_getattr(s, ino, &attr));
	if (attr.size != size)
		fail_msg("ino %llu: size %llu, expected %llu",
			 (unsigned long long)ino,
			 (unsigned long long)attr.size,
			 (unsigned long long)size);
}

/* Read [off, off+len) and compare with expect; len may pass EOF. */
static void assert_range(pog_store *s, uint64_t ino, uint64_t off,
			 const char *expect, size_t expect_len, size_t len)
{
	char *buf = malloc(len + 1);
	ssize_t n = pog_read(s, ino, off, buf, len);

	if (n != (ssize_t)expect_len)
		fail_msg("pog_read(ino %llu, off %llu, len %zu) = %zd (%s), expected %zu",
			 (unsigned long long)ino, (unsigned long long)off, len,
			 n, tu_err(n), expect_len);
	if (expect_len && memcmp(buf, expect, expect_len) != 0)
		fail_msg("read at %llu: wrong bytes", (unsigned long long)off);
	free(buf);
}

static void test_empty_and_one_byte(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char buf[16];
	uint64_t e = tu_mk(s, POG_ROOT_INO, "empty", POG_STRING);
	uint64_t one = tu_mkfile(s, POG_ROOT_INO, "one", "x", 1);
	uint64_t zero = tu_mkfile(s, POG_ROOT_INO, "nul", "\0", 1);

	assert_size(s, e, 0);
	assert_rc(pog_read(s, e, 0, buf, sizeof(buf)), 0);
	assert_rc(pog_read(s, e, 100, buf, sizeof(buf)), 0);
	assert_size(s, one, 1);
	assert_range(s, one, 0, "x", 1, 16);
	assert_rc(pog_read(s, one, 1, buf, sizeof(buf)), 0);
	assert_range(s, zero, 0, "\0", 1, 1);
	/* a zero-length write changes nothing */
	assert_rc(pog_write(s, e, 0, "abc", 0), 0);
	assert_size(s, e, 0);

	tu_commit_check(s, "small");
	tu_reopen(ctx);
	s = ctx->s;
	assert_size(s, e, 0);
	assert_rc(pog_read(s, e, 0, buf, sizeof(buf)), 0);
	tu_assert_content(s, one, "x", 1);
	tu_assert_content(s, zero, "\0", 1);
	/* overwrite the byte, append one */
	tu_write(s, one, 0, "y", 1);
	tu_write(s, one, 1, "z", 1);
	tu_assert_content(s, one, "yz", 2);
	tu_commit_check(s, "changed");
	tu_assert_content(s, one | POG_COMMITTED_BIT, "yz", 2);
}

static void test_page_boundaries(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static const size_t sizes[] = { 4095, 4096, 4097, 8191, 8192, 8193,
					12289 };
	size_t n = sizeof(sizes) / sizeof(sizes[0]);
	uint64_t whole[8], pieces[8];
	char *data = malloc(16384), *data2 = malloc(16384);

	tu_fill_random(data, 16384, 1);
	tu_fill_random(data2, 16384, 2);
	for (size_t i = 0; i < n; i++) {
		char nm[32];

		/* one write */
		snprintf(nm, sizeof(nm), "whole-%zu", sizes[i]);
		whole[i] = tu_mkfile(s, POG_ROOT_INO, nm, data, sizes[i]);
		/* odd-sized pieces */
		snprintf(nm, sizeof(nm), "pieces-%zu", sizes[i]);
		pieces[i] = tu_mk(s, POG_ROOT_INO, nm, POG_STRING);
		for (size_t off = 0; off < sizes[i]; off += 1000) {
			size_t len = sizes[i] - off < 1000 ? sizes[i] - off
							    : 1000;
			tu_write(s, pieces[i], off, data + off, len);
		}
	}
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < n; i++) {
			size_t sz = sizes[i];

			assert_size(s, whole[i], sz);
			tu_assert_content(s, whole[i], data, sz);
			tu_assert_content(s, pieces[i], data, sz);
			/* reads across the 4096 boundary and past EOF */
			assert_range(s, whole[i], 4090, data + 4090,
				     sz - 4090 < 10 ? sz - 4090 : 10, 10);
			assert_range(s, whole[i], sz - 1, data + sz - 1, 1,
				     100);
			assert_range(s, whole[i], sz, NULL, 0, 100);
		}
		tu_commit_check(s, "pages");
		tu_reopen(ctx);
		s = ctx->s;
	}
	/* overwrite across the page boundary (extending the shorter ones) */
	char *expect = malloc(16384);
	for (size_t i = 0; i < n; i++) {
		size_t sz = sizes[i] > 4200 ? sizes[i] : 4200;

		memcpy(expect, data, sizes[i]);
		memcpy(expect + 4000, data2, 200);
		tu_write(s, whole[i], 4000, data2, 200);
		tu_assert_content(s, whole[i], expect, sz);
	}
	tu_commit_check(s, "overwritten");
	tu_reopen(ctx);
	for (size_t i = 0; i < n; i++) {
		size_t sz = sizes[i] > 4200 ? sizes[i] : 4200;

		memcpy(expect, data, sizes[i]);
		memcpy(expect + 4000, data2, 200);
		tu_assert_content(ctx->s, whole[i], expect, sz);
		tu_assert_content(ctx->s, pieces[i], data, sizes[i]);
	}
	free(expect);
	tu_assert_fsck_clean(ctx->s);
	free(data);
	free(data2);
}

/* Identical pages are stored once; changing one copy leaves the other. */
static void test_same_pages_copy_on_write(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 64 * 4096;
	char *data = malloc(len), *changed = malloc(len);
	uint64_t a, b;

	tu_fill_random(data, len, 7);
	a = tu_mkfile(s, POG_ROOT_INO, "a", data, len);
	b = tu_mkfile(s, POG_ROOT_INO, "b", data, len);
	tu_commit_check(s, "two copies");
	memcpy(changed, data, len);
	memset(changed + 4096 * 3 + 17, 'Z', 5000);
	tu_write(s, b, 4096 * 3 + 17, changed + 4096 * 3 + 17, 5000);
	tu_assert_content(s, a, data, len);
	tu_assert_content(s, b, changed, len);
	tu_commit_check(s, "one changed");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, a, data, len);
	tu_assert_content(ctx->s, b, changed, len);
	free(data);
	free(changed);
}

static void test_100mib(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	const size_t chunks = 100;
	char *buf = malloc(MiB), *got = malloc(MiB);
	uint64_t ino = tu_mk(s, POG_ROOT_INO, "big", POG_STRING);
	double t0 = tu_now(), t1, t2;

	for (size_t i = 0; i < chunks; i++) {
		tu_fill_random(buf, MiB, 1000 + i);
		tu_write(s, ino, i * MiB, buf, MiB);
	}
	assert_size(s, ino, chunks * MiB);
	t1 = tu_now();
	tu_commit_check(s, "100 MiB");
	t2 = tu_now();
	print_message("    100 MiB: staged in %.2f s, commit+fsck %.2f s\n",
		      t1 - t0, t2 - t1);
	tu_reopen(ctx);
	s = ctx->s;
	assert_size(s, ino, chunks * MiB);
	for (size_t i = 0; i < chunks; i++) {
		size_t done = 0;

		tu_fill_random(buf, MiB, 1000 + i);
		while (done < MiB) {
			ssize_t n = pog_read(s, ino, i * MiB + done,
					     got + done, MiB - done);
			if (n <= 0)
				fail_msg("read chunk %zu at %zu: %zd (%s)", i,
					 done, n, tu_err(n));
			done += (size_t)n;
		}
		if (memcmp(buf, got, MiB) != 0)
			fail_msg("chunk %zu differs", i);
	}
	/* unaligned reads straddling chunks */
	{
		size_t off = 5 * MiB - 3000;
		char expect[6000];

		tu_fill_random(buf, MiB, 1000 + 4);
		memcpy(expect, buf + MiB - 3000, 3000);
		tu_fill_random(buf, MiB, 1000 + 5);
		memcpy(expect + 3000, buf, 3000);
		assert_range(s, ino, off, expect, 6000, 6000);
	}
	free(buf);
	free(got);
}

static void test_sparse(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	struct pog_status st0, st1;
	char *zeros = calloc(1, MiB), *buf = malloc(MiB);
	uint64_t ino = tu_mk(s, POG_ROOT_INO, "sparse", POG_STRING);

	tu_commit_check(s, "empty");
	assert_ok(pog_status(s, &st0));
	tu_write(s, ino, GiB, "end", 3);
	assert_size(s, ino, GiB + 3);
	tu_write(s, ino, 100, "head", 4);
	for (int round = 0; round < 2; round++) {
		assert_size(s, ino, GiB + 3);
		assert_range(s, ino, GiB, "end", 3, 100);
		assert_range(s, ino, 96, "\0\0\0\0head\0\0", 10, 10);
		/* holes read as zeros: start, middle, just before the end */
		assert_rc(pog_read(s, ino, 4096, buf, MiB), (ssize_t)MiB);
		assert_memory_equal(buf, zeros, MiB);
		assert_rc(pog_read(s, ino, GiB / 2 + 12345, buf, MiB),
			  (ssize_t)MiB);
		assert_memory_equal(buf, zeros, MiB);
		assert_rc(pog_read(s, ino, GiB - 1000, buf, 1003), 1003);
		assert_memory_equal(buf, zeros, 1000);
		assert_memory_equal(buf + 1000, "end", 3);
		/* a hole does not take space */
		assert_ok(pog_getattr(s, ino, &attr));
		assert_true(attr.blocks * 512 < 4 * MiB);
		tu_commit_check(s, "sparse");
		tu_reopen(ctx);
		s = ctx->s;
	}
	assert_ok(pog_status(s, &st1));
	if ((st1.blocks_used - st0.blocks_used) * st1.block_size > 16 * MiB)
		fail_msg("1 GiB sparse file took %llu blocks of %llu bytes",
			 (unsigned long long)(st1.blocks_used - st0.blocks_used),
			 (unsigned long long)st1.block_size);
	/* past the size limit */
	assert_rc(pog_write(s, ino, POG_FILE_MAX, "x", 1), -EFBIG);
	free(zeros);
	free(buf);
}

static void truncate_to(pog_store *s, uint64_t ino, uint64_t size)
{
	struct pog_attr attr, out;

	memset(&attr, 0, sizeof(attr));
	attr.size = size;
	assert_ok(pog_setattr(s, ino, &attr, POG_SET_SIZE, &out));
	assert_int_equal(out.size, size);
}

static void test_truncate(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	size_t len = 20000;
	char *data = malloc(len), *expect = calloc(1, 3 * len);
	uint64_t ino;

	tu_fill_random(data, len, 9);
	ino = tu_mkfile(s, POG_ROOT_INO, "t", data, len);
	tu_commit_check(s, "full");

	/* down to a non-page boundary, then up: the tail reads zeros (the
	 * old bytes must not come back) */
	truncate_to(s, ino, 5000);
	assert_size(s, ino, 5000);
	tu_assert_content(s, ino, data, 5000);
	truncate_to(s, ino, 3 * len);
	memcpy(expect, data, 5000);
	tu_assert_content(s, ino, expect, 3 * len);
	/* committed view still has the old content */
	tu_assert_content(s, ino | POG_COMMITTED_BIT, data, len);
	tu_commit_check(s, "down and up");
	tu_reopen(ctx);
	s = ctx->s;
	tu_assert_content(s, ino, expect, 3 * len);

	/* truncate within one page and extend inside the same page */
	truncate_to(s, ino, 4100);
	truncate_to(s, ino, 4200);
	memset(expect + 4100, 0, 100);
	tu_assert_content(s, ino, expect, 4200);
	/* to zero and write again at an offset */
	truncate_to(s, ino, 0);
	assert_size(s, ino, 0);
	tu_write(s, ino, 10, "abc", 3);
	tu_assert_content(s, ino, "\0\0\0\0\0\0\0\0\0\0abc", 13);
	/* down to exactly a page boundary */
	tu_write(s, ino, 0, data, len);
	truncate_to(s, ino, 8192);
	truncate_to(s, ino, 9000);
	memcpy(expect, data, 8192);
	memset(expect + 8192, 0, 9000 - 8192);
	tu_assert_content(s, ino, expect, 9000);
	tu_commit_check(s, "more truncates");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, ino, expect, 9000);
	tu_assert_fsck_clean(ctx->s);
	free(data);
	free(expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_and_one_byte, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_page_boundaries, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_same_pages_copy_on_write,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_100mib, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_sparse, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_truncate, setup,
						tu_state_teardown),
	};

	return cmocka_run_group_tests_name("strings", tests, NULL, NULL);
}
