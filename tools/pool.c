/* pool.c - the pog subcommands that work on an unmounted pool file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

/* How long a pool held by another process is retried: 20 x 0.1 s. */
#define OPEN_LOCKED_TRIES 20

/* What a subcommand's error line names: "info pogfs.pool". */
static const char *what_of(const struct tool_args *a, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s", a->command, a->operands[0]);
	return buf;
}

/* The reason to show when opening or creating path answered err. */
static const char *open_reason(int err, const char *path)
{
	static char newer[160];
	uint32_t version;

	switch (err) {
	case -ENOENT:
		return "no such file (create a store with 'pog mkfs POOL')";
	case -EEXIST:
		return "file exists (pog mkfs never overwrites a file)";
	case -EISDIR:
		return "is a directory, not a pool file";
	case POG_ELOCKED:
		return "pool is in use by another process "
		       "(unmount it or stop that process first)";
	case POG_ENOTPOOL:
		return "not a pogfs pool";
	case POG_ENEWER:
		if (path && pog_pool_format(path, &version) == 0) {
			snprintf(newer, sizeof(newer),
				 "pool has a newer format (version %" PRIu32 ") than "
				 "this pog reads (version %" PRIu32 "); use a "
				 "newer pogfs", version, pog_format_version());
			return newer;
		}
		return "pool has a newer format than this pog can read "
		       "(use a newer pogfs)";
	default:
		return pog_strerror(err);
	}
}

/*
 * pog_open, waiting a little while another process holds the pool: right
 * after `fusermount3 -u` the daemon still collects garbage and closes, so
 * `fusermount3 -u mnt && pog info POOL` would fail for no good reason.
 * A daemon that marks itself finishing is waited for as long as it takes.
 */
static int open_when_free(const char *path, unsigned flags, pog_store **s)
{
	const struct timespec pause = { 0, 100 * 1000 * 1000 };
	int err;

	for (int tries = 1;; tries++) {
		err = pog_open(path, flags, s);
		if (err != POG_ELOCKED)
			return err;
		if (tries >= OPEN_LOCKED_TRIES &&
		    pog_holder(path) != POG_HOLDER_FINISHING)
			return err;
		nanosleep(&pause, NULL);
	}
}

/*
 * Open a.operands[0] for exclusive offline use. On failure fills e and
 * returns `status`; on success returns 0 and *s is open.
 */
int tool_open_pool(const struct tool_args *a, unsigned flags, pog_store **s,
		   struct tool_error *e, int status)
{
	const char *path = a->operands[0];
	char what[512];
	struct stat st;
	int err;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		err = -EISDIR;
	else
		err = open_when_free(path, flags, s);
	if (err == POG_EDAMAGED) {
		/* the same check again, for its reason; exit 2: could not run */
		char why[200];
		if (pog_check_pool_file(path, why, sizeof(why)) != POG_EDAMAGED ||
		    !why[0])
			snprintf(why, sizeof(why), "superblock or segment table");
		return tool_fail(e, TOOL_EXIT_USAGE, what_of(a, what, sizeof(what)),
				 "%s: %s", pog_strerror(err), why);
	}
	if (err < 0)
		return tool_fail(e, status, what_of(a, what, sizeof(what)),
				 "%s", open_reason(err, path));
	return 0;
}

int tool_open_or_ask(const struct tool_args *a, pog_store **s, int *remote,
		     struct tool_error *e, int status)
{
	const char *path = a->operands[0];
	struct stat st;

	*remote = -1;
	*s = NULL;
	int err = stat(path, &st) == 0 && S_ISDIR(st.st_mode)
			  ? -EISDIR : pog_open(path, POG_OPEN_READONLY, s);

	/* Held by a daemon; or not ours to open (libpmemobj opens a pool
	 * read-write), which the daemon may answer all the same. */
	if ((err == POG_ELOCKED || err == -EACCES) &&
	    tool_remote_connect(path, remote) == 0) {
		*s = NULL;
		return 0;
	}
	if (*remote < 0 && *s)
		return 0;
	return tool_open_pool(a, POG_OPEN_READONLY, s, e, status);
}

/* Close s without collecting garbage; fill e when that fails. */
int tool_close_pool(const struct tool_args *a, pog_store *s,
		      struct tool_error *e, int status)
{
	char what[512];
	int err = pog_close(s, POG_CLOSE_NOGC);

	if (err < 0)
		return tool_fail(e, status, what_of(a, what, sizeof(what)),
				 "close: %s", pog_strerror(err));
	return 0;
}

