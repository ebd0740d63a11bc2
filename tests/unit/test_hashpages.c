/* test_hashpages.c - a string's user.pog.hash, which pogfs makes from its
 * pages' CRCs, is crc("s" + bytes) (README "Hashes") for strings of every
 * shape: sizes around a page, big, sparse, overwritten, truncated; in both
 * views, and again after reopening. The expected value is computed here
 * with zlib from the bytes read back. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define POOL_SIZE ((uint64_t)1 << 30)
#define PAGE ((uint64_t)4096)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define CHUNK ((size_t)1 << 20)
#define MAX_FILES 32

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

/* crc(tag + bytes), the bytes read back with pog_read in chunks. */
static uint32_t expected_hash(pog_store *s, uint64_t ino, char tag)
{
	struct pog_attr attr;
	char *buf = malloc(CHUNK);
	uLong crc = crc32(0, (const Bytef *)&tag, 1);

	assert_non_null(buf);
	assert_ok(pog_getattr(s, ino, &attr));
	for (uint64_t off = 0; off < attr.size;) {
		ssize_t n = pog_read(s, ino, off, buf, CHUNK);
		if (n <= 0)
			fail_msg("pog_read at %llu = %zd (%s)",
				 (unsigned long long)off, n, tu_err(n));
		crc = crc32(crc, (const Bytef *)buf, (uInt)n);
		off += (uint64_t)n;
	}
	free(buf);
	return (uint32_t)crc;
}

/* pog_hash(ino) is crc("s" + the bytes read back). */
static void check_hash(pog_store *s, uint64_t ino)
{
	uint32_t got = 0, want = expected_hash(s, ino, 's');
	struct pog_attr attr;

	assert_ok(pog_hash(s, ino, &got));
	assert_ok(pog_getattr(s, ino, &attr));
	if (got != want)
		fail_msg("ino %llu%s, size %llu: hash %08x, crc of its bytes %08x",
			 (unsigned long long)(ino & POG_INO_MASK),
			 ino & POG_COMMITTED_BIT ? " (committed)" : "",
			 (unsigned long long)attr.size, got, want);
}

/* ---- a file and a model of its bytes, kept side by side ------------------ */

struct model {
	uint64_t ino;
	char *buf;
	uint64_t size, cap;
};

static void model_resize(struct model *m, uint64_t size)
{
	if (size > m->cap) {
		m->buf = realloc(m->buf, (size_t)size);
		assert_non_null(m->buf);
		m->cap = size;
	}
	if (size > m->size)
		memset(m->buf + m->size, 0, (size_t)(size - m->size));
	m->size = size;
}

static struct model model_new(pog_store *s, const char *name)
{
	struct model m = {tu_mk(s, POG_ROOT_INO, name, POG_STRING), NULL, 0, 0};
	return m;
}

static void model_write(pog_store *s, struct model *m, uint64_t off,
			const void *data, size_t len)
{
	if (!len)
		return;
	tu_write(s, m->ino, off, data, len);
	if (off + len > m->size)
		model_resize(m, off + len);
	memcpy(m->buf + off, data, len);
}

/* Write len pseudo-random bytes (from seed) at off. */
static void model_fill(pog_store *s, struct model *m, uint64_t off,
		       size_t len, uint64_t seed)
{
	char *data = malloc(len ? len : 1);

	assert_non_null(data);
	tu_fill_random(data, len, seed);
	model_write(s, m, off, data, len);
	free(data);
}

static void model_truncate(pog_store *s, struct model *m, uint64_t size)
{
	struct pog_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = size;
	assert_ok(pog_setattr(s, m->ino, &attr, POG_SET_SIZE, NULL));
	model_resize(m, size);
}

/* The file holds the model's bytes and hashes as crc("s" + them). */
static void model_check(pog_store *s, const struct model *m, uint64_t view)
{
	tu_assert_content(s, m->ino | view, m->buf, (size_t)m->size);
	check_hash(s, m->ino | view);
}

static void models_check(pog_store *s, const struct model *m, size_t n,
			 uint64_t view)
{
	for (size_t i = 0; i < n; i++)
		model_check(s, &m[i], view);
}

