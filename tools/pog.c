/* pog.c - the pog command: option parsing, help texts and dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#ifndef POG_VERSION
#define POG_VERSION "unknown"
#endif

struct tool_command {
	const char *name;
	const char *summary; /* one line for `pog --help` */
	const char *usage;   /* the page for `pog NAME --help` */
	unsigned options;    /* TOOL_OPT_* it accepts */
	int min_operands;
	int max_operands;    /* -1: any number */
	int (*run)(const struct tool_args *a, struct tool_error *e);
};


static const char usage_mkfs[] =
	"NAME\n"
	"    pog mkfs - create a pogfs store\n"
	"\n"
	"SYNOPSIS\n"
	"    pog mkfs POOL [--size N]\n"
	"\n"
	"DESCRIPTION\n"
	"    Creates the pool file POOL holding an empty root map, ready to be\n"
	"    mounted with pogfs. It never overwrites: when POOL exists, it is\n"
	"    left alone and mkfs fails.\n"
	"\n"
	"OPTIONS\n"
	"    --size N     the pool's capacity in bytes, with an optional\n"
	"                 binary suffix: 64M, 8G. Default: 1G.\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 created, 1 failed, 2 bad usage.\n";

static const char usage_info[] =
	"NAME\n"
	"    pog info - show what a store holds\n"
	"\n"
	"SYNOPSIS\n"
	"    pog info POOL\n"
	"\n"
	"DESCRIPTION\n"
	"    Prints the pool's format version, size, space in use, number of\n"
	"    objects and its last commit (id and time). When a pogfs daemon\n"
	"    holds the pool, pog asks that daemon (over its control socket)\n"
	"    and also says where the pool is mounted.\n"
	"\n"
	"OPTIONS\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const char usage_gc[] =
	"NAME\n"
	"    pog gc - collect garbage in an unmounted store\n"
	"\n"
	"SYNOPSIS\n"
	"    pog gc POOL [-q]\n"
	"\n"
	"DESCRIPTION\n"
	"    Marks every object reachable from the root map and frees the\n"
	"    rest (old page versions, removed subtrees, aborted data), then\n"
	"    reports what was freed. pogfs does the same on every unmount, and\n"
	"    writing 'gc' to MNT/.pog/ctl does it while mounted. A crash\n"
	"    during gc loses nothing. The pool must not be mounted.\n"
	"\n"
	"OPTIONS\n"
	"    -q, --quiet  no progress line (shown on a terminal only).\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const char usage_fsck[] =
	"NAME\n"
	"    pog fsck - check a store\n"
	"\n"
	"SYNOPSIS\n"
	"    pog fsck POOL [--repair] [-q]\n"
	"\n"
	"DESCRIPTION\n"
	"    Checks the last committed state of a store: every\n"
	"    reference points at a live object, every page's CRC, link\n"
	"    counts, sizes, type invariants, reachability; garbage is\n"
	"    reported. Each finding is one line on standard output:\n"
	"\n"
	"        SEVERITY MSGID INO: TEXT\n"
	"\n"
	"    where SEVERITY is ERROR, WARNING or INFO, MSGID a stable name of\n"
	"    the kind of problem (e.g. bad-ref) and INO the object concerned\n"
	"    (0 when none). A summary follows. When a pogfs daemon holds\n"
	"    the pool, the daemon runs the (read-only) check; --repair needs\n"
	"    the pool unmounted.\n"
	"\n"
	"OPTIONS\n"
	"    --repair     fix what can be fixed without losing reachable\n"
	"                 data.\n"
	"    -q, --quiet  no progress line (shown on a terminal only).\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 clean (after --repair: everything found was repaired),\n"
	"    1 problems found, 2 the check could not run.\n";

