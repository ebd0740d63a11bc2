/* pog.h - the public API of the pogfs store library (core/). */
#ifndef POG_H
#define POG_H

/*
 * Calling sequence
 * ----------------
 *   pog_store *s;
 *   pog_create(path, size, &s)  or  pog_open(path, 0, &s);
 *   ... pog_lookup / pog_mknode / pog_write / ... (all staged) ...
 *   pog_commit(s, "message", &id);   or   pog_abort(s);
 *   pog_close(s);                  (discards what is still staged)
 *
 * Sessions (as LMDB's MDB_env and MDB_txn, MagLev's sessions): the pool
 * is shared by the sessions opened on it; a pog_store handle is one
 * session, with its own transaction. pog_open / pog_create open the pool
 * and its first session; more are added with
 *   pog_session_open(s, &s2);       (s2 begins at the latest commit)
 * Each session reads the commit it began from plus its own staged changes
 * (snapshot isolation); pog_commit makes them the new latest commit (first
 * committer wins: see pog_commit), pog_abort moves the session to the
 * latest commit. pog_close closes a session; closing the last one closes
 * the pool (GC first). All sessions of a pool are used from one process;
 * writers of all sessions are serialised.
 *
 * Every function returns 0 (or a non-negative count where documented) on
 * success and a negative value on failure: either -errno, or one of the
 * store-specific POG_E* codes below. pog_strerror() names any of them.
 *
 * Objects are named by their identity ("ino"), a 64-bit number that is
 * never reused within a pool. POG_ROOT_INO is the root map.
 *
 * Views: every ino below 2^62 names the staged state (what the mount
 * shows). The same ino with POG_COMMITTED_BIT set names that object as of
 * the last commit (read-only; writes answer -EROFS). Read calls accept
 * both; readdir/lookup in the committed view return committed inos.
 *
 * Thread safety: a pog_store may be used from many threads at once; the
 * store serialises writers and lets readers run in parallel.
 *
 * Ownership: strings passed in are copied; nothing passed in is kept.
 */

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pog_store pog_store;

#define POG_ROOT_INO ((uint64_t)1)
#define POG_COMMITTED_BIT ((uint64_t)1 << 62)
/* A read-only view of a retained commit (history): POG_COMMITTED_BIT and
 * a view slot (1 .. POG_VIEW_SLOTS - 1) in the bits from POG_VIEW_SHIFT
 * up; slot 0 is the last commit. Identities stay below 2^48. */
#define POG_VIEW_SHIFT 48
#define POG_VIEW_SLOTS ((uint64_t)1 << 14)
#define POG_INO_MASK (((uint64_t)1 << POG_VIEW_SHIFT) - 1)

/* Limits (a kernel filesystem answers the same errnos). */
#define POG_KEY_MAX 1024          /* bytes in a map key: -ENAMETOOLONG */
#define POG_XATTR_NAME_MAX 255    /* -ERANGE / -ENAMETOOLONG */
#define POG_XATTR_VALUE_MAX 1024  /* -E2BIG (or -ENOSPC as ext4) */
#define POG_SYMLINK_MAX 4095      /* -ENAMETOOLONG */
#define POG_FILE_MAX ((uint64_t)1 << 44) /* 16 TiB: -EFBIG */
#define POG_MESSAGE_MAX 1000      /* commit message bytes (longer: -E2BIG) */

/* Store-specific error codes (negative, outside errno's range). */
enum {
	POG_ENOTPOOL = -2001, /* the file is not a pogfs pool */
	POG_ENEWER = -2002,   /* the pool has a newer format than we read */
	POG_ECORRUPT = -2003, /* damaged structure or checksum mismatch */
	POG_ELOCKED = -2004,  /* another process holds the pool */
	POG_EFATAL = -2005,   /* an earlier fatal error: store refuses work */
	POG_EDAMAGED = -2006, /* damaged pool metadata: refused before use */
};

/* Name of any error code this API returns (static string). */
const char *pog_strerror(int err);

/* Object types. Directories are maps and lists; files are scalars.
 * A typed scalar (int, float, bool, null) is shown as its text: the
 * canonical form plus "\n" when set by conversion or import, or the text
 * last written, which must parse (-EINVAL otherwise, old value kept).
 * An empty file may be given a typed scalar's type, and truncating one to
 * 0 bytes is allowed: an empty typed scalar has no value (its hash is its
 * tag alone), pog_export refuses it and pog_commit fails with -EINVAL
 * naming it in the last error while one is reachable. */
