/*
 * proxy/h2_server.c - the HTTP/2 front end on an nghttp2 server session.
 *
 * Frames in through nghttp2_session_mem_recv, frames out through
 * nghttp2_session_mem_send into the connection's write buffer (conn.c owns the
 * socket). Each request stream carries one sg_req_t; the stream object lives
 * in the request's pool and dies with it in on_stream_close. nghttp2 enforces
 * RFC 9113 messaging rules (pseudo-headers, connection-specific headers,
 * content-length against DATA); smsguard adds its own size limits, per-stream
 * timeouts, a send timeout and flood counters (below, "Abuse").
 */
#include "proxy/proxy.h"

#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct h2_stream_s h2_stream_t;

/* Abuse. nghttp2 1.52 limits CONTINUATION frames per header block, resets
 * (token bucket 1000, 33/s) and unread SETTINGS/PING ACKs (1000); it does not limit
 * PRIORITY, WINDOW_UPDATE or empty DATA frames, nor SETTINGS and PING from a client
 * that does read its ACKs. smsguard counts those frames per connection over
 * one-second windows, as nghttpx and HAProxy do, and ends the connection with
 * GOAWAY ENHANCE_YOUR_CALM above these budgets. They are far above what a browser,
 * curl, h2load or a vSphere client sends (a SETTINGS or two per connection, a PING
 * now and then, a WINDOW_UPDATE per 32 KiB or so of request body, PRIORITY frames
 * only with the old RFC 7540 tree) and far below what costs the gateway CPU. A client
 * that downloads with small windows legitimately sends a WINDOW_UPDATE or two (stream
 * and connection) per DATA frame it gets: those are added to its budget.
 * Unanswered resets (a client RST_STREAM on a stream smsguard had not started to
 * answer, CVE-2023-44487) go through a token bucket like nghttp2's, with its rate and
 * a smaller burst: whatever the pattern, smsguard's ENHANCE_YOUR_CALM comes before
 * nghttp2's INTERNAL_ERROR (which also counts resets of answered streams). */
enum { H2F_SETTINGS, H2F_PING, H2F_PRIORITY, H2F_WINDOW_UPDATE, H2F_EMPTY_DATA, H2F_N };

static const struct {
    unsigned max; /* frames per H2_FLOOD_WINDOW_MS */
    int kind;     /* SG_H2A_* */
    const char *what;
} h2_flood[H2F_N] = {
    [H2F_SETTINGS] = {100, SG_H2A_SETTINGS_FLOOD, "SETTINGS flood"},
    [H2F_PING] = {100, SG_H2A_PING_FLOOD, "PING flood"},
    [H2F_PRIORITY] = {1000, SG_H2A_PRIORITY_FLOOD, "PRIORITY flood"},
    [H2F_WINDOW_UPDATE] = {4000, SG_H2A_WINDOW_UPDATE_FLOOD, "WINDOW_UPDATE flood"},
    [H2F_EMPTY_DATA] = {100, SG_H2A_EMPTY_DATA_FLOOD, "empty DATA flood"},
};

#define H2_RESET_BURST 200 /* nghttp2: 1000 */
#define H2_RESET_RATE 33   /* per second, as nghttp2 */

#define H2_FLOOD_WINDOW_MS 1000
/* After GOAWAY for abuse the connection closes once it is written, or after this long
 * if the client does not read it. */
#define H2_CUT_LINGER_MS 2000

/* nghttp2's small allocations: see "the session's memory" below. */
#define H2_MEM_NCLASS 4

