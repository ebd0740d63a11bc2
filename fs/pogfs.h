/* pogfs.h - shared state and helpers of the pogfs FUSE daemon (fs/). */
#ifndef POGFS_H
#define POGFS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "pog.h"
#include "inode_table.h"
#include "events.h"

/*
 * Inode numbers. Core identities are below 2^63: the staged view below
 * POG_COMMITTED_BIT (2^62), the committed view with that bit set. The
 * .pog control directory lives on reserved numbers with bit 63 set, so
 * the two ranges can never meet.
 */
#define VINO_BASE ((uint64_t)1 << 63)
#define VINO_POG (VINO_BASE | 1)     /* .pog/ */
#define VINO_CTL (VINO_BASE | 2)     /* .pog/ctl */
#define VINO_STATUS (VINO_BASE | 3)  /* .pog/status */
#define VINO_CHANGES (VINO_BASE | 4) /* .pog/changes */
#define VINO_LOG (VINO_BASE | 5)     /* .pog/log */
#define VINO_OBJECTS (VINO_BASE | 6) /* .pog/objects/ */
#define VINO_EVENTS (VINO_BASE | 7)  /* .pog/events (events.c) */
#define VINO_HISTORY (VINO_BASE | 10)   /* .pog/history/ */
#define VINO_SNAPSHOTS (VINO_BASE | 8) /* .pog/snapshots/ */
#define VINO_CONFLICTS (VINO_BASE | 9) /* .pog/conflicts */
#define VINO_SESSIONS (VINO_BASE | 11) /* .pog/sessions */
#define VINO_COMMITTED_ROOT (POG_ROOT_INO | POG_COMMITTED_BIT)

#define POG_CTL_NAME ".pog"
#define POGFS_NAME_MAX 255

static inline bool ino_is_virtual(uint64_t ino)
{
	return (ino & VINO_BASE) != 0;
}

static inline bool ino_is_committed(uint64_t ino)
{
	return !ino_is_virtual(ino) && (ino & POG_COMMITTED_BIT) != 0;
}

/* An ino of a retained commit's view (.pog/history, .pog/snapshots):
 * committed, with a view slot. Those never change. */
static inline bool ino_is_history(uint64_t ino)
{
	return ino_is_committed(ino) && (ino & ~POG_COMMITTED_BIT) > POG_INO_MASK;
}

/* The daemon. One per process; fuse_req_userdata() returns it. */
struct pogfs {
	pog_store *store;          /* set before the session starts */
	struct fuse_session *se;
	char *pool_path;
	char *mountpoint;          /* absolute, no trailing '/' */
	size_t mountpoint_len;
	double timeout;            /* entry and attr cache, seconds */
	bool showpog;              /* list .pog in the root */
	bool autocommit;           /* commit on unmount and when quiet */
	bool follow;               /* -o follow: nothing staged, move on */
	unsigned autocommit_delay; /* seconds without changes */
	bool foreground;
	uid_t uid;                 /* the daemon's, owner of .pog */
	gid_t gid;
	struct timespec start_time;

	struct inode_table inodes; /* what the kernel has looked up */

	/* Last staged change (CLOCK_MONOTONIC ns), for autocommit. */
	_Atomic uint64_t last_change_ns;
	_Atomic bool stopping;
	pthread_t autocommit_thread;
	bool autocommit_running;
	bool closed;               /* store closed at destroy */
	bool unmounted;            /* first mount gone, others live (main.c) */
	pthread_mutex_t close_lock;

	unsigned max_read;         /* -o max_read (0: none), for init */
	int ready_fd;              /* background: tells the parent at INIT */
	/* A reason is in the store's last_error: the next success clears
	 * it (pogfs_touch, a ctl command that succeeds). */
	_Atomic bool error_pending;
	/* The open .pog files (ctl.c), under ctl_lock. */
	pthread_mutex_t ctl_lock;
	struct vfile *ctl_files;
	struct pogfs_server *server; /* control socket (serve.c), or NULL */
	bool secondary;            /* a mount added to the daemon (sessions.c) */
	struct pogfs *next_mount;  /* sessions.c's list */
	/* .pog/events: the store's stream of commits (events.c). One per
	 * store: every session's commits feed it, every session reads it. */
	struct pogfs_events *events; /* the first mount's */
	char *conflicts;             /* .pog/conflicts (ctl.c), NULL: empty */
	size_t conflicts_len;
};

/* ---- more mounts of the pool (sessions.c) ----------------------------- */
/* The daemon's first mount (for .pog/sessions). */
void pogfs_sessions_set_first(struct pogfs *fs);
/* Serve a mount the client made (FUSE descriptor fd, owned from now on)
 * at mnt as a new session of first's pool; opts: "autocommit=0|1
 * showpog=0|1 timeout=S". 0 or -errno. */
int pogfs_session_add(struct pogfs *first, const char *mnt, const char *opts,
		      int fd);
/* fs committed: the other mounts' kernels forget .pog/committed (the
 * latest commit); those with -o follow and nothing staged move to the new
 * commit (their kernel caches are told what changed). */
void pogfs_sessions_committed(struct pogfs *fs);
/* Wait until every added mount is unmounted and closed. */
void pogfs_sessions_wait(void);
/* fn for the first mount and each added one (a non-zero return stops). */
int pogfs_sessions_each(int (*fn)(void *ctx, struct pogfs *fs), void *ctx);
/* The client side: hand the mount at mnt (FUSE descriptor fuse_fd) to the
 * daemon serving pool; 0, or the daemon's error with why filled. */
