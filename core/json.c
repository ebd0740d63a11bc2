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
 * cJSON keeps numbers as doubles only, so the lexical form of each number
 * (integer or not, and its exact text) is taken from the document in a
 * scan of its own: numbers appear in the same order as cJSON's items.
 */
struct numbers {
	char **text;
	size_t *offset;  /* where each starts in the document */
	size_t n, cap, next;
};

/* A "\u0000" escape inside a string (cJSON would cut the string there). */
static const char *nul_escape(const char *doc, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (doc[i] != '"')
			continue;
		for (i++; i < len && doc[i] != '"'; i++) {
			if (doc[i] != '\\')
				continue;
			if (i + 5 < len && doc[i + 1] == 'u' &&
			    strncmp(doc + i + 2, "0000", 4) == 0)
				return doc + i;
			i++;
		}
	}
	return NULL;
}

static int numbers_scan(const char *doc, size_t len, struct numbers *nums)
{
	for (size_t i = 0; i < len; i++) {
		char c = doc[i];
		if (c == '"') {
			for (i++; i < len && doc[i] != '"'; i++)
				if (doc[i] == '\\')
					i++;
			continue;
		}
		if (c != '-' && (c < '0' || c > '9'))
			continue;
		size_t j = i;
		while (j < len && strchr("+-0123456789.eE", doc[j]))
			j++;
		if (nums->n == nums->cap) {
			size_t cap = nums->cap ? nums->cap * 2 : 256;
			char **t = realloc(nums->text, cap * sizeof(*t));
			if (!t)
				return -ENOMEM;
			nums->text = t;
			size_t *o = realloc(nums->offset, cap * sizeof(*o));
			if (!o)
				return -ENOMEM;
			nums->offset = o;
			nums->cap = cap;
		}
		nums->text[nums->n] = strndup(doc + i, j - i);
		if (!nums->text[nums->n])
			return -ENOMEM;
		nums->offset[nums->n] = i;
		nums->n++;
		i = j - 1;
	}
	return 0;
}

static void numbers_release(struct numbers *nums)
{
	for (size_t i = 0; i < nums->n; i++)
		free(nums->text[i]);
	free(nums->text);
	free(nums->offset);
}

