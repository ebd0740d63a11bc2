/* test_sessions.c - several sessions on one pool: snapshot isolation,
 * first committer wins, merges of different map keys, GC with staged
 * sessions, blocks an older base still reads, closing in any order, and
 * four sessions committing at random against a model. */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)256 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

static pog_store *session(pog_store *s)
{
	pog_store *t = NULL;
	assert_ok(pog_session_open(s, &t));
	assert_non_null(t);
	return t;
}

static int lookup(pog_store *s, const char *name, uint64_t *ino)
{
	struct pog_attr a;
	int rc = pog_lookup(s, POG_ROOT_INO, name, strlen(name), &a);
	if (rc == 0 && ino)
		*ino = a.ino;
	return rc;
}

static void assert_file(pog_store *s, const char *name, const char *text)
{
	uint64_t ino = 0;
	assert_ok(lookup(s, name, &ino));
	tu_assert_content(s, ino, text, strlen(text));
}

struct names {
	char buf[4096];
	size_t n;
};

static int add_name(void *ctx, const char *path)
{
	struct names *nm = ctx;
	nm->n += (size_t)snprintf(nm->buf + nm->n, sizeof(nm->buf) - nm->n,
				  "%s\n", path);
	return 0;
}

/* MagLev's tutorial: One commits; Two still reads the old value until it
 * aborts. */
static void test_isolation(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *one = ctx->s;
	tu_mkfile(one, POG_ROOT_INO, "hat", "old", 3);
	tu_commit_check(one, "hat");
	pog_store *two = session(one);
	assert_int_equal(pog_session_count(one), 2);

	uint64_t hat = 0;
	assert_ok(lookup(one, "hat", &hat));
	tu_write(one, hat, 0, "new", 3);
	tu_mkfile(one, POG_ROOT_INO, "rabbit", "r", 1);
	assert_file(two, "hat", "old");          /* staged elsewhere */
	tu_commit_check(one, "new hat");
	assert_file(two, "hat", "old");          /* committed elsewhere */
	assert_rc(lookup(two, "rabbit", NULL), -ENOENT);
	assert_ok(pog_abort(two));
	assert_file(two, "hat", "new");
	assert_file(two, "rabbit", "r");
	assert_int_equal(pog_close(two, 0), 0);
	assert_int_equal(pog_session_count(one), 1);
	tu_assert_fsck_clean(one);
}

/* The same file changed on both sides: the second commit fails with
 * ESTALE, applies nothing, keeps its changes and names the path. */
static void test_conflict(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *one = ctx->s;
	uint64_t f = tu_mkfile(one, POG_ROOT_INO, "f", "base", 4);
	tu_commit_check(one, "f");
	pog_store *two = session(one);
	tu_write(one, f, 0, "ONE!", 4);
	tu_write(two, f, 0, "TWO!", 4);
	tu_mkfile(two, POG_ROOT_INO, "other", "o", 1);
	uint64_t id1 = tu_commit_check(one, "one");
	assert_rc(pog_commit(two, "two", NULL), -ESTALE);
	struct names nm = {0};
	assert_ok(pog_conflicts(two, add_name, &nm));
	assert_string_equal(nm.buf, "f\n");
	struct pog_status st;
	assert_ok(pog_status(two, &st));
	assert_int_equal(st.commit_id, id1);     /* nothing applied */
	assert_non_null(strstr(st.last_error, "conflicts"));
	assert_file(two, "f", "TWO!");          /* still staged */
	assert_file(two, "other", "o");
	assert_file(one, "f", "ONE!");
	assert_true(pog_staged_count(two) > 0);
	assert_ok(pog_abort(two));
	nm.n = 0;
	nm.buf[0] = '\0';
	assert_ok(pog_conflicts(two, add_name, &nm));
	assert_int_equal(nm.n, 0);
	assert_file(two, "f", "ONE!");
	assert_rc(lookup(two, "other", NULL), -ENOENT);
	assert_ok(pog_close(two, 0));
	tu_assert_fsck_clean(one);
}

/* Different keys of one map: both commit, the second sees both; a file
 * only one side changed takes that side's content. */
