/*
 * Unit tests for base/json.c: what the strict parser refuses (with its reason
 * and offset), what it accepts and how that is written back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#define L(s) (s), (sizeof(s) - 1) /* a literal with its length (it may hold NUL) */

static const sg_json_limits_t lim8 = {.max_depth = 8};

/* ---- refusals ---- */

typedef struct {
    const char *name;
    const char *in;
    size_t len;
    const char *why; /* the exact static reason */
    size_t off;
} reject_case_t;

static const reject_case_t rejects[] = {
    {"empty input", L(""), "empty input", 0},
    {"only whitespace", L(" \t\r\n"), "empty input", 4},
    {"utf8 byte order mark", L("\xEF\xBB\xBF{}"), "byte order mark", 0},
    {"word after the value", L("{} x"), "unexpected bytes after the value", 3},
    {"second object", L("{}{}"), "unexpected bytes after the value", 2},
    {"NUL after the value", L("{}\0"), "unexpected bytes after the value", 2},
    {"trailing comma in array", L("[1,]"), "unexpected character", 3},
    {"trailing comma in object", L("{\"a\":1,}"), "expected a member name", 7},
    {"duplicate member", L("{\"a\":1,\"a\":2}"), "duplicate member name", 12},
    {"duplicate nested member", L("{\"x\":{\"id\":\"a\",\"id\":\"b\"}}"), "duplicate member name",
     23},
    {"duplicate after unescaping", L("{\"a\":1,\"\\u0061\":2}"), "duplicate member name", 17},
    {"duplicate with different values types", L("[{\"k\":null,\"k\":{}}]"), "duplicate member name",
     17},
    {"leading zero", L("[01]"), "leading zero in number", 1},
    {"negative leading zero", L("-01"), "leading zero in number", 1},
    {"NaN", L("NaN"), "unexpected character", 0},
    {"Infinity", L("[Infinity]"), "unexpected character", 1},
    {"negative Infinity", L("-Infinity"), "invalid number", 1},
    {"fraction without digits", L("[1.]"), "invalid number", 2},
    {"exponent without digits", L("1e+"), "invalid number", 3},
    {"plus sign", L("+1"), "unexpected character", 0},
    {"leading dot", L(".5"), "unexpected character", 0},
    {"hex number", L("0x10"), "unexpected bytes after the value", 1},
    {"line comment", L("// c\n{}"), "unexpected character", 0},
    {"block comment", L("{/*c*/}"), "expected a member name", 1},
    {"escaped NUL", L("\"a\\u0000b\""), "\\u0000 in string", 2},
    {"lone high surrogate", L("\"\\ud800\""), "unpaired surrogate escape", 1},
    {"lone low surrogate", L("\"\\uDC00\""), "unpaired surrogate escape", 1},
    {"high surrogate then letter", L("\"\\ud800\\u0041\""), "unpaired surrogate escape", 1},
    {"high surrogate then text", L("\"\\ud800xxxxxx\""), "unpaired surrogate escape", 1},
    {"two high surrogates", L("\"\\ud800\\ud800\""), "unpaired surrogate escape", 1},
    {"overlong two bytes", L("\"\xC0\xAF\""), "invalid UTF-8", 1},
    {"overlong three bytes", L("\"\xE0\x80\xAF\""), "invalid UTF-8", 1},
    {"overlong four bytes", L("\"\xF0\x80\x80\xAF\""), "invalid UTF-8", 1},
    {"surrogate in UTF-8", L("\"\xED\xA0\x80\""), "invalid UTF-8", 1},
    {"above U+10FFFF", L("\"\xF4\x90\x80\x80\""), "invalid UTF-8", 1},
    {"F5 lead byte", L("\"\xF5\x80\x80\x80\""), "invalid UTF-8", 1},
    {"lone continuation byte", L("\"a\x80\""), "invalid UTF-8", 2},
    {"truncated sequence", L("\"\xE2\x82\""), "invalid UTF-8", 1},
    {"truncated at end of input", L("\"\xE2\x82"), "invalid UTF-8", 1},
    {"invalid UTF-8 in a member name", L("{\"\xFF\":1}"), "invalid UTF-8", 2},
    {"non-ASCII outside strings", L("\xC3\xA9"), "unexpected character", 0},
    {"raw control character", L("\"a\x01\""), "control character in string", 2},
    {"raw newline in string", L("\"a\nb\""), "control character in string", 2},
    {"raw NUL in string", L("\"a\0b\""), "control character in string", 2},
    {"unknown escape", L("\"\\x\""), "invalid escape", 1},
    {"escaped non-ASCII", L("\"\\\xC3\xA9\""), "invalid escape", 1},
    {"short unicode escape", L("\"\\u12\""), "invalid \\u escape", 1},
    {"non-hex unicode escape", L("\"\\u12g4\""), "invalid \\u escape", 1},
    {"unterminated string", L("\"abc"), "unterminated string", 0},
    {"backslash at end", L("\"abc\\"), "unterminated string", 0},
    {"short literal", L("tru"), "invalid literal", 0},
    {"capitalised literal", L("True"), "unexpected character", 0},
    {"null prefix", L("nul"), "invalid literal", 0},
    {"missing comma", L("[1 2]"), "expected ',' or ']'", 3},
    {"missing colon", L("{\"a\" 1}"), "expected ':'", 5},
    {"number as member name", L("{1:2}"), "expected a member name", 1},
    {"single quotes", L("{'a':1}"), "expected a member name", 1},
    {"unclosed array", L("["), "unexpected end of input", 1},
    {"unclosed object after value", L("{\"a\":1"), "unexpected end of input", 6},
    {"missing value", L("{\"a\":}"), "unexpected character", 5},
    {"nine levels", L("[[[[[[[[[]]]]]]]]]"), "nesting too deep", 8},
    {"nine levels of objects",
     L("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}"), "nesting too deep",
     40},
};

