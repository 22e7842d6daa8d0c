/*
 * tests/unit/proxy/test_h1_msg.c - the HTTP/1 message rules both directions share
 * (proxy/h1_msg.c): field-name and field-value syntax, gathering a field from the pieces
 * http_parser hands over (obs-fold included), the framing fields, and the chunked framing
 * with its limits. The same rules at work on real connections: tests/integration/
 * 27_bad_http1.sh and 80_h1_smuggling.sh (clients), 29_upstream_hostile.sh (the upstream).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/h1_msg.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- field syntax ---- */

static void accepts_every_tchar_in_a_field_name(void **state)
{
    (void)state;
    assert_true(sg_h1_token_valid(S("Content-Type")));
    assert_true(sg_h1_token_valid(S("x")));
    assert_true(sg_h1_token_valid(S("!#$%&'*+-.^_`|~09azAZ")));
}

static void refuses_an_empty_field_name(void **state)
{
    (void)state;
    assert_false(sg_h1_token_valid("", 0));
}

static void refuses_a_field_name_with_whitespace_or_a_separator(void **state)
{
    static const char seps[] = " \t\"(),/:;<=>?@[\\]{}";

    (void)state;
    assert_false(sg_h1_token_valid(S("Host ")));  /* a space before the colon */
    assert_false(sg_h1_token_valid(S(" Host")));
    assert_false(sg_h1_token_valid(S("X A")));
    for (size_t i = 0; i < sizeof(seps) - 1; i++) {
        char name[3] = {'a', seps[i], 'b'};

        assert_false(sg_h1_token_valid(name, sizeof(name)));
    }
}

static void refuses_a_field_name_with_a_control_byte_or_a_non_ascii_byte(void **state)
{
    (void)state;
    for (unsigned ch = 0; ch < 256; ch++) {
        char name[3] = {'a', (char)ch, 'b'};

        if (ch < 0x20 || ch >= 0x7f)
            assert_false(sg_h1_token_valid(name, sizeof(name)));
    }
    assert_false(sg_h1_token_valid(S("X-A\0")));
}

static void accepts_field_values_with_spaces_tabs_and_obs_text(void **state)
{
    (void)state;
    assert_true(sg_h1_value_valid("", 0));
    assert_true(sg_h1_value_valid(S("a b\tc")));
    assert_true(sg_h1_value_valid(S("caf\xc3\xa9 \x80\xff")));
    assert_true(sg_h1_value_valid(S("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")));
}

static void refuses_field_values_with_cr_lf_nul_del_or_another_control_byte(void **state)
{
    (void)state;
    for (unsigned ch = 0; ch < 0x20; ch++) {
        char val[3] = {'a', (char)ch, 'b'};

        if (ch != '\t')
            assert_false(sg_h1_value_valid(val, sizeof(val)));
    }
    assert_false(sg_h1_value_valid(S("a\x7f")));
    assert_false(sg_h1_value_valid(S("a\rb")));
    assert_false(sg_h1_value_valid(S("a\nb")));
    assert_false(sg_h1_value_valid(S("a\0b")));
}

/* ---- one field from the parser's pieces ---- */

typedef struct {
    sg_h1_hdr_t a;
    const char *why;
} hdr_fx_t;

static int hdr_setup(void **state)
{
    static hdr_fx_t fx;

    sg_h1_hdr_init(&fx.a, 64);
    fx.why = NULL;
    *state = &fx;
    return 0;
}

static int hdr_teardown(void **state)
{
    hdr_fx_t *fx = *state;

    sg_h1_hdr_dispose(&fx->a);
    return 0;
}

/* One read: the parser was given buf, and hands over [off, off + n) of it. */
static int name_piece(hdr_fx_t *fx, const char *buf, size_t len, size_t off, size_t n)
{
    sg_h1_hdr_input(&fx->a, buf + len);
    return sg_h1_hdr_name(&fx->a, buf + off, n);
}

