/* events.c - .pog/events: committed changes as JSON lines, a bounded ring, blocked reads answered from the commit path. */
#include "pogfs.h"
#include "events.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- records ----------------------------------------------------------- */

/* What one commit moved: the ids of the watched paths whose subtree hash
 * changed. Shared by the commit's lines (refs). */
struct events_commit {
	size_t refs;
	size_t nmoved;
	uint64_t moved[];
};

struct events_line {
	struct events_commit *commit;
	const char *path; /* the raw path, inside text's block */
	size_t len;       /* of text, newline included */
	char text[];      /* the JSON line, then path */
};

#define WATCH_MAX 64 /* paths one reader may watch */

struct events_watch {
	struct events_watch *next;
	uint64_t id;       /* never reused */
	size_t refs;       /* readers watching it */
	int found;         /* the path exists in the last commit */
	uint32_t hash;     /* its hash there */
	char path[];       /* from the root, escaped names; "" the root */
};

struct events_reader {
	struct events_reader *next;
	uint64_t next_seq;   /* the next line to read */
	size_t line_off;     /* bytes of that line already read */
	uint64_t lost;       /* lines lost, to tell before the next */
	char lost_text[48];  /* {"lost":N} being read */
	size_t lost_len, lost_off;
	size_t nwatch;
	struct events_watch *watch[WATCH_MAX];
	struct fuse_pollhandle *ph; /* a poller waiting for a line */
	const struct pogfs *fs; /* the mount it was opened on */
	bool closed;         /* that mount went away: end of file */
};

/* A mount whose readers' streams end when it leaves the mount table. */
struct events_mount {
	struct events_mount *next;
	const struct pogfs *fs;
	unsigned long id;    /* in /proc/self/mountinfo */
};

struct events_pending {
	struct events_pending *next;
	fuse_req_t req;
	struct events_reader *reader;
	size_t size;
};

static void reader_close(struct pogfs_events *ev, struct events_reader *r);

static struct pogfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct events_reader *reader_of(struct fuse_file_info *fi)
{
	return (struct events_reader *)(uintptr_t)fi->fh;
}

/* ---- set-up and teardown ------------------------------------------------ */

int events_init(struct pogfs_events *ev, unsigned lines)
{
	memset(ev, 0, sizeof(*ev));
	ev->cap = lines ? lines : EVENTS_RING_LINES;
	ev->max_bytes = EVENTS_RING_BYTES;
	ev->ring = calloc(ev->cap, sizeof(*ev->ring));
	if (!ev->ring)
		return -ENOMEM;
	ev->first_seq = ev->next_seq = 1;
	ev->next_watch_id = 1;
	ev->stop_pipe[0] = ev->stop_pipe[1] = -1;
	pthread_mutex_init(&ev->commit_lock, NULL);
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->wake, NULL);
	return 0;
}

static void commit_put(struct events_commit *c)
{
	if (c && --c->refs == 0)
		free(c);
}

/* Drop the oldest line (lock held). */
static void drop_oldest(struct pogfs_events *ev)
{
	struct events_line **slot = &ev->ring[ev->first_seq % ev->cap];

	ev->bytes -= (*slot)->len;
	commit_put((*slot)->commit);
	free(*slot);
	*slot = NULL;
	ev->first_seq++;
	ev->lines_dropped++;
}

void events_release(struct pogfs_events *ev)
{
	if (!ev->ring)
		return;
	while (ev->first_seq < ev->next_seq)
		drop_oldest(ev);
	while (ev->mounts) {
		struct events_mount *m = ev->mounts;
		ev->mounts = m->next;
		free(m);
	}
	while (ev->watches) {
		struct events_watch *w = ev->watches;
		ev->watches = w->next;
		free(w);
	}
	/* The session is gone: a file whose RELEASE never came (the
	 * kernel ended the connection first) still has its reader here. */
	while (ev->readers) {
		struct events_reader *r = ev->readers;
		ev->readers = r->next;
		if (r->ph)
			fuse_pollhandle_destroy(r->ph);
		free(r);
	}
	while (ev->pending) { /* answered at events_close; none left */
		struct events_pending *p = ev->pending;
		ev->pending = p->next;
		free(p);
	}
	free(ev->ring);
	ev->ring = NULL;
	pthread_cond_destroy(&ev->wake);
	pthread_mutex_destroy(&ev->lock);
	pthread_mutex_destroy(&ev->commit_lock);
}