int tool_mkfs(const struct tool_args *a, struct tool_error *e)
{
	const char *path = a->operands[0];
	struct pog_status st;
	pog_store *s = NULL;
	uint64_t size = 0;
	char what[512], bytes[32];
	int err;

	what_of(a, what, sizeof(what));
	if (a->size && pog_parse_size(a->size, &size) < 0)
		return tool_fail(e, TOOL_EXIT_USAGE, what,
				 "bad size '%s' (a number of bytes with an "
				 "optional suffix, e.g. 64M, 8G)", a->size);
	if (a->size && size == 0)
		return tool_fail(e, TOOL_EXIT_USAGE, what,
				 "bad size '%s' (must not be zero)", a->size);
	if (access(path, F_OK) == 0)
		err = -EEXIST;
	else if (errno != ENOENT)
		err = -errno;
	else
		err = pog_create(path, size, &s);
	if (err == -ENOENT)
		return tool_fail(e, TOOL_EXIT_FAIL, what,
				 "its directory does not exist");
	if (err == -EINVAL && a->size)
		return tool_fail(e, TOOL_EXIT_FAIL, what,
				 "size %s is too small for a pool (try 64M or "
				 "more)", a->size);
	if (err == -EFBIG)
		return tool_fail(e, TOOL_EXIT_FAIL, what,
				 "size %s is too large for this file system",
				 a->size ? a->size : "1G");
	if (err < 0)
		return tool_fail(e, TOOL_EXIT_FAIL, what, "%s",
				 open_reason(err, NULL));
	if (pog_status(s, &st) == 0)
		printf("created %s: %s, format version %" PRIu64 "\n", path,
		       tool_format_bytes(st.pool_size, bytes, sizeof(bytes)),
		       st.format_version);
	else
		printf("created %s\n", path);
	return tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
}

void tool_print_status(const char *path, const struct pog_status *st)
{
	char bytes[32], when[64];

	printf("pool:            %s\n", path);
	printf("format version:  %" PRIu64 "\n", st->format_version);
	printf("size:            %s (%" PRIu64 " bytes)\n",
	       tool_format_bytes(st->pool_size, bytes, sizeof(bytes)),
	       st->pool_size);
	printf("used:            %s (%" PRIu64 " of %" PRIu64
	       " blocks of %" PRIu64 " bytes)\n",
	       tool_format_bytes(st->pool_used, bytes, sizeof(bytes)),
	       st->blocks_used, st->blocks_total, st->block_size);
	printf("reserved:        %" PRIu64 " blocks (free, but only for "
	       "deleting, truncating, renaming, commit and gc)\n",
	       st->blocks_reserved);
	printf("objects:         %" PRIu64 "\n", st->objects);
	printf("logical size:    %s (files added up; stored: %s)\n",
	       tool_format_bytes(st->logical_bytes, bytes, sizeof(bytes)),
	       tool_format_bytes(st->pool_used, when, sizeof(when)));
	if (st->commit_id == 0)
		printf("last commit:     none\n");
	else
		printf("last commit:     %" PRIu64 " at %s\n", st->commit_id,
		       tool_format_time(st->commit_time, when, sizeof(when)));
	if (st->discarded_changes)
		printf("last discard:    %" PRIu64 " staged change%s not committed, "
		       "discarded at %s\n", st->discarded_changes,
		       st->discarded_changes == 1 ? "" : "s",
		       tool_format_time(st->discarded_time, when, sizeof(when)));
	else
		printf("last discard:    none\n");
	if (st->last_error[0])
		printf("last error:      %s\n", st->last_error);
}

int tool_info(const struct tool_args *a, struct tool_error *e)
{
	struct pog_status st;
	pog_store *s;
	char what[512];
	int err, status;

	int remote;

	s = NULL;
	status = tool_open_or_ask(a, &s, &remote, e, TOOL_EXIT_FAIL);
	if (status)
		return status;
	if (remote >= 0) {
		status = tool_remote_info(a, remote, e);
		if (status != TOOL_REMOTE_GONE)
			return status;
		status = tool_open_pool(a, POG_OPEN_READONLY, &s, e, TOOL_EXIT_FAIL);
		if (status)
			return status;
	}
	err = pog_status(s, &st);
	if (err < 0) {
		status = tool_fail(e, TOOL_EXIT_FAIL,
				   what_of(a, what, sizeof(what)), "%s",
				   pog_strerror(err));
		pog_close(s, POG_CLOSE_NOGC);
		return status;
	}
	tool_print_status(a->operands[0], &st);
	return tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
}

