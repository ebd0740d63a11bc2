/* test_crash.c - kill -9 a writer at random moments; the last commit survives exactly. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The child owns the pool and loops: a few random changes to files in
 * NDIRS directories, then a commit. It keeps its own model of the tree
 * and reports to the parent through a pipe:
 *   'R' ready: the commit id it started from and the digest of the tree;
 *   'P' pending: the digest the tree will have after the next commit,
 *       sent just BEFORE pog_commit is called;
 *   'C' committed: the id pog_commit returned and the digest, sent AFTER.
 * The parent kills it with SIGKILL at a random moment, reopens the pool,
 * runs fsck and checks that the tree is exactly the last reported commit,
 * or the pending one if pog_commit had already succeeded when the child
 * died (then the commit id is one more).
 */

#define NDIRS 4
#define NFILES 12
#define KILLS 150
#define POOL_SIZE ((uint64_t)512 << 20)

struct record {
	char kind;
	char pad[7];
	uint64_t id;
	uint64_t digest;
	char msg[104];
};

struct model {
	char *data[NDIRS][NFILES];
	size_t len[NDIRS][NFILES];
	int present[NDIRS][NFILES];
};

static void model_free(struct model *m)
{
	for (int d = 0; d < NDIRS; d++) {
		for (int f = 0; f < NFILES; f++)
			free(m->data[d][f]);
	}
	memset(m, 0, sizeof(*m));
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t model_digest(const struct model *m)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int d = 0; d < NDIRS; d++) {
		for (int f = 0; f < NFILES; f++) {
			uint64_t len = m->len[d][f];
			int tag[2] = { d, f };

			if (!m->present[d][f])
				continue;
			h = fnv(h, tag, sizeof(tag));
			h = fnv(h, &len, sizeof(len));
			h = fnv(h, m->data[d][f], m->len[d][f]);
		}
	}
	return h;
}

static int count_fn(void *ctx, const char *name, size_t len,
		    const struct pog_attr *attr, uint64_t next_cookie)
{
	(void)name;
	(void)len;
	(void)attr;
	(void)next_cookie;
	(*(uint64_t *)ctx)++;
	return 0;
}

/*
 * Read the tree into m. Returns 0, or -1 with a reason in why: a missing
 * dir, an extra entry, a failed call.
 */
static int load_model(pog_store *s, struct model *m, char *why, size_t wsize)
{
	uint64_t n = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = pog_readdir(s, POG_ROOT_INO, 0, count_fn, &n);
	if (rc || n != NDIRS) {
		snprintf(why, wsize, "root: readdir %d, %llu entries", rc,
			 (unsigned long long)n);
		return -1;
	}
	for (int d = 0; d < NDIRS; d++) {
		char nm[16];
		struct pog_attr dattr;
		uint64_t present = 0;

		n = 0;
		snprintf(nm, sizeof(nm), "d%d", d);
		rc = pog_lookup(s, POG_ROOT_INO, nm, strlen(nm), &dattr);
		if (rc) {
			snprintf(why, wsize, "lookup %s: %s", nm, tu_err(rc));
			return -1;
		}
		for (int f = 0; f < NFILES; f++) {
			struct pog_attr attr;
			size_t done = 0;

			snprintf(nm, sizeof(nm), "f%d", f);
			rc = pog_lookup(s, dattr.ino, nm, strlen(nm), &attr);
			if (rc == -ENOENT)
				continue;
			if (rc) {
				snprintf(why, wsize, "lookup d%d/%s: %s", d, nm,
					 tu_err(rc));
				return -1;
			}
			present++;
			m->present[d][f] = 1;
			m->len[d][f] = attr.size;
			m->data[d][f] = malloc(attr.size + 1);
			while (done < attr.size) {
				ssize_t r = pog_read(s, attr.ino, done,
						     m->data[d][f] + done,
						     attr.size - done);
				if (r <= 0) {
					snprintf(why, wsize,
						 "read d%d/%s at %zu: %s", d,
						 nm, done, tu_err(r));
					return -1;
				}
				done += (size_t)r;
			}
		}
		rc = pog_readdir(s, dattr.ino, 0, count_fn, &n);
		if (rc || n != present) {
			snprintf(why, wsize,
				 "d%d: readdir %d, %llu entries, %llu expected",
				 d, rc, (unsigned long long)n,
				 (unsigned long long)present);
			return -1;
		}
	}
	return 0;
}

/* ---- the child ---------------------------------------------------------- */

static int child_fd;

