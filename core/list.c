/* list.c - a list's names: positions, temporary entries, order, and the renumbering at commit. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "store_int.h"

/*
 * A list's entry tree (POG_TREE_LIST) holds four kinds of keys:
 *   key < POG_LIST_POS_LIMIT     the position named by the integer key
 *                                (value: the child's u64 identity);
 *   POG_LIST_FRACTION | g << 13 | seq
 *                                a fractional position with integer part g
 *                                ("2.5": g = 2); seq orders the fractions
 *                                of one g, spaced so that one can go
 *                                between two (value: identity, then name);
 *   POG_LIST_NAMED | hash | seq  a temporary entry (".0.XYZ"), keyed as a
 *                                map entry is (value: identity, then name);
 *   POG_LIST_SCRATCH + rank      only while a commit renumbers a list.
 * A committed list holds the keys 0..n-1 and nothing else: every commit
 * renumbers the lists it changed and refuses temporary entries. So inside
 * a transaction a name never shifts (removing 3 leaves 0 1 2 4), and the
 * tree's key order is the numeric order of the positions (integers and
 * fractions merged by g), then the temporary entries.
 */

#define FRAC_SEQ_BITS POG_LIST_FRAC_SEQ_BITS
#define FRAC_SEQ_END ((uint64_t)1 << FRAC_SEQ_BITS) /* seqs are 1..END-1 */
#define COOKIE_SHIFT 14 /* readdir cookie: g << 14 | (0, or seq + 1) */
#define TEMP_COOKIE ((uint64_t)1 << 60)

uint64_t pog_list_frac_key(uint64_t group, uint64_t seq)
{
	return POG_LIST_FRACTION | group << FRAC_SEQ_BITS | seq;
}

static uint64_t frac_group(uint64_t key)
{
	return (key & ~POG_LIST_FRACTION) >> FRAC_SEQ_BITS;
}

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

/* ---- dirty lists: what the commit must renumber ----------------------- */

void pog_list_touched(pog_store *s, uint64_t ino, uint64_t from)
{
	uint64_t *v = pog_map64_get(&s->list_dirty, ino);
	if (!v)
		return; /* out of memory: settle finds none to renumber */
	if (*v == 0 || from + 1 < *v)
		*v = from + 1;
}

/* ---- fractions: found and placed within their group ------------------ */

/* The name of the fraction at the iterator (its value). */
static int frac_name(const struct pog_bt_iter *it, uint64_t *key,
		     uint64_t *child, struct pog_list_name *nm)
{
	const void *val;
	uint16_t vlen;
	pog_bt_cur(it, key, &val, &vlen);
	if (vlen < 8 ||
	    pog_list_name_parse((const char *)val + 8, vlen - 8u, nm) ||
	    nm->kind != POG_LIST_FRACTION_NAME)
		return POG_ECORRUPT;
	memcpy(child, val, 8);
	return 0;
}

int pog_list_frac_find(pog_store *s, uint64_t root,
		       const struct pog_list_name *want, uint64_t *key,
		       uint64_t *child, uint64_t *free_key)
{
	uint64_t lo = 0, hi = FRAC_SEQ_END, end = pog_list_frac_key(want->whole + 1, 0);
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, root, pog_list_frac_key(want->whole, 0));
	while (r > 0) {
		uint64_t k, c;
		struct pog_list_name nm;
		pog_bt_cur(&it, &k, NULL, NULL);
		if (k >= end)
			break;
		int err = frac_name(&it, &k, &c, &nm);
		if (err)
			return err;
		int cmp = position_cmp(&nm, want);
		if (cmp == 0) {
			*key = k;
			*child = c;
			return 0;
		}
		if (cmp > 0) {
			hi = k & (FRAC_SEQ_END - 1);
			break;
		}
		lo = k & (FRAC_SEQ_END - 1);
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	if (free_key)
		*free_key = hi - lo >= 2 ? pog_list_frac_key(want->whole, (lo + hi) / 2)
					 : 0; /* no room: respace */
	return -ENOENT;
}

