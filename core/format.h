/* format.h - the on-media layout of a pogfs pool (fixed-width, pinned). */
#ifndef POG_FORMAT_H
#define POG_FORMAT_H

/*
 * A pogfs pool is a libpmemobj pool (layout POG_LAYOUT) whose root object
 * is struct pog_super. Everything else lives in 4 KiB blocks carved from
 * 8 MiB segments, each segment one pmemobj allocation. A block is named by
 * its number bno = segment * POG_SEG_BLOCKS + index; block 0 of every
 * segment is that segment's header (its free bitmap), so bno 0 is never a
 * valid data block and serves as "none".
 *
 * All structures reachable from a commit are immutable: changes are
 * written copy-on-write into blocks that no commit references, and
 * published by storing the new commit record's bno into one of the two
 * commit slots of pog_super (one aligned 8-byte store): the slot that
 * does not hold the current commit, so the other one always names the
 * commit before. A small commit (format 4) lists every block and slot
 * it wrote, with their CRCs, in its record, and flushes all of it and
 * the slot together, once: after a crash that left it incomplete, the
 * open finds a listed block that does not match and takes the other
 * slot's commit (open.c). A large commit flushes its blocks first, then
 * the slot. The current commit is the valid record of higher id.
 *
 * Block kinds: B+tree nodes (struct pog_node_hdr first), data pages (raw
 * bytes, CRC kept by whoever points at them), and commit records.
 *
 * Small nodes (format 2): the root leaf of a small tree (a map or list of
 * a few entries, a few xattrs, a short page table) is a 256, 512, 1024 or
 * 2048-byte slot of a block that holds only slots of that size, named by a
 * node address with POG_NODE_SMALL set (see below); a leaf that outgrows
 * its slot moves to the next size, and to a whole block after 2048. Every
 * other node address is a plain bno. A format-1 pool has no small nodes,
 * so it is a valid format-2 pool: opening it writable just records 2.
 *
 * Data pages are content-addressed: at commit every new page is looked up
 * by its CRC in the page index (POG_TREE_PAGEHASH) and, when the bytes of
 * an indexed page are the same, shared instead of stored again. So pages
 * may have many owners and are freed only by the garbage collector, which
 * also drops index entries of pages nothing holds any more.
 */

#include <stdint.h>
#include <libpmemobj.h>

#define POG_LAYOUT "pogfs"
#define POG_SUPER_MAGIC 0x314c4f4f50474f50ULL /* "POGPOOL1" */
#define POG_FORMAT_VERSION 4u
#define POG_BLOCK_SIZE 4096u
#define POG_BLOCK_SHIFT 12
#define POG_SEG_BLOCKS 2048u /* 8 MiB segments */
#define POG_SEG_BYTES ((uint64_t)POG_SEG_BLOCKS * POG_BLOCK_SIZE)
#define POG_DEFAULT_POOL_SIZE ((uint64_t)1 << 30)
#define POG_MIN_POOL_SIZE ((uint64_t)32 << 20)

/* One segment table slot (array in pog_super.segtab). */
struct pog_seg_slot {
	PMEMoid oid;      /* the pmemobj allocation (POG_SEG_BYTES + 1 block) */
	uint64_t base;    /* pool offset of block 0, 4 KiB aligned */
};
_Static_assert(sizeof(struct pog_seg_slot) == 24, "seg slot size");

/* The pmemobj root object. */
struct pog_super {
	uint64_t magic;
	uint32_t format_version;
	uint32_t block_size;
	uint64_t pool_size;
	uint64_t seg_blocks;
	uint64_t max_segments;  /* lowered if libpmemobj has less room */
	uint64_t nsegments;     /* slots in use */
	PMEMoid segtab;         /* struct pog_seg_slot[max_segments] */
	uint64_t commit_block;  /* commit slot 0: a commit record's bno */
	uint64_t clean;         /* 1: segment bitmaps are exact */
	uint64_t uuid[2];
	/* The last close that discarded staged changes (pog info shows it):
	 * how many, and when (seconds since the epoch); 0 when none yet.
	 * Taken from reserved space: older pools read 0 and older pogfs
	 * leave them alone, so the format version stays. */
	uint64_t discarded_changes;
	int64_t discarded_time;
	/* Format 3 (history, core/history.c): how many recent commits stay
	 * readable (0: the default, 16), and the snapshot names (a
	 * libpmemobj object, struct pog_snap_table; OID_NULL: none). */
	uint32_t keep;
	uint32_t pad;
	PMEMoid snapshots;
	/* Format 4: commit slot 1 (0 in older pools: none). */
	uint64_t commit_block2;
	uint64_t reserved[10];
};
_Static_assert(sizeof(struct pog_super) == 224, "super size");

