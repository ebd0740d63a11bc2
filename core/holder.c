/* holder.c - who holds a pool: the marks a daemon sets beside the pool's lock. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "store_int.h"

/*
 * The holder of a pool locks byte 0 of the file (store.c). A daemon also
 * locks byte 1 while it serves a mount, and byte 2 from the end of its
 * session loop until it exits (discarding, collecting garbage, closing).
 * Other processes test those bytes with F_OFD_GETLK.
 */
#define MARK_SERVING 1
#define MARK_FINISHING 2

static int set_range(int fd, short type, off_t start)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = 1,
	};
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/*
 * 1 when another process locks that byte, 0 when none. With exact, only
 * a lock of that one byte counts: a lock of the whole file (an older
 * pogfs, any other locker) is no mark.
 */
static int range_locked(int fd, off_t start, bool exact)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = 1,
	};
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	if (fl.l_type == F_UNLCK)
		return 0;
	/* The holder's own lock on byte 0 and its mark on byte 1 are one
	 * range to the kernel (one open file description's adjacent locks
	 * merge): a mark is any bounded lock over its byte; a whole-file
	 * lock (an older pogfs) has l_len 0. */
	return !exact || (fl.l_len > 0 && fl.l_start <= start &&
			  start < fl.l_start + fl.l_len);
}

int pog_holder(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int state;

	if (fd < 0)
		return -errno;
	state = range_locked(fd, 0, false);
	if (state > 0) {
		int finishing = range_locked(fd, MARK_FINISHING, true);
		int serving = range_locked(fd, MARK_SERVING, true);
		if (finishing < 0 || serving < 0)
			state = finishing < 0 ? finishing : serving;
		else if (finishing)
			state = POG_HOLDER_FINISHING;
		else if (serving)
			state = POG_HOLDER_SERVING;
		else
			state = POG_HOLDER_OTHER;
	}
	close(fd);
	return state;
}

int pog_set_holder(pog_store *s, int state)
{
	int err = 0;

	if (s->env->lock_fd < 0 || (s->env->open_flags & POG_OPEN_NOLOCK))
		return -EBADF;
	switch (state) {
	case POG_HOLDER_SERVING:
		err = set_range(s->env->lock_fd, F_WRLCK, MARK_SERVING);
		if (!err)
			err = set_range(s->env->lock_fd, F_UNLCK, MARK_FINISHING);
		break;
	case POG_HOLDER_FINISHING:
		/* Finishing before serving ends: never neither in between. */
		err = set_range(s->env->lock_fd, F_WRLCK, MARK_FINISHING);
		if (!err)
			err = set_range(s->env->lock_fd, F_UNLCK, MARK_SERVING);
		break;
	case POG_HOLDER_OTHER:
		err = set_range(s->env->lock_fd, F_UNLCK, MARK_SERVING);
		if (!err)
			err = set_range(s->env->lock_fd, F_UNLCK, MARK_FINISHING);
		break;
	default:
		err = -EINVAL;
	}
	return err;
}
