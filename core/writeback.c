/* writeback.c - a large commit starts the disk on its fresh blocks early. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "store_int.h"

/*
 * The commit hands over the ranges of the pool file its fresh blocks lie
 * in (store.c: fresh_writeback), and a thread of its own starts their
 * writeback: sync_file_range(SYNC_FILE_RANGE_WRITE) waits for the device
 * queue, which is about as long as the write itself, so on the
 * committing thread it would only move that time; meanwhile the commit
 * seals and shares pages. The commit's flush (seal_fresh) waits for what
 * is left. Nothing is made durable or ordered here: the commit point
 * comes after that flush. The thread reads no store state.
 */
struct wb_range {
	off_t at, len;
};

struct pog_writeback {
	pthread_t thread;
	int fd;
	size_t n, cap;
	struct wb_range *r;
};

static void range_start(int fd, off_t at, off_t len)
{
	/* A hint: where it cannot be had, the flush does it all. */
	(void)sync_file_range(fd, at, len, SYNC_FILE_RANGE_WRITE);
}

struct pog_writeback *pog_writeback_new(int fd)
{
	struct pog_writeback *wb = calloc(1, sizeof(*wb));
	if (wb)
		wb->fd = fd;
	return wb;
}

void pog_writeback_add(struct pog_writeback *wb, off_t at, off_t len)
{
	if (wb->n == wb->cap) {
		size_t cap = wb->cap ? 2 * wb->cap : 16;
		struct wb_range *r = realloc(wb->r, cap * sizeof(*r));
		if (!r) {
			range_start(wb->fd, at, len); /* here, then */
			return;
		}
		wb->r = r;
		wb->cap = cap;
	}
	wb->r[wb->n++] = (struct wb_range){at, len};
}

static void *writeback_main(void *arg)
{
	struct pog_writeback *wb = arg;
	for (size_t i = 0; i < wb->n; i++)
		range_start(wb->fd, wb->r[i].at, wb->r[i].len);
	return NULL;
}

static void writeback_free(struct pog_writeback *wb)
{
	free(wb->r);
	free(wb);
}

struct pog_writeback *pog_writeback_start(struct pog_writeback *wb)
{
	if (!wb)
		return NULL;
	if (pthread_create(&wb->thread, NULL, writeback_main, wb) != 0) {
		writeback_main(wb); /* no thread: here, as a hint still */
		writeback_free(wb);
		return NULL;
	}
	return wb;
}

void pog_writeback_wait(struct pog_writeback *wb)
{
	if (!wb)
		return;
	pthread_join(wb->thread, NULL);
	writeback_free(wb);
}
