/* test_maps.c - maps: create/lookup/remove, readdir cookies, name escaping. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SIZE ((uint64_t)256 << 20)

static int setup(void **state)
{
	return tu_state_setup(state, NULL, POOL_SIZE);
}

#define NAMES 300

struct listing {
	size_t n, cap;
	char **names;
	uint64_t *inos;
	uint64_t *cookies;
	size_t stop_after; /* return 1 when the listing has this many (0: never) */
};

static int listing_fn(void *vctx, const char *name, size_t len,
		      const struct pog_attr *attr, uint64_t next_cookie)
{
	struct listing *l = vctx;

	if (l->stop_after && l->n == l->stop_after)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->names = realloc(l->names, l->cap * sizeof(char *));
		l->inos = realloc(l->inos, l->cap * sizeof(uint64_t));
		l->cookies = realloc(l->cookies, l->cap * sizeof(uint64_t));
	}
	l->names[l->n] = strndup(name, len);
	l->inos[l->n] = attr->ino;
	l->cookies[l->n] = next_cookie;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->inos);
	free(l->cookies);
	memset(l, 0, sizeof(*l));
}

static void list_dir(pog_store *s, uint64_t dir, uint64_t cookie,
		     struct listing *l)
{
	memset(l, 0, sizeof(*l));
	assert_ok(pog_readdir(s, dir, cookie, listing_fn, l));
}

/* ---- create / lookup / remove ------------------------------------------ */

static void test_create_lookup_remove(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr, root_before, root_after;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	uint64_t dir, file, sub;

	assert_ok(pog_getattr(s, POG_ROOT_INO, &root_before));
	assert_int_equal(root_before.type, POG_MAP);
	assert_int_equal(root_before.ino, POG_ROOT_INO);

	dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	file = tu_mkfile(s, dir, "file", "hello", 5);
	sub = tu_mk(s, dir, "sub", POG_MAP);

	/* lookup finds each by name, with its type and ino */
	assert_ok(pog_lookup(s, POG_ROOT_INO, "dir", 3, &attr));
	assert_int_equal(attr.ino, dir);
	assert_int_equal(attr.type, POG_MAP);
	assert_true(S_ISDIR(attr.mode));
	assert_ok(pog_lookup(s, dir, "file", 4, &attr));
	assert_int_equal(attr.ino, file);
	assert_int_equal(attr.type, POG_STRING);
	assert_true(S_ISREG(attr.mode));
	assert_int_equal(attr.size, 5);
	assert_int_equal(attr.nlink, 1);
	tu_assert_content(s, file, "hello", 5);

	/* dirs: nlink = 2 + subdirs */
	assert_ok(pog_getattr(s, dir, &attr));
	assert_int_equal(attr.nlink, 3);
	assert_ok(pog_getattr(s, POG_ROOT_INO, &root_after));
	assert_int_equal(root_after.nlink, root_before.nlink + 1);

	/* the length argument is honoured, not the NUL */
	assert_ok(pog_lookup(s, dir, "filexyz", 4, &attr));
	assert_int_equal(attr.ino, file);

	/* duplicates and missing names */
	assert_rc(pog_mknode(s, dir, "file", 4, &spec, &attr), -EEXIST);
	assert_rc(pog_mknode(s, dir, "sub", 3, &spec, &attr), -EEXIST);
	assert_rc(pog_lookup(s, dir, "nope", 4, &attr), -ENOENT);
	assert_rc(pog_lookup(s, dir, "fil", 3, &attr), -ENOENT);
	/* a file is not a directory */
	assert_rc(pog_lookup(s, file, "x", 1, &attr), -ENOTDIR);
	assert_rc(pog_mknode(s, file, "x", 1, &spec, &attr), -ENOTDIR);

	tu_commit_check(s, "created");

	/* wrong kind of remove */
	assert_rc(pog_remove(s, dir, "sub", 3, 0), -EISDIR);
	assert_rc(pog_remove(s, dir, "file", 4, POG_REMOVE_DIR), -ENOTDIR);
	assert_rc(pog_remove(s, POG_ROOT_INO, "dir", 3, POG_REMOVE_DIR),
		  -ENOTEMPTY);
	assert_rc(pog_remove(s, dir, "nope", 4, 0), -ENOENT);

	/* remove */
	assert_ok(pog_remove(s, dir, "file", 4, 0));
	assert_rc(pog_lookup(s, dir, "file", 4, &attr), -ENOENT);
	assert_ok(pog_remove(s, dir, "sub", 3, POG_REMOVE_DIR));
	assert_rc(pog_lookup(s, dir, "sub", 3, &attr), -ENOENT);
	assert_ok(pog_getattr(s, dir, &attr));
	assert_int_equal(attr.nlink, 2);
	assert_int_equal(tu_count_entries(s, dir), 0);
	assert_ok(pog_remove(s, POG_ROOT_INO, "dir", 3, POG_REMOVE_DIR));
	assert_rc(pog_lookup(s, POG_ROOT_INO, "dir", 3, &attr), -ENOENT);
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), 0);
	tu_commit_check(s, "removed");

	/* the same name can be created again, as a new object */
	uint64_t again = tu_mk(s, POG_ROOT_INO, "dir", POG_STRING);
	assert_true(again != dir);
	assert_true(again != file && again != sub);
	tu_commit_check(s, "recreated");
	tu_reopen(ctx);
	s = ctx->s;
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "dir"), again);
	tu_assert_fsck_clean(s);
}

