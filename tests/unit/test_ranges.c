/* test_ranges.c - fallocate (punch, zero range, extend), SEEK_DATA/SEEK_HOLE and copy ranges. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_SIZE ((uint64_t)256 << 20)
#define PAGE 4096u
#define KEEP POG_FALLOC_KEEP_SIZE
#define PUNCH (POG_FALLOC_PUNCH_HOLE | POG_FALLOC_KEEP_SIZE)
#define ZERO POG_FALLOC_ZERO_RANGE

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static struct pog_attr attr_of(pog_store *s, uint64_t ino)
{
	struct pog_attr a;

	assert_ok(pog_getattr(s, ino, &a));
	return a;
}

static void set_size(pog_store *s, uint64_t ino, uint64_t size)
{
	struct pog_attr a;

	memset(&a, 0, sizeof(a));
	a.size = size;
	assert_ok(pog_setattr(s, ino, &a, POG_SET_SIZE, NULL));
}

/* SEEK_DATA or SEEK_HOLE from off must give want (or the error want < 0). */
static void assert_seek(pog_store *s, uint64_t ino, uint64_t off, int whence,
			long long want)
{
	uint64_t at = 0;
	int rc = pog_seek(s, ino, off, whence, &at);

	if (want < 0) {
		if (rc != want)
			fail_msg("seek %s from %llu: %d (%s), expected %s",
				 whence == POG_SEEK_DATA ? "data" : "hole",
				 (unsigned long long)off, rc, tu_err(rc),
				 tu_err(want));
		return;
	}
	if (rc != 0 || at != (uint64_t)want)
		fail_msg("seek %s from %llu: rc %d (%s), at %llu, expected %lld",
			 whence == POG_SEEK_DATA ? "data" : "hole",
			 (unsigned long long)off, rc, tu_err(rc),
			 (unsigned long long)at, want);
}

/* A punched range reads as zeros; whole pages go (blocks drop), the
 * size stays; the same after commit and reopen. */
static void test_punch(void **state)
{
	struct tu_ctx *ctx = *state;
	size_t len = 5 * PAGE;
	char *data = malloc(len);
	uint64_t f, blocks;

	tu_fill_random(data, len, 1);
	f = tu_mkfile(ctx->s, POG_ROOT_INO, "f", data, len);
	tu_commit_check(ctx->s, "f");
	blocks = attr_of(ctx->s, f).blocks;
	/* [100, 3 pages + 150): page 0 in part, 1 and 2 whole, 3 in part */
	assert_ok(pog_fallocate(ctx->s, f, PUNCH, 100, 3 * PAGE + 50));
	memset(data + 100, 0, 3 * PAGE + 50);
	tu_assert_content(ctx->s, f, data, len);
	assert_int_equal(attr_of(ctx->s, f).size, len);
	assert_int_equal(attr_of(ctx->s, f).blocks, blocks - 2 * (PAGE / 512));
	assert_seek(ctx->s, f, 0, POG_SEEK_HOLE, PAGE);
	assert_seek(ctx->s, f, PAGE, POG_SEEK_DATA, 3 * PAGE);
	assert_seek(ctx->s, f, PAGE + 7, POG_SEEK_HOLE, PAGE + 7);
	/* the committed view still has every page */
	assert_seek(ctx->s, f | POG_COMMITTED_BIT, 0, POG_SEEK_HOLE, len);
	/* a punch past the end changes nothing and stages nothing more */
	uint64_t staged = pog_staged_count(ctx->s);
	assert_ok(pog_fallocate(ctx->s, f, PUNCH, len, 10 * PAGE));
	assert_int_equal(pog_staged_count(ctx->s), staged);
	tu_commit_check(ctx->s, "punched");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, f, data, len);
	assert_seek(ctx->s, f, PAGE, POG_SEEK_DATA, 3 * PAGE);
	/* punching everything leaves a file of holes */
	assert_ok(pog_fallocate(ctx->s, f, PUNCH, 0, len));
	memset(data, 0, len);
	tu_assert_content(ctx->s, f, data, len);
	assert_int_equal(attr_of(ctx->s, f).blocks, 0);
	assert_seek(ctx->s, f, 0, POG_SEEK_DATA, -ENXIO);
	assert_seek(ctx->s, f, 0, POG_SEEK_HOLE, 0);
	/* and writing into it again works */
	tu_write(ctx->s, f, PAGE + 10, "xyz", 3);
	memcpy(data + PAGE + 10, "xyz", 3);
	tu_assert_content(ctx->s, f, data, len);
	assert_seek(ctx->s, f, 0, POG_SEEK_DATA, PAGE);
	tu_commit_check(ctx->s, "refilled");
	free(data);
}