struct frac {
	uint64_t key, child;
	struct pog_list_name name;
	char *text;
};

static int frac_cmp(const void *a, const void *b)
{
	return position_cmp(&((const struct frac *)a)->name,
			    &((const struct frac *)b)->name);
}

/* The owning key of child moves from old_key to new_key in dir. */
static int reown_child(pog_store *s, uint64_t dir, uint64_t child,
		       uint64_t old_key, uint64_t new_key);

/*
 * Spread the fractions of group `want->whole` evenly over their seq
 * range, leaving a place for `want`, whose key is *key afterwards: a
 * rare step (a dozen fractions nested at one point). -ENOSPC past
 * FRAC_SEQ_END - 2 fractions with one integer part.
 */
int pog_list_frac_respace(pog_store *s, uint64_t ino, struct pog_inode *dir,
			  const struct pog_list_name *want, uint64_t *key)
{
	struct frac *f = NULL;
	size_t n = 0, cap = 0;
	uint64_t end = pog_list_frac_key(want->whole + 1, 0);
	struct pog_bt_iter it;
	int err = 0;
	int r = pog_bt_seek(&it, s, dir->content, pog_list_frac_key(want->whole, 0));
	while (r > 0 && !err) {
		uint64_t k;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &k, &val, &vlen);
		if (k >= end)
			break;
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 16;
			struct frac *g = realloc(f, cap * sizeof(*f));
			if (!g) {
				err = -ENOMEM;
				break;
			}
			f = g;
		}
		f[n].text = vlen >= 8 ? malloc(vlen - 8u + 1u) : NULL;
		if (!f[n].text) {
			err = vlen >= 8 ? -ENOMEM : POG_ECORRUPT;
			break;
		}
		memcpy(f[n].text, (const char *)val + 8, vlen - 8u);
		f[n].text[vlen - 8u] = '\0';
		memcpy(&f[n].child, val, 8);
		f[n].key = k;
		pog_list_name_parse(f[n].text, vlen - 8u, &f[n].name);
		n++;
		r = pog_bt_next(&it);
	}
	if (r < 0 && !err)
		err = r;
	size_t total = n;
	if (!err && n + 2 >= FRAC_SEQ_END)
		err = -ENOSPC;
	if (!err) {
		f[n] = (struct frac){0, 0, *want, NULL}; /* the place kept */
		total = n + 1;
		qsort(f, n + 1, sizeof(*f), frac_cmp);
		for (size_t i = 0; i <= n && !err; i++)
			if (f[i].text)
				err = pog_bt_del(s, &dir->content, f[i].key);
		for (size_t i = 0; i <= n && !err; i++) {
			uint64_t k = pog_list_frac_key(want->whole,
						       (i + 1) * FRAC_SEQ_END / (n + 2));
			if (!f[i].text) {
				*key = k;
				continue;
			}
			size_t len = strlen(f[i].text);
			char buf[8 + POG_KEY_MAX];
			memcpy(buf, &f[i].child, 8);
			memcpy(buf + 8, f[i].text, len);
			err = pog_bt_put(s, POG_TREE_LIST, &dir->content, k, buf,
					 (uint16_t)(8 + len));
			if (!err)
				err = reown_child(s, ino, f[i].child, f[i].key, k);
		}
	}
	for (size_t i = 0; i < total; i++)
		free(f[i].text);
	free(f);
	return err;
}

/* ---- ordered iteration ---------------------------------------------------- */

void pog_list_iter_release(struct pog_list_iter *it)
{
	(void)it; /* nothing held: kept for callers that may hold more */
}

