/* moved.c - what differs between a session's view before and after it
 * moves (abort, a commit onto newer commits), for the kernel's caches:
 * the objects whose records differ and the map entries that differ,
 * found by comparing the two object tables (and the changed maps'
 * trees) with pog_bt_diff, so in time proportional to what changed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* More than this and the daemon is told to drop every cache instead. */
#define MOVED_MAX 1000000u

struct collect {
	pog_store *s;
	struct pog_moved *m;
	uint64_t dir; /* the map whose entries are compared */
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*v, c * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static bool moved_full(const struct pog_moved *m)
{
	return m->ninos + m->nlists + m->nnames >= MOVED_MAX;
}

static int add_ino(struct pog_moved *m, uint64_t **v, size_t *n, size_t *cap,
		   uint64_t ino)
{
	if (moved_full(m))
		return -E2BIG;
	int err = grow((void **)v, cap, *n, sizeof(**v));
	if (!err)
		(*v)[(*n)++] = ino;
	return err;
}

/* A map entry present in a, in b, or different in both. */
static int moved_entry(void *ctx, uint64_t key, const void *a, uint16_t alen,
		       const void *b, uint16_t blen)
{
	struct collect *c = ctx;
	struct pog_moved *m = c->m;
	const void *v = a ? a : b;
	uint16_t vlen = a ? alen : blen;
	char name[256]; /* a file name (NAME_MAX) */
	if (vlen < 8)
		return POG_ECORRUPT;
	ssize_t n = pog_entry_name(POG_MAP, key, v, vlen, name, sizeof(name));
	if (n < 0)
		return (int)n;
	if (moved_full(m))
		return -E2BIG;
	int err = grow((void **)&m->names, &m->names_cap, m->nnames,
		       sizeof(*m->names));
	char *copy = err ? NULL : strndup(name, (size_t)n);
	if (!copy)
		return -ENOMEM;
	struct pog_moved_name *e = &m->names[m->nnames++];
	e->dir = c->dir;
	memcpy(&e->child, v, 8);
	e->removed = b == NULL;
	e->name = copy;
	e->len = (size_t)n;
	return 0;
}

/* An object whose record differs between the two views. */
static int moved_object(void *ctx, uint64_t ino, const void *a, uint16_t alen,
			const void *b, uint16_t blen)
{
	struct collect *c = ctx;
	struct pog_moved *m = c->m;
	int err = add_ino(m, &m->inos, &m->ninos, &m->inos_cap, ino);
	struct pog_inode ia, ib;
	if (err || !a)
		return err; /* new: the kernel knows nothing under it */
	err = pog_inode_copy(a, alen, &ia);
	if (!err && b)
		err = pog_inode_copy(b, blen, &ib);
	else if (!err) /* gone: every name under it went */
		ib = (struct pog_inode){.type = ia.type, .content = 0};
	if (err || ia.type != ib.type || ia.content == ib.content)
		return err;
	if (ia.type == POG_LIST) /* names are ranks: all of them */
		return add_ino(m, &m->lists, &m->nlists, &m->lists_cap, ino);
	if (ia.type != POG_MAP)
		return 0;
	struct collect inner = {.s = c->s, .m = m, .dir = ino};
	return pog_bt_diff(c->s, ia.content, ib.content, moved_entry, &inner);
}

void pog_moved_collect(pog_store *s, const struct pog_state *from,
		       const struct pog_state *to)
{
	if (!s->track_moves || s->moved.all || from->obj_root == to->obj_root)
		return;
	struct collect c = {.s = s, .m = &s->moved};
	if (pog_bt_diff(s, from->obj_root, to->obj_root, moved_object, &c))
		s->moved.all = true; /* the daemon drops every cache */
}

void pog_moved_clear(struct pog_moved *m)
{
	for (size_t i = 0; i < m->nnames; i++)
		free(m->names[i].name);
	free(m->names);
	free(m->inos);
	free(m->lists);
	memset(m, 0, sizeof(*m));
}

void pog_track_moves(pog_store *s, bool on)
{
	pthread_rwlock_wrlock(&s->env->lock);
	s->track_moves = on;
	if (!on)
		pog_moved_clear(&s->moved);
	pthread_rwlock_unlock(&s->env->lock);
}

void pog_take_moved(pog_store *s, struct pog_moved *out)
{
	pthread_rwlock_wrlock(&s->env->lock);
	*out = s->moved;
	memset(&s->moved, 0, sizeof(s->moved));
	pthread_rwlock_unlock(&s->env->lock);
}
