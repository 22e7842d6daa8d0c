/*
 * proxy/upstream.c - HTTP/1.1 client connections to the upstream (vCenter), with
 * a per-worker keep-alive pool, optional TLS (certificate and host-name checks,
 * SNI, session resumption), and connect/response timeouts.
 *
 * A connection carries one request at a time. The request goes out whole (the
 * front end buffered and the chain checked it): its header block is built in the
 * connection's buffer and sent with the body in one writev(), at once when the
 * connection is a kept-alive one. The response streams back to the front end as
 * it arrives, with back-pressure: when the client is slow the upstream socket is
 * simply not read. The response is held to the HTTP/1 rules a client's request is held
 * to (proxy/h1_msg.c): what the client side would refuse fails the exchange.
 *
 * Each worker keeps one pool per upstream (vCenter): its idle connections, its count of
 * open ones, its waiting requests and its TLS session. A pool opens at most its
 * upstream's max_connections connections. A request that finds none idle and no room
 * waits in the pool's FIFO; a connection that finishes an exchange goes straight to
 * the oldest waiter, so under load HTTP/2 streams share warm connections instead of
 * opening and closing one each. A reload keeps the pool (and its connections) of an
 * upstream whose connection settings did not change; the pools of the others go once
 * their last connection closes. An upstream that is down (health.c) fails a request at
 * once instead of connecting. Failures before any response byte on a
 * reused keep-alive connection are retried once on a fresh connection, because
 * the server may have closed it while idle (RFC 9112 9.3.1); nothing else is
 * retried.
 */
#include "proxy/proxy.h"
#include "proxy/h1_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

enum { UP_CONNECTING, UP_HANDSHAKE, UP_ACTIVE, UP_IDLE, UP_CLOSED };

/* Response headers larger than this are a 502. Each field counts 32 bytes more, as
 * HPACK counts them (RFC 7541 4.1): whatever passes then also fits in one HTTP/2
 * header block for the client, which nghttp2 refuses to send past 64 KiB (its bound
 * is name + value + 11 per field); without that margin a client would wait forever. */
#define UP_MAX_HEADER_BYTES (63 * 1024)
#define UP_HEADER_FIELD_COST 32
#define UP_WBUF_KEEP (16 * 1024) /* a pooled connection keeps a write buffer this large */

struct sg_up_s {
    sg_worker_t *w;
    int fd;
    SSL *ssl;
    int state;
    ev_io io;
    ev_timer timer;
    int io_events;
    http_parser parser;
    sg_buf_t wbuf; /* the request's header block; the body goes from r->body */
    size_t body_off; /* body bytes sent */
    sg_h1_hdr_t hdr;    /* the response header field being gathered across reads */
    /* The field being gathered while all of it lies in the bytes being parsed: taken from
     * there (up_commit_header), so that a response header is copied once, into the request
     * for the client. What the parser leaves pending goes into hdr (up_spill). */
    const char *dname, *dvalue; /* NULL: none yet */
    size_t dnlen, dvlen;
    size_t hbytes;      /* header section bytes, for UP_MAX_HEADER_BYTES */
    sg_h1_framing_t fr; /* the response's framing fields */
    /* Debian's non-strict http_parser takes any two bytes for the CRLF that ends chunk
     * data (proxy/h1_msg.h): the framing is checked here on the raw bytes before the
     * parser sees them (RFC 9112 7.1), so a misframed body is a failure and never
     * relayed as data. */
    sg_h1_chunk_t ck;
    sg_req_t *r;
    sg_upool_t *pool;
    sg_gen_t *gen; /* the settings it was opened with (reference) */
    const sg_conf_upstream_t *uc; /* its upstream in gen->conf */
    sg_health_t *health;
    int err;       /* a failure found before the loop could report it */
    const char *fail_reason; /* set by a parser callback that refuses the response */
    const char *fail_why;    /* and what exactly it found, for the log */
    ev_tstamp deadline;  /* response_timeout_ms is a total from the request's start */
    ev_tstamp paused_at; /* the client stopped us: that time does not count */
    uint64_t id;
    unsigned reused : 1, got_bytes : 1, paused : 1, done : 1, skip_msg : 1,
        in_body : 1, /* past the header section: fields now are chunked trailers */
        read_wants_write : 1, write_wants_read : 1,
        down : 1; /* never connected: its upstream is down (health.c) */
    sg_up_t *prev, *next; /* the pool's idle list, or the worker's dead list */
};

/* One upstream's connections in one worker. */
struct sg_upool_s {
    sg_worker_t *w;
    sg_gen_t *gen; /* the generation whose upstreams[idx] it follows (reference) */
    size_t idx;
    int current;   /* one of w->upool[]: its connections are used again */
    sg_up_t *idle, *idle_tail; /* most recently used first */
    size_t nidle;
    size_t nup; /* open connections, idle included */
    sg_req_t *q_head, *q_tail; /* requests waiting for a connection, oldest first */
    SSL_SESSION *session;      /* for resumption */
    ev_timer purge; /* closes idle connections beyond max_idle, lazily */
    sg_upool_t *next;
};

static const sg_conf_upstream_t *pool_conf(const sg_upool_t *p)
{
    return &p->gen->conf->upstreams[p->idx];
}

/* The metrics slot of the upstream the pool follows now. */
static int pool_mslot(const sg_upool_t *p)
{
    return p->gen->ups[p->idx].mslot;
}

/* The request's settings, else the ones the connection was opened with. */
static const sg_conf_upstream_t *up_conf(const sg_up_t *u)
{
    return u->r != NULL ? u->r->upstream : u->uc;
}

static uint64_t up_next_id;

static void up_start(sg_up_t *u, sg_req_t *r);
static void up_dispatch(sg_upool_t *p);
static int up_ssl_want(sg_up_t *u, int n, int *want);

static void up_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void up_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static const http_parser_settings up_settings;

void sg__up_free_dead(sg_worker_t *w);

