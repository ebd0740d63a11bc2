/* test_lists.c - lists as counted trees: names within a transaction, ranks after commit, respacing, the format-2 upgrade. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "store_int.h" /* last_commit_fresh: blocks a commit wrote */

#define MAXN 8192

/* ---- what a readdir shows ------------------------------------------------ */

struct listing {
	size_t n, cap;
	char (*names)[80];
	uint64_t *inos;
	size_t batch, in_batch; /* stop after batch entries (0: never) */
	uint64_t cookie;
};

static int collect(void *ctx, const char *name, size_t len,
		   const struct pog_attr *a, uint64_t next)
{
	struct listing *l = ctx;
	if (l->batch && l->in_batch == l->batch)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->names = realloc(l->names, l->cap * sizeof(*l->names));
		l->inos = realloc(l->inos, l->cap * sizeof(*l->inos));
		assert_non_null(l->names);
		assert_non_null(l->inos);
	}
	assert_true(len < sizeof(l->names[0]));
	memcpy(l->names[l->n], name, len);
	l->names[l->n][len] = '\0';
	l->inos[l->n++] = a->ino;
	l->in_batch++;
	l->cookie = next;
	return 0;
}

/* The whole listing, read in batches of `batch` entries (0: at once)
 * resumed by cookie, as the kernel reads a big directory. */
static struct listing list_all(pog_store *s, uint64_t dir, size_t batch)
{
	struct listing l = {0};
	l.batch = batch;
	for (;;) {
		size_t before = l.n;
		l.in_batch = 0;
		int r = pog_readdir(s, dir, l.cookie, collect, &l);
		assert_true(r >= 0);
		if (!batch || l.n == before || l.in_batch < batch)
			break;
	}
	return l;
}

static void listing_free(struct listing *l)
{
	free(l->names);
	free(l->inos);
}

/* ---- a model of a list: names in order, and the objects ------------- */

struct model {
	size_t n;
	char names[MAXN][80];
	uint64_t inos[MAXN];
};

/* Objects the random test gave a second name (hard links). */
static uint64_t linked_inos[MAXN];
static size_t nlinked;

static bool linked(uint64_t ino)
{
	for (size_t i = 0; i < nlinked; i++)
		if (linked_inos[i] == ino)
			return true;
	return false;
}

static void model_check(pog_store *s, uint64_t list, const struct model *m,
			size_t batch)
{
	struct listing l = list_all(s, list, batch);
	if (l.n != m->n)
		fail_msg("listing has %zu entries, model %zu", l.n, m->n);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(l.names[i], m->names[i]) || l.inos[i] != m->inos[i])
			fail_msg("entry %zu: listed %s (%" PRIu64 "), model %s (%" PRIu64 ")",
				 i, l.names[i], l.inos[i], m->names[i], m->inos[i]);
	}
	listing_free(&l);
	/* every name looks up, and the path of every child names one of
	 * its entries (a hard link whose owning entry went has none) */
	for (size_t i = 0; i < m->n; i += 1 + m->n / 64) {
		assert_int_equal(tu_lookup(s, list, m->names[i]), m->inos[i]);
		char path[256], want[256];
		ssize_t n = pog_path(s, m->inos[i], path, sizeof(path));
		bool named = false;
		for (size_t j = 0; j < m->n && n > 0 && !named; j++) {
			snprintf(want, sizeof(want), "l/%s", m->names[j]);
			named = m->inos[j] == m->inos[i] && strcmp(path, want) == 0;
		}
		if (!named && !linked(m->inos[i]))
			fail_msg("path of %s (%" PRIu64 "): %s %zd", m->names[i], m->inos[i], n > 0 ? path : "none", n);
	}
}

static void model_renumber(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		snprintf(m->names[i], sizeof(m->names[i]), "%zu", i);
}