typedef struct {
    nghttp2_session *session;
    sg_conn_t *c;
    h2_stream_t *streams; /* streams that carry a request (doubly linked) */
    size_t nstreams;
    int goaway;
    int cut;             /* ended for abuse: GOAWAY queued, closing */
    int counted;         /* the connection's end is in smsguard_http2_abuse_total */
    uint64_t cut_at;     /* closed at this time even if the GOAWAY could not be written */
    uint64_t timer_at;   /* when the connection timer is armed for (0: not armed) */
    uint64_t idle_since; /* nstreams fell to 0 */
    uint64_t nbegun;     /* streams begun (the first one's header clock starts at accept) */
    uint64_t flood_ms;   /* start of the current counting window */
    unsigned nframes[H2F_N];
    unsigned data_sent; /* DATA frames sent in the window (WINDOW_UPDATE budget) */
    uint64_t reset_mtokens; /* unanswered-reset bucket, in thousandths of a token */
    uint64_t reset_ms;      /* when it was last filled */
    char *framebuf;         /* nghttp2's outbound frame buffer (h2_mem_malloc) */
    size_t framebuf_len;
    sg_pool_cache_t mem[H2_MEM_NCLASS]; /* nghttp2's small blocks, freed, by class */
    unsigned creating : 1;  /* inside nghttp2_session_server_new3 */
} h2_t;

struct h2_stream_s {
    h2_t *h;
    sg_req_t *r;
    int32_t id;
    sg_buf_t out;        /* response body not yet taken by nghttp2 */
    size_t header_bytes; /* for limits.max_header_bytes */
    int err_status;      /* request refused once its headers are complete */
    const char *err_msg;
    uint64_t t_begin;    /* header clock start: the HEADERS frame (or accept, first stream) */
    uint64_t t_headers;  /* header block complete: body clock start */
    uint64_t out_since;  /* out became non-empty, or nghttp2 last took bytes of it */
    unsigned res_eof : 1, deferred : 1, headers_done : 1, body_done : 1, timed_out : 1,
        rst_after_end : 1; /* answered before the request ended: reset it after the answer */
    h2_stream_t *prev, *next;
};

#define H2_OUT_MAX (4u * 1024 * 1024)
#define H2_FILL_TARGET (64 * 1024) /* produce this much output per write round */

static const sg_front_ops_t h2_front;

static void h2_timer_at(h2_t *h, uint64_t at);

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
    if (h->nstreams == 0 && h->session != NULL) {
        h->idle_since = sg_now_ms();
        h2_timer_at(h, h->idle_since + (uint64_t)h->c->conf->limits.idle_timeout_ms);
    }
}

/* ---- timers and abuse ---- */

/* One connection timer serves every deadline of the connection: it is armed for the
 * earliest one known when it was set and is only moved earlier here; when it fires,
 * h2_on_timeout scans the streams (at most limits.max_streams) and re-arms it. A
 * deadline that went away (a stream ended) costs one spurious wake-up at most. */
static void h2_timer_at(h2_t *h, uint64_t at)
{
    if (h->timer_at != 0 && h->timer_at <= at && ev_is_active(&h->c->timer))
        return;
    h->timer_at = at;
    sg_conn_set_timer(h->c, at);
}

/* End the connection for abuse: GOAWAY with CODE (the last stream nghttp2 processed),
 * no more input processed, and once the GOAWAY is written conn.c's lingering close (a
 * client that floods is still sending: closing at once would answer it with a RST that
 * can destroy the GOAWAY before it is read). A client that does not read the GOAWAY is
 * dropped H2_CUT_LINGER_MS after the cut.
 * KIND (SG_H2A_*) is counted unless it is -1 (counted already). */
static void h2_cut(h2_t *h, int kind, uint32_t code, const char *why)
{
    if (h->cut)
        return;
    h->cut = 1;
    sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " HTTP/2 abuse: %s: GOAWAY %s", h->c->id, why,
           nghttp2_http2_strerror(code));
    if (kind >= 0)
        sg_metrics_h2_abuse_kind(h->c->w, kind);
    h->counted = 1;
    /* Also makes nghttp2 ignore the rest of the input, even inside mem_recv. */
    nghttp2_session_terminate_session(h->session, code);
    h->c->linger = 1;
    h->cut_at = sg_now_ms() + H2_CUT_LINGER_MS;
    h2_timer_at(h, h->cut_at);
    sg_conn_kick(h->c);
}