static void refuses_each_malformed_document_with_its_reason_and_offset(void **state)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(rejects); i++) {
        const reject_case_t *c = &rejects[i];
        sg_json_err_t err;
        sg_json_t *v = NULL;
        sg_pool_t pool;
        int rv;

        sg_pool_init(&pool, 1024);
        rv = sg_json_parse(&pool, c->in, c->len, &lim8, &v, &err);
        if (rv != SG_EPROTO || err.why == NULL || strcmp(err.why, c->why) != 0 ||
            err.off != c->off)
            fail_msg("case \"%s\": rv %d why \"%s\" off %zu, expected \"%s\" at %zu", c->name, rv,
                     err.why ? err.why : "(null)", err.off, c->why, c->off);
        sg_pool_dispose(&pool);
    }
}

/* ---- round trips ---- */

typedef struct {
    const char *name;
    const char *in;
    size_t len;
    const char *out; /* exact compact serialisation */
} accept_case_t;

static const accept_case_t accepts[] = {
    {"whitespace everywhere", L(" {\t\"a\" :\r\n[ 1 , 2.5e-3 , -0 , true , false , null ] } \n"),
     "{\"a\":[1,2.5e-3,-0,true,false,null]}"},
    {"numbers keep their source text", L("[0,-1.50E+10,1e5,123456789012345678901234567890]"),
     "[0,-1.50E+10,1e5,123456789012345678901234567890]"},
    {"scalar top level", L("\t\r\n 1 \t\r\n"), "1"},
    {"empty containers", L("[[],{},[{}]]"), "[[],{},[{}]]"},
    {"member order is kept", L("{\"b\":1,\"a\":2,\"c\":3}"), "{\"b\":1,\"a\":2,\"c\":3}"},
    {"names differing in case are distinct", L("{\"a\":1,\"A\":2}"), "{\"a\":1,\"A\":2}"},
    {"names differing in length are distinct", L("{\"a\":1,\"a \":2,\"\":3}"),
     "{\"a\":1,\"a \":2,\"\":3}"},
    {"unicode escapes become UTF-8", L("\"\\u00e9\\u20AC\\ud83d\\ude00\""),
     "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""},
    {"highest code point escape", L("\"\\uDBFF\\uDFFF\""), "\"\xF4\x8F\xBF\xBF\""},
    {"short escapes", L("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
     "\"\\\"\\\\/\\u0008\\u000c\\u000a\\u000d\\u0009\""},
    {"escaped control characters", L("\"\\u0001\\u001F\""), "\"\\u0001\\u001f\""},
    {"DEL is escaped", L("\"\x7F\""), "\"\\u007f\""},
    {"raw UTF-8 stays raw, U+2028 is escaped (base/str.h)",
     L("\"\xC3\xA9\xF0\x9F\x98\x80\xE2\x80\xA8\""), "\"\xC3\xA9\xF0\x9F\x98\x80\\u2028\""},
    {"BOM character inside a string", L("\"\xEF\xBB\xBF\""), "\"\xEF\xBB\xBF\""},
    {"largest code point raw", L("\"\xF4\x8F\xBF\xBF\""), "\"\xF4\x8F\xBF\xBF\""},
    {"eight levels", L("[[[[[[[[]]]]]]]]"), "[[[[[[[[]]]]]]]]"},
    {"escaped member names", L("{\"\\u0061\\\"\":\"\\/\"}"), "{\"a\\\"\":\"/\"}"},
    {"slash in a name is not a duplicate of its escape", L("{\"/\":1,\"\\\\/\":2}"),
     "{\"/\":1,\"\\\\/\":2}"},
    /* Strings the parser did not find plain (sg_json_t.str_plain/name_plain 0) go through the
     * escaper on the way out; plain ones are copied: both in names and in values. */
    {"raw DEL, U+2028 and non-ASCII in names and values",
     L("{\"n\x7f\":\"a\xe2\x80\xa8z\",\"\xc3\xa9\":\"\xc3\xa9\",\"p\":\"plain\"}"),
     "{\"n\\u007f\":\"a\\u2028z\",\"\xc3\xa9\":\"\xc3\xa9\",\"p\":\"plain\"}"},
    {"nine distinct members (sorted check)",
     L("{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9}"),
     "{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9}"},
};

static void accepts_valid_documents_and_writes_them_compactly(void **state)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(accepts); i++) {
        const accept_case_t *c = &accepts[i];
        sg_json_err_t err = {0};
        sg_json_t *v = NULL, *again = NULL;
        sg_pool_t pool;
        sg_buf_t out, out2;
        int rv;

        sg_pool_init(&pool, 1024);
        sg_buf_init(&out, 1 << 20);
        sg_buf_init(&out2, 1 << 20);
        rv = sg_json_parse(&pool, c->in, c->len, &lim8, &v, &err);
        if (rv != SG_OK)
            fail_msg("case \"%s\": refused (%s at %zu)", c->name, err.why, err.off);
        assert_int_equal(sg_json_serialize(v, &out), SG_OK);
        assert_int_equal(sg_json_size(v), out.len);
        if (out.len != strlen(c->out) || memcmp(out.data, c->out, out.len) != 0)
            fail_msg("case \"%s\": wrote %.*s", c->name, (int)out.len, out.data);
        /* What we write parses again to the same bytes. */
        assert_int_equal(sg_json_parse(&pool, out.data, out.len, &lim8, &again, &err), SG_OK);
        assert_int_equal(sg_json_serialize(again, &out2), SG_OK);
        assert_int_equal(out2.len, out.len);
        assert_memory_equal(out2.data, out.data, out.len);
        sg_buf_dispose(&out);
        sg_buf_dispose(&out2);
        sg_pool_dispose(&pool);
    }
}

