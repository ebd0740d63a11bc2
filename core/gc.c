/* gc.c - garbage collection by reachability, of objects and of blocks. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "store_int.h"

/*
 * Two levels. Objects: everything the root (or a pin) reaches through map
 * and list entries and refs lives; the rest leaves the object table in a
 * commit of its own. Blocks: everything the last commit reaches is in use,
 * everything else is free. Both walks cost what is live, not the pool's
 * size, and neither writes anything a crash could leave half-done: a crash
 * before the commit point keeps the old commit, and the free-space bitmap
 * is only trusted after a clean close.
 */

struct mark_ctx {
	pog_store *s;
	uint64_t count;
};

static int mark_block(void *c, uint64_t bno, int is_node)
{
	struct mark_ctx *m = c;
	if (is_node ? !pog_node_valid(m->s, bno) : !pog_bno_valid(m->s, bno))
		return POG_ECORRUPT;
	pog_mark_used(m->s, is_node ? pog_node_bno(bno) : bno);
	m->count++;
	return 0;
}

static int mark_node(void *c, uint64_t bno, const struct pog_node_hdr *h)
{
	(void)h;
	return mark_block(c, bno, 1);
}

/* The pages the page index names are in use too (with index_pages):
 * an indexed page is freed only after GC drops its entry, so the index
 * never names a free block. */
static int mark_index_page(void *c, uint64_t key, void *val, uint16_t vlen)
{
	(void)key;
	uint64_t bno;
	if (vlen != sizeof(bno))
		return POG_ECORRUPT;
	memcpy(&bno, val, sizeof(bno));
	return mark_block(c, bno, 0);
}

static int mark_index_pages(pog_store *s, struct mark_ctx *m)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, s->committed.dedup_root, 0);
	while (r > 0) {
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, NULL, &val, &vlen);
		r = mark_index_page(m, 0, (void *)val, vlen);
		if (r)
			break;
		r = pog_bt_next(&it);
	}
	return r;
}

/* Recompute the in-use bitmap from the committed state alone. */
int pog_mark_committed(pog_store *s, bool index_pages)
{
	s->blocks_used = 0;
	s->small_garbage = 0;
	pog_small_forget(s);
	for (uint64_t i = 0; i < s->nsegs; i++) {
		struct pog_seg *g = &s->segs[i];
		memset(g->used, 0, sizeof(g->used));
		g->used[0] = 1;
		g->nused = 1;
		s->blocks_used++;
	}
	struct mark_ctx m = {s, 0};
	int err = mark_block(&m, s->commit_bno, 0);
	if (!err)
		err = pog_bt_walk(s, s->committed.log_root, mark_node, &m);
	if (!err)
		err = pog_bt_walk(s, s->committed.dedup_root, mark_node, &m);
	if (!err && index_pages)
		err = mark_index_pages(s, &m);
	if (!err)
		err = pog_bt_walk(s, s->committed.obj_root, mark_node, &m);
	struct pog_bt_iter it;
	int r = err ? err : pog_bt_seek(&it, s, s->committed.obj_root, 0);
	while (r > 0) {
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, NULL, &val, &vlen);
		if (vlen < POG_INODE_FIXED || vlen != pog_inode_len(val))
			return POG_ECORRUPT;
		r = pog_object_blocks(s, val, mark_block, &m);
		if (r)
			break;
		r = pog_bt_next(&it);
	}
	return r < 0 ? r : 0;
}

struct reach_ctx {
	struct pog_map64 seen;
	struct pog_vec stack;
};

static int reach_push(void *c, uint64_t ino, int owned)
{
	struct reach_ctx *r = c;
	(void)owned;
	if (pog_map64_find(&r->seen, ino))
		return 0;
	uint64_t *v = pog_map64_get(&r->seen, ino);
	if (!v || pog_vec_push(&r->stack, ino))
		return -ENOMEM;
	*v = 1;
	return 0;
}

