/* fsck.c - check (and repair) the committed state of a store. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

struct fsck {
	pog_store *s;
	pog_fsck_fn fn;
	void *ctx;
	struct pog_fsck_result res;
	uint64_t *claimed;          /* bitmap: block already seen */
	uint64_t *page_bits;        /* bitmap: block seen as a data page */
	struct pog_map64 slots;     /* small node addresses seen */
	struct pog_map64 slot_blocks; /* block of small nodes -> class + 1 */
	struct pog_map64 owners;    /* ino -> owning entries seen */
	struct pog_map64 subdirs;   /* dir ino -> child dirs */
	struct pog_map64 reach;     /* reachable inos */
	struct pog_vec dangling;    /* (dir, key) pairs to repair */
	struct pog_vec bad_nlink;   /* inos with a wrong nlink */
	uint64_t cur_ino;
};

static void report(struct fsck *f, int sev, const char *id, uint64_t ino,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(struct fsck *f, int sev, const char *id, uint64_t ino,
		   const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (sev == POG_FSCK_ERROR)
		f->res.errors++;
	else if (sev == POG_FSCK_WARN)
		f->res.warnings++;
	if (f->fn)
		f->fn(f->ctx, sev, id, ino, text);
}

static int claim(struct fsck *f, uint64_t bno, const char *what, bool page)
{
	if (!pog_bno_valid(f->s, bno)) {
		report(f, POG_FSCK_ERROR, "bad-block", f->cur_ino,
		       "%s points at block %" PRIu64 " outside the pool", what, bno);
		return 1;
	}
	if (page && pog_bit(f->page_bits, bno))
		return 0; /* a shared (deduplicated) page */
	if (page) {
		f->page_bits[bno / 64] |= 1ULL << (bno % 64);
		f->res.pages_unique++;
	}
	if (pog_bit(f->claimed, bno)) {
		report(f, POG_FSCK_ERROR, "block-shared", f->cur_ino,
		       "block %" PRIu64 " (%s) is used twice", bno, what);
		return 1;
	}
	f->claimed[bno / 64] |= 1ULL << (bno % 64);
	f->res.blocks_used++;
	struct pog_seg *g = &f->s->env->segs[bno / POG_SEG_BLOCKS];
	if (!pog_bit(g->used, bno % POG_SEG_BLOCKS))
		report(f, POG_FSCK_ERROR, "block-marked-free", f->cur_ino,
		       "block %" PRIu64 " is in use but marked free", bno);
	return 0;
}

/* Small nodes share a block: the block is claimed once (for one size of
 * slot), each slot once. */
static int claim_node(struct fsck *f, uint64_t addr)
{
	if (!(addr & POG_NODE_SMALL))
		return claim(f, addr, "tree node", false);
	uint64_t bno = pog_node_bno(addr);
	uint64_t *seen = pog_map64_get(&f->slots, addr);
	uint64_t *cls = pog_map64_get(&f->slot_blocks, bno);
	if (!seen || !cls)
		return 1; /* out of memory: unchecked, not wrong */
	if (*seen) {
		report(f, POG_FSCK_ERROR, "block-shared", f->cur_ino,
		       "small node %u of block %" PRIu64 " is used twice",
		       pog_node_slot(addr), bno);
		return 1;
	}
	*seen = 1;
	if (!*cls) {
		*cls = pog_node_class(addr) + 1;
		return claim(f, bno, "block of small tree nodes", false);
	}
	if (*cls != pog_node_class(addr) + 1) {
		report(f, POG_FSCK_ERROR, "block-shared", f->cur_ino,
		       "block %" PRIu64 " holds small nodes of two sizes", bno);
		return 1;
	}
	return 0;
}

static int check_node(void *c, uint64_t addr, const struct pog_node_hdr *h)
{
	struct fsck *f = c;
	if (claim_node(f, addr))
		return 0;
	if (pog_node_crc(h, pog_node_size(addr)) != h->crc)
		report(f, POG_FSCK_ERROR, "bad-node-crc", f->cur_ino,
		       "tree node %" PRIu64 "%s fails its checksum",
		       pog_node_bno(addr),
		       addr & POG_NODE_SMALL ? " (a small node)" : "");
	return 0;
}

static int check_page(void *c, uint64_t bno, int is_node)
{
	struct fsck *f = c;
	if (is_node)
		return 0;
	f->res.pages++;
	claim(f, bno, "page", true);
	return 0;
}

/* " at PATH" for messages (empty when it has no owning place). */
static const char *where(struct fsck *f, uint64_t ino, char *buf, size_t size)
{
	char path[3000];
	ssize_t n = pog_path_locked(f->s, &f->s->env->committed, ino, path,
				    sizeof(path) - 1);
	if (n < 0 || (size_t)n >= sizeof(path) - 1) {
		buf[0] = '\0';
		return buf;
	}
	path[n] = '\0';
	snprintf(buf, size, " at /%s", path);
	return buf;
}

static void check_pages(struct fsck *f, uint64_t ino, const struct pog_inode *in)
{
	char at[3100];
	uint64_t npages = 0;
	if (in->flags & POG_INODE_INLINE) {
		if (pog_crc32(in->inline_data, in->size) != in->direct_crc)
			report(f, POG_FSCK_ERROR, "bad-inline-crc", ino,
			       "inline bytes fail their checksum%s",
			       where(f, ino, at, sizeof(at)));
	} else if (in->flags & POG_INODE_DIRECT) {
		const void *d;
		npages = 1;
		if (pog_page_read(f->s, in->content, in->direct_crc, &d))
			report(f, POG_FSCK_ERROR, "bad-page-crc", ino,
			       "page 0 (block %" PRIu64 ") fails its checksum%s",
			       in->content, where(f, ino, at, sizeof(at)));
	} else {
		struct pog_bt_iter it;
		int r = pog_bt_seek(&it, f->s, in->content, 0);
		while (r > 0) {
			uint64_t page;
			const void *val;
			struct pog_page_ref ref;
			const void *d;
			pog_bt_cur(&it, &page, &val, NULL);
			memcpy(&ref, val, sizeof(ref));
			npages++;
			if (page * POG_BLOCK_SIZE >= in->size)
				report(f, POG_FSCK_ERROR, "page-past-eof", ino,
				       "page %" PRIu64 " lies past the size %" PRIu64,
				       page, in->size);
			if (pog_page_read(f->s, ref.bno, ref.crc, &d))
				report(f, POG_FSCK_ERROR, "bad-page-crc", ino,
				       "page %" PRIu64 " (block %" PRIu64
				       ") fails its checksum%s", page, ref.bno,
				       where(f, ino, at, sizeof(at)));
			r = pog_bt_next(&it);
		}
		if (r < 0)
			report(f, POG_FSCK_ERROR, "bad-tree", ino,
			       "page table is damaged");
	}
	if (npages != in->blocks)
		report(f, POG_FSCK_WARN, "bad-blocks", ino,
		       "holds %" PRIu64 " pages but records %" PRIu64, npages,
		       in->blocks);
}

/* A committed list: keys in order below the temporaries, no carried
 * names (format 2: keys 0..n-1), and counts that add up (list.c). */
static void check_list_entry(struct fsck *f, uint64_t ino, uint64_t key,
			     uint16_t vlen, uint64_t n)
{
	if (!f->s->env->list_counts) {
		if (key != n - 1)
			report(f, POG_FSCK_ERROR, "list-gap", ino,
			       "list index %" PRIu64 " out of order", key);
		return;
	}
	if (key >= POG_LIST_NAMED)
		report(f, POG_FSCK_ERROR, "list-temporary", ino,
		       "committed list holds a temporary entry (key %016" PRIx64
		       ")", key);
	else if (vlen != 8)
		report(f, POG_FSCK_ERROR, "list-name", ino,
		       "committed list entry %" PRIu64 " carries a name", n - 1);
}

static void check_dir(struct fsck *f, uint64_t ino, const struct pog_inode *in)
{
	uint64_t n = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, f->s, in->content, 0);
	while (r > 0) {
		uint64_t key, child;
		const void *val;
		const struct pog_inode *c;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		memcpy(&child, val, sizeof(child));
		n++;
		if (in->type == POG_LIST)
			check_list_entry(f, ino, key, vlen, n);
		if (pog_inode_get(f->s, &f->s->env->committed, child, &c)) {
			report(f, POG_FSCK_ERROR, "dangling-entry", ino,
			       "entry points at missing object %" PRIu64, child);
			pog_vec_push(&f->dangling, ino);
			pog_vec_push(&f->dangling, key);
		} else {
			uint64_t *o = pog_map64_get(&f->owners, child);
			if (o)
				(*o)++;
			if (c->type == POG_MAP || c->type == POG_LIST) {
				uint64_t *sd = pog_map64_get(&f->subdirs, ino);
				if (sd)
					(*sd)++;
			}
		}
		r = pog_bt_next(&it);
	}
	if (r < 0)
		report(f, POG_FSCK_ERROR, "bad-tree", ino, "entry tree is damaged");
	else if (in->type == POG_LIST && f->s->env->list_counts &&
		 pog_bt_check_counts(f->s, in->content))
		report(f, POG_FSCK_ERROR, "list-counts", ino,
		       "entry counts of the list's tree do not add up");
	if (n != in->entries)
		report(f, POG_FSCK_ERROR, "bad-entries", ino,
		       "has %" PRIu64 " entries but records %" PRIu64, n,
		       in->entries);
}

