/* spool.c - a JSON document on its way into the store, held in an unlinked temporary file rather than in the daemon's memory. */
#include "pogfs.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/*
 * Where the document waits: first beside the pool, then $TMPDIR, then
 * /tmp. Beside the pool because /tmp is often a tmpfs, whose files are
 * memory (and swap): a document spooled there would take as much memory
 * as one held in the daemon; the pool's filesystem is a disk (the pool
 * must outlive a reboot), and the import is about to put as many bytes
 * there anyway. A directory the daemon may not write, or without room,
 * passes to the next place.
 */
#define PLACES 3

/* How often the pager drops the pages of the document that were read. */
#define PAGER_NS (50 * 1000 * 1000)

void pogfs_spool_init(struct pogfs_spool *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
}

/* The directory of path, into dir. */
static void parent_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == path)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* An unlinked file in dir: O_TMPFILE, else a name unlinked at once. */
static int open_unlinked(const char *dir)
{
	char path[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
			errno != EINVAL))
		return fd >= 0 ? fd : -errno;
	if ((size_t)snprintf(path, sizeof(path), "%s/.pogfs-import-XXXXXX",
			     dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

/* Reserve len bytes for fd: fallocate, or where the filesystem cannot,
 * at least the free space it reports. */
static int reserve(int fd, size_t len)
{
	struct statvfs vfs;

	if (len == 0 || fallocate(fd, 0, 0, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	if (fstatvfs(fd, &vfs) != 0)
		return -errno;
	return (unsigned long long)vfs.f_bavail * vfs.f_frsize < len ? -ENOSPC
								      : 0;
}

int pogfs_spool_open(struct pogfs *fs, struct pogfs_spool *sp, size_t len,
		     char *why, size_t size)
{
	char dirs[PLACES][PATH_MAX];
	const char *tmpdir = getenv("TMPDIR");
	size_t used = 0;
	int n = 0, err = -ENOENT;

	pogfs_spool_init(sp);
	parent_of(fs->pool_path, dirs[n++], sizeof(dirs[0]));
	if (tmpdir && tmpdir[0] == '/')
		snprintf(dirs[n++], sizeof(dirs[0]), "%s", tmpdir);
	snprintf(dirs[n++], sizeof(dirs[0]), "/tmp");
	why[0] = '\0';
	for (int i = 0; i < n; i++) {
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen |= strcmp(dirs[i], dirs[j]) == 0;
		if (seen)
			continue;
		int fd = open_unlinked(dirs[i]);
		err = fd < 0 ? fd : reserve(fd, len);
		if (!err) {
			sp->fd = fd;
			sp->want = len;
			return 0;
		}
		if (fd >= 0)
			close(fd);
		if (used < size)
			used += (size_t)snprintf(why + used, size - used, "%s%s: %s",
						 used ? "; " : "", dirs[i],
						 strerror(-err));
	}
	return err;
}

int pogfs_spool_write(struct pogfs_spool *sp, const void *buf, size_t n)
{
	const char *p = buf;

	if (sp->fd < 0 || n > sp->want - sp->have)
		return -EINVAL;
	while (n) {
		ssize_t w = pwrite(sp->fd, p, n, (off_t)sp->have);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		sp->have += (size_t)w;
	}
	return 0;
}

/*
 * While the import reads the mapped document, drop what it has read
 * from the daemon's address space twenty times a second. The file's
 * pages stay in the page cache; a page read again is mapped again (the
 * mapping is read-only and shared, so dropping loses nothing).
 */
static void *pager_main(void *arg)
{
	struct pogfs_spool *sp = arg;
	struct timespec until;

	pthread_mutex_lock(&sp->lock);
	while (!sp->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += PAGER_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sp->wake, &sp->lock, &until);
		if (!sp->stop)
			madvise(sp->map, sp->want, MADV_DONTNEED);
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

static void pager_start(struct pogfs_spool *sp)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&sp->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->wake, &attr);
	pthread_condattr_destroy(&attr);
	sp->stop = false;
	/* Without the thread the import still works, only less lean. */
	sp->pager_running = pthread_create(&sp->pager, NULL, pager_main,
					   sp) == 0;
	if (!sp->pager_running) {
		pthread_cond_destroy(&sp->wake);
		pthread_mutex_destroy(&sp->lock);
	}
}

static void pager_stop(struct pogfs_spool *sp)
{
	if (!sp->pager_running)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stop = true;
	pthread_cond_signal(&sp->wake);
	pthread_mutex_unlock(&sp->lock);
	pthread_join(sp->pager, NULL);
	pthread_cond_destroy(&sp->wake);
	pthread_mutex_destroy(&sp->lock);
	sp->pager_running = false;
}

int pogfs_spool_map(struct pogfs_spool *sp, const char **doc)
{
	if (sp->fd < 0 || sp->have != sp->want)
		return -EINVAL;
	if (sp->want == 0) {
		*doc = "";
		return 0;
	}
	void *m = mmap(NULL, sp->want, PROT_READ, MAP_SHARED, sp->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	sp->map = m;
	pager_start(sp);
	*doc = sp->map;
	return 0;
}

void pogfs_spool_release(struct pogfs_spool *sp)
{
	pager_stop(sp);
	if (sp->map)
		munmap(sp->map, sp->want);
	if (sp->fd >= 0)
		close(sp->fd);
	pogfs_spool_init(sp);
}