/* Zero range: as a punch, and without KEEP_SIZE it extends the file. */
static void test_zero_range(void **state)
{
	struct tu_ctx *ctx = *state;
	size_t len = 3 * PAGE + 100;
	char *data = calloc(1, 8 * PAGE);
	uint64_t f;

	tu_fill_random(data, len, 2);
	f = tu_mkfile(ctx->s, POG_ROOT_INO, "z", data, len);
	assert_ok(pog_fallocate(ctx->s, f, ZERO | KEEP, 2 * PAGE + 5,
				4 * PAGE));
	memset(data + 2 * PAGE + 5, 0, len - (2 * PAGE + 5));
	tu_assert_content(ctx->s, f, data, len);
	assert_ok(pog_fallocate(ctx->s, f, ZERO, PAGE, 5 * PAGE));
	memset(data + PAGE, 0, 5 * PAGE);
	tu_assert_content(ctx->s, f, data, 6 * PAGE);
	assert_seek(ctx->s, f, 0, POG_SEEK_HOLE, PAGE);
	assert_seek(ctx->s, f, PAGE, POG_SEEK_DATA, -ENXIO);
	tu_commit_check(ctx->s, "zeroed");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, f, data, 6 * PAGE);
	free(data);
}

/* Mode 0 extends with a hole; KEEP_SIZE alone changes nothing. */
static void test_extend(void **state)
{
	struct tu_ctx *ctx = *state;
	char *zeros = calloc(1, 3 * PAGE);
	uint64_t f = tu_mkfile(ctx->s, POG_ROOT_INO, "e", "hi", 2);
	uint64_t g = tu_mkfile(ctx->s, POG_ROOT_INO, "k", "keep", 4);
	tu_commit_check(ctx->s, "e");

	assert_ok(pog_fallocate(ctx->s, f, 0, PAGE, 2 * PAGE));
	memcpy(zeros, "hi", 2);
	tu_assert_content(ctx->s, f, zeros, 3 * PAGE);
	/* within the size: nothing changes */
	assert_ok(pog_fallocate(ctx->s, f, 0, 0, PAGE));
	assert_int_equal(attr_of(ctx->s, f).size, 3 * PAGE);
	assert_int_equal(pog_staged_count(ctx->s), 1);
	/* KEEP_SIZE past the end: nothing staged */
	assert_ok(pog_fallocate(ctx->s, g, KEEP, 0, 100 * PAGE));
	assert_int_equal(attr_of(ctx->s, g).size, 4);
	assert_int_equal(pog_staged_count(ctx->s), 1);
	/* a range no write could ever fill: ENOSPC, nothing changes */
	assert_rc(pog_fallocate(ctx->s, g, 0, 0, (uint64_t)1 << 40), -ENOSPC);
	assert_rc(pog_fallocate(ctx->s, g, KEEP, PAGE, (uint64_t)1 << 40),
		  -ENOSPC);
	assert_int_equal(attr_of(ctx->s, g).size, 4);
	tu_commit_check(ctx->s, "extended");
	tu_assert_content(ctx->s, f, zeros, 3 * PAGE);
	tu_assert_content(ctx->s, g, "keep", 4);
	free(zeros);
}

