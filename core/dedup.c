/* dedup.c - content-addressed pages: identical pages are stored once. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

#define SEQ_SPAN 0x10000u

/*
 * Find a page with the same bytes as bno among the indexed pages with its
 * CRC: returns that page's bno, or 0 after adding bno to the index (best
 * effort: a full pool only means this page is not shared).
 */
static uint64_t index_share(pog_store *s, uint64_t bno, uint32_t crc)
{
	uint64_t base = (uint64_t)crc << 16, next = base;
	const void *page = pog_block(s, bno);
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, s->staged.dedup_root, base);
	while (r > 0) {
		uint64_t key, cand;
		const void *val;
		pog_bt_cur(&it, &key, &val, NULL);
		if (key >= base + SEQ_SPAN)
			break;
		memcpy(&cand, val, sizeof(cand));
		if (cand == bno)
			return 0;
		/* Indexed pages are in use until GC drops their entry; a
		 * fresh one was indexed earlier in this same commit. */
		if (pog_bno_valid(s, cand) &&
		    memcmp(pog_block(s, cand), page, POG_BLOCK_SIZE) == 0)
			return cand;
		next = key + 1;
		r = pog_bt_next(&it);
	}
	/* The index grows into free space, never into half the reserve
	 * (what a commit must leave for deleting: store_int.h). */
	if (r >= 0 && next < base + SEQ_SPAN &&
	    pog_reserve(s, pog_reserve_blocks(s) / 2 + 2 * POG_BT_MAX_DEPTH + 1) == 0)
		(void)pog_bt_put(s, POG_TREE_PAGEHASH, &s->staged.dedup_root, next,
				 &bno, sizeof(bno));
	return 0;
}

static int share_ref(void *ctx, uint64_t key, void *val, uint16_t vlen)
{
	pog_store *s = ctx;
	(void)key;
	struct pog_page_ref ref;
	if (vlen != sizeof(ref))
		return 0;
	memcpy(&ref, val, sizeof(ref));
	if (!pog_bno_fresh(s, ref.bno))
		return 0;
	uint64_t shared = index_share(s, ref.bno, ref.crc);
	if (shared) {
		pog_block_release(s, ref.bno);
		ref.bno = shared;
		memcpy(val, &ref, sizeof(ref));
	}
	return 0;
}

static void dedup_object(pog_store *s, uint64_t ino)
{
	const struct pog_inode *in;
	if (pog_inode_get(s, &s->staged, ino, &in))
		return;
	if (in->type != POG_STRING && in->type != POG_SYMLINK)
		return;
	if (!(in->flags & POG_INODE_DIRECT)) {
		pog_bt_foreach_fresh(s, in->content, share_ref, s);
		return;
	}
	if (!pog_bno_fresh(s, in->content))
		return;
	uint64_t shared = index_share(s, in->content, in->direct_crc);
	if (!shared)
		return;
	/* Re-read: the index insert may have moved nothing, but be safe. */
	if (pog_inode_get(s, &s->staged, ino, &in))
		return;
	struct pog_inode copy;
	memcpy(&copy, in, pog_inode_len(in));
	uint64_t old = copy.content;
	copy.content = shared;
	/* The record's leaf is fresh (the object changed): no allocation. */
	if (pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root, ino, &copy,
		       (uint16_t)pog_inode_len(&copy)) == 0)
		pog_block_release(s, old);
}

/* ---- sealing: a page's CRC is computed once, when it is committed ------- */

static bool fresh_page(const pog_store *s, uint64_t bno)
{
	return pog_bno_valid(s, bno) && pog_bno_fresh(s, bno);
}

static int seal_ref(void *ctx, uint64_t key, void *val, uint16_t vlen)
{
	pog_store *s = ctx;
	(void)key;
	struct pog_page_ref ref;
	if (vlen != sizeof(ref))
		return 0;
	memcpy(&ref, val, sizeof(ref));
	if (!fresh_page(s, ref.bno))
		return 0;
	ref.crc = pog_crc32(pog_block(s, ref.bno), POG_BLOCK_SIZE);
	memcpy(val, &ref, sizeof(ref));
	return 0;
}