/* Count one frame of class F; 1 when that ended the connection. */
static int h2_count(h2_t *h, int f)
{
    uint64_t now = (uint64_t)(ev_now(h->c->w->loop) * 1000.0); /* no syscall per frame */
    unsigned max = h2_flood[f].max;

    if (now - h->flood_ms >= H2_FLOOD_WINDOW_MS) {
        h->flood_ms = now;
        memset(h->nframes, 0, sizeof(h->nframes));
        h->data_sent = 0;
    }
    if (f == H2F_WINDOW_UPDATE)
        max += 2 * h->data_sent;
    if (++h->nframes[f] <= max)
        return 0;
    h2_cut(h, h2_flood[f].kind, NGHTTP2_ENHANCE_YOUR_CALM, h2_flood[f].what);
    return 1;
}

/* A client reset of a stream not yet answered; 1 when that ended the connection. */
static int h2_count_reset(h2_t *h)
{
    uint64_t now = (uint64_t)(ev_now(h->c->w->loop) * 1000.0);

    h->reset_mtokens += (now - h->reset_ms) * H2_RESET_RATE; /* ms x tokens/s = mtokens */
    if (h->reset_mtokens > H2_RESET_BURST * 1000u)
        h->reset_mtokens = H2_RESET_BURST * 1000u;
    h->reset_ms = now;
    if (h->reset_mtokens >= 1000) {
        h->reset_mtokens -= 1000;
        return 0;
    }
    h2_cut(h, SG_H2A_RAPID_RESET, NGHTTP2_ENHANCE_YOUR_CALM, "rapid reset");
    return 1;
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
    /* docs/design.md: header_timeout_ms runs from accept (TLS handshake included) to the end
     * of the request headers. The first stream's clock therefore started at accept, as
     * the first request's does on HTTP/1.1; a later stream's starts with its HEADERS
     * frame (on a multiplexed connection there is no "previous request ended"). */
    s->t_begin = h->nbegun++ == 0 ? h->c->accept_ms : sg_now_ms();
    h2_timer_at(h, s->t_begin + (uint64_t)h->c->conf->limits.header_timeout_ms);
    if (h->nbegun == (uint64_t)h->c->conf->limits.max_requests_per_connection && !h->goaway) {
        /* The connection's request budget: this stream is the last one served, later
         * ones are ignored by nghttp2 and the client retries them on a new connection
         * (RFC 9113 6.8); the connection closes once the streams begun are done. */
        h->goaway = 1;
        nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR, NULL, 0);
        sg_conn_kick(h->c);
    }
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
        sg_metrics_h2_abuse_kind(s->h->c->w, SG_H2A_HEADER_LIST);
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
        else if (namelen == 7 && memcmp(n, ":scheme", 7) == 0)
            dst = &r->scheme;
        else if (namelen == 9 && memcmp(n, ":protocol", 9) == 0)
            r->h2_protocol = 1; /* extended CONNECT: refused by sg_req_check */
        if (dst != NULL) {
            dst->p = sg_pool_strndup(&r->pool, v, valuelen);
            dst->n = valuelen;
            if (dst->p == NULL)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        /* nghttp2 has refused repeated, unknown and misplaced pseudo-headers; what they
         * must hold is sg_req_check's (proxy/reqcheck.c). None is forwarded as such. */
        return 0;
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
    const sg_header_t *cl;

    s->headers_done = 1;
    s->t_headers = sg_now_ms();
    if (end_stream)
        s->body_done = 1;
    else
        h2_timer_at(h, s->t_headers + (uint64_t)h->c->conf->limits.body_timeout_ms);
    if (s->err_status) {
        h2_refuse(s, s->err_status, s->err_msg);
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

/* Every frame header, before nghttp2 acts on the frame: the flood counters. Frames
 * nghttp2 discards unread (e.g. DATA on a closed stream) are not seen here, and cost
 * no more than reading them. */
static int h2_on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *ud)
{
    h2_t *h = ud;

    (void)session;
    if (h->cut)
        return 0;
    switch (hd->type) {
    case NGHTTP2_SETTINGS:
        h2_count(h, H2F_SETTINGS);
        break;
    case NGHTTP2_PING:
        h2_count(h, H2F_PING);
        break;
    case NGHTTP2_PRIORITY:
        h2_count(h, H2F_PRIORITY);
        break;
    case NGHTTP2_WINDOW_UPDATE:
        h2_count(h, H2F_WINDOW_UPDATE);
        break;
    case NGHTTP2_DATA:
        /* Only END_STREAM gives an empty DATA frame a purpose. */
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
            h2_count(h, H2F_EMPTY_DATA);
        break;
    default:
        break;
    }
    return 0;
}

static int h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_t *h = ud;
    h2_stream_t *s;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA &&
        frame->hd.type != NGHTTP2_RST_STREAM)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        /* Rapid reset: the request cost us parsing and the chain's header hooks, and
         * the client took back the stream before any answer (on_stream_close follows). */
        if (!s->r->res_started && !h->cut)
            h2_count_reset(h);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && !s->headers_done) {
        h2_headers_complete(h, s, end_stream);
        return 0;
    }
    /* DATA, or trailers, ending the request body. */
    if (end_stream) {
        s->body_done = 1;
        if (!s->r->local_reply)
            sg_req_body_done(s->r);
    }
    return 0;
}

