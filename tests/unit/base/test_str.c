/*
 * Unit tests for base/str.c's one escaper: the JSON form every log record, fault body and
 * re-serialised body uses (sg_json_str_size/_put, sg_buf_json_str), the error log's text
 * form (sg_log_escape, and sg__log's line itself) and the UTF-8 decoder under both. Every
 * class of character that could split a line, drive a terminal or reorder what a viewer
 * shows is checked, and so is what must be left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

/* s[0, n) through sg_buf_json_str (the log form) must be exactly want (quotes included). */
static void assert_json(const char *s, size_t n, const char *want)
{
    sg_buf_t b;

    sg_buf_init(&b, 1 << 16);
    assert_int_equal(sg_buf_json_str(&b, s, n), SG_OK);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("escaped %zu byte(s) as '%.*s', expected '%s'", n, (int)b.len, b.data, want);
    assert_int_equal(sg_json_str_size(s, n, 0), b.len);
    sg_buf_dispose(&b);
}

#define JSON(lit, want) assert_json(lit, sizeof(lit) - 1, want)

/* Every byte of out[0, n) is printable ASCII or part of a valid UTF-8 character that is not
 * one the escaper exists for: what a log line may hold raw. */
static void assert_log_safe(const char *out, size_t n)
{
    const unsigned char *p = (const unsigned char *)out, *e = p + n;
    uint32_t cp;
    size_t k;

    while (p < e) {
        k = sg_utf8_char(p, (size_t)(e - p), &cp);
        if (k == 0)
            fail_msg("invalid UTF-8 at offset %zu of '%.*s'",
                     (size_t)(p - (const unsigned char *)out), (int)n, out);
        if (sg_cp_unsafe(cp))
            fail_msg("raw U+%04X at offset %zu", (unsigned)cp,
                     (size_t)(p - (const unsigned char *)out));
        p += k;
    }
}

static void escapes_every_c0_control_and_del_as_a_u_escape(void **state)
{
    char in[1], want[16];

    for (int c = 0; c < 0x80; c++) {
        if (c >= 0x20 && c != 0x7F)
            continue;
        in[0] = (char)c;
        snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        assert_json(in, 1, want);
    }
    JSON("a\r\nb\tc\x1b[31md", "\"a\\u000d\\u000ab\\u0009c\\u001b[31md\"");
}

static void escapes_quotes_and_backslashes_with_a_backslash(void **state)
{
    JSON("\"},{\"stage\":\"allow\\", "\"\\\"},{\\\"stage\\\":\\\"allow\\\\\"");
    JSON("/a'b<c>&", "\"/a'b<c>&\"");
}

static void escapes_every_c1_control_written_as_two_bytes(void **state)
{
    char in[2], want[16];

    for (int c = 0x80; c <= 0x9F; c++) {
        in[0] = (char)0xC2;
        in[1] = (char)c;
        snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        assert_json(in, 2, want);
    }
    /* NO-BREAK SPACE, the first character after them, is text. */
    JSON("\xc2\xa0", "\"\xc2\xa0\"");
}

static void escapes_line_and_paragraph_separators(void **state)
{
    JSON("a\xe2\x80\xa8{\"seq\":1}\xe2\x80\xa9", "\"a\\u2028{\\\"seq\\\":1}\\u2029\"");
}

