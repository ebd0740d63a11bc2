/* progress.c - how far long calls (export, import, fsck, gc) are, told to a per-thread callback. */
#include "store_int.h"

/* Per thread: a daemon serving several clients gives each its own. */
static _Thread_local pog_progress_fn progress_fn;
static _Thread_local void *progress_ctx;
static _Thread_local uint64_t progress_calls;

void pog_set_progress(pog_progress_fn fn, void *ctx)
{
	progress_fn = fn;
	progress_ctx = ctx;
	progress_calls = 0;
}

void pog_progress_note(const char *unit, uint64_t done, uint64_t total)
{
	if (!progress_fn)
		return;
	/* Every 256th step, and the last: the callback keeps the time. */
	if ((++progress_calls & 255) == 0 || (total && done >= total))
		progress_fn(progress_ctx, unit, done, total);
}
