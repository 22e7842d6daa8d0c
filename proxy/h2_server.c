/*
 * proxy/h2_server.c - the HTTP/2 front end on an nghttp2 server session.
 *
 * Frames in through nghttp2_session_mem_recv, frames out through
 * nghttp2_session_mem_send into the connection's write buffer (conn.c owns the
 * socket). Each request stream carries one sg_req_t; the stream object lives
 * in the request's pool and dies with it in on_stream_close. nghttp2 enforces
 * RFC 9113 messaging rules (pseudo-headers, connection-specific headers,
 * content-length against DATA); smsguard adds its own size limits.
 */
#include "proxy/proxy.h"

#include <ctype.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct h2_stream_s h2_stream_t;

typedef struct {
    nghttp2_session *session;
    sg_conn_t *c;
    h2_stream_t *streams; /* streams that carry a request (doubly linked) */
    size_t nstreams;
    int goaway;
} h2_t;

struct h2_stream_s {
    h2_t *h;
    sg_req_t *r;
    int32_t id;
    sg_buf_t out;        /* response body not yet taken by nghttp2 */
    size_t header_bytes; /* for limits.max_header_bytes */
    int err_status;      /* request refused once its headers are complete */
    const char *err_msg;
    unsigned res_eof : 1, deferred : 1, headers_done : 1;
    h2_stream_t *prev, *next;
};

#define H2_OUT_MAX (4u * 1024 * 1024)
#define H2_FILL_TARGET (64 * 1024) /* produce this much output per write round */

static const sg_front_ops_t h2_front;

static void h2_stream_unlink(h2_t *h, h2_stream_t *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    h->nstreams--;
    if (h->nstreams == 0)
        sg_conn_set_timer(h->c, sg_now_ms() + (uint64_t)h->c->conf->limits.idle_timeout_ms);
}

/* ---- nghttp2 callbacks ---- */

