/* commitpoint.c - where commits are published and found again: the two
 * commit slots of the superblock, and the list of what a small commit
 * wrote, which the open checks after a crash (format.h says why). */
#include <errno.h>
#include <string.h>

#include "store_int.h"

/* A small commit lists at most this many blocks and slots: the CRC of
 * what it lists costs less than the flush it saves. */
#define FRESH_LIST_MAX 64u

static uint64_t *slot_at(const pog_store *s, unsigned slot)
{
	return slot ? &s->env->super->commit_block2 : &s->env->super->commit_block;
}

uint64_t *pog_commit_slot_next(pog_store *s)
{
	return slot_at(s, !s->env->commit_slot);
}

uint64_t pog_commit_before(const pog_store *s)
{
	uint64_t bno = *slot_at(s, !s->env->commit_slot);
	struct pog_commit_rec rec;
	if (!bno || pog_commit_rec_read(s, bno, &rec) || rec.id >= s->env->commit_id)
		return 0;
	return bno;
}

void pog_commit_slot_taken(pog_store *s)
{
	s->env->commit_slot = !s->env->commit_slot;
}

/* ---- the list of what a commit wrote --------------------------------- */

struct fresh_fill {
	struct pog_fresh_ent *ents;
	uint32_t n;
};

static void fill_one(const pog_store *s, struct fresh_fill *f, uint64_t addr)
{
	uint32_t len = pog_node_size(addr);
	f->ents[f->n++] = (struct pog_fresh_ent){
		.addr = addr,
		.crc = pog_crc32(pog_node(s, addr), len),
		.len = len,
	};
}

/* Is bno a small-slot block that the next transaction goes on filling?
 * Then only its slots handed out so far are the commit's (*cls, *n); the
 * rest may be written before another commit. */
static bool filling(const pog_store *s, uint64_t bno, unsigned *cls, unsigned *n)
{
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		if (s->small[c].bno == bno) {
			*cls = c;
			*n = s->small[c].next;
			return true;
		}
	return false;
}

/* How many entries the list of this transaction takes. */
static uint64_t entries(const pog_store *s, size_t nslots)
{
	uint64_t n = (s->fresh_count ? s->fresh_count - 1 : 0) + nslots;
	for (unsigned c = 0; c < POG_SMALL_CLASSES; c++)
		if (s->small[c].bno && pog_bno_fresh(s, s->small[c].bno))
			n += s->small[c].next;
	return n;
}

/* This session's fresh blocks but the record's own (cbno), in order. */
static void fill_blocks(const pog_store *s, struct fresh_fill *f, uint64_t cbno)
{
	for (uint64_t i = s->fresh_min_seg; i <= s->fresh_max_seg; i++) {
		for (unsigned w = 0; w < POG_WORDS_PER_SEG; w++) {
			uint64_t bits = s->tx[i].fresh[w];
			while (bits) {
				unsigned b = (unsigned)__builtin_ctzll(bits), c, n;
				bits &= bits - 1;
				uint64_t bno = i * POG_SEG_BLOCKS + w * 64 + b;
				if (filling(s, bno, &c, &n)) {
					for (unsigned k = 0; k < n; k++)
						fill_one(s, f, pog_small_addr(bno, c, k));
				} else if (bno != cbno) {
					fill_one(s, f, bno);
				}
			}
		}
	}
}

int pog_fresh_list(pog_store *s, uint64_t cbno, struct pog_commit_rec *rec,
		   void *block, const uint64_t *slots, size_t nslots)
{
	rec->fresh_count = 0;
	rec->fresh_crc = 0;
	uint64_t n = entries(s, nslots);
	size_t used = sizeof(*rec) +
		      rec->history_count * sizeof(struct pog_history_ent);
	if (n > FRESH_LIST_MAX ||
	    used + n * sizeof(struct pog_fresh_ent) > POG_BLOCK_SIZE)
		return -E2BIG;
	struct fresh_fill f = {.ents = (void *)((char *)block + used)};
	if (s->fresh_count)
		fill_blocks(s, &f, cbno);
	for (size_t i = 0; i < nslots; i++)
		fill_one(s, &f, slots[i]);
	rec->fresh_count = f.n;
	rec->fresh_crc = pog_crc32(f.ents, f.n * sizeof(*f.ents));
	return 0;
}

/* ---- finding the current commit --------------------------------------- */

static const struct pog_fresh_ent *rec_list(const pog_store *s, uint64_t bno,
					     const struct pog_commit_rec *rec)
{
	return (const void *)((const char *)pog_block(s, bno) + sizeof(*rec) +
			      rec->history_count * sizeof(struct pog_history_ent));
}

int pog_commit_listed(const pog_store *s,
		      int (*fn)(void *ctx, uint64_t bno), void *ctx)
{
	struct pog_commit_rec rec;
	int err = pog_commit_rec_read(s, s->env->commit_bno, &rec);
	if (err || !rec.fresh_count)
		return err;
	const struct pog_fresh_ent *e = rec_list(s, s->env->commit_bno, &rec);
	for (uint32_t i = 0; !err && i < rec.fresh_count; i++)
		if (pog_node_valid(s, e[i].addr))
			err = fn(ctx, pog_node_bno(e[i].addr));
	return err;
}

/* Did every block and slot the record lists reach the pool? */
static bool rec_complete(const pog_store *s, uint64_t bno,
			 const struct pog_commit_rec *rec)
{
	const struct pog_fresh_ent *e = rec_list(s, bno, rec);
	for (uint32_t i = 0; i < rec->fresh_count; i++) {
		uint64_t addr = e[i].addr;
		uint32_t len = pog_node_size(addr);
		if (!pog_node_valid(s, addr) || e[i].len != len ||
		    pog_crc32(pog_node(s, addr), len) != e[i].crc)
			return false;
	}
	return true;
}

int pog_commit_find(pog_store *s, bool after_crash, struct pog_commit_rec *rec,
		    uint64_t *bno_out)
{
	struct pog_commit_rec r[2];
	uint64_t bno[2];
	bool ok[2];
	for (unsigned i = 0; i < 2; i++) {
		bno[i] = *slot_at(s, i);
		ok[i] = bno[i] && pog_commit_rec_read(s, bno[i], &r[i]) == 0;
		/* closed cleanly: both records were whole */
		if (bno[i] && !ok[i] && !after_crash)
			return POG_EDAMAGED;
	}
	unsigned top = ok[1] && (!ok[0] || r[1].id > r[0].id);
	if (!ok[top])
		return POG_EDAMAGED;
	/* Only the newer commit can have been cut short by a crash: the
	 * older one was whole before the newer one began. */
	if (after_crash && !rec_complete(s, bno[top], &r[top])) {
		if (!ok[!top] || r[!top].id >= r[top].id)
			return POG_EDAMAGED;
		top = !top;
		s->env->commit_dropped = r[!top].id;
	}
	s->env->commit_slot = top;
	*rec = r[top];
	*bno_out = bno[top];
	return 0;
}

void pog_commit_slot_drop(pog_store *s)
{
	uint64_t *slot = pog_commit_slot_next(s);
	*slot = 0;
	pmemobj_persist(s->env->pop, slot, sizeof(*slot));
}
