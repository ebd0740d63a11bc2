/* util.c - error reporting, formatting and I/O helpers of the pog command. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

int tool_fail(struct tool_error *e, int status, const char *what,
	      const char *fmt, ...)
{
	va_list ap;

	snprintf(e->what, sizeof(e->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(e->why, sizeof(e->why), fmt, ap);
	va_end(ap);
	return status;
}

const char *tool_format_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	double value = (double)n;
	size_t unit = 0;

	if (n < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)n);
		return buf;
	}
	value /= 1024.0;
	while (value >= 1024.0 && unit + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1024.0;
		unit++;
	}
	snprintf(buf, size, "%.1f %s", value, units[unit]);
	return buf;
}

const char *tool_format_time(struct pog_time t, char *buf, size_t size)
{
	time_t sec = (time_t)t.sec;
	struct tm tm;

	if (!localtime_r(&sec, &tm) ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(buf, size, "%lld s after the epoch",
			 (long long)t.sec);
	return buf;
}

int tool_read_all(int fd, char **out, size_t *len)
{
	size_t capacity = 4096, used = 0;
	char *buf = malloc(capacity);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (capacity - used < 2) {
			char *bigger = realloc(buf, capacity * 2);

			if (!bigger)
				goto out_free;
			buf = bigger;
			capacity *= 2;
		}
		n = read(fd, buf + used, capacity - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	return 0;

out_free:
	free(buf);
	return -ENOMEM;
}
