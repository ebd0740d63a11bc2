/* revert.c - stage the inverse of a retained commit (ZODB's undo). */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Commit C changed what its parent P held; reverting C stages P's version
 * of everything C changed, on top of the staged state S:
 * - a map: each key C added, removed or re-pointed gets P's entry back
 *   (other keys stay as S has them, so later additions to the map are
 *   kept), and its mode, owner and xattrs P's when C changed them;
 * - any other object: P's record (content, type, xattrs, place), or no
 *   record when C made the object.
 * Where S no longer has what C made (a later commit, or a staged change,
 * changed the same object, xattr set, map key or list), nothing is
 * staged: -ESTALE, and the conflicting paths are reported.
 * P's trees are shared again by the staged state: blocks that commits
 * after P let go may be named again, so the queue of blocks waiting for
 * older commits (pins.c) is dropped, leaving them to GC's mark.
 */

struct change {
	uint64_t ino;
	struct pog_inode *p, *c; /* copies; NULL: absent */
};

struct collect {
	struct change *v;
	size_t n, cap;
};

static struct pog_inode *record_copy(const void *val, uint16_t len)
{
	if (!val)
		return NULL;
	struct pog_inode *in = calloc(1, sizeof(*in));
	if (in)
		memcpy(in, val, len < sizeof(*in) ? len : sizeof(*in));
	return in;
}

