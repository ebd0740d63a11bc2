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

/* ---- pages --------------------------------------------------------------------- */

/*
 * A page of the pool, its CRC checked. A page written in this transaction
 * (fresh) never came from the pool's durable state and has no CRC yet: it
 * is sealed at commit (pog_pages_seal), and checked on every read after.
 */
int pog_page_read(pog_store *s, uint64_t bno, uint32_t crc, const void **data)
{
	if (!pog_bno_valid(s, bno))
		return POG_ECORRUPT;
	const void *p = pog_block(s, bno);
	if (!pog_bno_fresh(s, bno) && pog_crc32(p, PAGE) != crc) {
		atomic_fetch_add(&s->env->checksum_errors, 1);
		pog_set_error(s, "checksum mismatch in block %" PRIu64, bno);
		return POG_ECORRUPT;
	}
	*data = p;
	return 0;
}

static int page_ref(pog_store *s, const struct pog_inode *in, uint64_t page,
		    struct pog_page_ref *ref)
{
	if (in->flags & POG_INODE_DIRECT) {
		if (page != 0 || !in->content)
			return -ENOENT;
		*ref = (struct pog_page_ref){in->content, in->direct_crc, 0};
		return 0;
	}
	const void *val;
	uint16_t vlen;
	int err = pog_bt_get(s, in->content, page, &val, &vlen);
	if (err)
		return err;
	if (vlen != sizeof(*ref))
		return POG_ECORRUPT;
	memcpy(ref, val, sizeof(*ref));
	return 0;
}

static int page_set(pog_store *s, struct pog_inode *in, uint64_t page,
		    const struct pog_page_ref *ref)
{
	if (!(in->flags & POG_INODE_DIRECT) && !in->content && page == 0) {
		in->flags |= POG_INODE_DIRECT;
		in->content = ref->bno;
		in->direct_crc = ref->crc;
		return 0;
	}
	if (in->flags & POG_INODE_DIRECT) {
		if (page == 0) {
			in->content = ref->bno;
			in->direct_crc = ref->crc;
			return 0;
		}
		/* Grow from one direct page into a page table. */
		struct pog_page_ref first = {in->content, in->direct_crc, 0};
		uint64_t root = 0;
		int err = pog_bt_put(s, POG_TREE_PAGES, &root, 0, &first,
				     sizeof(first));
		if (err)
			return err;
		in->flags &= ~POG_INODE_DIRECT;
		in->content = root;
	}
	return pog_bt_put(s, POG_TREE_PAGES, &in->content, page, ref,
			  sizeof(*ref));
}

static int page_drop(pog_store *s, struct pog_inode *in, uint64_t page)
{
	struct pog_page_ref ref;
	int err = page_ref(s, in, page, &ref);
	if (err)
		return err == -ENOENT ? 0 : err;
	if (in->flags & POG_INODE_DIRECT) {
		in->flags &= ~POG_INODE_DIRECT;
		in->content = 0;
	} else {
		err = pog_bt_del(s, &in->content, page);
		if (err)
			return err;
	}
	pog_page_release(s, ref.bno);
	in->blocks--;
	return 0;
}

/*
 * A writable copy of page `page` (zeros when it was a hole; with whole,
 * which the caller overwrites entirely, its bytes are undefined). Returns
 * 1 when the page was fresh already (written in place: its ref stays), 0
 * for a new block, whose ref the caller sets.
 */
static int page_writable(pog_store *s, struct pog_inode *in, uint64_t page,
			 bool whole, char **data, uint64_t *bno)
{
	struct pog_page_ref ref;
	int err = page_ref(s, in, page, &ref);
	if (err && err != -ENOENT)
		return err;
	bool exists = !err;
	if (exists && pog_bno_fresh(s, ref.bno)) {
		*bno = ref.bno;
		*data = pog_block(s, ref.bno);
		return 1;
	}
	const void *old = NULL;
	if (exists && !whole) { /* a whole page needs none of the old bytes */
		err = pog_page_read(s, ref.bno, ref.crc, &old);
		if (err)
			return err;
	}
	err = pog_block_alloc(s, false, bno);
	if (err)
		return err;
	*data = pog_block(s, *bno);
	if (old)
		memcpy(*data, old, PAGE);
	else if (!whole)
		memset(*data, 0, PAGE);
	if (exists)
		pog_page_release(s, ref.bno);
	else
		in->blocks++;
	return 0;
}

