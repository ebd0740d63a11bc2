/* merkle.c - user.pog.hash: Merkle hashes over objects, cached in DRAM. */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "hcache.h"

/*
 * The definition (README "Hashes"; pinned by tests with fixed vectors).
 * crc(x) is zlib's crc32 of the bytes x, LE32/LE64 little-endian words:
 *   string   crc("s" + bytes)
 *   symlink  crc("y" + text)
 *   int, float, bool, null   crc(tag + canonical text), tag i f b n
 *   ref      crc("r" + LE64(target identity))
 *   special  crc("x" + LE32(mode) + LE64(rdev))
 *   list     crc("l" + LE32(H(e0)) + LE32(H(e1)) + ...)     an array page
 *   map      crc("m" + LE32(S)), S = sum of crc(key + LE32(H(child)))
 *            over the entries, mod 2^32                       a hash page
 * A list chains its elements in order; a map sums its entries' signatures
 * so that their order does not matter.
 *
 * The cache of computed hashes and what invalidates it: hcache.c.
 */

static void le32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t crc_more(uint32_t crc, const void *p, size_t n)
{
	return (uint32_t)crc32(crc, p, (uInt)n);
}

/* ---- computing -------------------------------------------------------------- */

static int hash_of(pog_store *s, const struct pog_state *st, uint64_t ino,
		   int depth, uint32_t *out);

/* The hash of dir's entry key, the object child; in the staged view the
 * child remembers that dir's cached hash used it. */
static int child_hash(pog_store *s, const struct pog_state *st, uint64_t dir,
		      uint64_t key, uint64_t child, int depth, uint32_t *out)
{
	int err = hash_of(s, st, child, depth + 1, out);
	if (err || st != &s->staged)
		return err;
	struct pog_hcache *c = pog_hcache_get(s, child, false);
	return c ? pog_hcache_add_user(c, dir, key) : -ENOMEM;
}

/*
 * Strings. A page reference keeps the CRC of its whole 4 KiB page, so a
 * paged string is hashed from those CRCs with zlib's crc32_combine
 * (crc(A + B) = crc32_combine(crc(A), crc(B), len(B))), in time
 * proportional to its pages, not its bytes: a hole (no page) counts as
 * zero pages; only the last, partial page is read, and only its bytes up
 * to the size are hashed. Full pages are not read, so their bytes are not
 * checked against their CRCs here: a damaged page still fails its reads
 * and fsck, and the hash is the one of the bytes as written. Inline
 * strings are read whole.
 */
#define PAGE POG_BLOCK_SIZE
#define ZERO_PAGE_CRC 0xc71c0011u /* crc of PAGE zero bytes */
_Static_assert(sizeof(z_off_t) >= 8, "crc32_combine needs 64-bit lengths");

static uint32_t combine(uint32_t a, uint32_t b, uint64_t blen)
{
	return (uint32_t)crc32_combine(a, b, (z_off_t)blen);
}

/* crc of n zero pages, by doubling: O(log n) combines. */
static uint32_t zero_pages_crc(uint64_t n)
{
	uint32_t crc = 0, run = ZERO_PAGE_CRC;
	uint64_t len = PAGE;
	for (;;) {
		if (n & 1)
			crc = combine(crc, run, len);
		n >>= 1;
		if (!n)
			return crc;
		run = combine(run, run, len);
		len *= 2;
	}
}

/* The crc of the tag and of pages [0, next). */
struct page_chain {
	uint32_t crc;
	uint64_t next;
};

/* Extend the chain with zero pages (a hole) up to page `end`. */
static void chain_holes(struct page_chain *c, uint64_t end)
{
	if (end <= c->next)
		return;
	uint64_t n = end - c->next;
	c->crc = combine(c->crc, zero_pages_crc(n), n * PAGE);
	c->next = end;
}

/* Extend the chain with page `page` (holes before it), whose CRC is crc. */
static int chain_page(pog_store *s, struct page_chain *c, uint64_t page,
		      uint64_t bno, uint32_t crc)
{
	if (page < c->next || !pog_bno_valid(s, bno))
		return POG_ECORRUPT;
	if (pog_bno_fresh(s, bno)) /* staged: no CRC until commit */
		crc = pog_crc32(pog_block(s, bno), PAGE);
	chain_holes(c, page);
	c->crc = combine(c->crc, crc, PAGE);
	c->next = page + 1;
	return 0;
}

/* Extend the chain with the pages of a page table below page `end`. */
static int chain_table(pog_store *s, uint64_t root, uint64_t end,
		       struct page_chain *c)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, root, 0);
	while (r > 0) {
		uint64_t page;
		const void *val;
		uint16_t vlen;
		struct pog_page_ref ref;
		pog_bt_cur(&it, &page, &val, &vlen);
		if (page >= end)
			return 0;
		if (vlen != sizeof(ref))
			return POG_ECORRUPT;
		memcpy(&ref, val, sizeof(ref));
		int err = chain_page(s, c, page, ref.bno, ref.crc);
		if (err)
			return err;
		r = pog_bt_next(&it);
	}
	return r;
}

