/* test_hashrand.c - cached Merkle hashes against hashes computed from scratch,
 * after every step of long random edit sequences (HASHRAND_TRACE=1 prints
 * each step and checks link counts and fsck as it goes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "testutil.h"

#define POOL_SIZE (64ULL << 20)
#define SEEDS 40
#define STEPS 250

/*
 * The reference: the README's definition of user.pog.hash, computed from
 * what the public API shows (names, bytes, types, ref targets), with no
 * cache and none of core/merkle.c. Strings are read whole; scalars are
 * put in canonical form here.
 */
static uint32_t crc_of(uint32_t crc, const void *p, size_t n)
{
	return (uint32_t)crc32(crc, p, (uInt)n);
}

static void put_le(unsigned char *b, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

struct names {
	char **v;
	size_t n;
};

static int collect_name(void *ctx, const char *name, size_t len,
			const struct pog_attr *attr, uint64_t next)
{
	struct names *ns = ctx;
	(void)attr;
	(void)next;
	ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	assert_non_null(ns->v);
	ns->v[ns->n] = strndup(name, len);
	assert_non_null(ns->v[ns->n]);
	ns->n++;
	return 0;
}

static struct names list_names(pog_store *s, uint64_t dir)
{
	struct names ns = {0};
	assert_ok(pog_readdir(s, dir, 0, collect_name, &ns));
	return ns;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

/* The canonical text of a typed scalar whose file holds text. */
static size_t canonical(uint32_t type, const char *text, char *out, size_t size)
{
	char buf[256];
	size_t len = strlen(text);
	while (len && strchr(" \t\r\n", text[len - 1]))
		len--;
	while (len && strchr(" \t\r\n", *text))
		text++, len--;
	assert_true(len < sizeof(buf));
	memcpy(buf, text, len);
	buf[len] = 0;
	if (type == POG_INT)
		return (size_t)snprintf(out, size, "%lld", strtoll(buf, NULL, 10));
	if (type == POG_BOOL || type == POG_NULL)
		return (size_t)snprintf(out, size, "%s", buf);
	double d = strtod(buf, NULL);
	if (d == floor(d) && fabs(d) < 1e16)
		return (size_t)snprintf(out, size, "%.1f", d);
	int n = 0;
	for (int prec = 1; prec <= 17; prec++) {
		n = snprintf(out, size, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	if (!strpbrk(out, ".eEn"))
		n += snprintf(out + n, size - (size_t)n, ".0");
	return (size_t)n;
}

static uint32_t ref_hash(pog_store *s, uint64_t ino, int depth);

static uint32_t ref_hash_dir(pog_store *s, uint64_t ino, uint32_t type,
			     int depth)
{
	struct names ns = list_names(s, ino);
	unsigned char b[8];
	uint32_t out;
	if (type == POG_LIST) {
		/* readdir lists a list in its order, whatever its staged
		 * names (0 1 2 4, 2.5) */
		uint32_t crc = crc_of(0, "l", 1);
		for (size_t i = 0; i < ns.n; i++) {
			struct pog_attr a;
			assert_ok(pog_lookup(s, ino, ns.v[i], strlen(ns.v[i]),
					     &a));
			put_le(b, ref_hash(s, a.ino, depth + 1), 4);
			crc = crc_of(crc, b, 4);
		}
		out = crc;
	} else {
		uint32_t sum = 0;
		for (size_t i = 0; i < ns.n; i++) {
			struct pog_attr a;
			char key[POG_KEY_MAX + 1];
			assert_ok(pog_lookup(s, ino, ns.v[i], strlen(ns.v[i]), &a));
			ssize_t kl = pog_name_unescape(ns.v[i], strlen(ns.v[i]),
						       key, sizeof(key));
			assert_true(kl >= 0);
			put_le(b, ref_hash(s, a.ino, depth + 1), 4);
			sum += crc_of(crc_of(0, key, (size_t)kl), b, 4);
		}
		unsigned char m[5] = {'m'};
		put_le(m + 1, sum, 4);
		out = crc_of(0, m, 5);
	}
	names_free(&ns);
	return out;
}

static uint32_t ref_hash(pog_store *s, uint64_t ino, int depth)
{
	struct pog_attr a;
	assert_true(depth < 100);
	assert_ok(pog_getattr(s, ino, &a));
	unsigned char b[16];
	char text[POG_SYMLINK_MAX + 2];
	switch (a.type) {
	case POG_MAP:
	case POG_LIST:
		return ref_hash_dir(s, ino, a.type, depth);
	case POG_STRING: {
		size_t len;
		char *data = tu_read_all(s, ino, &len);
		uint32_t crc = crc_of(crc_of(0, "s", 1), data, len);
		free(data);
		return crc;
	}
	case POG_SYMLINK: {
		ssize_t n = pog_readlink(s, ino, text + 1, sizeof(text) - 1);
		assert_true(n >= 0);
		text[0] = 'y';
		return crc_of(0, text, (size_t)n + 1);
	}
	case POG_INT:
	case POG_FLOAT:
	case POG_BOOL:
	case POG_NULL: {
		static const char tags[] = "????ifbn";
		char raw[256] = "";
		ssize_t n = pog_read(s, ino, 0, raw, sizeof(raw) - 1);
		assert_true(n > 0); /* the test never leaves one empty */
		raw[n] = 0;
		text[0] = tags[a.type];
		size_t len = canonical(a.type, raw, text + 1, sizeof(text) - 1);
		return crc_of(0, text, len + 1);
	}
	case POG_REF: {
		uint64_t target;
		assert_ok(pog_ref_target(s, ino, &target));
		b[0] = 'r';
		put_le(b + 1, target & POG_INO_MASK, 8);
		return crc_of(0, b, 9);
	}
	case POG_SPECIAL:
		b[0] = 'x';
		put_le(b + 1, a.mode, 4);
		put_le(b + 5, a.rdev, 8);
		return crc_of(0, b, 13);
	default:
		fail_msg("ino %" PRIu64 ": unknown type %u", ino, a.type);
	}
	return 0;
}

/* ---- the reachable objects of a view ------------------------------------ */

struct entry {
	uint64_t ino, dir; /* dir 0: reached by a ref only (or the root) */
	uint32_t type;
	char name[64];
};

struct graph {
	struct entry *v;
	size_t n, cap;
};

static bool seen(const struct graph *g, uint64_t ino)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->v[i].ino == ino)
			return true;
	return false;
}

static void add(struct graph *g, uint64_t ino, uint64_t dir, uint32_t type,
		const char *name)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 64;
		g->v = realloc(g->v, g->cap * sizeof(*g->v));
		assert_non_null(g->v);
	}
	struct entry *e = &g->v[g->n++];
	e->ino = ino;
	e->dir = dir;
	e->type = type;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

/* Every name from the root, then every object only refs reach. Names of
 * hard links appear once per name. */
static struct graph reachable(pog_store *s, uint64_t root)
{
	struct graph g = {0};
	struct pog_attr a;
	assert_ok(pog_getattr(s, root, &a));
	add(&g, root, 0, a.type, "");
	for (size_t i = 0; i < g.n; i++) {
		struct entry e = g.v[i];
		if (e.type == POG_REF) {
			uint64_t t;
			assert_ok(pog_ref_target(s, e.ino, &t));
			if (!seen(&g, t)) {
				assert_ok(pog_getattr(s, t, &a));
				add(&g, t, 0, a.type, "");
			}
		}
		if (e.type != POG_MAP && e.type != POG_LIST)
			continue;
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = g.v[j].ino != e.ino;
		if (!first)
			continue;
		struct names ns = list_names(s, e.ino);
		for (size_t k = 0; k < ns.n; k++) {
			assert_ok(pog_lookup(s, e.ino, ns.v[k], strlen(ns.v[k]), &a));
			add(&g, a.ino, e.ino, a.type, ns.v[k]);
		}
		names_free(&ns);
	}
	return g;
}

/* Compare pog_hash of every reachable object of a view with the
 * reference, in an order that varies (children first or parents first),
 * so that the cache is filled in different ways. */
static void check_view(pog_store *s, uint64_t root, uint64_t *rng,
		       const char *what, int step)
{
	struct graph g = reachable(s, root);
	bool backwards = tu_rand64(rng) & 1;
	for (size_t k = 0; k < g.n; k++) {
		struct entry *e = &g.v[backwards ? g.n - 1 - k : k];
		uint32_t cached;
		assert_ok(pog_hash(s, e->ino, &cached));
		uint32_t expect = ref_hash(s, e->ino, 0);
		if (cached != expect)
			fail_msg("%s step %d: ino %" PRIu64 " (%s in %" PRIu64
				 ", type %u): hash %08x, from scratch %08x",
				 what, step, e->ino & POG_INO_MASK, e->name,
				 e->dir & POG_INO_MASK, e->type, cached, expect);
	}
	free(g.v);
}

/* ---- random steps ---------------------------------------------------------- */

struct run {
	pog_store *s;
	uint64_t rng;
	struct graph g; /* the staged view, as of the last step */
	int ok, failed;  /* operations the store accepted or refused */
};

static uint64_t pick(struct run *r, uint64_t n)
{
	return n ? tu_rand64(&r->rng) % n : 0;
}

/* A random reachable entry (type filter: 0 any, else a mask of types). */
static struct entry *pick_entry(struct run *r, unsigned mask)
{
	struct entry *c[4096];
	size_t n = 0;
	for (size_t i = 0; i < r->g.n && n < 4096; i++)
		if (!mask || (mask & (1u << r->g.v[i].type)))
			c[n++] = &r->g.v[i];
	return n ? c[pick(r, n)] : NULL;
}

#define DIRS ((1u << POG_MAP) | (1u << POG_LIST))
#define FILES ((1u << POG_STRING) | (1u << POG_INT) | (1u << POG_FLOAT) | \
	       (1u << POG_BOOL) | (1u << POG_NULL) | (1u << POG_SYMLINK) | \
	       (1u << POG_REF) | (1u << POG_SPECIAL))