/* Counts DATA frames sent (WINDOW_UPDATE budget) and the GOAWAYs of nghttp2's own
 * protocol errors. And when the last frame of an answer
 * given before the request ended (a timeout's 408) went out, RFC 9113 8.1 lets the
 * server reset the stream with NO_ERROR, so that the client stops sending and the
 * stream's slot is free. */
static int h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_t *h = ud;
    h2_stream_t *s;

    if (frame->hd.type == NGHTTP2_DATA)
        h->data_sent++;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        !h->counted) {
        /* nghttp2 ended the session for a protocol error it handled itself (streams
         * beyond SETTINGS_MAX_CONCURRENT_STREAMS, a frame on a closed stream...). */
        h->counted = 1;
        sg_metrics_h2_abuse_kind(h->c->w, SG_H2A_PROTOCOL_ERROR);
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s != NULL && s->rst_after_end && !s->body_done) {
        s->rst_after_end = 0;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/* A response HEADERS frame nghttp2 could not send (a header block beyond its 64 KiB send
 * limit, say) leaves the stream open on a server session: reset it, or the client would
 * wait for an answer that never comes. The reset closes the stream and aborts the request. */
static int h2_on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                                int lib_error_code, void *ud)
{
    h2_t *h = ud;

    if (frame->hd.type != NGHTTP2_HEADERS ||
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id) == NULL)
        return 0;
    sg_log(SG_LOG_WARN, "conn=%" PRIu64 " stream=%" PRId32 " response headers not sent: %s",
           h->c->id, frame->hd.stream_id, nghttp2_strerror(lib_error_code));
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_INTERNAL_ERROR);
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

    if (n > 0) /* an empty buffer may have no memory yet: memcpy wants a pointer */
        memcpy(buf, sg_buf_head(&s->out), n);
    sg_buf_consume(&s->out, n);
    if (n > 0)
        s->out_since = sg_now_ms(); /* progress: the send timeout starts again */
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

/* One pass over the answer's fields into nghttp2's: nghttp2_submit_response copies every
 * name and value into one block of its own and lower-cases the names as it copies
 * (nghttp2.h), so the upstream's names go in as they are. The two names written here are
 * static and lower-case already: NGHTTP2_NV_FLAG_NO_COPY_NAME. The values are always
 * copied: the request (its pool holds them) can end before the HEADERS frame is sent or
 * given up (a client's RST_STREAM), and nghttp2 needs them until then. */
