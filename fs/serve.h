/* serve.h - the daemon's control socket: pog info, export and fsck on a pool this daemon holds. */
#ifndef POGFS_SERVE_H
#define POGFS_SERVE_H

struct pogfs;

/*
 * Listen on the pool's control socket (fs/socket_path.h says where) and
 * answer in a thread; requests run in a thread each, on the store, which
 * takes its own locks. Returns 0 or -errno (logged: the mount works on,
 * only pog cannot ask this daemon). Call after the mount is up, in the
 * process that serves it.
 */
int pogfs_serve_start(struct pogfs *fs);

/* Stop listening, end the requests in flight (their clients see the
 * connection close), remove the socket file. Before the store closes. */
void pogfs_serve_stop(struct pogfs *fs);

/*
 * sd_notify without libsystemd: send state ("READY=1") and MAINPID to
 * $NOTIFY_SOCKET when systemd set it (a unit with Type=notify; run
 * pogfs with -f there). Returns 0 (also when there is no such socket)
 * or -errno.
 */
int pogfs_notify(const char *state);

#endif /* POGFS_SERVE_H */
