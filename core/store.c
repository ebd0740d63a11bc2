/* store.c - pool lifecycle, block allocation, commit and abort. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void seg_dram_init(pog_store *s, uint64_t i)
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
	seg_dram_init(s, n);
	s->env->blocks_used++; /* its header */
	return 0;
}

static int find_free(pog_store *s, uint64_t from_seg, uint64_t to_seg,
		     uint64_t *bno)
{
	for (uint64_t i = from_seg; i < to_seg; i++) {
		struct pog_seg *g = &s->env->segs[i];
		if (g->nused >= POG_SEG_BLOCKS)
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

int pog_block_alloc(pog_store *s, bool node, uint64_t *bno)
{
	uint64_t start = s->env->alloc_cursor / POG_SEG_BLOCKS;
	if (start >= s->env->nsegs)
		start = 0;
	int err = find_free(s, start, s->env->nsegs, bno);
	if (err)
		err = find_free(s, 0, start, bno);
	if (err) {
		err = seg_add(s);
		if (err)
			return err;
		*bno = (s->env->nsegs - 1) * POG_SEG_BLOCKS + 1;
	}
	uint64_t seg = *bno / POG_SEG_BLOCKS, i = *bno % POG_SEG_BLOCKS;
	err = tx_grow(s, seg);
	if (err)
		return err;
	struct pog_seg *g = &s->env->segs[seg];
	struct pog_txseg *x = &s->tx[seg];
	uint64_t bit = 1ULL << (i % 64);
	g->used[i / 64] |= bit;
	x->fresh[i / 64] |= bit;
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
	s->env->alloc_cursor = *bno + 1;
	return 0;
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

/* CRC the small nodes of this transaction; flush the carried-over slots
 * (fresh blocks are flushed with their segment's range). */
static void small_seal(pog_store *s)
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
		pmemobj_flush(s->env->pop, h, pog_node_size(addr));
	}
}

/*
 * End of a transaction. Committed: the block being filled goes on being
 * filled from its first unused slot. Aborted: its slots handed out since
 * are unused again (a block allocated in the transaction is gone anyway).
 * Slots let go in the transaction are dead either way: after a commit
 * they are garbage for GC, after an abort they were fresh.
 */
static void small_end(pog_store *s, bool committed)
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
	small_end(s, false);
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		s->small[c].bno = 0;
}

/* ---- change tracking ------------------------------------------------------ */

/* Made in this transaction (identities only grow, never come back). */
bool pog_ino_new(const pog_store *s, uint64_t ino)
{
	return ino >= s->base.next_ino;
}

void pog_note_change(pog_store *s, uint64_t ino, unsigned kind)
{
	/* A new object is listed by its own A line or its directory's. */
	if (kind == POG_CHG_MODIFIED && pog_ino_new(s, ino) &&
	    !pog_map64_find(&s->changes, ino))
		return;
	uint64_t *v = pog_map64_get(&s->changes, ino);
	if (v)
		*v |= kind;
}

void pog_note_added(pog_store *s, uint64_t ino, uint64_t dir)
{
	if (!(s->importing && pog_ino_new(s, dir)))
		pog_note_change(s, ino, POG_CHG_ADDED);
}

void pog_note_removed(pog_store *s, uint64_t ino)
{
	uint64_t *v = pog_map64_find(&s->changes, ino);
	bool edited = v && (*v & POG_CHG_EDITED); /* stands for a committed one */
	if ((v && (*v & POG_CHG_ADDED)) || (pog_ino_new(s, ino) && !edited)) {
		pog_map64_del(&s->changes, ino);
		return;
	}
	pog_map64_del(&s->changes, ino);
	char path[4096];
	ssize_t n = pog_path_locked(s, &s->staged, ino, path, sizeof(path));
	if (n < 0 || (size_t)n >= sizeof(path))
		snprintf(path, sizeof(path), ".pog/objects/%llu",
			 (unsigned long long)ino);
	else
		path[n] = '\0';
	if (s->nremoved == s->removed_cap) {
		size_t cap = s->removed_cap ? s->removed_cap * 2 : 16;
		char **p = realloc(s->removed_paths, cap * sizeof(*p));
		if (!p)
			return;
		s->removed_paths = p;
		s->removed_cap = cap;
	}
	char *dup = strdup(path);
	if (dup)
		s->removed_paths[s->nremoved++] = dup;
}

static void changes_clear(pog_store *s)
{
	pog_map64_release(&s->changes);
	pog_conflicts_clear(s);
	pog_lists_clear(s);
	for (size_t i = 0; i < s->nremoved; i++)
		free(s->removed_paths[i]);
	s->nremoved = 0;
}