static const char usage_export[] =
	"NAME\n"
	"    pog export - write a store or a subtree as JSON\n"
	"\n"
	"SYNOPSIS\n"
	"    pog export POOL|MNTPATH [--commit ID|NAME] [--gzip] [-o FILE] [-q]\n"
	"\n"
	"DESCRIPTION\n"
	"    Writes one JSON document (format: README, section JSON). Given a\n"
	"    pool file, the whole store as last committed (asked of the pogfs\n"
	"    daemon when one holds the pool); given a path inside\n"
	"    a mounted store, that object and what it owns, as staged (or as\n"
	"    last committed under MNT/.pog/committed), streamed by the daemon\n"
	"    over its control socket, so neither side holds the document; with\n"
	"    no socket, asked through MNT/.pog/ctl ('export PATH'), whose\n"
	"    answer the daemon holds whole in memory.\n"
	"    Importing the document and exporting again gives the same bytes.\n"
	"\n"
	"OPTIONS\n"
	"    --commit ID|NAME  export a retained commit (an id of ls\n"
	"                 MNT/.pog/history, or a snapshot's name) instead of\n"
	"                 the last commit (POOL) or the staged state (MNTPATH:\n"
	"                 the same path in that commit).\n"
	"    --gzip       compress with zlib's gzip format (also when FILE\n"
	"                 ends in .gz).\n"
	"    -o FILE      write FILE (through a temporary file renamed into\n"
	"                 place) instead of standard output.\n"
	"    -q, --quiet  no progress line (shown on a terminal only).\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 written, 1 failed, 2 bad usage.\n";

static const char usage_import[] =
	"NAME\n"
	"    pog import - load JSON into a store\n"
	"\n"
	"SYNOPSIS\n"
	"    pog import POOL|MNTPATH FILE.json[.gz] [-q]\n"
	"\n"
	"DESCRIPTION\n"
	"    Reads one JSON document (gzip-compressed when it is). Into a\n"
	"    pool file: the document must be an object; its entries are added\n"
	"    to the root map and committed. Into a path of a mounted store:\n"
	"    an existing map gets the document's entries, a new name becomes\n"
	"    the document; the change is staged like any other (commit it).\n"
	"    Through a mount the document goes to the daemon over its control\n"
	"    socket, which holds it in a temporary file, not in memory.\n"
	"    Bad JSON is refused with its line and column and nothing of it\n"
	"    is applied; a name that is taken is refused too.\n"
	"\n"
	"OPTIONS\n"
	"    -q, --quiet  no progress line (shown on a terminal only; through\n"
	"                 a mount: the bytes sent, then the daemon's).\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 imported, 1 failed, 2 bad usage.\n";

static const char usage_commit[] =
	"NAME\n"
	"    pog commit - make a mounted store's staged changes durable\n"
	"\n"
	"SYNOPSIS\n"
	"    pog commit [MNT [MESSAGE...]]\n"
	"\n"
	"DESCRIPTION\n"
	"    Writes 'commit MESSAGE' to MNT/.pog/ctl, exactly as\n"
	"    `echo commit MESSAGE > MNT/.pog/ctl` does. When it succeeds every\n"
	"    staged change survives a crash. The words of MESSAGE are joined\n"
	"    with spaces; it goes to MNT/.pog/log. On failure it prints the\n"
	"    errno and the reason the daemon left in MNT/.pog/status.\n"
	"    MNT may be any path inside the mount (default: the current\n"
	"    directory); pog finds the mount's root.\n"
	"\n"
	"OPTIONS\n"
	"    -h, --help   show this page. Put -- before a message that\n"
	"                 starts with '-'.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 committed, 1 failed, 2 bad usage.\n";

static const char usage_abort[] =
	"NAME\n"
	"    pog abort - throw away a mounted store's staged changes\n"
	"\n"
	"SYNOPSIS\n"
	"    pog abort [MNT]\n"
	"\n"
	"DESCRIPTION\n"
	"    Writes 'abort' to MNT/.pog/ctl: the mount returns to its last\n"
	"    commit. On failure it prints the errno and the reason the daemon\n"
	"    left in MNT/.pog/status. MNT may be any path inside the mount\n"
	"    (default: the current directory).\n"
	"\n"
	"OPTIONS\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 aborted, 1 failed, 2 bad usage.\n";

