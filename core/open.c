/* open.c - open, create and close a pool; its sessions' lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

/* ---- open, create, close ---------------------------------------------------- */

static pog_store *session_new(struct pog_env *env)
{
	pog_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->env = env;
	pthread_mutex_init(&s->pin_lock, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	pthread_mutex_init(&s->hash_lock, NULL);
	s->session_id = ++env->session_seq;
	s->next_session = env->sessions;
	env->sessions = s;
	env->nsessions++;
	return s;
}

/* The session begins at the latest commit, which it pins (its blocks
 * stay while the session reads them: pins.c). */
void pog_session_begin(pog_store *s)
{
	uint64_t old = s->base_pinned ? s->base_id : 0;
	s->base = s->env->committed;
	s->base_id = s->env->commit_id;
	s->staged = s->base;
	s->base_pinned = pog_commit_pin(s, s->base_id) == 0;
	if (old)
		pog_commit_unpin(s, old);
}

/* The session no longer reads its base. */
static void session_unpin(pog_store *s)
{
	if (s->base_pinned)
		pog_commit_unpin(s, s->base_id);
	s->base_pinned = false;
}

static void session_free(pog_store *s)
{
	struct pog_env *env = s->env;
	for (pog_store **p = &env->sessions; *p; p = &(*p)->next_session) {
		if (*p == s) {
			*p = s->next_session;
			env->nsessions--;
			break;
		}
	}
	session_unpin(s);
	pog_changes_clear(s);
	free(s->conflicts);
	free(s->session_name);
	pog_moved_clear(&s->moved);
	free(s->removed_paths);
	pog_vec_release(&s->freed);
	pog_vec_release(&s->renumbered);
	pog_small_forget(s);
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		pog_vec_release(&s->small[c].free);
	free(s->tx);
	pog_map64_release(&s->pins);
	pog_edit_free(s);
	pog_hash_reset(s);
	pthread_mutex_destroy(&s->hash_lock);
	pthread_mutex_destroy(&s->pin_lock);
	pthread_mutex_destroy(&s->err_lock);
	free(s);
}

/* A new env (no pool yet) and its first session. */
static pog_store *store_new(void)
{
	struct pog_env *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->lock_fd = -1;
	env->list_counts = true; /* load_commit says for an existing pool */
	pthread_rwlock_init(&env->lock, NULL);
	pog_store *s = session_new(env);
	if (!s) {
		pthread_rwlock_destroy(&env->lock);
		free(env);
		return NULL;
	}
	pog_pins_init(s);
	if (pog_history_init(s)) {
		pog_history_free(s);
		pog_pins_free(s);
		session_free(s);
		pthread_rwlock_destroy(&env->lock);
		free(env);
		return NULL;
	}
	return s;
}

/* Free the last session and its env (closing the pool). */
static void store_free(pog_store *s)
{
	struct pog_env *env = s->env;
	session_unpin(s);
	pog_history_free(s);
	pog_pins_free(s);
	session_free(s);
	pog_early_stop(env);
	if (env->pop)
		pmemobj_close(env->pop);
	if (env->lock_fd >= 0)
		close(env->lock_fd);
	free(env->segs);
	pthread_rwlock_destroy(&env->lock);
	free(env);
}

pog_store *pog_session_new_locked(struct pog_env *env)
{
	pog_store *s = session_new(env);
	if (s)
		pog_session_begin(s);
	return s;
}

void pog_session_free_locked(pog_store *s)
{
	struct pog_env *env = s->env;
	pog_abort_locked(s);
	session_free(s);
	if (env->sessions)
		pog_deferred_release(env->sessions);
}

void pog_sessions_catch_up(pog_store *s)
{
	for (pog_store *p = s->env->sessions; p; p = p->next_session)
		if (p->base_id != s->env->commit_id && !p->changes.n &&
		    !p->nremoved)
			pog_abort_locked(p);
}

int pog_session_open(pog_store *any, pog_store **out)
{
	struct pog_env *env = any->env;
	pthread_rwlock_wrlock(&env->lock);
	int err = env->fatal ? POG_EFATAL : 0;
	pog_store *s = err ? NULL : session_new(env);
	if (s)
		pog_session_begin(s);
	else if (!err)
		err = -ENOMEM;
	pthread_rwlock_unlock(&env->lock);
	if (!err)
		*out = s;
	return err;
}

unsigned pog_session_count(pog_store *s)
{
	pthread_rwlock_rdlock(&s->env->lock);
	unsigned n = s->env->nsessions;
	pthread_rwlock_unlock(&s->env->lock);
	return n;
}

/* Lock the pool file with an open-file-description lock, which neither
 * libpmemobj's own flock nor other descriptors' closes disturb. Read-only
 * opens lock exclusively too: libpmemobj maps the pool read-write and
 * flocks it whatever we ask. Only byte 0 is the holder's lock (an older
 * pogfs locks the whole file, which conflicts with it all the same); the
 * daemon marks the mount it serves on byte 1 (fs/main.c). */
static int lock_pool(pog_store *s, const char *path)
{
	s->env->lock_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->env->lock_fd < 0)
		return -errno;
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 1,
	};
	if (fcntl(s->env->lock_fd, F_OFD_SETLK, &fl) < 0)
		return (errno == EAGAIN || errno == EACCES) ? POG_ELOCKED
							    : -errno;
	return 0;
}