uint64_t pog_staged_count(pog_store *s)
{
	pthread_rwlock_rdlock(&s->env->lock);
	uint64_t n = s->changes.n + s->nremoved;
	pthread_rwlock_unlock(&s->env->lock);
	return n;
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

/* ---- open, create, close ---------------------------------------------------- */

static pog_store *session_new(struct pog_env *env)
{
	pog_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->env = env;
	pthread_mutex_init(&s->pin_lock, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	pthread_mutex_init(&s->hash_lock, NULL);
	s->session_id = ++env->session_seq;
	s->next_session = env->sessions;
	env->sessions = s;
	env->nsessions++;
	return s;
}

/* The session begins at the latest commit, which it pins (its blocks
 * stay while the session reads them: pins.c). */
static void session_begin(pog_store *s)
{
	uint64_t old = s->base_pinned ? s->base_id : 0;
	s->base = s->env->committed;
	s->base_id = s->env->commit_id;
	s->staged = s->base;
	s->base_pinned = pog_commit_pin(s, s->base_id) == 0;
	if (old)
		pog_commit_unpin(s, old);
}

/* The session no longer reads its base. */
static void session_unpin(pog_store *s)
{
	if (s->base_pinned)
		pog_commit_unpin(s, s->base_id);
	s->base_pinned = false;
}

static void session_free(pog_store *s)
{
	struct pog_env *env = s->env;
	for (pog_store **p = &env->sessions; *p; p = &(*p)->next_session) {
		if (*p == s) {
			*p = s->next_session;
			env->nsessions--;
			break;
		}
	}
	session_unpin(s);
	changes_clear(s);
	free(s->conflicts);
	free(s->session_name);
	pog_moved_clear(&s->moved);
	free(s->removed_paths);
	pog_vec_release(&s->freed);
	pog_vec_release(&s->renumbered);
	pog_small_forget(s);
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		pog_vec_release(&s->small[c].free);
	free(s->tx);
	pog_map64_release(&s->pins);
	pog_edit_free(s);
	pog_hash_reset(s);
	pthread_mutex_destroy(&s->hash_lock);
	pthread_mutex_destroy(&s->pin_lock);
	pthread_mutex_destroy(&s->err_lock);
	free(s);
}

/* A new env (no pool yet) and its first session. */
static pog_store *store_new(void)
{
	struct pog_env *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->lock_fd = -1;
	env->list_counts = true; /* load_commit says for an existing pool */
	pthread_rwlock_init(&env->lock, NULL);
	pog_store *s = session_new(env);
	if (!s) {
		pthread_rwlock_destroy(&env->lock);
		free(env);
		return NULL;
	}
	pog_pins_init(s);
	if (pog_history_init(s)) {
		pog_history_free(s);
		pog_pins_free(s);
		session_free(s);
		pthread_rwlock_destroy(&env->lock);
		free(env);
		return NULL;
	}
	return s;
}

/* Free the last session and its env (closing the pool). */
static void store_free(pog_store *s)
{
	struct pog_env *env = s->env;
	session_unpin(s);
	pog_history_free(s);
	pog_pins_free(s);
	session_free(s);
	if (env->pop)
		pmemobj_close(env->pop);
	if (env->lock_fd >= 0)
		close(env->lock_fd);
	free(env->segs);
	pthread_rwlock_destroy(&env->lock);
	free(env);
}

pog_store *pog_session_new_locked(struct pog_env *env)
{
	pog_store *s = session_new(env);
	if (s)
		session_begin(s);
	return s;
}

void pog_session_free_locked(pog_store *s)
{
	struct pog_env *env = s->env;
	pog_abort_locked(s);
	session_free(s);
	if (env->sessions)
		pog_deferred_release(env->sessions);
}

void pog_sessions_catch_up(pog_store *s)
{
	for (pog_store *p = s->env->sessions; p; p = p->next_session)
		if (p->base_id != s->env->commit_id && !p->changes.n &&
		    !p->nremoved)
			pog_abort_locked(p);
}

int pog_session_open(pog_store *any, pog_store **out)
{
	struct pog_env *env = any->env;
	pthread_rwlock_wrlock(&env->lock);
	int err = env->fatal ? POG_EFATAL : 0;
	pog_store *s = err ? NULL : session_new(env);
	if (s)
		session_begin(s);
	else if (!err)
		err = -ENOMEM;
	pthread_rwlock_unlock(&env->lock);
	if (!err)
		*out = s;
	return err;
}

unsigned pog_session_count(pog_store *s)
{
	pthread_rwlock_rdlock(&s->env->lock);
	unsigned n = s->env->nsessions;
	pthread_rwlock_unlock(&s->env->lock);
	return n;
}

/* Lock the pool file with an open-file-description lock, which neither
 * libpmemobj's own flock nor other descriptors' closes disturb. Read-only
 * opens lock exclusively too: libpmemobj maps the pool read-write and
 * flocks it whatever we ask. Only byte 0 is the holder's lock (an older
 * pogfs locks the whole file, which conflicts with it all the same); the
 * daemon marks the mount it serves on byte 1 (fs/main.c). */
static int lock_pool(pog_store *s, const char *path)
{
	s->env->lock_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->env->lock_fd < 0)
		return -errno;
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 1,
	};
	if (fcntl(s->env->lock_fd, F_OFD_SETLK, &fl) < 0)
		return (errno == EAGAIN || errno == EACCES) ? POG_ELOCKED
							    : -errno;
	return 0;
}

static int check_signature(int fd)
{
	char sig[8];
	ssize_t n = pread(fd, sig, sizeof(sig), 0);
	if (n < 0)
		return -errno;
	if (n != sizeof(sig) || memcmp(sig, "PMEMOBJ", 8) != 0)
		return POG_ENOTPOOL;
	return 0;
}

