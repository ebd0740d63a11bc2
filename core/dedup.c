/* dedup.c - content-addressed pages: identical pages are stored once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A fresh page ref to share or index, where it lies in its page table. */
struct share_item {
	uint32_t crc;
	uint64_t bno;
	void *val; /* the ref in its (fresh) page-table leaf */
};

struct share_batch {
	pog_store *s;
	struct share_item *v;
	size_t n, cap;
	bool failed; /* out of memory: share at once, unsorted */
};

static void share_one(pog_store *s, uint64_t bno, uint32_t crc, void *val)
{
	uint64_t shared = index_share(s, bno, crc);
	if (!shared)
		return;
	struct pog_page_ref ref;
	memcpy(&ref, val, sizeof(ref));
	pog_block_release(s, ref.bno);
	ref.bno = shared;
	memcpy(val, &ref, sizeof(ref));
}

static int share_ref(void *ctx, uint64_t key, void *val, uint16_t vlen)
{
	struct share_batch *q = ctx;
	(void)key;
	struct pog_page_ref ref;
	if (vlen != sizeof(ref))
		return 0;
	memcpy(&ref, val, sizeof(ref));
	if (!pog_bno_fresh(q->s, ref.bno))
		return 0;
	if (!q->failed && q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 4096;
		struct share_item *v = realloc(q->v, cap * sizeof(*v));
		if (v) {
			q->v = v;
			q->cap = cap;
		} else {
			q->failed = true;
		}
	}
	if (q->failed)
		share_one(q->s, ref.bno, ref.crc, val);
	else
		q->v[q->n++] = (struct share_item){ref.crc, ref.bno, val};
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	const struct share_item *x = a, *y = b;
	if (x->crc != y->crc)
		return x->crc < y->crc ? -1 : 1;
	return x->bno < y->bno ? -1 : x->bno > y->bno;
}

/*
 * The pages of page tables are looked up and indexed in CRC order, the
 * index's key order: the walk of the index goes one way, and each of its
 * leaves is copied once, not once per page that lands in it. The refs
 * stay where they are meanwhile (only the index and the bitmaps change).
 */
static void share_batch_run(struct share_batch *q)
{
	if (q->n)
		qsort(q->v, q->n, sizeof(q->v[0]), item_cmp);
	for (size_t i = 0; i < q->n; i++)
		share_one(q->s, q->v[i].bno, q->v[i].crc, q->v[i].val);
	free(q->v);
}

static void dedup_object(pog_store *s, uint64_t ino, struct share_batch *q)
{
	const struct pog_inode *in;
	if (pog_inode_get(s, &s->staged, ino, &in))
		return;
	if (in->type != POG_STRING && in->type != POG_SYMLINK)
		return;
	if (!(in->flags & POG_INODE_DIRECT)) {
		pog_bt_foreach_fresh(s, in->content, share_ref, q);
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

/*
 * Pages are read for their CRC with pread from the pool file's page
 * cache, a run of fresh blocks at a time, not through the mapping: a
 * page that staging wrote with pwrite is then never mapped, so reading
 * it costs no page fault, and the commit's writeback of it no
 * write-protecting of the mapping and TLB shootdown.
 */
#define SEAL_RUN 256u /* blocks per read: 1 MiB */

struct sealer {
	pog_store *s;
	char *buf;      /* SEAL_RUN blocks, or NULL: read through the mapping */
	uint64_t first; /* blocks first .. first + n - 1 are in buf */
	uint64_t n;
};

/* A fresh page without its CRC yet (pages written whole have theirs). */
static bool fresh_page(const pog_store *s, uint64_t bno)
{
	return pog_bno_valid(s, bno) && pog_bno_fresh(s, bno) &&
	       !pog_bno_sealed(s, bno);
}

/* Read the run of fresh blocks that starts at bno (within its segment). */
static bool sealer_fill(struct sealer *z, uint64_t bno)
{
	pog_store *s = z->s;
	uint64_t seg_end = (bno / POG_SEG_BLOCKS + 1) * POG_SEG_BLOCKS;
	uint64_t n = 1;
	while (n < SEAL_RUN && bno + n < seg_end && fresh_page(s, bno + n))
		n++;
	size_t len = (size_t)n * POG_BLOCK_SIZE;
	off_t at = (off_t)((char *)pog_block(s, bno) - (char *)s->env->pop);
	if (pread(s->env->lock_fd, z->buf, len, at) != (ssize_t)len) {
		z->n = 0;
		return false;
	}
	z->first = bno;
	z->n = n;
	return true;
}

static uint32_t sealer_crc(struct sealer *z, uint64_t bno)
{
	if (z->buf && (bno < z->first || bno >= z->first + z->n) &&
	    !sealer_fill(z, bno)) {
		free(z->buf); /* pread failed: the mapping from now on */
		z->buf = NULL;
	}
	if (!z->buf)
		return pog_crc32(pog_block(z->s, bno), POG_BLOCK_SIZE);
	return pog_crc32(z->buf + (bno - z->first) * POG_BLOCK_SIZE,
			 POG_BLOCK_SIZE);
}

static int seal_ref(void *ctx, uint64_t key, void *val, uint16_t vlen)
{
	struct sealer *z = ctx;
	(void)key;
	struct pog_page_ref ref;
	if (vlen != sizeof(ref))
		return 0;
	memcpy(&ref, val, sizeof(ref));
	if (!fresh_page(z->s, ref.bno))
		return 0;
	ref.crc = sealer_crc(z, ref.bno);
	memcpy(val, &ref, sizeof(ref));
	return 0;
}

static int seal_object(void *ctx, uint64_t ino, void *val, uint16_t vlen)
{
	struct sealer *z = ctx;
	(void)ino;
	struct pog_inode in;
	if (vlen < POG_INODE_FIXED)
		return 0;
	memcpy(&in, val, POG_INODE_FIXED);
	if ((in.type != POG_STRING && in.type != POG_SYMLINK) ||
	    (in.flags & POG_INODE_INLINE) || !in.content)
		return 0;
	if (!(in.flags & POG_INODE_DIRECT))
		return pog_bt_foreach_fresh(z->s, in.content, seal_ref, z);
	if (fresh_page(z->s, in.content)) {
		in.direct_crc = sealer_crc(z, in.content);
		memcpy(val, &in, POG_INODE_FIXED);
	}
	return 0;
}

/*
 * Every page a record refers to and that this transaction wrote is fresh,
 * and so is the record's leaf (copy on write) and the page table's leaf:
 * the fresh leaves of the object table reach them all. Pages written
 * whole got their CRC at staging (pages.c): when no page was written
 * otherwise since the last sealing, there is nothing to walk.
 */
int pog_pages_seal(pog_store *s)
{
	if (!s->unsealed)
		return 0;
	struct sealer z = { .s = s };
	if (s->env->lock_fd >= 0)
		z.buf = malloc((size_t)SEAL_RUN * POG_BLOCK_SIZE);
	int err = pog_bt_foreach_fresh(s, s->staged.obj_root, seal_object, &z);
	free(z.buf);
	if (!err)
		s->unsealed = false;
	return err;
}

void pog_dedup_staged(pog_store *s)
{
	struct share_batch q = { .s = s };
	pog_map64_foreach(&s->changes, i)
		if (s->changes.vals[i] & POG_CHG_PAGES)
			dedup_object(s, s->changes.keys[i], &q);
	share_batch_run(&q);
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