/* The crc of the string's full pages [0, end), after crc. */
static int crc_pages(pog_store *s, const struct pog_inode *in, uint64_t end,
		     uint32_t *crc)
{
	struct page_chain c = {*crc, 0};
	int err = 0;
	if (!(in->flags & POG_INODE_DIRECT))
		err = chain_table(s, in->content, end, &c);
	else if (in->content && end)
		err = chain_page(s, &c, 0, in->content, in->direct_crc);
	if (err)
		return err;
	chain_holes(&c, end);
	*crc = c.crc;
	return 0;
}

/* The crc of the string's bytes from off to its end, read, after crc. */
static int crc_read(pog_store *s, const struct pog_inode *in, uint64_t off,
		    uint32_t *crc)
{
	char buf[PAGE];
	while (off < in->size) {
		ssize_t got = pog_data_read(s, in, off, buf, sizeof(buf));
		if (got <= 0)
			return got < 0 ? (int)got : POG_ECORRUPT;
		*crc = crc_more(*crc, buf, (size_t)got);
		off += (uint64_t)got;
	}
	return 0;
}

static int hash_string(pog_store *s, const struct pog_inode *in, char tag,
		       uint32_t *out)
{
	unsigned char t = (unsigned char)tag;
	uint32_t crc = crc_more(0, &t, 1);
	uint64_t full = 0; /* pages hashed from their CRCs */
	int err = 0;
	if (!(in->flags & POG_INODE_INLINE)) {
		full = in->size / PAGE;
		err = crc_pages(s, in, full, &crc);
	}
	if (!err)
		err = crc_read(s, in, full * PAGE, &crc);
	if (!err)
		*out = crc;
	return err;
}

static int hash_list(pog_store *s, const struct pog_state *st, uint64_t ino,
		     const struct pog_inode *in, int depth, uint32_t *out)
{
	unsigned char t = 'l';
	uint32_t crc = crc_more(0, &t, 1);
	/* In the list's order, whatever its staged names (0 1 2 4 hashes
	 * as the renumbered 0 1 2 3 will). */
	struct pog_list_iter it;
	int r = pog_list_seek(&it, s, in->content, 0);
	while (r > 0) {
		uint32_t h;
		unsigned char b[4];
		r = child_hash(s, st, ino, it.key, it.child, depth, &h);
		if (r)
			break;
		le32(b, h);
		crc = crc_more(crc, b, 4);
		r = pog_list_next(&it);
	}
	pog_list_iter_release(&it);
	*out = crc;
	return r;
}

/* Signature of one map entry: crc(key + LE32(H(child))). */
static int entry_sig(pog_store *s, const struct pog_state *st, uint64_t dir,
		     uint64_t key, const void *val, uint16_t vlen, int depth,
		     uint32_t *sig)
{
	uint64_t child;
	uint32_t h;
	unsigned char b[4];
	if (vlen < sizeof(child))
		return POG_ECORRUPT;
	memcpy(&child, val, sizeof(child));
	int err = child_hash(s, st, dir, key, child, depth, &h);
	if (err)
		return err;
	le32(b, h);
	*sig = crc_more(crc_more(0, (const char *)val + 8, vlen - 8u), b, 4);
	return 0;
}

static int map_sum_full(pog_store *s, const struct pog_state *st,
			uint64_t ino, const struct pog_inode *in, int depth,
			struct pog_hcache *c, uint32_t *sum)
{
	uint32_t total = 0;
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, s, in->content, 0);
	while (r > 0) {
		uint64_t key;
		const void *val;
		uint16_t vlen;
		uint32_t sig;
		pog_bt_cur(&it, &key, &val, &vlen);
		r = entry_sig(s, st, ino, key, val, vlen, depth, &sig);
		if (r)
			return r;
		total += sig;
		if (c) {
			uint64_t *slot = pog_map64_get(&c->sigs, key + 1);
			if (!slot)
				return -ENOMEM;
			*slot = (uint64_t)sig + 1;
		}
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	*sum = total;
	return 0;
}