static int load_commit(pog_store *s)
{
	uint64_t bno = s->env->super->commit_block;
	if (!pog_bno_valid(s, bno))
		return POG_EDAMAGED;
	struct pog_commit_rec rec;
	memcpy(&rec, pog_block(s, bno), sizeof(rec));
	uint32_t crc = rec.crc;
	rec.crc = 0;
	if (rec.magic != POG_COMMIT_MAGIC || pog_crc32(&rec, sizeof(rec)) != crc)
		return POG_EDAMAGED;
	s->env->committed = (struct pog_state){
		.obj_root = rec.obj_root,
		.log_root = rec.log_root,
		.next_ino = rec.next_ino,
		.nobjects = rec.nobjects,
		.dedup_root = rec.dedup_root,
		.logical_bytes = rec.logical_bytes,
	};
	s->env->next_ino = rec.next_ino;
	s->env->commit_id = rec.id;
	s->env->commit_bno = bno;
	s->env->list_counts = rec.lists == POG_LISTS_COUNTED;
	s->env->commit_time = (struct pog_time){rec.time_sec, rec.time_nsec};
	int err = pog_pins_note_commit(s, rec.id, bno);
	if (!err)
		session_begin(s);
	return err ? err : pog_history_load(s, &rec);
}

/* A segment slot names 8 MiB inside the pool file, 4 KiB aligned. */
static bool slot_in_pool(const struct pog_seg_slot *slot, uint64_t file_size)
{
	return slot->base % POG_BLOCK_SIZE == 0 && slot->base >= POG_BLOCK_SIZE &&
	       slot->base <= file_size && POG_SEG_BYTES <= file_size - slot->base;
}

static int load_segments(pog_store *s)
{
	struct pog_super *sb = s->env->super;
	struct stat st;
	if (fstat(s->env->lock_fd, &st) < 0)
		return -errno;
	uint64_t file_size = (uint64_t)st.st_size;
	if (sb->nsegments > sb->max_segments ||
	    sb->max_segments > file_size / POG_SEG_BYTES + 1 ||
	    sb->segtab.off > file_size ||
	    sb->max_segments * sizeof(struct pog_seg_slot) >
		    file_size - sb->segtab.off)
		return POG_EDAMAGED;
	s->env->segtab = pmemobj_direct(sb->segtab);
	if (!s->env->segtab)
		return POG_EDAMAGED;
	s->env->nsegs = sb->nsegments;
	s->env->segs = calloc(s->env->nsegs ? s->env->nsegs : 1, sizeof(*s->env->segs));
	if (!s->env->segs)
		return -ENOMEM;
	s->env->blocks_used = 0;
	for (uint64_t i = 0; i < s->env->nsegs; i++) {
		if (!slot_in_pool(&s->env->segtab[i], file_size))
			return POG_EDAMAGED;
		seg_dram_init(s, i);
		struct pog_seg_header *h = (void *)s->env->segs[i].base;
		if (h->magic != POG_SEG_MAGIC || h->index != i)
			return POG_EDAMAGED;
		if (sb->clean) {
			memcpy(s->env->segs[i].used, h->bitmap, sizeof(h->bitmap));
			s->env->segs[i].used[0] |= 1;
			uint32_t n = 0;
			for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++)
				n += (uint32_t)__builtin_popcountll(s->env->segs[i].used[w]);
			s->env->segs[i].nused = n;
		}
		s->env->blocks_used += s->env->segs[i].nused;
	}
	return 0;
}

static int open_pool(pog_store *s, const char *path)
{
	int err = check_signature(s->env->lock_fd);
	if (!err) /* libpmemobj crashes on some damage: refuse it first */
		err = pog_pool_precheck(s->env->lock_fd, NULL, 0);
	if (err)
		return err;
	s->env->pop = pmemobj_open(path, POG_LAYOUT);
	if (!s->env->pop) {
		if (errno == EWOULDBLOCK)
			return POG_ELOCKED; /* libpmemobj's own flock */
		return errno == EINVAL ? POG_ENOTPOOL : -errno;
	}
	if (pmemobj_root_size(s->env->pop) < sizeof(struct pog_super))
		return POG_EDAMAGED;
	s->env->super = pmemobj_direct(pmemobj_root(s->env->pop, sizeof(struct pog_super)));
	if (s->env->super->magic != POG_SUPER_MAGIC)
		return POG_ENOTPOOL;
	if (s->env->super->format_version > POG_FORMAT_VERSION)
		return POG_ENEWER;
	if (s->env->super->block_size != POG_BLOCK_SIZE ||
	    s->env->super->seg_blocks != POG_SEG_BLOCKS)
		return POG_EDAMAGED;
	err = load_segments(s);
	if (err)
		return err;
	err = load_commit(s);
	if (err)
		return err;
	if (!s->env->super->clean) {
		err = pog_mark_committed(s, true);
		if (err)
			return err;
	}
	return 0;
}

uint32_t pog_format_version(void)
{
	return POG_FORMAT_VERSION;
}

int pog_pool_format(const char *path, uint32_t *version)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = check_signature(fd);
	close(fd);
	if (err)
		return err;
	PMEMobjpool *pop = pmemobj_open(path, POG_LAYOUT);
	if (!pop)
		return errno == EWOULDBLOCK ? POG_ELOCKED : POG_ENOTPOOL;
	err = POG_ENOTPOOL;
	if (pmemobj_root_size(pop) >= sizeof(struct pog_super)) {
		const struct pog_super *sb =
			pmemobj_direct(pmemobj_root(pop, sizeof(struct pog_super)));
		if (sb->magic == POG_SUPER_MAGIC) {
			*version = sb->format_version;
			err = 0;
		}
	}
	pmemobj_close(pop);
	return err;
}