/* Modes and arguments the kernel would refuse, refused the same way. */
static void test_refused(void **state)
{
	struct tu_ctx *ctx = *state;
	uint64_t f = tu_mkfile(ctx->s, POG_ROOT_INO, "r", "abc", 3);
	uint64_t d = tu_mk(ctx->s, POG_ROOT_INO, "dir", POG_MAP);
	tu_commit_check(ctx->s, "r");

	assert_rc(pog_fallocate(ctx->s, f, POG_FALLOC_PUNCH_HOLE, 0, 1),
		  -EOPNOTSUPP);
	assert_rc(pog_fallocate(ctx->s, f, PUNCH | ZERO, 0, 1), -EOPNOTSUPP);
	assert_rc(pog_fallocate(ctx->s, f, 0x08 /* collapse */, 0, PAGE),
		  -EOPNOTSUPP);
	assert_rc(pog_fallocate(ctx->s, f, 0x20 /* insert */, 0, PAGE),
		  -EOPNOTSUPP);
	assert_rc(pog_fallocate(ctx->s, f, 0, 0, 0), -EINVAL);
	assert_rc(pog_fallocate(ctx->s, f, 0, POG_FILE_MAX, 1), -EFBIG);
	assert_rc(pog_fallocate(ctx->s, d, 0, 0, 1), -EISDIR);
	assert_rc(pog_fallocate(ctx->s, f | POG_COMMITTED_BIT, 0, 0, 10),
		  -EROFS);
	assert_rc(pog_seek(ctx->s, d, 0, POG_SEEK_DATA, &(uint64_t){0}),
		  -EISDIR);
	assert_rc(pog_seek(ctx->s, f, 0, 0, &(uint64_t){0}), -EINVAL);
	assert_int_equal(pog_staged_count(ctx->s), 0);
	tu_assert_content(ctx->s, f, "abc", 3);
}

/* A typed scalar keeps parseable text: zeros are not, so only a change
 * of nothing is allowed, and a refusal says why and keeps the value. */
static void test_scalar(void **state)
{
	struct tu_ctx *ctx = *state;
	struct pog_status st;
	uint64_t n = tu_mkfile(ctx->s, POG_ROOT_INO, "n", "42\n", 3);
	assert_ok(pog_set_type(ctx->s, n, POG_INT));
	tu_commit_check(ctx->s, "n");

	assert_rc(pog_fallocate(ctx->s, n, 0, 0, 10), -EINVAL);
	assert_ok(pog_status(ctx->s, &st));
	assert_non_null(strstr(st.last_error, "int"));
	assert_rc(pog_fallocate(ctx->s, n, PUNCH, 0, 1), -EINVAL);
	assert_rc(pog_fallocate(ctx->s, n, ZERO | KEEP, 1, 1), -EINVAL);
	assert_rc(pog_fallocate(ctx->s, n, ZERO, 3, 1), -EINVAL);
	assert_ok(pog_fallocate(ctx->s, n, KEEP, 0, 100));
	assert_ok(pog_fallocate(ctx->s, n, PUNCH, 3, 100));
	assert_ok(pog_fallocate(ctx->s, n, 0, 0, 3));
	assert_int_equal(pog_staged_count(ctx->s), 0);
	tu_assert_content(ctx->s, n, "42\n", 3);
	assert_seek(ctx->s, n, 1, POG_SEEK_DATA, 1);
	assert_seek(ctx->s, n, 1, POG_SEEK_HOLE, 3);
	/* copying text that parses into it works; other text does not */
	uint64_t src = tu_mkfile(ctx->s, POG_ROOT_INO, "src", "77\nzz", 5);
	assert_rc(pog_copy_range(ctx->s, src, 0, n, 0, 3), 3);
	tu_assert_content(ctx->s, n, "77\n", 3);
	assert_rc(pog_copy_range(ctx->s, src, 3, n, 0, 2), -EINVAL);
	tu_assert_content(ctx->s, n, "77\n", 3);
	tu_commit_check(ctx->s, "copied");
}