static void model_insert(struct model *m, size_t at, const char *name,
			 uint64_t ino)
{
	memmove(m->names + at + 1, m->names + at, (m->n - at) * sizeof(m->names[0]));
	memmove(m->inos + at + 1, m->inos + at, (m->n - at) * sizeof(m->inos[0]));
	snprintf(m->names[at], sizeof(m->names[at]), "%s", name);
	m->inos[at] = ino;
	m->n++;
}

static void model_remove(struct model *m, size_t at)
{
	memmove(m->names + at, m->names + at + 1, (m->n - at - 1) * sizeof(m->names[0]));
	memmove(m->inos + at, m->inos + at + 1, (m->n - at - 1) * sizeof(m->inos[0]));
	m->n--;
}

/* Fraction digits of a decimal name ("" for an integer). */
static const char *frac_of(const char *name)
{
	const char *p = strchr(name, '.');
	return p ? p + 1 : "";
}

/*
 * A name strictly between a and b (b NULL: after a): a padded with zeros
 * past both fractions, then 1 (a + 10^-(L+1) < b). NULL when too long.
 */
static int name_between(const char *a, const char *b, char *out, size_t size)
{
	if (!b)
		return snprintf(out, size, "%llu", strtoull(a, NULL, 10) + 1 +
					     (unsigned long long)(strlen(a) % 3));
	size_t fa = strlen(frac_of(a)), fb = strlen(frac_of(b));
	size_t L = (fa > fb ? fa : fb) + 1;
	if (L + 24 > size)
		return -1;
	int n = snprintf(out, size, "%s%s", a, fa ? "" : ".");
	for (size_t i = fa; i < L; i++)
		out[n++] = '0';
	out[n++] = '1';
	out[n] = '\0';
	return n;
}

static uint64_t mkfile(pog_store *s, uint64_t dir, const char *name)
{
	return tu_mkfile(s, dir, name, name, strlen(name));
}

/* ---- the tests ----------------------------------------------------------- */

static uint64_t make_list(pog_store *s, size_t n, struct model *m)
{
	uint64_t list = tu_mk(s, POG_ROOT_INO, "l", POG_LIST);
	m->n = 0;
	for (size_t i = 0; i < n; i++) {
		char name[24];
		snprintf(name, sizeof(name), "%zu", i);
		model_insert(m, i, name, mkfile(s, list, name));
	}
	return list;
}

static int count_dir(void *ctx, uint64_t dir)
{
	(void)dir;
	(*(int *)ctx)++;
	return 0;
}

static int renumbered_lists(pog_store *s)
{
	int n = 0;
	assert_ok(pog_renumbered(s, count_dir, &n));
	return n;
}

/* Removing entry 0 keeps the others' names until the commit, which
 * writes a few blocks (no entry is renumbered) and names them 0..n-2. */
static void test_front_removal(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static struct model m;
	uint64_t list = make_list(s, 3000, &m);
	tu_commit_check(s, "built");
	assert_int_equal(renumbered_lists(s), 0); /* 0..n-1 as made */

	assert_ok(pog_remove(s, list, "0", 1, 0));
	model_remove(&m, 0);
	struct pog_attr a;
	assert_rc(pog_lookup(s, list, "0", 1, &a), -ENOENT);
	model_check(s, list, &m, 0);
	tu_commit_check(s, "front");
	assert_true(s->env->last_commit_fresh <= 16);
	assert_int_equal(renumbered_lists(s), 1);
	model_renumber(&m);
	model_check(s, list, &m, 0);

	/* the last one: nobody else's name changes */
	assert_ok(pog_remove(s, list, "2998", 4, 0));
	model_remove(&m, 2998);
	tu_commit_check(s, "back");
	assert_true(s->env->last_commit_fresh <= 16);
	assert_int_equal(renumbered_lists(s), 0);
	model_check(s, list, &m, 0);
	tu_reopen(ctx);
	model_check(ctx->s, list, &m, 0);
}