int pog_open(const char *path, unsigned flags, pog_store **out)
{
	pog_store *s = store_new();
	if (!s)
		return -ENOMEM;
	s->env->open_flags = flags;
	bool ro = flags & POG_OPEN_READONLY;
	int err = 0;
	if (flags & POG_OPEN_NOLOCK) {
		s->env->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->env->lock_fd < 0)
			err = -errno;
	} else {
		err = lock_pool(s, path);
	}
	if (!err)
		err = open_pool(s, path);
	if (!err && !ro && s->env->super->clean) {
		s->env->super->clean = 0;
		pmemobj_persist(s->env->pop, &s->env->super->clean, sizeof(s->env->super->clean));
	}
	/* Format 1 (no small nodes) is valid format 2 as it is; format 2's
	 * list trees are rebuilt with counts, in one commit (list.c). Then
	 * the new version is recorded, one persisted store. */
	if (!err && !ro && !s->env->list_counts)
		err = pog_lists_upgrade_commit(s);
	if (!err && !ro && s->env->super->format_version < POG_FORMAT_VERSION) {
		s->env->super->format_version = POG_FORMAT_VERSION;
		pmemobj_persist(s->env->pop, &s->env->super->format_version,
				sizeof(s->env->super->format_version));
	}
	if (err) {
		store_free(s);
		return err;
	}
	*out = s;
	return 0;
}

/*
 * What libpmemobj takes for a segment (its 8 MiB and a block to align it,
 * in 256 KiB chunks: 33 of them) and for itself (pool header, lanes, heap
 * headers). Measured with libpmemobj 1.12: a 1 GiB pool holds 123
 * segments, 2 GiB 247, 8 GiB 992; seg_add lowers max_segments should one
 * more not fit after all.
 */
#define SEG_FOOTPRINT (POG_SEG_BYTES + ((uint64_t)256 << 10))
#define POOL_OVERHEAD ((uint64_t)9 << 20)

static int init_super(pog_store *s, uint64_t size)
{
	PMEMoid root = pmemobj_root(s->env->pop, sizeof(struct pog_super));
	if (OID_IS_NULL(root))
		return -ENOMEM;
	struct pog_super *sb = pmemobj_direct(root);
	uint64_t max = (size - POOL_OVERHEAD) / SEG_FOOTPRINT;
	int err = 0;
	TX_BEGIN(s->env->pop) {
		pmemobj_tx_add_range_direct(sb, sizeof(*sb));
		memset(sb, 0, sizeof(*sb));
		sb->magic = POG_SUPER_MAGIC;
		sb->format_version = POG_FORMAT_VERSION;
		sb->block_size = POG_BLOCK_SIZE;
		sb->seg_blocks = POG_SEG_BLOCKS;
		sb->pool_size = size;
		sb->max_segments = max;
		sb->segtab = pmemobj_tx_zalloc(max * sizeof(struct pog_seg_slot), 1);
		struct pog_time t = pog_now();
		sb->uuid[0] = (uint64_t)t.sec ^ ((uint64_t)getpid() << 32);
		sb->uuid[1] = t.nsec;
	} TX_ONABORT {
		err = -errno ? -errno : -ENOMEM;
	} TX_END
	if (err)
		return err;
	s->env->super = sb;
	return load_segments(s);
}

int pog_create(const char *path, uint64_t size, pog_store **out)
{
	if (!size)
		size = POG_DEFAULT_POOL_SIZE;
	if (size < POG_MIN_POOL_SIZE)
		return -EINVAL;
	struct stat st;
	if (stat(path, &st) == 0)
		return -EEXIST;
	pog_store *s = store_new();
	if (!s)
		return -ENOMEM;
	int err = 0;
	s->env->pop = pmemobj_create(path, POG_LAYOUT, size, 0644);
	if (!s->env->pop)
		err = -errno;
	if (!err)
		err = lock_pool(s, path);
	if (!err)
		err = init_super(s, size);
	if (!err)
		err = pog_root_init(s);
	if (!err)
		err = pog_commit(s, "create", NULL);
	if (err) {
		store_free(s);
		unlink(path);
		return err;
	}
	*out = s;
	return 0;
}

/* Write the exact free-space bitmaps and mark the pool clean. */
static void write_bitmaps(pog_store *s)
{
	for (uint64_t i = 0; i < s->env->nsegs; i++) {
		struct pog_seg_header *h = (void *)s->env->segs[i].base;
		memcpy(h->bitmap, s->env->segs[i].used, sizeof(h->bitmap));
		pmemobj_flush(s->env->pop, h, sizeof(*h));
	}
	pmemobj_drain(s->env->pop);
	s->env->super->clean = 1;
	pmemobj_persist(s->env->pop, &s->env->super->clean, sizeof(s->env->super->clean));
}

/* Remember in the superblock that a close discarded n staged changes. */
static void record_discard(pog_store *s, uint64_t n)
{
	struct pog_super *sb = s->env->super;

	sb->discarded_changes = n;
	sb->discarded_time = pog_now().sec;
	pmemobj_persist(s->env->pop, &sb->discarded_changes,
			sizeof(sb->discarded_changes) + sizeof(sb->discarded_time));
}

