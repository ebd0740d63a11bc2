/* ops.c - the FUSE low-level operations: thin adapters onto pog_* calls. */
#include "pogfs.h"
#include "killpriv.h"
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <stdio.h> /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>

#define XATTR_USER_PREFIX "user."
#define XATTR_POG_PREFIX "user.pog."
#define XATTR_POG_TYPE "user.pog.type"
/* Read-only and not listed (rsync -X must not copy it back in). */
#define XATTR_POG_HASH "user.pog.hash"

static struct pogfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- error mapping, attributes, entries ------------------------------ */

int pogfs_errno(long rc)
{
	if (rc >= 0)
		return 0;
	switch (rc) {
	case POG_ECORRUPT:
	case POG_EFATAL:
	case POG_ENOTPOOL:
	case POG_ENEWER:
		return EIO;
	case POG_ELOCKED:
		return EBUSY;
	}
	if (rc > -4096)
		return (int)-rc;
	return EIO;
}

void pogfs_fill_stat(const struct pog_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

void pogfs_touch(struct pogfs *fs)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	atomic_store_explicit(&fs->last_change_ns,
			      (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
			      memory_order_relaxed);
	pogfs_clear_error(fs);
}

void pogfs_note_error(struct pogfs *fs, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (fs->store)
		pog_set_error(fs->store, "%s", reason);
	atomic_store(&fs->error_pending, true);
}

void pogfs_clear_error(struct pogfs *fs)
{
	/* Most successes find nothing to clear: one atomic load. */
	if (atomic_load_explicit(&fs->error_pending, memory_order_relaxed) &&
	    atomic_exchange(&fs->error_pending, false) && fs->store)
		pog_set_error(fs->store, NULL);
}

static void fill_entry(struct pogfs *fs, const struct pog_attr *a,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 0; /* identities are never reused */
	pogfs_fill_stat(a, &e->attr);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
}

/*
 * The kernel is about to hold one more reference to ino: count it (for
 * forget and for invalidation) and pin staged objects against GC.
 */
static void hold(struct pogfs *fs, uint64_t ino, uint64_t parent,
		 const char *name, size_t len)
{
	if (ino_is_virtual(ino))
		return;
	if (inode_table_remember(&fs->inodes, ino, parent, name, len) != 0)
		pogfs_log(fs, LOG_ERR, "inode table: out of memory");
	if (!ino_is_committed(ino))
		pog_pin(fs->store, ino);
}

/* Undo hold() when the reply did not reach the kernel. */
static void unhold(struct pogfs *fs, uint64_t ino, uint64_t n)
{
	if (ino_is_virtual(ino))
		return;
	uint64_t dropped = inode_table_forget(&fs->inodes, ino, n);
	if (dropped && !ino_is_committed(ino))
		pog_unpin(fs->store, ino, dropped);
}

/* Is dir a list (whose names are positions: README "Lists")? */
static bool is_list(struct pogfs *fs, uint64_t dir)
{
	struct pog_attr pa;

	if (ino_is_virtual(dir))
		return false;
	return pog_getattr(fs->store, dir, &pa) == 0 && pa.type == POG_LIST;
}

/* ---- why an operation failed with EINVAL ------------------------------ */

/* "dir/name" (or the object dir when name is NULL) as the mount shows it,
 * "." for the root, for a message. */
static void message_path(struct pogfs *fs, uint64_t dir, const char *name,
			 char *out, size_t size)
{
	char path[1024];
	ssize_t n = pog_path(fs->store, dir & POG_INO_MASK, path, sizeof(path) - 1);

	if (n < 0 || (size_t)n >= sizeof(path) - 1)
		snprintf(path, sizeof(path), ".pog/objects/%" PRIu64,
			 dir & POG_INO_MASK);
	else
		path[n] = '\0';
	if (!name)
		snprintf(out, size, "%s", path[0] ? path : ".");
	else if (!path[0])
		snprintf(out, size, "%s", name);
	else
		snprintf(out, size, "%s/%s", path, name);
}

static const char *type_of(struct pogfs *fs, uint64_t ino)
{
	struct pog_attr a;
	const char *name = NULL;

	if (pog_getattr(fs->store, ino, &a) == 0)
		name = pog_type_name(a.type);
	return name ? name : "object";
}

/*
 * Every EINVAL leaves its reason in .pog/status (until the next success):
 * "OP PATH: WHY". Other errors say enough by their errno.
 */
static void note_einval(struct pogfs *fs, long rc, const char *op,
			uint64_t dir, const char *name, const char *why)
{
	char path[1200];

	if (rc != -EINVAL)
		return;
	message_path(fs, dir, name, path, sizeof(path));
	pogfs_note_error(fs, "%s %s: %s", op, path, why);
}

/* Why a name was refused in dir (create, link, rename). */
static const char *name_refused_why(struct pogfs *fs, uint64_t dir)
{
	return is_list(fs, dir)
		? "a number too big to be a list position (at most 13 digits before the point)"
		: "invalid name";
}

void pogfs_reply_entry(fuse_req_t req, uint64_t parent, const char *name,
		       size_t len, const struct pog_attr *a)
{
	struct pogfs *fs = fs_of(req);
	struct fuse_entry_param e;

	fill_entry(fs, a, &e);
	hold(fs, a->ino, parent, name, len);
	if (fuse_reply_entry(req, &e) != 0)
		unhold(fs, a->ino, 1);
}

/* A name from the kernel as a store key. */
struct key {
	char buf[POG_KEY_MAX + 1];
	size_t len;
};

static int key_of(const char *name, struct key *k)
{
	size_t len = strlen(name);
	if (len > POGFS_NAME_MAX)
		return -ENAMETOOLONG;
	ssize_t n = pog_name_unescape(name, len, k->buf, sizeof(k->buf) - 1);
	if (n < 0)
		return (int)n;
	k->len = (size_t)n;
	k->buf[n] = '\0';
	return 0;
}

/* Is name the hidden control directory in dir? */
static bool is_ctl_name(uint64_t dir, const char *name)
{
	return dir == POG_ROOT_INO && strcmp(name, POG_CTL_NAME) == 0;
}

/* May the staged state under ino be changed? 0 or -errno. */
static int check_writable(uint64_t ino)
{
	if (ino_is_virtual(ino))
		return -EPERM;
	if (ino_is_committed(ino))
		return -EROFS;
	return 0;
}

/* Is the caller in group gid (its own or a supplementary one), or root? */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64];

	if (ctx->uid == 0 || ctx->gid == gid)
		return true;
	int n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * FUSE_HANDLE_KILLPRIV_V2 (fs/killpriv.c): when the request being
 * processed says so (a write or truncate by a caller without
 * CAP_FSETID, a chown), clear setuid, and setgid when group-executable
 * or the caller is not in the file's group, as the kernel would on a
 * local filesystem.
 */