static bool type_ok(const struct pog_inode *in)
{
	switch (in->type) {
	case POG_MAP:
	case POG_LIST:
		return S_ISDIR(in->mode);
	case POG_STRING:
		return S_ISREG(in->mode);
	case POG_REF:
	case POG_SYMLINK:
		return S_ISLNK(in->mode);
	case POG_SPECIAL:
		return S_ISFIFO(in->mode) || S_ISCHR(in->mode) ||
		       S_ISBLK(in->mode) || S_ISSOCK(in->mode);
	case POG_INT:
	case POG_FLOAT:
	case POG_BOOL:
	case POG_NULL:
		return S_ISREG(in->mode);
	default:
		return false;
	}
}

static void check_object(struct fsck *f, uint64_t ino, const struct pog_inode *in)
{
	f->cur_ino = ino;
	f->res.objects++;
	if (!type_ok(in)) {
		report(f, POG_FSCK_ERROR, "bad-type", ino,
		       "type %u does not match mode %o", in->type, in->mode);
		return;
	}
	struct fsck *c = f;
	if (in->type == POG_MAP || in->type == POG_LIST) {
		pog_bt_walk(f->s, in->content, check_node, c);
		check_dir(f, ino, in);
	} else if (in->type == POG_STRING || in->type == POG_SYMLINK) {
		if (!(in->flags & POG_INODE_DIRECT))
			pog_bt_walk(f->s, in->content, check_node, c);
		pog_object_blocks(f->s, in, check_page, c);
		check_pages(f, ino, in);
	} else if (pog_type_is_scalar(in->type)) {
		uint64_t bits;
		if (pog_crc32(in->inline_data, in->size) != in->direct_crc)
			report(f, POG_FSCK_ERROR, "bad-inline-crc", ino,
			       "scalar text fails its checksum");
		else if (in->size && pog_scalar_parse(in->type,
				(const char *)in->inline_data, in->size, &bits))
			report(f, POG_FSCK_ERROR, "bad-scalar", ino,
			       "%s text does not parse", pog_type_name(in->type));
		else if (!in->size && in->nlink)
			report(f, POG_FSCK_ERROR, "empty-scalar", ino,
			       "an empty %s has no value", pog_type_name(in->type));
	} else if (in->type == POG_REF) {
		const struct pog_inode *t;
		if (pog_inode_get(f->s, &f->s->env->committed, in->content, &t))
			report(f, POG_FSCK_ERROR, "dangling-ref", ino,
			       "ref points at missing object %" PRIu64, in->content);
	}
	pog_bt_walk(f->s, in->xattrs, check_node, c);
}