/* ---- lifecycle ---- */

static void up_set_events(sg_up_t *u, int ev)
{
    if (ev == u->io_events)
        return;
    ev_io_stop(u->w->loop, &u->io);
    u->io_events = ev;
    if (ev) {
        ev_io_set(&u->io, u->fd, ev);
        ev_io_start(u->w->loop, &u->io);
    }
}

static void up_set_timer(sg_up_t *u, int ms)
{
    ev_timer_stop(u->w->loop, &u->timer);
    if (ms > 0) {
        ev_timer_set(&u->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(u->w->loop, &u->timer);
    }
}

/* upstream.response_timeout_ms runs from the moment the request can go out to the
 * end of the response, whatever arrives in between: an upstream that drips a byte
 * at a time is cut when the total runs out (docs/design.md "Configuration", limits). */
static void up_deadline_start(sg_up_t *u)
{
    u->paused_at = 0;
    u->deadline = ev_now(u->w->loop) + (double)up_conf(u)->response_timeout_ms / 1000.0;
    up_set_timer(u, up_conf(u)->response_timeout_ms);
}

/* Time spent waiting for a slow client is not the upstream's: on resume the
 * deadline moves by that much. */
static void up_deadline_pause(sg_up_t *u)
{
    if (u->paused_at == 0)
        u->paused_at = ev_now(u->w->loop);
    up_set_timer(u, 0);
}

static void up_deadline_resume(sg_up_t *u)
{
    ev_tstamp now = ev_now(u->w->loop), left;

    if (u->paused_at != 0) {
        u->deadline += now - u->paused_at;
        u->paused_at = 0;
    }
    left = u->deadline - now;
    ev_timer_stop(u->w->loop, &u->timer);
    ev_timer_set(&u->timer, left > 0.001 ? left : 0.001, 0.);
    ev_timer_start(u->w->loop, &u->timer);
}

static void up_idle_unlink(sg_up_t *u)
{
    sg_upool_t *p = u->pool;

    if (u->prev != NULL)
        u->prev->next = u->next;
    else
        p->idle = u->next;
    if (u->next != NULL)
        u->next->prev = u->prev;
    else
        p->idle_tail = u->prev;
    u->prev = u->next = NULL;
    p->nidle--;
    u->w->nidle--;
}

static void up_close(sg_up_t *u)
{
    sg_worker_t *w = u->w;

    if (u->state == UP_CLOSED)
        return;
    if (u->state == UP_IDLE)
        up_idle_unlink(u);
    u->state = UP_CLOSED;
    ev_io_stop(w->loop, &u->io);
    ev_clear_pending(w->loop, &u->io);
    ev_timer_stop(w->loop, &u->timer);
    ev_clear_pending(w->loop, &u->timer);
    if (u->ssl != NULL) {
        SSL_set_quiet_shutdown(u->ssl, 1);
        SSL_shutdown(u->ssl);
        ERR_clear_error();
    }
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    u->next = w->dead_up;
    w->dead_up = u;
    w->nup--;
    u->pool->nup--;
    up_dispatch(u->pool); /* room for a waiting request */
}

static void pool_free(sg_upool_t *p)
{
    if (p->w->loop != NULL)
        ev_timer_stop(p->w->loop, &p->purge);
    if (p->session != NULL)
        SSL_SESSION_free(p->session);
    sg_gen_unref(p->gen);
    free(p);
}

/* Once per loop iteration: closed connections, and pools no generation of the worker
 * names any more that have nothing left. */
void sg__up_free_dead(sg_worker_t *w)
{
    sg_upool_t **pp, *p;
    sg_up_t *u;

    while ((u = w->dead_up) != NULL) {
        w->dead_up = u->next;
        if (u->ssl != NULL)
            SSL_free(u->ssl);
        sg_gen_unref(u->gen);
        sg_buf_dispose(&u->wbuf);
        sg_h1_hdr_dispose(&u->hdr);
        free(u);
    }
    for (pp = &w->upools; (p = *pp) != NULL;) {
        if (!p->current && p->nup == 0 && p->q_head == NULL) {
            *pp = p->next;
            pool_free(p);
        } else {
            pp = &p->next;
        }
    }
}

static void pool_close_idle(sg_upool_t *p)
{
    ev_timer_stop(p->w->loop, &p->purge);
    while (p->idle != NULL)
        up_close(p->idle);
}

void sg_up_close_idle(sg_worker_t *w)
{
    for (sg_upool_t *p = w->upools; p != NULL; p = p->next)
        pool_close_idle(p);
}

/* Idle connections beyond upstream.max_idle are not closed the moment they come
 * back (a busy second would open them again at once) but after a quiet second,
 * oldest first, as HAProxy's pool-purge-delay does. */
#define UP_PURGE_DELAY 1.0

static void up_purge_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_upool_t *p = t->data;

    (void)loop;
    (void)revents;
    while (p->nidle > (size_t)pool_conf(p)->max_idle && p->idle_tail != NULL)
        up_close(p->idle_tail);
}

static void up_idle_push(sg_up_t *u)
{
    sg_upool_t *p = u->pool;

    u->state = UP_IDLE;
    u->next = p->idle;
    u->prev = NULL;
    if (p->idle != NULL)
        p->idle->prev = u;
    else
        p->idle_tail = u;
    p->idle = u;
    p->nidle++;
    u->w->nidle++;
    up_set_events(u, EV_READ); /* notice the server closing it */
    up_set_timer(u, u->w->conf->limits.idle_timeout_ms);
    if (p->nidle > (size_t)pool_conf(p)->max_idle && !ev_is_active(&p->purge)) {
        ev_timer_set(&p->purge, UP_PURGE_DELAY, 0.);
        ev_timer_start(u->w->loop, &p->purge);
    }
}

/* Report a failure for the request on u (if any) and close u. reason is the short
 * name of what went wrong, kept for the audit outcome (sg_req_t.up_error); why says
 * what the proxy was doing, for the log. */
