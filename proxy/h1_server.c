/*
 * proxy/h1_server.c - the HTTP/1.1 front end: bytes -> http_parser -> sg_req_t,
 * and sg_req_t's response -> HTTP/1.1 bytes.
 *
 * One request is handled at a time per connection. The parser pauses at the end
 * of each message, so pipelined requests wait, unparsed, in `in` and are
 * answered in order (RFC 9112 9.3.2). Everything a client can make us hold is
 * bounded: the request line and headers by limits.max_header_bytes, the body by
 * limits.max_body_bytes, unparsed input by H1_IN_MAX.
 */
#include "proxy/proxy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

enum { H1_IDLE, H1_HEADERS, H1_BODY, H1_WAIT };

typedef struct {
    http_parser parser;
    sg_conn_t *c;
    sg_req_t *r;
    int state;
    sg_buf_t in;  /* read but not yet parsed */
    sg_buf_t url; /* request target as it arrives in pieces */
    sg_buf_t hdr; /* current header: name, then value */
    size_t hname_len;
    size_t header_bytes; /* request line + headers, for max_header_bytes */
    int in_value;
    int n_cl, n_te, n_host; /* framing headers seen, for smuggling checks */
    int te_unsupported;     /* "<coding>, chunked": a coding we do not implement (501) */
    const char *exec_end;   /* end of the bytes given to http_parser_execute */
    int val_at_end;         /* the last header-value piece ended at exec_end */
    int ck_state;           /* chunked framing check (CK_*), CK_OFF when not chunked */
    int ck_digits;
    uint64_t ck_left;       /* chunk data bytes still to come */
    uint64_t ck_total;      /* chunk data bytes of this body so far (<= the body's limit) */
    unsigned nreq;        /* requests begun on this connection */
    int err_status;       /* set by a callback that stops the parser */
    const char *err_msg;
    unsigned msg_complete : 1, keepalive : 1, res_chunked : 1, res_done : 1, aborted : 1,
        processing : 1,
        body_unread : 1; /* the request has a body not yet read to its end */
} h1_t;

/* The chunked framing as RFC 9112 7.1 has it, checked on the bytes http_parser consumed:
 * Debian's non-strict http_parser takes any two bytes for the CRLF after chunk data and
 * skips anything, bare LF and CTLs included, up to a CR in a chunk extension. */
enum { CK_OFF, CK_START, CK_SIZE0, CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
       CK_TR_START, CK_TR, CK_TR_LF, CK_END_LF, CK_DONE };

#define H1_IN_MAX(c) ((size_t)(c)->conf->limits.max_header_bytes + 65536)

static const sg_front_ops_t h1_front;
static const http_parser_settings h1_settings;

static const char *h1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- errors before or while parsing ---- */

static void h1_fail(h1_t *h, int status, const char *msg)
{
    sg_conn_t *c = h->c;

    h->keepalive = 0;
    if (h->r == NULL) {
        h->r = sg_req_new(c, &h1_front);
        if (h->r == NULL) {
            sg_conn_close(c);
            return;
        }
        h->r->http_major = 1;
        h->r->http_minor = 1;
    }
    h->r->term = status == 408 ? "cR" : "CR";
    if (h->r->path.p == NULL && sg_buf_avail(&h->url) > 0) {
        /* Keep what the target was, for the audit of refused stop-test requests. */
        h->r->path.p = sg_pool_strndup(&h->r->pool, sg_buf_head(&h->url), sg_buf_avail(&h->url));
        h->r->path.n = h->r->path.p ? sg_buf_avail(&h->url) : 0;
    }
    h->state = H1_WAIT;
    if (h->r->res_started) {
        sg_conn_close(c);
        return;
    }
    sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " refused request: %d %s", c->id, status, msg);
    sg_req_fault(h->r, status, "InvalidRequest", msg);
}

/* ---- parser callbacks ---- */

static int h1_count(h1_t *h, size_t n)
{
    h->header_bytes += n;
    if (h->header_bytes > (size_t)h->c->conf->limits.max_header_bytes) {
        h->err_status = 431;
        h->err_msg = "The request headers are too large.";
        return -1;
    }
    return 0;
}