struct importer {
	pog_store *s;
	struct pog_json_error *error;
	struct numbers nums;
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

static bool is_directive(const cJSON *obj, const char *key)
{
	return cJSON_IsObject(obj) && cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Decode a JSON key into the map key it stands for (malloc'ed). */
static int decode_key(struct importer *im, const char *k, char **key,
		      size_t *len)
{
	if (k[0] == '$' && k[1] == '$') {
		*key = strdup(k + 1);
		*len = strlen(k + 1);
		return *key ? 0 : -ENOMEM;
	}
	if (strncmp(k, "$b64:", 5) == 0) {
		int err = b64_decode(k + 5, key, len);
		return err ? fail(im, -EINVAL, "bad base64 in key \"%.40s\"", k) : 0;
	}
	/* Any other key, "$..." ones of plain documents too, is itself. */
	*key = strdup(k);
	*len = strlen(k);
	return *key ? 0 : -ENOMEM;
}

static int import_value(struct importer *im, uint64_t dir, const char *name,
			size_t nlen, const cJSON *v, uint64_t *ino_out);

static int import_children(struct importer *im, uint64_t ino, const cJSON *v,
			   bool list)
{
	const cJSON *c;
	size_t index = 0;
	cJSON_ArrayForEach(c, v) {
		char *key = NULL;
		size_t klen;
		char idx[24];
		int err;
		if (list) {
			klen = (size_t)snprintf(idx, sizeof(idx), "%zu", index++);
			err = import_value(im, ino, idx, klen, c, NULL);
		} else if (strcmp(c->string, "$id") == 0) {
			continue;
		} else {
			err = decode_key(im, c->string, &key, &klen);
			if (!err)
				err = import_value(im, ino, key, klen, c, NULL);
			free(key);
		}
		if (err)
			return err;
	}
	return 0;
}

/* JSON's number grammar, which cJSON does not hold documents to:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_ok(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* Give every number item its text from the scan (cJSON frees it). */
static int numbers_attach(struct numbers *nums, cJSON *v)
{
	if (cJSON_IsNumber(v)) {
		if (nums->next >= nums->n)
			return -EINVAL;
		v->valuestring = nums->text[nums->next];
		nums->text[nums->next++] = NULL;
		return 0;
	}
	cJSON *c;
	cJSON_ArrayForEach(c, v) {
		int err = numbers_attach(nums, c);
		if (err)
			return err;
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
		return fail(im, err, "cannot create \"%.*s\": %s", (int)(nlen > 60 ? 60 : nlen),
			    name, pog_strerror(err));
	*ino = a.ino;
	return 0;
}

static int import_bytes(struct importer *im, uint64_t ino, const cJSON *v)
{
	char *data = NULL;
	size_t len = 0;
	int err = 0;
	if (cJSON_IsString(v)) {
		data = v->valuestring;
		len = strlen(data);
	} else {
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "$bytes");
		if (!cJSON_IsString(b))
			return fail(im, -EINVAL, "$bytes needs a base64 string");
		err = b64_decode(b->valuestring, &data, &len);
		if (err)
			return fail(im, err, "bad base64 in $bytes");
	}
	for (size_t off = 0; !err && off < len;) {
		size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
		ssize_t w = pog_write(im->s, ino, off, data + off, n);
		if (w < 0)
			err = fail(im, (int)w, "write: %s", pog_strerror((int)w));
		off += n;
	}
	if (!cJSON_IsString(v))
		free(data);
	return err;
}

static int import_scalar(struct importer *im, uint64_t dir, const char *name,
			 size_t nlen, const cJSON *v, uint64_t *ino)
{
	unsigned type;
	char text[64];
	if (cJSON_IsBool(v)) {
		type = POG_BOOL;
		snprintf(text, sizeof(text), "%s", cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		type = POG_NULL;
		snprintf(text, sizeof(text), "null");
	} else {
		const char *num = v->valuestring;
		if (!num)
			return fail(im, -EINVAL, "number out of step");
		bool integral = !strpbrk(num, ".eE");
		uint64_t bits;
		type = integral && pog_scalar_parse(POG_INT, num, strlen(num), &bits) == 0
			? POG_INT : POG_FLOAT;
		if (type == POG_FLOAT &&
		    pog_scalar_parse(POG_FLOAT, num, strlen(num), &bits))
			return fail(im, -EINVAL, "number %s is out of range", num);
		size_t n = pog_scalar_format(type, bits, text, sizeof(text));
		text[n] = '\0';
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

static int remember_id(struct importer *im, const cJSON *v, uint64_t ino)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "$id");
	if (!id)
		return 0;
	if (!cJSON_IsNumber(id) || id->valuedouble < 1)
		return fail(im, -EINVAL, "$id must be a positive number");
	uint64_t *slot = pog_map64_get(&im->ids, (uint64_t)id->valuedouble);
	if (!slot)
		return -ENOMEM;
	if (*slot)
		return fail(im, -EINVAL, "$id %.0f defined twice", id->valuedouble);
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
	lens[im->nlinks] = nlen;
	im->nlinks++;
	if (pog_vec_push(&im->links, dir) || pog_vec_push(&im->links, id))
		return -ENOMEM;
	return 0;
}

static int import_value(struct importer *im, uint64_t dir, const char *name,
			size_t nlen, const cJSON *v, uint64_t *ino_out)
{
	uint64_t ino = 0;
	int err = 0;
	struct pog_new spec = {.mode = 0644};
	if (is_directive(v, "$link")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "$link");
		if (!cJSON_IsNumber(id))
			return fail(im, -EINVAL, "$link needs a number");
		/* Defined already (always so in pog's own documents): link
		 * now, so that a list keeps its order. */
		uint64_t *t = pog_map64_find(&im->ids, (uint64_t)id->valuedouble);
		if (t) {
			struct pog_attr a;
			err = pog_link(im->s, *t, dir, name, nlen, &a);
			return err ? fail(im, err, "link \"%.60s\": %s", name,
					  pog_strerror(err)) : 0;
		}
		struct pog_attr da;
		if (pog_getattr(im->s, dir, &da) == 0 && da.type == POG_LIST)
			return fail(im, -EINVAL, "$link %.0f in a list comes before "
				    "its $id", id->valuedouble);
		return defer_link(im, dir, name, nlen, (uint64_t)id->valuedouble);
	}
	if (is_directive(v, "$ref")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "$ref");
		if (!cJSON_IsNumber(id))
			return fail(im, -EINVAL, "$ref needs a number");
		spec.type = POG_REF;
		spec.ref_target = POG_ROOT_INO; /* pointed right at the end */
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err && (pog_vec_push(&im->refs, ino) ||
			     pog_vec_push(&im->refs, (uint64_t)id->valuedouble)))
			err = -ENOMEM;
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "$target");
		if (!err && t) {
			/* The target has no owning place: make it under a
			 * temporary name, then take the name away; the ref
			 * keeps it alive. */
			uint64_t tino;
			char tmp[64];
			int tl = snprintf(tmp, sizeof(tmp), "\x01pog-import-%" PRIu64,
					  ino);
			err = import_value(im, POG_ROOT_INO, tmp, (size_t)tl, t, &tino);
			if (!err) {
				uint64_t *slot = pog_map64_get(&im->ids,
						(uint64_t)id->valuedouble);
				if (!slot)
					err = -ENOMEM;
				else if (*slot && *slot != tino)
					err = fail(im, -EINVAL, "$ref %.0f defined twice",
						   id->valuedouble);
				else
					*slot = tino;
			}
			if (!err)
				err = pog_detach(im->s, POG_ROOT_INO, tmp, (size_t)tl);
		}
		if (ino_out)
			*ino_out = ino;
		return err;
	}
	if (is_directive(v, "$id") && cJSON_GetObjectItemCaseSensitive(v, "$value")) {
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(v, "$value");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "$id");
		err = import_value(im, dir, name, nlen, val, &ino);
		if (!err) {
			if (!cJSON_IsNumber(id) || id->valuedouble < 1)
				return fail(im, -EINVAL, "$id must be a positive number");
			uint64_t *slot = pog_map64_get(&im->ids, (uint64_t)id->valuedouble);
			if (!slot)
				return -ENOMEM;
			if (*slot)
				return fail(im, -EINVAL, "$id %.0f defined twice",
					    id->valuedouble);
			*slot = ino;
		}
		if (ino_out)
			*ino_out = ino;
		return err;
	}
	if (is_directive(v, "$bytes") || cJSON_IsString(v)) {
		spec.type = POG_STRING;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = import_bytes(im, ino, v);
	} else if (is_directive(v, "$symlink")) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "$symlink");
		char *text = NULL;
		size_t tl = 0;
		if (cJSON_IsString(t)) {
			text = strdup(t->valuestring);
		} else if (is_directive(t, "$bytes")) {
			const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "$bytes");
			if (cJSON_IsString(b) && !b64_decode(b->valuestring, &text, &tl))
				text[tl] = '\0';
		}
		if (!text)
			return fail(im, -EINVAL, "$symlink needs a string");
		spec.type = POG_SYMLINK;
		spec.text = text;
		err = make(im, dir, name, nlen, &spec, &ino);
		free(text);
	} else if (is_directive(v, "$special")) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(v, "$special");
		const cJSON *rdev = cJSON_GetObjectItemCaseSensitive(v, "rdev");
		const char *ks = cJSON_IsString(k) ? k->valuestring : "";
		spec.type = POG_SPECIAL;
		spec.mode = strcmp(ks, "fifo") == 0 ? S_IFIFO | 0644
			: strcmp(ks, "char") == 0 ? S_IFCHR | 0644
			: strcmp(ks, "block") == 0 ? S_IFBLK | 0644
			: strcmp(ks, "socket") == 0 ? S_IFSOCK | 0644 : 0;
		if (!spec.mode)
			return fail(im, -EINVAL, "unknown $special \"%.20s\"", ks);
		spec.rdev = cJSON_IsNumber(rdev) ? (uint64_t)rdev->valuedouble : 0;
		err = make(im, dir, name, nlen, &spec, &ino);
	} else if (cJSON_IsObject(v)) {
		spec.type = POG_MAP;
		spec.mode = 0755;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = remember_id(im, v, ino);
		if (!err)
			err = import_children(im, ino, v, false);
	} else if (cJSON_IsArray(v)) {
		spec.type = POG_MAP;
		spec.mode = 0755;
		err = make(im, dir, name, nlen, &spec, &ino);
		if (!err)
			err = pog_set_type(im->s, ino, POG_LIST);
		if (!err)
			err = import_children(im, ino, v, true);
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
			return fail(im, err, "link \"%.60s\": %s", im->link_names[i],
				    pog_strerror(err));
	}
	return 0;
}

