/* test_torn.c - a commit that a crash of the machine cut short: some of
 * the sectors it wrote reached the disk, some did not. The open must find
 * exactly the commit before it or exactly it, never a mix, and the pool
 * must go on working (format.h: the commit slots and a small commit's
 * list). The images are the pool file before and after one commit; a
 * torn pool takes each 512-byte sector from one or the other. */
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
#include <sys/wait.h>
#include <cmocka.h>

#include "testutil.h"

#define POOL_SIZE (32ULL << 20)
#define SECTOR 512u

struct images {
	unsigned char *a, *b;     /* the pool file after commit A, after B */
	size_t *diff, ndiff;      /* sectors that differ */
	size_t slot_sector[2];    /* where the two commit slots lie */
};

struct outcome {
	uint64_t id;
	struct tu_buf doc;
};

static unsigned char *read_file(const char *path)
{
	unsigned char *p = malloc(POOL_SIZE);
	assert_non_null(p);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, p, POOL_SIZE, 0), (ssize_t)POOL_SIZE);
	close(fd);
	return p;
}

static void write_file(const char *path, const unsigned char *p)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, POOL_SIZE, 0), (ssize_t)POOL_SIZE);
	close(fd);
}

/* The pool file as it is (the store's mapping is the page cache). */
static void snapshot(const char *pool, const char *img)
{
	unsigned char *p = read_file(pool);
	write_file(img, p);
	free(p);
}

/* In a child that never closes the store (a crash after each commit):
 * commit A, image a, commit B, image b. B is small (one flush, listed)
 * unless big, when it writes 600 KiB of new data (flushed first, then
 * the commit slot). */
static void child_commits(const char *dir, bool big)
{
	char *pool = tu_join(dir, "p.pool"), *ia = tu_join(dir, "a.img"),
	     *ib = tu_join(dir, "b.img");
	pog_store *s;
	assert_ok(pog_create(pool, POOL_SIZE, &s));
	uint64_t d = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);
	char name[16];
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		tu_mkfile(s, d, name, name, strlen(name));
	}
	static char data[600 << 10];
	tu_fill_random(data, 20000, 1);
	uint64_t f = tu_mkfile(s, POG_ROOT_INO, "data", data, 20000);
	tu_commit_check(s, "A");
	snapshot(pool, ia);

	tu_write(s, tu_lookup(s, d, "f3"), 0, "changed", 7);
	tu_mkfile(s, d, "new", "born", 4);
	tu_write(s, f, 4096, "page two", 8);
	if (big) {
		tu_fill_random(data, sizeof(data), 2);
		tu_mkfile(s, POG_ROOT_INO, "bulk", data, sizeof(data));
	}
	tu_commit_check(s, "B");
	snapshot(pool, ib);
	_exit(0);
}

static uint64_t read64(const unsigned char *p, uint64_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static void make_images(const char *dir, bool big, struct images *im)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_commits(dir, big);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char *ia = tu_join(dir, "a.img"), *ib = tu_join(dir, "b.img");
	im->a = read_file(ia);
	im->b = read_file(ib);
	free(ia);
	free(ib);
	im->diff = malloc(POOL_SIZE / SECTOR * sizeof(size_t));
	assert_non_null(im->diff);
	im->ndiff = 0;
	for (size_t i = 0; i < POOL_SIZE / SECTOR; i++)
		if (memcmp(im->a + i * SECTOR, im->b + i * SECTOR, SECTOR))
			im->diff[im->ndiff++] = i;
	/* libpmemobj's root object (the superblock): its offset is in the
	 * pool descriptor; the slots are its words 8 and 17 */
	uint64_t root = read64(im->b, 4096 + 2048);
	im->slot_sector[0] = (root + 64) / SECTOR;
	im->slot_sector[1] = (root + 136) / SECTOR;
}

static void images_free(struct images *im)
{
	free(im->a);
	free(im->b);
	free(im->diff);
}

/* Open the pool file holding img as after a crash: the commit it holds,
 * fsck clean; then one more commit, a clean close, and it opens again. */
static struct outcome recover(const char *pool, const unsigned char *img)
{
	write_file(pool, img);
	pog_store *s;
	int rc = pog_open(pool, 0, &s);
	if (rc)
		fail_msg("open after the crash: %s", tu_err(rc));
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	struct outcome o = {.id = st.commit_id, .doc = tu_export(s, POG_ROOT_INO)};
	tu_assert_fsck_clean(s);
	tu_mkfile(s, POG_ROOT_INO, "after", "x", 1);
	tu_commit_check(s, "after the crash");
	pog_close(s, 0);
	assert_ok(pog_open(pool, 0, &s));
	tu_assert_fsck_clean(s);
	assert_int_not_equal(tu_lookup(s, POG_ROOT_INO, "after"), 0);
	pog_close(s, 0);
	return o;
}