/* Position a cursor at key, limited to [key, end): 1, 0 (none), <0. */
static int cursor_seek(struct pog_bt_iter *c, pog_store *s, uint64_t root,
		       uint64_t key, uint64_t end)
{
	int r = pog_bt_seek(c, s, root, key);
	if (r > 0) {
		uint64_t k;
		pog_bt_cur(c, &k, NULL, NULL);
		if (k >= end)
			r = 0;
	}
	return r;
}

static int cursor_next(struct pog_bt_iter *c, uint64_t end)
{
	int r = pog_bt_next(c);
	if (r > 0) {
		uint64_t k;
		pog_bt_cur(c, &k, NULL, NULL);
		if (k >= end)
			r = 0;
	}
	return r;
}

/* Make the current entry the smaller of the two cursors' (an integer g
 * before the fractions of g), or move on to the temporaries. */
static int iter_settle(struct pog_list_iter *it)
{
	if (it->phase == 0) {
		uint64_t ki = 0, kf = 0;
		if (it->ints_ok)
			pog_bt_cur(&it->ints, &ki, NULL, NULL);
		if (it->fracs_ok)
			pog_bt_cur(&it->fracs, &kf, NULL, NULL);
		bool take_int = it->ints_ok &&
				(!it->fracs_ok || ki <= frac_group(kf));
		if (take_int || it->fracs_ok) {
			const void *val;
			pog_bt_cur(take_int ? &it->ints : &it->fracs, &it->key,
				   &val, NULL);
			memcpy(&it->child, val, 8);
			it->from_ints = take_int;
			return 1;
		}
		it->phase = 1;
		int r = pog_bt_seek(&it->named, it->s, it->root, it->temp_from);
		if (r <= 0) {
			it->phase = 2;
			return r;
		}
	}
	if (it->phase == 1) {
		const void *val;
		pog_bt_cur(&it->named, &it->key, &val, NULL);
		memcpy(&it->child, val, 8);
		return 1;
	}
	return 0;
}

int pog_list_next(struct pog_list_iter *it)
{
	int r;
	if (it->phase == 0) {
		if (it->from_ints)
			r = cursor_next(&it->ints, POG_LIST_POS_LIMIT);
		else
			r = cursor_next(&it->fracs, POG_LIST_NAMED);
		if (r < 0)
			return r;
		if (it->from_ints)
			it->ints_ok = r > 0;
		else
			it->fracs_ok = r > 0;
		return iter_settle(it);
	}
	if (it->phase == 1) {
		r = pog_bt_next(&it->named);
		if (r <= 0) {
			it->phase = 2;
			return r;
		}
		return iter_settle(it);
	}
	return 0;
}

int pog_list_seek(struct pog_list_iter *it, pog_store *s, uint64_t root,
		  uint64_t cookie)
{
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->root = root;
	it->temp_from = POG_LIST_NAMED;
	if (cookie >= TEMP_COOKIE) {
		it->phase = 1;
		it->temp_from = POG_LIST_NAMED | (cookie - TEMP_COOKIE);
		int r = pog_bt_seek(&it->named, s, root, it->temp_from);
		if (r <= 0) {
			it->phase = 2;
			return r;
		}
		return iter_settle(it);
	}
	uint64_t int_from = 0, frac_from = POG_LIST_FRACTION;
	if (cookie) {
		uint64_t g = (cookie - 1) >> COOKIE_SHIFT;
		uint64_t after = (cookie - 1) & ((1u << COOKIE_SHIFT) - 1);
		int_from = g + 1;
		frac_from = pog_list_frac_key(g, after);
	}
	int r = cursor_seek(&it->ints, s, root, int_from, POG_LIST_POS_LIMIT);
	if (r < 0)
		return r;
	it->ints_ok = r > 0;
	r = cursor_seek(&it->fracs, s, root, frac_from, POG_LIST_NAMED);
	if (r < 0)
		return r;
	it->fracs_ok = r > 0;
	return iter_settle(it);
}