/* Keys are arbitrary bytes up to POG_KEY_MAX: '/', NUL, "", ".", "..". */
static void test_raw_keys(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static const struct {
		const char *key;
		size_t len;
	} keys[] = {
		{ "a/b", 3 }, { "a\0b", 3 }, { "%2F", 3 }, { "%foo", 4 },
		{ "x y\tz\n", 6 }, { "\xff\xfe", 2 }, { "%", 1 },
	};
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	uint64_t inos[sizeof(keys) / sizeof(keys[0])];
	size_t n = sizeof(keys) / sizeof(keys[0]);

	for (size_t i = 0; i < n; i++) {
		assert_ok(pog_mknode(s, POG_ROOT_INO, keys[i].key, keys[i].len,
				     &spec, &attr));
		inos[i] = attr.ino;
		tu_write(s, attr.ino, 0, keys[i].key, keys[i].len);
	}
	/* "a" and "a\0b" are different keys */
	assert_rc(pog_lookup(s, POG_ROOT_INO, "a", 1, &attr), -ENOENT);
	tu_commit_check(s, "raw keys");
	tu_reopen(ctx);
	s = ctx->s;
	for (size_t i = 0; i < n; i++) {
		assert_ok(pog_lookup(s, POG_ROOT_INO, keys[i].key, keys[i].len,
				     &attr));
		assert_int_equal(attr.ino, inos[i]);
		tu_assert_content(s, attr.ino, keys[i].key, keys[i].len);
	}
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), n);
	/* each listed name leads back to its entry: as a name (unescaped)
	 * or, should readdir give raw keys, as the key itself */
	{
		struct listing l;

		list_dir(s, POG_ROOT_INO, 0, &l);
		assert_int_equal(l.n, n);
		for (size_t i = 0; i < l.n; i++) {
			char key[1024];
			ssize_t klen = pog_name_unescape(l.names[i],
							 strlen(l.names[i]),
							 key, sizeof(key));
			assert_true(klen >= 0);
			assert_ok(pog_lookup(s, POG_ROOT_INO, key, (size_t)klen,
					     &attr));
			assert_int_equal(attr.ino, l.inos[i]);
		}
		listing_free(&l);
	}
	tu_assert_fsck_clean(s);
}

static void test_key_too_long(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	char key[POG_KEY_MAX + 2];
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);

	memset(key, 'k', sizeof(key));
	/* exactly POG_KEY_MAX is fine */
	assert_ok(pog_mknode(s, dir, key, POG_KEY_MAX, &spec, &attr));
	assert_ok(pog_lookup(s, dir, key, POG_KEY_MAX, &attr));
	/* one more is not */
	assert_rc(pog_mknode(s, dir, key, POG_KEY_MAX + 1, &spec, &attr),
		  -ENAMETOOLONG);
	assert_rc(pog_lookup(s, dir, key, POG_KEY_MAX + 1, &attr),
		  -ENAMETOOLONG);
	assert_rc(pog_rename(s, dir, key, POG_KEY_MAX, dir, key,
			     POG_KEY_MAX + 1, 0),
		  -ENAMETOOLONG);
	assert_ok(pog_lookup(s, dir, key, POG_KEY_MAX, &attr));
	tu_commit_check(s, "long keys");
}

/*
 * Keys longer than a file name (256..POG_KEY_MAX bytes, e.g. from an
 * imported JSON document) are entries like any other: readdir must not
 * hide them, or a map holding one lists empty yet cannot be removed.
 */
static void test_readdir_lists_long_keys(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	static const size_t lens[] = { 255, 256, 300, POG_KEY_MAX };
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_attr attr;
	char key[POG_KEY_MAX];
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "d", POG_MAP);

	memset(key, 'k', sizeof(key));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_ok(pog_mknode(s, dir, key, lens[i], &spec, &attr));
	tu_commit_check(s, "long keys");
	assert_int_equal(tu_count_entries(s, dir), 4);
	assert_rc(pog_remove(s, POG_ROOT_INO, "d", 1, POG_REMOVE_DIR),
		  -ENOTEMPTY);
	/* a listed name finds its entry again, and names are distinct */
	{
		struct listing l;

		list_dir(s, dir, 0, &l);
		assert_int_equal(l.n, 4);
		for (size_t i = 0; i < l.n; i++) {
			size_t nlen = strlen(l.names[i]);

			assert_true(nlen <= 255);
			assert_ok(pog_lookup(s, dir, l.names[i], nlen, &attr));
			assert_int_equal(attr.ino, l.inos[i]);
			for (size_t j = 0; j < i; j++)
				assert_string_not_equal(l.names[i],
							l.names[j]);
			/* and removes it */
			assert_ok(pog_remove(s, dir, l.names[i], nlen, 0));
		}
		listing_free(&l);
	}
	assert_int_equal(tu_count_entries(s, dir), 0);
	tu_commit_check(s, "long keys removed");
	assert_ok(pog_remove(s, POG_ROOT_INO, "d", 1, POG_REMOVE_DIR));
	tu_commit_check(s, "dir removed");
}

