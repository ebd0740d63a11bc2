/* list.c - a list's names: positions as ranks, temporary entries, order, and what a commit settles. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "store_int.h"

/*
 * A list's entry tree (POG_TREE_LIST) is keyed by stable sparse keys:
 *   key < POG_LIST_NAMED         an entry in the list's order. Keys are
 *                                spread (POG_LIST_KEY_STEP apart when
 *                                appended), so that an entry goes between
 *                                two others without moving them; a key
 *                                never changes when others come or go
 *                                (the child's parent_key is its key).
 *   POG_LIST_NAMED | hash | seq  a temporary entry (".0.XYZ"), keyed as a
 *                                map entry is; outside the order.
 * The tree's branch nodes count the entries under each child (btree.c),
 * so the rank of a key (the entries before it) is O(log n): a committed
 * list's names are the ranks of its entries, 0..n-1, and nothing is
 * renumbered at commit.
 *
 * Inside a transaction names never shift. The rule:
 *   - an entry whose value is the child's identity alone (8 bytes) is one
 *     the transaction did not move: it is named by the rank of its key in
 *     the committed tree of the list (the "base"), which the transaction
 *     does not change (removing 3 leaves 0 1 2 4);
 *   - an entry the transaction made (create, link, rename into the list)
 *     carries the name it was given after the identity ("5", "2.5"), and
 *     its key is chosen between the keys of the entries whose names are
 *     just below and above it, so the tree's key order stays the numeric
 *     order of the names. A base entry that a rare respacing moves takes
 *     its committed rank as its carried name.
 * A commit refuses temporary entries, then drops the carried names (the
 * names become the ranks), in place in the transaction's fresh leaves:
 * O(entries made), never O(list).
 */

#define KEY_END POG_LIST_NAMED /* position keys are below */

int pog_list_name_parse(const char *name, size_t len, struct pog_list_name *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = POG_LIST_TEMP;
	size_t i = 0;
	while (i < len && name[i] >= '0' && name[i] <= '9')
		i++;
	size_t whole_len = i;
	if (whole_len == 0 || (whole_len > 1 && name[0] == '0'))
		return 0; /* "", ".5", "007", "-1": temporary */
	bool fraction = false;
	if (i < len) {
		if (name[i] != '.' || i + 1 == len)
			return 0; /* "1e3", "2.": temporary */
		for (size_t j = i + 1; j < len; j++)
			if (name[j] < '0' || name[j] > '9')
				return 0;
		if (name[len - 1] == '0')
			return 0; /* "2.50", "2.0": not the canonical form */
		fraction = true;
	}
	if (whole_len > POG_LIST_POS_DIGITS)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t j = 0; j < whole_len; j++)
		v = v * 10 + (uint64_t)(name[j] - '0');
	out->whole = v;
	out->kind = fraction ? POG_LIST_FRACTION_NAME : POG_LIST_POSITION;
	out->frac = fraction ? name + i + 1 : NULL;
	out->frac_len = fraction ? len - i - 1 : 0;
	return 0;
}

