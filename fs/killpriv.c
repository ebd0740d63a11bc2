/*
 * killpriv.c - the daemon clears setuid/setgid itself (FUSE_HANDLE_KILLPRIV_V2).
 *
 * Without that flag the kernel asks for security.capability (a GETXATTR
 * round trip) before every write, since pogfs has extended attributes;
 * with it the kernel remembers, per inode, that nothing needs killing
 * (S_NOSEC) and leaves the clearing to the daemon, telling it when to
 * clear in the request itself: FUSE_WRITE_KILL_SUIDGID in a write,
 * FATTR_KILL_SUIDGID in a setattr (a chown, or a truncate by a caller
 * without CAP_FSETID), FUSE_OPEN_KILL_SUIDGID in an open with O_TRUNC.
 *
 * libfuse 3.14 can neither ask for the flag nor pass those bits on, so
 * the session reads and writes /dev/fuse through fuse_session_custom_io:
 * the INIT reply gains the flag when the kernel offers it, and each
 * request read notes its kill bit for the worker thread that goes on to
 * process it (libfuse reads and processes a request on one thread).
 * security.* attributes are never stored here (setxattr refuses them),
 * so there is never a capability to remove.
 */
#include "killpriv.h"

#include <errno.h>
#include <pthread.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The kill bit of the request this thread is processing. */
static _Thread_local bool kill_pending;

/*
 * INITs whose reply is due, by descriptor (one daemon serves several
 * mounts, each its own session and descriptor), with whether the kernel
 * offered FUSE_HANDLE_KILLPRIV_V2. Replies look here only while one is.
 */
#define INIT_SLOTS 16
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending_init {
	int fd; /* -1: free */
	uint64_t unique;
	bool offers_v2;
} pending[INIT_SLOTS] = { [0 ... INIT_SLOTS - 1] = { .fd = -1 } };
static atomic_int npending;

static void init_note(int fd, uint64_t unique, bool offers_v2)
{
	pthread_mutex_lock(&init_lock);
	for (unsigned i = 0; i < INIT_SLOTS; i++) {
		if (pending[i].fd < 0) {
			pending[i] = (struct pending_init){ fd, unique, offers_v2 };
			atomic_fetch_add(&npending, 1);
			break;
		}
	}
	/* More INITs at once than slots: that mount keeps the GETXATTRs. */
	pthread_mutex_unlock(&init_lock);
}

/* Is this reply the INIT reply due on fd? Then forget it, and say
 * whether the kernel offered the flag. */
static bool init_take(int fd, uint64_t unique, bool *offers_v2)
{
	bool found = false;
	pthread_mutex_lock(&init_lock);
	for (unsigned i = 0; i < INIT_SLOTS; i++) {
		if (pending[i].fd == fd && pending[i].unique == unique) {
			*offers_v2 = pending[i].offers_v2;
			pending[i].fd = -1;
			atomic_fetch_sub(&npending, 1);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&init_lock);
	return found;
}

static const void *arg_of(const void *buf, size_t len, size_t need)
{
	if (len < sizeof(struct fuse_in_header) + need)
		return NULL;
	return (const char *)buf + sizeof(struct fuse_in_header);
}

static void note_request(int fd, const void *buf, ssize_t n)
{
	const struct fuse_in_header *in = buf;
	size_t len = n > 0 ? (size_t)n : 0;
	const void *a;

	kill_pending = false;
	if (len < sizeof(*in))
		return;
	switch (in->opcode) {
	case FUSE_INIT:
		a = arg_of(buf, len, offsetof(struct fuse_init_in, flags) +
				      sizeof(uint32_t));
		if (a)
			init_note(fd, in->unique,
				  (((const struct fuse_init_in *)a)->flags &
				   FUSE_HANDLE_KILLPRIV_V2) != 0);
		break;
	case FUSE_WRITE:
		a = arg_of(buf, len, sizeof(struct fuse_write_in));
		if (a)
			kill_pending = (((const struct fuse_write_in *)a)->write_flags &
					FUSE_WRITE_KILL_SUIDGID) != 0;
		break;
	case FUSE_SETATTR:
		a = arg_of(buf, len, sizeof(struct fuse_setattr_in));
		if (a)
			kill_pending = (((const struct fuse_setattr_in *)a)->valid &
					FATTR_KILL_SUIDGID) != 0;
		break;
	case FUSE_OPEN:
		a = arg_of(buf, len, sizeof(struct fuse_open_in));
		if (a)
			kill_pending = (((const struct fuse_open_in *)a)->open_flags &
					FUSE_OPEN_KILL_SUIDGID) != 0;
		break;
	default:
		break;
	}
}

static ssize_t kp_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t n = read(fd, buf, len);
	if (n > 0)
		note_request(fd, buf, n);
	return n;
}

/* The INIT reply: header, then struct fuse_init_out. */
static void amend_init_reply(int fd, struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	bool offers_v2;

	if (count < 1 || iov[0].iov_len < sizeof(*out) ||
	    !init_take(fd, out->unique, &offers_v2))
		return;
	if (out->error != 0 || !offers_v2 || count < 2 ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(uint32_t))
		return;
	((struct fuse_init_out *)iov[1].iov_base)->flags |= FUSE_HANDLE_KILLPRIV_V2;
}

static ssize_t kp_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (atomic_load(&npending) != 0)
		amend_init_reply(fd, iov, count);
	return writev(fd, iov, count);
}

int pogfs_killpriv_io(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = kp_read,
		.writev = kp_writev,
	};
	int fd = fuse_session_fd(se);

	if (fd < 0)
		return -EBADF;
	return fuse_session_custom_io(se, &io, fd);
}

bool pogfs_kill_suidgid_asked(void)
{
	return kill_pending;
}

mode_t pogfs_killed_mode(mode_t mode, bool in_group)
{
	mode_t m = mode & ~(mode_t)S_ISUID;
	/* setgid without group execute (mandatory locking) stays for a
	 * member of the group */
	if ((m & S_IXGRP) || !in_group)
		m &= ~(mode_t)S_ISGID;
	return m;
}