/* ---- readdir ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Assert the listing holds exactly the names name_of(0..n-1), once each. */
static void assert_names(const struct listing *l, size_t n,
			 const char *const *expect)
{
	char **got = malloc(l->n * sizeof(char *) + 1);
	char **want = malloc(n * sizeof(char *) + 1);

	if (l->n != n)
		fail_msg("listing has %zu entries, expected %zu", l->n, n);
	memcpy(got, l->names, n * sizeof(char *));
	memcpy(want, expect, n * sizeof(char *));
	qsort(got, n, sizeof(char *), cmp_str);
	qsort(want, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(got[i], want[i]) != 0)
			fail_msg("entry %zu: got \"%s\", expected \"%s\"", i,
				 got[i], want[i]);
	}
	free(got);
	free(want);
}

static char **make_names(size_t n)
{
	char **names = malloc(n * sizeof(char *));

	for (size_t i = 0; i < n; i++) {
		char buf[64];
		/* varied lengths and prefixes */
		snprintf(buf, sizeof(buf), "%s%zu%.*s", i % 3 ? "n" : "entry-",
			 i * 7919 % 100003, (int)(i % 13), "xxxxxxxxxxxxx");
		names[i] = strdup(buf);
	}
	return names;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The set listed does not depend on the order of insertion. */
static void test_readdir_order_independence(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char **names = make_names(NAMES);
	uint64_t a = tu_mk(s, POG_ROOT_INO, "a", POG_MAP);
	uint64_t b = tu_mk(s, POG_ROOT_INO, "b", POG_MAP);
	uint64_t c = tu_mk(s, POG_ROOT_INO, "c", POG_MAP);
	struct listing la, lb, lc;
	uint64_t rnd = 42;
	size_t *perm = malloc(NAMES * sizeof(size_t));

	for (size_t i = 0; i < NAMES; i++)
		perm[i] = i;
	for (size_t i = NAMES - 1; i > 0; i--) {
		size_t j = tu_rand64(&rnd) % (i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < NAMES; i++) {
		tu_mk(s, a, names[i], POG_STRING);                  /* forward */
		tu_mk(s, b, names[NAMES - 1 - i], POG_MAP);        /* reverse */
		tu_mk(s, c, names[perm[i]], POG_STRING);            /* random */
	}
	list_dir(s, a, 0, &la);
	list_dir(s, b, 0, &lb);
	list_dir(s, c, 0, &lc);
	assert_names(&la, NAMES, (const char *const *)names);
	assert_names(&lb, NAMES, (const char *const *)names);
	assert_names(&lc, NAMES, (const char *const *)names);
	/* each listed ino is what lookup answers for that name */
	for (size_t i = 0; i < lc.n; i++)
		assert_int_equal(tu_lookup(s, c, lc.names[i]), lc.inos[i]);
	listing_free(&la);
	listing_free(&lb);
	listing_free(&lc);

	/* the same after commit and reopen, in the committed view too */
	tu_commit_check(s, "three maps");
	tu_reopen(ctx);
	s = ctx->s;
	list_dir(s, b, 0, &lb);
	assert_names(&lb, NAMES, (const char *const *)names);
	listing_free(&lb);
	list_dir(s, c | POG_COMMITTED_BIT, 0, &lc);
	assert_names(&lc, NAMES, (const char *const *)names);
	listing_free(&lc);

	/* half removed, in another random order: the other half lists */
	for (size_t i = 0; i < NAMES; i += 2)
		assert_ok(pog_remove(s, c, names[perm[i]],
				     strlen(names[perm[i]]), 0));
	list_dir(s, c, 0, &lc);
	{
		const char **rest = malloc(NAMES * sizeof(char *));
		size_t k = 0;
		for (size_t i = 1; i < NAMES; i += 2)
			rest[k++] = names[perm[i]];
		assert_names(&lc, k, rest);
		free(rest);
	}
	listing_free(&lc);
	tu_commit_check(s, "half removed");
	free(perm);
	free_names(names, NAMES);
}

/* Restarting from each returned cookie gives the rest, exactly once. */
static void test_readdir_cookie_resume(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char **names = make_names(NAMES);
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	struct listing full, part;

	for (size_t i = 0; i < NAMES; i++)
		tu_mk(s, dir, names[i], i % 5 ? POG_STRING : POG_MAP);
	tu_commit_check(s, "filled");

	for (int view = 0; view < 2; view++) {
		uint64_t d = view ? dir | POG_COMMITTED_BIT : dir;

		list_dir(s, d, 0, &full);
		assert_names(&full, NAMES, (const char *const *)names);
		for (size_t i = 0; i < full.n; i++) {
			assert_true(full.cookies[i] > 0);
			assert_true(full.cookies[i] < ((uint64_t)1 << 61));
		}
		/* a listing is repeatable */
		list_dir(s, d, 0, &part);
		assert_int_equal(part.n, full.n);
		for (size_t j = 0; j < part.n; j++) {
			assert_string_equal(part.names[j], full.names[j]);
			assert_int_equal(part.cookies[j], full.cookies[j]);
		}
		listing_free(&part);
		for (size_t i = 0; i < full.n; i++) {
			list_dir(s, d, full.cookies[i], &part);
			if (part.n != full.n - i - 1)
				fail_msg("view %d: resume after entry %zu (cookie %llu) gave %zu entries, expected %zu",
					 view, i,
					 (unsigned long long)full.cookies[i],
					 part.n, full.n - i - 1);
			for (size_t j = 0; j < part.n; j++)
				assert_string_equal(part.names[j],
						    full.names[i + 1 + j]);
			listing_free(&part);
		}
		/* the last cookie is the end */
		list_dir(s, d, full.cookies[full.n - 1], &part);
		assert_int_equal(part.n, 0);
		listing_free(&part);

		/* fn returning non-zero: that value comes back and the entry
		 * counts as not consumed, so resuming from the cookie of the
		 * entry before it yields it again */
		memset(&part, 0, sizeof(part));
		part.stop_after = 10;
		assert_rc(pog_readdir(s, d, 0, listing_fn, &part), 1);
		assert_int_equal(part.n, 10);
		listing_free(&part);
		list_dir(s, d, full.cookies[9], &part);
		assert_int_equal(part.n, full.n - 10);
		assert_string_equal(part.names[0], full.names[10]);
		listing_free(&part);
		listing_free(&full);
	}
	tu_assert_fsck_clean(s);
	free_names(names, NAMES);
}

/*
 * POSIX readdir: an entry neither added nor removed during a listing is
 * returned exactly once. Remove entries already listed (and add new ones)
 * between calls; resuming must still give each remaining unlisted entry
 * exactly once.
 */
static void test_readdir_resume_after_changes(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	char **names = make_names(NAMES);
	uint64_t dir = tu_mk(s, POG_ROOT_INO, "dir", POG_MAP);
	struct listing first, rest;
	size_t half = NAMES / 2;
	char *seen = calloc(NAMES, 1);

	for (size_t i = 0; i < NAMES; i++)
		tu_mk(s, dir, names[i], POG_STRING);
	tu_commit_check(s, "filled");

	memset(&first, 0, sizeof(first));
	first.stop_after = half;
	assert_rc(pog_readdir(s, dir, 0, listing_fn, &first), 1);
	assert_int_equal(first.n, half);
	/* remove every listed entry, add some new ones */
	for (size_t i = 0; i < first.n; i++)
		assert_ok(pog_remove(s, dir, first.names[i],
				     strlen(first.names[i]), 0));
	for (int i = 0; i < 50; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "new-%d", i);
		tu_mk(s, dir, nm, POG_STRING);
	}
	list_dir(s, dir, first.cookies[half - 1], &rest);
	for (size_t i = 0; i < first.n; i++) {
		for (size_t k = 0; k < NAMES; k++) {
			if (strcmp(first.names[i], names[k]) == 0)
				seen[k]++;
		}
	}
	for (size_t j = 0; j < rest.n; j++) {
		for (size_t k = 0; k < NAMES; k++) {
			if (strcmp(rest.names[j], names[k]) == 0)
				seen[k]++;
		}
	}
	for (size_t k = 0; k < NAMES; k++) {
		if (seen[k] != 1)
			fail_msg("\"%s\" listed %d times", names[k], seen[k]);
	}
	listing_free(&first);
	listing_free(&rest);
	assert_int_equal(tu_count_entries(s, dir), NAMES - half + 50);
	tu_commit_check(s, "changed while listing");
	free(seen);
	free_names(names, NAMES);
}

/* ---- rename ------------------------------------------------------------- */

static void test_rename(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	uint64_t a = tu_mk(s, POG_ROOT_INO, "a", POG_MAP);
	uint64_t b = tu_mk(s, POG_ROOT_INO, "b", POG_MAP);
	uint64_t f = tu_mkfile(s, a, "f", "ff", 2);
	uint64_t g = tu_mkfile(s, b, "g", "gg", 2);
	uint64_t sub = tu_mk(s, a, "sub", POG_MAP);

	tu_commit_check(s, "base");
	/* move across dirs keeps the ino */
	assert_ok(pog_rename(s, a, "f", 1, b, "f2", 2, 0));
	assert_rc(pog_lookup(s, a, "f", 1, &attr), -ENOENT);
	assert_int_equal(tu_lookup(s, b, "f2"), f);
	/* NOREPLACE */
	assert_rc(pog_rename(s, b, "f2", 2, b, "g", 1, POG_RENAME_NOREPLACE),
		  -EEXIST);
	/* EXCHANGE */
	assert_ok(pog_rename(s, b, "f2", 2, b, "g", 1, POG_RENAME_EXCHANGE));
	assert_int_equal(tu_lookup(s, b, "g"), f);
	assert_int_equal(tu_lookup(s, b, "f2"), g);
	/* replace */
	assert_ok(pog_rename(s, b, "f2", 2, b, "g", 1, 0));
	assert_int_equal(tu_lookup(s, b, "g"), g);
	assert_rc(pog_lookup(s, b, "f2", 2, &attr), -ENOENT);
	tu_assert_content(s, g, "gg", 2);
	/* a dir into its own subtree */
	assert_rc(pog_rename(s, POG_ROOT_INO, "a", 1, sub, "a", 1, 0),
		  -EINVAL);
	/* a dir moves, nlinks follow */
	assert_ok(pog_rename(s, a, "sub", 3, b, "sub", 3, 0));
	assert_ok(pog_getattr(s, a, &attr));
	assert_int_equal(attr.nlink, 2);
	assert_ok(pog_getattr(s, b, &attr));
	assert_int_equal(attr.nlink, 3);
	assert_int_equal(tu_lookup(s, b, "sub"), sub);
	tu_commit_check(s, "renamed");
}

/* rename's POSIX cases between files and directories */
static void test_rename_posix_cases(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_attr attr;
	uint64_t full = tu_mk(s, POG_ROOT_INO, "full", POG_MAP);
	uint64_t empty = tu_mk(s, POG_ROOT_INO, "empty", POG_MAP);
	uint64_t moving = tu_mk(s, POG_ROOT_INO, "moving", POG_MAP);
	uint64_t file = tu_mkfile(s, POG_ROOT_INO, "file", "f", 1);
	uint64_t other = tu_mkfile(s, POG_ROOT_INO, "other", "o", 1);

	tu_mkfile(s, full, "x", "x", 1);
	tu_mkfile(s, moving, "inside", "i", 1);
	tu_commit_check(s, "base");
	/* dir over non-empty dir, file over dir, dir over file */
	assert_rc(pog_rename(s, POG_ROOT_INO, "moving", 6, POG_ROOT_INO,
			     "full", 4, 0),
		  -ENOTEMPTY);
	assert_rc(pog_rename(s, POG_ROOT_INO, "file", 4, POG_ROOT_INO,
			     "empty", 5, 0),
		  -EISDIR);
	assert_rc(pog_rename(s, POG_ROOT_INO, "moving", 6, POG_ROOT_INO,
			     "file", 4, 0),
		  -ENOTDIR);
	assert_rc(pog_rename(s, POG_ROOT_INO, "nope", 4, POG_ROOT_INO, "x", 1,
			     0),
		  -ENOENT);
	assert_rc(pog_rename(s, POG_ROOT_INO, "file", 4, POG_ROOT_INO, "y", 1,
			     POG_RENAME_EXCHANGE),
		  -ENOENT);
	/* rename onto itself is a no-op */
	assert_ok(pog_rename(s, POG_ROOT_INO, "file", 4, POG_ROOT_INO, "file",
			     4, 0));
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "file"), file);
	/* dir over empty dir replaces it */
	assert_ok(pog_rename(s, POG_ROOT_INO, "moving", 6, POG_ROOT_INO,
			     "empty", 5, 0));
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "empty"), moving);
	assert_rc(pog_lookup(s, POG_ROOT_INO, "moving", 6, &attr), -ENOENT);
	tu_assert_content(s, tu_lookup(s, moving, "inside"), "i", 1);
	/* exchange a file and a directory */
	assert_ok(pog_rename(s, POG_ROOT_INO, "other", 5, POG_ROOT_INO, "full",
			     4, POG_RENAME_EXCHANGE));
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "full"), other);
	assert_int_equal(tu_lookup(s, POG_ROOT_INO, "other"), full);
	/* root nlink: full, empty(=moving), other(=full) -> 2 dirs */
	assert_ok(pog_getattr(s, POG_ROOT_INO, &attr));
	assert_int_equal(attr.nlink, 2 + 2);
	assert_int_equal(tu_count_entries(s, POG_ROOT_INO), 4);
	tu_commit_check(s, "renamed");
	tu_reopen(ctx);
	assert_int_equal(tu_lookup(ctx->s, POG_ROOT_INO, "other"), full);
	/* the replaced empty dir is gone (collected at close) */
	assert_true(pog_getattr(ctx->s, empty, &attr) < 0);
	tu_assert_fsck_clean(ctx->s);
}