static bool is_slot(const struct images *im, size_t sector)
{
	return sector == im->slot_sector[0] || sector == im->slot_sector[1];
}

/* The slot sector that B changed. */
static size_t b_slot(const struct images *im)
{
	for (size_t i = 0; i < im->ndiff; i++)
		if (is_slot(im, im->diff[i]))
			return im->diff[i];
	fail_msg("commit B changed no commit slot");
	return 0;
}

/* a, with the sectors for which take(i) holds from b. */
static unsigned char *torn(const struct images *im, unsigned char *buf,
			   bool (*take)(void *ctx, size_t i), void *ctx)
{
	memcpy(buf, im->a, POOL_SIZE);
	for (size_t i = 0; i < im->ndiff; i++)
		if (take(ctx, i))
			memcpy(buf + im->diff[i] * SECTOR,
			       im->b + im->diff[i] * SECTOR, SECTOR);
	return buf;
}

struct pick {
	const struct images *im;
	size_t old;          /* all but this diff index (SIZE_MAX: none) */
	uint64_t rng;        /* random: each sector with p = 1/2 */
	bool random, slot;   /* random; the slot sector new or old */
};

static bool take(void *ctx, size_t i)
{
	struct pick *p = ctx;
	if (is_slot(p->im, p->im->diff[i]))
		return p->slot;
	if (p->random)
		return tu_rand64(&p->rng) & 1;
	return i != p->old;
}

struct expect {
	struct outcome a, b;
	unsigned as_a, as_b;
};

static void check(struct expect *e, const struct outcome *o, const char *what)
{
	if (o->id == e->a.id) {
		tu_assert_same_doc(&e->a.doc, &o->doc, what);
		e->as_a++;
	} else if (o->id == e->b.id) {
		tu_assert_same_doc(&e->b.doc, &o->doc, what);
		e->as_b++;
	} else {
		fail_msg("%s: commit %llu, neither A (%llu) nor B (%llu)", what,
			 (unsigned long long)o->id, (unsigned long long)e->a.id,
			 (unsigned long long)e->b.id);
	}
	free(o->doc.data);
}

static void torn_commit(bool big)
{
	char *dir = tu_mkdtemp(TU_SHM_BASE), *pool = tu_join(dir, "t.pool");
	struct images im;
	make_images(dir, big, &im);
	size_t slot = b_slot(&im);
	unsigned char *buf = malloc(POOL_SIZE);
	assert_non_null(buf);
	struct expect e = {.a = recover(pool, im.a), .b = recover(pool, im.b)};
	assert_int_equal(e.b.id, e.a.id + 1);
	print_message("    %zu sectors differ; the slot is sector %zu\n",
		      im.ndiff, slot);

	/* the slot did not reach the disk: A, whatever else did */
	for (int k = 0; k < 20; k++) {
		struct pick p = {.im = &im, .rng = 100 + (uint64_t)k, .random = true};
		struct outcome o = recover(pool, torn(&im, buf, take, &p));
		assert_int_equal(o.id, e.a.id);
		check(&e, &o, "slot old");
	}
	/* a small commit: the slot and all but one sector */
	for (size_t i = 0; !big && i < im.ndiff; i++) {
		if (im.diff[i] == slot)
			continue;
		struct pick p = {.im = &im, .old = i, .slot = true};
		struct outcome o = recover(pool, torn(&im, buf, take, &p));
		check(&e, &o, "one sector old");
	}
	/* a small commit: the slot and any part of the rest */
	for (int k = 0; !big && k < 40; k++) {
		struct pick p = {.im = &im, .rng = 500 + (uint64_t)k,
				 .random = true, .slot = true};
		struct outcome o = recover(pool, torn(&im, buf, take, &p));
		check(&e, &o, "slot new, the rest in part");
	}
	/* all of it */
	struct pick all = {.im = &im, .old = SIZE_MAX, .slot = true};
	struct outcome o = recover(pool, torn(&im, buf, take, &all));
	assert_int_equal(o.id, e.b.id);
	check(&e, &o, "all");
	print_message("    %u torn pools opened at A, %u at B\n", e.as_a, e.as_b);
	/* the list caught commits that were not whole */
	if (!big)
		assert_true(e.as_a > 20 + 1 + 5);
	free(e.a.doc.data);
	free(e.b.doc.data);
	free(buf);
	images_free(&im);
	free(pool);
	tu_rmtree(dir);
	free(dir);
}

static void test_small_commit_torn(void **state)
{
	(void)state;
	torn_commit(false);
}

static void test_big_commit_torn(void **state)
{
	(void)state;
	torn_commit(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_commit_torn),
		cmocka_unit_test(test_big_commit_torn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