static void up_fail(sg_up_t *u, int status, const char *reason, const char *why)
{
    sg_req_t *r = u->r;
    int retry = r != NULL && u->reused && !u->got_bytes && r->up_tries == 0 && status == 502;

    if ((u->state == UP_CONNECTING || u->state == UP_HANDSHAKE) && !u->down)
        sg_metrics_up_connect_failed(u->w, pool_mslot(u->pool));
    /* Reachability is TCP's: a TLS failure is a wrong certificate or setting, answered
     * as such on every request, not an upstream that is gone. */
    if (u->state == UP_CONNECTING && !u->down)
        sg_health_failed(u->health, sg_now_ms(), reason);
    u->r = NULL;
    up_close(u);
    if (r == NULL)
        return;
    r->up = NULL;
    if (retry) {
        /* The idle connection died under us before answering: the request was not
         * processed, so one fresh attempt is safe. */
        r->up_tries++;
        sg_up_forward(r);
        return;
    }
    r->up_error = reason;
    sg_req_up_fail(r, status, why);
}

void sg_up_abort(sg_up_t *u)
{
    u->r = NULL;
    up_close(u);
}

void sg_up_resume(sg_up_t *u)
{
    if (u->state != UP_ACTIVE || !u->paused)
        return;
    u->paused = 0;
    up_deadline_resume(u);
    /* Decrypted bytes may already sit inside SSL: read from the loop, not here. */
    ev_feed_event(u->w->loop, &u->io, EV_READ);
}

/* ---- waiting for a connection ---- */

static void upq_unlink(sg_upool_t *p, sg_req_t *r)
{
    if (r->upq_prev != NULL)
        r->upq_prev->upq_next = r->upq_next;
    else
        p->q_head = r->upq_next;
    if (r->upq_next != NULL)
        r->upq_next->upq_prev = r->upq_prev;
    else
        p->q_tail = r->upq_prev;
    r->upq_prev = r->upq_next = NULL;
    r->up_queued = 0;
    r->upool = NULL;
}

void sg_up_unqueue(sg_req_t *r)
{
    if (r->up_queued)
        upq_unlink(r->upool, r);
}

/* Start waiting requests while there is an idle connection or room for a new
 * one. Not re-entered: sg_up_forward may close an idle connection (which calls
 * here) on its way. */
static void up_dispatch(sg_upool_t *p)
{
    static __thread int running;
    sg_req_t *r;

    if (running)
        return;
    running = 1;
    while ((r = p->q_head) != NULL &&
           (p->idle != NULL || p->nup < (size_t)pool_conf(p)->max_connections)) {
        upq_unlink(p, r);
        sg_up_forward(r);
        if (r->up_queued)
            break; /* still no room */
    }
    running = 0;
}

/* ---- pools ---- */

/* Whether connections made for A serve B: the same server, reached the same way. */
static int up_same_server(const sg_conf_upstream_t *a, const sg_conf_upstream_t *b)
{
    return a == b || (strcmp(a->name, b->name) == 0 && strcmp(a->url, b->url) == 0 &&
                      strcmp(a->ca_file, b->ca_file) == 0 &&
                      strcmp(a->server_name, b->server_name) == 0 && a->verify == b->verify);
}

static sg_upool_t *pool_new(sg_worker_t *w, sg_gen_t *g, size_t idx)
{
    sg_upool_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->w = w;
    p->gen = sg_gen_ref(g);
    p->idx = idx;
    ev_init(&p->purge, up_purge_cb);
    p->purge.data = p;
    p->next = w->upools;
    w->upools = p;
    return p;
}

/* The pool r goes through: its generation's, or (a request of an earlier generation, or
 * after a reload that could not build the pools) one with the same server. NULL: no
 * memory. */
static sg_upool_t *up_pool_of(sg_worker_t *w, sg_req_t *r)
{
    sg_upool_t *p;

    if (r->gen == w->gen && r->up_idx < w->nupool && w->upool[r->up_idx] != NULL)
        return w->upool[r->up_idx];
    for (p = w->upools; p != NULL; p = p->next)
        if (up_same_server(pool_conf(p), r->upstream))
            return p;
    return pool_new(w, r->gen, r->up_idx);
}

int sg_up_reload(sg_worker_t *w)
{
    const sg_conf_t *c = w->gen->conf;
    sg_upool_t **v = calloc(c->nupstreams, sizeof(*v)), *p;

    for (p = w->upools; p != NULL; p = p->next)
        p->current = 0;
    free(w->upool);
    w->upool = v;
    w->nupool = v != NULL ? c->nupstreams : 0;
    for (size_t i = 0; i < w->nupool; i++) {
        for (p = w->upools; p != NULL; p = p->next)
            if (!p->current && up_same_server(pool_conf(p), &c->upstreams[i]))
                break;
        if (p == NULL && (p = pool_new(w, w->gen, i)) == NULL)
            continue; /* up_pool_of tries again per request */
        if (p->gen != w->gen) {
            /* Kept: its connections stay, and it follows the new limits. */
            sg_gen_unref(p->gen);
            p->gen = sg_gen_ref(w->gen);
            p->idx = i;
        }
        p->current = 1;
        v[i] = p;
    }
    /* An upstream removed or moved: its idle connections go now, busy ones after their
     * exchange (up_finish), the pool with the last of them (sg__up_free_dead). */
    for (p = w->upools; p != NULL; p = p->next) {
        if (!p->current && w->loop != NULL)
            pool_close_idle(p);
    }
    return v != NULL || c->nupstreams == 0 ? SG_OK : SG_ENOMEM;
}

size_t sg_up_queued(const sg_worker_t *w)
{
    size_t n = 0;

    for (const sg_upool_t *p = w->upools; p != NULL; p = p->next)
        for (const sg_req_t *r = p->q_head; r != NULL; r = r->upq_next)
            n++;
    return n;
}

