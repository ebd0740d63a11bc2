/* path.c - objects' paths, resolving paths, symlink text and refs. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "object_int.h"

ssize_t pog_path_locked(pog_store *s, const struct pog_state *st, uint64_t ino,
			char *buf, size_t size)
{
	char tmp[4096];
	size_t end = sizeof(tmp); /* components are built right to left */
	int depth = 0;
	while (ino != POG_ROOT_INO) {
		const struct pog_inode *in, *p;
		if (++depth > 2048 || pog_inode_get(s, st, ino, &in))
			return -ENOENT;
		uint64_t parent = in->parent, key = in->parent_key;
		if (!parent || pog_inode_get(s, st, parent, &p))
			return -ENOENT;
		const void *val;
		uint16_t vlen;
		uint64_t child;
		if (pog_bt_get(s, p->content, key, &val, &vlen))
			return -ENOENT;
		memcpy(&child, val, sizeof(child));
		if (child != ino)
			return -ENOENT;
		char name[256];
		struct pog_list_names nm;
		ssize_t n = p->type != POG_LIST
			? pog_entry_name(p->type, key, val, vlen, name, sizeof(name))
			: pog_list_names_init(&nm, s, st, parent, p)
			? -ENOENT
			: pog_list_entry_name(&nm, key, val, vlen, name, sizeof(name));
		if (n < 0 || (size_t)n + 1 > end)
			return -ENAMETOOLONG;
		if (end != sizeof(tmp))
			tmp[--end] = '/';
		end -= (size_t)n;
		memcpy(tmp + end, name, (size_t)n);
		ino = parent;
	}
	size_t len = sizeof(tmp) - end;
	memcpy(buf, tmp + end, len < size ? len : size);
	if (len < size)
		buf[len] = '\0';
	return (ssize_t)len;
}

ssize_t pog_path(pog_store *s, uint64_t ino, char *buf, size_t size)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	const struct pog_state *st = pog_view(s, &ino);
	ssize_t r = pog_path_locked(s, st, ino, buf, size);
	pog_unlock(s);
	return r;
}

/* Split a root-relative path into components (in place). */
static size_t split_path(char *path, char **parts, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(path, "/", &save); tok && n < max;
	     tok = strtok_r(NULL, "/", &save))
		parts[n++] = tok;
	return n;
}

/* Relative path from directory `from` to `to` (both root-relative). */
static ssize_t relative_path(const char *from, const char *to, char *buf,
			     size_t size)
{
	char f[4096], t[4096], out[8192];
	char *fp[2048], *tp[2048];
	snprintf(f, sizeof(f), "%s", from);
	snprintf(t, sizeof(t), "%s", to);
	size_t fn = split_path(f, fp, 2048), tn = split_path(t, tp, 2048);
	size_t common = 0, len = 0;
	while (common < fn && common < tn && strcmp(fp[common], tp[common]) == 0)
		common++;
	for (size_t i = common; i < fn; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "../");
	for (size_t i = common; i < tn && len < sizeof(out); i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s/", tp[i]);
	if (len >= sizeof(out))
		return -ENAMETOOLONG;
	if (len == 0)
		out[len++] = '.';
	else
		len--; /* the trailing '/' */
	memcpy(buf, out, len < size ? len : size);
	return (ssize_t)len;
}

ssize_t pog_readlink_locked(pog_store *s, const struct pog_state *st,
			    uint64_t ino, const struct pog_inode *in,
			    char *buf, size_t size)
{
	if (in->type == POG_SYMLINK) {
		char tmp[POG_SYMLINK_MAX + 1];
		ssize_t n = pog_data_read(s, in, 0, tmp, sizeof(tmp));
		if (n < 0)
			return n;
		memcpy(buf, tmp, (size_t)n < size ? (size_t)n : size);
		return n;
	}
	if (in->type != POG_REF)
		return -EINVAL;
	char from[4096], to[4096];
	ssize_t fl = 0, tl;
	if (in->parent) {
		fl = pog_path_locked(s, st, in->parent, from, sizeof(from) - 1);
		if (fl < 0)
			fl = 0;
	}
	from[fl] = '\0';
	(void)ino;
	tl = pog_path_locked(s, st, in->content, to, sizeof(to) - 1);
	if (tl < 0)
		tl = snprintf(to, sizeof(to), ".pog/objects/%" PRIu64, in->content);
	else
		to[tl] = '\0';
	return relative_path(from, to, buf, size);
}

ssize_t pog_readlink(pog_store *s, uint64_t ino, char *buf, size_t size)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	ssize_t r = pog_readlink_locked(s, st, ino, in, buf, size);
	pog_unlock(s);
	return r;
}

int pog_ref_target(pog_store *s, uint64_t ino, uint64_t *target)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	if (in->type != POG_REF)
		err = -EINVAL;
	else
		*target = in->content;
	pog_unlock(s);
	return err;
}

int pog_resolve(pog_store *s, uint64_t dir, const char *path, uint64_t *ino)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	const struct pog_state *st = pog_view(s, &dir);
	err = pog_resolve_locked(s, st, dir, path, ino);
	pog_unlock(s);
	return err;
}

int pog_resolve_locked(pog_store *s, const struct pog_state *st, uint64_t dir,
		       const char *path, uint64_t *ino)
{
	int err = 0;
	uint64_t cur = dir;
	const char *p = path;
	while (!err && *p) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		const struct pog_inode *in;
		err = pog_inode_get(s, st, cur, &in);
		if (err)
			break;
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* stay */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (cur == POG_ROOT_INO)
				err = -EXDEV;
			else if (!in->parent)
				err = -ENOENT;
			else
				cur = in->parent;
		} else {
			char key[POG_KEY_MAX + 1];
			uint64_t k, child;
			ssize_t kl = len > 255 ? -ENAMETOOLONG
				: pog_name_unescape(p, len, key, sizeof(key));
			if (kl < 0)
				err = (int)kl;
			else if (in->type == POG_REF || in->type == POG_SYMLINK)
				err = -ENOENT; /* links are not followed */
			else
				err = pog_dir_find(s, cur, st, in, key, (size_t)kl, &k,
						   &child);
			if (!err)
				cur = child;
		}
		p = *e ? e + 1 : e;
	}
	if (!err)
		*ino = cur;
	return err;
}

int pog_set_ref_target(pog_store *s, uint64_t ino, uint64_t target)
{
	if ((ino | target) & POG_COMMITTED_BIT)
		return -EROFS;
	int err = pog_begin_change(s, POG_SPACE_KEEP, 0);
	if (err)
		return err;
	struct pog_inode in;
	const struct pog_inode *t;
	err = pog_inode_load(s, ino, &in);
	if (!err && in.type != POG_REF)
		err = -EINVAL;
	if (!err)
		err = pog_inode_get(s, &s->staged, target, &t);
	if (!err) {
		in.content = target;
		err = pog_object_changed(s, ino, &in, false, true);
	}
	if (!err)
		pog_edit_ref(s, ino, target);
	pog_unlock(s);
	return err;
}