/* pog_resolve: '.', '..', escaped names, no way above the root. */
static void test_resolve(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t a = tu_mk(s, POG_ROOT_INO, "a", POG_MAP);
	uint64_t b = tu_mk(s, a, "b", POG_MAP);
	uint64_t f = tu_mkfile(s, b, "f", "", 0);
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_new link = { .type = POG_SYMLINK, .mode = 0777,
				.text = "b" };
	struct pog_attr attr;
	uint64_t ino = 0, slash;

	assert_ok(pog_mknode(s, a, "x/y", 3, &spec, &attr));
	slash = attr.ino;
	assert_ok(pog_mknode(s, a, "sym", 3, &link, &attr));
	assert_ok(pog_resolve(s, POG_ROOT_INO, "a/b/f", &ino));
	assert_int_equal(ino, f);
	assert_ok(pog_resolve(s, b, "f", &ino));
	assert_int_equal(ino, f);
	assert_ok(pog_resolve(s, b, "../b/./f", &ino));
	assert_int_equal(ino, f);
	assert_ok(pog_resolve(s, b, "../..", &ino));
	assert_int_equal(ino, POG_ROOT_INO);
	assert_ok(pog_resolve(s, POG_ROOT_INO, "", &ino));
	assert_int_equal(ino, POG_ROOT_INO);
	assert_ok(pog_resolve(s, POG_ROOT_INO, "a/%x%2Fy", &ino));
	assert_int_equal(ino, slash);
	assert_rc(pog_resolve(s, b, "../../..", &ino), -EXDEV);
	assert_rc(pog_resolve(s, POG_ROOT_INO, "a/nope/f", &ino), -ENOENT);
	assert_true(pog_resolve(s, POG_ROOT_INO, "a/b/f/g", &ino) < 0);
	/* pog_path gives the escaped path back */
	{
		char buf[64];
		ssize_t n = pog_path(s, slash, buf, sizeof(buf));
		assert_rc(n, 8);
		assert_memory_equal(buf, "a/%x%2Fy", 8);
		assert_rc(pog_path(s, POG_ROOT_INO, buf, sizeof(buf)), 0);
	}
	tu_commit_check(s, "resolve");
	/* pog.h: "Symlinks in the middle are not followed (-ENOENT)" */
	assert_rc(pog_resolve(s, POG_ROOT_INO, "a/sym/f", &ino), -ENOENT);
}

