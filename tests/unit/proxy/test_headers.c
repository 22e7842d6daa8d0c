/*
 * Unit tests for proxy/headers.c and the bounded buffers and pools every header
 * lives in: which headers cross the proxy, and how lists behave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/proxy.h"

static void drops_hop_by_hop_and_identity_headers(void **state)
{
    static const char *drop[] = {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding",
                                 "Upgrade", "Host", "Content-Length", "Expect", "Authorization",
                                 "Proxy-Authorization", "proxy-connection", "Proxy-Whatever",
                                 "X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Host",
                                 "HTTP2-Settings", "Forwarded"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(drop); i++)
        assert_true(sg_hdr_is_request_hop(drop[i], strlen(drop[i])));
}

static void keeps_end_to_end_headers(void **state)
{
    static const char *keep[] = {"Content-Type", "vmware-api-session-id", "Accept", "Cookie",
                                 "User-Agent", "X-Request-Id", "Proxy", "Teapot", "Hostname"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(keep); i++)
        assert_false(sg_hdr_is_request_hop(keep[i], strlen(keep[i])));
}

static void drops_response_framing_headers(void **state)
{
    assert_true(sg_hdr_is_response_hop("Transfer-Encoding", 17));
    assert_true(sg_hdr_is_response_hop("content-length", 14));
    assert_true(sg_hdr_is_response_hop("Connection", 10));
    assert_false(sg_hdr_is_response_hop("vmware-api-session-id", 21));
    assert_false(sg_hdr_is_response_hop("Content-Type", 12));
}

static void finds_tokens_listed_in_connection(void **state)
{
    sg_pool_t pool;
    sg_headers_t h = {0};

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_headers_add(&pool, &h, "Connection", 10, "keep-alive, X-Secret ,Foo", 25),
                     SG_OK);
    assert_int_equal(sg_headers_add(&pool, &h, "connection", 10, "bar", 3), SG_OK);
    assert_true(sg_hdr_connection_lists(&h, "x-secret", 8));
    assert_true(sg_hdr_connection_lists(&h, "FOO", 3));
    assert_true(sg_hdr_connection_lists(&h, "Bar", 3));
    assert_false(sg_hdr_connection_lists(&h, "X-Secre", 7));
    assert_false(sg_hdr_connection_lists(&h, "content-type", 12));
    sg_pool_dispose(&pool);
}

static void header_lookup_is_case_insensitive_and_returns_the_first(void **state)
{
    sg_pool_t pool;
    sg_headers_t h = {0};
    const sg_header_t *x;
    char name[16];

    sg_pool_init(&pool, 256);
    /* Enough entries to make the array grow several times. */
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "x-h%d", i);
        assert_int_equal(sg_headers_add(&pool, &h, name, (size_t)n, "v", 1), SG_OK);
    }
    assert_int_equal(sg_headers_add(&pool, &h, "Content-Type", 12, "application/json", 16), SG_OK);
    assert_int_equal(sg_headers_add(&pool, &h, "content-type", 12, "text/plain", 10), SG_OK);
    x = sg_headers_get(&h, "CONTENT-TYPE");
    assert_non_null(x);
    assert_string_equal(x->value.p, "application/json");
    assert_string_equal(sg_headers_get(&h, "x-h57")->name.p, "x-h57");
    assert_null(sg_headers_get(&h, "x-h100"));
    sg_pool_dispose(&pool);
}

static void buffer_refuses_growth_past_its_maximum(void **state)
{
    sg_buf_t b;
    char chunk[100];

    memset(chunk, 'a', sizeof(chunk));
    sg_buf_init(&b, 1000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(sg_buf_append(&b, chunk, sizeof(chunk)), SG_OK);
    assert_int_equal(sg_buf_append(&b, chunk, 1), SG_ETOOBIG);
    assert_int_equal(sg_buf_avail(&b), 1000);
    /* Consumed bytes at the front are reused rather than counted against the maximum. */
    sg_buf_consume(&b, 300);
    assert_int_equal(sg_buf_append(&b, chunk, 100), SG_OK);
    assert_int_equal(sg_buf_avail(&b), 800);
    assert_int_equal(sg_buf_appendf(&b, "%0200d", 7), SG_OK);
    assert_int_equal(sg_buf_avail(&b), 1000);
    assert_int_equal(sg_buf_appendf(&b, "x"), SG_ETOOBIG);
    sg_buf_dispose(&b);
}

static int cleanups_run;
static void count_cleanup(void *p) { cleanups_run += *(int *)p; }

static void pool_runs_cleanups_and_serves_large_objects(void **state)
{
    sg_pool_t pool;
    static int one = 1, ten = 10;
    char *big, *small;

    sg_pool_init(&pool, 1024);
    small = sg_pool_strndup(&pool, "abc", 3);
    big = sg_pool_alloc(&pool, 100000);
    assert_non_null(big);
    memset(big, 1, 100000);
    assert_string_equal(small, "abc");
    assert_true(((uintptr_t)sg_pool_alloc(&pool, 3) & 15) == 0);
    assert_int_equal(sg_pool_cleanup_add(&pool, count_cleanup, &one), SG_OK);
    assert_int_equal(sg_pool_cleanup_add(&pool, count_cleanup, &ten), SG_OK);
    cleanups_run = 0;
    sg_pool_dispose(&pool);
    assert_int_equal(cleanups_run, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(drops_hop_by_hop_and_identity_headers),
        cmocka_unit_test(keeps_end_to_end_headers),
        cmocka_unit_test(drops_response_framing_headers),
        cmocka_unit_test(finds_tokens_listed_in_connection),
        cmocka_unit_test(header_lookup_is_case_insensitive_and_returns_the_first),
        cmocka_unit_test(buffer_refuses_growth_past_its_maximum),
        cmocka_unit_test(pool_runs_cleanups_and_serves_large_objects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
