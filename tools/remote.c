/* remote.c - pog info, export and fsck on a pool that a pogfs daemon holds: asked over its control socket (fs/serve.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "socket_path.h"
#include "tool.h"

int tool_remote_connect(const char *pool, int *fd_out)
{
	char *real = realpath(pool, NULL);
	int fd;

	if (!real)
		return -errno;
	fd = pog_socket_connect(real);
	free(real);
	if (fd < 0)
		return fd;
	*fd_out = fd;
	return 0;
}

/* A mountinfo field in place: the kernel writes space, tab, newline and
 * backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * The source of the FUSE mount at mnt in /proc/self/mountinfo, the last
 * one there (a mount over another hides it): pogfs names it with the
 * pool's absolute path. 0, or -ENOENT.
 */
static int mount_source(const char *mnt, char *source, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save, *field, *point = NULL;
		char *dash = strstr(line, " - ");
		int i = 0;

		if (!dash)
			continue;
		*dash = '\0';
		for (field = strtok_r(line, " ", &save); field && i < 4;
		     field = strtok_r(NULL, " ", &save))
			i++;
		point = field;  /* the fifth field: the mount point */
		if (!point)
			continue;
		unescape_octal(point);
		if (strcmp(point, mnt) != 0)
			continue;
		char *type = strtok_r(dash + 3, " ", &save);
		char *src = strtok_r(NULL, " \n", &save);
		if (!type || !src || strncmp(type, "fuse", 4) != 0)
			continue;
		unescape_octal(src);
		if (src[0] == '/' && strlen(src) < size) {
			strcpy(source, src);
			err = 0;
		} else {
			err = -ENOENT;
		}
	}
	free(line);
	fclose(f);
	return err;
}

int tool_remote_connect_mount(const char *mnt, int *fd)
{
	char pool[PATH_MAX];
	int err = mount_source(mnt, pool, sizeof(pool));

	return err ? err : tool_remote_connect(pool, fd);
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One frame header "T LEN\n". */
static int read_header(int fd, char *type, size_t *len)
{
	char head[32];
	size_t used = 0;

	for (;;) {
		int err = read_full(fd, head + used, 1);
		if (err)
			return err;
		if (head[used] == '\n')
			break;
		if (++used == sizeof(head))
			return -EPROTO;
	}
	head[used] = '\0';
	char *end;
	if (used < 3 || head[1] != ' ')
		return -EPROTO;
	*type = head[0];
	*len = strtoull(head + 2, &end, 10);
	return *end || *len > ((size_t)1 << 30) ? -EPROTO : 0;
}

/* A progress frame "UNIT DONE TOTAL" to the progress line. */
static void show_progress(struct tool_progress *p, const char *text)
{
	char unit[16];
	uint64_t done, total;

	if (p && sscanf(text, "%15s %" SCNu64 " %" SCNu64, unit, &done,
			&total) == 3)
		tool_progress_update(p, unit, done, total);
}

int tool_remote_request(int fd, const char *request, tool_frame_fn fn,
			void *ctx, struct tool_progress *p, char *message,
			size_t size)
{
	size_t len = strlen(request);
	char line[4100];
	int err;

	message[0] = '\0';
	if (len + 2 > sizeof(line))
		return -E2BIG;
	memcpy(line, request, len);
	line[len++] = '\n';
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -errno;
	for (;;) {
		char type, *body;
		size_t blen;

		err = read_header(fd, &type, &blen);
		if (err)
			return err == -EPIPE ? -ECONNRESET : err;
		body = malloc(blen + 1);
		if (!body)
			return -ENOMEM;
		err = read_full(fd, body, blen);
		if (err) {
			free(body);
			return err == -EPIPE ? -ECONNRESET : err;
		}
		body[blen] = '\0';
		if (type == 'E') {
			char *space = strchr(body, ' ');
			err = (int)strtol(body, NULL, 10);
			snprintf(message, size, "%s", space ? space + 1 : "");
			free(body);
			return err;
		}
		if (type == 'P')
			show_progress(p, body);
		else if (fn)
			err = fn(ctx, type, body, blen);
		free(body);
		if (err)
			return err;
	}
}

/* ---- info ---------------------------------------------------------------- */

struct info_answer {
	struct pog_status st;
	char mountpoint[PATH_MAX];
	long pid;
};

/* "SECONDS.NANOSECONDS" */
static void parse_time(const char *value, struct pog_time *t)
{
	char *dot;

	t->sec = strtoll(value, &dot, 10);
	if (*dot == '.')
		t->nsec = (uint32_t)strtoul(dot + 1, NULL, 10);
}

/* "key value" lines into the status. */
static int parse_info(void *ctx, char type, const char *buf, size_t len)
{
	struct info_answer *in = ctx;
	struct pog_status *st = &in->st;
	const char *line = buf, *end = buf + len;

	if (type != 'D')
		return 0;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		char key[32], value[PATH_MAX];
		const char *space = memchr(line, ' ', n);

		if (space && (size_t)(space - line) < sizeof(key) &&
		    n - (size_t)(space - line) - 1 < sizeof(value)) {
			size_t kl = (size_t)(space - line);
			memcpy(key, line, kl);
			key[kl] = '\0';
			memcpy(value, space + 1, n - kl - 1);
			value[n - kl - 1] = '\0';
#define FIELD(name) else if (strcmp(key, #name) == 0) \
				st->name = strtoull(value, NULL, 10)
			if (strcmp(key, "commit_time") == 0)
				parse_time(value, &st->commit_time);
			else if (strcmp(key, "discarded_time") == 0)
				parse_time(value, &st->discarded_time);
			else if (strcmp(key, "last_error") == 0)
				snprintf(st->last_error, sizeof(st->last_error),
					 "%.*s", (int)sizeof(st->last_error) - 1,
					 value);
			else if (strcmp(key, "mountpoint") == 0)
				snprintf(in->mountpoint, sizeof(in->mountpoint),
					 "%s", value);
			else if (strcmp(key, "pid") == 0)
				in->pid = strtol(value, NULL, 10);
			FIELD(format_version);
			FIELD(commit_id);
			FIELD(staged);
			FIELD(pool_size);
			FIELD(pool_used);
			FIELD(block_size);
			FIELD(blocks_total);
			FIELD(blocks_used);
			FIELD(blocks_reserved);
			FIELD(objects);
			FIELD(logical_bytes);
			FIELD(discarded_changes);
#undef FIELD
		}
		line += n + 1;
	}
	return 0;
}

