/* serve.c - the daemon answers pog info, export and fsck about the pool it holds, on a unix socket. */
#include "pogfs.h"
#include "serve.h"
#include "socket_path.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Protocol (POG_SERVE_* in serve.h): the client sends one request line
 * ("info", "export" (the last commit's root), "export-path PATH" (as
 * MNT/.pog/ctl's "export PATH": the staged view or .pog/committed/...),
 * "import LENGTH PATH" (as MNT/.pog/ctl's), "fsck", "ping");
 * the daemon answers with frames "T LEN\n" + LEN bytes, T one of
 *   D  data (the JSON of export; the finding lines of fsck; the
 *      "key value" lines of info),
 *   P  progress: "UNIT DONE TOTAL",
 *   R  a result record (fsck: its counts),
 *   G  go (import): the daemon has room for the document; the client
 *      sends its LENGTH bytes now, then reads the frames that follow,
 *   E  the end: "RC MESSAGE", RC the core call's return value.
 * The pool's lock stays with the daemon. Only import changes the store:
 * it stages the document in a session as ctl's import does, holding it in
 * an unlinked temporary file (spool.h), not in memory. A request does
 * not name a mount, so export-path and import are answered only while
 * the daemon serves one mount (its session is the one the client named);
 * with several, they answer -EINVAL before anything, and pog asks the
 * named mount's MNT/.pog/ctl instead (which spools an import the same
 * way). "session MNT<TAB>OPTS" (with a FUSE descriptor) adds a mount
 * (sessions.c).
 */

#define MAX_CLIENTS 64
#define REQUEST_MAX 4096

struct pogfs_server {
	struct pogfs *fs;
	int listen_fd;
	char path[PATH_MAX];   /* the socket file we made */
	struct stat sock_st;   /* ... to unlink only that one */
	pthread_t thread;
	pthread_mutex_t lock;  /* protects what follows */
	pthread_cond_t idle;
	int active;            /* client threads running */
	int clients[MAX_CLIENTS];
	bool stopping;
};

struct client {
	struct pogfs_server *server;
	int fd;
	int err;               /* first write error: the client is gone */
	int passed_fd;         /* a descriptor sent with the request, or -1 */
	struct timespec last_progress;
	char message[1024];    /* the end's message, when not strerror's */
};

/* ---- frames ---------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int frame(struct client *c, char type, const void *buf, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c %zu\n", type, len);

	if (!c->err)
		c->err = write_all(c->fd, head, (size_t)n);
	if (!c->err && len)
		c->err = write_all(c->fd, buf, len);
	return c->err;
}

static int framef(struct client *c, char type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int framef(struct client *c, char type, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	return frame(c, type, text, (size_t)n < sizeof(text) ? (size_t)n
							      : sizeof(text) - 1);
}

static int data_frame(void *ctx, const void *buf, size_t len)
{
	return frame(ctx, 'D', buf, len);
}

/* Progress frames, at most ten a second (the client draws them). */
static void progress_frame(void *ctx, const char *unit, uint64_t done,
			   uint64_t total)
{
	struct client *c = ctx;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (now.tv_sec - c->last_progress.tv_sec) * 1000 +
		     (now.tv_nsec - c->last_progress.tv_nsec) / 1000000;
	if (ms < 100 && !(total && done >= total))
		return;
	c->last_progress = now;
	framef(c, 'P', "%s %" PRIu64 " %" PRIu64, unit, done, total);
}

/* ---- requests -------------------------------------------------------- */

static int answer_info(struct client *c)
{
	struct pogfs *fs = c->server->fs;
	struct pog_status st;
	char text[2048];
	int rc = pog_status(fs->store, &st);

	if (rc < 0)
		return rc;
	int n = snprintf(text, sizeof(text),
		"format_version %" PRIu64 "\ncommit_id %" PRIu64 "\n"
		"commit_time %" PRId64 ".%09u\nstaged %" PRIu64 "\n"
		"pool_size %" PRIu64 "\npool_used %" PRIu64 "\n"
		"block_size %" PRIu64 "\nblocks_total %" PRIu64 "\n"
		"blocks_used %" PRIu64 "\nblocks_reserved %" PRIu64 "\n"
		"objects %" PRIu64 "\n"
		"logical_bytes %" PRIu64 "\ndiscarded_changes %" PRIu64 "\n"
		"discarded_time %" PRId64 ".%09u\nlast_error %s\n"
		"mountpoint %s\npid %ld\n",
		st.format_version, st.commit_id, st.commit_time.sec,
		st.commit_time.nsec, st.staged, st.pool_size, st.pool_used,
		st.block_size, st.blocks_total, st.blocks_used,
		st.blocks_reserved, st.objects,
		st.logical_bytes, st.discarded_changes, st.discarded_time.sec,
		st.discarded_time.nsec, st.last_error,
		fs->mountpoint_len ? fs->mountpoint : "/", (long)getpid());
	return frame(c, 'D', text, n > 0 && (size_t)n < sizeof(text)
					  ? (size_t)n : 0);
}

static const char *severity_name(int severity)
{
	return severity == POG_FSCK_ERROR  ? "ERROR"
	       : severity == POG_FSCK_WARN ? "WARNING"
					   : "INFO";
}

static void fsck_finding(void *ctx, int severity, const char *msgid,
			 uint64_t ino, const char *text)
{
	framef(ctx, 'D', "%s %s %" PRIu64 ": %s\n", severity_name(severity),
	       msgid ? msgid : "unknown", ino, text ? text : "");
}

static int answer_fsck(struct client *c)
{
	struct pog_fsck_result r;

	memset(&r, 0, sizeof(r));
	int verdict = pog_fsck(c->server->fs->store, 0, fsck_finding, c, &r);
	if (verdict >= 0)
		framef(c, 'R', "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			       " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			       " %" PRIu64,
		       r.objects, r.reachable, r.garbage_objects,
		       r.blocks_used, r.pages, r.pages_unique, r.errors,
		       r.warnings, r.repaired);
	return verdict;
}

/*
 * export-path PATH: the JSON of the object PATH names in the mount's
 * views (ctl_export_resolve), written in frames as pog_export makes the
 * bytes: the daemon holds no more of the document than one buffer.
 */
static int count_mount(void *ctx, struct pogfs *fs)
{
	(void)fs;
	(*(unsigned *)ctx)++;
	return 0;
}

/* The mount a client names is this daemon's only one (see above). */
static bool one_mount(struct pogfs *fs)
{
	unsigned n = 0;

	(void)pogfs_sessions_each(count_mount, &n);
	return n == 1 && fs->store && !fs->closed;
}

static int answer_export_path(struct client *c, const char *path)
{
	struct pogfs *fs = c->server->fs;
	uint64_t ino;

	if (!one_mount(fs))
		return -EINVAL; /* pog asks the mount's ctl */
	int rc = ctl_export_resolve(fs, path, &ino);

	if (rc < 0)
		return rc;
	rc = pog_export(fs->store, ino, data_frame, c);
	/* a client gone mid-document ends it; its error is ours to tell */
	return rc < 0 && c->err ? c->err : rc;
}

/* session MNT<TAB>OPTS, with the FUSE descriptor of the mount at MNT
 * (made by the client, with its rights): serve it as a new session. */
static int answer_session(struct client *c, const char *args)
{
	char mnt[PATH_MAX];
	const char *tab = strchr(args, '\t');
	size_t len = tab ? (size_t)(tab - args) : strlen(args);

	if (c->passed_fd < 0 || len == 0 || len >= sizeof(mnt) || args[0] != '/')
		return -EINVAL;
	memcpy(mnt, args, len);
	mnt[len] = '\0';
	int fd = c->passed_fd;
	c->passed_fd = -1; /* pogfs_session_add owns it now */
	return pogfs_session_add(c->server->fs, mnt, tab ? tab + 1 : "", fd);
}

/* ---- import ---------------------------------------------------------- */

#define IMPORT_USAGE "import: usage: import LENGTH PATH, a newline, then LENGTH bytes of JSON"
#define RECV_CHUNK (1u << 20)

/* Who may import: root and the daemon's user (who may write .pog/ctl). */
static bool may_import(struct pogfs *fs, int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0)
		return false;
	return cred->uid == 0 || cred->uid == fs->uid;
}

/* "LENGTH PATH": 0 or -EINVAL. */
static int parse_import(const char *args, size_t *len, const char **path)
{
	unsigned long long want;
	char *end;

	if (!isdigit((unsigned char)*args))
		return -EINVAL;
	errno = 0;
	want = strtoull(args, &end, 10);
	if (errno || (*end && *end != ' ' && *end != '\t') ||
	    want > SIZE_MAX / 2)
		return -EINVAL;
	while (*end == ' ' || *end == '\t')
		end++;
	*len = (size_t)want;
	*path = *end ? end : ".";
	return 0;
}

/* The document's LENGTH bytes, from the client into the spool. */
static int receive_document(struct client *c, struct pogfs_spool *sp)
{
	char *buf = malloc(RECV_CHUNK);
	int rc = buf ? 0 : -ENOMEM;

	while (!rc && sp->have < sp->want) {
		size_t want = sp->want - sp->have;
		ssize_t n = recv(c->fd, buf, want < RECV_CHUNK ? want
						    : RECV_CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			rc = -ETIMEDOUT;
		else if (n <= 0)
			rc = n < 0 ? -errno : -ECONNRESET;
		else
			rc = pogfs_spool_write(sp, buf, (size_t)n);
	}
	free(buf);
	return rc;
}

/*
 * import LENGTH PATH: "G", then the document arrives and waits in a
 * spool; complete, it is mapped and imported as ctl's import does, with
 * progress frames. A client that goes before the end imports nothing.
 */
static int answer_import(struct client *c, const char *args)
{
	struct pogfs *fs = c->server->fs;
	struct pogfs_spool sp;
	struct ucred cred;
	const char *path, *doc;
	size_t len;
	char why[768];
	int rc;

	if (!one_mount(fs))
		return -EINVAL; /* pog sends it to the mount's ctl */
	if (!may_import(fs, c->fd, &cred)) {
		snprintf(c->message, sizeof(c->message), "import: permission "
			 "denied (only root and the daemon's user may import)");
		return -EACCES;
	}
	if (parse_import(args, &len, &path) < 0) {
		snprintf(c->message, sizeof(c->message), IMPORT_USAGE);
		return -EINVAL;
	}
	rc = pogfs_spool_open(fs, &sp, len, why, sizeof(why));
	if (rc < 0) {
		snprintf(c->message, sizeof(c->message), "import: no room to "
			 "hold the document (%zu bytes): %s", len, why);
		pogfs_note_error(fs, "%s", c->message);
		pogfs_log(fs, LOG_NOTICE, "control socket: %s", c->message);
		return rc;
	}
	rc = frame(c, 'G', NULL, 0);
	if (!rc)
		rc = receive_document(c, &sp);
	if (rc < 0) {
		snprintf(c->message, sizeof(c->message), "import: %s after "
			 "%zu of %zu bytes of the document; nothing was imported",
			 rc == -ETIMEDOUT ? "nothing came for 60 s"
			 : rc == -ECONNRESET ? "the connection closed"
			 : strerror(-rc), sp.have, len);
		pogfs_note_error(fs, "%s", c->message);
		pogfs_log(fs, LOG_NOTICE, "control socket: %s", c->message);
		pogfs_spool_release(&sp);
		return rc;
	}
	rc = pogfs_spool_map(&sp, &doc);
	if (rc < 0)
		snprintf(c->message, sizeof(c->message),
			 "import: mapping the document: %s", strerror(-rc));
	else
		rc = ctl_import(fs, path, doc, len, cred.uid, cred.gid,
				c->message, sizeof(c->message));
	pogfs_spool_release(&sp);
	return rc;
}

static int answer(struct client *c, const char *request)
{
	struct pogfs *fs = c->server->fs;
	int rc;

	pog_set_progress(progress_frame, c);
	if (strcmp(request, "info") == 0)
		rc = answer_info(c);
	else if (strcmp(request, "export") == 0)
		rc = pog_export(fs->store, POG_ROOT_INO | POG_COMMITTED_BIT,
				data_frame, c);
	else if (strncmp(request, "export-path ", 12) == 0)
		rc = answer_export_path(c, request + 12);
	else if (strncmp(request, "import ", 7) == 0)
		rc = answer_import(c, request + 7);
	else if (strcmp(request, "fsck") == 0)
		rc = answer_fsck(c);
	else if (strcmp(request, "ping") == 0)
		rc = 0;
	else if (strncmp(request, "session ", 8) == 0)
		rc = answer_session(c, request + 8);
	else
		rc = -EINVAL;
	pog_set_progress(NULL, NULL);
	return rc;
}

/* ---- connections ----------------------------------------------------- */

/*
 * Who may ask: root, the daemon's user, and whoever may read the pool
 * file (they could open it themselves once it is unmounted).
 */
static bool may_ask(struct pogfs *fs, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	if (cred.uid == 0 || cred.uid == fs->uid)
		return true;
	if (stat(fs->pool_path, &st) != 0)
		return false;
	if (cred.uid == st.st_uid)
		return (st.st_mode & S_IRUSR) != 0;
	if (cred.gid == st.st_gid)
		return (st.st_mode & S_IRGRP) != 0;
	return (st.st_mode & S_IROTH) != 0;
}

/* One byte, and a descriptor passed with it (SCM_RIGHTS) into *passed. */
static ssize_t recv_byte(int fd, char *byte, int *passed)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { byte, 1 };
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			if (*passed >= 0)
				close(*passed);
			memcpy(passed, CMSG_DATA(cm), sizeof(int));
		}
	}
	return n;
}

