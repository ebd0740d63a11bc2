/* notify.c - tell systemd (Type=notify) that the mount is up: one datagram to $NOTIFY_SOCKET, no libsystemd. */
#include "serve.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int pogfs_notify(const char *state)
{
	const char *where = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr;
	char message[256];
	socklen_t len;
	int fd, n, err = 0;

	if (!where || (where[0] != '/' && where[0] != '@'))
		return 0; /* not started by systemd with Type=notify */
	if (strlen(where) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, where, strlen(where));
	if (where[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(where));
	n = snprintf(message, sizeof(message), "%s\nMAINPID=%ld", state,
		     (long)getpid());
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, message, (size_t)n, MSG_NOSIGNAL,
		   (struct sockaddr *)&addr, len) < 0)
		err = -errno;
	close(fd);
	return err;
}