static void kill_suidgid(fuse_req_t req, uint64_t ino)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a, out;

	if (!pogfs_kill_suidgid_asked() || pog_getattr(fs->store, ino, &a) != 0 ||
	    !(a.mode & (S_ISUID | S_ISGID)))
		return;
	mode_t m = pogfs_killed_mode(a.mode, caller_in_group(req, a.gid));
	if (m == a.mode)
		return;
	struct pog_attr want = { .mode = m & 07777 };
	if (pog_setattr(fs->store, ino, &want, POG_SET_MODE, &out) != 0)
		return;
	pogfs_touch(fs);
	/* The kernel keeps its cached mode otherwise (write, open). */
	fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

static void now_time(struct pog_time *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	t->sec = ts.tv_sec;
	t->nsec = (uint32_t)ts.tv_nsec;
}

/* A time setattr asks for: now (now_bit), the given one (set_bit), or
 * none (false). */
static bool wanted_time(int to_set, int now_bit, int set_bit,
			const struct timespec *given, struct pog_time *out)
{
	if (to_set & now_bit) {
		now_time(out);
		return true;
	}
	if (!(to_set & set_bit))
		return false;
	out->sec = given->tv_sec;
	out->nsec = (uint32_t)given->tv_nsec;
	return true;
}

/* ---- lifecycle -------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pogfs *fs = userdata;

	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Write-through: every write reaches the store at once, so the
	 * staged state is what all processes see. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	/* libfuse refuses the connection unless this equals -o max_read */
	conn->max_read = fs->max_read;
	/* File handles (name_to_handle_at, knfsd) of inodes the kernel has
	 * not cached are resolved by lookups of "." and ".." (lookup_dot):
	 * identities are never reused, so a handle outlives the daemon. */
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	pogfs_ready(fs);
	pogfs_notify("READY=1"); /* systemd, Type=notify (with -f) */
}

static void op_destroy(void *userdata)
{
	pogfs_close_store(userdata);
}

/* ---- names ------------------------------------------------------------ */

/* A .pog virtual inode as an entry ("." of a handle into .pog). */
static void reply_virtual_dot(fuse_req_t req, uint64_t ino)
{
	struct pogfs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (!ctl_stat(fs, ino, &e.attr)) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	e.ino = ino;
	e.attr_timeout = e.entry_timeout = fs->timeout;
	fuse_reply_entry(req, &e);
}

/* The directory holding ino: the object's owner, .pog for what is in
 * it, .pog's parent the root; the root is its own. */
static int parent_of(struct pogfs *fs, uint64_t ino, uint64_t *parent)
{
	if (ino == VINO_POG || ino == POG_ROOT_INO) {
		*parent = POG_ROOT_INO;
		return 0;
	}
	if (ino_is_virtual(ino) || ino == VINO_COMMITTED_ROOT) {
		*parent = VINO_POG;
		return 0;
	}
	if (ino_is_history(ino) && (ino & POG_INO_MASK) == POG_ROOT_INO) {
		*parent = VINO_HISTORY;
		return 0;
	}
	int rc = pog_resolve(fs->store, ino, "..", parent);
	if (rc == 0 && ino_is_committed(ino))
		*parent |= ino & ~POG_INO_MASK; /* the same view */
	return rc;
}

/*
 * The kernel looks up "." of a node id it has not cached to decode a
 * file handle (after a remount, or once it forgot the inode), and ".."
 * to reconnect a directory to the tree. An object that no longer exists
 * answers ESTALE, as a kernel filesystem does for a freed inode.
 */
static void lookup_dot(fuse_req_t req, uint64_t ino, bool dotdot)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	uint64_t target = ino;
	int rc = dotdot ? parent_of(fs, ino, &target) : 0;

	if (rc == 0 && ino_is_virtual(target)) {
		reply_virtual_dot(req, target);
		return;
	}
	if (rc == 0)
		rc = pog_getattr(fs->store, target, &a);
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc < 0) {
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	pogfs_reply_entry(req, target, NULL, 0, &a);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	struct key k;
	int rc;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		lookup_dot(req, parent, name[1] == '.');
		return;
	}
	if (ino_is_virtual(parent) || is_ctl_name(parent, name)) {
		ctl_lookup(req, parent, name);
		return;
	}
	rc = key_of(name, &k);
	if (rc == 0)
		rc = pog_lookup(fs->store, parent, k.buf, k.len, &a);
	if (rc < 0) {
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	pogfs_reply_entry(req, parent, name, strlen(name), &a);
}