/* One request line, without its newline; -errno on failure. */
static int read_request(int fd, char *buf, size_t size, int *passed)
{
	size_t used = 0;

	while (used + 1 < size) {
		ssize_t n = recv_byte(fd, buf + used, passed);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		if (buf[used] == '\n') {
			buf[used] = '\0';
			return 0;
		}
		used++;
	}
	return -E2BIG;
}

static void client_done(struct client *c)
{
	struct pogfs_server *sv = c->server;

	pthread_mutex_lock(&sv->lock);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sv->clients[i] == c->fd)
			sv->clients[i] = -1;
	close(c->fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	sv->active--;
	pthread_cond_broadcast(&sv->idle);
	pthread_mutex_unlock(&sv->lock);
	free(c);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct timeval timeout = { 60, 0 };
	char request[REQUEST_MAX];
	int rc;

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	if (!may_ask(c->server->fs, c->fd))
		framef(c, 'E', "%d permission denied", -EACCES);
	else if ((rc = read_request(c->fd, request, sizeof(request),
				    &c->passed_fd)) == 0) {
		rc = answer(c, request);
		framef(c, 'E', "%d %s", rc, c->message[0] ? c->message
		       : rc < 0 ? pog_strerror(rc) : "ok");
	}
	client_done(c);
	return NULL;
}