static void escapes_each_bidirectional_control(void **state)
{
    static const uint32_t bidi[] = {0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C,
                                    0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069};
    /* Their neighbours are ordinary characters (ZWJ, NNBSP, ...). */
    static const uint32_t text[] = {0x061B, 0x061D, 0x200D, 0x2010, 0x2027, 0x202F, 0x2065, 0x206A};
    char in[3], want[16];

    for (size_t i = 0; i < SG_ARRAY_SIZE(bidi); i++) {
        uint32_t cp = bidi[i];
        size_t n = cp < 0x800 ? 2 : 3;

        if (n == 2) {
            in[0] = (char)(0xC0 | cp >> 6);
            in[1] = (char)(0x80 | (cp & 0x3F));
        } else {
            in[0] = (char)(0xE0 | cp >> 12);
            in[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            in[2] = (char)(0x80 | (cp & 0x3F));
        }
        snprintf(want, sizeof(want), "\"\\u%04x\"", (unsigned)cp);
        assert_json(in, n, want);
        assert_true(sg_cp_unsafe(cp));
    }
    for (size_t i = 0; i < SG_ARRAY_SIZE(text); i++)
        assert_false(sg_cp_unsafe(text[i]));
    /* "Trojan Source": RLO makes "txt.exe" show as "exe.txt"; the escape shows the trick. */
    JSON("evil\xe2\x80\xaetxt.exe", "\"evil\\u202etxt.exe\"");
}

static void leaves_valid_non_ascii_text_alone(void **state)
{
    /* Latin-1 letters, a check mark, the euro sign, CJK, an emoji (4 bytes), U+FFFD itself
     * and the last code point: all copied as they are. */
    JSON("\xc3\xa9\xc3\xbc \xe2\x9c\x93 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"
         " \xef\xbf\xbd \xf4\x8f\xbf\xbf",
         "\"\xc3\xa9\xc3\xbc \xe2\x9c\x93 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"
         " \xef\xbf\xbd \xf4\x8f\xbf\xbf\"");
    JSON("", "\"\"");
}

static void writes_each_byte_of_invalid_utf8_as_the_replacement_character(void **state)
{
    JSON("m\xff" "al", "\"m\\ufffdal\"");                       /* never a UTF-8 byte */
    JSON("\x80x", "\"\\ufffdx\"");                              /* stray continuation byte */
    JSON("\xc0\xaf", "\"\\ufffd\\ufffd\"");                     /* overlong '/' */
    JSON("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");          /* overlong, three bytes */
    JSON("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");          /* a UTF-16 surrogate */
    JSON("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* above U+10FFFF */
    JSON("\xf5", "\"\\ufffd\"");
    JSON("ab\xe2\x80", "\"ab\\ufffd\\ufffd\"");                 /* cut short at the end */
    JSON("\xe2\x80x\xe2\x80\xa8", "\"\\ufffd\\ufffdx\\u2028\"");  /* cut short, then more */
    /* Not \u00ff: that would be a different, valid character (y with diaeresis). */
}

static void the_serializer_form_keeps_invalid_bytes_for_its_strict_reparse(void **state)
{
    static const char in[] = "a\xff\"\xe2\x80\xa8\n";
    static const char want[] = "\"a\xff\\\"\\u2028\\u000a\"";
    char out[64];
    size_t n = sg_json_str_size(in, sizeof(in) - 1, SG_ESC_RAW_INVALID);

    assert_int_equal(n, sizeof(want) - 1);
    assert_ptr_equal(sg_json_str_put(out, in, sizeof(in) - 1, SG_ESC_RAW_INVALID), out + n);
    assert_memory_equal(out, want, n);
}

/* Every string of two bytes followed by 'x', and every one of three starting with a lead
 * byte of a three-byte sequence (where U+2028 and the bidi controls live): the size is
 * exactly what is written, and what is written may stand raw in a log line. */
static void every_short_byte_string_comes_out_log_safe_and_exactly_measured(void **state)
{
    unsigned char in[4];
    char out[32];

    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            in[0] = (unsigned char)a;
            in[1] = (unsigned char)b;
            in[2] = 'x';
            size_t n = sg_json_str_size((const char *)in, 3, 0);
            assert_ptr_equal(sg_json_str_put(out, (const char *)in, 3, 0), out + n);
            assert_log_safe(out, n);
            for (unsigned c = 0; a >= 0xE0 && a <= 0xEF && c < 256; c++) {
                in[2] = (unsigned char)c;
                n = sg_json_str_size((const char *)in, 3, 0);
                assert_ptr_equal(sg_json_str_put(out, (const char *)in, 3, 0), out + n);
                assert_log_safe(out, n);
            }
        }
    }
}

static void decodes_utf8_at_the_edges_of_each_length(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        uint32_t cp;
    } ok[] = {{"\x7f", 1, 0x7F},           {"\xc2\x80", 2, 0x80},
              {"\xdf\xbf", 2, 0x7FF},        {"\xe0\xa0\x80", 3, 0x800},
              {"\xed\x9f\xbf", 3, 0xD7FF},   {"\xee\x80\x80", 3, 0xE000},
              {"\xef\xbf\xbf", 3, 0xFFFF},   {"\xf0\x90\x80\x80", 4, 0x10000},
              {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF}};
    static const char *const bad[] = {"\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                      "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80",
                                      "\xc2", "\xc2\x41", "\xe2\x82"};
    uint32_t cp;

    for (size_t i = 0; i < SG_ARRAY_SIZE(ok); i++) {
        assert_int_equal(sg_utf8_char((const unsigned char *)ok[i].s, ok[i].n, &cp), ok[i].n);
        assert_int_equal(cp, ok[i].cp);
    }
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++)
        if (sg_utf8_char((const unsigned char *)bad[i], strlen(bad[i]), &cp) != 0)
            fail_msg("bad[%zu] accepted as U+%04X", i, (unsigned)cp);
    /* A valid sequence that does not fit the bytes given is not valid. */
    assert_int_equal(sg_utf8_char((const unsigned char *)"\xe2\x80\xa8", 2, &cp), 0);
}

static void a_null_string_is_null_and_a_full_buffer_stays_unchanged(void **state)
{
    sg_buf_t b;

    sg_buf_init(&b, 8);
    assert_int_equal(sg_buf_json_str(&b, NULL, 5), SG_OK);
    assert_int_equal(sg_buf_json_cstr(&b, NULL), SG_OK);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "nullnull", 8);
    sg_buf_dispose(&b);
    sg_buf_init(&b, 8);
    assert_int_equal(sg_buf_lit(&b, "ab"), SG_OK);
    assert_int_equal(sg_buf_json_cstr(&b, "\n"), SG_ETOOBIG); /* "\u000a" needs 8 more */
    assert_int_equal(b.len, 2);
    assert_int_equal(sg_buf_json_cstr(&b, "abcd"), SG_OK);
    assert_memory_equal(b.data, "ab\"abcd\"", 8);
    sg_buf_dispose(&b);
}

