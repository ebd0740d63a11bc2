/* json.c - the store as one JSON document: export and import (RFC 8259). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

/*
 * The document format (README "JSON"). A subtree that plain JSON can say
 * (maps, lists, UTF-8 strings, int/float/bool/null) is exported as plain
 * JSON, and any plain document imports as its plain value: objects are
 * maps, whatever their keys ("$ref", "$id" included).
 *
 * What plain JSON cannot say is written in pogfs's own forms, and a
 * document that uses them says so at its top: {"$pogfs": 2, "root": V}.
 * Only inside such a document are these objects read as forms:
 *   {"$bytes": "<base64>"}        a string that is not UTF-8
 *   {"$id": N, ...}               a map that is referenced (defined here)
 *   {"$id": N, "$value": V}       any other referenced object
 *   {"$ref": N}                   a ref (symlink by identity) to object N
 *   {"$ref": N, "$target": V}     the same, defining N (no owner of its own)
 *   {"$link": N}                  another owning entry (hard link) of N
 *   {"$symlink": S}               a symlink kept as text (S as a string)
 *   {"$special": "fifo", "rdev": R}   fifo, char, block or socket
 * and map keys that are not UTF-8 are written "$b64:<base64>", keys
 * starting with '$' get one more '$'. Format 1 is the same forms without
 * the mark (what pogfs wrote before): wrapped as {"$pogfs": 1, "root": V}
 * it imports as before. Keys are sorted bytewise, ids count from 1 in the
 * order objects are first written: the same graph gives the same bytes.
 */

#define POG_JSON_FORMAT 2
/* Levels of arrays and objects a document may nest (RFC 8259 section 9
 * lets a parser set a limit): the reader recurses once per level. */
#define NEST_MAX 1000

/* ---- small encoders ---------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * How many leading bytes of p are whole UTF-8 sequences (U+0000 included,
 * no surrogates, no overlong forms). *bad: a byte that no continuation
 * can make valid; otherwise what is left (< 4 bytes) is a sequence cut by
 * the end of the buffer.
 */
static size_t utf8_prefix(const unsigned char *p, size_t n, bool *bad)
{
	size_t i = 0;
	*bad = false;
	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			*bad = true;
			return i;
		}
		size_t k = 1;
		for (; k < len && i + k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				*bad = true;
				return i;
			}
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (k < len) {
			/* cut: the first bytes may still be wrong already */
			if ((len == 3 && k == 2 && ((c == 0xe0 && p[i + 1] < 0xa0) ||
						     (c == 0xed && p[i + 1] >= 0xa0))) ||
			    (len == 4 && k >= 2 && ((c == 0xf0 && p[i + 1] < 0x90) ||
						     (c == 0xf4 && p[i + 1] >= 0x90) ||
						     c > 0xf4)) ||
			    (len == 4 && c > 0xf4))
				*bad = true;
			return i;
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			*bad = true;
			return i;
		}
		i += len;
	}
	return i;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
	bool bad;
	return utf8_prefix(p, n, &bad) == n;
}

static int b64val(unsigned char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

/*
 * Base64 decoding in pieces: feed text as it comes, bytes come out
 * through out(); '=' padding only at the end.
 */
struct b64dec {
	int q[4];
	int nq;
	int pad;       /* '=' seen: only '=' may follow */
	bool bad;
};

static size_t b64_feed(struct b64dec *d, const char *in, size_t n,
		       unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n && !d->bad; i++) {
		unsigned char c = (unsigned char)in[i];
		int v = c == '=' ? 0 : b64val(c);
		if (v < 0 || (d->pad && c != '=') || (c == '=' && d->nq < 2)) {
			d->bad = true;
			break;
		}
		if (c == '=')
			d->pad++;
		d->q[d->nq++] = v;
		if (d->nq == 4) {
			uint32_t w = (uint32_t)(d->q[0] << 18 | d->q[1] << 12 |
						d->q[2] << 6 | d->q[3]);
			out[o++] = (unsigned char)(w >> 16);
			if (d->pad < 2)
				out[o++] = (unsigned char)(w >> 8);
			if (d->pad < 1)
				out[o++] = (unsigned char)w;
			d->nq = 0;
		}
	}
	return o;
}

/* At the end: whole groups only. */
static bool b64_done(const struct b64dec *d)
{
	return !d->bad && d->nq == 0;
}

/* ---- export -------------------------------------------------------------- */

/* A set of inos, as a bitmap (inos are handed out in sequence). */
struct inoset {
	uint64_t *w;
	size_t nw;
};

static bool inoset_has(const struct inoset *set, uint64_t ino)
{
	ino &= POG_INO_MASK;
	return ino / 64 < set->nw && (set->w[ino / 64] >> (ino % 64) & 1);
}

static int inoset_add(struct inoset *set, uint64_t ino)
{
	ino &= POG_INO_MASK;
	if (ino / 64 >= set->nw) {
		size_t nw = set->nw ? set->nw : 64;
		while (nw <= ino / 64)
			nw *= 2;
		uint64_t *w = realloc(set->w, nw * sizeof(*w));
		if (!w)
			return -ENOMEM;
		memset(w + set->nw, 0, (nw - set->nw) * sizeof(*w));
		set->w = w;
		set->nw = nw;
	}
	set->w[ino / 64] |= (uint64_t)1 << (ino % 64);
	return 0;
}

static void inoset_clear(struct inoset *set)
{
	if (set->w)
		memset(set->w, 0, set->nw * sizeof(*set->w));
}

static void inoset_release(struct inoset *set)
{
	free(set->w);
	set->w = NULL;
	set->nw = 0;
}

/* Bytes of string data read (and validated, and written) at a time. */
#define CHUNK (256u << 10)

struct exporter {
	pog_store *s;
	const struct pog_state *st; /* the view exported */
	bool dry;                   /* the first run: output nothing */
	bool forms;                 /* the document uses pogfs's forms */
	struct inoset in_tree;      /* owned by the exported root */
	struct inoset named;        /* named again after its definition */
	struct inoset binary;       /* strings that are not UTF-8 */
	struct inoset defined;      /* written once already */
	pog_write_fn write;
	void *ctx;
	int err;
	char buf[65536];
	size_t used;
	unsigned char *chunk;       /* CHUNK + 4 bytes of string data */
	struct pog_map64 ids;       /* ino -> id, for the named ones */
	uint64_t next_id;
	uint64_t total;             /* objects to write (dry run), for progress */
	uint64_t written;           /* ... and written so far */
};

static void out_flush(struct exporter *e)
{
	if (!e->err && e->used)
		e->err = e->write(e->ctx, e->buf, e->used);
	e->used = 0;
}

static void out(struct exporter *e, const void *data, size_t len)
{
	if (e->dry)
		return;
	const char *p = data;
	while (len && !e->err) {
		size_t n = sizeof(e->buf) - e->used;
		if (n > len)
			n = len;
		memcpy(e->buf + e->used, p, n);
		e->used += n;
		p += n;
		len -= n;
		if (e->used == sizeof(e->buf))
			out_flush(e);
	}
}

static void outs(struct exporter *e, const char *s)
{
	out(e, s, strlen(s));
}

static void outf(struct exporter *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void outf(struct exporter *e, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	out(e, tmp, (size_t)n);
}

/* n escapes \u0000 (runs of NUL bytes, as in a sparse file): straight
 * into the buffer. */
static void out_nuls(struct exporter *e, size_t n)
{
	while (n && !e->err && !e->dry) {
		size_t room = (sizeof(e->buf) - e->used) / 6;
		if (!room) {
			out_flush(e);
			continue;
		}
		size_t k = n < room ? n : room;
		for (size_t i = 0; i < k; i++)
			memcpy(e->buf + e->used + 6 * i, "\\u0000", 6);
		e->used += 6 * k;
		n -= k;
	}
}

/* The inside of a JSON string: UTF-8 bytes (validated by the caller)
 * with '"', '\\' and the control characters escaped. */
static void out_escaped(struct exporter *e, const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char u[8];
		const char *esc;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		out(e, p + start, i - start);
		if (c == 0) {
			size_t r = 1;
			while (i + r < n && p[i + r] == 0)
				r++;
			out_nuls(e, r);
			i += r - 1;
			start = i + 1;
			continue;
		}
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\t': esc = "\\t"; break;
		case '\r': esc = "\\r"; break;
		default:
			snprintf(u, sizeof(u), "\\u%04x", c);
			esc = u;
		}
		outs(e, esc);
		start = i + 1;
	}
	out(e, p + start, n - start);
}

static void out_json_string(struct exporter *e, const char *p, size_t n)
{
	out(e, "\"", 1);
	out_escaped(e, p, n);
	out(e, "\"", 1);
}

/* Base64 of n bytes, encoded straight into the buffer; n is a multiple
 * of 3 unless it is the end. */
static void out_base64(struct exporter *e, const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n && !e->err && !e->dry) {
		size_t room = (sizeof(e->buf) - e->used) / 4;
		if (!room) {
			out_flush(e);
			continue;
		}
		char *q = e->buf + e->used;
		for (; room && i < n; room--, i += 3, q += 4) {
			uint32_t w = (uint32_t)p[i] << 16;
			if (i + 1 < n)
				w |= (uint32_t)p[i + 1] << 8;
			if (i + 2 < n)
				w |= p[i + 2];
			q[0] = b64chars[w >> 18 & 63];
			q[1] = b64chars[w >> 12 & 63];
			q[2] = i + 1 < n ? b64chars[w >> 6 & 63] : '=';
			q[3] = i + 2 < n ? b64chars[w & 63] : '=';
		}
		e->used = (size_t)(q - e->buf);
	}
}

