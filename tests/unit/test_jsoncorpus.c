/* test_jsoncorpus.c - the JSON conformance corpus (tests/json-corpus) through
 * the importer, pogfs's own forms only in a marked export, ids held to
 * integers, and export memory bounded for a sparse multi-GiB string and a
 * big map. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define POOL_SIZE ((uint64_t)256 << 20)

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	char *buf;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .json files of the corpus directory sub, sorted; NULL-terminated. */
static char **corpus_files(const char *sub, char **dir_out)
{
	const char *root = getenv("POG_JSON_CORPUS");
	char *dir;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!root)
		root = "../tests/json-corpus";
	dir = tu_join(root, sub);
	d = opendir(dir);
	if (!d)
		fail_msg("no corpus at %s (set POG_JSON_CORPUS)", dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		names = realloc(names, (n + 2) * sizeof(*names));
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	assert_true(n > 0);
	qsort(names, n, sizeof(*names), cmp_names);
	names[n] = NULL;
	*dir_out = dir;
	return names;
}

static void free_names(char **names, char *dir)
{
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
	free(names);
	free(dir);
}

/*
 * A document that must be accepted: it imports under a name, exports as
 * plain JSON (no mark: nothing in it needs pogfs's forms), and that export
 * imports and exports again to the same bytes.
 */
static void accept_one(pog_store *s, const char *path, const char *name)
{
	struct pog_json_error err;
	struct tu_buf one, two;
	size_t len;
	char *doc = read_file(path, &len);
	int rc = pog_import(s, POG_ROOT_INO, "d", 1, doc, len, 0, 0, &err);

	if (rc)
		fail_msg("%s: refused: %s at %d:%d: %s", name, tu_err(rc),
			 err.line, err.column, err.message);
	one = tu_export(s, tu_lookup(s, POG_ROOT_INO, "d"));
	if (strncmp(one.data, "{\"$pogfs\":2,\"root\":", 19) == 0)
		fail_msg("%s: a plain document exports marked: %.200s", name,
			 one.data);
	rc = pog_import(s, POG_ROOT_INO, "e", 1, one.data, one.len, 0, 0, &err);
	if (rc)
		fail_msg("%s: its export is refused: %d:%d: %s", name, err.line,
			 err.column, err.message);
	two = tu_export(s, tu_lookup(s, POG_ROOT_INO, "e"));
	tu_assert_same_doc(&one, &two, name);
	free(one.data);
	free(two.data);
	free(doc);
	assert_ok(pog_abort(s));
}

/* A document that must be refused: -EINVAL with a line and column, and
 * nothing staged, whether imported under a name or into the root. */
static void refuse_one(pog_store *s, const char *path, const char *name)
{
	struct pog_json_error err;
	size_t len;
	char *doc = read_file(path, &len);
	int rc = pog_import(s, POG_ROOT_INO, "d", 1, doc, len, 0, 0, &err);

	print_message("    %-40s %d:%d %s\n", name, err.line, err.column,
		      err.message);
	if (rc != -EINVAL)
		fail_msg("%s: pog_import = %d (%s), expected EINVAL", name, rc,
			 tu_err(rc));
	if (err.line < 1 || err.column < 1)
		fail_msg("%s: no line and column (%d:%d)", name, err.line,
			 err.column);
	assert_int_equal(pog_staged_count(s), 0);
	assert_rc(pog_import(s, POG_ROOT_INO, NULL, 0, doc, len, 0, 0, &err),
		  -EINVAL);
	assert_int_equal(pog_staged_count(s), 0);
	free(doc);
}