/* ---- lists ------------------------------------------------------------- */

/* A list holds inos under names (in this order, as readdir gives them). */
static void assert_named(pog_store *s, uint64_t list, const char *const *names,
			 const uint64_t *inos, size_t n)
{
	struct listing l;

	/* pog.h: a list is listed in numeric order of its names */
	list_dir(s, list, 0, &l);
	if (l.n != n)
		fail_msg("list has %zu entries, expected %zu", l.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(l.names[i], names[i]);
		assert_int_equal(l.inos[i] & POG_INO_MASK, inos[i]);
		assert_int_equal(tu_lookup(s, list, names[i]) & POG_INO_MASK,
				 inos[i]);
	}
	/* resuming at each entry's cookie lists exactly the rest */
	for (size_t k = 0; k < n; k++) {
		struct listing rest;

		list_dir(s, list, l.cookies[k], &rest);
		assert_int_equal(rest.n, n - 1 - k);
		for (size_t j = 0; j < rest.n; j++)
			assert_string_equal(rest.names[j], l.names[k + 1 + j]);
		listing_free(&rest);
	}
	listing_free(&l);
}

/* A list holds inos under the names 0..n-1. */
static void assert_list(pog_store *s, uint64_t list, const uint64_t *inos,
			size_t n)
{
	char buf[64][24];
	const char *names[64];

	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%zu", i);
		names[i] = buf[i];
	}
	assert_named(s, list, names, inos, n);
}

