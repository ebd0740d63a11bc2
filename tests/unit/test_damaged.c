/* test_damaged.c - a pool whose metadata is damaged where libpmemobj would
 * crash or hang is refused (POG_EDAMAGED, with a reason), before it is
 * mapped. (tests/mount/test_damaged_pool.py tries random damage.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#define POOL_SIZE (32ULL << 20)

struct layout {
	uint64_t lanes, heap, root, zone, chunk_hdrs, chunks, segtab, commit;
};

static uint64_t read64(int fd, uint64_t off)
{
	uint64_t v;
	assert_int_equal(pread(fd, &v, 8, (off_t)off), 8);
	return v;
}

static void write_at(int fd, uint64_t off, const void *p, size_t n)
{
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
}

static void write64(int fd, uint64_t off, uint64_t v)
{
	write_at(fd, off, &v, 8);
}

/* Where things are, read the way libpmemobj and pogfs find them. */
static struct layout find(int fd)
{
	struct layout l;
	l.lanes = read64(fd, 4096 + 1024);
	l.heap = read64(fd, 4096 + 1024 + 16);
	l.root = read64(fd, 4096 + 2048);
	l.zone = l.heap + 1024;
	l.chunk_hdrs = l.zone + 64;
	l.chunks = l.chunk_hdrs + 8ull * 65528;
	l.segtab = read64(fd, l.root + 56);
	uint64_t bno = read64(fd, l.root + 64);
	uint64_t base = read64(fd, l.segtab + (bno / 2048) * 24 + 16);
	l.commit = base + (bno % 2048) * 4096;
	return l;
}

/* One way to damage a pool, and what the reason must mention. */
struct damage {
	const char *name;
	void (*apply)(int fd, const struct layout *l);
	const char *reason;
};

static void chunk_of_size_zero(int fd, const struct layout *l)
{
	/* chunk 1 (the first segment, a used chunk): size 0 loops forever
	 * in libpmemobj's heap check */
	uint32_t zero = 0;
	write_at(fd, l->chunk_hdrs + 8 + 4, &zero, 4);
}

static void zone_too_big(int fd, const struct layout *l)
{
	uint32_t huge = 0xfffffff0u; /* reads past the mapping */
	write_at(fd, l->zone + 4, &huge, 4);
}

static void run_of_zero_blocks(int fd, const struct layout *l)
{
	write64(fd, l->chunks, 0); /* chunk 0 is a run: SIGFPE */
}

static void undo_entry_too_long(int fd, const struct layout *l)
{
	/* lane 5's undo log: a buffer entry of 2^40 bytes, whose checksum
	 * libpmemobj computes over them (SIGSEGV) */
	uint64_t undo = l->lanes + 5 * 3072 + 960;
	write64(fd, undo + 64, (5ull << 61) | 4096);
	write64(fd, undo + 64 + 16, 1ull << 40);
}

static void undo_entry_unknown(int fd, const struct layout *l)
{
	/* an entry kind libpmemobj's ulog_entry_size answers 0 for: a walk
	 * that never advances */
	uint64_t undo = l->lanes + 7 * 3072 + 960;
	write64(fd, undo + 64, (3ull << 61) | 4096);
}

static void redo_next_wild(int fd, const struct layout *l)
{
	write64(fd, l->lanes + 9 * 3072 + 256 + 8, 12345);
}

static void root_outside(int fd, const struct layout *l)
{
	(void)l;
	write64(fd, 4096 + 2048, POOL_SIZE - 64); /* root_offset */
}

static void heap_size_wrong(int fd, const struct layout *l)
{
	(void)l;
	write64(fd, 4096 + 2048 + 32, POOL_SIZE); /* more than the heap has */
}

static void header_byte(int fd, const struct layout *l)
{
	(void)l;
	unsigned char b = 0x5a;
	write_at(fd, 40, &b, 1); /* in the pool's uuid */
}

static void segment_base_wild(int fd, const struct layout *l)
{
	write64(fd, l->segtab + 16, 1ull << 40);
}

static void segment_table_wild(int fd, const struct layout *l)
{
	write64(fd, l->root + 56, POOL_SIZE - 8);
}

static void commit_record_byte(int fd, const struct layout *l)
{
	unsigned char b = 0x77;
	write_at(fd, l->commit + 8, &b, 1);
}

static const struct damage damages[] = {
	{"chunk of size 0", chunk_of_size_zero, "chunk 1"},
	{"zone size past the zone", zone_too_big, "zone 0"},
	{"run of 0-byte blocks", run_of_zero_blocks, "run"},
	{"undo entry past the file", undo_entry_too_long, "lane 5 undo log"},
	{"undo entry of unknown kind", undo_entry_unknown, "lane 7 undo log"},
	{"redo log extension off the heap", redo_next_wild, "lane 9 redo log"},
	{"root object outside the heap", root_outside, "root object"},
	{"heap size larger than the file", heap_size_wrong, "heap size"},
	{"pool header byte", header_byte, "pool header checksum"},
	{"segment outside the file", segment_base_wild, "segment 0"},
	{"segment table outside the file", segment_table_wild, "segment table"},
	{"commit record byte", commit_record_byte, "commit record"},
};

static void test_targeted_damage_is_refused(void **state)
{
	struct tu_ctx *ctx = *state;
	/* a pool with something in it, closed cleanly */
	pog_store *s = ctx->s;
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	tu_mkfile(s, d, "f", "content\n", 8);
	tu_commit_check(s, "base");
	pog_close(s, POG_CLOSE_NOGC);
	ctx->s = NULL;

	static unsigned char pristine[POOL_SIZE];
	int fd = open(ctx->pool, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, pristine, sizeof(pristine), 0),
			 (ssize_t)sizeof(pristine));
	struct layout l = find(fd);
	char why[256];
	assert_ok(pog_check_pool_file(ctx->pool, why, sizeof(why)));

	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		damages[i].apply(fd, &l);
		int rc = pog_check_pool_file(ctx->pool, why, sizeof(why));
		if (rc != POG_EDAMAGED || !strstr(why, damages[i].reason))
			fail_msg("%s: %d (%s) \"%s\", expected a reason naming "
				 "\"%s\"", damages[i].name, rc, pog_strerror(rc),
				 why, damages[i].reason);
		pog_store *t = NULL;
		assert_rc(pog_open(ctx->pool, 0, &t), POG_EDAMAGED);
		assert_null(t);
		/* back as it was: it opens again */
		write_at(fd, 0, pristine, sizeof(pristine));
		assert_ok(pog_check_pool_file(ctx->pool, why, sizeof(why)));
	}
	close(fd);
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	assert_int_equal(tu_lookup(ctx->s, POG_ROOT_INO, "d"), d);
}

/* Short files and files that are not pools are told apart from damage. */
static void test_not_a_pool(void **state)
{
	struct tu_ctx *ctx = *state;
	char *path = tu_join(ctx->dir, "junk");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	char why[256];
	assert_rc(pog_check_pool_file(path, why, sizeof(why)), POG_ENOTPOOL);
	write_at(fd, 0, "PMEMOBJ", 8); /* a signature and nothing else */
	assert_rc(pog_check_pool_file(path, why, sizeof(why)), POG_ENOTPOOL);
	close(fd);
	unlink(path);
	free(path);
}

static int setup(void **state)
{
	return tu_state_setup(state, TU_SHM_BASE, POOL_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targeted_damage_is_refused),
		cmocka_unit_test(test_not_a_pool),
	};
	return cmocka_run_group_tests_name("damaged", tests, setup,
					   tu_state_teardown);
}