static int h1_on_message_begin(http_parser *p)
{
    h1_t *h = p->data;
    sg_conn_t *c = h->c;

    h->r = sg_req_new(c, &h1_front);
    if (h->r == NULL) {
        h->err_status = 503;
        h->err_msg = "The gateway is out of memory.";
        return -1;
    }
    h->state = H1_HEADERS;
    h->header_bytes = 0;
    h->in_value = 0;
    h->n_cl = h->n_te = h->n_host = h->te_unsupported = 0;
    h->ck_state = CK_OFF;
    sg_buf_reset(&h->url);
    sg_buf_reset(&h->hdr);
    /* The first request's header clock started at accept (TLS included); a later
     * one's starts with its first byte. */
    if (h->nreq++ > 0)
        sg_conn_set_timer(c, sg_now_ms() + (uint64_t)c->conf->limits.header_timeout_ms);
    return 0;
}

static int h1_on_url(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;

    if (h1_count(h, n) < 0 || sg_buf_append(&h->url, at, n) != SG_OK)
        return -1;
    return 0;
}

/* RFC 9110 5.1: a field name is a token; 5.5: a value holds no CTL but HTAB. */
static int h1_valid_header(const char *name, size_t nlen, const char *val, size_t vlen)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";

    if (nlen == 0)
        return 0;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch != 0 && strchr(tchar, ch) != NULL)))
            return 0;
    }
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)val[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* "a, b, chunked": chunked last and only there, every other element a token. */
static int h1_te_other_then_chunked(const char *v, size_t n)
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
                return 0; /* parameters are not worth the risk: 400 */
        last_chunked = sg_strcaseeq(v + a, b - a, "chunked", 7);
        nchunked += (size_t)last_chunked;
        nelem++;
        start = i + 1;
    }
    return nelem > 1 && nchunked == 1 && last_chunked;
}

static int h1_commit_header(h1_t *h)
{
    sg_req_t *r = h->r;
    const char *name = h->hdr.data;
    size_t nlen = h->hname_len, vlen = sg_buf_avail(&h->hdr) - h->hname_len;
    const char *val = h->hdr.data + h->hname_len;

    /* Trailing whitespace is not part of the value (RFC 9110 5.5). */
    while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
        vlen--;
    /* http_parser (non-strict build) lets through names with spaces ("Host :",
     * "X A") and values with obs-fold, NUL or other control bytes; an upstream may
     * read them differently, so refuse them (RFC 9110 5.1, 5.5; RFC 9112 5.1, 5.2). */
    if (!h1_valid_header(name, nlen, val, vlen)) {
        h->err_status = 400;
        h->err_msg = "A header field name or value is not valid.";
        return -1;
    }
    if (sg_strcaseeq(name, nlen, "content-length", 14))
        h->n_cl++;
    else if (sg_strcaseeq(name, nlen, "transfer-encoding", 17)) {
        h->n_te++;
        /* Only a single "chunked" is accepted (no gzip, chunked lists): anything
         * else is a request-smuggling vector between two parsers. A list that ends
         * in one "chunked" after other codings is well framed but asks for a coding
         * we do not implement: 501 (RFC 9112 6.1); any other list is 400 (6.3). */
        if (!sg_strcaseeq(val, vlen, "chunked", 7)) {
            h->n_te += 100;
            if (h1_te_other_then_chunked(val, vlen))
                h->te_unsupported = 1;
        }
    } else if (sg_strcaseeq(name, nlen, "host", 4))
        h->n_host++;
    if (sg_headers_add(&r->pool, &r->headers, name, nlen, val, vlen) != SG_OK)
        return -1;
    sg_buf_reset(&h->hdr);
    h->in_value = 0;
    return 0;
}

static int h1_on_header_field(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;

    if (h1_count(h, n) < 0)
        return -1;
    if (h->state == H1_BODY)
        return 0; /* chunked trailers: counted, never promoted to headers */
    if (h->in_value && h1_commit_header(h) < 0)
        return -1;
    if (sg_buf_append(&h->hdr, at, n) != SG_OK)
        return -1;
    h->hname_len = sg_buf_avail(&h->hdr);
    return 0;
}