enum pog_type {
	POG_MAP = 1,
	POG_LIST = 2,
	POG_STRING = 3,
	POG_INT = 4,
	POG_FLOAT = 5,
	POG_BOOL = 6,
	POG_NULL = 7,
	POG_REF = 8,     /* symlink that names an object by identity */
	POG_SYMLINK = 9, /* symlink kept as plain text */
	POG_SPECIAL = 10 /* fifo, socket, char or block device (see mode) */
};

/* Name of a type ("map", "string", ...); NULL for an unknown value. */
const char *pog_type_name(unsigned type);
/* The type named name (len bytes): -EINVAL when there is none. */
int pog_type_parse(const char *name, size_t len, unsigned *type);

struct pog_time {
	int64_t sec;
	uint32_t nsec;
};

struct pog_attr {
	uint64_t ino;
	uint32_t type;   /* enum pog_type */
	uint32_t mode;   /* full st_mode including S_IFMT */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;  /* owning entries (hard links); dirs: 2 + subdirs */
	uint32_t pad;
	uint64_t size;   /* bytes shown to stat() */
	uint64_t blocks; /* 512-byte units allocated */
	uint64_t rdev;
	struct pog_time atime, mtime, ctime;
};

/* ---- store lifecycle ------------------------------------------------- */

/*
 * Create a new store at path (never overwrites: -EEXIST). size 0 means
 * the default, 1 GiB. On success *out is open with an empty root map.
 */
int pog_create(const char *path, uint64_t size, pog_store **out);

#define POG_OPEN_READONLY 1u /* no changes; still held exclusively:
				     libpmemobj locks the pool file */
#define POG_OPEN_NOLOCK 2u   /* for tests only */
/*
 * Open an existing store, taking an exclusive lock on the file
 * (POG_ELOCKED if another process holds it). Recovers from an unclean
 * shutdown (re-derives free space from the last commit). On failure *out
 * is untouched.
 */
int pog_open(const char *path, unsigned flags, pog_store **out);

/*
 * Check the metadata of the pool file at path that libpmemobj and the
 * store would trust (headers, lanes' logs, heap zones and chunks; every
 * offset and size bounded by the file) without opening it: 0 when it may
 * be opened, POG_EDAMAGED with a one-line reason in why (always
 * NUL-terminated when why_size > 0), POG_ENOTPOOL, or -errno. pog_open
 * runs the same check and answers POG_EDAMAGED (the reason is then this
 * function's), also for a damaged superblock or segment table.
 */
int pog_check_pool_file(const char *path, char *why, size_t why_size);

/* Discard the session's staged changes as closing it would (recorded in
 * the pool: pog_status's discarded_changes), and move it to the latest
 * commit; the session stays open. Returns how many were discarded. */
int pog_discard(pog_store *s);
/*
 * Close: discards staged changes (returns how many there were, >= 0) and,
 * unless POG_CLOSE_NOGC, collects garbage first. A writable store records
 * a discard (count and time) in the pool, for pog_status. s is freed in
 * any case.
 */
#define POG_CLOSE_NOGC 1u
int pog_close(pog_store *s, unsigned flags);

/*
 * The format version of the pool file at path (for a message naming both
 * versions after POG_ENEWER), and the newest version this library reads.
 */
int pog_pool_format(const char *path, uint32_t *version);
uint32_t pog_format_version(void);

/*
 * Who holds the pool file at path (a pogfs daemon marks, beside its lock,
 * whether it serves a mount or is finishing after its unmount), so that a
 * new daemon can wait for one that is finishing instead of failing.
 * pog_holder returns one of these or -errno; pog_set_holder sets s's mark
 * (SERVING or FINISHING; OTHER clears it).
 */
enum pog_holder_state {
	POG_HOLDER_NONE = 0,      /* nobody holds it */
	POG_HOLDER_OTHER = 1,     /* a pog command (or an older pogfs) */
	POG_HOLDER_SERVING = 2,   /* a daemon serving a mount */
	POG_HOLDER_FINISHING = 3, /* a daemon after its unmount: discarding,
				     collecting garbage, closing */
};
int pog_holder(const char *path);
int pog_set_holder(pog_store *s, int state);

/* ---- sessions ------------------------------------------------------- */

/* A new session on the pool any belongs to, at the latest commit. */
int pog_session_open(pog_store *any, pog_store **out);
/* Sessions open on s's pool. */
unsigned pog_session_count(pog_store *s);

