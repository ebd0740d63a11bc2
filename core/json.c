/* json.c - the store as one JSON document: export and import (cJSON). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

/*
 * The document format (README "JSON"): maps are objects, lists arrays,
 * strings JSON strings, int/float/bool/null JSON values. What plain JSON
 * cannot say is written with objects whose keys start with '$':
 *   {"$bytes": "<base64>"}        a string that is not UTF-8 or holds NUL
 *   {"$id": N, ...}               a map that is referenced (defined here)
 *   {"$id": N, "$value": V}       any other referenced object
 *   {"$ref": N}                   a ref (symlink by identity) to object N
 *   {"$ref": N, "$target": V}     the same, defining N (no owner of its own)
 *   {"$link": N}                  another owning entry (hard link) of N
 *   {"$symlink": S}               a symlink kept as text (S as a string)
 *   {"$special": "fifo", "rdev": R}   fifo, char, block or socket
 * Map keys that are not UTF-8 (or hold NUL) are written "$b64:<base64>",
 * keys starting with '$' get one more '$' (on import, a "$" key that is
 * none of these forms is taken as it is, so plain documents import). Keys are sorted bytewise, ids
 * count from 1 in the order objects are first written, so exporting the
 * same graph always gives the same bytes.
 */

/* ---- small encoders ---------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;
		if (c == 0)
			return false;
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
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static int b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

/* Decode base64 (with '=' padding) into a new buffer. */
static int b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in);
	if (n % 4)
		return -EINVAL;
	char *buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = in[i + k] == '=' ? 0 : b64val(in[i + k]);
			if (v[k] < 0 || (in[i + k] == '=' && i + 4 < n)) {
				free(buf);
				return -EINVAL;
			}
		}
		uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		buf[o++] = (char)(w >> 16);
		if (in[i + 2] != '=')
			buf[o++] = (char)(w >> 8);
		if (in[i + 3] != '=')
			buf[o++] = (char)w;
	}
	*out = buf;
	*outlen = o;
	return 0;
}

/* ---- export -------------------------------------------------------------- */

struct exporter {
	pog_store *s;
	const struct pog_state *st; /* the view exported */
	bool dry;                   /* the first run: output nothing */
	struct pog_map64 in_tree;   /* ino -> 1: owned by the exported root */
	struct pog_map64 named;     /* ino -> 1: named after its definition */
	pog_write_fn write;
	void *ctx;
	int err;
	char buf[65536];
	size_t used;
	struct pog_map64 ids;      /* ino -> id, once mentioned */
	struct pog_map64 defined;  /* ino -> 1, once written */
	uint64_t next_id;
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

/* A JSON string of UTF-8 bytes (validated by the caller). */
static void out_json_string(struct exporter *e, const char *p, size_t n)
{
	out(e, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		const char *esc = NULL;
		char u[8];
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\r')
			esc = "\\r";
		else if (c < 0x20) {
			snprintf(u, sizeof(u), "\\u%04x", c);
			esc = u;
		}
		if (esc) {
			out(e, p + start, i - start);
			outs(e, esc);
			start = i + 1;
		}
	}
	out(e, p + start, n - start);
	out(e, "\"", 1);
}

static void out_base64(struct exporter *e, const unsigned char *p, size_t n)
{
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		q[0] = b64chars[w >> 18 & 63];
		q[1] = b64chars[w >> 12 & 63];
		q[2] = i + 1 < n ? b64chars[w >> 6 & 63] : '=';
		q[3] = i + 2 < n ? b64chars[w & 63] : '=';
		out(e, q, 4);
	}
}

/* Bytes as a JSON string, or {"$bytes": base64} when not UTF-8. */
static void out_bytes(struct exporter *e, const char *p, size_t n)
{
	if (utf8_valid((const unsigned char *)p, n)) {
		out_json_string(e, p, n);
		return;
	}
	outs(e, "{\"$bytes\":\"");
	out_base64(e, (const unsigned char *)p, n);
	outs(e, "\"}");
}

static void out_key(struct exporter *e, const char *k, size_t n)
{
	if (!utf8_valid((const unsigned char *)k, n)) {
		outs(e, "\"$b64:");
		out_base64(e, (const unsigned char *)k, n);
		outs(e, "\"");
	} else if (n && k[0] == '$') {
		char *tmp = malloc(n + 1);
		if (!tmp) {
			e->err = -ENOMEM;
			return;
		}
		tmp[0] = '$';
		memcpy(tmp + 1, k, n);
		out_json_string(e, tmp, n + 1);
		free(tmp);
	} else {
		out_json_string(e, k, n);
	}
}

/* Read a whole string object into memory (malloc'ed). */
static int read_all(pog_store *s, const struct pog_inode *in, char **data,
		    size_t *len);

/* ---- which objects a document names twice ------------------------------- */

/*
 * The document is written twice: a dry run (nothing output) finds the
 * objects that are named again after their definition (by a ref, a hard
 * link, or a loop through an owner outside the subtree), and the real run
 * gives exactly those an "$id". Both runs make the same choices, as
 * these depend only on what was defined before.
 */
