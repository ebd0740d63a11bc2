/* killpriv.h - the daemon clears setuid/setgid on write, truncate, chown. */
#ifndef POGFS_KILLPRIV_H
#define POGFS_KILLPRIV_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/types.h>

/* After fuse_session_mount: read and write /dev/fuse through hooks that
 * ask the kernel for FUSE_HANDLE_KILLPRIV_V2. 0 or -errno. */
int pogfs_killpriv_io(struct fuse_session *se);
/* Does the request this thread is processing ask to clear setuid and
 * setgid (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID,
 * FUSE_OPEN_KILL_SUIDGID)? */
bool pogfs_kill_suidgid_asked(void);
/* mode without setuid, and without setgid when group-executable or
 * the caller is not in the file's group. */
mode_t pogfs_killed_mode(mode_t mode, bool in_group);

#endif
