/* poolcheck.c - what libpmemobj will trust in a pool file, checked before
 * pmemobj_open is given it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

/*
 * libpmemobj (1.12.1, what Debian ships) checks the checksums of its pool
 * header, its descriptor and its heap header, but then follows offsets
 * and sizes that no checksum covers: the undo and redo logs of every lane
 * (an entry's size, the offset of a log's extension), the zone and chunk
 * headers of the heap (a chunk of size 0 makes its check loop forever, a
 * zone size past the zone reads past the mapping), a run's block size (it
 * divides by it), and the root object's offset. A flipped byte in any of
 * them crashes pmemobj_open (SIGSEGV, SIGFPE) or hangs it. So every one of
 * them is read here with pread, bounds-checked against the file, before
 * the file is mapped: a damaged pool is refused with a reason instead.
 *
 * The layouts mirror PMDK's src/common/pool_hdr.h, src/libpmemobj/obj.h,
 * lane.h, ulog.h and heap_layout.h; the walks mirror ulog.c
 * (ulog_foreach_entry, ulog_entry_valid) and heap.c (heap_check,
 * zone_calc_size_idx) and memblock.c (memblock_run_bitmap).
 */

/* pool_hdr: 4 KiB; checksum over the first 2 KiB with CKSUM_2K. */
#define PH_SIZE 4096u
#define PH_INCOMPAT_OFF 16u
#define PH_CKSUM_2K 0x0002u
#define PH_CKSUM_2K_END 2048u
#define PH_CHECKSUM_OFF 4088u

/* pmemobjpool: the descriptor (2 KiB, checksummed) after the header, then
 * fields no checksum covers. */
#define DSC_OFF PH_SIZE
#define DSC_SIZE 2048u
#define DSC_LAYOUT_MAX 1024u
#define DSC_LANES_OFF (DSC_OFF + 1024u)
#define DSC_CHECKSUM_OFF (DSC_OFF + DSC_SIZE - 8u)
#define POOL_ROOT_OFF (DSC_OFF + DSC_SIZE) /* root_offset, run_id, ... */

/* lanes: three undo/redo logs each (struct ulog: 64-byte header). */
#define LANE_SIZE 3072u
#define ULOG_HDR 64u
#define ULOG_CAP_INTERNAL 192u
#define ULOG_CAP_EXTERNAL 640u
#define ULOG_CAP_UNDO 2048u
#define ULOG_CHAIN_MAX 1024u
#define ULOG_OP_SHIFT 61
#define ULOG_OP_SET 0u
#define ULOG_OP_AND 1u
#define ULOG_OP_OR 2u
#define ULOG_OP_BUF_SET 5u
#define ULOG_OP_BUF_CPY 6u

/* heap: a 1 KiB header, then zones of a 64-byte header, MAX_CHUNK chunk
 * headers of 8 bytes and MAX_CHUNK chunks of 256 KiB. */
#define HEAP_HDR_SIZE 1024u
#define HEAP_SIGNATURE "MEMORY_HEAP_HDR"
#define MAX_CHUNK 65528u
#define CHUNKSIZE ((uint64_t)256 << 10)
#define ZONE_HDR 64u
#define ZONE_META ((uint64_t)ZONE_HDR + 8u * MAX_CHUNK)
#define ZONE_MAX_SIZE (ZONE_META + CHUNKSIZE * MAX_CHUNK)
#define ZONE_MIN_SIZE (ZONE_META + CHUNKSIZE)
#define ZONE_MAGIC 0xC3F0A2D2u
enum { CHUNK_FREE = 2, CHUNK_USED = 3, CHUNK_RUN = 4, CHUNK_RUN_DATA = 5 };
#define CHUNK_FLAG_ALIGNED 0x4u
#define CHUNK_FLAG_FLEX_BITMAP 0x8u
#define CHUNK_FLAGS_VALID 0xFu
#define RUN_HDR 16u
#define RUN_CONTENT_BYTES(n) (CHUNKSIZE - RUN_HDR + ((uint64_t)(n) - 1) * CHUNKSIZE)
#define RUN_DEFAULT_BITMAP_VALUES 38u
#define RUN_DEFAULT_SIZE_BYTES(n) \
	(CHUNKSIZE - RUN_HDR - 8u * RUN_DEFAULT_BITMAP_VALUES + \
	 ((uint64_t)(n) - 1) * CHUNKSIZE)

