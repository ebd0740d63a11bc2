/* history.c - pog keep, pog diff, and --commit: retained commits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tool.h"

/* An id, strictly decimal. */
static bool parse_id(const char *arg, uint64_t *id)
{
	char *end;
	if (!arg[0] || strspn(arg, "0123456789") != strlen(arg))
		return false;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || *end || !v)
		return false;
	*id = v;
	return true;
}

/* A commit named by an id, a snapshot name or "staged" (the last commit
 * of a pool, which has nothing staged offline). */
static int commit_arg(pog_store *s, const char *arg, uint64_t *id)
{
	struct pog_status st;
	if (strcmp(arg, "staged") == 0) {
		int err = pog_status(s, &st);
		*id = st.commit_id;
		return err;
	}
	if (parse_id(arg, id))
		return pog_retained(s, *id) ? 0 : -ENOENT;
	return pog_snapshot_find(s, arg, strlen(arg), id);
}

int tool_commit_root(pog_store *s, const char *arg, uint64_t *root)
{
	uint64_t id;
	int err = commit_arg(s, arg, &id);
	return err ? err : pog_history_root(s, id, root);
}

int tool_keep(const struct tool_args *a, struct tool_error *e)
{
	unsigned long n = 0;
	if (a->operand_count > 1) {
		char *end;
		errno = 0;
		n = strtoul(a->operands[1], &end, 10);
		if (errno || *end || n < 1 || n > POG_KEEP_MAX)
			return tool_fail(e, TOOL_EXIT_USAGE, "keep", "N must be "
					 "between 1 and %u", POG_KEEP_MAX);
	}
	pog_store *s;
	int status = tool_open_pool(a, n ? 0 : POG_OPEN_READONLY, &s, e,
				    TOOL_EXIT_FAIL);
	if (status)
		return status;
	int err = n ? pog_set_keep(s, (unsigned)n) : 0;
	uint64_t *ids = NULL;
	size_t count = 0;
	if (!err && !n)
		err = pog_history(s, &ids, &count);
	if (!err && !n) {
		printf("keep: %u\nretained:", pog_keep(s));
		for (size_t i = 0; i < count; i++)
			printf(" %" PRIu64, ids[i]);
		printf("\n");
	}
	free(ids);
	status = tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "keep", "%s: %s",
				 a->operands[0], pog_strerror(err));
	return status;
}

/* ---- diff ----------------------------------------------------------------- */

struct diff_out {
	const char *under; /* PATH, "" for all */
	bool json;
	cJSON *array;
};

/* At or under PATH (both escaped as .pog/changes writes them). */
static bool wanted(const struct diff_out *o, const char *path)
{
	size_t n = strlen(o->under);
	if (!n || (n == 1 && o->under[0] == '.'))
		return true;
	return strncmp(path, o->under, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int emit(struct diff_out *o, char kind, const char *path)
{
	if (!wanted(o, path))
		return 0;
	if (!o->json) {
		printf("%c %s\n", kind, path);
		return 0;
	}
	cJSON *line = cJSON_CreateObject();
	char k[2] = {kind, '\0'};
	if (!line || !cJSON_AddStringToObject(line, "change", k) ||
	    !cJSON_AddStringToObject(line, "path", path)) {
		cJSON_Delete(line);
		return -ENOMEM;
	}
	cJSON_AddItemToArray(o->array, line);
	return 0;
}

/* A line of the core's diff, escaped as .pog/changes escapes it. */
static int pool_line(void *ctx, char kind, const char *path)
{
	size_t n = strlen(path);
	char *esc = malloc(2 * n + 2);
	if (!esc)
		return -ENOMEM;
	char *p = esc;
	if (!n)
		*p++ = '.';
	for (size_t i = 0; i < n; i++) {
		if (path[i] == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else if (path[i] == '\\') {
			*p++ = '\\';
			*p++ = '\\';
		} else {
			*p++ = path[i];
		}
	}
	*p = '\0';
	int err = emit(ctx, kind, esc);
	free(esc);
	return err;
}

static int diff_pool(const struct tool_args *a, struct diff_out *o,
		     struct tool_error *e)
{
	pog_store *s;
	int status = tool_open_pool(a, POG_OPEN_READONLY, &s, e, TOOL_EXIT_FAIL);
	if (status)
		return status;
	uint64_t ida, idb;
	int err = commit_arg(s, a->operands[1], &ida);
	if (!err)
		err = commit_arg(s, a->operands[2], &idb);
	if (err == -ENOENT) {
		tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
		return tool_fail(e, TOOL_EXIT_FAIL, "diff", "%s: %s %s: not "
				 "retained commits (pog keep %s lists them)",
				 a->operands[0], a->operands[1], a->operands[2],
				 a->operands[0]);
	}
	if (!err)
		err = pog_diff(s, ida, idb, pool_line, o);
	status = tool_close_pool(a, s, e, TOOL_EXIT_FAIL);
	if (err)
		return tool_fail(e, TOOL_EXIT_FAIL, "diff", "%s: %s",
				 a->operands[0], pog_strerror(err));
	return status;
}

static int diff_mount(const struct tool_args *a, const char *mnt,
		      struct diff_out *o, struct tool_error *e)
{
	char command[1024], *answer = NULL;
	if (strlen(a->operands[1]) + strlen(a->operands[2]) > 400)
		return tool_fail(e, TOOL_EXIT_USAGE, "diff", "commit names too long");
	snprintf(command, sizeof(command), "diff %s %s\n", a->operands[1],
		 a->operands[2]);
	int err = tool_send_command(mnt, command, &answer);
	if (err) {
		char why[256] = "";
		tool_last_error(mnt, why, sizeof(why));
		free(answer);
		return tool_fail(e, TOOL_EXIT_FAIL, "diff", "%s: %s", mnt,
				 why[0] ? why : strerror(err));
	}
	for (char *line = answer, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strlen(line) > 2 && line[1] == ' ' && !err)
			err = emit(o, line[0], line + 2);
	}
	free(answer);
	return err ? tool_fail(e, TOOL_EXIT_FAIL, "diff", "out of memory") : 0;
}

int tool_diff(const struct tool_args *a, struct tool_error *e)
{
	struct diff_out o = {a->operand_count > 3 ? a->operands[3] : "", a->json,
			     NULL};
	char *mnt = NULL;
	int status;
	if (o.json && !(o.array = cJSON_CreateArray()))
		return tool_fail(e, TOOL_EXIT_FAIL, "diff", "out of memory");
	if (tool_mount_root(a->operands[0], &mnt) == 0)
		status = diff_mount(a, mnt, &o, e);
	else
		status = diff_pool(a, &o, e);
	free(mnt);
	if (o.json && status == 0) {
		char *text = cJSON_Print(o.array);
		if (!text)
			status = tool_fail(e, TOOL_EXIT_FAIL, "diff", "out of memory");
		else
			printf("%s\n", text);
		free(text);
	}
	cJSON_Delete(o.array);
	return status;
}