static int h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_t *h = ud;
    sg_req_t *r;
    h2_stream_t *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    r = sg_req_new(h->c, &h2_front);
    if (r == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    s = sg_pool_calloc(&r->pool, sizeof(*s));
    if (s == NULL) {
        sg_req_free(r);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->h = h;
    s->r = r;
    s->id = frame->hd.stream_id;
    sg_buf_init(&s->out, H2_OUT_MAX);
    r->fe_data = s;
    r->http_major = 2;
    r->http_minor = 0;
    s->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int h2_on_header(nghttp2_session *session, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen, const uint8_t *value,
                        size_t valuelen, uint8_t flags, void *ud)
{
    h2_stream_t *s;
    sg_req_t *r;
    const char *n = (const char *)name, *v = (const char *)value;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || s->headers_done || s->err_status)
        return 0; /* trailers are read and ignored: nothing after the body is forwarded */
    r = s->r;
    /* RFC 9113 6.5.2 counts name + value + 32 per field. */
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > (size_t)r->conf->limits.max_header_bytes) {
        s->err_status = 431;
        s->err_msg = "The request headers are too large.";
        return 0;
    }
    if (namelen > 0 && n[0] == ':') {
        sg_str_t *dst = NULL;

        if (namelen == 7 && memcmp(n, ":method", 7) == 0)
            dst = &r->method;
        else if (namelen == 5 && memcmp(n, ":path", 5) == 0)
            dst = &r->path;
        else if (namelen == 10 && memcmp(n, ":authority", 10) == 0)
            dst = &r->authority;
        if (dst != NULL) {
            dst->p = sg_pool_strndup(&r->pool, v, valuelen);
            dst->n = valuelen;
            if (dst->p == NULL)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0; /* :scheme and :protocol are checked by nghttp2 and not forwarded */
    }
    if (sg_headers_add(&r->pool, &r->headers, n, namelen, v, valuelen) != SG_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void h2_refuse(h2_stream_t *s, int status, const char *msg)
{
    s->r->term = "CR";
    sg_req_fault(s->r, status, "InvalidRequest", msg);
}

static void h2_headers_complete(h2_t *h, h2_stream_t *s, int end_stream)
{
    sg_req_t *r = s->r;
    const sg_header_t *host, *cl;

    s->headers_done = 1;
    if (s->err_status) {
        h2_refuse(s, s->err_status, s->err_msg);
        return;
    }
    host = sg_headers_get(&r->headers, "host");
    if (r->authority.p == NULL && host != NULL)
        r->authority = host->value;
    else if (host != NULL && !sg_strcaseeq(host->value.p, host->value.n, r->authority.p,
                                           r->authority.n)) {
        /* RFC 9113 8.3.1: they must agree, or two parsers could route differently. */
        h2_refuse(s, 400, ":authority and Host disagree.");
        return;
    }
    r->head = sg_strcaseeq(r->method.p, r->method.n, "HEAD", 4);
    if ((cl = sg_headers_get(&r->headers, "content-length")) != NULL) {
        char *end;
        long long v = strtoll(cl->value.p, &end, 10);

        /* nghttp2 has already checked that it is a number and will check DATA against it. */
        r->content_length = (end != cl->value.p && v >= 0) ? v : -1;
        if (r->content_length > (int64_t)h->c->conf->limits.max_body_bytes) {
            h2_refuse(s, 413, "The request body is too large.");
            return;
        }
    }
    sg_req_headers_done(r);
    if (end_stream && !r->local_reply)
        sg_req_body_done(r);
}

static int h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_t *h = ud;
    h2_stream_t *s;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->headers_done) {
        if (h->nstreams == 1)
            sg_conn_set_timer(h->c, 0); /* a request is in flight: not idle */
        h2_headers_complete(h, s, end_stream);
        return 0;
    }
    /* DATA, or trailers, ending the request body. */
    if (end_stream && !s->r->local_reply)
        sg_req_body_done(s->r);
    return 0;
}

static int h2_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *ud)
{
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    int rv;

    if (s == NULL || s->r->local_reply)
        return 0; /* refused already: the rest is drained by flow control */
    rv = sg_buf_append(&s->r->body, data, len);
    if (rv == SG_ETOOBIG)
        h2_refuse(s, 413, "The request body is too large.");
    else if (rv != SG_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int h2_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *ud)
{
    h2_t *h = ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    sg_req_t *r;

    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    h2_stream_unlink(h, s);
    r = s->r;
    sg_buf_dispose(&s->out);
    if (r->res_ended && s->res_eof)
        sg_req_free(r);
    else
        sg_req_abort(r); /* reset by the client, or by us on failure */
    return 0;
}

static ssize_t h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *ud)
{
    h2_stream_t *s = source->ptr;
    size_t n = SG_MIN(length, sg_buf_avail(&s->out));

    memcpy(buf, sg_buf_head(&s->out), n);
    sg_buf_consume(&s->out, n);
    if (sg_buf_avail(&s->out) == 0) {
        if (s->res_eof)
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0) {
            s->deferred = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    if (s->r->res_paused)
        sg_req_res_drained(s->r);
    return (ssize_t)n;
}

/* ---- front-end ops ---- */

static int h2_resume(h2_stream_t *s)
{
    if (s->deferred) {
        s->deferred = 0;
        if (nghttp2_session_resume_data(s->h->session, s->id) != 0)
            return SG_ERR;
    }
    sg_conn_kick(s->h->c);
    return SG_OK;
}

static int h2_send_headers(sg_req_t *r)
{
    h2_stream_t *s = r->fe_data;
    nghttp2_nv *nva;
    nghttp2_data_provider prd;
    char *status, *clen = NULL;
    size_t n = 0;
    int body;

    nva = sg_pool_alloc(&r->pool, (r->res.headers.n + 2) * sizeof(*nva));
    status = sg_pool_alloc(&r->pool, 4);
    if (nva == NULL || status == NULL)
        return SG_ENOMEM;
    status[0] = (char)('0' + r->res.status / 100 % 10);
    status[1] = (char)('0' + r->res.status / 10 % 10);
    status[2] = (char)('0' + r->res.status % 10);
    status[3] = '\0';
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < r->res.headers.n; i++) {
        const sg_header_t *x = &r->res.headers.v[i];
        char *lname;

        if (sg_hdr_is_response_hop(x->name.p, x->name.n))
            continue; /* RFC 9113 8.2.2: connection-specific fields are not allowed */
        lname = sg_pool_strndup(&r->pool, x->name.p, x->name.n);
        if (lname == NULL)
            return SG_ENOMEM;
        for (size_t k = 0; k < x->name.n; k++)
            lname[k] = (char)tolower((unsigned char)lname[k]);
        nva[n++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)x->value.p, x->name.n, x->value.n,
                                NGHTTP2_NV_FLAG_NONE};
    }
    body = !(r->head || r->res.no_body || r->res.status == 204 || r->res.status == 304 ||
             r->res.content_length == 0);
    if (r->res.content_length >= 0 && r->res.status != 204 && r->res.status != 304) {
        clen = sg_pool_alloc(&r->pool, 24);
        if (clen == NULL)
            return SG_ENOMEM;
        snprintf(clen, 24, "%" PRId64, r->res.content_length);
        nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen),
                                NGHTTP2_NV_FLAG_NONE};
    }
    if (!body)
        s->res_eof = 1;
    prd.source.ptr = s;
    prd.read_callback = h2_read_body;
    if (nghttp2_submit_response(s->h->session, s->id, nva, n, body ? &prd : NULL) != 0)
        return SG_ERR;
    sg_conn_kick(s->h->c);
    return SG_OK;
}