struct pcheck {
	int fd;
	uint64_t size;      /* of the file */
	uint64_t heap_off;  /* where the heap starts */
	char *why;
	size_t why_size;
	/* one region read whole (the lanes), so that log walks do not pread
	 * each entry */
	uint64_t cache_off;
	size_t cache_len;
	unsigned char *cache;
};

static int damaged(struct pcheck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int damaged(struct pcheck *c, const char *fmt, ...)
{
	if (c->why && c->why_size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->why, c->why_size, fmt, ap);
		va_end(ap);
	}
	return POG_EDAMAGED;
}

/* Read len bytes at off; damaged when they are not all in the file. */
static int get(struct pcheck *c, uint64_t off, void *buf, size_t len,
	       const char *what)
{
	if (off > c->size || len > c->size - off)
		return damaged(c, "%s at offset %llu is past the end of the file",
			       what, (unsigned long long)off);
	if (c->cache && off >= c->cache_off &&
	    off - c->cache_off + len <= c->cache_len) {
		memcpy(buf, c->cache + (off - c->cache_off), len);
		return 0;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(c->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return damaged(c, "%s: the file is shorter than it says",
				       what);
		done += (size_t)n;
	}
	return 0;
}

static uint64_t le64_at(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* PMDK's Fletcher64-like util_checksum_compute: 32-bit words summed; the
 * checksum's own 8 bytes and everything from skip on count as zero. */
static uint64_t fletcher64(const unsigned char *p, size_t len, size_t csum_off,
			   size_t skip)
{
	uint32_t lo = 0, hi = 0;
	for (size_t i = 0; i + 4 <= len; i += 4) {
		if (!(i >= csum_off && i < csum_off + 8) && i < skip)
			lo += le32_at(p + i);
		hi += lo;
	}
	return (uint64_t)hi << 32 | lo;
}

/* The sequential form (util_checksum_seq), continuing from csum. */
static uint64_t fletcher64_seq(const unsigned char *p, size_t len, uint64_t csum)
{
	uint32_t lo = (uint32_t)csum, hi = (uint32_t)(csum >> 32);
	for (size_t i = 0; i + 4 <= len; i += 4) {
		lo += le32_at(p + i);
		hi += lo;
	}
	return (uint64_t)hi << 32 | lo;
}

/* ---- header and descriptor ---------------------------------------------- */

static int check_header(struct pcheck *c)
{
	unsigned char h[PH_SIZE];
	if (c->size < PH_SIZE)
		return POG_ENOTPOOL;
	int err = get(c, 0, h, sizeof(h), "pool header");
	if (err)
		return err;
	if (memcmp(h, "PMEMOBJ", 8) != 0)
		return POG_ENOTPOOL;
	uint32_t incompat = le32_at(h + PH_INCOMPAT_OFF);
	size_t skip = incompat & PH_CKSUM_2K ? PH_CKSUM_2K_END : PH_CHECKSUM_OFF;
	if (fletcher64(h, sizeof(h), PH_CHECKSUM_OFF, skip) !=
	    le64_at(h + PH_CHECKSUM_OFF))
		return damaged(c, "pool header checksum mismatch");
	return 0;
}

struct descriptor {
	uint64_t lanes_off, nlanes, heap_off;
	uint64_t root_off, run_id, root_size, conversion, heap_size;
};

static int check_descriptor(struct pcheck *c, struct descriptor *d)
{
	unsigned char b[DSC_SIZE + 40];
	int err = get(c, DSC_OFF, b, sizeof(b), "pool descriptor");
	if (err)
		return err;
	if (fletcher64(b, DSC_SIZE, DSC_SIZE - 8, DSC_SIZE) !=
	    le64_at(b + DSC_SIZE - 8))
		return damaged(c, "pool descriptor checksum mismatch");
	if (strncmp((const char *)b, POG_LAYOUT, DSC_LAYOUT_MAX) != 0)
		return POG_ENOTPOOL; /* another program's pmemobj pool */
	const unsigned char *f = b + 1024;
	d->lanes_off = le64_at(f);
	d->nlanes = le64_at(f + 8);
	d->heap_off = le64_at(f + 16);
	f = b + DSC_SIZE;
	d->root_off = le64_at(f);
	d->run_id = le64_at(f + 8);
	d->root_size = le64_at(f + 16);
	d->conversion = le64_at(f + 24);
	d->heap_size = le64_at(f + 32);
	if (d->heap_off % 4096 || d->heap_off >= c->size ||
	    c->size - d->heap_off < HEAP_HDR_SIZE + ZONE_MIN_SIZE)
		return damaged(c, "heap offset %llu does not fit a %llu-byte file",
			       (unsigned long long)d->heap_off,
			       (unsigned long long)c->size);
	if (d->lanes_off < POOL_ROOT_OFF || !d->nlanes ||
	    d->lanes_off > d->heap_off ||
	    d->nlanes > (d->heap_off - d->lanes_off) / LANE_SIZE)
		return damaged(c, "%llu lanes at offset %llu do not fit before "
			       "the heap", (unsigned long long)d->nlanes,
			       (unsigned long long)d->lanes_off);
	uint64_t heap_bytes = c->size - d->heap_off;
	if (d->heap_size && d->heap_size != heap_bytes)
		return damaged(c, "heap size %llu, the file holds %llu",
			       (unsigned long long)d->heap_size,
			       (unsigned long long)heap_bytes);
	if (d->run_id % 2)
		return damaged(c, "odd run id %llu", (unsigned long long)d->run_id);
	if (d->root_size < sizeof(struct pog_super) || d->root_off < d->heap_off ||
	    d->root_off > c->size || d->root_size > c->size - d->root_off)
		return damaged(c, "root object (%llu bytes at offset %llu) is not "
			       "in the heap", (unsigned long long)d->root_size,
			       (unsigned long long)d->root_off);
	c->heap_off = d->heap_off;
	return 0;
}

/* ---- lanes: undo and redo logs ------------------------------------------ */

struct ulog_hdr {
	uint64_t off;      /* of the log in the file */
	uint64_t next;     /* offset of its extension, 0 = none */
	uint64_t capacity; /* bytes of entries */
	uint64_t gen_num;
};

static int read_ulog(struct pcheck *c, uint64_t off, struct ulog_hdr *u,
		     const char *what)
{
	unsigned char h[ULOG_HDR];
	int err = get(c, off, h, sizeof(h), what);
	if (err)
		return err;
	u->off = off;
	u->next = le64_at(h + 8);
	u->capacity = le64_at(h + 16);
	u->gen_num = le64_at(h + 24);
	if (u->capacity > c->size - off - ULOG_HDR)
		return damaged(c, "%s: capacity %llu runs past the end of the file",
			       what, (unsigned long long)u->capacity);
	return 0;
}

/* The extension after u: in the heap, cache-line aligned, in the file. */
static int next_ulog(struct pcheck *c, const struct ulog_hdr *u,
		     struct ulog_hdr *next, const char *what)
{
	if (u->next % 64 || u->next < c->heap_off || u->next >= c->size)
		return damaged(c, "%s: extension at offset %llu is not in the heap",
			       what, (unsigned long long)u->next);
	return read_ulog(c, u->next, next, what);
}

/*
 * Is the entry at off one that libpmemobj's ulog_entry_valid takes? Fills
 * *size with its size (as ulog_entry_size), 0 when the walk stops there.
 */
static int ulog_entry(struct pcheck *c, uint64_t off, uint64_t gen_num,
		      bool undo, uint64_t *size, const char *what)
{
	unsigned char e[24];
	int err = get(c, off, e, 8, what);
	if (err)
		return err;
	uint64_t word = le64_at(e);
	*size = 0;
	if (word == 0)
		return 0; /* the end */
	unsigned op = (unsigned)(word >> ULOG_OP_SHIFT);
	/* an undo log holds only snapshots (tx.c tx_undo_entry_apply), and
	 * libpmemobj applies every entry it takes at open without checking
	 * the log's checksum: a value entry there is damage */
	if (undo && (op == ULOG_OP_SET || op == ULOG_OP_AND || op == ULOG_OP_OR))
		return damaged(c, "%s: a value entry (undo logs hold snapshots)",
			       what);
	if (op == ULOG_OP_SET || op == ULOG_OP_AND || op == ULOG_OP_OR) {
		*size = 16;
		return 0;
	}
	if (op != ULOG_OP_BUF_SET && op != ULOG_OP_BUF_CPY)
		return damaged(c, "%s: entry of unknown kind %u", what, op);
	err = get(c, off, e, sizeof(e), what);
	if (err)
		return err;
	uint64_t bytes = le64_at(e + 16);
	if (bytes > c->size - off)
		return damaged(c, "%s: entry of %llu bytes runs past the end of "
			       "the file", what, (unsigned long long)bytes);
	uint64_t total = (24 + bytes + 63) & ~(uint64_t)63;
	if (total > c->size - off)
		return damaged(c, "%s: entry runs past the end of the file", what);
	/* its checksum, as ulog_entry_valid computes it */
	unsigned char *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	err = get(c, off, buf, total, what);
	if (!err) {
		uint64_t sum = fletcher64(buf, total, 8, total);
		unsigned char g[8];
		for (int i = 0; i < 8; i++)
			g[i] = (unsigned char)(gen_num >> (8 * i));
		sum = fletcher64_seq(g, 8, sum);
		if (sum == le64_at(buf + 8))
			*size = total;
	}
	free(buf);
	/* a snapshot it will copy back at open: its target is in the file */
	uint64_t target = word & (((uint64_t)1 << ULOG_OP_SHIFT) - 1);
	if (!err && *size && undo &&
	    (op != ULOG_OP_BUF_CPY || target > c->size || bytes > c->size - target))
		return damaged(c, "%s: a snapshot of %llu bytes at offset %llu "
			       "outside the file", what, (unsigned long long)bytes,
			       (unsigned long long)target);
	return err;
}

/* A lane's log and its extensions, walked as ulog_foreach_entry and
 * ulog_rebuild_next_vec walk them. */
static int check_ulog(struct pcheck *c, uint64_t off, uint64_t capacity,
		      bool undo, const char *what)
{
	struct ulog_hdr first, u;
	int err = read_ulog(c, off, &first, what);
	if (err)
		return err;
	/* a redo log stored holds its used size, a cleared one 0 (ulog.c) */
	if (first.capacity > capacity)
		return damaged(c, "%s: capacity %llu, room for %llu", what,
			       (unsigned long long)first.capacity,
			       (unsigned long long)capacity);
	/* libpmemobj frees a log's extensions at open (ulog_free_next) and
	 * trusts the offset to be an allocation: a wrong one crashes it.
	 * Extensions are made only for transactions larger than a lane's
	 * logs, and pogfs makes none (its transactions are a few words): an
	 * extension is damage */
	if (first.next)
		return damaged(c, "%s: an extension at offset %llu (pogfs makes "
			       "none)", what, (unsigned long long)first.next);
	/* every extension: the chain is followed whatever the entries say */
	u = first;
	for (unsigned n = 0; u.next; n++) {
		if (n >= ULOG_CHAIN_MAX)
			return damaged(c, "%s: extensions form a loop", what);
		err = next_ulog(c, &u, &u, what);
		if (err)
			return err;
	}
	/* the entries, until the first one that is not valid */
	u = first;
	for (unsigned n = 0;; n++) {
		for (uint64_t pos = 0; pos < u.capacity;) {
			uint64_t size;
			err = ulog_entry(c, u.off + ULOG_HDR + pos, first.gen_num,
					 undo, &size, what);
			if (err || !size)
				return err;
			pos += size;
		}
		if (!u.next || n >= ULOG_CHAIN_MAX)
			return 0;
		err = next_ulog(c, &u, &u, what);
		if (err)
			return err;
	}
}

static int check_lanes(struct pcheck *c, const struct descriptor *d)
{
	size_t len = (size_t)(d->nlanes * LANE_SIZE);
	c->cache = malloc(len);
	if (!c->cache)
		return -ENOMEM;
	int err = get(c, d->lanes_off, c->cache, len, "lanes");
	if (err)
		return err;
	c->cache_off = d->lanes_off;
	c->cache_len = len;
	static const struct {
		uint64_t off, capacity;
		const char *name;
	} logs[] = {
		{0, ULOG_CAP_INTERNAL, "internal redo log"},
		{ULOG_HDR + ULOG_CAP_INTERNAL, ULOG_CAP_EXTERNAL, "redo log"},
		{2 * ULOG_HDR + ULOG_CAP_INTERNAL + ULOG_CAP_EXTERNAL,
		 ULOG_CAP_UNDO, "undo log"},
	};
	char what[64];
	for (uint64_t i = 0; i < d->nlanes && !err; i++) {
		for (unsigned k = 0; k < 3 && !err; k++) {
			snprintf(what, sizeof(what), "lane %llu %s",
				 (unsigned long long)i, logs[k].name);
			err = check_ulog(c, d->lanes_off + i * LANE_SIZE + logs[k].off,
					 logs[k].capacity, k == 2, what);
		}
	}
	return err;
}

/* ---- heap: header, zones, chunks, runs ---------------------------------- */

/* heap.c heap_max_zone */
static unsigned heap_max_zone(uint64_t size)
{
	unsigned n = 0;
	size -= HEAP_HDR_SIZE;
	while (size >= ZONE_MIN_SIZE) {
		n++;
		size -= size <= ZONE_MAX_SIZE ? size : ZONE_MAX_SIZE;
	}
	return n;
}

/* heap.c zone_calc_size_idx: the chunks zone z has. */
static uint64_t zone_chunks(unsigned z, unsigned nzones, uint64_t heap_size)
{
	if (z + 1 < nzones)
		return MAX_CHUNK;
	uint64_t raw = heap_size - (uint64_t)z * ZONE_MAX_SIZE;
	raw -= ZONE_META + HEAP_HDR_SIZE;
	return raw / CHUNKSIZE;
}

static int check_heap_header(struct pcheck *c)
{
	unsigned char h[HEAP_HDR_SIZE];
	int err = get(c, c->heap_off, h, sizeof(h), "heap header");
	if (err)
		return err;
	if (fletcher64(h, sizeof(h), sizeof(h) - 8, sizeof(h)) !=
	    le64_at(h + sizeof(h) - 8))
		return damaged(c, "heap header checksum mismatch");
	if (memcmp(h, HEAP_SIGNATURE, sizeof(HEAP_SIGNATURE)) != 0 ||
	    le64_at(h + 40) != CHUNKSIZE || le64_at(h + 48) != MAX_CHUNK)
		return damaged(c, "heap header is not one libpmemobj 1.x wrote");
	return 0;
}

/* memblock.c memblock_run_bitmap: how many blocks a run has (0: none). */
static uint64_t run_blocks(uint32_t chunks, uint16_t flags, uint64_t unit,
			   uint64_t alignment)
{
	uint64_t pad = alignment ? 1 : 0;
	if (flags & CHUNK_FLAG_FLEX_BITMAP) {
		uint64_t content = RUN_CONTENT_BYTES(chunks);
		uint64_t nbits = content / unit;
		uint64_t nvalues = (nbits + 63) / 64;
		nvalues = ((nvalues + 2 + 7) & ~(uint64_t)7) - 2;
		uint64_t bytes = nvalues * 8;
		if (bytes >= content)
			return 0;
		nbits = (content - bytes) / unit;
		return nbits > pad ? nbits - pad : 0;
	}
	uint64_t n = RUN_DEFAULT_SIZE_BYTES(chunks) / unit;
	if (n > 64 * RUN_DEFAULT_BITMAP_VALUES)
		n = 64 * RUN_DEFAULT_BITMAP_VALUES; /* (it shrinks the run) */
	return n > pad ? n - pad : 0;
}

static int check_run(struct pcheck *c, uint64_t zone_off, const unsigned char *hdrs,
		     uint32_t first, uint32_t chunks, uint16_t flags,
		     unsigned z)
{
	unsigned char h[RUN_HDR];
	uint64_t off = zone_off + ZONE_META + (uint64_t)first * CHUNKSIZE;
	int err = get(c, off, h, sizeof(h), "run header");
	if (err)
		return err;
	uint64_t unit = le64_at(h), alignment = le64_at(h + 8);
	if (!(flags & CHUNK_FLAG_ALIGNED))
		alignment = 0;
	if (!unit || unit > CHUNKSIZE * MAX_CHUNK ||
	    (alignment && (alignment & (alignment - 1) || alignment > CHUNKSIZE)) ||
	    !run_blocks(chunks, flags, unit, alignment))
		return damaged(c, "zone %u chunk %u: run of %llu-byte blocks "
			       "(alignment %llu) over %u chunks", z, first,
			       (unsigned long long)unit,
			       (unsigned long long)alignment, chunks);
	for (uint32_t k = 1; k < chunks; k++) {
		const unsigned char *ch = hdrs + 8u * (first + k);
		if ((ch[0] | ch[1] << 8) != CHUNK_RUN_DATA || le32_at(ch + 4) != k)
			return damaged(c, "zone %u chunk %u: not the %u-th chunk "
				       "of the run at %u", z, first + k, k, first);
	}
	return 0;
}

static int check_zone(struct pcheck *c, unsigned z, unsigned nzones,
		      uint64_t heap_size, unsigned char *buf)
{
	uint64_t zone_off = c->heap_off + HEAP_HDR_SIZE + (uint64_t)z * ZONE_MAX_SIZE;
	int err = get(c, zone_off, buf, ZONE_HDR, "zone header");
	if (err)
		return err;
	uint32_t magic = le32_at(buf), size_idx = le32_at(buf + 4);
	if (magic == 0)
		return 0; /* never used: libpmemobj makes it when it needs it */
	uint64_t expect = zone_chunks(z, nzones, heap_size);
	if (magic != ZONE_MAGIC || size_idx != expect)
		return damaged(c, "zone %u header (magic %08x, %u chunks; %llu "
			       "expected)", z, magic, size_idx,
			       (unsigned long long)expect);
	err = get(c, zone_off + ZONE_HDR, buf, 8u * size_idx, "chunk headers");
	if (err)
		return err;
	for (uint32_t i = 0; i < size_idx;) {
		const unsigned char *ch = buf + 8u * i;
		uint16_t type = (uint16_t)(ch[0] | ch[1] << 8);
		uint16_t flags = (uint16_t)(ch[2] | ch[3] << 8);
		uint32_t n = le32_at(ch + 4);
		if ((type != CHUNK_FREE && type != CHUNK_USED && type != CHUNK_RUN) ||
		    flags & ~CHUNK_FLAGS_VALID || n == 0 || n > size_idx - i)
			return damaged(c, "zone %u chunk %u header (type %u, flags "
				       "%#x, %u chunks)", z, i, type, flags, n);
		if (type == CHUNK_RUN) {
			err = check_run(c, zone_off, buf, i, n, flags, z);
			if (err)
				return err;
		}
		/* a free block's last header (its footer): coalescing the
		 * next block steps back by its size before anything rewrites
		 * it (heap_get_adjacent_free_block); a footer that is merely
		 * stale (footers are not always persisted) steps somewhere
		 * inside the zone, one that is damaged may step before it */
		const unsigned char *ft = buf + 8u * (i + n - 1);
		if (type == CHUNK_FREE && le32_at(ft + 4) > i + n)
			return damaged(c, "zone %u chunk %u: the footer of a free "
				       "block of %u chunks says %u", z, i + n - 1,
				       n, le32_at(ft + 4));
		i += n;
	}
	return 0;
}

static int check_heap(struct pcheck *c)
{
	int err = check_heap_header(c);
	if (err)
		return err;
	uint64_t heap_size = c->size - c->heap_off;
	unsigned nzones = heap_max_zone(heap_size);
	unsigned char *buf = malloc(8u * MAX_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (unsigned z = 0; z < nzones && !err; z++)
		err = check_zone(c, z, nzones, heap_size, buf);
	free(buf);
	return err;
}

/* ---- the pogfs superblock, segment table and commit record --------------- */

/*
 * What open_pool reads before any checksum of its own protects it: the
 * superblock's sizes, the segment table's place and slots, each segment's
 * header and the commit record (whose CRC is then checked).
 */
static int check_segments(struct pcheck *c, const struct pog_super *sb,
			  uint64_t *bases)
{
	uint64_t table = sb->segtab.off;
	uint64_t bytes = sb->max_segments * sizeof(struct pog_seg_slot);
	if (table < c->heap_off || table > c->size || bytes > c->size - table)
		return damaged(c, "segment table (%llu slots at offset %llu) is "
			       "not in the pool", (unsigned long long)sb->max_segments,
			       (unsigned long long)table);
	for (uint64_t i = 0; i < sb->nsegments; i++) {
		struct pog_seg_slot slot;
		struct pog_seg_header h;
		int err = get(c, table + i * sizeof(slot), &slot, sizeof(slot),
			      "segment table");
		if (err)
			return err;
		if (slot.base % POG_BLOCK_SIZE || slot.base < c->heap_off ||
		    slot.base > c->size || POG_SEG_BYTES > c->size - slot.base)
			return damaged(c, "segment %llu at offset %llu is not in "
				       "the pool", (unsigned long long)i,
				       (unsigned long long)slot.base);
		err = get(c, slot.base, &h, 16, "segment header");
		if (err)
			return err;
		if (h.magic != POG_SEG_MAGIC || h.index != i)
			return damaged(c, "segment %llu header (magic %016llx, "
				       "index %llu)", (unsigned long long)i,
				       (unsigned long long)h.magic,
				       (unsigned long long)h.index);
		bases[i] = slot.base;
	}
	return 0;
}

int pog_commit_block_check(const void *block, struct pog_commit_rec *rec)
{
	memcpy(rec, block, sizeof(*rec));
	uint32_t crc = rec->crc;
	rec->crc = 0;
	if (rec->magic != POG_COMMIT_MAGIC || pog_crc32(rec, sizeof(*rec)) != crc)
		return POG_ECORRUPT;
	rec->crc = crc;
	const char *b = (const char *)block + sizeof(*rec);
	size_t hist = rec->history_count * sizeof(struct pog_history_ent);
	if (rec->history_count > POG_HISTORY_MAX ||
	    pog_crc32(b, hist) != rec->history_crc)
		return POG_ECORRUPT;
	size_t fresh = rec->fresh_count * sizeof(struct pog_fresh_ent);
	if (rec->fresh_count > POG_BLOCK_SIZE / sizeof(struct pog_fresh_ent) ||
	    sizeof(*rec) + hist + fresh > POG_BLOCK_SIZE ||
	    pog_crc32(b + hist, fresh) != rec->fresh_crc)
		return POG_ECORRUPT;
	return 0;
}

/* Is there a commit record, whole, at bno? */
static int commit_at(struct pcheck *c, const struct pog_super *sb,
		     const uint64_t *bases, uint64_t bno)
{
	uint64_t seg = bno / POG_SEG_BLOCKS;
	if (seg >= sb->nsegments || bno % POG_SEG_BLOCKS == 0)
		return damaged(c, "commit record block %llu is not in a segment",
			       (unsigned long long)bno);
	struct pog_commit_rec rec;
	char block[POG_BLOCK_SIZE];
	int err = get(c, bases[seg] + (bno % POG_SEG_BLOCKS) * POG_BLOCK_SIZE,
		      block, sizeof(block), "commit record");
	if (err)
		return err;
	if (pog_commit_block_check(block, &rec))
		return damaged(c, "commit record (block %llu) checksum mismatch",
			       (unsigned long long)bno);
	return 0;
}

/* The commit slots (format.h) name commit records: both (those not 0)
 * in a pool closed cleanly; after a crash, one may name a record that
 * was never written whole (the open checks more: which is newer, and
 * whether it is complete). */
static int check_commit(struct pcheck *c, const struct pog_super *sb,
			const uint64_t *bases)
{
	/* 1: an empty slot; slot 0 is read when both are (a pool has one) */
	int err0 = 1, err1 = 1;
	if (sb->commit_block || !sb->commit_block2)
		err0 = commit_at(c, sb, bases, sb->commit_block);
	if (sb->commit_block2)
		err1 = commit_at(c, sb, bases, sb->commit_block2);
	if (sb->clean || (err0 && err1))
		return err0 < 0 ? err0 : err1 < 0 ? err1 : 0;
	return 0;
}

static int check_super(struct pcheck *c, const struct descriptor *d)
{
	struct pog_super sb;
	int err = get(c, d->root_off, &sb, sizeof(sb), "superblock");
	if (err)
		return err;
	if (sb.magic != POG_SUPER_MAGIC)
		return POG_ENOTPOOL;
	if (sb.format_version > POG_FORMAT_VERSION)
		return POG_ENEWER;
	if (sb.block_size != POG_BLOCK_SIZE || sb.seg_blocks != POG_SEG_BLOCKS ||
	    !sb.format_version)
		return damaged(c, "superblock (format %u, %u-byte blocks, %llu "
			       "blocks a segment)", sb.format_version,
			       sb.block_size, (unsigned long long)sb.seg_blocks);
	if (sb.max_segments > c->size / POG_SEG_BYTES + 1 ||
	    sb.nsegments > sb.max_segments || !sb.nsegments)
		return damaged(c, "superblock: %llu segments of %llu in a %llu-byte "
			       "file", (unsigned long long)sb.nsegments,
			       (unsigned long long)sb.max_segments,
			       (unsigned long long)c->size);
	uint64_t *bases = calloc(sb.nsegments, sizeof(*bases));
	if (!bases)
		return -ENOMEM;
	err = check_segments(c, &sb, bases);
	if (!err)
		err = check_commit(c, &sb, bases);
	free(bases);
	return err;
}

/* ---- the whole check ---------------------------------------------------- */

int pog_pool_precheck(int fd, char *why, size_t why_size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (why && why_size)
		why[0] = '\0';
	struct pcheck c = {
		.fd = fd, .size = (uint64_t)st.st_size, .why = why,
		.why_size = why_size,
	};
	struct descriptor d = {0};
	int err = check_header(&c);
	if (!err)
		err = check_descriptor(&c, &d);
	if (!err)
		err = check_lanes(&c, &d);
	free(c.cache);
	c.cache = NULL;
	if (!err)
		err = check_heap(&c);
	if (!err)
		err = check_super(&c, &d);
	return err;
}

int pog_check_pool_file(const char *path, char *why, size_t why_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = pog_pool_precheck(fd, why, why_size);
	close(fd);
	return err;
}
