/* history.c - .pog/history/<id>/ and .pog/snapshots/<name>/: retained
 * commits as read-only trees (SPEC 5a). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pogfs.h"

static struct pogfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A decimal commit id, strictly. */
static bool parse_id(const char *name, size_t len, uint64_t *out)
{
	char buf[24], *end;

	if (!len || len >= sizeof(buf) || !isdigit((unsigned char)name[0]) ||
	    (name[0] == '0' && len > 1))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || *end || v == 0)
		return false;
	*out = v;
	return true;
}

/* The commit a directory entry names: an id under history/, a snapshot
 * name (escaped as a key) under snapshots/. */
static int entry_commit(struct pogfs *fs, uint64_t parent, const char *name,
			size_t len, uint64_t *id)
{
	if (parent == VINO_HISTORY)
		return parse_id(name, len, id) && pog_retained(fs->store, *id)
			       ? 0 : -ENOENT;
	char key[POG_KEY_MAX + 1];
	ssize_t kl = pog_name_unescape(name, len, key, sizeof(key));
	if (kl < 0)
		return (int)kl;
	return pog_snapshot_find(fs->store, key, (size_t)kl, id);
}

void history_lookup(fuse_req_t req, uint64_t parent, const char *name)
{
	struct pogfs *fs = fs_of(req);
	size_t len = strlen(name);
	uint64_t id, root;
	struct pog_attr a;
	int rc = entry_commit(fs, parent, name, len, &id);

	if (rc == 0)
		rc = pog_history_root(fs->store, id, &root);
	if (rc == 0)
		rc = pog_getattr(fs->store, root, &a);
	if (rc < 0)
		fuse_reply_err(req, pogfs_errno(rc));
	else
		pogfs_reply_entry(req, parent, name, len, &a);
}

struct dirent_list {
	char **names;
	size_t n, cap;
};

static int list_add(struct dirent_list *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **v = realloc(l->names, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->names = v;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	return l->names[l->n++] ? 0 : -ENOMEM;
}

static int snap_name(void *ctx, const char *name, size_t len, uint64_t id)
{
	char esc[POGFS_NAME_MAX + 1];
	(void)id;
	ssize_t n = pog_name_escape(name, len, esc, sizeof(esc));
	if (n < 0 || (size_t)n >= sizeof(esc))
		return 0; /* a name no file name can carry */
	esc[n] = '\0';
	return list_add(ctx, esc);
}

static int list_entries(struct pogfs *fs, uint64_t ino, struct dirent_list *l)
{
	int rc = list_add(l, ".");
	if (!rc)
		rc = list_add(l, "..");
	if (rc)
		return rc;
	if (ino == VINO_SNAPSHOTS)
		return pog_snapshots(fs->store, snap_name, l);
	uint64_t *ids;
	size_t n;
	rc = pog_history(fs->store, &ids, &n);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < n; i++) {
		char num[24];
		snprintf(num, sizeof(num), "%" PRIu64, ids[i]);
		rc = list_add(l, num);
	}
	free(ids);
	return rc;
}

/* Entries carry no attributes (as .pog/committed in .pog): the kernel
 * looks each one up, which gives the view its numbers. */
size_t history_readdir(fuse_req_t req, uint64_t ino, char *buf, size_t size,
		       off_t off, bool plus)
{
	struct pogfs *fs = fs_of(req);
	struct dirent_list l = {0};
	size_t used = 0;

	if (list_entries(fs, ino, &l) == 0) {
		for (size_t i = (size_t)(off > 0 ? off : 0); i < l.n; i++) {
			struct fuse_entry_param e;
			size_t need;

			memset(&e, 0, sizeof(e));
			e.attr.st_ino = i == 0 ? ino : i == 1 ? VINO_POG : VINO_BASE;
			e.attr.st_mode = S_IFDIR | 0555;
			if (plus)
				need = fuse_add_direntry_plus(req, buf + used, size - used,
							      l.names[i], &e, (off_t)(i + 1));
			else
				need = fuse_add_direntry(req, buf + used, size - used,
							 l.names[i], &e.attr, (off_t)(i + 1));
			if (need > size - used)
				break;
			used += need;
		}
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	return used;
}

int history_view_path(struct pogfs *fs, const char *rel, uint64_t *root,
		      const char **rest)
{
	static const char hist[] = "history/", snaps[] = "snapshots/";
	uint64_t parent, id;
	const char *name;

	if (strncmp(rel, hist, sizeof(hist) - 1) == 0) {
		parent = VINO_HISTORY;
		name = rel + sizeof(hist) - 1;
	} else if (strncmp(rel, snaps, sizeof(snaps) - 1) == 0) {
		parent = VINO_SNAPSHOTS;
		name = rel + sizeof(snaps) - 1;
	} else {
		return -ENOENT;
	}
	size_t len = strcspn(name, "/");
	int rc = entry_commit(fs, parent, name, len, &id);
	if (rc == 0)
		rc = pog_history_root(fs->store, id, root);
	if (rc == 0) {
		name += len;
		while (*name == '/')
			name++;
		*rest = name;
	}
	return rc;
}

int history_commit_arg(struct pogfs *fs, const char *arg, uint64_t *id)
{
	if (strcmp(arg, "staged") == 0) {
		*id = POG_DIFF_STAGED;
		return 0;
	}
	if (parse_id(arg, strlen(arg), id))
		return pog_retained(fs->store, *id) ? 0 : -ENOENT;
	char key[POG_KEY_MAX + 1];
	ssize_t kl = pog_name_unescape(arg, strlen(arg), key, sizeof(key));
	if (kl < 0)
		return (int)kl;
	return pog_snapshot_find(fs->store, key, (size_t)kl, id);
}