struct walk_ctx {
	struct exporter *e;
	struct pog_vec *stack;
};

static int tree_edge(void *c, uint64_t ino, int owned)
{
	struct walk_ctx *w = c;
	if (!owned || pog_map64_find(&w->e->in_tree, ino))
		return 0;
	uint64_t *v = pog_map64_get(&w->e->in_tree, ino);
	if (!v)
		return -ENOMEM;
	*v = 1;
	return pog_vec_push(w->stack, ino);
}

/* Everything the exported object owns, directly or not. */
static int tree_of(struct exporter *e, uint64_t root)
{
	struct pog_vec stack = {0};
	struct walk_ctx w = {e, &stack};
	uint64_t *v = pog_map64_get(&e->in_tree, root);
	int err = v ? pog_vec_push(&stack, root) : -ENOMEM;
	if (v)
		*v = 1;
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
	if (e->dry) {
		uint64_t *m = pog_map64_get(&e->named, ino);
		if (!m)
			e->err = -ENOMEM;
		else
			*m = 1;
		return 0;
	}
	uint64_t *v = pog_map64_get(&e->ids, ino);
	if (!v) {
		e->err = -ENOMEM;
		return 0;
	}
	if (!*v)
		*v = ++e->next_id;
	return *v;
}

static bool is_defined(struct exporter *e, uint64_t ino)
{
	return pog_map64_find(&e->defined, ino) != NULL;
}

/* ---- pass 2: writing -------------------------------------------------------- */

static void emit(struct exporter *e, uint64_t ino, int depth);

struct key_item {
	char *key;
	size_t len;
	uint64_t child;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key_item *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void emit_map_entries(struct exporter *e, const struct pog_inode *in,
			     bool first, int depth)
{
	size_t n = 0;
	struct key_item *items = calloc(in->entries ? in->entries : 1, sizeof(*items));
	if (!items) {
		e->err = -ENOMEM;
		return;
	}
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, e->s, in->content, 0);
	while (r > 0 && n < in->entries) {
		const void *val;
		uint16_t vlen;
		pog_bt_cur(&it, NULL, &val, &vlen);
		items[n].len = vlen - 8u;
		items[n].key = malloc(items[n].len + 1);
		if (!items[n].key) {
			r = -ENOMEM;
			break;
		}
		memcpy(items[n].key, (const char *)val + 8, items[n].len);
		memcpy(&items[n].child, val, 8);
		n++;
		r = pog_bt_next(&it);
	}
	if (r < 0)
		e->err = r;
	qsort(items, n, sizeof(*items), cmp_key);
	for (size_t i = 0; i < n && !e->err; i++) {
		if (!first)
			out(e, ",", 1);
		first = false;
		out_key(e, items[i].key, items[i].len);
		out(e, ":", 1);
		emit(e, items[i].child, depth + 1);
	}
	for (size_t i = 0; i < n; i++)
		free(items[i].key);
	free(items);
}

static void emit_list(struct exporter *e, const struct pog_inode *in, int depth)
{
	out(e, "[", 1);
	struct pog_bt_iter it;
	int r = pog_bt_seek(&it, e->s, in->content, 0);
	bool first = true;
	while (r > 0 && !e->err) {
		const void *val;
		uint64_t child;
		pog_bt_cur(&it, NULL, &val, NULL);
		memcpy(&child, val, 8);
		if (!first)
			out(e, ",", 1);
		first = false;
		emit(e, child, depth + 1);
		r = pog_bt_next(&it);
	}
	if (r < 0)
		e->err = r;
	out(e, "]", 1);
}

