/*
 * Unit tests for proxy/headers.c and the bounded buffers and pools every header
 * lives in: which headers cross the proxy (hop-by-hop, identity claims, overrides,
 * the guarded allowlist, routes.drop_headers), and how lists behave.
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

/* sg_hdr_upstream_class on both kinds of route, with the configured list DROP. */
static void assert_class(const char *name, int guarded, const sg_conf_strv_t *drop, int want)
{
    int got = sg_hdr_upstream_class(name, strlen(name), guarded, drop);

    if (got != want)
        fail_msg("'%s' (%s route): class %d, want %d", name, guarded ? "guarded" : "forwarded",
                 got, want);
}

static void assert_class_everywhere(const char *name, const sg_conf_strv_t *drop, int want)
{
    assert_class(name, 0, drop, want);
    assert_class(name, 1, drop, want);
}

static void routine_drops_are_the_same_on_every_route(void **state)
{
    static const char *hop[] = {"Connection", "TE", "Transfer-Encoding", "Upgrade", "HOST",
                                "content-length", "Expect", "Authorization",
                                "Proxy-Authorization", "X-Forwarded-For", "x-forwarded-proto",
                                "X-FORWARDED-HOST", "Forwarded", "HTTP2-Settings"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(hop); i++)
        assert_class_everywhere(hop[i], NULL, SG_HDR_DROP_HOP);
}

static void identity_claims_are_dropped_on_every_route_whatever_their_case(void **state)
{
    static const char *identity[] = {
        "X-Remote-User",       "x-remote-user",       "REMOTE-USER",
        "X-Forwarded-User",    "x-forwarded-email",   "X-Forwarded-Groups",
        "X-Authenticated-User", "x-authenticated-groups", "X-AUTHENTICATED-",
        "X-Smsguard-Tenant",   "x-smsguard-principal", "X-Remote-Group",
        "X-Real-IP",           "True-Client-IP",      "X-Client-IP"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(identity); i++)
        assert_class_everywhere(identity[i], NULL, SG_HDR_DROP_IDENTITY);
}

static void prefixes_match_whole_prefixes_only(void **state)
{
    /* The prefix includes its dash: a name that merely starts alike is not a claim. */
    assert_class("X-Authenticated", 0, NULL, SG_HDR_KEEP);
    assert_class("X-Smsguard", 0, NULL, SG_HDR_KEEP);
    assert_class("X-Remoteuser", 0, NULL, SG_HDR_KEEP);
    assert_class("X-Forwarded", 0, NULL, SG_HDR_KEEP);
    assert_class("Proxy", 0, NULL, SG_HDR_KEEP);
    assert_class("X-Smsguard", 1, NULL, SG_HDR_DROP_UNLISTED);
}

static void target_and_method_overrides_are_dropped_on_every_route(void **state)
{
    static const char *override[] = {"X-Original-URL", "x-rewrite-url", "X-HTTP-Method-Override",
                                     "X-HTTP-Method", "x-method-override", "X-Original-URI",
                                     "X-Original-Method", "X-Forwarded-Prefix",
                                     "X-Forwarded-Port", "x-forwarded-scheme"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(override); i++)
        assert_class_everywhere(override[i], NULL, SG_HDR_DROP_OVERRIDE);
}

static void guarded_routes_forward_only_the_allowlist(void **state)
{
    static const char *allowed[] = {"Content-Type", "vmware-api-session-id",
                                    "VMWARE-API-SESSION-ID", "Accept", "Accept-Language",
                                    "User-Agent", "X-Request-Id"};
    static const char *unlisted[] = {"Cookie", "Accept-Encoding", "Content-Encoding",
                                     "If-Match", "Range", "Origin", "Cache-Control",
                                     "X-Custom", "vmware-api-session-id2", "Content-Type-X",
                                     "Accept-"};

    for (size_t i = 0; i < SG_ARRAY_SIZE(allowed); i++)
        assert_class(allowed[i], 1, NULL, SG_HDR_KEEP);
    for (size_t i = 0; i < SG_ARRAY_SIZE(unlisted); i++) {
        assert_class(unlisted[i], 1, NULL, SG_HDR_DROP_UNLISTED);
        assert_class(unlisted[i], 0, NULL, SG_HDR_KEEP); /* forwarded routes keep them */
    }
}