/* Numbers are positions; fractions go between; the next free number
 * appends; a failed commit (temporary entry) and abort change no name. */
static void test_positions(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static struct model m;
	uint64_t list = make_list(s, 5, &m);
	tu_commit_check(s, "built");

	model_insert(&m, 3, "2.5", mkfile(s, list, "2.5"));
	model_insert(&m, 3, "2.25", mkfile(s, list, "2.25"));
	model_insert(&m, 7, "9", mkfile(s, list, "9"));
	model_insert(&m, 1, "0.5", mkfile(s, list, "0.5"));
	assert_ok(pog_remove(s, list, "1", 1, 0));
	model_remove(&m, 2);
	/* a name taken, and the freed one again */
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	struct pog_attr a;
	assert_rc(pog_mknode(s, list, "2.5", 3, &spec, &a), -EEXIST);
	assert_rc(pog_mknode(s, list, "0", 1, &spec, &a), -EEXIST);
	model_insert(&m, 2, "1", mkfile(s, list, "1"));
	model_check(s, list, &m, 0);

	/* a temporary entry refuses the commit and changes nothing */
	uint64_t tmp = mkfile(s, list, ".tmp");
	assert_rc(pog_commit(s, "refused", NULL), -EINVAL);
	struct pog_status *st = malloc(sizeof(*st));
	assert_non_null(st);
	assert_ok(pog_status(s, st));
	assert_non_null(strstr(st->last_error, "l/.tmp"));
	free(st);
	model_insert(&m, m.n, ".tmp", tmp);
	model_check(s, list, &m, 0);
	assert_ok(pog_remove(s, list, ".tmp", 4, 0));
	model_remove(&m, m.n - 1);

	/* an exchange keeps the names, the objects swap */
	assert_ok(pog_rename(s, list, "0", 1, list, "9", 1, POG_RENAME_EXCHANGE));
	uint64_t t = m.inos[0];
	m.inos[0] = m.inos[m.n - 1];
	m.inos[m.n - 1] = t;
	model_check(s, list, &m, 0);

	/* abort: back to 0..4 */
	assert_ok(pog_abort(s));
	static struct model fresh;
	fresh.n = 0;
	for (size_t i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%zu", i);
		model_insert(&fresh, i, name, tu_lookup(s, list, name));
	}
	model_check(s, list, &fresh, 0);

	/* and again, committed this time */
	m = fresh;
	model_insert(&m, 3, "2.5", mkfile(s, list, "2.5"));
	tu_commit_check(s, "positions");
	model_renumber(&m);
	model_check(s, list, &m, 0);
}

/* Many insertions at one point respace the keys around it (the moved
 * entries keep their names and their paths); a readdir resumed by cookie
 * meets every entry once, fractions of one integer part included. */
static void test_respace_and_cookies(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static struct model m;
	uint64_t list = make_list(s, 40, &m);
	tu_commit_check(s, "built");
	/* always just after 0: the keys halve their gap each time */
	for (size_t k = 0; k < 600; k++) {
		char name[80];
		/* each below the last one made: 0.99991, 0.99981, ... */
		snprintf(name, sizeof(name), "0.%04zu1", 9999 - k);
		model_insert(&m, 1, name, mkfile(s, list, name));
	}
	model_check(s, list, &m, 0);
	model_check(s, list, &m, 7);
	tu_commit_check(s, "respaced");
	model_renumber(&m);
	model_check(s, list, &m, 0);
	/* 5,000 fractions of one integer part, read back 100 at a time */
	for (size_t k = 0; k < 5000; k++) {
		char name[80];
		snprintf(name, sizeof(name), "3.%05zu1", k);
		size_t at = 4 + k;
		model_insert(&m, at, name, mkfile(s, list, name));
	}
	model_check(s, list, &m, 100);
	tu_commit_check(s, "group");
	model_renumber(&m);
	model_check(s, list, &m, 100);
}

