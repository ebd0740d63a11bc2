/* commit_bench.c - commit latency of pogfs against SQLite (WAL, synchronous=FULL) on the same disk. */
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "pog.h"

/*
 * Usage: commit_bench [-d DIR] [-n COMMITS] [-f FILES] [-r ROUNDS]
 *                     [-b MIB[,MIB...]] [-k]
 *
 * In one run, on one directory (default: a fresh temp dir under /var/tmp,
 * an ordinary disk, not tmpfs), measures
 *   (a) the latency of committing one small change: the median over
 *       COMMITS commits, each rewriting one small file (pogfs) or one row
 *       (SQLite);
 *   (b) committing FILES new small files (pogfs: staged first, only
 *       pog_commit is timed) against FILES rows inserted in one SQLite
 *       transaction; the median over ROUNDS rounds.
 *   (c) committing MIB MiB of new data (distinct pages, staged with
 *       1 MiB pog_write calls; only pog_commit is timed) against
 *       `dd bs=1M conv=fsync` of as many MiB into a file of the same
 *       directory; the median over ROUNDS rounds, as a rate ratio.
 * SQLite runs with journal_mode=WAL, synchronous=FULL. For SQLite both
 * the COMMIT statement alone and the whole transaction are shown, and
 * the ratio of pog_commit to each (goal: <= 1.0). Every commit also
 * counts the msync calls libpmemobj makes (this program interposes
 * msync): that count must not grow with the number of pages.
 */

#define SMALL 100 /* bytes per small file / row */

static int opt_commits = 50;
static int opt_files = 10000;
static int opt_rounds = 3;
static const char *opt_bulk = "64,512,2048";

/*
 * msync, counted: on an ordinary file every persist and flush of
 * libpmemobj is one msync (the executable exports this definition, so
 * the libraries' calls land here).
 */
static unsigned long msync_calls;
static unsigned long long msync_bytes;

int msync(void *addr, size_t len, int flags)
{
	static int (*real)(void *, size_t, int);

	if (!real)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
	msync_calls++;
	msync_bytes += len;
	return real(addr, len, flags);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "commit_bench: %s: %s\n", what, why);
	exit(2);
}

static void check_pog(int rc, const char *what)
{
	if (rc < 0)
		die(what, pog_strerror(rc));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (seed * 31 + i * 7) % 26);
}

struct result {
	double one;       /* median latency of one small change, s */
	double many;      /* median commit time of FILES new files, s */
	double one_txn;   /* SQLite: whole transaction */
	double many_txn;
	double many_stage; /* pogfs: staging time of FILES files */
	unsigned long one_msyncs, many_msyncs; /* pogfs: per commit (median) */
};

static unsigned long median_ul(unsigned long *v, int n)
{
	double *d = calloc((size_t)n, sizeof(double));
	double m;

	for (int i = 0; i < n; i++)
		d[i] = (double)v[i];
	m = median(d, n);
	free(d);
	return (unsigned long)m;
}

/* ---- pogfs -------------------------------------------------------------- */

