/* object.c - the object graph: maps, lists, strings, refs, xattrs. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"
#include "object_int.h"

#define KEY_HASH_MASK 0x0FFFFFFFFFFFFFF0ULL
#define KEY_SEQS 16
#define PAGE POG_BLOCK_SIZE

/* ---- inodes ---------------------------------------------------------------- */

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

/* ---- directory entries ------------------------------------------------------ */

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

/* ---- public: reading ------------------------------------------------------------ */

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

/* ---- public: changing ---------------------------------------------------------- */

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

/* ---- for edit.c: records and text of the staged state --------------------------- */

int pog_child_of(pog_store *s, uint64_t dir, const char *key, size_t len,
		 uint64_t *child)
{
	const struct pog_inode *d;
	uint64_t k;
	int err = pog_inode_get(s, &s->staged, dir, &d);
	return err ? err : pog_dir_find(s, dir, &s->staged, d, key, len, &k, child);
}
