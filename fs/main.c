/* main.c - the pogfs daemon: options, pool, mount, session loop, unmount. */
#include "pogfs.h"
#include "mount_helper.h"
#include "killpriv.h"
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

/* Our own -o options; everything else goes to FUSE. */
struct pogfs_opts {
	int autocommit;
	int showpog;
	int follow;
	unsigned autocommit_delay;
	double timeout;
	int timeout_set;
	int nonempty;
	char *log_file;
	unsigned max_read;  /* also passed on to FUSE */
	unsigned events_ring; /* lines .pog/events keeps (0: default) */
	int fsname_set;     /* also passed on */
	int subtype_set;    /* also passed on */
	unsigned keep;      /* -o keep=N: commits kept readable (0: as set) */
};

enum { KEY_MAX_READ, KEY_FSNAME, KEY_SUBTYPE };

#define POGFS_OPT(t, p) { t, offsetof(struct pogfs_opts, p), 1 }
static const struct fuse_opt pogfs_opt_spec[] = {
	POGFS_OPT("autocommit", autocommit),
	POGFS_OPT("showpog", showpog),
	POGFS_OPT("follow", follow),
	{ "autocommit_delay=%u", offsetof(struct pogfs_opts, autocommit_delay), 0 },
	{ "timeout=%lf", offsetof(struct pogfs_opts, timeout), 0 },
	POGFS_OPT("timeout=", timeout_set),
	POGFS_OPT("nonempty", nonempty),
	{ "log=%s", offsetof(struct pogfs_opts, log_file), 0 },
	{ "events_ring=%u", offsetof(struct pogfs_opts, events_ring), 0 },
	{ "keep=%u", offsetof(struct pogfs_opts, keep), 0 },
	FUSE_OPT_KEY("max_read=", KEY_MAX_READ),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_END
};

/* Options FUSE needs too: note them and keep them (return 1). */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct pogfs_opts *o = data;
	(void)outargs;

	switch (key) {
	case KEY_MAX_READ:
		o->max_read = (unsigned)strtoul(arg + strlen("max_read="), NULL, 10);
		break;
	case KEY_FSNAME:
		o->fsname_set = 1;
		break;
	case KEY_SUBTYPE:
		o->subtype_set = 1;
		break;
	}
	return 1;
}

/*
 * Where messages go: a -o log=FILE gets every one; stderr gets them while
 * the daemon has its terminal (in the foreground, or until a background
 * start is complete); syslog gets them once the daemon is detached, when
 * there is no FILE.
 */
static FILE *log_file;
static bool detached;

static void log_line_to_file(const char *msg)
{
	char when[32] = "";
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	if (gmtime_r(&now.tv_sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(log_file, "%s pogfs[%ld]: %s\n", when, (long)getpid(), msg);
	fflush(log_file);
}

static void log_message(int priority, const char *msg)
{
	if (log_file)
		log_line_to_file(msg);
	if (!detached)
		fprintf(stderr, "pogfs: %s\n", msg);
	else if (!log_file)
		syslog(priority, "%s", msg);
}

void pogfs_log(struct pogfs *fs, int priority, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	(void)fs;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_message(priority, msg);
}

/* libfuse's own messages ("fuse: ..."), as ours. libfuse writes some
 * lines in pieces: collect them up to the newline. */
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt,
			     va_list ap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char line[1024];
	size_t used;
	char *nl;

	pthread_mutex_lock(&lock);
	used = strlen(line);
	vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	while ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		log_message(level <= FUSE_LOG_ERR ? LOG_ERR : (int)level, line);
		memmove(line, nl + 1, strlen(nl + 1) + 1);
	}
	if (strlen(line) == sizeof(line) - 1) {
		log_message(LOG_ERR, line);
		line[0] = '\0';
	}
	pthread_mutex_unlock(&lock);
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s POOL MOUNTPOINT [-f] [-o opt,...]\n"
		"\n"
		"Mount the pogfs store in the pool file POOL at MOUNTPOINT.\n"
		"Changes are staged until `echo commit > MOUNTPOINT/.pog/ctl`;\n"
		"unmounting (fusermount3 -u MOUNTPOINT) discards what is not\n"
		"committed, then collects garbage.\n"
		"\n"
		"pogfs options:\n"
		"    -o autocommit          commit on unmount and after a quiet period\n"
		"    -o autocommit_delay=S  quiet period in seconds (default 5)\n"
		"    -o follow              with nothing staged, move to each new commit\n"
		"    -o showpog             list .pog in the root directory\n"
		"    -o timeout=S           kernel entry/attribute cache (default 1.0)\n"
		"    -o nonempty            allow mounting over a non-empty directory\n"
		"    -o events_ring=N       lines .pog/events keeps for slow readers\n"
		"                           (default 8192; 8 MiB at most)\n"
		"    -o keep=N              keep the last N commits readable under\n"
		"                           .pog/history (default 16; remembered in the pool)\n"
		"    -o log=FILE            append the daemon's messages to FILE\n"
		"                           (else syslog in the background, stderr with -f)\n"
		"\n",
		prog);
}

