/* mount.c - the pog subcommands that talk to a mounted store via MNT/.pog. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tool.h"

/* "MNT/.pog/LEAF" into buf; -ENAMETOOLONG when it does not fit. */
static int control_path(const char *mnt, const char *leaf, char *buf,
			size_t size)
{
	int n = snprintf(buf, size, "%s/.pog/%s", mnt, leaf);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Why MNT/.pog/LEAF could not be opened (errno err), as one phrase. */
static const char *control_open_reason(const char *mnt, int err,
				       char *buf, size_t size)
{
	struct stat st;

	if (stat(mnt, &st) < 0)
		snprintf(buf, size, "%s", strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		snprintf(buf, size, "not a directory");
	else if (err == ENOENT)
		snprintf(buf, size, "not a pogfs mount (no .pog control "
				    "directory)");
	else if (err == ENOTCONN)
		snprintf(buf, size, "%s (the pogfs daemon is gone; "
				    "fusermount3 -u it)", strerror(err));
	else
		snprintf(buf, size, "%s", strerror(err));
	return buf;
}

/* Does dir hold .pog/ctl? */
static bool has_control(const char *dir)
{
	char probe[PATH_MAX + 16];

	snprintf(probe, sizeof(probe), "%s/.pog/ctl", strcmp(dir, "/") ? dir : "");
	return access(probe, F_OK) == 0;
}

int tool_mount_root(const char *path, char **root)
{
	char *dir = realpath(path, NULL), *found = NULL;
	struct stat st, up;

	if (!dir)
		return -errno;
	if (stat(dir, &st) != 0) {
		int err = -errno;
		free(dir);
		return err;
	}
	if (!S_ISDIR(st.st_mode)) { /* a file inside: its directory */
		char *slash = strrchr(dir, '/');
		slash[slash == dir ? 1 : 0] = '\0';
	}
	/*
	 * Walk up while the device stays the same, and take the topmost
	 * directory with .pog/ctl: the mount's root (a map inside may have
	 * its own ".pog" entry; only the root's is the control directory).
	 */
	for (;;) {
		if (has_control(dir)) {
			free(found);
			found = strdup(dir);
			if (!found)
				break;
		}
		if (strcmp(dir, "/") == 0)
			break;
		char *slash = strrchr(dir, '/');
		char keep = slash[slash == dir ? 1 : 0];
		slash[slash == dir ? 1 : 0] = '\0';
		if (stat(dir, &up) != 0 || up.st_dev != st.st_dev) {
			slash[slash == dir ? 1 : 0] = keep;
			break;
		}
	}
	free(dir);
	if (!found)
		return -ENOENT;
	*root = found;
	return 0;
}

/* Read MNT/.pog/status whole (caller frees *text). Returns 0 or -errno. */
static int read_status(const char *mnt, char **text, size_t *len)
{
	char path[4096];
	int fd, err;

	err = control_path(mnt, "status", path, sizeof(path));
	if (err < 0)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = tool_read_all(fd, text, len);
	close(fd);
	return err;
}

/* The "last_error" of MNT/.pog/status into buf ("" when none or unknown). */
static void last_error(const char *mnt, char *buf, size_t size)
{
	const cJSON *item;
	cJSON *json;
	char *text;
	size_t len;

	buf[0] = '\0';
	if (read_status(mnt, &text, &len) < 0)
		return;
	json = cJSON_ParseWithLength(text, len);
	free(text);
	if (!json)
		return;
	item = cJSON_GetObjectItemCaseSensitive(json, "last_error");
	if (cJSON_IsString(item) && item->valuestring)
		snprintf(buf, size, "%s", item->valuestring);
	cJSON_Delete(json);
}

/* Strip trailing newlines and blanks in place. */
static void chomp(char *text)
{
	size_t len = strlen(text);

	while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' ||
		       text[len - 1] == '\r'))
		text[--len] = '\0';
}

/*
 * Write command (one write, as `echo command > ctl` does) to MNT/.pog/ctl
 * and read back the daemon's answer on the same open file when it gives
 * one (*answer, freed by the caller, may be NULL).
 * Returns 0, or a positive errno when the open or the write failed.
 */
int tool_send_command(const char *mnt, const char *command, char **answer)
{
	char path[4096];
	size_t len = strlen(command), answer_len;
	ssize_t n;
	int fd, err = 0;

	*answer = NULL;
	if (control_path(mnt, "ctl", path, sizeof(path)) < 0)
		return ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = write(fd, command, len);
	if (n < 0)
		err = errno;
	else if ((size_t)n != len)
		err = EIO;
	else {
		/* The answer is optional (a write-only ctl has none); ctl
		 * may also be unseekable, so a failed lseek is no error. */
		(void)lseek(fd, 0, SEEK_SET);
		if (tool_read_all(fd, answer, &answer_len) < 0)
			*answer = NULL;
	}
	close(fd);
	return err;
}

