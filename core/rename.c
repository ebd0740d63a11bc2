/* rename.c - moving an entry to another name or map, or exchanging two. */
#include <errno.h>
#include <string.h>

#include "object_int.h"

/* Is `ino` the directory `dir` or one of its ancestors? */
static bool is_ancestor(pog_store *s, uint64_t ino, uint64_t dir)
{
	for (int depth = 0; dir && depth < 4096; depth++) {
		if (dir == ino)
			return true;
		const struct pog_inode *in;
		if (pog_inode_get(s, &s->staged, dir, &in))
			return false;
		dir = in->parent;
	}
	return false;
}

static int set_parent(pog_store *s, uint64_t ino, uint64_t dir, uint64_t key)
{
	struct pog_inode c;
	int err = pog_inode_load(s, ino, &c);
	if (err)
		return err;
	c.parent = dir;
	c.parent_key = key;
	pog_stamp(&c, false);
	return pog_inode_put(s, ino, &c);
}

static void note_moved(pog_store *s, uint64_t ino)
{
	uint64_t *v = pog_map64_find(&s->changes, ino);
	if (v && (*v & POG_CHG_ADDED))
		return;
	pog_note_removed(s, ino);
	pog_note_change(s, ino, POG_CHG_ADDED);
}

struct rename_ctx {
	struct pog_inode od, nd, src, dst;
	uint64_t okey, nkey, sino, dino;
	bool have_dst;
};

/* May the moved object replace the existing target of a rename? */
static int replace_check(const struct rename_ctx *r)
{
	bool sdir = pog_is_dir_type(r->src.type), ddir = pog_is_dir_type(r->dst.type);
	if (sdir != ddir)
		return sdir ? -ENOTDIR : -EISDIR;
	if (ddir && r->dst.entries)
		return -ENOTEMPTY;
	return 0;
}

/* Point the target entry at the moved object; the old target leaves. */
static int replace_target(pog_store *s, uint64_t newdir, struct rename_ctx *r)
{
	pog_note_removed(s, r->dino);
	int err = pog_entry_set_child(s, &r->nd, r->nkey, r->sino);
	if (!err && pog_is_dir_type(r->dst.type))
		r->nd.nlink--;
	if (!err)
		err = pog_child_unlinked(s, r->dino, newdir, r->nkey);
	return err;
}

/* Both directories changed (one when they are the same): stamped and
 * stored; the moved object's place is now in newdir. */
static int put_dirs(pog_store *s, uint64_t olddir, uint64_t newdir,
		    struct rename_ctx *r)
{
	pog_stamp(&r->od, true);
	int err = pog_inode_put(s, olddir, &r->od);
	if (!err && olddir != newdir) {
		pog_stamp(&r->nd, true);
		err = pog_inode_put(s, newdir, &r->nd);
	}
	return err ? err : set_parent(s, r->sino, newdir, r->nkey);
}

static int rename_exchange(pog_store *s, uint64_t olddir, uint64_t newdir,
			   struct rename_ctx *r)
{
	bool same = olddir == newdir;
	note_moved(s, r->sino);
	note_moved(s, r->dino);
	int err = pog_entry_set_child(s, &r->od, r->okey, r->dino);
	if (!err && same)
		r->nd = r->od;
	if (!err)
		err = pog_entry_set_child(s, &r->nd, r->nkey, r->sino);
	if (err)
		return err;
	if (same) {
		r->od = r->nd;
	} else {
		int sdir = pog_is_dir_type(r->src.type), ddir = pog_is_dir_type(r->dst.type);
		r->od.nlink += (uint32_t)(ddir - sdir);
		r->nd.nlink += (uint32_t)(sdir - ddir);
	}
	err = put_dirs(s, olddir, newdir, r);
	if (!err)
		err = set_parent(s, r->dino, olddir, r->okey);
	return err;
}

static int rename_move(pog_store *s, uint64_t olddir, uint64_t newdir,
		       const char *newname, size_t newlen, struct rename_ctx *r)
{
	bool same = olddir == newdir;
	bool sdir = pog_is_dir_type(r->src.type);
	int err = r->have_dst ? replace_check(r) : 0;
	if (err)
		return err;
	note_moved(s, r->sino);
	if (r->have_dst) {
		err = replace_target(s, newdir, r);
	} else {
		err = pog_entry_insert(s, newdir, &r->nd, r->nkey, r->sino, newname,
				       newlen);
	}
	if (err)
		return err;
	if (same)
		r->od = r->nd;
	err = pog_entry_remove(s, olddir, &r->od, r->okey);
	if (err)
		return err;
	if (same) {
		r->nd = r->od;
	} else if (sdir) {
		r->od.nlink--;
		r->nd.nlink++;
	}
	return put_dirs(s, olddir, newdir, r);
}