#define SCALARS ((1u << POG_INT) | (1u << POG_FLOAT) | (1u << POG_BOOL) | \
		 (1u << POG_NULL))

/* A name for a new entry of dir: in a list its length (appends) or a
 * position, in a map one of a few names (so that renames replace). */
static void new_name(struct run *r, uint64_t dir, char *name, size_t size)
{
	struct pog_attr a;
	if (pog_getattr(r->s, dir, &a) == 0 && a.type == POG_LIST) {
		uint64_t n = tu_count_entries(r->s, dir);
		snprintf(name, size, "%" PRIu64, pick(r, 4) ? n : pick(r, n + 1));
		return;
	}
	snprintf(name, size, "%c%u", "abcdef"[pick(r, 6)], (unsigned)pick(r, 4));
}

static void count(struct run *r, long long rc)
{
	if (getenv("HASHRAND_TRACE"))
		print_message("  rc %lld\n", rc);
	if (rc < 0)
		r->failed++;
	else
		r->ok++;
}

static void step_write(struct run *r)
{
	struct entry *e = pick_entry(r, 1u << POG_STRING);
	if (!e)
		return;
	static char buf[9000];
	size_t len = (size_t)pick(r, pick(r, 3) ? 200 : sizeof(buf));
	uint64_t off = pick(r, 3) ? pick(r, 300) : pick(r, 20000);
	tu_fill_random(buf, len, tu_rand64(&r->rng));
	if (pick(r, 2))
		memset(buf, 'z', len); /* pages that dedup */
	count(r, pog_write(r->s, e->ino, off, buf, len));
}