static void out_key(struct exporter *e, const char *k, size_t n)
{
	if (!utf8_valid((const unsigned char *)k, n)) {
		outs(e, "\"$b64:");
		out_base64(e, (const unsigned char *)k, n);
		outs(e, "\"");
	} else if (e->forms && n && k[0] == '$') {
		outs(e, "\"$");
		out_escaped(e, k, n);
		outs(e, "\"");
	} else {
		out_json_string(e, k, n);
	}
}

/* ---- strings, read a chunk at a time ------------------------------------ */

/* The next piece of a string's data at off, after keep bytes carried in
 * e->chunk: how many bytes e->chunk then holds (0 at the end). */
static size_t chunk_read(struct exporter *e, const struct pog_inode *in,
			 uint64_t *off, size_t keep)
{
	size_t want = CHUNK - keep;
	if (in->size - *off < want)
		want = (size_t)(in->size - *off);
	size_t got = 0;
	while (got < want && !e->err) {
		ssize_t n = pog_data_read(e->s, in, *off + got, e->chunk + keep + got,
					  want - got);
		if (n <= 0)
			e->err = n < 0 ? (int)n : POG_ECORRUPT;
		else
			got += (size_t)n;
	}
	*off += got;
	return e->err ? 0 : keep + got;
}

/* Is the string UTF-8 (NUL bytes are: U+0000)? */
static bool string_is_utf8(struct exporter *e, const struct pog_inode *in)
{
	uint64_t off = 0;
	size_t keep = 0;
	while (off < in->size) {
		size_t have = chunk_read(e, in, &off, keep);
		bool bad;
		if (e->err)
			return false;
		size_t ok = utf8_prefix(e->chunk, have, &bad);
		if (bad)
			return false;
		keep = have - ok;
		memmove(e->chunk, e->chunk + ok, keep);
	}
	return keep == 0;
}

/* The string's data as a JSON string, or as {"$bytes": base64}. */
static void out_string_data(struct exporter *e, const struct pog_inode *in,
			    bool binary)
{
	uint64_t off = 0;
	size_t keep = 0, have;
	outs(e, binary ? "{\"$bytes\":\"" : "\"");
	while (!e->err && off < in->size &&
	       (have = chunk_read(e, in, &off, keep)) > 0) {
		if (binary) {
			size_t whole = off < in->size ? have / 3 * 3 : have;
			out_base64(e, e->chunk, whole);
			keep = have - whole;
			memmove(e->chunk, e->chunk + whole, keep);
		} else {
			out_escaped(e, (const char *)e->chunk, have);
		}
	}
	if (binary && keep && !e->err)
		out_base64(e, e->chunk, keep);
	outs(e, binary ? "\"}" : "\"");
}

/* A string: the dry run finds whether it is UTF-8, the real run writes. */
static void emit_string(struct exporter *e, uint64_t ino,
			const struct pog_inode *in)
{
	if (e->dry) {
		if (!string_is_utf8(e, in) && !e->err) {
			e->forms = true;
			e->err = inoset_add(&e->binary, ino);
		}
		return;
	}
	out_string_data(e, in, inoset_has(&e->binary, ino));
}

/* A symlink's text (at most PATH_MAX bytes): {"$symlink": S}. */
static void emit_symlink(struct exporter *e, const struct pog_inode *in)
{
	e->forms = true;
	if (in->size > CHUNK) {
		e->err = POG_ECORRUPT;
		return;
	}
	uint64_t off = 0;
	size_t have = chunk_read(e, in, &off, 0);
	if (e->err)
		return;
	outs(e, "{\"$symlink\":");
	if (utf8_valid(e->chunk, have)) {
		out_json_string(e, (const char *)e->chunk, have);
	} else {
		outs(e, "{\"$bytes\":\"");
		out_base64(e, e->chunk, have);
		outs(e, "\"}");
	}
	outs(e, "}");
}

/* ---- which objects a document names twice ------------------------------- */

/*
 * The document is written twice: a dry run (nothing output) finds the
 * objects that are named again after their definition (by a ref, a hard
 * link, or a loop through an owner outside the subtree), the strings that
 * are not UTF-8, and so whether the document needs pogfs's forms at all;
 * the real run gives exactly the named objects an "$id". Both runs make
 * the same choices, as these depend only on what was defined before.
 */
struct walk_ctx {
	struct exporter *e;
	struct pog_vec *stack;
};

static int tree_edge(void *c, uint64_t ino, int owned)
{
	struct walk_ctx *w = c;
	if (!owned || inoset_has(&w->e->in_tree, ino))
		return 0;
	int err = inoset_add(&w->e->in_tree, ino);
	return err ? err : pog_vec_push(w->stack, ino);
}

/* Everything the exported object owns, directly or not. */
static int tree_of(struct exporter *e, uint64_t root)
{
	struct pog_vec stack = {0};
	struct walk_ctx w = {e, &stack};
	int err = inoset_add(&e->in_tree, root);
	if (!err)
		err = pog_vec_push(&stack, root);
	while (!err && stack.n) {
		uint64_t ino = stack.v[--stack.n];
		const struct pog_inode *in;
		err = pog_inode_get(e->s, e->st, ino, &in);
		if (!err)
			err = pog_object_edges(e->s, in, tree_edge, &w);
	}
	pog_vec_release(&stack);
	return err;
}

/* Named again: record it (dry run) and return its id (real run). */
static uint64_t mention(struct exporter *e, uint64_t ino)
{
	e->forms = true;
	if (e->dry) {
		int err = inoset_add(&e->named, ino);
		if (err)
			e->err = err;
		return 0;
	}
	uint64_t *v = pog_map64_get(&e->ids, ino & POG_INO_MASK);
	if (!v) {
		e->err = -ENOMEM;
		return 0;
	}
	if (!*v)
		*v = ++e->next_id;
	return *v;
}

/* ---- maps, in key order and bounded memory -------------------------------- */

static void emit(struct exporter *e, uint64_t ino, int depth);

struct key_item {
	char *key;
	size_t len;
	uint64_t child;
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_key(const void *a, const void *b)
{
	const struct key_item *x = a, *y = b;
	return cmp_bytes(x->key, x->len, y->key, y->len);
}

/*
 * A map's entries are kept by key hash; the document lists them sorted.
 * A map of up to BATCH entries is sorted in memory; a bigger one is
 * written BATCH entries at a time: each pass over the map keeps, in a
 * max-heap, the BATCH smallest keys after the last one written. Memory
 * stays bounded (BATCH keys of at most POG_KEY_MAX bytes), whatever the
 * size of the map; a map of n entries costs n / BATCH passes.
 */
#define BATCH 8192

struct batch {
	struct key_item *items;
	size_t n;
};

static void heap_sift_down(struct key_item *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && cmp_key(&h[l], &h[m]) > 0)
			m = l;
		if (r < n && cmp_key(&h[r], &h[m]) > 0)
			m = r;
		if (m == i)
			return;
		struct key_item t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_sift_up(struct key_item *h, size_t i)
{
	while (i && cmp_key(&h[(i - 1) / 2], &h[i]) < 0) {
		struct key_item t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->items[i].key);
	b->n = 0;
}

/* Offer one entry to the batch: kept if among the smallest after last. */
static int batch_offer(struct batch *b, const char *key, size_t len,
		       uint64_t child, const struct key_item *last)
{
	struct key_item k = {(char *)key, len, child};
	if (last && cmp_key(&k, last) <= 0)
		return 0;
	if (b->n == BATCH && cmp_key(&k, &b->items[0]) >= 0)
		return 0;
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, key, len);
	k.key = copy;
	if (b->n == BATCH) {
		free(b->items[0].key);
		b->items[0] = k;
		heap_sift_down(b->items, b->n, 0);
	} else {
		b->items[b->n] = k;
		heap_sift_up(b->items, b->n++);
	}
	return 0;
}

/* One pass over the map: the next batch of entries after last. */
static int batch_fill(struct exporter *e, const struct pog_inode *in,
		      struct batch *b, const struct key_item *last)
{
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, e->s, in->content, 0);
	while (r > 0) {
		const void *val;
		uint16_t vlen;
		uint64_t child;
		pog_bt_cur(&it, NULL, &val, &vlen);
		memcpy(&child, val, 8);
		int err = batch_offer(b, (const char *)val + 8, vlen - 8u, child,
				      last);
		if (err)
			return err;
		r = pog_bt_next(&it);
	}
	if (r < 0)
		return r;
	qsort(b->items, b->n, sizeof(*b->items), cmp_key);
	return 0;
}

/* At depth 0, a map holding exactly "$pogfs" (a number) and "root"
 * would read back as the mark: such a document is written marked. */
static void check_mark_lookalike(struct exporter *e, const struct batch *b,
				 int depth, uint64_t entries)
{
	const struct pog_inode *in;
	if (depth || entries != 2 || b->n != 2)
		return;
	if (cmp_bytes(b->items[0].key, b->items[0].len, "$pogfs", 6) == 0 &&
	    cmp_bytes(b->items[1].key, b->items[1].len, "root", 4) == 0 &&
	    pog_inode_get(e->s, e->st, b->items[0].child, &in) == 0 &&
	    (in->type == POG_INT || in->type == POG_FLOAT))
		e->forms = true;
}

static void emit_map_entries(struct exporter *e, const struct pog_inode *in,
			     bool first, int depth)
{
	struct batch b = {calloc(BATCH, sizeof(struct key_item)), 0};
	struct key_item last = {0};
	uint64_t done = 0;
	if (!b.items) {
		e->err = -ENOMEM;
		return;
	}
	while (!e->err && done < in->entries) {
		int err = batch_fill(e, in, &b, done ? &last : NULL);
		if (err || !b.n) {
			e->err = err ? err : POG_ECORRUPT;
			break;
		}
		if (e->dry && !done)
			check_mark_lookalike(e, &b, depth, in->entries);
		for (size_t i = 0; i < b.n && !e->err; i++) {
			if (!first)
				out(e, ",", 1);
			first = false;
			if (e->dry && !utf8_valid((unsigned char *)b.items[i].key,
						  b.items[i].len))
				e->forms = true;
			out_key(e, b.items[i].key, b.items[i].len);
			out(e, ":", 1);
			emit(e, b.items[i].child, depth + 1);
		}
		done += b.n;
		free(last.key);
		last = b.items[b.n - 1];
		b.items[b.n - 1].key = NULL;
		batch_clear(&b);
	}
	free(last.key);
	batch_clear(&b);
	free(b.items);
}