/* ---- reading the ring (lock held) --------------------------------------- */

/* The stream ended for this reader: every stream, or its mount's. */
static bool ended(const struct pogfs_events *ev, const struct events_reader *r)
{
	return ev->closed || r->closed;
}

static bool path_under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return n == 0 || (strncmp(path, top, n) == 0 &&
			  (path[n] == '\0' || path[n] == '/'));
}

static bool commit_moved(const struct events_commit *c, uint64_t id)
{
	for (size_t i = 0; c && i < c->nmoved; i++)
		if (c->moved[i] == id)
			return true;
	return false;
}

/* Does the reader want this line? All of them when it watches nothing. */
static bool reader_wants(const struct events_reader *r,
			 const struct events_line *l)
{
	if (r->nwatch == 0)
		return true;
	for (size_t i = 0; i < r->nwatch; i++)
		if (path_under(l->path, r->watch[i]->path) &&
		    commit_moved(l->commit, r->watch[i]->id))
			return true;
	return false;
}

/* Lines the ring no longer holds count as lost. */
static void catch_up(struct pogfs_events *ev, struct events_reader *r)
{
	if (r->next_seq < ev->first_seq) {
		r->lost += ev->first_seq - r->next_seq;
		r->next_seq = ev->first_seq;
		r->line_off = 0;
	}
}

/* Would a read answer something now? Skips lines the reader does not
 * want (it never would). */
static bool reader_ready(struct pogfs_events *ev, struct events_reader *r)
{
	catch_up(ev, r);
	if (r->lost || r->lost_off < r->lost_len)
		return true;
	while (r->next_seq < ev->next_seq) {
		if (reader_wants(r, ev->ring[r->next_seq % ev->cap]))
			return true;
		r->next_seq++;
		r->line_off = 0;
	}
	return false;
}

/* Copy what the reader has to read into buf (at most size bytes): whole
 * lines, or the start of one line that does not fit an empty buffer. */
static size_t reader_fill(struct pogfs_events *ev, struct events_reader *r,
			  char *buf, size_t size)
{
	size_t used = 0;

	catch_up(ev, r);
	if (r->lost && r->lost_off == r->lost_len) {
		int n = snprintf(r->lost_text, sizeof(r->lost_text),
				 "{\"lost\":%" PRIu64 "}\n", r->lost);
		r->lost_len = (size_t)n;
		r->lost_off = 0;
		r->lost = 0;
	}
	if (r->lost_off < r->lost_len) { /* like a line, maybe in pieces */
		size_t left = r->lost_len - r->lost_off;
		if (left > size)
			left = size;
		memcpy(buf, r->lost_text + r->lost_off, left);
		used = left;
		r->lost_off += left;
		if (r->lost_off < r->lost_len)
			return used;
	}
	while (r->next_seq < ev->next_seq && used < size) {
		const struct events_line *l = ev->ring[r->next_seq % ev->cap];
		if (!reader_wants(r, l)) {
			r->next_seq++;
			r->line_off = 0;
			continue;
		}
		size_t left = l->len - r->line_off;
		if (left > size - used) {
			if (used)
				break;
			left = size; /* the start of a long line */
		}
		memcpy(buf + used, l->text + r->line_off, left);
		used += left;
		r->line_off += left;
		if (r->line_off == l->len) {
			r->next_seq++;
			r->line_off = 0;
		}
	}
	return used;
}

/* ---- the notifier: answers blocked reads and pollers -------------------- */

struct answer {
	struct answer *next;
	fuse_req_t req;
	char *buf;       /* NULL: an error */
	size_t len;
	int err;
};

/* Take the blocked reads that can be answered now (lock held). */
static struct answer *take_answers(struct pogfs_events *ev)
{
	struct answer *out = NULL;

