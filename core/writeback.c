/* writeback.c - a large commit starts the disk on its fresh blocks early. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

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

/* ---- early writeback: staging hands over whole runs as it writes them --- */

/*
 * A run of whole pages that staging wrote with pwrite (pages.c) is handed
 * to a thread of the env, which starts its writeback at once, while
 * staging goes on: by the commit most of a large write is on the disk,
 * and the commit's flush waits only for the tail. Staging never blocks on
 * the disk for it (sync_file_range waits for the device queue): a range
 * that finds the queue of this thread full is left to the commit. Like
 * the commit's writeback this orders and persists nothing: these blocks
 * are fresh, referenced by no commit until the commit point, which comes
 * after the commit's flush of them.
 */
#define EARLY_RANGES 64

struct pog_early {
	pthread_t thread;
	pid_t pid;                 /* the process the thread runs in */
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	unsigned head, n;          /* a ring of pending ranges */
	struct wb_range r[EARLY_RANGES];
};

static void *early_main(void *arg)
{
	struct pog_early *e = arg;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->n && !e->stop)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->stop)
			break;
		struct wb_range r = e->r[e->head];
		e->head = (e->head + 1) % EARLY_RANGES;
		e->n--;
		pthread_mutex_unlock(&e->mu);
		range_start(e->fd, r.at, r.len);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

static struct pog_early *early_start(struct pog_env *env)
{
	struct pog_early *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fd = env->lock_fd;
	e->pid = getpid();
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	if (pthread_create(&e->thread, NULL, early_main, e) != 0) {
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
		free(e);
		return NULL;
	}
	return e;
}

void pog_early_writeback(struct pog_env *env, off_t at, off_t len)
{
	if (env->lock_fd < 0 || env->early_failed)
		return;
	if (!env->early) {
		env->early = early_start(env);
		if (!env->early) {
			env->early_failed = true; /* the commit does it all */
			return;
		}
	}
	struct pog_early *e = env->early;
	if (e->pid != getpid())
		return; /* a forked child: the thread stayed in the parent */
	pthread_mutex_lock(&e->mu);
	struct wb_range *last = e->n ? &e->r[(e->head + e->n - 1) % EARLY_RANGES]
				     : NULL;
	if (last && last->at + last->len == at) {
		last->len += len;
	} else if (e->n < EARLY_RANGES) {
		e->r[(e->head + e->n) % EARLY_RANGES] = (struct wb_range){at, len};
		e->n++;
	}
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

void pog_early_stop(struct pog_env *env)
{
	struct pog_early *e = env->early;
	env->early = NULL;
	if (!e)
		return;
	if (e->pid == getpid()) {
		pthread_mutex_lock(&e->mu);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
	}
	free(e); /* in a forked child only the copy of it */
}
