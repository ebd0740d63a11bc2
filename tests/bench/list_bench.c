/* list_bench.c - removing the first vs the last entry of a 1,000,000-entry list, and committing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pog.h"
#include "store_int.h" /* fresh_count: the blocks this transaction wrote */

/*
 * Usage: list_bench [-n ENTRIES] [-d DIR]
 *
 * Builds a list of ENTRIES (default 1,000,000) small strings by importing
 * one JSON array, commits it, then measures in turn, each followed by a
 * commit:
 *   (a) removing its last entry,
 *   (b) removing its entry 0 (every later entry's name changes: 1
 *       becomes 0, ...),
 *   (c) inserting at 0 (mv 0 0.5, then a new file 0),
 *   (d) inserting at 1 (a new file 0.5),
 *   (e) appending (a new file named ENTRIES),
 *   (f) renaming within the list (mv 0 to the middle, ENTRIES/2 + 0.5),
 * printing for each the time of the change, of the commit, and the
 * store blocks (4 KiB) the transaction wrote. Goal: all cost O(log n)
 * like (a): positions are ranks in a counted tree (core/list.c).
 */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "list_bench: %s: %s\n", what, pog_strerror(err));
	return 1;
}

enum step { REMOVE, INSERT_AT_0, CREATE, RENAME };

/* One change to the list: remove name, create it, or rename 0 to it. */
static int change(pog_store *s, uint64_t list, enum step what,
		  const char *name)
{
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	struct pog_attr a;
	int err;
	switch (what) {
	case REMOVE:
		return pog_remove(s, list, name, strlen(name), 0);
	case INSERT_AT_0:
		err = pog_rename(s, list, "0", 1, list, "0.5", 3, 0);
		return err ? err : pog_mknode(s, list, "0", 1, &spec, &a);
	case CREATE:
		return pog_mknode(s, list, name, strlen(name), &spec, &a);
	case RENAME:
		return pog_rename(s, list, "0", 1, list, name, strlen(name), 0);
	}
	return -EINVAL;
}

static int change_and_commit(pog_store *s, uint64_t list, enum step what,
			     const char *name, const char *label)
{
	double t0 = now();
	int err = change(s, list, what, name);
	if (err)
		return die(label, err);
	double t1 = now();
	uint64_t by_remove = s->fresh_count;
	err = pog_commit(s, label, NULL);
	if (err)
		return die("commit", err);
	double t2 = now();
	printf("%-34s change %8.3f ms (%5" PRIu64 " blocks)  commit %9.3f ms  "
	       "blocks written in all %8" PRIu64 "\n", label, (t1 - t0) * 1e3,
	       by_remove, (t2 - t1) * 1e3, s->env->last_commit_fresh);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 1000000;
	const char *dir = "/var/tmp";
	int opt;
	while ((opt = getopt(argc, argv, "n:d:h")) != -1) {
		if (opt == 'n')
			n = strtol(optarg, NULL, 10);
		else if (opt == 'd')
			dir = optarg;
		else {
			fprintf(stderr, "usage: list_bench [-n ENTRIES] [-d DIR]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	char pool[4096];
	snprintf(pool, sizeof(pool), "%s/list_bench.%d.pool", dir, (int)getpid());
	pog_store *s;
	int err = pog_create(pool, (uint64_t)4 << 30, &s);
	if (err)
		return die(pool, err);

	/* ["0","1",...]: one import, one commit */
	size_t cap = (size_t)n * 12 + 16, len = 0;
	char *doc = malloc(cap);
	if (!doc)
		return die("malloc", -ENOMEM);
	doc[len++] = '[';
	for (long i = 0; i < n; i++)
		len += (size_t)snprintf(doc + len, cap - len, "%s\"%ld\"",
					i ? "," : "", i);
	doc[len++] = ']';
	struct pog_json_error jerr;
	double t0 = now();
	err = pog_import(s, POG_ROOT_INO, "l", 1, doc, len, 0, 0, &jerr);
	free(doc);
	if (err)
		return die("import", err);
	err = pog_commit(s, "built", NULL);
	if (err)
		return die("commit", err);
	printf("list of %ld entries built and committed in %.1f s\n", n,
	       now() - t0);
	struct pog_attr a;
	err = pog_lookup(s, POG_ROOT_INO, "l", 1, &a);
	if (err)
		return die("lookup", err);

	char last[32], end[32], middle[48];
	snprintf(last, sizeof(last), "%ld", n - 1);
	uint64_t list = a.ino;
	int rc = change_and_commit(s, list, REMOVE, last, "(a) remove the last entry");
	if (!rc)
		rc = change_and_commit(s, list, REMOVE, "0", "(b) remove entry 0");
	char back[4096];
	ssize_t r = pog_read(s, pog_lookup(s, list, "0", 1, &a) ? 0 : a.ino, 0,
			     back, sizeof(back) - 1);
	if (!rc && (r != 1 || back[0] != '1')) {
		fprintf(stderr, "list_bench: entry 0 is not \"1\" after the removal\n");
		rc = 1;
	}
	/* n - 2 entries now */
	if (!rc)
		rc = change_and_commit(s, list, INSERT_AT_0, NULL,
				       "(c) insert at 0 (mv 0 0.5; new 0)");
	if (!rc)
		rc = change_and_commit(s, list, CREATE, "0.5",
				       "(d) insert at 1 (new 0.5)");
	snprintf(end, sizeof(end), "%ld", n);
	if (!rc)
		rc = change_and_commit(s, list, CREATE, end, "(e) append (new n)");
	snprintf(middle, sizeof(middle), "%ld.5", n / 2);
	if (!rc)
		rc = change_and_commit(s, list, RENAME, middle,
				       "(f) mv 0 to the middle (n/2.5)");
	/* (c)'s new 0 went to the middle: (d)'s is 0, and "1" is 1 again */
	r = pog_read(s, pog_lookup(s, list, "1", 1, &a) ? 0 : a.ino, 0, back,
		     sizeof(back) - 1);
	if (!rc && (r != 1 || back[0] != '1')) {
		fprintf(stderr, "list_bench: entry 1 is not \"1\" after the moves\n");
		rc = 1;
	}
	pog_close(s, POG_CLOSE_NOGC);
	unlink(pool);
	return rc;
}
