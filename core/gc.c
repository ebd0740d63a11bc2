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

/* The used-block bitmap is recomputed by mark.c (pog_mark_committed). */

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
	int err = pog_commit_locked(s, msg, NULL);
	/* GC's commits change nothing a view shows: sessions with nothing
	 * staged move past them at once, so their old bases (pinned) do not
	 * keep what GC frees. */
	if (!err)
		pog_sessions_catch_up(s);
	return err;
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

/* What any session's view (its staged state and the kernel's pins on it)
 * reaches: each view walked on its own, the results together. */
static int reachable_all(pog_store *s, struct pog_map64 *seen)
{
	int err = 0;
	for (pog_store *p = s->env->sessions; p && !err; p = p->next_session) {
		struct pog_map64 one = {0};
		err = pog_reachable(p, &p->staged, true, false, &one);
		pog_map64_foreach(&one, i) {
			uint64_t *v = err ? NULL : pog_map64_get(seen, one.keys[i]);
			if (!err && !v)
				err = -ENOMEM;
			else if (v)
				*v = 1;
		}
		pog_map64_release(&one);
	}
	return err;
}

/*
 * GC runs in a session of its own at the latest commit, so that the
 * sessions' staged changes stay staged: it keeps every object any
 * session's view reaches, and every block any session's base or staged
 * state holds (pog_mark_sessions).
 */
static int gc_run(pog_store *s, struct pog_gc_result *res)
{
	/* Commits that left the history (unsnapshot, keep lowered) are
	 * still in the last record's list: a commit drops them first. */
	if (s->env->hist.dirty) {
		int err = pog_commit_locked(s, "gc: history released", NULL);
		if (err)
			return err;
	}
	uint64_t before = s->env->blocks_used;
	struct pog_map64 seen = {0};
	struct pog_vec dead = {0};
	int err = reachable_all(s, &seen);
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
		res->blocks_live = s->env->blocks_used - s->env->nsegs;
		res->blocks_freed = before > s->env->blocks_used ? before - s->env->blocks_used : 0;
		res->bytes_freed = res->blocks_freed * POG_BLOCK_SIZE;
		s->env->gc_runs++;
		s->env->gc_freed_blocks = res->blocks_freed;
		s->env->gc_freed_objects = res->objects_freed;
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

int pog_gc_locked(pog_store *s, struct pog_gc_result *res)
{
	pog_store *g = pog_session_new_locked(s->env);
	if (!g)
		return -ENOMEM;
	int err = gc_run(g, res);
	pthread_mutex_lock(&g->err_lock);
	if (g->last_error[0])
		pog_set_error(s, "%s", g->last_error);
	pthread_mutex_unlock(&g->err_lock);
	pog_session_free_locked(g);
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