static void run_dir(const char *sub, int expect)
{
	struct tu_ctx ctx;
	char *dir, **names = corpus_files(sub, &dir);
	size_t n = 0;

	tu_setup(&ctx, TU_SHM_BASE, POOL_SIZE);
	for (size_t i = 0; names[i]; i++, n++) {
		char *path = tu_join(dir, names[i]);
		/* implementation-defined cases say what pogfs does */
		int want = expect ? expect
			: strncmp(names[i], "accept_", 7) == 0 ? 1
			: strncmp(names[i], "refuse_", 7) == 0 ? -1 : 0;
		if (!want)
			fail_msg("%s/%s: name it accept_ or refuse_", sub, names[i]);
		if (want > 0)
			accept_one(ctx.s, path, names[i]);
		else
			refuse_one(ctx.s, path, names[i]);
		free(path);
	}
	print_message("    %zu documents of %s/\n", n, sub);
	tu_assert_fsck_clean(ctx.s);
	free_names(names, dir);
	tu_teardown(&ctx);
}

static void test_corpus_valid(void **state)
{
	(void)state;
	run_dir("valid", 1);
}

static void test_corpus_invalid(void **state)
{
	(void)state;
	run_dir("invalid", -1);
}

static void test_corpus_implementation(void **state)
{
	(void)state;
	run_dir("implementation", 0);
}

/* ---- the values, for the documents that say most ------------------------------ */

static uint64_t import_file(pog_store *s, const char *sub, const char *file,
			    const char *name)
{
	const char *root = getenv("POG_JSON_CORPUS");
	char path[4096];
	size_t len;
	char *doc;

	snprintf(path, sizeof(path), "%s/%s/%s",
		 root ? root : "../tests/json-corpus", sub, file);
	doc = read_file(path, &len);
	tu_import(s, POG_ROOT_INO, name, doc, len);
	free(doc);
	return tu_lookup(s, POG_ROOT_INO, name);
}

static void assert_text(pog_store *s, uint64_t dir, const char *name,
			uint32_t type, const char *text, size_t len)
{
	struct pog_attr a;

	if (pog_lookup(s, dir, name, strlen(name), &a))
		fail_msg("no \"%s\"", name);
	if (a.type != type)
		fail_msg("\"%s\": %s, expected %s", name, pog_type_name(a.type),
			 pog_type_name(type));
	tu_assert_content(s, a.ino, text, len);
}
#define TEXT(s, dir, name, type, lit) \
	assert_text(s, dir, name, type, lit, sizeof(lit) - 1)

