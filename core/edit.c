/* edit.c - real tools keep the graph: saving by rename is an edit, links made before their targets become refs, empty typed scalars are not committed. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

/*
 * What this module keeps, in DRAM only (all of it is re-derivable):
 * per transaction, the plain symlinks that may become refs at commit, the
 * names files were renamed away from, and the new files whose type was
 * set on purpose; for the store's life, a reverse index of refs (target
 * -> refs), built by one walk of the object table the first time an edit
 * needs it and kept current by every place that points a ref. The index
 * only grows: an entry is checked against the ref's record when used, so
 * an abort, a retarget or the garbage collector never leaves it wrong.
 */

struct pending_link {
	uint64_t ino;
	char *root_path; /* resolve from the root; NULL: the text, from the
			    link's directory */
};

struct moved_from {
	uint64_t ino, dir;
	char *key;
	size_t len;
};

struct pog_edits {
	struct pending_link *links;
	size_t nlinks, links_cap;
	struct moved_from *moved;
	size_t nmoved, moved_cap;
	struct pog_map64 moved_at; /* ino -> index + 1 in moved */
	struct pog_map64 typed;    /* new files whose type was set */

	bool refs_built;
	struct pog_map64 ref_head; /* target -> node + 1 */
	struct pog_vec ref_ino;    /* node -> ref */
	struct pog_vec ref_next;   /* node -> next node + 1 */
};

static struct pog_edits *edits_of(pog_store *s)
{
	if (!s->edits)
		s->edits = calloc(1, sizeof(*s->edits));
	return s->edits;
}

static bool is_file_scalar(uint32_t type)
{
	return type == POG_STRING || pog_type_is_scalar(type);
}

/* ---- the reverse index of refs ------------------------------------------- */

static int ref_add(struct pog_edits *e, uint64_t ref, uint64_t target)
{
	uint64_t *head = pog_map64_get(&e->ref_head, target);
	if (!head || pog_vec_push(&e->ref_ino, ref) ||
	    pog_vec_push(&e->ref_next, *head))
		return -ENOMEM;
	*head = e->ref_ino.n; /* node + 1 */
	return 0;
}

void pog_edit_ref(pog_store *s, uint64_t ref, uint64_t target)
{
	struct pog_edits *e = s->edits;
	if (e && e->refs_built && ref_add(e, ref, target))
		e->refs_built = false; /* rebuilt when next needed */
}

/* One walk of the staged object table (once per store, when needed). */
static int refs_build(pog_store *s, struct pog_edits *e)
{
	if (e->refs_built)
		return 0;
	pog_map64_release(&e->ref_head);
	e->ref_ino.n = e->ref_next.n = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, s->staged.obj_root, 0);
	while (r > 0) {
		uint64_t ino;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &ino, &val, &vlen);
		const struct pog_inode *in = val;
		if (vlen >= POG_INODE_FIXED && in->type == POG_REF &&
		    ref_add(e, ino, in->content))
			return -ENOMEM;
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	e->refs_built = true;
	return 0;
}

/* Point every ref of `from` at `to`. */
static int refs_move(pog_store *s, struct pog_edits *e, uint64_t from,
		     uint64_t to)
{
	int err = refs_build(s, e);
	if (err)
		return err;
	uint64_t *head = pog_map64_find(&e->ref_head, from);
	for (uint64_t node = head ? *head : 0; node && !err;
	     node = e->ref_next.v[node - 1]) {
		uint64_t ref = e->ref_ino.v[node - 1];
		struct pog_inode in;
		if (pog_inode_load(s, ref, &in) || in.type != POG_REF ||
		    in.content != from)
			continue; /* gone, aborted or pointed elsewhere since */
		err = pog_reserve(s, 16);
		if (err)
			break;
		in.content = to;
		struct pog_time t = pog_now();
		in.ctime_sec = t.sec;
		in.ctime_nsec = t.nsec;
		err = pog_inode_put(s, ref, &in);
		if (!err) {
			pog_hash_changed(s, ref);
			pog_note_change(s, ref, POG_CHG_MODIFIED);
			err = ref_add(e, ref, to);
		}
	}
	return err;
}

/* ---- saving by rename --------------------------------------------------- */

