/* report.c - what a commit changed, with the new Merkle hashes, for watchers (pog_commit_report). */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/*
 * Runs in pog_commit_locked right after the commit point, before the
 * transaction's change table is cleared: the staged state is the new
 * commit, and its hash cache holds what was computed before (only the
 * paths from the changed objects up are hashed again). Nothing here may
 * fail the commit: out of memory marks the report incomplete.
 */
void pog_report_collect(pog_store *s)
{
	struct pog_commit_report *r = s->report;
	struct pog_change_line *lines = NULL;
	size_t n = 0;

	if (s->report_npaths) {
		r->paths = calloc(s->report_npaths, sizeof(*r->paths));
		if (!r->paths)
			r->incomplete = 1;
	}
	for (size_t i = 0; r->paths && i < s->report_npaths; i++) {
		const char *p = s->report_paths[i];
		uint64_t ino = POG_ROOT_INO;
		int err = p[0] ? pog_resolve_locked(s, &s->staged, POG_ROOT_INO,
						    p, &ino) : 0;
		if (err == 0 && pog_hash_locked(s, ino, &r->paths[i].hash) == 0)
			r->paths[i].found = 1;
	}
	if (pog_change_lines(s, &lines, &n) < 0) {
		r->incomplete = 1;
		return;
	}
	r->changes = calloc(n ? n : 1, sizeof(*r->changes));
	if (!r->changes) {
		r->incomplete = 1;
		for (size_t i = 0; i < n; i++)
			free(lines[i].path);
		free(lines);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct pog_change *c = &r->changes[i];
		c->kind = lines[i].kind;
		c->ino = lines[i].ino;
		c->path = lines[i].path;
		if (c->ino && pog_hash_locked(s, c->ino, &c->hash) == 0)
			c->has_hash = 1;
	}
	r->nchanges = n;
	free(lines);
}

void pog_commit_report_free(struct pog_commit_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nchanges; i++)
		free(r->changes[i].path);
	free(r->changes);
	free(r->paths);
	free(r);
}