/* Show the daemon's answer ("commit ID CHANGES", "abort CHANGES") in
 * words; anything else as it came. */
static void print_answer(char *answer)
{
	unsigned long long id, changes;
	int end = 0;

	chomp(answer);
	if (sscanf(answer, "commit %llu %llu%n", &id, &changes, &end) == 2 &&
	    answer[end] == '\0')
		printf("commit %llu: %llu change%s\n", id, changes,
		       changes == 1 ? "" : "s");
	else if (sscanf(answer, "abort %llu%n", &changes, &end) == 1 &&
		 answer[end] == '\0')
		printf("aborted: %llu staged change%s discarded\n", changes,
		       changes == 1 ? "" : "s");
	else if (answer[0])
		printf("%s\n", answer);
}

/* Join words with single spaces into buf; -E2BIG when too long. */
static int join_words(char **words, int count, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < count; i++) {
		size_t len = strlen(words[i]);

		if (used + (i ? 1 : 0) + len >= size)
			return -E2BIG;
		if (i)
			buf[used++] = ' ';
		memcpy(buf + used, words[i], len + 1);
		used += len;
	}
	return 0;
}

/*
 * The root of the mount named by the first operand (any path inside it;
 * "." when none is given) into *mnt (free it); fills e on failure.
 */
static int find_root(const struct tool_args *a, char **mnt,
		     struct tool_error *e)
{
	const char *path = a->operand_count ? a->operands[0] : ".";
	char what[512], reason[512];
	int err = tool_mount_root(path, mnt);

	if (err == 0)
		return 0;
	snprintf(what, sizeof(what), "%s %s", a->command, path);
	return tool_fail(e, TOOL_EXIT_FAIL, what, "%s",
			 control_open_reason(path, -err, reason,
					     sizeof(reason)));
}

/* Send "commit [message]" or "abort" and report like the shell would. */
static int run_control(const struct tool_args *a, const char *command,
		       struct tool_error *e)
{
	char *mnt;
	char what[512], reason[512], why[256];
	char line[POG_MESSAGE_MAX + 16];
	char *answer;
	int err = find_root(a, &mnt, e);

	if (err)
		return err;
	snprintf(what, sizeof(what), "%s %s", a->command, mnt);
	snprintf(line, sizeof(line), "%s", command);
	if (a->operand_count > 1) {
		char message[POG_MESSAGE_MAX + 1];

		if (join_words(a->operands + 1, a->operand_count - 1, message,
			       sizeof(message)) < 0)
			err = tool_fail(e, TOOL_EXIT_USAGE, what,
					"message longer than %d bytes",
					POG_MESSAGE_MAX);
		else if (strpbrk(message, "\n\r"))
			err = tool_fail(e, TOOL_EXIT_USAGE, what,
					"message must be one line");
		if (err) {
			free(mnt);
			return err;
		}
		snprintf(line, sizeof(line), "%s %s", command, message);
	}
	strcat(line, "\n");
	err = tool_send_command(mnt, line, &answer);
	if (err == ENOENT || err == ENOTDIR || err == ENOTCONN) {
		err = tool_fail(e, TOOL_EXIT_FAIL, what, "%s",
				control_open_reason(mnt, err, reason,
						    sizeof(reason)));
	} else if (err) {
		last_error(mnt, why, sizeof(why));
		err = tool_fail(e, TOOL_EXIT_FAIL, what, "%s%s%s",
				strerror(err), why[0] ? ": " : "", why);
	} else if (answer) {
		print_answer(answer);
		free(answer);
	}
	free(mnt);
	return err ? err : TOOL_EXIT_OK;
}

int tool_commit(const struct tool_args *a, struct tool_error *e)
{
	return run_control(a, "commit", e);
}

int tool_abort(const struct tool_args *a, struct tool_error *e)
{
	return run_control(a, "abort", e);
}

int tool_status(const struct tool_args *a, struct tool_error *e)
{
	char *mnt;
	char what[512], reason[512];
	char *text;
	size_t len;
	int err = find_root(a, &mnt, e);

	if (err)
		return err;
	snprintf(what, sizeof(what), "%s %s", a->command, mnt);
	err = read_status(mnt, &text, &len);
	if (err < 0) {
		err = tool_fail(e, TOOL_EXIT_FAIL, what, "%s",
				control_open_reason(mnt, -err, reason,
						    sizeof(reason)));
		free(mnt);
		return err;
	}
	free(mnt);
	fwrite(text, 1, len, stdout);
	if (len && text[len - 1] != '\n')
		putchar('\n');
	free(text);
	return TOOL_EXIT_OK;
}

void tool_last_error(const char *mnt, char *buf, size_t size)
{
	last_error(mnt, buf, size);
}

/* ---- pog stat ------------------------------------------------------------- */

/*
 * The mount that holds path, and path below its root, without following a
 * symlink at its end (pog stat shows the link itself). *mnt and *rel are
 * malloc'ed. Returns 0, or an errno.
 */