static int value_piece(hdr_fx_t *fx, const char *buf, size_t len, size_t off, size_t n)
{
    sg_h1_hdr_input(&fx->a, buf + len);
    return sg_h1_hdr_value(&fx->a, buf + off, n, &fx->why);
}

static void gathers_a_field_split_across_reads(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r1[] = "X-Lo", r2[] = "ng: ab", r3[] = "cd  \r\n";
    sg_h1_field_t f;

    /* "X-Long: abcd  \r\n" in three reads: the name and the value each in two pieces,
     * every piece but the last ending where its read ended. */
    assert_int_equal(name_piece(fx, r1, 4, 0, 4), SG_OK);
    assert_false(sg_h1_hdr_complete(&fx->a));
    assert_int_equal(name_piece(fx, r2, 6, 0, 2), SG_OK);
    assert_int_equal(value_piece(fx, r2, 6, 4, 2), SG_OK);
    assert_true(sg_h1_hdr_complete(&fx->a));
    assert_int_equal(value_piece(fx, r3, 6, 0, 4), SG_OK);
    assert_true(sg_h1_hdr_pending(&fx->a));
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_OK);
    assert_memory_equal(f.name, "X-Long", 6);
    assert_int_equal(f.nlen, 6);
    assert_int_equal(f.vlen, 4); /* trailing whitespace is not part of the value */
    assert_memory_equal(f.value, "abcd", 4);
    assert_false(sg_h1_hdr_pending(&fx->a));
    assert_false(sg_h1_hdr_complete(&fx->a));
}

static void refuses_a_value_continued_by_obs_fold(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r[] = "X-A: one\r\n two\r\n\r\n";

    /* One read, two pieces of one value: the second can only come from a fold. */
    assert_int_equal(name_piece(fx, r, sizeof(r) - 1, 0, 3), SG_OK);
    assert_int_equal(value_piece(fx, r, sizeof(r) - 1, 5, 3), SG_OK);
    assert_int_equal(value_piece(fx, r, sizeof(r) - 1, 11, 3), SG_EPROTO);
    assert_string_equal(fx->why, "obsolete line folding");
}

static void takes_the_next_field_after_a_value_that_ended_a_read(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r1[] = "A: 1", r2[] = "\r\nB: 2\r\n";
    sg_h1_field_t f;

    assert_int_equal(name_piece(fx, r1, 4, 0, 1), SG_OK);
    assert_int_equal(value_piece(fx, r1, 4, 3, 1), SG_OK);
    /* the parser may hand over an empty last piece of the value at the CR */
    assert_int_equal(value_piece(fx, r2, 8, 0, 0), SG_OK);
    assert_true(sg_h1_hdr_complete(&fx->a));
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_OK);
    assert_memory_equal(f.name, "A", 1);
    assert_memory_equal(f.value, "1", 1);
    assert_int_equal(name_piece(fx, r2, 8, 2, 1), SG_OK);
    assert_int_equal(value_piece(fx, r2, 8, 5, 1), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_OK);
    assert_memory_equal(f.name, "B", 1);
    assert_memory_equal(f.value, "2", 1);
}

static void takes_an_empty_value(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r[] = "X-Empty:\r\n\r\n";
    sg_h1_field_t f;

    assert_int_equal(name_piece(fx, r, sizeof(r) - 1, 0, 7), SG_OK);
    assert_int_equal(value_piece(fx, r, sizeof(r) - 1, 8, 0), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_OK);
    assert_int_equal(f.nlen, 7);
    assert_int_equal(f.vlen, 0);
}

static void refuses_to_take_a_name_with_a_space_before_the_colon(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r[] = "Host : evil\r\n";
    sg_h1_field_t f;

    assert_int_equal(name_piece(fx, r, sizeof(r) - 1, 0, 5), SG_OK);
    assert_int_equal(value_piece(fx, r, sizeof(r) - 1, 7, 4), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_EPROTO);
    assert_string_equal(fx->why, "a field name is not a token");
}

