/* inode.c - object records: loading and storing them, their attributes. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "object_int.h"

int pog_inode_get(pog_store *s, const struct pog_state *st, uint64_t ino,
		  const struct pog_inode **out)
{
	const void *val;
	uint16_t vlen;
	int err = pog_bt_get(s, st->obj_root, ino, &val, &vlen);
	if (err)
		return err;
	const struct pog_inode *in = val;
	if (vlen < POG_INODE_FIXED || vlen != pog_inode_len(in))
		return POG_ECORRUPT;
	*out = in;
	return 0;
}

size_t pog_inode_len(const struct pog_inode *in)
{
	if (in->flags & POG_INODE_INLINE)
		return POG_INODE_FIXED + (in->size <= POG_INLINE_MAX ? in->size : 0);
	return POG_INODE_FIXED;
}

int pog_inode_copy(const void *val, uint16_t vlen, struct pog_inode *out)
{
	if (vlen < POG_INODE_FIXED || vlen > sizeof(*out))
		return POG_ECORRUPT;
	memset(out, 0, sizeof(*out));
	memcpy(out, val, vlen);
	return 0;
}

int pog_inode_load(pog_store *s, uint64_t ino, struct pog_inode *copy)
{
	const struct pog_inode *in;
	int err = pog_inode_get(s, &s->staged, ino, &in);
	if (!err)
		memcpy(copy, in, pog_inode_len(in));
	return err;
}

/* Bytes an object adds to the store's logical size. */
uint64_t pog_logical_size(const struct pog_inode *in)
{
	bool file = in->type == POG_STRING || in->type == POG_SYMLINK ||
		    pog_type_is_scalar(in->type);
	return file ? in->size : 0;
}

int pog_inode_put(pog_store *s, uint64_t ino, const struct pog_inode *in)
{
	const struct pog_inode *old;
	uint64_t before = 0;
	if (pog_inode_get(s, &s->staged, ino, &old) == 0)
		before = pog_logical_size(old);
	int err = pog_bt_put(s, POG_TREE_OBJECTS, &s->staged.obj_root, ino, in,
			     (uint16_t)pog_inode_len(in));
	if (!err)
		s->staged.logical_bytes += pog_logical_size(in) - before;
	return err;
}

/*
 * Store an object whose record the caller changed: ctime (and with mtime
 * the mtime) become now, the change is noted, and with content its hash
 * goes stale.
 */
int pog_object_changed(pog_store *s, uint64_t ino, struct pog_inode *in,
		       bool mtime, bool content)
{
	pog_stamp(in, mtime);
	int err = pog_inode_put(s, ino, in);
	if (err)
		return err;
	if (content)
		pog_hash_changed(s, ino);
	pog_note_change(s, ino, POG_CHG_MODIFIED);
	return 0;
}

bool pog_is_dir_type(uint32_t type)
{
	return type == POG_MAP || type == POG_LIST;
}

void pog_stamp(struct pog_inode *in, bool mtime)
{
	struct pog_time t = pog_now();
	in->ctime_sec = t.sec;
	in->ctime_nsec = t.nsec;
	if (mtime) {
		in->mtime_sec = t.sec;
		in->mtime_nsec = t.nsec;
	}
}

void pog_fill_attr(pog_store *s, const struct pog_state *st, uint64_t ino,
		   const struct pog_inode *in, struct pog_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino | pog_view_bits(s, st);
	a->type = in->type;
	a->mode = in->mode;
	a->uid = in->uid;
	a->gid = in->gid;
	a->nlink = in->nlink;
	a->size = in->size;
	a->rdev = in->rdev;
	a->blocks = in->blocks * (POG_BLOCK_SIZE / 512);
	a->atime = (struct pog_time){in->atime_sec, in->atime_nsec};
	a->mtime = (struct pog_time){in->mtime_sec, in->mtime_nsec};
	a->ctime = (struct pog_time){in->ctime_sec, in->ctime_nsec};
	if (pog_is_dir_type(in->type))
		a->size = POG_BLOCK_SIZE;
	if (in->type == POG_REF) {
		char tmp[8192];
		ssize_t n = pog_readlink_locked(s, st, ino, in, tmp, sizeof(tmp));
		a->size = n > 0 ? (uint64_t)n : 0;
	}
}