void sg_up_pool_gauges(const sg_worker_t *w, uint64_t *open, uint64_t *idle)
{
    for (const sg_upool_t *p = w->upools; p != NULL; p = p->next) {
        open[pool_mslot(p)] += p->nup;
        idle[pool_mslot(p)] += p->nidle;
    }
}

void sg_up_dispose(sg_worker_t *w)
{
    sg_upool_t *p;

    while ((p = w->upools) != NULL) {
        w->upools = p->next;
        pool_free(p);
    }
    free(w->upool);
    w->upool = NULL;
    w->nupool = 0;
}

/* ---- the request on the wire ---- */

/*
 * The request's header block for the upstream, into b. Which client header crosses is
 * sg_hdr_upstream_class()'s decision (headers.c, where the rules are written down);
 * here it is applied, the gateway's own headers are added, and the drops that matter
 * are counted: once per client request, not again for a retry or for each part of a
 * split batch (the parts share their parent's headers). No allocation but b's, and no
 * printf: it runs for every request.
 */
static int up_build_request(sg_req_t *r, sg_buf_t *b)
{
    const sg_conf_t *conf = r->conf;
    sg_req_t *origin = r->is_child && r->parent != NULL ? r->parent : r;
    int count = !origin->hdrs_counted;
    int connection = sg_headers_get(&r->headers, "connection") != NULL;
    int rv, cls, cookies = 0;

    rv = sg_buf_append(b, r->method.p, r->method.n);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, " ");
    if (rv == SG_OK)
        rv = sg_buf_append(b, r->path.p, r->path.n);
    if (rv == SG_OK)
        rv = sg_buf_lit(b, " HTTP/1.1\r\nhost: ");
    if (rv == SG_OK)
        rv = sg_buf_append(b, r->upstream->authority, strlen(r->upstream->authority));
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "\r\n");
    for (size_t i = 0; rv == SG_OK && i < r->headers.n; i++) {
        const sg_header_t *h = &r->headers.v[i];

        cls = sg_hdr_upstream_class(h->name.p, h->name.n, r->guarded, &conf->routes.drop_headers);
        if (cls != SG_HDR_KEEP) {
            if (count)
                sg_metrics_hdr_dropped(r->conn->w, cls);
            continue;
        }
        /* RFC 9110 7.6.1: what Connection names is hop-by-hop too. */
        if (connection && sg_hdr_connection_lists(&r->headers, h->name.p, h->name.n))
            continue;
        if (r->http_major == 2 && sg_strcaseeq(h->name.p, h->name.n, "cookie", 6)) {
            cookies++;
            continue; /* joined below */
        }
        rv = sg_buf_append(b, h->name.p, h->name.n);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, ": ");
        if (rv == SG_OK)
            rv = sg_buf_append(b, h->value.p, h->value.n);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
    }
    origin->hdrs_counted = 1;
    if (cookies > 0) {
        /* HTTP/2 may split cookies; HTTP/1.1 wants one line (RFC 9113 8.2.3). Cookie
         * is never on a guarded route's allowlist, so this is a forwarded route. */
        int first = 1;

        rv = rv == SG_OK ? sg_buf_lit(b, "cookie: ") : rv;
        for (size_t i = 0; rv == SG_OK && i < r->headers.n; i++) {
            const sg_header_t *h = &r->headers.v[i];

            if (!sg_strcaseeq(h->name.p, h->name.n, "cookie", 6))
                continue;
            if (!first)
                rv = sg_buf_lit(b, "; ");
            first = 0;
            if (rv == SG_OK)
                rv = sg_buf_append(b, h->value.p, h->value.n);
        }
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
    }
    /* Set, never appended to: a client cannot forge its own origin (docs/design.md). */
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "x-forwarded-for: ");
    if (rv == SG_OK)
        rv = sg_buf_append(b, r->conn->peer, strlen(r->conn->peer));
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "\r\nx-forwarded-proto: https\r\n");
    if (rv == SG_OK && r->authority.n > 0) {
        rv = sg_buf_lit(b, "x-forwarded-host: ");
        if (rv == SG_OK)
            rv = sg_buf_append(b, r->authority.p, r->authority.n);
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
    }
    if (rv == SG_OK && (sg_buf_avail(&r->body) > 0 || r->content_length >= 0 ||
                        sg_headers_get(&r->headers, "transfer-encoding") != NULL)) {
        rv = sg_buf_lit(b, "content-length: ");
        if (rv == SG_OK)
            rv = sg_buf_append_u64(b, sg_buf_avail(&r->body));
        if (rv == SG_OK)
            rv = sg_buf_lit(b, "\r\n");
    }
    if (rv == SG_OK)
        rv = sg_buf_lit(b, "\r\n");
    return rv; /* the body follows from r->body (up_send) */
}

/* ---- connecting ---- */

static sg_up_t *up_new(sg_worker_t *w, sg_upool_t *p, sg_req_t *r)
{
    sg_up_t *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    u->w = w;
    u->pool = p;
    u->gen = sg_gen_ref(r->gen);
    u->uc = r->upstream;
    u->health = r->gen->ups[r->up_idx].health;
    u->fd = -1;
    w->nup++;
    p->nup++;
    u->id = __atomic_add_fetch(&up_next_id, 1, __ATOMIC_RELAXED);
    sg_h1_hdr_init(&u->hdr, UP_MAX_HEADER_BYTES);
    sg_buf_init(&u->wbuf, (size_t)r->conf->limits.max_header_bytes * 2 + 4096);
    ev_init(&u->io, up_io_cb);
    u->io.data = u;
    ev_init(&u->timer, up_timer_cb);
    u->timer.data = u;
    return u;
}