static int h1_on_header_value(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;

    if (h1_count(h, n) < 0)
        return -1;
    if (h->state == H1_BODY)
        return 0;
    if (!h->in_value) {
        h->in_value = 1;
        h->hname_len = sg_buf_avail(&h->hdr);
    } else if (!h->val_at_end) {
        /* A second piece of the same value that was not split by the end of our
         * buffer: http_parser joined an obs-fold line (RFC 9112 5.2). Refuse it. */
        h->err_status = 400;
        h->err_msg = "Obsolete line folding is not accepted.";
        return -1;
    }
    h->val_at_end = at + n == h->exec_end;
    return sg_buf_append(&h->hdr, at, n) == SG_OK ? 0 : -1;
}

/* Request target: origin-form as is; absolute-form becomes origin-form plus
 * authority (RFC 9112 3.2.2). Returns 0, or -1 with h->err_* set. */
static int h1_target(h1_t *h)
{
    sg_req_t *r = h->r;
    const char *u = h->url.data;
    size_t n = sg_buf_avail(&h->url);
    struct http_parser_url pu;

    if (n == 0)
        goto bad;
    if (u[0] == '/' || (n == 1 && u[0] == '*')) {
        /* origin-form, or the asterisk-form that sg_req_check refuses */
        r->path.p = sg_pool_strndup(&r->pool, u, n);
        r->path.n = n;
        return r->path.p ? 0 : -1;
    }
    http_parser_url_init(&pu);
    if (http_parser_parse_url(u, n, 0, &pu) != 0 || !(pu.field_set & (1 << UF_HOST)))
        goto bad;
    r->authority.p = sg_pool_strndup(&r->pool, u + pu.field_data[UF_HOST].off,
                                     pu.field_data[UF_HOST].len);
    r->authority.n = pu.field_data[UF_HOST].len;
    if (pu.field_set & (1 << UF_PORT)) {
        /* The authority is host:port as written (an IPv6 host keeps its brackets). */
        size_t off = pu.field_data[UF_HOST].off, end = pu.field_data[UF_PORT].off +
                                                       pu.field_data[UF_PORT].len;

        if (off > 0 && u[off - 1] == '[')
            off--;
        r->authority.p = sg_pool_strndup(&r->pool, u + off, end - off);
        r->authority.n = end - off;
    } else if (pu.field_data[UF_HOST].off > 0 && u[pu.field_data[UF_HOST].off - 1] == '[') {
        r->authority.p = sg_pool_strndup(&r->pool, u + pu.field_data[UF_HOST].off - 1,
                                         pu.field_data[UF_HOST].len + 2);
        r->authority.n = pu.field_data[UF_HOST].len + 2;
    }
    if (pu.field_set & (1 << UF_SCHEMA)) {
        r->scheme.p = sg_pool_strndup(&r->pool, u + pu.field_data[UF_SCHEMA].off,
                                      pu.field_data[UF_SCHEMA].len);
        r->scheme.n = pu.field_data[UF_SCHEMA].len;
        if (r->scheme.p == NULL)
            return -1;
    }
    if (pu.field_set & (1 << UF_USERINFO)) {
        h->err_status = 400; /* RFC 9110 4.2.4: a userinfo is an error, not a host */
        h->err_msg = "The request target carries user information.";
        return -1;
    }
    if (pu.field_set & (1 << UF_PATH)) {
        size_t off = pu.field_data[UF_PATH].off;

        r->path.p = sg_pool_strndup(&r->pool, u + off, n - off);
        r->path.n = n - off;
    } else {
        r->path.p = sg_pool_strndup(&r->pool, "/", 1);
        r->path.n = 1;
    }
    return r->path.p && r->authority.p ? 0 : -1;
bad:
    h->err_status = 400;
    h->err_msg = "The request target is not valid.";
    return -1;
}