static void emit_plain(struct exporter *e, uint64_t ino,
		       const struct pog_inode *in, int depth)
{
	char text[64];
	char *data = NULL;
	size_t len = 0;
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
	case POG_SYMLINK:
		e->err = read_all(e->s, in, &data, &len);
		if (e->err)
			break;
		if (in->type == POG_SYMLINK)
			outs(e, "{\"$symlink\":");
		out_bytes(e, data, len);
		if (in->type == POG_SYMLINK)
			outs(e, "}");
		free(data);
		break;
	case POG_INT:
	case POG_FLOAT:
	case POG_BOOL:
	case POG_NULL:
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
		if (!is_defined(e, t) && !pog_map64_find(&e->in_tree, t)) {
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
		outf(e, "{\"$special\":\"%s\",\"rdev\":%" PRIu64 "}", kind,
		     in->rdev);
		break;
	}
	default:
		e->err = POG_ECORRUPT;
	}
	(void)ino;
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
	if (is_defined(e, ino)) {
		/* Owned again: a hard link, or for a map or list (which
		 * cannot have two owners) a ref. */
		bool dir = in->type == POG_MAP || in->type == POG_LIST;
		outf(e, dir ? "{\"$ref\":%" PRIu64 "}" : "{\"$link\":%" PRIu64 "}",
		     mention(e, ino));
		return;
	}
	uint64_t *d = pog_map64_get(&e->defined, ino);
	if (!d) {
		e->err = -ENOMEM;
		return;
	}
	*d = 1;
	if (e->dry || !pog_map64_find(&e->named, ino)) {
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

static int read_all(pog_store *s, const struct pog_inode *in, char **data,
		    size_t *len)
{
	if (in->size > SIZE_MAX / 2)
		return -EFBIG;
	char *buf = malloc(in->size + 1);
	if (!buf)
		return -ENOMEM;
	size_t done = 0;
	while (done < in->size) {
		ssize_t n = pog_data_read(s, in, done, buf + done, in->size - done);
		if (n <= 0) {
			free(buf);
			return n < 0 ? (int)n : POG_ECORRUPT;
		}
		done += (size_t)n;
	}
	*data = buf;
	*len = done;
	return 0;
}

int pog_export(pog_store *s, uint64_t ino, pog_write_fn write, void *ctx)
{
	struct exporter *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->s = s;
	e->write = write;
	e->ctx = ctx;
	int err = pog_rdlock(s);
	if (err) {
		free(e);
		return err;
	}
	e->st = pog_view(s, &ino);
	err = tree_of(e, ino);
	if (!err) {
		e->dry = true;
		emit(e, ino, 0);
		err = e->err;
		pog_map64_release(&e->defined);
		e->dry = false;
	}
	if (!err) {
		emit(e, ino, 0);
		out(e, "\n", 1);
		out_flush(e);
		err = e->err;
	}
	pog_unlock(s);
	pog_map64_release(&e->in_tree);
	pog_map64_release(&e->named);
	pog_map64_release(&e->ids);
	pog_map64_release(&e->defined);
	free(e);
	return err;
}

/* ---- import ----------------------------------------------------------------- */

/*
 * The import reads the document straight from its text and never builds a
 * tree of it: memory beyond the text is bounded by the nesting depth, the
 * largest single string token, and the ids, refs and links the document
 * defines. It goes over the text twice:
 *  1. check: a validating scanner walks the whole text and allocates
 *     nothing. It accepts what cJSON accepts (white space is any byte up
 *     to ' ', a UTF-8 BOM may lead, 1000 levels of nesting at most), and
 *     more strictly: one value and only white space after it, numbers held
 *     to JSON's grammar, \u escapes of 4 hex digits, no NUL in a string.
 *     Any error is reported with line and column before anything exists.
 *  2. create: a recursive-descent reader walks the text again and creates
 *     objects as it goes. Directives are recognised by the keys an object
 *     holds, in any order: the keys of each object are looked at first, by
 *     a scan of its text that creates nothing. Strings without escapes are
 *     written straight from the text; strings with escapes are decoded by
 *     cJSON, one token at a time. Numbers are read from their exact text.
 * Ids, refs and links are resolved at the end.
 */

#define NEST_MAX CJSON_NESTING_LIMIT
#define NOWHERE SIZE_MAX

/* ---- 1. check ---- */

struct check {
	const unsigned char *p;
	size_t len, pos;   /* pos: where the text is read, and an error is */
	size_t nul_at;     /* the first NUL in a string (\u0000 or a raw byte) */
	bool nul_raw;
	size_t num_at;     /* the first number outside JSON's grammar */
	size_t num_len;
};

static void check_ws(struct check *c)
{
	while (c->pos < c->len && c->p[c->pos] <= ' ')
		c->pos++;
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

static void saw_nul(struct check *c, size_t at, bool raw)
{
	if (c->nul_at == NOWHERE) {
		c->nul_at = at;
		c->nul_raw = raw;
	}
}

/* The string whose opening quote is at pos: its end as cJSON finds it,
 * then every escape (what cJSON decodes, and no \u0000). */
static bool check_string(struct check *c)
{
	const unsigned char *p = c->p;
	size_t start = c->pos, end = start + 1;
	while (end < c->len && p[end] != '"') {
		if (p[end] == '\\' && ++end >= c->len)
			break;
		end++;
	}
	if (end >= c->len) {
		c->pos = start + 1;
		return false;
	}
	for (size_t i = start + 1; i < end;) {
		if (p[i] != '\\') {
			if (p[i] == 0)
				saw_nul(c, i, true);
			i++;
			continue;
		}
		switch (p[i + 1]) {
		case 'b': case 'f': case 'n': case 'r': case 't':
		case '"': case '\\': case '/':
			i += 2;
			break;
		case 'u': {
			long u = end - i >= 6 ? hex4(p + i + 2) : -1;
			if (u < 0 || (u >= 0xdc00 && u <= 0xdfff)) {
				c->pos = i;
				return false;
			}
			if (u >= 0xd800 && u <= 0xdbff) {
				long l = end - i >= 12 && p[i + 6] == '\\' &&
					 p[i + 7] == 'u' ? hex4(p + i + 8) : -1;
				if (l < 0xdc00 || l > 0xdfff) {
					c->pos = i;
					return false;
				}
				i += 12;
			} else {
				if (u == 0)
					saw_nul(c, i, false);
				i += 6;
			}
			break;
		}
		default:
			c->pos = i;
			return false;
		}
	}
	c->pos = end + 1;
	return true;
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_number_char(unsigned char ch)
{
	return is_digit(ch) || ch == '+' || ch == '-' || ch == '.' || ch == 'e' ||
	       ch == 'E';
}

/* How much of s strtod takes (the bytes are number characters only). */
static size_t strtod_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0, digits = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < n && is_digit(s[i]); i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && is_digit(s[i]); i++)
			digits++;
	if (!digits)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && is_digit(s[j])) {
			while (j < n && is_digit(s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

/* JSON's number grammar, which cJSON does not hold documents to:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && is_digit(p[i]))
			i++;
	else
		return false;
	if (i < n && p[i] == '.') {
		if (++i >= n || !is_digit(p[i]))
			return false;
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i >= n || !is_digit(p[i]))
			return false;
		while (i < n && is_digit(p[i]))
			i++;
	}
	return i == n;
}

/* A number as cJSON reads it (strtod over its run of number characters;
 * what strtod leaves is the next token, an error), then the grammar. */
static bool check_number(struct check *c)
{
	size_t start = c->pos, run = start;
	while (run < c->len && is_number_char(c->p[run]))
		run++;
	size_t n = run - start;
	size_t took = strtod_prefix(c->p + start, n);
	if (!took)
		return false;
	c->pos = start + took;
	if (took == n && c->num_at == NOWHERE && !number_ok(c->p + start, n)) {
		c->num_at = start;
		c->num_len = n;
	}
	return true;
}

static bool check_value(struct check *c, int depth);

static bool check_container(struct check *c, int depth)
{
	bool obj = c->p[c->pos] == '{';
	unsigned char close = obj ? '}' : ']';
	if (depth >= NEST_MAX)
		return false;
	c->pos++;
	check_ws(c);
	if (c->pos < c->len && c->p[c->pos] == close) {
		c->pos++;
		return true;
	}
	for (;;) {
		if (obj) {
			if (c->pos < c->len && c->p[c->pos] != '"') {
				c->pos++; /* where cJSON says it is */
				return false;
			}
			if (c->pos >= c->len || !check_string(c))
				return false;
			check_ws(c);
			if (c->pos >= c->len || c->p[c->pos] != ':')
				return false;
			c->pos++;
			check_ws(c);
		}
		if (!check_value(c, depth + 1))
			return false;
		check_ws(c);
		if (c->pos >= c->len || c->p[c->pos] != ',')
			break;
		c->pos++;
		check_ws(c);
	}
	if (c->pos >= c->len || c->p[c->pos] != close)
		return false;
	c->pos++;
	return true;
}

static bool check_value(struct check *c, int depth)
{
	const unsigned char *p = c->p + c->pos;
	size_t left = c->len - c->pos;
	if (c->pos >= c->len)
		return false;
	if (left >= 4 && memcmp(p, "null", 4) == 0) {
		c->pos += 4;
		return true;
	}
	if (left >= 5 && memcmp(p, "false", 5) == 0) {
		c->pos += 5;
		return true;
	}
	if (left >= 4 && memcmp(p, "true", 4) == 0) {
		c->pos += 4;
		return true;
	}
	if (*p == '"')
		return check_string(c);
	if (*p == '-' || is_digit(*p))
		return check_number(c);
	if (*p == '[' || *p == '{')
		return check_container(c, depth);
	return false;
}

static void position_of(const char *doc, size_t at, struct pog_json_error *e)
{
	e->line = 1;
	e->column = 1;
	for (size_t i = 0; i < at; i++) {
		if (doc[i] == '\n') {
			e->line++;
			e->column = 1;
		} else {
			e->column++;
		}
	}
}

/* Where the value starts: after a UTF-8 BOM and white space (as cJSON). */
static size_t document_start(const char *doc, size_t len)
{
	size_t i = len >= 5 && memcmp(doc, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
	while (i < len && (unsigned char)doc[i] <= ' ')
		i++;
	return i;
}

/* The whole text, before anything is created: 0 or -EINVAL with where. */
static int check_document(const char *doc, size_t len, struct pog_json_error *e)
{
	struct check c = {.p = (const unsigned char *)doc, .len = len,
			  .nul_at = NOWHERE, .num_at = NOWHERE};
	c.pos = document_start(doc, len);
	bool ok = check_value(&c, 0);
	/* One value and nothing after it but white space. */
	while (ok && c.pos < len && (doc[c.pos] == ' ' || doc[c.pos] == '\t' ||
				     doc[c.pos] == '\n' || doc[c.pos] == '\r'))
		c.pos++;
	if (ok && c.pos < len)
		ok = false;
	if (!ok) {
		/* past the end: cJSON names the last byte */
		position_of(doc, c.pos < len ? c.pos : len ? len - 1 : 0, e);
		snprintf(e->message, sizeof(e->message),
			 "invalid JSON at line %d, column %d", e->line, e->column);
		return -EINVAL;
	}
	if (c.nul_at != NOWHERE) {
		position_of(doc, c.nul_at, e);
		snprintf(e->message, sizeof(e->message),
			 "%s in a string at line %d, column %d (write such bytes "
			 "as {\"$bytes\": ...})", c.nul_raw ? "a NUL byte" : "\\u0000",
			 e->line, e->column);
		return -EINVAL;
	}
	if (c.num_at != NOWHERE) {
		position_of(doc, c.num_at, e);
		snprintf(e->message, sizeof(e->message),
			 "invalid number \"%.*s\" at line %d, column %d",
			 (int)(c.num_len < 20 ? c.num_len : 20), doc + c.num_at,
			 e->line, e->column);
		return -EINVAL;
	}
	return 0;
}

/* ---- 2. create: a reader over the checked text ---- */

struct importer {
	pog_store *s;
	struct pog_json_error *error;
	const char *doc;
	size_t len;
	char *buf;                  /* a string made C string (reused) */
	size_t cap;
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

/* Bytes of a name for a message (names are not NUL-terminated). */
static int shown(size_t len, size_t max)
{
	return (int)(len < max ? len : max);
}

static size_t skip_ws(const struct importer *im, size_t i)
{
	while (i < im->len && (unsigned char)im->doc[i] <= ' ')
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
		while (i < im->len && (unsigned char)d[i] > ' ' && d[i] != ',' &&
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

/* A decoded string: the text itself when it has no escapes, else cJSON's
 * decoding of that one token. */
struct jstr {
	const char *p;
	size_t n;
	cJSON *item;
};

static int jstr_get(struct importer *im, size_t q, size_t e, struct jstr *s)
{
	s->item = NULL;
	s->p = im->doc + q + 1;
	s->n = e - q - 1;
	if (!memchr(s->p, '\\', s->n))
		return 0;
	s->item = cJSON_ParseWithLength(im->doc + q, e - q + 1);
	if (!cJSON_IsString(s->item)) {
		/* checked text: only memory can be short */
		cJSON_Delete(s->item);
		s->item = NULL;
		return fail(im, -ENOMEM, "cannot decode a string: %s",
			    pog_strerror(-ENOMEM));
	}
	s->p = s->item->valuestring;
	s->n = strlen(s->p); /* the check let no NUL through */
	return 0;
}

static void jstr_release(struct jstr *s)
{
	cJSON_Delete(s->item);
	s->item = NULL;
}

static bool jstr_is(const struct jstr *s, const char *lit)
{
	size_t n = strlen(lit);
	return s->n == n && memcmp(s->p, lit, n) == 0;
}

/* The string as a C string (in im->buf unless cJSON made it one). */
static const char *jstr_cstr(struct importer *im, const struct jstr *s)
{
	if (s->item)
		return s->p;
	if (s->n + 1 > im->cap) {
		char *b = realloc(im->buf, s->n + 1);
		if (!b)
			return NULL;
		im->buf = b;
		im->cap = s->n + 1;
	}
	memcpy(im->buf, s->p, s->n);
	im->buf[s->n] = '\0';
	return im->buf;
}

/* The length of the number token at v. */
static size_t number_len(const struct importer *im, size_t v)
{
	size_t k = 0;
	while (v + k < im->len && is_number_char((unsigned char)im->doc[v + k]))
		k++;
	return k;
}

/* The value of the number token at v, as cJSON has it (strtod). */
static double number_at(const struct importer *im, size_t v)
{
	char small[64];
	size_t k = number_len(im, v);
	char *text = k < sizeof(small) ? small : malloc(k + 1);
	if (!text)
		return 0;
	memcpy(text, im->doc + v, k);
	text[k] = '\0';
	double d = strtod(text, NULL);
	if (text != small)
		free(text);
	return d;
}

static bool is_number_at(const struct importer *im, size_t v)
{
	return v && (im->doc[v] == '-' || is_digit((unsigned char)im->doc[v]));
}

static bool is_string_at(const struct importer *im, size_t v)
{
	return v && im->doc[v] == '"';
}

/* The keys that make an object a directive, and "rdev" of $special. */
enum { K_LINK, K_REF, K_TARGET, K_ID, K_VALUE, K_BYTES, K_SYMLINK, K_SPECIAL,
       K_RDEV, K_N };
static const char *const key_names[K_N] = {
	"$link", "$ref", "$target", "$id", "$value", "$bytes", "$symlink",
	"$special", "rdev",
};

/*
 * Look at the keys of the object opening at open, creating nothing:
 * at[k] is where the value of the first key k starts (0: no such key).
 * Returns where the object ends (just past it).
 */
static int scan_keys(struct importer *im, size_t open, size_t at[K_N],
		     size_t *after)
{
	memset(at, 0, K_N * sizeof(at[0]));
	size_t i = first_item(im, open, after);
	while (i) {
		size_t ke, v = member_value(im, i, &ke);
		struct jstr k;
		if (ke - i - 1 <= 16 || memchr(im->doc + i + 1, '\\', ke - i - 1)) {
			int err = jstr_get(im, i, ke, &k);
			if (err)
				return err;
			for (int n = 0; n < K_N; n++)
				if (!at[n] && jstr_is(&k, key_names[n]))
					at[n] = v;
			jstr_release(&k);
		}
		i = next_item(im, skip_value(im, v), after);
	}
	return 0;
}

/* The key of a member (decoded) as the map key it stands for. */
struct key {
	const char *p;
	size_t n;
	char *owned;
};

static int decode_key(struct importer *im, const struct jstr *k, struct key *key)
{
	key->p = NULL;
	key->n = 0;
	key->owned = NULL;
	if (k->n >= 2 && k->p[0] == '$' && k->p[1] == '$') {
		key->p = k->p + 1;
		key->n = k->n - 1;
		return 0;
	}
	if (k->n >= 5 && memcmp(k->p, "$b64:", 5) == 0) {
		const char *c = jstr_cstr(im, k);
		if (!c)
			return -ENOMEM;
		if (b64_decode(c + 5, &key->owned, &key->n))
			return fail(im, -EINVAL, "bad base64 in key \"%.*s\"",
				    shown(k->n, 40), k->p);
		key->p = key->owned;
		return 0;
	}
	/* Any other key, "$..." ones of plain documents too, is itself. */
	key->p = k->p;
	key->n = k->n;
	return 0;
}

static int import_value(struct importer *im, uint64_t dir, const char *name,
			size_t nlen, size_t v, uint64_t *ino_out, size_t *end);

/* The entries of the map or list opening at open, made in ino. */
static int import_children(struct importer *im, uint64_t ino, size_t open,
			   bool list, size_t *after)
{
	size_t index = 0;
	size_t i = first_item(im, open, after);
	while (i) {
		size_t e = 0;
		int err;
		if (list) {
			char idx[24];
			size_t klen = (size_t)snprintf(idx, sizeof(idx), "%zu", index++);
			err = import_value(im, ino, idx, klen, i, NULL, &e);
		} else {
			size_t ke, v = member_value(im, i, &ke);
			struct jstr k;
			err = jstr_get(im, i, ke, &k);
			if (!err && jstr_is(&k, "$id")) {
				e = skip_value(im, v);
			} else if (!err) {
				struct key key;
				err = decode_key(im, &k, &key);
				if (!err)
					err = import_value(im, ino, key.p, key.n, v,
							   NULL, &e);
				free(key.owned);
			}
			jstr_release(&k);
		}
		if (err)
			return err;
		i = next_item(im, e, after);
	}
	return 0;
}

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

static int write_all(struct importer *im, uint64_t ino, const char *data,
		     size_t len)
{
	int err = 0;
	for (size_t off = 0; !err && off < len;) {
		size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
		ssize_t w = pog_write(im->s, ino, off, data + off, n);
		if (w < 0)
			err = fail(im, (int)w, "write: %s", pog_strerror((int)w));
		off += n;
	}
	return err;
}

/* The content of a string: a JSON string at v, or {"$bytes": ...} whose
 * value is at b. */
static int import_bytes(struct importer *im, uint64_t ino, size_t v, size_t b)
{
	struct jstr s;
	int err;
	if (im->doc[v] == '"') {
		err = jstr_get(im, v, string_end(im, v), &s);
		if (!err)
			err = write_all(im, ino, s.p, s.n);
		jstr_release(&s);
		return err;
	}
	if (!is_string_at(im, b))
		return fail(im, -EINVAL, "$bytes needs a base64 string");
	err = jstr_get(im, b, string_end(im, b), &s);
	if (err)
		return err;
	const char *text = jstr_cstr(im, &s);
	char *data = NULL;
	size_t len = 0;
	if (!text)
		err = -ENOMEM;
	else if ((err = b64_decode(text, &data, &len)))
		err = fail(im, err, "bad base64 in $bytes");
	jstr_release(&s);
	if (!err)
		err = write_all(im, ino, data, len);
	free(data);
	return err;
}

static int import_scalar(struct importer *im, uint64_t dir, const char *name,
			 size_t nlen, size_t v, uint64_t *ino)
{
	unsigned type;
	char text[64];
	char c = im->doc[v];
	if (c == 't' || c == 'f') {
		type = POG_BOOL;
		snprintf(text, sizeof(text), "%s", c == 't' ? "true" : "false");
	} else if (c == 'n') {
		type = POG_NULL;
		snprintf(text, sizeof(text), "null");
	} else {
		size_t n = number_len(im, v);
		const char *num = im->doc + v;
		bool integral = !memchr(num, '.', n) && !memchr(num, 'e', n) &&
				!memchr(num, 'E', n);
		uint64_t bits;
		type = integral && pog_scalar_parse(POG_INT, num, n, &bits) == 0
			? POG_INT : POG_FLOAT;
		if (type == POG_FLOAT && pog_scalar_parse(POG_FLOAT, num, n, &bits))
			return fail(im, -EINVAL, "number %.*s is out of range",
				    (int)n, num);
		size_t tl = pog_scalar_format(type, bits, text, sizeof(text));
		text[tl] = '\0';
	}
	struct pog_new spec = {.type = POG_STRING, .mode = 0644};
	int err = make(im, dir, name, nlen, &spec, ino);
	size_t tl = strlen(text);
	text[tl++] = '\n';
	if (!err) {
		ssize_t w = pog_write(im->s, *ino, 0, text, tl);
		err = w < 0 ? (int)w : 0;
	}
	if (!err)
		err = pog_set_type(im->s, *ino, type);
	return err;
}

/* Record id (the value of "$id" at idv, 0: none) as ino. */
static int remember_id(struct importer *im, size_t idv, uint64_t ino)
{
	if (!idv)
		return 0;
	double id = is_number_at(im, idv) ? number_at(im, idv) : 0;
	if (!is_number_at(im, idv) || id < 1)
		return fail(im, -EINVAL, "$id must be a positive number");
	uint64_t *slot = pog_map64_get(&im->ids, (uint64_t)id);
	if (!slot)
		return -ENOMEM;
	if (*slot)
		return fail(im, -EINVAL, "$id %.0f defined twice", id);
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
	if (!is_number_at(im, idv))
		return fail(im, -EINVAL, "$link needs a number");
	double id = number_at(im, idv);
	/* Defined already (always so in pog's own documents): link now, so
	 * that a list keeps its order. */
	uint64_t *t = pog_map64_find(&im->ids, (uint64_t)id);
	if (t) {
		struct pog_attr a;
		int err = pog_link(im->s, *t, dir, name, nlen, &a);
		return err ? fail(im, err, "link \"%.*s\": %s", shown(nlen, 60),
				  name, pog_strerror(err)) : 0;
	}
	struct pog_attr da;
	if (pog_getattr(im->s, dir, &da) == 0 && da.type == POG_LIST)
		return fail(im, -EINVAL, "$link %.0f in a list comes before "
			    "its $id", id);
	return defer_link(im, dir, name, nlen, (uint64_t)id);
}

/* {"$ref": N} and {"$ref": N, "$target": V}. */
static int import_ref(struct importer *im, uint64_t dir, const char *name,
		      size_t nlen, const size_t at[K_N], uint64_t *ino)
{
	if (!is_number_at(im, at[K_REF]))
		return fail(im, -EINVAL, "$ref needs a number");
	double id = number_at(im, at[K_REF]);
	struct pog_new spec = {.type = POG_REF, .mode = 0644,
			       .ref_target = POG_ROOT_INO}; /* pointed at the end */
	int err = make(im, dir, name, nlen, &spec, ino);
	if (!err && (pog_vec_push(&im->refs, *ino) ||
		     pog_vec_push(&im->refs, (uint64_t)id)))
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
		uint64_t *slot = pog_map64_get(&im->ids, (uint64_t)id);
		if (!slot)
			err = -ENOMEM;
		else if (*slot && *slot != tino)
			err = fail(im, -EINVAL, "$ref %.0f defined twice", id);
		else
			*slot = tino;
	}
	if (!err)
		err = pog_detach(im->s, POG_ROOT_INO, tmp, (size_t)tl);
	return err;
}

/* {"$symlink": S} with S a string or {"$bytes": ...}. */
static int import_symlink(struct importer *im, uint64_t dir, const char *name,
			  size_t nlen, size_t t, uint64_t *ino)
{
	char *text = NULL;
	size_t tl = 0;
	struct jstr s;
	int err = 0;
	if (is_string_at(im, t)) {
		err = jstr_get(im, t, string_end(im, t), &s);
		if (err)
			return err;
		const char *c = jstr_cstr(im, &s);
		text = c ? strdup(c) : NULL;
		jstr_release(&s);
	} else if (im->doc[t] == '{') {
		size_t in[K_N], after;
		err = scan_keys(im, t, in, &after);
		if (err)
			return err;
		if (is_string_at(im, in[K_BYTES])) {
			err = jstr_get(im, in[K_BYTES], string_end(im, in[K_BYTES]), &s);
			if (err)
				return err;
			const char *c = jstr_cstr(im, &s);
			if (c && !b64_decode(c, &text, &tl))
				text[tl] = '\0';
			jstr_release(&s);
		}
	}
	if (!text)
		return fail(im, -EINVAL, "$symlink needs a string");
	struct pog_new spec = {.type = POG_SYMLINK, .mode = 0644, .text = text};
	err = make(im, dir, name, nlen, &spec, ino);
	free(text);
	return err;
}

/* {"$special": "fifo", "rdev": R}. */
static int import_special(struct importer *im, uint64_t dir, const char *name,
			  size_t nlen, const size_t at[K_N], uint64_t *ino)
{
	struct jstr k = {.p = "", .n = 0};
	int err = 0;
	size_t kv = at[K_SPECIAL];
	if (is_string_at(im, kv))
		err = jstr_get(im, kv, string_end(im, kv), &k);
	if (err)
		return err;
	struct pog_new spec = {.type = POG_SPECIAL};
	spec.mode = jstr_is(&k, "fifo") ? S_IFIFO | 0644
		: jstr_is(&k, "char") ? S_IFCHR | 0644
		: jstr_is(&k, "block") ? S_IFBLK | 0644
		: jstr_is(&k, "socket") ? S_IFSOCK | 0644 : 0;
	if (!spec.mode)
		err = fail(im, -EINVAL, "unknown $special \"%.*s\"", shown(k.n, 20),
			   k.p);
	jstr_release(&k);
	if (err)
		return err;
	spec.rdev = is_number_at(im, at[K_RDEV])
		? (uint64_t)number_at(im, at[K_RDEV]) : 0;
	return make(im, dir, name, nlen, &spec, ino);
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
	if (c == '{') {
		size_t at[K_N];
		err = scan_keys(im, v, at, end);
		if (err)
			return err;
		if (at[K_LINK])
			return import_link(im, dir, name, nlen, at[K_LINK]);
		if (at[K_REF]) {
			err = import_ref(im, dir, name, nlen, at, &ino);
		} else if (at[K_ID] && at[K_VALUE]) {
			size_t e;
			err = import_value(im, dir, name, nlen, at[K_VALUE], &ino, &e);
			if (!err)
				err = remember_id(im, at[K_ID], ino);
		} else if (at[K_BYTES]) {
			spec.type = POG_STRING;
			err = make(im, dir, name, nlen, &spec, &ino);
			if (!err)
				err = import_bytes(im, ino, v, at[K_BYTES]);
		} else if (at[K_SYMLINK]) {
			err = import_symlink(im, dir, name, nlen, at[K_SYMLINK], &ino);
		} else if (at[K_SPECIAL]) {
			err = import_special(im, dir, name, nlen, at, &ino);
		} else {
			size_t after;
			spec.type = POG_MAP;
			spec.mode = 0755;
			err = make(im, dir, name, nlen, &spec, &ino);
			if (!err)
				err = remember_id(im, at[K_ID], ino);
			if (!err)
				err = import_children(im, ino, v, false, &after);
		}
	} else if (c == '[') {
		spec.type = POG_MAP;
		spec.mode = 0755;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = pog_set_type(im->s, ino, POG_LIST);
		if (!err)
			err = import_children(im, ino, v, true, end);
	} else if (c == '"') {
		*end = string_end(im, v) + 1;
		spec.type = POG_STRING;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = import_bytes(im, ino, v, 0);
	} else {
		*end = skip_value(im, v);
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

/* A document merged into the map dir: a plain object. */
static int import_into(struct importer *im, uint64_t dir, size_t v)
{
	size_t at[K_N], after;
	if (im->doc[v] != '{')
		return fail(im, -EINVAL, "a document imported into a map must be an object");
	int err = scan_keys(im, v, at, &after);
	if (err)
		return err;
	if (at[K_REF] || at[K_LINK] || at[K_VALUE])
		return fail(im, -EINVAL, "a document imported into a map must be a plain object");
	err = remember_id(im, at[K_ID], dir);
	if (!err)
		err = import_children(im, dir, v, false, &after);
	return err;
}

/*
 * While an import runs, what it makes inside a directory it made is listed
 * in the staged changes by that directory's A line alone, so the change
 * table does not grow with the document.
 */
static void importing(pog_store *s, int delta)
{
	pthread_rwlock_wrlock(&s->lock);
	s->importing += (unsigned)delta;
	pthread_rwlock_unlock(&s->lock);
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
	struct importer im = {.s = s, .error = error, .doc = doc, .len = len,
			      .uid = uid, .gid = gid};
	/* With nothing else staged, a failed import can be undone whole. */
	bool alone = pog_staged_count(s) == 0;
	importing(s, 1);
	size_t v = document_start(doc, len), end;
	if (!name)
		err = import_into(&im, dir, v);
	else
		err = import_value(&im, dir, name, nlen, v, NULL, &end);
	if (!err)
		err = import_finish(&im);
	importing(s, -1);
	free(im.buf);
	pog_map64_release(&im.ids);
	pog_vec_release(&im.refs);
	pog_vec_release(&im.links);
	for (size_t i = 0; i < im.nlinks; i++)
		free(im.link_names[i]);
	free(im.link_names);
	free(im.link_lens);
	if (err && !error->message[0])
		snprintf(error->message, sizeof(error->message), "%s",
			 pog_strerror(err));
	if (err && alone)
		pog_abort(s);
	return err;
}
