/* history.c - retained commits, snapshot names and read-only views. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

/*
 * Retention. Every commit record lists, after itself in its block, the
 * older commits still retained when it was made: those among the last
 * keep, and those a snapshot names. The list is part of the commit, so
 * it changes atomically with it; each listed commit holds one pin
 * (pins.c), so its blocks stay until a later commit leaves it out (and
 * GC marks from it meanwhile). Snapshot names live in a libpmemobj object
 * of their own (format.h), replaced whole in a libpmemobj transaction: a
 * name does not need a commit. A name of a commit that is not listed
 * (a session's base, named before the next commit) is listed by that next
 * commit; a crash before it loses the name (it names nothing on open).
 * Letting a name go marks the history dirty: GC then makes a commit first
 * so that the durable list no longer holds the commit before its blocks
 * are freed.
 */

static unsigned keep_of(const pog_store *s)
{
	unsigned k = s->env->super->keep;
	return k ? k : POG_KEEP_DEFAULT;
}

int pog_history_init(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	pthread_mutex_init(&h->view_lock, NULL);
	h->views = calloc(POG_VIEW_SLOTS, sizeof(*h->views));
	return h->views ? 0 : -ENOMEM;
}

static void snaps_free(struct pog_snap *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

void pog_history_free(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	if (h->views)
		for (uint64_t i = 0; i <= h->nviews; i++)
			free(h->views[i]);
	free(h->views);
	pog_map64_release(&h->view_of);
	pog_map64_release(&h->hashes);
	snaps_free(h->snaps, h->nsnaps);
	pthread_mutex_destroy(&h->view_lock);
}

/* ---- snapshot names ------------------------------------------------------ */

static size_t snap_ent_size(size_t len)
{
	return (8 + 2 + len + 7) & ~(size_t)7;
}

static int snap_cmp(const void *a, const void *b)
{
	const struct pog_snap *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Read the table; entries that do not check are ignored (none at all
 * when its crc is wrong). */
static int snaps_load(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	PMEMoid o = s->env->super->snapshots;
	if (OID_IS_NULL(o))
		return 0;
	/* Trust nothing of a damaged superblock: the object must lie in this
	 * pool's file, whole. */
	struct stat st;
	if (fstat(s->env->lock_fd, &st) < 0 ||
	    o.pool_uuid_lo != pmemobj_oid(s->env->super).pool_uuid_lo ||
	    o.off < POG_BLOCK_SIZE || o.off % 8 ||
	    o.off > (uint64_t)st.st_size - sizeof(struct pog_snap_table))
		return 0;
	const struct pog_snap_table *t = pmemobj_direct(o);
	if (!t || t->magic != POG_SNAP_MAGIC ||
	    t->bytes > (uint64_t)st.st_size - o.off - sizeof(*t))
		return 0;
	const unsigned char *p = (const void *)(t + 1), *end = p + t->bytes;
	if (pog_crc32(p, t->bytes) != t->crc)
		return 0;
	h->snaps = calloc(t->count ? t->count : 1, sizeof(*h->snaps));
	if (!h->snaps)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->count && p + 10 <= end; i++) {
		uint64_t id;
		uint16_t len;
		memcpy(&id, p, 8);
		memcpy(&len, p + 8, 2);
		if (len == 0 || len > POG_KEY_MAX || p + 10 + len > end)
			break;
		char *name = malloc(len + 1u);
		if (!name)
			return -ENOMEM;
		memcpy(name, p + 10, len);
		name[len] = '\0';
		h->snaps[h->nsnaps++] = (struct pog_snap){id, len, name};
		p += snap_ent_size(len);
	}
	if (h->nsnaps > 1)
		qsort(h->snaps, h->nsnaps, sizeof(*h->snaps), snap_cmp);
	return 0;
}

/* Replace the table by one of n entries (bytes of them at buf). */
static int snaps_tx(pog_store *s, const unsigned char *buf, size_t bytes,
		    size_t n)
{
	struct pog_super *sb = s->env->super;
	volatile int err = 0;
	TX_BEGIN(s->env->pop) {
		pmemobj_tx_add_range_direct(&sb->snapshots, sizeof(sb->snapshots));
		if (!OID_IS_NULL(sb->snapshots))
			pmemobj_tx_free(sb->snapshots);
		sb->snapshots = OID_NULL;
		if (n) {
			PMEMoid o = pmemobj_tx_alloc(sizeof(struct pog_snap_table) + bytes, 2);
			struct pog_snap_table *t = pmemobj_direct(o);
			t->magic = POG_SNAP_MAGIC;
			t->count = (uint32_t)n;
			t->bytes = bytes;
			t->crc = pog_crc32(buf, bytes);
			memcpy(t + 1, buf, bytes);
			pmemobj_persist(s->env->pop, t, sizeof(*t) + bytes);
			sb->snapshots = o;
		}
	} TX_ONABORT {
		err = -ENOSPC;
	} TX_END
	return err;
}

/* Write v[0..n) as the new table, atomically (libpmemobj transaction). */
static int snaps_store(pog_store *s, const struct pog_snap *v, size_t n)
{
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += snap_ent_size(v[i].len);
	unsigned char *buf = calloc(1, bytes ? bytes : 1);
	if (!buf)
		return -ENOMEM;
	unsigned char *p = buf;
	for (size_t i = 0; i < n; i++) {
		uint16_t len = (uint16_t)v[i].len;
		memcpy(p, &v[i].id, 8);
		memcpy(p + 8, &len, 2);
		memcpy(p + 10, v[i].name, len);
		p += snap_ent_size(len);
	}
	int err = snaps_tx(s, buf, bytes, n);
	free(buf);
	return err;
}

static struct pog_snap *snap_find(pog_store *s, const char *name, size_t len)
{
	struct pog_snap key = {0, len, (char *)name};
	if (!s->env->hist.nsnaps)
		return NULL;
	return bsearch(&key, s->env->hist.snaps, s->env->hist.nsnaps, sizeof(key), snap_cmp);
}

static bool named(const pog_store *s, uint64_t id)
{
	for (size_t i = 0; i < s->env->hist.nsnaps; i++)
		if (s->env->hist.snaps[i].id == id)
			return true;
	return false;
}

static bool listed(const pog_store *s, uint64_t id)
{
	for (size_t i = 0; i < s->env->hist.nlist; i++)
		if (s->env->hist.list[i].id == id)
			return true;
	return false;
}

static bool retained_locked(const pog_store *s, uint64_t id)
{
	return id && (id == s->env->commit_id || listed(s, id));
}

/* ---- the list in commit records ------------------------------------------- */

static void snaps_drop_gone(pog_store *s);

int pog_history_load(pog_store *s, const struct pog_commit_rec *rec)
{
	struct pog_history *h = &s->env->hist;
	int err = snaps_load(s);
	if (err)
		return err;
	if (!rec->history_count) {
		snaps_drop_gone(s);
		return 0;
	}
	const struct pog_history_ent *ents =
		(const void *)((const char *)pog_block(s, s->env->commit_bno) + sizeof(*rec));
	if (rec->history_count > POG_HISTORY_MAX ||
	    pog_crc32(ents, rec->history_count * sizeof(*ents)) != rec->history_crc)
		return POG_EDAMAGED;
	for (uint64_t i = 0; i < rec->history_count; i++) {
		struct pog_commit_rec old;
		/* A record that does not check is left out (and its blocks
		 * with it); the rest of the history stands. */
		if (pog_commit_rec_read(s, ents[i].bno, &old) || old.id != ents[i].id ||
		    ents[i].id >= s->env->commit_id) {
			h->dirty = true;
			continue;
		}
		err = pog_pins_note_commit(s, ents[i].id, ents[i].bno);
		if (!err)
			err = pog_commit_pin(s, ents[i].id);
		if (err)
			return err;
		h->list[h->nlist++] = ents[i];
	}
	snaps_drop_gone(s);
	return 0;
}

/* Names of commits that did not survive (named, then a crash before the
 * next commit listed them) name nothing: forget them (the table is
 * rewritten by the next snapshot or unsnapshot). */
static void snaps_drop_gone(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	size_t k = 0;
	for (size_t i = 0; i < h->nsnaps; i++) {
		if (retained_locked(s, h->snaps[i].id))
			h->snaps[k++] = h->snaps[i];
		else
			free(h->snaps[i].name);
	}
	h->nsnaps = k;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct pog_history_ent *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static bool keep_in_next(pog_store *s, uint64_t id, uint64_t new_id)
{
	if (named(s, id))
		return true;
	return !s->env->hist.squeeze && id + keep_of(s) > new_id;
}

static void next_add(pog_store *s, uint64_t id, uint64_t bno)
{
	struct pog_history *h = &s->env->hist;
	for (size_t i = 0; i < h->nnext; i++)
		if (h->next[i].id == id)
			return;
	if (h->nnext < POG_HISTORY_MAX)
		h->next[h->nnext++] = (struct pog_history_ent){id, bno};
}

void pog_history_fill(pog_store *s, uint64_t id, struct pog_commit_rec *rec,
		      struct pog_history_ent *ents)
{
	struct pog_history *h = &s->env->hist;
	h->nnext = 0;
	/* Named first, so that they always find room. */
	for (size_t i = 0; i < h->nsnaps; i++) {
		uint64_t sid = h->snaps[i].id, bno = 0;
		if (sid == s->env->commit_id) {
			bno = s->env->commit_bno;
		} else if (listed(s, sid)) {
			for (size_t j = 0; j < h->nlist; j++)
				if (h->list[j].id == sid)
					bno = h->list[j].bno;
		} else { /* a session's base, readable but not listed yet */
			pthread_mutex_lock(&s->env->cpins.lock);
			uint64_t *v = pog_map64_find(&s->env->cpins.recs, sid);
			bno = v ? *v : 0;
			pthread_mutex_unlock(&s->env->cpins.lock);
		}
		if (bno && sid < id)
			next_add(s, sid, bno);
	}
	if (s->env->commit_bno && keep_in_next(s, s->env->commit_id, id))
		next_add(s, s->env->commit_id, s->env->commit_bno);
	for (size_t i = h->nlist; i-- > 0;)
		if (keep_in_next(s, h->list[i].id, id))
			next_add(s, h->list[i].id, h->list[i].bno);
	if (h->nnext > 1)
		qsort(h->next, h->nnext, sizeof(h->next[0]), ent_cmp);
	if (h->nnext)
		memcpy(ents, h->next, h->nnext * sizeof(h->next[0]));
	rec->history_count = h->nnext;
	rec->history_crc = pog_crc32(ents, h->nnext * sizeof(h->next[0]));
}

/* Views of commits no longer retained show nothing (their blocks may go
 * from now on); write lock held. */
static void views_refresh(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	pthread_mutex_lock(&h->view_lock);
	for (uint64_t i = 1; i <= h->nviews; i++) {
		struct pog_hview *v = h->views[i];
		if (v && v->id && !retained_locked(s, v->id))
			memset(&v->st, 0, sizeof(v->st));
	}
	pthread_mutex_unlock(&h->view_lock);
}

void pog_history_committed(pog_store *s)
{
	struct pog_history *h = &s->env->hist;
	for (size_t i = 0; i < h->nnext; i++)
		if (!listed(s, h->next[i].id))
			(void)pog_commit_pin(s, h->next[i].id);
	for (size_t i = 0; i < h->nlist; i++) {
		bool stays = false;
		for (size_t j = 0; j < h->nnext; j++)
			stays |= h->next[j].id == h->list[i].id;
		if (!stays)
			pog_commit_unpin(s, h->list[i].id);
	}
	/* Squeezed: count the commit if it left out an unnamed one that
	 * keep would have kept. */
	if (h->squeeze) {
		uint64_t id = s->env->commit_id;
		bool left = false;
		for (size_t i = 0; i < h->nlist; i++)
			left |= !named(s, h->list[i].id) && h->list[i].id + keep_of(s) > id;
		left |= keep_of(s) > 1 && id > 1 && !named(s, id - 1);
		if (left)
			h->dropped++;
		h->squeeze = false;
	}
	memcpy(h->list, h->next, h->nnext * sizeof(h->next[0]));
	h->nlist = h->nnext;
	h->dirty = false;
	views_refresh(s);
}

/* ---- views ------------------------------------------------------------------ */

/* The slot showing commit id, made if needed (read lock held). */
static int view_slot(pog_store *s, uint64_t id, uint64_t *bits)
{
	struct pog_history *h = &s->env->hist;
	int err = 0;
	pthread_mutex_lock(&h->view_lock);
	uint64_t *slot = pog_map64_find(&h->view_of, id);
	if (slot && h->views[*slot]->st.obj_root) {
		*bits = h->views[*slot]->bits;
		goto out;
	}
	struct pog_state st;
	err = pog_commit_state(s, id, &st);
	if (err)
		goto out;
	if (slot) { /* a view of this commit was emptied, and it is back */
		h->views[*slot]->st = st;
		*bits = h->views[*slot]->bits;
		goto out;
	}
	uint64_t n = h->nviews + 1;
	if (n >= POG_VIEW_SLOTS) {
		/* Reuse the slot of a commit that is gone. */
		for (n = 1; n < POG_VIEW_SLOTS; n++)
			if (!h->views[n]->st.obj_root && !retained_locked(s, h->views[n]->id))
				break;
		if (n >= POG_VIEW_SLOTS) {
			err = -ENOSPC;
			goto out;
		}
		pog_map64_del(&h->view_of, h->views[n]->id);
	}
	struct pog_hview *v = h->views[n] ? h->views[n] : calloc(1, sizeof(*v));
	uint64_t *m = v ? pog_map64_get(&h->view_of, id) : NULL;
	if (!m) {
		if (v != h->views[n])
			free(v);
		err = -ENOMEM;
		goto out;
	}
	*m = n;
	v->st = st;
	v->id = id;
	v->bits = POG_COMMITTED_BIT | n << POG_VIEW_SHIFT;
	*bits = v->bits;
	if (!h->views[n]) {
		__atomic_store_n(&h->views[n], v, __ATOMIC_RELEASE);
		__atomic_store_n(&h->nviews, n, __ATOMIC_RELEASE);
	}
out:
	pthread_mutex_unlock(&h->view_lock);
	return err;
}

int pog_history_root(pog_store *s, uint64_t id, uint64_t *root)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	uint64_t bits = 0;
	err = retained_locked(s, id) ? view_slot(s, id, &bits) : -ENOENT;
	pog_unlock(s);
	if (!err)
		*root = POG_ROOT_INO | bits;
	return err;
}

uint64_t pog_view_commit(pog_store *s, uint64_t ino)
{
	if (!(ino & POG_COMMITTED_BIT))
		return 0;
	uint64_t slot = (ino >> POG_VIEW_SHIFT) & (POG_VIEW_SLOTS - 1);
	if (!slot)
		return s->env->commit_id;
	pthread_mutex_lock(&s->env->hist.view_lock);
	uint64_t id = slot <= s->env->hist.nviews ? s->env->hist.views[slot]->id : 0;
	pthread_mutex_unlock(&s->env->hist.view_lock);
	return id;
}

/* ---- the public calls ---------------------------------------------------------- */

unsigned pog_keep(pog_store *s)
{
	return keep_of(s);
}

int pog_set_keep(pog_store *s, unsigned n)
{
	if (n < 1 || n > POG_KEEP_MAX)
		return -EINVAL;
	int err = pog_wrlock(s);
	if (err)
		return err;
	if (n < keep_of(s))
		s->env->hist.dirty = true;
	s->env->super->keep = n;
	pmemobj_persist(s->env->pop, &s->env->super->keep, sizeof(s->env->super->keep));
	pog_unlock(s);
	return 0;
}

int pog_history(pog_store *s, uint64_t **ids, size_t *n)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	uint64_t *v = malloc((s->env->hist.nlist + 1) * sizeof(*v));
	size_t k = 0;
	if (v) {
		for (size_t i = 0; i < s->env->hist.nlist; i++)
			v[k++] = s->env->hist.list[i].id;
		if (s->env->commit_id)
			v[k++] = s->env->commit_id;
	}
	pog_unlock(s);
	if (!v)
		return -ENOMEM;
	*ids = v;
	*n = k;
	return 0;
}

