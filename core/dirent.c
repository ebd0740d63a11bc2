/* dirent.c - map and list entries: finding, adding, removing, listing. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "object_int.h"

#define KEY_HASH_MASK 0x0FFFFFFFFFFFFFF0ULL
#define KEY_SEQS 16

struct dirent_val {
	uint64_t ino;
	char name[]; /* maps only */
};

/* Find name in a map: *key and *child when found; else -ENOENT and *key is
 * a free key for the name (or -ENOSPC when its hash bucket is full). */
/* Where the name in a value starts and how long it is (-1: damaged). */
static int value_name(const struct pog_named *n, const void *val, uint16_t vlen,
		      const char **name, size_t *len)
{
	const unsigned char *v = val;
	if (!n->xattr) {
		if (vlen < sizeof(uint64_t))
			return -1;
		*name = (const char *)v + sizeof(uint64_t);
		*len = vlen - sizeof(uint64_t);
	} else {
		if (vlen < 1 || v[0] + 1u > vlen)
			return -1;
		*name = (const char *)v + 1;
		*len = v[0];
	}
	return 0;
}

/* Find n in its hash bucket: 0 with *key, *val, *vlen; else -ENOENT and,
 * when free_key is given, a free key for it (-ENOSPC: bucket full). */
int pog_bucket_find(pog_store *s, uint64_t root, const struct pog_named *n,
		    uint64_t *key, const void **val, uint16_t *vlen,
		    uint64_t *free_key)
{
	uint64_t base = n->region | (pog_hash_bytes(n->name, n->len) & KEY_HASH_MASK);
	unsigned taken = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, root, base);
	while (r > 0) {
		uint64_t k;
		const char *name;
		size_t len;
		pog_bt_cur(&it, &k, val, vlen);
		if (k >= base + KEY_SEQS)
			break;
		if (value_name(n, *val, *vlen, &name, &len))
			return POG_ECORRUPT;
		taken |= 1u << (k - base);
		if (len == n->len && memcmp(name, n->name, len) == 0) {
			*key = k;
			return 0;
		}
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	if (free_key) {
		unsigned seq = 0;
		while (seq < KEY_SEQS && (taken & (1u << seq)))
			seq++;
		if (seq == KEY_SEQS)
			return -ENOSPC;
		*free_key = base + seq;
	}
	return -ENOENT;
}

/* Find name in a map: *key and *child when found; else -ENOENT and *key is
 * a free key for the name (or -ENOSPC when its hash bucket is full). */
static int map_find(pog_store *s, const struct pog_inode *dir, const char *name,
		    size_t len, uint64_t *key, uint64_t *child, uint64_t *free_key)
{
	struct pog_named n = {name, len, false,
			  dir->type == POG_LIST ? POG_LIST_NAMED : 0};
	const void *val;
	uint16_t vlen;
	int err = pog_bucket_find(s, dir->content, &n, key, &val, &vlen, free_key);
	if (!err)
		memcpy(child, val, sizeof(*child));
	return err;
}

/*
 * The name an entry shows: its escaped key, or for a key whose escaped
 * form does not fit a file name, "%~" and the entry's 16-hex-digit tree
 * key (found again by map_find_long).
 */
ssize_t pog_entry_name(uint32_t dtype, uint64_t key, const void *val,
		       uint16_t vlen, char *name, size_t size)
{
	(void)dtype;
	ssize_t n = pog_name_escape((const char *)val + 8, vlen - 8u, name, size);
	if (n == -ENAMETOOLONG)
		n = snprintf(name, size, "%%~%016" PRIx64, key);
	return n;
}

/* The name a list entry shows: its position, or its escaped temporary
 * name. */
ssize_t pog_list_entry_name(const struct pog_list_names *nm, uint64_t key,
			    const void *val, uint16_t vlen, char *name,
			    size_t size)
{
	if (key < POG_LIST_NAMED)
		return pog_list_name_of(nm, key, val, vlen, name, size);
	return vlen < 8 ? POG_ECORRUPT
			: pog_entry_name(POG_LIST, key, val, vlen, name, size);
}

/* A "%~<key>" name of an entry whose key is too long to show. */
static int map_find_long(pog_store *s, const struct pog_inode *dir,
			 const char *name, size_t len, uint64_t *key,
			 uint64_t *child)
{
	if (len != 18 || name[0] != '%' || name[1] != '~')
		return -ENOENT;
	uint64_t k = 0;
	for (size_t i = 2; i < len; i++) {
		char c = name[i];
		int v = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -ENOENT;
		k = k << 4 | (uint64_t)v;
	}
	const void *val;
	uint16_t vlen;
	char shown[256];
	if (pog_bt_get(s, dir->content, k, &val, &vlen) || vlen < 8 ||
	    pog_name_escape((const char *)val + 8, vlen - 8u, shown,
			    sizeof(shown)) != -ENAMETOOLONG)
		return -ENOENT;
	*key = k;
	memcpy(child, val, sizeof(*child));
	return 0;
}