/*
 * Lists: names never shift inside a transaction; any decimal name is a
 * position (numeric order); the commit renumbers 0..n-1.
 */
static void test_lists(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
	struct pog_new ref = { .type = POG_REF, .mode = 0777 };
	struct pog_attr attr;
	uint64_t list = tu_mk(s, POG_ROOT_INO, "list", POG_LIST);
	uint64_t e[4];
	char buf[64];
	ssize_t n;

	assert_ok(pog_getattr(s, list, &attr));
	assert_int_equal(attr.type, POG_LIST);
	assert_true(S_ISDIR(attr.mode));
	e[0] = tu_mkfile(s, list, "0", "a", 1);
	e[1] = tu_mkfile(s, list, "1", "b", 1);
	e[2] = tu_mk(s, list, "2", POG_MAP);
	e[3] = tu_mkfile(s, list, "3", "d", 1);
	tu_mkfile(s, e[2], "inner", "i", 1);
	assert_rc(pog_mknode(s, list, "1", 1, &spec, &attr), -EEXIST);
	assert_rc(pog_lookup(s, list, "4", 1, &attr), -ENOENT);
	assert_list(s, list, e, 4);
	/* a ref follows its target as it is renumbered */
	ref.ref_target = e[3];
	assert_ok(pog_mknode(s, POG_ROOT_INO, "r", 1, &ref, &attr));
	n = pog_readlink(s, attr.ino, buf, sizeof(buf));
	assert_rc(n, 6);
	assert_memory_equal(buf, "list/3", 6);
	tu_commit_check(s, "list");

	/* remove "1": the others keep their names until the commit */
	assert_ok(pog_remove(s, list, "1", 1, 0));
	{
		const char *names[] = { "0", "2", "3" };
		const uint64_t after[] = { e[0], e[2], e[3] };
		assert_named(s, list, names, after, 3);
	}
	assert_rc(pog_lookup(s, list, "1", 1, &attr), -ENOENT);
	assert_rc(pog_path(s, e[3], buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "list/3", 6);
	/* the committed view still has four */
	assert_list(s, list | POG_COMMITTED_BIT, e, 4);
	/* "7" appends, "2.5" goes between 2 and 3 */
	{
		uint64_t e4 = tu_mkfile(s, list, "7", "new", 3);
		uint64_t e5 = tu_mkfile(s, list, "2.5", "mid", 3);
		const char *names[] = { "0", "2", "2.5", "3", "7" };
		const uint64_t staged[] = { e[0], e[2], e5, e[3], e4 };
		assert_named(s, list, names, staged, 5);
		tu_commit_check(s, "removed one, inserted two");
		const uint64_t after[] = { e[0], e[2], e5, e[3], e4 };
		assert_list(s, list, after, 5);
		n = pog_readlink(s, tu_lookup(s, POG_ROOT_INO, "r"), buf,
				 sizeof(buf));
		assert_rc(n, 6);
		assert_memory_equal(buf, "list/3", 6);
		tu_reopen(ctx);
		s = ctx->s;
		assert_list(s, list, after, 5);
	}
	/* rmdir of a non-empty map inside a list, then empty it */
	assert_rc(pog_remove(s, list, "1", 1, POG_REMOVE_DIR), -ENOTEMPTY);
	assert_ok(pog_remove(s, e[2], "inner", 5, 0));
	assert_ok(pog_remove(s, list, "1", 1, POG_REMOVE_DIR));
	assert_ok(pog_remove(s, list, "0", 1, 0));
	assert_int_equal(tu_count_entries(s, list), 3);
	tu_assert_content(s, tu_lookup(s, list, "2"), "mid", 3);
	tu_assert_content(s, tu_lookup(s, list, "4"), "new", 3);
	tu_commit_check(s, "shrunk");
	tu_reopen(ctx);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, list, "0"), "mid", 3);
	tu_assert_content(ctx->s, tu_lookup(ctx->s, list, "2"), "new", 3);
	tu_assert_fsck_clean(ctx->s);
}

