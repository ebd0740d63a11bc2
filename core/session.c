/* session.c - what several sessions on one pool need: the blocks their
 * views hold (for GC) and commits onto a newer commit (merge). */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/* ---- blocks the sessions hold ------------------------------------------- */

/* A session's own blocks: fresh ones, and the small-node blocks it fills
 * (carried over from its last commit, or holding slots it handed out).
 * Its base is a pinned commit: mark.c marks it. */
static void mark_staged(pog_store *p)
{
	for (uint64_t seg = 0; seg < p->ntx && seg < p->env->nsegs; seg++)
		for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++) {
			uint64_t bits = p->tx[seg].fresh[w];
			while (bits) {
				unsigned b = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				pog_mark_used(p, seg * POG_SEG_BLOCKS + w * 64u + b);
			}
		}
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		if (p->small[c].bno)
			pog_mark_used(p, p->small[c].bno);
	pog_map64_foreach(&p->small_slots, i)
		pog_mark_used(p, pog_node_bno(p->small_slots.keys[i]));
}

int pog_mark_sessions(pog_store *s)
{
	for (pog_store *p = s->env->sessions; p; p = p->next_session)
		mark_staged(p);
	return 0;
}

/* ---- commit onto a newer commit: first committer wins ------------------- */
/*
 * A session whose base is not the latest commit commits by replaying the
 * objects it changed (the records in which its staged object table
 * differs from its base's: pog_bt_diff, O(its changes)) onto the latest
 * commit. An object whose record in the latest commit is still the base's
 * takes this session's; an object both sides changed is a conflict,
 * unless it is a map both changed only by different keys (its entries
 * merge, three ways; the later times win); an object one side removed
 * from the table (GC) and the other changed is a conflict when this
 * session still links it. Pass 1 only looks; pass 2 writes.
 */

struct rec {
	const struct pog_inode *in; /* NULL: not in that table */
	uint16_t len;
};

static bool rec_same(struct rec a, struct rec b)
{
	if (!a.in || !b.in)
		return !a.in && !b.in;
	return a.len == b.len && memcmp(a.in, b.in, a.len) == 0;
}