static int up_connect(sg_up_t *u)
{
    const sg_gen_up_t *g = &u->gen->ups[u->uc - u->gen->conf->upstreams];
    const sg_conf_upstream_t *uc = u->uc;
    int one = 1;

    u->fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0)
        return -errno;
    setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(u->fd, (struct sockaddr *)&g->addr, g->addrlen) < 0 && errno != EINPROGRESS)
        return -errno;
    if (g->ssl != NULL) {
        const char *name = uc->server_name[0] ? uc->server_name : uc->host;
        unsigned char ipbuf[16];
        int is_ip = inet_pton(AF_INET, name, ipbuf) == 1 || inet_pton(AF_INET6, name, ipbuf) == 1;

        u->ssl = SSL_new(g->ssl);
        if (u->ssl == NULL || SSL_set_fd(u->ssl, u->fd) != 1)
            return -ENOMEM;
        /* SNI carries names only (RFC 6066 3); the certificate check covers both. */
        if (!is_ip && SSL_set_tlsext_host_name(u->ssl, name) != 1)
            return -ENOMEM;
        if (uc->verify) {
            if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(u->ssl), name) != 1
                      : SSL_set1_host(u->ssl, name) != 1)
                return -EINVAL;
        }
        if (u->pool->session != NULL)
            SSL_set_session(u->ssl, u->pool->session);
        SSL_set_connect_state(u->ssl);
    }
    u->state = UP_CONNECTING;
    up_set_events(u, EV_WRITE);
    up_set_timer(u, uc->connect_timeout_ms);
    return 0;
}

void sg_up_forward(sg_req_t *r)
{
    sg_worker_t *w = r->conn->w;
    sg_upool_t *p = up_pool_of(w, r);
    sg_up_t *u = p != NULL ? p->idle : NULL;
    int rv;

    if (r->up_start_ms == 0)
        r->up_start_ms = sg_now_ms(); /* upstream_duration_seconds; a retry keeps it */
    if (p == NULL) {
        sg_req_fault(r, 503, "SystemError", "The gateway is out of memory.");
        return;
    }
    /* Most recently used first: the warmest connection, least likely closed. A
     * retry after a dead kept-alive connection always gets a fresh one. */
    if (u != NULL && r->up_tries == 0) {
        up_idle_unlink(u);
        u->reused = 1;
        u->state = UP_ACTIVE;
        up_start(u, r);
        return;
    }
    if (p->nup >= (size_t)pool_conf(p)->max_connections) {
        if (u == NULL) {
            r->up_queued = 1;
            r->upool = p;
            r->upq_next = NULL;
            r->upq_prev = p->q_tail;
            if (p->q_tail != NULL)
                p->q_tail->upq_next = r;
            else
                p->q_head = r;
            p->q_tail = r;
            return;
        }
        up_close(u); /* an idle connection a retry cannot use: make room */
    }
    u = up_new(w, p, r);
    if (u == NULL) {
        sg_req_fault(r, 503, "SystemError", "The gateway is out of memory.");
        return;
    }
    if (!sg_health_admit(u->health, sg_now_ms())) {
        /* Down: fail from the loop, as a refused connect would, without waiting for one. */
        u->down = 1;
        u->err = -EHOSTDOWN;
        u->state = UP_CONNECTING;
        ev_feed_event(w->loop, &u->io, EV_CUSTOM);
    } else if ((rv = up_connect(u)) < 0) {
        /* Reported from the loop, never from inside the caller. */
        u->err = rv;
        u->state = UP_CONNECTING;
        ev_feed_event(w->loop, &u->io, EV_CUSTOM);
    }
    up_start(u, r);
}

/* Writes what the socket takes now. SG_OK (all sent, or it would block) or
 * SG_ERR (the connection is broken; the caller decides what that means). */
static int up_send(sg_up_t *u)
{
    sg_req_t *r = u->r;
    const char *body = r != NULL ? sg_buf_head(&r->body) : NULL;
    size_t blen = r != NULL ? sg_buf_avail(&r->body) : 0;
    ssize_t n;
    int want;

    while (sg_buf_avail(&u->wbuf) > 0 || u->body_off < blen) {
        if (u->ssl != NULL) {
            const char *p = sg_buf_avail(&u->wbuf) > 0 ? sg_buf_head(&u->wbuf) : body + u->body_off;
            size_t len = sg_buf_avail(&u->wbuf) > 0 ? sg_buf_avail(&u->wbuf) : blen - u->body_off;

            ERR_clear_error();
            n = SSL_write(u->ssl, p, (int)SG_MIN(len, 65536));
            if (n <= 0) {
                if (up_ssl_want(u, (int)n, &want)) {
                    u->write_wants_read = want == EV_READ;
                    return SG_OK;
                }
                return SG_ERR;
            }
        } else {
            struct iovec iov[2];
            int niov = 0;

            if (sg_buf_avail(&u->wbuf) > 0)
                iov[niov++] = (struct iovec){sg_buf_head(&u->wbuf), sg_buf_avail(&u->wbuf)};
            if (u->body_off < blen)
                iov[niov++] = (struct iovec){(void *)(body + u->body_off), blen - u->body_off};
            n = writev(u->fd, iov, niov);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return SG_OK;
                return SG_ERR;
            }
        }
        if ((size_t)n <= sg_buf_avail(&u->wbuf)) {
            sg_buf_consume(&u->wbuf, (size_t)n);
        } else {
            u->body_off += (size_t)n - sg_buf_avail(&u->wbuf);
            sg_buf_reset(&u->wbuf);
        }
    }
    return SG_OK;
}

static int up_unsent(const sg_up_t *u)
{
    return sg_buf_avail(&u->wbuf) > 0 || (u->r != NULL && u->body_off < sg_buf_avail(&u->r->body));
}

/* Test seam (tests/fuzz/fuzz_reqshape.c): sees every request head built for the upstream,
 * to prove that nothing the client invented is in it. NULL outside that fuzz target. */
void (*sg__up_request_hook)(const sg_req_t *r, const char *head, size_t n);