/* Positions, fractions and temporary entries list in order, and every
 * cookie resumes right after its entry, also while entries go. */
static void test_list_order_and_cookies(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t list = tu_mk(s, POG_ROOT_INO, "l", POG_LIST);
	static const char *const made[] = { "tmpB", "3", "1.5", "0", "1",
					    "1.25", "0.5", ".0.x", "1.05" };
	static const char *const order[] = { "0", "0.5", "1", "1.05", "1.25",
					     "1.5", "3" };
	uint64_t ino[9], want[9];
	const char *names[9];
	struct listing l;
	size_t n = 0;

	for (size_t i = 0; i < 9; i++)
		ino[i] = tu_mkfile(s, list, made[i], "x", 1);
	for (size_t i = 0; i < 7; i++)
		for (size_t j = 0; j < 9; j++)
			if (strcmp(made[j], order[i]) == 0) {
				names[n] = made[j];
				want[n++] = ino[j];
			}
	/* then the temporary entries, in an order of their own */
	list_dir(s, list, 0, &l);
	assert_int_equal(l.n, 9);
	for (size_t i = 7; i < 9; i++) {
		names[n] = strcmp(l.names[i], "tmpB") == 0 ? "tmpB" : ".0.x";
		want[n++] = ino[strcmp(l.names[i], "tmpB") == 0 ? 0 : 7];
	}
	listing_free(&l);
	assert_named(s, list, names, want, 9);
	/* removing what was listed does not disturb the rest of a listing */
	list_dir(s, list, 0, &l);
	for (size_t i = 0; i < 4; i++)
		assert_ok(pog_remove(s, list, l.names[i], strlen(l.names[i]), 0));
	{
		struct listing rest;
		list_dir(s, list, l.cookies[3], &rest);
		assert_int_equal(rest.n, 5);
		for (size_t i = 0; i < 5; i++)
			assert_string_equal(rest.names[i], l.names[4 + i]);
		listing_free(&rest);
	}
	listing_free(&l);
	assert_rc(pog_commit(s, NULL, NULL), -EINVAL);
	assert_ok(pog_remove(s, list, "tmpB", 4, 0));
	assert_ok(pog_rename(s, list, ".0.x", 4, list, "9", 1, 0));
	tu_commit_check(s, "settled");
	{
		const uint64_t after[] = { want[4], want[5], want[6], ino[7] };
		assert_list(s, list, after, 4);
	}
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
}

/* Fractions nested at one point (2.1, 2.01, 2.001, ...) outgrow the
 * room between two and are spread again: order and names hold. */
static void test_list_nested_fractions(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t list = tu_mk(s, POG_ROOT_INO, "l", POG_LIST);
	char names[32][40];
	const char *order[33];
	uint64_t want[33], three;

	want[0] = tu_mkfile(s, list, "2", "x", 1);
	three = tu_mkfile(s, list, "3", "x", 1);
	for (size_t k = 0; k < 30; k++) {
		int len = snprintf(names[k], sizeof(names[k]), "2.");
		for (size_t z = 0; z < k; z++)
			names[k][len++] = '0';
		names[k][len++] = '1';
		names[k][len] = '\0';
		/* each one smaller than the last: always first in its group */
		want[30 - k] = tu_mkfile(s, list, names[k], "f", 1);
		order[30 - k] = names[k];
	}
	order[0] = "2";
	order[31] = "3";
	want[31] = three;
	assert_named(s, list, order, want, 32);
	/* a rename within the group moves an entry its room-making moved */
	assert_ok(pog_rename(s, list, names[29], strlen(names[29]), list,
			     "2.00000000000000000000000000000000001", 37, 0));
	tu_commit_check(s, "nested");
	{
		uint64_t after[32];
		after[0] = want[0];
		after[1] = want[1]; /* the renamed one is still the smallest */
		for (size_t i = 2; i < 32; i++)
			after[i] = want[i];
		assert_list(s, list, after, 32);
	}
	tu_reopen(ctx);
	tu_assert_fsck_clean(ctx->s);
}

/* ---- name escaping ------------------------------------------------------ */

static size_t esc(const char *key, size_t len, char *out, size_t size)
{
	ssize_t n = pog_name_escape(key, len, out, size);

	if (n < 0)
		fail_msg("pog_name_escape(len %zu) = %zd (%s)", len, n,
			 tu_err(n));
	return (size_t)n;
}

static size_t unesc(const char *name, size_t len, char *out, size_t size)
{
	ssize_t n = pog_name_unescape(name, len, out, size);

	if (n < 0)
		fail_msg("pog_name_unescape(\"%.*s\") = %zd (%s)", (int)len,
			 name, n, tu_err(n));
	return (size_t)n;
}

static void assert_escape(const char *key, size_t klen, const char *name)
{
	char out[1024], back[1024];
	size_t n = esc(key, klen, out, sizeof(out));
	size_t m;

	if (n != strlen(name) || memcmp(out, name, n) != 0)
		fail_msg("escape of a %zu-byte key gave \"%.*s\", expected \"%s\"",
			 klen, (int)n, out, name);
	m = unesc(out, n, back, sizeof(back));
	if (m != klen || memcmp(back, key, klen) != 0)
		fail_msg("unescape(\"%s\") gave \"%.*s\" (%zu bytes)", name,
			 (int)m, back, m);
}