static void send_record(char kind, uint64_t id, uint64_t digest,
			const char *msg)
{
	struct record r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.id = id;
	r.digest = digest;
	if (msg)
		snprintf(r.msg, sizeof(r.msg), "%s", msg);
	if (write(child_fd, &r, sizeof(r)) != sizeof(r))
		_exit(4);
}

static void __attribute__((noreturn)) child_fail(const char *what, long rc)
{
	char msg[104];

	snprintf(msg, sizeof(msg), "%s: %ld (%s)", what, rc, tu_err(rc));
	send_record('E', 0, 0, msg);
	_exit(3);
}

static uint64_t dir_ino[NDIRS];

static void child_op(pog_store *s, struct model *m, uint64_t *rnd)
{
	int d = (int)(tu_rand64(rnd) % NDIRS);
	int f = (int)(tu_rand64(rnd) % NFILES);
	unsigned op = (unsigned)(tu_rand64(rnd) % 100);
	char nm[16];
	struct pog_attr attr;
	long rc;

	snprintf(nm, sizeof(nm), "f%d", f);
	if (!m->present[d][f] || op < 45) {
		/* create or replace the whole content */
		size_t len = tu_rand64(rnd) % 10 == 0
				     ? 10000 + tu_rand64(rnd) % 200000
				     : tu_rand64(rnd) % 3000;
		char *buf = malloc(len + 1);

		tu_fill_random(buf, len, tu_rand64(rnd));
		if (!m->present[d][f]) {
			struct pog_new spec = { .type = POG_STRING,
						.mode = 0644 };
			rc = pog_mknode(s, dir_ino[d], nm, strlen(nm), &spec,
					&attr);
			if (rc)
				child_fail("mknode", rc);
		} else {
			struct pog_attr set = { .size = 0 };
			rc = pog_lookup(s, dir_ino[d], nm, strlen(nm), &attr);
			if (rc)
				child_fail("lookup", rc);
			rc = pog_setattr(s, attr.ino, &set, POG_SET_SIZE,
					 &attr);
			if (rc)
				child_fail("truncate", rc);
		}
		if (len) {
			rc = pog_write(s, attr.ino, 0, buf, len);
			if (rc != (long)len)
				child_fail("write", rc);
		}
		free(m->data[d][f]);
		m->data[d][f] = buf;
		m->len[d][f] = len;
		m->present[d][f] = 1;
		return;
	}
	rc = pog_lookup(s, dir_ino[d], nm, strlen(nm), &attr);
	if (rc)
		child_fail("lookup", rc);
	if (op < 65) {
		/* overwrite a range, perhaps extending, perhaps past a hole */
		size_t off = (size_t)(tu_rand64(rnd) % (m->len[d][f] + 5000));
		size_t len = 1 + tu_rand64(rnd) % 9000;
		size_t newlen = off + len > m->len[d][f] ? off + len
							 : m->len[d][f];
		char *buf = malloc(len);

		tu_fill_random(buf, len, tu_rand64(rnd));
		rc = pog_write(s, attr.ino, off, buf, len);
		if (rc != (long)len)
			child_fail("write range", rc);
		m->data[d][f] = realloc(m->data[d][f], newlen + 1);
		if (off > m->len[d][f])
			memset(m->data[d][f] + m->len[d][f], 0,
			       off - m->len[d][f]);
		memcpy(m->data[d][f] + off, buf, len);
		m->len[d][f] = newlen;
		free(buf);
	} else if (op < 75) {
		/* truncate down or up */
		size_t newlen = (size_t)(tu_rand64(rnd) % (m->len[d][f] * 2 + 100));
		struct pog_attr set = { .size = newlen };

		rc = pog_setattr(s, attr.ino, &set, POG_SET_SIZE, &attr);
		if (rc)
			child_fail("truncate", rc);
		m->data[d][f] = realloc(m->data[d][f], newlen + 1);
		if (newlen > m->len[d][f])
			memset(m->data[d][f] + m->len[d][f], 0,
			       newlen - m->len[d][f]);
		m->len[d][f] = newlen;
	} else if (op < 88) {
		rc = pog_remove(s, dir_ino[d], nm, strlen(nm), 0);
		if (rc)
			child_fail("remove", rc);
		free(m->data[d][f]);
		m->data[d][f] = NULL;
		m->len[d][f] = 0;
		m->present[d][f] = 0;
	} else {
		/* rename, replacing what is there */
		int d2 = (int)(tu_rand64(rnd) % NDIRS);
		int f2 = (int)(tu_rand64(rnd) % NFILES);
		char nm2[16];

		if (d2 == d && f2 == f)
			return;
		snprintf(nm2, sizeof(nm2), "f%d", f2);
		rc = pog_rename(s, dir_ino[d], nm, strlen(nm), dir_ino[d2],
				nm2, strlen(nm2), 0);
		if (rc)
			child_fail("rename", rc);
		free(m->data[d2][f2]);
		m->data[d2][f2] = m->data[d][f];
		m->len[d2][f2] = m->len[d][f];
		m->present[d2][f2] = 1;
		m->data[d][f] = NULL;
		m->len[d][f] = 0;
		m->present[d][f] = 0;
	}
}