/* Numeric order of two parsed positions. */
static int position_cmp(const struct pog_list_name *a,
			const struct pog_list_name *b)
{
	if (a->whole != b->whole)
		return a->whole < b->whole ? -1 : 1;
	size_t n = a->frac_len < b->frac_len ? a->frac_len : b->frac_len;
	int c = n ? memcmp(a->frac, b->frac, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return a->frac_len < b->frac_len ? -1 : a->frac_len > b->frac_len;
}

/* ---- naming ---------------------------------------------------------------- */

int pog_list_names_init(struct pog_list_names *nm, pog_store *s,
			const struct pog_state *st, uint64_t ino,
			const struct pog_inode *in)
{
	memset(nm, 0, sizeof(*nm));
	nm->s = s;
	nm->ino = ino;
	nm->legacy = !s->env->list_counts;
	if (st != &s->staged) {
		/* a committed state: no entry carries a name */
		nm->base = in->content;
		return 0;
	}
	const struct pog_inode *old;
	int err = pog_inode_get(s, &s->base, ino, &old);
	if (err == 0 && old->type == POG_LIST)
		nm->base = old->content;
	return err == -ENOENT ? 0 : err;
}

int pog_list_base_rank(const struct pog_list_names *nm, uint64_t key,
		       uint64_t *rank)
{
	if (nm->legacy) {
		*rank = key; /* a format-2 list: 0..n-1 */
		return 0;
	}
	return pog_bt_rank(nm->s, nm->base, key, rank);
}

ssize_t pog_list_name_of(const struct pog_list_names *nm, uint64_t key,
			 const void *val, uint16_t vlen, char *buf, size_t size)
{
	if (vlen < 8)
		return POG_ECORRUPT;
	if (vlen == 8 && key < KEY_END) {
		uint64_t rank;
		int err = pog_list_base_rank(nm, key, &rank);
		if (err)
			return err;
		int n = snprintf(buf, size, "%" PRIu64, rank);
		return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
	}
	size_t len = vlen - 8u;
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, (const char *)val + 8, len);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* One position entry: its key, child and name (text kept in buf). */
struct entry {
	uint64_t key, child;
	struct pog_list_name name;
	char buf[POG_KEY_MAX + 1];
};

static int entry_read(const struct pog_list_names *nm,
		      const struct pog_bt_iter *it, struct entry *e)
{
	const void *val;
	uint16_t vlen;
	pog_bt_cur(it, &e->key, &val, &vlen);
	if (vlen < 8 || e->key >= KEY_END)
		return POG_ECORRUPT;
	memcpy(&e->child, val, 8);
	ssize_t n = pog_list_name_of(nm, e->key, val, vlen, e->buf, sizeof(e->buf));
	if (n < 0)
		return n == -ENAMETOOLONG ? POG_ECORRUPT : (int)n;
	if (pog_list_name_parse(e->buf, (size_t)n, &e->name) ||
	    e->name.kind == POG_LIST_TEMP)
		return POG_ECORRUPT;
	return 0;
}

/* The entry of rank i among root's positions. */
static int entry_at(const struct pog_list_names *nm, uint64_t root, uint64_t i,
		    struct entry *e)
{
	struct pog_bt_iter it;
	int r = pog_bt_select(&it, nm->s, root, i);
	if (r <= 0)
		return r ? r : POG_ECORRUPT;
	return entry_read(nm, &it, e);
}

/* Positions in root (the entries before the temporary ones). */
static int positions(const struct pog_list_names *nm, uint64_t root,
		     uint64_t *n)
{
	return pog_bt_rank(nm->s, root, KEY_END, n);
}

/* A format-2 list (read only): the name is the key. */
static int legacy_find(const struct pog_list_names *nm, uint64_t root,
		       const struct pog_list_name *want, uint64_t *key,
		       uint64_t *child)
{
	const void *val;
	if (want->kind != POG_LIST_POSITION)
		return -ENOENT;
	int err = pog_bt_get(nm->s, root, want->whole, &val, NULL);
	if (err)
		return err;
	*key = want->whole;
	memcpy(child, val, 8);
	return 0;
}

int pog_list_find(const struct pog_list_names *nm, uint64_t root,
		  const struct pog_list_name *want, uint64_t *key,
		  uint64_t *child, struct pog_list_place *place)
{
	if (nm->legacy)
		return legacy_find(nm, root, want, key, child);
	/* An entry the transaction left in place: the committed entry of
	 * that rank, when it is still there. */
	if (want->kind == POG_LIST_POSITION && nm->base) {
		struct pog_bt_iter it;
		int r = pog_bt_select(&it, nm->s, nm->base, want->whole);
		if (r < 0)
			return r;
		if (r > 0) {
			uint64_t k;
			const void *val;
			uint16_t vlen;
			pog_bt_cur(&it, &k, NULL, NULL);
			int err = pog_bt_get(nm->s, root, k, &val, &vlen);
			if (err && err != -ENOENT)
				return err;
			if (!err && vlen == 8) {
				*key = k;
				memcpy(child, val, 8);
				return 0;
			}
		}
	}
	/* Else a binary search of the names, in the tree's order; the end
	 * first (appending is the common case). */
	uint64_t n, lo = 0, hi;
	int err = positions(nm, root, &n);
	if (err)
		return err;
	hi = n;
	struct entry e;
	if (n) {
		err = entry_at(nm, root, n - 1, &e);
		if (err)
			return err;
		int c = position_cmp(want, &e.name);
		if (c > 0)
			lo = n;
		else
			hi = n - 1 + (c == 0);
	}
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		err = entry_at(nm, root, mid, &e);
		if (err)
			return err;
		if (position_cmp(&e.name, want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n) {
		err = entry_at(nm, root, lo, &e);
		if (err)
			return err;
		if (position_cmp(&e.name, want) == 0) {
			*key = e.key;
			*child = e.child;
			return 0;
		}
	}
	if (place) {
		place->rank = lo;
		place->count = n;
		place->has_pred = lo > 0;
		place->has_succ = lo < n;
		if (lo < n)
			place->succ = e.key;
		if (lo > 0) {
			struct entry p;
			err = entry_at(nm, root, lo - 1, &p);
			if (err)
				return err;
			place->pred = p.key;
		}
	}
	return -ENOENT;
}

/* ---- new keys ------------------------------------------------------------------- */

/* A key strictly between the neighbours of place: 0, or -ENOSPC. */
static int key_between(const struct pog_list_place *pl, uint64_t *key)
{
	uint64_t lo = pl->has_pred ? pl->pred + 1 : 0;
	uint64_t hi = pl->has_succ ? pl->succ : KEY_END;
	if (hi <= lo)
		return -ENOSPC;
	if (!pl->has_pred && !pl->has_succ)
		*key = POG_LIST_FIRST_KEY;
	else if (!pl->has_succ && hi - lo >= POG_LIST_KEY_STEP)
		*key = pl->pred + POG_LIST_KEY_STEP; /* appending */
	else if (!pl->has_pred && hi >= POG_LIST_KEY_STEP)
		*key = hi - POG_LIST_KEY_STEP;       /* prepending */
	else
		*key = lo + (hi - lo) / 2;
	return 0;
}

struct moved {
	uint64_t key, child;
	uint16_t vlen;
	char val[8 + POG_KEY_MAX + 1];
};

/* The owning key of child moves from old_key to new_key in dir. */
static int reown_child(pog_store *s, uint64_t dir, uint64_t child,
		       uint64_t old_key, uint64_t new_key)
{
	const struct pog_inode *c;
	int err = pog_inode_get(s, &s->staged, child, &c);
	if (err)
		return err == -ENOENT ? 0 : err;
	if (c->parent != dir || c->parent_key != old_key)
		return 0;
	struct pog_inode copy;
	memcpy(&copy, c, pog_inode_len(c));
	copy.parent_key = new_key;
	return pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root, child, &copy,
			  (uint16_t)pog_inode_len(&copy));
}

/* Read the w entries from rank a on (values copied; base entries get
 * their committed rank as their carried name). */
static int window_read(const struct pog_list_names *nm, uint64_t root,
		       uint64_t a, uint64_t w, struct moved *m)
{
	struct pog_bt_iter it;
	int r = pog_bt_select(&it, nm->s, root, a);
	for (uint64_t j = 0; j < w; j++) {
		if (r <= 0)
			return r ? r : POG_ECORRUPT;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &m[j].key, &val, &vlen);
		if (vlen < 8 || vlen > sizeof(m[j].val))
			return POG_ECORRUPT;
		memcpy(&m[j].child, val, 8);
		memcpy(m[j].val, val, vlen);
		m[j].vlen = vlen;
		if (vlen == 8) {
			ssize_t n = pog_list_name_of(nm, m[j].key, val, vlen,
						     m[j].val + 8,
						     sizeof(m[j].val) - 8);
			if (n < 0)
				return (int)n;
			m[j].vlen = (uint16_t)(8 + n);
			pog_list_removed(nm->s, nm->ino, nm, m[j].key);
		}
		r = pog_bt_next(&it);
	}
	return r < 0 ? r : 0;
}

