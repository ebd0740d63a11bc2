/* tool.h - internals shared by the source files of the pog command. */
#ifndef POG_TOOL_H
#define POG_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pog.h"

/* Exit statuses of every subcommand (fsck adds its own meaning to 2). */
enum {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_FAIL = 1,  /* the command ran and failed */
	TOOL_EXIT_USAGE = 2, /* bad command line, or not implemented */
};

/*
 * Why a command failed. Commands fill it with tool_fail() and return an
 * exit status; only main() prints it, as the one line "pog: WHAT: WHY".
 */
struct tool_error {
	char what[512];
	char why[1024];
};

/* Fill e and return status (so a command can `return tool_fail(...)`). */
int tool_fail(struct tool_error *e, int status, const char *what,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Options a subcommand accepts (struct tool_command.options). */
#define TOOL_OPT_SIZE (1u << 0)   /* --size N */
#define TOOL_OPT_REPAIR (1u << 1) /* --repair */
#define TOOL_OPT_GZIP (1u << 2)   /* --gzip */
#define TOOL_OPT_OUTPUT (1u << 3) /* -o FILE */
#define TOOL_OPT_QUIET (1u << 4)  /* -q, --quiet: no progress line */
#define TOOL_OPT_JSON (1u << 5)   /* --json */
#define TOOL_OPT_COMMIT (1u << 6) /* --commit ID|NAME */

/* A subcommand's command line after option parsing. */
struct tool_args {
	const char *command;  /* "mkfs", "fsck", ... */
	const char *size;     /* --size value, NULL when not given */
	bool repair;          /* --repair */
	bool gzip;            /* --gzip */
	const char *output;   /* -o FILE, NULL when not given */
	bool quiet;           /* -q, --quiet */
	bool json;            /* --json */
	const char *commit;   /* --commit ID|NAME, NULL when not given */
	int operand_count;
	char **operands;      /* borrowed from argv; the array is owned */
};

/* Subcommands. Each returns an exit status and fills e on failure. */
int tool_mkfs(const struct tool_args *a, struct tool_error *e);
int tool_info(const struct tool_args *a, struct tool_error *e);
int tool_gc(const struct tool_args *a, struct tool_error *e);
int tool_fsck(const struct tool_args *a, struct tool_error *e);
int tool_commit(const struct tool_args *a, struct tool_error *e);
int tool_abort(const struct tool_args *a, struct tool_error *e);
int tool_status(const struct tool_args *a, struct tool_error *e);
int tool_export(const struct tool_args *a, struct tool_error *e);
int tool_import(const struct tool_args *a, struct tool_error *e);
int tool_stat(const struct tool_args *a, struct tool_error *e);
int tool_watch(const struct tool_args *a, struct tool_error *e);
int tool_keep(const struct tool_args *a, struct tool_error *e);
int tool_diff(const struct tool_args *a, struct tool_error *e);
/* history.c: the view root of --commit ID|NAME in an open store. */
int tool_commit_root(pog_store *s, const char *arg, uint64_t *root);

/* The last_error of MNT/.pog/status into buf ("" when none or unknown). */
void tool_last_error(const char *mnt, char *buf, size_t size);

/* Open a.operands[0] for exclusive offline use (flags: POG_OPEN_*, so
 * READONLY for commands that only look); on failure fill e and return
 * status. tool_close_pool closes without collecting garbage. */
int tool_open_pool(const struct tool_args *a, unsigned flags, pog_store **s,
		   struct tool_error *e, int status);
int tool_close_pool(const struct tool_args *a, pog_store *s,
		    struct tool_error *e, int status);

/*
 * Write command to MNT/.pog/ctl in one write and read back the answer
 * on the same open file (*answer, freed by the caller, may be NULL).
 * Returns 0, or a positive errno when the open or the write failed.
 */
int tool_send_command(const char *mnt, const char *command, char **answer);

/* "1.5 GiB": n bytes in binary units, into buf. Returns buf. */
const char *tool_format_bytes(uint64_t n, char *buf, size_t size);

/* "2026-01-31 12:00:00 +0100": t in local time, into buf. Returns buf. */
const char *tool_format_time(struct pog_time t, char *buf, size_t size);

/*
 * Read all of fd until end of file into a new NUL-terminated buffer
 * (*out, freed by the caller; *len excludes the NUL). Reads to EOF
 * rather than trusting st_size, which FUSE control files may not set.
 * Returns 0 or -errno; on failure *out is untouched.
 */
int tool_read_all(int fd, char **out, size_t *len);

/* ---- progress (progress.c) ------------------------------------------ */

/*
 * The progress line of long commands: on standard error when it is a
 * terminal and not --quiet, nothing otherwise. It appears once the work
 * has taken POG_PROGRESS_DELAY_MS (default 500) and is redrawn five
 * times a second: "export: 5120/20480 objects (25%), 10240/s, ETA 2 s".
 * begin also sets it as the core's progress callback (pog_set_progress)
 * for this thread; end removes it and, when a line was shown, finishes
 * it with how long the work took.
 */
struct tool_progress {
	const char *what;
	bool on, shown;
	long delay_ms;
	struct timespec start, last;
	struct timespec phase; /* the rate counts from here */
	char unit[16];
	uint64_t done, total;
};
void tool_progress_begin(struct tool_progress *p, const char *what,
			 bool quiet);
void tool_progress_update(void *ctx, const char *unit, uint64_t done,
			  uint64_t total); /* a pog_progress_fn */
void tool_progress_end(struct tool_progress *p, bool ok);
/* A new phase of the same work (import through a mount: sending the
 * document, then the daemon importing it): the rate and ETA count from
 * now, the line and "done in" go on. */
void tool_progress_phase(struct tool_progress *p);

/* ---- a pool a daemon holds (remote.c) ------------------------------- */

/*
 * Connect to the control socket of the pogfs daemon holding pool
 * (fs/socket_path.h). Returns 0 with *fd open, or -ENOENT when no
 * daemon answers there.
 */
int tool_remote_connect(const char *pool, int *fd);

/*
 * The same, for the daemon serving the mount whose root is mnt (an
 * absolute, resolved path): its pool is the mount's source in
 * /proc/self/mountinfo. -ENOENT when mnt is no FUSE mount or nothing
 * listens for its pool (an older daemon; ask MNT/.pog/ctl instead).
 */
int tool_remote_connect_mount(const char *mnt, int *fd);

/* Called for each data ('D') and result ('R') frame; 0 or -errno. */
typedef int (*tool_frame_fn)(void *ctx, char type, const char *buf,
			     size_t len);
/*
 * Send one request ("info", "export", "fsck") and read the answer to its
 * end: progress frames go to p (may be NULL), the others to fn. Returns
 * the daemon's result (>= 0, or a negative pog/errno code with its text
 * in message), or -errno when the connection broke.
 */
int tool_remote_request(int fd, const char *request, tool_frame_fn fn,
			void *ctx, struct tool_progress *p, char *message,
			size_t size);

/*
 * For the commands that only look (info, export, fsck): open the pool
 * read-only, or, when a pogfs daemon holds it, connect to that daemon
 * (then *s is NULL and *remote >= 0; else *remote is -1). On failure
 * fills e and returns status.
 */
int tool_open_or_ask(const struct tool_args *a, pog_store **s, int *remote,
		     struct tool_error *e, int status);

/* info and fsck of a pool, asked of the daemon on fd (closed here).
 * info answers TOOL_REMOTE_GONE, printing nothing, when the daemon
 * closed the connection before answering (it is finishing: the pool
 * file will be free). */
#define TOOL_REMOTE_GONE (-1)
int tool_remote_info(const struct tool_args *a, int fd, struct tool_error *e);
int tool_remote_fsck(const struct tool_args *a, int fd, struct tool_error *e);

/* What pog info and pog fsck print (pool.c), shared with remote.c. */
void tool_print_status(const char *path, const struct pog_status *st);
void tool_print_fsck_summary(const char *path, int verdict, bool repair,
			     const struct pog_fsck_result *r);

/*
 * The root of the pogfs mount that path is in (any directory or file
 * inside it): the top directory on the same device that has .pog/ctl.
 * *root is malloc'ed. Returns 0, or -errno (-ENOENT: not in a mount).
 */
int tool_mount_root(const char *path, char **root);

#endif /* POG_TOOL_H */
