/* json.c - pog export and pog import: JSON in and out of a store. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "tool.h"

/* ---- where the operand lives ------------------------------------------- */

/*
 * Is path inside a mounted store? Then *mnt is the mount's root and *rel
 * the path below it ("" for the root itself), both malloc'ed.
 */
static bool in_mount(const char *path, char **mnt, char **rel)
{
	char *real = realpath(path, NULL);
	char probe[PATH_MAX + 16];
	if (!real) {
		/* A new name under an existing directory (import). */
		char *copy = strdup(path), *slash;
		if (!copy)
			return false;
		slash = strrchr(copy, '/');
		char *dir = slash ? (slash == copy ? strdup("/") : strndup(copy, (size_t)(slash - copy)))
				  : strdup(".");
		char *parent = dir ? realpath(dir, NULL) : NULL;
		if (parent) {
			size_t n = strlen(parent) + strlen(slash ? slash + 1 : copy) + 2;
			real = malloc(n);
			if (real)
				snprintf(real, n, "%s/%s", strcmp(parent, "/") ? parent : "",
					 slash ? slash + 1 : copy);
		}
		free(parent);
		free(dir);
		free(copy);
		if (!real)
			return false;
	}
	for (char *end = real + strlen(real);;) {
		size_t len = (size_t)(end - real);
		snprintf(probe, sizeof(probe), "%.*s/.pog/ctl", (int)len, real);
		if (access(probe, F_OK) == 0) {
			*mnt = strndup(real, len ? len : 1);
			*rel = strdup(*end ? end + 1 : "");
			free(real);
			return *mnt && *rel;
		}
		char *slash = len ? memrchr(real, '/', len) : NULL;
		if (!slash)
			break;
		end = slash;
	}
	free(real);
	return false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- output --------------------------------------------------------------- */

struct sink {
	FILE *plain;
	gzFile gz;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *k = ctx;
	if (k->gz)
		return gzwrite(k->gz, buf, (unsigned)len) == (int)len ? 0 : -EIO;
	return fwrite(buf, 1, len, k->plain) == len ? 0 : -EIO;
}

/* Open the output: stdout, or a temporary file beside FILE. */
static int sink_open(const struct tool_args *a, struct sink *k, char **tmp)
{
	int fd = STDOUT_FILENO;
	*tmp = NULL;
	if (a->output) {
		size_t n = strlen(a->output) + 16;
		*tmp = malloc(n);
		if (!*tmp)
			return -ENOMEM;
		snprintf(*tmp, n, "%s.tmpXXXXXX", a->output);
		fd = mkstemp(*tmp);
		if (fd < 0) {
			free(*tmp);
			*tmp = NULL;
			return -errno;
		}
		fchmod(fd, 0644);
	}
	bool gz = a->gzip || (a->output && ends_with(a->output, ".gz"));
	if (gz) {
		k->gz = gzdopen(a->output ? fd : dup(fd), "wb");
		return k->gz ? 0 : -ENOMEM;
	}
	k->plain = a->output ? fdopen(fd, "wb") : stdout;
	return k->plain ? 0 : -errno;
}

/* Finish the output; the temporary file replaces FILE only when ok. */
static int sink_close(const struct tool_args *a, struct sink *k, char *tmp,
		      bool ok)
{
	int err = 0;
	if (k->gz && gzclose(k->gz) != Z_OK)
		err = -EIO;
	if (k->plain && k->plain != stdout && fclose(k->plain) != 0)
		err = -errno;
	if (k->plain == stdout && fflush(stdout) != 0)
		err = -errno;
	if (tmp) {
		if (ok && !err && rename(tmp, a->output) != 0)
			err = -errno;
		if (!ok || err)
			unlink(tmp);
		free(tmp);
	}
	return err;
}

/* ---- export ----------------------------------------------------------------- */

/* The JSON of a pool that a daemon holds, asked of that daemon. */
static int export_frame(void *ctx, char type, const char *buf, size_t len)
{
	return type == 'D' ? sink_write(ctx, buf, len) : 0;
}

static int export_remote(const struct tool_args *a, int fd, struct sink *k,
			 struct tool_error *e)
{
	struct tool_progress progress;
	char message[256];

	tool_progress_begin(&progress, "export", a->quiet);
	int err = tool_remote_request(fd, "export", export_frame, k, &progress,
				      message, sizeof(message));
	tool_progress_end(&progress, err == 0);
	close(fd);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s (asked of "
				 "the pogfs daemon holding the pool)",
				 a->operands[0], message[0] ? message
				 : pog_strerror(err));
	return 0;
}

static int export_pool(const struct tool_args *a, struct sink *k,
		       struct tool_error *e)
{
	struct tool_progress progress;
	pog_store *s;
	int remote;
	int status = tool_open_or_ask(a, &s, &remote, e, TOOL_EXIT_FAIL);
	if (status)
		return status;
	if (remote >= 0 && a->commit) {
		close(remote);
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: a pogfs daemon "
				 "holds the pool: export MNT --commit %s instead",
				 a->operands[0], a->commit);
	}
	if (remote >= 0)
		return export_remote(a, remote, k, e);
	uint64_t root = POG_ROOT_INO | POG_COMMITTED_BIT;
	int err = a->commit ? tool_commit_root(s, a->commit, &root) : 0;
	if (err) {
		tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: --commit %s: "
				 "no such retained commit or snapshot",
				 a->operands[0], a->commit);
	}
	tool_progress_begin(&progress, "export", a->quiet);
	err = pog_export(s, root, sink_write, k);
	tool_progress_end(&progress, err == 0);
	tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s",
				 a->operands[0], pog_strerror(err));
	return 0;
}