/* Random edits against a model: create (numbers, fractions), remove,
 * rename within the list, link, commit and abort. */
static void test_random_model(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static struct model m, committed;
	uint64_t list = make_list(s, 30, &m);
	tu_commit_check(s, "built");
	committed = m;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	for (int step = 0; step < 3000; step++) {
		uint64_t r = tu_rand64(&rng);
		unsigned op = r % 100;
		char name[80] = "";
		if (op < 45 && m.n + 1 < MAXN) {
			/* insert: often at the same point (near the front) */
			size_t at = (r >> 8) % 2 ? 1 : (size_t)((r >> 16) % (m.n + 1));
			if (at == 0 && m.n && strcmp(m.names[0], "0") == 0)
				at = 1;
			if (at > m.n)
				at = m.n;
			int n = at == 0 ? snprintf(name, sizeof(name), "0")
			      : name_between(m.names[at - 1],
					     at < m.n ? m.names[at] : NULL, name,
					     sizeof(name));
			if (n < 0)
				continue;
			if ((r >> 40) % 4 == 0 && m.n) {
				/* a hard link to an existing file */
				size_t from = (r >> 24) % m.n;
				struct pog_attr a;
				assert_ok(pog_link(s, m.inos[from], list, name,
						   strlen(name), &a));
				if (nlinked < MAXN)
					linked_inos[nlinked++] = m.inos[from];
				model_insert(&m, at, name, m.inos[from]);
			} else {
				model_insert(&m, at, name, mkfile(s, list, name));
			}
		} else if (op < 75 && m.n) {
			size_t at = (r >> 8) % m.n;
			assert_ok(pog_remove(s, list, m.names[at],
					     strlen(m.names[at]), 0));
			model_remove(&m, at);
		} else if (op < 92 && m.n > 1) {
			/* rename within the list, to a new place */
			size_t from = (r >> 8) % m.n;
			char old[80];
			uint64_t ino = m.inos[from];
			snprintf(old, sizeof(old), "%s", m.names[from]);
			model_remove(&m, from);
			size_t at = (size_t)((r >> 20) % (m.n + 1));
			if (at == 0)
				at = 1;
			if (at > m.n)
				at = m.n;
			int n = name_between(m.names[at - 1],
					     at < m.n ? m.names[at] : NULL, name,
					     sizeof(name));
			if (n < 0) {
				model_insert(&m, from, old, ino);
				continue;
			}
			assert_ok(pog_rename(s, list, old, strlen(old), list, name,
					     strlen(name), 0));
			model_insert(&m, at, name, ino);
		} else if (op < 97) {
			tu_commit_check(s, "step");
			model_renumber(&m);
			committed = m;
		} else {
			assert_ok(pog_abort(s));
			m = committed;
		}
		if (step % 50 == 0)
			model_check(s, list, &m, step % 100 ? 0 : 9);
	}
	model_check(s, list, &m, 0);
	tu_commit_check(s, "end");
	model_renumber(&m);
	tu_reopen(ctx);
	model_check(ctx->s, list, &m, 13);
	tu_assert_fsck_clean(ctx->s);
}

/* ---- the format-2 pool that main made ------------------------------------- */

static char *fixture(const char *name)
{
	const char *dir = getenv("POG_TEST_FIXTURES");
	char *p = tu_join(dir ? dir : "tests/unit/fixtures", name);
	return p;
}