void pog_edit_typed(pog_store *s, uint64_t ino)
{
	struct pog_edits *e = edits_of(s);
	uint64_t *v = e && pog_ino_new(s, ino) ? pog_map64_get(&e->typed, ino)
					       : NULL;
	if (v)
		*v = 1;
}

int pog_edit_moved(pog_store *s, uint64_t ino, uint64_t dir, const char *key,
		   size_t len)
{
	struct pog_edits *e = edits_of(s);
	if (!e)
		return -ENOMEM;
	uint64_t *at = pog_map64_get(&e->moved_at, ino);
	if (!at)
		return -ENOMEM;
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, key, len);
	if (!*at) {
		if (e->nmoved == e->moved_cap) {
			size_t cap = e->moved_cap ? 2 * e->moved_cap : 16;
			struct moved_from *m = realloc(e->moved, cap * sizeof(*m));
			if (!m) {
				free(copy);
				return -ENOMEM;
			}
			e->moved = m;
			e->moved_cap = cap;
		}
		e->moved[e->nmoved] = (struct moved_from){0};
		*at = ++e->nmoved;
	}
	struct moved_from *m = &e->moved[*at - 1];
	free(m->key);
	*m = (struct moved_from){ino, dir, copy, len};
	return 0;
}

/* The text of a small file (at most POG_INLINE_MAX bytes). */
static int small_text(pog_store *s, const struct pog_inode *in, char *buf,
		      size_t *len)
{
	if (in->size > POG_INLINE_MAX)
		return -EFBIG;
	ssize_t n = pog_data_read(s, in, 0, buf, in->size);
	if (n < 0)
		return (int)n;
	*len = (size_t)n;
	return 0;
}

/* Does the new file n qualify to take over the replaced x? Fills *bits
 * and the text when x is typed. */
static bool takes_over(pog_store *s, struct pog_edits *e,
		       const struct pog_inode *x, uint64_t nino,
		       const struct pog_inode *n, char *text, size_t *len,
		       uint64_t *bits)
{
	if (!is_file_scalar(x->type) || x->nlink || n->type != POG_STRING ||
	    n->nlink != 1 || !pog_ino_new(s, nino) ||
	    pog_map64_find(&e->typed, nino))
		return false;
	if (x->type == POG_STRING)
		return true;
	return small_text(s, n, text, len) == 0 && *len &&
	       pog_scalar_parse(x->type, text, *len, bits) == 0;
}

/* Is an xattr tree empty? */
static bool no_xattrs(pog_store *s, uint64_t root)
{
	struct pog_bt_iter it;
	return !root || pog_bt_seek(&it, s, root, 0) <= 0;
}

/* The D line of the replaced object becomes the new file's M line. */
static void edit_changes(pog_store *s, uint64_t xino, uint64_t nino)
{
	if (pog_ino_new(s, xino))
		return; /* made in this transaction: the new file stays A */
	char path[4096];
	ssize_t n = pog_path_locked(s, &s->staged, nino, path, sizeof(path) - 1);
	if (n < 0 || (size_t)n >= sizeof(path) - 1)
		return;
	path[n] = '\0';
	for (size_t i = s->nremoved; i-- > 0;) {
		if (strcmp(s->removed_paths[i], path) != 0)
			continue;
		free(s->removed_paths[i]);
		memmove(s->removed_paths + i, s->removed_paths + i + 1,
			(s->nremoved - i - 1) * sizeof(*s->removed_paths));
		s->nremoved--;
		uint64_t *v = pog_map64_get(&s->changes, nino);
		if (v)
			*v = (*v & ~(uint64_t)POG_CHG_ADDED) | POG_CHG_EDITED;
		return;
	}
}

