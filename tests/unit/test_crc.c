/* test_crc.c - the store's CRC-32 (PCLMULQDQ where the CPU has it) gives
 * zlib's crc32 for every length, alignment and starting value: pages and
 * nodes written before it came stay readable. */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "store_int.h"

static unsigned char *random_bytes(size_t n, unsigned seed)
{
	unsigned char *b = malloc(n);
	uint64_t x = 0x9E3779B97F4A7C15ULL ^ seed;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	return b;
}

/* Every length up to two pages and a bit, at unaligned starts too. */
static void test_lengths(void **state)
{
	(void)state;
	unsigned char *b = random_bytes(3 * 4096, 1);

	for (size_t len = 0; len <= 2 * 4096 + 100; len++)
		for (size_t off = 0; off < 4; off++) {
			uint32_t want = (uint32_t)crc32(0, b + off, (uInt)len);
			uint32_t got = pog_crc32(b + off, len);
			if (got != want)
				fail_msg("len %zu off %zu: %08x, zlib %08x", len,
					 off, got, want);
		}
	free(b);
}

/* Continuing a CRC (as node CRCs do around their crc field). */
static void test_update(void **state)
{
	(void)state;
	unsigned char *b = random_bytes(1 << 20, 2);

	for (size_t cut = 0; cut < 300; cut += 7) {
		uint32_t head = (uint32_t)crc32(0, b, (uInt)cut);
		uint32_t want = (uint32_t)crc32(head, b + cut, (1u << 20) - (uInt)cut);
		assert_int_equal(pog_crc32_update(head, b + cut, (1u << 20) - cut),
				 want);
	}
	free(b);
}

/* Pages of one byte value, zeros and all-ones included. */
static void test_patterns(void **state)
{
	(void)state;
	unsigned char page[4096];

	for (int v = 0; v < 256; v++) {
		memset(page, v, sizeof(page));
		assert_int_equal(pog_crc32(page, sizeof(page)),
				 (uint32_t)crc32(0, page, sizeof(page)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