/* Block 0 of a segment: its free-space bitmap (bit set = block in use). */
#define POG_SEG_MAGIC 0x3147455347474f50ULL /* "POGGSEG1" */
struct pog_seg_header {
	uint64_t magic;
	uint64_t index;
	uint64_t bitmap[POG_SEG_BLOCKS / 64];
};
_Static_assert(sizeof(struct pog_seg_header) == 16 + 256, "seg header");

/* A commit record: one block. */
#define POG_COMMIT_MAGIC 0x54494d4d4f43474fULL /* "OGCOMMIT" */
struct pog_commit_rec {
	uint64_t magic;
	uint64_t id;
	int64_t time_sec;
	uint32_t time_nsec;
	uint32_t crc;         /* crc32 of this struct with crc = 0 */
	uint64_t obj_root;    /* object table B+tree */
	uint64_t log_root;    /* commit log B+tree */
	uint64_t next_ino;
	uint64_t nobjects;
	uint64_t prev_commit; /* informational: earlier record's bno */
	uint64_t changes;
	uint64_t dedup_root;  /* page index: crc << 16 | seq -> page bno */
	uint64_t logical_bytes; /* sizes of all files, as if nothing shared */
	/* Format 3: the older commits still retained when this one was made
	 * (the last keep, and snapshots), as history_count struct
	 * pog_history_ent after this record in its block, sorted by id;
	 * history_crc is their crc32. Zero in older records: no history. */
	uint64_t history_count;
	uint64_t history_crc;
	/* Format 4: fresh_count struct pog_fresh_ent after the history
	 * entries, fresh_crc their crc32; 0: the commit's blocks were
	 * flushed before its commit slot (nothing to check). */
	uint32_t fresh_count;
	uint32_t fresh_crc;
	uint64_t lists;       /* POG_LISTS_COUNTED: list trees count their
				 entries (0: format 2, rebuilt when opened
				 writable) */
};
_Static_assert(sizeof(struct pog_commit_rec) == 128, "commit rec size");
#define POG_LISTS_COUNTED 3u

struct pog_history_ent {
	uint64_t id;   /* commit id */
	uint64_t bno;  /* its record */
};
#define POG_HISTORY_MAX \
	((POG_BLOCK_SIZE - sizeof(struct pog_commit_rec)) / sizeof(struct pog_history_ent))

/* A block (addr a bno) or small slot (a small node address) that a
 * commit wrote, and the crc32 of its bytes as committed. */
struct pog_fresh_ent {
	uint64_t addr;
	uint32_t crc;
	uint32_t len;
};
_Static_assert(sizeof(struct pog_fresh_ent) == 16, "fresh entry size");

/* Snapshot names (format 3): a libpmemobj object, replaced whole in a
 * libpmemobj transaction by each snapshot and unsnapshot. count entries
 * follow: u64 commit id, u16 name length, the name's key bytes, padded
 * to 8. crc: crc32 of the entries. */
#define POG_SNAP_MAGIC 0x3150414e53474f50ULL /* "POGSNAP1" */
struct pog_snap_table {
	uint64_t magic;
	uint32_t count;
	uint32_t crc;
	uint64_t bytes;  /* of the entries */
};

/* B+tree node header; the rest of the block is the node's body. */
#define POG_NODE_MAGIC 0x4e47u /* "GN" */
struct pog_node_hdr {
	uint16_t magic;
	uint16_t level;   /* 0 = leaf */
	uint16_t count;   /* entries */
	uint16_t free_end; /* leaf: start of the entry heap (grows down) */
	uint32_t crc;     /* crc32 of the block with crc = 0, set at commit */
	uint32_t tree;    /* enum pog_tree_kind, for checking */
};
_Static_assert(sizeof(struct pog_node_hdr) == 16, "node header size");

/*
 * Leaf body: count uint16_t slot offsets (sorted by key) right after the
 * header; each slot points at an entry in the heap at the end of the
 * block: struct pog_leaf_entry followed by vlen value bytes, padded to 8.
 * Internal body: count struct pog_branch, sorted; key of [0] is ignored.
 */
struct pog_leaf_entry {
	uint64_t key;
	uint16_t vlen;
	uint16_t reserved[3];
};
_Static_assert(sizeof(struct pog_leaf_entry) == 16, "leaf entry size");
/* Entries take whole 8-byte units so that every value is 8-byte aligned. */
#define POG_LEAF_ENTRY_SIZE(vlen) \
	((sizeof(struct pog_leaf_entry) + (vlen) + 7u) & ~(size_t)7u)

struct pog_branch {
	uint64_t key;
	uint64_t child;
};
_Static_assert(sizeof(struct pog_branch) == 16, "branch size");

#define POG_BRANCH_MAX ((POG_BLOCK_SIZE - sizeof(struct pog_node_hdr)) / 16)

/*
 * Branch nodes of a list's tree (POG_TREE_LIST, format 3) also count the
 * entries under each child, so that a position is a rank found in
 * O(log n): up to POG_LIST_BRANCH_MAX branches, then at
 * POG_LIST_COUNTS_OFFSET a u64 count for each. (Format 2 list trees have
 * plain branch nodes; pog_open rebuilds them.)
 */