/* export-path's frames: whether any data came (a daemon that does not
 * know the request says -EINVAL before any). */
struct path_answer {
	struct sink *k;
	bool data;
};

static int export_path_frame(void *ctx, char type, const char *buf,
			     size_t len)
{
	struct path_answer *p = ctx;

	if (type != 'D')
		return 0;
	p->data = true;
	return sink_write(p->k, buf, len);
}

/*
 * The JSON of PATH in a mount, streamed from the daemon's control socket
 * ("export-path REL"): neither the daemon nor pog holds the document.
 * -EINVAL before any byte: ask ctl instead (an older daemon; or a path
 * ctl refuses the same way).
 */
static int export_mount_socket(const struct tool_args *a, int fd,
			       const char *rel, struct sink *k,
			       struct tool_error *e)
{
	struct path_answer answer = { k, false };
	struct tool_progress progress;
	char message[256];
	size_t n = strlen(rel) + sizeof("export-path .");
	char *request = malloc(n);

	if (!request) {
		close(fd);
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "out of memory");
	}
	snprintf(request, n, "export-path %s", rel[0] ? rel : ".");
	tool_progress_begin(&progress, "export", a->quiet);
	int err = tool_remote_request(fd, request, export_path_frame, &answer,
				      &progress, message, sizeof(message));
	tool_progress_end(&progress, err == 0);
	close(fd);
	free(request);
	if (err == -EINVAL && !answer.data)
		return -EINVAL;
	if (err == -ECONNRESET || err == -EPROTO)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: the pogfs "
				 "daemon stopped answering", a->operands[0]);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s",
				 a->operands[0], message[0] ? message
				 : pog_strerror(err));
	return 0;
}

static int export_mount(const struct tool_args *a, const char *mnt,
			const char *rel, struct sink *k, struct tool_error *e)
{
	char *command, *answer = NULL;
	int fd;

	/* The paths ctl cannot carry (a newline) go to ctl, which says no. */
	if (!strchr(rel, '\n') && strlen(rel) < 4000 &&
	    tool_remote_connect_mount(mnt, &fd) == 0) {
		int status = export_mount_socket(a, fd, rel, k, e);
		if (status != -EINVAL)
			return status;
	}
	size_t n = strlen(rel) + 16;
	command = malloc(n);
	if (!command)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "out of memory");
	snprintf(command, n, "export %s\n", rel[0] ? rel : ".");
	int err = tool_send_command(mnt, command, &answer);
	free(command);
	if (err || !answer) {
		char why[256] = "";
		if (err)
			tool_last_error(mnt, why, sizeof(why));
		free(answer);
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s%s%s",
				 a->operands[0], err ? strerror(err)
				 : "the daemon gave no document",
				 why[0] ? ": " : "", why);
	}
	err = sink_write(k, answer, strlen(answer));
	free(answer);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s",
				 strerror(-err));
	return 0;
}

