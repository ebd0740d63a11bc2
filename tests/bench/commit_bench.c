/* commit_bench.c - commit latency of pogfs against SQLite (WAL, synchronous=FULL) on the same disk. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "pog.h"

/*
 * Usage: commit_bench [-d DIR] [-n COMMITS] [-f FILES] [-r ROUNDS] [-k]
 *
 * In one run, on one directory (default: a fresh temp dir under /var/tmp,
 * an ordinary disk, not tmpfs), measures
 *   (a) the latency of committing one small change: the median over
 *       COMMITS commits, each rewriting one small file (pogfs) or one row
 *       (SQLite);
 *   (b) committing FILES new small files (pogfs: staged first, only
 *       pog_commit is timed) against FILES rows inserted in one SQLite
 *       transaction; the median over ROUNDS rounds.
 * SQLite runs with journal_mode=WAL, synchronous=FULL. For SQLite both
 * the COMMIT statement alone and the whole transaction are shown, and
 * the ratio of pog_commit to each (goal: <= 2.0).
 */

#define SMALL 100 /* bytes per small file / row */

static int opt_commits = 50;
static int opt_files = 10000;
static int opt_rounds = 3;

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
};

/* ---- pogfs -------------------------------------------------------------- */

static void bench_pogfs(const char *dir, struct result *res)
{
	char path[4096], buf[SMALL], name[32];
	double *lat = calloc((size_t)opt_commits, sizeof(double));
	double *many = calloc((size_t)opt_rounds, sizeof(double));
	double *stage = calloc((size_t)opt_rounds, sizeof(double));
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
		t = now();
		check_pog(pog_commit(s, "one change", NULL), "pog_commit");
		lat[i] = now() - t;
	}
	res->one = median(lat, opt_commits);

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
		t = now();
		check_pog(pog_commit(s, "many files", NULL), "pog_commit");
		many[r] = now() - t;
	}
	res->many = median(many, opt_rounds);
	res->many_stage = median(stage, opt_rounds);
	pog_close(s, POG_CLOSE_NOGC);
	free(lat);
	free(many);
	free(stage);
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
		"usage: commit_bench [-d DIR] [-n COMMITS] [-f FILES] [-r ROUNDS] [-k]\n"
		"  Compare pogfs commits with SQLite (WAL, synchronous=FULL) on one disk.\n"
		"  -d DIR     work in DIR (default: a new temp dir under /var/tmp)\n"
		"  -n COMMITS commits of one small change (default 50; median)\n"
		"  -f FILES   new files / rows per big commit (default 10000)\n"
		"  -r ROUNDS  rounds of the big commit (default 3; median)\n"
		"  -k         keep the files afterwards\n");
}

static void row(const char *what, double pog, double sql, double sql_txn)
{
	double ratio = pog / sql, ratio_txn = pog / sql_txn;

	printf("%-28s %10.3f ms %10.3f ms %10.3f ms %6.2f %-4s %6.2f %-4s\n",
	       what, pog * 1e3, sql * 1e3, sql_txn * 1e3, ratio,
	       ratio <= 2.0 ? "ok" : "OVER", ratio_txn,
	       ratio_txn <= 2.0 ? "ok" : "OVER");
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
	while ((c = getopt_long(argc, argv, "d:n:f:r:kh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': opt_commits = atoi(optarg); break;
		case 'f': opt_files = atoi(optarg); break;
		case 'r': opt_rounds = atoi(optarg); break;
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

	printf("\n%-28s %13s %13s %13s %11s %11s\n", "", "pogfs commit",
	       "SQLite COMMIT", "SQLite txn", "vs COMMIT", "vs txn");
	snprintf(label, sizeof(label), "1 small change (med. of %d)",
		 opt_commits);
	row(label, pog.one, sql.one, sql.one_txn);
	snprintf(label, sizeof(label), "%d new files (med. of %d)", opt_files,
		 opt_rounds);
	row(label, pog.many, sql.many, sql.many_txn);
	printf("\nvs COMMIT = pogfs commit / SQLite COMMIT statement alone (like for like: both\n"
	       "exclude staging); vs txn = pogfs commit / whole SQLite transaction (BEGIN,\n"
	       "inserts, COMMIT). Goal: <= 2.0.\n"
	       "pogfs staging of %d files (not in the ratio): %.1f ms\n",
	       opt_files, pog.many_stage * 1e3);

	if (made && !keep)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else if (made)
		printf("kept %s\n", dir);
	return 0;
}