int pog_discard(pog_store *s)
{
	int staged = (int)pog_staged_count(s);
	pthread_rwlock_wrlock(&s->env->lock);
	bool ro = s->env->open_flags & POG_OPEN_READONLY;
	if (!ro && !s->env->fatal) {
		if (staged > 0)
			record_discard(s, (uint64_t)staged);
		pog_abort_locked(s);
	}
	pthread_rwlock_unlock(&s->env->lock);
	return staged;
}

int pog_close(pog_store *s, unsigned flags)
{
	if (!s)
		return 0;
	int staged = (int)pog_staged_count(s);
	bool ro = s->env->open_flags & POG_OPEN_READONLY;
	struct pog_env *env = s->env;
	pthread_rwlock_wrlock(&env->lock);
	if (env->nsessions > 1) {
		/* Not the last session: its transaction goes, the pool stays. */
		if (!ro && !env->fatal) {
			if (staged > 0)
				record_discard(s, (uint64_t)staged);
			pog_abort_locked(s);
		}
		session_free(s);
		pog_deferred_release(env->sessions);
		pthread_rwlock_unlock(&env->lock);
		return staged;
	}
	pthread_rwlock_unlock(&env->lock);
	if (!ro && !s->env->fatal) {
		if (staged > 0)
			record_discard(s, (uint64_t)staged);
		pog_abort(s);
		if (!(flags & POG_CLOSE_NOGC))
			pog_gc(s, NULL);
		pthread_rwlock_wrlock(&s->env->lock);
		write_bitmaps(s);
		pthread_rwlock_unlock(&s->env->lock);
	}
	store_free(s);
	return staged;
}

/* ---- commit and abort --------------------------------------------------------- */

/* Fresh ranges at most this far apart in the mapping are flushed by one
 * call (the clean pages in between cost a page-cache lookup on a file, a
 * cache-line flush each on pmem), when no other session's staged block
 * lies in between: a commit writes only its own blocks. */
#define FLUSH_GAP ((size_t)1 << 20)

/* Does a session other than s hold a fresh block in [from, to) of seg? */
static bool others_fresh(const pog_store *s, uint64_t seg, unsigned from,
			 unsigned to)
{
	for (const pog_store *p = s->env->sessions; p; p = p->next_session) {
		if (p == s || seg >= p->ntx)
			continue;
		const uint64_t *f = p->tx[seg].fresh;
		for (unsigned b = from; b < to;) {
			unsigned w = b / 64, lo = b % 64;
			unsigned hi = to - w * 64 < 64 ? to - w * 64 : 64;
			uint64_t mask = (hi == 64 ? ~0ULL : (1ULL << hi) - 1) &
					~((1ULL << lo) - 1);
			if (f[w] & mask)
				return true;
			b = w * 64 + hi;
		}
	}
	return false;
}

/* Runs of this session's fresh blocks gathered into address ranges. */
struct fresh_spans {
	pog_store *s;
	void (*emit)(pog_store *s, char *lo, char *hi);
	char *lo, *hi;      /* the range at hand (lo NULL: none) */
	uint64_t seg;       /* where it ends: segment and block after it */
	unsigned end;
};

static bool spans_gap_clean(const struct fresh_spans *sp, uint64_t seg,
			    unsigned first)
{
	if (sp->s->env->nsessions < 2)
		return true;
	if (sp->seg == seg)
		return !others_fresh(sp->s, seg, sp->end, first);
	return !others_fresh(sp->s, sp->seg, sp->end, POG_SEG_BLOCKS) &&
	       !others_fresh(sp->s, seg, 0, first);
}

/* The run of blocks [first, end) of segment seg. */
static void spans_add(struct fresh_spans *sp, uint64_t seg, unsigned first,
		      unsigned end)
{
	char *base = sp->s->env->segs[seg].base;
	char *from = base + (uint64_t)first * POG_BLOCK_SIZE;
	char *to = base + (uint64_t)end * POG_BLOCK_SIZE;
	if (sp->lo && from >= sp->hi && (size_t)(from - sp->hi) <= FLUSH_GAP &&
	    spans_gap_clean(sp, seg, first)) {
		sp->hi = to;
	} else {
		if (sp->lo)
			sp->emit(sp->s, sp->lo, sp->hi);
		sp->lo = from;
		sp->hi = to;
	}
	sp->seg = seg;
	sp->end = end;
}

/* Every run of this session's fresh blocks, in segment order, to emit
 * (ranges that lie together in one call); with crc, the CRC of every
 * fresh node first. */