static void step_truncate(struct run *r)
{
	struct entry *e = pick_entry(r, 1u << POG_STRING);
	if (!e)
		return;
	struct pog_attr a = {.size = pick(r, 3) ? pick(r, 300) : pick(r, 20000)};
	count(r, pog_setattr(r->s, e->ino, &a, POG_SET_SIZE, NULL));
}

static void step_create(struct run *r)
{
	struct entry *d = pick_entry(r, DIRS);
	char name[32];
	new_name(r, d->ino, name, sizeof(name));
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	struct entry *t;
	switch (pick(r, 6)) {
	case 0:
		spec.type = POG_MAP;
		spec.mode = 0755;
		break;
	case 1:
		spec.type = POG_REF;
		t = pick_entry(r, 0);
		spec.ref_target = t->ino;
		break;
	case 2:
		spec.type = POG_SYMLINK;
		spec.text = pick(r, 2) ? "../elsewhere" : "plain text";
		break;
	case 3:
		spec.type = POG_SPECIAL;
		spec.mode = (uint32_t)(pick(r, 2) ? S_IFIFO : S_IFCHR) | 0600;
		spec.rdev = pick(r, 1000);
		break;
	default:
		break;
	}
	struct pog_attr out;
	int rc = pog_mknode(r->s, d->ino, name, strlen(name), &spec, &out);
	count(r, rc);
	if (!rc && spec.type == POG_STRING && pick(r, 2))
		count(r, pog_write(r->s, out.ino, 0, name, strlen(name)));
}