/* SEEK_DATA / SEEK_HOLE by page over holes, inline files, the end. */
static void test_seek(void **state)
{
	struct tu_ctx *ctx = *state;
	char page[PAGE];
	uint64_t f = tu_mkfile(ctx->s, POG_ROOT_INO, "sparse", NULL, 0);
	uint64_t small = tu_mkfile(ctx->s, POG_ROOT_INO, "small", "tiny", 4);
	uint64_t empty = tu_mkfile(ctx->s, POG_ROOT_INO, "empty", NULL, 0);
	uint64_t one = tu_mkfile(ctx->s, POG_ROOT_INO, "one", NULL, 0);

	memset(page, 'p', sizeof(page));
	set_size(ctx->s, f, 10 * PAGE);
	tu_write(ctx->s, f, 2 * PAGE, page, PAGE);
	tu_write(ctx->s, f, 5 * PAGE + 100, page, 10);
	for (int round = 0; round < 2; round++) {
		assert_seek(ctx->s, f, 0, POG_SEEK_DATA, 2 * PAGE);
		assert_seek(ctx->s, f, 0, POG_SEEK_HOLE, 0);
		assert_seek(ctx->s, f, 2 * PAGE + 1, POG_SEEK_DATA, 2 * PAGE + 1);
		assert_seek(ctx->s, f, 2 * PAGE, POG_SEEK_HOLE, 3 * PAGE);
		assert_seek(ctx->s, f, 3 * PAGE, POG_SEEK_DATA, 5 * PAGE);
		assert_seek(ctx->s, f, 5 * PAGE, POG_SEEK_HOLE, 6 * PAGE);
		assert_seek(ctx->s, f, 6 * PAGE, POG_SEEK_DATA, -ENXIO);
		assert_seek(ctx->s, f, 10 * PAGE - 1, POG_SEEK_HOLE,
			    10 * PAGE - 1);
		assert_seek(ctx->s, f, 10 * PAGE, POG_SEEK_HOLE, -ENXIO);
		assert_seek(ctx->s, f, 10 * PAGE, POG_SEEK_DATA, -ENXIO);
		assert_seek(ctx->s, small, 0, POG_SEEK_DATA, 0);
		assert_seek(ctx->s, small, 2, POG_SEEK_HOLE, 4);
		assert_seek(ctx->s, small, 4, POG_SEEK_DATA, -ENXIO);
		assert_seek(ctx->s, empty, 0, POG_SEEK_HOLE, -ENXIO);
		tu_commit_check(ctx->s, "sparse");
		tu_reopen(ctx);
	}
	/* one page (held directly by the record), then a hole after it */
	tu_write(ctx->s, one, 0, page, PAGE);
	set_size(ctx->s, one, 3 * PAGE);
	assert_seek(ctx->s, one, 0, POG_SEEK_HOLE, PAGE);
	assert_seek(ctx->s, one, PAGE, POG_SEEK_DATA, -ENXIO);
	assert_seek(ctx->s, one, 10, POG_SEEK_DATA, 10);
	/* the last page, partly past the end, is data up to the end */
	set_size(ctx->s, one, PAGE / 2);
	assert_seek(ctx->s, one, 0, POG_SEEK_HOLE, PAGE / 2);
}

/* copy_file_range: between files, into the middle, past the end, from
 * the committed view; overlapping ranges of one file refused. */