int tool_gc(const struct tool_args *a, struct tool_error *e)
{
	struct pog_gc_result r;
	struct pog_status st;
	pog_store *s;
	char what[512], freed[32], live[32];
	int err, status;

	struct tool_progress progress;

	status = tool_open_pool(a, 0, &s, e, TOOL_EXIT_FAIL);
	if (status)
		return status;
	memset(&r, 0, sizeof(r));
	tool_progress_begin(&progress, "gc", a->quiet);
	err = pog_gc(s, &r);
	tool_progress_end(&progress, err == 0);
	if (err < 0) {
		status = tool_fail(e, TOOL_EXIT_FAIL,
				   what_of(a, what, sizeof(what)), "%s",
				   pog_strerror(err));
		pog_close(s, POG_CLOSE_NOGC);
		return status;
	}
	printf("freed %" PRIu64 " objects and %" PRIu64 " blocks (%s)\n",
	       r.objects_freed, r.blocks_freed,
	       tool_format_bytes(r.bytes_freed, freed, sizeof(freed)));
	printf("live: %" PRIu64 " objects in %" PRIu64 " blocks",
	       r.objects_live, r.blocks_live);
	if (pog_status(s, &st) == 0)
		printf("; pool use now %s", tool_format_bytes(st.pool_used,
							      live,
							      sizeof(live)));
	printf("\n");
	/* The collection just ran: closing must not run it again. */
	return tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
}

static const char *severity_name(int severity)
{
	switch (severity) {
	case POG_FSCK_INFO:
		return "INFO";
	case POG_FSCK_WARN:
		return "WARNING";
	case POG_FSCK_ERROR:
		return "ERROR";
	default:
		return "UNKNOWN";
	}
}

/* pog_fsck callback: one line per finding, "SEVERITY msgid ino: text". */
static void print_finding(void *ctx, int severity, const char *msgid,
			  uint64_t ino, const char *text)
{
	struct tool_progress *progress = ctx;

	if (progress && progress->shown)
		fputs("\r\033[K", stderr); /* redrawn at the next update */
	printf("%s %s %" PRIu64 ": %s\n", severity_name(severity),
	       msgid ? msgid : "unknown", ino, text ? text : "");
	fflush(stdout);
}

void tool_print_fsck_summary(const char *path, int verdict, bool repair,
			     const struct pog_fsck_result *r)
{
	printf("%s: %" PRIu64 " objects (%" PRIu64 " reachable, %" PRIu64
	       " garbage), %" PRIu64 " blocks\n",
	       path, r->objects, r->reachable, r->garbage_objects,
	       r->blocks_used);
	printf("%s: %" PRIu64 " page references, %" PRIu64
	       " pages stored, dedup ratio %.2f\n", path, r->pages,
	       r->pages_unique,
	       r->pages_unique ? (double)r->pages / (double)r->pages_unique : 1.0);
	printf("%s: %" PRIu64 " errors, %" PRIu64 " warnings", path,
	       r->errors, r->warnings);
	if (repair)
		printf(", %" PRIu64 " repaired", r->repaired);
	if (verdict == 0)
		printf(": clean\n");
	else if (repair)
		printf(": problems remain\n");
	else
		printf(": problems found (pog fsck --repair fixes what it "
		       "can)\n");
}

/* Exit 0 clean, 1 problems found, 2 could not run. */
int tool_fsck(const struct tool_args *a, struct tool_error *e)
{
	struct pog_fsck_result r;
	pog_store *s;
	char what[512];
	int verdict, status;

	struct tool_progress progress;
	int remote = -1;

	s = NULL;
	if (a->repair)
		status = tool_open_pool(a, 0, &s, e, 2);
	else
		status = tool_open_or_ask(a, &s, &remote, e, 2);
	if (status)
		return status;
	if (remote >= 0)
		return tool_remote_fsck(a, remote, e);
	memset(&r, 0, sizeof(r));
	tool_progress_begin(&progress, "fsck", a->quiet);
	verdict = pog_fsck(s, a->repair ? POG_FSCK_REPAIR : 0, print_finding,
			   &progress, &r);
	tool_progress_end(&progress, verdict >= 0);
	if (verdict < 0) {
		status = tool_fail(e, 2, what_of(a, what, sizeof(what)),
				   "check could not run: %s",
				   pog_strerror(verdict));
		pog_close(s, POG_CLOSE_NOGC);
		return status;
	}
	tool_print_fsck_summary(a->operands[0], verdict, a->repair, &r);
	status = tool_close_pool(a, s, e, 2);
	if (status)
		return status;
	return verdict == 0 ? TOOL_EXIT_OK : 1;
}
