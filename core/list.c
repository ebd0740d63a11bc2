/* list.c - a list's names: positions, temporary entries, order, and the renumbering at commit. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "store_int.h"

/*
 * A list's entry tree (POG_TREE_LIST) holds three kinds of keys:
 *   key < POG_LIST_POS_LIMIT    the position named by the integer key
 *                               (value: the child's u64 identity);
 *   key >= POG_LIST_NAMED       a fractional position ("2.5") or a
 *                               temporary entry (".0.XYZ"), keyed as a map
 *                               entry is, NAMED | hash(name) | seq (value:
 *                               the child's identity, then the name);
 *   POG_LIST_SCRATCH <= key < POG_LIST_NAMED: used only while a commit
 *                               renumbers a list.
 * A committed list holds the keys 0..n-1 and nothing else: every commit
 * renumbers the lists it changed and refuses temporary entries. So inside
 * a transaction a name never shifts (removing 3 leaves 0 1 2 4) and the
 * entries of a list are listed in numeric order of their names, then the
 * temporary entries.
 */

#define KEY_HASH_MASK 0x0FFFFFFFFFFFFFF0ULL
#define GROUP_SHIFT 12 /* readdir cookie: group << 12 | item in group */
#define GROUP_ITEMS ((1u << GROUP_SHIFT) - 1)
#define TEMP_COOKIE ((uint64_t)1 << 60)

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
	out->kind = fraction ? POG_LIST_FRACTION : POG_LIST_POSITION;
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

/* ---- the fractional positions of a list, sorted ------------------------ */

struct frac {
	uint64_t key, child;
	struct pog_list_name name;
	char *text;
};

static void fracs_free(struct frac *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].text);
	free(f);
}

static int frac_cmp(const void *a, const void *b)
{
	return position_cmp(&((const struct frac *)a)->name,
			    &((const struct frac *)b)->name);
}

/* The fractional positions of group >= from (an edit each: a committed
 * list has none), in numeric order. */
static int fracs_collect(pog_store *s, uint64_t root, uint64_t from,
			 struct frac **out, size_t *nout)
{
	struct frac *f = NULL;
	size_t n = 0, cap = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, root, POG_LIST_NAMED);
	while (r > 0) {
		uint64_t key, child;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		if (vlen < 8) {
			r = POG_ECORRUPT;
			break;
		}
		struct pog_list_name nm;
		const char *name = (const char *)val + 8;
		size_t len = vlen - 8u;
		if (pog_list_name_parse(name, len, &nm) == 0 &&
		    nm.kind == POG_LIST_FRACTION && nm.whole >= from) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				struct frac *g = realloc(f, cap * sizeof(*f));
				if (!g) {
					r = -ENOMEM;
					break;
				}
				f = g;
			}
			char *text = malloc(len + 1);
			if (!text) {
				r = -ENOMEM;
				break;
			}
			memcpy(text, name, len);
			text[len] = '\0';
			memcpy(&child, val, 8);
			f[n].key = key;
			f[n].child = child;
			pog_list_name_parse(text, len, &f[n].name);
			f[n].text = text;
			n++;
		}
		r = pog_bt_next(&it);
	}
	if (r < 0) {
		fracs_free(f, n);
		return r;
	}
	if (n)
		qsort(f, n, sizeof(*f), frac_cmp);
	*out = f;
	*nout = n;
	return 0;
}

/* ---- ordered iteration ---------------------------------------------------- */

void pog_list_iter_release(struct pog_list_iter *it)
{
	fracs_free(it->fracs, it->nfracs);
	it->fracs = NULL;
	it->nfracs = 0;
}

/* The next integer position at or after key (it->ints positioned). */
static int ints_seek(struct pog_list_iter *it, uint64_t key)
{
	int r = pog_bt_seek(&it->ints, it->s, it->root, key);
	if (r > 0) {
		uint64_t k;
		pog_bt_cur(&it->ints, &k, NULL, NULL);
		if (k >= POG_LIST_POS_LIMIT)
			r = 0;
	}
	it->ints_ok = r > 0;
	return r < 0 ? r : 0;
}