static void step_scalar(struct run *r)
{
	static const char *texts[][4] = {
		[POG_INT] = {"42\n", "-7", " 1815 ", "0"},
		[POG_FLOAT] = {"2.5\n", "7", "0.125", "-1e300"},
		[POG_BOOL] = {"true\n", "false", " true", "false\n"},
		[POG_NULL] = {"null\n", "null", " null ", "null"},
	};
	struct entry *e = pick_entry(r, SCALARS | (1u << POG_STRING));
	if (!e)
		return;
	uint32_t type = e->type == POG_STRING ? (uint32_t)(POG_INT + pick(r, 4))
					      : e->type;
	const char *text = texts[type][pick(r, 4)];
	if (e->type == POG_STRING) {
		/* give it parseable text, then convert it */
		struct pog_attr a = {.size = 0};
		count(r, pog_setattr(r->s, e->ino, &a, POG_SET_SIZE, NULL));
		count(r, pog_write(r->s, e->ino, 0, text, strlen(text)));
		count(r, pog_set_type(r->s, e->ino, type));
	} else if (pick(r, 3)) {
		/* a new value: truncate and write, as echo 43 > count does */
		struct pog_attr a = {.size = 0};
		count(r, pog_setattr(r->s, e->ino, &a, POG_SET_SIZE, NULL));
		int rc = (int)pog_write(r->s, e->ino, 0, text, strlen(text));
		count(r, rc);
		assert_true(rc >= 0);
	} else {
		count(r, pog_set_type(r->s, e->ino, POG_STRING));
	}
}

static void step_link(struct run *r)
{
	struct entry *f = pick_entry(r, FILES);
	struct entry *d = pick_entry(r, DIRS);
	if (!f)
		return;
	char name[32];
	new_name(r, d->ino, name, sizeof(name));
	struct pog_attr out;
	count(r, pog_link(r->s, f->ino, d->ino, name, strlen(name), &out));
}

static void step_remove(struct run *r)
{
	struct entry *e = pick_entry(r, 0);
	if (!e->dir)
		return;
	unsigned flags = (e->type == POG_MAP || e->type == POG_LIST)
				 ? POG_REMOVE_DIR : 0;
	count(r, pog_remove(r->s, e->dir, e->name, strlen(e->name), flags));
}

static void step_rename(struct run *r)
{
	struct entry *e = pick_entry(r, 0);
	if (!e->dir)
		return;
	struct entry *d = pick_entry(r, DIRS);
	struct entry *o = pick_entry(r, 0);
	char name[64];
	unsigned flags = 0;
	if (o->dir && pick(r, 3) == 0) {
		/* onto an existing name (replace or exchange) */
		d = o;
		snprintf(name, sizeof(name), "%s", o->name);
		uint64_t dir = o->dir;
		flags = pick(r, 2) ? POG_RENAME_EXCHANGE : 0;
		count(r, pog_rename(r->s, e->dir, e->name, strlen(e->name), dir,
				    name, strlen(name), flags));
		return;
	}
	new_name(r, d->ino, name, sizeof(name));
	if (pick(r, 4) == 0)
		flags = POG_RENAME_NOREPLACE;
	count(r, pog_rename(r->s, e->dir, e->name, strlen(e->name), d->ino,
			    name, strlen(name), flags));
}