/*
 * No key is free between the neighbours of place: spread the keys of a
 * window of entries around it evenly, leaving a key for the new entry in
 * *key. The window doubles until its keys are sparse enough (a gap of at
 * least its size and RESPACE_GAP: 16 more insertions at one point before
 * the next respacing there), so a run of insertions at one point moves
 * O(log n) entries each, amortized; keys are 62 bits, so this is rare.
 */
#define RESPACE_GAP ((uint64_t)1 << 16)
static int respace(pog_store *s, uint64_t ino, struct pog_inode *dir,
		   const struct pog_list_names *nm,
		   const struct pog_list_place *pl, uint64_t *key)
{
	uint64_t n = pl->count, i = pl->rank, a = 0, b = n, lo = 0, hi = KEY_END,
		 gap = 0;
	for (uint64_t w = 16;; w *= 2) {
		a = i > w / 2 ? i - w / 2 : 0;
		b = a + w < n ? a + w : n;
		if (b - a < w)
			a = b > w ? b - w : 0;
		struct entry e;
		int err = 0;
		lo = 0, hi = KEY_END;
		if (a > 0 && !(err = entry_at(nm, dir->content, a - 1, &e)))
			lo = e.key + 1;
		if (!err && b < n && !(err = entry_at(nm, dir->content, b, &e)))
			hi = e.key;
		if (err)
			return err;
		gap = (hi - lo) / (b - a + 2);
		if ((gap >= w && gap >= RESPACE_GAP) || (a == 0 && b == n))
			break;
	}
	if (gap == 0)
		return -ENOSPC;
	uint64_t w = b - a;
	int err = pog_list_touched(s, ino); /* before pog_list_removed */
	if (!err)
		err = pog_reserve(s, w / 16 + 2 * POG_BT_MAX_DEPTH);
	struct moved *m = err ? NULL : calloc(w ? w : 1, sizeof(*m));
	if (!err && !m)
		err = -ENOMEM;
	if (!err)
		err = window_read(nm, dir->content, a, w, m);
	for (uint64_t j = 0; j < w && !err; j++)
		err = pog_bt_del(s, &dir->content, m[j].key);
	for (uint64_t t = 0; t <= w && !err; t++) {
		uint64_t k = lo + gap * (t + 1);
		if (t == i - a) {
			*key = k; /* the new entry's place */
			continue;
		}
		struct moved *e = &m[t < i - a ? t : t - 1];
		err = pog_bt_put(s, POG_TREE_LIST, &dir->content, k, e->val,
				 e->vlen);
		if (!err)
			err = reown_child(s, ino, e->child, e->key, k);
	}
	free(m);
	return err;
}