static void names_are_compared_by_their_length_not_up_to_a_nul(void **state)
{
    /* Header names are counted strings: "Authorization" followed by more bytes is
     * another name, and a name cut short is not the long one. */
    assert_int_equal(sg_hdr_upstream_class("Authorizationx", 13, 0, NULL), SG_HDR_DROP_HOP);
    assert_int_equal(sg_hdr_upstream_class("Authorizationx", 14, 0, NULL), SG_HDR_KEEP);
    assert_int_equal(sg_hdr_upstream_class("X-Remote-User", 8, 0, NULL), SG_HDR_KEEP);
    assert_int_equal(sg_hdr_upstream_class("X-Remote-User", 9, 0, NULL), SG_HDR_DROP_IDENTITY);
}

static void configured_names_and_prefixes_count_as_identity(void **state)
{
    char *v[] = {"X-Corp-User", "x-tenant-*", "Badge"};
    const sg_conf_strv_t drop = {v, SG_ARRAY_SIZE(v)};

    assert_class_everywhere("x-corp-user", &drop, SG_HDR_DROP_IDENTITY);
    assert_class_everywhere("X-CORP-USER", &drop, SG_HDR_DROP_IDENTITY);
    assert_class_everywhere("X-Tenant-Id", &drop, SG_HDR_DROP_IDENTITY);
    assert_class_everywhere("x-tenant-", &drop, SG_HDR_DROP_IDENTITY);
    assert_class_everywhere("badge", &drop, SG_HDR_DROP_IDENTITY);
    /* Exact names stay exact; a prefix needs its whole prefix. */
    assert_class("X-Corp-Users", 0, &drop, SG_HDR_KEEP);
    assert_class("X-Corp-Use", 0, &drop, SG_HDR_KEEP);
    assert_class("X-Tenant", 0, &drop, SG_HDR_KEEP);
    assert_class("Badges", 0, &drop, SG_HDR_KEEP);
    /* The list adds to the built-in rules, it never relaxes them. */
    assert_class("X-Remote-User", 0, &drop, SG_HDR_DROP_IDENTITY);
    assert_class("Authorization", 0, &drop, SG_HDR_DROP_HOP);
    assert_class("Cookie", 1, &drop, SG_HDR_DROP_UNLISTED);
}

static void an_empty_configured_list_drops_nothing_more(void **state)
{
    const sg_conf_strv_t none = {NULL, 0};

    assert_class("X-Corp-User", 0, &none, SG_HDR_KEEP);
    assert_class("X-Corp-User", 0, NULL, SG_HDR_KEEP);
    assert_class("Accept", 1, &none, SG_HDR_KEEP);
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
        cmocka_unit_test(routine_drops_are_the_same_on_every_route),
        cmocka_unit_test(identity_claims_are_dropped_on_every_route_whatever_their_case),
        cmocka_unit_test(prefixes_match_whole_prefixes_only),
        cmocka_unit_test(target_and_method_overrides_are_dropped_on_every_route),
        cmocka_unit_test(guarded_routes_forward_only_the_allowlist),
        cmocka_unit_test(names_are_compared_by_their_length_not_up_to_a_nul),
        cmocka_unit_test(configured_names_and_prefixes_count_as_identity),
        cmocka_unit_test(an_empty_configured_list_drops_nothing_more),
        cmocka_unit_test(drops_response_framing_headers),
        cmocka_unit_test(finds_tokens_listed_in_connection),
        cmocka_unit_test(header_lookup_is_case_insensitive_and_returns_the_first),
        cmocka_unit_test(buffer_refuses_growth_past_its_maximum),
        cmocka_unit_test(pool_runs_cleanups_and_serves_large_objects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