/* Is the pool on persistent memory (a DAX file, or libpmemobj told to
 * take it as such)? There libpmemobj flushes cache line by cache line,
 * so a flush must not span clean memory; elsewhere a flush is an msync,
 * which writes only the dirty pages of its range. */
static bool pool_is_pmem(int fd)
{
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	if (force && strcmp(force, "1") == 0)
		return true;
	void *p = mmap(NULL, POG_BLOCK_SIZE, PROT_READ,
		       MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED)
		return false;
	munmap(p, POG_BLOCK_SIZE);
	return true;
}

static int check_signature(int fd)
{
	char sig[8];
	ssize_t n = pread(fd, sig, sizeof(sig), 0);
	if (n < 0)
		return -errno;
	if (n != sizeof(sig) || memcmp(sig, "PMEMOBJ", 8) != 0)
		return POG_ENOTPOOL;
	return 0;
}

/* The current commit: after a crash (the pool was not closed), the newer
 * of the two slots' only if everything it lists reached the pool. */
static int load_commit(pog_store *s)
{
	struct pog_commit_rec rec;
	uint64_t bno;
	int err = pog_commit_find(s, !s->env->super->clean, &rec, &bno);
	if (err)
		return err;
	s->env->committed = (struct pog_state){
		.obj_root = rec.obj_root,
		.log_root = rec.log_root,
		.next_ino = rec.next_ino,
		.nobjects = rec.nobjects,
		.dedup_root = rec.dedup_root,
		.logical_bytes = rec.logical_bytes,
	};
	s->env->next_ino = rec.next_ino;
	s->env->commit_id = rec.id;
	s->env->commit_bno = bno;
	s->env->list_counts = rec.lists == POG_LISTS_COUNTED;
	s->env->commit_time = (struct pog_time){rec.time_sec, rec.time_nsec};
	err = pog_pins_note_commit(s, rec.id, bno);
	if (!err)
		pog_session_begin(s);
	return err ? err : pog_history_load(s, &rec);
}

/* A segment slot names 8 MiB inside the pool file, 4 KiB aligned. */
static bool slot_in_pool(const struct pog_seg_slot *slot, uint64_t file_size)
{
	return slot->base % POG_BLOCK_SIZE == 0 && slot->base >= POG_BLOCK_SIZE &&
	       slot->base <= file_size && POG_SEG_BYTES <= file_size - slot->base;
}