/* A new block's page ref: its CRC is sealed at commit (fresh pages are
 * not checked before). */
static int page_set_fresh(pog_store *s, struct pog_inode *in, uint64_t page,
			  uint64_t bno)
{
	struct pog_page_ref ref = {bno, 0, 0};
	return page_set(s, in, page, &ref);
}

static int page_write(pog_store *s, struct pog_inode *in, uint64_t page,
		      size_t at, const void *buf, size_t len)
{
	char *data;
	uint64_t bno;
	int r = page_writable(s, in, page, at == 0 && len == PAGE, &data, &bno);
	if (r < 0)
		return r;
	if (buf)
		memcpy(data + at, buf, len);
	else
		memset(data + at, 0, len);
	return r ? 0 : page_set_fresh(s, in, page, bno);
}

/* Whole pages bound for consecutive blocks: n pages from src at bno. */
struct page_run {
	uint64_t bno;
	const char *src;
	size_t n;
};

/*
 * Fill a run of fresh blocks: one pwrite through the pool file's
 * descriptor (the page cache the pool is mapped from), which spares the
 * page faults and the zeroing of a first touch through the mapping; the
 * commit's flush of the mapping writes these pages like any other. A
 * descriptor that cannot write (a read-only one, device DAX) falls back
 * to a copy through the mapping.
 */
static void page_run_fill(pog_store *s, struct page_run *run)
{
	if (!run->n)
		return;
	char *dst = pog_block(s, run->bno);
	size_t len = run->n * PAGE;
	off_t at = (off_t)(dst - (char *)s->env->pop);
	if (s->env->lock_fd < 0 ||
	    pwrite(s->env->lock_fd, run->src, len, at) != (ssize_t)len)
		memcpy(dst, run->src, len);
	run->n = 0;
}

/* Write the whole page `page` from src, through run (blocks in a row are
 * filled together). */
static int page_write_whole(pog_store *s, struct pog_inode *in, uint64_t page,
			    const char *src, struct page_run *run)
{
	char *data;
	uint64_t bno;
	int r = page_writable(s, in, page, true, &data, &bno);
	if (r < 0)
		return r;
	if (!r) {
		int err = page_set_fresh(s, in, page, bno);
		if (err) {
			memcpy(data, src, PAGE); /* the ref may be in: no garbage */
			return err;
		}
	}
	if (run->n && bno == run->bno + run->n && src == run->src + run->n * PAGE) {
		run->n++;
		return 0;
	}
	page_run_fill(s, run);
	*run = (struct page_run){bno, src, 1};
	return 0;
}

int pog_inline_check(pog_store *s, const struct pog_inode *in)
{
	if (pog_crc32(in->inline_data, in->size) == in->direct_crc)
		return 0;
	atomic_fetch_add(&s->env->checksum_errors, 1);
	pog_set_error(s, "checksum mismatch in inline data");
	return POG_ECORRUPT;
}

void pog_inline_seal(struct pog_inode *in)
{
	in->direct_crc = pog_crc32(in->inline_data, in->size);
}

/* Move inline bytes out into page 0, when the string outgrows them. */
static int inline_to_pages(pog_store *s, struct pog_inode *in)
{
	int err = pog_inline_check(s, in);
	if (err)
		return err;
	uint8_t tmp[POG_INLINE_MAX];
	size_t n = in->size;
	memcpy(tmp, in->inline_data, n);
	in->flags &= ~POG_INODE_INLINE;
	in->content = 0;
	in->direct_crc = 0;
	return n ? page_write(s, in, 0, 0, tmp, n) : 0;
}

static bool fits_inline(const struct pog_inode *in, uint64_t end)
{
	return end <= POG_INLINE_MAX &&
	       ((in->flags & POG_INODE_INLINE) ||
		(!(in->flags & POG_INODE_DIRECT) && !in->content));
}