int pog_reachable(pog_store *s, const struct pog_state *st, bool pins,
		  bool tolerant, struct pog_map64 *seen)
{
	struct reach_ctx r = {.seen = *seen};
	int err = reach_push(&r, POG_ROOT_INO, 1);
	if (pins) {
		pthread_mutex_lock(&s->pin_lock);
		pog_map64_foreach(&s->pins, i) {
			if (!err)
				err = reach_push(&r, s->pins.keys[i], 1);
		}
		pthread_mutex_unlock(&s->pin_lock);
	}
	while (!err && r.stack.n) {
		uint64_t ino = r.stack.v[--r.stack.n];
		pog_progress_note("objects", r.seen.n - r.stack.n, st->nobjects);
		const struct pog_inode *in;
		err = pog_inode_get(s, st, ino, &in);
		if (!err)
			err = pog_object_edges(s, in, reach_push, &r);
		/* A pin or a ref of an object already gone; with tolerant,
		 * damage (fsck reports it elsewhere) ends only that branch. */
		if (err == -ENOENT || (tolerant && err != -ENOMEM))
			err = 0;
	}
	*seen = r.seen;
	pog_vec_release(&r.stack);
	return err;
}

/* Objects in the table that are not reachable. */
static int unreachable_objects(pog_store *s, const struct pog_map64 *seen,
			       struct pog_vec *out)
{
	struct pog_bt_iter it;
	int ret = pog_bt_seek(&it, s, s->staged.obj_root, 0);
	while (ret > 0) {
		uint64_t ino;
		pog_bt_cur(&it, &ino, NULL, NULL);
		if (!pog_map64_find(seen, ino) && pog_vec_push(out, ino))
			return -ENOMEM;
		ret = pog_bt_next(&it);
	}
	return ret;
}

/*
 * Room for one more step of a GC batch and the commit that ends the
 * batch. GC runs in the reserve: the floor every operation leaves free
 * covers its first step, and each commit gives back the nodes its batch
 * replaced and the blocks of the objects it removed.
 */
static bool gc_room(pog_store *s)
{
	return pog_reserve(s, POG_COMMIT_NEED + POG_GC_STEP_NEED) == 0;
}

/* Commit a batch of GC's changes (nothing when the batch is empty). */
static int gc_commit(pog_store *s, uint64_t *batch, const char *what)
{
	if (!*batch)
		return 0;
	char msg[80];
	snprintf(msg, sizeof(msg), "gc: %" PRIu64 " %s", *batch, what);
	*batch = 0;
	return pog_commit_locked(s, msg, NULL);
}

/* Make room for one more step of the batch, committing it first when the
 * free space ran down to what a commit needs. */
static int gc_step_room(pog_store *s, uint64_t *batch)
{
	if (gc_room(s))
		return 0;
	int err = gc_commit(s, batch, "unreachable objects");
	return err ? err : gc_room(s) ? 0 : -ENOSPC;
}

struct survivors {
	pog_store *s;
	const struct pog_map64 *seen;
	struct pog_vec inos;
};

static int survivor(void *c, uint64_t ino, int owned)
{
	struct survivors *v = c;
	if (!owned || !pog_map64_find(v->seen, ino))
		return 0;
	return pog_vec_push(&v->inos, ino);
}

/* A dead map or list may hold names of objects that live on (hard links
 * named elsewhere too, objects a ref reaches): they lose that name. */
static int unlink_survivors(pog_store *s, uint64_t dir,
			    const struct pog_map64 *seen, uint64_t *batch)
{
	const struct pog_inode *in;
	int err = pog_inode_get(s, &s->staged, dir, &in);
	if (err || (in->type != POG_MAP && in->type != POG_LIST))
		return err;
	struct survivors v = { .s = s, .seen = seen };
	err = pog_object_edges(s, in, survivor, &v);
	for (size_t i = 0; !err && i < v.inos.n; i++) {
		err = gc_step_room(s, batch);
		if (!err)
			err = pog_child_orphaned(s, v.inos.v[i], dir);
		if (!err)
			++*batch;
	}
	pog_vec_release(&v.inos);
	return err;
}

/* Remove the unreachable objects, committing whenever the free space runs
 * down to what a commit needs, so that any number of them can go from a
 * full pool. */