static bool val_same(const void *a, uint16_t alen, const void *b,
		     uint16_t blen)
{
	if (!a || !b)
		return !a && !b;
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int rec_get(pog_store *s, uint64_t root, uint64_t ino, struct rec *r)
{
	const void *v;
	uint16_t len;
	int err = pog_bt_get(s, root, ino, &v, &len);
	r->in = NULL;
	r->len = 0;
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	if (len < POG_INODE_FIXED || len != pog_inode_len(v))
		return POG_ECORRUPT;
	r->in = v;
	r->len = len;
	return 0;
}

/* A field three ways: the side that changed it wins; both: conflict. */
#define PICK3(field)                                                     \
	do {                                                             \
		if (m->field == b->field)                                \
			out->field = l->field;                           \
		else if (l->field == b->field || l->field == m->field)   \
			out->field = m->field;                           \
		else                                                     \
			return -ESTALE;                                  \
	} while (0)

static void later(int64_t *sec, uint32_t *nsec, int64_t osec, uint32_t onsec)
{
	if (osec > *sec || (osec == *sec && onsec > *nsec)) {
		*sec = osec;
		*nsec = onsec;
	}
}

/* Fields of a map both sides changed: out starts as the latest's. */
static int merge_fields(const struct pog_inode *b, const struct pog_inode *l,
			const struct pog_inode *m, struct pog_inode *out)
{
	memcpy(out, l, pog_inode_len(l));
	if (b->type != POG_MAP || l->type != POG_MAP || m->type != POG_MAP)
		return -ESTALE;
	PICK3(mode);
	PICK3(uid);
	PICK3(gid);
	PICK3(flags);
	PICK3(size);
	PICK3(xattrs);
	PICK3(parent);
	PICK3(parent_key);
	/* entries and nlink: the replay counts what it adds and removes */
	later(&out->atime_sec, &out->atime_nsec, m->atime_sec, m->atime_nsec);
	later(&out->mtime_sec, &out->mtime_nsec, m->mtime_sec, m->mtime_nsec);
	later(&out->ctime_sec, &out->ctime_nsec, m->ctime_sec, m->ctime_nsec);
	return 0;
}

struct entry_merge {
	pog_store *s;
	uint64_t latest;        /* the latest's entries tree */
	struct pog_inode *out;  /* pass 2: the merged map (starts as latest) */
};

/* A map entry's child is a map or a list (counts in the map's nlink). */
static bool child_is_dir(pog_store *s, const struct pog_state *st,
			 const void *val, uint16_t len)
{
	uint64_t child;
	const struct pog_inode *in;
	if (len < sizeof(child))
		return false;
	memcpy(&child, val, sizeof(child));
	if (pog_inode_get(s, st, child, &in))
		return false;
	return in->type == POG_MAP || in->type == POG_LIST;
}

/* One key this session changed in a map: the latest must still hold the
 * base's value there (or this session's already). */
static int entry_merge_one(void *c, uint64_t key, const void *bv,
			   uint16_t blen, const void *mv, uint16_t mlen)
{
	struct entry_merge *em = c;
	const void *lv = NULL;
	uint16_t llen = 0;
	int err = pog_bt_get(em->s, em->latest, key, &lv, &llen);
	if (err == -ENOENT)
		lv = NULL;
	else if (err)
		return err;
	if (val_same(lv, llen, mv, mlen))
		return 0;
	if (!val_same(lv, llen, bv, blen))
		return -ESTALE;
	if (!em->out)
		return 0;
	pog_store *s = em->s;
	if (lv) { /* the base's entry, as lv equals bv */
		em->out->entries--;
		em->out->nlink -= child_is_dir(s, &s->base, bv, blen);
	}
	if (!mv)
		return pog_bt_del(s, &em->out->content, key);
	em->out->entries++;
	em->out->nlink += child_is_dir(s, &s->staged, mv, mlen);
	char copy[POG_VALUE_MAX];
	memcpy(copy, mv, mlen);
	return pog_bt_put(s, POG_TREE_MAP, &em->out->content, key, copy, mlen);
}

static int merge_map(pog_store *s, const struct pog_inode *b,
		     const struct pog_inode *l, const struct pog_inode *m,
		     struct pog_inode *out, bool apply)
{
	int err = merge_fields(b, l, m, out);
	if (err)
		return err;
	struct entry_merge em = {s, l->content, apply ? out : NULL};
	return pog_bt_diff(s, b->content, m->content, entry_merge_one, &em);
}

struct merge {
	pog_store *s;
	bool apply;
	uint64_t root;            /* pass 2: the new object table */
	struct pog_vec conflicts; /* pass 1: inos */
};

static int merge_one(void *c, uint64_t ino, const void *bv, uint16_t blen,
		     const void *mv, uint16_t mlen)
{
	struct merge *mg = c;
	pog_store *s = mg->s;
	struct rec b = {bv, blen}, m = {mv, mlen}, l;
	int err = rec_get(s, s->env->committed.obj_root, ino, &l);
	if (err)
		return err;
	struct pog_inode merged;
	const struct pog_inode *take = m.in;
	if (rec_same(l, m)) {
		return 0;
	} else if (rec_same(l, b)) {
		/* only this session changed it */
	} else if (b.in && !l.in) {
		/* GC took it: garbage here too unless this session links it */
		if (!m.in || m.in->nlink == 0)
			return 0;
		err = -ESTALE;
	} else if (m.in && l.in->nlink == 0 && m.in->nlink == 0) {
		take = l.in; /* both let it go: they agree */
	} else if (b.in && m.in) {
		err = merge_map(s, b.in, l.in, m.in, &merged, mg->apply);
		take = &merged;
	} else {
		err = -ESTALE;
	}
	if (err == -ESTALE && !mg->apply)
		return pog_vec_push(&mg->conflicts, ino);
	if (err || !mg->apply)
		return err;
	if (!take)
		return pog_bt_del(s, &mg->root, ino);
	struct pog_inode copy;
	memcpy(&copy, take, pog_inode_len(take));
	return pog_bt_put(s, POG_TREE_OBJECTS, &mg->root, ino, &copy,
			  (uint16_t)pog_inode_len(&copy));
}

static void conflicts_clear(pog_store *s)
{
	for (size_t i = 0; i < s->nconflicts; i++)
		free(s->conflicts[i]);
	free(s->conflicts);
	s->conflicts = NULL;
	s->nconflicts = 0;
}

/* Name the conflicting objects by their paths (this session's view, else
 * the latest commit's, else .pog/objects/INO). */
static void conflicts_note(pog_store *s, const struct pog_vec *inos)
{
	conflicts_clear(s);
	s->conflicts = calloc(inos->n ? inos->n : 1, sizeof(char *));
	if (!s->conflicts)
		return;
	for (size_t i = 0; i < inos->n; i++) {
		char path[4096];
		ssize_t n = pog_path_locked(s, &s->staged, inos->v[i], path,
					    sizeof(path));
		if (n < 0 || (size_t)n >= sizeof(path))
			n = pog_path_locked(s, &s->env->committed, inos->v[i],
					    path, sizeof(path));
		if (n < 0 || (size_t)n >= sizeof(path))
			snprintf(path, sizeof(path), ".pog/objects/%llu",
				 (unsigned long long)inos->v[i]);
		else
			path[n] = '\0';
		char *dup = strdup(path);
		if (dup)
			s->conflicts[s->nconflicts++] = dup;
	}
}

/* Let go of the fresh nodes of a tree (its committed subtrees are not
 * entered: only this transaction's nodes), after it was replaced. */
static void release_fresh_nodes(pog_store *s, uint64_t addr)
{
	if (!addr || !pog_node_fresh(s, addr))
		return;
	const struct pog_node_hdr *h = pog_node(s, addr);
	if (h->level > 0) {
		const struct pog_branch *br = (const void *)(h + 1);
		for (unsigned i = 0; i < h->count; i++)
			release_fresh_nodes(s, br[i].child);
	}
	pog_node_release(s, addr);
}

void pog_conflicts_clear(pog_store *s)
{
	conflicts_clear(s);
}

int pog_merge_locked(pog_store *s)
{
	struct pog_env *env = s->env;
	struct merge mg = {.s = s};
	int err = pog_bt_diff(s, s->base.obj_root, s->staged.obj_root,
			      merge_one, &mg);
	if (!err && mg.conflicts.n) {
		conflicts_note(s, &mg.conflicts);
		pog_set_error(s, "commit: %zu object%s changed by commit %llu "
			      "since this session's base %llu (first committer "
			      "wins): see .pog/conflicts; abort, or keep editing",
			      mg.conflicts.n, mg.conflicts.n == 1 ? "" : "s",
			      (unsigned long long)env->commit_id,
			      (unsigned long long)s->base_id);
		err = -ESTALE;
	}
	pog_vec_release(&mg.conflicts);
	if (err)
		return err;
	/* Pass 2. What the base held and this transaction replaced is left to
	 * GC (the latest may share it, or another commit freed it already);
	 * what the replay replaces in the latest is freed with the commit. */
	size_t base_freed = s->freed.n;
	mg.apply = true;
	mg.root = env->committed.obj_root;
	err = pog_bt_diff(s, s->base.obj_root, s->staged.obj_root, merge_one,
			  &mg);
	if (err) {
		/* The replay's copies are fresh: the abort or the next GC
		 * takes them; the staged state is untouched. */
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	release_fresh_nodes(s, s->staged.obj_root);
	if (base_freed) {
		memmove(s->freed.v, s->freed.v + base_freed,
			(s->freed.n - base_freed) * sizeof(uint64_t));
		s->freed.n -= base_freed;
	}
	struct pog_state st = env->committed;
	st.obj_root = mg.root;
	st.nobjects = env->committed.nobjects + s->staged.nobjects -
		      s->base.nobjects;
	st.logical_bytes = env->committed.logical_bytes +
			   s->staged.logical_bytes - s->base.logical_bytes;
	s->staged = st;
	conflicts_clear(s);
	pog_hash_reset(s);
	return 0;
}

int pog_conflicts(pog_store *s, int (*fn)(void *ctx, const char *path),
		  void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	int r = 0;
	for (size_t i = 0; i < s->nconflicts && !r; i++)
		r = fn(ctx, s->conflicts[i]);
	pog_unlock(s);
	return r;
}
