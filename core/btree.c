/* btree.c - copy-on-write B+trees of u64 keys and variable-size values. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Nodes are blocks, or for the root leaf of a small tree a small slot
 * (format.h) that grows to the next size when full and to a block after
 * 2048 bytes. A node referenced by a commit is never written: before a
 * change, every node on the path is copied into a node of the running
 * transaction (a "fresh" node), after which it is changed in place until
 * commit. A fresh child implies a fresh parent, because linking the child
 * changed the parent.
 */

#define HDR(s, addr) ((struct pog_node_hdr *)pog_node((s), (addr)))
#define LEAF_BODY sizeof(struct pog_node_hdr)

static uint16_t *leaf_slots(struct pog_node_hdr *h)
{
	return (uint16_t *)(h + 1);
}

static struct pog_leaf_entry *leaf_entry(struct pog_node_hdr *h, unsigned i)
{
	return (struct pog_leaf_entry *)((char *)h + leaf_slots(h)[i]);
}

static uint64_t leaf_key(struct pog_node_hdr *h, unsigned i)
{
	uint64_t k;
	memcpy(&k, &leaf_entry(h, i)->key, sizeof(k));
	return k;
}

static struct pog_branch *branches(struct pog_node_hdr *h)
{
	return (struct pog_branch *)(h + 1);
}

static size_t leaf_free(const struct pog_node_hdr *h)
{
	return h->free_end - LEAF_BODY - 2u * h->count;
}

/* A list tree's branch nodes count the entries under each child. */
static bool counted(const pog_store *s, const struct pog_node_hdr *h)
{
	return h->tree == POG_TREE_LIST && s->env->list_counts;
}

static unsigned branch_max(const pog_store *s, const struct pog_node_hdr *h)
{
	return counted(s, h) ? POG_LIST_BRANCH_MAX : POG_BRANCH_MAX;
}

static uint64_t *branch_counts(struct pog_node_hdr *h)
{
	return (uint64_t *)((char *)h + POG_LIST_COUNTS_OFFSET);
}

/* Entries under the node at addr (a counted tree's). */
static uint64_t node_total(pog_store *s, uint64_t addr)
{
	struct pog_node_hdr *h = HDR(s, addr);
	if (h->level == 0)
		return h->count;
	uint64_t n = 0;
	for (unsigned i = 0; i < h->count; i++)
		n += branch_counts(h)[i];
	return n;
}

int pog_node_check(const pog_store *s, uint64_t addr, uint32_t kind)
{
	if (!pog_node_valid(s, addr))
		return POG_ECORRUPT;
	struct pog_node_hdr *h = HDR(s, addr);
	if (h->magic != POG_NODE_MAGIC || h->level >= POG_BT_MAX_DEPTH ||
	    (kind && h->tree != kind))
		return POG_ECORRUPT;
	if (h->level) {
		if (h->count == 0 || h->count > branch_max(s, h) ||
		    (addr & POG_NODE_SMALL))
			return POG_ECORRUPT;
	} else if (h->free_end > pog_node_size(addr) ||
		   h->free_end < LEAF_BODY + 2u * h->count) {
		return POG_ECORRUPT;
	}
	return 0;
}

