/* util.c - small containers (vector, u64 map), hashing, CRC and time. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "store_int.h"

int pog_vec_push(struct pog_vec *vec, uint64_t x)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		uint64_t *v = realloc(vec->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = x;
	return 0;
}

void pog_vec_release(struct pog_vec *vec)
{
	free(vec->v);
	memset(vec, 0, sizeof(*vec));
}

static size_t slot_of(const struct pog_map64 *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 7) & (m->cap - 1);
}

uint64_t *pog_map64_find(const struct pog_map64 *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return &m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

static int map64_grow(struct pog_map64 *m)
{
	struct pog_map64 bigger = {0};
	bigger.cap = m->cap ? m->cap * 2 : 64;
	bigger.keys = calloc(bigger.cap, sizeof(uint64_t));
	bigger.vals = calloc(bigger.cap, sizeof(uint64_t));
	if (!bigger.keys || !bigger.vals) {
		free(bigger.keys);
		free(bigger.vals);
		return -ENOMEM;
	}
	pog_map64_foreach(m, i) {
		size_t j = slot_of(&bigger, m->keys[i]);
		while (bigger.keys[j])
			j = (j + 1) & (bigger.cap - 1);
		bigger.keys[j] = m->keys[i];
		bigger.vals[j] = m->vals[i];
	}
	bigger.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = bigger;
	return 0;
}

uint64_t *pog_map64_get(struct pog_map64 *m, uint64_t key)
{
	uint64_t *v = pog_map64_find(m, key);
	if (v)
		return v;
	if ((m->n + 1) * 4 > m->cap * 3 && map64_grow(m))
		return NULL;
	size_t i = slot_of(m, key);
	while (m->keys[i])
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = key;
	m->vals[i] = 0;
	m->n++;
	return &m->vals[i];
}

void pog_map64_del(struct pog_map64 *m, uint64_t key)
{
	uint64_t *v = pog_map64_find(m, key);
	if (!v)
		return;
	size_t i = (size_t)(v - m->vals);
	m->keys[i] = 0;
	m->n--;
	/* Re-insert the rest of the cluster so probes stay unbroken. */
	for (size_t j = (i + 1) & (m->cap - 1); m->keys[j];
	     j = (j + 1) & (m->cap - 1)) {
		uint64_t k = m->keys[j], val = m->vals[j];
		m->keys[j] = 0;
		size_t t = slot_of(m, k);
		while (m->keys[t])
			t = (t + 1) & (m->cap - 1);
		m->keys[t] = k;
		m->vals[t] = val;
	}
}

void pog_map64_release(struct pog_map64 *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* FNV-1a with a final avalanche (splitmix64's finaliser). */
uint64_t pog_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

uint32_t pog_crc32(const void *data, size_t len)
{
	return pog_crc32_update(0, data, len);
}

uint32_t pog_node_crc(const void *node, size_t size)
{
	static const unsigned char zero[4];
	const unsigned char *b = node;
	size_t at = offsetof(struct pog_node_hdr, crc);
	uLong crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, b, (uInt)at);
	crc = crc32(crc, zero, sizeof(zero));
	return pog_crc32_update((uint32_t)crc, b + at + 4, size - at - 4);
}

struct pog_time pog_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (struct pog_time){.sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec};
}