static void refuses_to_take_a_value_with_a_bare_cr_or_a_nul(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r1[] = "X-A: a\rb\r\n", r2[] = "X-A: a\0b\r\n";
    sg_h1_field_t f;

    assert_int_equal(name_piece(fx, r1, sizeof(r1) - 1, 0, 3), SG_OK);
    assert_int_equal(value_piece(fx, r1, sizeof(r1) - 1, 5, 3), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_EPROTO);
    assert_string_equal(fx->why, "a field value holds a control character");
    sg_h1_hdr_reset(&fx->a);
    assert_int_equal(name_piece(fx, r2, sizeof(r2) - 1, 0, 3), SG_OK);
    assert_int_equal(value_piece(fx, r2, sizeof(r2) - 1, 5, 3), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_EPROTO);
}

static void bounds_a_field_by_the_buffer_maximum(void **state)
{
    hdr_fx_t *fx = *state;
    char big[80];

    memset(big, 'v', sizeof(big));
    assert_int_equal(name_piece(fx, "X", 1, 0, 1), SG_OK);
    assert_int_equal(value_piece(fx, big, sizeof(big), 0, sizeof(big)), SG_ETOOBIG);
}

static void forgets_a_half_gathered_field_on_reset(void **state)
{
    hdr_fx_t *fx = *state;
    static const char r[] = "Stale: x";
    sg_h1_field_t f;

    assert_int_equal(name_piece(fx, r, sizeof(r) - 1, 0, 5), SG_OK);
    assert_int_equal(value_piece(fx, r, sizeof(r) - 1, 7, 1), SG_OK);
    sg_h1_hdr_reset(&fx->a);
    assert_false(sg_h1_hdr_pending(&fx->a));
    assert_false(sg_h1_hdr_complete(&fx->a));
    assert_int_equal(name_piece(fx, "New", 3, 0, 3), SG_OK);
    assert_int_equal(value_piece(fx, "New: y", 6, 5, 1), SG_OK);
    assert_int_equal(sg_h1_hdr_take(&fx->a, &f, &fx->why), SG_OK);
    assert_int_equal(f.nlen, 3);
    assert_memory_equal(f.name, "New", 3);
}

/* ---- framing fields ---- */

static int judge(int http_minor, int request, const char *const *fields)
{
    sg_h1_framing_t fr;

    sg_h1_framing_reset(&fr);
    for (size_t i = 0; fields[i] != NULL; i += 2) {
        sg_h1_field_t f = {fields[i], fields[i + 1], strlen(fields[i]), strlen(fields[i + 1])};

        sg_h1_framing_count(&fr, &f);
    }
    return sg_h1_framing_judge(&fr, http_minor, request);
}

#define JUDGE(minor, req, ...) judge((minor), (req), (const char *const[]){__VA_ARGS__, NULL})

static void accepts_one_chunked_or_one_content_length(void **state)
{
    (void)state;
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "chunked"), SG_H1_FRAMING_OK);
    assert_int_equal(JUDGE(1, 1, "host", "a", "TRANSFER-ENCODING", "Chunked"), SG_H1_FRAMING_OK);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Content-Length", "5"), SG_H1_FRAMING_OK);
    assert_int_equal(JUDGE(1, 0, "Content-Length", "5"), SG_H1_FRAMING_OK);
    assert_int_equal(JUDGE(0, 1, "X", "y"), SG_H1_FRAMING_OK); /* 1.0 needs no Host */
}

static void tells_an_unimplemented_coding_before_chunked_apart(void **state)
{
    (void)state;
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "gzip, chunked"),
                     SG_H1_FRAMING_TE_CODING);
    assert_int_equal(JUDGE(1, 0, "Transfer-Encoding", "gzip,deflate ,chunked"),
                     SG_H1_FRAMING_TE_CODING);
    /* in HTTP/1.0, or with a Content-Length, it is misframed */
    assert_int_equal(JUDGE(0, 1, "Transfer-Encoding", "gzip, chunked"), SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "gzip, chunked",
                           "Content-Length", "5"),
                     SG_H1_FRAMING_TE_BAD);
}