/* Commit; both views agree; reopen; the staged view, hashed afresh. */
static void commit_reopen_check(struct tu_ctx *ctx, const struct model *m,
				size_t n)
{
	tu_commit_check(ctx->s, "shapes");
	models_check(ctx->s, m, n, 0);
	models_check(ctx->s, m, n, POG_COMMITTED_BIT);
	tu_reopen(ctx);
	models_check(ctx->s, m, n, 0);
}

static void models_free(struct model *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].buf);
}

/* ---- the shapes ----------------------------------------------------------- */

/* Sizes around the inline limit and the page, and several MiB. */
static void test_sizes(void **state)
{
	struct tu_ctx *ctx = *state;
	static const uint64_t sizes[] = {
		0,    1,    127,  128,      129,      4095,         4096,
		4097, 8191, 8192, 8193,     3 * PAGE, 5 * MiB + 321, 3 * MiB,
	};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct model m[N];
	char name[32];

	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "s%zu", i);
		m[i] = model_new(ctx->s, name);
		model_fill(ctx->s, &m[i], 0, (size_t)sizes[i], 100 + i);
		model_check(ctx->s, &m[i], 0);
	}
	commit_reopen_check(ctx, m, N);
	models_free(m, N);
}

/* Paged strings that are small again, and one direct page with holes
 * after it (the size grown by truncate). */
static void test_paged_small_and_direct(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct model m[4];

	m[0] = model_new(s, "cut1");
	model_fill(s, &m[0], 0, PAGE + 1, 1);
	model_truncate(s, &m[0], 1);
	model_check(s, &m[0], 0);
	m[1] = model_new(s, "cut100");
	model_fill(s, &m[1], 0, 3 * PAGE, 2);
	model_truncate(s, &m[1], 100);
	model_check(s, &m[1], 0);
	model_fill(s, &m[1], 50, 20, 3);
	model_check(s, &m[1], 0);
	m[2] = model_new(s, "cut0");
	model_fill(s, &m[2], 0, 2 * PAGE + 9, 4);
	model_truncate(s, &m[2], 0);
	model_check(s, &m[2], 0);
	model_fill(s, &m[2], 0, 10, 5);
	model_check(s, &m[2], 0);
	m[3] = model_new(s, "direct"); /* one direct page, then holes */
	model_fill(s, &m[3], 0, PAGE, 6);
	model_check(s, &m[3], 0);
	model_truncate(s, &m[3], 5 * PAGE + 1);
	model_check(s, &m[3], 0);
	model_truncate(s, &m[3], 7 * PAGE);
	model_check(s, &m[3], 0);
	commit_reopen_check(ctx, m, 4);
	model_fill(ctx->s, &m[3], 3 * PAGE + 5, 1, 7); /* a page table now */
	model_check(ctx->s, &m[3], 0);
	commit_reopen_check(ctx, m, 4);
	models_free(m, 4);
}

/* Holes at the start, in the middle, at the end, many of them. */
static void test_sparse(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct model m[7];

	m[0] = model_new(s, "start");
	model_fill(s, &m[0], 3 * PAGE + 100, 5000, 10);
	m[1] = model_new(s, "start-aligned");
	model_fill(s, &m[1], 2 * PAGE, PAGE, 11);
	m[2] = model_new(s, "middle");
	model_fill(s, &m[2], 0, 2 * PAGE + 7, 12);
	model_fill(s, &m[2], 2 * MiB + 5, 9000, 13);
	m[3] = model_new(s, "end");
	model_fill(s, &m[3], 0, 3000, 14);
	model_truncate(s, &m[3], 9 * PAGE + 17);
	m[4] = model_new(s, "end-aligned");
	model_fill(s, &m[4], 0, PAGE + 1, 15);
	model_truncate(s, &m[4], 16 * PAGE);
	m[5] = model_new(s, "every-third");
	for (uint64_t p = 0; p < 300; p += 3)
		model_fill(s, &m[5], p * PAGE + p, 100, 16 + p);
	model_truncate(s, &m[5], 301 * PAGE + 2000);
	m[6] = model_new(s, "all-hole");
	model_truncate(s, &m[6], 64 * PAGE);
	models_check(s, m, 7, 0);
	commit_reopen_check(ctx, m, 7);
	models_free(m, 7);
}

