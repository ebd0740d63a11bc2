/* socket_path.c - where the daemon serving a pool listens (shared by pogfs and pog). */
#include "socket_path.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int add(char paths[][PATH_MAX], int n, int max, const char *fmt,
	       const char *a, const char *b)
{
	if (n >= max)
		return n;
	int len = snprintf(paths[n], PATH_MAX, fmt, a, b);
	return len > 0 && len < PATH_MAX ? n + 1 : n;
}

int pog_socket_paths(const char *pool, char paths[][PATH_MAX], int max)
{
	const char *slash = strrchr(pool, '/');
	char hash[32], dir[PATH_MAX], runtime[64];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n = 0;

	snprintf(hash, sizeof(hash), "%016" PRIx64, fnv1a(pool));
	if (slash && (size_t)(slash - pool) < sizeof(dir)) {
		memcpy(dir, pool, (size_t)(slash - pool));
		dir[slash - pool] = '\0';
		n = add(paths, n, max, "%s/.%s.sock", dir, slash + 1);
	}
	n = add(paths, n, max, "%s/%s.sock", "/run/pogfs", hash);
	if (xdg && xdg[0] == '/')
		n = add(paths, n, max, "%s/pogfs/%s.sock", xdg, hash);
	snprintf(runtime, sizeof(runtime), "/run/user/%u", (unsigned)getuid());
	if (!xdg || strcmp(xdg, runtime) != 0)
		n = add(paths, n, max, "%s/pogfs/%s.sock", runtime, hash);
	return n;
}

int pog_socket_addr(const char *path, struct sockaddr_un *addr, int *dirfd)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int n;

	*dirfd = -1;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(addr->sun_path)) {
		strcpy(addr->sun_path, path);
		return 0;
	}
	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	*dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return -errno;
	n = snprintf(addr->sun_path, sizeof(addr->sun_path),
		     "/proc/self/fd/%d/%s", *dirfd, slash + 1);
	if (n < 0 || (size_t)n >= sizeof(addr->sun_path)) {
		close(*dirfd);
		*dirfd = -1;
		return -ENAMETOOLONG;
	}
	return 0;
}

int pog_socket_connect(const char *pool)
{
	char paths[POG_SOCKET_PLACES][PATH_MAX];
	int n = pog_socket_paths(pool, paths, POG_SOCKET_PLACES);

	for (int i = 0; i < n; i++) {
		struct sockaddr_un addr;
		int dirfd, fd;

		if (pog_socket_addr(paths[i], &addr, &dirfd) < 0)
			continue;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		/* ENOENT: not here; ECONNREFUSED: stale; EACCES: not ours */
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr,
					    sizeof(addr)) == 0;
		if (dirfd >= 0)
			close(dirfd);
		if (ok)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -ENOENT;
}