static void test_copy(void **state)
{
	struct tu_ctx *ctx = *state;
	size_t len = 3 * PAGE + 333;
	char *data = malloc(len), *want = calloc(1, 8 * PAGE);
	uint64_t a, b;

	tu_fill_random(data, len, 3);
	a = tu_mkfile(ctx->s, POG_ROOT_INO, "a", data, len);
	b = tu_mkfile(ctx->s, POG_ROOT_INO, "b", "0123456789", 10);
	tu_commit_check(ctx->s, "a b");
	/* the middle of a into b at 5: b grows */
	assert_rc(pog_copy_range(ctx->s, a, 100, b, 5, PAGE), PAGE);
	memcpy(want, "01234", 5);
	memcpy(want + 5, data + 100, PAGE);
	tu_assert_content(ctx->s, b, want, PAGE + 5);
	/* past the end of a: short, then 0 */
	assert_rc(pog_copy_range(ctx->s, a, len - 10, b, 0, 1000), 10);
	memcpy(want, data + len - 10, 10);
	tu_assert_content(ctx->s, b, want, PAGE + 5);
	assert_rc(pog_copy_range(ctx->s, a, len, b, 0, 1000), 0);
	/* to a place past b's end: a hole before it */
	assert_rc(pog_copy_range(ctx->s, a, 0, b, 6 * PAGE, 50), 50);
	memset(want + PAGE + 5, 0, 6 * PAGE - (PAGE + 5));
	memcpy(want + 6 * PAGE, data, 50);
	tu_assert_content(ctx->s, b, want, 6 * PAGE + 50);
	/* the committed b (10 bytes) into the staged a */
	assert_rc(pog_copy_range(ctx->s, b | POG_COMMITTED_BIT, 0, a, 0, 100),
		  10);
	memcpy(data, "0123456789", 10);
	tu_assert_content(ctx->s, a, data, len);
	/* within one file: apart is fine, overlapping is not */
	assert_rc(pog_copy_range(ctx->s, a, 0, a, 2 * PAGE, 100), 100);
	memcpy(data + 2 * PAGE, data, 100);
	tu_assert_content(ctx->s, a, data, len);
	assert_rc(pog_copy_range(ctx->s, a, 0, a, 50, 100), -EINVAL);
	assert_rc(pog_copy_range(ctx->s, a, 0, b | POG_COMMITTED_BIT, 0, 1),
		  -EROFS);
	tu_commit_check(ctx->s, "copies");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, a, data, len);
	tu_assert_content(ctx->s, b, want, 6 * PAGE + 50);
	free(data);
	free(want);
}

/* Flip a byte of the one page holding marker in the pool file. */
static void flip_page(const char *pool, const char *marker)
{
	int fd = open(pool, O_RDWR);
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)size), *p;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
	p = memmem(buf, (size_t)size, marker, strlen(marker));
	assert_non_null(p);
	char c = (char)(p[100] ^ 0x40);
	assert_int_equal(pwrite(fd, &c, 1, (p - buf) + 100), 1);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
}

/* Punching a damaged page needs none of its bytes: it repairs the file
 * (zeroing part of it cannot: that needs the rest of the page). */
static void test_punch_damaged(void **state)
{
	struct tu_ctx *ctx = *state;
	char *data = malloc(3 * PAGE);
	char got[PAGE];
	uint64_t f;

	tu_fill_random(data, 3 * PAGE, 4);
	memcpy(data + PAGE, "MARKER-of-page-one", 18);
	f = tu_mkfile(ctx->s, POG_ROOT_INO, "d", data, 3 * PAGE);
	tu_commit_check(ctx->s, "d");
	assert_true(pog_close(ctx->s, POG_CLOSE_NOGC) >= 0);
	ctx->s = NULL;
	flip_page(ctx->pool, "MARKER-of-page-one");
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_rc(pog_read(ctx->s, f, PAGE, got, PAGE), POG_ECORRUPT);
	assert_rc(pog_fallocate(ctx->s, f, PUNCH, PAGE + 10, 10), POG_ECORRUPT);
	assert_rc(pog_fallocate(ctx->s, f, ZERO | KEEP, PAGE + 10, 10),
		  POG_ECORRUPT);
	assert_ok(pog_fallocate(ctx->s, f, PUNCH, PAGE, PAGE));
	memset(data + PAGE, 0, PAGE);
	tu_assert_content(ctx->s, f, data, 3 * PAGE);
	tu_commit_check(ctx->s, "repaired");
	free(data);
}