int tool_export(const struct tool_args *a, struct tool_error *e)
{
	struct sink k = {0};
	char *tmp, *mnt = NULL, *rel = NULL;
	bool mounted = in_mount(a->operands[0], &mnt, &rel);
	int err = sink_open(a, &k, &tmp);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s",
				 a->output ? a->output : "standard output",
				 strerror(-err));
	/* --commit in a mount: the same path in that commit's tree. */
	if (mounted && a->commit && rel) {
		bool id = a->commit[0] && strspn(a->commit, "0123456789") ==
						  strlen(a->commit);
		size_t n = strlen(a->commit) + strlen(rel) + 32;
		char *view = malloc(n);
		if (view)
			snprintf(view, n, ".pog/%s/%s/%s", id ? "history" : "snapshots",
				 a->commit, rel);
		free(rel);
		rel = view;
		if (!rel)
			mounted = false;
	}
	int status = mounted ? export_mount(a, mnt, rel, &k, e)
			     : export_pool(a, &k, e);
	err = sink_close(a, &k, tmp, status == 0);
	free(mnt);
	free(rel);
	if (!status && err)
		return tool_fail(e, TOOL_EXIT_FAIL, "export", "%s: %s",
				 a->output ? a->output : "standard output",
				 strerror(-err));
	return status;
}

/* ---- import ----------------------------------------------------------------- */

/*
 * The document to import, mapped rather than read into memory: a plain
 * regular file is mapped as it is; anything else (gzip, a pipe) is first
 * copied, decompressed, into an unlinked temporary file, which is mapped.
 * The pages are the kernel's page cache, so memory stays bounded however
 * big the document.
 */
struct document {
	int fd;       /* the file, or the spool */
	char *data;   /* mapped by map_document (NULL: not, or empty) */
	size_t len;
};

static bool is_gzip(int fd)
{
	unsigned char magic[2];
	return pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

/* Copy what gzread gives (gzip decompressed, anything else as it is)
 * from fd into a new unlinked temporary file: its descriptor. */
static int spool(int fd)
{
	const char *dir = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR")
								  : "/tmp";
	int out = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	gzFile gz = gzdopen(dup(fd), "rb");
	char *buf = malloc(1 << 20);
	int err = gz && buf ? 0 : -ENOMEM;
	while (!err) {
		int got = gzread(gz, buf, 1 << 20);
		if (got < 0) {
			err = -EIO;
		} else if (got == 0) {
			break;
		} else {
			for (int done = 0; !err && done < got;) {
				ssize_t w = write(out, buf + done, (size_t)(got - done));
				if (w < 0)
					err = -errno;
				else
					done += (int)w;
			}
		}
	}
	free(buf);
	if (gz)
		gzclose(gz);
	if (err) {
		close(out);
		return err;
	}
	return out;
}

static int open_document(const char *path, struct document *d)
{
	struct stat st;
	d->data = NULL;
	d->len = 0;
	d->fd = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || is_gzip(fd)) {
		int t = spool(fd);
		close(fd);
		if (t < 0)
			return t;
		fd = t;
		if (fstat(fd, &st) != 0) {
			int err = -errno;
			close(fd);
			return err;
		}
	}
	d->fd = fd;
	d->len = (size_t)st.st_size;
	return 0;
}