static int load_segments(pog_store *s)
{
	struct pog_super *sb = s->env->super;
	struct stat st;
	if (fstat(s->env->lock_fd, &st) < 0)
		return -errno;
	uint64_t file_size = (uint64_t)st.st_size;
	if (sb->nsegments > sb->max_segments ||
	    sb->max_segments > file_size / POG_SEG_BYTES + 1 ||
	    sb->segtab.off > file_size ||
	    sb->max_segments * sizeof(struct pog_seg_slot) >
		    file_size - sb->segtab.off)
		return POG_EDAMAGED;
	s->env->segtab = pmemobj_direct(sb->segtab);
	if (!s->env->segtab)
		return POG_EDAMAGED;
	s->env->nsegs = sb->nsegments;
	s->env->segs = calloc(s->env->nsegs ? s->env->nsegs : 1, sizeof(*s->env->segs));
	if (!s->env->segs)
		return -ENOMEM;
	s->env->blocks_used = 0;
	for (uint64_t i = 0; i < s->env->nsegs; i++) {
		if (!slot_in_pool(&s->env->segtab[i], file_size))
			return POG_EDAMAGED;
		pog_seg_dram_init(s, i);
		struct pog_seg_header *h = (void *)s->env->segs[i].base;
		if (h->magic != POG_SEG_MAGIC || h->index != i)
			return POG_EDAMAGED;
		if (sb->clean) {
			memcpy(s->env->segs[i].used, h->bitmap, sizeof(h->bitmap));
			s->env->segs[i].used[0] |= 1;
			uint32_t n = 0;
			for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++)
				n += (uint32_t)__builtin_popcountll(s->env->segs[i].used[w]);
			s->env->segs[i].nused = n;
		}
		s->env->blocks_used += s->env->segs[i].nused;
	}
	return 0;
}

static int open_pool(pog_store *s, const char *path)
{
	int err = check_signature(s->env->lock_fd);
	if (!err) /* libpmemobj crashes on some damage: refuse it first */
		err = pog_pool_precheck(s->env->lock_fd, NULL, 0);
	if (err)
		return err;
	s->env->pop = pmemobj_open(path, POG_LAYOUT);
	if (!s->env->pop) {
		if (errno == EWOULDBLOCK)
			return POG_ELOCKED; /* libpmemobj's own flock */
		return errno == EINVAL ? POG_ENOTPOOL : -errno;
	}
	if (pmemobj_root_size(s->env->pop) < sizeof(struct pog_super))
		return POG_EDAMAGED;
	s->env->super = pmemobj_direct(pmemobj_root(s->env->pop, sizeof(struct pog_super)));
	if (s->env->super->magic != POG_SUPER_MAGIC)
		return POG_ENOTPOOL;
	if (s->env->super->format_version > POG_FORMAT_VERSION)
		return POG_ENEWER;
	if (s->env->super->block_size != POG_BLOCK_SIZE ||
	    s->env->super->seg_blocks != POG_SEG_BLOCKS)
		return POG_EDAMAGED;
	err = load_segments(s);
	if (err)
		return err;
	err = load_commit(s);
	if (err)
		return err;
	if (!s->env->super->clean) {
		err = pog_mark_committed(s, true);
		if (err)
			return err;
	}
	return 0;
}

uint32_t pog_format_version(void)
{
	return POG_FORMAT_VERSION;
}

int pog_pool_format(const char *path, uint32_t *version)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = check_signature(fd);
	close(fd);
	if (err)
		return err;
	PMEMobjpool *pop = pmemobj_open(path, POG_LAYOUT);
	if (!pop)
		return errno == EWOULDBLOCK ? POG_ELOCKED : POG_ENOTPOOL;
	err = POG_ENOTPOOL;
	if (pmemobj_root_size(pop) >= sizeof(struct pog_super)) {
		const struct pog_super *sb =
			pmemobj_direct(pmemobj_root(pop, sizeof(struct pog_super)));
		if (sb->magic == POG_SUPER_MAGIC) {
			*version = sb->format_version;
			err = 0;
		}
	}
	pmemobj_close(pop);
	return err;
}