static void refuses_every_other_transfer_encoding(void **state)
{
    (void)state;
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "gzip"), SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "chunked, gzip"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "chunked, chunked"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "gzip;q=1, chunked"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", ", chunked"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Transfer-Encoding", "chunked",
                           "Transfer-Encoding", "chunked"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(1, 0, "Transfer-Encoding", "chunked", "Content-Length", "5"),
                     SG_H1_FRAMING_TE_BAD);
    assert_int_equal(JUDGE(0, 0, "Transfer-Encoding", "chunked"), SG_H1_FRAMING_TE_BAD);
}

static void refuses_a_second_content_length(void **state)
{
    (void)state;
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Content-Length", "5", "content-length", "5"),
                     SG_H1_FRAMING_CL_DUP);
    assert_int_equal(JUDGE(1, 0, "Content-Length", "5", "Content-Length", "6"),
                     SG_H1_FRAMING_CL_DUP);
}

static void wants_exactly_one_host_in_an_http_1_1_request_only(void **state)
{
    (void)state;
    assert_int_equal(JUDGE(1, 1, "X", "y"), SG_H1_FRAMING_HOST);
    assert_int_equal(JUDGE(1, 1, "Host", "a", "Host", "b"), SG_H1_FRAMING_HOST);
    assert_int_equal(JUDGE(1, 0, "X", "y"), SG_H1_FRAMING_OK);
    assert_int_equal(JUDGE(1, 0, "Host", "a", "Host", "b"), SG_H1_FRAMING_OK);
}

/* ---- chunked framing ---- */

/* Checks s in pieces of step bytes (all at once when step is 0); done: the end of the body
 * was seen. The verdict must not depend on how the bytes were cut. */
static int chunked_in(const char *s, size_t n, uint64_t max, size_t step, int *done)
{
    sg_h1_chunk_t ck;
    const char *why = NULL;
    int rv = SG_OK;

    sg_h1_chunk_start(&ck);
    assert_true(sg_h1_chunk_on(&ck));
    for (size_t off = 0; rv == SG_OK && off < n;) {
        size_t k = step == 0 || step > n - off ? n - off : step;

        rv = sg_h1_chunk_check(&ck, s + off, k, max, &why);
        off += k;
    }
    if (rv != SG_OK)
        assert_non_null(why);
    if (done != NULL)
        *done = sg_h1_chunk_done(&ck);
    return rv;
}

static int chunked_max(const char *s, size_t n, uint64_t max)
{
    int whole = chunked_in(s, n, max, 0, NULL);

    assert_int_equal(chunked_in(s, n, max, 1, NULL), whole);
    assert_int_equal(chunked_in(s, n, max, 3, NULL), whole);
    return whole;
}

#define CHUNKED(lit) chunked_max(S(lit), UINT64_MAX)
#define CHUNKED_MAX(lit, max) chunked_max(S(lit), (max))

