/* watch.c - pog watch: print the commits that moved a subtree, from MNT/.pog/events. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

/*
 * The daemon does the filtering: after "watch PATH" on the open file,
 * .pog/events answers only the lines under PATH, and only of commits
 * that moved PATH's Merkle hash. pog watch prints them.
 */

/* The JSON string value of "key" in a line (escapes decoded) into out;
 * false when the line has none. */
static bool json_string(const char *line, const char *key, char *out,
			size_t size)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (!p || !size)
		return false;
	for (p += strlen(pat); *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\' && p[1]) {
			p++;
			if (*p == 'u' && p[1] && p[2] && p[3] && p[4]) {
				char hex[5] = { p[1], p[2], p[3], p[4], 0 };
				c = (char)strtoul(hex, NULL, 16);
				p += 4;
			} else if (*p == 'n') {
				c = '\n';
			} else if (*p == 't') {
				c = '\t';
			} else {
				c = *p;
			}
		}
		if (n + 1 < size)
			out[n++] = c;
	}
	out[n] = '\0';
	return *p == '"';
}

static bool json_number(const char *line, const char *key, uint64_t *out)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	*out = strtoull(p + strlen(pat), NULL, 10);
	return true;
}

/* A path as .pog/changes writes it: a newline as \n, a backslash \\. */
static void print_path(const char *path)
{
	for (; *path; path++) {
		if (*path == '\n')
			fputs("\\n", stdout);
		else if (*path == '\\')
			fputs("\\\\", stdout);
		else
			putchar(*path);
	}
}

static void print_line(const struct tool_args *a, const char *mnt,
		       const char *line)
{
	char change[8], path[8192];
	uint64_t commit, lost;

	if (json_number(line, "lost", &lost)) {
		fprintf(stderr, "pog: watch %s: lost %" PRIu64
			" events (this reader fell behind)\n", mnt, lost);
		if (a->json)
			printf("%s\n", line);
		return;
	}
	if (a->json) {
		printf("%s\n", line);
		return;
	}
	if (!json_number(line, "commit", &commit) ||
	    !json_string(line, "change", change, sizeof(change)) ||
	    !json_string(line, "path", path, sizeof(path)))
		return;
	printf("%" PRIu64 " %s ", commit, change);
	print_path(path);
	putchar('\n');
}

/* The path to watch, as the daemon takes it: absolute ones are made
 * relative to the mount by the daemon; others are relative to MNT. */
static int send_watch(int fd, const char *path)
{
	size_t len = strlen(path) + 8;
	char *cmd = malloc(len);
	int err = 0;

	if (!cmd)
		return ENOMEM;
	snprintf(cmd, len, "watch %s\n", path);
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		err = errno ? errno : EIO;
	free(cmd);
	return err;
}

/* Errors that mean the mount went away under the reader. */
static bool mount_gone(int err)
{
	return err == ENOTCONN || err == ENODEV || err == ECONNABORTED ||
	       err == EIO;
}

static int watch_loop(const struct tool_args *a, const char *mnt, int fd,
		      struct tool_error *e)
{
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap + 1);
	char what[512];

	snprintf(what, sizeof(what), "watch %s", mnt);
	if (!buf)
		return tool_fail(e, TOOL_EXIT_FAIL, what, "out of memory");
	for (;;) {
		if (have == cap) { /* a line longer than the buffer */
			char *p = realloc(buf, cap * 2 + 1);
			if (!p) {
				free(buf);
				return tool_fail(e, TOOL_EXIT_FAIL, what, "out of memory");
			}
			buf = p;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			free(buf);
			if (mount_gone(err))
				return TOOL_EXIT_OK; /* unmounted */
			return tool_fail(e, TOOL_EXIT_FAIL, what, "reading .pog/events: %s",
					 strerror(err));
		}
		if (n == 0)
			break; /* the stream ended: unmounted */
		have += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			buf[i] = '\0';
			print_line(a, mnt, buf + start);
			start = i + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		fflush(stdout);
	}
	free(buf);
	return TOOL_EXIT_OK;
}

int tool_watch(const struct tool_args *a, struct tool_error *e)
{
	char *mnt = NULL, *events = NULL;
	char what[512];
	int fd, err, status;

	snprintf(what, sizeof(what), "watch %s", a->operands[0]);
	err = tool_mount_root(a->operands[0], &mnt);
	if (err < 0)
		return tool_fail(e, TOOL_EXIT_FAIL, what, "%s",
				 err == -ENOENT ? "not inside a pogfs mount"
						: strerror(-err));
	snprintf(what, sizeof(what), "watch %s", mnt);
	events = malloc(strlen(mnt) + sizeof("/.pog/events"));
	if (!events) {
		free(mnt);
		return tool_fail(e, TOOL_EXIT_FAIL, what, "out of memory");
	}
	strcpy(events, mnt);
	strcat(events, "/.pog/events");
	fd = open(events, O_RDWR | O_CLOEXEC);
	free(events);
	if (fd < 0) {
		err = errno;
		status = tool_fail(e, TOOL_EXIT_FAIL, what, "%s/.pog/events: %s",
				   mnt, strerror(err));
		free(mnt);
		return status;
	}
	for (int i = 1; i < a->operand_count || i == 1; i++) {
		const char *path = i < a->operand_count ? a->operands[i] : ".";
		err = send_watch(fd, path);
		if (err) {
			status = tool_fail(e, TOOL_EXIT_FAIL, what, "%s: %s", path,
					   err == EINVAL ? "not a path in the store"
					   : err == ENOSPC ? "too many paths (64 at most)"
					   : strerror(err));
			close(fd);
			free(mnt);
			return status;
		}
	}
	status = watch_loop(a, mnt, fd, e);
	close(fd);
	free(mnt);
	return status;
}
