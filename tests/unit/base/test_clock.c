/*
 * Unit tests for base/clock.c: the RFC 3339 timestamp built from a per-thread cache of the
 * second is byte for byte what gmtime_r and snprintf give, across second, day, month, year
 * and leap-day boundaries, with the cache refreshed whichever way the clock moves. The .c is
 * included to reach the function that takes the time as an argument.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/clock.c"

/* The format the cache replaced, as the audit log has always written it. */
static void reference(const struct timespec *ts, char out[SG_TIME_LEN])
{
    struct tm tm;

    gmtime_r(&ts->tv_sec, &tm);
    snprintf(out, SG_TIME_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%06uZ",
             (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) % 100,
             (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
             (unsigned)tm.tm_sec % 100, (unsigned)(ts->tv_nsec / 1000) % 1000000);
}

static void assert_same_as_reference(time_t sec, long nsec)
{
    struct timespec ts = {.tv_sec = sec, .tv_nsec = nsec};
    char want[SG_TIME_LEN], got[SG_TIME_LEN];

    reference(&ts, want);
    memset(got, 'x', sizeof(got));
    assert_int_equal(clock_rfc3339_at(&ts, got), SG_TIME_RFC3339_LEN);
    assert_string_equal(got, want);
}

static void timestamp_matches_gmtime_and_snprintf_across_boundaries(void **state)
{
    static const time_t secs[] = {
        0,          /* 1970-01-01T00:00:00 */
        951782399,  /* 2000-02-28T23:59:59 */
        951782400,  /* 2000-02-29, a leap day of a year divisible by 400 */
        1709251199, /* 2024-02-29T23:59:59 */
        1735689599, /* 2024-12-31T23:59:59 */
        1735689600, /* 2025-01-01T00:00:00 */
        2147483647, /* 2038-01-19T03:14:07, the last 32-bit second */
        2147483648,
        4102444800, /* 2100-01-01: not a leap year */
        253402300799, /* 9999-12-31T23:59:59, the last four-digit year */
    };
    static const long nsecs[] = {0, 999, 1000, 123456789, 999999999};

    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        for (size_t j = 0; j < sizeof(nsecs) / sizeof(nsecs[0]); j++)
            assert_same_as_reference(secs[i], nsecs[j]);
}

static void cache_follows_the_clock_forwards_and_backwards(void **state)
{
    /* Every second of a day-and-a-bit, then a step back (the wall clock set back by NTP):
     * the cached second must never be shown for another one. */
    for (time_t s = 1764028799; s < 1764028799 + 90000; s += 7)
        assert_same_as_reference(s, (long)(s % 1000) * 1000000);
    assert_same_as_reference(1764028799, 5000);
    assert_same_as_reference(1764028798, 5000);
    assert_same_as_reference(1764028799, 5000);
}

static void now_has_the_fixed_length_and_shape(void **state)
{
    char t[SG_TIME_LEN];

    assert_int_equal(sg_time_rfc3339(t), SG_TIME_RFC3339_LEN);
    assert_int_equal(strlen(t), SG_TIME_RFC3339_LEN);
    assert_int_equal(t[4], '-');
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[26], 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timestamp_matches_gmtime_and_snprintf_across_boundaries),
        cmocka_unit_test(cache_follows_the_clock_forwards_and_backwards),
        cmocka_unit_test(now_has_the_fixed_length_and_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
