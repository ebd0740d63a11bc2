/* ctl.c - the .pog control directory: ctl, status, changes, log, committed/, objects/ (events: events.c). */
#include "pogfs.h"
#include "spool.h"
#include "coherence.h"
#include "text.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct pogfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- inodes ----------------------------------------------------------- */

struct vnode {
	uint64_t ino;
	const char *name;
	mode_t mode;
};

static const struct vnode pog_children[] = {
	{ VINO_CTL, "ctl", S_IFREG | 0600 },
	{ VINO_STATUS, "status", S_IFREG | 0444 },
	{ VINO_CHANGES, "changes", S_IFREG | 0444 },
	{ VINO_LOG, "log", S_IFREG | 0444 },
	{ VINO_EVENTS, "events", S_IFREG | 0666 },
	{ VINO_COMMITTED_ROOT, "committed", S_IFDIR | 0555 },
	{ VINO_OBJECTS, "objects", S_IFDIR | 0555 },
	{ VINO_HISTORY, "history", S_IFDIR | 0555 },
	{ VINO_SNAPSHOTS, "snapshots", S_IFDIR | 0555 },
	{ VINO_CONFLICTS, "conflicts", S_IFREG | 0444 },
	{ VINO_SESSIONS, "sessions", S_IFREG | 0444 },
};
#define N_POG_CHILDREN (sizeof(pog_children) / sizeof(pog_children[0]))

bool ctl_stat(struct pogfs *fs, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fs->start_time;
	st->st_blksize = 4096;
	if (ino == VINO_POG) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 6; /* ., .., committed, objects, history, snapshots */
		return true;
	}
	for (size_t i = 0; i < N_POG_CHILDREN; i++) {
		if (pog_children[i].ino == ino &&
		    ino != VINO_COMMITTED_ROOT) {
			st->st_mode = pog_children[i].mode;
			st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
			/* The size of a file is its content's: see
			 * content_size (ctl_getattr, lookup, readdir). */
			return true;
		}
	}
	return false;
}

static bool has_content(uint64_t ino)
{
	return ino == VINO_CTL || ino == VINO_STATUS || ino == VINO_CHANGES ||
	       ino == VINO_LOG || ino == VINO_CONFLICTS || ino == VINO_SESSIONS;
}

static void sized_stat(fuse_req_t req, uint64_t ino, struct stat *st,
		       double *attr_timeout);

static void reply_virtual_entry(fuse_req_t req, uint64_t ino)
{
	struct pogfs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr_timeout = fs->timeout;
	sized_stat(req, ino, &e.attr, &e.attr_timeout);
	e.ino = ino;
	e.entry_timeout = fs->timeout;
	fuse_reply_entry(req, &e);
}

/* A decimal object number, strictly. */
static bool parse_ino(const char *name, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)name[0]) || (name[0] == '0' && name[1]))
		return false;
	errno = 0;
	unsigned long long v = strtoull(name, &end, 10);
	if (errno || *end || v == 0 || v >= VINO_BASE)
		return false;
	*out = v;
	return true;
}

void ctl_lookup(fuse_req_t req, uint64_t parent, const char *name)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	uint64_t ino;
	int rc;

	if (parent == POG_ROOT_INO) { /* only ".pog" gets here */
		reply_virtual_entry(req, VINO_POG);
		return;
	}
	if (parent == VINO_POG) {
		for (size_t i = 0; i < N_POG_CHILDREN; i++) {
			if (strcmp(pog_children[i].name, name) != 0)
				continue;
			if (pog_children[i].ino != VINO_COMMITTED_ROOT) {
				reply_virtual_entry(req, pog_children[i].ino);
				return;
			}
			rc = pog_getattr(fs->store, VINO_COMMITTED_ROOT, &a);
			if (rc < 0)
				fuse_reply_err(req, pogfs_errno(rc));
			else
				pogfs_reply_entry(req, parent, name, strlen(name), &a);
			return;
		}
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (parent == VINO_HISTORY || parent == VINO_SNAPSHOTS) {
		history_lookup(req, parent, name);
		return;
	}
	if (parent == VINO_OBJECTS && parse_ino(name, &ino)) {
		rc = pog_getattr(fs->store, ino, &a);
		if (rc < 0)
			fuse_reply_err(req, pogfs_errno(rc));
		else
			pogfs_reply_entry(req, parent, name, strlen(name), &a);
		return;
	}
	fuse_reply_err(req, parent == VINO_OBJECTS ? ENOENT : ENOTDIR);
}