int pog_data_write(pog_store *s, struct pog_inode *in, uint64_t off,
		   const void *buf, size_t len)
{
	uint64_t end = off + len > in->size ? off + len : in->size;
	if (fits_inline(in, end)) {
		if (!(in->flags & POG_INODE_INLINE)) {
			/* No page holds a byte of it (all holes): zeros. */
			in->flags |= POG_INODE_INLINE;
			memset(in->inline_data, 0, POG_INLINE_MAX);
			in->size = 0;
		} else {
			int err = pog_inline_check(s, in);
			if (err)
				return err;
		}
		if (in->size < off)
			memset(in->inline_data + in->size, 0, off - in->size);
		memcpy(in->inline_data + off, buf, len);
		in->size = end;
		pog_inline_seal(in);
		return 0;
	}
	if (in->flags & POG_INODE_INLINE) {
		int err = inline_to_pages(s, in);
		if (err)
			return err;
	}
	const char *p = buf;
	struct page_run run = {0};
	int err = 0;
	while (len) {
		uint64_t page = off / PAGE;
		size_t at = off % PAGE, n = PAGE - at;
		if (n > len)
			n = len;
		if (p && n == PAGE)
			err = page_write_whole(s, in, page, p, &run);
		else
			err = page_write(s, in, page, at, p, n);
		if (err)
			break;
		off += n;
		len -= n;
		if (p)
			p += n;
	}
	page_run_fill(s, &run);
	return err;
}

/*
 * Read up to len bytes at off. A damaged page (or page-table node)
 * anywhere in the range fails the whole read: a short count would be
 * taken for the end of the file, and the bytes after it would be lost
 * without a word.
 */
ssize_t pog_data_read(pog_store *s, const struct pog_inode *in, uint64_t off,
		      void *buf, size_t len)
{
	if (off >= in->size)
		return 0;
	if (len > in->size - off)
		len = in->size - off;
	if (in->flags & POG_INODE_INLINE) {
		int err = pog_inline_check(s, in);
		if (err)
			return err;
		memcpy(buf, in->inline_data + off, len);
		return (ssize_t)len;
	}
	char *out = buf;
	size_t done = 0;
	while (done < len) {
		uint64_t page = (off + done) / PAGE;
		size_t at = (off + done) % PAGE, n = PAGE - at;
		if (n > len - done)
			n = len - done;
		struct pog_page_ref ref;
		int err = page_ref(s, in, page, &ref);
		if (err == -ENOENT) {
			memset(out + done, 0, n);
		} else if (err) {
			return err;
		} else {
			const void *data;
			err = pog_page_read(s, ref.bno, ref.crc, &data);
			if (err)
				return err;
			memcpy(out + done, (const char *)data + at, n);
		}
		done += n;
	}
	return (ssize_t)done;
}

/* Drop pages at or past the new size and zero the tail of the last one. */
int pog_data_truncate(pog_store *s, struct pog_inode *in, uint64_t size)
{
	if (in->flags & POG_INODE_INLINE) {
		int err = size ? pog_inline_check(s, in) : 0;
		if (err)
			return err;
		if (size <= POG_INLINE_MAX) {
			if (size > in->size)
				memset(in->inline_data + in->size, 0, size - in->size);
			in->size = size;
			if (!size)
				in->flags &= ~POG_INODE_INLINE;
			pog_inline_seal(in);
			return 0;
		}
		err = inline_to_pages(s, in);
		if (err)
			return err;
	}
	if (size < in->size) {
		uint64_t first = (size + PAGE - 1) / PAGE;
		if (in->flags & POG_INODE_DIRECT) {
			if (first == 0) {
				int err = page_drop(s, in, 0);
				if (err)
					return err;
			}
		} else {
			for (;;) {
				struct pog_bt_iter it;
				int r = pog_bt_seek(&it, s, in->content, first);
				if (r < 0)
					return r;
				if (r == 0)
					break;
				uint64_t key;
				pog_bt_cur(&it, &key, NULL, NULL);
				int err = page_drop(s, in, key);
				if (err)
					return err;
			}
		}
		if (size % PAGE) {
			struct pog_page_ref ref;
			if (page_ref(s, in, size / PAGE, &ref) == 0) {
				int err = page_write(s, in, size / PAGE, size % PAGE,
						     NULL, PAGE - size % PAGE);
				if (err)
					return err;
			}
		}
	}
	in->size = size;
	return 0;
}

/* Release every page and page-table node of a string. */
int pog_data_release(pog_store *s, struct pog_inode *in)
{
	return pog_data_truncate(s, in, 0);
}

/* Zero [at, at + n) of page `page`, unless it is a hole already. */
static int page_zero(pog_store *s, struct pog_inode *in, uint64_t page,
		     size_t at, size_t n)
{
	struct pog_page_ref ref;
	int err = page_ref(s, in, page, &ref);
	if (err)
		return err == -ENOENT ? 0 : err;
	return page_write(s, in, page, at, NULL, n);
}