int pog_root_init(pog_store *s)
{
	struct pog_inode in = {0};
	struct pog_time t = pog_now();
	in.type = POG_MAP;
	in.mode = S_IFDIR | 0755;
	in.uid = (uint32_t)getuid();
	in.gid = (uint32_t)getgid();
	in.nlink = 2;
	in.atime_sec = in.mtime_sec = in.ctime_sec = t.sec;
	in.atime_nsec = in.mtime_nsec = in.ctime_nsec = t.nsec;
	int err = pog_inode_put(s, POG_ROOT_INO, &in);
	if (err)
		return err;
	s->env->next_ino = POG_ROOT_INO + 1;
	s->staged.nobjects = 1;
	return 0;
}

/*
 * Begin a read of *ino: the read lock, the state its view bit names (the
 * bit is stripped) and its record. On success the caller unlocks; on
 * failure nothing is held.
 */
int pog_read_begin(pog_store *s, uint64_t *ino, const struct pog_state **st,
		   const struct pog_inode **in)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	*st = pog_view(s, ino);
	err = pog_inode_get(s, *st, *ino, in);
	if (err)
		pog_unlock(s);
	return err;
}

int pog_getattr(pog_store *s, uint64_t ino, struct pog_attr *out)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	pog_fill_attr(s, st, ino, in, out);
	pog_unlock(s);
	return 0;
}

/* Take the write lock and make sure the change cannot run out of blocks
 * half-way: POG_OP_NEED blocks cover the tree copies of any one
 * operation. kind says whether it may use the reserve (store_int.h). */
int pog_begin_change(pog_store *s, enum pog_space kind, uint64_t pages)
{
	int err = pog_wrlock(s);
	if (err)
		return err;
	err = pog_space_check(s, kind, POG_OP_NEED + 2 * pages);
	if (err)
		pog_unlock(s);
	return err;
}

int pog_setattr(pog_store *s, uint64_t ino, const struct pog_attr *attr,
		unsigned mask, struct pog_attr *out)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	/* Truncating down shrinks; growing a file is checked below. */
	int err = pog_begin_change(s, mask & POG_SET_SIZE ? POG_SPACE_SHRINK
						      : POG_SPACE_KEEP, 0);
	if (err)
		return err;
	struct pog_inode in;
	err = pog_inode_load(s, ino, &in);
	if (!err && (mask & POG_SET_SIZE)) {
		err = pog_writable_file(&in);
		if (!err && attr->size > POG_FILE_MAX)
			err = -EFBIG;
		if (!err && attr->size > in.size)
			err = pog_space_check(s, POG_SPACE_GROW, POG_OP_NEED);
		if (!err && attr->size != in.size) {
			if (pog_type_is_scalar(in.type))
				err = pog_scalar_edit(s, &in, 0, NULL, 0, attr->size);
			else
				err = pog_data_truncate(s, &in, attr->size);
			pog_stamp(&in, true);
		}
	}
	if (!err) {
		if (mask & POG_SET_MODE)
			in.mode = (in.mode & S_IFMT) | (attr->mode & 07777);
		if (mask & POG_SET_UID)
			in.uid = attr->uid;
		if (mask & POG_SET_GID)
			in.gid = attr->gid;
		if (mask & POG_SET_ATIME) {
			in.atime_sec = attr->atime.sec;
			in.atime_nsec = attr->atime.nsec;
		}
		if (mask & POG_SET_MTIME) {
			in.mtime_sec = attr->mtime.sec;
			in.mtime_nsec = attr->mtime.nsec;
		}
		pog_stamp(&in, false);
		if (mask & POG_SET_CTIME) {
			in.ctime_sec = attr->ctime.sec;
			in.ctime_nsec = attr->ctime.nsec;
		}
		err = pog_inode_put(s, ino, &in);
	}
	if (!err) {
		if (mask & POG_SET_SIZE)
			pog_hash_changed(s, ino);
		pog_note_change(s, ino, POG_CHG_MODIFIED);
		if (out)
			pog_fill_attr(s, &s->staged, ino, &in, out);
	}
	pog_unlock(s);
	return err;
}