/* ---- the tree ---- */

static void builds_a_tree_with_names_types_and_order(void **state)
{
    static const char doc[] = "{\"z\":[1,\"s\"],\"a\":{\"k\":null},\"t\":true}";
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_json_parse(&pool, doc, sizeof(doc) - 1, &lim8, &v, &err), SG_OK);
    assert_int_equal(v->type, SG_JSON_OBJECT);
    assert_int_equal(v->nkids, 3);
    assert_string_equal(v->kids[0]->name.p, "z");
    assert_int_equal(v->kids[0]->type, SG_JSON_ARRAY);
    assert_int_equal(v->kids[0]->nkids, 2);
    assert_null(v->kids[0]->kids[0]->name.p); /* array items have no name */
    assert_string_equal(v->kids[0]->kids[0]->str.p, "1");
    assert_int_equal(v->kids[0]->kids[1]->type, SG_JSON_STRING);
    assert_string_equal(v->kids[1]->name.p, "a");
    assert_int_equal(v->kids[1]->kids[0]->type, SG_JSON_NULL);
    assert_int_equal(v->kids[2]->type, SG_JSON_TRUE);
    assert_ptr_equal(sg_json_get(v, "t", 1), v->kids[2]);
    assert_null(sg_json_get(v, "T", 1));  /* exact, not case-insensitive like cJSON */
    assert_null(sg_json_get(v, "tt", 2));
    assert_null(sg_json_get(v->kids[0], "z", 1)); /* not an object */
    assert_true(sg_json_is_string(v->kids[0]->kids[1], "s", 1));
    assert_false(sg_json_is_string(v->kids[0]->kids[0], "1", 1));
    sg_pool_dispose(&pool);
}