static int h2_send_headers(sg_req_t *r)
{
    h2_stream_t *s = r->fe_data;
    nghttp2_nv *nva;
    nghttp2_data_provider prd;
    char status[3], clen[20]; /* 2^64 - 1 has 20 digits */
    size_t n = 0, k;
    int body;

    nva = sg_pool_alloc(&r->pool, (r->res.headers.n + 2) * sizeof(*nva));
    if (nva == NULL)
        return SG_ENOMEM;
    status[0] = (char)('0' + r->res.status / 100 % 10);
    status[1] = (char)('0' + r->res.status / 10 % 10);
    status[2] = (char)('0' + r->res.status % 10);
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3,
                            NGHTTP2_NV_FLAG_NO_COPY_NAME};
    for (size_t i = 0; i < r->res.headers.n; i++) {
        const sg_header_t *x = &r->res.headers.v[i];

        if (sg_hdr_is_response_hop(x->name.p, x->name.n))
            continue; /* RFC 9113 8.2.2: connection-specific fields are not allowed */
        nva[n++] = (nghttp2_nv){(uint8_t *)x->name.p, (uint8_t *)x->value.p, x->name.n,
                                x->value.n, NGHTTP2_NV_FLAG_NONE};
    }
    body = !(r->head || r->res.no_body || r->res.status == 204 || r->res.status == 304 ||
             r->res.content_length == 0);
    if (r->res.content_length >= 0 && r->res.status != 204 && r->res.status != 304) {
        uint64_t v = (uint64_t)r->res.content_length;

        k = sizeof(clen);
        do {
            clen[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen + k, 14,
                                sizeof(clen) - k, NGHTTP2_NV_FLAG_NO_COPY_NAME};
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
    if (n > 0 && sg_buf_avail(&s->out) == 0) {
        /* The send timeout's clock: bytes wait for the client's flow-control window. */
        s->out_since = sg_now_ms();
        h2_timer_at(s->h, s->out_since + (uint64_t)s->h->c->conf->limits.send_timeout_ms);
    }
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

/* ---- the session's memory ----
 *
 * nghttp2 allocates its outbound frame buffer (NGHTTP2_FRAMEBUF_CHUNKLEN, 16394 bytes)
 * with the session and keeps it until the session ends; everything else it holds for an
 * idle session is small. The allocator below notes that one block (the only one of
 * 16 KiB or more made while the session is created), and h2_release gives its whole
 * pages back to the kernel while the connection is quiet: no frame is being serialised
 * then (nothing to write), so its content is dead, and the next frame faults in only the
 * pages it writes. The block itself stays allocated: nghttp2 owns it.
 *
 * Per request nghttp2 also makes about seven small allocations and frees them with the
 * stream (measured with nghttp2 1.52, a POST answered with a body: 44, 89, 115, 152
 * twice, 224 and 315 bytes; the 115 is the copy of the answer's fields and varies with
 * them). Blocks of up to H2_MEM_SMALL bytes are rounded up to one of four size classes,
 * and a freed one is kept on its class's free list for the next stream (at most
 * H2_MEM_KEEP a class, the rest go back to malloc): a busy connection takes them from
 * malloc once. The lists are emptied when the connection turns quiet (h2_release) and
 * when the session ends; they keep nothing in a build with AddressSanitizer
 * (sg_pool_cache_t's rule). What the session makes when it is created lives as long as
 * it: those blocks are not rounded up. nghttp2_mem's free is not told the size, so every
 * block starts with a header naming its class (16 bytes: the block nghttp2 sees stays
 * aligned as malloc's). */

#define H2_FRAMEBUF_MIN 16384
#define H2_MEM_HDR 16
#define H2_MEM_KEEP 16 /* blocks a class keeps: the small blocks of a few streams */

static const size_t h2_mem_class[H2_MEM_NCLASS] = {64, 128, 256, 512}; /* with the header */
#define H2_MEM_SMALL (512 - H2_MEM_HDR) /* the largest class, less its header */

/* The class that holds SIZE bytes, or H2_MEM_NCLASS: a plain malloc. */
static unsigned h2_mem_class_of(size_t size)
{
    unsigned k = 0;

    if (size > H2_MEM_SMALL)
        return H2_MEM_NCLASS;
    while (size + H2_MEM_HDR > h2_mem_class[k])
        k++;
    return k;
}

static void *h2_mem_malloc(size_t size, void *ud)
{
    h2_t *h = ud;
    unsigned k = h->creating ? H2_MEM_NCLASS : h2_mem_class_of(size);
    unsigned char *b;

    /* An empty sg_pool_cache_t would malloc a pool block: ask only one that holds ours. */
    if (k < H2_MEM_NCLASS && h->mem[k].n > 0)
        b = sg_pool_cache_get(&h->mem[k]);
    else if (k < H2_MEM_NCLASS)
        b = malloc(h2_mem_class[k]);
    else
        b = size <= SIZE_MAX - H2_MEM_HDR ? malloc(H2_MEM_HDR + size) : NULL;
    if (b == NULL)
        return NULL;
    *(unsigned *)b = k;
    if (h->creating && size >= H2_FRAMEBUF_MIN) {
        h->framebuf = (char *)b + H2_MEM_HDR;
        h->framebuf_len = size;
    }
    return b + H2_MEM_HDR;
}

static void h2_mem_free(void *p, void *ud)
{
    h2_t *h = ud;
    unsigned char *b;
    unsigned k;

    if (p == NULL)
        return;
    if (p == h->framebuf)
        h->framebuf = NULL;
    b = (unsigned char *)p - H2_MEM_HDR;
    k = *(unsigned *)b;
    if (k < H2_MEM_NCLASS)
        sg_pool_cache_put(&h->mem[k], b); /* frees it beyond H2_MEM_KEEP */
    else
        free(b);
}

static void *h2_mem_calloc(size_t n, size_t size, void *ud)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if ((p = h2_mem_malloc(n * size, ud)) != NULL)
        memset(p, 0, n * size);
    return p;
}

static void *h2_mem_realloc(void *p, size_t size, void *ud)
{
    h2_t *h = ud;
    unsigned char *b;
    unsigned k;
    void *q;

    if (p == NULL)
        return h2_mem_malloc(size, ud); /* how nghttp2_buf_reserve allocates the block */
    if (p == h->framebuf)
        h->framebuf = NULL; /* not expected; then it is no longer ours to track */
    b = (unsigned char *)p - H2_MEM_HDR;
    k = *(unsigned *)b;
    if (k == H2_MEM_NCLASS) {
        if (size > SIZE_MAX - H2_MEM_HDR || (b = realloc(b, H2_MEM_HDR + size)) == NULL)
            return NULL;
        return b + H2_MEM_HDR;
    }
    if (size + H2_MEM_HDR <= h2_mem_class[k])
        return p; /* fits the block it has */
    if ((q = h2_mem_malloc(size, ud)) == NULL)
        return NULL;
    memcpy(q, p, h2_mem_class[k] - H2_MEM_HDR); /* the whole old block: size is larger */
    h2_mem_free(p, ud);
    return q;
}

static void h2_mem_dispose(h2_t *h)
{
    for (unsigned k = 0; k < H2_MEM_NCLASS; k++)
        sg_pool_cache_dispose(&h->mem[k]);
}

static void h2_release(sg_conn_t *c)
{
    h2_t *h = c->pd;
    uintptr_t lo, hi, pagesz = (uintptr_t)sysconf(_SC_PAGESIZE); /* glibc: no syscall */

    h2_mem_dispose(h);
    if (h->framebuf == NULL || h->session == NULL || nghttp2_session_want_write(h->session))
        return;
    lo = ((uintptr_t)h->framebuf + pagesz - 1) & ~(pagesz - 1);
    hi = ((uintptr_t)h->framebuf + h->framebuf_len) & ~(pagesz - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED); /* the pages read back as zeros */
}

/* The session's blocks come back to the free lists as nghttp2 frees them: empty those
 * after. */
static void h2_session_free(h2_t *h)
{
    nghttp2_session_del(h->session);
    h->session = NULL;
    h2_mem_dispose(h);
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
    nghttp2_mem mem;
    int rv;

    h = sg_pool_calloc(&c->pool, sizeof(*h));
    if (h == NULL)
        return SG_ENOMEM;
    h->c = c;
    for (unsigned k = 0; k < H2_MEM_NCLASS; k++)
        sg_pool_cache_init(&h->mem[k], H2_MEM_KEEP);
    mem = (nghttp2_mem){h, h2_mem_malloc, h2_mem_free, h2_mem_calloc, h2_mem_realloc};
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return SG_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, h2_on_frame_not_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return SG_ENOMEM;
    }
    /* Refuse streams beyond SETTINGS_MAX_CONCURRENT_STREAMS even before the client
     * has acknowledged our SETTINGS. */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    /* Memory bounded for a gateway. Our answers are encoded without a dynamic table
     * (HAProxy's encoder does the same): a few small response fields per answer gain
     * little from it, and it would hold up to 4 KiB of header copies per connection.
     * The client's table for our decoder stays at the default 4096 (SETTINGS
     * HEADER_TABLE_SIZE), where repeated request fields (Authorization, the API session
     * id) save the client real bandwidth. Closed streams are not kept for the RFC 7540
     * priority tree (up to max_streams of them per connection, each a few hundred
     * bytes): smsguard schedules answers by readiness, not by priority. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    nghttp2_option_set_no_closed_streams(opt, 1);
#ifdef SG_HAVE_NGHTTP2_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, 8); /* CONTINUATION floods */
#endif
#ifdef SG_HAVE_NGHTTP2_STREAM_RESET_RATE_LIMIT
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33); /* rapid reset, CVE-2023-44487 */
#endif
    h->creating = 1;
    rv = nghttp2_session_server_new3(&h->session, cbs, h, opt, &mem);
    h->creating = 0;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        h2_mem_dispose(h); /* what nghttp2 made before it failed */
        return SG_ENOMEM;
    }
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, SG_ARRAY_SIZE(iv)) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, 1 << 20) != 0) {
        h2_session_free(h);
        return SG_ERR;
    }
    c->pd = h;
    /* conn.c armed the connection timer at accept for header_timeout_ms. */
    h->timer_at = c->accept_ms + (uint64_t)conf->limits.header_timeout_ms;
    h->reset_mtokens = H2_RESET_BURST * 1000u;
    h->reset_ms = (uint64_t)(ev_now(c->w->loop) * 1000.0);
    return SG_OK;
}

