/* text.h - a small growable text buffer: appends never fail loudly; once
 * memory ran out, failed is set and later appends do nothing. */
#ifndef POGFS_TEXT_H
#define POGFS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text {
	/* data is NUL-terminated once anything was added */
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* out of memory at some point */
};

void text_addn(struct text *t, const char *s, size_t n);
void text_addf(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Free the data; t is empty again. */
void text_release(struct text *t);

#endif /* POGFS_TEXT_H */