int pog_retained(pog_store *s, uint64_t id)
{
	if (pog_rdlock(s))
		return 0;
	int r = retained_locked(s, id);
	pog_unlock(s);
	return r;
}

int pog_commit_hash(pog_store *s, uint64_t id, uint32_t *hash)
{
	pthread_mutex_lock(&s->env->hist.view_lock);
	uint64_t *v = pog_map64_find(&s->env->hist.hashes, id);
	uint64_t known = v ? *v : 0;
	pthread_mutex_unlock(&s->env->hist.view_lock);
	if (known) {
		*hash = (uint32_t)known;
		return 0;
	}
	uint64_t root;
	int err = 0;
	/* The last commit with nothing staged: the staged view's hash, which
	 * the hash cache keeps up to date. */
	if (id == s->env->commit_id && pog_staged_count(s) == 0)
		root = POG_ROOT_INO;
	else
		err = pog_history_root(s, id, &root);
	if (!err)
		err = pog_hash(s, root, hash);
	if (err)
		return err;
	pthread_mutex_lock(&s->env->hist.view_lock);
	v = pog_map64_get(&s->env->hist.hashes, id);
	if (v)
		*v = *hash | (uint64_t)1 << 32;
	pthread_mutex_unlock(&s->env->hist.view_lock);
	return 0;
}