static void check_links(struct fsck *f)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, f->s, f->s->env->committed.obj_root, 0);
	while (r > 0) {
		uint64_t ino;
		const void *val;
		pog_bt_cur(&it, &ino, &val, NULL);
		const struct pog_inode *in = val;
		bool reachable = pog_map64_find(&f->reach, ino) != NULL;
		if (reachable)
			f->res.reachable++;
		else
			f->res.garbage_objects++;
		uint64_t *o = pog_map64_find(&f->owners, ino);
		uint64_t owners = o ? *o : 0;
		uint64_t want;
		if (in->type == POG_MAP || in->type == POG_LIST) {
			uint64_t *sd = pog_map64_find(&f->subdirs, ino);
			want = 2 + (sd ? *sd : 0);
		} else {
			want = owners;
		}
		if (in->nlink != want && (reachable || owners)) {
			report(f, POG_FSCK_ERROR, "bad-nlink", ino,
			       "link count %u, expected %" PRIu64, in->nlink, want);
			pog_vec_push(&f->bad_nlink, ino);
			pog_vec_push(&f->bad_nlink, want);
		}
		if (reachable && owners > 1 &&
		    (in->type == POG_MAP || in->type == POG_LIST))
			report(f, POG_FSCK_ERROR, "dir-hardlink", ino,
			       "directory has %" PRIu64 " owning entries", owners);
		r = pog_bt_next(&it);
	}
	if (f->res.garbage_objects)
		report(f, POG_FSCK_INFO, "garbage", 0,
		       "%" PRIu64 " unreachable objects (collected by gc)",
		       f->res.garbage_objects);
}