int pogfs_session_attach(const char *pool, const char *mnt, int fuse_fd,
			 const char *opts, char *why, size_t why_size);

/* Map a core return code to a positive errno for fuse_reply_err. */
int pogfs_errno(long rc);

/* Log a line: stderr in the foreground, syslog once daemonized. */
void pogfs_log(struct pogfs *fs, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Note that the staged state changed (autocommit's quiet period): a
 * success, which clears the last error. */
void pogfs_touch(struct pogfs *fs);

/*
 * Record why an operation failed (shown as last_error in .pog/status
 * until the next success) and log it.
 */
void pogfs_note_error(struct pogfs *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A success: forget the last error. */
void pogfs_clear_error(struct pogfs *fs);

/* The FUSE connection is up (INIT answered): release a waiting parent. */
void pogfs_ready(struct pogfs *fs);

/* struct stat from a core attr. */
void pogfs_fill_stat(const struct pog_attr *a, struct stat *st);

/*
 * Reply to a request that hands the kernel a new reference (lookup,
 * mknod, ...): pins the object, records it in the inode table, replies.
 * parent/name say where the kernel found it (for inval_entry on abort).
 */
void pogfs_reply_entry(fuse_req_t req, uint64_t parent, const char *name,
		       size_t len, const struct pog_attr *a);

/*
 * The object an export PATH names (ctl's "export PATH", the control
 * socket's "export-path PATH"): PATH relative to the mount's root ("",
 * "." or "/" for the root) or absolute under the mount point, in the
 * staged view, or the last commit for ".pog/committed/...". Sets *ino
 * (with POG_COMMITTED_BIT for the committed view); 0 or -errno.
 */
int ctl_export_resolve(struct pogfs *fs, const char *path, uint64_t *ino);

/*
 * Import the JSON document doc (len bytes) at PATH, as ctl's "import
 * LENGTH PATH" does once its document is complete (the control socket's
 * "import LENGTH PATH"): new objects belong to uid and gid. Returns 0,
 * or -errno with the reason in why (as ctl's answer gives it, without
 * "error: "), also left in .pog/status.
 */
int ctl_import(struct pogfs *fs, const char *path, const char *doc, size_t len,
	       uint32_t uid, uint32_t gid, char *why, size_t size);

/* The stat of a .pog virtual inode; false when ino is not one. */
bool ctl_stat(struct pogfs *fs, uint64_t ino, struct stat *st);

/* Kernel cache invalidation after abort (staged view) or commit
 * (committed view). */
void pogfs_invalidate(struct pogfs *fs, bool committed_view);
/* Another session committed: .pog/committed (the latest) changed. */
void pogfs_invalidate_committed(struct pogfs *fs);
/* The session's view moved (abort, a commit onto others' commits, -o
 * follow): the kernel is told what changed (coherence.c), or everything
 * is invalidated when the core could not say. */
void pogfs_moved(struct pogfs *fs);
/* fs committed: its kernel forgets the committed view (and list names the
 * commit renumbered), is told how its view moved past others' commits, and
 * the other mounts hear of it (pogfs_sessions_committed). */
void pogfs_committed(struct pogfs *fs);

/* ---- .pog virtual directory (ctl.c) --------------------------------- */
void ctl_lookup(fuse_req_t req, uint64_t parent, const char *name);
void ctl_getattr(fuse_req_t req, uint64_t ino);
void ctl_open(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi);
void ctl_read(fuse_req_t req, uint64_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
void ctl_write(fuse_req_t req, uint64_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi);
void ctl_flush(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi);
void ctl_release(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi);
/*
 * Add the entries of a virtual directory from position off to buf.
 * Returns the bytes used.
 */
size_t ctl_readdir(fuse_req_t req, uint64_t ino, char *buf, size_t size,
		   off_t off, bool plus);

/* ---- .pog/history and .pog/snapshots (history.c) -------------------- */
/* lookup and readdir in VINO_HISTORY / VINO_SNAPSHOTS. */
void history_lookup(fuse_req_t req, uint64_t parent, const char *name);
size_t history_readdir(fuse_req_t req, uint64_t ino, char *buf, size_t size,
		       off_t off, bool plus);
/* "history/ID[/...]" or "snapshots/NAME[/...]" (after ".pog/"): the
 * view's root and the rest of the path; -ENOENT when it names none. */
int history_view_path(struct pogfs *fs, const char *rel, uint64_t *root,
		      const char **rest);
/* A commit named by a diff/revert argument: an id, a snapshot name, or
 * "staged" (POG_DIFF_STAGED). */
int history_commit_arg(struct pogfs *fs, const char *arg, uint64_t *id);

/* The ops table (ops.c). */
extern const struct fuse_lowlevel_ops pogfs_ops;

/* -o autocommit: commit after each quiet period (a thread; stopped by
 * pogfs_close_store). */
void pogfs_autocommit_start(struct pogfs *fs);
/* The first mount is unmounted while added ones live: its staged
 * changes are committed (-o autocommit) or discarded now; its session
 * stays open, unlisted, as the daemon's handle on the pool. */
void pogfs_session_leave(struct pogfs *fs);
/* Store teardown at unmount (main.c): autocommit or discard, close. */
void pogfs_close_store(struct pogfs *fs);

#endif /* POGFS_H */