/* Sign only the dirty entries again (cached maps of the staged view). */
static int map_sum_update(pog_store *s, const struct pog_state *st,
			  uint64_t ino, const struct pog_inode *in, int depth,
			  struct pog_hcache *c)
{
	for (size_t i = 0; i < c->dirty.n; i++) {
		uint64_t key = c->dirty.v[i];
		uint64_t *old = pog_map64_find(&c->sigs, key + 1);
		if (old) {
			c->sum -= (uint32_t)(*old - 1);
			pog_map64_del(&c->sigs, key + 1);
		}
		const void *val;
		uint16_t vlen;
		int err = pog_bt_get(s, in->content, key, &val, &vlen);
		if (err == -ENOENT)
			continue;
		uint32_t sig;
		if (!err)
			err = entry_sig(s, st, ino, key, val, vlen, depth, &sig);
		if (err)
			return err;
		uint64_t *slot = pog_map64_get(&c->sigs, key + 1);
		if (!slot)
			return -ENOMEM;
		*slot = (uint64_t)sig + 1;
		c->sum += sig;
	}
	c->dirty.n = 0;
	return 0;
}

static int hash_map(pog_store *s, const struct pog_state *st, uint64_t ino,
		    const struct pog_inode *in, int depth, struct pog_hcache *c,
		    uint32_t *out)
{
	uint32_t sum;
	int err;
	if (c && c->sum_valid) {
		err = map_sum_update(s, st, ino, in, depth, c);
		sum = c->sum;
	} else {
		if (c)
			pog_map64_release(&c->sigs);
		err = map_sum_full(s, st, ino, in, depth, c, &sum);
		if (c && !err) {
			c->sum = sum;
			c->sum_valid = true;
			c->dirty.n = 0;
		}
	}
	if (err) {
		if (c)
			c->sum_valid = false;
		return err;
	}
	unsigned char b[5] = {'m'};
	le32(b + 1, sum);
	*out = crc_more(0, b, 5);
	return 0;
}

static int hash_scalar(const struct pog_inode *in, uint32_t *out)
{
	static const char tags[] = {[POG_INT] = 'i', [POG_FLOAT] = 'f',
				    [POG_BOOL] = 'b', [POG_NULL] = 'n'};
	char text[64];
	text[0] = tags[in->type];
	size_t n = in->size ? pog_scalar_format(in->type, in->content, text + 1,
						sizeof(text) - 1)
			    : 0; /* empty: no value, the tag alone */
	*out = crc_more(0, text, n + 1);
	return 0;
}

static int hash_compute(pog_store *s, const struct pog_state *st,
			uint64_t ino, const struct pog_inode *in, int depth,
			struct pog_hcache *c, uint32_t *out)
{
	unsigned char b[16];
	switch (in->type) {
	case POG_STRING:
		return hash_string(s, in, 's', out);
	case POG_SYMLINK:
		return hash_string(s, in, 'y', out);
	case POG_INT:
	case POG_FLOAT:
	case POG_BOOL:
	case POG_NULL:
		return hash_scalar(in, out);
	case POG_REF:
		b[0] = 'r';
		le64(b + 1, in->content);
		*out = crc_more(0, b, 9);
		return 0;
	case POG_SPECIAL:
		b[0] = 'x';
		le32(b + 1, in->mode);
		le64(b + 5, in->rdev);
		*out = crc_more(0, b, 13);
		return 0;
	case POG_LIST:
		return hash_list(s, st, ino, in, depth, out);
	case POG_MAP:
		return hash_map(s, st, ino, in, depth, c, out);
	default:
		return POG_ECORRUPT;
	}
}

static int hash_of(pog_store *s, const struct pog_state *st, uint64_t ino,
		   int depth, uint32_t *out)
{
	if (depth > 4096)
		return -ELOOP;
	const struct pog_inode *in;
	int err = pog_inode_get(s, st, ino, &in);
	if (err)
		return err;
	/* Only the staged view is cached. */
	struct pog_hcache *c = st == &s->staged ? pog_hcache_get(s, ino, true) : NULL;
	if (c && c->valid) {
		*out = c->hash;
		return 0;
	}
	err = hash_compute(s, st, ino, in, depth, c, out);
	if (!err && c) {
		c->hash = *out;
		c->valid = true;
	}
	return err;
}

int pog_hash_locked(pog_store *s, uint64_t ino, uint32_t *out)
{
	pthread_mutex_lock(&s->hash_lock);
	int err = hash_of(s, &s->staged, ino & POG_INO_MASK, 0, out);
	if (err)
		pog_hcache_reset_locked(s);
	pthread_mutex_unlock(&s->hash_lock);
	return err;
}

int pog_hash(pog_store *s, uint64_t ino, uint32_t *out)
{
	int err = pog_rdlock(s);
	if (err)
		return err;
	const struct pog_state *st = pog_view(s, &ino);
	pthread_mutex_lock(&s->hash_lock);
	err = hash_of(s, st, ino, 0, out);
	if (err && st == &s->staged)
		pog_hcache_reset_locked(s); /* a half-recorded computation is not kept */
	pthread_mutex_unlock(&s->hash_lock);
	pog_unlock(s);
	return err;
}