/* Rebuild a format-2 pool's list trees and commit them (list.c says how). */
static int lists_upgrade_commit(pog_store *s)
{
	int err = pog_wrlock(s);
	if (err)
		return err;
	err = pog_lists_upgrade(s);
	if (!err)
		err = pog_commit_locked(s, "upgrade to format 3: lists count "
					   "their entries", NULL);
	if (err)
		pog_abort_locked(s);
	pog_unlock(s);
	return err;
}

int pog_open(const char *path, unsigned flags, pog_store **out)
{
	pog_store *s = store_new();
	if (!s)
		return -ENOMEM;
	s->env->open_flags = flags;
	bool ro = flags & POG_OPEN_READONLY;
	int err = 0;
	if (flags & POG_OPEN_NOLOCK) {
		s->env->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->env->lock_fd < 0)
			err = -errno;
	} else {
		err = lock_pool(s, path);
	}
	if (!err)
		err = open_pool(s, path);
	if (!err) /* before any commit: the upgrades below commit */
		s->env->is_pmem = pool_is_pmem(s->env->lock_fd);
	if (!err && !ro && s->env->super->clean) {
		s->env->super->clean = 0;
		pmemobj_persist(s->env->pop, &s->env->super->clean, sizeof(s->env->super->clean));
	}
	if (!err && !ro && s->env->commit_dropped)
		pog_commit_slot_drop(s);
	/* The new version is recorded first, one persisted store: format 4
	 * commits use both commit slots, which older pogfs would not read.
	 * Format 1 (no small nodes) is valid format 2 as it is; format 2's
	 * list trees are rebuilt with counts, in one commit (list.c). */
	if (!err && !ro && s->env->super->format_version < POG_FORMAT_VERSION) {
		s->env->super->format_version = POG_FORMAT_VERSION;
		pmemobj_persist(s->env->pop, &s->env->super->format_version,
				sizeof(s->env->super->format_version));
	}
	if (!err && !ro && !s->env->list_counts)
		err = lists_upgrade_commit(s);
	if (err) {
		store_free(s);
		return err;
	}
	*out = s;
	return 0;
}

/*
 * What libpmemobj takes for a segment (its 8 MiB and a block to align it,
 * in 256 KiB chunks: 33 of them) and for itself (pool header, lanes, heap
 * headers). Measured with libpmemobj 1.12: a 1 GiB pool holds 123
 * segments, 2 GiB 247, 8 GiB 992; seg_add lowers max_segments should one
 * more not fit after all.
 */
#define SEG_FOOTPRINT (POG_SEG_BYTES + ((uint64_t)256 << 10))
#define POOL_OVERHEAD ((uint64_t)9 << 20)

static int init_super(pog_store *s, uint64_t size)
{
	PMEMoid root = pmemobj_root(s->env->pop, sizeof(struct pog_super));
	if (OID_IS_NULL(root))
		return -ENOMEM;
	struct pog_super *sb = pmemobj_direct(root);
	uint64_t max = (size - POOL_OVERHEAD) / SEG_FOOTPRINT;
	int err = 0;
	TX_BEGIN(s->env->pop) {
		pmemobj_tx_add_range_direct(sb, sizeof(*sb));
		memset(sb, 0, sizeof(*sb));
		sb->magic = POG_SUPER_MAGIC;
		sb->format_version = POG_FORMAT_VERSION;
		sb->block_size = POG_BLOCK_SIZE;
		sb->seg_blocks = POG_SEG_BLOCKS;
		sb->pool_size = size;
		sb->max_segments = max;
		sb->segtab = pmemobj_tx_zalloc(max * sizeof(struct pog_seg_slot), 1);
		struct pog_time t = pog_now();
		sb->uuid[0] = (uint64_t)t.sec ^ ((uint64_t)getpid() << 32);
		sb->uuid[1] = t.nsec;
	} TX_ONABORT {
		err = -errno ? -errno : -ENOMEM;
	} TX_END
	if (err)
		return err;
	s->env->super = sb;
	return load_segments(s);
}