static void position_of(const char *doc, const char *at, struct pog_json_error *e)
{
	e->line = 1;
	e->column = 1;
	for (const char *p = doc; p < at; p++) {
		if (*p == '\n') {
			e->line++;
			e->column = 1;
		} else {
			e->column++;
		}
	}
}

int pog_import(pog_store *s, uint64_t dir, const char *name, size_t nlen,
	       const char *doc, size_t len, uint32_t uid, uint32_t gid,
	       struct pog_json_error *error)
{
	struct pog_json_error dummy;
	if (!error)
		error = &dummy;
	memset(error, 0, sizeof(*error));
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(doc, len, &end, false);
	/* One value and nothing after it but white space. */
	while (root && end && end < doc + len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (root && end && end < doc + len) {
		cJSON_Delete(root);
		root = NULL;
	} else if (!root) {
		end = cJSON_GetErrorPtr();
	}
	const char *nul = root ? nul_escape(doc, len) : NULL;
	if (!root || nul) {
		const char *at = nul ? nul : end;
		if (!at || at < doc || at > doc + len)
			at = doc + len;
		position_of(doc, at, error);
		snprintf(error->message, sizeof(error->message),
			 nul ? "\\u0000 in a string at line %d, column %d (write "
			       "such bytes as {\"$bytes\": ...})"
			     : "invalid JSON at line %d, column %d",
			 error->line, error->column);
		cJSON_Delete(root);
		return -EINVAL;
	}
	struct importer im = {.s = s, .error = error, .uid = uid, .gid = gid};
	/* With nothing else staged, a failed import can be undone whole. */
	bool alone = pog_staged_count(s) == 0;
	int err = numbers_scan(doc, len, &im.nums);
	for (size_t i = 0; !err && i < im.nums.n; i++) {
		if (number_ok(im.nums.text[i]))
			continue;
		position_of(doc, doc + im.nums.offset[i], error);
		snprintf(error->message, sizeof(error->message),
			 "invalid number \"%.20s\" at line %d, column %d",
			 im.nums.text[i], error->line, error->column);
		err = -EINVAL;
	}
	if (!err && numbers_attach(&im.nums, root))
		err = fail(&im, -EINVAL, "numbers out of step with the parser");
	if (!err && !name && !cJSON_IsObject(root))
		err = fail(&im, -EINVAL, "a document imported into a map must be an object");
	if (!err && !name && (is_directive(root, "$ref") || is_directive(root, "$link") ||
			      is_directive(root, "$value")))
		err = fail(&im, -EINVAL, "a document imported into a map must be a plain object");
	if (!err && !name) {
		err = remember_id(&im, root, dir);
		if (!err)
			err = import_children(&im, dir, root, false);
	} else if (!err) {
		err = import_value(&im, dir, name, nlen, root, NULL);
	}
	if (!err)
		err = import_finish(&im);
	cJSON_Delete(root);
	numbers_release(&im.nums);
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