int pog_list_new_key(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     const struct pog_list_names *nm,
		     const struct pog_list_name *want, uint64_t *key)
{
	if (nm->legacy)
		return -EROFS;
	struct pog_list_place pl = {0};
	uint64_t existing, child;
	int err = pog_list_find(nm, dir->content, want, &existing, &child, &pl);
	if (err == 0)
		return -EEXIST;
	if (err != -ENOENT)
		return err;
	err = key_between(&pl, key);
	if (err == -ENOSPC)
		err = respace(s, ino, dir, nm, &pl, key);
	return err;
}

/* ---- the transaction's lists ------------------------------------------- */

int pog_list_touched(pog_store *s, uint64_t ino)
{
	/* the commit must find every list whose entries carry names */
	return pog_map64_get(&s->list_dirty, ino) ? 0 : -ENOMEM;
}

void pog_list_removed(pog_store *s, uint64_t ino,
		      const struct pog_list_names *nm, uint64_t key)
{
	uint64_t rank;
	uint64_t *v = pog_map64_get(&s->list_dirty, ino);
	if (!v)
		return;
	if (pog_list_base_rank(nm, key, &rank))
		rank = 0; /* unreadable: count it as the first */
	if (*v == 0 || rank + 1 < *v)
		*v = rank + 1;
}

/* ---- ordered iteration ---------------------------------------------------- */

int pog_list_seek(struct pog_list_iter *it, pog_store *s, uint64_t root,
		  uint64_t cookie)
{
	memset(it, 0, sizeof(*it));
	int r = pog_bt_seek(&it->cur, s, root, cookie);
	if (r > 0) {
		const void *val;
		pog_bt_cur(&it->cur, &it->key, &val, &it->vlen);
		if (it->vlen < 8)
			return POG_ECORRUPT;
		it->val = val;
		memcpy(&it->child, val, 8);
	}
	return r;
}

int pog_list_next(struct pog_list_iter *it)
{
	int r = pog_bt_next(&it->cur);
	if (r > 0) {
		const void *val;
		pog_bt_cur(&it->cur, &it->key, &val, &it->vlen);
		if (it->vlen < 8)
			return POG_ECORRUPT;
		it->val = val;
		memcpy(&it->child, val, 8);
	}
	return r;
}

uint64_t pog_list_cookie(const struct pog_list_iter *it)
{
	return it->key + 1; /* keys are below 2^63 - 1: an off_t */
}

void pog_list_iter_release(struct pog_list_iter *it)
{
	(void)it; /* nothing held */
}

/*
 * The current entry's name. Walking the list names base entries in key
 * order, so a cursor on the committed tree moves along with it: the next
 * committed key is usually the entry's (rank + 1, no descent).
 */
