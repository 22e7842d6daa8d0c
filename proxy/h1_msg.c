/*
 * proxy/h1_msg.c - the HTTP/1 message rules shared by the client side (h1_server.c) and
 * the upstream side (upstream.c): field syntax, gathering a field from http_parser's
 * pieces, the framing fields, and the chunked framing. See h1_msg.h for what each call
 * promises; the reasons for each rule are below, next to it.
 */
#include "proxy/h1_msg.h"

/* ---- field syntax ---- */

/* tchar (RFC 9110 5.6.2): a table, as these run over every byte of every field name. */
static const unsigned char h1_tchar[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* A CTL other than HTAB (RFC 5234 B.1): not in a field value, a chunk extension or a
 * trailer line. */
static int h1_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

int sg_h1_token_valid(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!h1_tchar[(unsigned char)p[i]])
            return 0;
    return 1;
}

int sg_h1_value_valid(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_ctl((unsigned char)p[i]))
            return 0;
    return 1;
}

/* ---- one field from http_parser's callbacks ---- */

void sg_h1_hdr_init(sg_h1_hdr_t *a, size_t max)
{
    *a = (sg_h1_hdr_t){0};
    sg_buf_init(&a->buf, max);
}

void sg_h1_hdr_dispose(sg_h1_hdr_t *a)
{
    sg_buf_dispose(&a->buf);
}

void sg_h1_hdr_reset(sg_h1_hdr_t *a)
{
    sg_buf_reset(&a->buf);
    a->name_len = 0;
    a->in_value = 0;
    a->val_at_end = 0;
}

int sg_h1_hdr_name(sg_h1_hdr_t *a, const char *at, size_t n)
{
    int rv = sg_buf_append(&a->buf, at, n);

    a->name_len = sg_buf_avail(&a->buf);
    return rv;
}

int sg_h1_hdr_value(sg_h1_hdr_t *a, const char *at, size_t n, const char **why)
{
    if (!a->in_value) {
        a->in_value = 1;
        a->name_len = sg_buf_avail(&a->buf);
    } else if (!a->val_at_end) {
        /* A second piece of the same value that the end of the input did not cut off:
         * http_parser joined an obs-fold line. A recipient may read it as a new field
         * instead (RFC 9112 5.2), so it is refused, not unfolded. */
        *why = "obsolete line folding";
        return SG_EPROTO;
    }
    a->val_at_end = at + n == a->exec_end;
    return sg_buf_append(&a->buf, at, n);
}

int sg_h1_hdr_take(sg_h1_hdr_t *a, sg_h1_field_t *f, const char **why)
{
    const char *base = sg_buf_head(&a->buf);
    int rv;

    f->name = base;
    f->nlen = a->name_len;
    f->value = base + a->name_len;
    f->vlen = sg_buf_avail(&a->buf) - a->name_len;
    if ((rv = sg_h1_field_check(f, why)) != SG_OK)
        return rv;
    /* The bytes stay where they are until the next piece is appended. */
    sg_buf_reset(&a->buf);
    a->in_value = 0;
    return SG_OK;
}

int sg_h1_field_check(sg_h1_field_t *f, const char **why)
{
    /* Trailing whitespace is not part of the value (RFC 9110 5.5); http_parser already
     * dropped the leading whitespace. */
    while (f->vlen > 0 && (f->value[f->vlen - 1] == ' ' || f->value[f->vlen - 1] == '\t'))
        f->vlen--;
    /* The non-strict http_parser lets through names with spaces ("Host :", "X A") and
     * values with control bytes; the next parser may read them otherwise (RFC 9110 5.1,
     * 5.5; RFC 9112 5.1). */
    if (!sg_h1_token_valid(f->name, f->nlen)) {
        *why = "a field name is not a token";
        return SG_EPROTO;
    }
    if (!sg_h1_value_valid(f->value, f->vlen)) {
        *why = "a field value holds a control character";
        return SG_EPROTO;
    }
    return SG_OK;
}

/* ---- framing fields ---- */