static int h1_on_headers_complete(http_parser *p)
{
    h1_t *h = p->data;
    sg_req_t *r = h->r;
    sg_conn_t *c = h->c;
    const sg_header_t *hh;

    if (sg_buf_avail(&h->hdr) > 0 && h1_commit_header(h) < 0)
        return -1;
    if (p->http_major != 1) {
        /* http_parser takes any digit: HTTP/9.9 or HTTP/0.9 must not be forwarded as
         * HTTP/1.1 (RFC 9110 6.2, 15.6.6). A higher 1.x is read as 1.1 (RFC 9110 2.5). */
        h->err_status = 505;
        h->err_msg = "Only HTTP/1.0 and HTTP/1.1 are accepted here.";
        return -1;
    }
    r->http_major = 1;
    r->http_minor = p->http_minor > 1 ? 1 : p->http_minor;
    r->method.p = http_method_str((enum http_method)p->method);
    r->method.n = strlen(r->method.p);
    r->head = p->method == HTTP_HEAD;
    h->keepalive = http_should_keep_alive(p) ? 1 : 0;
    if (h1_target(h) < 0)
        return -1;
    /* Framing rules that keep two parsers from disagreeing (RFC 9112 6.3). */
    if (h->n_te == 101 && h->te_unsupported && h->n_cl == 0 && p->http_minor >= 1) {
        h->err_status = 501;
        h->err_msg = "Only the 'chunked' transfer coding is implemented.";
        return -1;
    }
    if (h->n_te > 0 && (h->n_cl > 0 || h->n_te != 1 || p->http_minor == 0)) {
        h->err_status = 400;
        h->err_msg = "Transfer-Encoding must be a single 'chunked' without Content-Length.";
        return -1;
    }
    if (h->n_cl > 1) {
        h->err_status = 400;
        h->err_msg = "Content-Length must appear once.";
        return -1;
    }
    if (h->n_host != 1 && p->http_minor >= 1) {
        /* RFC 9112 3.2: a 1.1 request without Host, or with two, is a 400. The rest of
         * the authority rules are sg_req_check's (proxy/reqcheck.c). */
        h->err_status = 400;
        h->err_msg = "A request needs exactly one Host header.";
        return -1;
    }
    if (h->n_cl == 1)
        r->content_length = (int64_t)p->content_length;
    if (r->content_length > (int64_t)c->conf->limits.max_body_bytes) {
        h->err_status = 413;
        h->err_msg = "The request body is too large.";
        return -1;
    }
    if ((hh = sg_headers_get(&r->headers, "expect")) != NULL) {
        if (!sg_strcaseeq(hh->value.p, hh->value.n, "100-continue", 12)) {
            h->err_status = 417;
            h->err_msg = "Only 'Expect: 100-continue' is supported.";
            return -1;
        }
        if (r->http_minor >= 1)
            sg_buf_lit(&c->wbuf, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    h->state = H1_BODY;
    h->body_unread = (p->flags & F_CHUNKED) || r->content_length > 0;
    sg_conn_set_timer(c, sg_now_ms() + (uint64_t)c->conf->limits.body_timeout_ms);
    sg_req_headers_done(r);
    if (r->local_reply && h->body_unread) {
        /* Answered before its body was read (the answer said "connection: close",
         * h1_send_headers): the rest of the stream is not worth parsing. */
        h->keepalive = 0;
        http_parser_pause(p, 1);
    } else if (r->local_reply) {
        /* Nothing of this request is left to read: the connection serves on. */
    } else if (p->flags & F_CHUNKED) {
        /* Stop here so that every byte the parser consumes from now on is body. */
        h->ck_state = CK_START;
        h->ck_total = 0;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int h1_on_body(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    int rv = sg_buf_append(&h->r->body, at, n);

    if (rv == SG_ETOOBIG) {
        h->err_status = 413;
        h->err_msg = "The request body is too large.";
    }
    return rv == SG_OK ? 0 : -1;
}

static int h1_on_message_complete(http_parser *p)
{
    h1_t *h = p->data;

    h->msg_complete = 1;
    h->body_unread = 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = h1_on_message_begin,
    .on_url = h1_on_url,
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

static int ck_hex(unsigned char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static int ck_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* Check n body bytes of a chunked request; 0, -1 when the framing is not valid, or
 * -2 when a chunk-size line declares more than the body may still hold
 * (limits.max_body_bytes): refused with 413 at once, before any of its data. */
static int h1_chunk_check(h1_t *h, const char *p, size_t n)
{
    /* The body's limit less the data of the chunks before: r->body may already hold
     * data of later chunks that http_parser took in the same pass. */
    uint64_t max = h->r != NULL ? (uint64_t)h->r->body.max : 0;

    for (size_t i = 0; i < n && h->ck_state != CK_DONE; i++) {
        unsigned char ch = (unsigned char)p[i];

        switch (h->ck_state) {
        case CK_START: /* the headers' last LF may come again after the pause */
            h->ck_state = CK_SIZE0;
            if (ch == '\n')
                break;
            /* fall through */
        case CK_SIZE0:
            if (ck_hex(ch) < 0)
                return -1;
            h->ck_left = (uint64_t)ck_hex(ch);
            h->ck_digits = 1;
            h->ck_state = CK_SIZE;
            if (h->ck_left > max - h->ck_total)
                return -2;
            break;
        case CK_SIZE:
            if (ck_hex(ch) >= 0) {
                if (h->ck_left == 0 && ch == '0')
                    break; /* leading zeros do not count */
                /* Checked digit by digit, so the value never overflows. */
                if (++h->ck_digits > 16)
                    return -2;
                h->ck_left = h->ck_left * 16 + (uint64_t)ck_hex(ch);
                if (h->ck_left > max - h->ck_total)
                    return -2;
            } else if (ch == ';' || ch == ' ' || ch == '\t')
                h->ck_state = CK_EXT;
            else if (ch == '\r')
                h->ck_state = CK_SIZE_LF;
            else
                return -1;
            break;
        case CK_EXT:
            if (ch == '\r')
                h->ck_state = CK_SIZE_LF;
            else if (ck_ctl(ch))
                return -1;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -1;
            h->ck_state = h->ck_left == 0 ? CK_TR_START : CK_DATA;
            break;
        case CK_DATA: {
            size_t k = (size_t)SG_MIN((uint64_t)(n - i), h->ck_left);

            h->ck_left -= k;
            h->ck_total += k;
            i += k - 1;
            if (h->ck_left == 0)
                h->ck_state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (ch != '\r')
                return -1;
            h->ck_state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return -1;
            h->ck_state = CK_SIZE0;
            break;
        case CK_TR_START:
            if (ch == '\r') {
                h->ck_state = CK_END_LF;
                break;
            }
            h->ck_state = CK_TR;
            /* fall through */
        case CK_TR:
            if (ch == '\r')
                h->ck_state = CK_TR_LF;
            else if (ck_ctl(ch))
                return -1;
            break;
        case CK_TR_LF:
            if (ch != '\n')
                return -1;
            h->ck_state = CK_TR_START;
            break;
        case CK_END_LF:
            if (ch != '\n')
                return -1;
            h->ck_state = CK_DONE;
            break;
        default:
            break;
        }
    }
    return 0;
}

/* Parse what is buffered, one message at a time. */
static void h1_process(h1_t *h)
{
    sg_conn_t *c = h->c;
    enum http_errno e;
    size_t n;

    if (h->processing)
        return;
    h->processing = 1;
    while (c->state == SG_CONN_OPEN && h->state != H1_WAIT && sg_buf_avail(&h->in) > 0) {
        int ck = h->ck_state != CK_OFF, ckr;

        h->exec_end = sg_buf_head(&h->in) + sg_buf_avail(&h->in);
        n = http_parser_execute(&h->parser, &h1_settings, sg_buf_head(&h->in),
                                sg_buf_avail(&h->in));
        if (ck && (ckr = h1_chunk_check(h, sg_buf_head(&h->in), n)) < 0) {
            sg_buf_consume(&h->in, n);
            h->msg_complete = 0;
            if (ckr == -2)
                h1_fail(h, 413, "The request body is too large.");
            else
                h1_fail(h, 400, "The chunked framing of the request body is not valid.");
            break;
        }
        sg_buf_consume(&h->in, n);
        e = HTTP_PARSER_ERRNO(&h->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
            if (h->r != NULL && h->r->local_reply) {
                /* Answered from its headers: the connection closes after the answer
                 * when the body is unread, else serves on (h1_advance). */
                h->msg_complete = 0;
                h->state = H1_WAIT;
                break;
            }
        } else if (e != HPE_OK) {
            if (h->err_status == 0) {
                h->err_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
                h->err_msg = http_errno_description(e);
            }
            h1_fail(h, h->err_status, h->err_msg);
            break;
        }
        if (h->msg_complete) {
            h->msg_complete = 0;
            h->state = H1_WAIT;
            /* Waiting for upstream: its response_timeout_ms governs now. */
            sg_conn_set_timer(c, 0);
            sg_req_body_done(h->r);
        }
    }
    h->processing = 0;
}

/* ---- front-end ops: the response ---- */

static int h1_send_headers(sg_req_t *r)
{
    h1_t *h = r->conn->pd;
    sg_buf_t *b = &r->conn->wbuf;
    int rv;

    /* An answer before the end of the request body closes the connection (the rest of
     * the body is not read: the connection lingers), and says so, so that a client
     * reusing connections (Python's http.client, Go's net/http) opens a new one instead
     * of writing its next request into a closing socket. */
    if (r->conn->w->draining || h->body_unread ||
        h->nreq >= (unsigned)r->conn->conf->limits.max_requests_per_connection)
        h->keepalive = 0;
    rv = sg_buf_appendf(b, "HTTP/1.1 %d %s\r\n", r->res.status, h1_reason(r->res.status));
    for (size_t i = 0; rv == SG_OK && i < r->res.headers.n; i++) {
        const sg_header_t *x = &r->res.headers.v[i];

        rv = sg_buf_append(b, x->name.p, x->name.n);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, ": ");
        if (rv == SG_OK)
            rv = sg_buf_append(b, x->value.p, x->value.n);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
    }
    h->res_chunked = 0;
    if (rv != SG_OK)
        return rv;
    if (r->res.status == 204 || r->res.status == 304 || r->res.status < 200) {
        /* no body, no framing headers */
    } else if (r->res.content_length >= 0) {
        rv = sg_buf_appendf(b, "content-length: %" PRId64 "\r\n", r->res.content_length);
    } else if (r->head) {
        /* length unknown and no body follows */
    } else if (r->http_minor >= 1) {
        h->res_chunked = 1;
        rv = sg_buf_lit(b, "transfer-encoding: chunked\r\n");
    } else {
        h->keepalive = 0; /* HTTP/1.0: the end of the body is the end of the connection */
    }
    if (rv == SG_OK) {
        if (!h->keepalive)
            rv = sg_buf_lit(b, "connection: close\r\n\r\n");
        else if (r->http_minor == 0)
            rv = sg_buf_lit(b, "connection: keep-alive\r\n\r\n");
        else
            rv = sg_buf_lit(b, "\r\n");
    }
    sg_conn_kick(r->conn);
    return rv;
}

static int h1_send_body(sg_req_t *r, const char *p, size_t n)
{
    h1_t *h = r->conn->pd;
    sg_buf_t *b = &r->conn->wbuf;
    int rv = SG_OK;

    if (n == 0 || r->res.no_body || r->head)
        return SG_OK;
    if (h->res_chunked)
        rv = sg_buf_appendf(b, "%zx\r\n", n);
    if (rv == SG_OK)
        rv = sg_buf_append(b, p, n);
    if (rv == SG_OK && h->res_chunked)
        rv = sg_buf_lit(b, "\r\n");
    sg_conn_kick(r->conn);
    return rv;
}

static int h1_send_end(sg_req_t *r)
{
    h1_t *h = r->conn->pd;
    int rv = SG_OK;

    if (h->res_chunked && !r->head)
        rv = sg_buf_lit(&r->conn->wbuf, "0\r\n\r\n");
    h->res_done = 1;
    sg_conn_kick(r->conn);
    return rv;
}

static size_t h1_backlog(sg_req_t *r)
{
    return sg_buf_avail(&r->conn->wbuf);
}

static void h1_abort(sg_req_t *r)
{
    h1_t *h = r->conn->pd;

    /* A half-sent response cannot be repaired in HTTP/1.1: close (from the loop). */
    h->aborted = 1;
    sg_conn_kick(r->conn);
}

static const sg_front_ops_t h1_front = {
    .send_headers = h1_send_headers,
    .send_body = h1_send_body,
    .send_end = h1_send_end,
    .backlog = h1_backlog,
    .abort = h1_abort,
};

/* ---- protocol ops ---- */

static int h1_init(sg_conn_t *c)
{
    h1_t *h = sg_pool_calloc(&c->pool, sizeof(*h));

    if (h == NULL)
        return SG_ENOMEM;
    h->c = c;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    sg_buf_init(&h->in, H1_IN_MAX(c));
    sg_buf_init(&h->url, (size_t)c->conf->limits.max_header_bytes);
    sg_buf_init(&h->hdr, (size_t)c->conf->limits.max_header_bytes);
    h->state = H1_IDLE;
    h->keepalive = 1;
    c->pd = h;
    return SG_OK;
}

static void h1_advance(sg_conn_t *c)
{
    h1_t *h = c->pd;

    if (h->aborted) {
        sg_conn_close(c);
        return;
    }
    if (h->res_done && h->r != NULL) {
        /* Answered before its request was read to the end (a refusal, an early answer):
         * the client may still be sending, so conn.c lingers instead of closing on
         * unread input, which would reset the answer away. */
        unsigned unread = !h->r->body_complete;

        sg_req_free(h->r);
        h->r = NULL;
        h->res_done = 0;
        if (!h->keepalive) {
            c->linger = unread;
            c->close_after_flush = 1;
            return;
        }
        h->state = H1_IDLE;
        sg_conn_set_timer(c, sg_now_ms() + (uint64_t)c->conf->limits.idle_timeout_ms);
        h1_process(h); /* pipelined requests already read */
    }
}

static int h1_on_data(sg_conn_t *c, const char *p, size_t n)
{
    h1_t *h = c->pd;

    if (sg_buf_append(&h->in, p, n) != SG_OK) {
        if (h->state == H1_HEADERS || h->state == H1_IDLE)
            h1_fail(h, 431, "The request headers are too large.");
        else
            return SG_ETOOBIG;
        return SG_OK;
    }
    h1_process(h);
    return SG_OK;
}

static int h1_fill(sg_conn_t *c)
{
    h1_t *h = c->pd;

    /* Called when everything queued has been written: a paused upstream may read. */
    if (h->r != NULL && h->r->res_paused)
        sg_req_res_drained(h->r);
    return SG_OK;
}

static int h1_want_read(sg_conn_t *c)
{
    h1_t *h = c->pd;

    /* While a request is being answered, read no further than the buffer bound:
     * pipelined requests wait in the socket, not in our memory. */
    return !c->close_after_flush && (h->state != H1_WAIT || sg_buf_avail(&h->in) == 0);
}

static int h1_done(sg_conn_t *c)
{
    h1_t *h = c->pd;

    /* After the client's EOF a half-received request can never complete. */
    return h->r == NULL || (c->eof && h->state != H1_WAIT);
}

static void h1_on_timeout(sg_conn_t *c)
{
    h1_t *h = c->pd;

    if (h->state == H1_HEADERS || h->state == H1_BODY) {
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " request %s timed out", c->id,
               h->state == H1_HEADERS ? "headers" : "body");
        h1_fail(h, 408, "The request took too long to arrive.");
        return;
    }
    if (h->state == H1_IDLE && h->r == NULL)
        sg_conn_close(c);
}

static void h1_on_drain(sg_conn_t *c)
{
    h1_t *h = c->pd;

    h->keepalive = 0;
    if (h->r == NULL) {
        c->close_after_flush = 1;
        sg_conn_kick(c);
    }
}

static void h1_on_close(sg_conn_t *c)
{
    h1_t *h = c->pd;

    if (h->r != NULL) {
        sg_req_abort(h->r);
        h->r = NULL;
    }
    sg_buf_dispose(&h->in);
    sg_buf_dispose(&h->url);
    sg_buf_dispose(&h->hdr);
}

const sg_proto_ops_t sg_h1_proto = {
    .name = "http/1.1",
    .init = h1_init,
    .advance = h1_advance,
    .on_data = h1_on_data,
    .fill = h1_fill,
    .want_read = h1_want_read,
    .done = h1_done,
    .on_timeout = h1_on_timeout,
    .on_drain = h1_on_drain,
    .on_close = h1_on_close,
};
