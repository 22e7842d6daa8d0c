/*
 * Unit tests for proxy/health.c: an upstream's reachability as the workers see it. Times
 * are given, never read from a clock: a failure holds the upstream down for 1 s, doubling
 * per failure in a row up to 30 s; when the hold-down ends exactly one caller probes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/proxy.h"

static void one_record_per_name(void **state)
{
    sg_health_t *a = sg_health_get("vc-east-1"), *b = sg_health_get("vc-west-1");

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(sg_health_get("vc-east-1"), a);
    assert_int_equal(sg_health_down(a, NULL, NULL), 0);
    assert_int_equal(sg_health_admit(a, 1000), 1);
}

static void a_failure_holds_it_down_then_one_probe_passes(void **state)
{
    sg_health_t *h = sg_health_get("vc-east-2"), *other = sg_health_get("vc-west-2");
    uint64_t since = 0;
    const char *why = NULL;

    (void)state;
    sg_health_failed(h, 10000, "upstream unreachable");
    assert_int_equal(sg_health_down(h, &since, &why), 1);
    assert_int_equal(since, 10000);
    assert_string_equal(why, "upstream unreachable");
    assert_int_equal(sg_health_admit(h, 10001), 0);
    assert_int_equal(sg_health_admit(h, 10999), 0);
    /* The others are untouched. */
    assert_int_equal(sg_health_admit(other, 10500), 1);
    assert_int_equal(sg_health_down(other, NULL, NULL), 0);
    /* The hold-down is over: the first caller probes, the next waits another period. */
    assert_int_equal(sg_health_admit(h, 11000), 1);
    assert_int_equal(sg_health_admit(h, 11001), 0);
    /* The probe connected: up again, everybody passes. */
    sg_health_ok(h);
    assert_int_equal(sg_health_down(h, &since, &why), 0);
    assert_int_equal(since, 0);
    assert_null(why);
    assert_int_equal(sg_health_admit(h, 11002), 1);
    assert_int_equal(sg_health_admit(h, 11003), 1);
}

static void failures_in_a_row_double_the_hold_down_up_to_30s(void **state)
{
    sg_health_t *h = sg_health_get("vc-east-3");
    uint64_t now = 50000, since = 0;
    uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};

    (void)state;
    for (size_t i = 0; i < SG_ARRAY_SIZE(want); i++) {
        sg_health_failed(h, now, "upstream timeout");
        assert_int_equal(sg_health_admit(h, now + want[i] - 1), 0);
        assert_int_equal(sg_health_admit(h, now + want[i]), 1); /* the probe, which fails */
        now += want[i];
    }
    /* The outage began with the first failure. */
    assert_int_equal(sg_health_down(h, &since, NULL), 1);
    assert_int_equal(since, 50000);
    sg_health_ok(h);
    sg_health_failed(h, now, "upstream unreachable");
    assert_int_equal(sg_health_admit(h, now + 999), 0);
    assert_int_equal(sg_health_admit(h, now + 1000), 1); /* back to 1 s after a success */
}

static void untracked_is_always_up(void **state)
{
    (void)state;
    sg_health_failed(NULL, 1, "x");
    sg_health_ok(NULL);
    assert_int_equal(sg_health_admit(NULL, 2), 1);
    assert_int_equal(sg_health_down(NULL, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_record_per_name),
        cmocka_unit_test(a_failure_holds_it_down_then_one_probe_passes),
        cmocka_unit_test(failures_in_a_row_double_the_hold_down_up_to_30s),
        cmocka_unit_test(untracked_is_always_up),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
