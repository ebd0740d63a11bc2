/* pages.c - a string's bytes, inline or in pages: read, write, holes. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "object_int.h"

#define PAGE POG_BLOCK_SIZE

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
 * which the caller overwrites entirely, its bytes are undefined; with
 * pwritten, the caller fills it through the file, not the mapping, and
 * a new block comes from the segments of such pages: store.c). Returns
 * 1 when the page was fresh already (written in place: its ref stays), 0
 * for a new block, whose ref the caller sets.
 */
static int page_writable(pog_store *s, struct pog_inode *in, uint64_t page,
			 bool whole, bool pwritten, char **data, uint64_t *bno)
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
	err = pwritten ? pog_data_block_alloc(s, bno)
		       : pog_block_alloc(s, false, bno);
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

/* Write part of page `page` through the mapping; the commit computes its
 * CRC (pog_pages_seal). */
static int page_write(pog_store *s, struct pog_inode *in, uint64_t page,
		      size_t at, const void *buf, size_t len)
{
	char *data;
	uint64_t bno;
	int r = page_writable(s, in, page, at == 0 && len == PAGE, false, &data,
			      &bno);
	if (r < 0)
		return r;
	pog_bno_set_sealed(s, bno, false);
	s->unsealed = true;
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
 * commit's flush of the mapping writes these pages like any other. These
 * pages are never mapped (they lie in segments of their own: store.c
 * pog_data_block_alloc), so their writeback need not write-protect them.
 * A long run is handed to the early writeback (writeback.c): the disk
 * starts on it now, not at the commit. A descriptor that cannot write (a read-only one, device DAX) falls
 * back to a copy through the mapping.
 */
#define EARLY_MIN_PAGES 32 /* runs of 128 KiB and more: FUSE's writes */

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
	else if (run->n >= EARLY_MIN_PAGES)
		pog_early_writeback(s->env, at, (off_t)len);
	run->n = 0;
}

/*
 * Write the whole page `page` from src, through run (blocks in a row are
 * filled together). Its CRC is computed here, from the caller's bytes
 * (in the CPU cache already, and computed once: the page is never read
 * back for it), and its ref holds it: the commit need not read the page.
 */
static int page_write_whole(pog_store *s, struct pog_inode *in, uint64_t page,
			    const char *src, struct page_run *run)
{
	char *data;
	uint64_t bno;
	int r = page_writable(s, in, page, true, true, &data, &bno);
	if (r < 0)
		return r;
	pog_bno_set_sealed(s, bno, false);
	struct pog_page_ref ref = {bno, pog_crc32(src, PAGE), 0};
	int err = page_set(s, in, page, &ref);
	if (err) {
		memcpy(data, src, PAGE); /* the ref may be in: no garbage */
		s->unsealed = true;
		return err;
	}
	pog_bno_set_sealed(s, bno, true);
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