static void forget_one(struct pogfs *fs, uint64_t ino, uint64_t nlookup)
{
	unhold(fs, ino, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct pogfs *fs = fs_of(req);
	for (size_t i = 0; i < count; i++)
		forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---- attributes ------------------------------------------------------- */

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	struct stat st;
	(void)fi;

	if (ino_is_virtual(ino)) {
		ctl_getattr(req, ino);
		return;
	}
	int rc = pog_getattr(fs->store, ino, &a);
	if (rc < 0) {
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	pogfs_fill_stat(&a, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr want, out;
	unsigned mask = 0;
	(void)fi;

	if (ino_is_virtual(ino)) {
		/* Shells truncate ctl before writing: accept and ignore. */
		if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
			       FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			       FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) {
			fuse_reply_err(req, EPERM);
			return;
		}
		ctl_getattr(req, ino);
		return;
	}
	int rc = check_writable(ino);
	if (rc < 0) {
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}

	kill_suidgid(req, ino);
	memset(&want, 0, sizeof(want));
	if (to_set & FUSE_SET_ATTR_MODE) {
		want.mode = attr->st_mode & 07777;
		mask |= POG_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		want.uid = attr->st_uid;
		mask |= POG_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		want.gid = attr->st_gid;
		mask |= POG_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		want.size = (uint64_t)attr->st_size;
		mask |= POG_SET_SIZE;
		if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) {
			/* truncate(2) updates mtime like a write does */
			now_time(&want.mtime);
			mask |= POG_SET_MTIME;
		}
	}
	if (wanted_time(to_set, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME,
			&attr->st_atim, &want.atime))
		mask |= POG_SET_ATIME;
	if (wanted_time(to_set, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME,
			&attr->st_mtim, &want.mtime))
		mask |= POG_SET_MTIME;
	if (wanted_time(to_set, 0, FUSE_SET_ATTR_CTIME, &attr->st_ctim,
			&want.ctime))
		mask |= POG_SET_CTIME;

	rc = pog_setattr(fs->store, ino, &want, mask, &out);
	if (rc < 0) {
		note_einval(fs, rc, "setattr of", ino, NULL,
			    mask & POG_SET_SIZE
			    ? "that size would leave text that does not parse"
			    : "invalid attributes");
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	pogfs_touch(fs);
	struct stat st;
	pogfs_fill_stat(&out, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

/* ---- creating --------------------------------------------------------- */

/*
 * Owner of a new object: the caller, with the group of a setgid parent
 * (which new directories inherit), as a kernel filesystem does.
 */
static void set_owner(fuse_req_t req, uint64_t parent, struct pog_new *spec,
		      bool is_dir)
{
	struct pogfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct pog_attr pa;

	spec->uid = ctx->uid;
	spec->gid = ctx->gid;
	if (pog_getattr(fs->store, parent, &pa) == 0 && (pa.mode & S_ISGID)) {
		spec->gid = pa.gid;
		if (is_dir)
			spec->mode |= S_ISGID;
	}
}

/* A plain symlink whose target may appear in the store before the next
 * commit (see pog_symlink_pending): root_path, or NULL for its text. */
struct link_wish {
	const char *root_path;
};

/*
 * Shared by mkdir, mknod, symlink and create: make the node and reply
 * with an entry (or, when fi is given, with create's open file).
 */
static void make_node(fuse_req_t req, uint64_t parent, const char *name,
		      struct pog_new *spec, struct fuse_file_info *fi,
		      const struct link_wish *wish)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	struct key k;
	int rc;

	if (is_ctl_name(parent, name)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	rc = check_writable(parent);
	if (rc == 0)
		rc = key_of(name, &k);
	if (rc == 0) {
		set_owner(req, parent, spec, spec->type == POG_MAP ||
						     spec->type == POG_LIST);
		rc = pog_mknode(fs->store, parent, k.buf, k.len, spec, &a);
	}
	if (rc < 0) {
		note_einval(fs, rc, "create", parent, name,
			    name_refused_why(fs, parent));
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	if (wish && pog_symlink_pending(fs->store, a.ino, wish->root_path) < 0)
		pogfs_log(fs, LOG_ERR, "symlink %s: out of memory: it stays text",
			  name);
	pogfs_touch(fs);
	if (!fi) {
		pogfs_reply_entry(req, parent, name, strlen(name), &a);
		return;
	}

	struct fuse_entry_param e;
	fill_entry(fs, &a, &e);
	fi->keep_cache = 1;
	fi->noflush = 1; /* see op_flush */
	fi->fh = 0;
	hold(fs, a.ino, parent, name, strlen(name));
	if (fuse_reply_create(req, &e, fi) != 0)
		unhold(fs, a.ino, 1);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct pog_new spec = { .type = POG_MAP, .mode = mode & 07777 };
	make_node(req, parent, name, &spec, NULL, NULL);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct pog_new spec = { .mode = mode & 07777 };

	switch (mode & S_IFMT) {
	case S_IFREG:
		spec.type = POG_STRING;
		break;
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		spec.type = POG_SPECIAL;
		spec.mode = mode & (S_IFMT | 07777);
		spec.rdev = rdev;
		break;
	default:
		note_einval(fs_of(req), -EINVAL, "mknod", parent, name,
			    "unknown file type");
		fuse_reply_err(req, EINVAL);
		return;
	}
	make_node(req, parent, name, &spec, NULL, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct pog_new spec = { .type = POG_STRING, .mode = mode & 07777 };
	make_node(req, parent, name, &spec, fi, NULL);
}

/*
 * Where a symlink target points inside the store, if it does: relative
 * targets from the link's directory, absolute ones under the mount point.
 */
static bool resolve_target(struct pogfs *fs, uint64_t parent,
			   const char *target, uint64_t *ino)
{
	uint64_t dir = parent;
	const char *path = target;

	if (target[0] == '\0')
		return false;
	if (target[0] == '/') {
		size_t n = fs->mountpoint_len;
		if (!fs->mountpoint || strncmp(target, fs->mountpoint, n) != 0 ||
		    (target[n] != '/' && target[n] != '\0'))
			return false;
		dir = POG_ROOT_INO;
		path = target + n;
		while (*path == '/')
			path++;
	}
	/* ".pog/..." is not in the store: keep such links as text */
	return pog_resolve(fs->store, dir, path, ino) == 0 &&
	       !ino_is_committed(*ino);
}

/*
 * Could a target that names nothing yet name an object later (rsync and
 * tar make links before their targets)? Relative ones (from the link's
 * directory), and absolute ones under the mount point (*root_path is then
 * the part below it).
 */
static bool target_in_store(struct pogfs *fs, const char *target,
			    const char **root_path)
{
	size_t n = fs->mountpoint_len;

	*root_path = NULL;
	if (target[0] == '\0')
		return false;
	if (target[0] != '/')
		return true;
	if (!fs->mountpoint || strncmp(target, fs->mountpoint, n) != 0 ||
	    (target[n] != '/' && target[n] != '\0'))
		return false;
	*root_path = target + n;
	while (**root_path == '/')
		(*root_path)++;
	return true;
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct pogfs *fs = fs_of(req);
	struct pog_new spec = { .mode = 0777 };
	uint64_t target;

	if (strlen(link) > POG_SYMLINK_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	struct link_wish wish = { NULL };
	bool maybe_later = false;
	if (check_writable(parent) == 0 && resolve_target(fs, parent, link, &target)) {
		spec.type = POG_REF;
		spec.ref_target = target;
	} else {
		spec.type = POG_SYMLINK;
		spec.text = link;
		maybe_later = check_writable(parent) == 0 &&
			      target_in_store(fs, link, &wish.root_path);
	}
	make_node(req, parent, name, &spec, NULL, maybe_later ? &wish : NULL);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	struct key k;
	int rc;

	if (is_ctl_name(newparent, newname)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	rc = check_writable(ino);
	if (rc == 0)
		rc = check_writable(newparent);
	if (rc == 0)
		rc = key_of(newname, &k);
	if (rc == 0)
		rc = pog_link(fs->store, ino, newparent, k.buf, k.len, &a);
	if (rc < 0) {
		note_einval(fs, rc, "link", newparent, newname,
			    name_refused_why(fs, newparent));
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	pogfs_touch(fs);
	pogfs_reply_entry(req, newparent, newname, strlen(newname), &a);
}

/* ---- removing and renaming -------------------------------------------- */

static void remove_entry(fuse_req_t req, uint64_t parent, const char *name,
			 unsigned flags)
{
	struct pogfs *fs = fs_of(req);
	struct key k;
	int rc;

	if (is_ctl_name(parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = check_writable(parent);
	if (rc == 0)
		rc = key_of(name, &k);
	if (rc == 0)
		rc = pog_remove(fs->store, parent, k.buf, k.len, flags);
	note_einval(fs, rc, flags & POG_REMOVE_DIR ? "rmdir" : "unlink", parent,
		    name, "cannot be removed");
	if (rc == 0) {
		pogfs_touch(fs);
		/* the kernel's dentry goes negative: no name of the inode */
		inode_table_unname(&fs->inodes, parent, name, strlen(name));
	}
	fuse_reply_err(req, pogfs_errno(rc));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, POG_REMOVE_DIR);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct pogfs *fs = fs_of(req);
	struct key *from = NULL, *to = NULL;
	unsigned pflags = 0;
	int rc = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		rc = -EINVAL;
	else if (is_ctl_name(parent, name) || is_ctl_name(newparent, newname))
		rc = -EPERM;
	if (flags & RENAME_NOREPLACE)
		pflags |= POG_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		pflags |= POG_RENAME_EXCHANGE;
	if (rc == 0)
		rc = check_writable(parent);
	if (rc == 0)
		rc = check_writable(newparent);
	if (rc == 0) {
		from = malloc(sizeof(*from));
		to = malloc(sizeof(*to));
		if (!from || !to)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = key_of(name, from);
	if (rc == 0)
		rc = key_of(newname, to);
	if (rc == 0)
		rc = pog_rename(fs->store, parent, from->buf, from->len,
				newparent, to->buf, to->len, pflags);
	if (rc == -EINVAL) {
		char target[1200];
		message_path(fs, newparent, newname, target, sizeof(target));
		char why[1400];
		snprintf(why, sizeof(why), "to %s: %s", target,
			 flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)
			 ? "unknown rename flags"
			 : is_list(fs, newparent)
			 ? "a number too big to be a list position, or a directory below itself"
			 : "a directory cannot move below itself");
		note_einval(fs, rc, "rename", parent, name, why);
	}
	if (rc == 0) {
		pogfs_touch(fs);
		/* The kernel moves its dentry to the new name (and, with
		 * RENAME_EXCHANGE, the other one back) without a lookup:
		 * follow it, so that an abort finds the names. */
		if (inode_table_rename(&fs->inodes, parent, name, strlen(name),
				       newparent, newname, strlen(newname),
				       (flags & RENAME_EXCHANGE) != 0) != 0)
			pogfs_log(fs, LOG_ERR, "inode table: out of memory");
	}
	free(from);
	free(to);
	fuse_reply_err(req, pogfs_errno(rc));
}

/* ---- symlinks --------------------------------------------------------- */

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct pogfs *fs = fs_of(req);
	char *buf = malloc(POG_SYMLINK_MAX + 1);
	ssize_t n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = ino_is_virtual(ino) ? -EINVAL
				: pog_readlink(fs->store, ino, buf, POG_SYMLINK_MAX);
	if (n > POG_SYMLINK_MAX)
		n = -ENAMETOOLONG;
	if (n < 0) {
		fuse_reply_err(req, pogfs_errno(n));
	} else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
	free(buf);
}

/* ---- files ------------------------------------------------------------ */

/*
 * An open typed scalar (int, float, bool, null) whose O_TRUNC waits for
 * the first write: `echo abc > count` must fail and leave the old value,
 * so the old text goes only when the new one is accepted. (An empty typed
 * scalar is allowed, but it has no value: truncating at open would lose
 * the old one to a refused write.) When nothing is written the truncation
 * happens at release, and the scalar is empty, as truncate(1) leaves it.
 */
struct scalar_handle {
	pthread_mutex_t lock;
	bool truncate_pending;
};

static bool is_scalar_type(uint32_t type)
{
	return type == POG_INT || type == POG_FLOAT || type == POG_BOOL ||
	       type == POG_NULL;
}

static void scalar_handle_free(struct scalar_handle *h)
{
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static int truncate_to_zero(struct pogfs *fs, uint64_t ino)
{
	struct pog_attr want = { .size = 0 }, out;

	now_time(&want.mtime);
	return pog_setattr(fs->store, ino, &want, POG_SET_SIZE | POG_SET_MTIME,
			   &out);
}

/*
 * The first write after O_TRUNC: replace the text; on failure put the
 * old text back (it parsed before, so it parses again).
 */
static ssize_t scalar_replace(struct pogfs *fs, uint64_t ino, uint64_t off,
			      const char *buf, size_t size)
{
	char old[4096];
	ssize_t oldlen = pog_read(fs->store, ino, 0, old, sizeof(old));
	if (oldlen < 0)
		return oldlen;
	int rc = truncate_to_zero(fs, ino);
	if (rc < 0)
		return rc;
	ssize_t n = pog_write(fs->store, ino, off, buf, size);
	if (n < 0 && oldlen > 0 && pog_write(fs->store, ino, 0, old, (size_t)oldlen) < 0)
		pogfs_log(fs, LOG_ERR, "object %" PRIu64 ": old value not restored",
			  ino);
	return n;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	int rc;

	if (ino == VINO_EVENTS) {
		events_open(req, fi);
		return;
	}
	if (ino_is_virtual(ino)) {
		ctl_open(req, ino, fi);
		return;
	}
	if (ino_is_committed(ino) && (writing || (fi->flags & O_TRUNC))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fi->flags & O_TRUNC)
		kill_suidgid(req, ino);
	rc = pog_getattr(fs->store, ino, &a);
	if (rc == 0 && (fi->flags & O_TRUNC) && writing && a.size != 0 &&
	    is_scalar_type(a.type)) {
		/* Truncate with the first write, so that bad text keeps
		 * the old value (see struct scalar_handle). */
		struct scalar_handle *h = calloc(1, sizeof(*h));
		if (!h) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_init(&h->lock, NULL);
		h->truncate_pending = true;
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->direct_io = 1;
		fi->noflush = 1; /* see op_flush */
		if (fuse_reply_open(req, fi) != 0)
			scalar_handle_free(h);
		return;
	}
	if (rc == 0 && (fi->flags & O_TRUNC) && writing && a.size != 0) {
		struct pog_attr want = { .size = 0 };
		now_time(&want.mtime);
		rc = pog_setattr(fs->store, ino, &want,
				 POG_SET_SIZE | POG_SET_MTIME, &a);
		if (rc == 0)
			pogfs_touch(fs);
	}
	if (rc < 0) {
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	fi->fh = 0;
	if (a.type == POG_STRING) {
		/* The page cache stays valid across opens: every change
		 * goes through this kernel, and abort/commit invalidate. */
		fi->keep_cache = 1;
	} else {
		/* Typed scalars may refuse a write or canonicalise their
		 * text: keep them out of the page cache. */
		fi->direct_io = 1;
	}
	fi->noflush = 1; /* see op_flush */
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);

	if (ino == VINO_EVENTS) {
		events_read(req, size, fi);
		return;
	}
	if (ino_is_virtual(ino)) {
		ctl_read(req, ino, size, off, fi);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = pog_read(fs->store, ino, (uint64_t)off, buf, size);
	if (n == POG_ECORRUPT)
		pogfs_log(fs, LOG_ERR, "read of object %llu at %lld: checksum "
			  "mismatch (EIO; see pog fsck)",
			  (unsigned long long)ino, (long long)off);
	if (n < 0)
		fuse_reply_err(req, pogfs_errno(n));
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);

	if (ino == VINO_EVENTS) {
		events_write(req, buf, size, fi);
		return;
	}
	if (ino_is_virtual(ino)) {
		ctl_write(req, ino, buf, size, off, fi);
		return;
	}
	if (ino_is_committed(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	kill_suidgid(req, ino);
	struct scalar_handle *h = (struct scalar_handle *)(uintptr_t)fi->fh;
	ssize_t n;
	if (h) {
		pthread_mutex_lock(&h->lock);
		if (h->truncate_pending) {
			h->truncate_pending = false;
			n = scalar_replace(fs, ino, (uint64_t)off, buf, size);
		} else {
			n = pog_write(fs->store, ino, (uint64_t)off, buf, size);
		}
		pthread_mutex_unlock(&h->lock);
	} else {
		n = pog_write(fs->store, ino, (uint64_t)off, buf, size);
	}
	if (n < 0) {
		if (n == -EINVAL) {
			char why[128];
			snprintf(why, sizeof(why),
				 "the text is not a valid %s (the old value is kept)",
				 type_of(fs, ino));
			note_einval(fs, n, "write to", ino, NULL, why);
		}
		fuse_reply_err(req, pogfs_errno(n));
		return;
	}
	pogfs_touch(fs);
	fuse_reply_write(req, (size_t)n);
}

/*
 * A store object's close needs nothing from the daemon (writes reach the
 * store at once; locks are the kernel's), so its opens say noflush and
 * the kernel sends no FLUSH for them: only .pog files get here.
 */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == VINO_EVENTS) {
		fuse_reply_err(req, 0);
		return;
	}
	if (ino_is_virtual(ino)) {
		ctl_flush(req, ino, fi);
		return;
	}
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (ino == VINO_EVENTS) {
		events_release_file(req, fi);
		return;
	}
	if (ino_is_virtual(ino)) {
		ctl_release(req, ino, fi);
		return;
	}
	struct scalar_handle *h = (struct scalar_handle *)(uintptr_t)fi->fh;
	if (h) {
		/* O_TRUNC and nothing written: empty now, without a value
		 * (a commit refuses it until a write gives one). */
		if (h->truncate_pending && truncate_to_zero(fs_of(req), ino) == 0)
			pogfs_touch(fs_of(req));
		scalar_handle_free(h);
	}
	fuse_reply_err(req, 0);
}

/* Durability is what `commit` gives; fsync promises nothing more. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	(void)fi;

	if (ino_is_virtual(ino)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	int rc = offset < 0 || length <= 0
			 ? -EINVAL
			 : pog_fallocate(fs->store, ino, (unsigned)mode,
					 (uint64_t)offset, (uint64_t)length);
	if (rc == 0)
		pogfs_touch(fs);
	fuse_reply_err(req, pogfs_errno(rc));
}

/* Files under .pog are all data, as sysfs files are. */
static void lseek_virtual(fuse_req_t req, uint64_t ino, off_t off, int whence)
{
	struct stat st;

	if (!ctl_stat(fs_of(req), ino, &st) || !S_ISREG(st.st_mode)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off >= st.st_size)
		fuse_reply_err(req, ENXIO);
	else
		fuse_reply_lseek(req, whence == SEEK_DATA ? off : st.st_size);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	uint64_t at = 0;
	(void)fi;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	if (ino_is_virtual(ino)) {
		lseek_virtual(req, ino, off, whence);
		return;
	}
	int rc = pog_seek(fs_of(req)->store, ino, (uint64_t)off,
			  whence == SEEK_DATA ? POG_SEEK_DATA : POG_SEEK_HOLE,
			  &at);
	if (rc < 0)
		fuse_reply_err(req, pogfs_errno(rc));
	else
		fuse_reply_lseek(req, (off_t)at);
}

/* The reply carries a 32-bit count: copy at most 1 GiB per request
 * (callers loop, as for any short copy). */
#define COPY_MAX ((size_t)1 << 30)

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
			       off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	struct pogfs *fs = fs_of(req);
	(void)fi_in;
	(void)fi_out;

	if (flags != 0 || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ino_is_virtual(ino_in) || ino_is_virtual(ino_out)) {
		/* The kernel copies through read and write instead. */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ssize_t n = pog_copy_range(fs->store, ino_in, (uint64_t)off_in, ino_out,
				   (uint64_t)off_out,
				   len < COPY_MAX ? len : COPY_MAX);
	if (n == POG_ECORRUPT)
		pogfs_log(fs, LOG_ERR, "copy from object %llu at %lld: checksum "
			  "mismatch (EIO; see pog fsck)",
			  (unsigned long long)ino_in, (long long)off_in);
	if (n < 0) {
		fuse_reply_err(req, pogfs_errno(n));
		return;
	}
	if (n > 0)
		pogfs_touch(fs);
	fuse_reply_write(req, (size_t)n);
}

/* ---- directories ------------------------------------------------------ */

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

/*
 * Directory offsets: 1 is after ".", 2 after "..", 3 after the optional
 * ".pog" of the root; core cookies (> 0, < 2^61) are shifted by 3.
 */
#define DIR_OFF_SHIFT 3

struct dir_fill {
	fuse_req_t req;
	struct pogfs *fs;
	uint64_t dir;
	char *buf;
	size_t size;
	size_t used;
	bool plus;
};

static bool add_entry(struct dir_fill *d, const char *name,
		      const struct pog_attr *a, off_t next)
{
	struct fuse_entry_param e;
	size_t need;

	fill_entry(d->fs, a, &e);
	if (d->plus) {
		need = fuse_add_direntry_plus(d->req, d->buf + d->used,
					      d->size - d->used, name, &e, next);
	} else {
		need = fuse_add_direntry(d->req, d->buf + d->used,
					 d->size - d->used, name, &e.attr, next);
	}
	if (need > d->size - d->used)
		return false;
	d->used += need;
	return true;
}

/*
 * pog_readdir hands out names already escaped for the mount (core's
 * dirent.c calls pog_name_escape), so they are used as they are.
 */
static int dir_fill_fn(void *ctx, const char *escaped, size_t len,
		       const struct pog_attr *a, uint64_t next_cookie)
{
	struct dir_fill *d = ctx;
	char name[POGFS_NAME_MAX + 1];

	if (len > POGFS_NAME_MAX || memchr(escaped, '\0', len)) {
		pogfs_log(d->fs, LOG_WARNING,
			  "readdir %llu: a name of %zu bytes cannot be listed, skipped",
			  (unsigned long long)d->dir, len);
		return 0;
	}
	memcpy(name, escaped, len);
	name[len] = '\0';
	if (!add_entry(d, name, a, (off_t)(next_cookie + DIR_OFF_SHIFT)))
		return 1;
	/* Every readdirplus entry with an ino is a lookup for the kernel. */
	if (d->plus)
		hold(d->fs, a->ino, d->dir, name, len);
	return 0;
}

/* The "." or ".." entry: ino 0 in the entry so the kernel links nothing. */
static bool add_dot(struct dir_fill *d, const char *name, uint64_t ino,
		    off_t next)
{
	struct pog_attr a = { .ino = ino, .mode = S_IFDIR | 0755 };
	struct fuse_entry_param e;
	size_t need;

	fill_entry(d->fs, &a, &e);
	if (d->plus) {
		e.ino = 0;
		need = fuse_add_direntry_plus(d->req, d->buf + d->used,
					      d->size - d->used, name, &e, next);
	} else {
		need = fuse_add_direntry(d->req, d->buf + d->used,
					 d->size - d->used, name, &e.attr, next);
	}
	if (need > d->size - d->used)
		return false;
	d->used += need;
	return true;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct pogfs *fs = fs_of(req);
	struct dir_fill d = { .req = req, .fs = fs, .dir = ino, .size = size,
			      .plus = plus };
	int rc = 0;
	(void)fi;

	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (ino_is_virtual(ino)) {
		d.used = ctl_readdir(req, ino, d.buf, size, off, plus);
		goto reply;
	}
	if (off < 1 && !add_dot(&d, ".", ino, 1))
		goto reply;
	/* ".." of a directory: its own number will do (only the kernel
	 * knows the parent it came through, and it ignores this one). */
	if (off < 2 && !add_dot(&d, "..", ino, 2))
		goto reply;
	if (off < 3 && ino == POG_ROOT_INO && fs->showpog) {
		struct stat st;
		struct fuse_entry_param e;
		size_t need;

		ctl_stat(fs, VINO_POG, &st);
		memset(&e, 0, sizeof(e));
		e.ino = VINO_POG;
		e.attr = st;
		e.attr_timeout = e.entry_timeout = fs->timeout;
		need = plus ? fuse_add_direntry_plus(req, d.buf + d.used,
						     size - d.used, POG_CTL_NAME,
						     &e, 3)
			    : fuse_add_direntry(req, d.buf + d.used,
						size - d.used, POG_CTL_NAME,
						&st, 3);
		if (need > size - d.used)
			goto reply;
		d.used += need;
	}
	rc = pog_readdir(fs->store, ino,
			 off >= DIR_OFF_SHIFT ? (uint64_t)off - DIR_OFF_SHIFT : 0,
			 dir_fill_fn, &d);
reply:
	if (rc < 0 && d.used == 0)
		fuse_reply_err(req, pogfs_errno(rc));
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pogfs *fs = fs_of(req);
	struct pog_status *ps = malloc(sizeof(*ps));
	struct statvfs sv;
	int rc;
	(void)ino;

	if (!ps) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = pog_status(fs->store, ps);
	if (rc < 0) {
		free(ps);
		fuse_reply_err(req, pogfs_errno(rc));
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = ps->block_size ? ps->block_size : 4096;
	sv.f_frsize = sv.f_bsize;
	sv.f_blocks = ps->blocks_total;
	sv.f_bfree = ps->blocks_total > ps->blocks_used
			     ? ps->blocks_total - ps->blocks_used : 0;
	/* The reserve is free but only for deleting (as ext4's reserved
	 * blocks): counted in f_bfree, not in f_bavail. */
	sv.f_bavail = sv.f_bfree > ps->blocks_reserved
			      ? sv.f_bfree - ps->blocks_reserved : 0;
	/* Objects are limited by space, not by a table: one per block. */
	sv.f_files = ps->objects + sv.f_bfree;
	sv.f_ffree = sv.f_bfree;
	sv.f_favail = sv.f_bfree;
	sv.f_namemax = POGFS_NAME_MAX;
	free(ps);
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---------------------------------------------- */

static bool is_user_xattr(const char *name)
{
	return strncmp(name, XATTR_USER_PREFIX, strlen(XATTR_USER_PREFIX)) == 0;
}

static void reply_xattr_value(fuse_req_t req, const char *value, size_t len,
			      size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct pogfs *fs = fs_of(req);

	/* Other namespaces (security.capability is asked on every write)
	 * simply have no attributes here. */
	if (!is_user_xattr(name) || ino_is_virtual(ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strcmp(name, XATTR_POG_TYPE) == 0) {
		struct pog_attr a;
		int rc = pog_getattr(fs->store, ino, &a);
		const char *type = rc == 0 ? pog_type_name(a.type) : NULL;
		if (rc < 0)
			fuse_reply_err(req, pogfs_errno(rc));
		else if (!type)
			fuse_reply_err(req, EIO);
		else
			reply_xattr_value(req, type, strlen(type), size);
		return;
	}

	if (strcmp(name, XATTR_POG_HASH) == 0) {
		uint32_t h;
		char text[16];
		int rc = pog_hash(fs->store, ino, &h);
		if (rc < 0) {
			fuse_reply_err(req, pogfs_errno(rc));
		} else {
			snprintf(text, sizeof(text), "%08x", h);
			reply_xattr_value(req, text, 8, size);
		}
		return;
	}

	size_t cap = size ? size : POG_XATTR_VALUE_MAX;
	char *buf = malloc(cap);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = pog_getxattr(fs->store, ino, name, buf, cap);
	if (n == -ERANGE || (n >= 0 && (size_t)n > cap))
		fuse_reply_err(req, ERANGE);
	else if (n < 0)
		fuse_reply_err(req, pogfs_errno(n));
	else
		reply_xattr_value(req, buf, (size_t)n, size);
	free(buf);
}

/* The type named by a user.pog.type value; 0 when none can be set. */
static unsigned type_by_name(const char *value, size_t size)
{
	static const unsigned settable[] = { POG_MAP, POG_LIST, POG_STRING,
					     POG_INT, POG_FLOAT, POG_BOOL,
					     POG_NULL };

	for (size_t i = 0; i < sizeof(settable) / sizeof(settable[0]); i++) {
		const char *n = pog_type_name(settable[i]);
		if (n && strlen(n) == size && memcmp(n, value, size) == 0)
			return settable[i];
	}
	return 0;
}

static bool is_dir_type(unsigned type)
{
	return type == POG_MAP || type == POG_LIST;
}

/* Why setting user.pog.type failed with EINVAL. */
static void note_set_type(struct pogfs *fs, uint64_t ino, unsigned type,
			  const char *value, size_t size)
{
	const char *from = type_of(fs, ino), *to = pog_type_name(type);
	struct pog_attr a;
	char why[256];

	if (!type) {
		int n = (int)(size > 32 ? 32 : size);
		while (n > 0 && value[n - 1] == '\n')
			n--;
		snprintf(why, sizeof(why),
			 "unknown type \"%.*s\" (map, list, string, int, float, bool, null)",
			 n, value);
	} else if (pog_getattr(fs->store, ino, &a) == 0 &&
		   is_dir_type(a.type) != is_dir_type(type)) {
		snprintf(why, sizeof(why), "a %s cannot become a %s", from, to);
	} else if (is_dir_type(type)) {
		snprintf(why, sizeof(why),
			 "a %s becomes a %s only when its names are all numbers (positions)",
			 from, to);
	} else {
		snprintf(why, sizeof(why), "its content does not parse as a %s", to);
	}
	note_einval(fs, -EINVAL, "set user.pog.type of", ino, NULL, why);
}

/*
 * setfattr -n user.pog.type -v TYPE: convert the object (the same type
 * is a no-op, so rsync -X restores). A conversion may rewrite a
 * scalar's text in canonical form, so the kernel's cached pages and
 * size go (no lock of this inode is held by the kernel's setxattr path
 * that the invalidation needs).
 */
static void set_type(fuse_req_t req, uint64_t ino, const char *value,
		     size_t size, int flags)
{
	struct pogfs *fs = fs_of(req);
	unsigned type = type_by_name(value, size);
	int rc = 0;

	if (!type && size && value[size - 1] == '\n') /* -v "$(cat x)" */
		type = type_by_name(value, size - 1);
	if (flags & XATTR_CREATE)
		rc = -EEXIST; /* every object has a type */
	else if (!type)
		rc = -EINVAL;
	if (rc == 0)
		rc = pog_set_type(fs->store, ino, type);
	if (rc == 0) {
		pogfs_touch(fs);
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	}
	if (rc == -EINVAL)
		note_set_type(fs, ino, type, value, size);
	fuse_reply_err(req, pogfs_errno(rc));
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct pogfs *fs = fs_of(req);
	int rc = check_writable(ino);

	if (rc == 0 && !is_user_xattr(name))
		rc = -EOPNOTSUPP;
	if (rc == 0 && strcmp(name, XATTR_POG_TYPE) == 0) {
		set_type(req, ino, value, size, flags);
		return;
	}
	if (rc == 0 && strncmp(name, XATTR_POG_PREFIX, strlen(XATTR_POG_PREFIX)) == 0)
		rc = -EPERM; /* user.pog.hash and friends are computed */
	if (rc == 0 && strlen(name) > POG_XATTR_NAME_MAX)
		rc = -ERANGE;
	if (rc == 0 && size > POG_XATTR_VALUE_MAX)
		rc = -E2BIG;
	if (rc == 0)
		rc = pog_setxattr(fs->store, ino, name, value, size, flags);
	note_einval(fs, rc, "setxattr of", ino, NULL, "invalid attribute");
	if (rc == 0)
		pogfs_touch(fs);
	fuse_reply_err(req, pogfs_errno(rc));
}

/* Does this object show user.pog.type in its list? (The kernel keeps
 * user.* off symlinks and special files.) */
static bool lists_type(uint32_t mode)
{
	return S_ISREG(mode) || S_ISDIR(mode);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct pogfs *fs = fs_of(req);
	struct pog_attr a;
	char *core = NULL, *out = NULL;
	ssize_t n;
	size_t len = 0;
	int rc;

	if (ino_is_virtual(ino)) {
		reply_xattr_value(req, "", 0, size);
		return;
	}
	rc = pog_getattr(fs->store, ino, &a);
	if (rc < 0)
		goto fail;
	/* Measure, then fetch; retry if it grew in between. */
	for (;;) {
		n = pog_listxattr(fs->store, ino, NULL, 0);
		if (n < 0) {
			rc = (int)n;
			goto fail;
		}
		free(core);
		core = malloc((size_t)n + 1);
		if (!core) {
			rc = -ENOMEM;
			goto fail;
		}
		ssize_t got = n ? pog_listxattr(fs->store, ino, core, (size_t)n) : 0;
		if (got == -ERANGE || got > n)
			continue;
		if (got < 0) {
			rc = (int)got;
			goto fail;
		}
		n = got;
		break;
	}
	out = malloc((size_t)n + sizeof(XATTR_POG_TYPE));
	if (!out) {
		rc = -ENOMEM;
		goto fail;
	}
	if (lists_type(a.mode)) {
		memcpy(out, XATTR_POG_TYPE, sizeof(XATTR_POG_TYPE));
		len = sizeof(XATTR_POG_TYPE);
	}
	for (ssize_t i = 0; i < n;) {
		size_t l = strnlen(core + i, (size_t)(n - i));
		if (strncmp(core + i, XATTR_POG_PREFIX, strlen(XATTR_POG_PREFIX)) != 0 &&
		    l > 0) {
			memcpy(out + len, core + i, l);
			out[len + l] = '\0';
			len += l + 1;
		}
		i += (ssize_t)l + 1;
	}
	reply_xattr_value(req, out, len, size);
	free(core);
	free(out);
	return;
fail:
	free(core);
	free(out);
	fuse_reply_err(req, pogfs_errno(rc));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct pogfs *fs = fs_of(req);
	int rc = check_writable(ino);

	if (rc == 0 && !is_user_xattr(name))
		rc = -EOPNOTSUPP;
	if (rc == 0 && strcmp(name, XATTR_POG_TYPE) == 0) {
		/* Every object has a type; rsync -X removes the attributes
		 * its source lacks, which must not fail: a no-op. */
		fuse_reply_err(req, 0);
		return;
	}
	if (rc == 0 && strncmp(name, XATTR_POG_PREFIX, strlen(XATTR_POG_PREFIX)) == 0)
		rc = -ENODATA; /* computed, never stored */
	if (rc == 0)
		rc = pog_removexattr(fs->store, ino, name);
	if (rc == 0)
		pogfs_touch(fs);
	fuse_reply_err(req, pogfs_errno(rc));
}

/* Only .pog/events waits for anything; every other file is ready (an
 * ENOSYS here would turn poll off for the whole mount). */
static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	if (ino == VINO_EVENTS) {
		events_poll(req, fi, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
}

const struct fuse_lowlevel_ops pogfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.poll = op_poll,
};