/* Drop the pages first .. end - 1 (they become holes). */
static int pages_drop(pog_store *s, struct pog_inode *in, uint64_t first,
		      uint64_t end)
{
	if (in->flags & POG_INODE_DIRECT)
		return first == 0 && end > 0 ? page_drop(s, in, 0) : 0;
	for (;;) {
		struct pog_bt_iter it;
		uint64_t key;
		int r = pog_bt_seek(&it, s, in->content, first);
		if (r <= 0)
			return r;
		pog_bt_cur(&it, &key, NULL, NULL);
		if (key >= end)
			return 0;
		r = page_drop(s, in, key);
		if (r)
			return r;
		first = key + 1;
	}
}

/*
 * Make bytes [off, end) of a string read as zeros, as tmpfs punches a
 * hole: the pages wholly inside the range become holes (the last page
 * too when the range runs past the end), the partial ones at either end
 * are zeroed (copied on write) up to the size. An inline string whose
 * page would go becomes a hole. Reports in *pages whether page content
 * was written.
 */
static int data_zero(pog_store *s, struct pog_inode *in, uint64_t off,
		     uint64_t end, bool *pages)
{
	uint64_t first = (off + PAGE - 1) / PAGE, last = end / PAGE;
	uint64_t zend = end < in->size ? end : in->size; /* bytes to zero */
	*pages = false;
	if (off >= zend)
		return 0;
	if (in->flags & POG_INODE_INLINE) {
		int err = pog_inline_check(s, in);
		if (err)
			return err;
		if (first == 0 && last >= 1) { /* its one page goes */
			in->flags &= ~POG_INODE_INLINE;
			in->content = 0;
			in->direct_crc = 0;
			return 0;
		}
		memset(in->inline_data + off, 0, zend - off);
		pog_inline_seal(in);
		return 0;
	}
	int err = 0;
	if (off % PAGE) { /* the head, up to the first whole page */
		uint64_t stop = first * PAGE < zend ? first * PAGE : zend;
		err = page_zero(s, in, off / PAGE, off % PAGE, stop - off);
		*pages = true;
	}
	if (!err && last >= first && last * PAGE < zend && end % PAGE) {
		/* the tail, after the last whole page */
		err = page_zero(s, in, last, 0, zend - last * PAGE);
		*pages = true;
	}
	if (!err && first < last)
		err = pages_drop(s, in, first, last);
	return err;
}

/*
 * lseek's SEEK_DATA / SEEK_HOLE by page: a page that exists is data (a
 * written page of zeros too), a missing one a hole, and the end of the
 * file is a hole. Inline bytes are all data.
 */