/* First slot whose key >= key; *found when equal. */
static unsigned leaf_search(struct pog_node_hdr *h, uint64_t key, bool *found)
{
	unsigned lo = 0, hi = h->count;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (leaf_key(h, mid) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < h->count && leaf_key(h, lo) == key;
	return lo;
}

/* Child index for key: the last branch whose key <= key (at least 0). */
static unsigned branch_search(struct pog_node_hdr *h, uint64_t key)
{
	struct pog_branch *b = branches(h);
	unsigned lo = 1, hi = h->count;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (b[mid].key <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static void node_init(struct pog_node_hdr *h, uint32_t kind, uint16_t level,
		      uint32_t size)
{
	memset(h, 0, size);
	h->magic = POG_NODE_MAGIC;
	h->level = level;
	h->tree = kind;
	h->free_end = (uint16_t)size;
}

static int node_new(pog_store *s, uint32_t kind, uint16_t level,
		    uint32_t size, uint64_t *addr)
{
	int err = pog_node_alloc(s, size, addr);
	if (err)
		return err;
	node_init(HDR(s, *addr), kind, level, size);
	return 0;
}

/* Trees that are usually small (one per object) start in a small slot. */
static uint32_t first_leaf_size(uint32_t kind)
{
	return kind == POG_TREE_MAP || kind == POG_TREE_LIST ||
	       kind == POG_TREE_PAGES || kind == POG_TREE_XATTR
		       ? POG_SMALL_MIN
		       : POG_BLOCK_SIZE;
}

/*
 * A leaf of the object table whose damage lies in a file's inline bytes:
 * that file's own CRC still fails after a copy, so the copy launders
 * nothing, and the other objects of the leaf stay usable (the damaged
 * file can be removed).
 */
static bool damage_is_inline(pog_store *s, uint64_t addr)
{
	struct pog_node_hdr *h = HDR(s, addr);
	if (h->tree != POG_TREE_OBJECTS || h->level != 0 ||
	    pog_node_check(s, addr, POG_TREE_OBJECTS))
		return false;
	unsigned bad = 0;
	for (unsigned i = 0; i < h->count; i++) {
		struct pog_leaf_entry *e = leaf_entry(h, i);
		const struct pog_inode *in = (const void *)(e + 1);
		if (e->vlen < POG_INODE_FIXED || !(in->flags & POG_INODE_INLINE) ||
		    in->size > POG_INLINE_MAX ||
		    e->vlen != POG_INODE_FIXED + in->size)
			continue;
		if (pog_crc32(in->inline_data, in->size) != in->direct_crc)
			bad++;
	}
	return bad > 0;
}

/*
 * A committed node is trusted only once its CRC is checked: damage in it
 * would answer wrongly (a key that moved, a page that reads as a hole, a
 * name that is not there) instead of failing. Each node is checked once
 * per open store: a bit per block for whole-block nodes, a bit per slot
 * for small nodes (the slots of one block are written by different
 * commits). Fresh nodes have no CRC yet. A block is reused only after
 * GC freed it, and then holds what this store wrote and summed itself.
 */
static int node_readable(pog_store *s, uint64_t addr)
{
	if (pog_node_check(s, addr, 0))
		return POG_ECORRUPT;
	if (pog_node_fresh(s, addr))
		return 0;
	uint64_t bno = pog_node_bno(addr), i = bno % POG_SEG_BLOCKS;
	struct pog_seg *g = &s->env->segs[bno / POG_SEG_BLOCKS];
	bool small = addr & POG_NODE_SMALL;
	uint64_t *word = &g->checked[i / 64], bit = 1ULL << (i % 64);
	uint16_t *slots = &g->checked_slots[i];
	uint16_t slot = small ? (uint16_t)(1u << pog_node_slot(addr)) : 0;
	if (small ? (__atomic_load_n(slots, __ATOMIC_RELAXED) & slot)
		  : (__atomic_load_n(word, __ATOMIC_RELAXED) & bit))
		return 0;
	const struct pog_node_hdr *h = HDR(s, addr);
	if (pog_node_crc(h, pog_node_size(addr)) != h->crc) {
		if (damage_is_inline(s, addr))
			return 0; /* each file there checks its own bytes */
		atomic_fetch_add(&s->env->checksum_errors, 1);
		pog_set_error(s, "checksum mismatch in tree node %llu%s",
			      (unsigned long long)bno,
			      small ? " (a small node)" : "");
		return POG_ECORRUPT;
	}
	if (small)
		__atomic_fetch_or(slots, slot, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or(word, bit, __ATOMIC_RELAXED);
	return 0;
}

/* Make *addr writable in this transaction (copying it if committed). */
static int node_writable(pog_store *s, uint64_t *addr)
{
	if (pog_node_fresh(s, *addr))
		return 0;
	/* A committed node is checked before it is copied: the copy gets a
	 * new CRC at commit, which would make damage look valid. */
	const struct pog_node_hdr *h = HDR(s, *addr);
	uint32_t size = pog_node_size(*addr);
	if (pog_node_crc(h, size) != h->crc && !damage_is_inline(s, *addr)) {
		atomic_fetch_add(&s->env->checksum_errors, 1);
		pog_set_error(s, "checksum mismatch in tree node %llu%s",
			      (unsigned long long)pog_node_bno(*addr),
			      *addr & POG_NODE_SMALL ? " (a small node)" : "");
		return POG_ECORRUPT;
	}
	uint64_t copy;
	int err = pog_node_alloc(s, size, &copy);
	if (err)
		return err;
	memcpy(pog_node(s, copy), h, size);
	pog_node_release(s, *addr);
	*addr = copy;
	return 0;
}

/* Rewrite a leaf of size bytes compactly without slot `skip` (or none:
 * skip = count) into dst, a node of dst_size bytes (may be h itself). */
static void leaf_copy(struct pog_node_hdr *h, unsigned skip,
		      struct pog_node_hdr *dst, uint32_t dst_size)
{
	char tmp[POG_BLOCK_SIZE];
	struct pog_node_hdr *t = (struct pog_node_hdr *)tmp;
	node_init(t, h->tree, 0, dst_size);
	for (unsigned i = 0; i < h->count; i++) {
		if (i == skip)
			continue;
		struct pog_leaf_entry *e = leaf_entry(h, i);
		size_t sz = POG_LEAF_ENTRY_SIZE(e->vlen);
		t->free_end -= (uint16_t)sz;
		memcpy(tmp + t->free_end, e, sz);
		leaf_slots(t)[t->count++] = t->free_end;
	}
	memcpy(dst, tmp, dst_size);
}

static void leaf_compact(struct pog_node_hdr *h, uint32_t size, unsigned skip)
{
	leaf_copy(h, skip, h, size);
}

/*
 * A small leaf that has no room for need more bytes moves to the smallest
 * size that has (a whole block at most; a full block then splits).
 */
static int leaf_grow(pog_store *s, uint64_t *addr, size_t need)
{
	struct pog_node_hdr *h = HDR(s, *addr);
	uint32_t size = pog_node_size(*addr);
	size_t want = size - leaf_free(h) + need;
	uint32_t bigger = size * 2;
	while (bigger < POG_BLOCK_SIZE && bigger < want)
		bigger *= 2;
	uint64_t to;
	int err = pog_node_alloc(s, bigger, &to);
	if (err)
		return err;
	leaf_copy(h, h->count, HDR(s, to), bigger);
	pog_node_release(s, *addr);
	*addr = to;
	return 0;
}

static void leaf_insert_at(struct pog_node_hdr *h, unsigned pos, uint64_t key,
			   const void *val, uint16_t vlen)
{
	size_t sz = POG_LEAF_ENTRY_SIZE(vlen);
	h->free_end -= (uint16_t)sz;
	struct pog_leaf_entry *e = (struct pog_leaf_entry *)((char *)h + h->free_end);
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->vlen = vlen;
	memcpy(e + 1, val, vlen);
	uint16_t *sl = leaf_slots(h);
	memmove(sl + pos + 1, sl + pos, (h->count - pos) * sizeof(*sl));
	sl[pos] = h->free_end;
	h->count++;
}

struct split {
	bool happened;
	uint64_t key;
	uint64_t right;
};

/* Split a full leaf while inserting (key, val) at pos. */
static int leaf_split(pog_store *s, uint64_t addr, unsigned pos, uint64_t key,
		      const void *val, uint16_t vlen, struct split *sp)
{
	struct pog_node_hdr *h = HDR(s, addr);
	if (pos == h->count) {
		/* Appending (new identities, log ids, pages written in
		 * order): the left leaf stays as it is, full, so that growing
		 * trees are dense; the new entry starts the right one. */
		uint64_t right;
		int err = node_new(s, h->tree, 0, POG_BLOCK_SIZE, &right);
		if (err)
			return err;
		leaf_insert_at(HDR(s, right), 0, key, val, vlen);
		sp->key = key;
		sp->happened = true;
		sp->right = right;
		return 0;
	}
	char old[POG_BLOCK_SIZE];
	memcpy(old, h, POG_BLOCK_SIZE);
	struct pog_node_hdr *o = (struct pog_node_hdr *)old;
	unsigned total = o->count + 1u;
	size_t bytes = 0, half;
	for (unsigned i = 0; i < o->count; i++)
		bytes += POG_LEAF_ENTRY_SIZE(leaf_entry(o, i)->vlen) + 2;
	bytes += POG_LEAF_ENTRY_SIZE(vlen) + 2;
	/* Appending (new identities, log ids): keep the left leaf full so
	 * that growing trees are dense; else split in the middle. */
	half = pos == o->count ? bytes : bytes / 2;

	uint64_t right;
	int err = node_new(s, h->tree, 0, POG_BLOCK_SIZE, &right);
	if (err)
		return err;
	struct pog_node_hdr *r = HDR(s, right);
	node_init(h, o->tree, 0, POG_BLOCK_SIZE);
	size_t acc = 0;
	unsigned oi = 0;
	bool to_right = false;
	for (unsigned i = 0; i < total; i++) {
		uint64_t k;
		const void *v;
		uint16_t vl;
		if (i == pos) {
			k = key, v = val, vl = vlen;
		} else {
			struct pog_leaf_entry *e = leaf_entry(o, oi++);
			memcpy(&k, &e->key, sizeof(k));
			v = e + 1;
			vl = e->vlen;
		}
		size_t sz = POG_LEAF_ENTRY_SIZE(vl) + 2;
		/* In key order: left until half the bytes, then right; left
		 * keeps at least one entry and right gets at least one. */
		if (i > 0 && (acc >= half || i + 1 == total || leaf_free(h) < sz))
			to_right = true;
		struct pog_node_hdr *dst = to_right ? r : h;
		if (dst == r && r->count == 0)
			sp->key = k;
		leaf_insert_at(dst, dst->count, k, v, vl);
		acc += sz;
	}
	sp->happened = true;
	sp->right = right;
	return 0;
}

static int branch_insert(pog_store *s, uint64_t addr, unsigned pos, uint64_t key,
			 uint64_t child, uint64_t count, struct split *sp)
{
	struct pog_node_hdr *h = HDR(s, addr);
	struct pog_branch *b = branches(h);
	bool cnt = counted(s, h);
	if (h->count < branch_max(s, h)) {
		memmove(b + pos + 1, b + pos, (h->count - pos) * sizeof(*b));
		b[pos] = (struct pog_branch){key, child};
		if (cnt) {
			uint64_t *c = branch_counts(h);
			memmove(c + pos + 1, c + pos, (h->count - pos) * sizeof(*c));
			c[pos] = count;
		}
		h->count++;
		return 0;
	}
	uint64_t right;
	int err = node_new(s, h->tree, h->level, POG_BLOCK_SIZE, &right);
	if (err)
		return err;
	struct pog_branch all[POG_BRANCH_MAX + 1];
	uint64_t counts[POG_LIST_BRANCH_MAX + 1];
	memcpy(all, b, pos * sizeof(*b));
	all[pos] = (struct pog_branch){key, child};
	memcpy(all + pos + 1, b + pos, (h->count - pos) * sizeof(*b));
	if (cnt) {
		uint64_t *c = branch_counts(h);
		memcpy(counts, c, pos * sizeof(*c));
		counts[pos] = count;
		memcpy(counts + pos + 1, c + pos, (h->count - pos) * sizeof(*c));
	}
	unsigned total = h->count + 1u;
	unsigned left = pos == h->count ? h->count : total / 2;
	struct pog_node_hdr *r = HDR(s, right);
	memcpy(b, all, left * sizeof(*b));
	h->count = (uint16_t)left;
	memcpy(branches(r), all + left, (total - left) * sizeof(*b));
	r->count = (uint16_t)(total - left);
	if (cnt) {
		memcpy(branch_counts(h), counts, left * sizeof(*counts));
		memcpy(branch_counts(r), counts + left,
		       (total - left) * sizeof(*counts));
	}
	sp->happened = true;
	sp->key = all[left].key;
	sp->right = right;
	return 0;
}

static int insert_rec(pog_store *s, uint64_t *addr, uint64_t key,
		      const void *val, uint16_t vlen, struct split *sp,
		      bool *added)
{
	if (pog_node_check(s, *addr, 0))
		return POG_ECORRUPT;
	int err = node_writable(s, addr);
	if (err)
		return err;
	struct pog_node_hdr *h = HDR(s, *addr);
	if (h->level == 0) {
		bool found;
		unsigned pos = leaf_search(h, key, &found);
		uint32_t size = pog_node_size(*addr);
		*added = !found;
		if (found)
			leaf_compact(h, size, pos);
		size_t need = POG_LEAF_ENTRY_SIZE(vlen) + 2;
		if (leaf_free(h) < need)
			leaf_compact(h, size, h->count);
		if (leaf_free(h) < need && size < POG_BLOCK_SIZE) {
			err = leaf_grow(s, addr, need);
			if (err)
				return err;
			h = HDR(s, *addr);
		}
		if (leaf_free(h) >= need) {
			leaf_insert_at(h, pos, key, val, vlen);
			return 0;
		}
		return leaf_split(s, *addr, pos, key, val, vlen, sp);
	}
	unsigned i = branch_search(h, key);
	uint64_t child = branches(h)[i].child;
	struct split csp = {0};
	err = insert_rec(s, &child, key, val, vlen, &csp, added);
	h = HDR(s, *addr);
	branches(h)[i].child = child;
	if (err)
		return err;
	uint64_t right_count = 0;
	if (counted(s, h)) {
		if (csp.happened) {
			branch_counts(h)[i] = node_total(s, child);
			right_count = node_total(s, csp.right);
		} else {
			branch_counts(h)[i] += *added;
		}
	}
	if (!csp.happened)
		return 0;
	return branch_insert(s, *addr, i + 1, csp.key, csp.right, right_count, sp);
}

int pog_bt_put(pog_store *s, uint32_t kind, uint64_t *root, uint64_t key,
	       const void *val, uint16_t vlen)
{
	if (vlen > POG_VALUE_MAX)
		return -E2BIG;
	int err;
	if (!*root) {
		err = node_new(s, kind, 0, first_leaf_size(kind), root);
		if (err)
			return err;
	}
	struct split sp = {0};
	bool added = false;
	err = insert_rec(s, root, key, val, vlen, &sp, &added);
	if (err || !sp.happened)
		return err;
	uint64_t nr;
	uint16_t level = HDR(s, *root)->level;
	err = node_new(s, kind, (uint16_t)(level + 1), POG_BLOCK_SIZE, &nr);
	if (err) {
		/* Keep both halves reachable from nothing new: undo is not
		 * possible cheaply, so the txn reports the failure. */
		return err;
	}
	struct pog_node_hdr *h = HDR(s, nr);
	branches(h)[0] = (struct pog_branch){0, *root};
	branches(h)[1] = (struct pog_branch){sp.key, sp.right};
	if (counted(s, h)) {
		branch_counts(h)[0] = node_total(s, *root);
		branch_counts(h)[1] = node_total(s, sp.right);
	}
	h->count = 2;
	*root = nr;
	return 0;
}

int pog_bt_get(pog_store *s, uint64_t root, uint64_t key, const void **val,
	       uint16_t *vlen)
{
	uint64_t addr = root;
	for (int depth = 0; addr; depth++) {
		if (depth >= POG_BT_MAX_DEPTH)
			return POG_ECORRUPT;
		int err = node_readable(s, addr);
		if (err)
			return err;
		struct pog_node_hdr *h = HDR(s, addr);
		if (h->level == 0) {
			bool found;
			unsigned pos = leaf_search(h, key, &found);
			if (!found)
				return -ENOENT;
			struct pog_leaf_entry *e = leaf_entry(h, pos);
			*val = e + 1;
			if (vlen)
				*vlen = e->vlen;
			return 0;
		}
		addr = branches(h)[branch_search(h, key)].child;
	}
	return -ENOENT;
}

int pog_bt_get_mut(pog_store *s, uint64_t *root, uint64_t key, void **val,
		   uint16_t *vlen)
{
	const void *cv;
	int err = pog_bt_get(s, *root, key, &cv, NULL);
	if (err)
		return err;
	uint64_t *link = root;
	for (;;) {
		err = node_writable(s, link);
		if (err)
			return err;
		struct pog_node_hdr *h = HDR(s, *link);
		if (h->level == 0) {
			bool found;
			unsigned pos = leaf_search(h, key, &found);
			struct pog_leaf_entry *e = leaf_entry(h, pos);
			*val = e + 1;
			if (vlen)
				*vlen = e->vlen;
			return 0;
		}
		link = &branches(h)[branch_search(h, key)].child;
	}
}

static int delete_rec(pog_store *s, uint64_t *addr, uint64_t key, bool *empty)
{
	int err = node_writable(s, addr);
	if (err)
		return err;
	struct pog_node_hdr *h = HDR(s, *addr);
	if (h->level == 0) {
		bool found;
		unsigned pos = leaf_search(h, key, &found);
		if (!found)
			return -ENOENT;
		leaf_compact(h, pog_node_size(*addr), pos);
		*empty = h->count == 0;
		return 0;
	}
	unsigned i = branch_search(h, key);
	uint64_t child = branches(h)[i].child;
	bool child_empty = false;
	err = delete_rec(s, &child, key, &child_empty);
	h = HDR(s, *addr);
	branches(h)[i].child = child;
	if (err)
		return err;
	if (counted(s, h))
		branch_counts(h)[i]--;
	if (child_empty) {
		pog_node_release(s, child);
		struct pog_branch *b = branches(h);
		memmove(b + i, b + i + 1, (h->count - i - 1u) * sizeof(*b));
		if (counted(s, h)) {
			uint64_t *c = branch_counts(h);
			memmove(c + i, c + i + 1, (h->count - i - 1u) * sizeof(*c));
		}
		h->count--;
	}
	*empty = h->count == 0;
	return 0;
}

int pog_bt_del(pog_store *s, uint64_t *root, uint64_t key)
{
	const void *v;
	int err = pog_bt_get(s, *root, key, &v, NULL);
	if (err)
		return err;
	bool empty = false;
	err = delete_rec(s, root, key, &empty);
	if (err)
		return err;
	if (empty) {
		pog_node_release(s, *root);
		*root = 0;
		return 0;
	}
	/* Collapse a root with a single child. */
	for (;;) {
		struct pog_node_hdr *h = HDR(s, *root);
		if (h->level == 0 || h->count != 1)
			return 0;
		uint64_t child = branches(h)[0].child;
		pog_node_release(s, *root);
		*root = child;
	}
}

static void release_rec(pog_store *s, uint64_t addr, int depth)
{
	if (depth >= POG_BT_MAX_DEPTH || pog_node_check(s, addr, 0))
		return;
	struct pog_node_hdr *h = HDR(s, addr);
	if (h->level)
		for (unsigned i = 0; i < h->count; i++)
			release_rec(s, branches(h)[i].child, depth + 1);
	pog_node_release(s, addr);
}

void pog_bt_release(pog_store *s, uint64_t root)
{
	if (root)
		release_rec(s, root, 0);
}

/* ---- iteration ----------------------------------------------------------- */

/* Descend from it->addr[d] along leftmost children to a leaf. */
static int descend_left(struct pog_bt_iter *it)
{
	for (;;) {
		int d = it->depth - 1;
		struct pog_node_hdr *h = HDR(it->s, it->addr[d]);
		if (h->level == 0)
			return 0;
		if (it->depth >= POG_BT_MAX_DEPTH)
			return POG_ECORRUPT;
		uint64_t child = branches(h)[it->pos[d]].child;
		int err = node_readable(it->s, child);
		if (err)
			return err;
		it->addr[it->depth] = child;
		it->pos[it->depth] = 0;
		it->depth++;
	}
}

/* Move to the next leaf position when the current leaf is exhausted. */
static int settle(struct pog_bt_iter *it)
{
	while (it->depth > 0) {
		int d = it->depth - 1;
		struct pog_node_hdr *h = HDR(it->s, it->addr[d]);
		if (it->pos[d] < h->count) {
			if (h->level == 0)
				return 1;
			int err = descend_left(it);
			if (err)
				return err;
			continue;
		}
		it->depth--;
		if (it->depth > 0)
			it->pos[it->depth - 1]++;
	}
	return 0;
}

int pog_bt_seek(struct pog_bt_iter *it, pog_store *s, uint64_t root,
		uint64_t key)
{
	it->s = s;
	it->depth = 0;
	if (!root)
		return 0;
	uint64_t addr = root;
	for (;;) {
		if (it->depth >= POG_BT_MAX_DEPTH)
			return POG_ECORRUPT;
		int err = node_readable(s, addr);
		if (err)
			return err;
		struct pog_node_hdr *h = HDR(s, addr);
		it->addr[it->depth] = addr;
		if (h->level == 0) {
			bool found;
			it->pos[it->depth++] = (uint16_t)leaf_search(h, key, &found);
			break;
		}
		unsigned i = branch_search(h, key);
		it->pos[it->depth++] = (uint16_t)i;
		addr = branches(h)[i].child;
	}
	return settle(it);
}

void pog_bt_cur(const struct pog_bt_iter *it, uint64_t *key, const void **val,
		uint16_t *vlen)
{
	int d = it->depth - 1;
	struct pog_node_hdr *h = HDR(it->s, it->addr[d]);
	struct pog_leaf_entry *e = leaf_entry(h, it->pos[d]);
	if (key)
		memcpy(key, &e->key, sizeof(*key));
	if (val)
		*val = e + 1;
	if (vlen)
		*vlen = e->vlen;
}

int pog_bt_next(struct pog_bt_iter *it)
{
	if (it->depth == 0)
		return 0;
	it->pos[it->depth - 1]++;
	return settle(it);
}

static int walk_rec(pog_store *s, uint64_t addr, int depth,
		    int (*fn)(void *, uint64_t, const struct pog_node_hdr *),
		    void *ctx)
{
	if (depth >= POG_BT_MAX_DEPTH || pog_node_check(s, addr, 0))
		return POG_ECORRUPT;
	struct pog_node_hdr *h = HDR(s, addr);
	int r = fn(ctx, addr, h);
	if (r || h->level == 0)
		return r;
	for (unsigned i = 0; i < h->count; i++) {
		r = walk_rec(s, branches(h)[i].child, depth + 1, fn, ctx);
		if (r)
			return r;
	}
	return 0;
}

int pog_bt_walk(pog_store *s, uint64_t root,
		int (*fn)(void *ctx, uint64_t addr, const struct pog_node_hdr *h),
		void *ctx)
{
	return root ? walk_rec(s, root, 0, fn, ctx) : 0;
}

static int fresh_rec(pog_store *s, uint64_t addr, int depth,
		     int (*fn)(void *ctx, uint64_t key, void *val, uint16_t vlen),
		     void *ctx)
{
	/* Fresh first: that is in DRAM, while the header of a committed
	 * child (most children of a fresh branch) may be a page to fault in. */
	if (depth >= POG_BT_MAX_DEPTH || !pog_node_fresh(s, addr) ||
	    pog_node_check(s, addr, 0))
		return 0;
	struct pog_node_hdr *h = HDR(s, addr);
	for (unsigned i = 0; i < h->count; i++) {
		int r;
		if (h->level) {
			r = fresh_rec(s, branches(h)[i].child, depth + 1, fn, ctx);
		} else {
			struct pog_leaf_entry *e = leaf_entry(h, i);
			r = fn(ctx, e->key, e + 1, e->vlen);
		}
		if (r)
			return r;
	}
	return 0;
}

int pog_bt_foreach_fresh(pog_store *s, uint64_t root,
			 int (*fn)(void *ctx, uint64_t key, void *val,
				   uint16_t vlen),
			 void *ctx)
{
	return root ? fresh_rec(s, root, 0, fn, ctx) : 0;
}

/* ---- diff of two trees ------------------------------------------------------ */

/*
 * Two trees that share nodes (one copied from the other, changed here and
 * there) differ only under the nodes they do not share. Each tree is read
 * as a stream of items in key order, an item being a whole subtree (a
 * child of a branch) or a leaf entry. When both streams start with the
 * same subtree, both skip it; otherwise the side whose head is the larger
 * subtree opens it. Everything before the heads has been consumed on both
 * sides, so equal heads cover the same keys.
 */
struct diff_stream {
	pog_store *s;
	int depth;
	uint64_t addr[POG_BT_MAX_DEPTH];
	uint16_t pos[POG_BT_MAX_DEPTH];
};

static int stream_push(struct diff_stream *st, uint64_t addr)
{
	if (st->depth >= POG_BT_MAX_DEPTH)
		return POG_ECORRUPT;
	int err = node_readable(st->s, addr);
	if (err)
		return err;
	st->addr[st->depth] = addr;
	st->pos[st->depth++] = 0;
	return 0;
}

/* Drop exhausted nodes: 1 while an item is left, 0 at the end. */
static int stream_settle(struct diff_stream *st)
{
	while (st->depth > 0) {
		int d = st->depth - 1;
		if (st->pos[d] < HDR(st->s, st->addr[d])->count)
			return 1;
		if (--st->depth > 0)
			st->pos[st->depth - 1]++;
	}
	return 0;
}

/* The head: its node's level (0: a leaf entry, else a subtree one lower). */
static unsigned stream_level(const struct diff_stream *st)
{
	return HDR(st->s, st->addr[st->depth - 1])->level;
}

static uint64_t stream_child(const struct diff_stream *st)
{
	int d = st->depth - 1;
	return branches(HDR(st->s, st->addr[d]))[st->pos[d]].child;
}

static struct pog_leaf_entry *stream_entry(const struct diff_stream *st)
{
	int d = st->depth - 1;
	return leaf_entry(HDR(st->s, st->addr[d]), st->pos[d]);
}

static int stream_open(struct diff_stream *st)
{
	return stream_push(st, stream_child(st));
}

static void stream_skip(struct diff_stream *st)
{
	st->pos[st->depth - 1]++;
}

static int diff_report(const struct pog_leaf_entry *a,
		       const struct pog_leaf_entry *b, pog_bt_diff_fn fn,
		       void *ctx)
{
	uint64_t key;
	memcpy(&key, a ? &a->key : &b->key, sizeof(key));
	return fn(ctx, key, a ? (const void *)(a + 1) : NULL, a ? a->vlen : 0,
		  b ? (const void *)(b + 1) : NULL, b ? b->vlen : 0);
}

/* Both heads are leaf entries: report what differs, move past it. */
static int diff_entries(struct diff_stream *a, struct diff_stream *b,
			pog_bt_diff_fn fn, void *ctx)
{
	struct pog_leaf_entry *ea = stream_entry(a), *eb = stream_entry(b);
	uint64_t ka, kb;
	memcpy(&ka, &ea->key, sizeof(ka));
	memcpy(&kb, &eb->key, sizeof(kb));
	if (ka < kb) {
		stream_skip(a);
		return diff_report(ea, NULL, fn, ctx);
	}
	if (kb < ka) {
		stream_skip(b);
		return diff_report(NULL, eb, fn, ctx);
	}
	stream_skip(a);
	stream_skip(b);
	if (ea->vlen == eb->vlen && !memcmp(ea + 1, eb + 1, ea->vlen))
		return 0;
	return diff_report(ea, eb, fn, ctx);
}

/* The rest of one side, entry by entry (the other side is exhausted). */
static int diff_tail(struct diff_stream *st, bool left, pog_bt_diff_fn fn,
		     void *ctx)
{
	int r;
	while ((r = stream_settle(st)) == 1) {
		if (stream_level(st)) {
			r = stream_open(st);
		} else {
			struct pog_leaf_entry *e = stream_entry(st);
			stream_skip(st);
			r = diff_report(left ? e : NULL, left ? NULL : e, fn, ctx);
		}
		if (r)
			return r;
	}
	return r;
}

int pog_bt_diff(pog_store *s, uint64_t root_a, uint64_t root_b,
		pog_bt_diff_fn fn, void *ctx)
{
	if (root_a == root_b)
		return 0;
	struct diff_stream a = { .s = s }, b = { .s = s };
	int r = root_a ? stream_push(&a, root_a) : 0;
	if (!r && root_b)
		r = stream_push(&b, root_b);
	while (!r) {
		int ha = stream_settle(&a), hb = stream_settle(&b);
		if (!ha)
			return diff_tail(&b, false, fn, ctx);
		if (!hb)
			return diff_tail(&a, true, fn, ctx);
		unsigned la = stream_level(&a), lb = stream_level(&b);
		if (la && lb && stream_child(&a) == stream_child(&b)) {
			stream_skip(&a);
			stream_skip(&b);
		} else if (la && la >= lb) {
			r = stream_open(&a);
		} else if (lb) {
			r = stream_open(&b);
		} else {
			r = diff_entries(&a, &b, fn, ctx);
		}
	}
	return r;
}

/* ---- compaction ------------------------------------------------------------ */

/*
 * Deleting never merges leaves, and new identities are appended at the
 * end of the object table, so deleting one object in ten leaves every
 * leaf of the table 90% full and gives no block back. Compaction packs
 * the leaves under each lowest branch node tightly again, in key order
 * (entries move left into the space deletions left), and frees the leaves
 * that empty. It copies only where a leaf can be freed: a dense tree is
 * read, not written.
 */

/* Bytes a leaf entry takes, its slot included. */
static size_t entry_bytes(struct pog_node_hdr *h, unsigned i)
{
	return POG_LEAF_ENTRY_SIZE(leaf_entry(h, i)->vlen) + 2u;
}

/* Would packing the leaves under h tightly free at least one of them? */
static bool children_sparse(pog_store *s, struct pog_node_hdr *h)
{
	const size_t room = POG_BLOCK_SIZE - LEAF_BODY;
	unsigned leaves = 1;
	size_t fill = 0;
	for (unsigned i = 0; i < h->count; i++) {
		uint64_t c = branches(h)[i].child;
		if ((c & POG_NODE_SMALL) || pog_node_check(s, c, h->tree))
			return false;
		struct pog_node_hdr *ch = HDR(s, c);
		if (ch->level != 0)
			return false;
		for (unsigned e = 0; e < ch->count; e++) {
			size_t sz = entry_bytes(ch, e);
			if (fill + sz > room) {
				leaves++;
				fill = 0;
			}
			fill += sz;
		}
	}
	return leaves < h->count;
}

/* Move entries from the front of b to the end of a while they fit. */
static void leaf_shift_left(struct pog_node_hdr *a, struct pog_node_hdr *b)
{
	unsigned moved = 0;
	leaf_compact(a, POG_BLOCK_SIZE, a->count);
	while (moved < b->count && leaf_free(a) >= entry_bytes(b, moved)) {
		struct pog_leaf_entry *e = leaf_entry(b, moved);
		leaf_insert_at(a, a->count, e->key, e + 1, e->vlen);
		moved++;
	}
	if (!moved)
		return;
	/* drop b's first `moved` entries: rewrite b without them */
	char tmp[POG_BLOCK_SIZE];
	struct pog_node_hdr *t = (struct pog_node_hdr *)tmp;
	node_init(t, b->tree, 0, POG_BLOCK_SIZE);
	for (unsigned i = moved; i < b->count; i++) {
		struct pog_leaf_entry *e = leaf_entry(b, i);
		leaf_insert_at(t, t->count, e->key, e + 1, e->vlen);
	}
	memcpy(b, tmp, POG_BLOCK_SIZE);
}

/* Pack the leaves under the branch node at *addr (fresh). */
static int compact_leaves(pog_store *s, uint64_t addr,
			  bool (*room)(pog_store *s), uint64_t *freed)
{
	struct pog_node_hdr *h = HDR(s, addr);
	unsigned i = 0;
	while (i + 1 < h->count) {
		struct pog_branch *b = branches(h);
		struct pog_node_hdr *left = HDR(s, b[i].child);
		struct pog_node_hdr *right = HDR(s, b[i + 1].child);
		size_t used = LEAF_BODY;
		for (unsigned e = 0; e < left->count; e++)
			used += entry_bytes(left, e);
		if (!right->count || POG_BLOCK_SIZE - used < entry_bytes(right, 0)) {
			i++;
			continue;
		}
		if (!room(s))
			return -ENOSPC;
		int err = node_writable(s, &b[i].child);
		if (!err)
			err = node_writable(s, &b[i + 1].child);
		if (err)
			return err;
		left = HDR(s, b[i].child);
		right = HDR(s, b[i + 1].child);
		leaf_shift_left(left, right);
		if (counted(s, h)) {
			uint64_t *c = branch_counts(h);
			c[i] = left->count;
			c[i + 1] = right->count;
			if (right->count == 0)
				memmove(c + i + 1, c + i + 2,
					(h->count - i - 2u) * sizeof(*c));
		}
		if (right->count == 0) {
			pog_node_release(s, b[i + 1].child);
			memmove(b + i + 1, b + i + 2, (h->count - i - 2u) * sizeof(*b));
			h->count--;
			(*freed)++;
		} else {
			b[i + 1].key = leaf_key(right, 0);
			i++;
		}
	}
	return 0;
}

static int compact_rec(pog_store *s, uint64_t *addr, int depth,
		       bool (*room)(pog_store *s), uint64_t *freed)
{
	if (depth >= POG_BT_MAX_DEPTH || pog_node_check(s, *addr, 0))
		return POG_ECORRUPT;
	struct pog_node_hdr *h = HDR(s, *addr);
	if (h->level == 0)
		return 0;
	if (h->level == 1) {
		if (!children_sparse(s, h))
			return 0;
		if (!room(s))
			return -ENOSPC;
		int err = node_writable(s, addr);
		return err ? err : compact_leaves(s, *addr, room, freed);
	}
	for (unsigned i = 0; i < h->count; i++) {
		uint64_t child = branches(h)[i].child;
		int err = compact_rec(s, &child, depth + 1, room, freed);
		if (child != branches(h)[i].child) {
			/* the child was copied: so is this node (the room
			 * check covered the whole path) */
			int werr = node_writable(s, addr);
			if (werr)
				return werr;
			h = HDR(s, *addr);
			branches(h)[i].child = child;
		}
		if (err)
			return err;
	}
	return 0;
}

int pog_bt_compact(pog_store *s, uint64_t *root, bool (*room)(pog_store *s),
		   uint64_t *freed)
{
	*freed = 0;
	return *root ? compact_rec(s, root, 0, room, freed) : 0;
}

/* ---- ranks (counted trees: lists) ---------------------------------------- */

int pog_bt_rank(pog_store *s, uint64_t root, uint64_t key, uint64_t *rank)
{
	*rank = 0;
	uint64_t addr = root;
	for (int depth = 0; addr; depth++) {
		if (depth >= POG_BT_MAX_DEPTH)
			return POG_ECORRUPT;
		int err = node_readable(s, addr);
		if (err)
			return err;
		struct pog_node_hdr *h = HDR(s, addr);
		if (h->level == 0) {
			bool found;
			*rank += leaf_search(h, key, &found);
			return 0;
		}
		if (!counted(s, h))
			return -EINVAL;
		unsigned i = branch_search(h, key);
		for (unsigned j = 0; j < i; j++)
			*rank += branch_counts(h)[j];
		addr = branches(h)[i].child;
	}
	return 0;
}

int pog_bt_select(struct pog_bt_iter *it, pog_store *s, uint64_t root,
		  uint64_t rank)
{
	it->s = s;
	it->depth = 0;
	uint64_t addr = root;
	while (addr) {
		if (it->depth >= POG_BT_MAX_DEPTH)
			return POG_ECORRUPT;
		int err = node_readable(s, addr);
		if (err)
			return err;
		struct pog_node_hdr *h = HDR(s, addr);
		it->addr[it->depth] = addr;
		if (h->level == 0) {
			if (rank >= h->count) {
				it->depth = 0;
				return 0;
			}
			it->pos[it->depth++] = (uint16_t)rank;
			return 1;
		}
		if (!counted(s, h))
			return -EINVAL;
		unsigned j = 0;
		while (j < h->count && rank >= branch_counts(h)[j])
			rank -= branch_counts(h)[j++];
		if (j == h->count) {
			it->depth = 0;
			return 0;
		}
		it->pos[it->depth++] = (uint16_t)j;
		addr = branches(h)[j].child;
	}
	return 0;
}

int pog_bt_count(pog_store *s, uint64_t root, uint64_t *count)
{
	*count = 0;
	if (!root)
		return 0;
	int err = node_readable(s, root);
	if (err)
		return err;
	struct pog_node_hdr *h = HDR(s, root);
	if (h->level && !counted(s, h))
		return -EINVAL;
	*count = node_total(s, root);
	return 0;
}

static int counts_rec(pog_store *s, uint64_t addr, int depth, uint64_t *total)
{
	if (depth >= POG_BT_MAX_DEPTH || pog_node_check(s, addr, POG_TREE_LIST))
		return POG_ECORRUPT;
	struct pog_node_hdr *h = HDR(s, addr);
	if (h->level == 0) {
		*total = h->count;
		return 0;
	}
	if (!counted(s, h))
		return -EINVAL;
	*total = 0;
	for (unsigned i = 0; i < h->count; i++) {
		uint64_t sub;
		int err = counts_rec(s, branches(h)[i].child, depth + 1, &sub);
		if (err)
			return err;
		if (sub != branch_counts(h)[i])
			return POG_ECORRUPT;
		*total += sub;
	}
	return 0;
}

int pog_bt_check_counts(pog_store *s, uint64_t root)
{
	uint64_t total;
	return root ? counts_rec(s, root, 0, &total) : 0;
}

/* The values of fresh leaves, in key order; fn may shorten one (the
 * bytes it leaves go at the leaf's next compaction). */
static int trim_rec(pog_store *s, uint64_t addr, int depth,
		    int (*fn)(void *ctx, uint64_t key, void *val, uint16_t *vlen),
		    void *ctx)
{
	/* Fresh first: that is in DRAM, while the header of a committed
	 * child (most children of a fresh branch) may be a page to fault in. */
	if (depth >= POG_BT_MAX_DEPTH || !pog_node_fresh(s, addr) ||
	    pog_node_check(s, addr, 0))
		return 0;
	struct pog_node_hdr *h = HDR(s, addr);
	for (unsigned i = 0; i < h->count; i++) {
		int r;
		if (h->level) {
			r = trim_rec(s, branches(h)[i].child, depth + 1, fn, ctx);
		} else {
			struct pog_leaf_entry *e = leaf_entry(h, i);
			uint16_t vlen = e->vlen;
			r = fn(ctx, e->key, e + 1, &vlen);
			if (vlen < e->vlen)
				e->vlen = vlen;
		}
		if (r)
			return r;
	}
	return 0;
}

int pog_bt_trim_fresh(pog_store *s, uint64_t root,
		      int (*fn)(void *ctx, uint64_t key, void *val,
				uint16_t *vlen),
		      void *ctx)
{
	return root ? trim_rec(s, root, 0, fn, ctx) : 0;
}
