/* ctl.c - the .pog control directory: ctl, status, changes, log, committed/, objects/. */
#include "pogfs.h"

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

/* ---- a small growable text buffer ------------------------------------- */

struct text {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* out of memory at some point */
};

static void text_addn(struct text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *p = realloc(t->data, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->data = p;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

static void text_addf(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void text_addf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		text_addn(t, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		t->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	text_addn(t, big, (size_t)n);
	free(big);
}

static void text_release(struct text *t)
{
	free(t->data);
	memset(t, 0, sizeof(*t));
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
	{ VINO_COMMITTED_ROOT, "committed", S_IFDIR | 0555 },
	{ VINO_OBJECTS, "objects", S_IFDIR | 0555 },
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
		st->st_nlink = 4; /* ., .., committed, objects */
		return true;
	}
	for (size_t i = 0; i < N_POG_CHILDREN; i++) {
		if (pog_children[i].ino == ino &&
		    ino != VINO_COMMITTED_ROOT) {
			st->st_mode = pog_children[i].mode;
			st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
			/* Contents are made at open; size 0 like /proc. */
			return true;
		}
	}
	return false;
}

static void reply_virtual_entry(fuse_req_t req, uint64_t ino)
{
	struct pogfs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	ctl_stat(fs, ino, &e.attr);
	e.ino = ino;
	e.attr_timeout = fs->timeout;
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
	struct stat st;

	if (!ctl_stat(fs, ino, &st)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, fs->timeout);
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
		if (!ctl_stat(fs, list[i].ino, &e.attr)) {
			/* committed/: a directory; its attributes come
			 * with lookup, so link nothing here. */
			e.attr.st_ino = list[i].ino;
			e.attr.st_mode = S_IFDIR | 0555;
		} else if (i >= 2) {
			e.ino = list[i].ino;
		}
		e.attr_timeout = e.entry_timeout = fs->timeout;
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
};

static int log_line(void *ctx, const struct pog_log_entry *e)
{
	struct text *t = ctx;
	char when[64];
	struct tm tm;
	time_t sec = (time_t)e->time.sec;

	if (!gmtime_r(&sec, &tm) ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%" PRId64, e->time.sec);
	text_addf(t, "%" PRIu64 " %s %" PRIu64 " %s\n", e->id, when, e->changes,
		  e->message ? e->message : "");
	return 0;
}

static int change_line(void *ctx, char kind, const char *path)
{
	text_addf(ctx, "%c %s\n", kind, path);
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
	add_number(o, "objects", ps->objects);
	add_number(o, "next_ino", ps->next_ino);
	ps->last_error[sizeof(ps->last_error) - 1] = '\0';
	cJSON_AddStringToObject(o, "last_error", ps->last_error);
	gc = cJSON_AddObjectToObject(o, "gc");
	if (gc) {
		add_number(gc, "runs", ps->gc_runs);
		add_number(gc, "freed_blocks", ps->gc_freed_blocks);
		add_number(gc, "freed_objects", ps->gc_freed_objects);
	}
	add_number(o, "checksum_errors", ps->checksum_errors);
	cJSON_AddBoolToObject(o, "autocommit", fs->autocommit);
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

void ctl_open(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct vfile *vf;
	int rc = 0;

	if (ino == VINO_POG || ino == VINO_OBJECTS) {
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
	switch (ino) {
	case VINO_CTL:
		break;
	case VINO_STATUS:
		rc = make_status(fs, &vf->text);
		break;
	case VINO_CHANGES:
		rc = pog_changes(fs->store, change_line, &vf->text);
		break;
	case VINO_LOG:
		rc = pog_log(fs->store, log_line, &vf->text);
		break;
	default:
		rc = -ENOENT;
	}
	if (rc == 0 && vf->text.failed)
		rc = -ENOMEM;
	if (rc < 0) {
		text_release(&vf->text);
		pthread_mutex_destroy(&vf->lock);
		free(vf);
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)vf;
	fi->direct_io = 1; /* every open and read sees current content */
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0) {
		text_release(&vf->text);
		pthread_mutex_destroy(&vf->lock);
		free(vf);
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
	if (off < 0 || (size_t)off >= vf->text.len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		size_t n = vf->text.len - (size_t)off;
		fuse_reply_buf(req, vf->text.data + off, n < size ? n : size);
	}
	pthread_mutex_unlock(&vf->lock);
}

void ctl_release(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	struct vfile *vf = (struct vfile *)(uintptr_t)fi->fh;
	(void)ino;

	if (vf) {
		text_release(&vf->text);
		pthread_mutex_destroy(&vf->lock);
		free(vf);
	}
	fuse_reply_err(req, 0);
}

/* ---- commands --------------------------------------------------------- */

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
	pog_set_error(fs->store, "%s", reason);
	text_addf(answer, "error: %s\n", reason);
	pogfs_log(fs, LOG_NOTICE, "ctl: %s", reason);
	return rc;
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
	rc = pog_commit(fs->store, message[0] ? message : NULL, &id);
	if (rc < 0)
		return command_failed(fs, answer, rc, "commit: %s",
				      pog_strerror(rc));
	text_addf(answer, "commit %" PRIu64 " %" PRIu64 "\n", id, staged);
	pogfs_invalidate(fs, true);
	return 0;
}

static int cmd_abort(struct pogfs *fs, struct text *answer)
{
	uint64_t staged = pog_staged_count(fs->store);
	int rc = pog_abort(fs->store);

	if (rc < 0)
		return command_failed(fs, answer, rc, "abort: %s",
				      pog_strerror(rc));
	text_addf(answer, "abort %" PRIu64 "\n", staged);
	pogfs_invalidate(fs, false);
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
 * export PATH: the JSON of the object at PATH, as the answer. PATH is
 * relative to the mount's root ("." or "/" for the root), or absolute
 * under the mount point; ".pog/committed/..." exports the last commit.
 */
static int cmd_export(struct pogfs *fs, const char *path, struct text *answer)
{
	static const char committed[] = POG_CTL_NAME "/committed";
	uint64_t dir = POG_ROOT_INO, ino;
	const char *rel = path;
	int rc;

	if (path[0] == '\0')
		return command_failed(fs, answer, -EINVAL, "export: missing PATH");
	if (path[0] == '/' && fs->mountpoint_len &&
	    strncmp(path, fs->mountpoint, fs->mountpoint_len) == 0 &&
	    (path[fs->mountpoint_len] == '/' || path[fs->mountpoint_len] == '\0'))
		rel = path + fs->mountpoint_len;
	while (*rel == '/')
		rel++;
	if (strncmp(rel, committed, sizeof(committed) - 1) == 0 &&
	    (rel[sizeof(committed) - 1] == '/' || rel[sizeof(committed) - 1] == '\0')) {
		dir = VINO_COMMITTED_ROOT;
		rel += sizeof(committed) - 1;
		while (*rel == '/')
			rel++;
	}
	ino = dir;
	rc = rel[0] ? pog_resolve(fs->store, dir, rel, &ino) : 0;
	/* pog_resolve answers staged numbers even from the committed view */
	if (rc == 0 && dir == VINO_COMMITTED_ROOT)
		ino |= POG_COMMITTED_BIT;
	if (rc < 0)
		return command_failed(fs, answer, rc, "export: %.200s: %s", path,
				      pog_strerror(rc));
	rc = pog_export(fs->store, ino, export_sink, answer);
	if (rc < 0) {
		text_release(answer);
		return command_failed(fs, answer, rc, "export: %.200s: %s", path,
				      pog_strerror(rc));
	}
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Run one command (the whole of one write). Returns 0 or -errno; the
 * answer (or the reason of a failure) is left in *answer.
 */
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
	else
		rc = command_failed(fs, answer, -EINVAL,
				    "unknown command \"%.64s\" (commit [message], abort, gc, export PATH)",
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
	(void)off;

	if (ino != VINO_CTL || !vf) {
		fuse_reply_err(req, EACCES);
		return;
	}
	pthread_mutex_lock(&vf->lock);
	text_release(&vf->text);
	rc = run_command(fs, buf, size, &vf->text);
	pthread_mutex_unlock(&vf->lock);
	if (rc < 0)
		fuse_reply_err(req, pogfs_errno(rc));
	else
		fuse_reply_write(req, size);
}

/* ---- kernel cache invalidation ---------------------------------------- */

static int want_staged(uint64_t ino)
{
	return !ino_is_virtual(ino) && !ino_is_committed(ino);
}

static int want_committed(uint64_t ino)
{
	return ino_is_committed(ino);
}

/*
 * Tell the kernel to forget what it cached of the inodes of one view:
 * dentries first (so paths are looked up afresh), then attributes and
 * pages. Called without any lock held: the kernel may need to wait for
 * requests that other threads of this daemon are serving.
 */
void pogfs_invalidate(struct pogfs *fs, bool committed_view)
{
	struct inode_ref *refs;
	long n = inode_table_snapshot(&fs->inodes,
				      committed_view ? want_committed : want_staged,
				      &refs);

	if (n < 0) {
		pogfs_log(fs, LOG_ERR, "invalidate: out of memory");
		return;
	}
	for (long i = 0; i < n; i++) {
		if (refs[i].name && refs[i].parent)
			fuse_lowlevel_notify_inval_entry(fs->se, refs[i].parent,
							 refs[i].name,
							 refs[i].namelen);
	}
	for (long i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, refs[i].ino, 0, 0);
	/* the root's attributes too (never in the table) */
	if (!committed_view)
		fuse_lowlevel_notify_inval_inode(fs->se, POG_ROOT_INO, 0, 0);
	inode_table_snapshot_free(refs, n);
}
