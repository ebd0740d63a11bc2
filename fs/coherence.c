/* coherence.c - telling the kernel that a session's view moved: notify_delete for removed names, inval for the rest. */
#include "pogfs.h"
#include "coherence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Delete the removed names deepest first: the kernel deletes a
 * directory's dentry after pruning its unused children from the cache,
 * and a child pruned that way is never deleted (its inode keeps its
 * link count, and a watch on it hears nothing). Each round deletes the
 * names whose inode is no parent of a name still to delete. Returns
 * false when memory ran out (the caller invalidates what is left).
 */
static bool delete_deepest_first(struct pogfs *fs,
				 const struct inode_dentry *removed,
				 size_t nremoved, unsigned char *done)
{
	uint64_t *parents = malloc(nremoved * sizeof(*parents));
	size_t left = nremoved;

	if (!parents)
		return false;
	while (left) {
		size_t np = 0, deleted = 0;
		for (size_t i = 0; i < nremoved; i++)
			if (!done[i])
				parents[np++] = removed[i].parent;
		qsort(parents, np, sizeof(*parents), cmp_u64);
		for (size_t i = 0; i < nremoved; i++) {
			const struct inode_dentry *d = &removed[i];
			if (done[i] || bsearch(&d->child, parents, np,
					       sizeof(*parents), cmp_u64))
				continue;
			if (fuse_lowlevel_notify_delete(fs->se, d->parent, d->child,
							d->name, d->len) < 0)
				/* not the inode it knows, or no dentry */
				fuse_lowlevel_notify_inval_entry(fs->se, d->parent,
								 d->name, d->len);
			done[i] = 1;
			deleted++;
		}
		left -= deleted;
		if (!deleted)
			break; /* a cycle (cannot be): the rest is invalidated */
	}
	free(parents);
	return true;
}

void pogfs_tell_kernel(struct pogfs *fs, const struct inode_dentry *removed,
		       size_t nremoved, const struct inode_dentry *changed,
		       size_t nchanged, const uint64_t *inos, size_t ninos)
{
	unsigned char *done = nremoved ? calloc(nremoved, 1) : NULL;

	if (done)
		delete_deepest_first(fs, removed, nremoved, done);
	for (size_t i = 0; i < nremoved; i++)
		if (!done || !done[i])
			fuse_lowlevel_notify_inval_entry(fs->se, removed[i].parent,
							 removed[i].name,
							 removed[i].len);
	free(done);
	for (size_t i = 0; i < nchanged; i++)
		fuse_lowlevel_notify_inval_entry(fs->se, changed[i].parent,
						 changed[i].name, changed[i].len);
	for (size_t i = 0; i < ninos; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, inos[i], 0, 0);
}

/* Does the view still give this name to the same inode? */
static bool name_still_there(struct pogfs *fs, const struct inode_dentry *d)
{
	char key[POG_KEY_MAX + 1];
	struct pog_attr a;
	ssize_t n;

	if (ino_is_virtual(d->parent))
		return true; /* .pog/objects/N: invalidated, not deleted */
	n = pog_name_unescape(d->name, d->len, key, sizeof(key) - 1);
	if (n < 0)
		return true;
	key[n] = '\0';
	if (pog_lookup(fs->store, d->parent, key, (size_t)n, &a) != 0)
		return false;
	return a.ino == d->child;
}

void pogfs_view_moved(struct pogfs *fs, const struct inode_inval *v)
{
	struct inode_dentry *removed = NULL, *changed = NULL;
	size_t nremoved = 0, nchanged = 0;

	if (v->nnames) {
		removed = malloc(v->nnames * sizeof(*removed));
		changed = malloc(v->nnames * sizeof(*changed));
	}
	if (v->nnames && (!removed || !changed)) {
		/* out of memory: every name invalidated, none deleted */
		pogfs_tell_kernel(fs, NULL, 0, v->names, v->nnames, v->inos,
				  v->ninos);
		goto out;
	}
	for (size_t i = 0; i < v->nnames; i++) {
		if (!v->names[i].parent)
			continue;
		if (name_still_there(fs, &v->names[i]))
			changed[nchanged++] = v->names[i];
		else
			removed[nremoved++] = v->names[i];
	}
	pogfs_tell_kernel(fs, removed, nremoved, changed, nchanged, v->inos,
			  v->ninos);
out:
	free(removed);
	free(changed);
}

static int want_list(void *ctx, uint64_t parent)
{
	const struct pog_moved *m = ctx;

	return bsearch(&parent, m->lists, m->nlists, sizeof(*m->lists),
		       cmp_u64) != NULL;
}

/* The names the kernel was given in the lists whose ranks moved. */
static void tell_lists(struct pogfs *fs, struct pog_moved *m)
{
	struct inode_inval *v = NULL;

	if (!m->nlists)
		return;
	qsort(m->lists, m->nlists, sizeof(*m->lists), cmp_u64);
	if (inode_table_take_names(&fs->inodes, want_list, m, &v) < 0)
		return; /* out of memory: the list inodes are told below */
	pogfs_view_moved(fs, v);
	free(v);
}

bool pogfs_tell_moved(struct pogfs *fs)
{
	struct pog_moved m;
	struct inode_dentry *d = NULL;
	size_t nremoved = 0, nchanged = 0, ninos = 0;

	pog_take_moved(fs->store, &m);
	if (m.nnames)
		d = malloc(m.nnames * sizeof(*d));
	if (m.all || (m.nnames && !d)) {
		free(d);
		pog_moved_clear(&m);
		return false;
	}
	/* removed names first in d, the changed ones from its end */
	for (size_t i = 0; i < m.nnames; i++) {
		const struct pog_moved_name *n = &m.names[i];
		struct inode_dentry e = {
			.parent = n->dir, .child = n->child,
			.name = n->name, .len = n->len,
		};
		inode_table_unname(&fs->inodes, n->dir, n->name, n->len);
		if (n->removed)
			d[nremoved++] = e;
		else
			d[m.nnames - ++nchanged] = e;
	}
	/* the inodes the kernel holds, kept in place */
	for (size_t i = 0; i < m.ninos; i++)
		if (m.inos[i] == POG_ROOT_INO || /* never in the table */
		    inode_table_has(&fs->inodes, m.inos[i]))
			m.inos[ninos++] = m.inos[i];
	tell_lists(fs, &m);
	pogfs_tell_kernel(fs, d, nremoved, d + m.nnames - nchanged, nchanged,
			  m.inos, ninos);
	free(d);
	pog_moved_clear(&m);
	return true;
}