/* A file grown by truncate (a hole, no page) that then takes a small
 * write is kept inline: the bytes it never wrote read as zeros. */
static void test_grown_then_inline(void **state)
{
	struct tu_ctx *ctx = *state;
	char want[100] = {0};
	uint64_t f = tu_mkfile(ctx->s, POG_ROOT_INO, "g", NULL, 0);

	set_size(ctx->s, f, 100);
	tu_write(ctx->s, f, 10, "x", 1);
	want[10] = 'x';
	tu_assert_content(ctx->s, f, want, 100);
	/* the same after a punch took its only page */
	uint64_t h = tu_mkfile(ctx->s, POG_ROOT_INO, "h", NULL, 0);
	char page[PAGE];
	memset(page, 'q', PAGE);
	tu_write(ctx->s, h, 0, page, PAGE);
	set_size(ctx->s, h, 100);
	assert_ok(pog_fallocate(ctx->s, h, PUNCH, 0, 100));
	tu_write(ctx->s, h, 20, "y", 1);
	memset(want, 0, sizeof(want));
	want[20] = 'y';
	tu_assert_content(ctx->s, h, want, 100);
	tu_commit_check(ctx->s, "inline");
}

/*
 * Random operations on a few files against a model in memory: content
 * and size equal after every step; SEEK_HOLE and SEEK_DATA answers are
 * consistent with the content (a hole reads as zeros, data follows a
 * SEEK_DATA answer); commits and reopens between.
 */
#define RFILES 3
#define RMAX (24 * PAGE)

struct model {
	char *bytes;
	uint64_t size;
};

static uint64_t pick(uint64_t *rng, uint64_t n)
{
	return n ? tu_rand64(rng) % n : 0;
}

/* An offset near page boundaries and small sizes more often than not. */
static uint64_t pick_off(uint64_t *rng)
{
	switch (pick(rng, 4)) {
	case 0:
		return pick(rng, 200);
	case 1:
		return pick(rng, RMAX / PAGE) * PAGE;
	case 2:
		return pick(rng, RMAX / PAGE) * PAGE + pick(rng, 9) - 4 + PAGE;
	default:
		return pick(rng, RMAX);
	}
}

static void check_file(pog_store *s, uint64_t ino, const struct model *m)
{
	tu_assert_content(s, ino, m->bytes, m->size);
	for (uint64_t off = 0; off < m->size; off += 1 + m->size / 7) {
		uint64_t hole, data;
		assert_ok(pog_seek(s, ino, off, POG_SEEK_HOLE, &hole));
		assert_true(hole >= off && hole <= m->size);
		int rc = pog_seek(s, ino, hole, POG_SEEK_DATA, &data);
		if (hole == m->size) {
			assert_true(rc == -ENXIO);
			continue;
		}
		if (rc == -ENXIO)
			data = m->size;
		else
			assert_ok(rc);
		assert_true(data > hole && data <= m->size);
		for (uint64_t i = hole; i < data; i++)
			if (m->bytes[i])
				fail_msg("byte %llu of a hole [%llu, %llu) is %d",
					 (unsigned long long)i,
					 (unsigned long long)hole,
					 (unsigned long long)data, m->bytes[i]);
	}
}