static void the_error_log_form_escapes_the_same_characters_and_backslashes(void **state)
{
    static const char in[] =
        "GET /a\"b\\c\r\n\xc2\x85\xe2\x80\xa8\xe2\x80\xae\xe2\x81\xa6\xff \xc3\xa9";
    static const char want[] =
        "GET /a\"b\\\\c\\u000d\\u000a\\u0085\\u2028\\u202e\\u2066\\ufffd \xc3\xa9";
    char out[256];
    size_t n = sg_log_escape(out, sizeof(out), in, sizeof(in) - 1);

    if (n != sizeof(want) - 1 || memcmp(out, want, n) != 0)
        fail_msg("wrote '%.*s'", (int)n, out);
}

static void the_error_log_form_never_stores_half_an_escape_or_half_a_character(void **state)
{
    char out[16];

    assert_int_equal(sg_log_escape(out, 5, "ab\ncd", 5), 2); /* "\u000a" would not fit */
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(sg_log_escape(out, 3, "a\xc3\xa9", 3), 3);
    assert_int_equal(sg_log_escape(out, 2, "a\xc3\xa9", 3), 1); /* not the first byte of é */
    assert_int_equal(sg_log_escape(out, 7, "ab\\", 3), 4);
    assert_int_equal(sg_log_escape(out, 3, "ab\\", 3), 2);
    assert_int_equal(sg_log_escape(out, 0, "a", 1), 0);
}

/* sg__log writes one line to fd 2 whatever the message quotes. */
static void an_error_log_line_stays_one_line_whatever_it_quotes(void **state)
{
    static const char client[] =
        "/x\n2030-01-01T00:00:00.000Z [error] forged\r\xe2\x80\xa8\xe2\x80\xae\x1b[2J";
    FILE *tmp = tmpfile(); /* already unlinked */
    char got[4096];
    int fd = tmp != NULL ? fileno(tmp) : -1, saved = dup(STDERR_FILENO);
    sg_log_level_t level = sg_log_level;
    ssize_t n;

    assert_true(fd >= 0 && saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    sg_log_level = SG_LOG_DEBUG;
    sg_log(SG_LOG_DEBUG, "req=1 refused '%s'", client);
    sg_log_level = level;
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    n = pread(fd, got, sizeof(got) - 1, 0);
    fclose(tmp);
    assert_true(n > 0);
    got[n] = '\0';
    assert_non_null(strstr(got, " [debug] req=1 refused '/x\\u000a2030-01-01T00:00:00.000Z [error] "
                                "forged\\u000d\\u2028\\u202e\\u001b[2J'\n"));
    assert_ptr_equal(strchr(got, '\n'), got + n - 1); /* one line */
    assert_log_safe(got, (size_t)n - 1);
}

/* The plain table, which lets runs skip esc_char, says "as it is" for exactly the bytes
 * esc_char writes as they are when they stand alone; and a special byte is found wherever it
 * sits in a run, before, inside or after the four-at-a-time stride. */
static void the_plain_fast_path_agrees_with_the_careful_one(void **state)
{
    char s[16], want[64];

    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;

        assert_int_equal(sg_json_plain[b], sg_json_str_size(&c, 1, 0) == 3);
    }
    for (size_t n = 1; n < sizeof(s); n++) {
        for (size_t at = 0; at < n; at++) {
            memset(s, 'a', n);
            s[at] = '"';
            snprintf(want, sizeof(want), "\"%.*s\\\"%.*s\"", (int)at, s, (int)(n - at - 1),
                     s + at + 1);
            assert_json(s, n, want);
            s[at] = '\x01';
            snprintf(want, sizeof(want), "\"%.*s\\u0001%.*s\"", (int)at, s,
                     (int)(n - at - 1), s + at + 1);
            assert_json(s, n, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_every_c0_control_and_del_as_a_u_escape),
        cmocka_unit_test(escapes_quotes_and_backslashes_with_a_backslash),
        cmocka_unit_test(escapes_every_c1_control_written_as_two_bytes),
        cmocka_unit_test(escapes_line_and_paragraph_separators),
        cmocka_unit_test(escapes_each_bidirectional_control),
        cmocka_unit_test(leaves_valid_non_ascii_text_alone),
        cmocka_unit_test(writes_each_byte_of_invalid_utf8_as_the_replacement_character),
        cmocka_unit_test(the_serializer_form_keeps_invalid_bytes_for_its_strict_reparse),
        cmocka_unit_test(every_short_byte_string_comes_out_log_safe_and_exactly_measured),
        cmocka_unit_test(decodes_utf8_at_the_edges_of_each_length),
        cmocka_unit_test(a_null_string_is_null_and_a_full_buffer_stays_unchanged),
        cmocka_unit_test(the_error_log_form_escapes_the_same_characters_and_backslashes),
        cmocka_unit_test(the_error_log_form_never_stores_half_an_escape_or_half_a_character),
        cmocka_unit_test(an_error_log_line_stays_one_line_whatever_it_quotes),
        cmocka_unit_test(the_plain_fast_path_agrees_with_the_careful_one),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