static void test_merge_keys(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *one = ctx->s;
	uint64_t dir = tu_mk(one, POG_ROOT_INO, "people", POG_MAP);
	uint64_t ada = tu_mkfile(one, dir, "ada", "1815", 4);
	uint64_t bob = tu_mkfile(one, dir, "bob", "1900", 4);
	tu_commit_check(one, "people");
	pog_store *two = session(one);
	pog_store *three = session(one);
	tu_mkfile(one, dir, "carl", "1777", 4);
	tu_write(one, ada, 0, "1816", 4);
	tu_mkfile(two, dir, "dora", "1930", 4);
	tu_mk(two, dir, "sub", POG_MAP);
	tu_write(two, bob, 0, "1901", 4);
	assert_ok(pog_remove(three, dir, "bob", 3, 0));
	tu_commit_check(one, "carl");
	tu_commit_check(two, "dora");            /* merged onto one's */
	assert_int_equal(tu_count_entries(two, dir), 5);
	tu_assert_content(two, ada, "1816", 4);
	assert_rc(pog_commit(three, "bob goes", NULL), -ESTALE);
	struct names nm = {0};
	assert_ok(pog_conflicts(three, add_name, &nm));
	assert_string_equal(nm.buf, "people/bob\n");
	assert_ok(pog_abort(three));
	struct pog_attr a;
	assert_ok(pog_getattr(three, dir, &a));
	assert_int_equal(a.nlink, 3);            /* sub counts */
	tu_assert_content(three, tu_lookup(three, dir, "bob"), "1901", 4);
	tu_assert_content(three, tu_lookup(three, dir, "carl"), "1777", 4);
	tu_assert_content(three, tu_lookup(three, dir, "dora"), "1930", 4);
	tu_assert_content(three, tu_lookup(three, dir, "ada"), "1816", 4);
	assert_int_equal(tu_count_entries(three, dir), 5);
	assert_ok(pog_close(three, 0));
	assert_ok(pog_close(two, 0));
	assert_ok(pog_abort(one));
	assert_int_equal(tu_count_entries(one, dir), 5);
	tu_assert_fsck_clean(one);
	tu_reopen(ctx);
	assert_int_equal(tu_count_entries(ctx->s, dir), 5);
	tu_assert_fsck_clean(ctx->s);
}

/* A session at an older base reads what later commits replaced and GC
 * collected around it; GC works with changes staged anywhere and keeps
 * them. */
static void test_old_base_and_gc(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *one = ctx->s;
	size_t big = 3u << 20;
	char *data = malloc(big), *other = malloc(big);
	assert_non_null(data);
	assert_non_null(other);
	tu_fill_random(data, big, 1);
	tu_fill_random(other, big, 2);
	uint64_t f = tu_mkfile(one, POG_ROOT_INO, "big", data, big);
	tu_mkfile(one, POG_ROOT_INO, "gone", data, 1 << 20);
	tu_commit_check(one, "big");
	pog_store *two = session(one);
	tu_mkfile(two, POG_ROOT_INO, "mine", "staged", 6);
	/* one rewrites and removes what two's base holds, commits, GCs */
	for (int i = 0; i < 3; i++) {
		tu_write(one, f, 0, i % 2 ? data : other, big);
		tu_commit_check(one, "rewrite");
	}
	assert_ok(pog_remove(one, POG_ROOT_INO, "gone", 4, 0));
	tu_mkfile(one, POG_ROOT_INO, "staged-in-one", "x", 1);
	struct pog_gc_result gc;
	assert_ok(pog_gc(one, &gc));              /* one has changes staged */
	assert_ok(pog_gc(two, &gc));
	/* the new rewrites reuse freed blocks: two must still read its base */
	for (int i = 0; i < 2; i++) {
		tu_write(one, f, 0, i % 2 ? other : data, big);
		tu_commit_check(one, "rewrite again");
	}
	tu_assert_content(two, f, data, big);
	tu_assert_content(two, tu_lookup(two, POG_ROOT_INO, "gone"), data,
			  1 << 20);
	assert_file(two, "mine", "staged");
	assert_file(one, "staged-in-one", "x");
	tu_commit_check(two, "mine");             /* merge */
	tu_assert_content(two, f, other, big);
	assert_rc(lookup(two, "gone", NULL), -ENOENT);
	assert_file(two, "staged-in-one", "x"); /* one committed it since */
	tu_commit_check(one, "one");
	assert_file(one, "mine", "staged");
	/* closing the first-opened session first leaves the pool open */
	assert_ok(pog_close(one, 0));
	ctx->s = two;
	assert_ok(pog_set_keep(two, 1)); /* history holds no older commit */
	assert_ok(pog_gc(two, &gc));
	tu_assert_fsck_clean(two);
	struct pog_status st;
	assert_ok(pog_status(two, &st));
	/* what is left: about the big file, gone and the rest freed */
	assert_true(st.blocks_used * st.block_size < big + (2u << 20));
	tu_reopen(ctx);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, POG_ROOT_INO, "big"), other,
			  big);
	tu_assert_fsck_clean(ctx->s);
	free(data);
	free(other);
}