/* Start a thread for a new connection, or refuse it (too many). */
static void client_start(struct pogfs_server *sv, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t thread;
	int slot = -1;

	pthread_mutex_lock(&sv->lock);
	for (int i = 0; i < MAX_CLIENTS && slot < 0 && !sv->stopping; i++)
		if (sv->clients[i] < 0)
			slot = i;
	if (c && slot >= 0) {
		sv->clients[slot] = fd;
		sv->active++;
	}
	pthread_mutex_unlock(&sv->lock);
	if (!c || slot < 0) {
		free(c);
		close(fd);
		return;
	}
	c->server = sv;
	c->fd = fd;
	c->passed_fd = -1;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, client_main, c) != 0)
		client_done(c);
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct pogfs_server *sv = arg;

	for (;;) {
		int fd = accept4(sv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		bool stopping;

		pthread_mutex_lock(&sv->lock);
		stopping = sv->stopping;
		pthread_mutex_unlock(&sv->lock);
		if (stopping) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			pogfs_log(sv->fs, LOG_ERR, "control socket: accept: %s",
				  strerror(errno));
			break;
		}
		client_start(sv, fd);
	}
	return NULL;
}

/* ---- start and stop -------------------------------------------------- */

/* Make the directory of a runtime place (/run/pogfs, .../pogfs). */
static void make_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (strncmp(dir, "/run/", 5) == 0 || strstr(dir, "/pogfs"))
		mkdir(dir, 0755); /* EEXIST is fine; failure shows at bind */
}