/* ---- transactions ---------------------------------------------------- */

/*
 * Make everything staged durable, atomically. When it returns 0 the
 * commit survives a crash of the process and of the machine; *id (may be
 * NULL) receives its id. message may be NULL. With nothing staged it
 * still records a commit (ids grow by one per commit).
 * On failure (-ENOSPC, -EIO) nothing was committed and everything staged
 * is still staged.
 * When other sessions committed since this session's base, its changes
 * are replayed onto the latest commit (in time proportional to them):
 * first committer wins. An object both changed (content, attributes,
 * xattrs, the same map key, the same list) fails the commit with -ESTALE,
 * nothing applied, everything still staged, the paths in pog_conflicts;
 * a map both changed at different keys merges. After a successful
 * commit the session's base is the new commit.
 */
int pog_commit(pog_store *s, const char *message, uint64_t *id);

/*
 * What a commit changed, as pog_commit_report reports it: one change per
 * line of pog_changes (the same A, M and D lines), with the path the new
 * commit gives it (lists renumbered) and, for A and M, the object and its
 * Merkle hash in the new commit (what user.pog.hash shows after it).
 */
struct pog_change {
	char kind;       /* 'A', 'M' or 'D' */
	int has_hash;    /* A and M: hash is set (0 for D, or when the
			    object could not be hashed: damaged) */
	uint32_t hash;
	uint64_t ino;    /* A and M: the object; D: 0 */
	char *path;      /* from the root, escaped names; "" is the root */
};
/* The hash, in the new commit, of a path the caller asked about. */
struct pog_path_hash {
	int found;       /* 0: nothing there (hash is 0) */
	uint32_t hash;
};
struct pog_commit_report {
	uint64_t id;
	size_t nchanges;
	struct pog_change *changes; /* sorted by path */
	struct pog_path_hash *paths; /* one per path asked, in order */
	int incomplete;  /* out of memory while collecting: some changes
			    are missing (the commit stands) */
};
/*
 * pog_commit, and what it changed, atomically: the changes are collected
 * after the commit point under the same lock, so another commit cannot
 * come in between; and the hash of each of the npaths paths (from the
 * root, escaped names) in the new commit. On success *out (when not
 * NULL) is a report to free with pog_commit_report_free; on failure it
 * is NULL. Collecting costs what the commit changed (the paths of the
 * changed objects, their hashes from the cache), never the store.
 */
int pog_commit_report(pog_store *s, const char *message, uint64_t *id,
		      const char *const *paths, size_t npaths,
		      struct pog_commit_report **out);
void pog_commit_report_free(struct pog_commit_report *r);

/*
 * The lists whose names the last successful pog_commit changed: after a
 * commit a list's names are 0..n-1 in order (inside a transaction names
 * never shift), so those where an entry was removed before others, or
 * an entry was made under a name that is not its rank. fn(ctx, dir) for
 * each; a non-zero return stops and is returned. For telling a cache
 * which names moved. A failed commit changes no name (and lists none).
 */
int pog_renumbered(pog_store *s, int (*fn)(void *ctx, uint64_t dir),
		   void *ctx);

/*
 * For the daemon's kernel caches: with pog_track_moves(s, true), each
 * time the session's view moves (pog_abort, a pog_commit onto commits
 * made since its base, GC moving an idle session) the core collects what
 * differs between the view before and the view after, in time
 * proportional to that: the objects whose records differ, the map
 * entries that differ (child: the inode the old view gave, or the new one
 * when the name is new; removed: the new view has no such name), and the
 * lists whose names (ranks) may all have moved. all: too much or out of
 * memory, drop every cache. pog_take_moved hands it over (free it with
 * pog_moved_clear) and starts a new collection.
 */
struct pog_moved_name {
	uint64_t dir, child;
	bool removed;
	char *name;  /* escaped as readdir shows it, NUL-terminated */
	size_t len;
};
struct pog_moved {
	uint64_t *inos;
	size_t ninos, inos_cap;
	uint64_t *lists;
	size_t nlists, lists_cap;
	struct pog_moved_name *names;
	size_t nnames, names_cap;
	bool all;
};
void pog_track_moves(pog_store *s, bool on);
void pog_take_moved(pog_store *s, struct pog_moved *out);
void pog_moved_clear(struct pog_moved *m);

/*
 * The paths the last pog_commit that failed with -ESTALE found changed on
 * both sides (this session's staged changes and a commit made since its
 * base): fn(ctx, path) each; empty after a successful commit or abort.
 */