/* ---- four sessions at random against a model -------------------------- */

#define NKEYS 12
#define NSESS 4

/* A key's object: its ino and a version that grows with every write. */
struct mobj {
	uint64_t ino;      /* 0: no such key */
	unsigned version;
	char text[17];
};

enum { UNTOUCHED, WRITTEN, REMOVED };

struct msess {
	pog_store *s;
	struct mobj base[NKEYS], view[NKEYS];
	int base_obj[NKEYS]; /* what this session did to the base's object */
	bool dirty;          /* something staged */
};

static void key_name(int k, char *buf)
{
	sprintf(buf, "k%02d", k);
}

/* What the latest commit did to the base's object at key k (no renames
 * here: an object that left its key was removed). */
static int latest_did(const struct mobj *b, const struct mobj *l)
{
	if (!b->ino)
		return UNTOUCHED;
	if (l->ino != b->ino)
		return REMOVED;
	return l->version != b->version ? WRITTEN : UNTOUCHED;
}

/* First committer wins: the map entry changed on both sides to different
 * objects, or the base's object changed on both sides (removing it on
 * both sides agrees). */
static bool overlaps(const struct msess *m, const struct mobj *latest)
{
	for (int k = 0; k < NKEYS; k++) {
		const struct mobj *b = &m->base[k], *l = &latest[k],
				  *v = &m->view[k];
		if (v->ino != b->ino && l->ino != b->ino && l->ino != v->ino)
			return true;
		int mine = m->base_obj[k], theirs = latest_did(b, l);
		if (mine && theirs && !(mine == REMOVED && theirs == REMOVED))
			return true;
	}
	return false;
}

static void check_view(pog_store *s, const struct mobj *want)
{
	for (int k = 0; k < NKEYS; k++) {
		char name[8];
		key_name(k, name);
		uint64_t ino;
		int rc = lookup(s, name, &ino);
		if (!want[k].ino) {
			assert_rc(rc, -ENOENT);
			continue;
		}
		assert_ok(rc);
		assert_int_equal(ino, want[k].ino);
		tu_assert_content(s, ino, want[k].text, 16);
	}
}