static void test_corpus_values(void **state)
{
	struct tu_ctx ctx;
	struct pog_attr a;
	uint64_t d, p, x;

	(void)state;
	tu_setup(&ctx, TU_SHM_BASE, POOL_SIZE);
	/* the JSON Schema meta-schema: "$id", "$schema", "$ref" are keys */
	d = import_file(ctx.s, "valid", "real_json_schema_draft07.json", "schema");
	TEXT(ctx.s, d, "$id", POG_STRING, "http://json-schema.org/draft-07/schema#");
	TEXT(ctx.s, d, "$schema", POG_STRING, "http://json-schema.org/draft-07/schema#");
	p = tu_lookup(ctx.s, d, "properties");
	TEXT(ctx.s, tu_lookup(ctx.s, p, "$ref"), "format", POG_STRING, "uri-reference");
	TEXT(ctx.s, tu_lookup(ctx.s, p, "contains"), "$ref", POG_STRING, "#");
	TEXT(ctx.s, tu_lookup(ctx.s, tu_lookup(ctx.s, d, "definitions"),
			      "nonNegativeInteger"), "minimum", POG_INT, "0\n");
	TEXT(ctx.s, d, "default", POG_BOOL, "true\n");
	/* {"a": {"$ref": "#/x"}} */
	d = import_file(ctx.s, "valid", "key_ref_nested.json", "ref");
	TEXT(ctx.s, tu_lookup(ctx.s, d, "a"), "$ref", POG_STRING, "#/x");
	/* "$b64:..." and "$$" keys of a plain document are themselves */
	d = import_file(ctx.s, "valid", "key_dollar_keys.json", "dollar");
	TEXT(ctx.s, d, "$$", POG_STRING, "two dollars");
	TEXT(ctx.s, d, "$b64:AA==", POG_STRING, "not base64");
	/* NUL in strings and keys */
	d = import_file(ctx.s, "valid", "string_nul_escape.json", "nul");
	TEXT(ctx.s, d, "s", POG_STRING, "a\0b");
	d = import_file(ctx.s, "valid", "key_nul_escape.json", "nulkey");
	assert_ok(pog_lookup(ctx.s, d, "a\0b", 3, &a));
	tu_assert_content(ctx.s, a.ino, "1\n", 2);
	assert_ok(pog_lookup(ctx.s, d, "\0", 1, &a));
	/* repeated keys: the last one wins, whatever it was before */
	d = import_file(ctx.s, "valid", "duplicate_keys_type_change.json", "dup");
	assert_int_equal(tu_count_entries(ctx.s, d), 1);
	x = tu_lookup(ctx.s, d, "a");
	assert_ok(pog_getattr(ctx.s, x, &a));
	assert_int_equal(a.type, POG_MAP);
	TEXT(ctx.s, x, "k", POG_NULL, "null\n");
	d = import_file(ctx.s, "valid", "duplicate_keys.json", "dup2");
	TEXT(ctx.s, d, "a", POG_INT, "3\n");
	/* numbers: int64 exactly, beyond it the nearest double */
	d = import_file(ctx.s, "valid", "number_int64_limits.json", "lim");
	TEXT(ctx.s, d, "0", POG_INT, "9223372036854775807\n");
	TEXT(ctx.s, d, "1", POG_INT, "-9223372036854775808\n");
	d = import_file(ctx.s, "valid", "number_beyond_int64.json", "big");
	TEXT(ctx.s, d, "0", POG_FLOAT, "9.223372036854776e+18\n");
	d = import_file(ctx.s, "valid", "number_underflow.json", "under");
	TEXT(ctx.s, d, "0", POG_FLOAT, "0.0\n");
	d = import_file(ctx.s, "valid", "number_minus_zero_float.json", "mz");
	TEXT(ctx.s, d, "0", POG_FLOAT, "-0.0\n");
	/* escapes and a surrogate pair */
	d = import_file(ctx.s, "valid", "string_surrogate_pair.json", "sp");
	TEXT(ctx.s, d, "0", POG_STRING, "\xf0\x9f\x98\x80 \xf0\x9d\x84\x9e");
	/* a top-level scalar under a name */
	d = import_file(ctx.s, "valid", "top_string.json", "ts");
	tu_assert_content(ctx.s, d, "hello", 5);
	/* a look-alike of the mark that is not one is plain */
	d = import_file(ctx.s, "valid", "pogfs_lookalike_three_keys.json", "look");
	TEXT(ctx.s, tu_lookup(ctx.s, d, "root"), "$ref", POG_INT, "1\n");
	tu_commit_check(ctx.s, "values");
	tu_teardown(&ctx);
}

/* ---- the mark, old exports, ids ------------------------------------------------- */

static int import_doc(pog_store *s, const char *name, const char *doc,
		      struct pog_json_error *err)
{
	memset(err, 0, sizeof(*err));
	return pog_import(s, POG_ROOT_INO, name, name ? strlen(name) : 0, doc,
			  strlen(doc), 0, 0, err);
}