/* Blocks in use that the last commit does not hold: garbage, unless a
 * retained commit (history) holds them (*history counts those). */
static uint64_t free_garbage_blocks(struct fsck *f, uint64_t *history)
{
	uint64_t unclaimed = 0;
	uint64_t *hist = calloc(f->s->env->nsegs * POG_WORDS_PER_SEG + 1, sizeof(uint64_t));
	if (hist && pog_mark_history(f->s, hist)) {
		free(hist);
		hist = NULL;
	}
	*history = 0;
	for (uint64_t i = 0; i < f->s->env->nsegs; i++)
		for (unsigned b = 1; b < POG_SEG_BLOCKS; b++) {
			uint64_t bno = i * POG_SEG_BLOCKS + b;
			if (!pog_bit(f->s->env->segs[i].used, b) || pog_bit(f->claimed, bno))
				continue;
			if (hist && pog_bit(hist, bno))
				(*history)++;
			else
				unclaimed++;
		}
	free(hist);
	return unclaimed;
}

/* Room for one more repair: repairs keep the size, so they may use the
 * reserve; when a full pool runs down to the floor, what is repaired so
 * far is committed (giving back the nodes it replaced) first. */
static int repair_room(struct fsck *f, uint64_t *batch)
{
	int err = pog_space_check(f->s, POG_SPACE_SHRINK, POG_OP_NEED);
	if (err != -ENOSPC || !*batch)
		return err;
	*batch = 0;
	err = pog_commit_locked(f->s, "fsck repair", NULL);
	return err ? err : pog_space_check(f->s, POG_SPACE_SHRINK, POG_OP_NEED);
}

static int repair(struct fsck *f)
{
	pog_store *s = f->s;
	int err = 0;
	uint64_t batch = 0;
	for (size_t i = 0; !err && i + 1 < f->bad_nlink.n; i += 2, batch++) {
		void *val;
		err = repair_room(f, &batch);
		if (err)
			break;
		err = pog_bt_get_mut(s, &s->staged.obj_root, f->bad_nlink.v[i],
				     &val, NULL);
		if (!err) {
			((struct pog_inode *)val)->nlink = (uint32_t)f->bad_nlink.v[i + 1];
			f->res.repaired++;
		}
	}
	for (size_t i = 0; !err && i + 1 < f->dangling.n; i += 2, batch++) {
		uint64_t dir = f->dangling.v[i], key = f->dangling.v[i + 1];
		void *val;
		err = repair_room(f, &batch);
		if (err)
			break;
		err = pog_bt_get_mut(s, &s->staged.obj_root, dir, &val, NULL);
		if (!err) {
			struct pog_inode in;
			memcpy(&in, val, sizeof(in));
			if (pog_bt_del(s, &in.content, key) == 0) {
				in.entries--;
				f->res.repaired++;
			}
			err = pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root,
					 dir, &in, sizeof(in));
		}
	}
	if (!err && batch && f->res.repaired)
		err = pog_commit_locked(s, "fsck repair", NULL);
	return err;
}