static const char usage_status[] =
	"NAME\n"
	"    pog status - show a mounted store's state\n"
	"\n"
	"SYNOPSIS\n"
	"    pog status [MNT]\n"
	"\n"
	"DESCRIPTION\n"
	"    Prints MNT/.pog/status, a JSON document: last commit id and\n"
	"    time, number of staged changes, pool size and use, object count,\n"
	"    last error and last GC result. MNT may be any path inside the\n"
	"    mount (default: the current directory).\n"
	"\n"
	"OPTIONS\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const char usage_stat[] =
	"NAME\n"
	"    pog stat - show an object's type, identity, hash and ref target\n"
	"\n"
	"SYNOPSIS\n"
	"    pog stat PATH [--json]\n"
	"\n"
	"DESCRIPTION\n"
	"    Asks the daemon of the mount that holds PATH ('stat PATH' in\n"
	"    MNT/.pog/ctl) about the object there, without following a\n"
	"    symbolic link at its end: its path, type (map, list, string,\n"
	"    int, float, bool, null, ref, symlink, special), identity (the\n"
	"    inode number), Merkle hash, link count, size, view (staged, or\n"
	"    committed under .pog/committed), a link's text, and for a ref its\n"
	"    target's identity and current path. It works on symbolic links,\n"
	"    which the kernel keeps user.* attributes (and getfattr) off.\n"
	"\n"
	"OPTIONS\n"
	"    --json       print the daemon's answer, one JSON object.\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const char usage_watch[] =
	"NAME\n"
	"    pog watch - print the commits that change a subtree\n"
	"\n"
	"SYNOPSIS\n"
	"    pog watch MNT [PATH...] [--json]\n"
	"\n"
	"DESCRIPTION\n"
	"    Follows MNT/.pog/events and prints, for each commit of the\n"
	"    store (from any session of its daemon) that moved the Merkle\n"
	"    hash (user.pog.hash) of a PATH, the changes under that PATH,\n"
	"    one line each: 'COMMIT CHANGE PATH', CHANGE being A (added),\n"
	"    M (modified) or D (deleted), paths from the mount's root\n"
	"    ('.' is the root; a newline in a name is written \\n and a\n"
	"    backslash \\\\). A commit that changed something under a PATH\n"
	"    but left its hash as it was (the same bytes written again, a\n"
	"    chmod) prints nothing, as flok's watch tells nobody of a write\n"
	"    that leaves a page's hash unchanged. PATH is relative to MNT's\n"
	"    root, or absolute under it; without PATH the whole store is\n"
	"    watched. It starts at the next commit, and exits 0 when the\n"
	"    mount goes away: an open .pog/events keeps the mount busy like\n"
	"    any open file, so unmount with fusermount3 -u -z (lazy) or stop\n"
	"    the daemon; the daemon then ends the stream. When it falls so far\n"
	"    behind that the daemon's ring of events dropped some, it says\n"
	"    how many on standard error and goes on.\n"
	"\n"
	"OPTIONS\n"
	"    --json       print the daemon's JSON lines as they are:\n"
	"                 {\"commit\":12,\"session\":\"MNT\",\"change\":\"M\",\n"
	"                 \"path\":\"a/b\",\"hash\":\"0a1b2c3d\"} (hash null for D),\n"
	"                 and {\"lost\":N} lines.\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 the mount went away, 1 failed, 2 bad usage.\n";