static int h2_on_data(sg_conn_t *c, const char *p, size_t n)
{
    h2_t *h = c->pd;
    ssize_t rv;

    if (h->cut)
        return SG_OK; /* GOAWAY queued: nothing more is processed */
    rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, n);
    if (rv < 0) {
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " HTTP/2 error: %s", c->id,
               nghttp2_strerror((int)rv));
        sg_metrics_h2_abuse(c->w, (int)rv);
        h->counted = 1;
        if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE)
            return SG_ERR;
        /* Protocol errors: nghttp2 has queued a GOAWAY; send it, then close. For its
         * floods (CONTINUATION, unread ACKs) it queues none: say ENHANCE_YOUR_CALM
         * (counted above), and do not wait for a client that does not read. */
        if (rv == NGHTTP2_ERR_FLOODED
#ifdef SG_HAVE_NGHTTP2_MAX_CONTINUATIONS
            || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
#endif
        )
            h2_cut(h, -1, NGHTTP2_ENHANCE_YOUR_CALM, nghttp2_strerror((int)rv));
        else
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

    if (h->cut)
        return 0;
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

/* A stream's deadline: the earliest of its header clock (header block incomplete),
 * its body clock (request body incomplete) and its send clock (answer bytes waiting for
 * the client's window); 0 when none runs. */
