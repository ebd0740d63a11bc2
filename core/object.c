/* object.c - making, linking, removing objects; walks for GC and fsck. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "object_int.h"

static int new_inode(pog_store *s, const struct pog_new *spec,
		     struct pog_inode *in)
{
	memset(in, 0, sizeof(*in));
	uint32_t perm = spec->mode & 07777;
	in->type = spec->type;
	in->uid = spec->uid;
	in->gid = spec->gid;
	in->nlink = 1;
	switch (spec->type) {
	case POG_MAP:
	case POG_LIST:
		in->mode = S_IFDIR | perm;
		in->nlink = 2;
		break;
	case POG_STRING:
		in->mode = S_IFREG | perm;
		break;
	case POG_REF: {
		const struct pog_inode *t;
		int err = pog_inode_get(s, &s->staged, spec->ref_target, &t);
		if (err)
			return err == -ENOENT ? -ENOENT : err;
		in->mode = S_IFLNK | 0777;
		in->content = spec->ref_target;
		break;
	}
	case POG_SYMLINK:
		in->mode = S_IFLNK | 0777;
		break;
	case POG_SPECIAL: {
		uint32_t fmt = spec->mode & S_IFMT;
		if (fmt != S_IFIFO && fmt != S_IFCHR && fmt != S_IFBLK &&
		    fmt != S_IFSOCK)
			return -EINVAL;
		in->mode = fmt | perm;
		in->rdev = spec->rdev;
		break;
	}
	default:
		return -EINVAL;
	}
	struct pog_time t = pog_now();
	in->atime_sec = in->mtime_sec = in->ctime_sec = t.sec;
	in->atime_nsec = in->mtime_nsec = in->ctime_nsec = t.nsec;
	return 0;
}

int pog_mknode(pog_store *s, uint64_t dir, const char *name, size_t len,
	       const struct pog_new *spec, struct pog_attr *out)
{
	int err = pog_check_name(len);
	if (err)
		return err;
	if (spec->type == POG_SYMLINK &&
	    (!spec->text || strlen(spec->text) > POG_SYMLINK_MAX))
		return spec->text ? -ENAMETOOLONG : -EINVAL;
	if (dir & POG_COMMITTED_BIT)
		return -EROFS;
	err = pog_begin_change(s, POG_SPACE_GROW, 0);
	if (err)
		return err;
	struct pog_inode d, c;
	uint64_t key, ino = s->env->next_ino;
	err = pog_inode_load(s, dir, &d);
	if (!err)
		err = pog_entry_slot(s, dir, &d, name, len, &key);
	if (!err)
		err = new_inode(s, spec, &c);
	if (!err && spec->type == POG_SYMLINK) {
		size_t tl = strlen(spec->text);
		err = pog_data_write(s, &c, 0, spec->text, tl);
		c.size = tl;
		if (!err && !(c.flags & POG_INODE_INLINE))
			pog_note_change(s, ino, POG_CHG_PAGES);
	}
	if (!err) {
		c.parent = dir;
		c.parent_key = key;
		err = pog_inode_put(s, ino, &c);
	}
	if (!err)
		err = pog_entry_insert(s, dir, &d, key, ino, name, len);
	if (!err) {
		if (pog_is_dir_type(c.type))
			d.nlink++;
		pog_stamp(&d, true);
		err = pog_inode_put(s, dir, &d);
	}
	if (!err) {
		s->env->next_ino++;
		s->staged.nobjects++;
		pog_hash_entry_changed(s, dir, key);
		pog_note_added(s, ino, dir);
		pog_note_change(s, dir, POG_CHG_MODIFIED);
		if (c.type == POG_REF)
			pog_edit_ref(s, ino, c.content);
		pog_fill_attr(s, &s->staged, ino, &c, out);
	}
	pog_unlock(s);
	return err;
}

int pog_link(pog_store *s, uint64_t ino, uint64_t dir, const char *name,
	     size_t len, struct pog_attr *out)
{
	int err = pog_check_name(len);
	if (err)
		return err;
	if ((dir | ino) & POG_COMMITTED_BIT)
		return -EROFS;
	err = pog_begin_change(s, POG_SPACE_GROW, 0);
	if (err)
		return err;
	struct pog_inode d, c;
	uint64_t key;
	err = pog_inode_load(s, ino, &c);
	if (!err && pog_is_dir_type(c.type))
		err = -EPERM;
	if (!err && c.nlink >= 65000)
		err = -EMLINK;
	if (!err)
		err = pog_inode_load(s, dir, &d);
	if (!err)
		err = pog_entry_slot(s, dir, &d, name, len, &key);
	if (!err)
		err = pog_entry_insert(s, dir, &d, key, ino, name, len);
	if (!err) {
		pog_stamp(&d, true);
		err = pog_inode_put(s, dir, &d);
	}
	if (!err) {
		c.nlink++;
		if (!c.parent) {
			c.parent = dir;
			c.parent_key = key;
		}
		err = pog_object_changed(s, ino, &c, false, false);
	}
	if (!err) {
		pog_hash_entry_changed(s, dir, key);
		pog_note_change(s, dir, POG_CHG_MODIFIED);
		if (out)
			pog_fill_attr(s, &s->staged, ino, &c, out);
	}
	pog_unlock(s);
	return err;
}

/* An edit hook failed after its operation succeeded: the operation
 * stands (plain POSIX semantics), the reason is kept for status. */
void pog_edit_hook(pog_store *s, int err)
{
	if (err)
		pog_set_error(s, "saving by rename: %s", pog_strerror(err));
}