/* One random operation; returns the file it changed. */
static unsigned random_step(pog_store *s, const uint64_t *ino, struct model *m,
			    uint64_t *rng, char *buf)
{
	unsigned which = (unsigned)pick(rng, RFILES);
	struct model *fm = &m[which];
	uint64_t off = pick_off(rng), len = 1 + pick(rng, 3 * PAGE);
	if (off + len > RMAX)
		len = off < RMAX ? RMAX - off : 0;
	if (!len)
		return which;
	unsigned op = (unsigned)pick(rng, 6);
	if (getenv("POG_TEST_TRACE"))
		print_message("op %u file %u off %llu len %llu size %llu\n", op,
			      which, (unsigned long long)off,
			      (unsigned long long)len,
			      (unsigned long long)fm->size);
	switch (op) {
	case 0: /* write */
		tu_fill_random(buf, len, tu_rand64(rng));
		tu_write(s, ino[which], off, buf, len);
		memcpy(fm->bytes + off, buf, len);
		if (off + len > fm->size)
			fm->size = off + len;
		break;
	case 1: /* truncate */
		set_size(s, ino[which], off);
		if (off < fm->size)
			memset(fm->bytes + off, 0, fm->size - off);
		fm->size = off;
		break;
	case 2: { /* fallocate, any mode */
		static const unsigned modes[] = {0, KEEP, PUNCH, ZERO,
						 ZERO | KEEP};
		unsigned mode = modes[pick(rng, 5)];
		uint64_t end = off + len, zend = end < fm->size ? end : fm->size;
		if (getenv("POG_TEST_TRACE"))
			print_message("  mode %#x\n", mode);
		assert_ok(pog_fallocate(s, ino[which], mode, off, len));
		if ((mode & (ZERO | POG_FALLOC_PUNCH_HOLE)) && off < zend)
			memset(fm->bytes + off, 0, zend - off);
		if (!(mode & KEEP) && end > fm->size)
			fm->size = end;
		break;
	}
	case 3: { /* copy from another file */
		unsigned from = (unsigned)pick(rng, RFILES);
		uint64_t src = pick_off(rng) % (m[from].size + 1), n;
		if (from == which)
			return which;
		if (getenv("POG_TEST_TRACE"))
			print_message("  from %u at %llu\n", from,
				      (unsigned long long)src);
		n = src + len <= m[from].size ? len : m[from].size - src;
		assert_rc(pog_copy_range(s, ino[from], src, ino[which], off,
					 len),
			  n);
		memcpy(fm->bytes + off, m[from].bytes + src, n);
		if (n && off + n > fm->size)
			fm->size = off + n;
		break;
	}
	default: /* punch, the point of this test */
		assert_ok(pog_fallocate(s, ino[which], PUNCH, off, len));
		if (off < fm->size)
			memset(fm->bytes + off, 0,
			       (off + len < fm->size ? off + len : fm->size) - off);
		break;
	}
	return which;
}

static void test_random(void **state)
{
	struct tu_ctx *ctx = *state;
	struct model m[RFILES];
	uint64_t ino[RFILES], rng = 20261130;
	char *buf = malloc(3 * PAGE + 1);
	const char *env = getenv("POG_TEST_SEED");

	if (env)
		rng = strtoull(env, NULL, 0);
	print_message("    seed %llu (POG_TEST_SEED)\n", (unsigned long long)rng);
	for (unsigned i = 0; i < RFILES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "r%u", i);
		ino[i] = tu_mkfile(ctx->s, POG_ROOT_INO, name, NULL, 0);
		m[i].bytes = calloc(1, RMAX + 3 * PAGE);
		m[i].size = 0;
	}
	for (unsigned step = 1; step <= 1500; step++) {
		unsigned changed = random_step(ctx->s, ino, m, &rng, buf);
		check_file(ctx->s, ino[changed], &m[changed]);
		if (getenv("POG_TEST_TRACE"))
			for (unsigned i = 0; i < RFILES; i++)
				check_file(ctx->s, ino[i], &m[i]);
		if (step % 100 == 0) {
			if (getenv("POG_TEST_TRACE"))
				print_message("commit at step %u\n", step);
			tu_commit_check(ctx->s, "random");
		}
		if (step % 500 == 0) {
			tu_reopen(ctx);
			for (unsigned i = 0; i < RFILES; i++)
				check_file(ctx->s, ino[i], &m[i]);
		}
	}
	for (unsigned i = 0; i < RFILES; i++)
		free(m[i].bytes);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_punch, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_zero_range, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_extend, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_scalar, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_seek, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_punch_damaged, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_grown_then_inline, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_random, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
