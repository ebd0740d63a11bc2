/* testutil.c - helpers shared by the core unit tests: temp pools, checks. */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Directories made by this process, removed at exit if a test died. */
#define TU_MAX_DIRS 64
static char *tu_dirs[TU_MAX_DIRS];
static pid_t tu_owner_pid;

static void tu_cleanup_at_exit(void)
{
	if (getpid() != tu_owner_pid)
		return; /* a forked child must not remove the parent's dirs */
	for (int i = 0; i < TU_MAX_DIRS; i++) {
		if (tu_dirs[i]) {
			tu_rmtree(tu_dirs[i]);
			free(tu_dirs[i]);
			tu_dirs[i] = NULL;
		}
	}
}

static void tu_register_dir(const char *dir)
{
	static int registered;

	if (!registered) {
		tu_owner_pid = getpid();
		atexit(tu_cleanup_at_exit);
		registered = 1;
	}
	for (int i = 0; i < TU_MAX_DIRS; i++) {
		if (!tu_dirs[i]) {
			tu_dirs[i] = strdup(dir);
			return;
		}
	}
}

static void tu_unregister_dir(const char *dir)
{
	for (int i = 0; i < TU_MAX_DIRS; i++) {
		if (tu_dirs[i] && strcmp(tu_dirs[i], dir) == 0) {
			free(tu_dirs[i]);
			tu_dirs[i] = NULL;
		}
	}
}

char *tu_mkdtemp(const char *base)
{
	char buf[4096];

	if (!base)
		base = getenv("POG_TEST_DIR");
	if (!base || !*base)
		base = TU_DISK_BASE;
	snprintf(buf, sizeof(buf), "%s/pogtest.XXXXXX", base);
	if (!mkdtemp(buf))
		fail_msg("mkdtemp %s: %s", buf, strerror(errno));
	tu_register_dir(buf);
	return strdup(buf);
}

static int tu_rm_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void tu_rmtree(const char *path)
{
	nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

void tu_setup(struct tu_ctx *ctx, const char *base, uint64_t size)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->dir = tu_mkdtemp(base);
	ctx->pool = tu_join(ctx->dir, "test.pool");
	if (size)
		assert_ok(pog_create(ctx->pool, size, &ctx->s));
}

void tu_teardown(struct tu_ctx *ctx)
{
	if (ctx->s)
		pog_close(ctx->s, POG_CLOSE_NOGC);
	ctx->s = NULL;
	if (ctx->dir) {
		tu_rmtree(ctx->dir);
		tu_unregister_dir(ctx->dir);
	}
	free(ctx->dir);
	free(ctx->pool);
	ctx->dir = ctx->pool = NULL;
}

void tu_reopen(struct tu_ctx *ctx)
{
	if (ctx->s) {
		int rc = pog_close(ctx->s, 0);
		ctx->s = NULL;
		if (rc < 0)
			fail_msg("pog_close: %d (%s)", rc, tu_err(rc));
	}
	assert_ok(pog_open(ctx->pool, 0, &ctx->s));
}

const char *tu_err(long long rc)
{
	if (rc >= 0)
		return "ok";
	if (rc < INT32_MIN)
		return "?";
	return pog_strerror((int)rc);
}

struct tu_fsck_log {
	unsigned shown;
};

static void tu_fsck_print(void *ctx, int severity, const char *msgid,
			  uint64_t ino, const char *text)
{
	struct tu_fsck_log *log = ctx;

	if (severity < POG_FSCK_WARN || log->shown >= 50)
		return;
	log->shown++;
	fprintf(stderr, "  fsck %s: %s ino %llu: %s\n",
		severity == POG_FSCK_ERROR ? "error" : "warning",
		msgid ? msgid : "?", (unsigned long long)ino,
		text ? text : "");
}

void tu_assert_fsck_clean(pog_store *s)
{
	struct pog_fsck_result res;
	struct tu_fsck_log log = { 0 };
	int rc;

	memset(&res, 0, sizeof(res));
	rc = pog_fsck(s, 0, tu_fsck_print, &log, &res);
	if (rc != 0 || res.errors != 0)
		fail_msg("pog_fsck = %d (%s), errors %llu, warnings %llu",
			 rc, tu_err(rc), (unsigned long long)res.errors,
			 (unsigned long long)res.warnings);
}

uint64_t tu_commit_check(pog_store *s, const char *message)
{
	uint64_t id = 0;

	assert_ok(pog_commit(s, message, &id));
	tu_assert_fsck_clean(s);
	return id;
}

uint64_t tu_mk(pog_store *s, uint64_t dir, const char *name, uint32_t type)
{
	struct pog_new spec;
	struct pog_attr attr;
	int rc;

	memset(&spec, 0, sizeof(spec));
	spec.type = type;
	spec.mode = (type == POG_MAP || type == POG_LIST) ? 0755 : 0644;
	spec.uid = 0;
	spec.gid = 0;
	memset(&attr, 0, sizeof(attr));
	rc = pog_mknode(s, dir, name, strlen(name), &spec, &attr);
	if (rc != 0)
		fail_msg("pog_mknode(%llu, \"%s\") = %d (%s)",
			 (unsigned long long)dir, name, rc, tu_err(rc));
	assert_int_equal(attr.type, type);
	assert_true(attr.ino != 0);
	return attr.ino;
}