/*
 * Look up a child of dir (ino, in state st): *key is its key in dir.
 * -ENOENT, -ENOTDIR. In a list a number is a position (list.c); a
 * temporary name is found as a map key is.
 */
int pog_dir_find(pog_store *s, uint64_t ino, const struct pog_state *st,
		 const struct pog_inode *dir, const char *name, size_t len,
		 uint64_t *key, uint64_t *child)
{
	if (dir->type == POG_MAP) {
		int err = map_find(s, dir, name, len, key, child, NULL);
		if (err == -ENOENT)
			err = map_find_long(s, dir, name, len, key, child);
		return err;
	}
	if (dir->type != POG_LIST)
		return -ENOTDIR;
	struct pog_list_name nm;
	if (pog_list_name_parse(name, len, &nm))
		return -ENOENT;
	if (nm.kind == POG_LIST_TEMP)
		return map_find(s, dir, name, len, key, child, NULL);
	struct pog_list_names names;
	int err = pog_list_names_init(&names, s, st, ino, dir);
	return err ? err : pog_list_find(&names, dir->content, &nm, key, child,
					 NULL);
}

static int map_put(pog_store *s, struct pog_inode *dir, uint64_t key,
		   uint64_t child, const char *name, size_t len)
{
	char buf[sizeof(uint64_t) + POG_KEY_MAX];
	memcpy(buf, &child, sizeof(child));
	memcpy(buf + sizeof(child), name, len);
	uint32_t kind = dir->type == POG_LIST ? POG_TREE_LIST : POG_TREE_MAP;
	return pog_bt_put(s, kind, &dir->content, key, buf,
			  (uint16_t)(sizeof(child) + len));
}

/* Re-point an existing entry at another child, keeping its name. */
int pog_entry_set_child(pog_store *s, struct pog_inode *dir, uint64_t key,
			uint64_t child)
{
	void *val;
	int err = pog_bt_get_mut(s, &dir->content, key, &val, NULL);
	if (!err)
		memcpy(val, &child, sizeof(child));
	return err;
}

/* A list entry that carried no name goes: the commit looks at it. */
static void list_entry_leaves(pog_store *s, uint64_t ino,
			      const struct pog_inode *dir, uint64_t key)
{
	const void *val;
	uint16_t vlen;
	struct pog_list_names nm;
	if (key < POG_LIST_NAMED &&
	    pog_bt_get(s, dir->content, key, &val, &vlen) == 0 && vlen == 8 &&
	    pog_list_names_init(&nm, s, &s->staged, ino, dir) == 0)
		pog_list_removed(s, ino, &nm, key);
}

/* Remove entry key from dir (ino). A list's other names stay as they
 * are (names are ranks only from the commit on). */
int pog_entry_remove(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     uint64_t key)
{
	int err = dir->type == POG_LIST ? pog_list_touched(s, ino) : 0;
	if (err)
		return err;
	if (dir->type == POG_LIST)
		list_entry_leaves(s, ino, dir, key);
	err = pog_bt_del(s, &dir->content, key);
	if (err)
		return err == -ENOENT ? POG_ECORRUPT : err;
	dir->entries--;
	return 0;
}

/* Where a new entry for name goes: -EEXIST when taken. */
int pog_entry_slot(pog_store *s, uint64_t ino, struct pog_inode *dir,
		   const char *name, size_t len, uint64_t *key)
{
	uint64_t existing, child;
	if (dir->type == POG_MAP) {
		int err = map_find(s, dir, name, len, &existing, &child, key);
		return err == 0 ? -EEXIST : err == -ENOENT ? 0 : err;
	}
	if (dir->type != POG_LIST)
		return -ENOTDIR;
	struct pog_list_name nm;
	int err = pog_list_name_parse(name, len, &nm);
	if (err)
		return err;
	if (nm.kind == POG_LIST_TEMP) {
		err = map_find(s, dir, name, len, &existing, &child, key);
		return err == 0 ? -EEXIST : err == -ENOENT ? 0 : err;
	}
	struct pog_list_names names;
	err = pog_list_names_init(&names, s, &s->staged, ino, dir);
	return err ? err : pog_list_new_key(s, ino, dir, &names, &nm, key);
}

/* Add an entry to dir (ino) at the key pog_entry_slot gave for name. */
int pog_entry_insert(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     uint64_t key, uint64_t child, const char *name,
		     size_t len)
{
	/* A list entry made now carries its name until the commit. */
	int err = dir->type == POG_LIST ? pog_list_touched(s, ino) : 0;
	if (!err)
		err = map_put(s, dir, key, child, name, len);
	if (err)
		return err;
	dir->entries++;
	return 0;
}

int pog_check_name(size_t len)
{
	return len > POG_KEY_MAX ? -ENAMETOOLONG : 0;
}