/* Unpack fixtures/format2.pool.gz into path. */
static void gunzip_to(const char *gz, const char *path)
{
	gzFile in = gzopen(gz, "rb");
	if (!in)
		fail_msg("cannot open %s", gz);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	char buf[65536];
	int n;
	while ((n = gzread(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(fd, buf, (size_t)n), n);
	assert_true(n == 0);
	gzclose(in);
	close(fd);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void assert_export_is(pog_store *s, const char *want, size_t len)
{
	struct tu_buf got = tu_export(s, POG_ROOT_INO);
	struct tu_buf w = {(char *)want, len, len};
	tu_assert_same_doc(&w, &got, "export of the upgraded pool");
	free(got.data);
}

/* Set the superblock's format_version in the pool file. */
static void set_format_version(const char *pool, uint32_t version)
{
	int fd = open(pool, O_RDWR);
	assert_true(fd >= 0);
	size_t size = 64u << 20;
	char *buf = malloc(size);
	assert_non_null(buf);
	ssize_t n = pread(fd, buf, size, 0);
	assert_true(n > 16);
	char *at = memmem(buf, (size_t)n, "POGPOOL1", 8);
	assert_non_null(at);
	assert_int_equal(pwrite(fd, &version, 4, (at - buf) + 8), 4);
	free(buf);
	close(fd);
}

/* A pool made by format-2 pogfs (lists, nested lists, a ref into a list,
 * a hard link in a list, xattrs) reads the same read-only, and a
 * writable open upgrades it in one commit, keeping every value. A newer
 * format than this pogfs knows is refused. */
static void test_format2_upgrade(void **state)
{
	struct tu_ctx *ctx = *state;
	char *gz = fixture("format2.pool.gz"), *js = fixture("format2.json");
	size_t want_len;
	char *want = slurp(js, &want_len);
	gunzip_to(gz, ctx->pool);
	uint32_t version = 0;
	assert_ok(pog_pool_format(ctx->pool, &version));
	assert_int_equal(version, 2);

	pog_store *s;
	assert_ok(pog_open(ctx->pool, POG_OPEN_READONLY, &s));
	assert_export_is(s, want, want_len);
	uint64_t big = tu_lookup(s, POG_ROOT_INO, "big");
	tu_assert_content(s, tu_lookup(s, big, "1499"), "1499", 4);
	struct listing l = list_all(s, big, 64);
	assert_int_equal(l.n, 1500);
	assert_string_equal(l.names[1234], "1234");
	listing_free(&l);
	tu_assert_fsck_clean(s);
	assert_ok(pog_close(s, POG_CLOSE_NOGC));

	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	s = ctx->s;
	struct pog_status st;
	assert_ok(pog_status(s, &st));
	assert_int_equal(st.format_version, pog_format_version());
	assert_export_is(s, want, want_len);
	tu_assert_fsck_clean(s);
	/* the ref into the list follows its entry; the list takes edits */
	char path[64];
	assert_true(pog_path(s, tu_lookup(s, big, "1499"), path, sizeof(path)) > 0);
	assert_string_equal(path, "big/1499");
	assert_ok(pog_remove(s, big, "0", 1, 0));
	(void)mkfile(s, big, "0.5");
	tu_commit_check(s, "after the upgrade");
	tu_assert_content(s, tu_lookup(s, big, "0"), "0.5", 3);
	tu_assert_content(s, tu_lookup(s, big, "1"), "1", 1);
	tu_assert_content(s, tu_lookup(s, big, "1499"), "1499", 4);
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
	assert_ok(pog_close(ctx->s, POG_CLOSE_NOGC));
	ctx->s = NULL;

	/* what a pogfs older than the pool's format does */
	set_format_version(ctx->pool, pog_format_version() + 1);
	assert_rc(pog_open(ctx->pool, 0, &s), POG_ENEWER);
	set_format_version(ctx->pool, pog_format_version());
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
	free(want);
	free(gz);
	free(js);
}

static int setup(void **state)
{
	return tu_state_setup(state, NULL, 256u << 20);
}

static int setup_empty(void **state)
{
	return tu_state_setup(state, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_front_removal, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_positions, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_respace_and_cookies, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_random_model, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_format2_upgrade, setup_empty,
						tu_state_teardown),
	};
	return cmocka_run_group_tests_name("lists", tests, NULL, NULL);
}
