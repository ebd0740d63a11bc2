/* pins.c - which commits stay readable, and the blocks waiting for them. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Every commit is copy-on-write: commit M writes new nodes and stops
 * using the ones it replaced (and the previous commit record). Those
 * blocks are still part of every older commit, so while an older commit
 * may be read (pinned: retained history, a snapshot, a session's base)
 * they wait in a queue under M. The queue is in commit order; a block
 * under M goes back to the allocator once no pinned commit is older than
 * M. The latest commit counts as pinned, so with no pins at all a block
 * is freed as soon as its commit is durable, as it always was.
 *
 * GC recomputes the used bitmap from the pinned commits (gc.c), which
 * also frees what the queue model keeps too long (a block queued under M
 * that only commits between two pinned ones used); pog_pins_after_mark
 * then forgets what the mark freed.
 */

static pthread_mutex_t *pins_lock(const pog_store *s)
{
	return (pthread_mutex_t *)&s->env->cpins.lock;
}

void pog_pins_init(pog_store *s)
{
	memset(&s->env->cpins, 0, sizeof(s->env->cpins));
	pthread_mutex_init(&s->env->cpins.lock, NULL);
}

void pog_pins_free(pog_store *s)
{
	pog_map64_release(&s->env->cpins.refs);
	pog_map64_release(&s->env->cpins.recs);
	pog_vec_release(&s->env->cpins.deferred);
	pthread_mutex_destroy(&s->env->cpins.lock);
}

void pog_state_from_rec(struct pog_state *st, const struct pog_commit_rec *rec)
{
	*st = (struct pog_state){
		.obj_root = rec->obj_root,
		.log_root = rec->log_root,
		.next_ino = rec->next_ino,
		.nobjects = rec->nobjects,
		.dedup_root = rec->dedup_root,
		.logical_bytes = rec->logical_bytes,
	};
}

int pog_commit_rec_read(const pog_store *s, uint64_t bno,
			struct pog_commit_rec *rec)
{
	if (!pog_bno_valid(s, bno))
		return POG_ECORRUPT;
	return pog_commit_block_check(pog_block(s, bno), rec);
}

int pog_pins_note_commit(pog_store *s, uint64_t id, uint64_t bno)
{
	if (!id)
		return -EINVAL;
	pthread_mutex_lock(pins_lock(s));
	uint64_t *v = pog_map64_get(&s->env->cpins.recs, id);
	if (v)
		*v = bno;
	pthread_mutex_unlock(pins_lock(s));
	return v ? 0 : -ENOMEM;
}

int pog_commit_state(pog_store *s, uint64_t id, struct pog_state *st)
{
	pthread_mutex_lock(pins_lock(s));
	uint64_t *v = id ? pog_map64_find(&s->env->cpins.recs, id) : NULL;
	uint64_t bno = v ? *v : 0;
	pthread_mutex_unlock(pins_lock(s));
	if (!bno)
		return -ENOENT;
	struct pog_commit_rec rec;
	int err = pog_commit_rec_read(s, bno, &rec);
	if (err)
		return err;
	if (rec.id != id)
		return POG_ECORRUPT;
	pog_state_from_rec(st, &rec);
	return 0;
}

int pog_commit_pin(pog_store *s, uint64_t id)
{
	int err = -ENOENT;
	pthread_mutex_lock(pins_lock(s));
	if (id && pog_map64_find(&s->env->cpins.recs, id)) {
		uint64_t *v = pog_map64_get(&s->env->cpins.refs, id);
		if (v) {
			(*v)++;
			err = 0;
		} else {
			err = -ENOMEM;
		}
	}
	pthread_mutex_unlock(pins_lock(s));
	return err;
}

void pog_commit_unpin(pog_store *s, uint64_t id)
{
	pthread_mutex_lock(pins_lock(s));
	uint64_t *v = id ? pog_map64_find(&s->env->cpins.refs, id) : NULL;
	if (v && --*v == 0)
		pog_map64_del(&s->env->cpins.refs, id);
	pthread_mutex_unlock(pins_lock(s));
}

static uint64_t oldest_locked(const pog_store *s)
{
	uint64_t oldest = s->env->commit_id;
	pog_map64_foreach(&s->env->cpins.refs, i)
		if (s->env->cpins.refs.keys[i] < oldest)
			oldest = s->env->cpins.refs.keys[i];
	return oldest;
}

