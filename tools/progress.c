/* progress.c - the progress line of long pog commands on a terminal (stderr), silent elsewhere. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

/* Updates a second at most; quick commands show nothing (see begin). */
#define REDRAW_MS 200
#define DEFAULT_DELAY_MS 500

static int64_t elapsed_ms(const struct timespec *from, const struct timespec *to)
{
	return (int64_t)(to->tv_sec - from->tv_sec) * 1000 +
	       (to->tv_nsec - from->tv_nsec) / 1000000;
}

void tool_progress_begin(struct tool_progress *p, const char *what, bool quiet)
{
	const char *delay = getenv("POG_PROGRESS_DELAY_MS");

	memset(p, 0, sizeof(*p));
	p->what = what;
	p->on = !quiet && isatty(STDERR_FILENO);
	p->delay_ms = delay && *delay ? atol(delay) : DEFAULT_DELAY_MS;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->phase = p->start;
	if (p->on)
		pog_set_progress(tool_progress_update, p);
}

/* "1:05" or "12 s" */
static void format_seconds(double s, char *buf, size_t size)
{
	if (s < 60)
		snprintf(buf, size, "%.0f s", s);
	else
		snprintf(buf, size, "%d:%02d", (int)(s / 60), (int)s % 60);
}

static void draw(struct tool_progress *p, const struct timespec *now)
{
	double secs = (double)elapsed_ms(&p->phase, now) / 1000.0;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char line[256], eta[32];
	int n;

	n = snprintf(line, sizeof(line), "\r%s: %" PRIu64, p->what, p->done);
	if (p->total && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      "/%" PRIu64 " %s (%d%%)", p->total, p->unit,
			      (int)(p->done * 100 / p->total));
	else if (n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s",
			      p->unit);
	if (n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", %.0f/s",
			      rate);
	if (p->total && rate > 0 && p->done < p->total && n > 0 &&
	    (size_t)n < sizeof(line)) {
		format_seconds((double)(p->total - p->done) / rate, eta,
			       sizeof(eta));
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", ETA %s",
			      eta);
	}
	fprintf(stderr, "%s\033[K", line);
	fflush(stderr);
	p->shown = true;
	p->last = *now;
}

void tool_progress_update(void *ctx, const char *unit, uint64_t done,
			  uint64_t total)
{
	struct tool_progress *p = ctx;
	struct timespec now;

	if (!p->on)
		return;
	snprintf(p->unit, sizeof(p->unit), "%s", unit);
	p->done = done;
	p->total = total;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (elapsed_ms(&p->start, &now) < p->delay_ms)
		return;
	if (p->shown && elapsed_ms(&p->last, &now) < REDRAW_MS)
		return;
	draw(p, &now);
}

void tool_progress_phase(struct tool_progress *p)
{
	clock_gettime(CLOCK_MONOTONIC, &p->phase);
}

void tool_progress_end(struct tool_progress *p, bool ok)
{
	struct timespec now;

	if (!p->on)
		return;
	pog_set_progress(NULL, NULL);
	if (!p->shown)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	draw(p, &now);
	fprintf(stderr, ok ? ", done in %.1f s.\n" : ", stopped.\n",
		(double)elapsed_ms(&p->start, &now) / 1000.0);
}