/* Make the current entry the next one in order; 1 positioned, 0 at end. */
static int iter_settle(struct pog_list_iter *it)
{
	if (it->phase == 0) {
		uint64_t k = 0;
		if (it->ints_ok)
			pog_bt_cur(&it->ints, &k, NULL, NULL);
		bool have_frac = it->fi < it->nfracs;
		if (it->ints_ok &&
		    (!have_frac || k <= it->fracs[it->fi].name.whole)) {
			const void *val;
			pog_bt_cur(&it->ints, NULL, &val, NULL);
			it->key = k;
			memcpy(&it->child, val, 8);
			it->group = k;
			it->from_ints = true;
			return 1;
		}
		if (have_frac) {
			it->key = it->fracs[it->fi].key;
			it->child = it->fracs[it->fi].child;
			it->group = it->fracs[it->fi].name.whole;
			it->from_ints = false;
			return 1;
		}
		it->phase = 1;
		int r = pog_bt_seek(&it->named, it->s, it->root, it->temp_from);
		if (r <= 0) {
			it->phase = 2;
			return r;
		}
	}
	while (it->phase == 1) {
		uint64_t key;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it->named, &key, &val, &vlen);
		struct pog_list_name nm;
		if (vlen < 8)
			return POG_ECORRUPT;
		pog_list_name_parse((const char *)val + 8, vlen - 8u, &nm);
		if (nm.kind == POG_LIST_TEMP) {
			it->key = key;
			memcpy(&it->child, val, 8);
			return 1;
		}
		int r = pog_bt_next(&it->named);
		if (r <= 0) {
			it->phase = 2;
			return r;
		}
	}
	return 0;
}

int pog_list_next(struct pog_list_iter *it)
{
	if (it->phase == 0) {
		uint64_t before = it->group;
		if (it->from_ints) {
			int r = pog_bt_next(&it->ints);
			if (r < 0)
				return r;
			it->ints_ok = r > 0;
			if (it->ints_ok) {
				uint64_t k;
				pog_bt_cur(&it->ints, &k, NULL, NULL);
				if (k >= POG_LIST_POS_LIMIT)
					it->ints_ok = false;
			}
		} else {
			it->fi++;
		}
		int r = iter_settle(it);
		if (r > 0 && it->phase == 0)
			it->item = it->group == before ? it->item + 1 : 0;
		return r;
	}
	if (it->phase == 1) {
		int r = pog_bt_next(&it->named);
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
	uint64_t group = cookie ? (cookie - 1) >> GROUP_SHIFT : 0;
	unsigned skip = cookie ? (unsigned)((cookie - 1) & GROUP_ITEMS) : 0;
	int err = fracs_collect(s, root, group, &it->fracs, &it->nfracs);
	if (!err)
		err = ints_seek(it, group);
	if (err)
		return err;
	int r = iter_settle(it);
	it->item = 0;
	while (r > 0 && it->phase == 0 && it->group == group && it->item < skip)
		r = pog_list_next(it);
	return r;
}

uint64_t pog_list_cookie(const struct pog_list_iter *it)
{
	if (it->phase == 0) {
		unsigned item = it->item + 1 < GROUP_ITEMS ? it->item + 1
							  : GROUP_ITEMS;
		return ((it->group << GROUP_SHIFT) | item) + 1;
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
 * ... in order. An entry whose key is its rank stays. With no fractional
 * position every other entry moves down, so moving in ascending order
 * never meets a key still taken; with fractions, entries may move up, so
 * they pass through the scratch keys. Entries below `from` are
 * 0..rank-1 already. *moved counts the entries that got a new name.
 */
static int renumber(pog_store *s, uint64_t ino, struct pog_inode *in,
		    uint64_t from, uint64_t rank, uint64_t *moved)
{
	struct frac *f = NULL;
	size_t nf = 0, fi = 0;
	int err = fracs_collect(s, in->content, from, &f, &nf);
	if (err)
		return err;
	uint64_t base = nf ? POG_LIST_SCRATCH : 0;
	struct pog_bt_iter it;
	uint64_t next_int = from;
	int r = pog_bt_seek(&it, s, in->content, from);
	while (r >= 0) {
		uint64_t k = 0, child = 0;
		bool have_int = false;
		if (r > 0) {
			const void *val;
			pog_bt_cur(&it, &k, &val, NULL);
			have_int = k < POG_LIST_POS_LIMIT;
			if (have_int)
				memcpy(&child, val, 8);
		}
		uint64_t key;
		bool from_int = have_int && (fi == nf || k <= f[fi].name.whole);
		if (from_int) {
			key = k;
			next_int = k + 1;
		} else if (fi < nf) {
			key = f[fi].key;
			child = f[fi].child;
			fi++;
		} else {
			break;
		}
		if (key == rank) {
			if (from_int)
				r = pog_bt_next(&it);
		} else {
			err = entry_move(s, &in->content, key, child, base + rank);
			if (!err)
				err = reown_child(s, ino, child, key, rank);
			if (err)
				break;
			(*moved)++;
			/* the tree changed under the iterator */
			r = pog_bt_seek(&it, s, in->content, next_int);
		}
		rank++;
	}
	if (r < 0 && !err)
		err = r;
	fracs_free(f, nf);
	while (!err && base) {
		r = pog_bt_seek(&it, s, in->content, POG_LIST_SCRATCH);
		uint64_t k, child;
		const void *val;
		if (r <= 0) {
			err = r;
			break;
		}
		pog_bt_cur(&it, &k, &val, NULL);
		if (k >= POG_LIST_NAMED)
			break;
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
		if (pog_inode_get(s, &s->committed, d[i].ino, &old) == 0 &&
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
