/*
 * Unit tests for base/buf.c: the maximum, and the sticky error of a buffer made with
 * sg_buf_init_sticky (the first failure kept, every later append a no-op returning it,
 * cleared by reset and dispose), against a plain buffer that stays usable after a failure;
 * decimals appended without printf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void a_plain_buffer_stays_usable_after_a_failed_append(void **state)
{
    sg_buf_t b;

    sg_buf_init(&b, 4);
    assert_int_equal(sg_buf_lit(&b, "abc"), SG_OK);
    assert_int_equal(sg_buf_lit(&b, "de"), SG_ETOOBIG);
    assert_int_equal(b.len, 3);
    assert_int_equal(sg_buf_lit(&b, "d"), SG_OK);
    assert_memory_equal(b.data, "abcd", 4);
    assert_int_equal(sg_buf_err(&b), SG_OK);
    sg_buf_dispose(&b);
}

static void a_sticky_buffer_keeps_its_first_failure(void **state)
{
    sg_buf_t b;

    sg_buf_init_sticky(&b, 4);
    assert_int_equal(sg_buf_lit(&b, "abc"), SG_OK);
    assert_int_equal(sg_buf_lit(&b, "de"), SG_ETOOBIG);
    /* Every later append, of any kind, does nothing and says why. */
    assert_int_equal(sg_buf_lit(&b, "d"), SG_ETOOBIG);
    assert_int_equal(sg_buf_append(&b, "", 0), SG_ETOOBIG);
    assert_int_equal(sg_buf_appendf(&b, "%d", 1), SG_ETOOBIG);
    assert_int_equal(sg_buf_json_cstr(&b, ""), SG_ETOOBIG);
    assert_int_equal(sg_buf_reserve(&b, 0), SG_ETOOBIG);
    assert_int_equal(b.len, 3);
    assert_int_equal(sg_buf_err(&b), SG_ETOOBIG);

    /* reset starts a new sequence in the same memory. */
    sg_buf_reset(&b);
    assert_int_equal(sg_buf_err(&b), SG_OK);
    assert_int_equal(sg_buf_lit(&b, "wxyz"), SG_OK);
    assert_memory_equal(b.data, "wxyz", 4);
    sg_buf_dispose(&b);
}

static void a_failure_outside_the_buffer_sticks_the_same_way(void **state)
{
    sg_buf_t b, plain;

    sg_buf_init_sticky(&b, 64);
    assert_int_equal(sg_buf_lit(&b, "a"), SG_OK);
    assert_int_equal(sg_buf_fail(&b, SG_ENOMEM), SG_ENOMEM);
    assert_int_equal(sg_buf_fail(&b, SG_ERR), SG_ERR); /* the first one stays */
    assert_int_equal(sg_buf_lit(&b, "b"), SG_ENOMEM);
    assert_int_equal(sg_buf_err(&b), SG_ENOMEM);
    sg_buf_dispose(&b);
    assert_int_equal(sg_buf_err(&b), SG_OK);
    assert_int_equal(sg_buf_lit(&b, "b"), SG_OK); /* dispose: usable again, still sticky */
    assert_true(b.sticky);
    sg_buf_dispose(&b);

    sg_buf_init(&plain, 64);
    assert_int_equal(sg_buf_fail(&plain, SG_ERR), SG_ERR);
    assert_int_equal(sg_buf_err(&plain), SG_OK); /* a plain buffer keeps nothing */
    sg_buf_dispose(&plain);
}

static void decimals_are_written_without_printf(void **state)
{
    static const unsigned long long v[] = {0, 7, 10, 999, 1000, 4294967296ULL,
                                           18446744073709551615ULL};
    char want[32];
    sg_buf_t b;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        sg_buf_init(&b, 64);
        assert_int_equal(sg_buf_append_u64(&b, v[i]), SG_OK);
        snprintf(want, sizeof(want), "%llu", v[i]);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        sg_buf_dispose(&b);
    }
    sg_buf_init(&b, 3); /* the maximum holds for numbers too */
    assert_int_equal(sg_buf_append_u64(&b, 1234), SG_ETOOBIG);
    assert_int_equal(b.len, 0);
    sg_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plain_buffer_stays_usable_after_a_failed_append),
        cmocka_unit_test(a_sticky_buffer_keeps_its_first_failure),
        cmocka_unit_test(a_failure_outside_the_buffer_sticks_the_same_way),
        cmocka_unit_test(decimals_are_written_without_printf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