/* n takes over x: type, xattrs (when it has none), refs, change line. */
static int take_over(pog_store *s, struct pog_edits *e, uint64_t xino,
		     struct pog_inode *x, uint64_t nino, struct pog_inode *n,
		     const char *text, size_t len, uint64_t bits)
{
	int err = 0;
	if (x->type != POG_STRING) {
		err = pog_data_release(s, n);
		if (err)
			return err;
		n->type = x->type;
		pog_scalar_set(n, bits, text, len);
	}
	bool move_xattrs = x->xattrs && no_xattrs(s, n->xattrs);
	if (move_xattrs) {
		/* A tree has one owner: x, unlinked, lets its go. */
		n->xattrs = x->xattrs;
		x->xattrs = 0;
		err = pog_inode_put(s, xino, x);
	}
	if (!err)
		err = pog_inode_put(s, nino, n);
	if (!err)
		err = refs_move(s, e, xino, nino);
	if (err)
		return err;
	pog_hash_changed(s, nino);
	edit_changes(s, xino, nino);
	return 0;
}

static int maybe_take_over(pog_store *s, uint64_t xino, uint64_t nino)
{
	struct pog_edits *e = edits_of(s);
	if (!e)
		return -ENOMEM;
	struct pog_inode x, n;
	char text[POG_INLINE_MAX];
	size_t len = 0;
	uint64_t bits = 0;
	if (xino == nino || pog_inode_load(s, xino, &x) ||
	    pog_inode_load(s, nino, &n) ||
	    !takes_over(s, e, &x, nino, &n, text, &len, &bits))
		return 0;
	return take_over(s, e, xino, &x, nino, &n, text, len, bits);
}

int pog_edit_replaced(pog_store *s, uint64_t replaced, uint64_t by)
{
	return maybe_take_over(s, replaced, by);
}

int pog_edit_unlinked(pog_store *s, uint64_t ino)
{
	struct pog_edits *e = s->edits;
	uint64_t *at = e ? pog_map64_find(&e->moved_at, ino) : NULL;
	if (!at)
		return 0;
	const struct moved_from *m = &e->moved[*at - 1];
	uint64_t child;
	/* The name the file had: who holds it now? */
	if (pog_child_of(s, m->dir, m->key, m->len, &child))
		return 0;
	return maybe_take_over(s, ino, child);
}

/* ---- symlinks made before their targets ----------------------------------- */

int pog_symlink_pending(pog_store *s, uint64_t ino, const char *root_path)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	int err = pog_wrlock(s);
	if (err)
		return err;
	struct pog_edits *e = edits_of(s);
	char *copy = root_path ? strdup(root_path) : NULL;
	err = !e || (root_path && !copy) ? -ENOMEM : 0;
	if (!err && e->nlinks == e->links_cap) {
		size_t cap = e->links_cap ? 2 * e->links_cap : 16;
		struct pending_link *l = realloc(e->links, cap * sizeof(*l));
		if (l) {
			e->links = l;
			e->links_cap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err)
		e->links[e->nlinks++] = (struct pending_link){ino, copy};
	else
		free(copy);
	pog_unlock(s);
	return err;
}

/* Where a pending link points now, if at an object: 0 and *target. */
static int link_target(pog_store *s, const struct pending_link *l,
		       const struct pog_inode *in, uint64_t *target)
{
	if (l->root_path)
		return pog_resolve_locked(s, &s->staged, POG_ROOT_INO,
					  l->root_path, target);
	char text[POG_SYMLINK_MAX + 1];
	ssize_t n = pog_data_read(s, in, 0, text, POG_SYMLINK_MAX);
	if (n < 0)
		return (int)n;
	text[n] = '\0';
	if (!in->parent || text[0] == '/' || text[0] == '\0')
		return -ENOENT;
	return pog_resolve_locked(s, &s->staged, in->parent, text, target);
}

/* A plain symlink becomes a ref to target, keeping its identity. */
static int link_to_ref(pog_store *s, uint64_t ino, struct pog_inode *in,
		       uint64_t target)
{
	int err = pog_data_release(s, in);
	if (err)
		return err;
	in->type = POG_REF;
	in->flags = 0;
	in->size = 0;
	in->content = target;
	struct pog_time t = pog_now();
	in->ctime_sec = t.sec;
	in->ctime_nsec = t.nsec;
	err = pog_inode_put(s, ino, in);
	if (err)
		return err;
	pog_hash_changed(s, ino);
	pog_note_change(s, ino, POG_CHG_MODIFIED);
	pog_edit_ref(s, ino, target);
	return 0;
}