/* After a rename: remember where a file came from (an editor may unlink
 * it once a new file took its name), and let a new file that replaced a
 * scalar take it over (edit.c). */
static void rename_edits(pog_store *s, const struct rename_ctx *r,
			 uint64_t olddir, const char *oldname, size_t oldlen,
			 unsigned flags)
{
	bool file = r->src.type == POG_STRING || pog_type_is_scalar(r->src.type);
	if (flags & POG_RENAME_EXCHANGE)
		return;
	if (file && (!pog_ino_new(s, r->sino) || pog_type_is_scalar(r->src.type)))
		pog_edit_hook(s, pog_edit_moved(s, r->sino, olddir, oldname, oldlen));
	if (r->have_dst && r->dino != r->sino)
		pog_edit_hook(s, pog_edit_replaced(s, r->dino, r->sino));
}

int pog_rename(pog_store *s, uint64_t olddir, const char *oldname,
	       size_t oldlen, uint64_t newdir, const char *newname,
	       size_t newlen, unsigned flags)
{
	int err = pog_check_name(oldlen);
	if (!err)
		err = pog_check_name(newlen);
	if (err)
		return err;
	if ((olddir | newdir) & POG_COMMITTED_BIT)
		return -EROFS;
	if ((flags & POG_RENAME_NOREPLACE) && (flags & POG_RENAME_EXCHANGE))
		return -EINVAL;
	err = pog_begin_change(s, POG_SPACE_KEEP, 0);
	if (err)
		return err;
	struct rename_ctx *r = calloc(1, sizeof(*r));
	if (!r) {
		pog_unlock(s);
		return -ENOMEM;
	}
	err = pog_inode_load(s, olddir, &r->od);
	if (!err)
		err = pog_inode_load(s, newdir, &r->nd);
	if (!err)
		err = pog_dir_find(s, olddir, &s->staged, &r->od, oldname, oldlen,
				   &r->okey, &r->sino);
	if (!err)
		err = pog_inode_load(s, r->sino, &r->src);
	if (!err) {
		int f = pog_dir_find(s, newdir, &s->staged, &r->nd, newname, newlen,
				     &r->nkey, &r->dino);
		if (f == 0)
			r->have_dst = true;
		else if (f != -ENOENT)
			err = f;
		else if (!(flags & POG_RENAME_EXCHANGE))
			err = pog_entry_slot(s, newdir, &r->nd, newname, newlen,
					     &r->nkey);
		/* making room for a fraction may have moved the source */
		if (!err && !r->have_dst && olddir == newdir)
			err = pog_dir_find(s, newdir, &s->staged, &r->nd, oldname,
					   oldlen, &r->okey, &r->sino);
	}
	if (!err && r->have_dst)
		err = pog_inode_load(s, r->dino, &r->dst);
	if (!err && (flags & POG_RENAME_NOREPLACE) && r->have_dst)
		err = -EEXIST;
	if (!err && (flags & POG_RENAME_EXCHANGE) && !r->have_dst)
		err = -ENOENT;
	if (!err && pog_is_dir_type(r->src.type) && is_ancestor(s, r->sino, newdir))
		err = -EINVAL;
	if (!err && (flags & POG_RENAME_EXCHANGE) &&
	    pog_is_dir_type(r->dst.type) && is_ancestor(s, r->dino, olddir))
		err = -EINVAL;
	bool noop = !err && r->have_dst && r->sino == r->dino;
	if (!err && !noop) {
		if (flags & POG_RENAME_EXCHANGE)
			err = rename_exchange(s, olddir, newdir, r);
		else
			err = rename_move(s, olddir, newdir, newname, newlen, r);
	}
	if (!err && !noop) {
		pog_hash_entry_changed(s, olddir, r->okey);
		pog_hash_entry_changed(s, newdir, r->nkey);
		pog_note_change(s, olddir, POG_CHG_MODIFIED);
		pog_note_change(s, newdir, POG_CHG_MODIFIED);
		rename_edits(s, r, olddir, oldname, oldlen, flags);
	}
	free(r);
	pog_unlock(s);
	return err;
}