static int seal_object(void *ctx, uint64_t ino, void *val, uint16_t vlen)
{
	pog_store *s = ctx;
	(void)ino;
	struct pog_inode in;
	if (vlen < POG_INODE_FIXED)
		return 0;
	memcpy(&in, val, POG_INODE_FIXED);
	if ((in.type != POG_STRING && in.type != POG_SYMLINK) ||
	    (in.flags & POG_INODE_INLINE) || !in.content)
		return 0;
	if (!(in.flags & POG_INODE_DIRECT))
		return pog_bt_foreach_fresh(s, in.content, seal_ref, s);
	if (fresh_page(s, in.content)) {
		in.direct_crc = pog_crc32(pog_block(s, in.content), POG_BLOCK_SIZE);
		memcpy(val, &in, POG_INODE_FIXED);
	}
	return 0;
}

/*
 * Every page a record refers to and that this transaction wrote is fresh,
 * and so is the record's leaf (copy on write) and the page table's leaf:
 * the fresh leaves of the object table reach them all.
 */
int pog_pages_seal(pog_store *s)
{
	return pog_bt_foreach_fresh(s, s->staged.obj_root, seal_object, s);
}

void pog_dedup_staged(pog_store *s)
{
	pog_map64_foreach(&s->changes, i)
		if (s->changes.vals[i] & POG_CHG_PAGES)
			dedup_object(s, s->changes.keys[i]);
}

/* Delete the dead entries in place, as many as the free space allows
 * with a commit after them (a full pool cannot rebuild the index). */
static uint64_t prune_in_place(pog_store *s, const struct pog_vec *dead)
{
	uint64_t done = 0;
	for (size_t i = 0; i < dead->n; i++) {
		if (pog_reserve(s, POG_COMMIT_NEED + POG_GC_STEP_NEED) ||
		    pog_bt_del(s, &s->staged.dedup_root, dead->v[i]))
			break;
		done++;
	}
	return done;
}

/*
 * GC: drop index entries whose page no object holds (the used bitmap
 * comes from a mark of the objects alone). When there is room, the index
 * is rebuilt from the entries that stay, so it does not keep half-empty
 * nodes; in a full pool the dead entries are deleted in place, as many as
 * fit before a commit. Returns how many entries went (0: the index is
 * unchanged).
 */
uint64_t pog_dedup_prune(pog_store *s)
{
	struct pog_vec keep = {0}, dead = {0};
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, s->staged.dedup_root, 0);
	while (r > 0) {
		uint64_t key, bno;
		const void *val;
		pog_bt_cur(&it, &key, &val, NULL);
		memcpy(&bno, val, sizeof(bno));
		if (pog_bno_valid(s, bno) &&
		    pog_bit(s->env->segs[bno / POG_SEG_BLOCKS].used, bno % POG_SEG_BLOCKS)) {
			if (pog_vec_push(&keep, key) || pog_vec_push(&keep, bno))
				r = -ENOMEM;
		} else if (pog_vec_push(&dead, key)) {
			r = -ENOMEM;
		}
		if (r > 0)
			r = pog_bt_next(&it);
	}
	uint64_t pruned = 0;
	if (r < 0 || !dead.n)
		goto out;
	if (pog_reserve(s, POG_SPACE_FLOOR + keep.n / 100 + 64)) {
		pruned = prune_in_place(s, &dead);
		goto out;
	}
	uint64_t root = 0;
	int err = 0;
	for (size_t i = 0; !err && i + 1 < keep.n; i += 2)
		err = pog_bt_put(s, POG_TREE_PAGEHASH, &root, keep.v[i],
				 &keep.v[i + 1], sizeof(uint64_t));
	if (err) {
		pog_bt_release(s, root); /* fresh: freed at once */
		goto out;
	}
	pog_bt_release(s, s->staged.dedup_root);
	s->staged.dedup_root = root;
	pruned = dead.n;
out:
	pog_vec_release(&keep);
	pog_vec_release(&dead);
	return pruned;
}