/* Attach r to u (new, or kept-alive and UP_ACTIVE) and put the request on the wire. */
static void up_start(sg_up_t *u, sg_req_t *r)
{
    u->r = r;
    r->up = u;
    u->got_bytes = 0;
    u->done = 0;
    u->paused = 0;
    u->skip_msg = 0;
    u->hbytes = 0;
    u->body_off = 0;
    u->in_body = 0;
    sg_h1_chunk_off(&u->ck);
    sg_h1_framing_reset(&u->fr);
    u->read_wants_write = u->write_wants_read = 0;
    sg_h1_hdr_reset(&u->hdr);
    u->dname = u->dvalue = NULL;
    sg_buf_reset(&u->wbuf);
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    if (up_build_request(r, &u->wbuf) != SG_OK) {
        r->up = NULL;
        u->r = NULL;
        up_close(u);
        sg_req_fault(r, 500, "SystemError", "The request could not be prepared for upstream.");
        return;
    }
    if (sg__up_request_hook != NULL)
        sg__up_request_hook(r, sg_buf_head(&u->wbuf), sg_buf_avail(&u->wbuf));
    u->fail_reason = NULL;
    u->fail_why = NULL;
    if (u->state != UP_ACTIVE)
        return; /* connecting: up_io_cb sends once connected */
    up_deadline_start(u);
    /* A kept-alive connection takes the request now: usually all of it, leaving the
     * socket watched for EV_READ only, as it was while idle (no epoll change). A
     * failure is left for the loop to find again on EV_WRITE, so nothing calls r
     * back from here. */
    if (up_send(u) != SG_OK || up_unsent(u) || u->write_wants_read)
        up_set_events(u, EV_READ | EV_WRITE);
    else
        up_set_events(u, EV_READ);
}

/* ---- response parsing ---- */

/* A response the parser took but the rules of proxy/h1_msg.c refuse: a 502 like any other
 * malformed answer (a 500 ProviderUnavailable on a guarded route), never relayed. */
static int up_refuse(sg_up_t *u, const char *why)
{
    u->fail_reason = "upstream bad response";
    u->fail_why = why;
    return -1;
}

/* The field held in place (u->dname) moves into u->hdr, as if it had come in pieces:
 * before the bytes it points into go (the end of each parser run), or when a second piece
 * of it comes, which the accumulator judges (an obs-fold). SG_OK, or the accumulator's
 * failure. */
static int up_spill(sg_up_t *u)
{
    const char *why;
    int rv;

    if (u->dname == NULL)
        return SG_OK;
    rv = sg_h1_hdr_name(&u->hdr, u->dname, u->dnlen);
    if (rv == SG_OK && u->dvalue != NULL)
        rv = sg_h1_hdr_value(&u->hdr, u->dvalue, u->dvlen, &why); /* a first piece: no fold */
    u->dname = u->dvalue = NULL;
    return rv;
}

static int up_header_pending(const sg_up_t *u)
{
    return u->dname != NULL || sg_h1_hdr_pending(&u->hdr);
}

/* The field gathered (in place or in u->hdr): checked with the client side's rules,
 * counted, and kept for the client unless it is hop-by-hop or belongs to an interim
 * response. */
static int up_commit_header(sg_up_t *u)
{
    sg_req_t *r = u->r;
    sg_h1_field_t f;
    const char *why;
    int rv;

    if (r == NULL)
        return -1;
    u->hbytes += UP_HEADER_FIELD_COST;
    if (u->hbytes > UP_MAX_HEADER_BYTES) {
        u->fail_reason = "upstream headers too large";
        return -1;
    }
    if (u->dname != NULL) {
        f = (sg_h1_field_t){u->dname, u->dvalue != NULL ? u->dvalue : "", u->dnlen, u->dvlen};
        u->dname = u->dvalue = NULL;
        rv = sg_h1_field_check(&f, &why);
    } else {
        rv = sg_h1_hdr_take(&u->hdr, &f, &why);
    }
    if (rv != SG_OK)
        return up_refuse(u, why);
    sg_h1_framing_count(&u->fr, &f);
    if (!u->skip_msg && !r->res_started && !sg_hdr_is_response_hop(f.name, f.nlen)) {
        if (sg_headers_add(&r->pool, &r->res.headers, f.name, f.nlen, f.value, f.vlen) != SG_OK)
            return -1;
    }
    return 0;
}

static int up_on_message_begin(http_parser *p)
{
    sg_up_t *u = p->data;

    u->skip_msg = 0;
    u->in_body = 0;
    u->dname = u->dvalue = NULL;
    sg_h1_hdr_reset(&u->hdr);
    sg_h1_framing_reset(&u->fr);
    sg_h1_chunk_off(&u->ck);
    if (u->r != NULL)
        u->r->res.headers.n = 0;
    return 0;
}

/* Header section bytes, trailers included, against UP_MAX_HEADER_BYTES. */
static int up_count(sg_up_t *u, size_t n)
{
    u->hbytes += n;
    if (u->hbytes > UP_MAX_HEADER_BYTES) {
        u->fail_reason = "upstream headers too large";
        return -1;
    }
    return 0;
}

static int up_on_header_field(http_parser *p, const char *at, size_t n)
{
    sg_up_t *u = p->data;

    if (up_count(u, n) < 0)
        return -1;
    if (u->in_body)
        return 0; /* chunked trailers: counted, never promoted to header fields */
    if ((u->dvalue != NULL || sg_h1_hdr_complete(&u->hdr)) && up_commit_header(u) < 0)
        return -1;
    if (u->dname == NULL && !sg_h1_hdr_pending(&u->hdr)) {
        /* The usual case: the name comes whole, and its value after it in the same bytes. */
        u->dname = at;
        u->dnlen = n;
        return 0;
    }
    if (up_spill(u) != SG_OK)
        return -1;
    return sg_h1_hdr_name(&u->hdr, at, n) == SG_OK ? 0 : -1;
}