static int destroy_dead(pog_store *s, const struct pog_vec *dead,
			const struct pog_map64 *seen, uint64_t *damaged)
{
	uint64_t batch = 0;
	int err = 0;
	for (size_t i = 0; !err && i < dead->n; i++) {
		err = unlink_survivors(s, dead->v[i], seen, &batch);
		if (!err)
			err = gc_step_room(s, &batch);
		if (err)
			break;
		err = pog_object_destroy(s, dead->v[i]);
		if (err == POG_ECORRUPT) { /* kept for fsck; collect the rest */
			(*damaged)++;
			err = 0;
		} else if (!err) {
			batch++;
		}
	}
	if (!err)
		err = gc_commit(s, &batch, "unreachable objects");
	return err;
}

/* Drop the page-index entries of pages no object holds, in as many
 * commits as the free space asks for. */
static int prune_index(pog_store *s)
{
	for (;;) {
		/* What objects hold; then the index forgets the other pages. */
		int err = pog_mark_committed(s, false);
		if (err)
			return err;
		uint64_t batch = pog_dedup_prune(s);
		if (!batch)
			return 0;
		err = gc_commit(s, &batch, "page index entries");
		if (err)
			return err;
	}
}

/* Pack the object table's leaves where deletions left them sparse (new
 * identities are appended, so nothing else refills them), in as many
 * commits as the free space asks for. */
static int compact_objects(pog_store *s)
{
	for (;;) {
		uint64_t freed = 0;
		int err = pog_bt_compact(s, &s->staged.obj_root, gc_room, &freed);
		if (err && err != -ENOSPC)
			return err;
		bool more = err == -ENOSPC;
		if (freed) {
			err = gc_commit(s, &freed, "object table leaves packed");
			if (err)
				return err;
		} else {
			pog_abort_locked(s); /* copies that freed nothing */
		}
		if (!more || !gc_room(s))
			return 0;
	}
}

int pog_gc_locked(pog_store *s, struct pog_gc_result *res)
{
	if (s->changes.n || s->nremoved) {
		pog_set_error(s, "gc: changes are staged; commit or abort first");
		return -EBUSY;
	}
	pog_abort_locked(s); /* blocks left by failed operations; hashes */
	uint64_t before = s->blocks_used;
	struct pog_map64 seen = {0};
	struct pog_vec dead = {0};
	int err = pog_reachable(s, &s->staged, true, false, &seen);
	if (!err)
		err = unreachable_objects(s, &seen, &dead);
	uint64_t damaged = 0;
	if (!err)
		err = destroy_dead(s, &dead, &seen, &damaged);
	if (damaged)
		pog_set_error(s, "gc: %" PRIu64 " unreachable objects kept: their "
			      "records are damaged (see pog fsck)", damaged);
	if (!err)
		err = compact_objects(s);
	if (!err)
		err = prune_index(s);
	if (!err)
		err = pog_mark_committed(s, true);
	if (!err) {
		res->objects_live = seen.n;
		res->objects_freed = dead.n - damaged;
		res->blocks_live = s->blocks_used - s->nsegs;
		res->blocks_freed = before > s->blocks_used ? before - s->blocks_used : 0;
		res->bytes_freed = res->blocks_freed * POG_BLOCK_SIZE;
		s->gc_runs++;
		s->gc_freed_blocks = res->blocks_freed;
		s->gc_freed_objects = res->objects_freed;
	} else {
		/* What was committed stands; the rest stays for the next run. */
		pog_abort_locked(s);
		(void)pog_mark_committed(s, true);
		pog_set_error(s, "gc: %s", pog_strerror(err));
	}
	pog_map64_release(&seen);
	pog_vec_release(&dead);
	return err;
}

int pog_gc(pog_store *s, struct pog_gc_result *out)
{
	struct pog_gc_result res = {0};
	int err = pog_wrlock(s);
	if (err)
		return err;
	err = pog_gc_locked(s, &res);
	pog_unlock(s);
	if (out)
		*out = res;
	return err;
}