static int links_resolve(pog_store *s, struct pog_edits *e)
{
	for (size_t i = 0; i < e->nlinks; i++) {
		struct pending_link *l = &e->links[i];
		struct pog_inode in;
		uint64_t target;
		if (pog_inode_load(s, l->ino, &in) || in.type != POG_SYMLINK ||
		    !in.nlink || link_target(s, l, &in, &target) ||
		    target == l->ino)
			continue; /* gone, already a ref, or still nothing there */
		int err = pog_reserve(s, 16);
		if (!err)
			err = link_to_ref(s, l->ino, &in, target);
		if (err)
			return err;
	}
	return 0;
}

/* ---- commit -------------------------------------------------------------- */

/* A typed scalar left empty (no value): the commit would keep it. */
static bool empty_scalar(const struct pog_inode *in)
{
	return pog_type_is_scalar(in->type) && !in->size && in->nlink;
}

static int empty_scalar_refuse(pog_store *s, uint64_t ino,
			       const struct pog_inode *in)
{
	char path[4096];
	ssize_t n = pog_path_locked(s, &s->staged, ino, path, sizeof(path) - 1);
	if (n < 0 || (size_t)n >= sizeof(path) - 1)
		return 0; /* no place the root reaches */
	path[n] = '\0';
	pog_set_error(s, "commit: %s: an empty %s has no value (write "
		      "one, or remove it)", path, pog_type_name(in->type));
	return -EINVAL;
}

/* Below this many changes, each record is looked up by itself. */
#define EMPTY_WALK_MIN 64u

struct empty_walk {
	pog_store *s;
	size_t seen; /* changed objects met in the fresh leaves */
};

static int empty_walk_entry(void *ctx, uint64_t ino, void *val, uint16_t vlen)
{
	struct empty_walk *w = ctx;
	const struct pog_inode *in = val;
	if (vlen < POG_INODE_FIXED || vlen != pog_inode_len(in) ||
	    !pog_map64_find(&w->s->changes, ino))
		return 0;
	w->seen++;
	return empty_scalar(in) ? empty_scalar_refuse(w->s, ino, in) : 0;
}

/*
 * The commit refuses a typed scalar left empty among the changed objects.
 * A changed object's record was written in this transaction, so it sits
 * in a fresh leaf of the object table: one walk over those leaves reads
 * the records in key order, instead of a lookup from the root for each
 * (most of a 10,000-file commit's time in the processor). When the walk
 * meets fewer changed objects than the change table holds (a record
 * left as committed), each is looked up as before.
 */
static int empty_scalars_check(pog_store *s)
{
	if (s->changes.n >= EMPTY_WALK_MIN) {
		struct empty_walk w = {.s = s};
		int err = pog_bt_foreach_fresh(s, s->staged.obj_root,
					       empty_walk_entry, &w);
		if (err || w.seen == s->changes.n)
			return err;
	}
	pog_map64_foreach(&s->changes, i) {
		uint64_t ino = s->changes.keys[i];
		const struct pog_inode *in;
		if (pog_inode_get(s, &s->staged, ino, &in) || !empty_scalar(in))
			continue;
		int err = empty_scalar_refuse(s, ino, in);
		if (err)
			return err;
	}
	return 0;
}

int pog_edit_commit_prepare(pog_store *s)
{
	int err = empty_scalars_check(s);
	if (!err && s->edits)
		err = links_resolve(s, s->edits);
	return err;
}

void pog_edit_end(pog_store *s)
{
	struct pog_edits *e = s->edits;
	if (!e)
		return;
	for (size_t i = 0; i < e->nlinks; i++)
		free(e->links[i].root_path);
	e->nlinks = 0;
	for (size_t i = 0; i < e->nmoved; i++)
		free(e->moved[i].key);
	e->nmoved = 0;
	pog_map64_release(&e->moved_at);
	pog_map64_release(&e->typed);
}

void pog_edit_free(pog_store *s)
{
	struct pog_edits *e = s->edits;
	if (!e)
		return;
	pog_edit_end(s);
	free(e->links);
	free(e->moved);
	pog_map64_release(&e->ref_head);
	pog_vec_release(&e->ref_ino);
	pog_vec_release(&e->ref_next);
	free(e);
	s->edits = NULL;
}
