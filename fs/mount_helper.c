/* mount_helper.c - pogfs started by mount(8) as mount.pogfs, and the fstab options pogfs ignores. */
#include "mount_helper.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Options that only mean something to mount(8), systemd or fstab
 * readers. mount.fuse3 and sshfs drop the same ones ("user", "nofail",
 * "noauto", "_netdev", ...); FUSE would refuse them as unknown.
 */
static const char *const ignored_options[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "owner",
	"group", "nofail", "_netdev", "netdev", NULL
};

static bool ignored_option(const char *opt, size_t len)
{
	for (size_t i = 0; ignored_options[i]; i++)
		if (strlen(ignored_options[i]) == len &&
		    memcmp(ignored_options[i], opt, len) == 0)
			return true;
	/* x-systemd.automount, x-systemd.requires=..., X-mount.mkdir,
	 * comment=systemd.*: userspace options kept in fstab and utab. */
	if (len >= 2 && (opt[0] == 'x' || opt[0] == 'X') && opt[1] == '-')
		return true;
	return len >= 8 && memcmp(opt, "comment=", 8) == 0;
}

void pogfs_strip_mount_options(char *opts)
{
	char *in = opts, *out = opts;

	while (*in) {
		/* One option ends at an unescaped ',' (fuse_opt escapes with
		 * a backslash, as in fsname=a\,b). */
		char *end = in;
		while (*end && *end != ',') {
			if (*end == '\\' && end[1])
				end++;
			end++;
		}
		size_t len = (size_t)(end - in);
		if (len && !ignored_option(in, len)) {
			if (out != opts)
				*out++ = ',';
			memmove(out, in, len);
			out += len;
		}
		in = *end ? end + 1 : end;
	}
	*out = '\0';
}

bool pogfs_is_mount_helper(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	return strncmp(base, "mount.", 6) == 0;
}

/* Append arg (copied) to the new argument vector. */
static int push(struct pogfs_argv *v, const char *arg)
{
	char *copy = strdup(arg);

	if (!copy)
		return -ENOMEM;
	v->argv[v->argc++] = copy;
	v->argv[v->argc] = NULL;
	return 0;
}

/* Append "-o OPTS" with the ignored options taken out (nothing when
 * none is left). */
static int push_options(struct pogfs_argv *v, const char *opts)
{
	char *copy = strdup(opts);
	int err = 0;

	if (!copy)
		return -ENOMEM;
	pogfs_strip_mount_options(copy);
	if (copy[0]) {
		err = push(v, "-o");
		if (!err)
			err = push(v, copy);
	}
	free(copy);
	return err;
}

/*
 * mount(8) runs helpers as "mount.TYPE SOURCE DIR [-sfnv] [-N NS]
 * [-o OPTS] [-t TYPE]": there -f means "fake" and -s "sloppy", not
 * pogfs's foreground and single-threaded.
 */
static int helper_args(int argc, char **argv, struct pogfs_argv *v)
{
	int operands = 0, err = 0;

	err = push(v, "pogfs");
	for (int i = 1; i < argc && !err; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			err = push_options(v, argv[++i]);
		} else if (strncmp(a, "-o", 2) == 0 && a[2]) {
			err = push_options(v, a + 2);
		} else if ((strcmp(a, "-t") == 0 || strcmp(a, "-N") == 0) &&
			   i + 1 < argc) {
			i++; /* the type is ours; namespaces are mount's job */
		} else if (a[0] == '-' && a[1]) {
			for (const char *f = a + 1; *f; f++) {
				if (*f == 'f')
					v->fake = true;
				else if (!strchr("snvirw", *f))
					err = -EINVAL;
			}
			if (err)
				fprintf(stderr, "pogfs: %s: unknown mount "
						"helper option %s\n", argv[0], a);
		} else {
			operands++;
			err = push(v, a);
		}
	}
	if (!err && operands != 2) {
		fprintf(stderr, "pogfs: usage: %s POOL MOUNTPOINT [-o opt,...]\n",
			argv[0]);
		err = -EINVAL;
	}
	return err;
}

/* The daemon's own command line, with the ignored options taken out. */
static int daemon_args(int argc, char **argv, struct pogfs_argv *v)
{
	int err = 0;

	for (int i = 0; i < argc && !err; i++) {
		const char *a = argv[i];

		if (i > 0 && strcmp(a, "-o") == 0 && i + 1 < argc)
			err = push_options(v, argv[++i]);
		else if (i > 0 && strncmp(a, "-o", 2) == 0 && a[2])
			err = push_options(v, a + 2);
		else
			err = push(v, a);
	}
	return err;
}

int pogfs_prepare_args(int argc, char **argv, struct pogfs_argv *v)
{
	int err;

	memset(v, 0, sizeof(*v));
	v->argv = calloc((size_t)argc * 2 + 2, sizeof(*v->argv));
	if (!v->argv)
		return -ENOMEM;
	if (pogfs_is_mount_helper(argv[0]))
		err = helper_args(argc, argv, v);
	else
		err = daemon_args(argc, argv, v);
	if (err)
		pogfs_argv_release(v);
	return err;
}

void pogfs_argv_release(struct pogfs_argv *v)
{
	if (v->argv)
		for (int i = 0; i < v->argc; i++)
			free(v->argv[i]);
	free(v->argv);
	memset(v, 0, sizeof(*v));
}