static void bench_pogfs(const char *dir, struct result *res)
{
	char path[4096], buf[SMALL], name[32];
	double *lat = calloc((size_t)opt_commits, sizeof(double));
	double *many = calloc((size_t)opt_rounds, sizeof(double));
	double *stage = calloc((size_t)opt_rounds, sizeof(double));
	unsigned long *one_ms = calloc((size_t)opt_commits, sizeof(long));
	unsigned long *many_ms = calloc((size_t)opt_rounds, sizeof(long));
	struct pog_new file = { .type = POG_STRING, .mode = 0644 };
	struct pog_new map = { .type = POG_MAP, .mode = 0755 };
	struct pog_attr attr;
	pog_store *s;
	uint64_t small;

	snprintf(path, sizeof(path), "%s/bench.pool", dir);
	check_pog(pog_create(path, (uint64_t)2 << 30, &s), "pog_create");

	/* warm up: one file, a few commits */
	check_pog(pog_mknode(s, POG_ROOT_INO, "small", 5, &file, &attr),
		  "mknode");
	small = attr.ino;
	for (int i = 0; i < 5; i++) {
		fill(buf, SMALL, (unsigned)i);
		if (pog_write(s, small, 0, buf, SMALL) != SMALL)
			die("pog_write", "short");
		check_pog(pog_commit(s, "warm up", NULL), "pog_commit");
	}

	/* (a) one small change per commit */
	for (int i = 0; i < opt_commits; i++) {
		double t;

		fill(buf, SMALL, 1000u + (unsigned)i);
		if (pog_write(s, small, 0, buf, SMALL) != SMALL)
			die("pog_write", "short");
		one_ms[i] = msync_calls;
		t = now();
		check_pog(pog_commit(s, "one change", NULL), "pog_commit");
		lat[i] = now() - t;
		one_ms[i] = msync_calls - one_ms[i];
	}
	res->one = median(lat, opt_commits);
	res->one_msyncs = median_ul(one_ms, opt_commits);

	/* (b) many new small files in one commit */
	for (int r = 0; r < opt_rounds; r++) {
		uint64_t d;
		double t;

		snprintf(name, sizeof(name), "batch%d", r);
		t = now();
		check_pog(pog_mknode(s, POG_ROOT_INO, name, strlen(name), &map,
				     &attr),
			  "mknode");
		d = attr.ino;
		for (int i = 0; i < opt_files; i++) {
			int len = snprintf(name, sizeof(name), "f%05d", i);

			check_pog(pog_mknode(s, d, name, (size_t)len, &file,
					     &attr),
				  "mknode");
			fill(buf, SMALL, (unsigned)(r * opt_files + i));
			if (pog_write(s, attr.ino, 0, buf, SMALL) != SMALL)
				die("pog_write", "short");
		}
		stage[r] = now() - t;
		many_ms[r] = msync_calls;
		t = now();
		check_pog(pog_commit(s, "many files", NULL), "pog_commit");
		many[r] = now() - t;
		many_ms[r] = msync_calls - many_ms[r];
	}
	res->many = median(many, opt_rounds);
	res->many_msyncs = median_ul(many_ms, opt_rounds);
	res->many_stage = median(stage, opt_rounds);
	pog_close(s, POG_CLOSE_NOGC);
	free(lat);
	free(many);
	free(stage);
	free(one_ms);
	free(many_ms);
}

/* ---- bulk data: pog_commit of N MiB against dd conv=fsync -------------- */

static void fill_random(char *buf, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		memcpy(buf + i, seed, 8);
	}
}

struct bulk {
	double commit, stage, dd; /* seconds */
	unsigned long msyncs;
	unsigned long long msync_bytes;
};

/* Stage mib MiB of distinct pages in a new pool, time the commit. */
static void bulk_pogfs(const char *dir, int mib, int round, struct bulk *b)
{
	enum { CHUNK = 1 << 20 };
	char path[4096];
	char *buf = malloc(CHUNK);
	struct pog_new file = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(round + 1) * 7919u;
	unsigned long calls;
	unsigned long long bytes;
	pog_store *s;
	double t;

	if (!buf)
		die("malloc", strerror(ENOMEM));
	snprintf(path, sizeof(path), "%s/bulk.pool", dir);
	unlink(path);
	/* room for the data, its page tables and the reserve (1/32) */
	check_pog(pog_create(path, (uint64_t)mib * 1100 * 1024 +
			     ((uint64_t)256 << 20), &s), "pog_create");
	check_pog(pog_mknode(s, POG_ROOT_INO, "data", 4, &file, &attr),
		  "mknode");
	check_pog(pog_commit(s, "empty file", NULL), "pog_commit");
	t = now();
	for (int i = 0; i < mib; i++) {
		fill_random(buf, CHUNK, &seed);
		if (pog_write(s, attr.ino, (uint64_t)i * CHUNK, buf, CHUNK) !=
		    CHUNK)
			die("pog_write", "short");
	}
	b->stage = now() - t;
	calls = msync_calls;
	bytes = msync_bytes;
	t = now();
	check_pog(pog_commit(s, "bulk", NULL), "pog_commit");
	b->commit = now() - t;
	b->msyncs = msync_calls - calls;
	b->msync_bytes = msync_bytes - bytes;
	pog_close(s, POG_CLOSE_NOGC);
	unlink(path);
	free(buf);
}