/* Bind and listen at path; a file there is a stale socket (we hold the
 * pool's lock, so no live daemon serves this pool). */
static int listen_at(struct pogfs_server *sv, const char *path)
{
	struct sockaddr_un addr;
	int dirfd, fd, err;

	if (strstr(path, "/pogfs/"))
		make_parent(path);
	err = pog_socket_addr(path, &addr, &dirfd);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out_dir;
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	/* Anyone may connect; may_ask decides who is answered. */
	mode_t old = umask(0);
	err = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ? -errno : 0;
	umask(old);
	if (!err && listen(fd, 16) != 0)
		err = -errno;
	if (!err && lstat(path, &sv->sock_st) != 0)
		err = -errno;
	if (err) {
		close(fd);
		goto out_dir;
	}
	sv->listen_fd = fd;
	memcpy(sv->path, path, strnlen(path, sizeof(sv->path) - 1));
out_dir:
	if (dirfd >= 0)
		close(dirfd);
	return err;
}

int pogfs_serve_start(struct pogfs *fs)
{
	char paths[POG_SOCKET_PLACES][PATH_MAX];
	struct pogfs_server *sv = calloc(1, sizeof(*sv));
	int n, err = -ENOENT;

	if (!sv)
		return -ENOMEM;
	sv->fs = fs;
	sv->listen_fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		sv->clients[i] = -1;
	pthread_mutex_init(&sv->lock, NULL);
	pthread_cond_init(&sv->idle, NULL);
	n = pog_socket_paths(fs->pool_path, paths, POG_SOCKET_PLACES);
	for (int i = 0; i < n && sv->listen_fd < 0; i++)
		err = listen_at(sv, paths[i]);
	if (sv->listen_fd < 0)
		goto out_free;
	err = -pthread_create(&sv->thread, NULL, accept_main, sv);
	if (err) {
		close(sv->listen_fd);
		unlink(sv->path);
		goto out_free;
	}
	fs->server = sv;
	return 0;

out_free:
	pogfs_log(fs, LOG_WARNING, "control socket: %s (pog info, export and "
		  "fsck cannot reach this daemon)", strerror(-err));
	pthread_cond_destroy(&sv->idle);
	pthread_mutex_destroy(&sv->lock);
	free(sv);
	return err;
}

void pogfs_serve_stop(struct pogfs *fs)
{
	struct pogfs_server *sv = fs->server;
	struct stat st;

	if (!sv)
		return;
	fs->server = NULL;
	pthread_mutex_lock(&sv->lock);
	sv->stopping = true;
	/* Wake accept(), and clients blocked on a slow reader. */
	shutdown(sv->listen_fd, SHUT_RDWR);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sv->clients[i] >= 0)
			shutdown(sv->clients[i], SHUT_RDWR);
	pthread_mutex_unlock(&sv->lock);
	pthread_join(sv->thread, NULL);
	pthread_mutex_lock(&sv->lock);
	while (sv->active > 0)
		pthread_cond_wait(&sv->idle, &sv->lock);
	pthread_mutex_unlock(&sv->lock);
	/* Only our own socket file: never one a newer daemon made. */
	if (lstat(sv->path, &st) == 0 && st.st_ino == sv->sock_st.st_ino &&
	    st.st_dev == sv->sock_st.st_dev)
		unlink(sv->path);
	close(sv->listen_fd);
	pthread_cond_destroy(&sv->idle);
	pthread_mutex_destroy(&sv->lock);
	free(sv);
}