uint64_t pog_list_cookie(const struct pog_list_iter *it)
{
	if (it->phase == 0) {
		if (it->from_ints)
			return (it->key << COOKIE_SHIFT) + 1;
		uint64_t seq = it->key & (FRAC_SEQ_END - 1);
		return ((frac_group(it->key) << COOKIE_SHIFT) | (seq + 1)) + 1;
	}
	return TEMP_COOKIE + (it->key & ~POG_LIST_NAMED) + 1;
}

/* ---- settling at commit --------------------------------------------------- */

/* Names of temporary entries left in dirty lists: -EINVAL naming one. */
static int temps_check(pog_store *s, uint64_t ino, const struct pog_inode *in)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, POG_LIST_NAMED);
	while (r > 0) {
		uint64_t key;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		if (vlen < 8)
			return POG_ECORRUPT;
		struct pog_list_name nm;
		pog_list_name_parse((const char *)val + 8, vlen - 8u, &nm);
		if (nm.kind == POG_LIST_TEMP) {
			char path[4096];
			ssize_t n = pog_path_locked(s, &s->staged, ino, path,
						    sizeof(path));
			if (n < 0 || (size_t)n >= sizeof(path))
				snprintf(path, sizeof(path), ".pog/objects/%" PRIu64,
					 ino);
			char shown[256];
			ssize_t m = pog_name_escape((const char *)val + 8,
						    vlen - 8u, shown,
						    sizeof(shown));
			if (m < 0)
				snprintf(shown, sizeof(shown), "%%~%016" PRIx64, key);
			pog_set_error(s,
				      "commit: a list holds a temporary entry (not a number): %s%s%s",
				      path, n > 0 ? "/" : "", shown);
			return -EINVAL;
		}
		r = pog_bt_next(&it);
	}
	return r;
}

/* The child at key now sits at new_key (its owning key follows). */
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

/* Move the entry at key (holding child) to new_key. */
static int entry_move(pog_store *s, uint64_t *root, uint64_t key,
		      uint64_t child, uint64_t new_key)
{
	int err = pog_bt_del(s, root, key);
	if (!err)
		err = pog_bt_put(s, POG_TREE_LIST, root, new_key, &child,
				 sizeof(child));
	return err;
}

/*
 * Give the entries of a list from group `from` on the names rank, rank+1,
 * ... in order. An entry whose key is its rank stays. With no fraction
 * every other entry moves down, so moving in ascending order never meets
 * a key still taken; with fractions, entries may move up, so they pass
 * through the scratch keys. Entries below `from` are 0..rank-1 already.
 * *moved counts the entries that got a new name.
 */
static int renumber(pog_store *s, uint64_t ino, struct pog_inode *in,
		    uint64_t from, uint64_t rank, uint64_t *moved)
{
	struct pog_bt_iter ints, fracs;
	uint64_t next_int = from, next_frac = pog_list_frac_key(from, 0);
	int ri = cursor_seek(&ints, s, in->content, next_int, POG_LIST_POS_LIMIT);
	int rf = cursor_seek(&fracs, s, in->content, next_frac, POG_LIST_NAMED);
	uint64_t base = rf > 0 ? POG_LIST_SCRATCH : 0;
	bool scratch = base != 0;
	int err = 0;
	while (ri >= 0 && rf >= 0 && (ri > 0 || rf > 0)) {
		uint64_t ki = 0, kf = 0, key, child;
		const void *val;
		if (ri > 0)
			pog_bt_cur(&ints, &ki, NULL, NULL);
		if (rf > 0)
			pog_bt_cur(&fracs, &kf, NULL, NULL);
		bool take_int = ri > 0 && (rf == 0 || ki <= frac_group(kf));
		pog_bt_cur(take_int ? &ints : &fracs, &key, &val, NULL);
		memcpy(&child, val, 8);
		if (take_int)
			next_int = key + 1;
		else
			next_frac = key + 1;
		if (key == rank) {
			ri = cursor_next(&ints, POG_LIST_POS_LIMIT);
		} else {
			err = entry_move(s, &in->content, key, child, base + rank);
			if (!err)
				err = reown_child(s, ino, child, key, rank);
			if (err)
				break;
			(*moved)++;
			/* the tree changed under the cursors */
			ri = cursor_seek(&ints, s, in->content, next_int,
					 POG_LIST_POS_LIMIT);
			rf = cursor_seek(&fracs, s, in->content, next_frac,
					 POG_LIST_NAMED);
		}
		rank++;
	}
	if (!err && (ri < 0 || rf < 0))
		err = ri < 0 ? ri : rf;
	while (!err && scratch) {
		struct pog_bt_iter it;
		int r = cursor_seek(&it, s, in->content, POG_LIST_SCRATCH,
				    POG_LIST_FRACTION);
		uint64_t k, child;
		const void *val;
		if (r <= 0) {
			err = r;
			break;
		}
		pog_bt_cur(&it, &k, &val, NULL);
		memcpy(&child, val, 8);
		err = entry_move(s, &in->content, k, child, k - POG_LIST_SCRATCH);
	}
	return err;
}

