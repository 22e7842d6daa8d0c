/*
 * Unit tests for base/file.c, the one bounded file reader: a regular file is read whole and
 * NUL-terminated; a directory, a FIFO (without waiting for a writer), a missing file and a
 * file over the maximum are refused with their reason and leave nothing allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "tests/common/tmpdir.h"

static char dir[PATH_MAX];

static const char *at(const char *name)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static void write_file(const char *name, const char *text, size_t n)
{
    FILE *f = fopen(at(name), "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    return sg_test_mkdtemp(dir, sizeof(dir), "sg-test-file") != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void reads_a_regular_file_whole_and_nul_terminated(void **state)
{
    sg_file_t f;
    const char *why = NULL;

    write_file("key", "0123456789\0abc", 14);
    assert_int_equal(sg_file_read(&f, at("key"), 14, SG_FILE_SECRET, &why), SG_OK);
    assert_int_equal(f.len, 14);
    assert_memory_equal(f.data, "0123456789\0abc", 15);
    sg_file_dispose(&f);
    assert_null(f.data);
    assert_int_equal(f.len, 0);

    write_file("empty", "", 0);
    assert_int_equal(sg_file_read(&f, at("empty"), 14, 0, &why), SG_OK);
    assert_int_equal(f.len, 0);
    assert_int_equal(f.data[0], '\0');
    sg_file_dispose(&f);
}

static void refuses_a_file_over_the_maximum(void **state)
{
    sg_file_t f;
    const char *why = NULL;

    write_file("big", "0123456789", 10);
    assert_int_equal(sg_file_read(&f, at("big"), 9, SG_FILE_SECRET, &why), SG_ETOOBIG);
    assert_string_equal(why, "file too large");
    assert_null(f.data);
    sg_file_dispose(&f); /* harmless on a failed read */
}

static void refuses_what_is_not_a_regular_file(void **state)
{
    sg_file_t f;
    const char *why = NULL;

    assert_int_equal(sg_file_read(&f, dir, 1 << 20, 0, &why), SG_ERR);
    assert_string_equal(why, "Is a directory");
    assert_null(f.data);

    /* A FIFO without a writer: open must not wait for one. */
    assert_int_equal(mkfifo(at("fifo"), 0600), 0);
    assert_int_equal(sg_file_read(&f, at("fifo"), 1 << 20, 0, &why), SG_ERR);
    assert_string_equal(why, "not a regular file");
    assert_null(f.data);

    assert_int_equal(sg_file_read(&f, at("absent"), 1 << 20, 0, &why), SG_ERR);
    assert_string_equal(why, "No such file or directory");
    assert_null(f.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_regular_file_whole_and_nul_terminated),
        cmocka_unit_test(refuses_a_file_over_the_maximum),
        cmocka_unit_test(refuses_what_is_not_a_regular_file),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
