/* mount_helper.h - pogfs as mount(8)'s helper (mount.pogfs, mount.fuse.pogfs) and the fstab options it drops. */
#ifndef POGFS_MOUNT_HELPER_H
#define POGFS_MOUNT_HELPER_H

#include <stdbool.h>

/* A command line built by pogfs_prepare_args; every string is owned. */
struct pogfs_argv {
	int argc;
	char **argv;  /* NULL-terminated */
	bool fake;    /* mount -f: check the arguments, mount nothing */
};

/*
 * The daemon's command line from the one it was started with. Started as
 * "mount.*" (a symlink that mount(8) runs for type pogfs or fuse.pogfs:
 * "mount.pogfs POOL DIR [-sfnv] [-o OPTS] [-t TYPE]"), that form is turned
 * into "pogfs POOL DIR -o OPTS". In both cases the -o options that only
 * mean something to mount(8), systemd or fstab (defaults, auto, noauto,
 * user, users, nouser, owner, group, nofail, _netdev, x-*, X-*, comment=)
 * are taken out. Returns 0 or -errno (bad helper usage: -EINVAL, after
 * printing why); on failure v holds nothing.
 */
int pogfs_prepare_args(int argc, char **argv, struct pogfs_argv *v);
void pogfs_argv_release(struct pogfs_argv *v);

/* Was the program started under a "mount.*" name? */
bool pogfs_is_mount_helper(const char *argv0);

/* Take the ignored options out of a comma-separated list, in place. */
void pogfs_strip_mount_options(char *opts);

#endif /* POGFS_MOUNT_HELPER_H */
