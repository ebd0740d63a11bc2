/* hash_bench.c - user.pog.hash of the root of a 1,000,000-object store,
 * and of a 256 MiB file: first read (computes everything) and after a
 * one-byte change (cached; the file from its pages' CRCs). */
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
		fprintf(stderr, "hash_bench: %s: %s\n", what, pog_strerror(rc));
		exit(1);
	}
	return rc;
}

static void fill(char *buf, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		memcpy(buf + i, seed, 8);
	}
}

/* A 256 MiB file of distinct pages: its hash first, then after one byte in
 * the middle changed. Returns whether the change showed. */
static int big_file(const char *path)
{
	enum { CHUNK = 1 << 20, CHUNKS = 256 };
	static char buf[CHUNK];
	struct pog_new str = {.type = POG_STRING, .mode = 0644};
	struct pog_attr file;
	uint64_t seed = 88172645463325252ULL;
	uint32_t before, after;
	pog_store *s;

	unlink(path);
	check(pog_create(path, 1ULL << 30, &s), "create");
	check(pog_mknode(s, POG_ROOT_INO, "big", 3, &str, &file), "create");
	for (uint64_t i = 0; i < CHUNKS; i++) {
		fill(buf, CHUNK, &seed);
		check((int)pog_write(s, file.ino, i * CHUNK, buf, CHUNK), "write");
	}
	check(pog_commit(s, "256 MiB", NULL), "commit");
	double t0 = now();
	check(pog_hash(s, file.ino, &before), "hash");
	double t1 = now();
	check((int)pog_write(s, file.ino, 128ULL * CHUNK + 12345, "X", 1),
	      "small change");
	double t2 = now();
	check(pog_hash(s, file.ino, &after), "hash");
	double t3 = now();
	printf("hash of a 256 MiB file: first read %.1f ms, after a one-byte "
	       "change %.3f ms (%08x -> %08x)\n", (t1 - t0) * 1e3,
	       (t3 - t2) * 1e3, before, after);
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	return before != after;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/shm/pog-hash-bench.pool";
	char name[32];
	pog_store *s;
	struct pog_attr dir, file;
	uint64_t last = 0;
	uint32_t before, after;

	unlink(path);
	check(pog_create(path, 4ULL << 30, &s), "create");
	for (int d = 0; d < 100; d++) {
		struct pog_new map = {.type = POG_MAP, .mode = 0755};
		snprintf(name, sizeof(name), "d%d", d);
		check(pog_mknode(s, POG_ROOT_INO, name, strlen(name), &map, &dir),
		      "mkdir");
		for (int i = 0; i < 10000; i++) {
			struct pog_new str = {.type = POG_STRING, .mode = 0644};
			int n = snprintf(name, sizeof(name), "f%d", i);
			check(pog_mknode(s, dir.ino, name, (size_t)n, &str, &file),
			      "create");
			check((int)pog_write(s, file.ino, 0, name, (size_t)n), "write");
			last = file.ino;
		}
	}
	check(pog_commit(s, "1M objects", NULL), "commit");
	double t0 = now();
	check(pog_hash(s, POG_ROOT_INO, &before), "hash");
	double t1 = now();
	check((int)pog_write(s, last, 0, "X", 1), "small change");
	double t2 = now();
	check(pog_hash(s, POG_ROOT_INO, &after), "hash");
	double t3 = now();
	printf("root hash of 1,000,010 objects: first read %.1f ms, after a "
	       "one-byte change %.3f ms (%08x -> %08x)\n", (t1 - t0) * 1e3,
	       (t3 - t2) * 1e3, before, after);
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	if (before == after || !big_file(path))
		return 1; /* the change must show */
	return 0;
}