static int name_ok(const char *name, size_t len)
{
	if (!len || len > POG_KEY_MAX || memchr(name, '\0', len))
		return -EINVAL;
	return 0;
}

int pog_snapshot(pog_store *s, const char *name, size_t len, uint64_t id)
{
	int err = name_ok(name, len);
	if (err)
		return err;
	err = pog_wrlock(s);
	if (err)
		return err;
	struct pog_history *h = &s->env->hist;
	if (!id)
		id = s->env->commit_id;
	struct pog_state st;
	if (snap_find(s, name, len))
		err = -EEXIST;
	else if (!retained_locked(s, id) && pog_commit_state(s, id, &st))
		err = -ENOENT;
	else if (h->nsnaps + 1 >= POG_HISTORY_MAX)
		err = -ENOSPC;
	struct pog_snap *v = err ? NULL : malloc((h->nsnaps + 1) * sizeof(*v));
	char *copy = v ? malloc(len + 1) : NULL;
	if (!err && !copy)
		err = -ENOMEM;
	if (!err) {
		memcpy(copy, name, len);
		copy[len] = '\0';
		if (h->nsnaps)
			memcpy(v, h->snaps, h->nsnaps * sizeof(*v));
		v[h->nsnaps] = (struct pog_snap){id, len, copy};
		qsort(v, h->nsnaps + 1, sizeof(*v), snap_cmp);
		err = snaps_store(s, v, h->nsnaps + 1);
	}
	if (!err) {
		free(h->snaps);
		h->snaps = v;
		h->nsnaps++;
	} else {
		free(v);
		free(copy);
	}
	pog_unlock(s);
	return err;
}