static void fresh_spans(pog_store *s, bool crc,
			void (*emit)(pog_store *s, char *lo, char *hi))
{
	struct fresh_spans sp = {.s = s, .emit = emit};
	for (uint64_t i = s->fresh_min_seg; i <= s->fresh_max_seg; i++) {
		struct pog_seg *g = &s->env->segs[i];
		struct pog_txseg *x = &s->tx[i];
		int first = -1, last = -1; /* the run of fresh blocks at hand */
		for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++) {
			uint64_t bits = x->fresh[w];
			uint64_t nodes = crc ? bits & x->node[w] : 0;
			while (nodes) {
				unsigned b = (unsigned)__builtin_ctzll(nodes);
				nodes &= nodes - 1;
				struct pog_node_hdr *h = (void *)(g->base +
					(uint64_t)(w * 64 + b) * POG_BLOCK_SIZE);
				h->crc = pog_node_crc(h, POG_BLOCK_SIZE);
			}
			while (bits) {
				int b = (int)(w * 64 + (unsigned)__builtin_ctzll(bits));
				bits &= bits - 1;
				if (first >= 0 && b == last + 1) {
					last = b;
					continue;
				}
				if (first >= 0)
					spans_add(&sp, i, (unsigned)first,
						  (unsigned)last + 1);
				first = last = b;
			}
		}
		if (first >= 0)
			spans_add(&sp, i, (unsigned)first, (unsigned)last + 1);
	}
	if (sp.lo)
		emit(s, sp.lo, sp.hi);
}

static void flush_span(pog_store *s, char *lo, char *hi)
{
	pmemobj_flush(s->env->pop, lo, (size_t)(hi - lo));
}

/*
 * CRC every fresh node and flush every fresh range of this session (not
 * another session's staged blocks), with one call for ranges that lie
 * together (the allocator fills segments in order, and libpmemobj places
 * them one after the other): the number of flushes does not grow with the
 * number of pages.
 */
static void seal_fresh(pog_store *s)
{
	small_seal(s);
	if (s->fresh_count)
		fresh_spans(s, true, flush_span);
	pmemobj_drain(s->env->pop);
}

/*
 * A large commit starts the disk on its fresh blocks first (asynchronous
 * writeback of the pool file's pages), so that the disk works while the
 * commit computes page CRCs and shares pages; the flush in seal_fresh
 * then waits for what is left. Nothing is durable before that flush.
 */
#define WRITEBACK_MIN_BLOCKS 1024u

static void writeback_span(pog_store *s, char *lo, char *hi)
{
	/* A hint: where it cannot be had, the flush does it all. */
	(void)sync_file_range(s->env->lock_fd, (off_t)(lo - (char *)s->env->pop),
			      (off_t)(hi - lo), SYNC_FILE_RANGE_WRITE);
}

static void fresh_writeback(pog_store *s)
{
	if (s->fresh_count < WRITEBACK_MIN_BLOCKS || s->env->lock_fd < 0)
		return;
	fresh_spans(s, false, writeback_span);
}

static void fresh_clear(pog_store *s, bool discard)
{
	small_end(s, !discard);
	if (!s->fresh_count)
		return;
	for (uint64_t i = s->fresh_min_seg; i <= s->fresh_max_seg; i++) {
		struct pog_seg *g = &s->env->segs[i];
		struct pog_txseg *x = &s->tx[i];
		for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++) {
			if (discard && x->fresh[w]) {
				unsigned n = (unsigned)__builtin_popcountll(x->fresh[w]);
				g->used[w] &= ~x->fresh[w];
				g->nused -= n;
				s->env->blocks_used -= n;
			}
			x->fresh[w] = 0;
			x->node[w] = 0;
		}
	}
	s->fresh_count = 0;
}

static int log_append(pog_store *s, uint64_t id, struct pog_time t,
		      uint64_t changes, const char *message, uint64_t *root)
{
	char buf[sizeof(struct pog_log_rec) + POG_MESSAGE_MAX + POG_SESSION_MAX];
	/* Format 3: the session's name follows the message, reserved bytes
	 * of it (0: none). */
	const char *who = s->session_name;
	size_t slen = who ? strlen(who) : 0;
	if (slen > POG_SESSION_MAX)
		slen = POG_SESSION_MAX;
	struct pog_log_rec rec = {
		.time_sec = t.sec, .time_nsec = t.nsec, .changes = changes,
		.reserved = (uint32_t)slen,
	};
	size_t mlen = message ? strlen(message) : 0;
	if (mlen > POG_MESSAGE_MAX)
		return -E2BIG;
	memcpy(buf, &rec, sizeof(rec));
	if (mlen)
		memcpy(buf + sizeof(rec), message, mlen);
	if (slen)
		memcpy(buf + sizeof(rec) + mlen, who, slen);
	return pog_bt_put(s, POG_TREE_LOG, root, id, buf,
			  (uint16_t)(sizeof(rec) + mlen + slen));
}

int pog_commit(pog_store *s, const char *message, uint64_t *id_out)
{
	return pog_commit_report(s, message, id_out, NULL, 0, NULL);
}

int pog_commit_report(pog_store *s, const char *message, uint64_t *id_out,
		      const char *const *paths, size_t npaths,
		      struct pog_commit_report **report)
{
	if (report) {
		*report = calloc(1, sizeof(**report));
		if (!*report)
			return -ENOMEM;
	}
	int err = pog_wrlock(s);
	if (err) {
		if (report) {
			free(*report);
			*report = NULL;
		}
		return err;
	}
	bool removed = s->nremoved > 0;
	s->report = report ? *report : NULL;
	s->report_paths = paths;
	s->report_npaths = npaths;
	err = pog_commit_locked(s, message, id_out);
	s->report = NULL;
	if (err && report) {
		pog_commit_report_free(*report);
		*report = NULL;
	}
	/* Filling up: collect now, so that deleting and committing is
	 * enough to get space back (the commit itself stands either way);
	 * also when replaced small nodes hold 1/64 of the pool, or when the
	 * pool is in its reserve (truncated pages, replaced small nodes and
	 * removed xattrs come back only through GC). */
	uint64_t capacity = s->env->super->max_segments * (uint64_t)POG_SEG_BLOCKS;
	bool idle_slots = s->env->small_garbage * 64 > capacity * POG_BLOCK_SIZE;
	bool in_reserve = pog_free_blocks(s) < pog_reserve_blocks(s) + POG_OP_NEED;
	if (!err && (removed || idle_slots || in_reserve) &&
	    s->env->blocks_used * 4 > capacity * 3) {
		struct pog_gc_result res;
		(void)pog_gc_locked(s, &res);
	}
	pog_unlock(s);
	return err;
}