/* A hole is zero pages: the same bytes as written zeros hash the same. */
static void test_hole_is_zero_pages(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char *zeros = calloc(1, 5 * PAGE);
	uint64_t holes = tu_mk(s, POG_ROOT_INO, "holes", POG_STRING);
	uint64_t written = tu_mk(s, POG_ROOT_INO, "written", POG_STRING);
	uint32_t h1, h2;

	assert_non_null(zeros);
	tu_write(s, holes, 5 * PAGE, "end", 3);
	tu_write(s, written, 0, zeros, 5 * PAGE);
	tu_write(s, written, 5 * PAGE, "end", 3);
	assert_ok(pog_hash(s, holes, &h1));
	assert_ok(pog_hash(s, written, &h2));
	assert_int_equal(h1, h2);
	check_hash(s, holes);
	free(zeros);
}

/* A hole of 1 GiB, before a few bytes and as a whole file. */
static void test_huge_hole(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t tail = tu_mk(s, POG_ROOT_INO, "tail", POG_STRING);
	uint64_t empty = tu_mk(s, POG_ROOT_INO, "empty", POG_STRING);
	struct pog_attr attr;

	tu_write(s, tail, GiB + 7, "0123456789", 10);
	memset(&attr, 0, sizeof(attr));
	attr.size = GiB;
	assert_ok(pog_setattr(s, empty, &attr, POG_SET_SIZE, NULL));
	check_hash(s, tail);
	check_hash(s, empty);
	tu_commit_check(s, "huge holes");
	check_hash(s, tail | POG_COMMITTED_BIT);
}

/* Overwrites in the middle of a committed big file, then truncates. */
static void test_overwrite_and_truncate(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char zeros[PAGE] = {0};
	struct model m = model_new(s, "big");

	model_fill(s, &m, 0, 3 * MiB + 5, 20);
	tu_commit_check(s, "big");
	model_check(s, &m, 0); /* hashed (and cached) before each change */
	model_fill(s, &m, MiB + 4000, 300, 21); /* across a page boundary */
	model_check(s, &m, 0);
	model_write(s, &m, 2 * MiB, "!", 1);
	model_check(s, &m, 0);
	check_hash(s, m.ino | POG_COMMITTED_BIT); /* the old bytes */
	model_write(s, &m, 2 * PAGE, zeros, PAGE); /* a present zero page */
	model_check(s, &m, 0);
	model_truncate(s, &m, 2 * MiB + 1); /* the tail of a page zeroed */
	model_check(s, &m, 0);
	model_truncate(s, &m, MiB); /* on a page boundary */
	model_check(s, &m, 0);
	model_truncate(s, &m, MiB + 10 * PAGE + 3); /* grown: a hole */
	model_check(s, &m, 0);
	model_fill(s, &m, MiB + 5 * PAGE + 1, 2, 22); /* into the hole */
	model_check(s, &m, 0);
	model_truncate(s, &m, MiB - 1);
	model_check(s, &m, 0);
	commit_reopen_check(ctx, &m, 1);
	models_free(&m, 1);
}

/* Symlinks hash their text the same way, tag "y". */
static void test_symlink(void **state)
{
	struct tu_ctx *ctx = *state;
	static const size_t lens[] = {1, 200, PAGE - 1};
	char text[PAGE], back[PAGE], name[16];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct pog_new spec = {.type = POG_SYMLINK, .mode = 0777};
		struct pog_attr attr;
		uLong want = crc32(0, (const Bytef *)"y", 1);
		uint32_t got;

		memset(text, 'a' + (int)i, lens[i]);
		text[lens[i]] = '\0';
		spec.text = text;
		snprintf(name, sizeof(name), "l%zu", i);
		assert_ok(pog_mknode(ctx->s, POG_ROOT_INO, name, strlen(name),
				     &spec, &attr));
		want = crc32(want, (const Bytef *)text, (uInt)lens[i]);
		assert_ok(pog_hash(ctx->s, attr.ino, &got));
		assert_int_equal(got, (uint32_t)want);
		assert_rc(pog_readlink(ctx->s, attr.ino, back, sizeof(back)),
			  lens[i]);
		assert_memory_equal(back, text, lens[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, tu_state_teardown)
		T(test_sizes),
		T(test_paged_small_and_direct),
		T(test_sparse),
		T(test_hole_is_zero_pages),
		T(test_huge_hole),
		T(test_overwrite_and_truncate),
		T(test_symlink),
#undef T
	};

	return cmocka_run_group_tests_name("hashpages", tests, NULL, NULL);
}
