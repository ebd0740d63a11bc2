/* test_damaged.c - a pool whose metadata is damaged where libpmemobj would
 * crash or hang is refused (POG_EDAMAGED, with a reason), before it is
 * mapped. (tests/mount/test_damaged_pool.py tries random damage.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
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

static void free_footer_wrong(int fd, const struct layout *l)
{
	/* the footer of the free block after the first segment (chunks 34..):
	 * find it from the block's header */
	uint32_t n;
	assert_int_equal(pread(fd, &n, 4, (off_t)(l->chunk_hdrs + 34 * 8 + 4)), 4);
	uint32_t huge = 0x7fffffffu;
	write_at(fd, l->chunk_hdrs + (34 + n - 1) * 8 + 4, &huge, 4);
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
	{"free block footer", free_footer_wrong, "footer"},
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

/* ---- many randomly damaged copies ----------------------------------------- */

#define COPIES (getenv("DAMAGED_COPIES") ? atoi(getenv("DAMAGED_COPIES")) : 1000)
#define COPY_SECONDS 60 /* one copy's open and fsck: more is a hang */

enum outcome {
	OPENED_CLEAN,      /* pog info and pog fsck would answer 0 */
	OPENED_PROBLEMS,   /* fsck finds problems (exit 1) */
	REFUSED_DAMAGED,   /* damaged pool metadata (exit 2) */
	REFUSED_NOTPOOL,   /* not a pogfs pool (exit 2) */
	REFUSED_OTHER,     /* another open error (exit 2) */
	BAD_REASON,        /* a refusal without a one-line reason */
	OUTCOMES
};

static void no_finding(void *ctx, int severity, const char *msgid,
		       uint64_t ino, const char *text)
{
	(void)ctx, (void)severity, (void)msgid, (void)ino, (void)text;
}

/* What `pog info` and `pog fsck` do with the file, in a child process:
 * its exit status is the outcome; a signal or a hang is a failure. */
static int copy_outcome(const char *path)
{
	char why[256];
	pog_store *s = NULL;
	int rc = pog_open(path, POG_OPEN_READONLY, &s);
	if (rc == POG_EDAMAGED) {
		int again = pog_check_pool_file(path, why, sizeof(why));
		bool one_line = why[0] && !strchr(why, '\n');
		return again == POG_EDAMAGED && one_line ? REFUSED_DAMAGED
		     : rc == POG_EDAMAGED && !one_line ? BAD_REASON
							: REFUSED_DAMAGED;
	}
	if (rc == POG_ENOTPOOL)
		return REFUSED_NOTPOOL;
	if (rc < 0) {
		if (getenv("DAMAGED_TRACE"))
			fprintf(stderr, "open: %s\n", pog_strerror(rc));
		return REFUSED_OTHER;
	}
	struct pog_status st;
	struct pog_fsck_result fr;
	int info = pog_status(s, &st);
	int fsck = pog_fsck(s, 0, no_finding, NULL, &fr);
	pog_close(s, POG_CLOSE_NOGC);
	return info == 0 && fsck == 0 ? OPENED_CLEAN : OPENED_PROBLEMS;
}

struct region {
	uint64_t start, end;
	unsigned weight;
};

static void test_random_copies(void **state)
{
	struct tu_ctx *ctx = *state;
	if (ctx->s) {
		pog_close(ctx->s, POG_CLOSE_NOGC);
		ctx->s = NULL;
	}
	/* a pool with a little of everything, two commits, closed cleanly */
	char *path = tu_join(ctx->dir, "random.pool");
	pog_store *s;
	unlink(path);
	assert_ok(pog_create(path, POOL_SIZE, &s));
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	char name[16], big[20000];
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		tu_mkfile(s, d, name, name, strlen(name));
	}
	tu_fill_random(big, sizeof(big), 7);
	tu_mkfile(s, POG_ROOT_INO, "big", big, sizeof(big));
	uint64_t l = tu_mk(s, POG_ROOT_INO, "l", POG_MAP);
	assert_ok(pog_set_type(s, l, POG_LIST));
	tu_mkfile(s, l, "0", "a\n", 2);
	struct pog_new ref = {.type = POG_REF, .mode = 0777, .ref_target = d};
	struct pog_attr a;
	assert_ok(pog_mknode(s, POG_ROOT_INO, "r", 1, &ref, &a));
	tu_commit_check(s, "one");
	tu_mkfile(s, d, "late", "x", 1);
	tu_commit_check(s, "two");
	pog_close(s, POG_CLOSE_NOGC);

	static unsigned char pristine[POOL_SIZE];
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, pristine, sizeof(pristine), 0),
			 (ssize_t)sizeof(pristine));
	struct layout lay = find(fd);
	const struct region regions[] = {
		{0, 8192, 3},                          /* header, descriptor */
		{8192, lay.heap, 3},                   /* lanes' logs */
		{lay.heap, lay.chunks, 2},             /* heap, zone, chunk headers */
		{lay.chunks, lay.chunks + (512 << 10), 1}, /* first runs */
		{0, POOL_SIZE, 1},                     /* anywhere */
	};
	unsigned total_weight = 0;
	for (size_t r = 0; r < 5; r++)
		total_weight += regions[r].weight;

	unsigned counts[OUTCOMES] = {0};
	uint64_t rng = 12345;
	for (int copy = 0; copy < COPIES; copy++) {
		unsigned w = (unsigned)(tu_rand64(&rng) % total_weight);
		size_t r = 0;
		while (w >= regions[r].weight)
			w -= regions[r++].weight;
		int flips = 1 + (int)(tu_rand64(&rng) % 8);
		uint64_t offs[8];
		for (int k = 0; k < flips; k++) {
			uint64_t span = regions[r].end - regions[r].start;
			offs[k] = regions[r].start + tu_rand64(&rng) % span;
			unsigned char b = pristine[offs[k]] ^
					  (unsigned char)(1 + tu_rand64(&rng) % 255);
			write_at(fd, offs[k], &b, 1);
		}
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* cmocka catches these to fail a test: here they must
			 * kill the child, for the parent to see them */
			const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
			for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
				signal(sigs[k], SIG_DFL);
			alarm(COPY_SECONDS);
			_exit(copy_outcome(path));
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFSIGNALED(status))
			fail_msg("copy %d (%d bytes changed from offset %llu): %s",
				 copy, flips, (unsigned long long)offs[0],
				 WTERMSIG(status) == SIGALRM ? "hung"
							     : strsignal(WTERMSIG(status)));
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) < OUTCOMES);
		counts[WEXITSTATUS(status)]++;
		/* back to the pristine pool (opening writes to it too) */
		write_at(fd, 0, pristine, sizeof(pristine));
	}
	close(fd);
	unlink(path);
	free(path);
	print_message("%d damaged copies: %u opened clean, %u fsck problems, "
		      "%u damaged pool metadata, %u not a pool, %u other, "
		      "%u without a reason\n", COPIES, counts[OPENED_CLEAN],
		      counts[OPENED_PROBLEMS], counts[REFUSED_DAMAGED],
		      counts[REFUSED_NOTPOOL], counts[REFUSED_OTHER],
		      counts[BAD_REASON]);
	assert_int_equal(counts[BAD_REASON], 0);
	assert_true(counts[REFUSED_DAMAGED] > 0 && counts[OPENED_CLEAN] > 0);
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
		cmocka_unit_test(test_random_copies),
	};
	return cmocka_run_group_tests_name("damaged", tests, setup,
					   tu_state_teardown);
}
