/* history_bench.c - history (SPEC 5a): diff of a one-file change in a
 * big store, GC with 16 retained commits against 1, and reading a file
 * through a retained commit's view against the live view.
 *
 * Usage: history_bench [-n OBJECTS] [-d DIR]
 *   OBJECTS: files in the big store (default 1,000,000, in 1,000
 *   directories of 1,000); DIR: where the pools go (default /dev/shm).
 * Goals (issue 12): diff under 10 ms and O(depth) (the same for a tenth
 * of the store); GC with 16 retained <= 1.5 x GC with 1; history reads
 * >= 0.9 x live reads.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pog.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "history_bench: %s: %s\n", what, pog_strerror(rc));
		exit(1);
	}
	return rc;
}

static char pooldir[512] = "/dev/shm";

static void pool_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/pog-history-bench-%d-%s.pool", pooldir,
		 (int)getpid(), name);
	unlink(buf);
}

/* n small files in directories of 1,000, committed every 100,000. */
static pog_store *big_store(const char *path, uint64_t n, unsigned keep,
			    uint64_t *some_file)
{
	struct pog_new map = {.type = POG_MAP, .mode = 0755};
	struct pog_new str = {.type = POG_STRING, .mode = 0644};
	pog_store *s;
	uint64_t size = (n / 1000 + 1) * ((uint64_t)2 << 20) + (256ULL << 20);
	check(pog_create(path, size, &s), "create");
	check(pog_set_keep(s, keep), "keep");
	struct pog_attr dir = {0}, file;
	char name[32];
	for (uint64_t i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "d%llu", (unsigned long long)(i / 1000));
			check(pog_mknode(s, POG_ROOT_INO, name, strlen(name), &map, &dir),
			      "mkdir");
		}
		snprintf(name, sizeof(name), "f%llu", (unsigned long long)i);
		check(pog_mknode(s, dir.ino, name, strlen(name), &str, &file), "create");
		check((int)pog_write(s, file.ino, 0, name, strlen(name)), "write");
		if (i == n / 2)
			*some_file = file.ino;
		if (i % 100000 == 99999)
			check(pog_commit(s, "fill", NULL), "commit");
	}
	check(pog_commit(s, "filled", NULL), "commit");
	return s;
}

static int count_line(void *ctx, char kind, const char *path)
{
	(void)kind;
	(void)path;
	(*(int *)ctx)++;
	return 0;
}

/* The median time of 5 diffs of a one-file change. */
static double diff_one_change(uint64_t n, int *lines)
{
	char path[600];
	uint64_t f;
	pool_path(path, sizeof(path), "diff");
	pog_store *s = big_store(path, n, 16, &f);
	struct pog_status st;
	check(pog_status(s, &st), "status");
	uint64_t a = st.commit_id;
	check((int)pog_write(s, f, 0, "changed", 7), "write");
	uint64_t b;
	check(pog_commit(s, "one change", &b), "commit");
	double best[5];
	for (int i = 0; i < 5; i++) {
		*lines = 0;
		double t0 = now();
		check(pog_diff(s, a, b, count_line, lines), "diff");
		best[i] = now() - t0;
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (best[j] < best[i]) {
				double x = best[i];
				best[i] = best[j];
				best[j] = x;
			}
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	return best[2];
}

/* GC time of a store whose last 16 commits each changed one file, with
 * those commits retained (keep 16) or not (keep 1). */
static double gc_time(uint64_t n, unsigned keep)
{
	char path[600], name[16];
	uint64_t f;
	snprintf(name, sizeof(name), "gc%u", keep);
	pool_path(path, sizeof(path), name);
	pog_store *s = big_store(path, n, keep, &f);
	for (int i = 0; i < 16; i++) {
		char text[32];
		snprintf(text, sizeof(text), "version %d", i);
		check((int)pog_write(s, f, 0, text, strlen(text)), "write");
		check(pog_commit(s, "change", NULL), "commit");
	}
	struct pog_gc_result r;
	check(pog_gc(s, &r), "gc"); /* what the fill left */
	double t0 = now();
	check(pog_gc(s, &r), "gc");
	double t = now() - t0;
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	return t;
}

/* Read a 64 MiB file 3 times through a view: the best MB/s. */
static double read_rate(pog_store *s, uint64_t ino, char *buf, size_t chunk,
			uint64_t size)
{
	double best = 0;
	for (int round = 0; round < 3; round++) {
		double t0 = now();
		for (uint64_t off = 0; off < size; off += chunk)
			check((int)pog_read(s, ino, off, buf, chunk), "read");
		double rate = (double)size / (now() - t0) / 1e6;
		if (rate > best)
			best = rate;
	}
	return best;
}

static void read_views(double *live, double *old)
{
	enum { CHUNK = 1 << 20, MB = 64 };
	char path[600];
	static char buf[CHUNK];
	struct pog_new str = {.type = POG_STRING, .mode = 0644};
	struct pog_attr file;
	pog_store *s;
	pool_path(path, sizeof(path), "read");
	check(pog_create(path, 512ULL << 20, &s), "create");
	check(pog_mknode(s, POG_ROOT_INO, "f", 1, &str, &file), "create");
	uint64_t seed = 1;
	for (uint64_t i = 0; i < MB; i++) {
		for (size_t j = 0; j < CHUNK; j += 8) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			memcpy(buf + j, &seed, 8);
		}
		check((int)pog_write(s, file.ino, i * CHUNK, buf, CHUNK), "write");
	}
	uint64_t id, root, hf;
	check(pog_commit(s, "file", &id), "commit");
	check(pog_history_root(s, id, &root), "history root");
	check(pog_lookup(s, root, "f", 1, &file), "lookup");
	hf = file.ino;
	check(pog_lookup(s, POG_ROOT_INO, "f", 1, &file), "lookup");
	*live = read_rate(s, file.ino, buf, CHUNK, (uint64_t)MB * CHUNK);
	*old = read_rate(s, hf, buf, CHUNK, (uint64_t)MB * CHUNK);
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
}

int main(int argc, char **argv)
{
	uint64_t n = 1000000;
	int c;
	while ((c = getopt(argc, argv, "n:d:")) != -1) {
		if (c == 'n')
			n = strtoull(optarg, NULL, 10);
		else if (c == 'd')
			snprintf(pooldir, sizeof(pooldir), "%s", optarg);
		else
			return 2;
	}
	int lines, small_lines;
	double d = diff_one_change(n, &lines);
	double d10 = diff_one_change(n / 10, &small_lines);
	printf("diff of a one-file change: %llu objects %.3f ms (%d lines), "
	       "%llu objects %.3f ms; ratio %.2f (goal: under 10 ms, ~1)\n",
	       (unsigned long long)n, d * 1e3, lines,
	       (unsigned long long)(n / 10), d10 * 1e3, d / d10);
	double g1 = gc_time(n / 4, 1), g16 = gc_time(n / 4, 16);
	printf("gc of %llu objects: keep 1 %.3f s, keep 16 (16 retained commits) "
	       "%.3f s; ratio %.2f (goal <= 1.5)\n", (unsigned long long)(n / 4),
	       g1, g16, g16 / g1);
	double live, old;
	read_views(&live, &old);
	printf("reading 64 MiB: live view %.0f MB/s, .pog/history view %.0f MB/s; "
	       "ratio %.2f (goal >= 0.9)\n", live, old, old / live);
	return 0;
}