int pog_fsck(pog_store *s, unsigned flags, pog_fsck_fn fn, void *ctx,
	     struct pog_fsck_result *out)
{
	int err = (flags & POG_FSCK_REPAIR) ? pog_wrlock(s) : pog_rdlock(s);
	if (err)
		return err;
	struct fsck f = {.s = s, .fn = fn, .ctx = ctx};
	f.claimed = calloc(s->env->nsegs * POG_WORDS_PER_SEG + 1, sizeof(uint64_t));
	f.page_bits = calloc(s->env->nsegs * POG_WORDS_PER_SEG + 1, sizeof(uint64_t));
	if (!f.claimed || !f.page_bits) {
		free(f.claimed);
		free(f.page_bits);
		pog_unlock(s);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < s->env->nsegs; i++)
		f.claimed[i * POG_WORDS_PER_SEG] |= 1;
	claim(&f, s->env->commit_bno, "commit record", false);
	uint64_t before = pog_commit_before(s);
	if (before)
		claim(&f, before, "commit record", false);
	pog_bt_walk(s, s->env->committed.log_root, check_node, &f);
	pog_bt_walk(s, s->env->committed.dedup_root, check_node, &f);
	err = pog_bt_walk(s, s->env->committed.obj_root, check_node, &f);
	if (err)
		report(&f, POG_FSCK_ERROR, "bad-tree", 0, "object table is damaged");
	struct pog_bt_iter it;
	int r = err ? 0 : pog_bt_seek(&it, s, s->env->committed.obj_root, 0);
	while (r > 0) {
		uint64_t ino;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &ino, &val, &vlen);
		if (vlen < POG_INODE_FIXED || vlen != pog_inode_len(val))
			report(&f, POG_FSCK_ERROR, "bad-inode", ino, "record size %u", vlen);
		else
			check_object(&f, ino, val);
		pog_progress_note("objects", f.res.objects, s->env->committed.nobjects);
		r = pog_bt_next(&it);
	}
	f.cur_ino = 0;
	const struct pog_inode *root;
	if (pog_inode_get(s, &s->env->committed, POG_ROOT_INO, &root) ||
	    root->type != POG_MAP)
		report(&f, POG_FSCK_ERROR, "no-root", POG_ROOT_INO,
		       "the root map is missing");
	err = pog_reachable(s, &s->env->committed, false, true, &f.reach);
	if (!err)
		check_links(&f);
	uint64_t history, unclaimed = free_garbage_blocks(&f, &history);
	if (history)
		report(&f, POG_FSCK_INFO, "history-blocks", 0,
		       "%" PRIu64 " blocks held by retained commits only "
		       "(.pog/history)", history);
	if (unclaimed)
		report(&f, POG_FSCK_INFO, "garbage-blocks", 0,
		       "%" PRIu64 " blocks held by nothing (freed by gc)", unclaimed);
	if (!err && (flags & POG_FSCK_REPAIR) && f.res.errors)
		err = repair(&f);
	if (out)
		*out = f.res;
	uint64_t left = f.res.errors > f.res.repaired ? f.res.errors - f.res.repaired : 0;
	free(f.claimed);
	free(f.page_bits);
	pog_map64_release(&f.slots);
	pog_map64_release(&f.slot_blocks);
	pog_map64_release(&f.owners);
	pog_map64_release(&f.subdirs);
	pog_map64_release(&f.reach);
	pog_vec_release(&f.dangling);
	pog_vec_release(&f.bad_nlink);
	pog_unlock(s);
	if (err)
		return err;
	return left ? 1 : 0;
}
