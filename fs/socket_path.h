/* socket_path.h - where the daemon serving a pool listens, for pogfs and pog alike. */
#ifndef POGFS_SOCKET_PATH_H
#define POGFS_SOCKET_PATH_H

#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * A daemon that holds a pool answers `pog info`, `pog export` and
 * `pog fsck` on a unix socket (see fs/serve.c), at the first of these
 * places it can create (and pog looks in the same order):
 *   1. beside the pool: DIR/.NAME.sock (pool DIR/NAME);
 *   2. /run/pogfs/HASH.sock (root; a pool in a read-only directory);
 *   3. $XDG_RUNTIME_DIR/pogfs/HASH.sock, else /run/user/UID/pogfs/...
 * HASH is 16 hex digits of a 64-bit FNV-1a hash of the pool's absolute
 * path. A socket file left by a daemon killed with -9 is stale: the
 * next daemon (which holds the pool's lock, so no other one serves it)
 * replaces it; pog treats a refused connection as no daemon.
 */
#define POG_SOCKET_PLACES 4

/* The candidate paths for the pool at absolute path pool; returns how
 * many were filled (places that do not apply, e.g. no runtime dir, are
 * left out). */
int pog_socket_paths(const char *pool, char paths[][PATH_MAX], int max);

/*
 * Fill *addr for path. sun_path holds 107 bytes; a longer path is
 * reached through its directory, opened into *dirfd ("/proc/self/fd/N/
 * NAME"): close *dirfd (when >= 0) once bind or connect is done.
 * Returns 0 or -errno.
 */
int pog_socket_addr(const char *path, struct sockaddr_un *addr, int *dirfd);

/* Connect to the daemon serving the pool at absolute path pool: the
 * socket (close-on-exec), or -ENOENT when none answers (a refused
 * connection is a stale socket left by a daemon killed with -9). */
int pog_socket_connect(const char *pool);

#endif /* POGFS_SOCKET_PATH_H */