	for (struct events_pending **pp = &ev->pending; *pp;) {
		struct events_pending *p = *pp;
		struct answer *a = calloc(1, sizeof(*a));
		char *buf = a ? malloc(p->size ? p->size : 1) : NULL;
		if (!buf) {
			free(a);
			a = NULL;
		}
		size_t n = buf ? reader_fill(ev, p->reader, buf, p->size) : 0;
		if (!a || (n == 0 && !ended(ev, p->reader))) {
			free(buf);
			free(a);
			pp = &p->next;
			continue;
		}
		a->req = p->req;
		a->buf = buf;
		a->len = n;
		a->next = out;
		out = a;
		*pp = p->next;
		free(p);
	}
	return out;
}

struct poll_wake {
	struct poll_wake *next;
	struct fuse_pollhandle *ph;
};

static struct poll_wake *take_pollers(struct pogfs_events *ev)
{
	struct poll_wake *out = NULL;

	for (struct events_reader *r = ev->readers; r; r = r->next) {
		if (!r->ph || (!ended(ev, r) && !reader_ready(ev, r)))
			continue;
		struct poll_wake *w = malloc(sizeof(*w));
		if (!w)
			break;
		w->ph = r->ph;
		r->ph = NULL;
		w->next = out;
		out = w;
	}
	return out;
}

static void send_answers(struct answer *a, struct poll_wake *w)
{
	while (a) {
		struct answer *next = a->next;
		if (a->err)
			fuse_reply_err(a->req, a->err);
		else
			fuse_reply_buf(a->req, a->buf, a->len);
		free(a->buf);
		free(a);
		a = next;
	}
	while (w) {
		struct poll_wake *next = w->next;
		fuse_lowlevel_notify_poll(w->ph);
		fuse_pollhandle_destroy(w->ph);
		free(w);
		w = next;
	}
}

static void *notifier_main(void *arg)
{
	struct pogfs_events *ev = arg;

	pthread_mutex_lock(&ev->lock);
	for (;;) {
		while (!ev->work && !ev->stopping)
			pthread_cond_wait(&ev->wake, &ev->lock);
		if (!ev->work)
			break;
		ev->work = false;
		struct answer *a = take_answers(ev);
		struct poll_wake *w = take_pollers(ev);
		pthread_mutex_unlock(&ev->lock);
		send_answers(a, w);
		pthread_mutex_lock(&ev->lock);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

/* Something changed for the readers (lock held). */
static void kick(struct pogfs_events *ev)
{
	ev->work = true;
	pthread_cond_signal(&ev->wake);
}

/* ---- the end of the streams: unmount ------------------------------------ */

/* End the streams of fs's readers, or all of them (fs NULL), and stop
 * watching fs's mount (lock held). */
static void end_streams_locked(struct pogfs_events *ev, const struct pogfs *fs)
{
	if (!fs)
		ev->closed = true;
	for (struct events_reader *r = ev->readers; r; r = r->next)
		if (r->fs == fs)
			r->closed = true;
	for (struct events_mount **mp = &ev->mounts; *mp;) {
		struct events_mount *m = *mp;
		if (!fs || m->fs == fs) {
			*mp = m->next;
			free(m);
		} else {
			mp = &m->next;
		}
	}
	kick(ev);
}

static void end_streams(struct pogfs_events *ev, const struct pogfs *fs)
{
	pthread_mutex_lock(&ev->lock);
	end_streams_locked(ev, fs);
	pthread_mutex_unlock(&ev->lock);
}

/*
 * A lazy unmount (fusermount3 -u -z, umount -l) detaches the mount while
 * files stay open, and the kernel tells the daemon nothing until the last
 * one is closed: a reader blocked on .pog/events would keep the daemon
 * forever. The mount table says when the mount went away (the kernel
 * wakes pollers of /proc/self/mountinfo on every change); then the
 * streams end, the readers see end of file and close, and the kernel
 * ends the session.
 */

/* Decode a mountinfo field in place (\040 and friends). */
static void unescape_field(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static char *read_all(int fd)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);

	if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (len + 1 >= cap) {
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* The id of the last FUSE mount at mountpoint in the table (0: none),
 * or with want_id, whether that mount is still there (want_id or 0). */
static unsigned long find_mount(const char *table, const char *mountpoint,
				unsigned long want_id)
{
	unsigned long found = 0;

	for (const char *line = table; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char *copy = strndup(line, n);
		char *field[5] = { 0 }, *save = NULL, *sep, *tok;

		line = end ? end + 1 : NULL;
		if (!copy)
			return want_id; /* cannot tell: still there */
		sep = strstr(copy, " - "); /* then the type, the source */
		if (sep)
			*sep = '\0';
		tok = strtok_r(copy, " ", &save);
		for (int i = 0; tok && i < 5; i++) {
			field[i] = tok;
			tok = strtok_r(NULL, " ", &save);
		}
		unsigned long id = field[0] ? strtoul(field[0], NULL, 10) : 0;
		if (want_id) {
			if (id == want_id)
				found = id;
		} else if (field[4] && sep && strncmp(sep + 3, "fuse", 4) == 0) {
			unescape_field(field[4]);
			if (strcmp(field[4], mountpoint) == 0)
				found = id;
		}
		free(copy);
		if (want_id && found)
			break;
	}
	return found;
}

/* Mounts that left the table: their readers' streams end (lock held). */
static void check_mounts(struct pogfs_events *ev, const char *table)
{
	for (struct events_mount *m = ev->mounts, *next; m; m = next) {
		next = m->next;
		if (find_mount(table, m->fs->mountpoint, m->id) != 0)
			continue;
		pogfs_log((struct pogfs *)m->fs, LOG_INFO,
			  "events: %s was unmounted: its event streams end",
			  m->fs->mountpoint);
		end_streams_locked(ev, m->fs);
	}
}

static void *mount_watcher_main(void *arg)
{
	struct pogfs_events *ev = arg;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = POLLPRI },
			{ .fd = ev->stop_pipe[0], .events = POLLIN },
		};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & (POLLPRI | POLLERR)))
			continue;
		char *table = read_all(fd);
		if (table) {
			pthread_mutex_lock(&ev->lock);
			check_mounts(ev, table);
			pthread_mutex_unlock(&ev->lock);
		}
		free(table);
	}
	close(fd);
	return NULL;
}