static void step_dirtype(struct run *r)
{
	struct entry *e = pick_entry(r, DIRS);
	count(r, pog_set_type(r->s, e->ino,
			      e->type == POG_MAP ? POG_LIST : POG_MAP));
}

static void step_ref_target(struct run *r)
{
	struct entry *e = pick_entry(r, 1u << POG_REF);
	struct entry *t = pick_entry(r, 0);
	if (e)
		count(r, pog_set_ref_target(r->s, e->ino, t->ino));
}

static void step_xattr(struct run *r)
{
	struct entry *e = pick_entry(r, 0);
	if (pick(r, 2))
		count(r, pog_setxattr(r->s, e->ino, "user.note", "x", 1, 0));
	else
		count(r, pog_removexattr(r->s, e->ino, "user.note"));
}

static void step_import(struct run *r)
{
	struct entry *d = pick_entry(r, 1u << POG_MAP);
	if (!d)
		return;
	char name[32];
	new_name(r, d->ino, name, sizeof(name));
	static const char doc[] = "{\"l\":[1,2.5,true,null,\"s\"],\"m\":{\"k\":\"v\"}}";
	struct pog_json_error je;
	count(r, pog_import(r->s, d->ino, name, strlen(name), doc,
			    sizeof(doc) - 1, 0, 0, &je));
}

/* Commit, abort or GC: the view moves as a whole. */
static void step_txn(struct run *r)
{
	struct pog_gc_result gr;
	switch (pick(r, 4)) {
	case 0:
		assert_ok(pog_abort(r->s));
		break;
	case 1:
		assert_ok(pog_commit(r->s, "step", NULL));
		assert_ok(pog_gc(r->s, &gr));
		break;
	default:
		/* a commit may refuse an empty typed scalar; never here */
		assert_ok(pog_commit(r->s, "step", NULL));
		if (getenv("HASHRAND_TRACE"))
			tu_assert_fsck_clean(r->s);
		break;
	}
}

static void random_step(struct run *r)
{
	uint64_t what = pick(r, 20);
	if (getenv("HASHRAND_TRACE"))
		print_message("step kind %d\n", (int)what);
	switch (what) {
	case 0: case 1: case 2: step_write(r); break;
	case 3: step_truncate(r); break;
	case 4: case 5: case 6: step_create(r); break;
	case 7: step_scalar(r); break;
	case 8: case 9: step_link(r); break;
	case 10: case 11: step_remove(r); break;
	case 12: case 13: step_rename(r); break;
	case 14: step_dirtype(r); break;
	case 15: step_ref_target(r); break;
	case 16: step_xattr(r); break;
	case 17: step_import(r); break;
	default: step_txn(r); break;
	}
}

/* Debugging aid: every file's link count is its number of names. */
static void check_nlink(pog_store *s, int step)
{
	struct graph g = reachable(s, POG_ROOT_INO);
	for (size_t i = 0; i < g.n; i++) {
		if (!g.v[i].dir || g.v[i].type == POG_MAP || g.v[i].type == POG_LIST)
			continue;
		uint32_t names = 0;
		for (size_t j = 0; j < g.n; j++)
			names += g.v[j].ino == g.v[i].ino && g.v[j].dir;
		struct pog_attr a;
		assert_ok(pog_getattr(s, g.v[i].ino, &a));
		if (a.nlink != names)
			fail_msg("step %d: ino %" PRIu64 " nlink %u, %u names",
				 step, g.v[i].ino, a.nlink, names);
	}
	free(g.v);
}