uint64_t pog_pins_oldest(const pog_store *s)
{
	pthread_mutex_lock(pins_lock(s));
	uint64_t oldest = oldest_locked(s);
	pthread_mutex_unlock(pins_lock(s));
	return oldest;
}

int pog_defer_free(pog_store *s, uint64_t id, uint64_t bno)
{
	struct pog_commit_pins *p = &s->env->cpins;
	bool queued = p->deferred.n > p->deferred_head;
	if (!queued && pog_pins_oldest(s) >= id) {
		pog_block_free_now(s, bno);
		return 0;
	}
	if (queued && p->deferred.v[p->deferred.n - 2] > id)
		POG_BUG("deferred blocks out of commit order");
	/* Out of memory: the block stays used until the next GC mark. */
	int err = pog_vec_push(&p->deferred, id);
	if (!err) {
		err = pog_vec_push(&p->deferred, bno);
		if (err)
			p->deferred.n--;
	}
	return err;
}

/* Records of commits older than every pinned one are gone (their blocks
 * were queued under a later commit, which is now released). */
static void forget_records(pog_store *s, uint64_t oldest)
{
	struct pog_map64 *recs = &s->env->cpins.recs;
	for (size_t i = 0; i < recs->cap; i++) {
		uint64_t id = recs->keys[i];
		if (id && id < oldest && !pog_map64_find(&s->env->cpins.refs, id)) {
			pog_map64_del(recs, id);
			i = (size_t)-1; /* deletion may move entries: rescan */
		}
	}
}

void pog_deferred_release(pog_store *s)
{
	struct pog_commit_pins *p = &s->env->cpins;
	pthread_mutex_lock(pins_lock(s));
	uint64_t oldest = oldest_locked(s);
	forget_records(s, oldest);
	pthread_mutex_unlock(pins_lock(s));
	size_t h = p->deferred_head;
	while (h + 1 < p->deferred.n && p->deferred.v[h] <= oldest) {
		pog_block_free_now(s, p->deferred.v[h + 1]);
		h += 2;
	}
	if (h >= p->deferred.n) {
		p->deferred.n = 0;
		h = 0;
	} else if (h > p->deferred.n / 2) {
		memmove(p->deferred.v, p->deferred.v + h,
			(p->deferred.n - h) * sizeof(uint64_t));
		p->deferred.n -= h;
		h = 0;
	}
	p->deferred_head = h;
}

void pog_pins_after_mark(pog_store *s)
{
	struct pog_commit_pins *p = &s->env->cpins;
	size_t out = 0;
	for (size_t i = p->deferred_head; i + 1 < p->deferred.n; i += 2) {
		uint64_t bno = p->deferred.v[i + 1];
		if (!pog_bno_valid(s, bno) ||
		    !pog_bit(s->env->segs[bno / POG_SEG_BLOCKS].used, bno % POG_SEG_BLOCKS))
			continue;
		p->deferred.v[out++] = p->deferred.v[i];
		p->deferred.v[out++] = bno;
	}
	p->deferred.n = out;
	p->deferred_head = 0;
	/* Only the pinned commits and the latest were marked. */
	pthread_mutex_lock(pins_lock(s));
	struct pog_map64 *recs = &s->env->cpins.recs;
	for (size_t i = 0; i < recs->cap; i++) {
		uint64_t id = recs->keys[i];
		if (id && id != s->env->commit_id && !pog_map64_find(&p->refs, id)) {
			pog_map64_del(recs, id);
			i = (size_t)-1;
		}
	}
	pthread_mutex_unlock(pins_lock(s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int pog_pins_list(pog_store *s, struct pog_vec *ids)
{
	int err = 0;
	ids->n = 0;
	pthread_mutex_lock(pins_lock(s));
	if (s->env->commit_id)
		err = pog_vec_push(ids, s->env->commit_id);
	pog_map64_foreach(&s->env->cpins.refs, i)
		if (!err && s->env->cpins.refs.keys[i] != s->env->commit_id)
			err = pog_vec_push(ids, s->env->cpins.refs.keys[i]);
	pthread_mutex_unlock(pins_lock(s));
	if (!err && ids->n > 1)
		qsort(ids->v, ids->n, sizeof(uint64_t), cmp_u64);
	return err;
}
