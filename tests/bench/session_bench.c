/* session_bench.c - commit latency with several sessions and many foreign
 * commits since the base, as a ratio to a single session's commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pog.h"

/*
 * Usage: session_bench [-d DIR] [-c FOREIGN] [-r ROUNDS]
 *
 * A store of 10,000 small files (a map of 100 maps of 100). For 1, 4
 * and 16 open sessions: the median latency of committing one small
 * change (one file rewritten) by a session whose base is FOREIGN
 * (default 1,000) commits old (the other sessions committed them, each
 * one small change), against the same commit by a single session at the
 * latest commit (goal: ratio <= 1.2). The foreign commits are not timed.
 * Then the time a session takes to move its view past a commit that
 * changed all 10,000 files, and one that changed one file (the core's
 * part: pog_abort, finding what changed for the kernel's caches).
 * Prints one line per session count. Files go in DIR (default
 * /var/tmp: a disk).
 */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "session_bench: %s: %s\n", what,
			pog_strerror(rc));
		exit(2);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t mkfile(pog_store *s, uint64_t dir, const char *name,
		       const char *text)
{
	struct pog_attr a;
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	check(pog_mknode(s, dir, name, strlen(name), &spec, &a), "mknode");
	check((int)pog_write(s, a.ino, 0, text, strlen(text)), "write");
	return a.ino;
}

static uint64_t files[100][100];

static void build(pog_store *s)
{
	for (int d = 0; d < 100; d++) {
		char name[16];
		struct pog_attr a;
		struct pog_new spec = {.type = POG_MAP, .mode = 0755};
		snprintf(name, sizeof(name), "d%02d", d);
		check(pog_mknode(s, POG_ROOT_INO, name, strlen(name), &spec, &a),
		      "mkdir");
		for (int f = 0; f < 100; f++) {
			snprintf(name, sizeof(name), "f%02d", f);
			files[d][f] = mkfile(s, a.ino, name, "0123456789abcdef");
		}
	}
	check(pog_commit(s, "build", NULL), "commit");
}

/* One small change: rewrite file (d, f). */
static void change(pog_store *s, int d, int f, unsigned v)
{
	char text[17];
	snprintf(text, sizeof(text), "%016u", v);
	check((int)pog_write(s, files[d][f], 0, text, 16), "write");
}

static unsigned stamp;

/* The median commit time of `rounds` small changes by s; before each,
 * `foreign` commits by the other sessions (not timed). */
static double measure(pog_store *s, pog_store **others, int nothers,
		      int foreign, int rounds)
{
	double *t = calloc((size_t)rounds, sizeof(double));
	for (int r = 0; r < rounds; r++) {
		check(pog_abort(s), "abort");
		for (int i = 0; i < foreign && nothers; i++) {
			pog_store *o = others[i % nothers];
			check(pog_abort(o), "abort");
			change(o, 1 + i % 99, i % 100, ++stamp);
			check(pog_commit(o, "foreign", NULL), "commit");
		}
		change(s, 0, r % 100, ++stamp);
		double t0 = now();
		check(pog_commit(s, "timed", NULL), "commit");
		t[r] = now() - t0;
	}
	qsort(t, (size_t)rounds, sizeof(double), cmp_double);
	double m = t[rounds / 2];
	free(t);
	return m;
}

int main(int argc, char **argv)
{
	const char *dir = "/var/tmp";
	int foreign = 1000, rounds = 9, c;
	while ((c = getopt(argc, argv, "d:c:r:")) != -1) {
		if (c == 'd')
			dir = optarg;
		else if (c == 'c')
			foreign = atoi(optarg);
		else if (c == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/session_bench.%d.pool", dir, getpid());
	pog_store *s;
	check(pog_create(path, (uint64_t)1 << 30, &s), path);
	build(s);
	double single = measure(s, NULL, 0, 0, rounds * 3);
	printf("single session, base = latest: commit %.3f ms (median of %d)\n",
	       single * 1e3, rounds * 3);
	static const int counts[] = {1, 4, 16};
	pog_store *others[15];
	int open = 0;
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		int n = counts[k];
		while (open < n - 1)
			check(pog_session_open(s, &others[open++]), "session");
		double t = measure(s, others, open, n > 1 ? foreign : 0, rounds);
		printf("%2d session%s, %d foreign commits since the base: commit "
		       "%.3f ms, ratio %.2f (goal <= 1.2)\n", n,
		       n == 1 ? " " : "s", n > 1 ? foreign : 0, t * 1e3,
		       t / single);
		fflush(stdout);
	}
	/* Moving a view: others[0] changes all 10,000 files (then one) and
	 * commits; s (nothing staged) moves to that commit. s tracks what its
	 * view's move changed, as the daemon does for the kernel's caches
	 * (pog_track_moves): the cost is proportional to what changed. */
	check(pog_abort(s), "abort");
	check(pog_abort(others[0]), "abort");
	pog_track_moves(s, true);
	for (int round = 0; round < 2; round++) {
		int files = round ? 1 : 10000;
		for (int i = 0; i < files; i++)
			change(others[0], i / 100, i % 100, ++stamp);
		check(pog_commit(others[0], "files", NULL), "commit");
		double t0 = now();
		check(pog_abort(s), "abort");
		double t = now() - t0;
		struct pog_moved m;
		pog_take_moved(s, &m);
		printf("moving a view past a commit of %5d changed file%s (core, "
		       "what changed found): %.3f ms, %zu objects, %zu names\n",
		       files, files == 1 ? " " : "s", t * 1e3, m.ninos, m.nnames);
		pog_moved_clear(&m);
	}
	for (int i = 0; i < open; i++)
		pog_close(others[i], POG_CLOSE_NOGC);
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	return 0;
}
