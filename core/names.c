/* names.c - key escaping, type names, error strings and size parsing. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "store_int.h"

static bool key_unsafe(const char *k, size_t len)
{
	if (len == 0 || (len == 1 && k[0] == '.') ||
	    (len == 2 && k[0] == '.' && k[1] == '.'))
		return true;
	return memchr(k, '/', len) || memchr(k, '\0', len);
}

static bool byte_escaped(char c)
{
	return c == '/' || c == '\0' || c == '%';
}

/* C(k) = "%" + k with '/', NUL and '%' written as %XX. */
static ssize_t encode(const char *k, size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	if (o + 1 > size)
		return -ENAMETOOLONG;
	out[o++] = '%';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];
		if (byte_escaped((char)c)) {
			if (o + 3 > size)
				return -ENAMETOOLONG;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 > size)
				return -ENAMETOOLONG;
			out[o++] = (char)c;
		}
	}
	return (ssize_t)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode a name of the form C(k) into out (size >= len). Returns the key
 * length, or -1 when the name is not exactly the canonical C(k).
 */
static ssize_t decode(const char *n, size_t len, char *out)
{
	size_t o = 0;
	if (len == 0 || n[0] != '%')
		return -1;
	for (size_t i = 1; i < len; i++) {
		if (n[i] != '%') {
			out[o++] = n[i];
			continue;
		}
		if (i + 2 >= len)
			return -1;
		int hi = hexval(n[i + 1]), lo = hexval(n[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		char c = (char)(hi * 16 + lo);
		if (!byte_escaped(c))
			return -1; /* not canonical */
		out[o++] = c;
		i += 2;
	}
	return (ssize_t)o;
}

static bool key_escaped(const char *k, size_t len);

/* Is name the canonical escape of some key that would be escaped? */
static bool looks_escaped(const char *n, size_t len)
{
	if (len == 0 || n[0] != '%')
		return false;
	char *tmp = malloc(len);
	if (!tmp)
		return true;
	ssize_t kl = decode(n, len, tmp);
	bool r = kl >= 0 && key_escaped(tmp, (size_t)kl);
	free(tmp);
	return r;
}

static bool key_escaped(const char *k, size_t len)
{
	return key_unsafe(k, len) || looks_escaped(k, len);
}

ssize_t pog_name_escape(const char *key, size_t len, char *out,
			size_t out_size)
{
	size_t limit = out_size > 256 ? 256 : out_size;
	if (!key_escaped(key, len)) {
		if (len + 1 > limit)
			return -ENAMETOOLONG;
		memcpy(out, key, len);
		out[len] = '\0';
		return (ssize_t)len;
	}
	ssize_t n = encode(key, len, out, limit - 1);
	if (n < 0)
		return n;
	out[n] = '\0';
	return n;
}

ssize_t pog_name_unescape(const char *name, size_t len, char *out,
			  size_t out_size)
{
	if (len + 1 > out_size)
		return -ENAMETOOLONG;
	if (looks_escaped(name, len)) {
		ssize_t kl = decode(name, len, out);
		return kl;
	}
	memcpy(out, name, len);
	out[len] = '\0';
	return (ssize_t)len;
}

const char *pog_type_name(unsigned type)
{
	static const char *const names[] = {
		[POG_MAP] = "map",     [POG_LIST] = "list",
		[POG_STRING] = "string", [POG_INT] = "int",
		[POG_FLOAT] = "float", [POG_BOOL] = "bool",
		[POG_NULL] = "null",   [POG_REF] = "ref",
		[POG_SYMLINK] = "symlink", [POG_SPECIAL] = "special",
	};
	if (type >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[type];
}

const char *pog_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case POG_ENOTPOOL:
		return "not a pogfs pool";
	case POG_ENEWER:
		return "pool has a newer format than this pogfs reads";
	case POG_ECORRUPT:
		return "pool is damaged (checksum or structure mismatch)";
	case POG_ELOCKED:
		return "pool is in use by another process";
	case POG_EFATAL:
		return "store stopped after an earlier fatal error";
	case POG_EDAMAGED:
		return "damaged pool metadata";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

int pog_parse_size(const char *text, uint64_t *out)
{
	char *end;
	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (~0ULL >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}