static void test_random_sessions(void **state)
{
	struct tu_ctx *ctx = *state;
	struct mobj latest[NKEYS] = {{0}};
	struct msess ms[NSESS] = {{0}};
	uint64_t rng = 0x5e55105;
	unsigned stamp = 0, commits = 0, conflicts = 0;
	ms[0].s = ctx->s;
	for (int i = 1; i < NSESS; i++)
		ms[i].s = session(ctx->s);
	for (int step = 0; step < 1500; step++) {
		struct msess *m = &ms[tu_rand64(&rng) % NSESS];
		int k = (int)(tu_rand64(&rng) % NKEYS);
		char name[8];
		key_name(k, name);
		struct mobj *v = &m->view[k];
		unsigned op = (unsigned)(tu_rand64(&rng) % 10);
		if (op < 7 && (op < 5 || v->ino))
			m->dirty = true;
		if (op < 5) { /* create, or write 16 new bytes */
			char text[17];
			snprintf(text, sizeof(text), "%016u", ++stamp);
			if (!v->ino) {
				v->ino = tu_mkfile(m->s, POG_ROOT_INO, name, text, 16);
				v->version = 0;
			} else {
				tu_write(m->s, v->ino, 0, text, 16);
				v->version++;
				if (v->ino == m->base[k].ino)
					m->base_obj[k] = WRITTEN;
			}
			memcpy(v->text, text, sizeof(text));
		} else if (op < 7) { /* remove */
			if (!v->ino)
				continue;
			assert_ok(pog_remove(m->s, POG_ROOT_INO, name, 3, 0));
			if (v->ino == m->base[k].ino)
				m->base_obj[k] = REMOVED;
			memset(v, 0, sizeof(*v));
		} else if (op < 9) { /* commit */
			bool expect_conflict = overlaps(m, latest);
			int rc = pog_commit(m->s, "random", NULL);
			if (expect_conflict) {
				assert_rc(rc, -ESTALE);
				conflicts++;
				assert_ok(pog_abort(m->s));
			} else {
				assert_ok(rc);
				commits++;
				for (int j = 0; j < NKEYS; j++) {
					if (m->view[j].ino != m->base[j].ino ||
					    m->base_obj[j])
						latest[j] = m->view[j];
				}
			}
			memcpy(m->base, latest, sizeof(latest));
			memcpy(m->view, latest, sizeof(latest));
			memset(m->base_obj, 0, sizeof(m->base_obj));
			m->dirty = false;
			check_view(m->s, latest);
		} else { /* abort */
			assert_ok(pog_abort(m->s));
			memcpy(m->base, latest, sizeof(latest));
			memcpy(m->view, latest, sizeof(latest));
			memset(m->base_obj, 0, sizeof(m->base_obj));
			m->dirty = false;
		}
		check_view(m->s, m->view);
		if (step % 300 == 299) {
			struct pog_gc_result gc;
			assert_ok(pog_gc(m->s, &gc));
			/* sessions with nothing staged moved past GC's commits */
			for (int i = 0; i < NSESS; i++) {
				if (!ms[i].dirty) {
					memcpy(ms[i].base, latest, sizeof(latest));
					memcpy(ms[i].view, latest, sizeof(latest));
				}
				check_view(ms[i].s, ms[i].view);
			}
		}
	}
	print_message("    %u commits, %u conflicts\n", commits, conflicts);
	assert_true(commits > 100 && conflicts > 10);
	for (int i = 1; i < NSESS; i++)
		pog_close(ms[i].s, 0);
	assert_ok(pog_abort(ctx->s));
	check_view(ctx->s, latest);
	tu_assert_fsck_clean(ctx->s);
}

/* Closing sessions in every order: the pool closes with the last one. */
static void test_close_orders(void **state)
{
	struct tu_ctx *ctx = *state;
	static const int orders[6][3] = {
		{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0},
	};
	for (int o = 0; o < 6; o++) {
		pog_store *s[3] = {ctx->s, NULL, NULL};
		s[1] = session(s[0]);
		s[2] = session(s[1]);
		char name[16];
		for (int i = 0; i < 3; i++) {
			snprintf(name, sizeof(name), "o%d-s%d", o, i);
			tu_mkfile(s[i], POG_ROOT_INO, name, "x", 1);
		}
		tu_commit_check(s[1], "one of three");
		for (int i = 0; i < 3; i++)
			assert_true((pog_close(s[orders[o][i]], 0) > 0) ==
				    (orders[o][i] != 1));
		ctx->s = NULL;
		assert_ok(pog_open(ctx->pool, 0, &ctx->s));
		snprintf(name, sizeof(name), "o%d-s1", o);
		assert_ok(lookup(ctx->s, name, NULL));
		snprintf(name, sizeof(name), "o%d-s0", o);
		assert_rc(lookup(ctx->s, name, NULL), -ENOENT);
		tu_assert_fsck_clean(ctx->s);
	}
}

/* What a moving view changed (pog_track_moves): the objects whose records
 * differ, the names removed (with the inode the old view gave) and added,
 * every name under a removed map, and nothing else. */