/* `dd if=/dev/zero bs=1M count=mib conv=fsync` into dir, timed whole. */
static double bulk_dd(const char *dir, int mib)
{
	char path[4096], cmd[8192];
	double t;

	snprintf(path, sizeof(path), "%s/dd.out", dir);
	unlink(path);
	snprintf(cmd, sizeof(cmd),
		 "dd if=/dev/zero of='%s' bs=1M count=%d conv=fsync status=none",
		 path, mib);
	t = now();
	if (system(cmd) != 0)
		die("dd", "failed");
	t = now() - t;
	unlink(path);
	return t;
}

static int cmp_bulk(const void *a, const void *b)
{
	const struct bulk *x = a, *y = b;
	double rx = x->dd / x->commit, ry = y->dd / y->commit;

	return rx < ry ? -1 : rx > ry;
}

/* Each round: pogfs then dd, so both see the disk in the same mood; the
 * round with the median rate ratio is shown. */
static void bench_bulk(const char *dir)
{
	char *list = strdup(opt_bulk), *save = NULL;
	struct bulk *r = calloc((size_t)opt_rounds, sizeof(*r));

	printf("\n%-22s %12s %12s %12s %7s %-4s %7s %12s\n", "new data commit",
	       "pogfs commit", "dd fsync", "pogfs stage", "rate", "", "msyncs",
	       "msync MiB");
	for (char *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int mib = atoi(tok);
		struct bulk *m;
		double ratio;
		char label[64];

		if (mib < 1)
			continue;
		for (int i = 0; i < opt_rounds; i++) {
			bulk_pogfs(dir, mib, i, &r[i]);
			r[i].dd = bulk_dd(dir, mib);
		}
		qsort(r, (size_t)opt_rounds, sizeof(*r), cmp_bulk);
		m = &r[opt_rounds / 2];
		ratio = m->dd / m->commit;
		snprintf(label, sizeof(label), "%d MiB (med. of %d)", mib,
			 opt_rounds);
		printf("%-22s %7.0f MiB/s %7.0f MiB/s %7.0f MiB/s %6.2fx %-4s %7lu %12.1f\n",
		       label, mib / m->commit, mib / m->dd, mib / m->stage,
		       ratio, ratio >= 0.8 ? "ok" : "SLOW", m->msyncs,
		       (double)m->msync_bytes / (1 << 20));
		fflush(stdout);
	}
	printf("rate = pogfs commit rate / dd conv=fsync rate (goal >= 0.8); "
	       "msyncs: calls in the commit\n");
	free(r);
	free(list);
}

/* ---- SQLite ------------------------------------------------------------- */

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err ? err : "?");
}

static void sql_insert(sqlite3_stmt *st, const char *key, const char *buf)
{
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, buf, SMALL, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		die("insert", sqlite3_errmsg(sqlite3_db_handle(st)));
	sqlite3_reset(st);
}

static void bench_sqlite(const char *dir, struct result *res)
{
	char path[4096], buf[SMALL], key[64];
	double *lat = calloc((size_t)opt_commits, sizeof(double));
	double *lat_txn = calloc((size_t)opt_commits, sizeof(double));
	double *many = calloc((size_t)opt_rounds, sizeof(double));
	double *many_txn = calloc((size_t)opt_rounds, sizeof(double));
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/bench.sqlite", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sql_exec(db, "PRAGMA journal_mode=WAL");
	sql_exec(db, "PRAGMA synchronous=FULL");
	sql_exec(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)");
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv VALUES (?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));

	for (int i = 0; i < 5; i++) {
		fill(buf, SMALL, (unsigned)i);
		sql_exec(db, "BEGIN");
		sql_insert(st, "small", buf);
		sql_exec(db, "COMMIT");
	}

	/* (a) one row per transaction */
	for (int i = 0; i < opt_commits; i++) {
		double t0, t1;

		fill(buf, SMALL, 1000u + (unsigned)i);
		t0 = now();
		sql_exec(db, "BEGIN");
		sql_insert(st, "small", buf);
		t1 = now();
		sql_exec(db, "COMMIT");
		lat[i] = now() - t1;
		lat_txn[i] = now() - t0;
	}
	res->one = median(lat, opt_commits);
	res->one_txn = median(lat_txn, opt_commits);

	/* (b) many new rows in one transaction */
	for (int r = 0; r < opt_rounds; r++) {
		double t0, t1;

		t0 = now();
		sql_exec(db, "BEGIN");
		for (int i = 0; i < opt_files; i++) {
			snprintf(key, sizeof(key), "batch%d/f%05d", r, i);
			fill(buf, SMALL, (unsigned)(r * opt_files + i));
			sql_insert(st, key, buf);
		}
		t1 = now();
		sql_exec(db, "COMMIT");
		many[r] = now() - t1;
		many_txn[r] = now() - t0;
	}
	res->many = median(many, opt_rounds);
	res->many_txn = median(many_txn, opt_rounds);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(lat);
	free(lat_txn);
	free(many);
	free(many_txn);
}

