/* store.c - the pool: locks, views, block and node allocation, errors. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

#include "store_int.h"

/* ---- locking --------------------------------------------------------------- */

int pog_rdlock(pog_store *s)
{
	pthread_rwlock_rdlock(&s->env->lock);
	if (s->env->fatal) {
		pthread_rwlock_unlock(&s->env->lock);
		return POG_EFATAL;
	}
	return 0;
}

int pog_wrlock(pog_store *s)
{
	pthread_rwlock_wrlock(&s->env->lock);
	if (s->env->fatal) {
		pthread_rwlock_unlock(&s->env->lock);
		return POG_EFATAL;
	}
	if (s->env->open_flags & POG_OPEN_READONLY) {
		pthread_rwlock_unlock(&s->env->lock);
		return -EROFS;
	}
	return 0;
}

void pog_unlock(pog_store *s)
{
	pthread_rwlock_unlock(&s->env->lock);
}

const struct pog_state *pog_view(pog_store *s, uint64_t *ino)
{
	if (*ino & POG_COMMITTED_BIT) {
		uint64_t slot = (*ino >> POG_VIEW_SHIFT) & (POG_VIEW_SLOTS - 1);
		*ino &= POG_INO_MASK;
		return slot ? pog_history_state(s, slot) : &s->env->committed;
	}
	return &s->staged;
}

static const struct pog_state empty_state;

const struct pog_state *pog_history_state(pog_store *s, uint64_t slot)
{
	struct pog_hview *v = slot < POG_VIEW_SLOTS ?
		__atomic_load_n(&s->env->hist.views[slot], __ATOMIC_ACQUIRE) : NULL;
	return v ? &v->st : &empty_state;
}

uint64_t pog_view_bits(pog_store *s, const struct pog_state *st)
{
	if (st == &s->staged)
		return 0;
	if (st == &s->env->committed)
		return POG_COMMITTED_BIT;
	uint64_t n = __atomic_load_n(&s->env->hist.nviews, __ATOMIC_ACQUIRE);
	for (uint64_t i = 1; i <= n; i++) {
		struct pog_hview *v = __atomic_load_n(&s->env->hist.views[i], __ATOMIC_ACQUIRE);
		if (v && &v->st == st)
			return v->bits;
	}
	return POG_COMMITTED_BIT;
}

void pog_history_squeeze(pog_store *s)
{
	s->env->hist.squeeze = true;
}

/* ---- blocks ----------------------------------------------------------------- */

bool pog_bno_valid(const pog_store *s, uint64_t bno)
{
	uint64_t seg = bno / POG_SEG_BLOCKS;
	return seg < s->env->nsegs && bno % POG_SEG_BLOCKS != 0;
}

bool pog_bno_fresh(const pog_store *s, uint64_t bno)
{
	uint64_t seg = bno / POG_SEG_BLOCKS;
	return seg < s->ntx && pog_bit(s->tx[seg].fresh, bno % POG_SEG_BLOCKS);
}

/* A fresh page whose CRC its ref holds already: written whole at staging
 * (pages.c), not touched since; the commit's sealing skips it. */
bool pog_bno_sealed(const pog_store *s, uint64_t bno)
{
	uint64_t seg = bno / POG_SEG_BLOCKS, i = bno % POG_SEG_BLOCKS;
	return seg < s->ntx && pog_bit(s->tx[seg].fresh, i) &&
	       pog_bit(s->tx[seg].sealed, i);
}

void pog_bno_set_sealed(pog_store *s, uint64_t bno, bool sealed)
{
	uint64_t seg = bno / POG_SEG_BLOCKS, i = bno % POG_SEG_BLOCKS;
	if (seg >= s->ntx)
		return;
	if (sealed)
		s->tx[seg].sealed[i / 64] |= 1ULL << (i % 64);
	else
		s->tx[seg].sealed[i / 64] &= ~(1ULL << (i % 64));
}