/* The child leaves its place (dir already updated by the caller). */
int pog_child_unlinked(pog_store *s, uint64_t ino, uint64_t dir,
		       uint64_t key)
{
	struct pog_inode c;
	int err = pog_inode_load(s, ino, &c);
	if (err)
		return err;
	/* A map or list may live on without a place (a ref holds it), so it
	 * keeps 2 + subdirectories; a file counts its names. */
	if (!pog_is_dir_type(c.type) && c.nlink)
		c.nlink--;
	if (c.parent == dir && c.parent_key == key) {
		c.parent = 0;
		c.parent_key = 0;
	}
	pog_stamp(&c, false);
	return pog_inode_put(s, ino, &c);
}

int pog_child_orphaned(pog_store *s, uint64_t ino, uint64_t dir)
{
	struct pog_inode c;
	int err = pog_inode_load(s, ino, &c);
	return err ? err : pog_child_unlinked(s, ino, dir, c.parent_key);
}

#define REMOVE_DETACH 0x100u /* any object, even a non-empty map */

static int check_removable(const struct pog_inode *c, unsigned flags)
{
	if (flags & REMOVE_DETACH)
		return 0;
	if (flags & POG_REMOVE_DIR) {
		if (!pog_is_dir_type(c->type))
			return -ENOTDIR;
		if (c->entries)
			return -ENOTEMPTY;
	} else if (pog_is_dir_type(c->type)) {
		return -EISDIR;
	}
	return 0;
}

int pog_remove(pog_store *s, uint64_t dir, const char *name, size_t len,
	       unsigned flags)
{
	int err = pog_check_name(len);
	if (err)
		return err;
	if (dir & POG_COMMITTED_BIT)
		return -EROFS;
	err = pog_begin_change(s, POG_SPACE_SHRINK, 0);
	if (err)
		return err;
	struct pog_inode d, c;
	uint64_t key, child;
	err = pog_inode_load(s, dir, &d);
	if (!err)
		err = pog_dir_find(s, dir, &s->staged, &d, name, len, &key, &child);
	if (!err)
		err = pog_inode_load(s, child, &c);
	if (!err)
		err = check_removable(&c, flags);
	if (!err) {
		pog_note_removed(s, child);
		err = pog_entry_remove(s, dir, &d, key);
	}
	if (!err) {
		if (pog_is_dir_type(c.type))
			d.nlink--;
		pog_stamp(&d, true);
		err = pog_inode_put(s, dir, &d);
	}
	if (!err)
		err = pog_child_unlinked(s, child, dir, key);
	if (!err) {
		pog_hash_entry_changed(s, dir, key);
		pog_note_change(s, dir, POG_CHG_MODIFIED);
		if (c.nlink == 1 && !pog_is_dir_type(c.type))
			pog_edit_hook(s, pog_edit_unlinked(s, child));
	}
	pog_unlock(s);
	return err;
}

int pog_detach(pog_store *s, uint64_t dir, const char *name, size_t len)
{
	return pog_remove(s, dir, name, len, REMOVE_DETACH);
}

/* ---- whole-object helpers for GC and fsck --------------------------------------- */

struct blocks_ctx {
	int (*fn)(void *ctx, uint64_t bno, int is_node);
	void *ctx;
};

static int node_visit(void *c, uint64_t bno, const struct pog_node_hdr *h)
{
	(void)h;
	struct blocks_ctx *b = c;
	return b->fn(b->ctx, bno, 1);
}

int pog_object_blocks(pog_store *s, const struct pog_inode *in,
		      int (*fn)(void *ctx, uint64_t bno, int is_node),
		      void *ctx)
{
	struct blocks_ctx b = {fn, ctx};
	int r = 0;
	bool has_pages = in->type == POG_STRING || in->type == POG_SYMLINK;
	if (has_pages && (in->flags & POG_INODE_DIRECT)) {
		r = fn(ctx, in->content, 0);
	} else if (has_pages || pog_is_dir_type(in->type)) {
		r = pog_bt_walk(s, in->content, node_visit, &b);
		if (!r && has_pages) {
			struct pog_bt_iter it;
			r = pog_bt_seek(&it, s, in->content, 0);
			while (r > 0) {
				const void *val;
				struct pog_page_ref ref;
				pog_bt_cur(&it, NULL, &val, NULL);
				memcpy(&ref, val, sizeof(ref));
				r = fn(ctx, ref.bno, 0);
				if (r)
					break;
				r = pog_bt_next(&it);
			}
		}
	}
	if (!r)
		r = pog_bt_walk(s, in->xattrs, node_visit, &b);
	return r;
}

int pog_object_edges(pog_store *s, const struct pog_inode *in,
		     int (*fn)(void *ctx, uint64_t ino, int owned), void *ctx)
{
	if (in->type == POG_REF)
		return fn(ctx, in->content, 0);
	if (!pog_is_dir_type(in->type))
		return 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, 0);
	while (r > 0) {
		const void *val;
		uint64_t child;
		pog_bt_cur(&it, NULL, &val, NULL);
		memcpy(&child, val, sizeof(child));
		r = fn(ctx, child, 1);
		if (r)
			break;
		r = pog_bt_next(&it);
	}
	return r;
}

int pog_object_destroy(pog_store *s, uint64_t ino)
{
	struct pog_inode in;
	int err = pog_inode_load(s, ino, &in);
	if (err)
		return err;
	/* The record goes first: if its leaf is damaged nothing else has
	 * changed yet. */
	err = pog_bt_del(s, &s->staged.obj_root, ino);
	if (err)
		return err;
	s->staged.nobjects--;
	s->staged.logical_bytes -= pog_logical_size(&in);
	if (in.type == POG_STRING || in.type == POG_SYMLINK)
		pog_pages_release(s, &in);
	else if (pog_is_dir_type(in.type))
		pog_bt_release(s, in.content);
	pog_bt_release(s, in.xattrs);
	return 0;
}
