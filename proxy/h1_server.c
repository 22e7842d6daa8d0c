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
#include "proxy/h1_msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { H1_IDLE, H1_HEADERS, H1_BODY, H1_WAIT };

typedef struct {
    http_parser parser;
    sg_conn_t *c;
    sg_req_t *r;
    int state;
    sg_buf_t in;  /* read but not yet parsed */
    sg_buf_t url;        /* request target as it arrives in pieces */
    sg_h1_hdr_t hdr;     /* the header field being gathered */
    size_t header_bytes; /* request line + headers, for max_header_bytes */
    sg_h1_framing_t fr;  /* framing headers seen, for smuggling checks */
    /* The chunked framing as RFC 9112 7.1 has it, checked on the bytes http_parser
     * consumed (proxy/h1_msg.h says what Debian's lenient parser lets through). */
    sg_h1_chunk_t ck;
    unsigned nreq;        /* requests begun on this connection */
    int err_status;       /* set by a callback that stops the parser */
    const char *err_msg;
    unsigned msg_complete : 1, keepalive : 1, res_chunked : 1, res_done : 1, aborted : 1,
        processing : 1,
        body_unread : 1; /* the request has a body not yet read to its end */
} h1_t;

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
    sg_h1_framing_reset(&h->fr);
    sg_h1_chunk_off(&h->ck);
    sg_buf_reset(&h->url);
    sg_h1_hdr_reset(&h->hdr);
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

/* The field gathered in h->hdr, checked (proxy/h1_msg.c), counted and added to the
 * request. http_parser (non-strict build) lets through names with spaces ("Host :",
 * "X A") and values with NUL or other control bytes; an upstream may read them
 * differently, so they are refused (RFC 9110 5.1, 5.5; RFC 9112 5.1). */
static int h1_commit_header(h1_t *h)
{
    sg_req_t *r = h->r;
    sg_h1_field_t f;
    const char *why;

    if (sg_h1_hdr_take(&h->hdr, &f, &why) != SG_OK) {
        h->err_status = 400;
        h->err_msg = "A header field name or value is not valid.";
        return -1;
    }
    sg_h1_framing_count(&h->fr, &f);
    return sg_headers_add(&r->pool, &r->headers, f.name, f.nlen, f.value, f.vlen) == SG_OK ? 0
                                                                                         : -1;
}

static int h1_on_header_field(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;

    if (h1_count(h, n) < 0)
        return -1;
    if (h->state == H1_BODY)
        return 0; /* chunked trailers: counted, never promoted to headers */
    if (sg_h1_hdr_complete(&h->hdr) && h1_commit_header(h) < 0)
        return -1;
    return sg_h1_hdr_name(&h->hdr, at, n) == SG_OK ? 0 : -1;
}

static int h1_on_header_value(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    const char *why;
    int rv;

    if (h1_count(h, n) < 0)
        return -1;
    if (h->state == H1_BODY)
        return 0;
    rv = sg_h1_hdr_value(&h->hdr, at, n, &why);
    if (rv == SG_EPROTO) {
        /* http_parser joined an obs-fold line (RFC 9112 5.2). */
        h->err_status = 400;
        h->err_msg = "Obsolete line folding is not accepted.";
    }
    return rv == SG_OK ? 0 : -1;
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

    if (sg_h1_hdr_pending(&h->hdr) && h1_commit_header(h) < 0)
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
    /* Framing rules that keep two parsers from disagreeing (RFC 9112 6.3). The rest of
     * the authority rules are sg_req_check's (proxy/reqcheck.c). */
    switch (sg_h1_framing_judge(&h->fr, p->http_minor, 1)) {
    case SG_H1_FRAMING_OK:
        break;
    case SG_H1_FRAMING_TE_CODING:
        h->err_status = 501;
        h->err_msg = "Only the 'chunked' transfer coding is implemented.";
        return -1;
    case SG_H1_FRAMING_TE_BAD:
        h->err_status = 400;
        h->err_msg = "Transfer-Encoding must be a single 'chunked' without Content-Length.";
        return -1;
    case SG_H1_FRAMING_CL_DUP:
        h->err_status = 400;
        h->err_msg = "Content-Length must appear once.";
        return -1;
    default: /* SG_H1_FRAMING_HOST */
        h->err_status = 400;
        h->err_msg = "A request needs exactly one Host header.";
        return -1;
    }
    if (h->fr.n_cl == 1)
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
        sg_h1_chunk_start(&h->ck);
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
        int ck = sg_h1_chunk_on(&h->ck), ckr;
        const char *why;

        sg_h1_hdr_input(&h->hdr, sg_buf_head(&h->in) + sg_buf_avail(&h->in));
        n = http_parser_execute(&h->parser, &h1_settings, sg_buf_head(&h->in),
                                sg_buf_avail(&h->in));
        /* The body's limit less the data of the chunks before: r->body may already hold
         * data of later chunks that http_parser took in the same pass. A chunk-size line
         * over it is refused with 413 at once, before any of its data. */
        if (ck && (ckr = sg_h1_chunk_check(&h->ck, sg_buf_head(&h->in), n,
                                           h->r != NULL ? (uint64_t)h->r->body.max : 0,
                                           &why)) != SG_OK) {
            sg_buf_consume(&h->in, n);
            h->msg_complete = 0;
            if (ckr == SG_ETOOBIG)
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
    const char *reason;
    int rv;

    /* An answer before the end of the request body closes the connection (the rest of
     * the body is not read: the connection lingers), and says so, so that a client
     * reusing connections (Python's http.client, Go's net/http) opens a new one instead
     * of writing its next request into a closing socket. */
    if (r->conn->w->draining || h->body_unread ||
        h->nreq >= (unsigned)r->conn->conf->limits.max_requests_per_connection)
        h->keepalive = 0;
    reason = h1_reason(r->res.status);
    rv = sg_buf_lit(b, "HTTP/1.1 "); /* no printf on the way out */
    if (rv == SG_OK)
        rv = sg_buf_append_u64(b, (unsigned)r->res.status);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, " ");
    if (rv == SG_OK)
        rv = sg_buf_append(b, reason, strlen(reason));
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "\r\n");
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
        rv = sg_buf_lit(b, "content-length: ");
        if (rv == SG_OK)
            rv = sg_buf_append_u64(b, (unsigned long long)r->res.content_length);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
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
    sg_h1_hdr_init(&h->hdr, (size_t)c->conf->limits.max_header_bytes);
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
    sg_h1_hdr_dispose(&h->hdr);
}

/* Quiet (conn.c): no request, nothing unparsed. The next request line allocates again. */
static void h1_release(sg_conn_t *c)
{
    h1_t *h = c->pd;

    if (h->r != NULL || sg_buf_avail(&h->in) > 0)
        return;
    sg_buf_dispose(&h->in);
    sg_buf_dispose(&h->url);
    sg_h1_hdr_dispose(&h->hdr);
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
    .release = h1_release,
};
