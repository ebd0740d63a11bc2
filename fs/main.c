/* main.c - the pogfs daemon: options, pool, mount, session loop, unmount. */
#include "pogfs.h"

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

/* Our own -o options; everything else goes to FUSE. */
struct pogfs_opts {
	int autocommit;
	int showpog;
	unsigned autocommit_delay;
	double timeout;
	int timeout_set;
};

#define POGFS_OPT(t, p) { t, offsetof(struct pogfs_opts, p), 1 }
static const struct fuse_opt pogfs_opt_spec[] = {
	POGFS_OPT("autocommit", autocommit),
	POGFS_OPT("showpog", showpog),
	{ "autocommit_delay=%u", offsetof(struct pogfs_opts, autocommit_delay), 0 },
	{ "timeout=%lf", offsetof(struct pogfs_opts, timeout), 0 },
	POGFS_OPT("timeout=", timeout_set),
	FUSE_OPT_END
};

static bool log_to_syslog;

void pogfs_log(struct pogfs *fs, int priority, const char *fmt, ...)
{
	va_list ap;
	(void)fs;

	va_start(ap, fmt);
	if (log_to_syslog) {
		vsyslog(priority, fmt, ap);
	} else {
		fputs("pogfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
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
		"    -o showpog             list .pog in the root directory\n"
		"    -o timeout=S           kernel entry/attribute cache (default 1.0)\n"
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
		int rc = pog_commit(fs->store, "autocommit", &id);
		if (rc < 0) {
			pogfs_log(fs, LOG_ERR, "autocommit: %s", pog_strerror(rc));
			pog_set_error(fs->store, "autocommit: %s", pog_strerror(rc));
			pogfs_touch(fs); /* try again after another quiet period */
			continue;
		}
		pogfs_log(fs, LOG_INFO, "autocommit: commit %" PRIu64 " (%" PRIu64 " changes)",
			  id, staged);
		pogfs_invalidate(fs, true);
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

void pogfs_close_store(struct pogfs *fs)
{
	pthread_mutex_lock(&fs->close_lock);
	if (fs->closed || !fs->store) {
		pthread_mutex_unlock(&fs->close_lock);
		return;
	}
	if (fs->autocommit_running) {
		atomic_store(&fs->stopping, true);
		pthread_join(fs->autocommit_thread, NULL);
		fs->autocommit_running = false;
	}
	if (fs->autocommit && pog_staged_count(fs->store) > 0) {
		uint64_t id = 0;
		uint64_t staged = pog_staged_count(fs->store);
		int rc = pog_commit(fs->store, "autocommit at unmount", &id);
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
	int n = pog_close(fs->store, 0);
	if (n < 0)
		pogfs_log(fs, LOG_ERR, "unmount: closing %s: %s", fs->pool_path,
			  pog_strerror(n));
	else if (n > 0)
		pogfs_log(fs, LOG_WARNING,
			  "unmount: discarded %d staged change%s (not committed)",
			  n, n == 1 ? "" : "s");
	fs->store = NULL;
	fs->closed = true;
	pthread_mutex_unlock(&fs->close_lock);
}

/* ---- daemon ------------------------------------------------------------ */

/*
 * Fork before touching the pool, so the child owns the pool's lock and
 * the mount. The parent waits for one status byte and exits with it:
 * a refused pool or a failed mount still reaches the shell.
 */
static int daemon_start(int *notify_fd)
{
	int pipefd[2];
	char status = 1;

	if (pipe(pipefd) != 0) {
		fprintf(stderr, "pog: daemonize: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pog: daemonize: %s\n", strerror(errno));
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
static void daemon_ready(int notify_fd)
{
	char ok = 0;
	int null = open("/dev/null", O_RDWR);

	if (chdir("/") != 0) {
		/* harmless: only keeps a directory busy */
	}
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	openlog("pogfs", LOG_PID, LOG_DAEMON);
	log_to_syslog = true;
	if (write(notify_fd, &ok, 1) != 1) {
		/* the parent is gone; nothing to tell */
	}
	close(notify_fd);
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

static const char *open_reason(int rc)
{
	switch (rc) {
	case POG_ELOCKED:
		return "pool is in use (another pogfs or pog holds its lock)";
	case POG_ENOTPOOL:
		return "not a pogfs pool";
	case POG_ENEWER:
		return "pool has a newer format than this pogfs reads";
	default:
		return pog_strerror(rc);
	}
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

/* The fsname shown in /proc/mounts: the pool path, commas escaped. */
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

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts;
	struct pogfs_opts own = { .autocommit_delay = 5, .timeout = 1.0 };
	struct fuse_loop_config *loop_config = NULL;
	struct pogfs fs;
	const char *pool = NULL;
	char *fsname = NULL;
	int notify_fd = -1;
	int ret = 1, rc;

	memset(&opts, 0, sizeof(opts));
	memset(&fs, 0, sizeof(fs));
	pthread_mutex_init(&fs.close_lock, NULL);

	if (split_args(argc, argv, &args, &pool) != 0) {
		fprintf(stderr, "pog: arguments: out of memory\n");
		goto out_args;
	}
	if (fuse_opt_parse(&args, &own, pogfs_opt_spec, NULL) != 0)
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
		fprintf(stderr, "pog: %s: need a pool and a mount point (see --help)\n",
			argv[0]);
		ret = 2;
		goto out_args;
	}
	if (own.timeout < 0) {
		fprintf(stderr, "pog: -o timeout: must not be negative\n");
		goto out_args;
	}

	/* Defaults that pogfs always wants, user options before them win
	 * only where FUSE lets them (fsname). */
	if (fuse_opt_add_arg(&args, "-odefault_permissions") != 0)
		goto out_args;
	fsname = fsname_option(pool);
	if (!fsname || fuse_opt_add_arg(&args, fsname) != 0)
		goto out_args;

	fs.mountpoint = realpath(opts.mountpoint, NULL);
	if (!fs.mountpoint) {
		fprintf(stderr, "pog: %s: %s\n", opts.mountpoint, strerror(errno));
		goto out_args;
	}
	fs.mountpoint_len = strlen(fs.mountpoint);
	if (fs.mountpoint_len == 1) /* "/" */
		fs.mountpoint_len = 0;
	fs.pool_path = realpath(pool, NULL);
	if (!fs.pool_path) {
		fprintf(stderr, "pog: %s: %s\n", pool, strerror(errno));
		goto out_args;
	}
	fs.timeout = own.timeout;
	fs.showpog = own.showpog;
	fs.autocommit = own.autocommit;
	fs.autocommit_delay = own.autocommit_delay ? own.autocommit_delay : 1;
	fs.foreground = opts.foreground;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.start_time);
	pogfs_touch(&fs);
	if (inode_table_init(&fs.inodes) != 0) {
		fprintf(stderr, "pog: inode table: out of memory\n");
		goto out_args;
	}

	if (!opts.foreground && daemon_start(&notify_fd) != 0)
		goto out_table;

	rc = pog_open(fs.pool_path, 0, &fs.store);
	if (rc < 0) {
		fprintf(stderr, "pog: %s: %s\n", pool, open_reason(rc));
		goto out_notify;
	}

	fs.se = fuse_session_new(&args, &pogfs_ops, sizeof(pogfs_ops), &fs);
	if (!fs.se)
		goto out_store;
	if (fuse_set_signal_handlers(fs.se) != 0)
		goto out_session;
	/* absolute: the daemon leaves its working directory */
	if (fuse_session_mount(fs.se, fs.mountpoint) != 0) {
		fprintf(stderr, "pog: %s: mount failed\n", opts.mountpoint);
		goto out_signals;
	}

	if (fs.autocommit) {
		if (pthread_create(&fs.autocommit_thread, NULL, autocommit_main, &fs) == 0)
			fs.autocommit_running = true;
		else
			pogfs_log(&fs, LOG_ERR, "autocommit: cannot start its thread");
	}
	if (!opts.foreground) {
		daemon_ready(notify_fd);
		notify_fd = -1;
	}

	if (opts.singlethread) {
		ret = fuse_session_loop(fs.se);
	} else {
		loop_config = fuse_loop_cfg_create();
		if (!loop_config) {
			ret = -1;
		} else {
			fuse_loop_cfg_set_clone_fd(loop_config, (unsigned)opts.clone_fd);
			if (opts.max_idle_threads != UINT_MAX)
				fuse_loop_cfg_set_idle_threads(loop_config,
							       opts.max_idle_threads);
			if (opts.max_threads > 0 && opts.max_threads <= 100000)
				fuse_loop_cfg_set_max_threads(loop_config,
							      opts.max_threads);
			ret = fuse_session_loop_mt(fs.se, loop_config);
			fuse_loop_cfg_destroy(loop_config);
		}
	}
	ret = ret == 0 ? 0 : 1;
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
	inode_table_release(&fs.inodes);
out_args:
	free(fs.mountpoint);
	free(fs.pool_path);
	free(fsname);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
