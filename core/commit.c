/* commit.c - commit and abort a session's transaction; status and log. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "store_int.h"

/* Forget the transaction's change table, conflicts, list edits and
 * removed paths (commit, abort, session end). */
void pog_changes_clear(pog_store *s)
{
	pog_map64_release(&s->changes);
	pog_conflicts_clear(s);
	pog_lists_clear(s);
	for (size_t i = 0; i < s->nremoved; i++)
		free(s->removed_paths[i]);
	s->nremoved = 0;
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

/* A flushed run of at least this many fresh blocks leaves the page
 * tables first (pog_blocks_unmap): a shorter one costs about as much to
 * map again as its write-protection at writeback. */
#define UNMAP_MIN_BLOCKS 8u

static void flush_span(pog_store *s, char *lo, char *hi, void *ctx);

/* Runs of this session's fresh blocks gathered into address ranges. */
struct fresh_spans {
	pog_store *s;
	bool unmap;         /* flushing them: unmap long runs first */
	void (*emit)(pog_store *s, char *lo, char *hi, void *ctx);
	void *ctx;
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
	if (sp->unmap && end - first >= UNMAP_MIN_BLOCKS)
		pog_blocks_unmap(from, to);
	if (sp->lo && from >= sp->hi && (size_t)(from - sp->hi) <= FLUSH_GAP &&
	    spans_gap_clean(sp, seg, first)) {
		sp->hi = to;
	} else {
		if (sp->lo)
			sp->emit(sp->s, sp->lo, sp->hi, sp->ctx);
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
			void (*emit)(pog_store *s, char *lo, char *hi, void *ctx),
			void *ctx)
{
	struct fresh_spans sp = {
		.s = s, .emit = emit, .ctx = ctx,
		.unmap = emit == flush_span && !s->env->is_pmem,
	};
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
		emit(s, sp.lo, sp.hi, ctx);
}

static void flush_span(pog_store *s, char *lo, char *hi, void *ctx)
{
	(void)ctx;
	pmemobj_flush(s->env->pop, lo, (size_t)(hi - lo));
}

/* The address range that holds every range given. */
struct extent {
	char *lo, *hi;
};

static void extent_add(struct extent *e, char *lo, char *hi)
{
	if (!e->lo || lo < e->lo)
		e->lo = lo;
	if (!e->hi || hi > e->hi)
		e->hi = hi;
}

static void extent_span(pog_store *s, char *lo, char *hi, void *ctx)
{
	(void)s;
	extent_add(ctx, lo, hi);
}

/* Does another session hold fresh blocks (which a flush over a range
 * that spans them would write out too)? */
static bool others_stage(const pog_store *s)
{
	for (const pog_store *p = s->env->sessions; p; p = p->next_session)
		if (p != s && p->fresh_count)
			return true;
	return false;
}

/* What a commit writes: the carried-over small slots, sorted. */
struct commit_io {
	uint64_t *slots;
	size_t nslots;
	struct extent fresh;   /* of the fresh blocks */
};

/* Flush every fresh range and carried-over slot of this session (not
 * another session's staged blocks), with one call for ranges that lie
 * together: the allocator fills segments in order, and libpmemobj places
 * them one after the other, so the number of flushes does not grow with
 * the number of pages. */
static void flush_fresh(pog_store *s, const struct commit_io *io)
{
	if (s->fresh_count)
		fresh_spans(s, false, flush_span, NULL);
	pog_small_flush(s, io->slots, io->nslots);
}

/*
 * A listed commit: its blocks, slots and the commit slot may reach the
 * pool in any order (the open checks the list), so on a file one flush
 * (one msync: its cost is the device flush, and only dirty pages in the
 * range are written) covers them all, unless another session's staged
 * blocks lie in that range or flushes are cache-line flushes.
 */
static void flush_listed(pog_store *s, const struct commit_io *io,
			 uint64_t *slot)
{
	if (s->env->is_pmem || others_stage(s)) {
		flush_fresh(s, io);
		pmemobj_flush(s->env->pop, slot, sizeof(*slot));
		return;
	}
	struct extent e = io->fresh;
	extent_add(&e, (char *)slot, (char *)(slot + 1));
	if (io->nslots) {
		uint64_t last = io->slots[io->nslots - 1];
		extent_add(&e, pog_node(s, io->slots[0]),
			   (char *)pog_node(s, last) + pog_node_size(last));
	}
	pmemobj_flush(s->env->pop, e.lo, (size_t)(e.hi - e.lo));
}

/*
 * Publish the commit whose record is in block cbno: store its bno into
 * the commit slot that does not hold the current commit, and return the
 * record that slot named (the commit before the current one, 0: none).
 * A listed commit flushes everything together once; any other flushes
 * its blocks first and then the slot.
 */
static uint64_t publish(pog_store *s, const struct commit_io *io,
			uint64_t cbno, bool listed)
{
	uint64_t *slot = pog_commit_slot_next(s);
	uint64_t leaving = *slot;
	if (listed) {
		__atomic_store_n(slot, cbno, __ATOMIC_RELEASE);
		flush_listed(s, io, slot);
		pmemobj_drain(s->env->pop);
	} else {
		flush_fresh(s, io);
		pmemobj_drain(s->env->pop);
		__atomic_store_n(slot, cbno, __ATOMIC_RELEASE);
		pmemobj_persist(s->env->pop, slot, sizeof(*slot));
	}
	pog_commit_slot_taken(s);
	return leaving;
}

/*
 * A large commit starts the disk on its fresh blocks first (writeback of
 * the pool file's pages, from a thread: core/writeback.c), so that the
 * disk works while the commit computes page CRCs and shares pages; the
 * flush in publish then waits for what is left. Nothing is durable
 * before that flush.
 */
#define WRITEBACK_MIN_BLOCKS 1024u

static void writeback_span(pog_store *s, char *lo, char *hi, void *ctx)
{
	pog_writeback_add(ctx, (off_t)(lo - (char *)s->env->pop),
			  (off_t)(hi - lo));
}

static struct pog_writeback *fresh_writeback(pog_store *s)
{
	if (s->fresh_count < WRITEBACK_MIN_BLOCKS || s->env->lock_fd < 0)
		return NULL;
	struct pog_writeback *wb = pog_writeback_new(s->env->lock_fd);
	if (wb)
		fresh_spans(s, false, writeback_span, wb);
	return pog_writeback_start(wb);
}

static void fresh_clear(pog_store *s, bool discard)
{
	pog_small_end(s, !discard);
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
	struct pog_writeback *wb = fresh_writeback(s);
	err = pog_pages_seal(s);
	/* The floor that every operation leaves free covers this. */
	if (!err)
		err = pog_reserve(s, POG_COMMIT_NEED);
	if (err) {
		pog_writeback_wait(wb);
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	if (s->base_id != s->env->commit_id) {
		err = pog_merge_locked(s);
		if (err) {
			pog_writeback_wait(wb);
			return err; /* the reason is in the last error */
		}
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
		pog_writeback_wait(wb);
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
	struct commit_io io = {0};
	err = pog_small_slot_list(s, &io.slots, &io.nslots);
	if (err) {
		pog_writeback_wait(wb);
		pog_set_error(s, "commit: %s", pog_strerror(err));
		return err;
	}
	void *cblock = pog_block(s, cbno);
	memset(cblock, 0, POG_BLOCK_SIZE);
	pog_history_fill(s, id, &rec, (void *)((char *)cblock + sizeof(rec)));

	pog_lists_seal(s); /* nothing fails from here on */
	pog_writeback_wait(wb);
	pog_small_seal(s);
	if (s->fresh_count) /* node CRCs; where the fresh blocks lie */
		fresh_spans(s, true, extent_span, &io.fresh);
	bool listed = !pog_fresh_list(s, cbno, &rec, cblock, io.slots, io.nslots);
	rec.crc = pog_crc32(&rec, sizeof(rec));
	memcpy(cblock, &rec, sizeof(rec));
	uint64_t leaving = publish(s, &io, cbno, listed);
	free(io.slots);

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
	/* The record before the last stays while a slot names it. */
	if (leaving)
		(void)pog_defer_free(s, id, leaving);
	pog_session_begin(s);
	pog_deferred_release(s);
	if (s->report) {
		s->report->id = id;
		pog_report_collect(s);
	}
	pog_changes_clear(s);
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
	pog_session_begin(s);
	pog_changes_clear(s);
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