/* Room in the session's fresh bitmaps for segment seg. */
static int tx_grow(pog_store *s, uint64_t seg)
{
	if (seg < s->ntx)
		return 0;
	uint64_t n = s->env->nsegs > seg ? s->env->nsegs : seg + 1;
	struct pog_txseg *grown = realloc(s->tx, n * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	memset(grown + s->ntx, 0, (n - s->ntx) * sizeof(*grown));
	s->tx = grown;
	s->ntx = n;
	return 0;
}

void pog_seg_dram_init(pog_store *s, uint64_t i)
{
	struct pog_seg *g = &s->env->segs[i];
	memset(g, 0, sizeof(*g));
	g->base = (char *)s->env->pop + s->env->segtab[i].base;
	g->used[0] = 1; /* the header block */
	g->nused = 1;
}

/* Add a segment to the pool (crash-safe: a slot allocated but not yet
 * counted is picked up again next time). */
static int seg_add(pog_store *s)
{
	struct pog_super *sb = s->env->super;
	uint64_t n = sb->nsegments;
	if (n >= sb->max_segments)
		return -ENOSPC;
	struct pog_seg *grown = realloc(s->env->segs, (n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	s->env->segs = grown;
	struct pog_seg_slot *slot = &s->env->segtab[n];
	if (OID_IS_NULL(slot->oid) &&
	    pmemobj_alloc(s->env->pop, &slot->oid, POG_SEG_BYTES + POG_BLOCK_SIZE, 0,
			  NULL, NULL)) {
		/* libpmemobj has no room for another: the pool holds n, and
		 * says so from now on (free space and the reserve count on
		 * max_segments). */
		if (errno == ENOMEM) {
			sb->max_segments = n;
			pmemobj_persist(s->env->pop, &sb->max_segments,
					sizeof(sb->max_segments));
		}
		return -ENOSPC;
	}
	uint64_t base = (slot->oid.off + POG_BLOCK_SIZE - 1) &
			~(uint64_t)(POG_BLOCK_SIZE - 1);
	slot->base = base;
	pmemobj_persist(s->env->pop, &slot->base, sizeof(slot->base));
	struct pog_seg_header *hdr = (void *)((char *)s->env->pop + base);
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = POG_SEG_MAGIC;
	hdr->index = n;
	hdr->bitmap[0] = 1;
	pmemobj_persist(s->env->pop, hdr, sizeof(*hdr));
	sb->nsegments = n + 1;
	pmemobj_persist(s->env->pop, &sb->nsegments, sizeof(sb->nsegments));
	s->env->nsegs = n + 1;
	pog_seg_dram_init(s, n);
	s->env->blocks_used++; /* its header */
	return 0;
}

void pog_blocks_unmap(char *lo, char *hi)
{
	if (hi <= lo)
		return;
	/* MADV_DONTNEED on a shared file mapping marks the pages' dirt in
	 * the page cache and drops only the mappings, with one TLB flush for
	 * the whole range; failing, it leaves them mapped (still correct). */
	(void)madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
}

static int find_free(pog_store *s, uint64_t from_seg, uint64_t to_seg,
		     uint64_t avoid, uint64_t *bno)
{
	for (uint64_t i = from_seg; i < to_seg; i++) {
		struct pog_seg *g = &s->env->segs[i];
		if (g->nused >= POG_SEG_BLOCKS || i == avoid)
			continue;
		for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++) {
			if (g->used[w] == ~0ULL)
				continue;
			unsigned b = (unsigned)__builtin_ctzll(~g->used[w]);
			*bno = i * POG_SEG_BLOCKS + w * 64u + b;
			return 0;
		}
	}
	return -ENOSPC;
}

/* The segment a cursor last allocated in (UINT64_MAX: none yet). */
static uint64_t cursor_seg(uint64_t cursor)
{
	return cursor ? (cursor - 1) / POG_SEG_BLOCKS : UINT64_MAX;
}

/*
 * The first free block from the cursor on, outside segment avoid unless
 * the pool has no room elsewhere and cannot grow.
 */
static int block_find(pog_store *s, uint64_t cursor, uint64_t avoid,
		      uint64_t *bno)
{
	uint64_t start = cursor / POG_SEG_BLOCKS;
	if (start >= s->env->nsegs)
		start = 0;
	int err = find_free(s, start, s->env->nsegs, avoid, bno);
	if (err)
		err = find_free(s, 0, start, avoid, bno);
	if (err) {
		err = seg_add(s);
		if (!err)
			*bno = (s->env->nsegs - 1) * POG_SEG_BLOCKS + 1;
	}
	if (err == -ENOSPC && avoid < s->env->nsegs)
		err = find_free(s, avoid, avoid + 1, UINT64_MAX, bno);
	return err;
}

/* Make the free block bno fresh in this session. */
static int block_claim(pog_store *s, bool node, uint64_t *bno)
{
	uint64_t seg = *bno / POG_SEG_BLOCKS, i = *bno % POG_SEG_BLOCKS;
	int err = tx_grow(s, seg);
	if (err)
		return err;
	struct pog_seg *g = &s->env->segs[seg];
	struct pog_txseg *x = &s->tx[seg];
	uint64_t bit = 1ULL << (i % 64);
	g->used[i / 64] |= bit;
	x->fresh[i / 64] |= bit;
	x->sealed[i / 64] &= ~bit;
	if (node)
		x->node[i / 64] |= bit;
	else
		x->node[i / 64] &= ~bit;
	g->nused++;
	s->env->blocks_used++;
	if (s->fresh_count++ == 0) {
		s->fresh_min_seg = s->fresh_max_seg = seg;
	} else {
		if (seg < s->fresh_min_seg)
			s->fresh_min_seg = seg;
		if (seg > s->fresh_max_seg)
			s->fresh_max_seg = seg;
	}
	return 0;
}

/*
 * Pages written with pwrite (pages.c: page_run_fill) are never mapped;
 * they fill segments of their own, apart from the blocks written through
 * the mapping (tree nodes, partly written pages). Writeback of a run of
 * the pool file with mapped pages strewn in it write-protects each of
 * them and is much slower than of the same run without (ext4 on a
 * virtio disk: 1.3 GB/s against 0.7 for one mapped page in 200).
 */
int pog_block_alloc(pog_store *s, bool node, uint64_t *bno)
{
	int err = block_find(s, s->env->alloc_cursor,
			     cursor_seg(s->env->data_cursor), bno);
	if (!err)
		err = block_claim(s, node, bno);
	if (!err)
		s->env->alloc_cursor = *bno + 1;
	return err;
}

int pog_data_block_alloc(pog_store *s, uint64_t *bno)
{
	uint64_t cursor = s->env->data_cursor ? s->env->data_cursor
					      : s->env->alloc_cursor;
	int err = block_find(s, cursor, cursor_seg(s->env->alloc_cursor), bno);
	if (!err)
		err = block_claim(s, false, bno);
	if (!err)
		s->env->data_cursor = *bno + 1;
	return err;
}

int pog_reserve(pog_store *s, uint64_t blocks)
{
	for (;;) {
		uint64_t capacity = s->env->nsegs * (uint64_t)POG_SEG_BLOCKS;
		if (capacity - s->env->blocks_used >= blocks)
			return 0;
		int err = seg_add(s);
		if (err)
			return err;
	}
}

uint64_t pog_free_blocks(const pog_store *s)
{
	uint64_t total = s->env->super->max_segments * (uint64_t)(POG_SEG_BLOCKS - 1);
	uint64_t used = s->env->blocks_used - s->env->nsegs;
	return total > used ? total - used : 0;
}

uint64_t pog_reserve_blocks(const pog_store *s)
{
	uint64_t r = s->env->super->max_segments * (uint64_t)(POG_SEG_BLOCKS - 1) / 32;
	return r > POG_RESERVE_MIN ? r : POG_RESERVE_MIN;
}

/*
 * Growing operations stop at the reserve. Shrinking ones may use it down
 * to the floor: what they copy is given back by the commit (the replaced
 * nodes) and by GC (what they removed). Renames and other changes that
 * keep the size copy into the reserve too, but may add to the store (a
 * split in the new directory), so what the commit will leave free (free
 * now plus the committed blocks it frees) must stay above half the
 * reserve: after their commit, a shrinking operation can always run.
 */
int pog_space_check(pog_store *s, enum pog_space kind, uint64_t need)
{
	uint64_t floor = kind == POG_SPACE_GROW ? pog_reserve_blocks(s)
						: POG_SPACE_FLOOR;
	int err = 0;
	if (kind == POG_SPACE_KEEP &&
	    pog_free_blocks(s) + s->freed.n < pog_reserve_blocks(s) / 2 + need)
		err = -ENOSPC;
	if (!err)
		err = pog_reserve(s, floor + need);
	if (err == -ENOSPC)
		pog_history_squeeze(s);
	if (err == -ENOSPC && kind == POG_SPACE_GROW)
		pog_set_error(s, "pool is full (free space is at the reserve, "
			      "which only deleting, truncating, renaming, commit "
			      "and gc may use)");
	else if (err == -ENOSPC)
		pog_set_error(s, "pool is full: the staged changes hold the "
			      "reserve; commit them (gc then frees what they "
			      "removed) and go on");
	return err;
}

void pog_block_free_now(pog_store *s, uint64_t bno)
{
	struct pog_seg *g = &s->env->segs[bno / POG_SEG_BLOCKS];
	uint64_t i = bno % POG_SEG_BLOCKS, bit = 1ULL << (i % 64);
	if (!(g->used[i / 64] & bit))
		POG_BUG("freeing free block %llu", (unsigned long long)bno);
	g->used[i / 64] &= ~bit;
	g->nused--;
	s->env->blocks_used--;
}

void pog_block_release(pog_store *s, uint64_t bno)
{
	uint64_t i = bno % POG_SEG_BLOCKS, bit = 1ULL << (i % 64);
	if (pog_bno_fresh(s, bno)) {
		struct pog_txseg *x = &s->tx[bno / POG_SEG_BLOCKS];
		x->fresh[i / 64] &= ~bit;
		x->node[i / 64] &= ~bit;
		s->fresh_count--;
		pog_block_free_now(s, bno);
		return;
	}
	/* Still part of the last commit: free once the next one is durable. */
	/* Out of memory here only means the block stays used until GC. */
	(void)pog_vec_push(&s->freed, bno);
}

void pog_page_release(pog_store *s, uint64_t bno)
{
	if (pog_bno_fresh(s, bno))
		pog_block_release(s, bno);
}

void pog_mark_used(pog_store *s, uint64_t bno)
{
	struct pog_seg *g = &s->env->segs[bno / POG_SEG_BLOCKS];
	uint64_t i = bno % POG_SEG_BLOCKS, bit = 1ULL << (i % 64);
	if (g->used[i / 64] & bit)
		return;
	g->used[i / 64] |= bit;
	g->nused++;
	s->env->blocks_used++;
}

/* ---- tree nodes: whole blocks and small slots ------------------------------- */

static unsigned small_class(uint32_t size)
{
	unsigned c = 0;
	while ((POG_SMALL_MIN << c) < size)
		c++;
	return c;
}

bool pog_node_valid(const pog_store *s, uint64_t addr)
{
	if (!(addr & POG_NODE_SMALL))
		return pog_bno_valid(s, addr);
	unsigned c = pog_node_class(addr);
	return (addr & ~POG_NODE_SMALL) >> 59 == 0 && c < POG_SMALL_CLASSES &&
	       pog_node_slot(addr) < (16u >> c) &&
	       pog_bno_valid(s, pog_node_bno(addr));
}

/*
 * A slot is written only while no commit references it: slots come from a
 * block allocated in this transaction, or from the never-used tail of the
 * block the last transaction was filling (those slots are then "fresh"
 * one by one, in small_slots). A block whose slots all die is freed by the
 * next GC.
 */
bool pog_node_fresh(const pog_store *s, uint64_t addr)
{
	if (pog_bno_fresh(s, pog_node_bno(addr)))
		return true;
	return (addr & POG_NODE_SMALL) && s->small_slots.n &&
	       pog_map64_find(&s->small_slots, addr);
}

static int small_block(pog_store *s, unsigned c)
{
	struct pog_small_alloc *a = &s->small[c];
	uint64_t bno;
	int err = pog_block_alloc(s, false, &bno);
	if (err)
		return err;
	uint64_t *cls = pog_map64_get(&s->small_fresh, bno);
	if (!cls) {
		pog_block_release(s, bno);
		return -ENOMEM;
	}
	*cls = c + 1;
	a->bno = bno;
	a->next = a->start = 0;
	return 0;
}

static int small_alloc(pog_store *s, unsigned c, uint64_t *addr)
{
	struct pog_small_alloc *a = &s->small[c];
	if (a->free.n) {
		*addr = a->free.v[--a->free.n];
		return 0;
	}
	if (!a->bno || a->next >= (16u >> c)) {
		int err = small_block(s, c);
		if (err)
			return err;
	}
	uint64_t at = pog_small_addr(a->bno, c, a->next);
	if (!pog_bno_fresh(s, a->bno)) { /* carried over from a commit */
		uint64_t *v = pog_map64_get(&s->small_slots, at);
		if (!v)
			return -ENOMEM;
		*v = 1;
	}
	a->next++;
	*addr = at;
	return 0;
}

int pog_node_alloc(pog_store *s, uint32_t size, uint64_t *addr)
{
	if (size >= POG_BLOCK_SIZE)
		return pog_block_alloc(s, true, addr);
	return small_alloc(s, small_class(size), addr);
}

void pog_node_release(pog_store *s, uint64_t addr)
{
	if (!(addr & POG_NODE_SMALL)) {
		pog_block_release(s, addr);
		return;
	}
	if (!pog_node_fresh(s, addr)) {
		s->env->small_garbage += pog_node_size(addr);
		return;
	}
	/* Out of memory only means the slot stays unused until commit. */
	(void)pog_vec_push(&s->small[pog_node_class(addr)].free, addr);
}

static int addr_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int pog_small_slot_list(const pog_store *s, uint64_t **out, size_t *n)
{
	*n = 0;
	*out = NULL;
	if (!s->small_slots.n)
		return 0;
	uint64_t *v = malloc(s->small_slots.n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	pog_map64_foreach(&s->small_slots, i)
		v[(*n)++] = s->small_slots.keys[i];
	qsort(v, *n, sizeof(*v), addr_cmp);
	*out = v;
	return 0;
}

/* Carried-over slots that lie this close are flushed by one call (as
 * FLUSH_GAP for fresh ranges). */
#define SLOTS_GAP ((size_t)1 << 20)

void pog_small_flush(pog_store *s, const uint64_t *v, size_t n)
{
	char *lo = NULL, *hi = NULL;
	for (size_t i = 0; i < n; i++) {
		char *from = pog_node(s, v[i]);
		char *to = from + pog_node_size(v[i]);
		if (lo && from >= hi && (size_t)(from - hi) <= SLOTS_GAP) {
			hi = to;
			continue;
		}
		if (lo)
			pmemobj_flush(s->env->pop, lo, (size_t)(hi - lo));
		lo = from;
		hi = to;
	}
	if (lo)
		pmemobj_flush(s->env->pop, lo, (size_t)(hi - lo));
}

void pog_small_seal(pog_store *s)
{
	pog_map64_foreach(&s->small_fresh, i) {
		uint64_t bno = s->small_fresh.keys[i];
		uint32_t size = POG_SMALL_MIN << (s->small_fresh.vals[i] - 1);
		char *b = pog_block(s, bno);
		for (uint32_t off = 0; off < POG_BLOCK_SIZE; off += size) {
			struct pog_node_hdr *h = (void *)(b + off);
			if (h->magic == POG_NODE_MAGIC)
				h->crc = pog_node_crc(h, size);
		}
	}
	pog_map64_foreach(&s->small_slots, i) {
		uint64_t addr = s->small_slots.keys[i];
		struct pog_node_hdr *h = pog_node(s, addr);
		if (h->magic == POG_NODE_MAGIC)
			h->crc = pog_node_crc(h, pog_node_size(addr));
	}
}

/*
 * End of a transaction. Committed: the block being filled goes on being
 * filled from its first unused slot. Aborted: its slots handed out since
 * are unused again (a block allocated in the transaction is gone anyway).
 * Slots let go in the transaction are dead either way: after a commit
 * they are garbage for GC, after an abort they were fresh.
 */
void pog_small_end(pog_store *s, bool committed)
{
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++) {
		struct pog_small_alloc *a = &s->small[c];
		if (committed) {
			s->env->small_garbage += a->free.n * (POG_SMALL_MIN << c);
			a->start = a->next;
		} else if (a->bno && pog_bno_fresh(s, a->bno)) {
			a->bno = 0;
		} else {
			a->next = a->start;
		}
		a->free.n = 0;
	}
	pog_map64_release(&s->small_fresh);
	pog_map64_release(&s->small_slots);
}

/* Forget the blocks being filled (GC recomputes what is in use). */
void pog_small_forget(pog_store *s)
{
	pog_small_end(s, false);
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		s->small[c].bno = 0;
}

/* ---- errors ----------------------------------------------------------------- */

void pog_set_error(pog_store *s, const char *fmt, ...)
{
	pthread_mutex_lock(&s->err_lock);
	if (!fmt) {
		s->last_error[0] = '\0';
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->err_lock);
}

/* ---- pins ------------------------------------------------------------------- */

void pog_pin(pog_store *s, uint64_t ino)
{
	ino &= POG_INO_MASK;
	pthread_mutex_lock(&s->pin_lock);
	uint64_t *v = pog_map64_get(&s->pins, ino);
	if (v)
		(*v)++;
	pthread_mutex_unlock(&s->pin_lock);
}

void pog_unpin(pog_store *s, uint64_t ino, uint64_t n)
{
	ino &= POG_INO_MASK;
	pthread_mutex_lock(&s->pin_lock);
	uint64_t *v = pog_map64_find(&s->pins, ino);
	if (v) {
		if (*v > n)
			*v -= n;
		else
			pog_map64_del(&s->pins, ino);
	}
	pthread_mutex_unlock(&s->pin_lock);
}