static void emit_list(struct exporter *e, const struct pog_inode *in, int depth)
{
	out(e, "[", 1);
	/* In order: a staged list with names 0 1 2 4 or 2.5 is the array of
	 * its entries, as the commit will number them. */
	struct pog_list_iter it;
	int r = pog_list_seek(&it, e->s, in->content, 0);
	bool first = true;
	while (r > 0 && !e->err) {
		if (!first)
			out(e, ",", 1);
		first = false;
		emit(e, it.child, depth + 1);
		r = pog_list_next(&it);
	}
	pog_list_iter_release(&it);
	if (r < 0)
		e->err = r;
	out(e, "]", 1);
}

/* An empty typed scalar has no value to write (nor to commit). */
static void empty_scalar_error(struct exporter *e, uint64_t ino,
			       const struct pog_inode *in)
{
	char path[4096];
	ssize_t n = pog_path_locked(e->s, e->st, ino, path, sizeof(path) - 1);
	if (n < 0 || (size_t)n >= sizeof(path) - 1)
		n = snprintf(path, sizeof(path), ".pog/objects/%" PRIu64, ino);
	path[n] = '\0';
	pog_set_error(e->s, "export: %s: an empty %s has no value", path,
		      pog_type_name(in->type));
	e->err = -EINVAL;
}

static void emit_plain(struct exporter *e, uint64_t ino,
		       const struct pog_inode *in, int depth)
{
	char text[64];
	size_t len;
	switch (in->type) {
	case POG_MAP:
		out(e, "{", 1);
		emit_map_entries(e, in, true, depth);
		out(e, "}", 1);
		break;
	case POG_LIST:
		emit_list(e, in, depth);
		break;
	case POG_STRING:
		emit_string(e, ino, in);
		break;
	case POG_SYMLINK:
		emit_symlink(e, in);
		break;
	case POG_INT:
	case POG_FLOAT:
	case POG_BOOL:
	case POG_NULL:
		if (!in->size) {
			empty_scalar_error(e, ino, in);
			break;
		}
		len = pog_scalar_format(in->type, in->content, text, sizeof(text));
		out(e, text, len);
		break;
	case POG_REF: {
		uint64_t t = in->content;
		const struct pog_inode *tin;
		if (pog_inode_get(e->s, e->st, t, &tin)) {
			e->err = POG_ECORRUPT;
			break;
		}
		outf(e, "{\"$ref\":%" PRIu64, mention(e, t));
		/* A target the document would not define otherwise is
		 * written here, as a copy. */
		if (!inoset_has(&e->defined, t) && !inoset_has(&e->in_tree, t)) {
			outs(e, ",\"$target\":");
			emit(e, t, depth + 1);
		}
		outs(e, "}");
		break;
	}
	case POG_SPECIAL: {
		const char *kind = S_ISFIFO(in->mode) ? "fifo"
			: S_ISCHR(in->mode) ? "char"
			: S_ISBLK(in->mode) ? "block" : "socket";
		e->forms = true;
		outf(e, "{\"$special\":\"%s\",\"rdev\":%" PRIu64 "}", kind,
		     in->rdev);
		break;
	}
	default:
		e->err = POG_ECORRUPT;
	}
}

static void emit(struct exporter *e, uint64_t ino, int depth)
{
	if (e->err)
		return;
	if (depth > 10000) {
		e->err = -ELOOP;
		return;
	}
	const struct pog_inode *in;
	e->err = pog_inode_get(e->s, e->st, ino, &in);
	if (e->err)
		return;
	if (inoset_has(&e->defined, ino)) {
		/* Owned again: a hard link, or for a map or list (which
		 * cannot have two owners) a ref. */
		bool dir = in->type == POG_MAP || in->type == POG_LIST;
		outf(e, dir ? "{\"$ref\":%" PRIu64 "}" : "{\"$link\":%" PRIu64 "}",
		     mention(e, ino));
		return;
	}
	e->err = inoset_add(&e->defined, ino);
	if (e->err)
		return;
	if (e->dry)
		e->total++;
	else
		pog_progress_note("objects", ++e->written, e->total);
	if (e->dry || !inoset_has(&e->named, ino)) {
		emit_plain(e, ino, in, depth);
		return;
	}
	outf(e, "{\"$id\":%" PRIu64, mention(e, ino));
	if (in->type == POG_MAP) {
		emit_map_entries(e, in, false, depth);
	} else {
		outs(e, ",\"$value\":");
		emit_plain(e, ino, in, depth);
	}
	outs(e, "}");
}

static void exporter_release(struct exporter *e)
{
	inoset_release(&e->in_tree);
	inoset_release(&e->named);
	inoset_release(&e->binary);
	inoset_release(&e->defined);
	pog_map64_release(&e->ids);
	free(e->chunk);
	free(e);
}

int pog_export(pog_store *s, uint64_t ino, pog_write_fn write, void *ctx)
{
	struct exporter *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->s = s;
	e->write = write;
	e->ctx = ctx;
	e->chunk = malloc(CHUNK + 4);
	if (!e->chunk) {
		exporter_release(e);
		return -ENOMEM;
	}
	int err = pog_rdlock(s);
	if (err) {
		exporter_release(e);
		return err;
	}
	e->st = pog_view(s, &ino);
	err = tree_of(e, ino);
	if (!err) {
		e->dry = true;
		emit(e, ino, 0);
		err = e->err;
		inoset_clear(&e->defined);
		e->dry = false;
	}
	if (!err) {
		if (e->forms)
			outf(e, "{\"$pogfs\":%d,\"root\":", POG_JSON_FORMAT);
		emit(e, ino, 0);
		if (e->forms)
			out(e, "}", 1);
		out(e, "\n", 1);
		out_flush(e);
		err = e->err;
	}
	pog_unlock(s);
	exporter_release(e);
	return err;
}

/* ---- import ----------------------------------------------------------------- */

/*
 * The import reads the document straight from its text and never builds a
 * tree of it: memory beyond the text is bounded by the nesting depth, a
 * 64 KiB buffer for decoding strings, and the ids, refs and links the
 * document defines. It goes over the text twice:
 *  1. check: a validating scanner holds the whole text to RFC 8259 (white
 *     space is space, tab, newline and return; strings are UTF-8 with no
 *     raw control characters; escapes and numbers as the grammar says;
 *     one value and nothing after it) and allocates nothing. A leading
 *     UTF-8 BOM is ignored (RFC 8259 section 8.1 allows that); a UTF-16
 *     surrogate escape that is not half of a pair is refused (it has no
 *     UTF-8 form); nesting is limited to NEST_MAX levels. Any error is
 *     reported with line and column before anything exists.
 *  2. create: a recursive-descent reader walks the text again and creates
 *     objects as it goes. In a document marked as a pogfs export, forms
 *     are recognised by the keys an object holds, in any order: the keys
 *     of each object are looked at first, by a scan of its text that
 *     creates nothing. Strings are decoded a piece at a time straight into
 *     the store; numbers are read from their exact text.
 * Ids, refs and links are resolved at the end.
 */

/* ---- 1. check ---- */

struct check {
	const unsigned char *p;
	size_t len, pos;   /* pos: where the text is read, and an error is */
	const char *why;
	char whybuf[120];
};

static bool bad_at(struct check *c, size_t at, const char *why)
{
	c->pos = at;
	c->why = why;
	return false;
}