static uint64_t h2_stream_deadline(const h2_t *h, const h2_stream_t *s)
{
    const sg_conf_t *conf = h->c->conf;
    uint64_t d = 0, x;

    if (!s->headers_done)
        d = s->t_begin + (uint64_t)conf->limits.header_timeout_ms;
    else if (!s->body_done && !s->timed_out)
        d = s->t_headers + (uint64_t)conf->limits.body_timeout_ms;
    if (sg_buf_avail(&s->out) > 0) {
        x = s->out_since + (uint64_t)conf->limits.send_timeout_ms;
        d = d == 0 || x < d ? x : d;
    }
    return d;
}

/* S's deadline has passed. Returns 1 when the whole connection was ended. */
static int h2_stream_expired(h2_t *h, h2_stream_t *s, uint64_t now)
{
    const sg_conf_t *conf = h->c->conf;
    sg_req_t *r = s->r;

    if (!s->headers_done) {
        /* A header block in progress blocks the connection (RFC 9113 6.10: nothing but
         * its CONTINUATION frames may come) and HPACK state cannot be skipped: only the
         * connection can end. */
        h2_cut(h, SG_H2A_STREAM_TIMEOUT, NGHTTP2_ENHANCE_YOUR_CALM,
               "request headers timed out (header_timeout_ms)");
        return 1;
    }
    if (!s->body_done && !s->timed_out &&
        now >= s->t_headers + (uint64_t)conf->limits.body_timeout_ms) {
        s->timed_out = 1;
        sg_metrics_h2_abuse_kind(h->c->w, SG_H2A_STREAM_TIMEOUT);
        sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " stream=%d request body timed out", h->c->id,
               (int)s->id);
        if (!r->res_started) {
            /* The vSphere-shaped 408 of HTTP/1.1, then a reset of the request half. */
            s->rst_after_end = 1;
            r->term = "cR";
            sg_req_fault(r, 408, "InvalidRequest", "The request took too long to arrive.");
        } else {
            /* Answered already (a refusal) and still sending: end it. */
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id,
                                      r->res_ended ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
        }
        sg_conn_kick(h->c);
    }
    if (sg_buf_avail(&s->out) > 0 &&
        now >= s->out_since + (uint64_t)conf->limits.send_timeout_ms) {
        if (sg_buf_avail(&h->c->wbuf) > 0) {
            /* The socket is not taking bytes either: conn.c's send timer watches that. */
            s->out_since = now;
            return 0;
        }
        /* Output is waiting and the socket is free: the client keeps its window at 0. */
        sg_m_inc(&h->c->w->m.send_timeouts);
        h2_cut(h, SG_H2A_SEND_TIMEOUT, NGHTTP2_ENHANCE_YOUR_CALM,
               "no window for a waiting answer (send_timeout_ms)");
        return 1;
    }
    return 0;
}