ssize_t pog_list_iter_name(struct pog_list_iter *it,
			   const struct pog_list_names *nm, char *buf,
			   size_t size)
{
	if (it->vlen != 8 || it->key >= KEY_END || nm->legacy || !nm->base)
		return pog_list_name_of(nm, it->key, it->val, it->vlen, buf, size);
	uint64_t k = 0;
	if (it->base_ok > 0)
		pog_bt_cur(&it->base, &k, NULL, NULL);
	if (it->base_ok <= 0 || k != it->key) {
		if (it->base_ok > 0 && k < it->key) {
			int r = pog_bt_next(&it->base); /* the usual step */
			it->base_rank++;
			if (r > 0)
				pog_bt_cur(&it->base, &k, NULL, NULL);
			it->base_ok = r;
		}
		if (it->base_ok <= 0 || k != it->key) {
			int err = pog_bt_rank(nm->s, nm->base, it->key,
					      &it->base_rank);
			if (err)
				return err;
			it->base_ok = pog_bt_seek(&it->base, nm->s, nm->base,
						  it->key);
			if (it->base_ok > 0)
				pog_bt_cur(&it->base, &k, NULL, NULL);
			if (it->base_ok <= 0 || k != it->key) {
				it->base_ok = 0;
				return POG_ECORRUPT; /* not in the base */
			}
		}
	}
	int n = snprintf(buf, size, "%" PRIu64, it->base_rank);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

/* ---- settling at commit --------------------------------------------------- */

/* Names of temporary entries left in dirty lists: -EINVAL naming one. */
static int temps_check(pog_store *s, uint64_t ino, const struct pog_inode *in)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, POG_LIST_NAMED);
	if (r > 0) {
		uint64_t key;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		if (vlen < 8)
			return POG_ECORRUPT;
		char path[4096];
		ssize_t n = pog_path_locked(s, &s->staged, ino, path, sizeof(path));
		if (n < 0 || (size_t)n >= sizeof(path))
			snprintf(path, sizeof(path), ".pog/objects/%" PRIu64, ino);
		char shown[256];
		ssize_t m = pog_name_escape((const char *)val + 8, vlen - 8u, shown,
					    sizeof(shown));
		if (m < 0)
			snprintf(shown, sizeof(shown), "%%~%016" PRIx64, key);
		pog_set_error(s,
			      "commit: a list holds a temporary entry (not a number): %s%s%s",
			      path, n > 0 ? "/" : "", shown);
		return -EINVAL;
	}
	return r;
}

struct dirty_list {
	uint64_t ino, first_removed; /* 1 + committed rank, 0: none */
};

