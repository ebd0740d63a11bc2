/* test_manyfiles.c - a commit of thousands of small new files: the fresh
 * blocks leave the page tables before their flush and keep their bytes;
 * the empty-scalar check finds an empty one among them. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store_int.h"

#define POOL_SIZE ((uint64_t)128 << 20)
#define NFILES 3000
#define SMALL 100

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

/* Is the page at p in this process's page tables (/proc/self/pagemap)? */
static int page_present(const void *p)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	off_t at = (off_t)((uintptr_t)p / (uintptr_t)page * sizeof(entry));
	ssize_t n = pread(fd, &entry, sizeof(entry), at);
	close(fd);
	return n == (ssize_t)sizeof(entry) ? (int)(entry >> 63) : -1;
}

/* pog_blocks_unmap drops the mapping of written pages of a shared file
 * mapping and keeps what was written: in the file and in the mapping. */
static void test_unmap_keeps_bytes(void **state)
{
	struct tu_ctx *ctx = *state;
	enum { PAGES = 16, PAGE = 4096 };
	char *path = tu_join(ctx->dir, "mapped");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, PAGES * PAGE), 0);
	char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	assert_true(m != MAP_FAILED);
	char *want = malloc(PAGES * PAGE);
	assert_non_null(want);
	tu_fill_random(want, PAGES * PAGE, 7);
	memcpy(m, want, PAGES * PAGE);
	assert_int_equal(page_present(m + 3 * PAGE), 1);

	pog_blocks_unmap(m + 2 * PAGE, m + 10 * PAGE);
	for (int i = 2; i < 10; i++)
		assert_int_equal(page_present(m + i * PAGE), 0);
	assert_int_equal(page_present(m + 11 * PAGE), 1);
	/* still dirty in the page cache: msync writes it to the file */
	assert_int_equal(msync(m, PAGES * PAGE, MS_SYNC), 0);
	char *back = malloc(PAGES * PAGE);
	assert_non_null(back);
	assert_int_equal(pread(fd, back, PAGES * PAGE, 0), PAGES * PAGE);
	assert_memory_equal(back, want, PAGES * PAGE);
	assert_memory_equal(m, want, PAGES * PAGE); /* mapped again */
	pog_blocks_unmap(m + PAGE, m + PAGE); /* empty: nothing */
	assert_memory_equal(m, want, PAGES * PAGE);
	free(back);
	free(want);
	munmap(m, PAGES * PAGE);
	close(fd);
	unlink(path);
	free(path);
}

static void small_content(char *buf, unsigned i)
{
	for (unsigned j = 0; j < SMALL; j++)
		buf[j] = (char)('a' + (i * 31 + j * 7) % 26);
}

static void assert_files(pog_store *s, uint64_t dir)
{
	char name[32], buf[SMALL];
	for (unsigned i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%05u", i);
		small_content(buf, i);
		tu_assert_content(s, tu_lookup(s, dir, name), buf, SMALL);
	}
}

/* Thousands of small files in one commit (their nodes a long run of
 * fresh blocks, unmapped before the flush): all read back before and
 * after reopening, fsck finds nothing; the next commit builds on them. */
static void test_many_small_files(void **state)
{
	struct tu_ctx *ctx = *state;
	uint64_t dir = tu_mk(ctx->s, POG_ROOT_INO, "many", POG_MAP);
	char name[32], buf[SMALL];
	for (unsigned i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%05u", i);
		small_content(buf, i);
		tu_mkfile(ctx->s, dir, name, buf, SMALL);
	}
	tu_commit_check(ctx->s, "many files");
	assert_files(ctx->s, dir);
	assert_int_equal(tu_count_entries(ctx->s, dir), NFILES);

	/* change some of them: copies of the unmapped nodes */
	for (unsigned i = 0; i < NFILES; i += 97) {
		snprintf(name, sizeof(name), "f%05u", i);
		small_content(buf, i);
		tu_write(ctx->s, tu_lookup(ctx->s, dir, name), 0, buf, SMALL);
	}
	tu_commit_check(ctx->s, "again");
	tu_reopen(ctx);
	dir = tu_lookup(ctx->s, POG_ROOT_INO, "many");
	assert_files(ctx->s, dir);
	tu_assert_fsck_clean(ctx->s);
}

/* An empty typed scalar among many changes (the check then walks the
 * fresh leaves of the object table) still refuses the commit, a new one
 * and a committed one cut to nothing alike. */
static void test_empty_among_many(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "typed", POG_MAP);
	char name[32];
	uint64_t mid = 0;
	for (unsigned i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "n%03u", i);
		uint64_t ino = tu_mkfile(s, dir, name, i == 250 ? "" : "1\n",
					 i == 250 ? 0 : 2);
		assert_ok(pog_set_type(s, ino, POG_INT));
		if (i == 250)
			mid = ino;
	}
	assert_rc(pog_commit(s, NULL, NULL), -EINVAL);
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	assert_non_null(strstr(st.last_error, "typed/n250: an empty int"));
	tu_write(s, mid, 0, "5\n", 2);
	tu_commit_check(s, "filled");

	/* committed ones: many edited, one of them cut to nothing */
	for (unsigned i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "n%03u", i);
		tu_write(s, tu_lookup(s, dir, name), 0, "7\n", 2);
	}
	struct pog_attr want = { .size = 0 }, out;
	assert_ok(pog_setattr(s, tu_lookup(s, dir, "n499"), &want,
			      POG_SET_SIZE, &out));
	assert_rc(pog_commit(s, NULL, NULL), -EINVAL);
	assert_ok(pog_status(s, &st));
	assert_non_null(strstr(st.last_error, "typed/n499: an empty int"));
	assert_ok(pog_remove(s, dir, "n499", 4, 0));
	tu_commit_check(s, "removed");
	assert_int_equal(tu_count_entries(s, dir), 499);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unmap_keeps_bytes),
		cmocka_unit_test(test_many_small_files),
		cmocka_unit_test(test_empty_among_many),
	};
	return cmocka_run_group_tests(tests, setup, tu_state_teardown);
}