static int up_on_header_value(http_parser *p, const char *at, size_t n)
{
    sg_up_t *u = p->data;
    const char *why;
    int rv;

    if (up_count(u, n) < 0)
        return -1;
    if (u->in_body)
        return 0;
    if (u->dname != NULL && u->dvalue == NULL) {
        u->dvalue = at;
        u->dvlen = n;
        return 0;
    }
    if (up_spill(u) != SG_OK)
        return -1;
    rv = sg_h1_hdr_value(&u->hdr, at, n, &why);
    if (rv == SG_EPROTO)
        return up_refuse(u, why); /* obs-fold: RFC 9112 5.2 allows a gateway the 502 */
    return rv == SG_OK ? 0 : -1;
}

static int up_on_headers_complete(http_parser *p)
{
    sg_up_t *u = p->data;
    sg_req_t *r = u->r;

    if (up_header_pending(u) && up_commit_header(u) < 0)
        return -1;
    if (r == NULL)
        return -1;
    if (sg_h1_framing_judge(&u->fr, p->http_minor, 0) != SG_H1_FRAMING_OK)
        return up_refuse(u, "Transfer-Encoding or Content-Length not a single valid one");
    u->in_body = 1;
    if ((p->flags & F_CHUNKED) && !r->head) {
        /* Stop here so that every byte given to the parser from now on is body, and
         * up_parse checks its framing first. */
        sg_h1_chunk_start(&u->ck);
        http_parser_pause(p, 1);
    }
    if (p->status_code < 200) {
        /* Interim responses (100, 103) are not relayed; the final one follows. */
        u->skip_msg = 1;
        return 0;
    }
    r->res.status = p->status_code;
    r->res.content_length = (p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED)
                                ? (int64_t)p->content_length
                                : -1;
    r->res.no_body = r->head || p->status_code == 204 || p->status_code == 304;
    sg_req_up_headers(r);
    return r->head ? 1 : 0; /* 1: the response to HEAD has no body */
}

static int up_on_body(http_parser *p, const char *at, size_t n)
{
    sg_up_t *u = p->data;
    int rv;

    if (u->r == NULL)
        return -1;
    rv = sg_req_up_body(u->r, at, n);
    if (rv < 0) {
        u->fail_reason = "upstream response too large";
        return -1;
    }
    if (rv > 0)
        u->paused = 1;
    return 0;
}

static int up_on_message_complete(http_parser *p)
{
    sg_up_t *u = p->data;

    if (u->skip_msg) {
        u->skip_msg = 0;
        return 0;
    }
    u->done = 1;
    http_parser_pause(p, 1); /* nothing after the response belongs to us */
    return 0;
}

static const http_parser_settings up_settings = {
    .on_message_begin = up_on_message_begin,
    .on_header_field = up_on_header_field,
    .on_header_value = up_on_header_value,
    .on_headers_complete = up_on_headers_complete,
    .on_body = up_on_body,
    .on_message_complete = up_on_message_complete,
};

/* The response is complete: hand u to the oldest waiting request, pool it or
 * close it; then let the request finish. */
static void up_finish(sg_up_t *u, int extra_bytes)
{
    sg_worker_t *w = u->w;
    sg_upool_t *p = u->pool;
    sg_req_t *r = u->r, *next = p->q_head;
    /* Only connections to an upstream of the worker's current settings are used again. */
    int reusable = !extra_bytes && http_should_keep_alive(&u->parser) && !w->draining &&
                   p->current && (u->ssl == NULL || SSL_pending(u->ssl) == 0);

    u->r = NULL;
    if (r != NULL)
        r->up = NULL;
    if (u->ssl != NULL && SSL_SESSION_is_resumable(SSL_get0_session(u->ssl)) &&
        SSL_get0_session(u->ssl) != p->session) {
        if (p->session != NULL)
            SSL_SESSION_free(p->session);
        p->session = SSL_get1_session(u->ssl);
    }
    if (u->wbuf.cap > UP_WBUF_KEEP)
        sg_buf_dispose(&u->wbuf); /* a large request: do not keep its buffer */
    if (reusable && next != NULL) {
        upq_unlink(p, next);
        u->reused = 1;
        up_start(u, next);
    } else if (reusable) {
        up_idle_push(u);
        up_dispatch(p);
    } else {
        up_close(u);
    }
    if (r != NULL)
        sg_req_up_done(r);
}

/* Feeds bytes to the parser. Returns 1 when the response is complete (u may be
 * pooled or closed), -1 when u was failed, 0 to go on. */
static int up_parse(sg_up_t *u, const char *p, size_t n)
{
    const char *why = NULL;
    size_t done;
    enum http_errno e;

    u->got_bytes = 1;
    for (;;) {
        sg_h1_hdr_input(&u->hdr, p != NULL ? p + n : NULL);
        /* A chunked body's framing is checked before the parser relays any of it. The
         * body is streamed, not held: the only limit is the chunk size's 16 digits. */
        if (sg_h1_chunk_on(&u->ck) && n > 0 &&
            sg_h1_chunk_check(&u->ck, p, n, UINT64_MAX, &why) != SG_OK)
            goto bad;
        done = http_parser_execute(&u->parser, &up_settings, p, n);
        e = HTTP_PARSER_ERRNO(&u->parser);
        /* p is the read buffer: a field cut off by its end is gathered from here on. */
        if (up_spill(u) != SG_OK) {
            why = "no memory for a header field";
            goto bad;
        }
        if (u->done) {
            up_finish(u, done < n);
            return 1;
        }
        if (e != HPE_PAUSED)
            break;
        /* Paused at the end of a chunked response's header section (up_on_headers_complete):
         * the rest is body. An empty rest must not reach the parser, which reads that as
         * EOF. */
        http_parser_pause(&u->parser, 0);
        if (done == n)
            return 0;
        p += done;
        n -= done;
    }
    if (e != HPE_OK) {
        if (n == 0) {
            /* EOF before the response's declared end (Content-Length, chunked). */
            sg_log(SG_LOG_WARN, "upstream=%" PRIu64 " closed the connection mid-response",
                   u->id);
            up_fail(u, 502, "upstream closed early", "reading a truncated upstream response");
            return -1;
        }
        why = u->fail_why != NULL ? u->fail_why : u->fail_reason;
        sg_log(SG_LOG_WARN, "upstream=%" PRIu64 " invalid response: %s%s%s", u->id,
               http_errno_description(e), why ? ": " : "", why ? why : "");
        up_fail(u, 502, u->fail_reason ? u->fail_reason : "upstream bad response",
                "parsing the upstream response");
        return -1;
    }
    return 0;
bad:
    sg_log(SG_LOG_WARN, "upstream=%" PRIu64 " invalid response: %s", u->id, why);
    up_fail(u, 502, "upstream bad response", "parsing the upstream response");
    return -1;
}

