/* store_int.h - internals shared by the core modules (not installed); the
 * files form layers that call downwards only (core/README.md). */
#ifndef POG_STORE_INT_H
#define POG_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "format.h"
#include "pog.h"

/* Never compiled out: going on would corrupt data. */
#define POG_BUG(...)                                                      \
	do {                                                              \
		fprintf(stderr, "pog: BUG at %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                             \
		fputc('\n', stderr);                                      \
		abort();                                                  \
	} while (0)

#define POG_WORDS_PER_SEG (POG_SEG_BLOCKS / 64)

/* ---- util.c: small containers and helpers ------------------------------ */

struct pog_vec {
	uint64_t *v;
	size_t n, cap;
};
int pog_vec_push(struct pog_vec *vec, uint64_t x);
void pog_vec_release(struct pog_vec *vec);

/* Open-addressing map u64 -> u64; key 0 is not allowed. */
struct pog_map64 {
	uint64_t *keys;
	uint64_t *vals;
	size_t n, cap;
};
uint64_t *pog_map64_find(const struct pog_map64 *m, uint64_t key);
/* Insert (value 0) if missing; returns the value slot or NULL on ENOMEM. */
uint64_t *pog_map64_get(struct pog_map64 *m, uint64_t key);
void pog_map64_del(struct pog_map64 *m, uint64_t key);
void pog_map64_release(struct pog_map64 *m);
#define pog_map64_foreach(m, i) \
	for (size_t i = 0; i < (m)->cap; i++) if ((m)->keys[i])

uint64_t pog_hash_bytes(const void *data, size_t len);
uint32_t pog_crc32(const void *data, size_t len);
/* crc.c: zlib's crc32(crc, data, len), faster (PCLMULQDQ) where it can. */
uint32_t pog_crc32_update(uint32_t crc, const void *data, size_t len);
/* CRC of a tree node of size bytes, its crc field counted as zero (the
 * node is only read). */
uint32_t pog_node_crc(const void *node, size_t size);
struct pog_time pog_now(void);

/* ---- the store --------------------------------------------------------- */

struct pog_seg {
	char *base;                          /* address of block 0 */
	uint64_t used[POG_WORDS_PER_SEG];    /* in use (DRAM truth) */
	/* Committed nodes whose CRC was checked (btree.c; readers set the
	 * bits atomically): whole blocks, and small-node slots by block. */
	uint64_t checked[POG_WORDS_PER_SEG];
	uint16_t checked_slots[POG_SEG_BLOCKS];
	uint32_t nused;
};

/* A session's blocks in one segment. */
struct pog_txseg {
	uint64_t fresh[POG_WORDS_PER_SEG];   /* allocated by this txn */
	uint64_t node[POG_WORDS_PER_SEG];    /* fresh block is a tree node */
	uint64_t sealed[POG_WORDS_PER_SEG];  /* fresh page whose ref holds its
						CRC already (pages.c); only
						with its fresh bit */
};

struct pog_state {
	uint64_t obj_root;
	uint64_t log_root;
	uint64_t next_ino;
	uint64_t nobjects;
	uint64_t dedup_root;
	uint64_t logical_bytes;
};

/* Change kinds kept per ino during a transaction. */
#define POG_CHG_ADDED 1u
#define POG_CHG_MODIFIED 2u
#define POG_CHG_PAGES 4u    /* wrote data pages: dedup looks at it */
#define POG_CHG_EDITED 8u   /* a new object that took over a committed one
			       by an edit (edit.c): an M line, not A + D */

/* pins.c's state: commits that must stay readable (see below). */
struct pog_commit_pins {
	pthread_mutex_t lock;        /* protects refs and recs */
	struct pog_map64 refs;       /* pinned commit id -> pin count */
	struct pog_map64 recs;       /* readable commit id -> record bno */
	struct pog_vec deferred;     /* (id, bno) pairs, ids non-decreasing
					(write lock) */
	size_t deferred_head;        /* pairs before it are gone */
};

/* history.c's state. */
struct pog_hview {                   /* a read-only view of a commit */
	struct pog_state st;         /* empty once the commit is gone */
	uint64_t id;
	uint64_t bits;               /* POG_COMMITTED_BIT | slot << shift */
};
struct pog_snap {
	uint64_t id;
	size_t len;
	char *name;                  /* key bytes, NUL-terminated copy */
};
struct pog_history {
	/* The latest record's list: retained older commits (each pinned
	 * once), ascending, and the list the commit being made will write. */
	struct pog_history_ent list[POG_HISTORY_MAX], next[POG_HISTORY_MAX];
	size_t nlist, nnext;
	struct pog_snap *snaps;      /* sorted by name */
	size_t nsnaps;
	bool dirty;                  /* retention shrank since the last commit */
	bool squeeze;                /* keep only named commits (full pool) */
	uint64_t dropped;            /* times retention gave way */
	pthread_mutex_t view_lock;   /* views, nviews, view_of, hashes */
	struct pog_hview **views;    /* [POG_VIEW_SLOTS], slot 0 unused */
	uint64_t nviews;
	struct pog_map64 view_of;    /* commit id -> slot */
	struct pog_map64 hashes;     /* commit id -> root hash | 1 << 32 */
};

/*
 * The store is split as LMDB splits MDB_env and MDB_txn. struct pog_env
 * is the pool: what every session shares (the pool file, the segments and
 * their in-use bitmap, the allocator, the latest commit, the counters).
 * struct pog_store (the handle callers hold) is one session: its base
 * commit and its staged transaction on top of it (fresh blocks, the
 * replaced blocks, small-node allocation, the change table, edit records,
 * the kernel's pins, the hash cache of its view).
 */
struct pog_env {
	PMEMobjpool *pop;
	struct pog_super *super;
	struct pog_seg_slot *segtab;
	int lock_fd;
	unsigned open_flags;

	/* Writers hold it exclusively, readers shared. Protects everything
	 * of the env and of its sessions except what names another lock. */
	pthread_rwlock_t lock;

	struct pog_seg *segs;
	uint64_t nsegs;
	uint64_t alloc_cursor;
	uint64_t data_cursor;        /* after the last pwritten page (store.c) */
	struct pog_early *early;     /* early writeback thread (writeback.c) */
	bool early_failed;           /* it could not be started */
	uint64_t blocks_used;
	uint64_t last_commit_fresh;  /* blocks the last commit sealed */

	struct pog_state committed;  /* the latest commit */
	uint64_t commit_id;
	uint64_t commit_bno;
	unsigned commit_slot;        /* the superblock slot naming it */
	uint64_t commit_dropped;     /* id of a commit the open found cut
					short by a crash (0: none) */
	bool is_pmem;                /* flushes are cache-line flushes */
	struct pog_time commit_time;
	uint64_t next_ino;           /* identities: one counter for all */

	uint64_t small_garbage;      /* committed slot bytes let go */
	atomic_uint_fast64_t checksum_errors;
	uint64_t gc_runs, gc_freed_blocks, gc_freed_objects;
	int fatal;
	/* List trees count entries (format 3); false only while a format-2
	 * store is read (read-only, or before pog_open rebuilds them). */
	bool list_counts;

	struct pog_commit_pins cpins; /* pins.c */
	struct pog_history hist;      /* history.c */

	/* Sessions (pog_session_open adds, pog_close removes). */
	struct pog_store *sessions;
	unsigned nsessions;
	uint64_t session_seq;        /* numbers sessions: 1, 2, ... */
};

struct pog_store {
	struct pog_env *env;
	struct pog_store *next_session;
	uint64_t session_id;

	/* The commit this session reads from, and its staged state on it. */
	struct pog_state base, staged;
	uint64_t base_id;
	bool base_pinned;            /* holds a pin on base_id (pins.c) */

	struct pog_txseg *tx;        /* fresh blocks, by segment */
	uint64_t ntx;
	uint64_t fresh_count;
	uint64_t fresh_min_seg, fresh_max_seg;
	bool unsealed;               /* a fresh page may lack its CRC (pages.c) */

	struct pog_vec freed;        /* committed blocks replaced by this txn */
	struct pog_small_alloc {     /* small nodes (format.h), per class */
		uint64_t bno;        /* block being filled, 0: none; not fresh:
					carried over from the last commit */
		unsigned next;       /* its first slot never handed out */
		unsigned start;      /* next when this transaction began */
		struct pog_vec free; /* fresh slots let go in this txn */
	} small[POG_SMALL_CLASSES];
	struct pog_map64 small_fresh; /* bno -> class + 1 of fresh slot blocks */
	struct pog_map64 small_slots; /* fresh slots of a carried block */
	struct pog_map64 changes;    /* ino -> POG_CHG_* */
	struct pog_map64 list_dirty; /* list ino -> 1 + first key whose name
					the commit may change (list.c) */
	struct pog_vec renumbered;   /* lists the last commit renumbered */
	unsigned importing;          /* imports running: what they make in a
					new directory has no line of its own */
	char **removed_paths;        /* 'D' lines */
	size_t nremoved, removed_cap;

	struct pog_edits *edits;     /* edit.c's records (NULL until used) */
	char **conflicts;            /* paths of the last commit's ESTALE */
	size_t nconflicts;
	/* pog_commit_report: the report being collected (report.c), and
	 * the paths asked about; NULL outside such a commit. */
	struct pog_commit_report *report;
	const char *const *report_paths;
	size_t report_npaths;
	char *session_name;          /* recorded in the log as who committed */
	bool track_moves;            /* moved.c collects into moved */
	struct pog_moved moved;

	pthread_mutex_t pin_lock;    /* protects pins */
	struct pog_map64 pins;

	pthread_mutex_t hash_lock;   /* protects hashes */
	struct pog_map64 hashes;     /* ino -> struct pog_hcache * (hcache.c) */

	pthread_mutex_t err_lock;    /* protects last_error */
	char last_error[256];
};

static inline void *pog_block(const pog_store *s, uint64_t bno)
{
	return s->env->segs[bno / POG_SEG_BLOCKS].base +
	       (bno % POG_SEG_BLOCKS) * (uint64_t)POG_BLOCK_SIZE;
}

static inline bool pog_bit(const uint64_t *words, uint64_t i)
{
	return (words[i / 64] >> (i % 64)) & 1;
}

/* commitpoint.c: the commit slot the next commit stores its record's bno
 * in; after that store, the current one. The list of what this
 * transaction wrote (its fresh blocks but cbno, and the carried-over
 * slots) after the history entries of the record's block, with
 * rec->fresh_count and fresh_crc (-E2BIG: too many for a list). The
 * current commit (after_crash: the newer one only if whole). */
uint64_t *pog_commit_slot_next(pog_store *s);
void pog_commit_slot_taken(pog_store *s);
/* The record the other slot names: the commit before the current one,
 * which the open falls back to (0: none, or not a record of an older
 * commit). */
uint64_t pog_commit_before(const pog_store *s);
/* fn for the block of every entry of the current commit's list: they
 * stay allocated while it is the current commit (its check after a
 * crash reads them), even those it does not reach. */
int pog_commit_listed(const pog_store *s,
		      int (*fn)(void *ctx, uint64_t bno), void *ctx);
int pog_fresh_list(pog_store *s, uint64_t cbno, struct pog_commit_rec *rec,
		   void *block, const uint64_t *slots, size_t nslots);
int pog_commit_find(pog_store *s, bool after_crash, struct pog_commit_rec *rec,
		    uint64_t *bno);
/* Forget the commit that pog_commit_find found cut short (its slot). */
void pog_commit_slot_drop(pog_store *s);

/* A bno that names an existing, allocated block of this pool. */
bool pog_bno_valid(const pog_store *s, uint64_t bno);

/* poolcheck.c: check what pmemobj_open and the superblock would trust in
 * the pool file fd (0, POG_EDAMAGED with why filled, POG_ENOTPOOL,
 * POG_ENEWER, -errno). */
int pog_pool_precheck(int fd, char *why, size_t why_size);
/* A commit record's block, whole: header, history and fresh lists check
 * (0, POG_ECORRUPT); the header in *rec either way. */
int pog_commit_block_check(const void *block, struct pog_commit_rec *rec);
bool pog_bno_fresh(const pog_store *s, uint64_t bno);
bool pog_bno_sealed(const pog_store *s, uint64_t bno);
void pog_bno_set_sealed(pog_store *s, uint64_t bno, bool sealed);

/* Tree nodes by node address (a bno, or a small node: format.h). */
static inline void *pog_node(const pog_store *s, uint64_t addr)
{
	return (char *)pog_block(s, pog_node_bno(addr)) +
	       (addr & POG_NODE_SMALL ? pog_node_slot(addr) * pog_node_size(addr)
				      : 0);
}
bool pog_node_valid(const pog_store *s, uint64_t addr);
/* Written in this transaction (may be changed in place). */
bool pog_node_fresh(const pog_store *s, uint64_t addr);
/* The DRAM state of segment i as the pool holds it (open.c loads them). */
void pog_seg_dram_init(pog_store *s, uint64_t i);
/* Stop filling the current small-slot blocks (GC recomputes use). */
void pog_small_forget(pog_store *s);
/* commit.c: CRC the transaction's small nodes; the carried-over slots
 * (fresh slots in blocks of earlier commits), sorted (*out malloc'd, NULL
 * when none), and their flush; then end the transaction's small-slot
 * state (committed or not). */
void pog_small_seal(pog_store *s);
int pog_small_slot_list(const pog_store *s, uint64_t **out, size_t *n);
void pog_small_flush(pog_store *s, const uint64_t *slots, size_t n);
void pog_small_end(pog_store *s, bool committed);
/* A new node of size bytes (256..4096, a power of two), not cleared. */
int pog_node_alloc(pog_store *s, uint32_t size, uint64_t *addr);
/* Let a node go (pog_block_release for blocks; a committed small slot
 * stays in its block until the garbage collector finds the block idle). */
void pog_node_release(pog_store *s, uint64_t addr);

/* store.c: block allocation inside the running transaction. */
int pog_block_alloc(pog_store *s, bool node, uint64_t *bno);
int pog_data_block_alloc(pog_store *s, uint64_t *bno);
/* Take [lo, hi) of the pool (whole blocks, written and about to be
 * flushed) out of this process's page tables, keeping its bytes: on a
 * file, the flush then writes the pages back without write-protecting
 * each one (a TLB shootdown a page); the next touch maps them again
 * from the page cache. For a pool not on persistent memory (env
 * is_pmem: there a flush is cache-line flushes, no msync). */
void pog_blocks_unmap(char *lo, char *hi);
/* Make sure `blocks` more blocks can be allocated (adding segments as
 * needed), so that an operation either fails before it changes anything
 * or runs to its end: -ENOSPC. */
int pog_reserve(pog_store *s, uint64_t blocks);

/*
 * The reserve (README "When the pool is full"). Operations that may grow
 * the store stop while the free blocks are at or below the reserve; those
 * that shrink it or keep its size may copy tree nodes into the reserve,
 * down to a floor that the commit and the garbage collector keep for
 * themselves. The sizes:
 * - POG_OP_NEED: what one operation may allocate (copies of the nodes on
 *   its paths through the object table and one or two directories, splits
 *   on the way up, a new root; a write adds two blocks a page);
 * - POG_COMMIT_NEED: a commit (an insert into the commit log: a copy and a
 *   split at each of at most POG_BT_MAX_DEPTH levels, a new root; and the
 *   commit record);
 * - POG_GC_STEP_NEED: one object leaving the object table (a copy of its
 *   path) or one page-index entry dropped;
 * - POG_SPACE_FLOOR: a commit, then GC's first step and the commit that
 *   ends its batch: what must stay free whatever is staged.
 */
#define POG_OP_NEED 128u
#define POG_COMMIT_NEED (2u * POG_BT_MAX_DEPTH + 2u)
#define POG_GC_STEP_NEED ((uint64_t)POG_BT_MAX_DEPTH)
#define POG_SPACE_FLOOR 128u
/* The reserve is 1/32 of the pool, at least this many blocks: the floor,
 * one shrinking operation, and as much again for the transaction's copies,
 * twice over so that half of it is left to renames (see pog_space_check). */
#define POG_RESERVE_MIN 640u
enum pog_space {
	POG_SPACE_GROW,   /* create, write, mkdir, link, setxattr, import */
	POG_SPACE_KEEP,   /* rename, chmod, retarget a ref: copies only */
	POG_SPACE_SHRINK, /* unlink, rmdir, truncate down, removexattr */
};
/* Free blocks, counting the segments not added yet (less their headers). */
uint64_t pog_free_blocks(const pog_store *s);
/* Blocks kept back from growing operations. */
uint64_t pog_reserve_blocks(const pog_store *s);
/* May an operation of this kind that allocates up to `need` blocks run
 * (making them allocatable)? -ENOSPC with the reason in last_error. */
int pog_space_check(pog_store *s, enum pog_space kind, uint64_t need);
/*
 * Add to seen (ino -> 1) every object the root reaches through entries and
 * refs in state st, and with pins what the kernel holds too. tolerant:
 * damaged objects end their branch instead of the walk (fsck).
 */
int pog_reachable(pog_store *s, const struct pog_state *st, bool pins,
		  bool tolerant, struct pog_map64 *seen);
/* A session of the env's own (GC's), at the latest commit, and its end
 * (its staged changes discarded). Write lock held. */
pog_store *pog_session_new_locked(struct pog_env *env);
void pog_session_free_locked(pog_store *s);
/* open.c: the session begins at the latest commit, which it pins. */
void pog_session_begin(pog_store *s);
/* commit.c: forget the transaction's change table, conflicts, list
 * edits and removed paths. */
void pog_changes_clear(pog_store *s);
/* Move every session with nothing staged to the latest commit. */
void pog_sessions_catch_up(pog_store *s);
/* session.c: mark in use what every session's staged state holds (its
 * fresh blocks, the small-node blocks it fills); mark.c marks the bases
 * (pinned commits). */
int pog_mark_sessions(pog_store *s);
/* Replay the session's changes onto the latest commit (its base is
 * older): -ESTALE with the paths in conflicts, nothing changed; else the
 * staged state is the latest plus this session's changes. */
int pog_merge_locked(pog_store *s);
void pog_conflicts_clear(pog_store *s);
/* GC with the write lock held (-EBUSY while changes are staged). */
int pog_gc_locked(pog_store *s, struct pog_gc_result *res);
/* commit.c: abort with the write lock held. */
void pog_abort_locked(pog_store *s);
/* commit.c: commit with the write lock held. */
int pog_commit_locked(pog_store *s, const char *message, uint64_t *id);
/* Let a committed block go now: nothing readable uses it any more
 * (commit pins, pins.c). */
void pog_block_free_now(pog_store *s, uint64_t bno);
/* Let a block go: a fresh one at once, a committed one after commit. */
void pog_block_release(pog_store *s, uint64_t bno);
/* changes.c: the transaction's change table (ino -> POG_CHG_*). */
void pog_note_change(pog_store *s, uint64_t ino, unsigned kind);
/* ino was made as an entry of dir (an A line, unless an import made it
 * in a directory that is new too: that directory's line covers it). */
void pog_note_added(pog_store *s, uint64_t ino, uint64_t dir);
bool pog_ino_new(const pog_store *s, uint64_t ino);
void pog_note_removed(pog_store *s, uint64_t ino);
/* Let a data page go: a fresh one at once; a committed one may be shared
 * (dedup), so only the garbage collector frees it. */
void pog_page_release(pog_store *s, uint64_t bno);
/* Compute the CRC of every page written in this transaction (staged page
 * refs of fresh pages carry none until then). Before dedup and the flush. */
int pog_pages_seal(pog_store *s);
/* Share the transaction's new pages with identical indexed ones and
 * index the rest (best effort: never fails the commit). */
void pog_dedup_staged(pog_store *s);
/* writeback.c: a large commit's fresh blocks go to the disk from a thread
 * while the commit seals and shares pages; wait before its flush. */
struct pog_writeback;
struct pog_writeback *pog_writeback_new(int fd);
void pog_writeback_add(struct pog_writeback *wb, off_t at, off_t len);
/* Starts the thread (NULL: nothing to wait for); takes wb. */
struct pog_writeback *pog_writeback_start(struct pog_writeback *wb);
void pog_writeback_wait(struct pog_writeback *wb);
void pog_early_writeback(struct pog_env *env, off_t at, off_t len);
void pog_early_stop(struct pog_env *env);
/* Drop index entries of pages nothing holds (after a mark). */
uint64_t pog_dedup_prune(pog_store *s);
/* Mark a committed-state block used (recovery and GC). */
void pog_mark_used(pog_store *s, uint64_t bno);

/* ---- pins.c: commits that stay readable ------------------------------ */
/* pins.c: which commits must stay readable, and the blocks waiting for them.
 * A commit is pinned while something may read it: a retained commit
 * (the last N, named snapshots) or an open session's base. Blocks that
 * commit M stopped using (replaced nodes, the previous commit record) are
 * queued under M and go back to the allocator only when no pinned commit
 * is older than M. With nothing older pinned they are freed at once, as
 * today.
 * Pin and unpin take pins.c's own mutex (any lock or none may be held);
 * pog_commit_pin answers -ENOENT for a commit whose record is gone (only
 * the latest commit and the readable older ones can be pinned). Unpinning
 * frees nothing by itself: the queued blocks go back at the next
 * pog_deferred_release (each commit and GC call it; call it yourself with
 * the write lock held to have them at once). pog_defer_free and
 * pog_deferred_release need the write lock. */
int pog_commit_pin(pog_store *s, uint64_t id);   /* refcounted */
void pog_commit_unpin(pog_store *s, uint64_t id);
uint64_t pog_pins_oldest(const pog_store *s);    /* oldest pinned id, or the latest commit id */
int pog_defer_free(pog_store *s, uint64_t id, uint64_t bno);
void pog_deferred_release(pog_store *s);

void pog_pins_init(pog_store *s);
void pog_pins_free(pog_store *s);
/* Commit id's record is at bno (the latest commit, or one found on open):
 * it can be pinned and read. */
int pog_pins_note_commit(pog_store *s, uint64_t id, uint64_t bno);
/* Read the commit record at bno and check its block whole (header,
 * history and fresh lists: pog_commit_block_check). */
int pog_commit_rec_read(const pog_store *s, uint64_t bno,
			struct pog_commit_rec *rec);
/* The state of readable commit id (-ENOENT when its record is gone). */
int pog_commit_state(pog_store *s, uint64_t id, struct pog_state *st);
/* The pinned ids and the latest, sorted, no duplicates (malloc'ed). */
int pog_pins_list(pog_store *s, struct pog_vec *ids);
/* After a mark (gc.c) recomputed the used bitmap from the pinned commits:
 * forget queued blocks no longer in use and records no longer readable. */
void pog_pins_after_mark(pog_store *s);
void pog_state_from_rec(struct pog_state *st, const struct pog_commit_rec *rec);

/* ---- history.c: retention, snapshots, views --------------------------- */
int pog_history_init(pog_store *s);
void pog_history_free(pog_store *s);
/* On open, after the latest commit is loaded: pin the commits its record
 * lists, read the snapshot names. */
int pog_history_load(pog_store *s, const struct pog_commit_rec *rec);
/* While commit id is made: fill rec's history fields and write the list
 * into the record's block (ents). Never fails. */
void pog_history_fill(pog_store *s, uint64_t id, struct pog_commit_rec *rec,
		      struct pog_history_ent *ents);
/* After the commit point: pin what the new list holds, let go of the rest,
 * empty the views of commits that left. */
void pog_history_committed(pog_store *s);
/* The state behind a view slot (an empty one when it is gone; store.c,
 * beside pog_view, as views are read by every layer). */
const struct pog_state *pog_history_state(pog_store *s, uint64_t slot);
/* The view bits of a state pog_view returned (store.c). */
uint64_t pog_view_bits(pog_store *s, const struct pog_state *st);
/* Space is short: the next commit keeps only named commits (store.c:
 * the space check sets it). */
void pog_history_squeeze(pog_store *s);

/* ---- btree.c ------------------------------------------------------------ */

/* Read: *val points into the pool, valid until the next change. */
int pog_bt_get(pog_store *s, uint64_t root, uint64_t key, const void **val,
	       uint16_t *vlen);
/* Insert or replace. vlen <= POG_VALUE_MAX. */
int pog_bt_put(pog_store *s, uint32_t kind, uint64_t *root, uint64_t key,
	       const void *val, uint16_t vlen);
/* Writable pointer to an existing value (copies the path): -ENOENT. */
int pog_bt_get_mut(pog_store *s, uint64_t *root, uint64_t key, void **val,
		   uint16_t *vlen);
int pog_bt_del(pog_store *s, uint64_t *root, uint64_t key);
/* Release every block of a tree (values are the caller's business). */
void pog_bt_release(pog_store *s, uint64_t root);

#define POG_BT_MAX_DEPTH 16
struct pog_bt_iter {
	pog_store *s;
	int depth; /* levels on the path; 0 = exhausted */
	uint64_t addr[POG_BT_MAX_DEPTH];
	uint16_t pos[POG_BT_MAX_DEPTH];
};
/* Position at the first key >= key. Returns 1 positioned, 0 at end, <0. */
int pog_bt_seek(struct pog_bt_iter *it, pog_store *s, uint64_t root,
		uint64_t key);
void pog_bt_cur(const struct pog_bt_iter *it, uint64_t *key, const void **val,
		uint16_t *vlen);
int pog_bt_next(struct pog_bt_iter *it);

/* Visit, writable in place, the values held in this transaction's fresh
 * leaves (committed subtrees cannot hold anything new). */
int pog_bt_foreach_fresh(pog_store *s, uint64_t root,
			 int (*fn)(void *ctx, uint64_t key, void *val,
				   uint16_t vlen),
			 void *ctx);
/* Visit every node of a tree: fn(ctx, addr, hdr) returns non-zero to stop. */
int pog_bt_walk(pog_store *s, uint64_t root,
		int (*fn)(void *ctx, uint64_t addr, const struct pog_node_hdr *h),
		void *ctx);
/* Call fn for every key whose value differs between two trees (a only,
 * b only, or both with different bytes), in key order; the values are
 * NULL where the key is absent. Subtrees the trees share (same node
 * address) are skipped unread, so two versions of a tree are compared in
 * time proportional to what differs. fn returns non-zero to stop (that
 * value is returned). */
typedef int (*pog_bt_diff_fn)(void *ctx, uint64_t key, const void *a,
			      uint16_t alen, const void *b, uint16_t blen);
int pog_bt_diff(pog_store *s, uint64_t root_a, uint64_t root_b,
		pog_bt_diff_fn fn, void *ctx);
/* Pack the leaves under each lowest branch node tightly, freeing those
 * that empty (*freed counts them); only where a leaf can be freed. Stops
 * with -ENOSPC when room() says no: commit and call again. */
int pog_bt_compact(pog_store *s, uint64_t *root, bool (*room)(pog_store *s),
		   uint64_t *freed);
/*
 * Counted trees (a list's, format 3): each branch node keeps the number
 * of entries under each child, so ranks are O(log n). -EINVAL on a tree
 * that does not count (a format-2 list read before its upgrade).
 */
/* The number of keys < key. */
int pog_bt_rank(pog_store *s, uint64_t root, uint64_t key, uint64_t *rank);
/* Position it at the entry of rank `rank` (0-based): 1, 0 past the end, <0. */
int pog_bt_select(struct pog_bt_iter *it, pog_store *s, uint64_t root,
		  uint64_t rank);
/* The number of entries. */
int pog_bt_count(pog_store *s, uint64_t root, uint64_t *count);
/* Every branch's count is its subtree's (fsck): POG_ECORRUPT. */
int pog_bt_check_counts(pog_store *s, uint64_t root);
/* Visit the values of this transaction's fresh leaves in key order; fn
 * may shorten a value by lowering *vlen. */
int pog_bt_trim_fresh(pog_store *s, uint64_t root,
		      int (*fn)(void *ctx, uint64_t key, void *val,
				uint16_t *vlen),
		      void *ctx);
/* Check a node's address and header sanity (magic, counts). */
int pog_node_check(const pog_store *s, uint64_t addr, uint32_t kind);

/* ---- objects: inode.c dirent.c pages.c path.c type.c object.c ---------- */

int pog_inode_get(pog_store *s, const struct pog_state *st, uint64_t ino,
		  const struct pog_inode **out);
/* Bytes of an inode record as stored (fixed part + inline bytes). */
size_t pog_inode_len(const struct pog_inode *in);
/* A record as a tree holds it (val, vlen bytes) copied into *out, the
 * rest zeroed; POG_ECORRUPT when vlen cannot be a record's length. */
int pog_inode_copy(const void *val, uint16_t vlen, struct pog_inode *out);
/* Visit every block held by an object (content trees, pages, xattrs):
 * is_node says bno is a tree node address (pog_node_bno gives its block). */
int pog_object_blocks(pog_store *s, const struct pog_inode *in,
		      int (*fn)(void *ctx, uint64_t bno, int is_node),
		      void *ctx);
/* Visit the children (owned entries) and ref targets of an object. */
int pog_object_edges(pog_store *s, const struct pog_inode *in,
		     int (*fn)(void *ctx, uint64_t ino, int owned), void *ctx);
/* The garbage collector is removing dir, which names ino that lives on:
 * ino loses that name (its link count, and its place when dir was it). */
int pog_child_orphaned(pog_store *s, uint64_t ino, uint64_t dir);
/* Remove an object from the staged object table and release its blocks. */
int pog_object_destroy(pog_store *s, uint64_t ino);
int pog_page_read(pog_store *s, uint64_t bno, uint32_t crc, const void **data);
/* Read a string's bytes (lock held). */
ssize_t pog_data_read(pog_store *s, const struct pog_inode *in, uint64_t off,
		      void *buf, size_t len);
/* The file name of a directory entry (key, value as stored). */
ssize_t pog_entry_name(uint32_t type, uint64_t key, const void *val,
		       uint16_t vlen, char *buf, size_t size);
/* pog_path with the store lock already held (staged view). */
ssize_t pog_path_locked(pog_store *s, const struct pog_state *st, uint64_t ino,
			char *buf, size_t size);

/* pog_resolve with the store lock held, in state st. */
int pog_resolve_locked(pog_store *s, const struct pog_state *st, uint64_t dir,
		       const char *path, uint64_t *ino);
/* The staged child named key in directory dir: 0 and *child, or -errno. */
int pog_child_of(pog_store *s, uint64_t dir, const char *key, size_t len,
		 uint64_t *child);
/* The staged record of ino (a copy), and storing one back. */
int pog_inode_load(pog_store *s, uint64_t ino, struct pog_inode *copy);
int pog_inode_put(pog_store *s, uint64_t ino, const struct pog_inode *in);
/* Let a string's pages go (it becomes empty). */
int pog_data_release(pog_store *s, struct pog_inode *in);
/* A typed scalar's value and text (len <= POG_INLINE_MAX), inline. */
void pog_scalar_set(struct pog_inode *in, uint64_t bits, const char *text,
		    size_t len);

/* Create the root map of a new store (staged). */
int pog_root_init(pog_store *s);
/* gc.c: recompute the in-use bitmap from the committed state; with
 * index_pages the pages the page index names count as used. */
int pog_mark_committed(pog_store *s, bool index_pages);

/* mark.c: set in bits (one per bno) the blocks of the pinned commits
 * other than the last one (fsck: what history holds). */
int pog_mark_history(pog_store *s, uint64_t *bits);

/* ---- edit.c: real tools keep the graph -------------------------------- */
/*
 * Saving by rename is an edit: when a scalar with no other name is
 * replaced (rename over it, or renamed away and unlinked once a new file
 * took its name) by a new untyped file whose text parses as its type,
 * the new file takes its type, its xattrs (when it has none) and its
 * refs. All with the write lock held.
 */
/* After a rename that replaced `replaced` by `by` (no exchange). */
int pog_edit_replaced(pog_store *s, uint64_t replaced, uint64_t by);
/* A file moved from name key in dir (remembered for the next two). */
int pog_edit_moved(pog_store *s, uint64_t ino, uint64_t dir, const char *key,
		   size_t len);
/* After the unlink of ino's last name. */
int pog_edit_unlinked(pog_store *s, uint64_t ino);
/* pog_set_type was asked for ino: a new file typed on purpose. */
void pog_edit_typed(pog_store *s, uint64_t ino);
/* A ref now points at target (keeps the reverse index current). */
void pog_edit_ref(pog_store *s, uint64_t ref, uint64_t target);
/* At the start of a commit: refuse empty typed scalars (-EINVAL, named
 * in the last error), then turn pending symlinks into refs. */
int pog_edit_commit_prepare(pog_store *s);
/* End of a transaction (commit or abort): forget its records. */
void pog_edit_end(pog_store *s);
/* Free everything (store close). */
void pog_edit_free(pog_store *s);

/* ---- list.c: a list's names and order ---------------------------------- */
#define POG_LIST_POS_DIGITS 13                 /* digits before the point */
#define POG_LIST_NAMED ((uint64_t)1 << 62)     /* temporary entries; the
						  positions' keys are below */
#define POG_LIST_FIRST_KEY ((uint64_t)1 << 61) /* an empty list's first */
#define POG_LIST_KEY_STEP ((uint64_t)1 << 24)  /* between appended keys */

enum { POG_LIST_POSITION, POG_LIST_FRACTION_NAME, POG_LIST_TEMP };
struct pog_list_name {
	int kind;
	uint64_t whole;   /* positions: the integer part */
	const char *frac; /* fractions: the digits after the point */
	size_t frac_len;
};
/* What a name in a list is: 0, or -EINVAL for a number too big. */
int pog_list_name_parse(const char *name, size_t len, struct pog_list_name *out);

/* How the entries of list ino are named in one view (list.c says how). */
struct pog_list_names {
	pog_store *s;
	uint64_t ino;
	uint64_t base;  /* the committed tree: its ranks name the entries
			   that carry no name */
	bool legacy;    /* a format-2 list (read only): keys are names */
};
int pog_list_names_init(struct pog_list_names *nm, pog_store *s,
			const struct pog_state *st, uint64_t ino,
			const struct pog_inode *in);
/* The committed rank of key (an entry that carries no name). */
int pog_list_base_rank(const struct pog_list_names *nm, uint64_t key,
		       uint64_t *rank);
/* The name (raw, NUL-terminated in buf) of the entry (key, val, vlen):
 * its length, or <0. */
ssize_t pog_list_name_of(const struct pog_list_names *nm, uint64_t key,
			 const void *val, uint16_t vlen, char *buf, size_t size);
/* Where a name that is not there would go among root's positions. */
struct pog_list_place {
	uint64_t rank, count;  /* its rank; positions in all */
	bool has_pred, has_succ;
	uint64_t pred, succ;   /* keys of its neighbours */
};
/* Find a position (a number) in root: 0 with *key, *child; else -ENOENT
 * and, when place is given, where it would go. */
int pog_list_find(const struct pog_list_names *nm, uint64_t root,
		  const struct pog_list_name *want, uint64_t *key,
		  uint64_t *child, struct pog_list_place *place);
/* The key a new entry named want takes in dir (list ino): -EEXIST when
 * the name is taken. May respace a few neighbours (their children's
 * parent_key follow). */
int pog_list_new_key(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     const struct pog_list_names *nm,
		     const struct pog_list_name *want, uint64_t *key);
/* The list ino changed in this transaction (the commit looks at it):
 * 0 or -ENOMEM (then change nothing). */
int pog_list_touched(pog_store *s, uint64_t ino);
/* Its entry key, one that carried no name, goes (before the removal). */
void pog_list_removed(pog_store *s, uint64_t ino,
		      const struct pog_list_names *nm, uint64_t key);
/* At the start of a commit: refuse temporary entries (-EINVAL, named in
 * the last error); changes nothing. */
int pog_lists_settle(pog_store *s);
/* When nothing can fail the commit any more: the carried names go (the
 * names become the ranks) and the lists whose names change are noted
 * for pog_renumbered. */
void pog_lists_seal(pog_store *s);
/* Forget the transaction's list edits (after commit or abort). */
void pog_lists_clear(pog_store *s);
/* Rebuild format-2 list trees (staged; the caller commits: pog_open of a
 * format-2 pool, writable). */
int pog_lists_upgrade(pog_store *s);

/* A list's entries in key order: positions in numeric order, then the
 * temporary entries. */
struct pog_list_iter {
	struct pog_bt_iter cur;
	uint64_t key, child;    /* the current entry */
	const void *val;
	uint16_t vlen;
	struct pog_bt_iter base; /* pog_list_iter_name's committed cursor */
	int base_ok;
	uint64_t base_rank;
};
/* Start at a readdir cookie (0: the first entry). 1 positioned, 0 at the
 * end, <0 error. A cookie is a key + 1: removing entries does not move
 * the others. */
int pog_list_seek(struct pog_list_iter *it, pog_store *s, uint64_t root,
		  uint64_t cookie);
int pog_list_next(struct pog_list_iter *it);
/* The cookie that resumes after the current entry (0 < c < 2^63). */
uint64_t pog_list_cookie(const struct pog_list_iter *it);
/* The current entry's raw name in buf; its length or <0. */
ssize_t pog_list_iter_name(struct pog_list_iter *it,
			   const struct pog_list_names *nm, char *buf,
			   size_t size);
void pog_list_iter_release(struct pog_list_iter *it);

/* ---- hcache.c: the hash cache (merkle.c computes it) ----------------- */
/* An object's content changed (write lock held). */
void pog_hash_changed(pog_store *s, uint64_t ino);
/* dir's entry `key` was added, removed or re-pointed (write lock held). */
void pog_hash_entry_changed(pog_store *s, uint64_t dir, uint64_t key);
/* dir's entries all have new keys (a map became a list or back). */
void pog_hash_rekeyed(pog_store *s, uint64_t ino);
/* Forget every cached hash (abort, gc, close). */
void pog_hash_reset(pog_store *s);
/* merkle.c: pog_hash of a staged ino with the store lock held. */
int pog_hash_locked(pog_store *s, uint64_t ino, uint32_t *out);

/* ---- moved.c: what a moving view changed ----------------------------- */
/* Add what differs between from and to to s->moved (when tracked). */
void pog_moved_collect(pog_store *s, const struct pog_state *from,
		       const struct pog_state *to);

/* ---- report.c: what a commit changed ---------------------------------- */
/* One line of the staged changes: kind, ino (0 for D), path. */
struct pog_change_line {
	char kind;
	uint64_t ino;
	char *path;
};
/* The staged changes (pog_changes's lines), unsorted, lock held: *out
 * is malloc'd (free each path, then it). -ENOMEM. */
int pog_change_lines(pog_store *s, struct pog_change_line **out, size_t *n);
/* In a commit, after its commit point (lock held): fill s->report. */
void pog_report_collect(pog_store *s);

/* ---- value.c: typed scalars ------------------------------------------- */
/* Parse text (white space around it allowed) as a scalar of type. */
int pog_scalar_parse(unsigned type, const char *text, size_t len,
		     uint64_t *bits);
/* Canonical text of a scalar, without the newline; returns its length. */
size_t pog_scalar_format(unsigned type, uint64_t bits, char *buf, size_t size);
bool pog_type_is_scalar(unsigned type);

/* ---- progress.c ------------------------------------------------------- */
/* One step of long work done: tells pog_set_progress's callback now and
 * then (always at done == total). */
void pog_progress_note(const char *unit, uint64_t done, uint64_t total);

/* ---- locking helpers (store.c) ----------------------------------------- */
int pog_rdlock(pog_store *s);
int pog_wrlock(pog_store *s);
void pog_unlock(pog_store *s);
/* The state a read of ino uses, and the ino with the view bit stripped. */
const struct pog_state *pog_view(pog_store *s, uint64_t *ino);

#endif /* POG_STORE_INT_H */