static void accepts_a_well_framed_body_however_it_is_cut(void **state)
{
    int done = 0;

    (void)state;
    assert_int_equal(CHUNKED("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), SG_OK);
    assert_int_equal(chunked_in(S("5\r\nhello\r\n0\r\n\r\n"), UINT64_MAX, 1, &done), SG_OK);
    assert_true(done);
    assert_int_equal(CHUNKED("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("0\r\n\r\n"), SG_OK);
}

static void takes_the_header_sections_last_lf_once(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("\n5\r\nhello\r\n0\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("\n\n5\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
}

static void is_not_done_before_the_last_crlf(void **state)
{
    int done = 1;

    (void)state;
    assert_int_equal(chunked_in(S("5\r\nhello\r\n0\r\n"), UINT64_MAX, 0, &done), SG_OK);
    assert_false(done);
    assert_int_equal(chunked_in(S("5\r\nhel"), UINT64_MAX, 0, &done), SG_OK);
    assert_false(done);
}

static void looks_at_nothing_after_the_end_of_the_body(void **state)
{
    int done = 0;

    (void)state;
    assert_int_equal(chunked_in(S("0\r\n\r\nGET / HTTP/1.1\r\n\x01"), UINT64_MAX, 0, &done),
                     SG_OK);
    assert_true(done);
}

static void takes_sizes_with_leading_zeros_without_counting_them(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("0005\r\nhello\r\n000\r\n\r\n"), SG_OK);
    /* twenty zeros, then one digit: one significant digit */
    assert_int_equal(CHUNKED("000000000000000000005\r\nhello\r\n0\r\n\r\n"), SG_OK);
    /* leading zeros do not make room under the limit either */
    assert_int_equal(CHUNKED_MAX("00000000000000000000b\r\n", 10), SG_ETOOBIG);
}

static void refuses_a_size_of_more_than_16_significant_digits(void **state)
{
    (void)state;
    /* 16 digits fit in 64 bits: the size line passes (the data would follow) */
    assert_int_equal(CHUNKED("ffffffffffffffff\r\n"), SG_OK);
    assert_int_equal(CHUNKED("0ffffffffffffffff\r\n"), SG_OK);
    assert_int_equal(CHUNKED("10000000000000000\r\n"), SG_ETOOBIG);
    assert_int_equal(CHUNKED("ffffffffffffffffff\r\n"), SG_ETOOBIG);
}

static void refuses_a_chunk_over_the_limit_on_its_size_line(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED_MAX("a\r\n0123456789\r\n0\r\n\r\n", 10), SG_OK);
    assert_int_equal(CHUNKED_MAX("b\r\n", 10), SG_ETOOBIG); /* before any data */
    /* the limit is for the whole body: what earlier chunks used is gone */
    assert_int_equal(CHUNKED_MAX("6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n", 10), SG_OK);
    assert_int_equal(CHUNKED_MAX("6\r\n012345\r\n5\r\n", 10), SG_ETOOBIG);
    assert_int_equal(CHUNKED_MAX("1\r\n", 0), SG_ETOOBIG);
}

static void refuses_a_size_that_is_not_hex_or_is_missing(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("zz\r\nab\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("\r\nhello\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("+5\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("0x5\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED(" 5\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5g\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
}

static void accepts_chunk_extensions_without_control_bytes(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("5;name=value\r\nhello\r\n0;last\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("5 ;a=\"q v\"\r\nhello\r\n0\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("5\t;a\r\nhello\r\n0\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("5;a\x01\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5;a\x7f\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5;a\0\r\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    /* a bare LF ends the line for another parser: "hello" would be read as a size */
    assert_int_equal(CHUNKED("5;a\nhello\r\n0\r\n\r\n"), SG_EPROTO);
}

static void refuses_a_bare_lf_or_a_bare_cr_on_the_size_line(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("5\nhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5\rhello\r\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5\r\nhello\r\n0\n\r\n"), SG_EPROTO);
}

static void refuses_anything_but_crlf_after_chunk_data(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("5\r\nhelloXY0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5\r\nhello\n0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5\r\nhello\r0\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("5\r\nhello!\r\n0\r\n\r\n"), SG_EPROTO); /* longer than its size */
    assert_int_equal(CHUNKED("5\r\nhello\r\r\n0\r\n\r\n"), SG_EPROTO);
}

static void takes_data_bytes_whatever_they_are(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("6\r\n\r\n0\r\n\0\r\n0\r\n\r\n"), SG_OK);
}

static void accepts_trailers_without_control_bytes(void **state)
{
    (void)state;
    assert_int_equal(CHUNKED("5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B: two words\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("0\r\nX-Tab:\ta\r\n\r\n"), SG_OK);
    assert_int_equal(CHUNKED("0\r\nX-Sum: 1\x01\r\n\r\n"), SG_EPROTO);
    assert_int_equal(CHUNKED("0\r\nX-Sum: 1\nX-B: 2\r\n\r\n"), SG_EPROTO); /* bare LF */
    assert_int_equal(CHUNKED("0\r\nX-Sum: 1\rX\r\n\r\n"), SG_EPROTO);       /* bare CR */
    assert_int_equal(CHUNKED("0\r\n\rX"), SG_EPROTO);
    assert_int_equal(CHUNKED("0\r\n\n"), SG_EPROTO); /* the last CRLF as a bare LF */
}

static void checks_nothing_when_off(void **state)
{
    sg_h1_chunk_t ck;
    const char *why = NULL;

    (void)state;
    sg_h1_chunk_start(&ck);
    sg_h1_chunk_off(&ck);
    assert_false(sg_h1_chunk_on(&ck));
    assert_int_equal(sg_h1_chunk_check(&ck, S("not chunked at all\x01"), UINT64_MAX, &why),
                     SG_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_every_tchar_in_a_field_name),
        cmocka_unit_test(refuses_an_empty_field_name),
        cmocka_unit_test(refuses_a_field_name_with_whitespace_or_a_separator),
        cmocka_unit_test(refuses_a_field_name_with_a_control_byte_or_a_non_ascii_byte),
        cmocka_unit_test(accepts_field_values_with_spaces_tabs_and_obs_text),
        cmocka_unit_test(refuses_field_values_with_cr_lf_nul_del_or_another_control_byte),
        cmocka_unit_test_setup_teardown(gathers_a_field_split_across_reads, hdr_setup,
                                        hdr_teardown),
        cmocka_unit_test_setup_teardown(refuses_a_value_continued_by_obs_fold, hdr_setup,
                                        hdr_teardown),
        cmocka_unit_test_setup_teardown(takes_the_next_field_after_a_value_that_ended_a_read,
                                        hdr_setup, hdr_teardown),
        cmocka_unit_test_setup_teardown(takes_an_empty_value, hdr_setup, hdr_teardown),
        cmocka_unit_test_setup_teardown(refuses_to_take_a_name_with_a_space_before_the_colon,
                                        hdr_setup, hdr_teardown),
        cmocka_unit_test_setup_teardown(refuses_to_take_a_value_with_a_bare_cr_or_a_nul,
                                        hdr_setup, hdr_teardown),
        cmocka_unit_test_setup_teardown(bounds_a_field_by_the_buffer_maximum, hdr_setup,
                                        hdr_teardown),
        cmocka_unit_test_setup_teardown(forgets_a_half_gathered_field_on_reset, hdr_setup,
                                        hdr_teardown),
        cmocka_unit_test(accepts_one_chunked_or_one_content_length),
        cmocka_unit_test(tells_an_unimplemented_coding_before_chunked_apart),
        cmocka_unit_test(refuses_every_other_transfer_encoding),
        cmocka_unit_test(refuses_a_second_content_length),
        cmocka_unit_test(wants_exactly_one_host_in_an_http_1_1_request_only),
        cmocka_unit_test(accepts_a_well_framed_body_however_it_is_cut),
        cmocka_unit_test(takes_the_header_sections_last_lf_once),
        cmocka_unit_test(is_not_done_before_the_last_crlf),
        cmocka_unit_test(looks_at_nothing_after_the_end_of_the_body),
        cmocka_unit_test(takes_sizes_with_leading_zeros_without_counting_them),
        cmocka_unit_test(refuses_a_size_of_more_than_16_significant_digits),
        cmocka_unit_test(refuses_a_chunk_over_the_limit_on_its_size_line),
        cmocka_unit_test(refuses_a_size_that_is_not_hex_or_is_missing),
        cmocka_unit_test(accepts_chunk_extensions_without_control_bytes),
        cmocka_unit_test(refuses_a_bare_lf_or_a_bare_cr_on_the_size_line),
        cmocka_unit_test(refuses_anything_but_crlf_after_chunk_data),
        cmocka_unit_test(takes_data_bytes_whatever_they_are),
        cmocka_unit_test(accepts_trailers_without_control_bytes),
        cmocka_unit_test(checks_nothing_when_off),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