/* ---- main --------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static const char *fs_name(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) != 0)
		return "?";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs (NOT a disk: numbers mean little)";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	default: return "other";
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: commit_bench [-d DIR] [-n COMMITS] [-f FILES] [-r ROUNDS]\n"
		"                    [-b MIB[,MIB...]] [-k]\n"
		"  Compare pogfs commits with SQLite (WAL, synchronous=FULL) on one disk.\n"
		"  -d DIR     work in DIR (default: a new temp dir under /var/tmp)\n"
		"  -n COMMITS commits of one small change (default 50; median)\n"
		"  -f FILES   new files / rows per big commit (default 10000)\n"
		"  -r ROUNDS  rounds of the big commits (default 3; median)\n"
		"  -b MIBS    sizes of the new-data commits against dd conv=fsync\n"
		"             (default 64,512,2048; 0: none)\n"
		"  -k         keep the files afterwards\n");
}

static void row(const char *what, double pog, double sql, double sql_txn,
		unsigned long msyncs)
{
	double ratio = pog / sql, ratio_txn = pog / sql_txn;

	printf("%-28s %10.3f ms %10.3f ms %10.3f ms %6.2f %-4s %6.2f %-4s %6lu\n",
	       what, pog * 1e3, sql * 1e3, sql_txn * 1e3, ratio,
	       ratio <= 1.0 ? "ok" : "OVER", ratio_txn,
	       ratio_txn <= 1.0 ? "ok" : "OVER", msyncs);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/var/tmp/pogbench.XXXXXX";
	const char *dir = NULL;
	int keep = 0, made = 0, c;
	struct result pog = { 0 }, sql = { 0 };
	char label[64];

	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	while ((c = getopt_long(argc, argv, "d:n:f:r:b:kh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': opt_commits = atoi(optarg); break;
		case 'f': opt_files = atoi(optarg); break;
		case 'r': opt_rounds = atoi(optarg); break;
		case 'b': opt_bulk = optarg; break;
		case 'k': keep = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opt_commits < 1 || opt_files < 1 || opt_rounds < 1) {
		usage(stderr);
		return 2;
	}
	if (!dir) {
		if (!mkdtemp(tmpl))
			die(tmpl, strerror(errno));
		dir = tmpl;
		made = 1;
	}
	printf("commit benchmark in %s (%s); SQLite %s, WAL, synchronous=FULL\n",
	       dir, fs_name(dir), sqlite3_libversion());
	fflush(stdout);

	bench_pogfs(dir, &pog);
	bench_sqlite(dir, &sql);

	printf("\n%-28s %13s %13s %13s %11s %11s %6s\n", "", "pogfs commit",
	       "SQLite COMMIT", "SQLite txn", "vs COMMIT", "vs txn", "msyncs");
	snprintf(label, sizeof(label), "1 small change (med. of %d)",
		 opt_commits);
	row(label, pog.one, sql.one, sql.one_txn, pog.one_msyncs);
	snprintf(label, sizeof(label), "%d new files (med. of %d)", opt_files,
		 opt_rounds);
	row(label, pog.many, sql.many, sql.many_txn, pog.many_msyncs);
	printf("\nvs COMMIT = pogfs commit / SQLite COMMIT statement alone (like for like: both\n"
	       "exclude staging); vs txn = pogfs commit / whole SQLite transaction (BEGIN,\n"
	       "inserts, COMMIT). Goal: <= 1.0. msyncs: calls in one pogfs commit.\n"
	       "pogfs staging of %d files (not in the ratio): %.1f ms\n",
	       opt_files, pog.many_stage * 1e3);
	fflush(stdout);
	if (strcmp(opt_bulk, "0") != 0)
		bench_bulk(dir);

	if (made && !keep)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else if (made)
		printf("kept %s\n", dir);
	return 0;
}