static int stat_where(const char *path, char **mnt, char **rel)
{
	char *copy = strdup(path), *base, *real = NULL;
	const char *dir;
	struct stat st;
	int err = 0;

	if (!copy)
		return ENOMEM;
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/';)
		copy[--n] = '\0';
	base = strrchr(copy, '/');
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && strcmp(copy, "/")) {
		/* the directory that holds the link, and the link's name */
		dir = base ? (base == copy ? "/" : copy) : ".";
		if (base)
			*base++ = '\0';
		else
			base = copy;
		char *parent = realpath(dir, NULL);
		if (parent) {
			size_t n = strlen(parent) + strlen(base) + 2;
			real = malloc(n);
			if (real)
				snprintf(real, n, "%s/%s",
					 strcmp(parent, "/") ? parent : "", base);
		}
		free(parent);
	} else {
		real = realpath(path, NULL);
	}
	if (!real) {
		err = errno ? errno : ENOMEM;
		free(copy);
		return err;
	}
	free(copy);
	/* Up from the object's directory to the first with .pog/ctl. */
	size_t len = strlen(real);
	if (lstat(real, &st) == 0 && S_ISLNK(st.st_mode))
		len = (size_t)(strrchr(real, '/') - real);
	for (;;) {
		char probe[PATH_MAX + 16];
		snprintf(probe, sizeof(probe), "%.*s/.pog/ctl", (int)len, real);
		if (access(probe, F_OK) == 0)
			break;
		char *slash = len ? memrchr(real, '/', len) : NULL;
		if (!slash) {
			free(real);
			return EXDEV;
		}
		len = (size_t)(slash - real);
	}
	*mnt = strndup(real, len ? len : 1);
	*rel = strdup(real[len] ? real + len + 1 : ".");
	free(real);
	if (!*mnt || !*rel) {
		free(*mnt);
		free(*rel);
		return ENOMEM;
	}
	return 0;
}

/* One "name: value" line of the human form. */
static void stat_line(const char *name, const cJSON *item)
{
	if (cJSON_IsString(item))
		printf("%-7s %s\n", name, item->valuestring);
	else if (cJSON_IsNumber(item))
		printf("%-7s %.0f\n", name, item->valuedouble);
	else if (cJSON_IsNull(item))
		printf("%-7s (no owning place)\n", name);
}

static void stat_print(const cJSON *o)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target");
	static const char *const fields[] = { "path", "type", "ino", "hash",
					      "nlink", "size", "view", "link" };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		stat_line(fields[i], cJSON_GetObjectItemCaseSensitive(o, fields[i]));
	if (cJSON_IsObject(t)) {
		const cJSON *ino = cJSON_GetObjectItemCaseSensitive(t, "ino");
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(t, "path");
		printf("%-7s %.0f %s\n", "target",
		       cJSON_IsNumber(ino) ? ino->valuedouble : 0.0,
		       cJSON_IsString(path) ? path->valuestring
					    : "(no owning place)");
	}
}

int tool_stat(const struct tool_args *a, struct tool_error *e)
{
	const char *path = a->operands[0];
	char *mnt = NULL, *rel = NULL, *command = NULL, *answer = NULL;
	char why[256], reason[512];
	int status = TOOL_EXIT_OK;
	int err = stat_where(path, &mnt, &rel);

	if (err == EXDEV)
		return tool_fail(e, TOOL_EXIT_FAIL, "stat", "%s: not inside a "
				 "pogfs mount", path);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "stat", "%s: %s", path,
				 strerror(err));
	size_t n = strlen(rel) + 8;
	command = malloc(n);
	if (!command) {
		status = tool_fail(e, TOOL_EXIT_FAIL, "stat", "out of memory");
		goto out;
	}
	snprintf(command, n, "stat %s\n", rel);
	err = tool_send_command(mnt, command, &answer);
	if (err == ENOENT || err == ENOTDIR || err == ENOTCONN) {
		status = tool_fail(e, TOOL_EXIT_FAIL, "stat", "%s: %s", path,
				   control_open_reason(mnt, err, reason,
						       sizeof(reason)));
		goto out;
	}
	if (err || !answer) {
		last_error(mnt, why, sizeof(why));
		status = tool_fail(e, TOOL_EXIT_FAIL, "stat", "%s: %s", path,
				   why[0] ? why : err ? strerror(err)
				   : "the daemon gave no answer");
		goto out;
	}
	if (a->json) {
		fputs(answer, stdout);
		goto out;
	}
	cJSON *o = cJSON_Parse(answer);
	if (!o) {
		status = tool_fail(e, TOOL_EXIT_FAIL, "stat", "%s: the daemon's "
				   "answer is not JSON", path);
		goto out;
	}
	stat_print(o);
	cJSON_Delete(o);
out:
	free(command);
	free(answer);
	free(mnt);
	free(rel);
	return status;
}