/* ---- autocommit -------------------------------------------------------- */

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void *autocommit_main(void *arg)
{
	struct pogfs *fs = arg;
	const uint64_t quiet = (uint64_t)fs->autocommit_delay * 1000000000u;

	while (!atomic_load(&fs->stopping)) {
		struct timespec nap = { 0, 200 * 1000 * 1000 };
		nanosleep(&nap, NULL);
		if (atomic_load(&fs->stopping))
			break;
		uint64_t last = atomic_load_explicit(&fs->last_change_ns,
						     memory_order_relaxed);
		if (monotonic_ns() - last < quiet)
			continue;
		uint64_t staged = pog_staged_count(fs->store);
		if (staged == 0)
			continue;
		uint64_t id = 0;
		int rc = pogfs_commit(fs, "autocommit", &id);
		events_notify(fs);
		if (rc < 0) {
			pogfs_note_error(fs, "autocommit: %s", pog_strerror(rc));
			pogfs_touch(fs); /* try again after another quiet period */
			continue;
		}
		pogfs_log(fs, LOG_INFO, "autocommit: commit %" PRIu64 " (%" PRIu64 " changes)",
			  id, staged);
		pogfs_committed(fs);
	}
	return NULL;
}

/* ---- teardown ---------------------------------------------------------- */

static void unpin_one(void *ctx, uint64_t ino, uint64_t nlookup)
{
	struct pogfs *fs = ctx;
	if (!ino_is_committed(ino))
		pog_unpin(fs->store, ino, nlookup);
}

void pogfs_autocommit_start(struct pogfs *fs)
{
	if (!fs->autocommit)
		return;
	if (pthread_create(&fs->autocommit_thread, NULL, autocommit_main, fs) == 0)
		fs->autocommit_running = true;
	else
		pogfs_log(fs, LOG_ERR, "autocommit: cannot start its thread");
}

/* The mount is gone: stop its autocommit thread and, with -o autocommit,
 * commit what it staged (close_lock held). */
static void finish_staged(struct pogfs *fs)
{
	if (fs->autocommit_running) {
		atomic_store(&fs->stopping, true);
		pthread_join(fs->autocommit_thread, NULL);
		fs->autocommit_running = false;
	}
	if (fs->autocommit && pog_staged_count(fs->store) > 0) {
		uint64_t id = 0;
		uint64_t staged = pog_staged_count(fs->store);
		int rc = pogfs_commit(fs, "autocommit at unmount", &id);
		events_notify(fs);
		if (rc < 0)
			pogfs_log(fs, LOG_ERR, "unmount: commit failed: %s",
				  pog_strerror(rc));
		else
			pogfs_log(fs, LOG_INFO,
				  "unmount: commit %" PRIu64 " (%" PRIu64 " changes)",
				  id, staged);
	}
	/* The kernel holds nothing any more: drop its pins before GC. */
	inode_table_drain(&fs->inodes, unpin_one, fs);
}

static void log_discarded(struct pogfs *fs, int n)
{
	if (n < 0)
		pogfs_log(fs, LOG_ERR, "unmount: closing %s: %s", fs->pool_path,
			  pog_strerror(n));
	else if (n > 0)
		pogfs_log(fs, LOG_WARNING,
			  "unmount: discarded %d staged change%s (not committed)",
			  n, n == 1 ? "" : "s");
}

void pogfs_session_leave(struct pogfs *fs)
{
	pthread_mutex_lock(&fs->close_lock);
	if (!fs->closed && fs->store && !fs->unmounted) {
		finish_staged(fs);
		pog_track_moves(fs->store, false); /* no kernel to tell */
		log_discarded(fs, pog_discard(fs->store));
		fs->unmounted = true;
	}
	pthread_mutex_unlock(&fs->close_lock);
}