static int is_unsafe(const char *k, size_t len)
{
	return len == 0 || (len == 1 && k[0] == '.') ||
	       (len == 2 && k[0] == '.' && k[1] == '.') ||
	       memchr(k, '/', len) || memchr(k, '\0', len);
}

static void test_name_escape_vectors(void **state)
{
	(void)state;
	/* safe names are themselves */
	assert_escape("abc", 3, "abc");
	assert_escape("a.b", 3, "a.b");
	assert_escape("...", 3, "...");
	assert_escape("%2F", 3, "%2F");      /* "2F" is safe: no escape */
	assert_escape("%foo", 4, "%foo");
	assert_escape("%zz", 3, "%zz");
	assert_escape("%2", 2, "%2");
	assert_escape("a%2Fb", 5, "a%2Fb");  /* no leading % */
	assert_escape("%%2f", 4, "%%2f");    /* lowercase is not C(k) */
	/* unsafe keys */
	assert_escape("", 0, "%");
	assert_escape(".", 1, "%.");
	assert_escape("..", 2, "%..");
	assert_escape("a/b", 3, "%a%2Fb");
	assert_escape("/", 1, "%%2F");
	assert_escape("a\0b", 3, "%a%00b");
	assert_escape("\0", 1, "%%00");
	assert_escape("%/", 2, "%%25%2F");
	/* safe keys that look like escaped names get escaped themselves */
	assert_escape("%", 1, "%%25");          /* C("") */
	assert_escape("%.", 2, "%%25.");        /* C(".") */
	assert_escape("%..", 3, "%%25..");      /* C("..") */
	assert_escape("%%2F", 4, "%%25%252F");  /* C("/") */
	assert_escape("%a%2Fb", 6, "%%25a%252Fb"); /* C("a/b") */
	assert_escape("%%25", 4, "%%25%2525");  /* C("%") */
}

static void test_name_escape_random_roundtrip(void **state)
{
	static const char alphabet[] = { 'a', '%', '/', '\0', '.', '2', 'F',
					 '0', '5' };
	uint64_t rnd = 12345;
	char key[16], name[1024], back[1024], name2[1024];

	(void)state;
	/* every key round-trips; the name is a valid file name */
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = tu_rand64(&rnd) % 9;
		size_t n, m;

		for (size_t i = 0; i < len; i++)
			key[i] = alphabet[tu_rand64(&rnd) % sizeof(alphabet)];
		n = esc(key, len, name, sizeof(name));
		assert_true(n > 0 && n <= 255);
		assert_false(is_unsafe(name, n));
		m = unesc(name, n, back, sizeof(back));
		if (m != len || memcmp(back, key, len) != 0)
			fail_msg("key of %zu bytes did not round-trip via \"%.*s\"",
				 len, (int)n, name);
	}
	/* every valid name lists back unchanged: escape(unescape(n)) == n */
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = 1 + tu_rand64(&rnd) % 8;
		size_t n, m;

		for (size_t i = 0; i < len; i++) {
			char c;
			do
				c = alphabet[tu_rand64(&rnd) % sizeof(alphabet)];
			while (c == '/' || c == '\0');
			name[i] = c;
		}
		if (is_unsafe(name, len))
			continue;
		m = unesc(name, len, back, sizeof(back));
		n = esc(back, m, name2, sizeof(name2));
		if (n != len || memcmp(name, name2, len) != 0)
			fail_msg("name \"%.*s\" came back as \"%.*s\"",
				 (int)len, name, (int)n, name2);
	}
}

static void test_name_escape_limits(void **state)
{
	char key[600], out[1024];

	(void)state;
	memset(key, 'a', sizeof(key));
	/* 255 safe bytes are a name; 256 are not */
	assert_rc(pog_name_escape(key, 255, out, sizeof(out)), 255);
	assert_rc(pog_name_escape(key, 256, out, sizeof(out)), -ENAMETOOLONG);
	/* escaping that would pass 255 bytes */
	for (int i = 0; i < 100; i++)
		key[i] = '/';
	assert_rc(pog_name_escape(key, 100, out, sizeof(out)), -ENAMETOOLONG);
	/* 84 slashes -> 1 + 84*3 = 253 bytes: fits */
	assert_rc(pog_name_escape(key, 84, out, sizeof(out)), 253);
	/* output buffer too small */
	assert_rc(pog_name_escape("abcdef", 6, out, 3), -ENAMETOOLONG);
	assert_rc(pog_name_escape("a/b", 3, out, 4), -ENAMETOOLONG);
	assert_rc(pog_name_unescape("%a%2Fb", 6, out, 2), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_escape_vectors),
		cmocka_unit_test(test_name_escape_random_roundtrip),
		cmocka_unit_test(test_name_escape_limits),
		cmocka_unit_test_setup_teardown(test_create_lookup_remove,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_raw_keys, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_key_too_long, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_readdir_lists_long_keys,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_readdir_order_independence,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_readdir_cookie_resume,
						setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(
			test_readdir_resume_after_changes, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_list_order_and_cookies, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_list_nested_fractions, setup, tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_rename_posix_cases, setup,
						tu_state_teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, tu_state_teardown),
	};

	return cmocka_run_group_tests_name("maps", tests, NULL, NULL);
}
