/* test_threads.c - one store used from several threads at once, as the daemon does. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)512 << 20)
#define WRITERS 3
#define READERS 2
#define FILES_PER_WRITER 200
#define FILE_LEN 5000

struct shared {
	pog_store *s;
	uint64_t dirs[WRITERS];
	atomic_int stop;
	atomic_int failures;
	atomic_long reads;
	atomic_long commits;
	char why[256];
};

static void record_failure(struct shared *sh, const char *fmt, long a,
			   long b)
{
	if (atomic_fetch_add(&sh->failures, 1) == 0)
		snprintf(sh->why, sizeof(sh->why), fmt, a, b);
}

struct writer_arg {
	struct shared *sh;
	int id;
};

static void *writer(void *varg)
{
	struct writer_arg *arg = varg;
	struct shared *sh = arg->sh;
	char buf[FILE_LEN], nm[32];
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };

	for (int i = 0; i < FILES_PER_WRITER; i++) {
		struct pog_attr attr;
		ssize_t n;
		int rc;

		snprintf(nm, sizeof(nm), "f%d", i);
		rc = pog_mknode(sh->s, sh->dirs[arg->id], nm, strlen(nm), &spec,
				&attr);
		if (rc) {
			record_failure(sh, "mknode: %ld (writer %ld)", rc,
				       arg->id);
			break;
		}
		tu_fill_random(buf, FILE_LEN, (uint64_t)(arg->id * 100000 + i));
		/* in two pieces, the second first */
		n = pog_write(sh->s, attr.ino, 2000, buf + 2000,
			      FILE_LEN - 2000);
		if (n == FILE_LEN - 2000)
			n = pog_write(sh->s, attr.ino, 0, buf, 2000);
		if (n != 2000 && n != FILE_LEN - 2000) {
			record_failure(sh, "write: %ld (writer %ld)", n,
				       arg->id);
			break;
		}
		/* writer 0 also commits now and then */
		if (arg->id == 0 && i % 20 == 19) {
			rc = pog_commit(sh->s, "threads", NULL);
			if (rc) {
				record_failure(sh, "commit: %ld (%ld)", rc, i);
				break;
			}
			atomic_fetch_add(&sh->commits, 1);
		}
	}
	return NULL;
}

static void *reader(void *varg)
{
	struct shared *sh = varg;
	uint64_t rnd = (uint64_t)pthread_self() | 1;
	char buf[FILE_LEN], expect[FILE_LEN], nm[32];

	while (!atomic_load(&sh->stop)) {
		int w = (int)(tu_rand64(&rnd) % WRITERS);
		int i = (int)(tu_rand64(&rnd) % FILES_PER_WRITER);
		struct pog_attr attr;
		ssize_t n;
		int rc;

		snprintf(nm, sizeof(nm), "f%d", i);
		rc = pog_lookup(sh->s, sh->dirs[w], nm, strlen(nm), &attr);
		if (rc == -ENOENT)
			continue;
		if (rc) {
			record_failure(sh, "lookup: %ld (%ld)", rc, i);
			break;
		}
		n = pog_read(sh->s, attr.ino, 0, buf, FILE_LEN);
		if (n < 0) {
			record_failure(sh, "read: %ld (%ld)", n, i);
			break;
		}
		/* a file being written is all of the first piece's bytes or
		 * zeros there, and the second piece's bytes */
		tu_fill_random(expect, FILE_LEN, (uint64_t)(w * 100000 + i));
		if (n == FILE_LEN &&
		    memcmp(buf + 2000, expect + 2000, FILE_LEN - 2000) != 0) {
			record_failure(sh, "file %ld of writer %ld: wrong bytes",
				       i, w);
			break;
		}
		atomic_fetch_add(&sh->reads, 1);
		if (tu_rand64(&rnd) % 50 == 0) {
			struct pog_status st;
			uint64_t count = tu_count_entries(sh->s, sh->dirs[w]);

			if (count > FILES_PER_WRITER ||
			    pog_status(sh->s, &st) != 0) {
				record_failure(sh, "readdir %ld entries (%ld)",
					       (long)count, w);
				break;
			}
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct tu_ctx ctx;
	struct shared sh;
	pthread_t wt[WRITERS], rt[READERS];
	struct writer_arg wa[WRITERS];
	char buf[FILE_LEN], nm[32];

	(void)state;
	tu_setup(&ctx, NULL, POOL_SIZE);
	memset(&sh, 0, sizeof(sh));
	sh.s = ctx.s;
	for (int w = 0; w < WRITERS; w++) {
		snprintf(nm, sizeof(nm), "w%d", w);
		sh.dirs[w] = tu_mk(ctx.s, POG_ROOT_INO, nm, POG_MAP);
	}
	tu_commit_check(ctx.s, "dirs");
	for (int r = 0; r < READERS; r++)
		assert_int_equal(pthread_create(&rt[r], NULL, reader, &sh), 0);
	for (int w = 0; w < WRITERS; w++) {
		wa[w].sh = &sh;
		wa[w].id = w;
		assert_int_equal(pthread_create(&wt[w], NULL, writer, &wa[w]),
				 0);
	}
	for (int w = 0; w < WRITERS; w++)
		pthread_join(wt[w], NULL);
	atomic_store(&sh.stop, 1);
	for (int r = 0; r < READERS; r++)
		pthread_join(rt[r], NULL);
	print_message("    %ld reads, %ld commits while writing\n",
		      (long)sh.reads, (long)sh.commits);
	if (sh.failures)
		fail_msg("%d failures; first: %s", (int)sh.failures, sh.why);

	tu_commit_check(ctx.s, "all");
	tu_reopen(&ctx);
	for (int w = 0; w < WRITERS; w++) {
		assert_int_equal(tu_count_entries(ctx.s, sh.dirs[w]),
				 FILES_PER_WRITER);
		for (int i = 0; i < FILES_PER_WRITER; i++) {
			snprintf(nm, sizeof(nm), "f%d", i);
			tu_fill_random(buf, FILE_LEN,
				       (uint64_t)(w * 100000 + i));
			tu_assert_content(ctx.s,
					  tu_lookup(ctx.s, sh.dirs[w], nm),
					  buf, FILE_LEN);
		}
	}
	tu_assert_fsck_clean(ctx.s);
	tu_teardown(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