static bool is_ws(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void check_ws(struct check *c)
{
	while (c->pos < c->len && is_ws(c->p[c->pos]))
		c->pos++;
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char ch = p[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* The escape at *i (a backslash inside a string). */
static bool check_escape(struct check *c, size_t *i)
{
	const unsigned char *p = c->p;
	size_t at = *i;
	if (at + 1 >= c->len)
		return bad_at(c, at, "the string never ends");
	switch (p[at + 1]) {
	case 'b': case 'f': case 'n': case 'r': case 't':
	case '"': case '\\': case '/':
		*i += 2;
		return true;
	case 'u': {
		long u = at + 6 <= c->len ? hex4(p + at + 2) : -1;
		if (u < 0)
			return bad_at(c, at, "\\u needs four hex digits");
		if (u >= 0xdc00 && u <= 0xdfff)
			return bad_at(c, at, "a lone UTF-16 low surrogate escape "
				      "(it has no UTF-8 form)");
		if (u >= 0xd800 && u <= 0xdbff) {
			long l = at + 12 <= c->len && p[at + 6] == '\\' &&
				 p[at + 7] == 'u' ? hex4(p + at + 8) : -1;
			if (l < 0xdc00 || l > 0xdfff)
				return bad_at(c, at, "a lone UTF-16 high surrogate "
					      "escape (it has no UTF-8 form)");
			*i += 12;
		} else {
			*i += 6;
		}
		return true;
	}
	default:
		return bad_at(c, at, "an unknown escape (JSON has \\\" \\\\ \\/ "
			      "\\b \\f \\n \\r \\t and \\uXXXX)");
	}
}

/* The string whose opening quote is at pos. */
static bool check_string(struct check *c)
{
	const unsigned char *p = c->p;
	size_t start = c->pos, i = start + 1;
	for (;;) {
		if (i >= c->len)
			return bad_at(c, start, "the string never ends");
		unsigned char ch = p[i];
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (!check_escape(c, &i))
				return false;
		} else if (ch < 0x20) {
			snprintf(c->whybuf, sizeof(c->whybuf),
				 "a raw control character (U+%04X) inside a "
				 "string (it must be escaped)", ch);
			return bad_at(c, i, c->whybuf);
		} else if (ch < 0x80) {
			i++;
		} else {
			size_t j = i;
			bool bad;
			while (j < c->len && p[j] >= 0x80)
				j++;
			size_t ok = utf8_prefix(p + i, j - i, &bad);
			if (ok != j - i)
				return bad_at(c, i + ok, "bytes that are not UTF-8 "
					      "(JSON text is UTF-8)");
			i = j;
		}
	}
	c->pos = i + 1;
	return true;
}

/* Does the number (valid JSON) have a finite double? Only one with an
 * exponent or more than 300 digits can be out of range. */
static bool number_in_range(const unsigned char *p, size_t n)
{
	if (n <= 300 && !memchr(p, 'e', n) && !memchr(p, 'E', n))
		return true;
	char small[64];
	char *text = n < sizeof(small) ? small : malloc(n + 1);
	if (!text)
		return true; /* found again when the number is read */
	memcpy(text, p, n);
	text[n] = '\0';
	bool ok = isfinite(strtod(text, NULL));
	if (text != small)
		free(text);
	return ok;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool check_number(struct check *c)
{
	const unsigned char *p = c->p;
	size_t i = c->pos, n = c->len;
	if (p[i] == '-')
		i++;
	if (i >= n || !is_digit(p[i]))
		return bad_at(c, i, "a number needs a digit here");
	if (p[i] == '0') {
		if (++i < n && is_digit(p[i]))
			return bad_at(c, i - 1, "a number cannot start with 0 "
				      "followed by digits");
	} else {
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (i < n && p[i] == '.') {
		if (++i >= n || !is_digit(p[i]))
			return bad_at(c, i, "a digit must follow the decimal point");
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || !is_digit(p[i]))
			return bad_at(c, i, "the exponent needs a digit");
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (!number_in_range(p + c->pos, i - c->pos)) {
		snprintf(c->whybuf, sizeof(c->whybuf), "the number %.*s%s is beyond "
			 "the range of a double", (int)(i - c->pos < 24 ? i - c->pos : 24),
			 (const char *)p + c->pos, i - c->pos > 24 ? "..." : "");
		c->why = c->whybuf;
		return false;
	}
	c->pos = i;
	return true;
}

static bool check_value(struct check *c, int depth);

static bool check_container(struct check *c, int depth)
{
	bool obj = c->p[c->pos] == '{';
	unsigned char close = obj ? '}' : ']';
	if (depth >= NEST_MAX)
		return bad_at(c, c->pos, "nested deeper than 1000 levels "
			      "(pogfs's limit)");
	c->pos++;
	check_ws(c);
	if (c->pos < c->len && c->p[c->pos] == close) {
		c->pos++;
		return true;
	}
	for (bool after_comma = false;; after_comma = true) {
		if (after_comma && c->pos < c->len && c->p[c->pos] == close)
			return bad_at(c, c->pos, "a comma before the closing bracket");
		if (obj) {
			if (c->pos >= c->len || c->p[c->pos] != '"')
				return bad_at(c, c->pos, "expected a string (a key)");
			if (!check_string(c))
				return false;
			check_ws(c);
			if (c->pos >= c->len || c->p[c->pos] != ':')
				return bad_at(c, c->pos, "expected ':' after the key");
			c->pos++;
			check_ws(c);
		}
		if (!check_value(c, depth + 1))
			return false;
		check_ws(c);
		if (c->pos < c->len && c->p[c->pos] == ',') {
			c->pos++;
			check_ws(c);
			continue;
		}
		if (c->pos < c->len && c->p[c->pos] == close) {
			c->pos++;
			return true;
		}
		return bad_at(c, c->pos, obj ? "expected ',' or '}'"
					      : "expected ',' or ']'");
	}
}

static bool literal_at(struct check *c, const char *lit)
{
	size_t n = strlen(lit);
	if (c->len - c->pos < n || memcmp(c->p + c->pos, lit, n))
		return false;
	c->pos += n;
	return true;
}

static bool check_value(struct check *c, int depth)
{
	if (c->pos >= c->len)
		return bad_at(c, c->pos, "the document ends where a value should be");
	unsigned char ch = c->p[c->pos];
	if (ch == '"')
		return check_string(c);
	if (ch == '-' || is_digit(ch))
		return check_number(c);
	if (ch == '[' || ch == '{')
		return check_container(c, depth);
	if (literal_at(c, "true") || literal_at(c, "false") || literal_at(c, "null"))
		return true;
	if (ch == '/')
		return bad_at(c, c->pos, "a comment (JSON has none)");
	return bad_at(c, c->pos, "expected a value (a string, number, object, "
		      "array, true, false or null)");
}

/* Line and column (in bytes, from 1) of the byte at. */
static void position_of(const char *doc, size_t len, size_t at,
			struct pog_json_error *e)
{
	e->line = 1;
	e->column = 1;
	for (size_t i = 0; i < at && i < len; i++) {
		if (doc[i] == '\n') {
			e->line++;
			e->column = 1;
		} else {
			e->column++;
		}
	}
}

/* Where the value starts: after a UTF-8 BOM and white space. */
static size_t document_start(const char *doc, size_t len)
{
	size_t i = len >= 3 && memcmp(doc, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
	while (i < len && is_ws((unsigned char)doc[i]))
		i++;
	return i;
}

/* The whole text, before anything is created: 0 or -EINVAL with where. */
static int check_document(const char *doc, size_t len, struct pog_json_error *e)
{
	struct check c = {.p = (const unsigned char *)doc, .len = len};
	c.pos = document_start(doc, len);
	bool ok = check_value(&c, 0);
	if (ok) {
		check_ws(&c);
		if (c.pos < len)
			ok = bad_at(&c, c.pos, doc[c.pos] == '\0'
				    ? "a NUL byte after the JSON value"
				    : "text after the JSON value");
	}
	if (ok)
		return 0;
	position_of(doc, len, c.pos, e);
	snprintf(e->message, sizeof(e->message), "invalid JSON: %s", c.why);
	return -EINVAL;
}

/* ---- 2. create: a reader over the checked text ---- */

#define DBUF (64u << 10)   /* decoded string bytes handed on at a time */
#define KEYBUF 2048        /* a key as written ("$b64:" + base64 of 1024) */

struct importer {
	pog_store *s;
	struct pog_json_error *error;
	const char *doc;
	size_t len;
	int format;                 /* 0: plain JSON; 1, 2: a pogfs export */
	char *dbuf;                 /* DBUF bytes: strings being decoded */
	unsigned char *bbuf;        /* DBUF bytes: base64 decoded */
	char key[KEYBUF + 8];       /* the last key decoded */
	size_t keylen;
	bool key_long;
	struct pog_map64 ids;       /* id -> ino */
	struct pog_vec refs;        /* (ref ino, id) to point at the end */
	struct pog_vec links;       /* (dir ino, id) + names kept aside */
	char **link_names;
	size_t *link_lens;
	size_t nlinks;
	uint32_t uid, gid;
};

static int fail(struct importer *im, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct importer *im, int err, const char *fmt, ...)
{
	if (im->error && !im->error->message[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(im->error->message, sizeof(im->error->message), fmt, ap);
		va_end(ap);
	}
	return err;
}

/* fail(), naming the place in the text it is about. */
static int fail_at(struct importer *im, size_t at, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_at(struct importer *im, size_t at, int err, const char *fmt, ...)
{
	if (im->error && !im->error->message[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(im->error->message, sizeof(im->error->message), fmt, ap);
		va_end(ap);
		position_of(im->doc, im->len, at, im->error);
	}
	return err;
}

/* Bytes of a name for a message (names are not NUL-terminated). */
static int shown(size_t len, size_t max)
{
	return (int)(len < max ? len : max);
}

static size_t skip_ws(const struct importer *im, size_t i)
{
	while (i < im->len && is_ws((unsigned char)im->doc[i]))
		i++;
	return i;
}

/* The closing quote of the string opening at q (an escaped quote follows
 * an odd number of backslashes). */
static size_t string_end(const struct importer *im, size_t q)
{
	const char *d = im->doc;
	size_t i = q + 1;
	for (;;) {
		const char *e = memchr(d + i, '"', im->len - i);
		if (!e)
			return im->len; /* not after the check */
		size_t at = (size_t)(e - d), bs = 0;
		while (at - bs > q + 1 && d[at - bs - 1] == '\\')
			bs++;
		if (!(bs & 1))
			return at;
		i = at + 1;
	}
}

/* Just past the value starting at v. */
static size_t skip_value(const struct importer *im, size_t v)
{
	const char *d = im->doc;
	size_t i = v;
	if (d[i] == '"')
		return string_end(im, i) + 1;
	if (d[i] != '[' && d[i] != '{') {
		while (i < im->len && !is_ws((unsigned char)d[i]) && d[i] != ',' &&
		       d[i] != ']' && d[i] != '}')
			i++;
		return i;
	}
	size_t depth = 0;
	while (i < im->len) {
		char c = d[i];
		if (c == '"') {
			i = string_end(im, i) + 1;
			continue;
		}
		if (c == '[' || c == '{')
			depth++;
		else if ((c == ']' || c == '}') && --depth == 0)
			return i + 1;
		i++;
	}
	return im->len;
}

/* The first element or member of the container opening at open, or 0
 * when it is empty (*after: just past it). */
static size_t first_item(const struct importer *im, size_t open, size_t *after)
{
	size_t i = skip_ws(im, open + 1);
	if (i >= im->len || im->doc[i] == ']' || im->doc[i] == '}') {
		*after = i + 1;
		return 0;
	}
	return i;
}

/* After an item ending at e: the next one, or 0 at the container's end. */
static size_t next_item(const struct importer *im, size_t e, size_t *after)
{
	size_t i = skip_ws(im, e);
	if (i < im->len && im->doc[i] == ',')
		return skip_ws(im, i + 1);
	*after = i + 1;
	return 0;
}

/* The value of the member whose key opens at kq; *ke: the key's end. */
static size_t member_value(const struct importer *im, size_t kq, size_t *ke)
{
	*ke = string_end(im, kq);
	size_t colon = skip_ws(im, *ke + 1);
	return skip_ws(im, colon + 1);
}

/* ---- strings, decoded a piece at a time ---- */

/* Where decoded bytes go. */
typedef int (*put_fn)(struct importer *im, void *ctx, const char *p, size_t n);

static size_t utf8_encode(uint32_t u, char *out)
{
	if (u < 0x80) {
		out[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		out[0] = (char)(0xc0 | u >> 6);
		out[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		out[0] = (char)(0xe0 | u >> 12);
		out[1] = (char)(0x80 | (u >> 6 & 0x3f));
		out[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | u >> 18);
	out[1] = (char)(0x80 | (u >> 12 & 0x3f));
	out[2] = (char)(0x80 | (u >> 6 & 0x3f));
	out[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

/* The escape at i (checked text): its bytes in out, *i moved past it. */
static size_t decode_escape(const struct importer *im, size_t *i, char *out)
{
	const unsigned char *p = (const unsigned char *)im->doc + *i;
	char ch = (char)p[1];
	*i += 2;
	switch (ch) {
	case 'b': *out = '\b'; return 1;
	case 'f': *out = '\f'; return 1;
	case 'n': *out = '\n'; return 1;
	case 'r': *out = '\r'; return 1;
	case 't': *out = '\t'; return 1;
	case 'u': break;
	default: *out = ch; return 1; /* " \ / */
	}
	uint32_t u = (uint32_t)hex4(p + 2);
	*i += 4;
	if (u >= 0xd800 && u <= 0xdbff) {
		uint32_t l = (uint32_t)hex4(p + 8);
		u = 0x10000 + ((u - 0xd800) << 10) + (l - 0xdc00);
		*i += 6;
	}
	return utf8_encode(u, out);
}

/* Decode the string whose quotes are at q and e: put() gets the bytes,
 * DBUF at most at a time. */
static int decode_string(struct importer *im, size_t q, size_t e, put_fn put,
			 void *ctx)
{
	size_t i = q + 1, n = 0;
	int err = 0;
	while (i < e && !err) {
		const char *bs = memchr(im->doc + i, '\\', e - i);
		size_t run = (bs ? (size_t)(bs - im->doc) : e) - i;
		if (run > DBUF - n) {
			/* a long run: what is buffered, then the text itself */
			if (n)
				err = put(im, ctx, im->dbuf, n);
			n = 0;
			size_t k = run < DBUF ? run : DBUF;
			if (!err)
				err = put(im, ctx, im->doc + i, k);
			i += k;
			continue;
		}
		memcpy(im->dbuf + n, im->doc + i, run);
		n += run;
		i += run;
		if (i < e) {
			if (DBUF - n < 4) {
				err = put(im, ctx, im->dbuf, n);
				n = 0;
			}
			n += decode_escape(im, &i, im->dbuf + n);
		}
	}
	if (!err && n)
		err = put(im, ctx, im->dbuf, n);
	return err;
}

static int put_key(struct importer *im, void *ctx, const char *p, size_t n)
{
	(void)ctx;
	if (im->keylen + n > KEYBUF) {
		im->key_long = true;
		return 0;
	}
	memcpy(im->key + im->keylen, p, n);
	im->keylen += n;
	return 0;
}

/* The key (or short string) opening at q into im->key; false when it is
 * longer than KEYBUF bytes. */
static bool decode_short(struct importer *im, size_t q)
{
	im->keylen = 0;
	im->key_long = false;
	decode_string(im, q, string_end(im, q), put_key, NULL);
	im->key[im->keylen] = '\0';
	return !im->key_long;
}

static bool key_is(const struct importer *im, const char *lit)
{
	size_t n = strlen(lit);
	return !im->key_long && im->keylen == n && memcmp(im->key, lit, n) == 0;
}

static int write_all(struct importer *im, uint64_t ino, uint64_t off,
		     const char *data, size_t len)
{
	while (len) {
		size_t n = len > (1u << 20) ? (1u << 20) : len;
		ssize_t w = pog_write(im->s, ino, off, data, n);
		if (w < 0)
			return fail(im, (int)w, "write: %s", pog_strerror((int)w));
		off += n;
		data += n;
		len -= n;
	}
	return 0;
}

struct data_sink {
	uint64_t ino, off;
	struct b64dec *b64;   /* NULL: the bytes themselves */
};

static int put_data(struct importer *im, void *ctx, const char *p, size_t n)
{
	struct data_sink *d = ctx;
	if (d->b64) {
		size_t o = b64_feed(d->b64, p, n, im->bbuf);
		if (d->b64->bad)
			return -EINVAL;
		p = (const char *)im->bbuf;
		n = o;
	}
	int err = write_all(im, d->ino, d->off, p, n);
	d->off += n;
	return err;
}

/* ---- numbers ---- */

/* The length of the number token at v. */
static size_t number_len(const struct importer *im, size_t v)
{
	size_t k = 0;
	while (v + k < im->len && !is_ws((unsigned char)im->doc[v + k]) &&
	       im->doc[v + k] != ',' && im->doc[v + k] != ']' &&
	       im->doc[v + k] != '}')
		k++;
	return k;
}

static bool is_number_at(const struct importer *im, size_t v)
{
	return v && (im->doc[v] == '-' || is_digit((unsigned char)im->doc[v]));
}

static bool is_string_at(const struct importer *im, size_t v)
{
	return v && im->doc[v] == '"';
}

/*
 * A positive integer (an id) or, with zero_ok, a non-negative one, from
 * its exact digits: never through a double. Anything else (1.5, -5, 1e3,
 * 2^64, a string) is refused, naming what it is.
 */
static int integer_at(struct importer *im, size_t v, const char *what,
		      bool zero_ok, uint64_t *out)
{
	size_t n = is_number_at(im, v) ? number_len(im, v) : 0;
	const char *t = im->doc + v;
	uint64_t x = 0;
	bool ok = n > 0 && is_digit((unsigned char)t[0]) && (t[0] != '0' || n == 1);
	for (size_t i = 0; ok && i < n; i++) {
		unsigned d = (unsigned)(t[i] - '0');
		if (!is_digit((unsigned char)t[i]) || x > (UINT64_MAX - d) / 10)
			ok = false;
		else
			x = x * 10 + d;
	}
	if (ok && (zero_ok || x > 0) && x <= (UINT64_MAX >> 1)) {
		*out = x;
		return 0;
	}
	if (!v)
		return fail(im, -EINVAL, "%s needs a value", what);
	size_t show = n ? n : skip_value(im, v) - v;
	return fail_at(im, v, -EINVAL, "%s must be a %s integer below 2^63, "
		       "not %.*s%s", what, zero_ok ? "non-negative" : "positive",
		       shown(show, 24), t, show > 24 ? "..." : "");
}

/* ---- pogfs's forms (only in a marked document) ---- */

/* The keys that make an object a form, and "rdev" of $special. */
enum { K_LINK, K_REF, K_TARGET, K_ID, K_VALUE, K_BYTES, K_SYMLINK, K_SPECIAL,
       K_RDEV, K_N };
static const char *const key_names[K_N] = {
	"$link", "$ref", "$target", "$id", "$value", "$bytes", "$symlink",
	"$special", "rdev",
};

/* A key that is a form's ("$x"), not an escaped one ("$$x", "$b64:"). */
static bool is_form_key(const struct importer *im)
{
	return im->keylen >= 1 && im->key[0] == '$' &&
	       !(im->keylen >= 2 && im->key[1] == '$') &&
	       !(im->keylen >= 5 && memcmp(im->key, "$b64:", 5) == 0);
}

/*
 * Look at the keys of the object opening at open, creating nothing:
 * at[k] is where the value of key k starts (0: no such key; the last one
 * when repeated). *others: members that are not form keys. A "$" key that
 * is no form is refused.
 */
static int scan_keys(struct importer *im, size_t open, size_t at[K_N],
		     size_t *others)
{
	size_t after;
	memset(at, 0, K_N * sizeof(at[0]));
	*others = 0;
	size_t i = first_item(im, open, &after);
	while (i) {
		size_t ke, v = member_value(im, i, &ke);
		bool known = false;
		if (im->doc[i + 1] == '$' || im->doc[i + 1] == '\\' ||
		    im->doc[i + 1] == 'r') {
			decode_short(im, i);
			for (int n = 0; n < K_N; n++)
				if (key_is(im, key_names[n])) {
					at[n] = v;
					known = n != K_RDEV;
				}
			if (!known && is_form_key(im))
				return fail_at(im, i, -EINVAL, "\"%.*s\" is no key of "
					       "a pogfs export (a key of the "
					       "data starting with $ is written "
					       "with $$)", shown(im->keylen, 40),
					       im->key);
		}
		if (!known)
			(*others)++;
		i = next_item(im, skip_value(im, v), &after);
	}
	return 0;
}

/* The form an object is, from its keys: K_N for a map (maybe with an
 * $id), else the deciding key; -EINVAL for keys that make no form. */
static int form_of(struct importer *im, size_t open, const size_t at[K_N],
		   size_t others)
{
	unsigned mask = 0;
	for (int k = 0; k < K_RDEV; k++)
		if (at[k])
			mask |= 1u << k;
#define ONLY(keys) (mask == (keys) && others == 0)
	if (!mask || mask == 1u << K_ID)
		return K_N;
	if (ONLY(1u << K_ID | 1u << K_VALUE))
		return K_VALUE;
	if (ONLY(1u << K_LINK))
		return K_LINK;
	if (ONLY(1u << K_REF) || ONLY(1u << K_REF | 1u << K_TARGET))
		return K_REF;
	if (ONLY(1u << K_BYTES))
		return K_BYTES;
	if (ONLY(1u << K_SYMLINK))
		return K_SYMLINK;
	if (mask == 1u << K_SPECIAL && others == (at[K_RDEV] ? 1u : 0u))
		return K_SPECIAL;
#undef ONLY
	return fail_at(im, open, -EINVAL, "these keys make no form of a pogfs "
		       "export (README \"JSON\")");
}

/* The key of a member (decoded in im->key) as the map key it stands for:
 * in a marked document "$$x" is "$x" and "$b64:..." is decoded. */
static int map_key(struct importer *im, size_t kq, const char **p, size_t *n)
{
	if (!decode_short(im, kq))
		return fail_at(im, kq, -ENAMETOOLONG, "a key longer than %u bytes",
			       POG_KEY_MAX);
	*p = im->key;
	*n = im->keylen;
	if (!im->format)
		return 0;
	if (im->keylen >= 2 && im->key[0] == '$' && im->key[1] == '$') {
		*p = im->key + 1;
		*n = im->keylen - 1;
	} else if (im->keylen >= 5 && memcmp(im->key, "$b64:", 5) == 0) {
		struct b64dec d = {0};
		size_t o = b64_feed(&d, im->key + 5, im->keylen - 5,
				    (unsigned char *)im->key);
		if (!b64_done(&d))
			return fail_at(im, kq, -EINVAL, "bad base64 in a $b64: key");
		*n = o;
	}
	return 0;
}

/* ---- making objects ---- */

static int import_value(struct importer *im, uint64_t dir, const char *name,
			size_t nlen, size_t v, uint64_t *ino_out, size_t *end);

static int make(struct importer *im, uint64_t dir, const char *name,
		size_t nlen, struct pog_new *spec, uint64_t *ino)
{
	struct pog_attr a;
	spec->uid = im->uid;
	spec->gid = im->gid;
	int err = pog_mknode(im->s, dir, name, nlen, spec, &a);
	if (err)
		return fail(im, err, "cannot create \"%.*s\": %s", shown(nlen, 60),
			    name, pog_strerror(err));
	*ino = a.ino;
	return 0;
}

/* Did the member whose key opens at upto have its key earlier in the
 * object opening at open? (Only asked when a name is taken.) */
static bool key_before(struct importer *im, size_t open, size_t upto,
		       const char *name, size_t nlen)
{
	size_t after, i = first_item(im, open, &after);
	char *want = malloc(nlen ? nlen : 1);
	bool seen = false;
	if (!want)
		return false;
	memcpy(want, name, nlen);
	while (i && i < upto && !seen) {
		size_t ke, v = member_value(im, i, &ke);
		const char *k;
		size_t kn;
		if (map_key(im, i, &k, &kn) == 0 && kn == nlen &&
		    memcmp(k, want, nlen) == 0)
			seen = true;
		i = next_item(im, skip_value(im, v), &after);
	}
	free(want);
	return seen;
}

/*
 * One member of the object opening at open, whose key opens at kq. A key
 * given again replaces what the earlier one made (the last one wins, as in
 * JavaScript and Python): in a map this import made, a name that is taken
 * can only be such a key; in the map imported into, only when the key is
 * earlier in the text.
 */
static int import_member(struct importer *im, uint64_t ino, size_t open,
			 size_t kq, bool fresh, size_t *end)
{
	size_t ke, v = member_value(im, kq, &ke);
	const char *k;
	size_t kn;
	int err = map_key(im, kq, &k, &kn);
	if (err)
		return err;
	char *name = malloc(kn ? kn : 1);
	if (!name)
		return -ENOMEM;
	memcpy(name, k, kn);
	err = import_value(im, ino, name, kn, v, NULL, end);
	if (err == -EEXIST && (fresh || key_before(im, open, kq, name, kn))) {
		err = pog_detach(im->s, ino, name, kn);
		if (!err) {
			im->error->message[0] = '\0';
			err = import_value(im, ino, name, kn, v, NULL, end);
		}
	}
	free(name);
	return err;
}

/* The entries of the map or list opening at open, made in ino; fresh:
 * this import made ino. */
static int import_children(struct importer *im, uint64_t ino, size_t open,
			   bool list, bool fresh)
{
	size_t index = 0, after;
	size_t i = first_item(im, open, &after);
	while (i) {
		size_t e = 0;
		int err = 0;
		if (list) {
			char idx[24];
			size_t klen = (size_t)snprintf(idx, sizeof(idx), "%zu", index++);
			err = import_value(im, ino, idx, klen, i, NULL, &e);
		} else {
			size_t ke, v = member_value(im, i, &ke);
			/* the $id of a map is no entry of it */
			if (im->format && im->doc[i + 1] == '$' && decode_short(im, i) &&
			    key_is(im, "$id"))
				e = skip_value(im, v);
			else
				err = import_member(im, ino, open, i, fresh, &e);
		}
		if (err)
			return err;
		i = next_item(im, e, &after);
	}
	return 0;
}

/* The content of a string: the JSON string at v, or base64 in it. */
static int import_string_data(struct importer *im, uint64_t ino, size_t v,
			      bool base64)
{
	struct b64dec d = {0};
	struct data_sink sink = {ino, 0, base64 ? &d : NULL};
	int err = decode_string(im, v, string_end(im, v), put_data, &sink);
	if (err == -EINVAL || (!err && base64 && !b64_done(&d)))
		return fail_at(im, v, -EINVAL, "bad base64 in $bytes");
	return err;
}

/* A number: an int when it is written without '.' and exponent and fits
 * 64 bits, else the nearest double; beyond a double's range: refused. */
static int number_value(struct importer *im, size_t v, unsigned *type,
			uint64_t *bits)
{
	size_t n = number_len(im, v);
	char small[64];
	char *text = n < sizeof(small) ? small : malloc(n + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, im->doc + v, n);
	text[n] = '\0';
	int err = 0;
	char *end;
	errno = 0;
	long long i = strchr(text, '.') || strchr(text, 'e') || strchr(text, 'E')
		? 0 : strtoll(text, &end, 10);
	if (!errno && !strchr(text, '.') && !strchr(text, 'e') &&
	    !strchr(text, 'E')) {
		*type = POG_INT;
		*bits = (uint64_t)i;
	} else {
		double d = strtod(text, &end);
		*type = POG_FLOAT;
		memcpy(bits, &d, sizeof(d));
		if (!isfinite(d))
			err = fail_at(im, v, -EINVAL, "the number %.*s%s is beyond "
				      "the range of a double", shown(n, 24), text,
				      n > 24 ? "..." : "");
	}
	if (text != small)
		free(text);
	return err;
}

static int import_scalar(struct importer *im, uint64_t dir, const char *name,
			 size_t nlen, size_t v, uint64_t *ino)
{
	unsigned type;
	uint64_t bits = 0;
	char text[72];
	char c = im->doc[v];
	int err = 0;
	if (c == 't' || c == 'f') {
		type = POG_BOOL;
		bits = c == 't';
	} else if (c == 'n') {
		type = POG_NULL;
	} else {
		err = number_value(im, v, &type, &bits);
		if (err)
			return err;
	}
	size_t tl = pog_scalar_format(type, bits, text, sizeof(text) - 1);
	text[tl++] = '\n';
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	err = make(im, dir, name, nlen, &spec, ino);
	if (!err) {
		ssize_t w = pog_write(im->s, *ino, 0, text, tl);
		err = w < 0 ? (int)w : 0;
	}
	if (!err)
		err = pog_set_type(im->s, *ino, type);
	return err;
}

/* Record the id whose value is at idv as ino. */
static int remember_id(struct importer *im, size_t idv, uint64_t ino)
{
	uint64_t id;
	int err = integer_at(im, idv, "$id", false, &id);
	if (err)
		return err;
	uint64_t *slot = pog_map64_get(&im->ids, id);
	if (!slot)
		return -ENOMEM;
	if (*slot && *slot != ino)
		return fail_at(im, idv, -EINVAL, "$id %" PRIu64 " defined twice", id);
	*slot = ino;
	return 0;
}

static int defer_link(struct importer *im, uint64_t dir, const char *name,
		      size_t nlen, uint64_t id)
{
	char **names = realloc(im->link_names, (im->nlinks + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	im->link_names = names;
	size_t *lens = realloc(im->link_lens, (im->nlinks + 1) * sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	im->link_lens = lens;
	names[im->nlinks] = malloc(nlen + 1);
	if (!names[im->nlinks])
		return -ENOMEM;
	memcpy(names[im->nlinks], name, nlen);
	names[im->nlinks][nlen] = '\0';
	lens[im->nlinks] = nlen;
	im->nlinks++;
	if (pog_vec_push(&im->links, dir) || pog_vec_push(&im->links, id))
		return -ENOMEM;
	return 0;
}

/* {"$link": N}: a hard link now when N is known, else at the end. */
static int import_link(struct importer *im, uint64_t dir, const char *name,
		       size_t nlen, size_t idv)
{
	uint64_t id;
	int err = integer_at(im, idv, "$link", false, &id);
	if (err)
		return err;
	/* Defined already (always so in pog's own documents): link now. */
	uint64_t *t = pog_map64_find(&im->ids, id);
	if (t) {
		struct pog_attr a;
		err = pog_link(im->s, *t, dir, name, nlen, &a);
		return err ? fail(im, err, "link \"%.*s\": %s", shown(nlen, 60),
				  name, pog_strerror(err)) : 0;
	}
	/* A list keeps the name's place: names never shift before the
	 * commit renumbers it. */
	return defer_link(im, dir, name, nlen, id);
}

/* {"$ref": N} and {"$ref": N, "$target": V}. */
static int import_ref(struct importer *im, uint64_t dir, const char *name,
		      size_t nlen, const size_t at[K_N], uint64_t *ino)
{
	uint64_t id;
	int err = integer_at(im, at[K_REF], "$ref", false, &id);
	if (err)
		return err;
	struct pog_new spec = {.type = POG_REF, .mode = 0644,
			       .ref_target = POG_ROOT_INO}; /* pointed at the end */
	err = make(im, dir, name, nlen, &spec, ino);
	if (!err && (pog_vec_push(&im->refs, *ino) || pog_vec_push(&im->refs, id)))
		err = -ENOMEM;
	if (err || !at[K_TARGET])
		return err;
	/* The target has no owning place: make it under a temporary name,
	 * then take the name away; the ref keeps it alive. */
	uint64_t tino = 0;
	size_t e;
	char tmp[64];
	int tl = snprintf(tmp, sizeof(tmp), "\x01pog-import-%" PRIu64, *ino);
	err = import_value(im, POG_ROOT_INO, tmp, (size_t)tl, at[K_TARGET], &tino, &e);
	if (!err) {
		uint64_t *slot = pog_map64_get(&im->ids, id);
		if (!slot)
			err = -ENOMEM;
		else if (*slot && *slot != tino)
			err = fail_at(im, at[K_REF], -EINVAL, "$ref %" PRIu64
				      " defined twice", id);
		else
			*slot = tino;
	}
	if (!err)
		err = pog_detach(im->s, POG_ROOT_INO, tmp, (size_t)tl);
	return err;
}

/*
 * The text of {"$symlink": S} at t, S a string or {"$bytes": ...}, into
 * text (KEYBUF + 8 bytes, NUL-terminated): 0, or -EINVAL with the reason
 * at t (more than 4095 bytes, a NUL, not a string).
 */
static int symlink_text(struct importer *im, size_t t, char *text)
{
	size_t tl = 0;
	bool ok = false;
	if (is_string_at(im, t)) {
		ok = decode_short(im, t);
		memcpy(text, im->key, im->keylen);
		tl = im->keylen;
	} else if (im->doc[t] == '{') {
		size_t in[K_N], others;
		int err = scan_keys(im, t, in, &others);
		if (err)
			return err;
		if (is_string_at(im, in[K_BYTES]) && others == 0 &&
		    decode_short(im, in[K_BYTES])) {
			struct b64dec d = {0};
			tl = b64_feed(&d, im->key, im->keylen, (unsigned char *)text);
			ok = b64_done(&d);
		}
	}
	if (!ok || tl > 4095 || memchr(text, '\0', tl))
		return fail_at(im, t, -EINVAL, "$symlink needs a string of at most "
			       "4095 bytes and no NUL");
	text[tl] = '\0';
	return 0;
}

static int import_symlink(struct importer *im, uint64_t dir, const char *name,
			  size_t nlen, size_t t, uint64_t *ino)
{
	char text[KEYBUF + 8];
	int err = symlink_text(im, t, text);
	if (err)
		return err;
	struct pog_new spec = {.type = POG_SYMLINK, .mode = 0644, .text = text};
	return make(im, dir, name, nlen, &spec, ino);
}

/* {"$special": "fifo", "rdev": R}. */
static int import_special(struct importer *im, uint64_t dir, const char *name,
			  size_t nlen, const size_t at[K_N], uint64_t *ino)
{
	size_t kv = at[K_SPECIAL];
	struct pog_new spec = {.type = POG_SPECIAL};
	if (is_string_at(im, kv) && decode_short(im, kv))
		spec.mode = key_is(im, "fifo") ? S_IFIFO | 0644
			: key_is(im, "char") ? S_IFCHR | 0644
			: key_is(im, "block") ? S_IFBLK | 0644
			: key_is(im, "socket") ? S_IFSOCK | 0644 : 0;
	if (!spec.mode)
		return fail_at(im, kv, -EINVAL, "$special is \"fifo\", \"char\", "
			       "\"block\" or \"socket\"");
	if (at[K_RDEV]) {
		int err = integer_at(im, at[K_RDEV], "rdev", true, &spec.rdev);
		if (err)
			return err;
	}
	return make(im, dir, name, nlen, &spec, ino);
}

/* A map (an object of plain JSON, or {"$id": N, ...} of a pogfs export). */
static int import_map(struct importer *im, uint64_t dir, const char *name,
		      size_t nlen, size_t v, size_t idv, uint64_t *ino)
{
	struct pog_new spec = {.type = POG_MAP, .mode = 0755};
	int err = make(im, dir, name, nlen, &spec, ino);
	if (!err && idv)
		err = remember_id(im, idv, *ino);
	if (!err)
		err = import_children(im, *ino, v, false, true);
	return err;
}

/* An object of a pogfs export: a form, or a map. */
static int import_object(struct importer *im, uint64_t dir, const char *name,
			 size_t nlen, size_t v, uint64_t *ino)
{
	size_t at[K_N], others, e;
	int err = scan_keys(im, v, at, &others);
	int form = err ? err : form_of(im, v, at, others);
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	switch (form) {
	case K_N:
		return import_map(im, dir, name, nlen, v, at[K_ID], ino);
	case K_LINK:
		return import_link(im, dir, name, nlen, at[K_LINK]);
	case K_REF:
		return import_ref(im, dir, name, nlen, at, ino);
	case K_VALUE:
		err = import_value(im, dir, name, nlen, at[K_VALUE], ino, &e);
		return err ? err : remember_id(im, at[K_ID], *ino);
	case K_BYTES:
		if (!is_string_at(im, at[K_BYTES]))
			return fail_at(im, at[K_BYTES], -EINVAL,
				       "$bytes needs a base64 string");
		err = make(im, dir, name, nlen, &spec, ino);
		return err ? err : import_string_data(im, *ino, at[K_BYTES], true);
	case K_SYMLINK:
		return import_symlink(im, dir, name, nlen, at[K_SYMLINK], ino);
	case K_SPECIAL:
		return import_special(im, dir, name, nlen, at, ino);
	default:
		return form;
	}
}

/*
 * The value starting at v becomes the entry name of dir; *ino_out (may be
 * NULL) receives what it made, *end where the value ends.
 */
static int import_value(struct importer *im, uint64_t dir, const char *name,
			size_t nlen, size_t v, uint64_t *ino_out, size_t *end)
{
	uint64_t ino = 0;
	int err = 0;
	char c = im->doc[v];
	struct pog_new spec = {.mode = 0644};
	*end = skip_value(im, v);
	pog_progress_note("bytes", v, im->len);
	if (c == '{') {
		err = im->format ? import_object(im, dir, name, nlen, v, &ino)
				 : import_map(im, dir, name, nlen, v, 0, &ino);
	} else if (c == '[') {
		spec.type = POG_MAP;
		spec.mode = 0755;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = pog_set_type(im->s, ino, POG_LIST);
		if (!err)
			err = import_children(im, ino, v, true, true);
	} else if (c == '"') {
		spec.type = POG_STRING;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = import_string_data(im, ino, v, false);
	} else {
		err = import_scalar(im, dir, name, nlen, v, &ino);
	}
	if (ino_out)
		*ino_out = ino;
	return err;
}

/* Point refs and add hard links, now that every id is known. */
static int import_finish(struct importer *im)
{
	for (size_t i = 0; i + 1 < im->refs.n; i += 2) {
		uint64_t *t = pog_map64_find(&im->ids, im->refs.v[i + 1]);
		if (!t)
			return fail(im, -EINVAL, "$ref %" PRIu64 " names no $id",
				    im->refs.v[i + 1]);
		int err = pog_set_ref_target(im->s, im->refs.v[i], *t);
		if (err)
			return err;
	}
	for (size_t i = 0; i < im->nlinks; i++) {
		uint64_t *t = pog_map64_find(&im->ids, im->links.v[2 * i + 1]);
		if (!t)
			return fail(im, -EINVAL, "$link %" PRIu64 " names no $id",
				    im->links.v[2 * i + 1]);
		struct pog_attr a;
		int err = pog_link(im->s, *t, im->links.v[2 * i], im->link_names[i],
				   im->link_lens[i], &a);
		if (err)
			return fail(im, err, "link \"%.*s\": %s",
				    shown(im->link_lens[i], 60), im->link_names[i],
				    pog_strerror(err));
	}
	return 0;
}

/* A document merged into the map dir: an object (a map). */
static int import_into(struct importer *im, uint64_t dir, size_t v)
{
	if (im->doc[v] != '{')
		return fail_at(im, v, -EINVAL, "a document imported into a map "
			       "must be an object");
	if (im->format) {
		size_t at[K_N], others;
		int err = scan_keys(im, v, at, &others);
		int form = err ? err : form_of(im, v, at, others);
		if (form < 0)
			return form;
		if (form != K_N)
			return fail_at(im, v, -EINVAL, "a document imported into a "
				       "map must be a map");
		if (at[K_ID] && (err = remember_id(im, at[K_ID], dir)))
			return err;
	}
	return import_children(im, dir, v, false, false);
}

/* ---- a marked document's forms, checked before anything is made ---- */

/*
 * Everything about a pogfs export that the text alone can tell is checked
 * before the first object is made: the forms and their keys, ids, base64,
 * symlink texts, and that every $ref and $link names an $id that the
 * document defines (a $link in a list after it). So a bad export, like bad
 * JSON, changes nothing; what remains for the create pass are the store's
 * own limits (a name taken, the pool full).
 */
struct validator {
	struct pog_map64 defined;   /* id -> 1 */
	struct pog_vec named;       /* (id, where) of each $ref and $link */
	uint64_t allow;             /* the id a $ref's $target may say again */
};

static int put_nothing(struct importer *im, void *ctx, const char *p, size_t n)
{
	struct b64dec *d = ctx;
	b64_feed(d, p, n, im->bbuf);
	return d->bad ? -EINVAL : 0;
}

static int validate_value(struct importer *im, struct validator *va, size_t v,
			  bool in_list, int depth);

static int define_id(struct importer *im, struct validator *va, size_t idv,
		     const char *what, uint64_t allow)
{
	uint64_t id;
	int err = integer_at(im, idv, what, false, &id);
	if (err)
		return err;
	uint64_t *slot = pog_map64_get(&va->defined, id);
	if (!slot)
		return -ENOMEM;
	if (*slot && id != allow)
		return fail_at(im, idv, -EINVAL, "%s %" PRIu64 " defined twice",
			       what, id);
	*slot = 1;
	return 0;
}

static int name_id(struct importer *im, struct validator *va, size_t idv,
		   const char *what, bool before_needed)
{
	uint64_t id;
	int err = integer_at(im, idv, what, false, &id);
	if (err)
		return err;
	if (before_needed && !pog_map64_find(&va->defined, id))
		return fail_at(im, idv, -EINVAL, "$link %" PRIu64 " in a list "
			       "comes before its $id", id);
	if (pog_vec_push(&va->named, id) || pog_vec_push(&va->named, idv))
		return -ENOMEM;
	return 0;
}

static int validate_base64(struct importer *im, size_t v)
{
	struct b64dec d = {0};
	if (!is_string_at(im, v))
		return fail_at(im, v, -EINVAL, "$bytes needs a base64 string");
	int err = decode_string(im, v, string_end(im, v), put_nothing, &d);
	if (err == -EINVAL || (!err && !b64_done(&d)))
		return fail_at(im, v, -EINVAL, "bad base64 in $bytes");
	return err;
}

static int validate_symlink(struct importer *im, size_t t)
{
	char text[KEYBUF + 8];
	return symlink_text(im, t, text);
}

static int validate_members(struct importer *im, struct validator *va,
			    size_t open, int depth)
{
	size_t after, i = first_item(im, open, &after);
	while (i) {
		size_t ke, v = member_value(im, i, &ke);
		const char *k;
		size_t kn;
		int err = 0;
		if (!(im->doc[i + 1] == '$' && decode_short(im, i) && key_is(im, "$id")))
			err = map_key(im, i, &k, &kn);
		if (!err && !(im->doc[i + 1] == '$' && decode_short(im, i) &&
			      key_is(im, "$id")))
			err = validate_value(im, va, v, false, depth + 1);
		if (err)
			return err;
		i = next_item(im, skip_value(im, v), &after);
	}
	return 0;
}

static int validate_object(struct importer *im, struct validator *va, size_t v,
			   bool in_list, int depth)
{
	size_t at[K_N], others;
	int err = scan_keys(im, v, at, &others);
	int form = err ? err : form_of(im, v, at, others);
	uint64_t rdev, allow = va->allow;
	va->allow = 0;
	switch (form) {
	case K_N:
		if (at[K_ID] && (err = define_id(im, va, at[K_ID], "$id", allow)))
			return err;
		return validate_members(im, va, v, depth);
	case K_LINK:
		/* in a list too: names do not shift, so a link made at the
		 * end keeps its place */
		return name_id(im, va, at[K_LINK], "$link", false);
	case K_REF:
		err = name_id(im, va, at[K_REF], "$ref", false);
		if (err || !at[K_TARGET])
			return err;
		/* the target defines the id (its own "$id" may say so too) */
		err = define_id(im, va, at[K_REF], "$ref", 0);
		if (!err) {
			err = integer_at(im, at[K_REF], "$ref", false, &va->allow);
			if (!err)
				err = validate_value(im, va, at[K_TARGET], false,
						     depth + 1);
			va->allow = 0;
		}
		return err;
	case K_VALUE:
		err = validate_value(im, va, at[K_VALUE], in_list, depth + 1);
		return err ? err : define_id(im, va, at[K_ID], "$id", allow);
	case K_BYTES:
		return validate_base64(im, at[K_BYTES]);
	case K_SYMLINK:
		return validate_symlink(im, at[K_SYMLINK]);
	case K_SPECIAL:
		if (!is_string_at(im, at[K_SPECIAL]) || !decode_short(im, at[K_SPECIAL]) ||
		    !(key_is(im, "fifo") || key_is(im, "char") || key_is(im, "block") ||
		      key_is(im, "socket")))
			return fail_at(im, at[K_SPECIAL], -EINVAL, "$special is "
				       "\"fifo\", \"char\", \"block\" or \"socket\"");
		return at[K_RDEV] ? integer_at(im, at[K_RDEV], "rdev", true, &rdev) : 0;
	default:
		return form;
	}
}

static int validate_value(struct importer *im, struct validator *va, size_t v,
			  bool in_list, int depth)
{
	if (im->doc[v] == '{')
		return validate_object(im, va, v, in_list, depth);
	if (im->doc[v] != '[')
		return 0;
	size_t after, i = first_item(im, v, &after);
	while (i) {
		int err = validate_value(im, va, i, true, depth + 1);
		if (err)
			return err;
		i = next_item(im, skip_value(im, i), &after);
	}
	return 0;
}

/* The whole marked document (its root value at v). */
static int validate_export(struct importer *im, size_t v, bool into_map)
{
	struct validator va = {0};
	int err = 0;
	if (into_map) {
		size_t at[K_N], others;
		err = scan_keys(im, v, at, &others);
		int form = err ? err : form_of(im, v, at, others);
		if (form >= 0 && form != K_N)
			err = fail_at(im, v, -EINVAL, "a document imported into a "
				      "map must be a map");
		else if (form < 0)
			err = form;
	}
	if (!err)
		err = validate_value(im, &va, v, false, 0);
	for (size_t i = 0; !err && i + 1 < va.named.n; i += 2)
		if (!pog_map64_find(&va.defined, va.named.v[i]))
			err = fail_at(im, va.named.v[i + 1], -EINVAL, "%" PRIu64
				      " is no $id of this document", va.named.v[i]);
	pog_map64_release(&va.defined);
	pog_vec_release(&va.named);
	return err;
}

/*
 * Is the document a pogfs export? Its top value is then an object with
 * exactly the members "$pogfs" (a number: the format) and "root" (the
 * value). *v moves to the root value. 0: plain JSON.
 */
static int export_format(struct importer *im, size_t *v)
{
	size_t after, mark = 0, root = 0, members = 0;
	if (im->doc[*v] != '{')
		return 0;
	for (size_t i = first_item(im, *v, &after); i;
	     i = next_item(im, skip_value(im, member_value(im, i, &after)), &after)) {
		size_t ke, val = member_value(im, i, &ke);
		members++;
		decode_short(im, i);
		if (key_is(im, "$pogfs"))
			mark = val;
		else if (key_is(im, "root"))
			root = val;
	}
	if (members != 2 || !root || !is_number_at(im, mark))
		return 0;
	uint64_t format;
	if (integer_at(im, mark, "the pogfs export format", false, &format) ||
	    format > POG_JSON_FORMAT) {
		im->error->message[0] = '\0';
		return fail_at(im, mark, -EINVAL, "a pogfs export of format "
			       "%.*s: this pogfs reads formats 1 and %d",
			       shown(number_len(im, mark), 24), im->doc + mark,
			       POG_JSON_FORMAT);
	}
	*v = root;
	return (int)format;
}

/*
 * While an import runs, what it makes inside a directory it made is listed
 * in the staged changes by that directory's A line alone, so the change
 * table does not grow with the document.
 */
static void importing(pog_store *s, int delta)
{
	pthread_rwlock_wrlock(&s->env->lock);
	s->importing += (unsigned)delta;
	pthread_rwlock_unlock(&s->env->lock);
}

static void importer_release(struct importer *im)
{
	free(im->dbuf);
	free(im->bbuf);
	pog_map64_release(&im->ids);
	pog_vec_release(&im->refs);
	pog_vec_release(&im->links);
	for (size_t i = 0; i < im->nlinks; i++)
		free(im->link_names[i]);
	free(im->link_names);
	free(im->link_lens);
	free(im);
}

int pog_import(pog_store *s, uint64_t dir, const char *name, size_t nlen,
	       const char *doc, size_t len, uint32_t uid, uint32_t gid,
	       struct pog_json_error *error)
{
	struct pog_json_error dummy;
	if (!error)
		error = &dummy;
	memset(error, 0, sizeof(*error));
	if (!doc)
		len = 0;
	int err = check_document(doc ? doc : "", len, error);
	if (err)
		return err;
	struct importer *im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	*im = (struct importer){.s = s, .error = error, .doc = doc, .len = len,
				.uid = uid, .gid = gid};
	im->dbuf = malloc(DBUF);
	im->bbuf = malloc(DBUF);
	if (!im->dbuf || !im->bbuf) {
		importer_release(im);
		return -ENOMEM;
	}
	size_t v = document_start(doc, len), end;
	int format = export_format(im, &v);
	if (format < 0) {
		importer_release(im);
		return format;
	}
	im->format = format;
	if (format && doc[v] != '{' && !name)
		err = fail_at(im, v, -EINVAL, "a document imported into a map "
			      "must be an object");
	if (!err && format)
		err = validate_export(im, v, !name);
	if (err) {
		importer_release(im);
		return err;
	}
	/* With nothing else staged, a failed import can be undone whole. */
	bool alone = pog_staged_count(s) == 0;
	importing(s, 1);
	if (!name)
		err = import_into(im, dir, v);
	else
		err = import_value(im, dir, name, nlen, v, NULL, &end);
	if (!err)
		err = import_finish(im);
	if (!err)
		pog_progress_note("bytes", len, len);
	importing(s, -1);
	importer_release(im);
	if (err && !error->message[0])
		snprintf(error->message, sizeof(error->message), "%s",
			 pog_strerror(err));
	if (err && alone)
		pog_abort(s);
	return err;
}