static void test_marked_documents(void **state)
{
	struct tu_ctx ctx;
	struct pog_json_error err;
	struct pog_attr a;
	struct tu_buf out;
	uint64_t d, t;
	static const struct { const char *doc; int line, column;
			      const char *message; } bad[] = {
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$id\":1.5,\"$value\":1}}}", 1, 32,
		  "$id must be a positive integer below 2^63, not 1.5" },
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$id\":-5,\"$value\":1}}}", 1, 32,
		  "not -5" },
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$ref\":1e300}}}", 1, 33,
		  "$ref must be a positive integer below 2^63, not 1e300" },
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$link\":18446744073709551616}}}", 1, 34,
		  "$link must be" },
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$ref\":\"#/x\"}}}", 1, 33,
		  "not \"#/x\"" },
		{ "{\"$pogfs\":2,\"root\":{\"x\":{\"$special\":\"fifo\",\"rdev\":-1}}}",
		  1, 51, "rdev must be a non-negative integer" },
		{ "{\"$pogfs\":3,\"root\":{}}", 1, 11, "format 3" },
		{ "{\"$pogfs\":2.5,\"root\":{}}", 1, 11, "format 2.5" },
		{ "{\"$pogfs\":2,\"root\":{\"$schema\":\"x\"}}", 1, 21,
		  "\"$schema\" is no key" },
	};

	(void)state;
	tu_setup(&ctx, TU_SHM_BASE, POOL_SIZE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = import_doc(ctx.s, "d", bad[i].doc, &err);
		print_message("    %s -> %d:%d %s\n", bad[i].doc, err.line,
			      err.column, err.message);
		assert_rc(rc, -EINVAL);
		assert_non_null(strstr(err.message, bad[i].message));
		assert_int_equal(err.line, bad[i].line);
		assert_int_equal(err.column, bad[i].column);
		assert_int_equal(pog_staged_count(ctx.s), 0);
	}

	/* with other changes staged, a bad export still changes nothing:
	 * its forms are checked before anything is made */
	tu_mkfile(ctx.s, POG_ROOT_INO, "staged", "s", 1);
	{
		uint64_t staged = pog_staged_count(ctx.s);
		static const struct { const char *doc; const char *message; } late[] = {
			{ "{\"$pogfs\":2,\"root\":{\"a\":[1,2,3],\"b\":{\"$ref\":7}}}",
			  "7 is no $id of this document" },
			{ "{\"$pogfs\":2,\"root\":{\"a\":[1],\"b\":{\"$bytes\":\"!!\"}}}",
			  "bad base64" },
			{ "{\"$pogfs\":2,\"root\":{\"a\":{\"$id\":1},\"b\":{\"$id\":1}}}",
			  "$id 1 defined twice" },
			{ "{\"$pogfs\":2,\"root\":{\"a\":{\"$id\":1,\"$value\":[]},"
			  "\"b\":{\"$symlink\":7}}}", "$symlink needs a string" },
			{ "{\"$pogfs\":2,\"root\":{\"x\":[1,{\"$special\":\"door\"}]}}",
			  "$special is" },
			{ "{\"$pogfs\":2,\"root\":[1]}", "must be an object" },
			{ "{\"a\":[1,2],\"b\":1e999}", "beyond the range of a double" },
		};
		for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
			int rc = import_doc(ctx.s, i == 5 ? NULL : "d", late[i].doc, &err);
			print_message("    %s -> %d:%d %s\n", late[i].doc, err.line,
				      err.column, err.message);
			assert_rc(rc, -EINVAL);
			assert_non_null(strstr(err.message, late[i].message));
			assert_true(err.line == 1 && err.column > 1);
			assert_int_equal(pog_staged_count(ctx.s), staged);
		}
	}
	assert_ok(pog_abort(ctx.s));

	/* an old (format 1) export, wrapped as format 1: its forms work */
	if (import_doc(ctx.s, "old", "{\"$pogfs\": 1, \"root\": "
		       "{\"$$schema\":\"v1\",\"a/b\":{\"$bytes\":\"/w==\"},"
		       "\"items\":{\"$id\":1,\"$value\":[true,null,\"x\"]},"
		       "\"mine\":{\"$ref\":1},\"n\\u0000k\":{\"$b64:bgBr\":2},"
		       "\"note\":{\"$id\":2,\"$value\":\"hi\\n\"},"
		       "\"same-note\":{\"$link\":2}}}", &err))
		fail_msg("old export: %d:%d %s", err.line, err.column, err.message);
	d = tu_lookup(ctx.s, POG_ROOT_INO, "old");
	TEXT(ctx.s, d, "$schema", POG_STRING, "v1");
	assert_ok(pog_lookup(ctx.s, d, "a/b", 3, &a));
	tu_assert_content(ctx.s, a.ino, "\xff", 1);
	assert_ok(pog_ref_target(ctx.s, tu_lookup(ctx.s, d, "mine"), &t));
	assert_int_equal(t, tu_lookup(ctx.s, d, "items"));
	assert_int_equal(tu_lookup(ctx.s, d, "note"), tu_lookup(ctx.s, d, "same-note"));
	assert_ok(pog_lookup(ctx.s, d, "n\0k", 3, &a));
	assert_ok(pog_lookup(ctx.s, a.ino, "n\0k", 3, &a));
	/* it exports in format 2, marked, "$" keys escaped */
	out = tu_export(ctx.s, d);
	print_message("    %s", out.data);
	assert_string_equal(out.data, "{\"$pogfs\":2,\"root\":{\"$$schema\":\"v1\","
			    "\"a/b\":{\"$bytes\":\"/w==\"},\"items\":{\"$id\":1,"
			    "\"$value\":[true,null,\"x\"]},\"mine\":{\"$ref\":1},"
			    "\"n\\u0000k\":{\"n\\u0000k\":2},\"note\":{\"$id\":2,"
			    "\"$value\":\"hi\\n\"},\"same-note\":{\"$link\":2}}}\n");
	free(out.data);
	/* the same text without the mark is plain JSON: maps with "$" keys */
	if (import_doc(ctx.s, "plain", "{\"mine\":{\"$ref\":1},\"b\":{\"$bytes\":\"/w==\"}}",
		       &err))
		fail_msg("plain: %s", err.message);
	d = tu_lookup(ctx.s, POG_ROOT_INO, "plain");
	TEXT(ctx.s, tu_lookup(ctx.s, d, "mine"), "$ref", POG_INT, "1\n");
	TEXT(ctx.s, tu_lookup(ctx.s, d, "b"), "$bytes", POG_STRING, "/w==");
	out = tu_export(ctx.s, d);
	assert_string_equal(out.data, "{\"b\":{\"$bytes\":\"/w==\"},\"mine\":{\"$ref\":1}}\n");
	free(out.data);
	/* a map that looks like the mark exports marked, and round-trips */
	d = tu_mk(ctx.s, POG_ROOT_INO, "look", POG_MAP);
	assert_ok(pog_set_type(ctx.s, tu_mkfile(ctx.s, d, "$pogfs", "2", 1), POG_INT));
	tu_mkfile(ctx.s, d, "root", "r", 1);
	out = tu_export(ctx.s, d);
	assert_string_equal(out.data, "{\"$pogfs\":2,\"root\":{\"$$pogfs\":2,\"root\":\"r\"}}\n");
	tu_import(ctx.s, POG_ROOT_INO, "look2", out.data, out.len);
	{
		struct tu_buf again = tu_export(ctx.s, tu_lookup(ctx.s, POG_ROOT_INO, "look2"));
		tu_assert_same_doc(&out, &again, "look-alike");
		free(again.data);
	}
	free(out.data);
	/* repeated keys merged into the root: the last wins there too; a
	 * key that was there before the import still clashes */
	tu_import(ctx.s, POG_ROOT_INO, NULL, "{\"k\": 1, \"k\": 2}", 16);
	TEXT(ctx.s, POG_ROOT_INO, "k", POG_INT, "2\n");
	tu_commit_check(ctx.s, "marked");
	assert_rc(import_doc(ctx.s, NULL, "{\"k\": 3}", &err), -EEXIST);
	assert_int_equal(pog_staged_count(ctx.s), 0);
	tu_teardown(&ctx);
}