/* "a, b, chunked": chunked last and only there, every other element a bare token. */
static int h1_te_then_chunked(const char *v, size_t n)
{
    size_t start = 0, nchunked = 0, nelem = 0;
    int last_chunked = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        size_t a = start, b = i;

        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (a == b)
            return 0;
        for (size_t k = a; k < b; k++)
            if (v[k] == ' ' || v[k] == '\t' || v[k] == ';' || v[k] == '=' || v[k] == '"')
                return 0; /* parameters are not worth the risk */
        last_chunked = sg_strcaseeq(v + a, b - a, "chunked", 7);
        nchunked += (size_t)last_chunked;
        nelem++;
        start = i + 1;
    }
    return nelem > 1 && nchunked == 1 && last_chunked;
}

void sg_h1_framing_count(sg_h1_framing_t *fr, const sg_h1_field_t *f)
{
    if (sg_strcaseeq(f->name, f->nlen, "content-length", 14)) {
        fr->n_cl++;
    } else if (sg_strcaseeq(f->name, f->nlen, "transfer-encoding", 17)) {
        fr->n_te++;
        if (!sg_strcaseeq(f->value, f->vlen, "chunked", 7)) {
            fr->te_not_chunked++;
            if (h1_te_then_chunked(f->value, f->vlen))
                fr->te_then_chunked = 1;
        }
    } else if (sg_strcaseeq(f->name, f->nlen, "host", 4)) {
        fr->n_host++;
    }
}

int sg_h1_framing_judge(const sg_h1_framing_t *fr, int http_minor, int request)
{
    if (fr->n_te == 1 && fr->te_not_chunked == 1 && fr->te_then_chunked && fr->n_cl == 0 &&
        http_minor >= 1)
        return SG_H1_FRAMING_TE_CODING;
    /* A Transfer-Encoding with a Content-Length, or in an HTTP/1.0 message, is framed one
     * way by one parser and another way by the next (RFC 9112 6.1, 6.3). */
    if (fr->n_te > 0 &&
        (fr->n_cl > 0 || fr->n_te != 1 || fr->te_not_chunked > 0 || http_minor == 0))
        return SG_H1_FRAMING_TE_BAD;
    if (fr->n_cl > 1)
        return SG_H1_FRAMING_CL_DUP;
    /* RFC 9112 3.2: a 1.1 request without Host, or with two, is a 400. */
    if (request && fr->n_host != 1 && http_minor >= 1)
        return SG_H1_FRAMING_HOST;
    return SG_H1_FRAMING_OK;
}

/* ---- chunked framing ----
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *
 * The states in the order the bytes come; the size line's come before CK_DATA, the data's
 * end before CK_TR_START, the trailer section's after. */
enum {
    CK_OFF,
    CK_START,   /* the header section's last LF may come again */
    CK_SIZE0,   /* the first digit of a chunk size */
    CK_SIZE,    /* more digits, an extension, or CR */
    CK_EXT,     /* a chunk extension, up to CR */
    CK_SIZE_LF, /* the LF that ends the size line */
    CK_DATA,    /* chunk data */
    CK_DATA_CR, /* the CRLF after chunk data */
    CK_DATA_LF,
    CK_TR_START, /* a trailer line, or the CR of the final CRLF */
    CK_TR,       /* in a trailer line, up to CR */
    CK_TR_LF,
    CK_END_LF, /* the LF of the final CRLF */
    CK_DONE,
};