/* The document in memory (the kernel's page cache): d->data. */
static int map_document(struct document *d)
{
	if (d->data || !d->len)
		return 0;
	void *m = mmap(NULL, d->len, PROT_READ, MAP_PRIVATE, d->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	d->data = m;
	return 0;
}

static void close_document(struct document *d)
{
	if (d->data)
		munmap(d->data, d->len);
	d->data = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static int import_pool(const struct tool_args *a, const char *doc, size_t len,
		       struct tool_error *e)
{
	pog_store *s;
	struct pog_json_error je;
	int status = tool_open_pool(a, 0, &s, e, TOOL_EXIT_FAIL);
	if (status)
		return status;
	struct tool_progress progress;
	tool_progress_begin(&progress, "import", a->quiet);
	int err = pog_import(s, POG_ROOT_INO, NULL, 0, doc, len, (uint32_t)getuid(),
			     (uint32_t)getgid(), &je);
	tool_progress_end(&progress, err == 0);
	if (!err) {
		char msg[300];
		snprintf(msg, sizeof(msg), "import %s", a->operands[1]);
		err = pog_commit(s, msg, NULL);
		if (err)
			snprintf(je.message, sizeof(je.message), "commit: %s",
				 pog_strerror(err));
	}
	tool_close_pool(a, s, e, TOOL_EXIT_FAIL); /* discards a failed import */
	if (err && je.line)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s:%d:%d: %s",
				 a->operands[1], je.line, je.column, je.message);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: %s",
				 a->operands[1], je.message);
	return 0;
}

/*
 * Send "import LENGTH PATH\n" and the document to MNT/.pog/ctl in one
 * write. The daemon may receive it in pieces; a document it refuses
 * fails the piece that completes it, so the write comes back short or
 * failed. Either way the answer on the same open file says why.
 */
static int send_import(const char *mnt, const char *head, size_t hlen,
		       const char *doc, size_t len, char **answer)
{
	char path[PATH_MAX];
	size_t answer_len;
	int err = 0;

	*answer = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/.pog/ctl", mnt) >= sizeof(path))
		return ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	struct iovec iov[2] = {{(void *)head, hlen}, {(void *)doc, len}};
	ssize_t n = writev(fd, iov, len ? 2 : 1);
	if (n < 0)
		err = errno;
	else if ((size_t)n != hlen + len)
		err = EINVAL; /* a later piece was refused */
	(void)lseek(fd, 0, SEEK_SET);
	if (tool_read_all(fd, answer, &answer_len) < 0)
		*answer = NULL;
	close(fd);
	return err;
}

/*
 * Why the daemon refused an import (ctl's answer or the socket's end
 * message): "[error: ][import: ]line L, column C: why" for bad JSON,
 * anything else as it is; err (a positive errno) when it said nothing.
 */
static int import_refused(const struct tool_args *a, char *why, int err,
			  struct tool_error *e)
{
	int line = 0, column = 0, at = 0;
	if (why) {
		why[strcspn(why, "\n")] = '\0';
		if (strncmp(why, "error: ", 7) == 0)
			why += 7;
		if (strncmp(why, "import: ", 8) == 0)
			why += 8;
	}
	if (why && sscanf(why, "line %d, column %d: %n", &line, &column, &at) == 2 && at > 0)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s:%d:%d: %s",
				 a->operands[1], line, column, why + at);
	return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: %s", a->operands[1],
			 why && why[0] ? why : strerror(err));
}

/* Through ctl: "import LENGTH PATH\n" then the document, in one writev
 * (no copy of the document). */
static int import_mount_ctl(const struct tool_args *a, const char *mnt,
			    const char *rel, struct document *d,
			    struct tool_error *e)
{
	int err = map_document(d);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: %s",
				 a->operands[1], strerror(-err));
	size_t hl = strlen(rel) + 48;
	char *head = malloc(hl);
	if (!head)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "out of memory");
	int h = snprintf(head, hl, "import %zu %s\n", d->len, rel[0] ? rel : ".");
	char *answer = NULL;
	err = send_import(mnt, head, (size_t)h, d->data ? d->data : "", d->len,
			  &answer);
	free(head);
	if (err)
		err = import_refused(a, answer, err, e);
	free(answer);
	return err;
}

/* The socket import: the document goes when the daemon says "G". */
struct import_send {
	int sock;
	struct document *d;
	struct tool_progress *progress;
	bool went;     /* "G" came: the daemon took the request */
	int err;       /* sending failed (-errno); its answer tells why */
};

#define SEND_CHUNK (1u << 20)