int events_attach(struct pogfs *fs)
{
	struct pogfs_events *ev = fs->events;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	char *table = fd >= 0 ? read_all(fd) : NULL;
	unsigned long id = table ? find_mount(table, fs->mountpoint, 0) : 0;
	struct events_mount *m = id ? malloc(sizeof(*m)) : NULL;

	free(table);
	if (fd >= 0)
		close(fd);
	if (!m)
		return id ? -ENOMEM : 0; /* not in the table: nothing to watch */
	m->fs = fs;
	m->id = id;
	pthread_mutex_lock(&ev->lock);
	m->next = ev->mounts;
	ev->mounts = m;
	pthread_mutex_unlock(&ev->lock);
	return 0;
}

void events_end_mount(struct pogfs *fs)
{
	if (fs->events && fs->events->ring)
		end_streams(fs->events, fs);
}

int events_start(struct pogfs *fs)
{
	struct pogfs_events *ev = fs->events;
	int err;

	ev->se = fs->se;
	err = pthread_create(&ev->notifier, NULL, notifier_main, ev);
	if (err)
		return -err;
	ev->notifier_running = true;
	if (pipe2(ev->stop_pipe, O_CLOEXEC) != 0)
		return -errno;
	err = events_attach(fs);
	if (err)
		return err;
	err = pthread_create(&ev->mount_watcher, NULL, mount_watcher_main, ev);
	if (err)
		return -err;
	ev->mount_watcher_running = true;
	return 0;
}

void events_close(struct pogfs *fs)
{
	struct pogfs_events *ev = fs->events;

	if (!ev->ring)
		return;
	end_streams(ev, NULL);
	if (ev->mount_watcher_running) {
		char c = 0;
		if (write(ev->stop_pipe[1], &c, 1) != 1) {
			/* the watcher also ends with the process */
		}
		pthread_join(ev->mount_watcher, NULL);
		ev->mount_watcher_running = false;
	}
	for (int i = 0; i < 2; i++) {
		if (ev->stop_pipe[i] >= 0)
			close(ev->stop_pipe[i]);
		ev->stop_pipe[i] = -1;
	}
	if (ev->notifier_running) {
		pthread_mutex_lock(&ev->lock);
		ev->stopping = true;
		pthread_cond_signal(&ev->wake);
		pthread_mutex_unlock(&ev->lock);
		pthread_join(ev->notifier, NULL);
		ev->notifier_running = false;
	} else {
		/* no notifier: answer what waits from here */
		pthread_mutex_lock(&ev->lock);
		struct answer *a = take_answers(ev);
		struct poll_wake *w = take_pollers(ev);
		pthread_mutex_unlock(&ev->lock);
		send_answers(a, w);
	}
}