struct dirty_list {
	uint64_t ino, from;
};

static int dirty_cmp(const void *a, const void *b)
{
	const struct dirty_list *x = a, *y = b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The lists to settle, in identity order (a stable order for errors). */
static int dirty_lists(pog_store *s, struct dirty_list **out, size_t *n)
{
	struct dirty_list *d = malloc((s->list_dirty.n + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	size_t k = 0;
	pog_map64_foreach(&s->list_dirty, i)
		d[k++] = (struct dirty_list){s->list_dirty.keys[i],
					     s->list_dirty.vals[i] - 1};
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
	uint64_t blocks = 64;
	/* First every check, so that a refused commit changes nothing. */
	for (size_t i = 0; i < n && !err; i++) {
		const struct pog_inode *in;
		if (pog_inode_get(s, &s->staged, d[i].ino, &in) ||
		    in->type != POG_LIST) {
			d[i].ino = 0; /* gone, or no longer a list */
			continue;
		}
		/* Keys exactly 0..n-1 (none at or above n): nothing to do. */
		struct pog_bt_iter it;
		int r = pog_bt_seek(&it, s, in->content, in->entries);
		if (r <= 0) {
			err = r;
			d[i].ino = 0;
			continue;
		}
		err = temps_check(s, d[i].ino, in);
		if (in->entries > d[i].from)
			blocks += (in->entries - d[i].from) / 32 + 8;
	}
	if (!err)
		err = pog_reserve(s, blocks);
	for (size_t i = 0; i < n && !err; i++) {
		if (!d[i].ino)
			continue;
		struct pog_inode in;
		const struct pog_inode *cur;
		err = pog_inode_get(s, &s->staged, d[i].ino, &cur);
		if (err)
			break;
		memcpy(&in, cur, pog_inode_len(cur));
		/* Below `from` nothing changed since the last commit: the
		 * committed list's first entries are 0..from-1 still. */
		const struct pog_inode *old;
		uint64_t before = 0;
		if (pog_inode_get(s, &s->base, d[i].ino, &old) == 0 &&
		    old->type == POG_LIST)
			before = old->entries;
		uint64_t rank = d[i].from < before ? d[i].from : before;
		uint64_t from = d[i].from < POG_LIST_POS_LIMIT ? rank
							      : POG_LIST_POS_LIMIT;
		if (from >= in.entries)
			continue;
		uint64_t moved = 0;
		err = renumber(s, d[i].ino, &in, from, rank, &moved);
		if (!err)
			err = pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root,
					 d[i].ino, &in, (uint16_t)pog_inode_len(&in));
		if (!err && moved)
			err = pog_vec_push(&s->renumbered, d[i].ino);
	}
	free(d);
	return err;
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
