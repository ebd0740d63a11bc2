/* diff.c - what changed between two commits, found top-down. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Two commits share every subtree that did not change (copy-on-write), so
 * comparing their object tables with pog_bt_diff reads only the paths to
 * the records that differ. For each:
 * - an object only in b is new: "A" at its place in b; only in a: "D" at
 *   its place in a;
 * - a map whose entry tree differs: its entry trees are compared the same
 *   way: a name only in b is "A", only in a "D", re-pointed "M" (renames
 *   and moves are a D and an A, a hard link an A), and the map itself is
 *   "M" (the root is "."), as in .pog/changes and .pog/events;
 * - a list whose entries differ: "M" for the list (its order is its
 *   content);
 * - a record whose own content differs (type, mode, owner, size, bytes,
 *   xattrs, a ref's target; for files mtime too): "M".
 * Places come from parent pointers (pog_path_locked). Lines are sorted by
 * path and made unique.
 */

struct line {
	char kind;
	char *path;
};

struct differ {
	pog_store *s;
	const struct pog_state *a, *b;
	struct line *v;
	size_t n, cap;
	int err;
};

static int add_line(struct differ *d, char kind, const char *path, size_t len)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct line *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	char *p = strndup(path, len);
	if (!p)
		return -ENOMEM;
	d->v[d->n++] = (struct line){kind, p};
	return 0;
}

/* A line for object ino at its place in st (none when it has no place:
 * an object GC has not collected yet). */
static int object_line(struct differ *d, char kind, const struct pog_state *st,
		       uint64_t ino)
{
	char path[4096];
	ssize_t n = pog_path_locked(d->s, st, ino, path, sizeof(path));
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	return add_line(d, kind, path, (size_t)n);
}

/* Does the record itself say something changed? */
static bool record_changed(const struct pog_inode *x, const struct pog_inode *y)
{
	if (x->type != y->type || x->mode != y->mode || x->uid != y->uid ||
	    x->gid != y->gid || x->xattrs != y->xattrs)
		return true;
	if (x->type == POG_MAP || x->type == POG_LIST)
		return false; /* entries: compared apart; times follow them */
	if (x->size != y->size || x->content != y->content ||
	    x->flags != y->flags || x->direct_crc != y->direct_crc ||
	    x->mtime_sec != y->mtime_sec || x->mtime_nsec != y->mtime_nsec)
		return true;
	return (x->flags & POG_INODE_INLINE) &&
	       memcmp(x->inline_data, y->inline_data,
		      x->size < POG_INLINE_MAX ? x->size : POG_INLINE_MAX) != 0;
}

struct entries {
	struct differ *d;
	uint64_t dir;
	uint32_t type;
	char prefix_a[4096], prefix_b[4096];
	ssize_t la, lb; /* < 0: the directory has no place there */
};

static int entry_line(struct entries *e, char kind, const char *prefix,
		      ssize_t plen, uint64_t key, const void *val, uint16_t vlen)
{
	if (plen < 0)
		return 0;
	char path[4096 + 256 + 2];
	char name[256];
	ssize_t n = pog_entry_name(e->type, key, val, vlen, name, sizeof(name));
	if (n < 0)
		return 0;
	size_t len = (size_t)plen;
	memcpy(path, prefix, len);
	if (len)
		path[len++] = '/';
	memcpy(path + len, name, (size_t)n);
	return add_line(e->d, kind, path, len + (size_t)n);
}

static int entry_diff(void *ctx, uint64_t key, const void *a, uint16_t alen,
		      const void *b, uint16_t blen)
{
	struct entries *e = ctx;
	if (a && b)
		return entry_line(e, 'M', e->prefix_b, e->lb, key, b, blen);
	if (b)
		return entry_line(e, 'A', e->prefix_b, e->lb, key, b, blen);
	return entry_line(e, 'D', e->prefix_a, e->la, key, a, alen);
}

static ssize_t place(struct differ *d, const struct pog_state *st,
		     uint64_t ino, char *buf, size_t size)
{
	ssize_t n = pog_path_locked(d->s, st, ino, buf, size);
	return n >= 0 && (size_t)n < size ? n : -1;
}

static int map_entries(struct differ *d, uint64_t ino,
		       const struct pog_inode *x, const struct pog_inode *y)
{
	struct entries *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->d = d;
	e->dir = ino;
	e->type = y->type;
	e->la = place(d, d->a, ino, e->prefix_a, sizeof(e->prefix_a));
	e->lb = place(d, d->b, ino, e->prefix_b, sizeof(e->prefix_b));
	size_t before = d->n;
	int err = pog_bt_diff(d->s, x->content, y->content, entry_diff, e);
	if (!err && d->n > before && e->lb >= 0)
		err = e->lb ? add_line(d, 'M', e->prefix_b, (size_t)e->lb)
			    : add_line(d, 'M', ".", 1);
	free(e);
	return err;
}

static int object_diff(void *ctx, uint64_t ino, const void *a, uint16_t alen,
		       const void *b, uint16_t blen)
{
	struct differ *d = ctx;
	struct pog_inode x, y;
	if ((a && pog_inode_copy(a, alen, &x)) || (b && pog_inode_copy(b, blen, &y)))
		return POG_ECORRUPT;
	if (!a)
		return object_line(d, 'A', d->b, ino);
	if (!b)
		return object_line(d, 'D', d->a, ino);
	int err = 0;
	if (record_changed(&x, &y))
		err = object_line(d, 'M', d->b, ino);
	if (err || x.content == y.content || x.type != y.type)
		return err;
	if (y.type == POG_MAP)
		return map_entries(d, ino, &x, &y);
	if (y.type == POG_LIST)
		return object_line(d, 'M', d->b, ino);
	return 0;
}

static int line_cmp(const void *p, const void *q)
{
	const struct line *x = p, *y = q;
	int c = strcmp(x->path, y->path);
	return c ? c : x->kind - y->kind;
}

/* The state of a diff side: a retained commit or the staged state. */
static int side(pog_store *s, uint64_t id, struct pog_state *st)
{
	if (id == POG_DIFF_STAGED) {
		*st = s->staged;
		return 0;
	}
	if (id == s->env->commit_id) {
		*st = s->env->committed;
		return 0;
	}
	return pog_commit_state(s, id, st);
}

int pog_diff(pog_store *s, uint64_t a, uint64_t b,
	     int (*fn)(void *ctx, char kind, const char *path), void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	struct pog_state sa, sb;
	struct differ d = {.s = s, .a = &sa, .b = &sb};
	err = side(s, a, &sa);
	if (!err)
		err = side(s, b, &sb);
	if (!err)
		err = pog_bt_diff(s, sa.obj_root, sb.obj_root, object_diff, &d);
	pog_unlock(s);
	if (!err && d.n > 1)
		qsort(d.v, d.n, sizeof(*d.v), line_cmp);
	/* One line per path: an A or a D says more than an M of the same
	 * place; an A and a D there (a name given to another object) is M. */
	for (size_t i = 0, j; i < d.n; i = j) {
		bool added = false, removed = false;
		for (j = i; j < d.n && strcmp(d.v[j].path, d.v[i].path) == 0; j++) {
			added |= d.v[j].kind == 'A';
			removed |= d.v[j].kind == 'D';
		}
		char kind = added == removed ? 'M' : added ? 'A' : 'D';
		if (!err)
			err = fn(ctx, kind, d.v[i].path);
		for (size_t k = i; k < j; k++)
			free(d.v[k].path);
	}
	free(d.v);
	return err;
}