static const char usage_keep[] =
	"NAME\n"
	"    pog keep - show or set how many commits stay readable\n"
	"\n"
	"SYNOPSIS\n"
	"    pog keep POOL [N]\n"
	"\n"
	"DESCRIPTION\n"
	"    The last N commits (default 16) and every named snapshot stay\n"
	"    whole and readable under MNT/.pog/history/ID (README, History).\n"
	"    With N (1 to 128) it is recorded in the pool, as pogfs -o keep=N\n"
	"    does; commits beyond it leave the history at the next commit.\n"
	"    Without N it prints the setting and the retained commits.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const char usage_diff[] =
	"NAME\n"
	"    pog diff - what changed between two retained commits\n"
	"\n"
	"SYNOPSIS\n"
	"    pog diff MNT|POOL A B [PATH] [--json]\n"
	"\n"
	"DESCRIPTION\n"
	"    Prints 'A path', 'M path', 'D path' lines, sorted by path, for\n"
	"    what changed from A to B: commit ids (ls MNT/.pog/history),\n"
	"    snapshot names, or 'staged' (a mount's staged state; for a\n"
	"    POOL the last commit). Equal subtrees are skipped unread, so it\n"
	"    takes time in proportion to what differs. With PATH, only lines\n"
	"    at or under PATH. Names with a newline or a backslash are\n"
	"    escaped as in .pog/changes. A mount is asked through\n"
	"    MNT/.pog/ctl ('diff A B').\n"
	"\n"
	"OPTIONS\n"
	"    --json       one JSON array of {\"change\": \"A\", \"path\": ...}.\n"
	"    -h, --help   show this page.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success, 1 failed, 2 bad usage.\n";

static const struct tool_command commands[] = {
	{ "mkfs", "create a store", usage_mkfs, TOOL_OPT_SIZE, 1, 1,
	  tool_mkfs },
	{ "info", "show a store's format, size, use and last commit",
	  usage_info, 0, 1, 1, tool_info },
	{ "fsck", "check a store (and --repair it)", usage_fsck,
	  TOOL_OPT_REPAIR | TOOL_OPT_QUIET, 1, 1, tool_fsck },
	{ "gc", "collect garbage offline", usage_gc, TOOL_OPT_QUIET, 1, 1,
	  tool_gc },
	{ "export", "write a store or subtree as JSON", usage_export,
	  TOOL_OPT_GZIP | TOOL_OPT_OUTPUT | TOOL_OPT_QUIET | TOOL_OPT_COMMIT, 1, 1,
	  tool_export },
	{ "import", "load JSON into a store or under a path", usage_import,
	  TOOL_OPT_QUIET, 2, 2, tool_import },
	{ "commit", "commit a mounted store's staged changes", usage_commit,
	  0, 0, -1, tool_commit },
	{ "abort", "discard a mounted store's staged changes", usage_abort, 0,
	  0, 1, tool_abort },
	{ "status", "show a mounted store's status", usage_status, 0, 0, 1,
	  tool_status },
	{ "stat", "show an object's type, identity, hash, ref target",
	  usage_stat, TOOL_OPT_JSON, 1, 1, tool_stat },
	{ "watch", "print the commits that change a subtree", usage_watch,
	  TOOL_OPT_JSON, 1, -1, tool_watch },
	{ "keep", "show or set how many commits stay readable", usage_keep,
	  0, 1, 2, tool_keep },
	{ "diff", "what changed between two retained commits", usage_diff,
	  TOOL_OPT_JSON, 3, 4, tool_diff },
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *out)
{
	fprintf(out,
		"NAME\n"
		"    pog - manage pogfs stores\n"
		"\n"
		"SYNOPSIS\n"
		"    pog COMMAND [ARGS...]\n"
		"    pog COMMAND --help\n"
		"    pog --help | --version\n"
		"\n"
		"COMMANDS\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(out, "    %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out,
		"\n"
		"    POOL is a pool file (made by pog mkfs, served by pogfs);\n"
		"    commands on a POOL refuse it while pogfs has it mounted.\n"
		"    MNT is the directory where pogfs mounted a store.\n"
		"\n"
		"ERRORS\n"
		"    One line on standard error, 'pog: WHAT: WHY', and a\n"
		"    non-zero exit status.\n");
}