static int remote_failed(const struct tool_args *a, int err,
			 const char *message, struct tool_error *e, int status)
{
	char what[512];

	snprintf(what, sizeof(what), "%s %s", a->command, a->operands[0]);
	if (err == -ECONNRESET || err == -EPROTO)
		return tool_fail(e, status, what, "the pogfs daemon holding "
				 "the pool stopped answering");
	return tool_fail(e, status, what, "%s (asked of the pogfs daemon "
			 "holding the pool)", message[0] ? message
							 : pog_strerror(err));
}

int tool_remote_info(const struct tool_args *a, int fd, struct tool_error *e)
{
	struct info_answer in;
	char message[256];
	int err;

	memset(&in, 0, sizeof(in));
	err = tool_remote_request(fd, "info", parse_info, &in, NULL, message,
				  sizeof(message));
	close(fd);
	if ((err == -EPIPE || err == -ECONNRESET) && !in.mountpoint[0])
		return TOOL_REMOTE_GONE;
	if (err < 0)
		return remote_failed(a, err, message, e, TOOL_EXIT_FAIL);
	tool_print_status(a->operands[0], &in.st);
	printf("mounted:         at %s by pogfs (pid %ld); %" PRIu64
	       " staged change%s there\n", in.mountpoint, in.pid,
	       in.st.staged, in.st.staged == 1 ? "" : "s");
	return TOOL_EXIT_OK;
}

/* ---- fsck ---------------------------------------------------------------- */

struct fsck_answer {
	struct pog_fsck_result r;
	struct tool_progress *progress;
	bool have_result;
};

static int fsck_frame(void *ctx, char type, const char *buf, size_t len)
{
	struct fsck_answer *f = ctx;
	struct pog_fsck_result *r = &f->r;

	if (type == 'D') {
		if (f->progress->shown)
			fputs("\r\033[K", stderr);
		fwrite(buf, 1, len, stdout);
		fflush(stdout);
	} else if (type == 'R') {
		f->have_result = sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64
					" %" SCNu64 " %" SCNu64 " %" SCNu64
					" %" SCNu64 " %" SCNu64 " %" SCNu64,
					&r->objects, &r->reachable,
					&r->garbage_objects, &r->blocks_used,
					&r->pages, &r->pages_unique, &r->errors,
					&r->warnings, &r->repaired) == 9;
	}
	return 0;
}

int tool_remote_fsck(const struct tool_args *a, int fd, struct tool_error *e)
{
	struct tool_progress progress;
	struct fsck_answer f;
	char message[256];
	int verdict;

	memset(&f, 0, sizeof(f));
	f.progress = &progress;
	tool_progress_begin(&progress, "fsck", a->quiet);
	verdict = tool_remote_request(fd, "fsck", fsck_frame, &f, &progress,
				      message, sizeof(message));
	tool_progress_end(&progress, verdict >= 0);
	close(fd);
	if (verdict < 0 || !f.have_result)
		return remote_failed(a, verdict < 0 ? verdict : -EPROTO,
				     message, e, 2);
	printf("%s: checked the last commit through the pogfs daemon "
	       "that holds it\n", a->operands[0]);
	tool_print_fsck_summary(a->operands[0], verdict, false, &f.r);
	return verdict == 0 ? TOOL_EXIT_OK : 1;
}