static int dirty_cmp(const void *a, const void *b)
{
	const struct dirty_list *x = a, *y = b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The lists the transaction changed, in identity order. */
static int dirty_lists(pog_store *s, struct dirty_list **out, size_t *n)
{
	struct dirty_list *d = malloc((s->list_dirty.n + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	size_t k = 0;
	pog_map64_foreach(&s->list_dirty, i)
		d[k++] = (struct dirty_list){s->list_dirty.keys[i],
					     s->list_dirty.vals[i]};
	qsort(d, k, sizeof(*d), dirty_cmp);
	*out = d;
	*n = k;
	return 0;
}

int pog_lists_settle(pog_store *s)
{
	s->renumbered.n = 0;
	if (!s->list_dirty.n)
		return 0;
	struct dirty_list *d;
	size_t n;
	int err = dirty_lists(s, &d, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		const struct pog_inode *in;
		if (pog_inode_get(s, &s->staged, d[i].ino, &in) == 0 &&
		    in->type == POG_LIST)
			err = temps_check(s, d[i].ino, in);
	}
	free(d);
	return err;
}

struct trim {
	pog_store *s;
	uint64_t root;
	uint64_t made;   /* entries that carried a name */
	bool renamed;    /* one of them is not named by its rank */
};

/* A carried name goes (the entry is named by its rank from now on). */
static int trim_entry(void *ctx, uint64_t key, void *val, uint16_t *vlen)
{
	struct trim *t = ctx;
	if (key >= KEY_END || *vlen <= 8)
		return 0;
	t->made++;
	if (!t->renamed) {
		struct pog_list_name nm;
		uint64_t rank;
		if (pog_list_name_parse((const char *)val + 8, *vlen - 8u, &nm) ||
		    nm.kind != POG_LIST_POSITION ||
		    pog_bt_rank(t->s, t->root, key, &rank) || rank != nm.whole)
			t->renamed = true;
	}
	*vlen = 8;
	return 0;
}

/*
 * Do the names of a list change at this commit? A base entry keeps its
 * name when every base entry before it is still there: with R of the
 * committed entries gone (removed or moved), that holds for all iff the
 * first one gone has rank >= base - R. An entry made in the transaction
 * keeps its name when its name is its rank.
 */
static bool names_change(pog_store *s, uint64_t ino, const struct pog_inode *in,
			 const struct dirty_list *d, const struct trim *t)
{
	if (t->renamed)
		return true;
	if (!d->first_removed)
		return false;
	struct pog_list_names nm;
	uint64_t base = 0, now = 0;
	if (pog_list_names_init(&nm, s, &s->staged, ino, in) ||
	    pog_bt_count(s, nm.base, &base) || positions(&nm, in->content, &now))
		return true;
	uint64_t kept = now - t->made, gone = base > kept ? base - kept : 0;
	return d->first_removed - 1 < base - gone;
}

void pog_lists_seal(pog_store *s)
{
	struct dirty_list *d;
	size_t n;
	if (!s->list_dirty.n || dirty_lists(s, &d, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		const struct pog_inode *in;
		if (pog_inode_get(s, &s->staged, d[i].ino, &in) ||
		    in->type != POG_LIST)
			continue;
		struct trim t = {s, in->content, 0, false};
		if (pog_bt_trim_fresh(s, in->content, trim_entry, &t))
			t.renamed = true;
		if (names_change(s, d[i].ino, in, &d[i], &t))
			(void)pog_vec_push(&s->renumbered, d[i].ino);
	}
	free(d);
}

void pog_lists_clear(pog_store *s)
{
	pog_map64_release(&s->list_dirty);
}

int pog_renumbered(pog_store *s, int (*fn)(void *ctx, uint64_t dir),
		   void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	for (size_t i = 0; i < s->renumbered.n && !err; i++)
		err = fn(ctx, s->renumbered.v[i]);
	pog_unlock(s);
	return err;
}

/* ---- format 2 -> 3 ------------------------------------------------------------ */

/* Rebuild one format-2 list (keys 0..n-1, branch nodes without counts)
 * with spread keys and counts; its children follow their keys. */
static int upgrade_list(pog_store *s, uint64_t ino)
{
	struct pog_inode in;
	int err = pog_inode_load(s, ino, &in);
	if (err)
		return err;
	struct pog_vec kv = {0};
	s->env->list_counts = false;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in.content, 0);
	while (r > 0 && !err) {
		uint64_t key, child;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		if (vlen < 8)
			err = POG_ECORRUPT;
		memcpy(&child, val, 8);
		if (!err)
			err = pog_vec_push(&kv, key);
		if (!err)
			err = pog_vec_push(&kv, child);
		r = pog_bt_next(&it);
	}
	if (!err && r < 0)
		err = r;
	if (!err)
		pog_bt_release(s, in.content);
	s->env->list_counts = true;
	if (!err)
		err = pog_reserve(s, kv.n / 200 + 4 * POG_BT_MAX_DEPTH);
	uint64_t root = 0;
	for (size_t i = 0; i + 1 < kv.n && !err; i += 2) {
		uint64_t key = POG_LIST_FIRST_KEY + (i / 2) * POG_LIST_KEY_STEP;
		err = pog_bt_put(s, POG_TREE_LIST, &root, key, &kv.v[i + 1], 8);
		if (!err)
			err = reown_child(s, ino, kv.v[i + 1], kv.v[i], key);
	}
	if (!err) {
		in.content = root;
		in.entries = kv.n / 2;
		err = pog_inode_put(s, ino, &in);
	}
	pog_vec_release(&kv);
	return err;
}

int pog_lists_upgrade(pog_store *s)
{
	/* The lists first (the object table is read with counts off only
	 * for list trees, so reading it is the same either way). */
	struct pog_vec lists = {0};
	struct pog_bt_iter it;
	int err = 0;
	int r = pog_bt_seek(&it, s, s->staged.obj_root, 0);
	while (r > 0 && !err) {
		uint64_t ino;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &ino, &val, &vlen);
		const struct pog_inode *in = val;
		if (vlen >= POG_INODE_FIXED && in->type == POG_LIST)
			err = pog_vec_push(&lists, ino);
		r = pog_bt_next(&it);
	}
	if (!err && r < 0)
		err = r;
	for (size_t i = 0; i < lists.n && !err; i++)
		err = upgrade_list(s, lists.v[i]);
	pog_vec_release(&lists);
	return err;
}