static void __attribute__((noreturn))
child_main(const char *pool, int fd, uint64_t seed)
{
	pog_store *s = NULL;
	struct model m;
	struct pog_status st;
	char why[200];
	uint64_t rnd = seed;
	long rc;

	child_fd = fd;
	rc = pog_open(pool, 0, &s);
	if (rc)
		child_fail("open", rc);
	if (load_model(s, &m, why, sizeof(why)))
		child_fail(why, 0);
	rc = pog_status(s, &st);
	if (rc)
		child_fail("status", rc);
	for (int d = 0; d < NDIRS; d++) {
		struct pog_attr attr;
		char nm[16];

		snprintf(nm, sizeof(nm), "d%d", d);
		rc = pog_lookup(s, POG_ROOT_INO, nm, strlen(nm), &attr);
		if (rc)
			child_fail("lookup dir", rc);
		dir_ino[d] = attr.ino;
	}
	send_record('R', st.commit_id, model_digest(&m), NULL);
	for (;;) {
		int ops = 1 + (int)(tu_rand64(&rnd) % 6);
		uint64_t digest, id = 0;

		if (tu_rand64(&rnd) % 20 == 0) {
			/* a GC now and then: it commits what it frees */
			struct pog_gc_result gc;

			digest = model_digest(&m);
			send_record('g', 0, digest, NULL);
			rc = pog_gc(s, &gc);
			if (rc)
				child_fail("gc", rc);
			rc = pog_status(s, &st);
			if (rc)
				child_fail("status", rc);
			send_record('G', st.commit_id, digest, NULL);
			continue;
		}

		for (int i = 0; i < ops; i++)
			child_op(s, &m, &rnd);
		digest = model_digest(&m);
		send_record('P', 0, digest, NULL);
		rc = pog_commit(s, "crash test", &id);
		if (rc)
			child_fail("commit", rc);
		send_record('C', id, digest, NULL);
	}
}

/* ---- the parent --------------------------------------------------------- */

struct known {
	uint64_t id, digest;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Open, fsck, compare with the allowed states; returns the tree's state. */
static struct known verify_pool(const char *pool, struct known last,
				int pending, uint64_t pending_digest,
				int gc_pending, int iter)
{
	pog_store *s = NULL;
	struct pog_status st;
	struct model m;
	struct known now;
	char why[200];
	int rc;

	rc = pog_open(pool, 0, &s);
	if (rc)
		fail_msg("kill %d: pog_open after SIGKILL = %d (%s)", iter, rc,
			 tu_err(rc));
	tu_assert_fsck_clean(s);
	assert_ok(pog_status(s, &st));
	if (load_model(s, &m, why, sizeof(why)))
		fail_msg("kill %d: tree after reopen: %s", iter, why);
	now.id = st.commit_id;
	now.digest = model_digest(&m);
	model_free(&m);
	if (now.id == last.id) {
		if (now.digest != last.digest)
			fail_msg("kill %d: commit %llu reported, store is at commit %llu but its tree differs from what was committed",
				 iter, (unsigned long long)last.id,
				 (unsigned long long)now.id);
	} else if (gc_pending && now.id > last.id) {
		/* GC commits in as many batches as it needs (history released,
		 * unreachable objects, packed leaves, page index entries), none
		 * of which changes the tree. */
		if (now.digest != last.digest)
			fail_msg("kill %d: killed during GC; store at commit %llu has a different tree",
				 iter, (unsigned long long)now.id);
	} else if (pending && now.id == last.id + 1) {
		if (now.digest != pending_digest)
			fail_msg("kill %d: store is at commit %llu (in flight when killed) but the tree is not what was committed",
				 iter, (unsigned long long)now.id);
	} else {
		fail_msg("kill %d: store is at commit %llu, last reported %llu%s",
			 iter, (unsigned long long)now.id,
			 (unsigned long long)last.id,
			 pending ? " (+1 in flight)" : "");
	}
	/* now and then collect garbage between runs (it commits) */
	if (iter % 3 == 2) {
		struct pog_gc_result gc;

		assert_ok(pog_gc(s, &gc));
		assert_ok(pog_status(s, &st));
		now.id = st.commit_id;
		tu_assert_fsck_clean(s);
	}
	pog_close(s, POG_CLOSE_NOGC);
	return now;
}

static void test_crash_loop(void **state)
{
	struct tu_ctx ctx;
	struct known last;
	uint64_t rnd = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	uint64_t total_commits = 0, inflight_hits = 0, gcs = 0;
	double t0 = tu_now();

	(void)state;
	print_message("    seed %llu\n", (unsigned long long)rnd);
	tu_setup(&ctx, NULL, POOL_SIZE);
	for (int d = 0; d < NDIRS; d++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "d%d", d);
		tu_mk(ctx.s, POG_ROOT_INO, nm, POG_MAP);
	}
	tu_commit_check(ctx.s, "dirs");
	assert_int_equal(pog_close(ctx.s, POG_CLOSE_NOGC), 0);
	ctx.s = NULL;
	/* read the baseline back exactly */
	{
		pog_store *s;
		struct pog_status st;
		struct model m;
		char why[200];

		assert_ok(pog_open(ctx.pool, 0, &s));
		assert_ok(pog_status(s, &st));
		if (load_model(s, &m, why, sizeof(why)))
			fail_msg("baseline: %s", why);
		last.id = st.commit_id;
		last.digest = model_digest(&m);
		model_free(&m);
		pog_close(s, POG_CLOSE_NOGC);
	}