static int collect_fn(void *ctx, uint64_t ino, const void *a, uint16_t alen,
		      const void *b, uint16_t blen)
{
	struct collect *c = ctx;
	if ((a && (alen < POG_INODE_FIXED || alen > sizeof(struct pog_inode))) ||
	    (b && (blen < POG_INODE_FIXED || blen > sizeof(struct pog_inode))))
		return POG_ECORRUPT;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct change *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	struct change *ch = &c->v[c->n];
	ch->ino = ino;
	ch->p = record_copy(a, alen);
	ch->c = record_copy(b, blen);
	if ((a && !ch->p) || (b && !ch->c)) {
		free(ch->p);
		free(ch->c);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

/* Records equal for a revert (access times do not count). */
static bool same_record(const struct pog_inode *x, const struct pog_inode *y)
{
	if (!x || !y)
		return x == y;
	struct pog_inode a = *x, b = *y;
	a.atime_sec = b.atime_sec = 0;
	a.atime_nsec = b.atime_nsec = 0;
	size_t la = pog_inode_len(&a), lb = pog_inode_len(&b);
	return la == lb && memcmp(&a, &b, la) == 0;
}

static bool both_maps(const struct change *ch, const struct pog_inode *s)
{
	return ch->p && ch->c && s && ch->p->type == POG_MAP &&
	       ch->c->type == POG_MAP && s->type == POG_MAP;
}

struct reverter {
	pog_store *s;
	int (*conflict)(void *ctx, const char *path);
	void *ctx;
	uint64_t nconflicts;
	char **paths;                 /* the conflicts found */
	/* applying a map's keys */
	struct pog_inode *dir;
	uint64_t dir_ino;
	const struct pog_state *p;    /* the state before the commit */
	bool apply;
	int err;
};

static void report(struct reverter *r, uint64_t ino, const char *name,
		   size_t nlen)
{
	char path[4096 + 258];
	ssize_t n = pog_path_locked(r->s, &r->s->staged, ino, path, 4096);
	if (n < 0 || n >= 4096)
		n = snprintf(path, 4096, ".pog/objects/%llu", (unsigned long long)ino);
	if (name) {
		size_t at = (size_t)n;
		if (at)
			path[at++] = '/';
		memcpy(path + at, name, nlen);
		n = (ssize_t)(at + nlen);
	}
	path[n] = '\0';
	char *copy = strdup(path);
	if (!copy)
		return;
	char **v = realloc(r->paths, (r->nconflicts + 1) * sizeof(*v));
	if (!v) {
		free(copy);
		return;
	}
	r->paths = v;
	r->paths[r->nconflicts++] = copy;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tell the conflicts, sorted, each path once; free them. */
static void tell_conflicts(struct reverter *r)
{
	if (!r->nconflicts)
		return;
	qsort(r->paths, r->nconflicts, sizeof(*r->paths), str_cmp);
	for (uint64_t i = 0; i < r->nconflicts; i++)
		if (r->conflict && (i == 0 || strcmp(r->paths[i], r->paths[i - 1])))
			(void)r->conflict(r->ctx, r->paths[i]);
	for (uint64_t i = 0; i < r->nconflicts; i++)
		free(r->paths[i]);
	free(r->paths);
}

/* A key of a map that C changed: check that S still has C's entry, or
 * (apply) put P's back. */
static int key_fn(void *ctx, uint64_t key, const void *p, uint16_t plen,
		  const void *c, uint16_t clen)
{
	struct reverter *r = ctx;
	pog_store *s = r->s;
	const void *sv = NULL;
	uint16_t slen = 0;
	int err = pog_bt_get(s, r->dir->content, key, &sv, &slen);
	if (err && err != -ENOENT)
		return err;
	if (!r->apply) {
		bool same = c ? (!err && slen == clen && memcmp(sv, c, clen) == 0)
			      : err == -ENOENT;
		if (!same) {
			char name[256];
			const void *v = c ? c : p;
			ssize_t n = pog_entry_name(POG_MAP, key, v, c ? clen : plen,
						   name, sizeof(name));
			report(r, r->dir_ino, n > 0 ? name : NULL, n > 0 ? (size_t)n : 0);
		}
		return 0;
	}
	if (p) {
		if (err == -ENOENT)
			r->dir->entries++;
		return pog_bt_put(s, POG_TREE_MAP, &r->dir->content, key, p, plen);
	}
	r->dir->entries--;
	return pog_bt_del(s, &r->dir->content, key);
}

/* What a restored object reaches in P but GC has collected from S since
 * (a removed directory's contents) comes back with it. */
struct restore {
	struct reverter *r;
	struct pog_vec stack;
};

static int restore_edge(void *ctx, uint64_t ino, int owned)
{
	struct restore *x = ctx;
	pog_store *s = x->r->s;
	const struct pog_inode *in;
	(void)owned;
	int err = pog_inode_get(s, &s->staged, ino, &in);
	if (err != -ENOENT)
		return err == 0 ? 0 : err;
	if (pog_inode_get(s, x->r->p, ino, &in))
		return 0; /* not in P either: nothing to bring back */
	err = pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root, ino, in,
			 (uint16_t)pog_inode_len(in));
	if (!err) {
		s->staged.nobjects++;
		err = pog_vec_push(&x->stack, ino);
	}
	return err;
}

static int restore_reached(struct reverter *r, const struct pog_inode *top)
{
	struct restore x = {.r = r};
	int err = pog_object_edges(r->s, top, restore_edge, &x);
	while (!err && x.stack.n) {
		const struct pog_inode *in;
		uint64_t ino = x.stack.v[--x.stack.n];
		err = pog_inode_get(r->s, r->p, ino, &in);
		if (!err)
			err = pog_object_edges(r->s, in, restore_edge, &x);
	}
	pog_vec_release(&x.stack);
	return err;
}

static int check_one(struct reverter *r, const struct change *ch)
{
	const struct pog_inode *sin = NULL;
	int err = pog_inode_get(r->s, &r->s->staged, ch->ino, &sin);
	if (err && err != -ENOENT)
		return err;
	if (err)
		sin = NULL;
	err = 0;
	struct pog_inode *scopy = sin ? record_copy(sin, (uint16_t)pog_inode_len(sin)) : NULL;
	if (sin && !scopy)
		return -ENOMEM;
	if (both_maps(ch, scopy)) {
		const struct pog_inode *p = ch->p, *c = ch->c;
		if ((p->mode != c->mode && scopy->mode != c->mode) ||
		    (p->uid != c->uid && scopy->uid != c->uid) ||
		    (p->gid != c->gid && scopy->gid != c->gid) ||
		    (p->xattrs != c->xattrs && scopy->xattrs != c->xattrs) ||
		    ((p->parent != c->parent || p->parent_key != c->parent_key) &&
		     (scopy->parent != c->parent || scopy->parent_key != c->parent_key)))
			report(r, ch->ino, NULL, 0);
		r->dir = scopy;
		r->dir_ino = ch->ino;
		r->apply = false;
		err = pog_bt_diff(r->s, p->content, c->content, key_fn, r);
	} else if (!same_record(scopy, ch->c) &&
		   !(!scopy && ch->c && ch->c->parent == 0)) {
		/* (C unlinked it and GC has collected it since: no conflict) */
		report(r, ch->ino, NULL, 0);
	}
	free(scopy);
	return err;
}

static int apply_one(struct reverter *r, const struct change *ch)
{
	pog_store *s = r->s;
	const struct pog_inode *sin = NULL;
	int err = pog_inode_get(s, &s->staged, ch->ino, &sin);
	if (err && err != -ENOENT)
		return err;
	bool present = err == 0;
	err = 0;
	if (present && both_maps(ch, sin)) {
		struct pog_inode copy;
		err = pog_inode_load(s, ch->ino, &copy);
		if (err)
			return err;
		r->dir = &copy;
		r->dir_ino = ch->ino;
		r->apply = true;
		err = pog_bt_diff(s, ch->p->content, ch->c->content, key_fn, r);
		if (err)
			return err;
		if (ch->p->mode != ch->c->mode)
			copy.mode = ch->p->mode;
		if (ch->p->uid != ch->c->uid)
			copy.uid = ch->p->uid;
		if (ch->p->gid != ch->c->gid)
			copy.gid = ch->p->gid;
		if (ch->p->xattrs != ch->c->xattrs)
			copy.xattrs = ch->p->xattrs;
		if (ch->p->parent != ch->c->parent ||
		    ch->p->parent_key != ch->c->parent_key) {
			copy.parent = ch->p->parent;
			copy.parent_key = ch->p->parent_key;
		}
		if (ch->p->nlink != ch->c->nlink)
			copy.nlink = ch->p->nlink;
		err = pog_inode_put(s, ch->ino, &copy);
		if (!err)
			pog_note_change(s, ch->ino, POG_CHG_MODIFIED);
		return err;
	}
	if (!ch->p) { /* made by C: it goes */
		if (present) {
			err = pog_bt_del(s, &s->staged.obj_root, ch->ino);
			if (!err)
				s->staged.nobjects--;
		}
		return err;
	}
	err = pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root, ch->ino, ch->p,
			 (uint16_t)pog_inode_len(ch->p));
	if (!err && !present)
		s->staged.nobjects++;
	if (!err)
		pog_note_change(s, ch->ino, present ? POG_CHG_MODIFIED : POG_CHG_ADDED);
	if (!err && !present)
		err = restore_reached(r, ch->p);
	return err;
}

int pog_revert(pog_store *s, uint64_t id,
	       int (*conflict)(void *ctx, const char *path), void *ctx)
{
	int err = pog_wrlock(s);
	if (err)
		return err;
	struct pog_state p, c;
	struct collect col = {0};
	struct reverter r = {.s = s, .conflict = conflict, .ctx = ctx, .p = &p};
	err = id > 1 ? pog_commit_state(s, id, &c) : -EINVAL;
	if (!err)
		err = pog_commit_state(s, id - 1, &p);
	if (err == -ENOENT)
		pog_set_error(s, "revert: commit %llu or the one before it is not "
			      "retained", (unsigned long long)id);
	else if (err == -EINVAL)
		pog_set_error(s, "revert: the first commit cannot be reverted");
	if (!err)
		err = pog_bt_diff(s, p.obj_root, c.obj_root, collect_fn, &col);
	for (size_t i = 0; !err && i < col.n; i++)
		err = check_one(&r, &col.v[i]);
	if (!err && r.nconflicts) {
		pog_set_error(s, "revert %llu: later changes touch the same "
			      "things (listed in .pog/conflicts)",
			      (unsigned long long)id);
		err = -ESTALE;
	}
	/* Each change copies a path through the object table and maybe a
	 * map's entry tree. */
	if (!err)
		err = pog_space_check(s, POG_SPACE_GROW,
				      POG_OP_NEED + col.n * 4 * POG_BT_MAX_DEPTH);
	if (!err) {
		/* Blocks P shares with the staged state again may wait in the
		 * queue of pins.c: GC's mark decides instead. */
		s->env->cpins.deferred.n = 0;
		s->env->cpins.deferred_head = 0;
	}
	bool started = !err;
	/* D lines first, while what goes still has its place. */
	for (size_t i = 0; !err && i < col.n; i++) {
		const struct pog_inode *in;
		if (!col.v[i].p &&
		    pog_inode_get(s, &s->staged, col.v[i].ino, &in) == 0)
			pog_note_removed(s, col.v[i].ino);
	}
	for (size_t i = 0; !err && i < col.n; i++)
		err = apply_one(&r, &col.v[i]);
	if (!err) {
		pog_hash_reset(s);
	} else if (started) {
		/* half-applied: the staged state no longer makes sense */
		pog_abort_locked(s);
		pog_set_error(s, "revert %llu: %s; the staged changes were "
			      "discarded", (unsigned long long)id, pog_strerror(err));
	}
	for (size_t i = 0; i < col.n; i++) {
		free(col.v[i].p);
		free(col.v[i].c);
	}
	free(col.v);
	pog_unlock(s);
	tell_conflicts(&r);
	return err;
}