static int data_seek(pog_store *s, const struct pog_inode *in, uint64_t off,
		     bool data, uint64_t *out)
{
	if (off >= in->size)
		return -ENXIO;
	uint64_t page = off / PAGE, found = page;
	bool have = false; /* found: the first page >= page that exists
			      (data) or is missing (hole) */
	if (in->flags & POG_INODE_INLINE) {
		found = data ? page : (in->size + PAGE - 1) / PAGE;
		have = true;
	} else if (in->flags & POG_INODE_DIRECT) {
		have = data ? page == 0 : true;
		found = data ? 0 : (page == 0 ? 1 : page);
	} else {
		struct pog_bt_iter it;
		int r = pog_bt_seek(&it, s, in->content, page);
		while (r > 0) {
			uint64_t key;
			pog_bt_cur(&it, &key, NULL, NULL);
			if (data || key != found)
				break;
			found++; /* a run of data pages: the hole is after it */
			r = pog_bt_next(&it);
		}
		if (r < 0)
			return r;
		if (data && r > 0)
			pog_bt_cur(&it, &found, NULL, NULL);
		have = !data || r > 0;
	}
	uint64_t at = found * PAGE > off ? found * PAGE : off;
	if (data) {
		if (!have || at >= in->size)
			return -ENXIO;
		*out = at;
	} else {
		*out = at < in->size ? at : in->size;
	}
	return 0;
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

ssize_t pog_read(pog_store *s, uint64_t ino, uint64_t off, void *buf,
		 size_t len)
{
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	ssize_t r = pog_is_dir_type(in->type) ? -EISDIR
					  : pog_data_read(s, in, off, buf, len);
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

int pog_writable_file(const struct pog_inode *in)
{
	if (pog_is_dir_type(in->type))
		return -EISDIR;
	if (in->type != POG_STRING && !pog_type_is_scalar(in->type))
		return -EINVAL;
	return 0;
}

ssize_t pog_write(pog_store *s, uint64_t ino, uint64_t off, const void *buf,
		  size_t len)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	if (off > POG_FILE_MAX || len > POG_FILE_MAX - off)
		return -EFBIG;
	int err = pog_begin_change(s, POG_SPACE_GROW, len / PAGE + 2);
	if (err)
		return err;
	struct pog_inode in;
	err = pog_inode_load(s, ino, &in);
	if (!err)
		err = pog_writable_file(&in);
	if (!err && len && pog_type_is_scalar(in.type)) {
		uint64_t end = off + len > in.size ? off + len : in.size;
		err = pog_scalar_edit(s, &in, off, buf, len, end);
	} else if (!err && len) {
		err = pog_data_write(s, &in, off, buf, len);
		if (!err && off + len > in.size)
			in.size = off + len;
		if (!err && !(in.flags & POG_INODE_INLINE))
			pog_note_change(s, ino, POG_CHG_PAGES);
	}
	if (!err)
		err = pog_object_changed(s, ino, &in, true, true);
	pog_unlock(s);
	return err ? err : (ssize_t)len;
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

/* ---- public: fallocate, holes, copies ------------------------------------------ */

/*
 * What fallocate asks for: the new size, and the end of the range to
 * zero (0: none).
 */
static int falloc_plan(const struct pog_inode *in, unsigned mode, uint64_t off,
		       uint64_t len, uint64_t *size, uint64_t *zero_end)
{
	const unsigned known = POG_FALLOC_KEEP_SIZE | POG_FALLOC_PUNCH_HOLE |
			       POG_FALLOC_ZERO_RANGE;
	if (mode & ~known)
		return -EOPNOTSUPP;
	if ((mode & POG_FALLOC_PUNCH_HOLE) &&
	    (!(mode & POG_FALLOC_KEEP_SIZE) || (mode & POG_FALLOC_ZERO_RANGE)))
		return -EOPNOTSUPP; /* as the kernel answers */
	if (len == 0)
		return -EINVAL;
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	*size = in->size;
	if (!(mode & POG_FALLOC_KEEP_SIZE) && end > in->size) {
		if (end > POG_FILE_MAX)
			return -EFBIG;
		*size = end;
	}
	*zero_end = 0;
	if (mode & (POG_FALLOC_PUNCH_HOLE | POG_FALLOC_ZERO_RANGE))
		*zero_end = end;
	return 0;
}

/*
 * Nothing can be reserved ahead of a copy-on-write, but a range that
 * could never be written is refused now: -ENOSPC when the pages of
 * [off, end) that do not exist yet outnumber the free blocks.
 */
static int falloc_space(pog_store *s, const struct pog_inode *in,
			uint64_t off, uint64_t end)
{
	/* What growing may use: the free blocks above the reserve. */
	uint64_t free = pog_free_blocks(s) > pog_reserve_blocks(s)
				? pog_free_blocks(s) - pog_reserve_blocks(s) : 0;
	uint64_t first = off / PAGE, stop = (end + PAGE - 1) / PAGE;
	uint64_t need = stop - first;
	if (need <= free)
		return 0;
	if (in->flags & POG_INODE_INLINE)
		return need - 1 <= free ? 0 : -ENOSPC;
	if (in->flags & POG_INODE_DIRECT)
		return need - (first == 0) <= free ? 0 : -ENOSPC;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, first);
	while (r > 0 && need > free) {
		uint64_t key;
		pog_bt_cur(&it, &key, NULL, NULL);
		if (key >= stop)
			break;
		need--;
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	return need <= free ? 0 : -ENOSPC;
}

/* A typed scalar's text after the change must parse, as for a write. */
static int falloc_scalar(pog_store *s, struct pog_inode *in, uint64_t off,
			 uint64_t zero_end, uint64_t size)
{
	static const char zeros[POG_INLINE_MAX];
	uint64_t zend = zero_end < in->size ? zero_end : in->size;
	uint64_t n = zend > off ? zend - off : 0;
	int err = n > POG_INLINE_MAX || size > POG_INLINE_MAX
			  ? -EINVAL
			  : pog_scalar_edit(s, in, n ? off : 0, n ? zeros : NULL,
					    (size_t)n, size);
	if (err == -EINVAL)
		pog_set_error(s, "fallocate: a %s must keep parseable text",
			      pog_type_name(in->type));
	return err;
}

int pog_fallocate(pog_store *s, uint64_t ino, unsigned mode, uint64_t off,
		  uint64_t len)
{
	if (ino & POG_COMMITTED_BIT)
		return -EROFS;
	/* Punching a hole shrinks (it may use the reserve); the rest grows. */
	int err = pog_begin_change(s, mode & POG_FALLOC_PUNCH_HOLE ? POG_SPACE_SHRINK
							       : POG_SPACE_GROW, 2);
	if (err)
		return err;
	struct pog_inode in;
	uint64_t size = 0, zero_end = 0;
	bool pages = false;
	err = pog_inode_load(s, ino, &in);
	if (!err)
		err = pog_writable_file(&in);
	if (!err)
		err = falloc_plan(&in, mode, off, len, &size, &zero_end);
	if (!err && !zero_end)
		err = falloc_space(s, &in, off, len > UINT64_MAX - off
						       ? UINT64_MAX : off + len);
	/* Only bytes before the end need zeros: past it they read as zeros
	 * once the size grows over them. */
	if (err || (size == in.size && (zero_end <= off || off >= in.size)))
		goto out; /* nothing to change: no staged change either */
	if (pog_type_is_scalar(in.type)) {
		err = falloc_scalar(s, &in, off, zero_end, size);
	} else {
		err = data_zero(s, &in, off, zero_end, &pages);
		if (!err && size != in.size)
			err = pog_data_truncate(s, &in, size);
	}
	if (!err && pages)
		pog_note_change(s, ino, POG_CHG_PAGES);
	if (!err)
		err = pog_object_changed(s, ino, &in, true, true);
out:
	pog_unlock(s);
	return err;
}

int pog_seek(pog_store *s, uint64_t ino, uint64_t off, int whence,
	     uint64_t *out)
{
	if (whence != POG_SEEK_DATA && whence != POG_SEEK_HOLE)
		return -EINVAL;
	const struct pog_state *st;
	const struct pog_inode *in;
	int err = pog_read_begin(s, &ino, &st, &in);
	if (err)
		return err;
	err = pog_writable_file(in);
	if (!err)
		err = data_seek(s, in, off, whence == POG_SEEK_DATA, out);
	pog_unlock(s);
	return err;
}

ssize_t pog_copy_range(pog_store *s, uint64_t ino_in, uint64_t off_in,
		       uint64_t ino_out, uint64_t off_out, size_t len)
{
	const size_t chunk = (size_t)1 << 20;
	if (ino_out & POG_COMMITTED_BIT)
		return -EROFS;
	if (off_in > POG_FILE_MAX || off_out > POG_FILE_MAX)
		return -EFBIG;
	if (len > POG_FILE_MAX)
		len = POG_FILE_MAX; /* "to the end": nothing is longer */
	if ((ino_in & POG_INO_MASK) == ino_out &&
	    off_in < off_out + len && off_out < off_in + len)
		return -EINVAL; /* overlapping in one file, as the kernel */
	char *buf = malloc(len < chunk ? (len ? len : 1) : chunk);
	if (!buf)
		return -ENOMEM;
	size_t done = 0;
	ssize_t r = 0;
	while (done < len) {
		size_t n = len - done < chunk ? len - done : chunk;
		r = pog_read(s, ino_in, off_in + done, buf, n);
		if (r <= 0)
			break;
		n = (size_t)r;
		r = pog_write(s, ino_out, off_out + done, buf, n);
		if (r < 0)
			break;
		done += n;
	}
	free(buf);
	return r < 0 ? r : (ssize_t)done;
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

/* Release a string's pages and page table without reading the pages. */
void pog_pages_release(pog_store *s, const struct pog_inode *in)
{
	if (in->flags & POG_INODE_INLINE)
		return;
	if (in->flags & POG_INODE_DIRECT) {
		if (in->content)
			pog_page_release(s, in->content);
		return;
	}
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, 0);
	while (r > 0) {
		const void *val;
		struct pog_page_ref ref;
		pog_bt_cur(&it, NULL, &val, NULL);
		memcpy(&ref, val, sizeof(ref));
		pog_page_release(s, ref.bno);
		r = pog_bt_next(&it);
	}
	pog_bt_release(s, in->content);
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