#define POG_LIST_BRANCH_MAX ((POG_BLOCK_SIZE - sizeof(struct pog_node_hdr)) / 24)
#define POG_LIST_COUNTS_OFFSET \
	(sizeof(struct pog_node_hdr) + POG_LIST_BRANCH_MAX * sizeof(struct pog_branch))
_Static_assert(POG_LIST_COUNTS_OFFSET + POG_LIST_BRANCH_MAX * 8 <= POG_BLOCK_SIZE,
	       "list branch counts fit a block");

/*
 * Node address of a small node: POG_NODE_SMALL | class << 56 | bno << 4 |
 * slot, where the node is 256 << class bytes at slot * that size in block
 * bno (class 0..3; slot < 16 >> class). A leaf only: branches are blocks.
 */
#define POG_NODE_SMALL (1ULL << 63)
#define POG_SMALL_CLASSES 4u
#define POG_SMALL_MIN 256u

static inline uint64_t pog_node_bno(uint64_t addr)
{
	return addr & POG_NODE_SMALL ? (addr >> 4) & ((1ULL << 52) - 1) : addr;
}

static inline unsigned pog_node_class(uint64_t addr)
{
	return (unsigned)(addr >> 56) & 7u;
}

static inline unsigned pog_node_slot(uint64_t addr)
{
	return (unsigned)addr & 15u;
}

/* Bytes of the node at addr. */
static inline uint32_t pog_node_size(uint64_t addr)
{
	return addr & POG_NODE_SMALL ? POG_SMALL_MIN << pog_node_class(addr)
				     : POG_BLOCK_SIZE;
}

static inline uint64_t pog_small_addr(uint64_t bno, unsigned cls,
				      unsigned slot)
{
	return POG_NODE_SMALL | (uint64_t)cls << 56 | bno << 4 | slot;
}
/* Largest value a leaf entry may carry (3 entries always fit a leaf). */
#define POG_VALUE_MAX 1296u

enum pog_tree_kind {
	POG_TREE_OBJECTS = 1, /* key ino -> struct pog_inode */
	POG_TREE_MAP = 2,     /* key hash|seq -> u64 child ino + key bytes */
	POG_TREE_LIST = 3,    /* key -> u64 child ino: stable sparse keys in
				 the list's order, counted (core/list.c) */
	POG_TREE_PAGES = 4,   /* key page index -> struct pog_page_ref */
	POG_TREE_XATTR = 5,   /* key hash|seq -> u8 namelen, name, value */
	POG_TREE_LOG = 6,     /* key commit id -> struct pog_log_rec + msg */
	POG_TREE_PAGEHASH = 7, /* key crc << 16 | seq -> u64 page bno */
};

/*
 * Object record (value in the object table). A small string keeps its
 * bytes inline, as one short page at the end of its record (the record is
 * stored only up to the inline bytes in use); direct_crc is then the CRC
 * of those bytes. Larger strings have one direct page or a page table.
 */
#define POG_INODE_DIRECT 1u  /* string: content is the bno of page 0 */
#define POG_INODE_INLINE 2u  /* string: the bytes are in inline_data */
#define POG_INLINE_MAX 128u
struct pog_inode {
	uint32_t type;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint32_t flags;
	uint64_t size;
	int64_t atime_sec;
	int64_t mtime_sec;
	int64_t ctime_sec;
	uint32_t atime_nsec;
	uint32_t mtime_nsec;
	uint32_t ctime_nsec;
	uint32_t direct_crc; /* POG_INODE_DIRECT: crc of the page */
	union {
		uint64_t content; /* tree root / page bno / scalar bits / ref ino */
		uint64_t rdev;    /* POG_SPECIAL: the device number */
	};
	uint64_t xattrs;     /* xattr tree root */
	uint64_t parent;     /* owning directory, 0 when none */
	uint64_t parent_key; /* the entry's key there */
	uint64_t entries;    /* maps, lists: number of entries */
	uint64_t blocks;     /* data blocks held (for st_blocks) */
	uint8_t inline_data[POG_INLINE_MAX];
};
#define POG_INODE_FIXED 120u /* bytes before inline_data */
_Static_assert(sizeof(struct pog_inode) == POG_INODE_FIXED + POG_INLINE_MAX,
	       "inode size");

/* Page table entry. */
struct pog_page_ref {
	uint64_t bno;
	uint32_t crc;
	uint32_t reserved;
};
_Static_assert(sizeof(struct pog_page_ref) == 16, "page ref size");

/* Commit log value (message bytes follow). */
struct pog_log_rec {
	int64_t time_sec;
	uint32_t time_nsec;
	uint32_t reserved;
	uint64_t changes;
};
_Static_assert(sizeof(struct pog_log_rec) == 24, "log rec size");

#endif /* POG_FORMAT_H */
