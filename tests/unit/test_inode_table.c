/* test_inode_table.c - the daemon's inode table (fs/inode_table.c): lookup
 * counts and every name each inode was given, as abort invalidates them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "inode_table.h"

static int remember(struct inode_table *t, uint64_t ino, uint64_t parent,
		    const char *name)
{
	return inode_table_remember(t, ino, parent, name, name ? strlen(name) : 0);
}

static int rename_(struct inode_table *t, uint64_t parent, const char *name,
		   uint64_t newparent, const char *newname, bool exchange)
{
	return inode_table_rename(t, parent, name, strlen(name), newparent,
				  newname, strlen(newname), exchange);
}

/* Take everything: the names as "parent/name", sorted and joined by
 * spaces (malloc'd), and in *ninos the number of inodes. */
static char *take_all(struct inode_table *t, size_t *ninos)
{
	struct inode_inval *v;
	assert_int_equal(inode_table_take(t, NULL, &v), 0);
	char **lines = calloc(v->nnames + 1, sizeof(*lines));
	assert_non_null(lines);
	size_t total = 1;
	for (size_t i = 0; i < v->nnames; i++) {
		assert_int_equal(strlen(v->names[i].name), v->names[i].len);
		assert_true(asprintf(&lines[i], "%llu/%s",
				     (unsigned long long)v->names[i].parent,
				     v->names[i].name) > 0);
		total += strlen(lines[i]) + 1;
	}
	for (size_t i = 1; i < v->nnames; i++) /* insertion sort */
		for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
			char *x = lines[j];
			lines[j] = lines[j - 1];
			lines[j - 1] = x;
		}
	char *out = calloc(1, total);
	assert_non_null(out);
	for (size_t i = 0; i < v->nnames; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, lines[i]);
		free(lines[i]);
	}
	free(lines);
	*ninos = v->ninos;
	free(v);
	return out;
}

static void assert_taken(struct inode_table *t, const char *want, size_t ninos)
{
	size_t n;
	char *got = take_all(t, &n);
	assert_string_equal(got, want);
	assert_int_equal(n, ninos);
	free(got);
}

static void test_every_name_once(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(remember(&t, 10, 1, "a"), 0);
		assert_int_equal(remember(&t, 10, 1, "b"), 0);
		assert_int_equal(remember(&t, 10, 2, "c"), 0);
	}
	assert_int_equal(remember(&t, 11, 1, "x"), 0);
	assert_int_equal(remember(&t, 12, 1, NULL), 0);
	assert_int_equal(t.names, 4);
	assert_int_equal(t.named, 2);
	assert_taken(&t, "1/a 1/b 1/x 2/c", 3);
	/* taken names are gone, the counts stay */
	assert_int_equal(t.names, 0);
	assert_int_equal(t.named, 0);
	assert_taken(&t, "", 3);
	assert_int_equal(inode_table_forget(&t, 10, 100), 9);
	assert_int_equal(inode_table_forget(&t, 11, 1), 1);
	assert_int_equal(inode_table_forget(&t, 12, 1), 1);
	assert_int_equal(t.count, 0);
	inode_table_release(&t);
}

static void test_forget_drops_names(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	remember(&t, 11, 1, "c");
	assert_int_equal(inode_table_forget(&t, 10, 1), 1);
	assert_int_equal(t.names, 3); /* one lookup left */
	assert_int_equal(inode_table_forget(&t, 10, 1), 1);
	assert_int_equal(t.names, 1);
	assert_int_equal(inode_table_forget(&t, 10, 1), 0);
	assert_taken(&t, "1/c", 1);
	inode_table_release(&t);
}

/* A name given for another inode moves to it, as the kernel's dentry. */
static void test_name_moves_to_new_inode(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 11, 1, "a");
	assert_int_equal(t.names, 1);
	assert_int_equal(t.named, 1);
	inode_table_forget(&t, 11, 1);
	assert_int_equal(t.names, 0); /* it went with 11 */
	inode_table_forget(&t, 10, 1);
	assert_int_equal(t.count, 0);
	inode_table_release(&t);
}

static void test_unname(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	inode_table_unname(&t, 1, "b", 1);
	inode_table_unname(&t, 1, "nope", 4);
	inode_table_unname(&t, 2, "a", 1);
	assert_taken(&t, "1/a", 1);
	inode_table_release(&t);
}

