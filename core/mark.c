/* mark.c - the used-block bitmap, recomputed from every pinned commit. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Every commit that may be read (pins.c: the latest, retained ones,
 * sessions' bases) holds its blocks. Consecutive commits share almost all
 * of their trees (copy-on-write), so each tree is walked top-down and a
 * whole-block node that is already marked is not entered again: its
 * subtree, and the blocks its leaves name, were marked with it. A small
 * node shares its block with others, so small nodes are remembered one
 * by one. The mark costs the distinct blocks of the pinned commits, not
 * their number times the store.
 */

struct marker {
	pog_store *s;
	uint64_t *bits;              /* NULL: the used bitmap; else this one */
	bool index_pages;
	struct pog_map64 small_seen; /* small node addresses visited */
};

/* Set the block's used bit; *was says whether it was set already. */
static int mark_bno(struct marker *m, uint64_t bno, bool *was)
{
	pog_store *s = m->s;
	if (!pog_bno_valid(s, bno))
		return POG_ECORRUPT;
	if (m->bits) {
		*was = pog_bit(m->bits, bno);
		m->bits[bno / 64] |= 1ULL << (bno % 64);
		return 0;
	}
	struct pog_seg *g = &s->env->segs[bno / POG_SEG_BLOCKS];
	uint64_t i = bno % POG_SEG_BLOCKS;
	*was = pog_bit(g->used, i);
	if (!*was)
		pog_mark_used(s, bno);
	return 0;
}

static int mark_page(struct marker *m, uint64_t bno)
{
	bool was;
	return mark_bno(m, bno, &was);
}

typedef int (*entry_fn)(struct marker *m, const void *val, uint16_t vlen);

/* A leaf's entries (format.h: slot offsets after the header). */
static int leaf_entries(struct marker *m, uint64_t addr,
			const struct pog_node_hdr *h, entry_fn fn)
{
	const uint16_t *slots = (const uint16_t *)(h + 1);
	uint32_t size = pog_node_size(addr);
	for (unsigned i = 0; i < h->count; i++) {
		if (slots[i] + sizeof(struct pog_leaf_entry) > size)
			return POG_ECORRUPT;
		const struct pog_leaf_entry *e =
			(const void *)((const char *)h + slots[i]);
		if (slots[i] + sizeof(*e) + e->vlen > size)
			return POG_ECORRUPT;
		int r = fn(m, e + 1, e->vlen);
		if (r)
			return r;
	}
	return 0;
}

static int mark_tree_at(struct marker *m, uint64_t addr, int depth, entry_fn fn)
{
	pog_store *s = m->s;
	if (depth >= POG_BT_MAX_DEPTH || pog_node_check(s, addr, 0))
		return POG_ECORRUPT;
	bool was;
	int err = mark_bno(m, pog_node_bno(addr), &was);
	if (err)
		return err;
	if (addr & POG_NODE_SMALL) {
		if (pog_map64_find(&m->small_seen, addr))
			return 0;
		uint64_t *v = pog_map64_get(&m->small_seen, addr);
		if (!v)
			return -ENOMEM;
		*v = 1;
	} else if (was) {
		return 0; /* shared with a commit marked before */
	}
	const struct pog_node_hdr *h = pog_node(s, addr);
	if (h->level == 0)
		return fn ? leaf_entries(m, addr, h, fn) : 0;
	const struct pog_branch *b = (const void *)(h + 1);
	for (unsigned i = 0; i < h->count; i++) {
		err = mark_tree_at(m, b[i].child, depth + 1, fn);
		if (err)
			return err;
	}
	return 0;
}

static int mark_tree(struct marker *m, uint64_t root, entry_fn fn)
{
	return root ? mark_tree_at(m, root, 0, fn) : 0;
}

static int page_ref_entry(struct marker *m, const void *val, uint16_t vlen)
{
	struct pog_page_ref ref;
	if (vlen != sizeof(ref))
		return POG_ECORRUPT;
	memcpy(&ref, val, sizeof(ref));
	return mark_page(m, ref.bno);
}

/* The pages the page index names are in use too (with index_pages):
 * an indexed page is freed only after GC drops its entry, so the index
 * never names a free block. */