void pogfs_close_store(struct pogfs *fs)
{
	pogfs_serve_stop(fs); /* its requests use the store */
	pthread_mutex_lock(&fs->close_lock);
	if (fs->closed || !fs->store) {
		pthread_mutex_unlock(&fs->close_lock);
		return;
	}
	/* Unmounted: a new daemon may wait for this one from now on. */
	if (!fs->secondary)
		pog_set_holder(fs->store, POG_HOLDER_FINISHING);
	finish_staged(fs);
	log_discarded(fs, pog_close(fs->store, 0));
	fs->store = NULL;
	fs->closed = true;
	pthread_mutex_unlock(&fs->close_lock);
}

/* ---- daemon ------------------------------------------------------------ */

/*
 * Fork before touching the pool, so the child owns the pool's lock and
 * the mount. The parent waits for one status byte and exits with it: the
 * child sends it once the kernel's INIT is answered (pogfs_ready), or a
 * failure; until then the child keeps the terminal, so its reasons reach
 * the shell.
 */
static int daemon_start(int *notify_fd)
{
	int pipefd[2];
	char status = 1;

	if (pipe(pipefd) != 0) {
		pogfs_log(NULL, LOG_ERR, "daemonize: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		pogfs_log(NULL, LOG_ERR, "daemonize: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		if (read(pipefd[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(pipefd[0]);
	setsid();
	*notify_fd = pipefd[1];
	return 0;
}

/* The mount is up: detach from the terminal and release the parent. */
void pogfs_ready(struct pogfs *fs)
{
	char ok = 0;
	int fd = fs->ready_fd, null;

	if (fd < 0)
		return;
	fs->ready_fd = -1;
	if (chdir("/") != 0) {
		/* harmless: only keeps a directory busy */
	}
	openlog("pogfs", LOG_PID, LOG_DAEMON);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		fflush(stderr);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	detached = true;
	if (write(fd, &ok, 1) != 1) {
		/* the parent is gone; nothing to tell */
	}
	close(fd);
}

static void daemon_failed(int notify_fd)
{
	char fail = 1;
	if (notify_fd >= 0) {
		if (write(notify_fd, &fail, 1) != 1) {
			/* the parent is gone */
		}
		close(notify_fd);
	}
}

static const char *open_reason(int rc, const char *pool, char *buf, size_t size)
{
	uint32_t version = 0;
	char why[160];

	switch (rc) {
	case POG_ELOCKED:
		return "pool is in use (another pogfs or pog holds its lock)";
	case POG_ENOTPOOL:
		return "not a pogfs pool";
	case POG_ENEWER:
		if (pog_pool_format(pool, &version) == 0)
			snprintf(buf, size,
				 "pool has a newer format (version %" PRIu32 ") than "
				 "this pogfs reads (version %" PRIu32 "); use a "
				 "newer pogfs", version, pog_format_version());
		else
			snprintf(buf, size,
				 "pool has a newer format than version %" PRIu32
				 " that this pogfs reads (use a newer pogfs)",
				 pog_format_version());
		return buf;
	case POG_EDAMAGED:
		/* the same check again, for its one-line reason */
		if (pog_check_pool_file(pool, why, sizeof(why)) != POG_EDAMAGED ||
		    !why[0])
			snprintf(why, sizeof(why), "superblock or segment table");
		snprintf(buf, size, "%s: %s", pog_strerror(rc), why);
		return buf;
	default:
		return pog_strerror(rc);
	}
}

/*
 * Open the pool. Right after `fusermount3 -u` the previous daemon still
 * holds it while it discards, collects garbage and closes: wait for it as
 * long as it is finishing, saying so once. A daemon that still marks its
 * mount as served gets a few seconds to notice its unmount; any other
 * holder (a pog command, a daemon serving a mount) means the pool is in
 * use.
 */
#define SERVING_GRACE_TRIES 100 /* x 50 ms */
static int open_pool_waiting(struct pogfs *fs, const char *shown)
{
	const struct timespec pause = { 0, 50 * 1000 * 1000 };
	int grace = SERVING_GRACE_TRIES;
	bool said = false;

	for (;;) {
		int rc = pog_open(fs->pool_path, 0, &fs->store);
		if (rc != POG_ELOCKED)
			return rc;
		int holder = pog_holder(fs->pool_path);
		if (holder == POG_HOLDER_FINISHING) {
			if (!said)
				pogfs_log(fs, LOG_NOTICE,
					  "waiting for the previous daemon to finish with %s",
					  shown);
			said = true;
		} else if (holder == POG_HOLDER_SERVING) {
			if (grace-- == 0)
				return rc;
		} else if (holder != POG_HOLDER_NONE) {
			return rc;
		}
		nanosleep(&pause, NULL);
	}
}

/*
 * A mount point must be a directory, and an empty one unless -o nonempty
 * (libfuse 3 no longer checks; gocryptfs and rclone refuse the same).
 */
static int check_mountpoint(const char *path, bool nonempty)
{
	struct stat st;
	struct dirent *d;
	DIR *dir;
	bool empty = true;

	if (stat(path, &st) != 0) {
		pogfs_log(NULL, LOG_ERR, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		pogfs_log(NULL, LOG_ERR,
			  "%s: not a directory (a mount point must be an empty directory)",
			  path);
		return -1;
	}
	if (nonempty)
		return 0;
	dir = opendir(path);
	if (!dir) {
		pogfs_log(NULL, LOG_ERR, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (empty && (d = readdir(dir)) != NULL)
		empty = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0;
	closedir(dir);
	if (!empty) {
		pogfs_log(NULL, LOG_ERR,
			  "%s: directory is not empty (use -o nonempty to mount over it)",
			  path);
		return -1;
	}
	return 0;
}

/*
 * Split argv: the first non-option argument is the pool, the rest goes
 * to FUSE's parser (which takes exactly one: the mount point).
 */
static int split_args(int argc, char *argv[], struct fuse_args *args,
		      const char **pool)
{
	*pool = NULL;
	if (fuse_opt_add_arg(args, argv[0]) != 0)
		return -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			if (fuse_opt_add_arg(args, a) != 0 ||
			    fuse_opt_add_arg(args, argv[++i]) != 0)
				return -1;
		} else if (a[0] == '-' && a[1] != '\0') {
			if (fuse_opt_add_arg(args, a) != 0)
				return -1;
		} else if (!*pool) {
			*pool = a;
		} else if (fuse_opt_add_arg(args, a) != 0) {
			return -1;
		}
	}
	return 0;
}

/* The fsname shown in /proc/mounts: the pool's absolute path, commas and
 * backslashes escaped for FUSE's option parser. */
static char *fsname_option(const char *pool)
{
	size_t n = strlen(pool);
	char *opt = malloc(2 * n + sizeof("-ofsname="));
	char *p;

	if (!opt)
		return NULL;
	p = stpcpy(opt, "-ofsname=");
	for (size_t i = 0; i < n; i++) {
		if (pool[i] == ',' || pool[i] == '\\')
			*p++ = '\\';
		*p++ = pool[i];
	}
	*p = '\0';
	return opt;
}

/* The session loop's answer: 0 also after SIGINT, SIGTERM or SIGHUP
 * (libfuse returns the signal), which unmount as fusermount3 -u does. */
static int loop_status(int ret)
{
	if (ret == SIGINT || ret == SIGTERM || ret == SIGHUP)
		return 0;
	return ret == 0 ? 0 : 1;
}

static int run_loop(struct pogfs *fs, const struct fuse_cmdline_opts *opts)
{
	struct fuse_loop_config *loop_config;
	int ret;

	if (opts->singlethread)
		return fuse_session_loop(fs->se);
	loop_config = fuse_loop_cfg_create();
	if (!loop_config)
		return -1;
	fuse_loop_cfg_set_clone_fd(loop_config, (unsigned)opts->clone_fd);
	if (opts->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop_config, opts->max_idle_threads);
	if (opts->max_threads > 0 && opts->max_threads <= 100000)
		fuse_loop_cfg_set_max_threads(loop_config, opts->max_threads);
	ret = fuse_session_loop_mt(fs->se, loop_config);
	fuse_loop_cfg_destroy(loop_config);
	return ret;
}

static int open_log_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0)
		log_file = fdopen(fd, "a");
	if (!log_file) {
		pogfs_log(NULL, LOG_ERR, "-o log=%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}

/*
 * A daemon serves the pool already: mount here, with our rights and
 * options, and hand the mount to it as a new session (sessions.c says
 * why). Returns the exit status.
 */
static int attach_session(struct pogfs *fs, struct fuse_args *args,
			  const char *shown)
{
	char opts[128], why[256];
	int rc;

	fs->se = fuse_session_new(args, &pogfs_ops, sizeof(pogfs_ops), fs);
	if (!fs->se)
		return 1;
	if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		pogfs_log(NULL, LOG_ERR, "%s: mount failed", fs->mountpoint);
		fuse_session_destroy(fs->se);
		return 1;
	}
	snprintf(opts, sizeof(opts),
		 "autocommit=%d showpog=%d follow=%d timeout=%g delay=%u",
		 fs->autocommit, fs->showpog, fs->follow, fs->timeout,
		 fs->autocommit_delay);
	rc = pogfs_session_attach(fs->pool_path, fs->mountpoint,
				  fuse_session_fd(fs->se), opts, why, sizeof(why));
	/* No daemon answers (it is going), or it is finishing: unmount and
	 * open the pool as the first mount, waiting for it (-1). */
	bool going = rc == -EBUSY || rc == -ENOENT || rc == -EPIPE ||
		     rc == -ECONNREFUSED;
	if (rc < 0 && !going)
		pogfs_log(NULL, LOG_ERR, "%s: the daemon serving it refused a "
			  "new session: %s", shown, why[0] ? why : pog_strerror(rc));
	if (rc < 0)
		fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se); /* the daemon has its own descriptor */
	fs->se = NULL;
	return rc < 0 ? (going ? -1 : 1) : 0;
}

static int pogfs_main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts;
	struct pogfs_opts own = { .autocommit_delay = 5, .timeout = 1.0 };
	struct pogfs fs;
	struct pogfs_events events;
	const char *pool = NULL;
	char *fsname = NULL, reason[256];
	int notify_fd = -1;
	int ret = 1, rc;

	memset(&opts, 0, sizeof(opts));
	memset(&fs, 0, sizeof(fs));
	memset(&events, 0, sizeof(events));
	fs.events = &events;
	fs.ready_fd = -1;
	pthread_mutex_init(&fs.close_lock, NULL);
	pthread_mutex_init(&fs.ctl_lock, NULL);
	fuse_set_log_func(fuse_log_to_ours);

	if (split_args(argc, argv, &args, &pool) != 0) {
		pogfs_log(NULL, LOG_ERR, "arguments: out of memory");
		goto out_args;
	}
	if (fuse_opt_parse(&args, &own, pogfs_opt_spec, opt_proc) != 0)
		goto out_args; /* fuse_opt printed the reason */
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	if (opts.show_help) {
		usage(stdout, argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("pogfs 0.1.0, FUSE library %s\n", fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (!pool || !opts.mountpoint) {
		pogfs_log(NULL, LOG_ERR, "need a pool and a mount point (see %s --help)",
			  argv[0]);
		ret = 2;
		goto out_args;
	}
	if (own.timeout < 0) {
		pogfs_log(NULL, LOG_ERR, "-o timeout: must not be negative");
		goto out_args;
	}
	if (own.log_file && open_log_file(own.log_file) != 0)
		goto out_args;

	fs.mountpoint = realpath(opts.mountpoint, NULL);
	if (!fs.mountpoint) {
		pogfs_log(NULL, LOG_ERR, "%s: %s", opts.mountpoint, strerror(errno));
		goto out_args;
	}
	if (check_mountpoint(fs.mountpoint, own.nonempty) != 0)
		goto out_args;
	fs.mountpoint_len = strlen(fs.mountpoint);
	if (fs.mountpoint_len == 1) /* "/" */
		fs.mountpoint_len = 0;
	fs.pool_path = realpath(pool, NULL);
	if (!fs.pool_path) {
		pogfs_log(NULL, LOG_ERR, "%s: %s", pool, strerror(errno));
		goto out_args;
	}

	/* Options pogfs always wants; the user's fsname and subtype win. */
	if (fuse_opt_add_arg(&args, "-odefault_permissions") != 0)
		goto out_args;
	if (!own.fsname_set) {
		fsname = fsname_option(fs.pool_path);
		if (!fsname || fuse_opt_add_arg(&args, fsname) != 0)
			goto out_args;
	}
	if (!own.subtype_set && fuse_opt_add_arg(&args, "-osubtype=pogfs") != 0)
		goto out_args;

	fs.timeout = own.timeout;
	fs.showpog = own.showpog;
	fs.autocommit = own.autocommit;
	fs.follow = own.follow;
	fs.autocommit_delay = own.autocommit_delay ? own.autocommit_delay : 1;
	fs.foreground = opts.foreground;
	fs.max_read = own.max_read;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.start_time);
	pogfs_touch(&fs);
	if (inode_table_init(&fs.inodes) != 0) {
		pogfs_log(NULL, LOG_ERR, "inode table: out of memory");
		goto out_args;
	}
	if (events_init(fs.events, own.events_ring) != 0) {
		pogfs_log(NULL, LOG_ERR, "events: out of memory");
		goto out_table;
	}

	if (pog_holder(fs.pool_path) == POG_HOLDER_SERVING) {
		ret = attach_session(&fs, &args, pool);
		if (ret >= 0)
			goto out_table;
		/* that daemon is finishing: wait for it as below */
	}
	if (!opts.foreground && daemon_start(&notify_fd) != 0)
		goto out_table;

	rc = open_pool_waiting(&fs, pool);
	if (rc < 0) {
		pogfs_log(NULL, LOG_ERR, "%s: %s", pool,
			  open_reason(rc, fs.pool_path, reason, sizeof(reason)));
		goto out_notify;
	}
	if (pog_set_holder(fs.store, POG_HOLDER_SERVING) != 0)
		pogfs_log(&fs, LOG_WARNING, "%s: cannot mark the pool as served", pool);
	if (own.keep && (rc = pog_set_keep(fs.store, own.keep)) == -EROFS) {
		pogfs_log(&fs, LOG_WARNING, "-o keep=%u: a read-only mount keeps "
			  "the pool's setting (%u)", own.keep, pog_keep(fs.store));
	} else if (own.keep && rc < 0) {
		pogfs_log(NULL, LOG_ERR, "-o keep=%u: between 1 and %u", own.keep,
			  POG_KEEP_MAX);
		goto out_store;
	}
	/* Commits name their session: this mount (.pog/log). */
	(void)pog_set_session_name(fs.store, fs.mountpoint);
	pog_track_moves(fs.store, true); /* the kernel is told what a moving view changed */
	pogfs_sessions_set_first(&fs);

	fs.se = fuse_session_new(&args, &pogfs_ops, sizeof(pogfs_ops), &fs);
	if (!fs.se)
		goto out_store;
	if (fuse_set_signal_handlers(fs.se) != 0)
		goto out_session;
	/* absolute: the daemon leaves its working directory */
	if (fuse_session_mount(fs.se, fs.mountpoint) != 0) {
		pogfs_log(NULL, LOG_ERR, "%s: mount failed", opts.mountpoint);
		goto out_signals;
	}
	/* Fails only out of memory: then the kernel clears setuid itself. */
	if (pogfs_killpriv_io(fs.se) != 0)
		pogfs_log(&fs, LOG_ERR, "killpriv: out of memory");

	pogfs_autocommit_start(&fs);
	/* op_init releases the parent once the kernel's INIT is answered. */
	fs.ready_fd = notify_fd;
	notify_fd = -1;
	pogfs_serve_start(&fs); /* logs why when it cannot */
	rc = events_start(&fs);
	if (rc < 0)
		pogfs_log(&fs, LOG_ERR, "events: cannot start: %s", strerror(-rc));

	ret = loop_status(run_loop(&fs, &opts));
	/* Blocked readers of .pog/events on this mount get end of file while
	 * the kernel still listens. */
	events_end_mount(&fs);
	/* The pool stays open while mounts added to this daemon live; this
	 * mount's session ends now (its changes committed or discarded), and
	 * stays only as the daemon's handle on the pool, unlisted, moving to
	 * each new commit so that it pins nothing old. */
	pogfs_session_leave(&fs);
	pogfs_sessions_wait();
	pogfs_sessions_set_first(NULL);
	events_close(&fs);
	/* Unmounted: a new daemon may wait for this one from now on. */
	if (fs.store)
		pog_set_holder(fs.store, POG_HOLDER_FINISHING);
	if (fs.ready_fd >= 0) {
		/* INIT never came through (its reason is logged above) */
		notify_fd = fs.ready_fd;
		fs.ready_fd = -1;
		ret = 1;
	}
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se); /* calls destroy: closes the store */
	fs.se = NULL;
out_store:
	pogfs_close_store(&fs); /* no-op when destroy ran */
out_notify:
	if (notify_fd >= 0)
		daemon_failed(notify_fd);
out_table:
	events_release(fs.events);
	inode_table_release(&fs.inodes);
out_args:
	free(fs.conflicts);
	free(fs.mountpoint);
	free(fs.pool_path);
	free(fsname);
	free(opts.mountpoint);
	free(own.log_file);
	fuse_opt_free_args(&args);
	if (log_file)
		fclose(log_file);
	return ret;
}

int main(int argc, char *argv[])
{
	struct pogfs_argv prepared;
	int ret;

	if (pogfs_prepare_args(argc, argv, &prepared) != 0)
		return 1;
	ret = prepared.fake ? 0 : pogfs_main(prepared.argc, prepared.argv);
	pogfs_argv_release(&prepared);
	return ret;
}
