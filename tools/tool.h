/* tool.h - internals shared by the source files of the pog command. */
#ifndef POG_TOOL_H
#define POG_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A subcommand's command line after option parsing. */
struct tool_args {
	const char *command;  /* "mkfs", "fsck", ... */
	const char *size;     /* --size value, NULL when not given */
	bool repair;          /* --repair */
	bool gzip;            /* --gzip */
	const char *output;   /* -o FILE, NULL when not given */
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

#endif /* POG_TOOL_H */
