/*
 * tests/unit/proxy/test_reqcheck.c - the pure parts of the request model (proxy/reqcheck.c):
 * authority parsing, server-name matching and method tokens. The whole check, with both
 * front ends, is tests/integration/36_request_model.sh and tests/fuzz/fuzz_reqshape.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proxy/reqcheck.c"

static const char *host_of(const char *authority)
{
    static char out[256];

    return rc_host(authority, strlen(authority), out, sizeof(out)) == 0 ? out : NULL;
}

static void takes_the_host_of_every_authority_form(void **state)
{
    (void)state;
    assert_string_equal(host_of("localhost"), "localhost");
    assert_string_equal(host_of("LocalHost:8443"), "localhost");
    assert_string_equal(host_of("127.0.0.1:443"), "127.0.0.1");
    assert_string_equal(host_of("[::1]:8443"), "::1");
    assert_string_equal(host_of("[2001:DB8::1]"), "2001:db8::1");
    assert_string_equal(host_of("vc.example."), "vc.example");
    assert_string_equal(host_of("vc.example:"), "vc.example"); /* empty port, RFC 3986 */
}

static void refuses_authorities_a_second_parser_could_read_otherwise(void **state)
{
    (void)state;
    assert_null(host_of(""));
    assert_null(host_of(":443"));
    assert_null(host_of("user@vc.example"));
    assert_null(host_of("user:pw@vc.example"));
    assert_null(host_of("vc.example:44x"));
    assert_null(host_of("vc.example:123456"));
    assert_null(host_of("vc%2eexample"));
    assert_null(host_of("vc.example\r\nx"));
    assert_null(host_of("vc example"));
    assert_null(host_of("::1"));         /* IPv6 needs its brackets */
    assert_null(host_of("[::1"));
    assert_null(host_of("[vc.example]")); /* not an IPv6 address */
    assert_null(host_of("[::1]x"));
    assert_null(host_of("a,b"));
}

static void matches_exact_names_and_one_label_wildcards(void **state)
{
    (void)state;
    assert_true(sg_tls_name_matches("vc.example", "vc.example"));
    assert_false(sg_tls_name_matches("vc.example", "vc.example.org"));
    assert_true(sg_tls_name_matches("east.vc.example", "*.vc.example"));
    assert_false(sg_tls_name_matches("vc.example", "*.vc.example"));
    assert_false(sg_tls_name_matches("a.east.vc.example", "*.vc.example"));
    assert_false(sg_tls_name_matches(".vc.example", "*.vc.example"));
    assert_false(sg_tls_name_matches("evilvc.example", "*.vc.example"));
}

static void accepts_method_tokens_only(void **state)
{
    sg_str_t get = {"GET", 3}, ext = {"M-SEARCH", 8}, sp = {"GE T", 4}, empty = {"", 0},
             nul = {"G\0T", 3}, none = {NULL, 0};

    (void)state;
    assert_true(rc_is_token(&get));
    assert_true(rc_is_token(&ext));
    assert_false(rc_is_token(&sp));
    assert_false(rc_is_token(&empty));
    assert_false(rc_is_token(&nul));
    assert_false(rc_is_token(&none));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(takes_the_host_of_every_authority_form),
        cmocka_unit_test(refuses_authorities_a_second_parser_could_read_otherwise),
        cmocka_unit_test(matches_exact_names_and_one_label_wildcards),
        cmocka_unit_test(accepts_method_tokens_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