static int h2_send_body(sg_req_t *r, const char *p, size_t n)
{
    h2_stream_t *s = r->fe_data;
    int rv;

    if (s->res_eof && n > 0)
        return SG_OK; /* HEAD, 204, 304: no body on the wire */
    if ((rv = sg_buf_append(&s->out, p, n)) != SG_OK)
        return rv;
    return h2_resume(s);
}

static int h2_send_end(sg_req_t *r)
{
    h2_stream_t *s = r->fe_data;

    if (s->res_eof) {
        sg_conn_kick(s->h->c);
        return SG_OK;
    }
    s->res_eof = 1;
    return h2_resume(s);
}

static size_t h2_backlog(sg_req_t *r)
{
    h2_stream_t *s = r->fe_data;

    return sg_buf_avail(&s->out);
}

static void h2_abort(sg_req_t *r)
{
    h2_stream_t *s = r->fe_data;

    nghttp2_submit_rst_stream(s->h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    sg_conn_kick(s->h->c);
}

static const sg_front_ops_t h2_front = {
    .send_headers = h2_send_headers,
    .send_body = h2_send_body,
    .send_end = h2_send_end,
    .backlog = h2_backlog,
    .abort = h2_abort,
};

/* ---- protocol ops ---- */

static void h2_session_free(void *p)
{
    nghttp2_session_del(p);
}

static int h2_init(sg_conn_t *c)
{
    const sg_conf_t *conf = c->conf;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)conf->limits.max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)conf->limits.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    h2_t *h;
    int rv;

    h = sg_pool_calloc(&c->pool, sizeof(*h));
    if (h == NULL)
        return SG_ENOMEM;
    h->c = c;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return SG_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return SG_ENOMEM;
    }
    /* Refuse streams beyond SETTINGS_MAX_CONCURRENT_STREAMS even before the client
     * has acknowledged our SETTINGS. */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