int pog_commit_locked(pog_store *s, const char *message, uint64_t *id_out)
{
	/* Lists first: a temporary entry left in one refuses the commit
	 * before anything is written. */
	int err = pog_lists_settle(s);
	if (err) {
		if (err != -EINVAL)
			pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	err = pog_edit_commit_prepare(s);
	if (err)
		return err; /* the reason is in the last error */
	fresh_writeback(s);
	err = pog_pages_seal(s);
	if (err) {
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	/* The floor that every operation leaves free covers this. */
	err = pog_reserve(s, POG_COMMIT_NEED);
	if (err) {
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	if (s->base_id != s->env->commit_id) {
		err = pog_merge_locked(s);
		if (err)
			return err; /* the reason is in the last error */
		/* the view moves past the commits made since the base */
		pog_moved_collect(s, &s->base, &s->env->committed);
	}
	/* Space is short (less than a quarter of the pool free, or growth
	 * was refused): retention of unnamed commits gives way, so that this
	 * commit frees what it replaced and GC what was deleted (history.c). */
	uint64_t total = s->env->super->max_segments * (uint64_t)(POG_SEG_BLOCKS - 1);
	if (pog_free_blocks(s) < 2 * pog_reserve_blocks(s) ||
	    pog_free_blocks(s) < total / 4)
		pog_history_squeeze(s);
	uint64_t id = s->env->commit_id + 1;
	uint64_t changes = s->changes.n + s->nremoved;
	struct pog_time t = pog_now();
	uint64_t log_root = s->staged.log_root, cbno;
	err = log_append(s, id, t, changes, message, &log_root);
	if (!err)
		err = pog_block_alloc(s, false, &cbno);
	if (err) {
		s->staged.log_root = log_root;
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	s->staged.log_root = log_root;
	pog_dedup_staged(s);
	struct pog_commit_rec rec = {
		.magic = POG_COMMIT_MAGIC,
		.id = id,
		.time_sec = t.sec,
		.time_nsec = t.nsec,
		.obj_root = s->staged.obj_root,
		.log_root = log_root,
		.next_ino = s->env->next_ino,
		.nobjects = s->staged.nobjects,
		.prev_commit = s->env->commit_bno,
		.changes = changes,
		.dedup_root = s->staged.dedup_root,
		.logical_bytes = s->staged.logical_bytes,
		.lists = s->env->list_counts ? POG_LISTS_COUNTED : 0,
	};
	void *cblock = pog_block(s, cbno);
	memset(cblock, 0, POG_BLOCK_SIZE);
	pog_history_fill(s, id, &rec, (void *)((char *)cblock + sizeof(rec)));
	rec.crc = pog_crc32(&rec, sizeof(rec));
	memcpy(cblock, &rec, sizeof(rec));

	pog_lists_seal(s); /* nothing fails from here on */
	seal_fresh(s);
	/* The commit point: one aligned 8-byte store, then persisted. */
	__atomic_store_n(&s->env->super->commit_block, cbno, __ATOMIC_RELEASE);
	pmemobj_persist(s->env->pop, &s->env->super->commit_block, sizeof(uint64_t));

	uint64_t old_commit = s->env->commit_bno;
	s->env->last_commit_fresh = s->fresh_count;
	fresh_clear(s, false);
	s->staged.next_ino = s->env->next_ino;
	s->env->committed = s->staged;
	s->env->commit_id = id;
	s->env->commit_bno = cbno;
	s->env->commit_time = t;
	/* What the commit replaced waits for older pinned commits (pins.c);
	 * out of memory there only leaves a block used until GC. */
	(void)pog_pins_note_commit(s, id, cbno);
	pog_history_committed(s);
	for (size_t i = 0; i < s->freed.n; i++)
		(void)pog_defer_free(s, id, s->freed.v[i]);
	s->freed.n = 0;
	if (old_commit)
		(void)pog_defer_free(s, id, old_commit);
	session_begin(s);
	pog_deferred_release(s);
	if (s->report) {
		s->report->id = id;
		pog_report_collect(s);
	}
	changes_clear(s);
	pog_edit_end(s);
	if (id_out)
		*id_out = id;
	return 0;
}

void pog_abort_locked(pog_store *s)
{
	pog_moved_collect(s, &s->staged, &s->env->committed);
	pog_hash_reset(s);
	fresh_clear(s, true);
	s->freed.n = 0;
	session_begin(s);
	changes_clear(s);
	pog_edit_end(s);
	pog_deferred_release(s);
}

int pog_abort(pog_store *s)
{
	int err = pog_wrlock(s);
	if (err)
		return err;
	pog_abort_locked(s);
	pog_unlock(s);
	return 0;
}

/* ---- status and log ----------------------------------------------------------- */

int pog_status(pog_store *s, struct pog_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&s->env->lock);
	out->format_version = s->env->super->format_version;
	out->commit_id = s->env->commit_id;
	out->commit_time = s->env->commit_time;
	out->staged = s->changes.n + s->nremoved;
	out->pool_size = s->env->super->pool_size;
	out->block_size = POG_BLOCK_SIZE;
	out->blocks_total = s->env->super->max_segments * (POG_SEG_BLOCKS - 1);
	out->blocks_used = s->env->blocks_used - s->env->nsegs; /* headers are overhead */
	out->blocks_reserved = pog_reserve_blocks(s);
	out->pool_used = out->blocks_used * POG_BLOCK_SIZE;
	out->objects = s->staged.nobjects;
	out->logical_bytes = s->staged.logical_bytes;
	out->next_ino = s->env->next_ino;
	out->gc_runs = s->env->gc_runs;
	out->gc_freed_blocks = s->env->gc_freed_blocks;
	out->gc_freed_objects = s->env->gc_freed_objects;
	out->checksum_errors = atomic_load(&s->env->checksum_errors);
	out->discarded_changes = s->env->super->discarded_changes;
	out->discarded_time.sec = s->env->super->discarded_time;
	out->session_id = s->session_id;
	out->base_id = s->base_id;
	out->sessions = s->env->nsessions;
	out->keep = pog_keep(s);
	out->retained = s->env->hist.nlist + (s->env->commit_id ? 1 : 0);
	out->history_dropped = s->env->hist.dropped;
	pthread_rwlock_unlock(&s->env->lock);
	pthread_mutex_lock(&s->err_lock);
	memcpy(out->last_error, s->last_error, sizeof(out->last_error));
	pthread_mutex_unlock(&s->err_lock);
	return 0;
}

int pog_log(pog_store *s, int (*fn)(void *ctx, const struct pog_log_entry *e),
	    void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, s->env->committed.log_root, 0);
	while (r > 0) {
		uint64_t key;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		struct pog_log_rec rec;
		char msg[POG_MESSAGE_MAX + 1];
		if (vlen < sizeof(rec)) {
			r = POG_ECORRUPT;
			break;
		}
		memcpy(&rec, val, sizeof(rec));
		size_t mlen = vlen - sizeof(rec);
		char who[POG_SESSION_MAX + 1] = "";
		if (rec.reserved <= POG_SESSION_MAX && rec.reserved <= mlen) {
			mlen -= rec.reserved;
			memcpy(who, (const char *)val + sizeof(rec) + mlen, rec.reserved);
			who[rec.reserved] = '\0';
		}
		if (mlen > POG_MESSAGE_MAX)
			mlen = POG_MESSAGE_MAX;
		memcpy(msg, (const char *)val + sizeof(rec), mlen);
		msg[mlen] = '\0';
		struct pog_log_entry e = {
			.id = key,
			.time = {rec.time_sec, rec.time_nsec},
			.changes = rec.changes,
			.message = msg,
			.session = who,
		};
		r = fn(ctx, &e);
		if (r)
			break;
		r = pog_bt_next(&it);
	}
	pog_unlock(s);
	return r < 0 || r > 0 ? r : 0;
}

static int cmp_change(const void *a, const void *b)
{
	const struct pog_change_line *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : x->kind - y->kind;
}

int pog_change_lines(pog_store *s, struct pog_change_line **out, size_t *count)
{
	size_t n = 0, cap = s->changes.n + s->nremoved;
	struct pog_change_line *lines = calloc(cap ? cap : 1, sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	char path[4096];
	pog_map64_foreach(&s->changes, i) {
		uint64_t ino = s->changes.keys[i];
		bool added = s->changes.vals[i] & POG_CHG_ADDED;
		bool edited = s->changes.vals[i] & POG_CHG_EDITED;
		if (!added && !edited && pog_ino_new(s, ino))
			continue; /* inside a new directory: listed by it */
		ssize_t len = pog_path_locked(s, &s->staged, ino, path, sizeof(path) - 1);
		if (len < 0 || (size_t)len >= sizeof(path) - 1)
			continue; /* no owning place: not a user-visible change */
		path[len] = '\0';
		lines[n].kind = added ? 'A' : 'M';
		lines[n].ino = ino;
		lines[n].path = strdup(path);
		if (lines[n].path)
			n++;
	}
	for (size_t i = 0; i < s->nremoved; i++) {
		lines[n].kind = 'D';
		lines[n].ino = 0;
		lines[n].path = strdup(s->removed_paths[i]);
		if (lines[n].path)
			n++;
	}
	qsort(lines, n, sizeof(*lines), cmp_change);
	*out = lines;
	*count = n;
	return 0;
}

int pog_changes(pog_store *s,
		int (*fn)(void *ctx, char kind, const char *path), void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	struct pog_change_line *lines;
	size_t n;
	err = pog_change_lines(s, &lines, &n);
	pog_unlock(s);
	if (err)
		return err;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!r)
			r = fn(ctx, lines[i].kind, lines[i].path);
		free(lines[i].path);
	}
	free(lines);
	return r;
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