static int index_entry(struct marker *m, const void *val, uint16_t vlen)
{
	uint64_t bno;
	if (vlen != sizeof(bno))
		return POG_ECORRUPT;
	memcpy(&bno, val, sizeof(bno));
	return mark_page(m, bno);
}

/* An object record in a leaf not marked before: its content and xattrs
 * (trees shared with an earlier commit's record are skipped inside). */
static int object_entry(struct marker *m, const void *val, uint16_t vlen)
{
	struct pog_inode in;
	if (pog_inode_copy(val, vlen, &in) || vlen != pog_inode_len(&in))
		return POG_ECORRUPT;
	int err = 0;
	bool pages = in.type == POG_STRING || in.type == POG_SYMLINK;
	if (pages && (in.flags & POG_INODE_DIRECT))
		err = mark_page(m, in.content);
	else if (pages)
		err = mark_tree(m, in.content, page_ref_entry);
	else if (in.type == POG_MAP || in.type == POG_LIST)
		err = mark_tree(m, in.content, NULL);
	if (!err)
		err = mark_tree(m, in.xattrs, NULL);
	return err;
}

/* Only the last commit's page index is used to share pages (older ones
 * are never searched), so only its pages are held by the index: a page
 * that an older index names but no object holds goes. */
static int mark_commit(struct marker *m, uint64_t bno,
		       const struct pog_state *st, bool last)
{
	bool was;
	int err = mark_bno(m, bno, &was);
	if (!err)
		err = mark_tree(m, st->log_root, NULL);
	if (!err && last && m->index_pages)
		err = mark_tree(m, st->dedup_root, index_entry);
	else if (!err)
		err = mark_tree(m, st->dedup_root, NULL);
	if (!err)
		err = mark_tree(m, st->obj_root, object_entry);
	return err;
}

static int mark_listed(void *ctx, uint64_t bno)
{
	bool was;
	return mark_bno(ctx, bno, &was);
}

/* Mark every pinned commit (and the latest unless bits are given);
 * 0 or the first error. */
static int mark_pinned(struct marker *m)
{
	pog_store *s = m->s;
	int err = m->bits ? 0 : mark_commit(m, s->env->commit_bno, &s->env->committed, true);
	if (!err && !m->bits) { /* its record only: the open's fallback */
		uint64_t before = pog_commit_before(s);
		bool was;
		if (before)
			err = mark_bno(m, before, &was);
	}
	if (!err)
		err = pog_commit_listed(s, mark_listed, m);
	struct pog_vec ids = {0};
	if (!err)
		err = pog_pins_list(s, &ids);
	for (size_t i = 0; !err && i < ids.n; i++) {
		if (ids.v[i] == s->env->commit_id)
			continue;
		struct pog_state st;
		uint64_t bno = 0;
		pthread_mutex_lock(&s->env->cpins.lock);
		uint64_t *v = pog_map64_find(&s->env->cpins.recs, ids.v[i]);
		if (v)
			bno = *v;
		pthread_mutex_unlock(&s->env->cpins.lock);
		err = bno ? pog_commit_state(s, ids.v[i], &st) : POG_ECORRUPT;
		if (!err)
			err = mark_commit(m, bno, &st, false);
	}
	pog_vec_release(&ids);
	return err;
}

/* Recompute the in-use bitmap from the pinned commits. */
int pog_mark_committed(pog_store *s, bool index_pages)
{
	s->env->blocks_used = 0;
	s->env->small_garbage = 0;
	pog_small_forget(s);
	for (uint64_t i = 0; i < s->env->nsegs; i++) {
		struct pog_seg *g = &s->env->segs[i];
		memset(g->used, 0, sizeof(g->used));
		g->used[0] = 1;
		g->nused = 1;
		s->env->blocks_used++;
	}
	struct marker m = {.s = s, .index_pages = index_pages};
	int err = mark_pinned(&m);
	if (!err)
		err = pog_mark_sessions(s);
	pog_map64_release(&m.small_seen);
	if (!err)
		pog_pins_after_mark(s);
	return err;
}

int pog_mark_history(pog_store *s, uint64_t *bits)
{
	struct marker m = {.s = s, .bits = bits, .index_pages = false};
	int err = mark_pinned(&m);
	pog_map64_release(&m.small_seen);
	return err;
}