static void keeps_strings_that_hold_escaped_quotes_and_unicode_whole(void **state)
{
    static const char doc[] = "\"a\\u00e9\\\"b\"";
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    sg_pool_init(&pool, 256);
    assert_int_equal(sg_json_parse(&pool, doc, sizeof(doc) - 1, &lim8, &v, &err), SG_OK);
    assert_int_equal(v->str.n, 5);
    assert_memory_equal(v->str.p, "a\xC3\xA9\"b", 6); /* NUL-terminated too */
    sg_pool_dispose(&pool);
}

/* A large object: names that share long prefixes, checked by sorting. */
static char *large_object(size_t n, int dup)
{
    size_t cap = n * 48 + 16, len = 0;
    char *s = malloc(cap);

    assert_non_null(s);
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        /* With dup, the last name repeats the first one. */
        size_t id = dup && i == n - 1 ? 0 : i;

        len += (size_t)snprintf(s + len, cap - len, "%s\"member-with-a-long-prefix-%zu\":%zu",
                                i ? "," : "", id, i);
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static void accepts_an_object_of_ten_thousand_distinct_members(void **state)
{
    char *doc = large_object(10000, 0);
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    sg_pool_init(&pool, 4096);
    assert_int_equal(sg_json_parse(&pool, doc, strlen(doc), &lim8, &v, &err), SG_OK);
    assert_int_equal(v->nkids, 10000);
    /* The check sorted scratch space, not the members. */
    assert_string_equal(v->kids[0]->name.p, "member-with-a-long-prefix-0");
    assert_string_equal(v->kids[9999]->name.p, "member-with-a-long-prefix-9999");
    sg_pool_dispose(&pool);
    free(doc);
}

static void refuses_a_duplicate_among_ten_thousand_members(void **state)
{
    char *doc = large_object(10000, 1);
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    sg_pool_init(&pool, 4096);
    assert_int_equal(sg_json_parse(&pool, doc, strlen(doc), &lim8, &v, &err), SG_EPROTO);
    assert_string_equal(err.why, "duplicate member name");
    assert_int_equal(err.off, strlen(doc) - 1);
    sg_pool_dispose(&pool);
    free(doc);
}

static void refuses_deep_nesting_without_recursing(void **state)
{
    /* Far deeper than any C stack would survive with a recursive parser. */
    size_t depth = 1000000;
    char *doc = malloc(2 * depth);
    sg_json_limits_t lim = {.max_depth = 64};
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    assert_non_null(doc);
    memset(doc, '[', depth);
    memset(doc + depth, ']', depth);
    sg_pool_init(&pool, 4096);
    assert_int_equal(sg_json_parse(&pool, doc, 2 * depth, &lim, &v, &err), SG_EPROTO);
    assert_string_equal(err.why, "nesting too deep");
    assert_int_equal(err.off, 64);
    lim.max_depth = 0; /* only scalars */
    assert_int_equal(sg_json_parse(&pool, "[]", 2, &lim, &v, &err), SG_EPROTO);
    assert_int_equal(sg_json_parse(&pool, "7", 1, &lim, &v, &err), SG_OK);
    sg_pool_dispose(&pool);
    free(doc);
}

static void refuses_more_values_than_the_limit(void **state)
{
    sg_json_limits_t lim = {.max_depth = 8, .max_values = 4};
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_json_parse(&pool, L("[1,2,3]"), &lim, &v, &err), SG_OK);
    assert_int_equal(sg_json_parse(&pool, L("[1,2,3,4]"), &lim, &v, &err), SG_EPROTO);
    assert_string_equal(err.why, "too many values");
    assert_int_equal(err.off, 7);
    sg_pool_dispose(&pool);
}