/* ---- feeding the ring from a commit ------------------------------------- */

static void text_str(struct text *t, const char *s)
{
	text_addn(t, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control characters escaped;
 * other bytes as they are (names are bytes: not always UTF-8). */
static void text_json(struct text *t, const char *s)
{
	text_addn(t, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			text_addn(t, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			text_addn(t, esc, 6);
		} else {
			text_addn(t, s, 1);
		}
	}
	text_addn(t, "\"", 1);
}

static struct events_line *make_line(uint64_t commit, const char *session,
				     const struct pog_change *c)
{
	struct text t = { 0 };
	char num[64];
	const char *path = c->path[0] ? c->path : ".";

	snprintf(num, sizeof(num), "{\"commit\":%" PRIu64 ",\"session\":", commit);
	text_str(&t, num);
	text_json(&t, session);
	snprintf(num, sizeof(num), ",\"change\":\"%c\",\"path\":", c->kind);
	text_str(&t, num);
	text_json(&t, path);
	if (c->has_hash)
		snprintf(num, sizeof(num), ",\"hash\":\"%08" PRIx32 "\"}\n", c->hash);
	else
		snprintf(num, sizeof(num), ",\"hash\":null}\n");
	text_str(&t, num);
	if (t.failed) {
		free(t.data);
		return NULL;
	}
	size_t plen = strlen(c->path);
	struct events_line *l = malloc(sizeof(*l) + t.len + plen + 1);
	if (l) {
		memcpy(l->text, t.data, t.len);
		memcpy(l->text + t.len, c->path, plen + 1);
		l->path = l->text + t.len;
		l->len = t.len;
		l->commit = NULL;
	}
	free(t.data);
	return l;
}

/* The paths watched now, copied (commit_lock held: none comes or goes
 * until the commit is fed). */
struct watch_snapshot {
	size_t n;
	uint64_t *ids;
	char **paths;
};

static void snapshot_release(struct watch_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->ids);
	memset(s, 0, sizeof(*s));
}

static int snapshot_take(struct pogfs_events *ev, struct watch_snapshot *s)
{
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	for (struct events_watch *w = ev->watches; w; w = w->next)
		n++;
	if (!n)
		return 0;
	s->ids = calloc(n, sizeof(*s->ids));
	s->paths = calloc(n, sizeof(*s->paths));
	if (!s->ids || !s->paths) {
		snapshot_release(s);
		return -ENOMEM;
	}
	for (struct events_watch *w = ev->watches; w; w = w->next) {
		s->paths[s->n] = strdup(w->path);
		if (!s->paths[s->n]) {
			snapshot_release(s);
			return -ENOMEM;
		}
		s->ids[s->n++] = w->id;
	}
	return 0;
}

/* Which watched paths the commit moved; their hashes become the new
 * ones (lock held). */
static struct events_commit *moved_of(struct pogfs_events *ev,
				      const struct watch_snapshot *snap,
				      const struct pog_commit_report *rep)
{
	struct events_commit *c = calloc(1, sizeof(*c) + snap->n * sizeof(uint64_t));

	if (!c)
		return NULL;
	for (size_t i = 0; rep->paths && i < snap->n; i++) {
		for (struct events_watch *w = ev->watches; w; w = w->next) {
			if (w->id != snap->ids[i])
				continue;
			if (w->found != rep->paths[i].found ||
			    w->hash != rep->paths[i].hash)
				c->moved[c->nmoved++] = w->id;
			w->found = rep->paths[i].found;
			w->hash = rep->paths[i].hash;
		}
	}
	return c;
}

static void feed(struct pogfs *fs, const struct pog_commit_report *rep,
		 const struct watch_snapshot *snap)
{
	struct pogfs_events *ev = fs->events;
	const char *session = fs->mountpoint ? fs->mountpoint : "";
	struct events_line **lines = calloc(rep->nchanges ? rep->nchanges : 1,
					    sizeof(*lines));
	size_t n = 0;

	if (rep->incomplete)
		pogfs_log(fs, LOG_ERR, "events: commit %" PRIu64
			  ": out of memory, some changes are not in .pog/events",
			  rep->id);
	for (size_t i = 0; lines && i < rep->nchanges; i++) {
		lines[n] = make_line(rep->id, session, &rep->changes[i]);
		if (lines[n])
			n++;
	}
	pthread_mutex_lock(&ev->lock);
	struct events_commit *c = moved_of(ev, snap, rep);
	if (c && n) {
		c->refs = n;
		for (size_t i = 0; i < n; i++) {
			struct events_line *l = lines[i];
			while (ev->next_seq - ev->first_seq >= ev->cap ||
			       (ev->next_seq > ev->first_seq &&
				ev->bytes + l->len > ev->max_bytes))
				drop_oldest(ev);
			l->commit = c;
			ev->ring[ev->next_seq % ev->cap] = l;
			ev->next_seq++;
			ev->bytes += l->len;
		}
		ev->lines_fed += n;
		ev->work = true; /* the notifier starts at events_notify */
	} else {
		for (size_t i = 0; i < n; i++)
			free(lines[i]);
		free(c);
	}
	ev->commits_fed++;
	pthread_mutex_unlock(&ev->lock);
	free(lines);
}

void events_stats(struct pogfs *fs, struct events_stats *out)
{
	struct pogfs_events *ev = fs->events;

	memset(out, 0, sizeof(*out));
	if (!ev->ring)
		return;
	pthread_mutex_lock(&ev->lock);
	out->readers = ev->nreaders;
	for (struct events_pending *p = ev->pending; p; p = p->next)
		out->blocked++;
	out->commits = ev->commits_fed;
	out->lines = ev->lines_fed;
	out->dropped = ev->lines_dropped;
	out->held = ev->next_seq - ev->first_seq;
	pthread_mutex_unlock(&ev->lock);
}

void events_notify(struct pogfs *fs)
{
	struct pogfs_events *ev = fs->events;

	if (!ev->ring)
		return;
	pthread_mutex_lock(&ev->lock);
	if (ev->work)
		pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

int pogfs_commit(struct pogfs *fs, const char *message, uint64_t *id)
{
	struct pogfs_events *ev = fs->events;
	struct pog_commit_report *rep = NULL;
	struct watch_snapshot snap = { 0 };
	bool wanted;
	int rc;

	if (!ev->ring)
		return pog_commit(fs->store, message, id);
	pthread_mutex_lock(&ev->commit_lock);
	pthread_mutex_lock(&ev->lock);
	wanted = ev->nreaders > 0 && !ev->closed;
	if (wanted && snapshot_take(ev, &snap) < 0)
		wanted = false; /* out of memory: readers lose this commit */
	pthread_mutex_unlock(&ev->lock);
	if (!wanted) {
		rc = pog_commit(fs->store, message, id);
	} else {
		rc = pog_commit_report(fs->store, message, id,
				       (const char *const *)snap.paths, snap.n,
				       &rep);
		if (rc == 0)
			feed(fs, rep, &snap);
	}
	pthread_mutex_unlock(&ev->commit_lock);
	pog_commit_report_free(rep);
	snapshot_release(&snap);
	return rc;
}

/* ---- the file ----------------------------------------------------------- */

void events_open(fuse_req_t req, struct fuse_file_info *fi)
{
	struct pogfs_events *ev = fs_of(req)->events;
	struct events_reader *r = calloc(1, sizeof(*r));

	if (!r) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* after any commit in flight: it is not "the next" */
	pthread_mutex_lock(&ev->commit_lock);
	pthread_mutex_lock(&ev->lock);
	r->next_seq = ev->next_seq;
	r->fs = fs_of(req);
	r->next = ev->readers;
	ev->readers = r;
	ev->nreaders++;
	pthread_mutex_unlock(&ev->lock);
	pthread_mutex_unlock(&ev->commit_lock);
	fi->fh = (uint64_t)(uintptr_t)r;
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		reader_close(ev, r);
}

/* The kernel says the reader gave up (a signal): answer EINTR. The
 * request is looked up, never trusted: it may have been answered. */
static void events_interrupted(fuse_req_t req, void *data)
{
	struct pogfs_events *ev = data;
	struct events_pending *found = NULL;

	pthread_mutex_lock(&ev->lock);
	for (struct events_pending **pp = &ev->pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->req == req) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	if (found) {
		fuse_reply_err(req, EINTR);
		free(found);
	}
}

void events_read(fuse_req_t req, size_t size, struct fuse_file_info *fi)
{
	struct pogfs_events *ev = fs_of(req)->events;
	struct events_reader *r = reader_of(fi);
	struct events_pending *p = calloc(1, sizeof(*p));
	char *buf = malloc(size ? size : 1);
	size_t n;

	if (!p || !buf || !r) {
		free(p);
		free(buf);
		fuse_reply_err(req, r ? ENOMEM : EBADF);
		return;
	}
	/* before the lock: it may call events_interrupted at once */
	fuse_req_interrupt_func(req, events_interrupted, ev);
	pthread_mutex_lock(&ev->lock);
	n = reader_fill(ev, r, buf, size);
	if (n > 0 || ended(ev, r)) {
		pthread_mutex_unlock(&ev->lock);
		fuse_reply_buf(req, buf, n);
	} else if (fi->flags & O_NONBLOCK) {
		pthread_mutex_unlock(&ev->lock);
		fuse_reply_err(req, EAGAIN);
	} else if (fuse_req_interrupted(req)) {
		pthread_mutex_unlock(&ev->lock);
		fuse_reply_err(req, EINTR);
	} else {
		/* answered by the notifier after a commit */
		p->req = req;
		p->reader = r;
		p->size = size;
		p->next = ev->pending;
		ev->pending = p;
		p = NULL;
		pthread_mutex_unlock(&ev->lock);
	}
	free(p);
	free(buf);
}

/* A path to watch as the lines name it: relative to the root, or
 * absolute under the mount point; "" for the root. NULL when it has "."
 * or ".." in the middle (lines never do). */
static char *watch_path_of(struct pogfs *fs, const char *arg)
{
	const char *p = arg;
	char *out;

	if (p[0] == '/' && fs->mountpoint_len &&
	    strncmp(p, fs->mountpoint, fs->mountpoint_len) == 0 &&
	    (p[fs->mountpoint_len] == '/' || p[fs->mountpoint_len] == '\0'))
		p += fs->mountpoint_len;
	while (*p == '/')
		p++;
	if (strcmp(p, ".") == 0)
		p = "";
	out = strdup(p);
	if (!out)
		return NULL;
	for (size_t n = strlen(out); n && out[n - 1] == '/';)
		out[--n] = '\0';
	for (char *c = out; *c;) {
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.') ||
		    n == 0) {
			free(out);
			return NULL;
		}
		c += n;
		if (*c == '/')
			c++;
	}
	return out;
}

/* The hash of path in the last commit (commit_lock held). */
static void committed_hash(struct pogfs *fs, const char *path,
			   struct events_watch *w)
{
	uint64_t ino = VINO_COMMITTED_ROOT;
	int rc = path[0] ? pog_resolve(fs->store, VINO_COMMITTED_ROOT, path,
				       &ino) : 0;

	w->found = 0;
	w->hash = 0;
	if (rc == 0 && pog_hash(fs->store, ino | POG_COMMITTED_BIT, &w->hash) == 0)
		w->found = 1;
	else
		w->hash = 0;
}

/* "watch PATH": add PATH to what the reader watches. */
static int add_watch(struct pogfs *fs, struct events_reader *r, const char *arg)
{
	struct pogfs_events *ev = fs->events;
	char *path = watch_path_of(fs, arg);
	struct events_watch *w;
	int rc = 0;

	if (!path)
		return -EINVAL;
	pthread_mutex_lock(&ev->commit_lock);
	pthread_mutex_lock(&ev->lock);
	for (size_t i = 0; i < r->nwatch; i++)
		if (strcmp(r->watch[i]->path, path) == 0)
			goto out; /* already */
	if (r->nwatch == WATCH_MAX) {
		rc = -ENOSPC;
		goto out;
	}
	for (w = ev->watches; w; w = w->next)
		if (strcmp(w->path, path) == 0)
			break;
	if (!w) {
		w = calloc(1, sizeof(*w) + strlen(path) + 1);
		if (!w) {
			rc = -ENOMEM;
			goto out;
		}
		strcpy(w->path, path);
		w->id = ev->next_watch_id++;
		/* no commit can land now: the store's lock is enough */
		pthread_mutex_unlock(&ev->lock);
		committed_hash(fs, path, w);
		pthread_mutex_lock(&ev->lock);
		w->next = ev->watches;
		ev->watches = w;
	}
	w->refs++;
	r->watch[r->nwatch++] = w;
out:
	pthread_mutex_unlock(&ev->lock);
	pthread_mutex_unlock(&ev->commit_lock);
	free(path);
	return rc;
}

void events_write(fuse_req_t req, const char *buf, size_t size,
		  struct fuse_file_info *fi)
{
	struct pogfs *fs = fs_of(req);
	struct events_reader *r = reader_of(fi);
	char *text = strndup(buf, size);
	int rc = 0;

	if (!text || !r) {
		free(text);
		fuse_reply_err(req, r ? ENOMEM : EBADF);
		return;
	}
	if (memchr(buf, '\0', size))
		rc = -EINVAL;
	for (char *line = text, *next; rc == 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line)
			continue;
		if (strncmp(line, "watch ", 6) != 0) {
			rc = -EINVAL;
			pogfs_note_error(fs, "events: unknown command (watch PATH)");
			break;
		}
		rc = add_watch(fs, r, line + 6);
		if (rc == -EINVAL)
			pogfs_note_error(fs, "events: watch %.200s: not a path in the store",
					 line + 6);
	}
	free(text);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* Forget a reader: its watches, its poller. */
static void reader_close(struct pogfs_events *ev, struct events_reader *r)
{
	struct events_pending *orphans = NULL;
	struct fuse_pollhandle *ph;

	pthread_mutex_lock(&ev->lock);
	for (struct events_reader **pp = &ev->readers; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			ev->nreaders--;
			break;
		}
	}
	/* the kernel releases no file with a read in flight; be safe */
	for (struct events_pending **pp = &ev->pending; *pp;) {
		struct events_pending *p = *pp;
		if (p->reader != r) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = orphans;
		orphans = p;
	}
	for (size_t i = 0; i < r->nwatch; i++) {
		struct events_watch *w = r->watch[i];
		if (--w->refs)
			continue;
		for (struct events_watch **wp = &ev->watches; *wp; wp = &(*wp)->next) {
			if (*wp == w) {
				*wp = w->next;
				break;
			}
		}
		free(w);
	}
	ph = r->ph;
	pthread_mutex_unlock(&ev->lock);
	while (orphans) {
		struct events_pending *next = orphans->next;
		fuse_reply_err(orphans->req, EBADF);
		free(orphans);
		orphans = next;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	free(r);
}

void events_release_file(fuse_req_t req, struct fuse_file_info *fi)
{
	struct events_reader *r = reader_of(fi);

	if (r)
		reader_close(fs_of(req)->events, r);
	fuse_reply_err(req, 0);
}

void events_poll(fuse_req_t req, struct fuse_file_info *fi,
		 struct fuse_pollhandle *ph)
{
	struct pogfs_events *ev = fs_of(req)->events;
	struct events_reader *r = reader_of(fi);
	struct fuse_pollhandle *old = NULL;
	unsigned revents = 0;

	if (!r) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_err(req, EBADF);
		return;
	}
	pthread_mutex_lock(&ev->lock);
	if (ph) {
		old = r->ph;
		r->ph = ph;
	}
	if (ended(ev, r) || reader_ready(ev, r))
		revents = POLLIN | POLLRDNORM;
	pthread_mutex_unlock(&ev->lock);
	if (old)
		fuse_pollhandle_destroy(old);
	fuse_reply_poll(req, revents);
}
