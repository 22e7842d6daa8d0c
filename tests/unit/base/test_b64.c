/*
 * Unit tests for base/b64.c, the one base64url codec: RFC 4648's vectors in the URL
 * alphabet, every length round trip, and the strict decoder's refusals (each byte string has
 * exactly one accepted spelling), with sg_b64url_valid agreeing with the decoder throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/base.h"

static void encodes_rfc4648_vectors_without_padding(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[16];
    unsigned char back[16];

    for (size_t i = 0; i < SG_ARRAY_SIZE(in); i++) {
        size_t n = strlen(in[i]);
        char *e = sg_b64url_put(out, (const unsigned char *)in[i], n);

        assert_int_equal(e - out, sg_b64url_len(n));
        assert_memory_equal(out, want[i], strlen(want[i]));
        assert_int_equal(sg_b64url_decode(back, want[i], strlen(want[i])), n);
        assert_memory_equal(back, in[i], n);
    }
}

static void uses_the_url_alphabet(void **state)
{
    static const unsigned char in[] = {0xfb, 0xff, 0xbf};
    unsigned char back[3];
    char out[4];

    sg_b64url_put(out, in, sizeof(in));
    assert_memory_equal(out, "-_-_", 4);
    assert_int_equal(sg_b64url_decode(back, "-_-_", 4), 3);
    assert_memory_equal(back, in, 3);
}

static void round_trips_every_length(void **state)
{
    unsigned char in[80], back[80];
    char enc[112];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 167 + 13);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t m = (size_t)(sg_b64url_put(enc, in, n) - enc);

        assert_true(sg_b64url_valid(enc, m));
        assert_true(sg_b64url_decoded_max(m) >= n);
        assert_int_equal(sg_b64url_decode(back, enc, m), n);
        assert_memory_equal(back, in, n);
    }
}

static void refuses_every_other_spelling(void **state)
{
    static const char *const bad[] = {
        "Zg==",         /* padding */
        "Zm9v+", "Zm/", /* the standard alphabet */
        "Zm 9v",        /* whitespace */
        "Zm9vY",        /* n % 4 == 1: no encoder writes that */
        "Zh",           /* "f" with non-zero unused bits ("Zg" is the one spelling) */
        "Zm9",          /* "fo" with non-zero unused bits ("Zm8" is the one spelling) */
    };
    unsigned char out[8];

    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        assert_int_equal(sg_b64url_decode(out, bad[i], strlen(bad[i])), -1);
        assert_false(sg_b64url_valid(bad[i], strlen(bad[i])));
    }
    assert_int_equal(sg_b64url_decode(out, "Zm8", 3), 2);
    assert_true(sg_b64url_valid("Zm8", 3));
    /* A NUL inside is outside the alphabet too. */
    assert_int_equal(sg_b64url_decode(out, "Zm\0v", 4), -1);
    assert_false(sg_b64url_valid("Zm\0v", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_rfc4648_vectors_without_padding),
        cmocka_unit_test(uses_the_url_alphabet),
        cmocka_unit_test(round_trips_every_length),
        cmocka_unit_test(refuses_every_other_spelling),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