uint64_t tu_mkfile(pog_store *s, uint64_t dir, const char *name,
		   const void *data, size_t len)
{
	uint64_t ino = tu_mk(s, dir, name, POG_STRING);

	if (len)
		tu_write(s, ino, 0, data, len);
	return ino;
}

uint64_t tu_lookup(pog_store *s, uint64_t dir, const char *name)
{
	struct pog_attr attr;
	int rc = pog_lookup(s, dir, name, strlen(name), &attr);

	if (rc != 0)
		fail_msg("pog_lookup(%llu, \"%s\") = %d (%s)",
			 (unsigned long long)dir, name, rc, tu_err(rc));
	return attr.ino;
}

void tu_write(pog_store *s, uint64_t ino, uint64_t off, const void *buf,
	      size_t len)
{
	ssize_t n = pog_write(s, ino, off, buf, len);

	if (n != (ssize_t)len)
		fail_msg("pog_write(ino %llu, off %llu, len %zu) = %zd (%s)",
			 (unsigned long long)ino, (unsigned long long)off, len,
			 n, tu_err(n));
}

void *tu_read_all(pog_store *s, uint64_t ino, size_t *len)
{
	struct pog_attr attr;
	size_t done = 0;
	char *buf;

	assert_ok(pog_getattr(s, ino, &attr));
	buf = malloc(attr.size + 1);
	assert_non_null(buf);
	while (done < attr.size) {
		ssize_t n = pog_read(s, ino, done, buf + done,
				     attr.size - done);
		if (n <= 0)
			fail_msg("pog_read(ino %llu, off %zu) = %zd (%s)",
				 (unsigned long long)ino, done, n, tu_err(n));
		done += (size_t)n;
	}
	*len = done;
	return buf;
}

void tu_assert_content(pog_store *s, uint64_t ino, const void *data,
		       size_t len)
{
	size_t got_len;
	char *got = tu_read_all(s, ino, &got_len);

	if (got_len != len)
		fail_msg("ino %llu: size %zu, expected %zu",
			 (unsigned long long)ino, got_len, len);
	if (len && memcmp(got, data, len) != 0) {
		size_t i = 0;
		while (got[i] == ((const char *)data)[i])
			i++;
		fail_msg("ino %llu: content differs at byte %zu",
			 (unsigned long long)ino, i);
	}
	free(got);
}

static int tu_count_fn(void *ctx, const char *name, size_t len,
		       const struct pog_attr *attr, uint64_t next_cookie)
{
	(void)name;
	(void)len;
	(void)attr;
	(void)next_cookie;
	(*(uint64_t *)ctx)++;
	return 0;
}

uint64_t tu_count_entries(pog_store *s, uint64_t dir)
{
	uint64_t n = 0;

	assert_ok(pog_readdir(s, dir, 0, tu_count_fn, &n));
	return n;
}

uint64_t tu_rand64(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

void tu_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned char *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v = tu_rand64(&st);
		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = tu_rand64(&st);
		memcpy(p + i, &v, len - i);
	}
}

double tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tu_state_setup(void **state, const char *base, uint64_t size)
{
	struct tu_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -1;
	tu_setup(ctx, base, size);
	*state = ctx;
	return 0;
}

int tu_state_teardown(void **state)
{
	struct tu_ctx *ctx = *state;

	tu_teardown(ctx);
	free(ctx);
	return 0;
}

int tu_buf_write(void *ctx, const void *p, size_t len)
{
	struct tu_buf *b = ctx;

	if (b->len + len + 1 > b->cap) {
		size_t cap = (b->len + len + 1) * 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

struct tu_buf tu_export(pog_store *s, uint64_t ino)
{
	struct tu_buf b = { 0 };
	int rc = pog_export(s, ino, tu_buf_write, &b);

	if (rc)
		fail_msg("pog_export(%llu) = %d (%s)", (unsigned long long)ino,
			 rc, tu_err(rc));
	assert_true(b.len > 0);
	return b;
}

void tu_import(pog_store *s, uint64_t dir, const char *name, const char *doc,
	       size_t len)
{
	struct pog_json_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = pog_import(s, dir, name, name ? strlen(name) : 0, doc, len, 0, 0,
			&err);
	if (rc)
		fail_msg("pog_import = %d (%s) at %d:%d: %s", rc, tu_err(rc),
			 err.line, err.column, err.message);
}

void tu_assert_same_doc(const struct tu_buf *a, const struct tu_buf *b,
			const char *what)
{
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
		size_t i = 0;

		while (i < a->len && i < b->len && a->data[i] == b->data[i])
			i++;
		fail_msg("%s: exports differ (%zu vs %zu bytes) at byte %zu:\n  ...%.120s\n  ...%.120s",
			 what, a->len, b->len, i,
			 a->data + (i > 60 ? i - 60 : 0),
			 b->data + (i > 60 ? i - 60 : 0));
	}
}