#ifdef SG_HAVE_NGHTTP2_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, 8); /* CONTINUATION floods */
#endif
#ifdef SG_HAVE_NGHTTP2_STREAM_RESET_RATE_LIMIT
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33); /* rapid reset, CVE-2023-44487 */
#endif
    rv = nghttp2_session_server_new2(&h->session, cbs, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return SG_ENOMEM;
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, SG_ARRAY_SIZE(iv)) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, 1 << 20) != 0) {
        nghttp2_session_del(h->session);
        return SG_ERR;
    }
    c->pd = h;
    return SG_OK;
}

static int h2_on_data(sg_conn_t *c, const char *p, size_t n)
{
    h2_t *h = c->pd;
    ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, n);

    if (rv < 0) {
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " HTTP/2 error: %s", c->id,
               nghttp2_strerror((int)rv));
        sg_metrics_h2_abuse(c->w, (int)rv);
        if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE)
            return SG_ERR;
        /* Protocol errors and floods: nghttp2 has queued a GOAWAY; send it, then close. */
        c->close_after_flush = 1;
    }
    return SG_OK;
}

static int h2_fill(sg_conn_t *c)
{
    h2_t *h = c->pd;
    const uint8_t *data;
    ssize_t n;
    int rv;

    while (sg_buf_avail(&c->wbuf) < H2_FILL_TARGET) {
        n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) {
            sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " HTTP/2 send error: %s", c->id,
                   nghttp2_strerror((int)n));
            return SG_ERR;
        }
        if (n == 0)
            break;
        if ((rv = sg_buf_append(&c->wbuf, data, (size_t)n)) != SG_OK)
            return rv;
    }
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
        c->close_after_flush = 1;
    return SG_OK;
}

static int h2_want_read(sg_conn_t *c)
{
    h2_t *h = c->pd;

    /* A client that does not read its answers gets no more of its requests read. */
    return !c->close_after_flush && sg_buf_avail(&c->wbuf) < H2_FILL_TARGET * 4 &&
           nghttp2_session_want_read(h->session);
}

static int h2_done(sg_conn_t *c)
{
    h2_t *h = c->pd;

    if (nghttp2_session_want_write(h->session))
        return 0;
    if (c->eof) {
        /* After the client's EOF a stream still waiting for request bytes (or for a
         * WINDOW_UPDATE to take the rest of its answer) can never complete: only an
         * answer still to come from upstream is worth waiting for, as in h1_done. */
        for (h2_stream_t *s = h->streams; s != NULL; s = s->next)
            if (s->r->body_complete && !s->r->res_ended)
                return 0;
        return 1;
    }
    return h->nstreams == 0;
}

static void h2_goaway(h2_t *h)
{
    if (h->goaway)
        return;
    h->goaway = 1;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    sg_conn_kick(h->c);
}

static void h2_on_timeout(sg_conn_t *c)
{
    h2_t *h = c->pd;

    if (h->nstreams == 0) {
        h2_goaway(h);
        c->close_after_flush = 1;
        sg_conn_kick(c);
    }
}

static void h2_on_drain(sg_conn_t *c)
{
    h2_goaway(c->pd);
}

static void h2_on_close(sg_conn_t *c)
{
    h2_t *h = c->pd;
    h2_stream_t *s;

    /* nghttp2_session_del runs no stream-close callbacks: abort our requests first. */
    while ((s = h->streams) != NULL) {
        nghttp2_session_set_stream_user_data(h->session, s->id, NULL);
        h2_stream_unlink(h, s);
        sg_buf_dispose(&s->out);
        sg_req_abort(s->r);
    }
    h2_session_free(h->session);
    h->session = NULL;
}

const sg_proto_ops_t sg_h2_proto = {
    .name = "h2",
    .init = h2_init,
    .advance = NULL,
    .on_data = h2_on_data,
    .fill = h2_fill,
    .want_read = h2_want_read,
    .done = h2_done,
    .on_timeout = h2_on_timeout,
    .on_drain = h2_on_drain,
    .on_close = h2_on_close,
};