void ctl_getattr(fuse_req_t req, uint64_t ino)
{
	struct pogfs *fs = fs_of(req);
	double timeout = fs->timeout;
	struct stat st;

	if (!ctl_stat(fs, ino, &st)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	sized_stat(req, ino, &st, &timeout);
	fuse_reply_attr(req, &st, timeout);
}

size_t ctl_readdir(fuse_req_t req, uint64_t ino, char *buf, size_t size,
		   off_t off, bool plus)
{
	struct pogfs *fs = fs_of(req);
	struct {
		const char *name;
		uint64_t ino;
	} list[2 + N_POG_CHILDREN];
	size_t n = 0, used = 0;

	if (ino == VINO_HISTORY || ino == VINO_SNAPSHOTS)
		return history_readdir(req, ino, buf, size, off, plus);
	list[n].name = ".";
	list[n++].ino = ino;
	list[n].name = "..";
	list[n++].ino = ino == VINO_POG ? POG_ROOT_INO : VINO_POG;
	if (ino == VINO_POG) {
		for (size_t i = 0; i < N_POG_CHILDREN; i++) {
			list[n].name = pog_children[i].name;
			list[n++].ino = pog_children[i].ino;
		}
	}
	/* objects/ lists nothing: crawlers must not walk the store. */

	for (size_t i = (size_t)(off > 0 ? off : 0); i < n; i++) {
		struct fuse_entry_param e;
		size_t need;

		memset(&e, 0, sizeof(e));
		e.attr_timeout = e.entry_timeout = fs->timeout;
		if (!ctl_stat(fs, list[i].ino, &e.attr)) {
			/* committed/: a directory; its attributes come
			 * with lookup, so link nothing here. */
			e.attr.st_ino = list[i].ino;
			e.attr.st_mode = S_IFDIR | 0555;
		} else if (i >= 2) {
			e.ino = list[i].ino;
			if (plus)
				sized_stat(req, list[i].ino, &e.attr,
					   &e.attr_timeout);
		}
		if (plus)
			need = fuse_add_direntry_plus(req, buf + used, size - used,
						      list[i].name, &e, (off_t)(i + 1));
		else
			need = fuse_add_direntry(req, buf + used, size - used,
						 list[i].name, &e.attr, (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	return used;
}

/* ---- open files ------------------------------------------------------- */

/* What an open virtual file holds: its content, made at open, or for
 * ctl the answer of the last command. */
struct vfile {
	pthread_mutex_t lock; /* ctl: one command at a time per open file */
	struct text text;
	/* In fs->ctl_files (under fs->ctl_lock): which file, opened by
	 * which thread, so that its stat shows the size it reads. */
	struct vfile *next;
	uint64_t ino;
	pid_t pid;
	/* ctl: the answer is read from offset 0 wherever the command's
	 * write left the file offset: the first read after a command sets
	 * read_base to its offset, and later reads count from it. */
	bool answer_unread;
	off_t read_base;
	/* ctl: the lock owner (process) that started a pending import, whose
	 * close() fails while its document is incomplete. */
	uint64_t import_owner;
	/* ctl: an import whose document is still arriving (under lock). */
	struct pending_import {
		bool active;
		char *path;       /* PATH of the command */
		size_t want;      /* LENGTH: bytes of the document */
		struct pogfs_spool spool; /* the bytes received so far,
					     in an unlinked file (spool.h) */
		off_t next_off;   /* where the next piece must be written */
		uint32_t uid, gid; /* the caller's, owner of new objects */
	} import;
};

static void pending_import_release(struct pending_import *p)
{
	free(p->path);
	pogfs_spool_release(&p->spool);
	memset(p, 0, sizeof(*p));
	pogfs_spool_init(&p->spool);
}

/*
 * A .pog/log line: ID TIME SESSION CHANGES HASH RETAINED MESSAGE. The
 * session is the mount point that committed ("-" when not recorded; a
 * space in it is written \040, a newline \n, a backslash \\); the hash
 * the root's Merkle hash (8 hex digits) of a retained commit, "-" for
 * one no longer kept; RETAINED "retained" or "gone".
 */
struct log_ctx {
	struct pogfs *fs;
	struct text *t;
};

static void add_session(struct text *t, const char *who)
{
	if (!who || !who[0]) {
		text_addn(t, "-", 1);
		return;
	}
	for (const char *p = who; *p; p++) {
		if (*p == ' ')
			text_addn(t, "\\040", 4);
		else if (*p == '\n')
			text_addn(t, "\\n", 2);
		else if (*p == '\\')
			text_addn(t, "\\\\", 2);
		else
			text_addn(t, p, 1);
	}
}

static int log_line(void *ctx, const struct pog_log_entry *e)
{
	struct log_ctx *l = ctx;
	struct text *t = l->t;
	char when[64], hash[16] = "-";
	struct tm tm;
	time_t sec = (time_t)e->time.sec;
	bool kept = pog_retained(l->fs->store, e->id);
	uint32_t h;

	if (!gmtime_r(&sec, &tm) ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%" PRId64, e->time.sec);
	if (kept && pog_commit_hash(l->fs->store, e->id, &h) == 0)
		snprintf(hash, sizeof(hash), "%08" PRIx32, h);
	text_addf(t, "%" PRIu64 " %s ", e->id, when);
	add_session(t, e->session);
	text_addf(t, " %" PRIu64 " %s %s %s\n", e->changes, hash,
		  kept ? "retained" : "gone", e->message ? e->message : "");
	return 0;
}

/*
 * "A path", "M path", "D path": the root is ".", and in a name a newline
 * is written \n and a backslash \\ (the README says so), so that every
 * line is one change and no name can forge another line.
 */
static int change_line(void *ctx, char kind, const char *path)
{
	struct text *t = ctx;
	char head[2] = { kind, ' ' };

	text_addn(t, head, 2);
	if (!path[0])
		text_addn(t, ".", 1);
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "\n\\");
		text_addn(t, p, n);
		p += n;
		if (*p == '\n')
			text_addn(t, "\\n", 2);
		else if (*p == '\\')
			text_addn(t, "\\\\", 2);
		if (*p)
			p++;
	}
	text_addn(t, "\n", 1);
	return 0;
}

/*
 * .pog/conflicts: the paths of the last commit or revert that failed with
 * ESTALE ("C path" lines, escaped as in .pog/changes); emptied by a
 * success or an abort. conflicts_set keeps a copy of paths (NULL: none).
 */
static pthread_mutex_t conflicts_lock = PTHREAD_MUTEX_INITIALIZER;

static void conflicts_set(struct pogfs *fs, const struct text *paths)
{
	char *copy = paths && paths->len ? strndup(paths->data, paths->len)
					 : NULL;
	pthread_mutex_lock(&conflicts_lock);
	free(fs->conflicts);
	fs->conflicts = copy;
	fs->conflicts_len = copy ? paths->len : 0;
	pthread_mutex_unlock(&conflicts_lock);
}

static void conflicts_get(struct pogfs *fs, struct text *t)
{
	pthread_mutex_lock(&conflicts_lock);
	if (fs->conflicts_len)
		text_addn(t, fs->conflicts, fs->conflicts_len);
	pthread_mutex_unlock(&conflicts_lock);
}

/* .pog/sessions: one line a session of this daemon: its mount point, the
 * commit its view is based on, its staged changes (tab-separated). */
static int session_line(void *ctx, struct pogfs *fs)
{
	struct pog_status ps;
	int rc = pog_status(fs->store, &ps);
	if (rc < 0)
		return rc;
	text_addf(ctx, "%s\t%" PRIu64 "\t%" PRIu64 "\n", fs->mountpoint,
		  ps.base_id, ps.staged);
	return 0;
}

static int make_sessions(struct pogfs *fs, struct text *t)
{
	(void)fs;
	return pogfs_sessions_each(session_line, t);
}

static int count_session(void *ctx, struct pogfs *fs)
{
	(void)fs;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void add_number(cJSON *o, const char *name, uint64_t v)
{
	cJSON_AddNumberToObject(o, name, (double)v);
}

static int make_status(struct pogfs *fs, struct text *t)
{
	struct pog_status *ps = malloc(sizeof(*ps));
	cJSON *o = NULL, *gc;
	char *json = NULL, when[64] = "";
	int rc;

	if (!ps)
		return -ENOMEM;
	rc = pog_status(fs->store, ps);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	o = cJSON_CreateObject();
	if (!o)
		goto out;
	add_number(o, "format_version", ps->format_version);
	add_number(o, "commit_id", ps->commit_id);
	cJSON_AddNumberToObject(o, "commit_time",
				(double)ps->commit_time.sec +
					ps->commit_time.nsec / 1e9);
	if (ps->commit_id) {
		struct tm tm;
		time_t sec = (time_t)ps->commit_time.sec;
		if (gmtime_r(&sec, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	cJSON_AddStringToObject(o, "commit_time_utc", when);
	add_number(o, "staged", ps->staged);
	add_number(o, "pool_size", ps->pool_size);
	add_number(o, "pool_used", ps->pool_used);
	add_number(o, "block_size", ps->block_size);
	add_number(o, "blocks_total", ps->blocks_total);
	add_number(o, "blocks_used", ps->blocks_used);
	add_number(o, "blocks_reserved", ps->blocks_reserved);
	add_number(o, "objects", ps->objects);
	add_number(o, "logical_bytes", ps->logical_bytes);
	add_number(o, "next_ino", ps->next_ino);
	add_number(o, "session", ps->session_id);
	add_number(o, "base_commit", ps->base_id);
	/* the mounts (.pog/sessions), not the daemon's own handle */
	uint64_t mounts = 0;
	(void)pogfs_sessions_each(count_session, &mounts);
	add_number(o, "sessions", mounts ? mounts : ps->sessions);
	ps->last_error[sizeof(ps->last_error) - 1] = '\0';
	cJSON_AddStringToObject(o, "last_error", ps->last_error);
	gc = cJSON_AddObjectToObject(o, "gc");
	if (gc) {
		add_number(gc, "runs", ps->gc_runs);
		add_number(gc, "freed_blocks", ps->gc_freed_blocks);
		add_number(gc, "freed_objects", ps->gc_freed_objects);
	}
	add_number(o, "checksum_errors", ps->checksum_errors);
	/* the last unmount (or close) that discarded staged changes */
	gc = cJSON_AddObjectToObject(o, "last_discard");
	if (gc) {
		add_number(gc, "changes", ps->discarded_changes);
		add_number(gc, "time", (uint64_t)ps->discarded_time.sec);
	}
	cJSON_AddBoolToObject(o, "autocommit", fs->autocommit);
	struct events_stats es;
	events_stats(fs, &es);
	gc = cJSON_AddObjectToObject(o, "events");
	if (gc) { /* .pog/events: readers, and what the ring took and let go */
		add_number(gc, "readers", es.readers);
		add_number(gc, "blocked", es.blocked);
		add_number(gc, "commits", es.commits);
		add_number(gc, "lines", es.lines);
		add_number(gc, "held", es.held);
		add_number(gc, "dropped", es.dropped);
	}
	json = cJSON_Print(o);
	if (!json)
		goto out;
	text_addf(t, "%s\n", json);
	rc = t->failed ? -ENOMEM : 0;
out:
	free(json);
	cJSON_Delete(o);
	free(ps);
	return rc;
}

/* The content of a .pog file as of now (ctl has none until a command). */
static int make_content(struct pogfs *fs, uint64_t ino, struct text *t)
{
	int rc;

	switch (ino) {
	case VINO_CTL:
		return 0;
	case VINO_STATUS:
		rc = make_status(fs, t);
		break;
	case VINO_CHANGES:
		rc = pog_changes(fs->store, change_line, t);
		break;
	case VINO_CONFLICTS:
		conflicts_get(fs, t);
		rc = 0;
		break;
	case VINO_SESSIONS:
		rc = make_sessions(fs, t);
		break;
	case VINO_LOG: {
		struct log_ctx l = { fs, t };
		rc = pog_log(fs->store, log_line, &l);
		break;
	}
	default:
		return -ENOENT;
	}
	if (rc == 0 && t->failed)
		rc = -ENOMEM;
	return rc;
}

/*
 * The stat of a .pog file with the size of its content, as sysfs files
 * report one, so that rsync and readers that trust st_size copy it all.
 * A thread that has the file open sees the size of what its open file
 * holds (rsync opens, then fstat()s, then reads that many bytes: the
 * kernel's fstat carries no file handle, only the caller's thread id);
 * any other caller the size of the content as of now. The kernel must
 * not cache it (attr timeout 0): the content changes with every change.
 */
static void sized_stat(fuse_req_t req, uint64_t ino, struct stat *st,
		       double *attr_timeout)
{
	struct pogfs *fs = fs_of(req);
	pid_t pid = fuse_req_ctx(req)->pid;
	struct text t = { 0 };
	bool found = false;

	ctl_stat(fs, ino, st);
	if (!has_content(ino))
		return;
	*attr_timeout = 0;
	pthread_mutex_lock(&fs->ctl_lock);
	for (struct vfile *vf = fs->ctl_files; vf; vf = vf->next) {
		if (vf->ino == ino && vf->pid == pid) {
			pthread_mutex_lock(&vf->lock);
			st->st_size = (off_t)vf->text.len;
			pthread_mutex_unlock(&vf->lock);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&fs->ctl_lock);
	if (found || ino == VINO_CTL)
		return;
	if (make_content(fs, ino, &t) == 0)
		st->st_size = (off_t)t.len;
	text_release(&t);
}

static void vfile_free(struct vfile *vf)
{
	text_release(&vf->text);
	pending_import_release(&vf->import);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
}

/* Put vf first in the list of open files (newest first). */
static void vfile_link(struct pogfs *fs, struct vfile *vf)
{
	pthread_mutex_lock(&fs->ctl_lock);
	vf->next = fs->ctl_files;
	fs->ctl_files = vf;
	pthread_mutex_unlock(&fs->ctl_lock);
}

static void vfile_unlink(struct pogfs *fs, struct vfile *vf)
{
	pthread_mutex_lock(&fs->ctl_lock);
	for (struct vfile **p = &fs->ctl_files; *p; p = &(*p)->next) {
		if (*p == vf) {
			*p = vf->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->ctl_lock);
}

void ctl_open(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct vfile *vf;
	int rc;

	if (ino == VINO_POG || ino == VINO_OBJECTS || ino == VINO_HISTORY ||
	    ino == VINO_SNAPSHOTS) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (writing && ino != VINO_CTL) {
		fuse_reply_err(req, EACCES);
		return;
	}
	vf = calloc(1, sizeof(*vf));
	if (!vf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&vf->lock, NULL);
	pogfs_spool_init(&vf->import.spool);
	vf->ino = ino;
	vf->pid = fuse_req_ctx(req)->pid;
	rc = make_content(fs, ino, &vf->text);
	if (rc < 0) {
		vfile_free(vf);
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)vf;
	fi->direct_io = 1; /* every open and read sees current content */
	fi->keep_cache = 0;
	vfile_link(fs, vf);
	if (fuse_reply_open(req, fi) != 0) {
		vfile_unlink(fs, vf);
		vfile_free(vf);
	}
}

void ctl_read(fuse_req_t req, uint64_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct vfile *vf = (struct vfile *)(uintptr_t)fi->fh;
	(void)ino;

	if (!vf) {
		fuse_reply_err(req, EBADF);
		return;
	}
	pthread_mutex_lock(&vf->lock);
	if (vf->answer_unread) {
		/* the first read after a command starts the answer */
		vf->answer_unread = false;
		vf->read_base = off;
	}
	if (off >= vf->read_base)
		off -= vf->read_base;
	if (off < 0 || (size_t)off >= vf->text.len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		size_t n = vf->text.len - (size_t)off;
		fuse_reply_buf(req, vf->text.data + off, n < size ? n : size);
	}
	pthread_mutex_unlock(&vf->lock);
}

/*
 * close(): an import whose document is incomplete fails the close of the
 * process that started it with EINVAL (nothing of it is applied), and
 * status says why. Closes by other processes (a child that inherited the
 * descriptor) leave it waiting.
 */
void ctl_flush(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct vfile *vf = (struct vfile *)(uintptr_t)fi->fh;
	int err = 0;
	(void)ino;

	if (vf) {
		pthread_mutex_lock(&vf->lock);
		if (vf->import.active && fi->lock_owner == vf->import_owner) {
			pogfs_note_error(fs, "import: closed after %zu of %zu bytes of the document; nothing was imported",
					 vf->import.spool.have, vf->import.want);
			pogfs_log(fs, LOG_NOTICE,
				  "ctl: import: closed after %zu of %zu bytes of the document; nothing was imported",
				  vf->import.spool.have, vf->import.want);
			pending_import_release(&vf->import);
			err = EINVAL;
		}
		pthread_mutex_unlock(&vf->lock);
	}
	fuse_reply_err(req, err);
}

void ctl_release(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct vfile *vf = (struct vfile *)(uintptr_t)fi->fh;
	(void)ino;

	if (vf) {
		vfile_unlink(fs, vf);
		/* ctl_read replies under the lock; the kernel may pass the
		 * close on before that read has let go of it. */
		pthread_mutex_lock(&vf->lock);
		pthread_mutex_unlock(&vf->lock);
		if (vf->import.active) {
			/* the last descriptor went without a flush of its
			 * starter (a child's, a killed process) */
			pogfs_note_error(fs, "import: closed after %zu of %zu bytes of the document; nothing was imported",
					 vf->import.spool.have, vf->import.want);
			pogfs_log(fs, LOG_NOTICE,
				  "ctl: import: closed after %zu of %zu bytes of the document; nothing was imported",
				  vf->import.spool.have, vf->import.want);
		}
		vfile_free(vf);
	}
	fuse_reply_err(req, 0);
}

/* ---- commands --------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Record why a command failed: in the store's status and as the answer. */
static int command_failed(struct pogfs *fs, struct text *answer, int rc,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int command_failed(struct pogfs *fs, struct text *answer, int rc,
			  const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	pogfs_note_error(fs, "%s", reason);
	text_addf(answer, "error: %s\n", reason);
	pogfs_log(fs, LOG_NOTICE, "ctl: %s", reason);
	return rc;
}

/* A failed core call, with the store's own reason when it gave one (an
 * empty typed scalar names its path); else "what: strerror". The caller
 * cleared the last error before the call. */
static int core_failed(struct pogfs *fs, struct text *answer, int rc,
		       const char *what)
{
	struct pog_status *ps = malloc(sizeof(*ps));

	if (ps && pog_status(fs->store, ps) == 0 && ps->last_error[0]) {
		ps->last_error[sizeof(ps->last_error) - 1] = '\0';
		rc = command_failed(fs, answer, rc, "%s", ps->last_error);
	} else {
		rc = command_failed(fs, answer, rc, "%s: %s", what,
				    pog_strerror(rc));
	}
	free(ps);
	return rc;
}

/* One conflict path: a line as .pog/changes writes it, with kind C. */
static int conflict_line(void *ctx, const char *path)
{
	struct text *t = ctx;
	return change_line(t, 'C', path);
}

/* .pog/conflicts after a commit: the paths of its ESTALE, or nothing. */
static void commit_conflicts(struct pogfs *fs, int rc)
{
	struct text paths = { 0 };
	if (rc == -ESTALE)
		(void)pog_conflicts(fs->store, conflict_line, &paths);
	conflicts_set(fs, &paths);
	text_release(&paths);
}

static int cmd_commit(struct pogfs *fs, const char *message, struct text *answer)
{
	uint64_t staged = pog_staged_count(fs->store);
	uint64_t id = 0;
	int rc;

	if (strlen(message) > POG_MESSAGE_MAX)
		return command_failed(fs, answer, -E2BIG,
				      "commit: message longer than %d bytes",
				      POG_MESSAGE_MAX);
	pog_set_error(fs->store, NULL);
	rc = pogfs_commit(fs, message[0] ? message : NULL, &id);
	commit_conflicts(fs, rc);
	if (rc < 0) /* a failed commit changed no name (core/list.c) */
		return core_failed(fs, answer, rc, "commit");
	text_addf(answer, "commit %" PRIu64 " %" PRIu64 "\n", id, staged);
	pogfs_committed(fs);
	return 0;
}

static int cmd_abort(struct pogfs *fs, struct text *answer)
{
	uint64_t staged = pog_staged_count(fs->store);
	int rc = pog_abort(fs->store);

	if (rc < 0)
		return command_failed(fs, answer, rc, "abort: %s",
				      pog_strerror(rc));
	conflicts_set(fs, NULL);
	text_addf(answer, "abort %" PRIu64 "\n", staged);
	pogfs_moved(fs);
	return 0;
}

static int cmd_gc(struct pogfs *fs, struct text *answer)
{
	struct pog_gc_result r;
	int rc = pog_gc(fs->store, &r);

	if (rc == -EBUSY)
		return command_failed(fs, answer, rc,
				      "gc: changes are staged (commit or abort first)");
	if (rc < 0)
		return command_failed(fs, answer, rc, "gc: %s", pog_strerror(rc));
	text_addf(answer,
		  "{\"objects_live\": %" PRIu64 ", \"objects_freed\": %" PRIu64
		  ", \"blocks_live\": %" PRIu64 ", \"blocks_freed\": %" PRIu64
		  ", \"bytes_freed\": %" PRIu64 "}\n",
		  r.objects_live, r.objects_freed, r.blocks_live, r.blocks_freed,
		  r.bytes_freed);
	pogfs_invalidate(fs, true);
	return 0;
}

static int export_sink(void *ctx, const void *buf, size_t len)
{
	struct text *t = ctx;
	text_addn(t, buf, len);
	return t->failed ? -ENOMEM : 0;
}

/*
 * Where a PATH argument points: relative to the mount's root, or
 * absolute under the mount point. Returns the part below the root of
 * its view, without leading slashes ("" is the root); *committed tells
 * whether it named ".pog/committed/...", the last commit.
 */
static const char *view_path_root(struct pogfs *fs, const char *path,
				  uint64_t *root);

static const char *view_path(struct pogfs *fs, const char *path, bool *committed)
{
	uint64_t root;
	const char *rel = view_path_root(fs, path, &root);

	*committed = root != POG_ROOT_INO;
	return rel;
}

/*
 * view_path, and the root of the view: POG_ROOT_INO, VINO_COMMITTED_ROOT,
 * or a retained commit's (".pog/history/ID/...", ".pog/snapshots/NAME/...").
 */
static const char *view_path_root(struct pogfs *fs, const char *path,
				  uint64_t *root)
{
	static const char committed_dir[] = POG_CTL_NAME "/committed";
	static const char pog_dir[] = POG_CTL_NAME "/";
	const size_t n = sizeof(committed_dir) - 1;
	const char *rel = path, *rest;

	*root = POG_ROOT_INO;
	if (path[0] == '/' && fs->mountpoint_len &&
	    strncmp(path, fs->mountpoint, fs->mountpoint_len) == 0 &&
	    (path[fs->mountpoint_len] == '/' || path[fs->mountpoint_len] == '\0'))
		rel = path + fs->mountpoint_len;
	while (*rel == '/')
		rel++;
	if (strncmp(rel, committed_dir, n) == 0 && (rel[n] == '/' || rel[n] == '\0')) {
		*root = VINO_COMMITTED_ROOT;
		rel += n;
		while (*rel == '/')
			rel++;
	} else if (strncmp(rel, pog_dir, sizeof(pog_dir) - 1) == 0 &&
		   history_view_path(fs, rel + sizeof(pog_dir) - 1, root, &rest) == 0) {
		rel = rest;
	}
	return rel;
}

/* The object an export PATH names (pogfs.h); shared with serve.c. */
int ctl_export_resolve(struct pogfs *fs, const char *path, uint64_t *ino)
{
	uint64_t dir;
	const char *rel = view_path_root(fs, path, &dir);
	int rc;

	*ino = dir;
	rc = rel[0] ? pog_resolve(fs->store, dir, rel, ino) : 0;
	/* pog_resolve answers staged numbers even from the committed view */
	if (rc == 0)
		*ino |= dir & ~POG_INO_MASK;
	return rc;
}

/*
 * export PATH: the JSON of the object at PATH, as the answer. PATH is
 * relative to the mount's root ("", "." or "/" for the root), or absolute
 * under the mount point; ".pog/committed/..." exports the last commit.
 */
static int cmd_export(struct pogfs *fs, const char *path, struct text *answer)
{
	uint64_t ino;
	int rc = ctl_export_resolve(fs, path, &ino);

	if (rc < 0)
		return command_failed(fs, answer, rc, "export: %.200s: %s", path,
				      pog_strerror(rc));
	pog_set_error(fs->store, NULL);
	rc = pog_export(fs->store, ino, export_sink, answer);
	if (rc < 0) {
		char what[256];
		snprintf(what, sizeof(what), "export: %.200s", path);
		text_release(answer);
		return core_failed(fs, answer, rc, what);
	}
	return 0;
}

/* ---- stat: what getfattr cannot tell of a symlink ------------------------ */

/* The object PATH names (not following a symlink at its end), in the view
 * it names: the staged one, .pog/committed/... or .pog/objects/INO. */
static int stat_resolve(struct pogfs *fs, const char *path, uint64_t *ino)
{
	static const char objects[] = POG_CTL_NAME "/objects/";
	uint64_t root;
	const char *rel = view_path_root(fs, path, &root);
	bool committed = root != POG_ROOT_INO;
	struct pog_attr a;
	int rc;

	if (!committed && strncmp(rel, objects, sizeof(objects) - 1) == 0) {
		char *end;
		const char *num = rel + sizeof(objects) - 1;
		errno = 0;
		unsigned long long v = strtoull(num, &end, 10);
		if (errno || end == num || v == 0 || v > POG_INO_MASK)
			return -ENOENT;
		uint64_t base = v;
		rc = pog_resolve(fs->store, base, *end == '/' ? end + 1 : end, ino);
		return rc == 0 ? pog_getattr(fs->store, *ino, &a) : rc;
	}
	rc = rel[0] ? pog_resolve(fs->store, root, rel, ino) : 0;
	if (rc == 0 && !rel[0])
		*ino = root;
	if (rc == 0)
		*ino |= root & ~POG_INO_MASK;
	return rc;
}

/* "path" of an object: its current place, or null when it has none. */
static void add_path(cJSON *o, struct pogfs *fs, uint64_t ino)
{
	char path[4096];
	ssize_t n = pog_path(fs->store, ino, path, sizeof(path) - 1);

	if (n < 0 || (size_t)n >= sizeof(path) - 1) {
		cJSON_AddNullToObject(o, "path");
		return;
	}
	path[n] = '\0';
	cJSON_AddStringToObject(o, "path", n ? path : ".");
}

/*
 * stat PATH: type, identity, Merkle hash, and for a ref its target's
 * identity and current path, as JSON (the answer). Works on symlinks,
 * which the kernel keeps user.* attributes off.
 */
static int cmd_stat(struct pogfs *fs, const char *path, struct text *answer)
{
	struct pog_attr a;
	uint64_t ino = 0, target;
	uint32_t hash;
	char hex[16], text[POG_SYMLINK_MAX + 1];
	cJSON *o = NULL, *t;
	char *json = NULL;
	int rc = stat_resolve(fs, path, &ino);

	if (rc == 0)
		rc = pog_getattr(fs->store, ino, &a);
	if (rc == 0)
		rc = pog_hash(fs->store, ino, &hash);
	if (rc < 0)
		return command_failed(fs, answer, rc, "stat: %.200s: %s", path,
				      pog_strerror(rc));
	rc = -ENOMEM;
	o = cJSON_CreateObject();
	if (!o)
		goto out;
	add_path(o, fs, ino);
	cJSON_AddNumberToObject(o, "ino", (double)(ino & POG_INO_MASK));
	cJSON_AddStringToObject(o, "type", pog_type_name(a.type));
	snprintf(hex, sizeof(hex), "%08x", hash);
	cJSON_AddStringToObject(o, "hash", hex);
	cJSON_AddNumberToObject(o, "nlink", a.nlink);
	cJSON_AddNumberToObject(o, "size", (double)a.size);
	cJSON_AddStringToObject(o, "view", ino_is_committed(ino) ? "committed"
							      : "staged");
	if (a.type == POG_REF && pog_ref_target(fs->store, ino, &target) == 0) {
		t = cJSON_AddObjectToObject(o, "target");
		if (!t)
			goto out;
		target |= ino & POG_COMMITTED_BIT;
		cJSON_AddNumberToObject(t, "ino", (double)(target & POG_INO_MASK));
		add_path(t, fs, target);
	}
	if (a.type == POG_SYMLINK || a.type == POG_REF) {
		ssize_t n = pog_readlink(fs->store, ino, text, POG_SYMLINK_MAX);
		if (n >= 0 && n <= POG_SYMLINK_MAX) {
			text[n] = '\0';
			cJSON_AddStringToObject(o, "link", text);
		}
	}
	json = cJSON_PrintUnformatted(o);
	if (!json)
		goto out;
	text_addf(answer, "%s\n", json);
	rc = answer->failed ? -ENOMEM : 0;
out:
	free(json);
	cJSON_Delete(o);
	return rc;
}

/* ---- import: a command whose document may come in several writes ------- */

/*
 * "import LENGTH PATH\n" and then LENGTH bytes of JSON. The caller
 * writes it all at once, but the kernel hands the daemon writes of at
 * most max_write bytes, at increasing offsets: the pieces are collected
 * per open file and the import runs in the write that completes them.
 */

#define IMPORT_USAGE "usage: import LENGTH PATH, a newline, then LENGTH bytes of JSON"

/* What the text near a parse error looks like, for the message. */
static void describe_error_spot(const char *doc, size_t len, int line,
				int column, char *out, size_t size)
{
	size_t at = 0;

	for (int l = 1; at < len && l < line; at++)
		if (doc[at] == '\n')
			l++;
	at += (size_t)(column > 1 ? column - 1 : 0);
	if (at >= len) {
		snprintf(out, size, "invalid JSON: the document ends too early");
		return;
	}
	size_t n = 0;
	char near[24];
	while (n < sizeof(near) - 1 && at + n < len && doc[at + n] != '\n' &&
	       doc[at + n] != '\r') {
		unsigned char c = (unsigned char)doc[at + n];
		near[n++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	near[n] = '\0';
	snprintf(out, size, "invalid JSON near \"%s\"", near);
}

/* What an import does: the document (doc, len bytes) at path. */
struct import_job {
	const char *path;
	const char *doc;
	size_t len;
	uint32_t uid, gid;
};

/* Run the import of a complete document. */
static int cmd_import(struct pogfs *fs, const struct import_job *p,
		      struct text *answer)
{
	bool committed;
	const char *rel0 = view_path(fs, p->path, &committed);
	char *rel = NULL, *last = NULL;
	char key[POG_KEY_MAX + 1];
	ssize_t keylen = 0;
	uint64_t dir = POG_ROOT_INO, ino;
	struct pog_attr a;
	struct pog_json_error je;
	int rc;

	if (committed)
		return command_failed(fs, answer, -EROFS,
				      "import: %.200s: the committed state is read-only",
				      p->path);
	rel = strdup(rel0);
	if (!rel)
		return -ENOMEM;
	for (size_t n = strlen(rel); n && rel[n - 1] == '/';)
		rel[--n] = '\0';
	if (strcmp(rel, ".") == 0)
		rel[0] = '\0';
	if (strcmp(rel, POG_CTL_NAME) == 0 ||
	    strncmp(rel, POG_CTL_NAME "/", sizeof(POG_CTL_NAME)) == 0) {
		rc = command_failed(fs, answer, -EPERM,
				    "import: %.200s: not into the control directory",
				    p->path);
		goto out;
	}

	rc = rel[0] ? pog_resolve(fs->store, POG_ROOT_INO, rel, &ino) : 0;
	if (rc == 0) {
		/* An existing map: the document's entries are added. */
		dir = rel[0] ? ino : POG_ROOT_INO;
		rc = pog_getattr(fs->store, dir, &a);
		if (rc == 0 && a.type != POG_MAP)
			rc = -EEXIST;
		if (rc < 0) {
			rc = command_failed(fs, answer, rc, "import: %.200s: %s", p->path,
					    rc == -EEXIST ? "exists and is not a map"
					    : pog_strerror(rc));
			goto out;
		}
	} else if (rc == -ENOENT) {
		/* A new entry of a map or list: the document becomes it. */
		char *slash = strrchr(rel, '/');
		last = slash ? slash + 1 : rel;
		if (slash)
			*slash = '\0';
		if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
			rc = command_failed(fs, answer, -EINVAL,
					    "import: %.200s: not a name for a new entry",
					    p->path);
			goto out;
		}
		rc = slash ? pog_resolve(fs->store, POG_ROOT_INO, rel, &dir) : 0;
		if (rc == 0)
			rc = pog_getattr(fs->store, dir, &a);
		if (rc == 0 && a.type != POG_MAP && a.type != POG_LIST)
			rc = -ENOTDIR;
		if (rc == 0) {
			keylen = strlen(last) > POGFS_NAME_MAX ? -ENAMETOOLONG
				: pog_name_unescape(last, strlen(last), key, sizeof(key) - 1);
			if (keylen < 0)
				rc = (int)keylen;
		}
		if (rc < 0) {
			rc = command_failed(fs, answer, rc, "import: %.200s: %s", p->path,
					    pog_strerror(rc));
			goto out;
		}
	} else {
		rc = command_failed(fs, answer, rc, "import: %.200s: %s", p->path,
				    pog_strerror(rc));
		goto out;
	}

	uint64_t staged_before = pog_staged_count(fs->store);
	rc = pog_import(fs->store, dir, last ? key : NULL, last ? (size_t)keylen : 0,
			p->doc, p->len, p->uid, p->gid, &je);
	bool staged_changed = pog_staged_count(fs->store) != staged_before;
	if (rc == 0 || staged_changed)
		pogfs_touch(fs); /* before a failure is recorded: it clears */
	if (rc < 0 && je.line > 0) {
		char what[128];
		describe_error_spot(p->doc, p->len, je.line, je.column, what,
				    sizeof(what));
		je.message[sizeof(je.message) - 1] = '\0';
		rc = command_failed(fs, answer, rc, "line %d, column %d: %s",
				    je.line, je.column,
				    je.message[0] ? je.message : what);
	} else if (rc < 0) {
		je.message[sizeof(je.message) - 1] = '\0';
		rc = command_failed(fs, answer, rc, "import: %.200s: %s%s", p->path,
				    je.message[0] ? je.message : pog_strerror(rc),
				    staged_changed
				    ? " (what it made is staged: abort to undo)" : "");
	} else {
		text_addf(answer, "import %zu %s\n", p->len, p->path);
	}
	/* Show the new names at once, whatever the kernel cached. */
	if (last && last[0])
		fuse_lowlevel_notify_inval_entry(fs->se, dir, last, strlen(last));
	fuse_lowlevel_notify_inval_inode(fs->se, dir, 0, 0);
out:
	free(rel);
	return rc;
}

/* Is this write the start of an import command? */
static bool is_import_header(const char *buf, size_t size)
{
	size_t i = 0;

	while (i < size && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	return size - i >= 6 && memcmp(buf + i, "import", 6) == 0 &&
	       (size - i == 6 || buf[i + 6] == ' ' || buf[i + 6] == '\t' ||
		buf[i + 6] == '\n' || buf[i + 6] == '\r');
}

/* Run the import when its document is complete; forget it then. */
static int import_maybe_finish(struct pogfs *fs, struct vfile *vf)
{
	struct pending_import *p = &vf->import;
	struct import_job job = { p->path, NULL, p->want, p->uid, p->gid };
	int rc = 0;

	if (p->spool.have == p->want) {
		rc = pogfs_spool_map(&p->spool, &job.doc);
		if (rc < 0)
			rc = command_failed(fs, &vf->text, rc,
					    "import: mapping the document: %s",
					    strerror(-rc));
		else
			rc = cmd_import(fs, &job, &vf->text);
		pending_import_release(p);
	}
	return rc;
}

/* Add a piece of the document to the spool; a failure forgets it. */
static int import_add(struct pogfs *fs, struct vfile *vf, const char *buf,
		      size_t size)
{
	struct pending_import *p = &vf->import;
	int rc = pogfs_spool_write(&p->spool, buf, size);

	if (rc < 0) {
		size_t have = p->spool.have, want = p->want;
		pending_import_release(p);
		return command_failed(fs, &vf->text, rc,
				      "import: holding the document (%zu of %zu bytes): %s; nothing was imported",
				      have, want, strerror(-rc));
	}
	return import_maybe_finish(fs, vf);
}

int ctl_import(struct pogfs *fs, const char *path, const char *doc, size_t len,
	       uint32_t uid, uint32_t gid, char *why, size_t size)
{
	struct import_job job = { path, doc, len, uid, gid };
	struct text answer = {0};
	int rc = cmd_import(fs, &job, &answer);

	why[0] = '\0';
	if (rc < 0 && answer.data) {
		const char *text = answer.data;
		if (strncmp(text, "error: ", 7) == 0)
			text += 7;
		snprintf(why, size, "%.*s", (int)strcspn(text, "\n"), text);
	} else if (rc == 0) {
		pogfs_clear_error(fs);
	}
	text_release(&answer);
	return rc;
}

/* The first write: "import LENGTH PATH\n" and maybe some of the document. */
static int import_start(struct pogfs *fs, fuse_req_t req, struct vfile *vf,
			const char *buf, size_t size, off_t off,
			uint64_t fi_lock_owner)
{
	struct pending_import *p = &vf->import;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	const char *nl = memchr(buf, '\n', size);
	char *header, *s, *end, *path;
	unsigned long long want;

	if (!nl)
		return command_failed(fs, &vf->text, -EINVAL, "import: " IMPORT_USAGE);
	header = strndup(buf, (size_t)(nl - buf));
	if (!header)
		return -ENOMEM;
	for (size_t n = strlen(header); n && (header[n - 1] == '\r' ||
					     is_blank(header[n - 1]));)
		header[--n] = '\0';
	s = header;
	while (is_blank(*s))
		s++;
	s += 6; /* "import" */
	while (is_blank(*s))
		s++;
	errno = 0;
	want = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
	if (!isdigit((unsigned char)*s) || errno || (*end && !is_blank(*end)) ||
	    memchr(header, '\0', (size_t)(nl - buf)) || want > SIZE_MAX / 2) {
		free(header);
		return command_failed(fs, &vf->text, -EINVAL, "import: " IMPORT_USAGE);
	}
	path = end;
	while (is_blank(*path))
		path++;
	size_t body = size - (size_t)(nl + 1 - buf);
	if (body > want) {
		free(header);
		return command_failed(fs, &vf->text, -EINVAL,
				      "import: more than LENGTH (%llu) bytes follow the command",
				      want);
	}
	pending_import_release(p);
	char why[1024];
	int rc = pogfs_spool_open(fs, &p->spool, (size_t)want, why, sizeof(why));
	if (rc < 0) {
		free(header);
		return command_failed(fs, &vf->text, rc,
				      "import: no room to hold the document (%llu bytes): %s",
				      want, why);
	}
	p->path = strdup(path[0] ? path : ".");
	free(header);
	if (!p->path) {
		pending_import_release(p);
		return -ENOMEM;
	}
	p->active = true;
	vf->import_owner = fi_lock_owner;
	p->want = (size_t)want;
	p->uid = ctx->uid;
	p->gid = ctx->gid;
	p->next_off = off + (off_t)size;
	return import_add(fs, vf, nl + 1, body);
}

/* A further piece of the document of a pending import. */
static int import_continue(struct pogfs *fs, struct vfile *vf, const char *buf,
			   size_t size, off_t off)
{
	struct pending_import *p = &vf->import;
	size_t have = p->spool.have, want = p->want;

	if (off != p->next_off) {
		pending_import_release(p);
		return command_failed(fs, &vf->text, -EINVAL,
				      "import: a new write before the document was complete (%zu of %zu bytes)",
				      have, want);
	}
	if (size > want - have) {
		pending_import_release(p);
		return command_failed(fs, &vf->text, -EINVAL,
				      "import: more than LENGTH (%zu) bytes of document",
				      want);
	}
	p->next_off += (off_t)size;
	return import_add(fs, vf, buf, size);
}

/*
 * Run one command (the whole of one write). Returns 0 or -errno; the
 * answer (or the reason of a failure) is left in *answer.
 */
/* ---- history: snapshot, unsnapshot, diff (SPEC 5a) ----------------------- */

/* snapshot NAME names the last commit (this session's base); unsnapshot
 * NAME lets the name go. NAME is a file name, escaped as keys are. */
static int cmd_snapshot(struct pogfs *fs, const char *verb, const char *name,
			struct text *answer)
{
	char key[POG_KEY_MAX + 1];
	ssize_t kl = -EINVAL;
	bool make = strcmp(verb, "snapshot") == 0;
	int rc;

	if (name[0] && strlen(name) <= POGFS_NAME_MAX && !strchr(name, '/') &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		kl = pog_name_unescape(name, strlen(name), key, sizeof(key));
	if (kl <= 0)
		return command_failed(fs, answer, -EINVAL,
				      "%s: NAME must be a file name (no '/', not . or ..)",
				      verb);
	rc = make ? pog_snapshot(fs->store, key, (size_t)kl, 0)
		  : pog_unsnapshot(fs->store, key, (size_t)kl);
	if (rc == -EEXIST)
		return command_failed(fs, answer, rc, "snapshot: %.200s exists", name);
	if (rc == -ENOENT)
		return command_failed(fs, answer, rc, "%s: no snapshot %.200s", verb, name);
	if (rc < 0)
		return command_failed(fs, answer, rc, "%s: %.200s: %s", verb, name,
				      pog_strerror(rc));
	if (make) {
		uint64_t id = 0;
		pog_snapshot_find(fs->store, key, (size_t)kl, &id);
		text_addf(answer, "snapshot %s %" PRIu64 "\n", name, id);
	} else {
		text_addf(answer, "unsnapshot %s\n", name);
	}
	return 0;
}

/* revert ID: stage the inverse of commit ID; ESTALE names the paths a
 * later change touched in .pog/conflicts (lines "C path"). */
static int cmd_revert(struct pogfs *fs, const char *arg, struct text *answer)
{
	struct text paths = { 0 };
	uint64_t id;
	int rc = history_commit_arg(fs, arg, &id);

	if (rc < 0 || id == POG_DIFF_STAGED)
		return command_failed(fs, answer, rc < 0 ? rc : -EINVAL,
				      "revert: %.100s: not a retained commit", arg);
	pog_set_error(fs->store, NULL);
	rc = pog_revert(fs->store, id, conflict_line, &paths);
	if (rc == -ESTALE || rc == 0)
		conflicts_set(fs, &paths);
	if (rc < 0) {
		rc = core_failed(fs, answer, rc, "revert");
		if (paths.len)
			text_addn(answer, paths.data, paths.len);
		text_release(&paths);
		return rc;
	}
	text_release(&paths);
	text_addf(answer, "revert %" PRIu64 " %" PRIu64 "\n", id,
		  pog_staged_count(fs->store));
	pogfs_invalidate(fs, false);
	pogfs_touch(fs);
	return 0;
}

/* diff A B: the answer is change lines as in .pog/changes. */
static int cmd_diff(struct pogfs *fs, char *args, struct text *answer)
{
	char *b = args;
	uint64_t ida, idb;
	int rc;

	while (*b && !is_blank(*b))
		b++;
	if (*b)
		*b++ = '\0';
	while (is_blank(*b))
		b++;
	if (!args[0] || !b[0] || strpbrk(b, " \t"))
		return command_failed(fs, answer, -EINVAL,
				      "diff: takes two commits (ids, snapshot names or staged)");
	rc = history_commit_arg(fs, args, &ida);
	if (rc == 0)
		rc = history_commit_arg(fs, b, &idb);
	if (rc < 0)
		return command_failed(fs, answer, rc,
				      "diff: %.100s %.100s: not retained commits (see ls .pog/history, .pog/snapshots)",
				      args, b);
	rc = pog_diff(fs->store, ida, idb, change_line, answer);
	if (rc < 0) {
		text_release(answer);
		return command_failed(fs, answer, rc, "diff: %s", pog_strerror(rc));
	}
	return answer->failed ? -ENOMEM : 0;
}

static int run_command(struct pogfs *fs, const char *buf, size_t size,
		       struct text *answer)
{
	char *cmd, *verb, *args;
	size_t len = size;
	int rc;

	if (memchr(buf, '\0', size))
		return command_failed(fs, answer, -EINVAL,
				      "malformed command: contains a NUL byte");
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	if (memchr(buf, '\n', len))
		return command_failed(fs, answer, -EINVAL,
				      "malformed command: one command per write");
	cmd = strndup(buf, len);
	if (!cmd)
		return -ENOMEM;
	verb = cmd;
	while (is_blank(*verb))
		verb++;
	args = verb;
	while (*args && !is_blank(*args))
		args++;
	if (*args) {
		*args++ = '\0';
		while (is_blank(*args))
			args++;
	}
	/* trailing blanks belong to no argument */
	for (char *end = args + strlen(args); end > args && is_blank(end[-1]);)
		*--end = '\0';

	if (verb[0] == '\0')
		rc = command_failed(fs, answer, -EINVAL, "empty command");
	else if (strcmp(verb, "commit") == 0)
		rc = cmd_commit(fs, args, answer);
	else if (args[0] != '\0' && (strcmp(verb, "abort") == 0 ||
				     strcmp(verb, "gc") == 0))
		rc = command_failed(fs, answer, -EINVAL,
				    "%s: takes no argument", verb);
	else if (strcmp(verb, "abort") == 0)
		rc = cmd_abort(fs, answer);
	else if (strcmp(verb, "gc") == 0)
		rc = cmd_gc(fs, answer);
	else if (strcmp(verb, "export") == 0)
		rc = cmd_export(fs, args, answer);
	else if (strcmp(verb, "stat") == 0)
		rc = cmd_stat(fs, args, answer);
	else if (strcmp(verb, "snapshot") == 0 || strcmp(verb, "unsnapshot") == 0)
		rc = cmd_snapshot(fs, verb, args, answer);
	else if (strcmp(verb, "diff") == 0)
		rc = cmd_diff(fs, args, answer);
	else if (strcmp(verb, "revert") == 0)
		rc = cmd_revert(fs, args, answer);
	else
		rc = command_failed(fs, answer, -EINVAL,
				    "unknown command \"%.64s\" (commit [message], abort, gc, export PATH, import LENGTH PATH, stat PATH, snapshot NAME, unsnapshot NAME, diff A B, revert ID)",
				    verb);
	free(cmd);
	return rc;
}

void ctl_write(fuse_req_t req, uint64_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct vfile *vf = (struct vfile *)(uintptr_t)fi->fh;
	int rc;

	if (ino != VINO_CTL || !vf) {
		fuse_reply_err(req, EACCES);
		return;
	}
	pthread_mutex_lock(&vf->lock);
	if (vf->import.active) {
		rc = import_continue(fs, vf, buf, size, off);
	} else {
		text_release(&vf->text);
		if (is_import_header(buf, size))
			rc = import_start(fs, req, vf, buf, size, off,
					  fi->lock_owner);
		else
			rc = run_command(fs, buf, size, &vf->text);
	}
	vf->answer_unread = true;
	vf->read_base = 0;
	/* A command that succeeded clears the last error (a piece of an
	 * import that is still incomplete is no command yet). */
	if (rc == 0 && !vf->import.active)
		pogfs_clear_error(fs);
	pthread_mutex_unlock(&vf->lock);
	if (rc < 0)
		fuse_reply_err(req, pogfs_errno(rc));
	else
		fuse_reply_write(req, size);
	events_notify(fs); /* readers of a commit, after its writer */
}

/* ---- kernel cache invalidation ---------------------------------------- */

static int want_staged(uint64_t ino)
{
	return !ino_is_virtual(ino) && !ino_is_committed(ino);
}

static int want_committed(uint64_t ino)
{
	return ino_is_committed(ino) && !ino_is_history(ino);
}

/*
 * Tell the kernel to forget what it cached of the inodes of one view:
 * dentries first, every name each inode was given (so paths are looked
 * up afresh, hard links too), then attributes and pages. The names are
 * taken out of the inode table: the kernel holds none of them after
 * this, and gives back any it looks up again. Called without any lock
 * held: the kernel may need to wait for requests that other threads of
 * this daemon are serving.
 */
struct dir_set {
	uint64_t *v;
	size_t n, cap;
};

static int dir_set_add(void *ctx, uint64_t dir)
{
	struct dir_set *d = ctx;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		uint64_t *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = dir;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int dir_set_has(void *ctx, uint64_t dir)
{
	struct dir_set *d = ctx;

	return bsearch(&dir, d->v, d->n, sizeof(*d->v), cmp_u64) != NULL;
}

/*
 * The last commit renumbered some lists (0 1 2 4 became 0 1 2 3: names
 * are ranks, core/list.c, so only the lists whose names changed): the
 * kernel must forget the names it was given in them, and their listings.
 * Only the names the inode table says were given out are told, never one
 * notification per entry of a list.
 */
static void invalidate_renumbered(struct pogfs *fs)
{
	struct dir_set dirs = {0};
	struct inode_inval *v = NULL;

	if (pog_renumbered(fs->store, dir_set_add, &dirs) < 0 ||
	    (dirs.n && (qsort(dirs.v, dirs.n, sizeof(*dirs.v), cmp_u64),
			inode_table_take_names(&fs->inodes, dir_set_has, &dirs,
					       &v) < 0))) {
		pogfs_log(fs, LOG_ERR, "invalidate: out of memory");
		free(dirs.v);
		return;
	}
	for (size_t i = 0; v && i < v->nnames; i++)
		fuse_lowlevel_notify_inval_entry(fs->se, v->names[i].parent,
						 v->names[i].name,
						 v->names[i].len);
	for (size_t i = 0; i < dirs.n; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, dirs.v[i], 0, 0);
	free(v);
	free(dirs.v);
}

void pogfs_committed(struct pogfs *fs)
{
	pogfs_invalidate(fs, true);
	pogfs_moved(fs); /* committed onto others' commits: past them */
	pogfs_sessions_committed(fs);
}

void pogfs_moved(struct pogfs *fs)
{
	if (!pogfs_tell_moved(fs))
		pogfs_invalidate(fs, false);
}

void pogfs_invalidate_committed(struct pogfs *fs)
{
	struct inode_inval *v;

	if (inode_table_take(&fs->inodes, want_committed, &v) < 0) {
		pogfs_log(fs, LOG_ERR, "invalidate: out of memory");
		return;
	}
	for (size_t i = 0; i < v->nnames; i++) {
		if (v->names[i].parent)
			fuse_lowlevel_notify_inval_entry(fs->se, v->names[i].parent,
							 v->names[i].name,
							 v->names[i].len);
	}
	for (size_t i = 0; i < v->ninos; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, v->inos[i], 0, 0);
	free(v);
}

void pogfs_invalidate(struct pogfs *fs, bool committed_view)
{
	if (committed_view) {
		invalidate_renumbered(fs);
		pogfs_invalidate_committed(fs);
		return;
	}
	struct inode_inval *v;
	if (inode_table_take(&fs->inodes, want_staged, &v) < 0) {
		pogfs_log(fs, LOG_ERR, "invalidate: out of memory");
		return;
	}
	/* names the abort took away are deleted (inotify) */
	pogfs_view_moved(fs, v);
	/* the root's attributes too (never in the table) */
	fuse_lowlevel_notify_inval_inode(fs->se, POG_ROOT_INO, 0, 0);
	free(v);
}