int pog_unsnapshot(pog_store *s, const char *name, size_t len)
{
	int err = name_ok(name, len);
	if (err)
		return err;
	err = pog_wrlock(s);
	if (err)
		return err;
	struct pog_history *h = &s->env->hist;
	struct pog_snap *p = snap_find(s, name, len);
	if (!p) {
		pog_unlock(s);
		return -ENOENT;
	}
	size_t at = (size_t)(p - h->snaps);
	struct pog_snap *v = malloc((h->nsnaps ? h->nsnaps : 1) * sizeof(*v));
	if (!v) {
		pog_unlock(s);
		return -ENOMEM;
	}
	memcpy(v, h->snaps, at * sizeof(*v));
	memcpy(v + at, h->snaps + at + 1, (h->nsnaps - at - 1) * sizeof(*v));
	err = snaps_store(s, v, h->nsnaps - 1);
	if (!err) {
		free(h->snaps[at].name);
		free(h->snaps);
		h->snaps = v;
		h->nsnaps--;
		h->dirty = true;
	} else {
		free(v);
	}
	pog_unlock(s);
	return err;
}

int pog_snapshot_find(pog_store *s, const char *name, size_t len, uint64_t *id)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	struct pog_snap *p = snap_find(s, name, len);
	if (p)
		*id = p->id;
	pog_unlock(s);
	return p ? 0 : -ENOENT;
}

int pog_snapshots(pog_store *s,
		  int (*fn)(void *ctx, const char *name, size_t len, uint64_t id),
		  void *ctx)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	struct pog_history *h = &s->env->hist;
	size_t n = h->nsnaps;
	struct pog_snap *v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		v[i] = h->snaps[i];
		v[i].name = malloc(h->snaps[i].len + 1);
		if (!v[i].name) {
			snaps_free(v, i);
			v = NULL;
			break;
		}
		memcpy(v[i].name, h->snaps[i].name, h->snaps[i].len + 1);
	}
	pog_unlock(s);
	if (!v)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; !r && i < n; i++)
		r = fn(ctx, v[i].name, v[i].len, v[i].id);
	snaps_free(v, n);
	return r;
}

int pog_set_session_name(pog_store *s, const char *name)
{
	char *copy = name ? strndup(name, POG_SESSION_MAX) : NULL;
	if (name && !copy)
		return -ENOMEM;
	pthread_rwlock_wrlock(&s->env->lock);
	free(s->session_name);
	s->session_name = copy;
	pthread_rwlock_unlock(&s->env->lock);
	return 0;
}