static void h2_on_timeout(sg_conn_t *c)
{
    h2_t *h = c->pd;
    uint64_t now = sg_now_ms(), next = 0, d;

    h->timer_at = 0;
    if (h->cut) {
        if (now >= h->cut_at) {
            sg_log(SG_LOG_DEBUG, "conn=%" PRIu64 " GOAWAY not taken: closed", c->id);
            sg_conn_close(c);
        } else {
            h2_timer_at(h, h->cut_at);
        }
        return;
    }
    if (h->nstreams == 0) {
        /* Before the first stream: header_timeout_ms from accept; after: idle. */
        d = h->nbegun == 0 ? c->accept_ms + (uint64_t)c->conf->limits.header_timeout_ms
                           : h->idle_since + (uint64_t)c->conf->limits.idle_timeout_ms;
        if (now < d) {
            h2_timer_at(h, d);
            return;
        }
        h2_goaway(h);
        c->close_after_flush = 1;
        sg_conn_kick(c);
        return;
    }
    /* Expiring a stream only queues frames (no stream closes under us). */
    for (h2_stream_t *s = h->streams; s != NULL; s = s->next) {
        if ((d = h2_stream_deadline(h, s)) == 0)
            continue;
        if (d <= now) {
            if (h2_stream_expired(h, s, now))
                return;
            if ((d = h2_stream_deadline(h, s)) == 0)
                continue;
        }
        next = next == 0 || d < next ? d : next;
    }
    if (next != 0)
        h2_timer_at(h, next);
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
    h2_session_free(h);
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
    .release = h2_release,
};