static void test_rename(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	remember(&t, 11, 1, "other");
	/* b -> 2/b2; other -> a, replacing 10's "a" */
	assert_int_equal(rename_(&t, 1, "b", 2, "b2", false), 0);
	assert_int_equal(rename_(&t, 1, "other", 1, "a", false), 0);
	/* an unknown name renamed over a known one: the known one goes */
	remember(&t, 12, 3, "z");
	assert_int_equal(rename_(&t, 3, "unknown", 3, "z", false), 0);
	assert_int_equal(t.names, 2);
	inode_table_forget(&t, 11, 1); /* "1/a" was 11's */
	assert_taken(&t, "2/b2", 2);
	inode_table_release(&t);
}

static void test_exchange(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	remember(&t, 11, 1, "y");
	assert_int_equal(rename_(&t, 1, "b", 1, "y", true), 0);
	/* 10 is a and y now, 11 is b */
	inode_table_forget(&t, 10, 2);
	assert_taken(&t, "1/b", 1);
	remember(&t, 11, 1, "b");
	remember(&t, 12, 1, "c");
	/* one side unknown: the known name is forgotten */
	assert_int_equal(rename_(&t, 1, "b", 1, "unknown", true), 0);
	assert_taken(&t, "1/c", 2);
	inode_table_release(&t);
}

static int want_even(uint64_t ino)
{
	return ino % 2 == 0;
}

static void test_take_only_wanted(void **state)
{
	struct inode_table t;
	struct inode_inval *v;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	remember(&t, 11, 1, "c");
	assert_int_equal(inode_table_take(&t, want_even, &v), 0);
	assert_int_equal(v->ninos, 1);
	assert_int_equal(v->inos[0], 10);
	assert_int_equal(v->nnames, 2);
	free(v);
	assert_taken(&t, "1/c", 2);
	inode_table_release(&t);
}

/* Thousands of names of one inode, the bound on extra names, and the
 * hash growing under them. */
static void test_many_names_bounded(void **state)
{
	struct inode_table t;
	char name[32];
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		assert_int_equal(remember(&t, 10, 1, name), 0);
	}
	assert_int_equal(t.names, 5000);
	for (int i = 0; i < 5000; i += 2) {
		snprintf(name, sizeof(name), "l%d", i);
		inode_table_unname(&t, 1, name, strlen(name));
	}
	assert_int_equal(t.names, 2500);

	/* past the bound, an inode's new name replaces its oldest */
	t.max_extra_names = 2600;
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		assert_int_equal(remember(&t, 10, 1, name), 0);
	}
	assert_int_equal(t.names - t.named, 2600);
	/* l1, l3, ... were given first: the oldest ones went */
	size_t n;
	char *all = take_all(&t, &n);
	assert_null(strstr(all, "1/l1 "));
	assert_non_null(strstr(all, "1/m199"));
	assert_non_null(strstr(all, "1/l4999"));
	free(all);
	/* a first name is never refused */
	assert_int_equal(remember(&t, 10, 1, "x"), 0);
	t.max_extra_names = 0;
	assert_int_equal(remember(&t, 20, 1, "y"), 0);
	assert_int_equal(remember(&t, 10, 1, "z"), 0);
	assert_taken(&t, "1/y 1/z", 2);
	inode_table_release(&t);
}

/* Release with names still held frees them (ASan checks). */
static void test_release_and_drain(void **state)
{
	struct inode_table t;
	(void)state;
	assert_int_equal(inode_table_init(&t), 0);
	remember(&t, 10, 1, "a");
	remember(&t, 10, 1, "b");
	remember(&t, 11, 1, "c");
	inode_table_drain(&t, NULL, NULL);
	assert_int_equal(t.count, 0);
	assert_int_equal(t.names, 0);
	remember(&t, 12, 1, "d");
	inode_table_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_name_once),
		cmocka_unit_test(test_forget_drops_names),
		cmocka_unit_test(test_name_moves_to_new_inode),
		cmocka_unit_test(test_unname),
		cmocka_unit_test(test_rename),
		cmocka_unit_test(test_exchange),
		cmocka_unit_test(test_take_only_wanted),
		cmocka_unit_test(test_many_names_bounded),
		cmocka_unit_test(test_release_and_drain),
	};
	return cmocka_run_group_tests_name("inode_table", tests, NULL, NULL);
}