static int ck_hex(unsigned char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

void sg_h1_chunk_start(sg_h1_chunk_t *ck)
{
    ck->state = CK_START;
    ck->digits = 0;
    ck->left = 0;
    ck->total = 0;
}

int sg_h1_chunk_done(const sg_h1_chunk_t *ck)
{
    return ck->state == CK_DONE;
}

/* One more hex digit d of the chunk size. Checked digit by digit against what the body
 * may still hold, so the size never overflows and an oversized chunk is refused before
 * its data comes. */
static int ck_size_digit(sg_h1_chunk_t *ck, int d, uint64_t max)
{
    if (ck->left == 0 && d == 0)
        return SG_OK; /* leading zeros do not count */
    if (++ck->digits > 16)
        return SG_ETOOBIG;
    ck->left = ck->left * 16 + (uint64_t)d;
    return ck->left > max - ck->total ? SG_ETOOBIG : SG_OK;
}

/* chunk-size [ chunk-ext ] CRLF: CK_START to CK_SIZE_LF. The extension is skipped, as
 * RFC 9112 7.1.1 allows, but it may not hide a CTL: a bare LF in it ends the line for
 * another parser. */
static int ck_size_line(sg_h1_chunk_t *ck, unsigned char ch, uint64_t max)
{
    int d = ck_hex(ch);

    switch (ck->state) {
    case CK_START:
        ck->state = CK_SIZE0;
        if (ch == '\n')
            return SG_OK;
        /* fall through */
    case CK_SIZE0:
        if (d < 0)
            return SG_EPROTO;
        ck->left = 0;
        ck->digits = 0;
        ck->state = CK_SIZE;
        return ck_size_digit(ck, d, max);
    case CK_SIZE:
        if (d >= 0)
            return ck_size_digit(ck, d, max);
        if (ch == ';' || ch == ' ' || ch == '\t')
            ck->state = CK_EXT;
        else if (ch == '\r')
            ck->state = CK_SIZE_LF;
        else
            return SG_EPROTO;
        return SG_OK;
    case CK_EXT:
        if (ch == '\r')
            ck->state = CK_SIZE_LF;
        else if (h1_ctl(ch))
            return SG_EPROTO;
        return SG_OK;
    default: /* CK_SIZE_LF */
        if (ch != '\n')
            return SG_EPROTO;
        ck->state = ck->left == 0 ? CK_TR_START : CK_DATA;
        return SG_OK;
    }
}

/* chunk-data: up to n bytes of it are taken whole. Returns how many. */
static size_t ck_data(sg_h1_chunk_t *ck, size_t n)
{
    size_t k = (size_t)SG_MIN((uint64_t)n, ck->left);

    ck->left -= k;
    ck->total += k;
    if (ck->left == 0)
        ck->state = CK_DATA_CR;
    return k;
}

/* The CRLF after chunk data, exactly: http_parser takes any two bytes for it. */
static int ck_data_end(sg_h1_chunk_t *ck, unsigned char ch)
{
    if (ch != (ck->state == CK_DATA_CR ? '\r' : '\n'))
        return SG_EPROTO;
    ck->state = ck->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE0;
    return SG_OK;
}

/* trailer-section CRLF: lines without CTLs, each ended by CRLF, then CRLF. The trailer
 * fields themselves are never used (neither side promotes them to header fields). */
static int ck_trailers(sg_h1_chunk_t *ck, unsigned char ch)
{
    switch (ck->state) {
    case CK_TR_START:
        if (ch == '\r') {
            ck->state = CK_END_LF;
            return SG_OK;
        }
        ck->state = CK_TR;
        /* fall through */
    case CK_TR:
        if (ch == '\r')
            ck->state = CK_TR_LF;
        else if (h1_ctl(ch))
            return SG_EPROTO;
        return SG_OK;
    case CK_TR_LF:
        if (ch != '\n')
            return SG_EPROTO;
        ck->state = CK_TR_START;
        return SG_OK;
    default: /* CK_END_LF */
        if (ch != '\n')
            return SG_EPROTO;
        ck->state = CK_DONE;
        return SG_OK;
    }
}

int sg_h1_chunk_check(sg_h1_chunk_t *ck, const char *p, size_t n, uint64_t max,
                      const char **why)
{
    size_t i = 0;
    int rv = SG_OK;

    while (rv == SG_OK && i < n && ck->state != CK_DONE && ck->state != CK_OFF) {
        unsigned char ch;

        if (ck->state == CK_DATA) {
            i += ck_data(ck, n - i);
            continue;
        }
        ch = (unsigned char)p[i++];
        if (ck->state < CK_DATA)
            rv = ck_size_line(ck, ch, max);
        else if (ck->state < CK_TR_START)
            rv = ck_data_end(ck, ch);
        else
            rv = ck_trailers(ck, ch);
    }
    if (rv == SG_EPROTO)
        *why = "the chunked framing is not valid";
    else if (rv == SG_ETOOBIG)
        *why = "a chunk is larger than the body may be";
    return rv;
}