static void run_seed(const char *pool_dir, uint64_t seed, int *ok, int *failed)
{
	char *path = tu_join(pool_dir, "rand.pool");
	struct run r = {.rng = seed * 0x9e3779b97f4a7c15ULL + 1};
	unlink(path);
	assert_ok(pog_create(path, POOL_SIZE, &r.s));
	/* a start shaped like the case: one file under two names */
	uint64_t d0 = tu_mk(r.s, POG_ROOT_INO, "d0", POG_MAP);
	uint64_t d1 = tu_mk(r.s, POG_ROOT_INO, "d1", POG_MAP);
	uint64_t l = tu_mk(r.s, POG_ROOT_INO, "l", POG_MAP);
	assert_ok(pog_set_type(r.s, l, POG_LIST));
	uint64_t a = tu_mkfile(r.s, d0, "a", "one\n", 4);
	struct pog_attr out;
	assert_ok(pog_link(r.s, a, d1, "b", 1, &out));
	for (int step = 0; step < STEPS; step++) {
		r.g = reachable(r.s, POG_ROOT_INO);
		random_step(&r);
		free(r.g.v);
		if (step % 50 == 49) {
			/* reopen: the cache starts empty */
			assert_ok(pog_commit(r.s, "reopen", NULL));
			pog_close(r.s, POG_CLOSE_NOGC);
			assert_ok(pog_open(path, POG_OPEN_NOLOCK, &r.s));
		}
		if (getenv("HASHRAND_TRACE"))
			check_nlink(r.s, step);
		char what[64];
		snprintf(what, sizeof(what), "seed %" PRIu64 " staged", seed);
		check_view(r.s, POG_ROOT_INO, &r.rng, what, step);
		snprintf(what, sizeof(what), "seed %" PRIu64 " committed", seed);
		check_view(r.s, POG_ROOT_INO | POG_COMMITTED_BIT, &r.rng, what,
			   step);
	}
	tu_assert_fsck_clean(r.s);
	*ok += r.ok;
	*failed += r.failed;
	pog_close(r.s, POG_CLOSE_NOGC);
	unlink(path);
	free(path);
}

/* The case: a hard-linked file loses the name that owned it, and
 * a write through the other name must change its directory's hash. */
static void test_hard_link_after_owner_unlinked(void **state)
{
	struct tu_ctx *ctx = *state;
	pog_store *s = ctx->s;
	uint64_t d0 = tu_mk(s, POG_ROOT_INO, "d0", POG_MAP);
	uint64_t d1 = tu_mk(s, POG_ROOT_INO, "d1", POG_MAP);
	uint64_t a = tu_mkfile(s, d0, "a", "one\n", 4);
	struct pog_attr out;
	assert_ok(pog_link(s, a, d1, "b", 1, &out));
	uint32_t root0, d1_0, h;
	assert_ok(pog_hash(s, POG_ROOT_INO, &root0));
	assert_ok(pog_hash(s, d1, &d1_0));
	assert_ok(pog_remove(s, d0, "a", 1, 0));
	struct pog_attr sz = {.size = 0};
	assert_ok(pog_setattr(s, a, &sz, POG_SET_SIZE, NULL));
	tu_write(s, a, 0, "two\n", 4);
	assert_ok(pog_hash(s, d1, &h));
	assert_int_equal(h, ref_hash(s, d1, 0));
	assert_int_not_equal(h, d1_0);
	assert_ok(pog_hash(s, POG_ROOT_INO, &h));
	assert_int_equal(h, ref_hash(s, POG_ROOT_INO, 0));
	assert_int_not_equal(h, root0);
	assert_ok(pog_abort(s));
}

static void test_random_sequences(void **state)
{
	struct tu_ctx *ctx = *state;
	int ok = 0, failed = 0;
	for (uint64_t seed = 1; seed <= SEEDS; seed++)
		run_seed(ctx->dir, seed, &ok, &failed);
	/* the sequences must do something: most operations succeed */
	print_message("%d operations done, %d refused\n", ok, failed);
	assert_true(ok > SEEDS * STEPS / 2);
}

static int setup(void **state)
{
	return tu_state_setup(state, TU_SHM_BASE, POOL_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hard_link_after_owner_unlinked),
		cmocka_unit_test(test_random_sequences),
	};
	return cmocka_run_group_tests_name("hashrand", tests, setup,
					   tu_state_teardown);
}
