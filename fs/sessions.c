/* sessions.c - more mounts of one pool served by one daemon: each mount a
 * session of its own (core/pog.h), its own FUSE session in its own
 * threads; and the client side that hands a new mount to the daemon. */
#include "pogfs.h"
#include "killpriv.h"
#include "socket_path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Why this way: the pool is held by one process (libpmemobj locks it and
 * maps it once), so every mount of it must be served by that process.
 * The new `pogfs POOL MNT2` mounts MNT2 itself, with the caller's rights
 * and options (fuse_session_mount: mount(2) as root, fusermount3
 * otherwise), and hands the /dev/fuse descriptor to the daemon over the
 * pool's control socket with SCM_RIGHTS; the daemon starts a FUSE
 * session on "/dev/fd/N" (libfuse >= 3.3). The alternatives: the daemon
 * mounting MNT2 itself would mount with the daemon's rights, not the
 * caller's, and in the daemon's mount namespace; a second process that
 * forwards FUSE requests to the daemon would copy every byte twice.
 */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_idle = PTHREAD_COND_INITIALIZER;
static struct pogfs *reg_first;   /* the daemon's first mount */
static struct pogfs *reg_list;    /* the mounts added to it */
static unsigned reg_count;
static bool reg_closing;          /* the first mount is gone, and the rest */

void pogfs_sessions_set_first(struct pogfs *fs)
{
	pthread_mutex_lock(&reg_lock);
	reg_first = fs;
	pthread_mutex_unlock(&reg_lock);
}

static void session_free(struct pogfs *fs)
{
	inode_table_release(&fs->inodes);
	pthread_mutex_destroy(&fs->close_lock);
	pthread_mutex_destroy(&fs->ctl_lock);
	free(fs->conflicts);
	free(fs->mountpoint);
	free(fs->pool_path);
	free(fs);
}

/* A mount added (or being added: fs NULL) is gone. */
static void unregister(struct pogfs *fs)
{
	pthread_mutex_lock(&reg_lock);
	for (struct pogfs **p = &reg_list; *p; p = &(*p)->next_mount) {
		if (*p == fs) {
			*p = fs->next_mount;
			break;
		}
	}
	reg_count--;
	pthread_cond_broadcast(&reg_idle);
	pthread_mutex_unlock(&reg_lock);
}