static const struct tool_command *find_command(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/*
 * Split argv (after the command name) into options and operands.
 * Returns 0, 1 when --help was asked for, or a usage exit status with e
 * filled. a->operands is allocated (free it) whatever the result.
 */
static int parse_args(const struct tool_command *c, int argc, char **argv,
		      struct tool_args *a, struct tool_error *e)
{
	bool options_done = false;

	memset(a, 0, sizeof(*a));
	a->command = c->name;
	a->operands = calloc((size_t)argc + 1, sizeof(*a->operands));
	if (!a->operands)
		return tool_fail(e, TOOL_EXIT_FAIL, c->name, "out of memory");
	for (int i = 0; i < argc; i++) {
		char *arg = argv[i];

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			a->operands[a->operand_count++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (strcmp(arg, "-h") == 0 ||
			   strcmp(arg, "--help") == 0) {
			return 1;
		} else if ((c->options & TOOL_OPT_REPAIR) &&
			   strcmp(arg, "--repair") == 0) {
			a->repair = true;
		} else if ((c->options & TOOL_OPT_SIZE) &&
			   strncmp(arg, "--size=", 7) == 0) {
			a->size = arg + 7;
		} else if ((c->options & TOOL_OPT_SIZE) &&
			   strcmp(arg, "--size") == 0) {
			if (i + 1 == argc)
				return tool_fail(e, TOOL_EXIT_USAGE, c->name,
						 "--size needs a value (see "
						 "pog %s --help)", c->name);
			a->size = argv[++i];
		} else if ((c->options & TOOL_OPT_QUIET) &&
			   (strcmp(arg, "-q") == 0 ||
			    strcmp(arg, "--quiet") == 0)) {
			a->quiet = true;
		} else if ((c->options & TOOL_OPT_JSON) &&
			   strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if ((c->options & TOOL_OPT_COMMIT) &&
			   strcmp(arg, "--commit") == 0) {
			if (i + 1 == argc)
				return tool_fail(e, TOOL_EXIT_USAGE, c->name,
						 "--commit needs an id or a snapshot "
						 "name (see pog %s --help)", c->name);
			a->commit = argv[++i];
		} else if ((c->options & TOOL_OPT_GZIP) &&
			   strcmp(arg, "--gzip") == 0) {
			a->gzip = true;
		} else if ((c->options & TOOL_OPT_OUTPUT) &&
			   strcmp(arg, "-o") == 0) {
			if (i + 1 == argc)
				return tool_fail(e, TOOL_EXIT_USAGE, c->name,
						 "-o needs a file (see pog %s "
						 "--help)", c->name);
			a->output = argv[++i];
		} else {
			return tool_fail(e, TOOL_EXIT_USAGE, c->name,
					 "unknown option '%s' (see pog %s "
					 "--help)", arg, c->name);
		}
	}
	if (a->operand_count < c->min_operands)
		return tool_fail(e, TOOL_EXIT_USAGE, c->name,
				 "missing operand (see pog %s --help)",
				 c->name);
	if (c->max_operands >= 0 && a->operand_count > c->max_operands)
		return tool_fail(e, TOOL_EXIT_USAGE, c->name,
				 "unexpected operand '%s' (see pog %s --help)",
				 a->operands[c->max_operands], c->name);
	return 0;
}

/* Run one subcommand; its error, if any, is left in e. */
static int run_command(const struct tool_command *c, int argc, char **argv,
		       struct tool_error *e)
{
	struct tool_args a;
	int status = parse_args(c, argc, argv, &a, e);

	if (status == 1) {
		fputs(c->usage, stdout);
		status = TOOL_EXIT_OK;
	} else if (status == 0) {
		status = c->run(&a, e);
	}
	free(a.operands);
	return status;
}

int main(int argc, char **argv)
{
	const struct tool_command *c;
	struct tool_error e = { { 0 }, { 0 } };
	int status;

	if (argc < 2) {
		print_usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		c = argc > 2 ? find_command(argv[2]) : NULL;
		if (c)
			fputs(c->usage, stdout);
		else
			print_usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("pog %s\n", POG_VERSION);
		return TOOL_EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "pog: %s: unknown command (see pog --help)\n",
			argv[1]);
		return TOOL_EXIT_USAGE;
	}
	status = run_command(c, argc - 2, argv + 2, &e);
	if (fflush(stdout) != 0 && status == TOOL_EXIT_OK) {
		tool_fail(&e, TOOL_EXIT_FAIL, c->name,
			  "cannot write standard output");
		status = TOOL_EXIT_FAIL;
	}
	if (status != TOOL_EXIT_OK && e.what[0])
		fprintf(stderr, "pog: %s: %s\n", e.what, e.why);
	return status;
}
