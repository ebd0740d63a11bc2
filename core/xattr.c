/* xattr.c - extended attributes: a tree of name -> value beside each object. */
#include <errno.h>
#include <string.h>

#include "object_int.h"

/* Find name in an xattr tree: key, pointer to value and its size. */
static int xattr_find(pog_store *s, uint64_t root, const char *name,
		      uint64_t *key, const char **value, size_t *vsize,
		      uint64_t *free_key)
{
	struct pog_named n = {name, strlen(name), true, 0};
	const void *val;
	uint16_t vlen;
	int err = pog_bucket_find(s, root, &n, key, &val, &vlen, free_key);
	if (err)
		return err == -ENOENT ? -ENODATA : err;
	if (value)
		*value = (const char *)val + 1 + n.len;
	if (vsize)
		*vsize = vlen - 1u - n.len;
	return 0;
}

ssize_t pog_getxattr(pog_store *s, uint64_t ino, const char *name, void *buf,
		     size_t size)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	const char *value;
	size_t vsize;
	uint64_t key;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	ssize_t r = xattr_find(s, in->xattrs, name, &key, &value, &vsize, NULL);
	if (!r) {
		if (size && vsize > size)
			r = -ERANGE;
		else if (size)
			memcpy(buf, value, vsize);
		if (!r)
			r = (ssize_t)vsize;
	}
	pog_unlock(s);
	return r;
}

int pog_setxattr(pog_store *s, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > POG_XATTR_NAME_MAX)
		return nlen ? -ERANGE : -EINVAL;
	if (size > POG_XATTR_VALUE_MAX)
		return -E2BIG;
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	int err = pog_begin_change(s, POG_SPACE_GROW, 0);
	if (err)
		return err;
	struct pog_inode in;
	uint64_t key, free_key = 0;
	err = pog_inode_load(s, ino, &in);
	if (!err) {
		err = xattr_find(s, in.xattrs, name, &key, NULL, NULL, &free_key);
		if (!err && (flags & POG_XATTR_CREATE))
			err = -EEXIST;
		else if (err == -ENODATA && !(flags & POG_XATTR_REPLACE)) {
			key = free_key;
			err = 0;
		}
	}
	if (!err) {
		char buf[1 + POG_XATTR_NAME_MAX + POG_XATTR_VALUE_MAX];
		buf[0] = (char)nlen;
		memcpy(buf + 1, name, nlen);
		memcpy(buf + 1 + nlen, value, size);
		err = pog_bt_put(s, POG_TREE_XATTR, &in.xattrs, key, buf,
				 (uint16_t)(1 + nlen + size));
	}
	if (!err)
		err = pog_object_changed(s, ino, &in, false, false);
	pog_unlock(s);
	return err;
}

ssize_t pog_listxattr(pog_store *s, uint64_t ino, char *buf, size_t size)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	size_t total = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->xattrs, 0);
	while (r > 0) {
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, NULL, &val, &vlen);
		const unsigned char *v = val;
		size_t nlen = v[0];
		if (size) {
			if (total + nlen + 1 > size) {
				r = -ERANGE;
				break;
			}
			memcpy(buf + total, v + 1, nlen);
			buf[total + nlen] = '\0';
		}
		total += nlen + 1;
		r = pog_bt_next(&it);
	}
	pog_unlock(s);
	return r < 0 ? r : (ssize_t)total;
}

int pog_removexattr(pog_store *s, uint64_t ino, const char *name)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	int err = pog_begin_change(s, POG_SPACE_SHRINK, 0);
	if (err)
		return err;
	struct pog_inode in;
	uint64_t key;
	err = pog_inode_load(s, ino, &in);
	if (!err)
		err = xattr_find(s, in.xattrs, name, &key, NULL, NULL, NULL);
	if (!err)
		err = pog_bt_del(s, &in.xattrs, key);
	if (!err)
		err = pog_object_changed(s, ino, &in, false, false);
	pog_unlock(s);
	return err;
}