/* The document's bytes from its file (not mapped: pog stays small). */
static int send_document(struct import_send *s)
{
	char *buf = malloc(SEND_CHUNK);
	size_t sent = 0;
	int err = buf ? 0 : -ENOMEM;

	while (!err && sent < s->d->len) {
		size_t want = s->d->len - sent;
		ssize_t n = pread(s->d->fd, buf, want < SEND_CHUNK ? want
					    : SEND_CHUNK, (off_t)sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO; /* it shrank */
			break;
		}
		for (ssize_t done = 0; !err && done < n;) {
			ssize_t w = send(s->sock, buf + done, (size_t)(n - done),
					 MSG_NOSIGNAL);
			if (w < 0 && errno != EINTR)
				err = -errno;
			else if (w > 0)
				done += w;
		}
		sent += (size_t)n;
		tool_progress_update(s->progress, "bytes sent", sent, s->d->len);
	}
	free(buf);
	return err;
}

static int import_frame(void *ctx, char type, const char *buf, size_t len)
{
	struct import_send *s = ctx;
	(void)buf;
	(void)len;

	if (type != 'G' || s->went)
		return 0;
	s->went = true;
	/* A daemon that stops taking the bytes ends with its reason:
	 * read on for it. */
	s->err = send_document(s);
	if (s->err) /* the daemon sees the end at once, imports nothing */
		shutdown(s->sock, SHUT_WR);
	tool_progress_phase(s->progress);
	return 0;
}

/*
 * The document to PATH in a mount over the daemon's control socket
 * ("import LENGTH REL"): the daemon holds it in a temporary file, not in
 * memory, and sends progress while it imports. -EINVAL or -EACCES
 * before the daemon took the request: ask ctl instead (an older daemon,
 * or a user the socket does not serve).
 */
static int import_mount_socket(const struct tool_args *a, int fd,
			       const char *rel, struct document *d,
			       struct tool_error *e)
{
	struct import_send s = { fd, d, NULL, false, 0 };
	struct tool_progress progress;
	char message[1024];
	size_t n = strlen(rel) + 48;
	char *request = malloc(n);

	if (!request) {
		close(fd);
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "out of memory");
	}
	snprintf(request, n, "import %zu %s", d->len, rel[0] ? rel : ".");
	tool_progress_begin(&progress, "import", a->quiet);
	s.progress = &progress;
	int err = tool_remote_request(fd, request, import_frame, &s, &progress,
				      message, sizeof(message));
	tool_progress_end(&progress, err == 0);
	close(fd);
	free(request);
	if ((err == -EINVAL || err == -EACCES) && !s.went)
		return -EINVAL;
	if (err == -ECONNRESET || err == -EPROTO || err == -EPIPE)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: the pogfs "
				 "daemon stopped answering%s%s",
				 a->operands[1], s.err ? ": " : "",
				 s.err ? strerror(-s.err) : "");
	if (err)
		return import_refused(a, message, -err, e);
	return 0;
}

static int import_mount(const struct tool_args *a, const char *mnt,
			const char *rel, struct document *d,
			struct tool_error *e)
{
	int fd;

	/* The paths ctl cannot carry (a newline) go to ctl, which says no. */
	if (!strchr(rel, '\n') && strlen(rel) < 4000 &&
	    tool_remote_connect_mount(mnt, &fd) == 0) {
		int status = import_mount_socket(a, fd, rel, d, e);
		if (status != -EINVAL)
			return status;
	}
	return import_mount_ctl(a, mnt, rel, d, e);
}

int tool_import(const struct tool_args *a, struct tool_error *e)
{
	struct document d;
	char *mnt = NULL, *rel = NULL;
	int err = open_document(a->operands[1], &d);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: %s",
				 a->operands[1], strerror(-err));
	int status;
	if (in_mount(a->operands[0], &mnt, &rel)) {
		status = import_mount(a, mnt, rel, &d, e);
	} else {
		err = map_document(&d);
		status = err ? tool_fail(e, TOOL_EXIT_FAIL, "import", "%s: %s",
					 a->operands[1], strerror(-err))
			     : import_pool(a, d.data ? d.data : "", d.len, e);
	}
	close_document(&d);
	free(mnt);
	free(rel);
	return status;
}