static void *session_main(void *arg)
{
	struct pogfs *fs = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	if (cfg) {
		fuse_session_loop_mt(fs->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else {
		fuse_session_loop(fs->se);
	}
	pogfs_log(fs, LOG_INFO, "%s: unmounted", fs->mountpoint);
	events_end_mount(fs);
	fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se); /* destroy: closes the session */
	fs->se = NULL;
	pogfs_close_store(fs);        /* when INIT never came */
	unregister(fs);
	session_free(fs);
	return NULL;
}

/* "autocommit=0|1 showpog=0|1 follow=0|1 timeout=SECONDS delay=SECONDS" */
static void parse_opts(struct pogfs *fs, const char *opts)
{
	const char *p;

	if ((p = strstr(opts, "autocommit=")))
		fs->autocommit = p[11] == '1';
	if ((p = strstr(opts, "showpog=")))
		fs->showpog = p[8] == '1';
	if ((p = strstr(opts, "follow=")))
		fs->follow = p[7] == '1';
	if ((p = strstr(opts, "timeout=")))
		fs->timeout = strtod(p + 8, NULL);
	if ((p = strstr(opts, "delay="))) {
		unsigned long d = strtoul(p + 6, NULL, 10);
		fs->autocommit_delay = d >= 1 && d <= 86400 ? (unsigned)d : 1;
	}
}

int pogfs_session_add(struct pogfs *first, const char *mnt, const char *opts,
		      int fd)
{
	struct pogfs *fs = calloc(1, sizeof(*fs));
	char dev[32];
	int rc = -ENOMEM;

	if (!fs) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_lock(&reg_lock);
	bool closing = reg_closing;
	if (!closing)
		reg_count++; /* the pool stays open from here on */
	pthread_mutex_unlock(&reg_lock);
	if (closing) {
		free(fs);
		close(fd);
		return -EBUSY; /* the client waits for this daemon to finish */
	}
	pthread_mutex_init(&fs->close_lock, NULL);
	pthread_mutex_init(&fs->ctl_lock, NULL);
	fs->secondary = true;
	fs->ready_fd = -1;
	fs->uid = first->uid;
	fs->gid = first->gid;
	fs->timeout = first->timeout;
	fs->foreground = first->foreground;
	fs->autocommit_delay = first->autocommit_delay;
	fs->events = first->events; /* one stream for the pool */
	parse_opts(fs, opts);
	clock_gettime(CLOCK_REALTIME, &fs->start_time);
	fs->pool_path = strdup(first->pool_path);
	fs->mountpoint = strdup(mnt);
	if (!fs->pool_path || !fs->mountpoint || inode_table_init(&fs->inodes)) {
		free(fs->pool_path);
		free(fs->mountpoint);
		free(fs);
		close(fd);
		unregister(NULL);
		return -ENOMEM;
	}
	fs->mountpoint_len = strlen(fs->mountpoint);
	if (fs->mountpoint_len == 1)
		fs->mountpoint_len = 0;
	pogfs_touch(fs);
	rc = pog_session_open(first->store, &fs->store);
	if (!rc) /* commits name their session: this mount (.pog/log) */
		(void)pog_set_session_name(fs->store, fs->mountpoint);
	if (!rc)
		pog_track_moves(fs->store, true);
	if (rc < 0) {
		session_free(fs);
		close(fd);
		unregister(NULL);
		return rc;
	}
	char a0[] = "pogfs", a1[] = "-o", a2[] = "default_permissions";
	char *argv[] = { a0, a1, a2, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	fs->se = fuse_session_new(&args, &pogfs_ops, sizeof(pogfs_ops), fs);
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
	bool mounted = fs->se && fuse_session_mount(fs->se, dev) == 0;
	if (mounted && pogfs_killpriv_io(fs->se) != 0)
		pogfs_log(fs, LOG_ERR, "%s: killpriv: out of memory", mnt);
	rc = mounted ? 0 : -EIO;
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!rc && events_attach(fs) < 0)
		pogfs_log(fs, LOG_WARNING, "%s: events: out of memory: a lazy "
			  "unmount does not end this mount's event streams", mnt);
	if (!rc) {
		pthread_mutex_lock(&reg_lock);
		fs->next_mount = reg_list;
		reg_list = fs;
		pthread_mutex_unlock(&reg_lock);
		pogfs_autocommit_start(fs);
		if (pthread_create(&thread, &attr, session_main, fs) != 0)
			rc = -EAGAIN;
	}
	pthread_attr_destroy(&attr);
	if (rc) {
		events_end_mount(fs);
		if (fs->se)
			fuse_session_destroy(fs->se); /* closes fd when mounted */
		if (!mounted)
			close(fd);
		pog_close(fs->store, POG_CLOSE_NOGC);
		fs->store = NULL;
		unregister(fs);
		session_free(fs);
		return rc;
	}
	pogfs_log(first, LOG_INFO, "%s: session added", mnt);
	return 0;
}

static void follow_one(struct pogfs *fs, struct pogfs *by)
{
	if (fs == by || !fs->store || fs->closed)
		return;
	if (fs->unmounted) { /* the daemon's handle: pins nothing old */
		(void)pog_abort(fs->store);
		return;
	}
	pogfs_invalidate_committed(fs);
	if (!fs->follow || pog_staged_count(fs->store) > 0)
		return;
	if (pog_abort(fs->store) == 0)
		pogfs_moved(fs);
}

void pogfs_sessions_committed(struct pogfs *by)
{
	pthread_mutex_lock(&reg_lock);
	if (reg_first)
		follow_one(reg_first, by);
	for (struct pogfs *fs = reg_list; fs; fs = fs->next_mount)
		follow_one(fs, by);
	pthread_mutex_unlock(&reg_lock);
}

void pogfs_sessions_wait(void)
{
	pthread_mutex_lock(&reg_lock);
	while (reg_count)
		pthread_cond_wait(&reg_idle, &reg_lock);
	reg_closing = true; /* from now on a new mount waits for the end */
	pthread_mutex_unlock(&reg_lock);
}

int pogfs_sessions_each(int (*fn)(void *ctx, struct pogfs *fs), void *ctx)
{
	int rc = 0;

	pthread_mutex_lock(&reg_lock);
	if (reg_first && reg_first->store && !reg_first->closed &&
	    !reg_first->unmounted)
		rc = fn(ctx, reg_first);
	for (struct pogfs *fs = reg_list; fs && !rc; fs = fs->next_mount)
		if (fs->store && !fs->closed)
			rc = fn(ctx, fs);
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

/* ---- the client: hand a new mount to the daemon ----------------------- */

/* The daemon's answer: frames "T LEN\n" + bytes, up to "E rc msg". */
static int read_answer(int fd, char *msg, size_t size)
{
	for (;;) {
		char head[32];
		size_t used = 0;
		while (used + 1 < sizeof(head)) {
			ssize_t n = recv(fd, head + used, 1, 0);
			if (n <= 0)
				return -EPIPE;
			if (head[used] == '\n')
				break;
			used++;
		}
		head[used] = '\0';
		size_t len = strtoul(head + 2, NULL, 10), got = 0;
		char *body = malloc(len + 1);
		if (!body)
			return -ENOMEM;
		while (got < len) {
			ssize_t n = recv(fd, body + got, len - got, 0);
			if (n <= 0) {
				free(body);
				return -EPIPE;
			}
			got += (size_t)n;
		}
		body[len] = '\0';
		if (head[0] == 'E') {
			int rc = atoi(body);
			const char *sp = strchr(body, ' ');
			snprintf(msg, size, "%s", sp ? sp + 1 : "");
			free(body);
			return rc;
		}
		free(body);
	}
}

int pogfs_session_attach(const char *pool, const char *mnt, int fuse_fd,
			 const char *opts, char *why, size_t why_size)
{
	int sock = pog_socket_connect(pool);
	char line[PATH_MAX + 256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	int rc;

	snprintf(why, why_size, "no daemon answers on the pool's control socket");
	if (sock < 0)
		return sock;
	int n = snprintf(line, sizeof(line), "session %s\t%s\n", mnt, opts);
	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = line;
	iov.iov_len = (size_t)n;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fuse_fd, sizeof(int));
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) != n) {
		rc = -errno;
		close(sock);
		return rc ? rc : -EIO;
	}
	rc = read_answer(sock, why, why_size);
	close(sock);
	return rc;
}
