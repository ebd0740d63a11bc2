/* value.c - the text forms of typed scalars (int, float, bool, null). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trim surrounding white space into a NUL-terminated copy. */
static int trimmed(const char *text, size_t len, char *out, size_t size)
{
	while (len && is_space(*text))
		text++, len--;
	while (len && is_space(text[len - 1]))
		len--;
	if (len + 1 > size || memchr(text, '\0', len))
		return -EINVAL;
	memcpy(out, text, len);
	out[len] = '\0';
	return 0;
}

int pog_scalar_parse(unsigned type, const char *text, size_t len,
		     uint64_t *bits)
{
	char buf[POG_INLINE_MAX + 1];
	if (trimmed(text, len, buf, sizeof(buf)))
		return -EINVAL;
	char *end;
	switch (type) {
	case POG_INT: {
		if (!buf[0])
			return -EINVAL;
		errno = 0;
		long long v = strtoll(buf, &end, 10);
		if (errno || *end)
			return -EINVAL;
		*bits = (uint64_t)v;
		return 0;
	}
	case POG_FLOAT: {
		if (!buf[0])
			return -EINVAL;
		errno = 0;
		double d = strtod(buf, &end);
		/* Subnormals and underflow to 0 are fine; overflow is not. */
		if (*end || !isfinite(d))
			return -EINVAL;
		memcpy(bits, &d, sizeof(d));
		return 0;
	}
	case POG_BOOL:
		if (strcmp(buf, "true") == 0)
			*bits = 1;
		else if (strcmp(buf, "false") == 0)
			*bits = 0;
		else
			return -EINVAL;
		return 0;
	case POG_NULL:
		if (strcmp(buf, "null"))
			return -EINVAL;
		*bits = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Shortest "%.*g" that reads back to the same double, always with a '.'
 * or an exponent so that it cannot be mistaken for an int. */
static int format_float(double d, char *buf, size_t size)
{
	int n = 0;
	if (d == floor(d) && fabs(d) < 1e16) /* 100.0, not 1e+02 */
		return snprintf(buf, size, "%.1f", d);
	for (int prec = 1; prec <= 17; prec++) {
		n = snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		n += snprintf(buf + n, size - (size_t)n, ".0");
	return n;
}

size_t pog_scalar_format(unsigned type, uint64_t bits, char *buf, size_t size)
{
	int n;
	switch (type) {
	case POG_INT:
		n = snprintf(buf, size, "%lld", (long long)bits);
		break;
	case POG_FLOAT: {
		double d;
		memcpy(&d, &bits, sizeof(d));
		n = format_float(d, buf, size);
		break;
	}
	case POG_BOOL:
		n = snprintf(buf, size, "%s", bits ? "true" : "false");
		break;
	default:
		n = snprintf(buf, size, "null");
		break;
	}
	return (size_t)n;
}

bool pog_type_is_scalar(unsigned type)
{
	return type == POG_INT || type == POG_FLOAT || type == POG_BOOL ||
	       type == POG_NULL;
}

int pog_type_parse(const char *name, size_t len, unsigned *type)
{
	for (unsigned t = POG_MAP; t <= POG_SPECIAL; t++) {
		const char *n = pog_type_name(t);
		if (n && strlen(n) == len && memcmp(n, name, len) == 0) {
			*type = t;
			return 0;
		}
	}
	return -EINVAL;
}
