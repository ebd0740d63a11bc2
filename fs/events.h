/* events.h - .pog/events: the stream of committed changes, one bounded ring per store (daemon-wide). */
#ifndef POGFS_EVENTS_H
#define POGFS_EVENTS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every commit that goes through pogfs_commit (from any session) adds
 * one JSON line per changed path to a ring shared by every open
 * .pog/events of the daemon:
 *   {"commit":12,"session":"MNT","change":"M","path":"a/b","hash":"0a1b2c3d"}
 * Each open starts at the next commit. A read answers whole lines (a
 * buffer too small for the next line gets its first bytes, the rest
 * follows), blocks while there are none (the request is kept and
 * answered by the notifier thread: no FUSE worker waits), answers
 * EAGAIN with O_NONBLOCK, EINTR when the reader is interrupted, and end
 * of file once the streams ended (unmount). poll/select/epoll go through
 * FUSE poll. A reader that fell behind the ring gets {"lost":N} and goes
 * on from the oldest line kept: memory is bounded by the ring.
 *
 * A reader may first write "watch PATH" (one per line): it then gets
 * only the lines under those paths, and only of commits that moved the
 * Merkle hash of that path's subtree (pog watch).
 *
 * Locks: commit_lock orders commits, opens and watch registrations (a
 * commit's lines and the hashes it reports belong to that commit alone);
 * lock protects the ring, readers, blocked reads and watches. Nothing
 * calls into the kernel (replies, poll notifications) with lock held
 * except the interrupt callback's own reply.
 */
struct events_line;
struct events_reader;
struct events_pending;
struct events_watch;
struct events_mount;

#define EVENTS_RING_LINES 8192u
#define EVENTS_RING_BYTES ((size_t)8 << 20)

struct pogfs_events {
	pthread_mutex_t commit_lock;
	pthread_mutex_t lock;          /* everything below */
	pthread_cond_t wake;           /* the notifier thread has work */
	struct events_line **ring;     /* line seq at ring[seq % cap] */
	size_t cap;                    /* lines */
	size_t max_bytes;
	size_t bytes;                  /* text held by the ring */
	uint64_t first_seq, next_seq;  /* [first_seq, next_seq) held */
	struct events_reader *readers;
	size_t nreaders;
	struct events_pending *pending; /* blocked reads */
	struct events_watch *watches;  /* paths readers asked to watch */
	uint64_t next_watch_id;
	bool closed;                   /* the streams ended: EOF */
	bool work;                     /* for the notifier */
	bool stopping;
	pthread_t notifier;
	bool notifier_running;
	pthread_t mount_watcher;       /* ends the streams at a lazy unmount */
	bool mount_watcher_running;
	int stop_pipe[2];              /* wakes the mount watcher */
	struct events_mount *mounts;   /* the mounts it watches */
	struct fuse_session *se;
	uint64_t commits_fed, lines_fed, lines_dropped; /* .pog/status */
};

struct pogfs;

/* What .pog/status shows of the stream. */
struct events_stats {
	uint64_t readers;   /* open .pog/events */
	uint64_t blocked;   /* reads waiting for a commit */
	uint64_t commits;   /* commits fed since the mount */
	uint64_t lines;     /* lines fed */
	uint64_t dropped;   /* lines the ring let go (oldest first) */
	uint64_t held;      /* lines in the ring now */
};
void events_stats(struct pogfs *fs, struct events_stats *out);

/* Set up a ring of lines lines (0: EVENTS_RING_LINES); nothing runs
 * yet. 0 or -errno. */
int events_init(struct pogfs_events *ev, unsigned lines);
/* The session is mounted: start the notifier and the mount watcher. */
int events_start(struct pogfs *fs);
/* End every stream (blocked reads answer end of file), then stop the
 * threads. After the session loop, before the session is destroyed. */
void events_close(struct pogfs *fs);
/* Watch fs's mount too (a mount added to the daemon): when it leaves the
 * mount table, its readers' streams end. 0 or -ENOMEM. */
int events_attach(struct pogfs *fs);
/* fs's mount is gone: its readers get end of file, the rest go on. */
void events_end_mount(struct pogfs *fs);
/* Free everything (after events_close). */
void events_release(struct pogfs_events *ev);

/*
 * Commit the session's staged changes (pog_commit) and, when anybody
 * reads .pog/events, feed the ring with what the commit changed. Every
 * commit of the daemon goes through here.
 */
int pogfs_commit(struct pogfs *fs, const char *message, uint64_t *id);
/*
 * Start answering the readers of what pogfs_commit fed. The caller of
 * pogfs_commit calls it once the commit's own answer is out (ctl's
 * write replied): a hundred readers woken at once would otherwise hold
 * up the committer on a small machine.
 */
void events_notify(struct pogfs *fs);

/* The .pog/events file (VINO_EVENTS). */
void events_open(fuse_req_t req, struct fuse_file_info *fi);
void events_read(fuse_req_t req, size_t size, struct fuse_file_info *fi);
void events_write(fuse_req_t req, const char *buf, size_t size,
		  struct fuse_file_info *fi);
void events_release_file(fuse_req_t req, struct fuse_file_info *fi);
void events_poll(fuse_req_t req, struct fuse_file_info *fi,
		 struct fuse_pollhandle *ph);

#endif /* POGFS_EVENTS_H */