int pog_conflicts(pog_store *s, int (*fn)(void *ctx, const char *path),
		  void *ctx);

/* Throw away everything staged; the view returns to the last commit. */
int pog_abort(pog_store *s);

/* Number of staged changes (objects added, modified or removed). */
uint64_t pog_staged_count(pog_store *s);

struct pog_status {
	uint64_t format_version;
	uint64_t commit_id;       /* last commit, 0 = none yet */
	struct pog_time commit_time;
	uint64_t staged;          /* staged changes */
	uint64_t pool_size;       /* bytes the pool file may hold */
	uint64_t pool_used;       /* bytes in use by blocks */
	uint64_t block_size;
	uint64_t blocks_total;    /* blocks the pool can hold */
	uint64_t blocks_used;
	uint64_t blocks_reserved; /* free blocks only deleting, truncating,
				     renaming, commit and GC may use (as
				     ext4's reserved blocks) */
	uint64_t objects;         /* objects in the staged object table */
	uint64_t logical_bytes;   /* sizes of all files added up (what they
				     would take with nothing shared) */
	uint64_t next_ino;
	uint64_t gc_runs;         /* GC runs in this session */
	uint64_t gc_freed_blocks; /* by the last GC */
	uint64_t gc_freed_objects;
	uint64_t checksum_errors; /* CRC mismatches seen in this session */
	char last_error[256];     /* "" when none */
	/* The last close that discarded staged changes: how many, when
	 * (0 and {0, 0} when none was recorded). */
	uint64_t discarded_changes;
	struct pog_time discarded_time;
	/* This session: its number (1, 2, ... in the order opened), the
	 * commit its view is based on (commit_id is the latest), and the
	 * sessions open on the pool. */
	uint64_t session_id;
	uint64_t base_id;
	uint64_t sessions;
	/* History (SPEC 5a): commits kept readable, how many are retained
	 * now (the last one included), and how often retention of unnamed
	 * commits gave way to a full pool. */
	uint64_t keep;
	uint64_t retained;
	uint64_t history_dropped;
};
int pog_status(pog_store *s, struct pog_status *out);

/*
 * Record the reason of the last failed command (shown in status).
 * fmt is printf-style; pass NULL to clear.
 */
