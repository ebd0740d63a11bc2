/* object_int.h - what the object layer's files share among themselves. */
#ifndef POG_OBJECT_INT_H
#define POG_OBJECT_INT_H

#include "store_int.h"

/*
 * The object layer is one concern a file: inode.c (records and
 * attributes), dirent.c (map and list entries), pages.c (a string's
 * bytes), type.c (typed scalars, changing a type), path.c (paths, refs,
 * resolving), rename.c, xattr.c, object.c (making, linking and removing
 * objects; whole-object walks for GC and fsck). What the rest of core uses
 * is declared in store_int.h; this header is for these files only. All
 * with the store lock held, on the staged state unless a state is named.
 */

/* ---- inode.c ----------------------------------------------------------- */
/* Bytes an object adds to the store's logical size. */
uint64_t pog_logical_size(const struct pog_inode *in);
/*
 * Store an object whose record the caller changed: ctime (and with mtime
 * the mtime) become now, the change is noted, and with content its hash
 * goes stale.
 */
int pog_object_changed(pog_store *s, uint64_t ino, struct pog_inode *in,
		       bool mtime, bool content);
/* A map or a list: an object with entries, shown as a directory. */
bool pog_is_dir_type(uint32_t type);
/* ctime, and with mtime the mtime, become now. */
void pog_stamp(struct pog_inode *in, bool mtime);
/* The attributes of ino (record in, read in state st). */
void pog_fill_attr(pog_store *s, const struct pog_state *st, uint64_t ino,
		   const struct pog_inode *in, struct pog_attr *a);
/*
 * Begin a read of *ino: the read lock, the state its view bit names (the
 * bit is stripped) and its record. On success the caller unlocks; on
 * failure nothing is held.
 */
int pog_read_begin(pog_store *s, uint64_t *ino, const struct pog_state **st,
		   const struct pog_inode **in);
/* Take the write lock and make sure the change cannot run out of blocks
 * half-way (see the definition). */
int pog_begin_change(pog_store *s, enum pog_space kind, uint64_t pages);

/* ---- dirent.c ---------------------------------------------------------- */
/*
 * Trees keyed by name (maps, xattrs) use the key hash(name) | seq, seq
 * 0..15 telling apart names whose hashes collide. Each kind of value
 * stores the name its own way: a map entry after the child's identity, an
 * xattr after a length byte.
 */
struct pog_named {
	const char *name;
	size_t len;
	bool xattr;
	uint64_t region; /* high key bits: POG_LIST_NAMED in a list */
};
/* Find n in its hash bucket: 0 with *key, *val, *vlen; else -ENOENT and,
 * when free_key is given, a free key for it (-ENOSPC: bucket full). */
int pog_bucket_find(pog_store *s, uint64_t root, const struct pog_named *n,
		    uint64_t *key, const void **val, uint16_t *vlen,
		    uint64_t *free_key);
/* The name a list entry shows: its position, or its escaped temporary
 * name. */
ssize_t pog_list_entry_name(const struct pog_list_names *nm, uint64_t key,
			    const void *val, uint16_t vlen, char *name,
			    size_t size);
/*
 * Look up a child of dir (ino, in state st): *key is its key in dir.
 * -ENOENT, -ENOTDIR. In a list a number is a position (list.c); a
 * temporary name is found as a map key is.
 */
int pog_dir_find(pog_store *s, uint64_t ino, const struct pog_state *st,
		 const struct pog_inode *dir, const char *name, size_t len,
		 uint64_t *key, uint64_t *child);
/* Re-point an existing entry at another child, keeping its name. */
int pog_entry_set_child(pog_store *s, struct pog_inode *dir, uint64_t key,
			uint64_t child);
/* Remove entry key from dir (ino). */
int pog_entry_remove(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     uint64_t key);
/* Where a new entry for name goes: -EEXIST when taken. */
int pog_entry_slot(pog_store *s, uint64_t ino, struct pog_inode *dir,
		   const char *name, size_t len, uint64_t *key);
/* Add an entry to dir (ino) at the key pog_entry_slot gave for name. */
int pog_entry_insert(pog_store *s, uint64_t ino, struct pog_inode *dir,
		     uint64_t key, uint64_t child, const char *name,
		     size_t len);
/* -ENAMETOOLONG for a key longer than POG_KEY_MAX. */
int pog_check_name(size_t len);
/* Call fn for each entry of a map (key order) or list (its order) with
 * the entry's key bytes: a list's integer names are written out. */
typedef int (*pog_dir_entry_fn)(void *ctx, uint64_t key, uint64_t child,
				const char *name, size_t len);
int pog_dir_foreach(pog_store *s, uint64_t ino, const struct pog_inode *in,
		    pog_dir_entry_fn fn, void *ctx);

/* ---- pages.c ----------------------------------------------------------- */
/* Write len bytes of buf (NULL: zeros) at off: inline, or into pages. */
int pog_data_write(pog_store *s, struct pog_inode *in, uint64_t off,
		   const void *buf, size_t len);
/* Drop pages at or past the new size and zero the tail of the last one. */
int pog_data_truncate(pog_store *s, struct pog_inode *in, uint64_t size);
/* Check and seal the CRC of a string's (or scalar's) inline bytes. */
int pog_inline_check(pog_store *s, const struct pog_inode *in);
void pog_inline_seal(struct pog_inode *in);
/* Release a string's pages and page table without reading the pages. */
void pog_pages_release(pog_store *s, const struct pog_inode *in);
/* A string or a typed scalar: -EISDIR, -EINVAL. */
int pog_writable_file(const struct pog_inode *in);

/* ---- path.c ------------------------------------------------------------ */
/* A symlink's text, or a ref's target as a path relative to its place. */
ssize_t pog_readlink_locked(pog_store *s, const struct pog_state *st,
			    uint64_t ino, const struct pog_inode *in,
			    char *buf, size_t size);

/* ---- type.c ------------------------------------------------------------ */
/* Change a typed scalar's text (must parse as its type, else -EINVAL). */
int pog_scalar_edit(pog_store *s, struct pog_inode *in, uint64_t off,
		    const void *buf, size_t len, uint64_t new_size);

/* ---- object.c ---------------------------------------------------------- */
/* An edit hook failed after its operation succeeded: the reason is kept. */
void pog_edit_hook(pog_store *s, int err);
/* The child leaves its place (dir already updated by the caller). */
int pog_child_unlinked(pog_store *s, uint64_t ino, uint64_t dir,
		       uint64_t key);

#endif /* POG_OBJECT_INT_H */
