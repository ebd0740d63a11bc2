/* coherence.h - telling the kernel that a session's view moved: names removed (inotify sees IN_DELETE), names and inodes changed. */
#ifndef POGFS_COHERENCE_H
#define POGFS_COHERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inode_table.h"

struct pogfs;

/*
 * Tell the kernel what moved under it, with no lock held (the kernel may
 * wait for requests other threads of the daemon serve):
 * - removed: names that are gone, each with the inode the kernel was
 *   given for it: fuse_lowlevel_notify_delete, so the dentry is deleted
 *   (its inode loses its links) and inotify watchers of that file or
 *   directory see IN_DELETE_SELF, deepest names first (Linux, 6.x too,
 *   gives the parent directory's watchers no IN_DELETE for it: the
 *   kernel deletes the dentry without fsnotify);
 * - changed: names that may point elsewhere now (inval_entry);
 * - inos: inodes whose attributes or content changed (inval_inode).
 * A session's view moves at abort, and (sessions) when it follows
 * another session's commit: both call this.
 */
void pogfs_tell_kernel(struct pogfs *fs, const struct inode_dentry *removed,
		       size_t nremoved, const struct inode_dentry *changed,
		       size_t nchanged, const uint64_t *inos, size_t ninos);

/*
 * The staged view moved (abort): sort the names the kernel was given
 * (v, from inode_table_take) into those the view still has for the same
 * inode and those it no longer has, by looking each up in the view as it
 * is now, and tell the kernel (pogfs_tell_kernel). Costs a lookup per
 * name the kernel holds.
 */
void pogfs_view_moved(struct pogfs *fs, const struct inode_inval *v);

/* The session's view moved (abort, a commit onto others' commits, -o
 * follow): tell the kernel what the core found different between the two
 * views (pog_take_moved), in time proportional to that. false: the core
 * could not say (the caller drops every cache). */
bool pogfs_tell_moved(struct pogfs *fs);

#endif /* POGFS_COHERENCE_H */