static const struct pog_moved_name *moved_name(const struct pog_moved *m,
					       uint64_t dir, const char *name)
{
	for (size_t i = 0; i < m->nnames; i++)
		if (m->names[i].dir == dir && strcmp(m->names[i].name, name) == 0)
			return &m->names[i];
	return NULL;
}

static bool moved_ino(const struct pog_moved *m, uint64_t ino)
{
	for (size_t i = 0; i < m->ninos; i++)
		if (m->inos[i] == ino)
			return true;
	return false;
}

static void test_moved(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *one = ctx->s;
	uint64_t f = tu_mkfile(one, POG_ROOT_INO, "f", "1", 1);
	uint64_t same = tu_mkfile(one, POG_ROOT_INO, "same", "s", 1);
	uint64_t gone = tu_mkfile(one, POG_ROOT_INO, "gone", "g", 1);
	uint64_t d = tu_mk(one, POG_ROOT_INO, "d", POG_MAP);
	uint64_t in = tu_mkfile(one, d, "in", "i", 1);
	tu_commit_check(one, "base");
	pog_store *two = session(one);
	pog_track_moves(two, true);
	tu_write(one, f, 0, "2", 1);
	assert_ok(pog_remove(one, POG_ROOT_INO, "gone", 4, 0));
	assert_ok(pog_remove(one, d, "in", 2, 0));
	assert_ok(pog_remove(one, POG_ROOT_INO, "d", 1, POG_REMOVE_DIR));
	uint64_t added = tu_mkfile(one, POG_ROOT_INO, "added", "a", 1);
	tu_commit_check(one, "changes");
	/* two's own staged file goes with the abort too */
	uint64_t mine = tu_mkfile(two, POG_ROOT_INO, "mine", "m", 1);
	assert_ok(pog_abort(two));
	struct pog_moved m;
	pog_take_moved(two, &m);
	assert_false(m.all);
	assert_true(moved_ino(&m, f));
	assert_true(moved_ino(&m, POG_ROOT_INO));
	assert_true(moved_ino(&m, added));
	assert_true(moved_ino(&m, mine));
	assert_false(moved_ino(&m, same));
	const struct pog_moved_name *n = moved_name(&m, POG_ROOT_INO, "gone");
	assert_non_null(n);
	assert_true(n->removed);
	assert_int_equal(n->child, gone);
	n = moved_name(&m, POG_ROOT_INO, "mine");
	assert_non_null(n);
	assert_true(n->removed);
	assert_int_equal(n->child, mine);
	n = moved_name(&m, POG_ROOT_INO, "added");
	assert_non_null(n);
	assert_false(n->removed);
	assert_int_equal(n->child, added);
	n = moved_name(&m, d, "in");              /* under the removed map */
	assert_non_null(n);
	assert_true(n->removed);
	assert_int_equal(n->child, in);
	assert_null(moved_name(&m, POG_ROOT_INO, "same"));
	assert_null(moved_name(&m, POG_ROOT_INO, "f"));
	pog_moved_clear(&m);
	/* nothing moved since: nothing to tell; a commit at the latest
	 * does not move the view */
	pog_take_moved(two, &m);
	assert_int_equal(m.ninos + m.nnames + m.nlists, 0);
	tu_mkfile(two, POG_ROOT_INO, "two", "t", 1);
	tu_commit_check(two, "two");
	pog_take_moved(two, &m);
	assert_int_equal(m.ninos + m.nnames + m.nlists, 0);
	/* a commit onto one's newer commit: what one changed, not two's own */
	tu_write(one, f, 0, "3", 1);
	tu_commit_check(one, "one again");
	tu_mkfile(two, POG_ROOT_INO, "two2", "t", 1);
	tu_commit_check(two, "two again");
	pog_take_moved(two, &m);
	assert_true(moved_ino(&m, f));
	assert_null(moved_name(&m, POG_ROOT_INO, "two2"));
	pog_moved_clear(&m);
	assert_ok(pog_close(two, POG_CLOSE_NOGC));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_isolation, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_conflict, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_merge_keys, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_old_base_and_gc, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_random_sessions, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_moved, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_close_orders, setup,
						tu_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