static int up_ssl_want(sg_up_t *u, int n, int *want)
{
    int e = SSL_get_error(u->ssl, n);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
        return 1;
    }
    return 0;
}

static void up_read(sg_up_t *u)
{
    char buf[16384];
    ssize_t n;
    int want, rv, reset = 0;

    while (u->state == UP_ACTIVE && !u->paused) {
        if (u->ssl != NULL) {
            ERR_clear_error();
            n = SSL_read(u->ssl, buf, sizeof(buf));
            if (n <= 0) {
                int e = SSL_get_error(u->ssl, (int)n);

                if (up_ssl_want(u, (int)n, &want)) {
                    u->read_wants_write = want == EV_WRITE;
                    return;
                }
                /* close_notify, reset or TLS error: treat as EOF */
                reset = e == SSL_ERROR_SYSCALL && errno == ECONNRESET;
                n = 0;
                ERR_clear_error();
            }
        } else {
            n = read(u->fd, buf, sizeof(buf));
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n < 0) {
                reset = errno == ECONNRESET;
                n = 0;
            }
        }
        if (n == 0) {
            /* EOF: completes a close-delimited body, fails anything else. A reset
             * never completes anything: what came before it may be cut short. */
            if (u->got_bytes && !reset && up_parse(u, NULL, 0) != 0)
                return;
            sg_log(SG_LOG_WARN, "upstream=%" PRIu64 " %s %s", u->id,
                   reset ? "reset the connection" : "closed the connection",
                   u->got_bytes ? "mid-response" : "before answering");
            up_fail(u, 502, reset ? "upstream reset" : "upstream closed early",
                    u->got_bytes ? "reading a truncated upstream response"
                                 : "waiting for the upstream response");
            return;
        }
        if ((rv = up_parse(u, buf, (size_t)n)) != 0)
            return;
    }
}

static void up_write(sg_up_t *u)
{
    if (up_send(u) != SG_OK)
        up_fail(u, 502, errno == ECONNRESET || errno == EPIPE ? "upstream reset"
                                                              : "upstream send failed",
                "sending the request upstream");
}

static void up_handshake(sg_up_t *u)
{
    char ebuf[256];
    int n, want;

    ERR_clear_error();
    n = SSL_do_handshake(u->ssl);
    if (n == 1) {
        u->state = UP_ACTIVE;
        up_deadline_start(u);
        return;
    }
    if (up_ssl_want(u, n, &want)) {
        up_set_events(u, want);
        return;
    }
    {
        long vr = SSL_get_verify_result(u->ssl);

        sg_log(SG_LOG_ERROR, "upstream=%" PRIu64 " TLS handshake failed: %s%s%s", u->id,
               sg_tls_errstr(ebuf, sizeof(ebuf)), vr != X509_V_OK ? "; certificate: " : "",
               vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
    }
    up_fail(u, 502, "upstream tls", "the TLS handshake with the upstream");
}

static void up_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sg_up_t *u = io->data;
    int ev;

    if (u->down) {
        up_fail(u, 502, "upstream down", "the upstream is held down after a failed connect");
        return;
    }
    if (u->err != 0) {
        sg_log(SG_LOG_ERROR, "upstream=%" PRIu64 " (%s) connect: %s", u->id, u->uc->name,
               strerror(-u->err));
        up_fail(u, 502, "upstream unreachable", "connecting to the upstream");
        return;
    }
    if (u->state == UP_IDLE) {
        /* An idle connection that becomes readable was closed (or misbehaves). */
        up_close(u);
        return;
    }
    if (u->state == UP_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            sg_log(SG_LOG_ERROR, "upstream=%" PRIu64 " (%s) connect: %s", u->id, u->uc->name,
                   strerror(err));
            up_fail(u, 502, "upstream unreachable", "connecting to the upstream");
            return;
        }
        sg_health_ok(u->health);
        u->state = u->ssl != NULL ? UP_HANDSHAKE : UP_ACTIVE;
        if (u->state == UP_ACTIVE)
            up_deadline_start(u);
    }
    if (u->state == UP_HANDSHAKE) {
        up_handshake(u);
        if (u->state != UP_ACTIVE)
            return;
    }
    u->read_wants_write = u->write_wants_read = 0;
    up_write(u);
    if (u->state != UP_ACTIVE)
        return;
    up_read(u);
    if (u->state != UP_ACTIVE)
        return;
    ev = 0;
    if ((!u->paused) || u->write_wants_read)
        ev |= EV_READ;
    if (up_unsent(u) || u->read_wants_write)
        ev |= EV_WRITE;
    up_set_events(u, ev);
    if (u->paused)
        up_deadline_pause(u); /* waiting for the client, not for the upstream */
}

static void up_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sg_up_t *u = t->data;

    if (u->state == UP_IDLE) {
        up_close(u);
        return;
    }
    sg_log(SG_LOG_WARN, "upstream=%" PRIu64 " timed out while %s", u->id,
           u->state == UP_CONNECTING ? "connecting" :
           u->state == UP_HANDSHAKE ? "in the TLS handshake" : "waiting for the response");
    u->got_bytes = 1; /* never retry a timeout */
    up_fail(u, 504, "upstream timeout",
            u->state == UP_CONNECTING ? "connecting to the upstream"
                                              : "waiting for the upstream response");
}