int pog_lookup(pog_store *s, uint64_t dir, const char *name, size_t len,
	       struct pog_attr *out)
{
	int err = pog_check_name(len);
	if (err)
		return err;
	const struct pog_state *st;
	const struct pog_inode *d, *c;
	uint64_t key, child;
	err = pog_read_begin(s, &dir, &st, &d);
	if (err)
		return err;
	err = pog_dir_find(s, dir, st, d, name, len, &key, &child);
	if (!err)
		err = pog_inode_get(s, st, child, &c);
	if (!err)
		pog_fill_attr(s, st, child, c, out);
	pog_unlock(s);
	return err;
}

/*
 * A list is listed in the numeric order of its names, then its temporary
 * entries; names do not shift inside a transaction, so a tool that
 * removes what it read meets every entry once.
 */
static int list_readdir(pog_store *s, const struct pog_state *st, uint64_t ino,
			const struct pog_inode *d, uint64_t cookie,
			pog_dirent_fn fn, void *ctx)
{
	struct pog_list_names nm;
	struct pog_list_iter it = {0};
	int r = pog_list_names_init(&nm, s, st, ino, d);
	if (!r)
		r = pog_list_seek(&it, s, d->content, cookie);
	while (r > 0) {
		char name[256];
		ssize_t nlen = it.key < POG_LIST_NAMED
			? pog_list_iter_name(&it, &nm, name, sizeof(name))
			: pog_entry_name(POG_LIST, it.key, it.val, it.vlen, name,
					 sizeof(name));
		const struct pog_inode *c;
		struct pog_attr a;
		if (nlen >= 0 && pog_inode_get(s, st, it.child, &c) == 0) {
			pog_fill_attr(s, st, it.child, c, &a);
			r = fn(ctx, name, (size_t)nlen, &a, pog_list_cookie(&it));
			if (r)
				break;
		}
		r = pog_list_next(&it);
	}
	pog_list_iter_release(&it);
	return r;
}

int pog_readdir(pog_store *s, uint64_t dir, uint64_t cookie, pog_dirent_fn fn,
		void *ctx)
{
	const struct pog_state *st;
	const struct pog_inode *d;
	int err = pog_read_begin(s, &dir, &st, &d);
	if (err)
		return err;
	if (!pog_is_dir_type(d->type)) {
		pog_unlock(s);
		return -ENOTDIR;
	}
	if (d->type == POG_LIST) {
		err = list_readdir(s, st, dir, d, cookie, fn, ctx);
		pog_unlock(s);
		return err;
	}
	uint64_t dtype = d->type;
	struct pog_bt_iter it;
	/* A cookie is the last key consumed + 1: resume at the first key
	 * at or above it. */
	int r = pog_bt_seek(&it, s, d->content, cookie);
	while (r > 0) {
		uint64_t key, child;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		memcpy(&child, val, sizeof(child));
		char name[256];
		ssize_t nlen = pog_entry_name((uint32_t)dtype, key, val, vlen, name,
					      sizeof(name));
		const struct pog_inode *c;
		struct pog_attr a;
		if (nlen >= 0 && pog_inode_get(s, st, child, &c) == 0) {
			pog_fill_attr(s, st, child, c, &a);
			r = fn(ctx, name, (size_t)nlen, &a, key + 1);
			if (r)
				break;
		}
		r = pog_bt_next(&it);
	}
	pog_unlock(s);
	return r;
}

/* Call fn for each entry of a map (key order) or list (its order) with
 * the entry's key bytes: a list's integer names are written out. */
int pog_dir_foreach(pog_store *s, uint64_t ino, const struct pog_inode *in,
		    pog_dir_entry_fn fn, void *ctx)
{
	if (in->type == POG_LIST) {
		char name[POG_KEY_MAX + 1];
		struct pog_list_names nm;
		struct pog_list_iter it = {0};
		int r = pog_list_names_init(&nm, s, &s->staged, ino, in);
		if (!r)
			r = pog_list_seek(&it, s, in->content, 0);
		while (r > 0) {
			ssize_t n = it.key < POG_LIST_NAMED
				? pog_list_iter_name(&it, &nm, name, sizeof(name))
				: (memcpy(name, (const char *)it.val + 8,
					  it.vlen - 8u),
				   (ssize_t)(it.vlen - 8u));
			r = n < 0 ? (int)n
				  : fn(ctx, it.key, it.child, name, (size_t)n);
			if (!r)
				r = pog_list_next(&it);
		}
		pog_list_iter_release(&it);
		return r;
	}
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, 0);
	while (r > 0) {
		uint64_t key, child;
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, &key, &val, &vlen);
		if (vlen < 8)
			return POG_ECORRUPT;
		memcpy(&child, val, 8);
		r = fn(ctx, key, child, (const char *)val + 8, vlen - 8u);
		if (!r)
			r = pog_bt_next(&it);
	}
	return r;
}

int pog_child_of(pog_store *s, uint64_t dir, const char *key, size_t len,
		 uint64_t *child)
{
	const struct pog_inode *d;
	uint64_t k;
	int err = pog_inode_get(s, &s->staged, dir, &d);
	return err ? err : pog_dir_find(s, dir, &s->staged, d, key, len, &k, child);
}