	for (int iter = 0; iter < KILLS; iter++) {
		int fds[2], status, pending = 0, gc_pending = 0;
		uint64_t pending_digest = 0, commits = 0;
		struct record r;
		struct known reported = last;
		pid_t pid;
		unsigned delay = 1 + (unsigned)(tu_rand64(&rnd) % 50);
		int wait_ready = iter % 5 != 4;
		uint64_t seed = tu_rand64(&rnd);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_main(ctx.pool, fds[1], seed);
		}
		close(fds[1]);
		if (wait_ready) {
			struct pollfd pfd = { fds[0], POLLIN, 0 };
			if (poll(&pfd, 1, 30000) != 1) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				fail_msg("kill %d: child not ready in 30 s",
					 iter);
			}
		}
		sleep_ms(delay);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* what did it report? */
		while (read(fds[0], &r, sizeof(r)) == sizeof(r)) {
			switch (r.kind) {
			case 'R':
				if (r.id != last.id || r.digest != last.digest)
					fail_msg("kill %d: child started at commit %llu with a different tree (expected commit %llu)",
						 iter, (unsigned long long)r.id,
						 (unsigned long long)last.id);
				break;
			case 'P':
				pending = 1;
				pending_digest = r.digest;
				break;
			case 'g':
				gc_pending = 1;
				break;
			case 'G':
				if (r.id < reported.id || r.digest != reported.digest)
					fail_msg("kill %d: gc went from commit %llu to %llu",
						 iter, (unsigned long long)reported.id,
						 (unsigned long long)r.id);
				reported.id = r.id;
				gc_pending = 0;
				gcs++;
				break;
			case 'C':
				if (r.id != reported.id + 1)
					fail_msg("kill %d: commit id %llu after %llu",
						 iter, (unsigned long long)r.id,
						 (unsigned long long)reported.id);
				if (r.digest != pending_digest)
					fail_msg("kill %d: digest changed during commit",
						 iter);
				reported.id = r.id;
				reported.digest = r.digest;
				pending = 0;
				commits++;
				break;
			case 'E':
				fail_msg("kill %d: child failed: %s", iter,
					 r.msg);
			default:
				fail_msg("kill %d: bad record", iter);
			}
		}
		close(fds[0]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("kill %d: child exited with status %#x", iter,
				 status);
		{
			struct known now = verify_pool(ctx.pool, reported,
						       pending, pending_digest,
						       gc_pending, iter);
			if (pending && now.digest == pending_digest &&
			    now.id != reported.id)
				inflight_hits++;
			last = now;
		}
		total_commits += commits;
	}
	print_message("    %d kills, %llu commits and %llu GCs reported, %llu commits found done in flight, %.1f s\n",
		      KILLS, (unsigned long long)total_commits,
		      (unsigned long long)gcs,
		      (unsigned long long)inflight_hits, tu_now() - t0);
	assert_true(total_commits > 0);
	tu_teardown(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_loop),
	};

	return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