/* ---- export memory ------------------------------------------------------------ */

struct counting_sink {
	uint64_t bytes;
	size_t heap0, heap_peak;
	unsigned char last;
};

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* Counts the bytes and samples the heap every 64 KiB of output. */
static int counting_write(void *ctx, const void *p, size_t len)
{
	struct counting_sink *k = ctx;
	size_t h = heap_in_use();

	if (h > k->heap_peak)
		k->heap_peak = h;
	k->bytes += len;
	if (len)
		k->last = ((const unsigned char *)p)[len - 1];
	return 0;
}

/*
 * Exporting a store that holds a 4 GiB sparse string (not UTF-8: base64),
 * a 1 GiB sparse string of NUL bytes (UTF-8: \u0000 each) and a map of
 * 200,000 entries. The heap in use is sampled at every write of the
 * document: it must stay within 16 MiB of what it was before, whatever
 * the size of one string or of the map. The exporter this replaced read
 * each string whole into memory (4 GiB here) and kept every key of a map.
 */
static void test_export_memory_bounded(void **state)
{
	const uint64_t sparse = (uint64_t)4 << 30, zeros = (uint64_t)1 << 30;
	const unsigned entries = 200000;
	struct tu_ctx ctx;
	struct pog_attr a = { 0 };
	struct counting_sink k = { 0 };
	uint64_t top, f, m;
	double t0;

	(void)state;
	tu_setup(&ctx, TU_SHM_BASE, (uint64_t)512 << 20);
	top = tu_mk(ctx.s, POG_ROOT_INO, "top", POG_MAP);
	f = tu_mkfile(ctx.s, top, "sparse", "\xff", 1);
	a.size = sparse;
	assert_ok(pog_setattr(ctx.s, f, &a, POG_SET_SIZE, &a));
	tu_write(ctx.s, f, sparse - 1, "\xfe", 1);
	f = tu_mkfile(ctx.s, top, "zeros", "", 0);
	a.size = zeros;
	assert_ok(pog_setattr(ctx.s, f, &a, POG_SET_SIZE, &a));
	m = tu_mk(ctx.s, top, "map", POG_MAP);
	for (unsigned i = 0; i < entries; i++) {
		char name[32];
		struct pog_new spec = { .type = POG_STRING, .mode = 0644 };
		int n = snprintf(name, sizeof(name), "key-%u", i * 7919u % entries);
		assert_ok(pog_mknode(ctx.s, m, name, (size_t)n, &spec, &a));
	}
	tu_commit_check(ctx.s, "big");

	k.heap0 = k.heap_peak = heap_in_use();
	t0 = tu_now();
	assert_ok(pog_export(ctx.s, top, counting_write, &k));
	print_message("    exported %.2f GB in %.1f s; heap %zu KiB before, peak +%zu KiB\n",
		      (double)k.bytes / 1e9, tu_now() - t0, k.heap0 / 1024,
		      (k.heap_peak - k.heap0) / 1024);
	/* {"$pogfs":2,"root":{"map":{...},"sparse":{"$bytes":"..."},"zeros":"..."}}\n */
	assert_true(k.bytes > (sparse / 3 * 4) + zeros * 6);
	assert_int_equal(k.last, '\n');
#if defined(__SANITIZE_ADDRESS__)
	print_message("    (sanitizer build: the bound is not checked)\n");
#else
	if (k.heap_peak - k.heap0 > (size_t)16 << 20)
		fail_msg("export used %zu MiB of heap (bound 16 MiB)",
			 (k.heap_peak - k.heap0) >> 20);
#endif
	tu_teardown(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_valid),
		cmocka_unit_test(test_corpus_invalid),
		cmocka_unit_test(test_corpus_implementation),
		cmocka_unit_test(test_corpus_values),
		cmocka_unit_test(test_marked_documents),
		cmocka_unit_test(test_export_memory_bounded),
	};

	return cmocka_run_group_tests_name("jsoncorpus", tests, NULL, NULL);
}