static void serializer_leaves_the_buffer_unchanged_when_it_is_too_small(void **state)
{
    static const char doc[] = "{\"a\":\"0123456789\",\"b\":[true,false]}";
    sg_json_err_t err;
    sg_json_t *v;
    sg_pool_t pool;
    sg_buf_t out;

    sg_pool_init(&pool, 1024);
    assert_int_equal(sg_json_parse(&pool, doc, sizeof(doc) - 1, &lim8, &v, &err), SG_OK);
    sg_buf_init(&out, sizeof(doc) - 2);
    assert_int_equal(sg_buf_append(&out, "xy", 2), SG_OK);
    sg_buf_consume(&out, 1); /* an unread "y" that must survive a compaction */
    assert_int_equal(sg_json_serialize(v, &out), SG_ETOOBIG);
    assert_int_equal(sg_buf_avail(&out), 1);
    assert_memory_equal(sg_buf_head(&out), "y", 1);
    sg_buf_dispose(&out);
    sg_buf_init(&out, sizeof(doc) - 1);
    assert_int_equal(sg_json_serialize(v, &out), SG_OK);
    assert_memory_equal(out.data, doc, sizeof(doc) - 1);
    sg_buf_dispose(&out);
    sg_pool_dispose(&pool);
}

static void writes_strings_with_every_control_character_escaped(void **state)
{
    char raw[34], expect[256];
    size_t n = 0;
    sg_buf_t out;

    for (int c = 0; c < 0x20; c++)
        raw[c] = (char)c;
    raw[32] = '"';
    raw[33] = 'x';
    expect[n++] = '"';
    for (int c = 0; c < 0x20; c++)
        n += (size_t)snprintf(expect + n, sizeof(expect) - n, "\\u%04x", c);
    n += (size_t)snprintf(expect + n, sizeof(expect) - n, "\\\"x\"");
    sg_buf_init(&out, 4096);
    assert_int_equal(sg_json_string_size(raw, sizeof(raw)), n);
    assert_int_equal(sg_json_write_string(&out, raw, sizeof(raw)), SG_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, expect, n);
    sg_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refuses_each_malformed_document_with_its_reason_and_offset),
        cmocka_unit_test(accepts_valid_documents_and_writes_them_compactly),
        cmocka_unit_test(builds_a_tree_with_names_types_and_order),
        cmocka_unit_test(keeps_strings_that_hold_escaped_quotes_and_unicode_whole),
        cmocka_unit_test(accepts_an_object_of_ten_thousand_distinct_members),
        cmocka_unit_test(refuses_a_duplicate_among_ten_thousand_members),
        cmocka_unit_test(refuses_deep_nesting_without_recursing),
        cmocka_unit_test(refuses_more_values_than_the_limit),
        cmocka_unit_test(serializer_leaves_the_buffer_unchanged_when_it_is_too_small),
        cmocka_unit_test(writes_strings_with_every_control_character_escaped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
