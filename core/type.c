/* type.c - typed scalars' text, and changing an object's type. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "object_int.h"

/* Set a scalar's text (which parses to bits) in its record. */
void pog_scalar_set(struct pog_inode *in, uint64_t bits, const char *text,
		    size_t len)
{
	in->content = bits;
	in->flags = POG_INODE_INLINE;
	memcpy(in->inline_data, text, len);
	in->size = len;
	pog_inline_seal(in);
}

/*
 * Change a typed scalar's text: the result must parse as its type, else
 * -EINVAL and nothing changes. Size 0 (truncate) is allowed: the scalar is
 * then empty and has no value (a commit refuses to make it durable).
 */
int pog_scalar_edit(pog_store *s, struct pog_inode *in, uint64_t off,
		    const void *buf, size_t len, uint64_t new_size)
{
	char text[POG_INLINE_MAX];
	int err = pog_inline_check(s, in);
	if (err)
		return err;
	if (new_size > POG_INLINE_MAX || off + len > POG_INLINE_MAX)
		return -EINVAL;
	memcpy(text, in->inline_data, in->size);
	if (new_size > in->size)
		memset(text + in->size, 0, new_size - in->size);
	if (buf)
		memcpy(text + off, buf, len);
	if (new_size == 0) {
		pog_scalar_set(in, 0, text, 0); /* empty: no value */
		return 0;
	}
	uint64_t bits;
	err = pog_scalar_parse(in->type, text, new_size, &bits);
	if (err)
		return err;
	pog_scalar_set(in, bits, text, new_size);
	return 0;
}

/* Convert between string and typed scalars (the text must parse). */
static int convert_scalar(pog_store *s, struct pog_inode *in, unsigned type)
{
	char text[POG_INLINE_MAX + 1];
	ssize_t n = 0;
	if (in->size > POG_INLINE_MAX) {
		if (type != POG_STRING)
			return -EINVAL;
	} else {
		n = pog_data_read(s, in, 0, text, in->size);
		if (n < 0)
			return (int)n;
	}
	if (type == POG_STRING) {
		in->type = POG_STRING;
		if (in->flags & POG_INODE_INLINE)
			in->content = 0; /* the value bits go; the text stays */
		return 0;
	}
	uint64_t bits = 0;
	/* An empty file takes any type and stays empty, without a value
	 * (tar and cp set the type before they write the content). */
	int err = n ? pog_scalar_parse(type, text, (size_t)n, &bits) : 0;
	if (err)
		return err;
	if (in->type == POG_STRING) {
		err = pog_data_release(s, in);
		if (err)
			return err;
	}
	in->type = type;
	in->mode = (in->mode & ~(uint32_t)S_IFMT) | S_IFREG;
	size_t len = 0;
	if (n) {
		len = pog_scalar_format(type, bits, text, sizeof(text) - 1);
		text[len++] = '\n';
	}
	pog_scalar_set(in, bits, text, len);
	return 0;
}

/* Make child's owning key new_key if dir's entry old_key owned it. */
static int reown(pog_store *s, uint64_t dir, uint64_t child, uint64_t old_key,
		 uint64_t new_key)
{
	struct pog_inode c;
	if (pog_inode_load(s, child, &c) || c.parent != dir ||
	    c.parent_key != old_key)
		return 0;
	c.parent_key = new_key;
	return pog_inode_put(s, child, &c);
}

static int name_is_position(void *ctx, uint64_t key, uint64_t child,
			    const char *name, size_t len)
{
	(void)ctx, (void)key, (void)child;
	struct pog_list_name nm;
	if (pog_list_name_parse(name, len, &nm) || nm.kind == POG_LIST_TEMP)
		return -EINVAL;
	return 0;
}

struct convert {
	pog_store *s;
	uint64_t ino;
	struct pog_inode *to;
};

static int convert_entry(void *ctx, uint64_t key, uint64_t child,
			 const char *name, size_t len)
{
	struct convert *cv = ctx;
	uint64_t new_key;
	int err = pog_entry_slot(cv->s, cv->ino, cv->to, name, len, &new_key);
	if (!err)
		err = pog_entry_insert(cv->s, cv->ino, cv->to, new_key, child, name,
				       len);
	if (!err)
		err = reown(cv->s, cv->ino, child, key, new_key);
	return err;
}

/*
 * A map whose names are all positions (decimal numbers: 0..n-1, or any
 * such as 0 1 2 4 or 2.5, which the commit renumbers) becomes a list in
 * their numeric order, and a list becomes the map of its names (rsync -X
 * may set a directory's type after its entries). The entries keep their
 * objects; nothing changes when a name does not fit (-EINVAL).
 */
static int convert_dir(pog_store *s, uint64_t ino, struct pog_inode *in,
		       unsigned type)
{
	int err = 0;
	if (type == POG_LIST)
		err = pog_dir_foreach(s, ino, in, name_is_position, NULL);
	if (!err)
		err = pog_space_check(s, POG_SPACE_GROW,
				      POG_OP_NEED + in->entries / 2);
	if (err)
		return err;
	struct pog_inode to = *in;
	to.type = type;
	to.content = 0;
	to.entries = 0;
	struct convert cv = {s, ino, &to};
	err = pog_dir_foreach(s, ino, in, convert_entry, &cv);
	if (err) {
		pog_bt_release(s, to.content);
		return err;
	}
	pog_bt_release(s, in->content);
	in->type = type;
	in->content = to.content;
	pog_hash_rekeyed(s, ino);
	return 0;
}

int pog_set_type(pog_store *s, uint64_t ino, unsigned type)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	int err = pog_begin_change(s, POG_SPACE_GROW, 0);
	if (err)
		return err;
	struct pog_inode in;
	err = pog_inode_load(s, ino, &in);
	bool file_like = !err && (in.type == POG_STRING || pog_type_is_scalar(in.type));
	bool to_file = type == POG_STRING || pog_type_is_scalar(type);
	bool changed = !err && in.type != type;
	if (err || in.type == type) {
		/* nothing to do */
	} else if (ino == POG_ROOT_INO) {
		err = -EINVAL; /* the root is a map, always */
	} else if (file_like && to_file) {
		err = convert_scalar(s, &in, type);
	} else if (pog_is_dir_type(in.type) && pog_is_dir_type(type)) {
		err = convert_dir(s, ino, &in, type);
	} else {
		err = -EINVAL;
	}
	if (!err && changed)
		err = pog_object_changed(s, ino, &in, false, true);
	if (!err && file_like)
		pog_edit_typed(s, ino);
	pog_unlock(s);
	return err;
}