int pog_create(const char *path, uint64_t size, pog_store **out)
{
	if (!size)
		size = POG_DEFAULT_POOL_SIZE;
	if (size < POG_MIN_POOL_SIZE)
		return -EINVAL;
	struct stat st;
	if (stat(path, &st) == 0)
		return -EEXIST;
	pog_store *s = store_new();
	if (!s)
		return -ENOMEM;
	int err = 0;
	s->env->pop = pmemobj_create(path, POG_LAYOUT, size, 0644);
	if (!s->env->pop)
		err = -errno;
	if (!err)
		err = lock_pool(s, path);
	if (!err) {
		s->env->is_pmem = pool_is_pmem(s->env->lock_fd);
		err = init_super(s, size);
	}
	if (!err)
		err = pog_root_init(s);
	if (!err)
		err = pog_commit(s, "create", NULL);
	if (err) {
		store_free(s);
		unlink(path);
		return err;
	}
	*out = s;
	return 0;
}

/* Write the exact free-space bitmaps and mark the pool clean. */
static void write_bitmaps(pog_store *s)
{
	for (uint64_t i = 0; i < s->env->nsegs; i++) {
		struct pog_seg_header *h = (void *)s->env->segs[i].base;
		memcpy(h->bitmap, s->env->segs[i].used, sizeof(h->bitmap));
		pmemobj_flush(s->env->pop, h, sizeof(*h));
	}
	pmemobj_drain(s->env->pop);
	s->env->super->clean = 1;
	pmemobj_persist(s->env->pop, &s->env->super->clean, sizeof(s->env->super->clean));
}

/* Remember in the superblock that a close discarded n staged changes. */
static void record_discard(pog_store *s, uint64_t n)
{
	struct pog_super *sb = s->env->super;

	sb->discarded_changes = n;
	sb->discarded_time = pog_now().sec;
	pmemobj_persist(s->env->pop, &sb->discarded_changes,
			sizeof(sb->discarded_changes) + sizeof(sb->discarded_time));
}

/* Staged changes go, counted in the pool when it is writable (lock held). */
static void discard_locked(pog_store *s, int staged)
{
	if ((s->env->open_flags & POG_OPEN_READONLY) || s->env->fatal)
		return;
	if (staged > 0)
		record_discard(s, (uint64_t)staged);
	pog_abort_locked(s);
}

int pog_discard(pog_store *s)
{
	int staged = (int)pog_staged_count(s);
	pthread_rwlock_wrlock(&s->env->lock);
	discard_locked(s, staged);
	pthread_rwlock_unlock(&s->env->lock);
	return staged;
}

int pog_close(pog_store *s, unsigned flags)
{
	if (!s)
		return 0;
	int staged = (int)pog_staged_count(s);
	struct pog_env *env = s->env;
	pthread_rwlock_wrlock(&env->lock);
	discard_locked(s, staged);
	if (env->nsessions > 1) {
		/* Not the last session: its transaction goes, the pool stays. */
		session_free(s);
		pog_deferred_release(env->sessions);
		pthread_rwlock_unlock(&env->lock);
		return staged;
	}
	pthread_rwlock_unlock(&env->lock);
	if (!(env->open_flags & POG_OPEN_READONLY) && !env->fatal) {
		if (!(flags & POG_CLOSE_NOGC))
			pog_gc(s, NULL);
		pthread_rwlock_wrlock(&env->lock);
		write_bitmaps(s);
		pthread_rwlock_unlock(&env->lock);
	}
	store_free(s);
	return staged;
}