void pog_set_error(pog_store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line of the commit log, oldest first. */
struct pog_log_entry {
	uint64_t id;
	struct pog_time time;
	uint64_t changes;
	const char *message; /* valid during the callback only */
	const char *session; /* who committed ("" when not recorded) */
};
/* The name commits record as their session (the daemon's mount point);
 * NULL: none. At most POG_SESSION_MAX bytes are kept. */
#define POG_SESSION_MAX 200
int pog_set_session_name(pog_store *s, const char *name);
/* Call fn for each commit; fn returns non-zero to stop (returned). */
int pog_log(pog_store *s, int (*fn)(void *ctx, const struct pog_log_entry *e),
	    void *ctx);

/* ---- history: retained commits, snapshots, diff (SPEC 5a) ------------ */
/*
 * The last pog_keep() commits and every named snapshot are retained: their
 * trees stay whole (GC keeps what they reach) and can be read through a
 * view (pog_history_root). When the pool is short of space, retention of
 * commits no snapshot names gives way (status counts it).
 */
#define POG_KEEP_DEFAULT 16u
#define POG_KEEP_MAX 128u
unsigned pog_keep(pog_store *s);
/* Persisted in the pool; 1 .. POG_KEEP_MAX (-EINVAL). */
int pog_set_keep(pog_store *s, unsigned n);
/* The retained commit ids, ascending (the last commit included);
 * *ids is malloc'ed. */
int pog_history(pog_store *s, uint64_t **ids, size_t *n);
int pog_retained(pog_store *s, uint64_t id); /* 1 or 0 */
/* The root map of retained commit id as a read-only view: an ino with
 * view bits, stable while the commit is retained (-ENOENT otherwise). */
int pog_history_root(pog_store *s, uint64_t id, uint64_t *root);
/* The commit a view ino shows (0 for the staged view). */
uint64_t pog_view_commit(pog_store *s, uint64_t ino);
/* The Merkle hash of a retained commit's root (remembered once known). */
int pog_commit_hash(pog_store *s, uint64_t id, uint32_t *hash);
/* Name commit id (retained; 0: the last commit): -EEXIST, -ENOENT, -EINVAL
 * for an empty name or one with '/' or NUL, -ENOSPC when the history has
 * no room. Names are keys (bytes; the daemon escapes them as keys). */
int pog_snapshot(pog_store *s, const char *name, size_t len, uint64_t id);
int pog_unsnapshot(pog_store *s, const char *name, size_t len);
int pog_snapshot_find(pog_store *s, const char *name, size_t len,
		      uint64_t *id);
/* Every snapshot, in name order; fn returns non-zero to stop. */
int pog_snapshots(pog_store *s,
		  int (*fn)(void *ctx, const char *name, size_t len, uint64_t id),
		  void *ctx);
/*
 * What changed from commit a to commit b (retained ids; POG_DIFF_STAGED
 * for the staged state): fn(kind 'A'/'M'/'D', path) sorted by path, in
 * time proportional to what differs (subtrees both share are skipped).
 */
#define POG_DIFF_STAGED ((uint64_t)0)
int pog_diff(pog_store *s, uint64_t a, uint64_t b,
	     int (*fn)(void *ctx, char kind, const char *path), void *ctx);

/*
 * Stage the inverse of commit id (ZODB's undo): what it changed goes back
 * to what the commit before it had (both must be retained). Where a later
 * commit or a staged change changed the same object, xattrs, map key or
 * list, nothing is staged: -ESTALE, and conflict(ctx, path) is called for
 * each such path (the last error says how many).
 */
int pog_revert(pog_store *s, uint64_t id,
	       int (*conflict)(void *ctx, const char *path), void *ctx);

/* Staged changes: kind is 'A', 'M' or 'D'; path relative to the root. */
int pog_changes(pog_store *s,
		int (*fn)(void *ctx, char kind, const char *path), void *ctx);

/* ---- objects: reading ------------------------------------------------ */

int pog_getattr(pog_store *s, uint64_t ino, struct pog_attr *out);

/* Look a key up in a map or list dir; fills *out with the child. */
int pog_lookup(pog_store *s, uint64_t dir, const char *name, size_t len,
	       struct pog_attr *out);

/*
 * List a directory from position `cookie` (0 = start): a map in key
 * order, a list in the numeric order of its names, then its temporary
 * entries (names never shift inside a transaction, so tools that unlink
 * entries as they read them meet each once). fn receives each entry with
 * the cookie that resumes after it
 * (always > 0 and < 2^61);
 * when fn returns non-zero the listing stops (that value is returned,
 * and the entry it was given counts as not consumed).
 */
typedef int (*pog_dirent_fn)(void *ctx, const char *name, size_t len,
			     const struct pog_attr *attr, uint64_t next_cookie);
int pog_readdir(pog_store *s, uint64_t dir, uint64_t cookie, pog_dirent_fn fn,
		void *ctx);

/* Read up to len bytes at off of a file; returns bytes read (0 at EOF). */
ssize_t pog_read(pog_store *s, uint64_t ino, uint64_t off, void *buf,
		 size_t len);

/*
 * Symlink text: for POG_SYMLINK the stored text; for POG_REF the current
 * path of the target relative to the link's directory, or
 * a relative path to ".pog/objects/<ino>" at the mount's root when the
 * target has no owning place. Returns the full length (the text is cut
 * at size; no NUL is added).
 */
ssize_t pog_readlink(pog_store *s, uint64_t ino, char *buf, size_t size);

/*
 * The Merkle hash of an object (user.pog.hash; definition in the README):
 * changes when anything the object owns changes, stays the same when
 * nothing did, across remounts too. Cached: after a small change it costs
 * the path from the object to the change.
 */
int pog_hash(pog_store *s, uint64_t ino, uint32_t *out);

/* For POG_REF: the target's ino. */
int pog_ref_target(pog_store *s, uint64_t ino, uint64_t *target);
/* Point a POG_REF at another object (staged). */
int pog_set_ref_target(pog_store *s, uint64_t ino, uint64_t target);

/*
 * A plain symlink (POG_SYMLINK) that may name an object of the store once
 * its target exists (rsync and tar make links before their targets): at
 * the next commit, if root_path (a path from the root, escaped names) or,
 * when root_path is NULL, the link's text (from the link's directory)
 * names an object, the link becomes a ref to it, keeping its identity.
 * The wish ends with the transaction.
 */
int pog_symlink_pending(pog_store *s, uint64_t ino, const char *root_path);

/*
 * The path of an object from the root ("" for the root, "a/b" else),
 * names escaped as the mount shows them. -ENOENT when it has no owning
 * place reachable from the root. Returns the length.
 */
ssize_t pog_path(pog_store *s, uint64_t ino, char *buf, size_t size);

/*
 * Resolve a '/'-separated path (escaped names) starting at dir; ".." and
 * "." are honoured; going above the root answers -EXDEV. Symlinks in the
 * middle are not followed (-ENOENT).
 */
int pog_resolve(pog_store *s, uint64_t dir, const char *path, uint64_t *ino);

/* ---- objects: changing (all staged) ---------------------------------- */

/* What to create in pog_mknode. */
struct pog_new {
	uint32_t type;  /* POG_MAP, POG_LIST, POG_STRING, POG_SPECIAL ... */
	uint32_t mode;  /* permission bits (and S_IFMT for POG_SPECIAL) */
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	uint64_t ref_target;  /* POG_REF: target ino */
	const char *text;     /* POG_SYMLINK: text (NUL-terminated) */
};
/* Create a child of dir under name; -EEXIST if the name is taken. */
int pog_mknode(pog_store *s, uint64_t dir, const char *name, size_t len,
	       const struct pog_new *spec, struct pog_attr *out);

/*
 * Convert an object's type: a string, int, float, bool or null file into
 * any of those when its content parses as the new type (-EINVAL
 * otherwise; the text becomes the canonical form; an empty file stays
 * empty, a typed scalar without a value), an empty map into a
 * list and back (-ENOTEMPTY when it has entries). Same type: no-op.
 */
int pog_set_type(pog_store *s, uint64_t ino, unsigned type);

/* Add a hard link to a file-like object (not maps or lists: -EPERM);
 * out may be NULL. */
int pog_link(pog_store *s, uint64_t ino, uint64_t dir, const char *name,
	     size_t len, struct pog_attr *out);

/*
 * Remove the entry name from dir. With POG_REMOVE_DIR it must be an
 * empty map or list (rmdir: -ENOTDIR, -ENOTEMPTY); without, it must not
 * be a map or list (unlink: -EISDIR). The object itself stays readable
 * by ino until the garbage collector finds nothing holding it.
 */
#define POG_REMOVE_DIR 1u
int pog_remove(pog_store *s, uint64_t dir, const char *name, size_t len,
	       unsigned flags);

/*
 * Take the entry name out of dir whatever it holds (even a non-empty
 * map): the object leaves its place but lives on while anything (a ref,
 * a pin) still reaches it, as the garbage collector decides.
 */
int pog_detach(pog_store *s, uint64_t dir, const char *name, size_t len);

#define POG_RENAME_NOREPLACE 1u
#define POG_RENAME_EXCHANGE 2u
int pog_rename(pog_store *s, uint64_t olddir, const char *oldname,
	       size_t oldlen, uint64_t newdir, const char *newname,
	       size_t newlen, unsigned flags);

/* Write len bytes at off; returns bytes written. Grows the file (holes
 * read as zeros). -EFBIG past POG_FILE_MAX. */
ssize_t pog_write(pog_store *s, uint64_t ino, uint64_t off, const void *buf,
		  size_t len);

/*
 * fallocate(2) on a string or typed scalar (staged). Pages are
 * copy-on-write and allocated when written, as in btrfs and ZFS, so no
 * mode reserves space: a hole reads as zeros and costs nothing.
 *   0                          extend the size to off + len when larger
 *                              (the new bytes are a hole)
 *   KEEP_SIZE                  nothing (the range stays as it is)
 *   PUNCH_HOLE | KEEP_SIZE     [off, off + len) reads as zeros: the
 *                              pages wholly inside the range become
 *                              holes, the partial ones are zeroed, as
 *                              tmpfs does; the size stays
 *   ZERO_RANGE [| KEEP_SIZE]   the same, and without KEEP_SIZE the size
 *                              grows to off + len when larger
 * Mode 0 and KEEP_SIZE answer -ENOSPC when the range's missing pages outnumber the
 * free blocks (a write there could never succeed), so posix_fallocate
 * still tells a caller that the space is not there.
 * Other modes (collapse, insert, unshare) and PUNCH_HOLE without
 * KEEP_SIZE: -EOPNOTSUPP. len 0: -EINVAL; a size past POG_FILE_MAX:
 * -EFBIG. A typed scalar's text must still parse afterwards, which only
 * a change of nothing does (KEEP_SIZE, or a range past its end):
 * anything else is -EINVAL (zeros are not text) and changes nothing.
 * A change of nothing stages nothing. Punching a damaged page needs
 * none of its bytes, so it repairs the file.
 * The values are those of <linux/falloc.h>.
 */
#define POG_FALLOC_KEEP_SIZE 0x01u
#define POG_FALLOC_PUNCH_HOLE 0x02u
#define POG_FALLOC_ZERO_RANGE 0x10u
int pog_fallocate(pog_store *s, uint64_t ino, unsigned mode, uint64_t off,
		  uint64_t len);

/*
 * lseek(2)'s SEEK_DATA and SEEK_HOLE, by 4 KiB page as tmpfs answers
 * them: a page that was written (zeros too) is data, one never written
 * or punched is a hole, and the end of the file is a hole; a file of up
 * to 128 bytes kept inline is all data. *out receives the offset, at or
 * after off. -ENXIO when off is at or past the end, or for SEEK_DATA
 * when no data follows. Both views.
 */
#define POG_SEEK_DATA 3 /* the values of <unistd.h> */
#define POG_SEEK_HOLE 4
int pog_seek(pog_store *s, uint64_t ino, uint64_t off, int whence,
	     uint64_t *out);

/*
 * copy_file_range(2): copy len bytes at off_in of ino_in (either view)
 * to off_out of ino_out (staged), as reads and writes of 1 MiB do (the
 * destination follows pog_write's rules: a typed scalar must parse).
 * Returns the bytes copied, fewer than len only at the end of ino_in.
 * A range that overlaps itself in one file: -EINVAL, as the kernel
 * answers. On an error (a damaged page: POG_ECORRUPT) the error is
 * returned, whatever was copied before it stays staged.
 */
ssize_t pog_copy_range(pog_store *s, uint64_t ino_in, uint64_t off_in,
		       uint64_t ino_out, uint64_t off_out, size_t len);

/* Which fields of pog_setattr's attr to apply. */
#define POG_SET_MODE  (1u << 0) /* permission bits only */
#define POG_SET_UID   (1u << 1)
#define POG_SET_GID   (1u << 2)
#define POG_SET_SIZE  (1u << 3) /* truncate or extend */
#define POG_SET_ATIME (1u << 4)
#define POG_SET_MTIME (1u << 5)
#define POG_SET_CTIME (1u << 6) /* explicit ctime (else set to now) */
int pog_setattr(pog_store *s, uint64_t ino, const struct pog_attr *attr,
		unsigned mask, struct pog_attr *out);

/* Extended attributes (any name; "user.*" is what the mount passes). */
#define POG_XATTR_CREATE 1  /* same values as XATTR_CREATE/REPLACE */
#define POG_XATTR_REPLACE 2
ssize_t pog_getxattr(pog_store *s, uint64_t ino, const char *name, void *buf,
		     size_t size);
int pog_setxattr(pog_store *s, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags);
/* NUL-separated names; returns the total length (size 0: just measure). */
ssize_t pog_listxattr(pog_store *s, uint64_t ino, char *buf, size_t size);
int pog_removexattr(pog_store *s, uint64_t ino, const char *name);

/*
 * Pins keep an object alive through GC while the kernel or an open file
 * holds it (lookup counts). pog_unpin drops n pins.
 */
void pog_pin(pog_store *s, uint64_t ino);
void pog_unpin(pog_store *s, uint64_t ino, uint64_t n);

/* ---- JSON ------------------------------------------------------------- */

/* Output sink: return 0, or -errno to stop. */
typedef int (*pog_write_fn)(void *ctx, const void *buf, size_t len);

/*
 * Write the object ino and everything it owns (refs to objects it does
 * not own carry a copy of their target) as one JSON document (format in
 * the README): plain JSON when plain JSON can say it, else marked
 * {"$pogfs":2,"root":...} with pogfs's forms. The committed view works
 * too (ino | POG_COMMITTED_BIT). Exporting the same graph always gives
 * the same bytes. Memory stays bounded: strings are read in pieces, big
 * maps sorted in batches.
 */
int pog_export(pog_store *s, uint64_t ino, pog_write_fn write, void *ctx);

struct pog_json_error {
	int line;   /* 1-based; 0 when the error is not about the text */
	int column;
	char message[200];
};
/*
 * Import a JSON document (staged, like any change). With name NULL the
 * document must be an object whose entries are added to the map dir;
 * else the document becomes the new entry name in dir. New objects
 * belong to uid/gid. Any RFC 8259 document imports as its plain value;
 * only a marked pogfs export is read with pogfs's forms. Bad JSON, or a
 * marked document whose forms do not fit: -EINVAL with line, column and
 * message (the message without the position); the document is checked
 * before anything is created, so it changes nothing. A repeated key: the
 * last one wins. Errors while creating (a name taken, pool full) are
 * undone too when nothing else was staged; else what was created stays
 * staged (abort to throw it away).
 */
int pog_import(pog_store *s, uint64_t dir, const char *name, size_t nlen,
	       const char *doc, size_t len, uint32_t uid, uint32_t gid,
	       struct pog_json_error *error);

/* ---- progress of long calls ------------------------------------------ */

/*
 * pog_export, pog_import, pog_fsck and pog_gc tell how far they are to
 * the function set here for the calling thread (the setting is per
 * thread, NULL turns it off): done and total steps in unit ("objects",
 * "bytes"; total 0 when unknown), every few hundred steps and at the
 * last. It runs under the store's lock: it must not call into the store,
 * and should be quick (keep the time; print a few times a second).
 */
typedef void (*pog_progress_fn)(void *ctx, const char *unit, uint64_t done,
				uint64_t total);
void pog_set_progress(pog_progress_fn fn, void *ctx);

/* ---- garbage collection and checking --------------------------------- */

struct pog_gc_result {
	uint64_t objects_live;
	uint64_t objects_freed;
	uint64_t blocks_live;
	uint64_t blocks_freed;
	uint64_t bytes_freed;
};
/*
 * Collect garbage: remove objects nothing reaches (from the root, refs
 * and pins), commit that, and return unreachable blocks to the free
 * space. It keeps what any session's view reaches (its base, its staged
 * changes, its pins) and runs in a session of its own: staged changes
 * stay staged (other sessions then commit onto GC's commits).
 */
int pog_gc(pog_store *s, struct pog_gc_result *out);

enum pog_fsck_severity { POG_FSCK_INFO = 0, POG_FSCK_WARN = 1, POG_FSCK_ERROR = 2 };
struct pog_fsck_result {
	uint64_t objects;
	uint64_t reachable;
	uint64_t garbage_objects;
	uint64_t blocks_used;
	uint64_t pages;        /* page references from strings */
	uint64_t pages_unique; /* pages stored (shared ones once) */
	uint64_t errors;
	uint64_t warnings;
	uint64_t repaired;
};
/* msgid is a stable identifier like "bad-ref"; ino is 0 when none. */
typedef void (*pog_fsck_fn)(void *ctx, int severity, const char *msgid,
			    uint64_t ino, const char *text);
#define POG_FSCK_REPAIR 1u
/* Check the committed state. Returns 0 when clean, 1 when problems
 * were found (after repair: those not repaired), <0 when it could not
 * run. */
int pog_fsck(pog_store *s, unsigned flags, pog_fsck_fn fn, void *ctx,
	     struct pog_fsck_result *out);

/* ---- names ----------------------------------------------------------- */

/*
 * Keys that cannot be file names are shown escaped. A key is "unsafe"
 * when it is empty, ".", "..", or contains '/' or NUL. The escaped form
 * of a key k is C(k) = "%" followed by k with every '/', NUL and '%'
 * written as %2F, %00, %25 (uppercase hex).
 *   name(k) = C(k)  if k is unsafe, or k itself has the form C(k2) of a
 *                   key k2 that would be escaped (so it cannot be misread)
 *           = k     otherwise.
 * pog_name_unescape inverts it: a name of the form C(k) where k would be
 * escaped decodes to k; any other name is the key itself. So every name
 * a user creates lists back unchanged, and every key round-trips.
 * Both return the output length, or -ENAMETOOLONG when out_size is too
 * small (escape: the name must also fit 255 bytes).
 * A key whose name would not fit 255 bytes is listed by readdir (and
 * pog_path) as "%~" followed by 16 lowercase hex digits naming its entry
 * in that map; pog_lookup finds it again by that name.
 */
ssize_t pog_name_escape(const char *key, size_t len, char *out,
			size_t out_size);
ssize_t pog_name_unescape(const char *name, size_t len, char *out,
			  size_t out_size);

/* ---- parse helpers shared by the daemon and the tools ----------------- */

/* "64M", "8G", "1073741824" -> bytes. -EINVAL when malformed. */
int pog_parse_size(const char *text, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* POG_H */
