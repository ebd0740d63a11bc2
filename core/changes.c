/* changes.c - what a session's transaction changed: the change table. */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/* ---- change tracking ------------------------------------------------------ */

/* Made in this transaction (identities only grow, never come back). */
bool pog_ino_new(const pog_store *s, uint64_t ino)
{
	return ino >= s->base.next_ino;
}

void pog_note_change(pog_store *s, uint64_t ino, unsigned kind)
{
	/* A new object is listed by its own A line or its directory's. */
	if (kind == POG_CHG_MODIFIED && pog_ino_new(s, ino) &&
	    !pog_map64_find(&s->changes, ino))
		return;
	uint64_t *v = pog_map64_get(&s->changes, ino);
	if (v)
		*v |= kind;
}

void pog_note_added(pog_store *s, uint64_t ino, uint64_t dir)
{
	if (!(s->importing && pog_ino_new(s, dir)))
		pog_note_change(s, ino, POG_CHG_ADDED);
}

void pog_note_removed(pog_store *s, uint64_t ino)
{
	uint64_t *v = pog_map64_find(&s->changes, ino);
	bool edited = v && (*v & POG_CHG_EDITED); /* stands for a committed one */
	if ((v && (*v & POG_CHG_ADDED)) || (pog_ino_new(s, ino) && !edited)) {
		pog_map64_del(&s->changes, ino);
		return;
	}
	pog_map64_del(&s->changes, ino);
	char path[4096];
	ssize_t n = pog_path_locked(s, &s->staged, ino, path, sizeof(path));
	if (n < 0 || (size_t)n >= sizeof(path))
		snprintf(path, sizeof(path), ".pog/objects/%llu",
			 (unsigned long long)ino);
	else
		path[n] = '\0';
	if (s->nremoved == s->removed_cap) {
		size_t cap = s->removed_cap ? s->removed_cap * 2 : 16;
		char **p = realloc(s->removed_paths, cap * sizeof(*p));
		if (!p)
			return;
		s->removed_paths = p;
		s->removed_cap = cap;
	}
	char *dup = strdup(path);
	if (dup)
		s->removed_paths[s->nremoved++] = dup;
}

uint64_t pog_staged_count(pog_store *s)
{
	pthread_rwlock_rdlock(&s->env->lock);
	uint64_t n = s->changes.n + s->nremoved;
	pthread_rwlock_unlock(&s->env->lock);
	return n;
}
